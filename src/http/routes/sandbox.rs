//! `/sandbox/*` (SPEC §6): set, list and clear faults over HTTP, and read
//! the captured token requests. Mounted in sandbox mode only; a production
//! router has none of these routes.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::http::openapi::{schemas, SandboxErrors};
use crate::http::paths;
use serde_json::json;

use crate::http::state::AppState;
use crate::oauth::{ClientId, StoreError};
use crate::sandbox::{CapturedRequest, FaultKind, FaultRecord, FaultStatus, Sandbox};

/// The requests `GET /sandbox/requests` returns when no `limit` is given.
pub(crate) const DEFAULT_LIMIT: usize = 50;

/// `POST /sandbox/faults`'s body, the JSON form of `ficha sandbox fault set`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetFault {
    /// The client whose token requests misbehave.
    #[schema(pattern = "^[ -~]{1,255}$")]
    client_id: String,
    /// `status:429`, `status:500`, `status:503`, `delay:MILLISECONDS` (at
    /// most 60000), `malformed-json`, `expired-token`, `wrong-kid` or
    /// `bad-signature`.
    #[schema(
        pattern = "^(status:(429|500|503)|delay:[0-9]{1,5}|malformed-json|expired-token|wrong-kid|bad-signature)$"
    )]
    kind: String,
    /// Fire on the next N requests only (at least 1).
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 4294967295_u64)]
    times: Option<u32>,
    /// Fire on this random fraction of requests, in (0, 1].
    #[schema(exclusive_minimum = 0, maximum = 1)]
    ratio: Option<f64>,
    /// Seeds the draw behind `ratio`.
    seed: Option<u64>,
}

/// `DELETE /sandbox/faults`'s optional body.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearFaults {
    /// The client whose fault to clear; none: every fault.
    #[schema(pattern = "^[ -~]{1,255}$")]
    client_id: Option<String>,
}

/// Why a `/sandbox/*` request is refused.
#[derive(Debug)]
pub enum Refusal {
    /// No sandbox here (never reached: production mounts no such route).
    NotFound,
    /// A malformed request, with a reason for the caller.
    Invalid(String),
    /// The body is over the server's limit.
    TooLarge,
    /// The fault table cannot be read or written.
    Unavailable(StoreError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NotFound => StatusCode::NOT_FOUND.into_response(),
            Refusal::Invalid(description) => (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_request", "error_description": description})),
            )
                .into_response(),
            Refusal::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(json!({"error": "invalid_request", "error_description": "the request body is larger than 16 KiB"})),
            )
                .into_response(),
            Refusal::Unavailable(e) => {
                tracing::warn!(error.cause_chain = ?e, "sandbox fault table unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::RETRY_AFTER, "1")],
                    Json(json!({"error": "temporarily_unavailable", "error_description": "the database cannot be reached; retry later"})),
                )
                    .into_response()
            }
        }
    }
}

/// What a `/sandbox/*` handler answers.
pub type Answer = Result<Response, Refusal>;

pub(crate) fn invalid(description: impl std::fmt::Display) -> Refusal {
    Refusal::Invalid(description.to_string())
}

/// The body, or the refusal of one that could not be read whole.
fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Refusal> {
    body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refusal::TooLarge
        } else {
            invalid("the request body could not be read")
        }
    })
}

fn unavailable(e: StoreError) -> Refusal {
    Refusal::Unavailable(e)
}

pub(crate) fn sandbox(state: &AppState) -> Result<&Sandbox, Refusal> {
    state.sandbox.as_deref().ok_or(Refusal::NotFound)
}

fn client_id(raw: &str) -> Result<ClientId, Refusal> {
    ClientId::parse(raw).map_err(|e| invalid(format!("client_id is invalid: {e}")))
}

/// Reloads this instance's faults from the database at once, so that a
/// test driving the sandbox over HTTP need not wait for the next poll.
async fn reload(state: &AppState, sb: &Sandbox) -> Result<(), Refusal> {
    sb.faults
        .reload(state.store.list_faults())
        .await
        .map_err(unavailable)
}

pub(crate) fn query_params(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// `POST /sandbox/faults`: sets (or replaces) a client's fault; 201 with
/// the fault as this instance now applies it.
#[utoipa::path(
    post,
    path = paths::SANDBOX_FAULTS,
    tag = "sandbox",
    request_body(content((SetFault = "application/json",
        example = json!({"client_id": "my-client", "kind": "status:503", "times": 1})))),
    responses(
        (status = 201, description = "The fault, as this instance now applies it.", body = FaultStatus),
        SandboxErrors,
    )
)]
pub async fn set_fault(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let sb = sandbox(&state)?;
    let body = self::body(body)?;
    let req: SetFault = serde_json::from_slice(&body).map_err(|e| {
        invalid(format!(
            "the body must be {{\"client_id\", \"kind\", \"times\"?, \"ratio\"?, \"seed\"?}}: {e}"
        ))
    })?;
    let id = client_id(&req.client_id)?;
    let kind: FaultKind = req.kind.parse().map_err(invalid)?;
    let record = FaultRecord::new(
        id.clone(),
        kind,
        req.times,
        req.ratio,
        req.seed,
        state.clock.now(),
    )
    .map_err(invalid)?;
    state.store.set_fault(&record).await.map_err(unavailable)?;
    reload(&state, sb).await?;
    let status = sb
        .faults
        .snapshot()
        .into_iter()
        .find(|f| f.record.client_id == id);
    Ok((StatusCode::CREATED, Json(status)).into_response())
}

/// `GET /sandbox/faults`: every fault, with its remaining count and how
/// often it fired on this instance.
#[utoipa::path(
    get,
    path = paths::SANDBOX_FAULTS,
    tag = "sandbox",
    responses((status = 200, description = "Every fault in force.", body = Vec<FaultStatus>))
)]
pub async fn list_faults(State(state): State<AppState>) -> Answer {
    let sb = sandbox(&state)?;
    Ok(Json(sb.faults.snapshot()).into_response())
}

/// `DELETE /sandbox/faults`: clears one client's fault (`client_id` in the
/// query string or a JSON body) or, with neither, every fault.
#[utoipa::path(
    delete,
    path = paths::SANDBOX_FAULTS,
    tag = "sandbox",
    params(("client_id" = Option<String>, Query, pattern = "^[ -~]{1,255}$", description = "The client whose fault to clear.")),
    request_body(content((ClearFaults = "application/json")), description = "Optional; or `client_id` in the query string."),
    responses(
        (status = 200, description = "How many faults went.", body = schemas::Cleared),
        SandboxErrors,
    )
)]
pub async fn clear_faults(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let sb = sandbox(&state)?;
    let body = self::body(body)?;
    let from_query = query_params(query.as_deref())
        .into_iter()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v);
    let from_body = if body.trim_ascii().is_empty() {
        ClearFaults::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| invalid(format!("the body must be {{\"client_id\"?}}: {e}")))?
    };
    let id = from_query
        .or(from_body.client_id)
        .map(|c| client_id(&c))
        .transpose()?;
    let cleared = state
        .store
        .clear_faults(id.as_ref(), state.clock.now())
        .await
        .map_err(unavailable)?;
    reload(&state, sb).await?;
    Ok(Json(json!({"cleared": cleared})).into_response())
}

/// `GET /sandbox/requests?client_id=..&limit=..`: the last token requests,
/// newest first, masked.
#[utoipa::path(
    get,
    path = paths::SANDBOX_REQUESTS,
    tag = "sandbox",
    params(
        ("client_id" = Option<String>, Query, description = "Only this client's requests."),
        ("limit" = Option<u64>, Query, description = "At most this many (default 50, at most the capture size).")
    ),
    responses(
        (status = 200, description = "The last token requests, newest first, with every secret and token masked.",
            body = Vec<CapturedRequest>),
        (status = 400, description = "`invalid_request`: `limit` is not a number.", body = schemas::OAuthError)
    )
)]
pub async fn list_requests(State(state): State<AppState>, RawQuery(query): RawQuery) -> Answer {
    let sb = sandbox(&state)?;
    let mut client = None;
    let mut limit = DEFAULT_LIMIT;
    for (k, v) in query_params(query.as_deref()) {
        match k.as_str() {
            "client_id" => client = Some(v),
            "limit" => {
                limit = v
                    .parse()
                    .map_err(|_| invalid("limit must be a positive number"))?
            }
            _ => {}
        }
    }
    let requests = sb
        .requests
        .recent(client.as_deref(), limit.min(sb.requests.capacity()));
    Ok(Json(requests).into_response())
}

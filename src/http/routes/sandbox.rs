//! `/sandbox/*` (SPEC §6): set, list and clear faults over HTTP, and read
//! the captured token requests. Mounted in sandbox mode only; a production
//! router has none of these routes.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::http::state::AppState;
use crate::oauth::{ClientId, StoreError};
use crate::sandbox::{FaultKind, FaultRecord, Sandbox};

/// The requests `GET /sandbox/requests` returns when no `limit` is given.
const DEFAULT_LIMIT: usize = 50;

/// `POST /sandbox/faults`'s body, the JSON form of `ficha sandbox fault set`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetFault {
    client_id: String,
    kind: String,
    times: Option<u32>,
    ratio: Option<f64>,
    seed: Option<u64>,
}

/// `DELETE /sandbox/faults`'s optional body.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClearFaults {
    client_id: Option<String>,
}

/// Why a `/sandbox/*` request is refused.
#[derive(Debug)]
pub enum Refusal {
    /// No sandbox here (never reached: production mounts no such route).
    NotFound,
    /// A malformed request, with a reason for the caller.
    Invalid(String),
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

fn invalid(description: impl std::fmt::Display) -> Refusal {
    Refusal::Invalid(description.to_string())
}

fn unavailable(e: StoreError) -> Refusal {
    Refusal::Unavailable(e)
}

fn sandbox(state: &AppState) -> Result<&Sandbox, Refusal> {
    state.sandbox.as_deref().ok_or(Refusal::NotFound)
}

fn client_id(raw: &str) -> Result<ClientId, Refusal> {
    ClientId::parse(raw).map_err(|e| invalid(format!("client_id is invalid: {e}")))
}

/// Reloads this instance's faults from the database at once, so that a
/// test driving the sandbox over HTTP need not wait for the next poll.
async fn reload(state: &AppState, sb: &Sandbox) -> Result<(), Refusal> {
    sb.faults
        .replace(state.store.list_faults().await.map_err(unavailable)?);
    Ok(())
}

fn query_params(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// `POST /sandbox/faults`: sets (or replaces) a client's fault; 201 with
/// the fault as this instance now applies it.
pub async fn set_fault(State(state): State<AppState>, body: Bytes) -> Answer {
    let sb = sandbox(&state)?;
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
pub async fn list_faults(State(state): State<AppState>) -> Answer {
    let sb = sandbox(&state)?;
    Ok(Json(sb.faults.snapshot()).into_response())
}

/// `DELETE /sandbox/faults`: clears one client's fault (`client_id` in the
/// query string or a JSON body) or, with neither, every fault.
pub async fn clear_faults(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Answer {
    let sb = sandbox(&state)?;
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

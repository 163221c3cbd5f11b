//! The token endpoint of every dialect (SPEC §3, §5): read the request,
//! let the dialect decode it, call the one core service, let the dialect
//! render the answer.

use std::time::Instant;

use axum::extract::Request;
use axum::response::Response;

use crate::audit::{AddressText, EntryFields};
use crate::http::dialect::{DecodeContext, Dialect, DialectKind, DialectRequest};
use crate::http::errors::{ErrorResponse, HttpError};
use crate::http::extractors::{body_bytes, Peer};
use crate::http::sandbox::{self, Answered, BeforeIssue, Hooks};
use crate::http::state::AppState;
use crate::oauth::{ClientId, IssuedToken, TokenRequest};
use crate::telemetry::IssuedLine;

/// Issues a token for a request in `kind`'s wire format. In sandbox mode
/// the client's fault, if one is set and fires, alters the answer, and the
/// request is recorded (masked) for `GET /sandbox/requests`.
#[tracing::instrument(
    level = "debug",
    skip_all,
    fields(dialect = %kind, client_id = tracing::field::Empty, grant_type = tracing::field::Empty)
)]
pub async fn issue_token(
    state: AppState,
    kind: DialectKind,
    peer: Peer,
    mut req: Request,
) -> Response {
    let started = Instant::now();
    let dialect = kind.adapter();
    // A `Uri` clone shares its bytes: no copy of path or query per request.
    let uri = req.uri().clone();
    let headers = std::mem::take(req.headers_mut());
    let mut hooks = Hooks::new(state.sandbox.as_deref(), dialect);
    let mut client_id = None;
    let result = async {
        let body = body_bytes(req, &state).await.map_err(|e| e.error)?;
        hooks.saw_body(&body);
        let input = DialectRequest {
            query: uri.query(),
            headers: &headers,
            body: &body,
        };
        let request = decode(&state, dialect, &input)?;
        let client = client_id.insert(request.credentials.client_id().clone());
        issue(&state, request, client, peer, &mut hooks).await
    }
    .await;
    let (resp, outcome) = render(&state, dialect, result, client_id.as_ref(), peer, started);
    hooks.record(Answered {
        time: state.clock.now(),
        client_id: client_id.as_ref(),
        uri: &uri,
        headers: &headers,
        outcome,
        status: resp.status().as_u16(),
    });
    resp
}

/// What a token request came to before rendering.
enum Answer {
    /// A token (spoiled, if a token fault fired).
    Token(Box<IssuedToken>),
    /// A `malformed-json` fault fired.
    Malformed,
}

/// The dialect's reading of the request, noted on the request's span.
fn decode(
    state: &AppState,
    dialect: &dyn Dialect,
    input: &DialectRequest<'_>,
) -> Result<TokenRequest, HttpError> {
    let ctx = DecodeContext {
        claims: &state.claims,
    };
    let mut request = dialect.decode(input, &ctx)?;
    request.dialect = Some(dialect.name());
    let span = tracing::Span::current();
    span.record("client_id", request.credentials.client_id().as_ref());
    span.record("grant_type", request.grant.name());
    Ok(request)
}

/// The one core call, between the sandbox's request-phase and token-phase
/// faults (no-ops outside sandbox mode).
async fn issue(
    state: &AppState,
    request: TokenRequest,
    client: &ClientId,
    peer: Peer,
    hooks: &mut Hooks<'_>,
) -> Result<Answer, HttpError> {
    if hooks.before_issue(client).await? == BeforeIssue::Malformed {
        return Ok(Answer::Malformed);
    }
    let token = state
        .tokens
        .issue(request, peer.0, state.clock.now())
        .await?;
    let token = hooks.after_issue(client, token, &state.keys.current())?;
    Ok(Answer::Token(Box::new(token)))
}

/// The answer in the dialect's shape, counted in the metrics and, for a
/// token, audited; with the outcome the request log records.
fn render(
    state: &AppState,
    dialect: &dyn Dialect,
    result: Result<Answer, HttpError>,
    client_id: Option<&ClientId>,
    peer: Peer,
    started: Instant,
) -> (Response, &'static str) {
    let name = dialect.name();
    let elapsed = started.elapsed().as_secs_f64();
    match result {
        Ok(Answer::Token(token)) => {
            state.metrics.issued(name, elapsed);
            audit(&token, peer);
            record_audit(&state.audit, &token, name, peer);
            (dialect.render_token(&token), "issued")
        }
        Ok(Answer::Malformed) => {
            state.metrics.failed(name, "malformed_json", elapsed);
            (sandbox::malformed_json(dialect), "malformed-json")
        }
        Err(error) => {
            let error = ErrorResponse {
                error,
                mode: state.mode,
            };
            let (code, _) = error.code_and_status();
            state.metrics.failed(name, code, elapsed);
            let client_id = client_id.map(|c| c.as_ref());
            (dialect.render_error(&error, client_id), code)
        }
    }
}

/// The per-token audit record: to the structured log, never a synchronous
/// database write (SPEC §3), and never the token or a sealed claim.
pub fn audit(token: &IssuedToken, address: Peer) {
    let text = address.0.map(AddressText::new);
    crate::telemetry::token_issued(&IssuedLine {
        client_id: token.claims.client_id.as_str(),
        scope: token.claims.scope.as_str(),
        jti: token.claims.jti.as_str(),
        kid: token.kid.as_str(),
        exp: token.claims.exp,
        address: text.as_ref().map_or(Peer::UNKNOWN, AddressText::as_str),
    });
}

/// The audit trail's row for an issued token: identifiers, never the token.
fn record_audit(
    trail: &crate::audit::AuditTrail,
    token: &IssuedToken,
    dialect: &str,
    address: Peer,
) {
    let c = &token.claims;
    let fields = EntryFields {
        jti: &c.jti,
        client_id: &c.client_id,
        subject: &c.sub,
        scope: &c.scope,
        dialect,
        kid: &token.kid,
    };
    trail.record(fields, c.iat, c.exp, address.0);
}

/// 405 for any method but POST, with `Allow: POST`, in `kind`'s shape.
pub async fn method_not_allowed(state: AppState, kind: DialectKind) -> Response {
    let error = ErrorResponse {
        error: HttpError::MethodNotAllowed,
        mode: state.mode,
    };
    kind.adapter().render_error(&error, None)
}

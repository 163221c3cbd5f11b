//! The token endpoint of every dialect (SPEC §3, §5): read the request,
//! let the dialect decode it, call the one core service, let the dialect
//! render the answer.

use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::Response;

use crate::audit::AuditRecord;
use crate::http::dialect::{DecodeContext, DialectKind, DialectRequest};
use crate::http::errors::{ErrorResponse, HttpError};
use crate::http::extractors::{body_bytes, Peer};
use crate::http::sandbox;
use crate::http::state::AppState;
use crate::oauth::{ClientId, IssuedToken};
use crate::sandbox::{mask_body, BodyFormat, CapturedRequest, FaultKind, Phase};

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
    let mut seen = Seen::default();
    let result = match body_bytes(req, &state).await {
        Err(e) => Err(e.error),
        Ok(body) => {
            if state.sandbox.is_some() {
                seen.body = mask_body(&body, sandbox::body_formats(kind));
            }
            let input = DialectRequest {
                query: uri.query(),
                headers: &headers,
                body: &body,
            };
            decode_and_issue(&state, kind, peer, &input, &mut seen).await
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let (resp, outcome) = match result {
        Ok(Answer::Token(token)) => {
            state.metrics.issued(kind.as_str(), elapsed);
            audit(&token, peer);
            state.audit.record(audit_record(&token, kind, peer));
            (dialect.render_token(&token), "issued")
        }
        Ok(Answer::Malformed) => {
            state
                .metrics
                .failed(kind.as_str(), "malformed_json", elapsed);
            (sandbox::malformed_json(kind), "malformed-json")
        }
        Err(error) => {
            let error = ErrorResponse {
                error,
                mode: state.mode,
            };
            let (code, _) = error.code_and_status();
            state.metrics.failed(kind.as_str(), code, elapsed);
            (
                dialect.render_error_for(&error, seen.client_id.as_ref().map(|c| c.as_ref())),
                code,
            )
        }
    };
    if let Some(sb) = &state.sandbox {
        sb.requests.push(CapturedRequest {
            time: state.clock.now(),
            dialect: kind.as_str(),
            client_id: seen.client_id.map(|c| c.as_ref().to_owned()),
            method: "POST".to_owned(),
            path: uri.path().to_owned(),
            query: uri
                .query()
                .map(|q| mask_body(q.as_bytes(), &[BodyFormat::Form])),
            headers: sandbox::capture_headers(&headers),
            body: seen.body,
            outcome: outcome.to_owned(),
            status: resp.status().as_u16(),
            fault: seen.fault.map(|f| f.to_string()),
        });
    }
    resp
}

/// What a token request came to before rendering.
enum Answer {
    /// A token (spoiled, if a token fault fired).
    Token(Box<IssuedToken>),
    /// A `malformed-json` fault fired.
    Malformed,
}

/// What the sandbox's request log needs to know about a request.
#[derive(Default)]
struct Seen {
    client_id: Option<ClientId>,
    fault: Option<FaultKind>,
    body: String,
}

/// Decodes, applies a request-phase fault, issues, applies a token-phase
/// fault. Faults are looked up only in sandbox mode, and only once the
/// dialect has read a client id: status, delay and malformed-json faults
/// hit any request naming the client, before authentication; token faults
/// hit only tokens actually issued, after it.
async fn decode_and_issue(
    state: &AppState,
    kind: DialectKind,
    peer: Peer,
    input: &DialectRequest<'_>,
    seen: &mut Seen,
) -> Result<Answer, HttpError> {
    let ctx = DecodeContext {
        claims: &state.claims,
    };
    let mut request = kind.adapter().decode(input, &ctx)?;
    request.dialect = Some(kind.as_str());
    let span = tracing::Span::current();
    span.record("client_id", request.credentials.client_id().as_ref());
    span.record("grant_type", request.grant.name());
    let client = &*seen
        .client_id
        .insert(request.credentials.client_id().clone());
    let faults = state.sandbox.as_deref().map(|sb| &sb.faults);
    if let Some(fault) = faults.and_then(|f| f.take(client, Phase::Request)) {
        seen.fault = Some(fault);
        tracing::info!(fault = %fault, "sandbox fault applied");
        match fault {
            FaultKind::Status(code) => return Err(sandbox::injected_error(code).into()),
            FaultKind::Delay(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            FaultKind::MalformedJson => return Ok(Answer::Malformed),
            FaultKind::ExpiredToken | FaultKind::WrongKid | FaultKind::BadSignature => {}
        }
    }
    let token = state
        .tokens
        .issue(request, peer.0, state.clock.now())
        .await?;
    match faults.and_then(|f| f.take(client, Phase::Token)) {
        None => Ok(Answer::Token(Box::new(token))),
        Some(fault) => {
            seen.fault = Some(fault);
            tracing::info!(fault = %fault, "sandbox fault applied");
            let token = sandbox::spoil_token(fault, token, &state.keys.current())?;
            Ok(Answer::Token(Box::new(token)))
        }
    }
}

/// The per-token audit record: to the structured log, never a synchronous
/// database write (SPEC §3), and never the token or a sealed claim.
pub fn audit(token: &IssuedToken, address: Peer) {
    // Plain `&str` fields: they are written as they are, where `%` would
    // run each through the formatting machinery first (BENCHMARKS.md).
    tracing::info!(
        target: "ficha::audit",
        client_id = token.claims.client_id.as_str(),
        scope = token.claims.scope.as_str(),
        jti = token.claims.jti.as_str(),
        kid = token.kid.as_str(),
        exp = token.claims.exp,
        address = %address,
        "token issued"
    );
}

/// The audit trail's row for an issued token: identifiers, never the token.
fn audit_record(token: &IssuedToken, kind: DialectKind, address: Peer) -> AuditRecord {
    let c = &token.claims;
    AuditRecord {
        jti: c.jti.clone(),
        client_id: c.client_id.clone(),
        subject: c.sub.clone(),
        scope: c.scope.clone(),
        dialect: kind.as_str().to_owned(),
        kid: token.kid.clone(),
        iat: c.iat,
        exp: c.exp,
        address: address.0.map(|ip| ip.to_string()),
    }
}

/// 405 for any method but POST, with `Allow: POST`, in `kind`'s shape.
pub async fn method_not_allowed(state: AppState, kind: DialectKind) -> Response {
    kind.adapter().render_error(&ErrorResponse {
        error: HttpError::MethodNotAllowed,
        mode: state.mode,
    })
}

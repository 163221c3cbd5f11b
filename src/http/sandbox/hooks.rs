//! The sandbox's hooks on one token request, behind one value so that the
//! token handler reads extract → decode → issue → render whatever the mode.

use std::time::Duration;

use axum::http::{HeaderMap, Uri};

use crate::http::dialect::Dialect;
use crate::http::errors::HttpError;
use crate::keys::KeyRing;
use crate::oauth::{ClientId, IssuedToken};
use crate::sandbox::{mask_body, BodyFormat, CapturedRequest, FaultKind, Phase, Sandbox};

use super::{capture_headers, injected_error, spoil_token};

/// The faults that may fire for a token request and the masked record
/// kept of it. Outside sandbox mode every hook does nothing: no fault is
/// looked up and nothing is recorded (SPEC §6).
pub struct Hooks<'a> {
    sandbox: Option<&'a Sandbox>,
    dialect: &'static dyn Dialect,
    body: String,
    fault: Option<FaultKind>,
}

/// What a request-phase fault leaves the handler to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeforeIssue {
    /// Issue as usual (after a delay, if one fired).
    Proceed,
    /// Answer with a cut-short body instead ([`super::malformed_json`]).
    Malformed,
}

/// A token request as it was answered, for the request log.
#[derive(Debug, Clone, Copy)]
pub struct Answered<'a> {
    /// When it arrived, unix seconds.
    pub time: i64,
    /// The client it named, if the dialect read one.
    pub client_id: Option<&'a ClientId>,
    /// Its URI.
    pub uri: &'a Uri,
    /// Its headers.
    pub headers: &'a HeaderMap,
    /// `issued`, `malformed-json` or the error code answered.
    pub outcome: &'a str,
    /// The status answered.
    pub status: u16,
}

impl<'a> Hooks<'a> {
    /// Hooks for a request in `dialect`; `sandbox` is `None` in production.
    pub fn new(sandbox: Option<&'a Sandbox>, dialect: &'static dyn Dialect) -> Self {
        Hooks {
            sandbox,
            dialect,
            body: String::new(),
            fault: None,
        }
    }

    /// Keeps the body, masked, for the request log.
    pub fn saw_body(&mut self, body: &[u8]) {
        if self.sandbox.is_some() {
            self.body = mask_body(body, self.dialect.body_formats());
        }
    }

    /// Applies a request-phase fault of `client`, before authentication:
    /// status, delay and malformed-json faults hit any request naming the
    /// client. A delay is waited out here.
    pub async fn before_issue(&mut self, client: &ClientId) -> Result<BeforeIssue, HttpError> {
        let Some(fault) = self.take(client, Phase::Request) else {
            return Ok(BeforeIssue::Proceed);
        };
        match fault {
            FaultKind::Status(code) => Err(injected_error(code).into()),
            FaultKind::Delay(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(BeforeIssue::Proceed)
            }
            FaultKind::MalformedJson => Ok(BeforeIssue::Malformed),
            FaultKind::ExpiredToken | FaultKind::WrongKid | FaultKind::BadSignature => {
                Ok(BeforeIssue::Proceed)
            }
        }
    }

    /// Applies a token-phase fault of `client` to a token just issued:
    /// token faults hit only tokens actually issued, after authentication.
    pub fn after_issue(
        &mut self,
        client: &ClientId,
        token: IssuedToken,
        ring: &KeyRing,
    ) -> Result<IssuedToken, HttpError> {
        match self.take(client, Phase::Token) {
            None => Ok(token),
            Some(fault) => Ok(spoil_token(fault, token, ring)?),
        }
    }

    fn take(&mut self, client: &ClientId, phase: Phase) -> Option<FaultKind> {
        let fault = self.sandbox?.faults.take(client, phase)?;
        self.fault = Some(fault);
        tracing::info!(fault = %fault, "sandbox fault applied");
        Some(fault)
    }

    /// Records the request, masked, for `GET /sandbox/requests`.
    pub fn record(self, answered: Answered<'_>) {
        let Some(sandbox) = self.sandbox else {
            return;
        };
        sandbox.requests.push(CapturedRequest {
            id: 0,
            time: answered.time,
            dialect: self.dialect.name(),
            client_id: answered.client_id.map(|c| c.as_ref().to_owned()),
            method: "POST".to_owned(),
            path: answered.uri.path().to_owned(),
            query: answered
                .uri
                .query()
                .map(|q| mask_body(q.as_bytes(), &[BodyFormat::Form])),
            headers: capture_headers(answered.headers),
            body: self.body,
            outcome: answered.outcome.to_owned(),
            status: answered.status,
            fault: self.fault.map(|f| f.to_string()),
        });
    }
}

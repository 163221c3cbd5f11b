//! The per-token audit line (`token issued`), written straight into the
//! log's batch buffer when the log is JSON.
//!
//! Through tracing, the line costs an event's dispatch, the fmt layer's
//! buffer and a `dyn Write` call for every piece of every field: about
//! 7,000 instructions of the token's 300,000 (BENCHMARKS.md, issue 18).
//! Its shape is fixed, so it is written here in one pass into a reused
//! buffer instead, exactly as `json()` writes it (a test compares them).
//! Whether it is logged at all is still tracing's decision: the same
//! filter (`RUST_LOG`) decides, and inside a recorded span (debug
//! logging), or with pretty logs, the line goes through tracing as before.

use std::cell::RefCell;
use std::fmt;
use std::sync::OnceLock;
use std::time::SystemTime;

use super::audit_line::{write_json_str, write_timestamp, AUDIT_TARGET};
use super::batch::BatchWriter;

/// The identifiers an issued token is logged by; never the token.
#[derive(Debug, Clone, Copy)]
pub struct IssuedLine<'a> {
    pub client_id: &'a str,
    pub scope: &'a str,
    pub jti: &'a str,
    pub kid: &'a str,
    pub exp: i64,
    /// The peer's address as text, or `unknown`.
    pub address: &'a str,
}

/// The JSON log's writer, once the JSON subscriber is installed over it.
static DIRECT: OnceLock<BatchWriter> = OnceLock::new();

thread_local! {
    /// One line on its way to the batch buffer.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// From now on, `token issued` lines go straight to `writer`: called once
/// the JSON subscriber over the same writer is installed.
pub(super) fn write_directly_to(writer: BatchWriter) {
    let _ = DIRECT.set(writer);
}

/// Logs an issued token under [`AUDIT_TARGET`] at info level, if the log
/// filter lets such events through.
pub fn token_issued(line: &IssuedLine<'_>) {
    if let Some(out) = DIRECT.get() {
        if !tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO) {
            return;
        }
        if tracing::Span::current().is_none() {
            // A log line's time is the wall clock's, as the timer of
            // tracing-subscriber reads it: nothing is decided by it.
            #[allow(clippy::disallowed_methods)]
            let now = SystemTime::now();
            LINE.with(|buf| {
                let mut buf = buf.borrow_mut();
                buf.clear();
                // Writing to a String fails only on a clock before 1970.
                if write_line(&mut buf, now, line).is_ok() {
                    out.write_line(buf.as_bytes());
                }
            });
            return;
        }
    }
    tracing::info!(
        target: AUDIT_TARGET,
        client_id = line.client_id,
        scope = line.scope,
        jti = line.jti,
        kid = line.kid,
        exp = line.exp,
        address = line.address,
        "token issued"
    );
}

/// The line as `json()` writes the event above, newline included.
fn write_line(out: &mut String, now: SystemTime, line: &IssuedLine<'_>) -> fmt::Result {
    out.push_str("{\"timestamp\":\"");
    write_timestamp(out, now)?;
    out.push_str("\",\"level\":\"INFO\",\"fields\":{\"message\":\"token issued\",\"client_id\":");
    write_json_str(out, line.client_id)?;
    out.push_str(",\"scope\":");
    write_json_str(out, line.scope)?;
    out.push_str(",\"jti\":");
    write_json_str(out, line.jti)?;
    out.push_str(",\"kid\":");
    write_json_str(out, line.kid)?;
    out.push_str(",\"exp\":");
    out.push_str(itoa::Buffer::new().format(line.exp));
    out.push_str(",\"address\":");
    write_json_str(out, line.address)?;
    out.push_str("},\"target\":\"");
    out.push_str(AUDIT_TARGET);
    out.push_str("\"}\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::test_lines::Lines;

    fn parse(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn the_direct_line_is_the_line_json_writes() {
        for line in [
            IssuedLine {
                client_id: "wallet-1",
                scope: "transaction annulment",
                jti: "aw7bC-ZXfAMoCIfwARnqaw",
                kid: "knFx0M75pQZ0vy6ue40sIwA3pc5awThJQcb1Ga5Sz30",
                exp: 1_796_136_891,
                address: "2001:db8::1",
            },
            // Escapes, an empty scope and a negative number.
            IssuedLine {
                client_id: "a\"b\\c\n\u{1}é",
                scope: "",
                jti: "j",
                kid: "k",
                exp: -5,
                address: "unknown",
            },
        ] {
            let out = Lines::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(out.clone())
                .json()
                .finish();
            // DIRECT is unset in tests: this is the tracing event.
            tracing::subscriber::with_default(subscriber, || token_issued(&line));
            let json = out.text();
            let mut direct = String::new();
            // json() stamps the wall clock's time; so must the line it is
            // compared with.
            #[allow(clippy::disallowed_methods)]
            let now = SystemTime::now();
            write_line(&mut direct, now, &line).unwrap();
            assert!(direct.ends_with("\"}\n") && direct.matches('\n').count() == 1);
            let (mut d, mut j) = (parse(&direct), parse(&json));
            let (dt, jt) = (d["timestamp"].take(), j["timestamp"].take());
            assert_eq!(d, j);
            let (dt, jt) = (dt.as_str().unwrap(), jt.as_str().unwrap());
            assert_eq!(dt.len(), jt.len(), "{dt} / {jt}");
            assert_eq!(&dt[..17], &jt[..17]);
            // Byte for byte but the time: the key order is json()'s too.
            assert_eq!(
                direct.split_once("Z\",").unwrap().1,
                json.split_once("Z\",").unwrap().1
            );
        }
    }

    #[test]
    fn microseconds_are_zero_padded() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::new(1_796_136_891, 7_000);
        let mut out = String::new();
        write_timestamp(&mut out, at).unwrap();
        assert_eq!(out, "2026-12-01T14:54:51.000007Z");
    }
}

//! The JSON line of the per-token audit record, written in one pass.
//!
//! tracing-subscriber's `json()` formatter serialises every event through
//! serde_json's map serializer, `tracing_serde`'s visitor and a fresh
//! formatting of the timestamp. For the one event logged per token that
//! was about 3.5 µs of the request's CPU (BENCHMARKS.md, issue 18). Events
//! of the `ficha::audit` target outside any span are written here instead,
//! in exactly the shape `json()` gives them:
//!
//! `{"timestamp":"…","level":"INFO","fields":{"message":"token issued",…},"target":"ficha::audit"}`
//!
//! Every other event, and any event inside a span, goes to `json()` as
//! before. A test compares the two formatters' lines field by field. The
//! `token issued` line itself skips even this when the log is JSON
//! (`issued.rs`); it comes here with debug logging on or before the
//! subscriber is installed.

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The target of every audit event (issued, revoked); its span-less
/// events take the fast path.
pub const AUDIT_TARGET: &str = "ficha::audit";

/// `inner` (the `json()` formatter) for every event but the audit lines.
pub struct AuditLineFirst<F> {
    pub inner: F,
}

impl<S, N, F> FormatEvent<S, N> for AuditLineFirst<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if meta.target() != AUDIT_TARGET || ctx.lookup_current().is_some() {
            return self.inner.format_event(ctx, writer, event);
        }
        writer.write_str("{\"timestamp\":\"")?;
        // A log line's time is the wall clock's, read as tracing-subscriber's
        // own timer reads it: nothing is decided by it, so not oauth::Clock.
        #[allow(clippy::disallowed_methods)]
        let now = SystemTime::now();
        write_timestamp(&mut writer, now)?;
        write!(writer, "\",\"level\":\"{}\",\"fields\":{{", meta.level())?;
        let mut fields = JsonFields {
            out: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str("},\"target\":")?;
        write_json_str(&mut writer, meta.target())?;
        writer.write_str("}\n")
    }
}

/// The event's fields as JSON members, in the order they were recorded.
struct JsonFields<'w, 'a> {
    out: &'w mut Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !self.first {
                self.out.write_str(",")?;
            }
            self.first = false;
            write_json_str(self.out, field.name())?;
            self.out.write_str(":")?;
            value(self.out)
        })();
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |w| write_json_str(w, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json's own rendering of a float (and `null` for NaN).
        let text = serde_json::to_string(&value).unwrap_or_else(|_| "null".to_owned());
        self.member(field, |w| w.write_str(&text));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` and the message arrive here; json() writes their text
        // as a JSON string. Formatted once into a reused buffer.
        SCRATCH.with(|scratch| {
            let mut text = scratch.borrow_mut();
            text.clear();
            if write!(text, "{value:?}").is_err() {
                self.result = Err(fmt::Error);
                return;
            }
            self.member(field, |w| write_json_str(w, &text));
        });
    }
}

thread_local! {
    /// A `%value`'s text on its way into the line.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
    /// The last second's `YYYY-MM-DDTHH:MM:SS`, reused within that second.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `s` as a JSON string, escaped as serde_json escapes it.
pub(super) fn write_json_str<W: Write + ?Sized>(w: &mut W, s: &str) -> fmt::Result {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        // `write_str`, not `write_char`: through the writer's `dyn Write`
        // a char is encoded and written on its own, about 40 instructions.
        w.write_str("\"")?;
        w.write_str(s)?;
        return w.write_str("\"");
    }
    let escaped = serde_json::to_string(s).map_err(|_| fmt::Error)?;
    w.write_str(&escaped)
}

/// The time as tracing-subscriber's default timer writes it
/// (`2026-12-01T14:34:51.749618Z`); the part down to the second is
/// formatted once a second per thread.
pub(super) fn write_timestamp<W: Write + ?Sized>(w: &mut W, now: SystemTime) -> fmt::Result {
    let since = now.duration_since(UNIX_EPOCH).map_err(|_| fmt::Error)?;
    let secs = since.as_secs();
    SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != secs {
            let t = time::OffsetDateTime::from_unix_timestamp(
                i64::try_from(secs).map_err(|_| fmt::Error)?,
            )
            .map_err(|_| fmt::Error)?;
            second.1.clear();
            write!(
                second.1,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )?;
            second.0 = secs;
        }
        w.write_str(&second.1)?;
        // The microseconds by hand: `{:06}` runs core::fmt's padding for
        // six digits, on every line.
        let mut digits = *b".000000Z";
        let mut micros = since.subsec_micros();
        for d in digits[1..7].iter_mut().rev() {
            *d = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        w.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::test_lines::Lines;

    /// The events ficha logs under the audit target, and odd values.
    fn emit() {
        let address: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        tracing::info!(
            target: "ficha::audit",
            client_id = "wallet-1",
            scope = "transaction annulment",
            jti = "aw7bC-ZXfAMoCIfwARnqaw",
            kid = "knFx0M75pQZ0vy6ue40sIwA3pc5awThJQcb1Ga5Sz30",
            exp = 1_796_136_891_i64,
            address = %address,
            "token issued"
        );
        tracing::info!(target: "ficha::audit", client_id = %"a\"b\\c\n\u{1}é", jti = %"j", "token revoked");
        tracing::warn!(target: "ficha::audit", ok = true, n = 7_u64, ratio = 0.25_f64, "odd");
    }

    fn lines(fast: bool) -> Vec<serde_json::Value> {
        let out = Lines::default();
        let builder = tracing_subscriber::fmt().with_writer(out.clone()).json();
        if fast {
            let subscriber = builder
                .event_format(AuditLineFirst {
                    inner: tracing_subscriber::fmt::format().json(),
                })
                .finish();
            tracing::subscriber::with_default(subscriber, emit);
        } else {
            tracing::subscriber::with_default(builder.finish(), emit);
        }
        let text = out.text();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn audit_lines_are_the_lines_json_writes() {
        let (mut fast, mut json) = (lines(true), lines(false));
        assert_eq!(fast.len(), 3);
        for (f, j) in fast.iter_mut().zip(json.iter_mut()) {
            let (ft, jt) = (f["timestamp"].take(), j["timestamp"].take());
            // Same shape: 2026-12-01T14:34:51.749618Z.
            for t in [&ft, &jt] {
                let t = t.as_str().unwrap();
                assert_eq!(t.len(), 27, "{t}");
                assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t}");
            }
            assert_eq!(&ft.as_str().unwrap()[..17], &jt.as_str().unwrap()[..17]);
        }
        assert_eq!(fast, json);
    }

    #[test]
    fn the_key_order_is_json_s() {
        let out = Lines::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .json()
            .event_format(AuditLineFirst {
                inner: tracing_subscriber::fmt::format().json(),
            })
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "ficha::audit", client_id = "c", exp = 5_i64, "token issued");
        });
        let text = out.text();
        let rest = text.split_once("Z\",").unwrap().1;
        assert_eq!(
            rest,
            "\"level\":\"INFO\",\"fields\":{\"message\":\"token issued\",\"client_id\":\"c\",\"exp\":5},\"target\":\"ficha::audit\"}\n"
        );
    }
}

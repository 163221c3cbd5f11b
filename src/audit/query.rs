//! What `ficha audit list` asks of the trail, and its time arguments.

use anyhow::Context as _;

/// Filters of `ficha audit list`; every one optional.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this client's tokens.
    pub client_id: Option<String>,
    /// Only tokens issued at or after this unix time.
    pub since: Option<i64>,
    /// Only tokens issued before this unix time.
    pub until: Option<i64>,
    /// Only the token with this `jti`.
    pub jti: Option<String>,
    /// At most this many rows.
    pub limit: u32,
}

/// Reads a time as RFC 3339 (`2026-12-01T10:00:00Z`) or unix seconds.
pub fn parse_time(flag: &str, s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| {
            format!(
                "{flag} takes an RFC 3339 time (2026-12-01T10:00:00Z) or unix seconds, not {s:?}"
            )
        })?;
    Ok(t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_unix_seconds() {
        assert_eq!(parse_time("--since", "1700000000").unwrap(), 1_700_000_000);
        assert_eq!(
            parse_time("--since", "2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000
        );
        assert_eq!(
            parse_time("--since", "2023-11-14T17:13:20-05:00").unwrap(),
            1_700_000_000
        );
        let err = parse_time("--until", "yesterday").unwrap_err().to_string();
        assert!(err.contains("--until takes an RFC 3339 time"), "{err}");
    }
}

//! How commands print: one JSON value per result with `--json`, readable
//! text otherwise. Secrets appear only where a command shows one once.

use serde_json::json;

use crate::audit::AuditRecord;
use crate::keys::KeyRecord;
use crate::oauth::Client;
use crate::sandbox::FaultRecord;

/// Prints `value` as one JSON line with `--json`, otherwise `text`.
pub fn print(json_out: bool, value: serde_json::Value, text: &str) {
    if json_out {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

/// A client as `client show --json` prints it: live secrets only.
pub fn client_json(c: &Client, now: i64) -> serde_json::Value {
    let secrets: Vec<_> = c
        .secrets
        .iter()
        .filter(|s| s.is_live(now))
        .map(|s| {
            json!({
                "id": s.id,
                "age_seconds": now - s.created_at,
                "created_at": s.created_at,
                "expires_at": s.expires_at,
                "last_used_at": s.last_used_at,
            })
        })
        .collect();
    json!({
        "client_id": c.id.as_ref(),
        "name": c.name,
        "scopes": c.scopes.iter().collect::<Vec<_>>(),
        "default_scopes": c.default_scopes.as_ref().map(|d| d.iter().collect::<Vec<_>>()),
        "ttl": c.ttl,
        "audience": c.audience,
        "allowed_audiences": c.allowed_audiences.iter().collect::<Vec<_>>(),
        "grants": c.grants.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "auth_methods": c.auth_methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "dialects": c.dialects.iter().collect::<Vec<_>>(),
        "alg": c.alg.as_str(),
        "introspect": c.can_introspect,
        "enabled": c.enabled,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "secrets": secrets,
    })
}

/// A client as `client show` prints it.
pub fn client_text(c: &Client, now: i64) -> String {
    let mut out = format!(
        "client_id: {}\nenabled: {}\nscopes: {}\ngrants: {}\nauth_methods: {}\ndialects: {}\nalg: {}\nttl: {}\naudience: {}\nallowed_audiences: {}\nintrospect: {}",
        c.id,
        c.enabled,
        c.scopes,
        c.grants.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(","),
        c.auth_methods.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","),
        c.dialects.iter().map(String::as_str).collect::<Vec<_>>().join(","),
        c.alg,
        c.ttl.map_or("default".to_owned(), |t| t.to_string()),
        c.audience.as_deref().unwrap_or("default"),
        c.allowed_audiences.iter().map(String::as_str).collect::<Vec<_>>().join(" "),
        c.can_introspect,
    );
    for s in c.secrets.iter().filter(|s| s.is_live(now)) {
        out.push_str(&format!(
            "\nsecret #{}: age {}s, last used {}, {}",
            s.id,
            now - s.created_at,
            s.last_used_at
                .map_or("never".to_owned(), |t| format!("{}s ago", now - t)),
            s.expires_at.map_or("no expiry".to_owned(), |e| format!(
                "expires in {}s",
                e - now
            )),
        ));
    }
    out
}

/// A key record as `key list --json` prints it.
pub fn key_json(k: &KeyRecord) -> serde_json::Value {
    json!({
        "kid": k.kid,
        "alg": k.alg.as_str(),
        "state": k.state.as_str(),
        "created_at": k.created_at,
        "activated_at": k.activated_at,
        "retiring_at": k.retiring_at,
        "storage": if k.sealed_private_key.is_some() { "database" } else { "file" },
    })
}

/// A fault as the `fault set` flags that would set it.
pub fn fault_text(f: &FaultRecord) -> String {
    let mut out = format!("{} {}", f.client_id, f.kind);
    if let Some(n) = f.times {
        out.push_str(&format!(" --times {n}"));
    }
    if let Some(r) = f.ratio {
        out.push_str(&format!(" --ratio {r}"));
    }
    if let Some(s) = f.seed {
        out.push_str(&format!(" --seed {s}"));
    }
    out
}

/// One audit row as a tab-separated line, times in RFC 3339.
pub fn audit_text(r: &AuditRecord) -> String {
    let when = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .ok()
            .and_then(|d| {
                d.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| t.to_string())
    };
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        when(r.iat),
        r.jti,
        r.client_id,
        r.subject,
        r.scope,
        r.dialect,
        r.kid,
        when(r.exp),
        r.address.as_deref().unwrap_or("-")
    )
}

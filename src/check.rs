//! `ficha config check`: what `serve` would refuse, found without changing
//! anything. The configuration comes from the same [`Config::load`] as
//! serve's; the database is opened without creating or migrating it (the
//! SQLite file read-only, PostgreSQL in read-only transactions), and the
//! keys are read, never generated. Each finding is one line; the effective
//! configuration follows with secrets masked.

use serde::Serialize;
use serde_json::json;

use crate::config::Config;
use crate::keys::{Alg, KeyRing, KeyState, KeyVault};
use crate::oauth::Mode;
use crate::seeds;
use crate::store::{self, SchemaStatus, Store};

/// What a masked secret prints as.
const MASK: &str = "****";

/// One finding: a check and whether `serve` would be content with it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// `ok` or `error`.
    pub status: &'static str,
    /// What was checked.
    pub check: &'static str,
    /// What was found.
    pub message: String,
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn ok(&mut self, check: &'static str, message: impl Into<String>) {
        self.push("ok", check, message.into());
    }

    fn error(&mut self, check: &'static str, message: impl Into<String>) {
        self.push("error", check, message.into());
    }

    fn push(&mut self, status: &'static str, check: &'static str, message: String) {
        self.0.push(Finding {
            status,
            check,
            message,
        });
    }
}

/// What `config check` found: one line per finding, and the effective
/// configuration with secrets masked (`None` when it could not be loaded).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Each check's finding, in the order they ran.
    pub findings: Vec<Finding>,
    /// The configuration `serve` would run with, secrets masked.
    pub config: Option<serde_json::Value>,
}

impl Report {
    /// How many findings would stop `serve`.
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.status == "error").count()
    }
}

/// Runs every check on `config`, or reports why it could not be loaded.
/// Printing is the command line's (`cli/check.rs`).
pub async fn run(config: anyhow::Result<Config>, now: i64) -> Report {
    let mut findings = Findings::default();
    let effective = match &config {
        Ok(config) => {
            findings.ok("configuration", "flags, FICHA_* variables and file read");
            check(config, now, &mut findings).await;
            Some(effective(config))
        }
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            findings.error("configuration", chain.join(": "));
            None
        }
    };
    Report {
        findings: findings.0,
        config: effective,
    }
}

async fn check(config: &Config, now: i64, out: &mut Findings) {
    tls(config, now, out);
    let production = config.mode == Mode::Production;
    let url = match config.database() {
        Ok(url) => url,
        Err(e) => return out.error("database", e.to_string()),
    };
    let shown = mask_url(url);
    let (db, schema) = match store::open_unmigrated(url, &config.pool).await {
        Ok(opened) => opened,
        Err(e) if !production && url.starts_with("sqlite:") && !sqlite_exists(url) => {
            drop(e);
            out.ok(
                "database",
                format!("{shown} does not exist yet: serve --sandbox creates it"),
            );
            dialects(config, out);
            return;
        }
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            out.error("database", format!("{shown}: {}", chain.join(": ")));
            dialects(config, out);
            return;
        }
    };
    out.ok("database", format!("connected to {shown}"));
    let migrated = schema_finding(&schema, out);
    if migrated {
        keys(config, &*db, out).await;
        if production {
            match seeds::present(&*db, now).await {
                Ok(found) if found.is_empty() => {
                    out.ok("seeds", "no sandbox seed credential in this database")
                }
                Ok(found) => out.error(
                    "seeds",
                    format!(
                        "production refuses to start: the sandbox seed credential(s) {} exist in this database; delete them or rotate their secrets",
                        found.join(", ")
                    ),
                ),
                Err(e) => out.error("seeds", format!("Failed to look for seed credentials: {e:#}")),
            }
        }
    }
    dialects(config, out);
}

fn sqlite_exists(url: &str) -> bool {
    use std::str::FromStr as _;
    sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map(|o| o.get_filename().exists())
        .unwrap_or(false)
}

/// Reports the schema; returns whether its tables can be read at all.
fn schema_finding(s: &SchemaStatus, out: &mut Findings) -> bool {
    let latest = s.applied.last().copied().unwrap_or(0);
    if s.is_current() {
        out.ok(
            "schema",
            format!(
                "at version {latest}, this binary's ({} migrations)",
                s.expected
            ),
        );
    } else if !s.unknown.is_empty() {
        out.error(
            "schema",
            format!(
                "the database has migrations this binary does not know ({:?}): a newer ficha migrated it",
                s.unknown
            ),
        );
    } else if !s.modified.is_empty() {
        out.error(
            "schema",
            format!(
                "applied migrations {:?} differ from this binary's",
                s.modified
            ),
        );
    } else {
        out.error(
            "schema",
            format!(
                "at version {latest}; this binary expects {}: pending migration(s) {:?}; run `ficha migrate` (serve applies them at start)",
                s.expected, s.pending
            ),
        );
    }
    !s.applied.is_empty()
}

async fn keys(config: &Config, db: &dyn Store, out: &mut Findings) {
    let vault = KeyVault::new(&config.key_dir, config.kek.clone());
    let records = match db.list_keys().await {
        Ok(r) => r,
        Err(e) => return out.error("keys", format!("Failed to list the keys: {e:#}")),
    };
    if let Err(e) = KeyRing::load_public(db).await {
        out.error("keys", format!("a published key is unreadable: {e:#}"));
    }
    let sealed = records.iter().any(|r| r.sealed_private_key.is_some());
    match (sealed, config.kek.is_some()) {
        (true, true) => out.ok("kek", "set; keys are sealed in the database"),
        (true, false) => out.error(
            "kek",
            "keys are sealed in the database but no key-encryption key is set (FICHA_KEK or --kek-file)",
        ),
        (false, true) => out.ok("kek", "set"),
        (false, false) => {}
    }
    let mut es256 = false;
    for rec in records.iter().filter(|r| r.state == KeyState::Active) {
        match vault.signing_key(rec) {
            Ok(_) => {
                es256 |= rec.alg == Alg::Es256;
                out.ok("keys", format!("active {} key {} loads", rec.alg, rec.kid));
            }
            Err(e) => out.error(
                "keys",
                format!("active {} key {} cannot be loaded: {e:#}", rec.alg, rec.kid),
            ),
        }
    }
    if !es256 {
        if config.mode == Mode::Sandbox {
            out.ok(
                "keys",
                "no active ES256 key yet: serve --sandbox generates one",
            );
        } else {
            out.error(
                "keys",
                format!(
                    "no active ES256 signing key: create one with `ficha key generate` (keys live in {})",
                    vault.dir().display()
                ),
            );
        }
    }
}

/// The TLS pair, loaded as `serve` loads it.
fn tls(config: &Config, now: i64, out: &mut Findings) {
    match &config.tls {
        None => out.ok(
            "tls",
            "off: plain HTTP (terminate TLS at a proxy, or set tls_cert and tls_key)",
        ),
        Some(paths) => match crate::http::tls::load_pair(paths, now) {
            Ok(pair) => out.ok(
                "tls",
                format!(
                    "{} ({}) with its key {}, expires {}",
                    paths.cert.display(),
                    pair.subject,
                    paths.key.display(),
                    pair.expires()
                ),
            ),
            Err(e) => {
                let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
                out.error("tls", chain.join(": "));
            }
        },
    }
}

fn dialects(config: &Config, out: &mut Findings) {
    let mounted: Vec<String> = config
        .dialect_paths
        .mounted()
        .map(|(kind, path)| format!("{kind} {path}"))
        .collect();
    out.ok("dialects", mounted.join(", "));
}

/// The configuration as `serve` would run with it, secrets masked.
fn effective(c: &Config) -> serde_json::Value {
    let dialects: serde_json::Map<String, serde_json::Value> = c
        .dialect_paths
        .mounted()
        .map(|(kind, path)| (kind.to_string(), json!(path)))
        .collect();
    json!({
        "mode": match c.mode { Mode::Sandbox => "sandbox", Mode::Production => "production" },
        "database_url": c.database_url.as_deref().map(mask_url),
        "bind": c.bind.to_string(),
        "issuer": c.issuer_at(c.bind),
        "audience": c.audience.clone(),
        "key_dir": c.key_dir.display().to_string(),
        "kek": c.kek.as_ref().map(|_| MASK),
        "log_format": if c.log_json { "json" } else { "pretty" },
        "pool_max_connections": c.pool.max_connections,
        "pool_acquire_timeout_ms": u64::try_from(c.pool.acquire_timeout.as_millis()).unwrap_or(u64::MAX),
        "sync_interval_ms": u64::try_from(c.sync_interval.as_millis()).unwrap_or(u64::MAX),
        "client_cache_size": c.auth.client_cache_size,
        "throttle_client_per_minute": c.auth.throttle_client_per_minute,
        "throttle_address_per_minute": c.auth.throttle_address_per_minute,
        "hash_concurrency": c.auth.hash_concurrency,
        "hash_queue_size": c.auth.hash_queue_size,
        "trusted_proxies": c.trusted_proxies.to_string(),
        "refresh_token_ttl_secs": c.refresh_ttl,
        "refresh_token_max_lifetime_secs": c.refresh_max_lifetime,
        "sandbox_capture_size": c.capture_capacity,
        "audit_retention_days": c.audit_retention_days,
        "http_header_timeout_secs": c.http.header_timeout.as_secs(),
        "http_idle_timeout_secs": c.http.idle_timeout.as_secs(),
        "max_connections": c.http.max_connections,
        "dialect_paths": dialects,
        "tls_cert": c.tls.as_ref().map(|t| t.cert.display().to_string()),
        "tls_key": c.tls.as_ref().map(|t| t.key.display().to_string()),
    })
}

/// A database URL with its password (in the authority or as a
/// `password=` parameter) replaced by `****`.
pub fn mask_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:{MASK}@{host}"),
                    None => format!("{userinfo}@{host}"),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => base.to_owned(),
    };
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}={MASK}"),
                _ => p.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn passwords_in_database_urls_are_masked() {
        assert_eq!(
            mask_url("postgres://ficha:s3cret@db.example:5432/ficha?sslmode=require"),
            "postgres://ficha:****@db.example:5432/ficha?sslmode=require"
        );
        assert_eq!(
            mask_url("postgres://db/ficha?user=f&password=s3cret"),
            "postgres://db/ficha?user=f&password=****"
        );
        assert_eq!(mask_url("postgres://ficha@db/x"), "postgres://ficha@db/x");
        assert_eq!(mask_url("sqlite://data/ficha.db"), "sqlite://data/ficha.db");
        // A password holding '@' is masked whole.
        assert_eq!(mask_url("postgres://u:a@b@h/d"), "postgres://u:****@h/d");
    }
}

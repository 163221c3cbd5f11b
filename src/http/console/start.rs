//! The console's "start here" panel, as data for its script: each mounted
//! dialect's sandbox seed (SPEC §6, from `seeds`) with a copy-ready curl
//! command, the README's documented request for that provider at this
//! server's path. The page's script puts its own origin in place of
//! [`ORIGIN`], since only the browser knows the address it used.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Serialize;

use crate::http::dialect::{DialectKind, DialectPaths};
use crate::seeds::{Seed, SEEDS, USER_SEEDS};

/// Where a command's scheme, host and port go.
pub const ORIGIN: &str = "{origin}";

/// One dialect's seed and request.
#[derive(Debug, Serialize)]
pub struct StartDialect {
    pub dialect: &'static str,
    pub path: String,
    pub client_id: &'static str,
    /// `None` for a public client.
    pub secret: Option<&'static str>,
    /// The seeded resource owner, for the password grant.
    pub user: Option<(&'static str, &'static str)>,
    /// A curl command with [`ORIGIN`] for the server's origin.
    pub curl: String,
}

/// Every mounted dialect that has a seed, in the README's order.
pub fn dialects(paths: &DialectPaths) -> Vec<StartDialect> {
    DialectKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let path = paths.path(kind)?;
            let seed = SEEDS.iter().find(|s| s.dialect == kind.as_str())?;
            let user = USER_SEEDS
                .iter()
                .find(|u| u.dialect == kind.as_str())
                .map(|u| (u.username, u.password));
            Some(StartDialect {
                dialect: seed.dialect,
                path: path.to_owned(),
                client_id: seed.client_id,
                secret: (!seed.public).then_some(seed.secret),
                user,
                curl: curl(kind, &format!("{ORIGIN}{path}"), seed, user),
            })
        })
        .collect()
}

/// The provider's documented request (README, "Each provider's documented
/// request"), self-contained: credentials inline rather than in shell
/// variables.
fn curl(kind: DialectKind, url: &str, seed: &Seed, user: Option<(&str, &str)>) -> String {
    let (id, secret) = (seed.client_id, seed.secret);
    match kind {
        DialectKind::Payvalida => {
            let basic = B64.encode(format!("{id}:{secret}"));
            let scope = seed.scopes.split(' ').next_back().unwrap_or_default();
            format!(
                "curl -s {url} \\\n  -H 'Content-Type: application/x-www-form-urlencoded' \\\n  \
                 -H 'Authorization: Basic {basic}' \\\n  \
                 -d 'grant_type=client_credentials&client_id={id}&scope={scope}'"
            )
        }
        DialectKind::Nequi => format!(
            "curl -s -X POST '{url}?grant_type=client_credentials' \\\n  \
             -H \"Authorization: Basic $(printf {id}:{secret} | base64)\" \\\n  \
             -H 'Content-Type: application/x-www-form-urlencoded'"
        ),
        // Peinau documents Basic with the id and secret unencoded.
        DialectKind::Peinau => format!(
            "curl -s -X POST {url} \\\n  -H \"Content-Type:application/x-www-form-urlencoded\" \\\n  \
             -H \"Authorization: Basic {id}:{secret}\" \\\n  -d \"grant_type=client_credentials\""
        ),
        DialectKind::Payme => format!(
            "curl -s {url} \\\n  -H 'Content-Type: application/json' -H 'ALG-API-VERSION: 1709847567' \\\n  \
             -d '{{\"action\":\"authorize\",\"grant_type\":\"client_credentials\",\
             \"audience\":\"https://api.preprod.alignet.io/\",\
             \"client_id\":\"{id}\",\"client_secret\":\"{secret}\",\"scope\":\"{}\"}}'",
            seed.scopes
        ),
        DialectKind::Fegora => {
            let (username, password) = user.unwrap_or_default();
            format!(
                "curl -s -X POST {url} \\\n  \
                 -d 'grant_type=password&client_id={id}&username={username}&password={password}'"
            )
        }
    }
}

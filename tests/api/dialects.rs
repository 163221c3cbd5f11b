//! The provider dialects (SPEC §5, §6): each provider's documented request
//! verbatim against the sandbox seeds, each dialect's error shapes, its wire
//! format pinned by snapshot, and its tokens verified against the JWKS.

use base64::Engine as _;
use ficha::http::DialectPaths;
use ficha::oauth::Mode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{basic_header, jwt_parts, verify_with_jwks, Options, TestApp};

const NEQUI: &str = "/nequi/oauth2/token";
const PEINAU: &str = "/peinau/sso/oauth2/v2/token";
const PAYME: &str = "/payme/token";

const PEINAU_ID: &str = "641281901508761220281";
const PEINAU_SECRET: &str = "B8WKRXMiWHHrMCectt9Rg3ju4Y8GNheEa50gx6365sBV";

/// Pay-me's documented body (their "API de Seguridad"), with the SPEC §6
/// seed credentials.
fn payme_body() -> Value {
    json!({
        "action": "authorize",
        "grant_type": "client_credentials",
        "audience": "https://api.preprod.alignet.io/",
        "client_id": "your_client_id",
        "client_secret": "your_client_secret",
        "scope": "create:token post:charges get:charges delete:charges"
    })
}

/// Status, the headers a client cares about, and the JSON body.
async fn wire(resp: reqwest::Response) -> Value {
    let status = resp.status().as_u16();
    let mut headers = serde_json::Map::new();
    for name in [
        "content-type",
        "cache-control",
        "pragma",
        "www-authenticate",
        "retry-after",
        "allow",
    ] {
        if let Some(v) = resp.headers().get(name) {
            headers.insert(name.into(), v.to_str().unwrap().into());
        }
    }
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text}"));
    json!({"status": status, "headers": headers, "body": body})
}

fn keys_of(body: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

impl TestApp {
    async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    async fn post_nequi(&self, query: &str, auth: &str, body: &str) -> reqwest::Response {
        self.post_raw(
            &format!("{NEQUI}{query}"),
            &[
                ("Authorization", auth),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body.to_owned(),
        )
        .await
    }

    async fn post_peinau(&self, auth: &str, body: &str) -> reqwest::Response {
        self.post_raw(
            PEINAU,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", auth),
            ],
            body.to_owned(),
        )
        .await
    }

    async fn post_payme(&self, body: &Value) -> reqwest::Response {
        self.post_raw(
            PAYME,
            &[
                ("Content-Type", "application/json"),
                ("ALG-API-VERSION", "1709847567"),
            ],
            body.to_string(),
        )
        .await
    }
}

fn peinau_raw_basic() -> String {
    format!("Basic {PEINAU_ID}:{PEINAU_SECRET}")
}

fn nequi_basic() -> String {
    basic_header("nequi-sandbox", "nequi-sandbox-secret")
}

// --- Payválida (standard OAuth2) -----------------------------------------

#[tokio::test]
async fn payvalidas_wire_format_and_errors() {
    let app = TestApp::spawn().await;
    let ok = wire(
        app.post_token(
            Some(("payvalida", "client_secret")),
            &[("grant_type", "client_credentials"), ("scope", "TuScope")],
        )
        .await,
    )
    .await;
    insta::assert_json_snapshot!("payvalida_success", ok, {".body.access_token" => "[access_token]"});
    let wrong = wire(
        app.post_token(
            Some(("payvalida", "wrong")),
            &[("grant_type", "client_credentials")],
        )
        .await,
    )
    .await;
    insta::assert_json_snapshot!("payvalida_invalid_client", wrong);
    // An audience the client may not ask for (RFC 8707 §2).
    let aud = wire(
        app.post_token(
            Some(("payvalida", "client_secret")),
            &[
                ("grant_type", "client_credentials"),
                ("audience", "https://elsewhere.example"),
            ],
        )
        .await,
    )
    .await;
    insta::assert_json_snapshot!("payvalida_invalid_target", aud);
}

// --- Nequi ---------------------------------------------------------------

both_backends!(
    nequis_documented_request_works_verbatim,
    Options::default(),
    |app: TestApp| async move {
        // curl -X POST '.../oauth2/token?grant_type=client_credentials'
        //   -H 'Authorization: Basic ...' -H 'Content-Type: application/x-www-form-urlencoded'
        let resp = app
            .post_nequi("?grant_type=client_credentials", &nequi_basic(), "")
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            keys_of(&body),
            ["access_token", "expires_in", "token_type"],
            "{body}"
        );
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["token_type"], "Bearer");

        let token = body["access_token"].as_str().unwrap();
        let claims = verify_with_jwks(token, &app.get_jwks().await).unwrap();
        assert_eq!(claims["client_id"], "nequi-sandbox");
        assert_eq!(claims["scope"], "");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            3600
        );
        assert_eq!(jwt_parts(token).0["alg"], "ES256");
    }
);

#[tokio::test]
async fn nequi_reads_an_empty_a_brace_a_json_or_a_form_body() {
    let app = TestApp::spawn().await;
    let auth = nequi_basic();
    let cases: [(&str, &str, &str); 6] = [
        ("?grant_type=client_credentials", "application/json", "{}"),
        ("?grant_type=client_credentials", "text/plain", ""),
        (
            "",
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials",
        ),
        (
            "",
            "application/json",
            r#"{"grant_type":"client_credentials"}"#,
        ),
        (
            "?grant_type=client_credentials",
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials",
        ),
        (
            "?grant_type=client_credentials",
            "application/x-www-form-urlencoded",
            "{}",
        ),
    ];
    for (query, content_type, body) in cases {
        let resp = app
            .post_raw(
                &format!("{NEQUI}{query}"),
                &[("Authorization", &auth), ("Content-Type", content_type)],
                body.to_owned(),
            )
            .await;
        assert_eq!(resp.status(), 200, "{query} {content_type} {body:?}");
    }
}

#[tokio::test]
async fn nequis_wire_format_and_errors() {
    let app = TestApp::spawn().await;
    let ok = wire(
        app.post_nequi("?grant_type=client_credentials", &nequi_basic(), "")
            .await,
    )
    .await;
    insta::assert_json_snapshot!("nequi_success", ok, {".body.access_token" => "[access_token]"});

    let wrong = wire(
        app.post_nequi(
            "?grant_type=client_credentials",
            &basic_header("nequi-sandbox", "wrong"),
            "",
        )
        .await,
    )
    .await;
    insta::assert_json_snapshot!("nequi_invalid_client", wrong);

    let missing = wire(app.post_nequi("", &nequi_basic(), "").await).await;
    insta::assert_json_snapshot!("nequi_missing_grant_type", missing);

    let rows: [(&str, &str, &str, u16, &str); 5] = [
        (
            "?grant_type=client_credentials",
            "",
            "",
            401,
            "invalid_client",
        ),
        (
            "?grant_type=authorization_code",
            "nequi",
            "",
            400,
            "unsupported_grant_type",
        ),
        (
            "?grant_type=client_credentials",
            "nequi",
            "grant_type=password",
            400,
            "invalid_request",
        ),
        (
            "?grant_type=client_credentials",
            "nequi",
            "{\"a\":",
            400,
            "invalid_request",
        ),
        (
            "?grant_type=client_credentials",
            "Basic !!!",
            "",
            400,
            "invalid_request",
        ),
    ];
    for (query, auth, body, status, error) in rows {
        let auth = match auth {
            "nequi" => nequi_basic(),
            other => other.to_owned(),
        };
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if !auth.is_empty() {
            headers.push(("Authorization", auth.as_str()));
        }
        let resp = app
            .post_raw(&format!("{NEQUI}{query}"), &headers, body.to_owned())
            .await;
        let got = wire(resp).await;
        assert_eq!(got["status"], status, "{query} {body}: {got}");
        assert_eq!(got["body"]["error"], error, "{query} {body}: {got}");
        assert_eq!(got["headers"]["cache-control"], "no-store");
    }

    let get = wire(app.http.get(app.url(NEQUI)).send().await.unwrap()).await;
    assert_eq!(get["status"], 405);
    assert_eq!(get["headers"]["allow"], "POST");
    assert_eq!(get["body"]["error"], "invalid_request");
}

// --- Peinau --------------------------------------------------------------

both_backends!(
    peinaus_documented_request_works_verbatim,
    Options::default(),
    |app: TestApp| async move {
        // curl -v -X POST https://api.sandbox.connect.fif.tech/sso/oauth2/v2/token \
        //  -H "Content-Type:application/x-www-form-urlencoded" \
        //  -H "Authorization: Basic $CLIENT_ID:$CLIENT_SECRET" \
        //  -d "grant_type=client_credentials"
        let resp = app
            .post_peinau(&peinau_raw_basic(), "grant_type=client_credentials")
            .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            keys_of(&body),
            ["access_token", "expires_in", "scope", "token_type"],
            "{body}"
        );
        assert_eq!(body["scope"], "");
        assert_eq!(body["token_type"], "Bearer");

        let token = body["access_token"].as_str().unwrap();
        let (header, _) = jwt_parts(token);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "at+jwt");
        let claims = verify_with_jwks(token, &app.get_jwks().await).unwrap();
        assert_eq!(claims["client_id"], PEINAU_ID);
        // expires_in is the absolute expiry, as Peinau's is.
        assert_eq!(body["expires_in"], claims["exp"]);
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            1200
        );
        assert!(claims.get("enc_identifier").is_none());
    }
);

#[tokio::test]
async fn peinau_reads_base64_basic_and_the_brace_form_and_seals_the_identifier() {
    let app = TestApp::spawn().await;
    let b64 = basic_header(PEINAU_ID, PEINAU_SECRET);
    let raw = peinau_raw_basic();
    for (auth, content_type, body) in [
        (
            b64.as_str(),
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials",
        ),
        (
            raw.as_str(),
            "application/json",
            "{grant_type=client_credentials, identifier=123456789}",
        ),
        (
            b64.as_str(),
            "application/json",
            r#"{"grant_type":"client_credentials","identifier":"123456789"}"#,
        ),
        (
            b64.as_str(),
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials&identifier=123456789",
        ),
    ] {
        let resp = app
            .post_raw(
                PEINAU,
                &[("Authorization", auth), ("Content-Type", content_type)],
                body.to_owned(),
            )
            .await;
        let got = wire(resp).await;
        assert_eq!(got["status"], 200, "{body}: {got}");
        let token = got["body"]["access_token"].as_str().unwrap();
        let claims = verify_with_jwks(token, &app.get_jwks().await).unwrap();
        if body.contains("identifier") {
            let sealed = claims["enc_identifier"].as_str().unwrap();
            assert_eq!(sealed.split('.').count(), 5, "a compact JWE");

            // The operator opens it with the CLI.
            let out = app.cli(&["token", "verify", token]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(shown["identifier"], "123456789");
            assert_eq!(shown["client_id"], PEINAU_ID);
        }
    }
}

#[tokio::test]
async fn the_identifier_never_appears_in_clear_in_a_peinau_token() {
    let app = TestApp::spawn().await;
    let identifier = "987654321";
    let resp = app
        .post_raw(
            PEINAU,
            &[("Authorization", &peinau_raw_basic())],
            format!("{{grant_type=client_credentials, identifier={identifier}}}"),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(!text.contains(identifier), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let token = body["access_token"].as_str().unwrap();
    assert!(!token.contains(identifier));

    // Nor in any decoded part of the JWS: header, payload, or the sealed
    // claim's own parts.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for part in token.split('.') {
        let decoded = b64.decode(part).unwrap();
        let lossy = String::from_utf8_lossy(&decoded);
        assert!(!lossy.contains(identifier), "{lossy}");
    }
    let (header, payload) = jwt_parts(token);
    assert!(!header.to_string().contains(identifier));
    assert!(!payload.to_string().contains(identifier));
    let sealed = payload["enc_identifier"].as_str().unwrap();
    for part in sealed.split('.').filter(|p| !p.is_empty()) {
        let decoded = b64.decode(part).unwrap();
        assert!(!String::from_utf8_lossy(&decoded).contains(identifier));
    }

    // Two tokens for the same identifier carry different ciphertexts.
    let again: Value = app
        .post_raw(
            PEINAU,
            &[("Authorization", &peinau_raw_basic())],
            format!("{{grant_type=client_credentials, identifier={identifier}}}"),
        )
        .await
        .json()
        .await
        .unwrap();
    let (_, again) = jwt_parts(again["access_token"].as_str().unwrap());
    assert_ne!(again["enc_identifier"], payload["enc_identifier"]);
}

#[tokio::test]
async fn peinaus_wire_format_and_errors() {
    let app = TestApp::spawn().await;
    let ok = wire(
        app.post_peinau(&peinau_raw_basic(), "grant_type=client_credentials")
            .await,
    )
    .await;
    insta::assert_json_snapshot!("peinau_success", ok, {
        ".body.access_token" => "[access_token]",
        ".body.expires_in" => "[epoch seconds]",
    });

    let wrong = wire(
        app.post_peinau(
            &format!("Basic {PEINAU_ID}:wrong"),
            "grant_type=client_credentials",
        )
        .await,
    )
    .await;
    insta::assert_json_snapshot!("peinau_invalid_client", wrong);

    let malformed = wire(
        app.post_peinau(&peinau_raw_basic(), "{grant_type=client_credentials")
            .await,
    )
    .await;
    insta::assert_json_snapshot!("peinau_malformed_body", malformed);

    let rows: [(&str, &str, u16, &str); 4] = [
        ("", "grant_type=client_credentials", 401, "invalid_client"),
        ("raw", "", 400, "invalid_request"),
        (
            "raw",
            "{grant_type=client_credentials, grant_type=x}",
            400,
            "invalid_request",
        ),
        (
            "raw",
            "{grant_type=authorization_code}",
            400,
            "unsupported_grant_type",
        ),
    ];
    for (auth, body, status, error) in rows {
        let auth = if auth == "raw" {
            peinau_raw_basic()
        } else {
            auth.to_owned()
        };
        let mut headers = vec![];
        if !auth.is_empty() {
            headers.push(("Authorization", auth.as_str()));
        }
        let got = wire(app.post_raw(PEINAU, &headers, body.to_owned()).await).await;
        assert_eq!(got["status"], status, "{body}: {got}");
        assert_eq!(got["body"]["error"], error, "{body}: {got}");
    }
    let long = format!(
        "grant_type=client_credentials&identifier={}",
        "9".repeat(300)
    );
    let got = wire(app.post_peinau(&peinau_raw_basic(), &long).await).await;
    assert_eq!(got["status"], 400);

    let get = wire(app.http.get(app.url(PEINAU)).send().await.unwrap()).await;
    assert_eq!(get["status"], 405);
    assert_eq!(get["headers"]["allow"], "POST");
}

// --- Pay-me --------------------------------------------------------------

both_backends!(
    paymes_documented_request_works_verbatim,
    Options::default(),
    |app: TestApp| async move {
        let resp = app.post_payme(&payme_body()).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["action"], "authorize");
        assert_eq!(body["success"], true);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 1200);
        assert_eq!(
            body["scope"],
            "create:token delete:charges get:charges post:charges"
        );
        assert_eq!(
            body["authorization"]["meta"]["status"],
            json!({"code": "00", "message_ilgn": [{"locale": "es_PE", "value": "Access Token creado"}]})
        );
        let token = body["access_token"].as_str().unwrap();
        let claims = verify_with_jwks(token, &app.get_jwks().await).unwrap();
        assert_eq!(claims["aud"], "https://api.preprod.alignet.io/");
        assert_eq!(claims["client_id"], "your_client_id");
    }
);

#[tokio::test]
async fn payme_needs_no_alg_api_version_and_takes_any_audience_for_the_seed() {
    let app = TestApp::spawn().await;
    for audience in ["https://api.alignet.io", "https://api.dev.alignet.io"] {
        let mut body = payme_body();
        body["audience"] = audience.into();
        body["scope"] = "create:token post:charges".into();
        let resp = app
            .post_raw(
                PAYME,
                &[("Content-Type", "application/json")],
                body.to_string(),
            )
            .await;
        let got = wire(resp).await;
        assert_eq!(got["status"], 200, "{got}");
        let (_, claims) = jwt_parts(got["body"]["access_token"].as_str().unwrap());
        assert_eq!(claims["aud"], audience);
        assert_eq!(claims["scope"], "create:token post:charges");
    }
}

#[tokio::test]
async fn paymes_wire_format_and_errors() {
    let app = TestApp::spawn().await;
    let ok = wire(app.post_payme(&payme_body()).await).await;
    insta::assert_json_snapshot!("payme_success", ok, {".body.access_token" => "[access_token]"});

    let mut wrong = payme_body();
    wrong["client_secret"] = "wrong".into();
    let wrong = wire(app.post_payme(&wrong).await).await;
    insta::assert_json_snapshot!("payme_unauthorized", wrong);

    let mut no_create = payme_body();
    no_create["scope"] = "post:charges".into();
    let no_create = wire(app.post_payme(&no_create).await).await;
    insta::assert_json_snapshot!("payme_forbidden", no_create);

    let mut bad_action = payme_body();
    bad_action["action"] = "create.nonce".into();
    let bad_action = wire(app.post_payme(&bad_action).await).await;
    insta::assert_json_snapshot!("payme_bad_request", bad_action);

    // A client limited to one audience, and one without client_secret_post.
    let (limited, limited_secret) = app.create_client(&[
        "--scopes",
        "create:token post:charges",
        "--auth-methods",
        "client_secret_basic,client_secret_post",
        "--allowed-audiences",
        "https://api.alignet.io",
        "--dialects",
        "payme",
    ]);
    let (basic_only, basic_secret) =
        app.create_client(&["--scopes", "create:token", "--dialects", "payme"]);
    // A client not set up for Pay-me (the default binds to payvalida).
    let (standard, standard_secret) = app.create_client(&[
        "--scopes",
        "create:token",
        "--auth-methods",
        "client_secret_basic,client_secret_post",
    ]);

    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = payme_body();
        f(&mut b);
        b
    };
    let rows: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "scope not allowed",
            with(&|b: &mut Value| b["scope"] = "create:token refund:charges".into()),
            403,
            "invalid_scope",
            "03",
        ),
        (
            "audience not allowed",
            json!({"action": "authorize", "grant_type": "client_credentials",
                   "audience": "https://elsewhere.example", "client_id": limited,
                   "client_secret": limited_secret, "scope": "create:token"}),
            403,
            "invalid_target",
            "03",
        ),
        (
            "client not set up for the payme dialect",
            json!({"action": "authorize", "grant_type": "client_credentials",
                   "audience": "https://api.alignet.io", "client_id": standard,
                   "client_secret": standard_secret, "scope": "create:token"}),
            403,
            "unauthorized_client",
            "03",
        ),
        (
            "body secret not allowed",
            json!({"action": "authorize", "grant_type": "client_credentials",
                   "audience": "https://api.alignet.io", "client_id": basic_only,
                   "client_secret": basic_secret, "scope": "create:token"}),
            401,
            "invalid_client",
            "02",
        ),
        (
            "unknown client",
            with(&|b: &mut Value| b["client_id"] = "nobody".into()),
            401,
            "invalid_client",
            "02",
        ),
        (
            "no secret",
            with(&|b: &mut Value| {
                b.as_object_mut().unwrap().remove("client_secret");
            }),
            401,
            "invalid_client",
            "02",
        ),
        (
            "no action",
            with(&|b: &mut Value| {
                b.as_object_mut().unwrap().remove("action");
            }),
            400,
            "invalid_request",
            "01",
        ),
        (
            "no audience",
            with(&|b: &mut Value| {
                b.as_object_mut().unwrap().remove("audience");
            }),
            400,
            "invalid_request",
            "01",
        ),
        (
            "no scope",
            with(&|b: &mut Value| {
                b.as_object_mut().unwrap().remove("scope");
            }),
            403,
            "invalid_scope",
            "03",
        ),
        (
            "no grant_type",
            with(&|b: &mut Value| {
                b.as_object_mut().unwrap().remove("grant_type");
            }),
            400,
            "invalid_request",
            "01",
        ),
        (
            "unknown grant",
            with(&|b: &mut Value| b["grant_type"] = "authorization_code".into()),
            400,
            "unsupported_grant_type",
            "04",
        ),
        (
            "a number where a string goes",
            with(&|b: &mut Value| b["scope"] = json!(["create:token"])),
            400,
            "invalid_request",
            "01",
        ),
    ];
    for (name, body, status, error, code) in rows {
        let got = wire(app.post_payme(&body).await).await;
        assert_eq!(got["status"], status, "{name}: {got}");
        assert_eq!(got["body"]["success"], false, "{name}: {got}");
        assert_eq!(got["body"]["action"], "authorize", "{name}: {got}");
        assert_eq!(got["body"]["error"], error, "{name}: {got}");
        assert_eq!(
            got["body"]["authorization"]["meta"]["status"]["code"], code,
            "{name}: {got}"
        );
    }
    // The limited client gets its one audience.
    let ok = json!({"action": "authorize", "grant_type": "client_credentials",
                    "audience": "https://api.alignet.io", "client_id": limited,
                    "client_secret": limited_secret, "scope": "create:token"});
    assert_eq!(app.post_payme(&ok).await.status(), 200);

    for raw in [
        "",
        "not json",
        "[]",
        r#"{"action":"authorize","action":"authorize"}"#,
    ] {
        let got = wire(
            app.post_raw(PAYME, &[("Content-Type", "application/json")], raw)
                .await,
        )
        .await;
        assert_eq!(got["status"], 400, "{raw}: {got}");
        assert_eq!(got["body"]["success"], false);
    }

    let get = wire(app.http.get(app.url(PAYME)).send().await.unwrap()).await;
    assert_eq!(get["status"], 405);
    assert_eq!(get["headers"]["allow"], "POST");
    assert_eq!(get["body"]["success"], false);
}

// --- Every dialect -------------------------------------------------------

#[tokio::test]
async fn each_dialects_token_verifies_against_the_jwks() {
    let app = TestApp::spawn().await;
    let jwks = app.get_jwks().await;
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert!(algs.contains(&"ES256") && algs.contains(&"RS256"), "{jwks}");

    let payvalida = app
        .token_for("payvalida", "client_secret", Some("transaction"))
        .await;
    let nequi: Value = app
        .post_nequi("?grant_type=client_credentials", &nequi_basic(), "")
        .await
        .json()
        .await
        .unwrap();
    let peinau: Value = app
        .post_peinau(&peinau_raw_basic(), "grant_type=client_credentials")
        .await
        .json()
        .await
        .unwrap();
    let payme: Value = app.post_payme(&payme_body()).await.json().await.unwrap();
    for (dialect, body, alg) in [
        ("payvalida", payvalida, "ES256"),
        ("nequi", nequi, "ES256"),
        ("peinau", peinau, "RS256"),
        ("payme", payme, "ES256"),
    ] {
        let token = body["access_token"].as_str().unwrap();
        let claims = verify_with_jwks(token, &jwks).unwrap_or_else(|e| panic!("{dialect}: {e}"));
        assert_eq!(jwt_parts(token).0["alg"], alg, "{dialect}");
        assert_eq!(claims["iss"], app.base, "{dialect}");
        // And the operator's own verification agrees.
        let out = app.cli(&["token", "verify", token]);
        assert!(out.status.success(), "{dialect}");
    }

    let metrics = app.metrics_text().await;
    for dialect in ["payvalida", "nequi", "peinau", "payme"] {
        assert!(
            metrics.contains(&format!(
                r#"ficha_tokens_issued_total{{dialect="{dialect}"}} 1"#
            )),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn bad_input_in_any_dialect_gets_that_dialects_error_never_a_500() {
    let app = TestApp::spawn().await;
    let bodies: [&[u8]; 9] = [
        b"",
        b"{",
        b"}",
        b"{}",
        b"{=}",
        b"\xff\xfe\x00",
        b"grant_type=%ZZ",
        b"[1,2,3]",
        b"{\"grant_type\": {\"nested\": true}}",
    ];
    let auths = [
        None,
        Some("Basic"),
        Some("Basic :"),
        Some("Basic \u{00e9}:x"),
        Some("Bearer x"),
    ];
    for path in ["/oauth2/token", NEQUI, PEINAU, PAYME] {
        for body in bodies {
            for auth in auths {
                for content_type in ["application/json", "application/x-www-form-urlencoded"] {
                    let mut req = app
                        .http
                        .post(app.url(&format!("{path}?grant_type=client_credentials")))
                        .header("Content-Type", content_type)
                        .body(body.to_vec());
                    if let Some(a) = auth {
                        req = req.header("Authorization", a.as_bytes());
                    }
                    let got = wire(req.send().await.unwrap()).await;
                    let status = got["status"].as_u64().unwrap();
                    assert!(
                        (400..500).contains(&status),
                        "{path} {auth:?} {:?}: {got}",
                        String::from_utf8_lossy(body)
                    );
                    if path == PAYME {
                        assert_eq!(got["body"]["success"], false);
                    } else {
                        assert!(got["body"]["error"].is_string(), "{got}");
                    }
                }
            }
        }
    }
    // Oversized bodies are 413 in every dialect's shape.
    for path in ["/oauth2/token", NEQUI, PEINAU, PAYME] {
        let got = wire(app.post_raw(path, &[], vec![b'a'; 17 * 1024]).await).await;
        assert_eq!(got["status"], 413, "{path}: {got}");
    }
}

#[tokio::test]
async fn dialects_can_be_moved_or_turned_off() {
    let opts = Options {
        dialect_paths: DialectPaths::with_overrides([
            ("nequi", "/oauth/nequi/token"),
            ("payme", "off"),
        ])
        .unwrap(),
        ..Options::default()
    };
    let app = TestApp::spawn_on(crate::helpers::Backend::from_env(), opts)
        .await
        .unwrap();
    let moved = app
        .post_raw(
            "/oauth/nequi/token?grant_type=client_credentials",
            &[("Authorization", &nequi_basic())],
            "",
        )
        .await;
    assert_eq!(moved.status(), 200);
    let old = app
        .post_nequi("?grant_type=client_credentials", &nequi_basic(), "")
        .await;
    assert_eq!(old.status(), 404);
    assert_eq!(app.post_payme(&payme_body()).await.status(), 404);
    let peinau = app
        .post_peinau(&peinau_raw_basic(), "grant_type=client_credentials")
        .await;
    assert_eq!(peinau.status(), 200);
}

#[test]
fn the_dialect_path_flag_is_read_into_the_config() {
    use clap::Parser as _;
    let cli = ficha::cli::Cli::try_parse_from([
        "ficha",
        "serve",
        "--sandbox",
        "--dialect-path",
        "nequi=/n/token",
        "--dialect-path",
        "peinau=off",
    ])
    .unwrap();
    let config = cli.config().unwrap();
    assert_eq!(
        config.dialect_paths.path(ficha::http::DialectKind::Nequi),
        Some("/n/token")
    );
    assert_eq!(
        config.dialect_paths.path(ficha::http::DialectKind::Peinau),
        None
    );
    let bad = ficha::cli::Cli::try_parse_from(["ficha", "serve", "--dialect-path", "nequi"])
        .unwrap()
        .config();
    assert!(bad.is_err());
}

#[tokio::test]
async fn production_allows_a_dialects_documented_lifetime_and_no_more() {
    let app = TestApp::spawn_on(
        crate::helpers::Backend::from_env(),
        Options {
            mode: Mode::Production,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    // No seed exists in production.
    let resp = app
        .post_nequi("?grant_type=client_credentials", &nequi_basic(), "")
        .await;
    assert_eq!(resp.status(), 401);

    // SPEC §5: a client set up for Payválida only (the default) cannot pick
    // Nequi's 3600 s tokens: unauthorized_client, in Nequi's shape.
    let (id, secret) = app.create_client(&["--scopes", "transaction"]);
    let shown = app.cli_json(&["client", "show", &id]);
    assert_eq!(shown["dialects"], serde_json::json!(["payvalida"]));
    let resp = app
        .post_nequi(
            "?grant_type=client_credentials",
            &basic_header(&id, &secret),
            "",
        )
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    let t = app.token_for(&id, &secret, None).await;
    assert_eq!(t["expires_in"], 1200);

    // Bound to both, it gets each dialect's documented lifetime.
    app.cli_json(&["client", "update", &id, "--dialects", "payvalida,nequi"]);
    assert_eq!(
        app.cli_json(&["client", "show", &id])["dialects"],
        serde_json::json!(["nequi", "payvalida"])
    );
    let auth = basic_header(&id, &secret);
    let ok = crate::helpers::eventually(std::time::Duration::from_secs(5), || async {
        app.post_nequi("?grant_type=client_credentials", &auth, "")
            .await
            .status()
            == 200
    })
    .await;
    assert!(ok, "the client update did not reach the server");
    let t: Value = app
        .post_nequi("?grant_type=client_credentials", &auth, "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(t["expires_in"], 3600);

    let (long, long_secret) = app.create_client(&[
        "--scopes",
        "transaction",
        "--ttl",
        "7200",
        "--dialects",
        "nequi",
    ]);
    let resp = app
        .post_nequi(
            "?grant_type=client_credentials",
            &basic_header(&long, &long_secret),
            "",
        )
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    app.cleanup().await;
}

#[tokio::test]
async fn with_a_kek_the_claims_key_lives_in_the_database_for_every_instance() {
    use ficha::keys::{ClaimsKeys, Kek, KeyVault};
    for backend in [
        crate::helpers::Backend::from_env(),
        crate::helpers::Backend::Postgres,
    ] {
        let dir = tempfile::TempDir::new().unwrap();
        let Some(url) = crate::helpers::fresh_database(backend, &dir).await else {
            continue;
        };
        let store = ficha::store::connect(&url, &ficha::store::PoolSettings::default())
            .await
            .unwrap();
        let kek = Kek::generate().unwrap();
        let one = KeyVault::new(dir.path().join("one"), Some(kek.clone()));
        let two = KeyVault::new(dir.path().join("two"), Some(kek.clone()));

        let (first, created) = ClaimsKeys::ensure(&*store, &one, 100).await.unwrap();
        assert!(created);
        let (second, created) = ClaimsKeys::ensure(&*store, &two, 200).await.unwrap();
        assert!(!created, "the second instance finds the first one's key");
        let sealed = first.seal("123456789").unwrap();
        assert_eq!(second.open(&sealed).unwrap(), "123456789");
        assert!(!dir.path().join("one/claims.key").exists());

        // Another key-encryption key cannot open it.
        let other = KeyVault::new(dir.path().join("three"), Some(Kek::generate().unwrap()));
        assert!(ClaimsKeys::load(&*store, &other).await.is_err());
        drop(store);
        crate::helpers::drop_database(&url).await;
    }
}

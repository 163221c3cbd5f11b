//! `POST /oauth2/introspect` (RFC 7662): an active token with all its
//! claims, exactly `{"active": false}` for anything else, and the caller's
//! authentication.

use std::time::Duration;

use base64::Engine as _;
use ficha::oauth::ManualClock;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{jwt_parts, system_now, Options, TestApp};

/// `token` with a character inside its signature changed.
pub fn flip_signature(token: &str) -> String {
    let at = token.len() - 10;
    let swap = if &token[at..=at] == "A" { "B" } else { "A" };
    format!("{}{swap}{}", &token[..at], &token[at + 1..])
}

/// `token` with its header replaced by `header`.
pub fn with_header(token: &str, header: serde_json::Value) -> String {
    let (_, rest) = token.split_once('.').unwrap();
    let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string());
    format!("{h}.{rest}")
}

/// Introspects until the server answers 200 (it answers 503 for the
/// moment a test's manual clock jumps past the denylist's freshness).
async fn introspect_settled(app: &TestApp, caller: (&str, &str), token: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = app.introspect(caller, token).await;
        if status == 200 {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "introspection never answered 200: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_backends!(
    introspection_tells_an_active_token_from_everything_else,
    Options {
        clock: Some(ManualClock::new(system_now())),
        ..Options::default()
    },
    |app: TestApp| async move {
        let (rs, rs_secret) = app.create_client(&["--scopes", "transaction", "--introspect"]);
        let caller = (rs.as_str(), rs_secret.as_str());
        let t = app
            .token_for("payvalida", "client_secret", Some("transaction"))
            .await;
        let token = t["access_token"].as_str().unwrap().to_owned();
        let (header, claims) = jwt_parts(&token);

        let (status, body) = app.introspect(caller, &token).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({
                "active": true,
                "scope": "transaction",
                "client_id": "payvalida",
                "sub": "payvalida",
                "aud": claims["aud"],
                "iss": app.base,
                "exp": claims["exp"],
                "iat": claims["iat"],
                "jti": claims["jti"],
                "token_type": "Bearer",
            })
        );

        let revoked = app
            .token_for("payvalida", "client_secret", Some("confirmation"))
            .await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            app.revoke(("payvalida", "client_secret"), &revoked).await,
            200
        );

        let inactive: Vec<(&str, String)> = vec![
            ("bad signature", flip_signature(&token)),
            (
                "unknown kid",
                with_header(
                    &token,
                    json!({"alg": "ES256", "typ": "at+jwt", "kid": "no-such-kid"}),
                ),
            ),
            (
                "not an access token",
                with_header(
                    &token,
                    json!({"alg": "ES256", "typ": "JWT", "kid": header["kid"]}),
                ),
            ),
            ("garbage", "garbage".into()),
            ("empty", String::new()),
            ("revoked", revoked),
        ];
        for (name, bad) in &inactive {
            let resp = app
                .post_form("/oauth2/introspect", Some(caller), &[("token", bad)])
                .await;
            assert_eq!(resp.status(), 200, "{name}");
            assert_eq!(resp.headers()["cache-control"], "no-store", "{name}");
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body, json!({"active": false}), "{name}");
        }

        // Live one second before exp; expired the second exp passes.
        let clock = app.clock.clone().unwrap();
        clock.advance(1199);
        assert_eq!(
            introspect_settled(&app, caller, &token).await["active"],
            true
        );
        clock.advance(1);
        assert_eq!(
            introspect_settled(&app, caller, &token).await,
            json!({"active": false})
        );
    }
);

#[tokio::test]
async fn only_clients_allowed_to_introspect_may_call_it() {
    let app = TestApp::spawn().await;
    let token = app.token_for("payvalida", "client_secret", None).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (rs, rs_secret) = app.create_client(&["--scopes", "transaction", "--introspect"]);

    // payvalida exists and authenticates, but may not introspect.
    for (caller, name) in [
        (Some(("payvalida", "client_secret")), "not allowed"),
        (Some((rs.as_str(), "wrong")), "wrong secret"),
        (Some(("nobody", "x")), "unknown client"),
        (None, "no credentials"),
    ] {
        let resp = app
            .post_form("/oauth2/introspect", caller, &[("token", &token)])
            .await;
        assert_eq!(resp.status(), 401, "{name}");
        if caller.is_some() {
            assert_eq!(
                resp.headers()["www-authenticate"],
                r#"Basic realm="ficha""#,
                "{name}"
            );
        }
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{name}");
        assert!(body.get("active").is_none(), "{name}");
    }

    // RFC 7662 §2.1: `token` is required; the form rules of the token
    // endpoint apply.
    let resp = app
        .post_form("/oauth2/introspect", Some((&rs, &rs_secret)), &[])
        .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let resp = app
        .http
        .post(app.url("/oauth2/introspect"))
        .basic_auth(&rs, Some(&rs_secret))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = app
        .http
        .get(app.url("/oauth2/introspect"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");

    // client_secret_post works for a client that allows it.
    let (post, post_secret) = app.create_client(&[
        "--scopes",
        "transaction",
        "--introspect",
        "--auth-methods",
        "client_secret_basic,client_secret_post",
    ]);
    let resp = app
        .post_form(
            "/oauth2/introspect",
            None,
            &[
                ("client_id", &post),
                ("client_secret", &post_secret),
                ("token", &token),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["active"],
        true
    );
    app.cleanup().await;
}

#[tokio::test]
async fn introspection_failures_are_throttled_like_the_token_endpoint() {
    let app = TestApp::spawn_on(
        crate::helpers::Backend::from_env(),
        Options {
            throttle_client_per_minute: 3,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let (rs, _) = app.create_client(&["--scopes", "transaction", "--introspect"]);
    let mut statuses = Vec::new();
    for i in 0..5 {
        let guess = format!("guess-{i}");
        let resp = app
            .post_form("/oauth2/introspect", Some((&rs, &guess)), &[("token", "x")])
            .await;
        if resp.status() == 429 {
            assert!(resp.headers().contains_key("retry-after"));
        }
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    app.cleanup().await;
}

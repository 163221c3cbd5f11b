//! The token endpoint (SPEC §3): the documented Payválida request, the
//! token format, client authentication, scopes and every error row.

use std::time::Duration;

use crate::both_backends;
use crate::helpers::{basic_header, eventually, jwt_parts, verify_with_jwks, Options, TestApp};

both_backends!(
    payvalidas_documented_request_works_verbatim,
    Options::default(),
    |app: TestApp| async move {
        let resp = app
            .http
            .post(app.url("/oauth2/token"))
            .header("Accept", "application/json")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Authorization", "Basic cGF5dmFsaWRhOmNsaWVudF9zZWNyZXQ=")
            .body("grant_type=client_credentials&client_id=payvalida&scope=TuScope")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert_eq!(resp.headers()["pragma"], "no-cache");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 1200);
        assert_eq!(body["scope"], "TuScope");

        let token = body["access_token"].as_str().unwrap();
        let (header, claims) = jwt_parts(token);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["typ"], "at+jwt");
        let jwks = app.get_jwks().await;
        assert!(jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == header["kid"] && k["alg"] == "ES256"));
        let verified = verify_with_jwks(token, &jwks).unwrap();
        assert_eq!(verified, claims);
        assert_eq!(claims["iss"], app.base);
        assert_eq!(claims["sub"], "payvalida");
        assert_eq!(claims["client_id"], "payvalida");
        assert_eq!(claims["scope"], "TuScope");
        assert!(claims["aud"].is_string());
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            1200
        );
        assert!(claims["jti"].as_str().unwrap().len() >= 16);
    }
);

#[tokio::test]
async fn each_token_has_a_unique_jti() {
    let app = TestApp::spawn().await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let t = app
            .token_for("payvalida", "client_secret", Some("transaction"))
            .await;
        let (_, claims) = jwt_parts(t["access_token"].as_str().unwrap());
        assert!(seen.insert(claims["jti"].as_str().unwrap().to_owned()));
    }
}

#[tokio::test]
async fn one_token_per_operation_and_omitted_scope_grants_the_defaults() {
    let app = TestApp::spawn().await;
    for op in ["transaction", "confirmation", "annulment"] {
        let t = app.token_for("payvalida", "client_secret", Some(op)).await;
        assert_eq!(t["scope"], op);
    }
    let t = app.token_for("payvalida", "client_secret", None).await;
    assert_eq!(t["scope"], "TuScope annulment confirmation transaction");
    let (id, secret) = app.create_client(&[
        "--scopes",
        "transaction confirmation",
        "--default-scopes",
        "transaction",
    ]);
    let t = app.token_for(&id, &secret, None).await;
    assert_eq!(t["scope"], "transaction");
    let t = app
        .token_for(&id, &secret, Some("transaction confirmation"))
        .await;
    assert_eq!(t["scope"], "confirmation transaction");
}

/// Every row of the SPEC §3 error table: status, error code, headers.
#[tokio::test]
async fn every_error_row_has_its_status_code_and_headers() {
    let app = TestApp::spawn().await;
    let (post_id, post_secret) = app.create_client(&[
        "--scopes",
        "transaction",
        "--auth-methods",
        "client_secret_basic,client_secret_post",
    ]);
    let (pw_only, pw_secret) =
        app.create_client(&["--scopes", "transaction", "--grants", "password"]);
    let good = basic_header("payvalida", "client_secret");
    let form = "application/x-www-form-urlencoded";

    struct Row {
        name: &'static str,
        method: &'static str,
        content_type: Option<&'static str>,
        auth: Option<String>,
        body: String,
        status: u16,
        error: &'static str,
    }
    let row = |name, auth: Option<String>, body: &str, status, error| Row {
        name,
        method: "POST",
        content_type: Some(form),
        auth,
        body: body.to_owned(),
        status,
        error,
    };
    let rows = vec![
        row(
            "missing grant_type",
            Some(good.clone()),
            "scope=transaction",
            400,
            "invalid_request",
        ),
        row(
            "duplicated parameter",
            Some(good.clone()),
            "grant_type=client_credentials&scope=transaction&scope=annulment",
            400,
            "invalid_request",
        ),
        Row {
            content_type: Some("application/json"),
            ..row(
                "wrong content type",
                Some(good.clone()),
                r#"{"grant_type":"client_credentials"}"#,
                400,
                "invalid_request",
            )
        },
        Row {
            content_type: None,
            ..row(
                "no content type",
                Some(good.clone()),
                "grant_type=client_credentials",
                400,
                "invalid_request",
            )
        },
        row(
            "malformed Basic",
            Some("Basic %%%".into()),
            "grant_type=client_credentials",
            400,
            "invalid_request",
        ),
        row(
            "Basic without colon",
            Some(format!("Basic {}", base64_std("payvalida"))),
            "grant_type=client_credentials",
            400,
            "invalid_request",
        ),
        row(
            "body id differs from Basic id",
            Some(good.clone()),
            "grant_type=client_credentials&client_id=someone",
            400,
            "invalid_request",
        ),
        row(
            "two auth methods",
            Some(good.clone()),
            "grant_type=client_credentials&client_secret=client_secret",
            400,
            "invalid_request",
        ),
        row(
            "unknown client",
            Some(basic_header("nobody", "client_secret")),
            "grant_type=client_credentials",
            401,
            "invalid_client",
        ),
        row(
            "wrong secret",
            Some(basic_header("payvalida", "wrong")),
            "grant_type=client_credentials",
            401,
            "invalid_client",
        ),
        row(
            "client_secret_post not allowed",
            None,
            "grant_type=client_credentials&client_id=payvalida&client_secret=client_secret",
            401,
            "invalid_client",
        ),
        row(
            "no credentials",
            None,
            "grant_type=client_credentials",
            401,
            "invalid_client",
        ),
        row(
            "grant the client may not use",
            Some(basic_header(&pw_only, &pw_secret)),
            "grant_type=client_credentials",
            400,
            "unauthorized_client",
        ),
        row(
            "grant the server does not know",
            Some(good.clone()),
            "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer",
            400,
            "unsupported_grant_type",
        ),
        row(
            "scope not allowed",
            Some(good.clone()),
            "grant_type=client_credentials&scope=refund",
            400,
            "invalid_scope",
        ),
        row(
            "malformed scope",
            Some(good.clone()),
            "grant_type=client_credentials&scope=a%22b",
            400,
            "invalid_scope",
        ),
        Row {
            method: "GET",
            ..row("GET", Some(good.clone()), "", 405, "invalid_request")
        },
        Row {
            method: "PUT",
            ..row(
                "PUT",
                Some(good.clone()),
                "grant_type=client_credentials",
                405,
                "invalid_request",
            )
        },
        row(
            "body over 16 KiB",
            Some(good.clone()),
            &format!(
                "grant_type=client_credentials&pad={}",
                "a".repeat(17 * 1024)
            ),
            413,
            "invalid_request",
        ),
    ];

    for r in rows {
        let mut req = app
            .http
            .request(r.method.parse().unwrap(), app.url("/oauth2/token"))
            .body(r.body.clone());
        if let Some(ct) = r.content_type {
            req = req.header("Content-Type", ct);
        }
        if let Some(a) = &r.auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), r.status, "{}", r.name);
        let h = resp.headers().clone();
        assert_eq!(h["cache-control"], "no-store", "{}", r.name);
        assert_eq!(h["content-type"], "application/json", "{}", r.name);
        if r.status == 401 {
            assert_eq!(
                h["www-authenticate"], r#"Basic realm="ficha""#,
                "{}",
                r.name
            );
        }
        if r.status == 405 {
            assert_eq!(h["allow"], "POST", "{}", r.name);
        }
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], r.error, "{}: {body}", r.name);
        assert!(body["error_description"].is_string(), "{}", r.name);
    }

    // client_secret_post works for the client that allows it.
    let resp = app
        .post_token(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &post_id),
                ("client_secret", &post_secret),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
}

fn base64_std(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn basic_credentials_are_read_both_form_encoded_and_plain() {
    let app = TestApp::spawn().await;
    // An id with ':' '+' '%' and a space, and a secret with '+' and '%'.
    let id = "shop:1+a%b c";
    let secret = "s+cr%t";
    app.create_client(&["--id", id, "--secret", secret, "--scopes", "transaction"]);
    // RFC 6749 §2.3.1: form-urlencode both, then base64.
    let encoded = basic_header("shop%3A1%2Ba%25b+c", "s%2Bcr%25t");
    let resp = app
        .http
        .post(app.url("/oauth2/token"))
        .header("Authorization", encoded)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], id);

    // The plain reading that most clients send (no ':' in the id here).
    let id2 = "plain+id%x";
    app.create_client(&["--id", id2, "--secret", "p+w%d", "--scopes", "transaction"]);
    app.token_for(id2, "p+w%d", None).await;
}

#[tokio::test]
async fn unknown_client_and_wrong_secret_are_indistinguishable_in_production() {
    let opts = Options {
        mode: ficha::oauth::Mode::Production,
        ..Options::default()
    };
    let app = TestApp::spawn_on(crate::helpers::Backend::from_env(), opts)
        .await
        .unwrap();
    let (id, _) = app.create_client(&["--scopes", "transaction"]);
    let mut bodies = Vec::new();
    let mut times = Vec::new();
    for (who, secret) in [(id.as_str(), "wrong"), ("nobody-at-all", "wrong")] {
        let started = std::time::Instant::now();
        let resp = app
            .post_token(Some((who, secret)), &[("grant_type", "client_credentials")])
            .await;
        times.push(started.elapsed());
        assert_eq!(resp.status(), 401);
        let mut headers: Vec<_> = resp
            .headers()
            .iter()
            .filter(|(k, _)| *k != "date")
            .map(|(k, v)| format!("{k}: {v:?}"))
            .collect();
        headers.sort();
        bodies.push((headers, resp.text().await.unwrap()));
    }
    assert_eq!(bodies[0], bodies[1]);
    assert!(!bodies[0].1.contains("unknown"));
    // Both paths compute one argon2id hash: neither is an order of magnitude faster.
    let (a, b) = (times[0].as_secs_f64(), times[1].as_secs_f64());
    assert!(a / b < 10.0 && b / a < 10.0, "{times:?}");
    app.cleanup().await;
}

both_backends!(
    a_disabled_client_is_refused_and_an_enabled_one_comes_back,
    Options::default(),
    |app: TestApp| async move {
        let (id, secret) = app.create_client(&["--scopes", "transaction"]);
        app.token_for(&id, &secret, None).await;
        assert!(app.cli(&["client", "disable", &id]).status.success());
        let refused = eventually(Duration::from_secs(5), || async {
            app.post_token(
                Some((&id, &secret)),
                &[("grant_type", "client_credentials")],
            )
            .await
            .status()
                == 401
        })
        .await;
        assert!(refused, "a disabled client kept getting tokens");
        assert!(app.cli(&["client", "enable", &id]).status.success());
        let back = eventually(Duration::from_secs(5), || async {
            app.post_token(
                Some((&id, &secret)),
                &[("grant_type", "client_credentials")],
            )
            .await
            .status()
                == 200
        })
        .await;
        assert!(back);
    }
);

both_backends!(
    during_a_secret_rotation_grace_both_secrets_work_and_after_it_only_the_new,
    Options {
        clock: Some(ficha::oauth::ManualClock::new(system_now())),
        ..Options::default()
    },
    |app: TestApp| async move {
        let (id, old) = app.create_client(&["--scopes", "transaction"]);
        app.token_for(&id, &old, None).await;
        let v = app.cli_json(&["client", "rotate-secret", &id, "--grace", "60"]);
        let new = v["client_secret"].as_str().unwrap().to_owned();
        assert_ne!(new, old);
        assert!(
            eventually(Duration::from_secs(5), || async {
                app.post_token(Some((&id, &new)), &[("grant_type", "client_credentials")])
                    .await
                    .status()
                    == 200
            })
            .await
        );
        app.token_for(&id, &old, None).await;
        // The server's clock passes the grace period.
        app.clock.as_ref().unwrap().advance(120);
        assert!(
            eventually(Duration::from_secs(5), || async {
                app.post_token(Some((&id, &old)), &[("grant_type", "client_credentials")])
                    .await
                    .status()
                    == 401
            })
            .await
        );
        app.token_for(&id, &new, None).await;
    }
);

fn system_now() -> i64 {
    use ficha::oauth::Clock as _;
    ficha::oauth::SystemClock.now()
}

both_backends!(
    a_cached_secret_stops_working_the_moment_its_client_changes,
    Options::default(),
    |app: TestApp| async move {
        let (id, secret) = app.create_client(&["--scopes", "transaction confirmation"]);
        // Warm the verified-credential cache.
        app.token_for(&id, &secret, Some("confirmation")).await;
        app.token_for(&id, &secret, Some("confirmation")).await;
        // A wrong secret never hits the cache, even right after a good one.
        let resp = app
            .post_token(
                Some((&id, "not-the-secret")),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(resp.status(), 401);
        let resp = app
            .post_token(
                Some((&id, &format!("{secret}x"))),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(resp.status(), 401);
        // A scope change reaches the cached client.
        assert!(app
            .cli(&["client", "update", &id, "--scopes", "transaction"])
            .status
            .success());
        assert!(
            eventually(Duration::from_secs(5), || async {
                app.post_token(
                    Some((&id, &secret)),
                    &[
                        ("grant_type", "client_credentials"),
                        ("scope", "confirmation"),
                    ],
                )
                .await
                .status()
                    == 400
            })
            .await
        );
        // Rotation without grace kills the cached old secret.
        let v = app.cli_json(&["client", "rotate-secret", &id]);
        let new = v["client_secret"].as_str().unwrap().to_owned();
        assert!(
            eventually(Duration::from_secs(5), || async {
                app.post_token(
                    Some((&id, &secret)),
                    &[("grant_type", "client_credentials")],
                )
                .await
                .status()
                    == 401
            })
            .await
        );
        app.token_for(&id, &new, None).await;
        // Deletion too.
        assert!(app.cli(&["client", "delete", &id]).status.success());
        assert!(
            eventually(Duration::from_secs(5), || async {
                app.post_token(Some((&id, &new)), &[("grant_type", "client_credentials")])
                    .await
                    .status()
                    == 401
            })
            .await
        );
    }
);

#[tokio::test]
async fn repeated_failures_are_throttled_with_retry_after_before_hashing() {
    let opts = Options {
        throttle_client_per_minute: 3,
        ..Options::default()
    };
    let app = TestApp::spawn_on(crate::helpers::Backend::from_env(), opts)
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for i in 0..6 {
        // Distinct guesses: a repeated one is refused without hashing and
        // without being counted.
        let guess = format!("wrong-{i}");
        let resp = app
            .post_token(
                Some(("payvalida", &guess)),
                &[("grant_type", "client_credentials")],
            )
            .await;
        if resp.status() == 429 {
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1);
        }
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(&statuses[..3], &[401, 401, 401]);
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(app.metric("ficha_hash_verifications_total").await, 3);
    app.cleanup().await;
}

#[tokio::test]
async fn a_sandbox_client_lifetime_sets_expires_in() {
    let app = TestApp::spawn().await;
    let (id, secret) = app.create_client(&["--scopes", "transaction", "--ttl", "60"]);
    let t = app.token_for(&id, &secret, None).await;
    assert_eq!(t["expires_in"], 60);
    let (_, c) = jwt_parts(t["access_token"].as_str().unwrap());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 60);
}

#[tokio::test]
async fn discovery_health_and_metrics_answer() {
    let app = TestApp::spawn().await;
    let meta: serde_json::Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], app.base);
    assert_eq!(meta["token_endpoint"], format!("{}/oauth2/token", app.base));
    assert_eq!(
        meta["jwks_uri"],
        format!("{}/.well-known/jwks.json", app.base)
    );

    let jwks = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    let cc = jwks.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cc.contains("max-age=300"), "{cc}");

    assert_eq!(
        app.http
            .get(app.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.http
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    app.token_for("payvalida", "client_secret", None).await;
    app.post_token(
        Some(("payvalida", "bad")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains(r#"ficha_tokens_issued_total{dialect="payvalida"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"ficha_token_failures_total{dialect="payvalida",error="invalid_client"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("ficha_token_request_duration_seconds_bucket"));
}

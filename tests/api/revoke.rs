//! `POST /oauth2/revoke` (RFC 7009): 200 for any token, who may revoke
//! what, and a revocation reaching every instance on the same database.

use std::time::Duration;

use ficha::startup::Application;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{eventually, Options, TestApp};

/// A second server on `app`'s database and key directory, with the same
/// issuer, as a load balancer's second instance would be.
struct Sibling {
    base: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Sibling {
    async fn start(app: &TestApp) -> Sibling {
        let mut config =
            crate::helpers::config(&app.db_url, app.key_dir.clone(), &Options::default());
        config.issuer = Some(app.base.clone());
        let application = Application::build(config).await.unwrap();
        let base = format!("http://127.0.0.1:{}", application.port());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async move {
            let _ = rx.await;
        }));
        Sibling {
            base,
            http: reqwest::Client::new(),
            stop: Some(tx),
            server: Some(server),
        }
    }

    async fn introspect(&self, caller: (&str, &str), token: &str) -> serde_json::Value {
        self.http
            .post(format!("{}/oauth2/introspect", self.base))
            .basic_auth(caller.0, Some(caller.1))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn auth_verify(&self, token: &str) -> u16 {
        self.http
            .get(format!("{}/auth/verify?scope=transaction", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn revoke(&self, caller: (&str, &str), token: &str) -> u16 {
        self.http
            .post(format!("{}/oauth2/revoke", self.base))
            .basic_auth(caller.0, Some(caller.1))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
    }
}

async fn token(app: &TestApp, scope: &str) -> String {
    app.token_for("payvalida", "client_secret", Some(scope))
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

const PAYVALIDA: (&str, &str) = ("payvalida", "client_secret");

both_backends!(
    a_revocation_reaches_another_instance_within_seconds,
    Options::default(),
    |app: TestApp| async move {
        let (rs, rs_secret) = app.create_client(&["--scopes", "transaction", "--introspect"]);
        let caller = (rs.as_str(), rs_secret.as_str());
        let other = Sibling::start(&app).await;
        let first = token(&app, "transaction").await;
        let second = token(&app, "transaction").await;
        // Both instances accept the other's tokens.
        assert_eq!(other.introspect(caller, &first).await["active"], true);
        assert_eq!(other.auth_verify(&first).await, 200);

        // Revoked on the first instance: refused there at once, and on the
        // second within 5 seconds (SPEC §4), learnt from the change log.
        assert_eq!(app.revoke(PAYVALIDA, &first).await, 200);
        assert_eq!(
            app.introspect(caller, &first).await.1,
            json!({"active": false})
        );
        let started = std::time::Instant::now();
        let propagated = eventually(Duration::from_secs(5), || async {
            other.introspect(caller, &first).await == json!({"active": false})
        })
        .await;
        assert!(
            propagated,
            "the second instance still accepts a revoked token"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(other.auth_verify(&first).await, 401);

        // And the other way round.
        assert_eq!(other.introspect(caller, &second).await["active"], true);
        assert_eq!(other.revoke(PAYVALIDA, &second).await, 200);
        assert!(
            eventually(Duration::from_secs(5), || async {
                app.auth_verify("transaction", Some(&second)).await.status() == 401
            })
            .await
        );

        // A new instance loads the denylist at start-up.
        let late = Sibling::start(&app).await;
        assert_eq!(
            late.introspect(caller, &first).await,
            json!({"active": false})
        );
        assert_eq!(late.auth_verify(&second).await, 401);
        late.stop().await;
        other.stop().await;
    }
);

#[tokio::test]
async fn any_token_gets_200_and_only_its_client_or_an_introspector_may_revoke_it() {
    let app = TestApp::spawn().await;
    let (rs, rs_secret) = app.create_client(&["--scopes", "transaction", "--introspect"]);
    let introspector = (rs.as_str(), rs_secret.as_str());
    let (stranger, stranger_secret) = app.create_client(&["--scopes", "transaction"]);

    // RFC 7009 §2.2: unknown and invalid tokens are not an error.
    let valid = token(&app, "transaction").await;
    for junk in [
        "garbage",
        "",
        "a.b.c",
        &crate::introspect::flip_signature(&valid),
    ] {
        let resp = app
            .post_form("/oauth2/revoke", Some(PAYVALIDA), &[("token", junk)])
            .await;
        assert_eq!(resp.status(), 200, "{junk:?}");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert!(resp.text().await.unwrap().is_empty());
    }
    assert_eq!(app.introspect(introspector, &valid).await.1["active"], true);

    // Another client may not revoke payvalida's token.
    let resp = app
        .post_form(
            "/oauth2/revoke",
            Some((&stranger, &stranger_secret)),
            &[("token", &valid)],
        )
        .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    assert_eq!(app.introspect(introspector, &valid).await.1["active"], true);

    // The caller must authenticate, and name the token.
    let resp = app
        .post_form(
            "/oauth2/revoke",
            Some(("payvalida", "wrong")),
            &[("token", &valid)],
        )
        .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let resp = app.post_form("/oauth2/revoke", Some(PAYVALIDA), &[]).await;
    assert_eq!(resp.status(), 400);
    let resp = app
        .http
        .get(app.url("/oauth2/revoke"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);

    // The token's own client may revoke it, twice.
    assert_eq!(app.revoke(PAYVALIDA, &valid).await, 200);
    assert_eq!(app.revoke(PAYVALIDA, &valid).await, 200);
    assert_eq!(
        app.introspect(introspector, &valid).await.1,
        json!({"active": false})
    );

    // An introspecting client (the wallet's resource server) may revoke any.
    let other = token(&app, "annulment").await;
    assert_eq!(app.revoke(introspector, &other).await, 200);
    assert_eq!(
        app.introspect(introspector, &other).await.1,
        json!({"active": false})
    );

    // The denylist is in the database: the CLI sees it too.
    let out = app.cli(&["token", "verify", &valid]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("revoked"));
    app.cleanup().await;
}

#[tokio::test]
async fn the_metadata_names_the_introspection_and_revocation_endpoints() {
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
    assert_eq!(
        meta["introspection_endpoint"],
        format!("{}/oauth2/introspect", app.base)
    );
    assert_eq!(
        meta["revocation_endpoint"],
        format!("{}/oauth2/revoke", app.base)
    );
    assert_eq!(
        meta["revocation_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    app.cleanup().await;
}

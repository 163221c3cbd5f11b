//! The password and refresh_token grants on the standard endpoint:
//! off by default, single-use rotating refresh tokens, reuse detection
//! that revokes the family, expiry, and users or clients disabled.

use std::time::Duration;

use crate::both_backends;
use crate::helpers::{jwt_parts, Options, TestApp};

fn setup(app: &TestApp) {
    let v = app.cli_json(&[
        "client",
        "create",
        "--id",
        "app",
        "--scopes",
        "",
        "--grants",
        "password,refresh_token",
        "--auth-methods",
        "none",
    ]);
    assert!(v["client_secret"].is_null());
    app.cli_json(&["user", "create", "30111222", "--password", "{contrasenia}"]);
}

async fn password(app: &TestApp, user: &str, pw: &str) -> reqwest::Response {
    app.post_token(
        None,
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("username", user),
            ("password", pw),
        ],
    )
    .await
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_token(
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("refresh_token", token),
        ],
    )
    .await
}

async fn json(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap())
}

both_backends!(
    password_then_rotating_refresh_with_reuse_detection,
    Options::default(),
    |app: TestApp| async move {
        setup(&app);
        let (s, body) = json(password(&app, "30111222", "{contrasenia}").await).await;
        assert_eq!(s, 200, "{body}");
        let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
        assert_eq!(claims["sub"], "30111222");
        assert_eq!(claims["client_id"], "app");
        let r1 = body["refresh_token"].as_str().unwrap().to_owned();
        assert!(r1.len() >= 43, "at least 256 bits");

        // Wrong password and unknown user read the same.
        let bad = json(password(&app, "30111222", "nope").await).await;
        let ghost = json(password(&app, "99999999", "nope").await).await;
        assert_eq!(bad.0, 400);
        assert_eq!(bad, ghost);
        assert_eq!(bad.1["error"], "invalid_grant");

        // Rotation: each refresh token works once and yields a new one.
        let (s, body) = json(refresh(&app, &r1).await).await;
        assert_eq!(s, 200, "{body}");
        let r2 = body["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(r1, r2);
        let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
        assert_eq!(claims["sub"], "30111222");

        // Reusing the spent r1 revokes the family: r2 dies too.
        let (s, body) = json(refresh(&app, &r1).await).await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
        let (s, _) = json(refresh(&app, &r2).await).await;
        assert_eq!(s, 400, "the family was not revoked");

        // Garbage is the same invalid_grant.
        let (s, body) = json(refresh(&app, "not-a-token").await).await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    }
);

both_backends!(
    two_concurrent_uses_of_one_refresh_token_give_exactly_one_success,
    Options::default(),
    |app: TestApp| async move {
        setup(&app);
        let (_, body) = json(password(&app, "30111222", "{contrasenia}").await).await;
        let r = body["refresh_token"].as_str().unwrap().to_owned();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (http, url, r) = (app.http.clone(), app.url("/oauth2/token"), r.clone());
            set.spawn(async move {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("client_id", "app"),
                    ("refresh_token", r.as_str()),
                ];
                json(http.post(url).form(&form).send().await.unwrap()).await
            });
        }
        let mut winners = Vec::new();
        while let Some(done) = set.join_next().await {
            let (s, body) = done.unwrap();
            assert!(s == 200 || s == 400, "{s} {body}");
            if s == 200 {
                winners.push(body["refresh_token"].as_str().unwrap().to_owned());
            } else {
                assert_eq!(body["error"], "invalid_grant");
            }
        }
        assert_eq!(winners.len(), 1, "exactly one concurrent use may succeed");
        // The losers were reuses of a spent token: the winner's successor is revoked.
        let (s, _) = json(refresh(&app, &winners[0]).await).await;
        assert_eq!(s, 400);
    }
);

both_backends!(
    refresh_tokens_expire_and_die_with_their_user_or_client,
    Options {
        clock: Some(ficha::oauth::ManualClock::new(1_900_000_000)),
        ..Options::default()
    },
    |app: TestApp| async move {
        setup(&app);
        // Expiry, with the server's injected clock.
        let (_, body) = json(password(&app, "30111222", "{contrasenia}").await).await;
        let r = body["refresh_token"].as_str().unwrap().to_owned();
        app.clock
            .as_ref()
            .unwrap()
            .advance(ficha::oauth::DEFAULT_REFRESH_TTL + 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (s, body) = json(refresh(&app, &r).await).await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

        // Disabling the user kills its refresh tokens and its logins.
        let (_, body) = json(password(&app, "30111222", "{contrasenia}").await).await;
        let r = body["refresh_token"].as_str().unwrap().to_owned();
        app.cli_json(&["user", "disable", "30111222"]);
        assert_eq!(json(refresh(&app, &r).await).await.0, 400);
        assert_eq!(
            json(password(&app, "30111222", "{contrasenia}").await)
                .await
                .0,
            400
        );
        app.cli_json(&["user", "enable", "30111222"]);
        assert_eq!(
            json(refresh(&app, &r).await).await.0,
            400,
            "revoked tokens stay revoked"
        );

        // A new password revokes too.
        let (_, body) = json(password(&app, "30111222", "{contrasenia}").await).await;
        let r = body["refresh_token"].as_str().unwrap().to_owned();
        app.cli_json(&["user", "set-password", "30111222", "--password", "n3w"]);
        assert_eq!(json(refresh(&app, &r).await).await.0, 400);

        // Disabling the client refuses its refresh (invalid_client).
        let (_, body) = json(password(&app, "30111222", "n3w").await).await;
        let r = body["refresh_token"].as_str().unwrap().to_owned();
        app.cli_json(&["client", "disable", "app"]);
        let refused = crate::helpers::eventually(Duration::from_secs(5), || async {
            refresh(&app, &r).await.status() == 401
        })
        .await;
        assert!(refused);
        let names = |v: serde_json::Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_owned())
                .collect()
        };
        // The sandbox's own seeded user sits beside ours.
        assert_eq!(
            names(app.cli_json(&["user", "list"])),
            ["25365421", "30111222"]
        );
        app.cli_json(&["user", "delete", "30111222"]);
        assert_eq!(names(app.cli_json(&["user", "list"])), ["25365421"]);
    }
);

#[tokio::test]
async fn the_password_grant_is_off_unless_a_client_is_allowed_it() {
    let app = TestApp::spawn().await;
    app.cli_json(&["user", "create", "alice", "--password", "pw"]);
    // payvalida may only use client_credentials.
    let resp = app
        .post_token(
            Some(("payvalida", "client_secret")),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "pw"),
            ],
        )
        .await;
    let (s, body) = json(resp).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    // A confidential client allowed the grant gets a token without a refresh
    // token unless refresh_token is allowed too.
    let (id, secret) = app.create_client(&["--scopes", "transaction", "--grants", "password"]);
    let resp = app
        .post_token(
            Some((&id, &secret)),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "pw"),
            ],
        )
        .await;
    let (s, body) = json(resp).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.get("refresh_token").is_none());
    // A public client id alone is not enough for a confidential client.
    let resp = app
        .post_token(
            None,
            &[
                ("grant_type", "password"),
                ("client_id", &id),
                ("username", "alice"),
                ("password", "pw"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 401);
}

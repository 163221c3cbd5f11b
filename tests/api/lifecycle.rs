//! Refresh-token lifecycle (issue 14): revocation through RFC 7009, scopes
//! bounded by the client's and user's current ones at every refresh, the
//! absolute family lifetime, and client deletion taking its tokens along.

use std::time::Duration;

use ficha::oauth::{Clock as _, ScopeSet, Username};

use crate::both_backends;
use crate::helpers::{Options, TestApp};

/// A public client `app` with scopes "a b" for the password and
/// refresh_token grants, and a user `alice`.
fn setup(app: &TestApp) {
    app.cli_json(&[
        "client",
        "create",
        "--id",
        "app",
        "--scopes",
        "a b",
        "--grants",
        "password,refresh_token",
        "--auth-methods",
        "none",
    ]);
    app.cli_json(&["user", "create", "alice", "--password", "pw"]);
}

async fn json(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap())
}

/// A password grant for alice; returns (access token, refresh token).
async fn login(app: &TestApp) -> (String, String) {
    let (s, body) = json(
        app.post_token(
            None,
            &[
                ("grant_type", "password"),
                ("client_id", "app"),
                ("username", "alice"),
                ("password", "pw"),
                ("scope", "a b"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(app: &TestApp, token: &str) -> (u16, serde_json::Value) {
    json(
        app.post_token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "app"),
                ("refresh_token", token),
            ],
        )
        .await,
    )
    .await
}

/// POST /oauth2/revoke as the public client `app`.
async fn revoke(app: &TestApp, token: &str) -> u16 {
    app.post_form(
        "/oauth2/revoke",
        None,
        &[("client_id", "app"), ("token", token)],
    )
    .await
    .status()
    .as_u16()
}

fn next(body: &serde_json::Value) -> String {
    body["refresh_token"].as_str().unwrap().to_owned()
}

both_backends!(
    revoking_a_refresh_token_revokes_its_family_and_nothing_else,
    Options::default(),
    |app: TestApp| async move {
        setup(&app);
        let (_, r1) = login(&app).await;
        let (s, body) = refresh(&app, &r1).await;
        assert_eq!(s, 200, "{body}");
        let r2 = next(&body);
        let (access_other, other) = login(&app).await;

        // Another client may not revoke it (RFC 7009 §2.1).
        let (id, secret) = app.create_client(&["--scopes", "a"]);
        let resp = app
            .post_form("/oauth2/revoke", Some((&id, &secret)), &[("token", &r2)])
            .await;
        let (s, body) = json(resp).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("unauthorized_client"))
        );

        // RFC 7009 §2: the refresh token and its family die.
        assert_eq!(revoke(&app, &r2).await, 200);
        let (s, body) = refresh(&app, &r2).await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
        // Revoking again, or a spent member of the family, is still 200.
        assert_eq!(revoke(&app, &r1).await, 200);

        // Revoking an access token revokes only that token: the other
        // session's refresh token keeps working.
        assert_eq!(revoke(&app, &access_other).await, 200);
        let (s, body) = refresh(&app, &other).await;
        assert_eq!(s, 200, "{body}");
    }
);

both_backends!(
    a_refresh_grants_at_most_the_current_scopes_of_client_and_user,
    Options::default(),
    |app: TestApp| async move {
        setup(&app);
        let (_, r) = login(&app).await;
        let (s, body) = refresh(&app, &r).await;
        assert_eq!((s, body["scope"].as_str()), (200, Some("a b")), "{body}");
        let mut r = next(&body);

        // The client loses scope b: the next refresh no longer grants it.
        app.cli_json(&["client", "update", "app", "--scopes", "a"]);
        r = rotate_until(&app, r, "a").await;

        // Given back, it is granted again: the family's original grant is
        // the ceiling, the client's current scopes the bound.
        app.cli_json(&["client", "update", "app", "--scopes", "a b"]);
        r = rotate_until(&app, r, "a b").await;

        // The user's scopes shrink too (no CLI for it: through the store).
        let store = ficha::store::connect(&app.db_url, &Default::default())
            .await
            .unwrap();
        let name = Username::parse("alice").unwrap();
        let mut alice = store.get_user(&name).await.unwrap().unwrap();
        alice.scopes = Some(ScopeSet::parse("b").unwrap());
        alice.updated_at = ficha::oauth::SystemClock.now();
        store.update_user(&alice).await.unwrap();
        let (s, body) = refresh(&app, &r).await;
        // Of the family's "a b", the client allows both again, alice only b.
        assert_eq!((s, body["scope"].as_str()), (200, Some("b")), "{body}");
    }
);

both_backends!(
    a_refresh_family_ends_at_its_absolute_lifetime,
    Options {
        clock: Some(ficha::oauth::ManualClock::new(1_900_000_000)),
        refresh_max_lifetime: 3000,
        ..Options::default()
    },
    |app: TestApp| async move {
        setup(&app);
        let clock = app.clock.clone().unwrap();
        let (_, mut r) = login(&app).await;
        // Used every 1000 s, well inside the 14-day token lifetime: each
        // rotation gives a fresh token, never a longer family.
        for _ in 0..2 {
            clock.advance(1000);
            let (s, body) = refresh(&app, &r).await;
            assert_eq!(s, 200, "{body}");
            r = next(&body);
        }
        clock.advance(1000);
        let (s, body) = refresh(&app, &r).await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
        // A new login starts a new family.
        let (_, r) = login(&app).await;
        assert_eq!(refresh(&app, &r).await.0, 200);
    }
);

both_backends!(
    deleting_a_client_takes_its_refresh_tokens_along,
    Options::default(),
    |app: TestApp| async move {
        setup(&app);
        let (_, r) = login(&app).await;
        app.cli_json(&["client", "delete", "app"]);
        setup_client_again(&app);
        // One try: a success would spend the token and hide the bug.
        let (s, body) = refresh(&app, &r).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "a re-created client inherited the old refresh token"
        );
        // The re-created client works with a new login.
        let (_, r) = login(&app).await;
        assert_eq!(refresh(&app, &r).await.0, 200);
    }
);

fn setup_client_again(app: &TestApp) {
    app.cli_json(&[
        "client",
        "create",
        "--id",
        "app",
        "--scopes",
        "a b",
        "--grants",
        "password,refresh_token",
        "--auth-methods",
        "none",
    ]);
}

/// Refreshes (every 100 ms, for at most 5 s, while the client change
/// reaches the server's cache) until a refresh grants `scope`; returns the
/// last refresh token.
async fn rotate_until(app: &TestApp, mut r: String, scope: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (s, body) = refresh(app, &r).await;
        assert_eq!(s, 200, "{body}");
        r = next(&body);
        if body["scope"] == scope {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still not {scope:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

//! The key ring: rotation through next → active → retiring → retired, the
//! JWKS at each step, and old tokens that keep verifying.

use std::time::Duration;

use crate::both_backends;
use crate::helpers::{eventually, jwt_parts, verify_with_jwks, Options, TestApp};

/// The ES256 kids of a JWKS (the sandbox also has an RS256 key).
fn kids(jwks: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == "ES256")
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    k.sort();
    k
}

both_backends!(
    key_rotation_keeps_old_tokens_verifying,
    Options::default(),
    |app: TestApp| async move {
        let old_token = app.token_for("payvalida", "client_secret", None).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (h, _) = jwt_parts(&old_token);
        let old_kid = h["kid"].as_str().unwrap().to_owned();

        // A next key is published before it signs.
        let next = app.cli_json(&["key", "generate"]);
        assert_eq!(next["state"], "next");
        let next_kid = next["kid"].as_str().unwrap().to_owned();
        assert!(
            eventually(Duration::from_secs(5), || async {
                kids(&app.get_jwks().await).contains(&next_kid)
            })
            .await
        );
        let t = app.token_for("payvalida", "client_secret", None).await;
        assert_eq!(
            jwt_parts(t["access_token"].as_str().unwrap()).0["kid"],
            old_kid.as_str()
        );

        // SPEC §7: a next key published for less than the JWKS max-age is
        // not promoted; rotate says when it will be.
        let max_age: i64 = app
            .http
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .headers()["cache-control"]
            .to_str()
            .unwrap()
            .rsplit("max-age=")
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let r = app.cli_json(&["key", "rotate"]);
        assert_eq!(r["promoted"], false, "{r}");
        assert_eq!(r["next"], next_kid.as_str());
        let wait = r["retry_in_secs"].as_i64().unwrap();
        assert!(wait > max_age - 60 && wait <= max_age, "{r}");
        let text = app.cli(&["key", "rotate"]);
        assert!(String::from_utf8_lossy(&text.stdout).contains("run `ficha key rotate` again in"));

        // --now: next signs, the old key is retiring and still published.
        let r = app.cli_json(&["key", "rotate", "--now"]);
        assert_eq!(r["promoted"], true);
        assert_eq!(r["active"], next_kid.as_str());
        assert_eq!(r["retiring"], old_kid.as_str());
        assert!(
            eventually(Duration::from_secs(5), || async {
                let t = app.token_for("payvalida", "client_secret", None).await;
                jwt_parts(t["access_token"].as_str().unwrap()).0["kid"] == next_kid.as_str()
            })
            .await
        );
        let jwks = app.get_jwks().await;
        let mut both = vec![old_kid.clone(), next_kid.clone()];
        both.sort();
        assert_eq!(kids(&jwks), both);
        verify_with_jwks(&old_token, &jwks).unwrap();
        let listed = app.cli_json(&["key", "list"]);
        let states: Vec<(String, String)> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["kid"].as_str().unwrap().to_owned(),
                    k["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(states.contains(&(old_kid.clone(), "retiring".into())));
        assert!(states.contains(&(next_kid.clone(), "active".into())));

        // Retiring while its tokens may live is refused, unless forced.
        let out = app.cli(&["key", "retire", &old_kid]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--force"), "{err}");
        let out = app.cli(&["key", "retire", &next_kid]);
        assert!(!out.status.success(), "the active key must not be retired");
        assert_eq!(
            app.cli_json(&["key", "retire", &old_kid, "--force"])["state"],
            "retired"
        );
        assert!(
            eventually(Duration::from_secs(5), || async {
                kids(&app.get_jwks().await) == vec![next_kid.clone()]
            })
            .await
        );
        assert!(verify_with_jwks(&old_token, &app.get_jwks().await).is_err());
    }
);

#[tokio::test]
async fn rotate_without_a_next_key_creates_one_and_promotes_nothing() {
    let app = TestApp::spawn().await;
    let before = kids(&app.get_jwks().await);
    let old = app.token_for("payvalida", "client_secret", None).await;
    let old_kid = jwt_parts(old["access_token"].as_str().unwrap()).0["kid"].clone();
    let r = app.cli_json(&["key", "rotate"]);
    assert_eq!(r["promoted"], false, "{r}");
    let next = r["next"].as_str().unwrap().to_owned();
    assert!(!before.contains(&next));
    // Published at once, not signing.
    assert!(
        eventually(Duration::from_secs(5), || async {
            kids(&app.get_jwks().await).contains(&next)
        })
        .await
    );
    let t = app.token_for("payvalida", "client_secret", None).await;
    assert_eq!(
        jwt_parts(t["access_token"].as_str().unwrap()).0["kid"],
        old_kid
    );
    // Running it again creates no second key.
    let again = app.cli_json(&["key", "rotate"]);
    assert_eq!(
        (again["promoted"].clone(), again["next"].clone()),
        (false.into(), next.clone().into())
    );
    let r = app.cli_json(&["key", "rotate", "--now"]);
    let active = r["active"].as_str().unwrap().to_owned();
    assert_eq!(active, next);
    assert_eq!(r["retiring"], old_kid);
    assert!(
        eventually(Duration::from_secs(5), || async {
            let t = app.token_for("payvalida", "client_secret", None).await;
            jwt_parts(t["access_token"].as_str().unwrap()).0["kid"] == active.as_str()
        })
        .await
    );
}

#[tokio::test]
async fn private_key_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = TestApp::spawn().await;
    let mut n = 0;
    for entry in std::fs::read_dir(&app.key_dir).unwrap() {
        let meta = entry.unwrap().metadata().unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        n += 1;
    }
    // The ES256 and RS256 signing keys, and the claims key.
    assert_eq!(n, 3);
}

//! The Fegora dialect (SPEC §5): the documented password request verbatim,
//! OWIN's success body, refresh-token rotation through it, and its errors.

use crate::both_backends;
use crate::helpers::{jwt_parts, verify_with_jwks, Options, TestApp};

/// Fegora's documented request, with only the host and prefix changed:
/// curl -X POST .../token -d 'grant_type=password&client_id=apiApp&username=25365421&password={contrasenia}'
async fn documented(app: &TestApp) -> reqwest::Response {
    app.http
        .post(app.url("/fegora/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=password&client_id=apiApp&username=25365421&password={contrasenia}")
        .send()
        .await
        .unwrap()
}

async fn post(app: &TestApp, body: &str) -> (u16, serde_json::Value) {
    let resp = app
        .http
        .post(app.url("/fegora/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap())
}

both_backends!(
    fegoras_documented_request_works_verbatim,
    Options::default(),
    |app: TestApp| async move {
        let resp = documented(&app).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["as:client_id"], "apiApp");
        assert_eq!(body["userName"], "25365421");
        assert!(body[".issued"].as_str().unwrap().ends_with(" GMT"));
        let token = body["access_token"].as_str().unwrap();
        let claims = verify_with_jwks(token, &app.get_jwks().await).unwrap();
        assert_eq!(claims["sub"], "25365421");
        assert_eq!(claims["client_id"], "apiApp");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            body["expires_in"].as_i64().unwrap()
        );

        // Rotation through the Fegora endpoint.
        let r1 = body["refresh_token"].as_str().unwrap().to_owned();
        let (s, next) = post(
            &app,
            &format!("grant_type=refresh_token&refresh_token={r1}&client_id=apiApp"),
        )
        .await;
        assert_eq!(s, 200, "{next}");
        let r2 = next["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(r1, r2);
        assert_eq!(next["userName"], "25365421");
        // Reuse of r1: invalid_grant, and r2 is gone with its family.
        let (s, err) = post(
            &app,
            &format!("grant_type=refresh_token&refresh_token={r1}&client_id=apiApp"),
        )
        .await;
        assert_eq!((s, err["error"].as_str()), (400, Some("invalid_grant")));
        let (s, _) = post(
            &app,
            &format!("grant_type=refresh_token&refresh_token={r2}&client_id=apiApp"),
        )
        .await;
        assert_eq!(s, 400);
    }
);

#[tokio::test]
async fn fegoras_wire_format_and_errors() {
    let app = TestApp::spawn().await;
    let body: serde_json::Value = documented(&app).await.json().await.unwrap();
    insta::assert_json_snapshot!("fegora_success", body, {
        ".access_token" => "[token]",
        ".refresh_token" => "[refresh token]",
        "[\".issued\"]" => "[date]",
        "[\".expires\"]" => "[date]",
    });
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "25365421");

    // An unknown client, named as OWIN names it.
    let (s, err) = post(
        &app,
        "grant_type=password&client_id=apiAp&username=25365421&password={contrasenia}",
    )
    .await;
    assert_eq!(s, 400);
    insta::assert_json_snapshot!("fegora_unknown_client", err);
    assert_eq!(err["error"], "invalid_clientId");
    assert_eq!(
        err["error_description"],
        "Client 'apiAp' is not registered in the system."
    );

    // A bad password and an unknown user read the same.
    let bad = post(
        &app,
        "grant_type=password&client_id=apiApp&username=25365421&password=nope",
    )
    .await;
    let ghost = post(
        &app,
        "grant_type=password&client_id=apiApp&username=11111111&password=nope",
    )
    .await;
    assert_eq!(bad, ghost);
    assert_eq!(bad.0, 400);
    insta::assert_json_snapshot!("fegora_invalid_grant", bad.1);

    // A bad refresh token; a missing parameter; an unknown grant.
    let (s, err) = post(
        &app,
        "grant_type=refresh_token&refresh_token=nope&client_id=apiApp",
    )
    .await;
    assert_eq!((s, err["error"].as_str()), (400, Some("invalid_grant")));
    let (s, err) = post(
        &app,
        "grant_type=password&client_id=apiApp&username=25365421",
    )
    .await;
    assert_eq!((s, err["error"].as_str()), (400, Some("invalid_request")));
    let (s, err) = post(&app, "grant_type=magic&client_id=apiApp").await;
    assert_eq!(
        (s, err["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    // apiApp may not use client_credentials.
    let (s, err) = post(&app, "grant_type=client_credentials&client_id=apiApp").await;
    assert_eq!(
        (s, err["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    // Garbage is an error in Fegora's shape, never a 500.
    for garbage in [
        "%%%",
        "grant_type=password&grant_type=password",
        "{\"a\":1}",
    ] {
        let (s, err) = post(&app, garbage).await;
        assert_eq!(s, 400, "{garbage}");
        assert!(err["error"].is_string() && err["error_description"].is_string());
    }
}

#[tokio::test]
async fn fegora_in_production_names_no_cause() {
    let opts = Options {
        mode: ficha::oauth::Mode::Production,
        ..Options::default()
    };
    let app = TestApp::spawn_on(crate::helpers::Backend::from_env(), opts)
        .await
        .unwrap();
    let (s, err) = post(
        &app,
        "grant_type=password&client_id=apiAp&username=1&password=2",
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(err["error"], "invalid_clientId");
    assert!(!err["error_description"]
        .as_str()
        .unwrap()
        .contains("registered"));
    app.cleanup().await;
}

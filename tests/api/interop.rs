//! Interoperability with a real OAuth2 client library: the `oauth2` crate's
//! client-credentials flow, then verification against the JWKS fetched
//! over HTTP, as a wallet's API would do it.

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};

use crate::helpers::{verify_with_jwks, TestApp};

async fn fetch_token(app: &TestApp, auth: AuthType, id: &str, secret: &str) -> String {
    let client = BasicClient::new(ClientId::new(id.to_owned()))
        .set_client_secret(ClientSecret::new(secret.to_owned()))
        .set_auth_type(auth)
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).unwrap());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("transaction".into()))
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(token.expires_in().unwrap().as_secs(), 1200);
    assert_eq!(token.scopes().unwrap()[0].as_str(), "transaction");
    token.access_token().secret().clone()
}

#[tokio::test]
async fn the_oauth2_crate_gets_a_token_that_verifies_against_the_jwks() {
    let app = TestApp::spawn().await;
    let token = fetch_token(&app, AuthType::BasicAuth, "payvalida", "client_secret").await;
    let jwks: serde_json::Value = reqwest::get(app.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = verify_with_jwks(&token, &jwks).unwrap();
    assert_eq!(claims["client_id"], "payvalida");
    assert_eq!(claims["scope"], "transaction");

    // The same with client_secret_post, for a client that allows it.
    let (id, secret) = app.create_client(&[
        "--scopes",
        "transaction",
        "--auth-methods",
        "client_secret_basic,client_secret_post",
    ]);
    let token = fetch_token(&app, AuthType::RequestBody, &id, &secret).await;
    verify_with_jwks(&token, &jwks).unwrap();
}

#[allow(dead_code)]
#[path = "../../examples/verify_token.rs"]
mod verify_token_example;

#[tokio::test]
async fn the_readme_s_rust_verifier_accepts_good_tokens_and_refuses_the_rest() {
    let app = TestApp::spawn().await;
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(app.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = app
        .token_for("payvalida", "client_secret", Some("transaction"))
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims = verify_token_example::verify(&token, &jwks, &app.base, "transaction").unwrap();
    assert_eq!(claims.client_id, "payvalida");
    assert!(verify_token_example::verify(&token, &jwks, &app.base, "annulment").is_err());
    assert!(verify_token_example::verify(
        &token,
        &jwks,
        "https://elsewhere.example",
        "transaction"
    )
    .is_err());
    let forged = crate::introspect::flip_signature(&token);
    assert!(verify_token_example::verify(&forged, &jwks, &app.base, "transaction").is_err());
    app.cleanup().await;
}

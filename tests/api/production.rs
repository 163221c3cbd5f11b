//! Production mode's refusals (SPEC §1).

use ficha::oauth::Mode;
use ficha::startup::Application;

use crate::helpers::{config, run_cli, Backend, Options, TestApp};

fn production() -> Options {
    Options {
        mode: Mode::Production,
        ..Options::default()
    }
}

#[tokio::test]
async fn production_refuses_to_start_without_a_database() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut cfg = config("sqlite://unused", dir.path().join("keys"), &production());
    cfg.database_url = None;
    let err = Application::build(cfg).await.unwrap_err().to_string();
    assert!(err.contains("--database"), "{err}");

    // And the binary says so in one line.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ficha"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env_remove("FICHA_DATABASE_URL")
        .env_remove("FICHA_CONFIG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("explicit database"));
}

#[tokio::test]
async fn production_refuses_to_start_without_a_key() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = format!("sqlite://{}/p.db", dir.path().display());
    let err = Application::build(config(&db, dir.path().join("keys"), &production()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("key"), "{err}");
}

#[tokio::test]
async fn production_refuses_to_start_while_a_seed_credential_exists() {
    // A sandbox ran on this database first.
    let mut app = TestApp::spawn().await;
    app.stop().await;
    let err = match app.start(&production()).await {
        Err(e) => e.to_string(),
        Ok(()) => panic!("production started with the sandbox seeds present"),
    };
    // Each public credential, and the command that retires it.
    let mut fixes: Vec<(&str, Vec<&str>)> = Vec::new();
    for user in ficha::seeds::USER_SEEDS {
        fixes.push((user.username, vec!["user", "set-password", user.username]));
    }
    for seed in ficha::seeds::SEEDS {
        if seed.public {
            fixes.push((seed.client_id, vec!["client", "delete", seed.client_id]));
        } else {
            fixes.push((
                seed.client_id,
                vec!["client", "rotate-secret", seed.client_id],
            ));
        }
    }
    for (name, _) in &fixes {
        assert!(err.contains(name), "{err}");
    }
    // While any one is left, production still refuses, naming only those left.
    for (i, (name, fix)) in fixes.iter().enumerate() {
        let out = run_cli(&app.db_url, &app.key_dir, fix);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let started = app.start(&production()).await;
        if i + 1 < fixes.len() {
            let err = started.unwrap_err().to_string();
            assert!(!err.contains(&format!(" {name}")), "{err}");
            assert!(err.contains(fixes[i + 1].0), "{err}");
        } else {
            started.unwrap();
        }
    }
    app.cleanup().await;
}

#[tokio::test]
async fn production_issues_1200_second_tokens_and_refuses_longer_lifetimes() {
    let app = TestApp::spawn_on(Backend::from_env(), production())
        .await
        .unwrap();
    // No seeds in production.
    let resp = app
        .post_token(
            Some(("payvalida", "client_secret")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error_description"], "client authentication failed");

    let (id, secret) = app.create_client(&["--scopes", "transaction"]);
    assert_eq!(app.token_for(&id, &secret, None).await["expires_in"], 1200);
    let (long, long_secret) = app.create_client(&["--scopes", "transaction", "--ttl", "3600"]);
    let resp = app
        .post_token(
            Some((&long, &long_secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(resp.status(), 400);
    app.cleanup().await;
}

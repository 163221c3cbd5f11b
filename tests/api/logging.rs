//! The real binary, as a newcomer runs it: `ficha serve --sandbox` in an
//! empty directory, its logs searched for secrets and tokens, and a
//! graceful exit on SIGTERM.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::basic_header;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn sandbox_from_an_empty_directory_logs_no_secret_and_stops_on_sigterm() {
    let dir = tempfile::TempDir::new().unwrap();
    let bin = env!("CARGO_BIN_EXE_ficha");
    let clean = |c: &mut Command| {
        c.current_dir(dir.path())
            .env_remove("FICHA_DATABASE_URL")
            .env_remove("FICHA_KEY_DIR")
            .env_remove("FICHA_CONFIG")
            .env_remove("FICHA_KEK");
    };
    // A client of our own in the default sandbox database (data/ficha.db).
    let mut create = Command::new(bin);
    create.args([
        "client",
        "create",
        "--id",
        "shop",
        "--scopes",
        "transaction",
        "--json",
    ]);
    create.args(["--auth-methods", "client_secret_basic,client_secret_post"]);
    clean(&mut create);
    let out = create.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();

    let port = free_port();
    let mut serve = Command::new(bin);
    serve
        .args(["serve", "--sandbox", "--bind", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    clean(&mut serve);
    let mut child = KillOnDrop(serve.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "ficha did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dir.path().join("data/ficha.db").exists());
    // The ES256 and RS256 signing keys and the claims key, nothing else.
    assert_eq!(
        std::fs::read_dir(dir.path().join("keys")).unwrap().count(),
        3
    );

    let mut tokens = Vec::new();
    for (auth, form) in [
        (
            Some(basic_header("shop", &secret)),
            vec![("grant_type", "client_credentials")],
        ),
        (
            None,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "shop"),
                ("client_secret", &secret),
            ],
        ),
        (
            Some(basic_header("shop", "Wr0ngSecretValue")),
            vec![("grant_type", "client_credentials")],
        ),
        (
            Some(basic_header("ghost", "Gh0stSecretValue")),
            vec![("grant_type", "client_credentials")],
        ),
    ] {
        let mut req = http.post(format!("{base}/oauth2/token")).form(&form);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let body: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
        if let Some(t) = body["access_token"].as_str() {
            tokens.push(t.to_owned());
        }
    }
    assert_eq!(tokens.len(), 2);

    let exit = crate::helpers::terminate(&mut child.0);
    assert!(exit.success(), "{exit:?}");

    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stdout.contains("client_id=payvalida client_secret=client_secret"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("listening on http://127.0.0.1:{port}")));
    assert!(
        stderr.contains("token issued"),
        "the audit record is missing: {stderr}"
    );
    let logs = format!("{stdout}\n{stderr}");
    let header = basic_header("shop", &secret);
    let forbidden = [
        secret.as_str(),
        "Wr0ngSecretValue",
        "Gh0stSecretValue",
        header.trim_start_matches("Basic "),
        tokens[0].as_str(),
        tokens[1].as_str(),
        tokens[0].rsplit('.').next().unwrap(),
    ];
    for f in forbidden {
        assert!(!logs.contains(f), "the logs contain a secret or token: {f}");
    }
}

/// Kills the server if the test fails before stopping it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

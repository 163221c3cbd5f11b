//! A real nginx (Debian's package) on loopback, running
//! `examples/nginx/ficha.conf` in front of a small upstream and ficha's
//! `/auth/verify`: what a wallet operator deploys.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::Json;
use serde_json::json;

use crate::helpers::TestApp;

const EXAMPLE: &str = include_str!("../../examples/nginx/ficha.conf");

/// The nginx binary, or `None` (with the reason) when this machine has no
/// usable one.
fn nginx_binary() -> Result<PathBuf, String> {
    let found = [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/usr/local/nginx/sbin/nginx",
    ]
    .into_iter()
    .map(PathBuf::from)
    .chain(
        std::env::var_os("PATH")
            .map(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("nginx"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
    )
    .find(|p| p.is_file())
    .ok_or("nginx not installed")?;
    let version = Command::new(&found)
        .arg("-V")
        .output()
        .map_err(|e| format!("{} -V failed: {e}", found.display()))?;
    if !String::from_utf8_lossy(&version.stderr).contains("with-http_auth_request_module") {
        return Err(format!("{} lacks the auth_request module", found.display()));
    }
    Ok(found)
}

/// The nginx child process, stopped when the test ends however it ends.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The repository's example with its two upstreams and listen line
/// pointed at this test's servers, wrapped in a main config whose paths
/// all live in `dir`.
fn config(dir: &Path, nginx_v: &str, port: u16, ficha: u16, wallet: u16) -> String {
    let mut site = EXAMPLE.to_owned();
    for (from, to) in [
        (
            "server 127.0.0.1:8080;",
            format!("server 127.0.0.1:{ficha};"),
        ),
        (
            "server 127.0.0.1:9000;",
            format!("server 127.0.0.1:{wallet};"),
        ),
        ("listen 80;", format!("listen 127.0.0.1:{port};")),
    ] {
        assert_eq!(
            site.matches(from).count(),
            1,
            "examples/nginx/ficha.conf changed shape: update this test ({from})"
        );
        site = site.replace(from, &to);
    }
    let d = dir.display();
    let mut temp_paths =
        format!("client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n");
    for module in ["fastcgi", "uwsgi", "scgi"] {
        if !nginx_v.contains(&format!("without-http_{module}_module")) {
            temp_paths.push_str(&format!("    {module}_temp_path {d}/{module};\n"));
        }
    }
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n    access_log off;\n    {temp_paths}\n{site}\n}}\n"
    )
}

async fn start_nginx(bin: &Path, ficha: u16, wallet: u16) -> Nginx {
    let dir = tempfile::TempDir::new().unwrap();
    let nginx_v = Command::new(bin).arg("-V").output().unwrap();
    let nginx_v = String::from_utf8_lossy(&nginx_v.stderr).into_owned();
    let port = free_port();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, config(dir.path(), &nginx_v, port, ficha, wallet)).unwrap();
    let child = Command::new(bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut nginx = Nginx { child, dir, port };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return nginx;
        }
        if let Ok(Some(status)) = nginx.child.try_wait() {
            panic!("nginx exited with {status}: {}", nginx.error_log());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nginx did not listen on {port}: {}", nginx.error_log());
}

/// The wallet's API: echoes what reached it.
async fn echo(
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Json<serde_json::Value> {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "client_id": h("x-ficha-client-id"),
        "scope": h("x-ficha-scope"),
        "jti": h("x-ficha-jti"),
        "sub": h("x-ficha-sub"),
        "exp": h("x-ficha-exp"),
        "body": String::from_utf8_lossy(&body),
    }))
}

async fn spawn_wallet() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(echo);
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_guards_the_transaction_endpoints() {
    let bin = match nginx_binary() {
        Ok(bin) => bin,
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("nginx with auth_request is required in CI: {why}");
            }
            eprintln!("skipped: {why}");
            return;
        }
    };
    let app = TestApp::spawn().await;
    let wallet = spawn_wallet().await;
    let nginx = start_nginx(&bin, app.port, wallet).await;
    let base = format!("http://127.0.0.1:{}", nginx.port);
    let http = reqwest::Client::new();
    let token = |scope: &'static str| {
        let app = &app;
        async move {
            app.token_for("payvalida", "client_secret", Some(scope))
                .await["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let transaction = token("transaction").await;
    let confirmation = token("confirmation").await;
    let annulment = token("annulment").await;

    // No token: 401 with ficha's challenge passed on.
    let resp = http
        .post(format!("{base}/transaction"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "{}", nginx.error_log());
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );

    // A confirmation token on /transaction: 403 insufficient_scope.
    let resp = http
        .post(format!("{base}/transaction"))
        .bearer_auth(&confirmation)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");

    // The right token for each endpoint reaches the wallet, with the
    // token's client id and scope, and the request body.
    let (_, claims) = crate::helpers::jwt_parts(&transaction);
    for (path, t, scope) in [
        ("/transaction", &transaction, "transaction"),
        ("/transaction/confirmation", &confirmation, "confirmation"),
        ("/transaction/annulment", &annulment, "annulment"),
    ] {
        let resp = http
            .post(format!("{base}{path}"))
            .bearer_auth(t)
            // Forged headers are overwritten by nginx.
            .header("X-Ficha-Client-Id", "someone-else")
            .header("X-Ficha-Sub", "victim")
            .header("X-Ficha-Exp", "9999999999")
            .body(r#"{"amount": 100}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}: {}", nginx.error_log());
        let seen: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(seen["path"], path);
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["client_id"], "payvalida");
        assert_eq!(
            seen["sub"], "payvalida",
            "a caller's X-Ficha-Sub got through"
        );
        assert_ne!(seen["exp"], "9999999999");
        assert_eq!(seen["scope"], scope);
        assert_eq!(seen["body"], r#"{"amount": 100}"#);
        if path == "/transaction" {
            assert_eq!(seen["jti"], claims["jti"]);
        }
    }
    // Each endpoint wants its own scope.
    let resp = http
        .post(format!("{base}/transaction/annulment"))
        .bearer_auth(&confirmation)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // The sub-request location is not reachable from outside.
    let resp = http
        .get(format!("{base}/_ficha/verify/transaction"))
        .bearer_auth(&transaction)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // Revoked: 401 from then on.
    assert_eq!(
        app.revoke(("payvalida", "client_secret"), &transaction)
            .await,
        200
    );
    let resp = http
        .post(format!("{base}/transaction"))
        .bearer_auth(&transaction)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("revoked"), "{challenge}");
    drop(nginx);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_the_throttles_see_each_client_address() {
    let bin = match nginx_binary() {
        Ok(bin) => bin,
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("nginx with auth_request is required in CI: {why}");
            }
            eprintln!("skipped: {why}");
            return;
        }
    };
    // nginx reaches ficha from 127.0.0.1: that is the proxy to trust.
    let app = TestApp::spawn_on(
        crate::helpers::Backend::from_env(),
        crate::helpers::Options {
            throttle_client_per_minute: 1000,
            throttle_address_per_minute: 3,
            trusted_proxies: "127.0.0.1".parse().unwrap(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let wallet = spawn_wallet().await;
    let nginx = start_nginx(&bin, app.port, wallet).await;
    let url = format!("http://127.0.0.1:{}/oauth2/token", nginx.port);
    let from = |last: u8| crate::attack::client_from([127, 0, 0, last].into());
    let ask = |http: reqwest::Client, secret: String, forged: Option<&'static str>| {
        let url = url.clone();
        async move {
            let mut req = http
                .post(url)
                .header(
                    "Authorization",
                    crate::helpers::basic_header("payvalida", &secret),
                )
                .form(&[("grant_type", "client_credentials")]);
            if let Some(f) = forged {
                req = req.header("X-Forwarded-For", f);
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    // 127.0.0.2 spends its three failures...
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(ask(from(2), format!("guess-{i}"), None).await);
    }
    assert_eq!(statuses, [401, 401, 401, 429], "{}", nginx.error_log());
    // ...and cannot escape by forging the header nginx appends to.
    assert_eq!(
        ask(from(2), "guess-9".into(), Some("203.0.113.7")).await,
        429
    );
    // 127.0.0.3, behind the same nginx, has its own: were the proxy's
    // address used, it would share 127.0.0.2's and get 429.
    assert_eq!(ask(from(3), "other-guess".into(), None).await, 401);
    assert_eq!(ask(from(3), "client_secret".into(), None).await, 200);
    drop(nginx);
    app.cleanup().await;
}

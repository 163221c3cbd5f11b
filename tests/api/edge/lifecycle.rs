//! The edge's settings (flags, variables, the config file, refusals),
//! its shutdown, and its accept loop under errors.

use std::time::Duration;

use ficha::http::HttpSettings;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use super::{closed_by, exchange, get_health, read_response, settings, SLACK};
use crate::helpers::{basic_header, Options};

#[test]
fn the_limits_are_read_from_flags_and_the_config_file() {
    use clap::Parser as _;
    let cli = ficha::cli::Cli::try_parse_from([
        "ficha",
        "serve",
        "--http-header-timeout-secs",
        "3",
        "--http-idle-timeout-secs",
        "30",
        "--max-connections",
        "50",
    ])
    .unwrap();
    assert_eq!(cli.config().unwrap().http, settings(3, 30, 50));

    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("ficha.toml");
    std::fs::write(
        &file,
        "http_header_timeout_secs = 4\nhttp_idle_timeout_secs = 40\nmax_connections = 60\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let cli = ficha::cli::Cli::try_parse_from(["ficha", "--config", path, "serve"]).unwrap();
    assert_eq!(cli.config().unwrap().http, settings(4, 40, 60));
    // A flag wins over the file.
    let cli = ficha::cli::Cli::try_parse_from([
        "ficha",
        "--config",
        path,
        "serve",
        "--max-connections",
        "70",
    ])
    .unwrap();
    assert_eq!(cli.config().unwrap().http, settings(4, 40, 70));
    assert_eq!(
        ficha::cli::Cli::try_parse_from(["ficha", "serve"])
            .unwrap()
            .config()
            .unwrap()
            .http,
        settings(10, 60, 4096)
    );
}

/// Runs `ficha ARGS` with one variable set; returns its stderr, which
/// must be a failure.
fn refused(dir: &std::path::Path, args: &[&str], env: (&str, &str)) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ficha"))
        .args(args)
        .current_dir(dir)
        .env_remove("FICHA_CONFIG")
        .env_remove("FICHA_HTTP_HEADER_TIMEOUT_SECS")
        .env_remove("FICHA_HTTP_IDLE_TIMEOUT_SECS")
        .env_remove("FICHA_MAX_CONNECTIONS")
        .env(env.0, env.1)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn zero_limits_are_refused_with_one_clear_line() {
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("ficha.toml");
    std::fs::write(&file, "http_idle_timeout_secs = 0\n").unwrap();
    let flag = refused(
        dir.path(),
        &["serve", "--sandbox", "--http-header-timeout-secs", "0"],
        ("FICHA_SANDBOX", "true"),
    );
    let file_key = refused(
        dir.path(),
        &["--config", file.to_str().unwrap(), "serve", "--sandbox"],
        ("FICHA_SANDBOX", "true"),
    );
    let variable = refused(
        dir.path(),
        &["serve", "--sandbox"],
        ("FICHA_MAX_CONNECTIONS", "0"),
    );
    for (stderr, name) in [
        (flag, "http_header_timeout_secs"),
        (file_key, "http_idle_timeout_secs"),
        (variable, "max_connections"),
    ] {
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!("error: {name} must be between 1 and")),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_stop_new_connections_are_refused_and_a_request_in_flight_finishes() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = format!("sqlite://{}/ficha.db", dir.path().display());
    let config = crate::helpers::config(&db, dir.path().join("keys"), &Options::default());
    let app = ficha::startup::Application::build(config).await.unwrap();
    let port = app.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    let mut idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert_eq!(exchange(&mut idle, &get_health()).await.0, 200);
    // A token request whose handler is waiting for the rest of its body.
    let body = b"grant_type=client_credentials&scope=transaction";
    let head = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: ficha\r\nAuthorization: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        basic_header("payvalida", "client_secret"),
        body.len()
    );
    let mut busy = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    busy.write_all(head.as_bytes()).await.unwrap();
    busy.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    stop.send(()).unwrap();
    let refused = crate::helpers::eventually(SLACK, || async {
        TcpStream::connect(("127.0.0.1", port)).await.is_err()
    })
    .await;
    assert!(refused, "still accepting after stop");
    let closed = closed_by(&mut idle, Instant::now() + SLACK).await;
    assert!(closed.is_some(), "an idle connection was kept after stop");
    assert!(
        !server.is_finished(),
        "stopped before the request in flight"
    );

    busy.write_all(&body[10..]).await.unwrap();
    let (status, answer) = timeout(SLACK, read_response(&mut busy))
        .await
        .expect("no response in time")
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    timeout(SLACK, server)
        .await
        .expect("the server did not stop after draining")
        .unwrap()
        .unwrap();
}

/// A listener whose first accepts fail as when the process is out of
/// file descriptors.
struct OutOfFiles {
    inner: tokio::net::TcpListener,
    failures: usize,
}

impl ficha::http::Listener for OutOfFiles {
    type Io = TcpStream;

    async fn accept(&mut self) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
        if self.failures > 0 {
            self.failures -= 1;
            // EMFILE
            return Err(std::io::Error::from_raw_os_error(24));
        }
        self.inner.accept().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_errors_are_retried_and_requests_carry_the_peer_address() {
    use axum::extract::ConnectInfo;
    let inner = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = inner.local_addr().unwrap().port();
    let router = axum::Router::new().route(
        "/peer",
        axum::routing::get(
            |ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>| async move { peer.to_string() },
        ),
    );
    let listener = OutOfFiles { inner, failures: 3 };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ficha::http::serve(
        listener,
        router,
        HttpSettings::default(),
        async move {
            let _ = stopped.await;
        },
    ));

    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (status, body) = exchange(&mut s, b"GET /peer HTTP/1.1\r\nHost: ficha\r\n\r\n").await;
    assert_eq!(status, 200);
    assert_eq!(body, s.local_addr().unwrap().to_string());
    drop(s);
    stop.send(()).unwrap();
    timeout(SLACK, server).await.unwrap().unwrap();
}

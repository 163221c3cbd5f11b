//! Native TLS (SPEC §10): HTTPS with a certificate made in the test, for
//! curl, the `oauth2` crate and reqwest trusting its CA; plain HTTP on the
//! TLS port; `SIGHUP` swapping the pair for new connections while open
//! ones go on, and a bad new pair left unserved; `config check` on the
//! pair.

#[path = "tls/pki.rs"]
mod pki;
#[path = "tls/served.rs"]
mod served;

use std::process::Command;
use std::time::Duration;

use ficha::http::tls::TlsPaths;
use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use self::pki::{client_config, connect, get, reqwest_with, served_cert, Ca, Leaf};
use self::served::Served;
use crate::helpers::{
    eventually, run_cli, system_now, verify_with_jwks, Backend, Options, TestApp,
};

fn paths_in(dir: &TempDir) -> TlsPaths {
    TlsPaths {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    }
}

/// An in-process server speaking TLS with a certificate of a fresh CA.
async fn tls_app(opts: Options) -> Option<(TestApp, Ca, TempDir)> {
    let certs = TempDir::new().unwrap();
    let ca = Ca::new("ficha test CA");
    let paths = paths_in(&certs);
    ca.issue("ficha server").write(&paths);
    let opts = Options {
        tls: Some(paths),
        ..opts
    };
    let app = TestApp::spawn_on(Backend::from_env(), opts).await?;
    assert!(app.base.starts_with("https://127.0.0.1:"), "{}", app.base);
    Some((app, ca, certs))
}

// curl runs blocking: the server needs another worker meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_the_ca_gets_a_token_over_https_1_1() {
    let Some((app, ca, certs)) = tls_app(Options::default()).await else {
        return;
    };
    let ca_file = certs.path().join("ca.pem");
    ca.write(&ca_file);
    let curl = |extra: &[&str]| {
        Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(extra)
            .args([
                "-u",
                "payvalida:client_secret",
                "-d",
                "grant_type=client_credentials",
                "-d",
                "scope=transaction",
                "-w",
                "\n%{http_version}",
                &app.url("/oauth2/token"),
            ])
            .output()
            .unwrap()
    };
    let out = curl(&["--cacert", ca_file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, version) = text.rsplit_once('\n').unwrap();
    // curl offers h2 too; ALPN settles on HTTP/1.1, all ficha speaks.
    assert_eq!(version, "1.1");
    let token: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        token["access_token"].as_str().unwrap().len() > 100,
        "{token}"
    );

    // Without the CA curl refuses the certificate: it is really checked.
    let out = curl(&[]);
    assert_eq!(
        out.status.code(),
        Some(60),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.cleanup().await;
}

#[tokio::test]
async fn the_oauth2_crate_and_reqwest_trusting_the_ca_get_a_token_the_jwks_and_an_https_issuer() {
    let Some((app, ca, _certs)) = tls_app(Options::default()).await else {
        return;
    };
    let http = reqwest_with(&ca);
    let client = BasicClient::new(ClientId::new("payvalida".to_owned()))
        .set_client_secret(ClientSecret::new("client_secret".to_owned()))
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).unwrap());
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("transaction".into()))
        .request_async(&http)
        .await
        .unwrap();
    let jwks: serde_json::Value = http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = verify_with_jwks(token.access_token().secret(), &jwks).unwrap();
    assert_eq!(claims["client_id"], "payvalida");
    // The default issuer is https:// and the bound address.
    assert_eq!(claims["iss"], app.base.as_str());
    let meta: serde_json::Value = http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], app.base.as_str());
    assert_eq!(
        meta["token_endpoint"],
        format!("{}/oauth2/token", app.base).as_str()
    );

    // And reqwest's own token request, as a wallet's backend would send it.
    let issued: serde_json::Value = http
        .post(app.url("/oauth2/token"))
        .basic_auth("payvalida", Some("client_secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    verify_with_jwks(issued["access_token"].as_str().unwrap(), &jwks).unwrap();
    app.cleanup().await;
}

#[tokio::test]
async fn tls_1_2_and_1_3_are_served_with_alpn_http_1_1() {
    let Some((app, ca, _certs)) = tls_app(Options::default()).await else {
        return;
    };
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut config = client_config(&[&ca], &[version]);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let mut stream = connect(app.port, config).await;
        let session = stream.get_ref().1;
        assert_eq!(session.protocol_version(), Some(version.version));
        assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(get(&mut stream, "/.well-known/jwks.json").await.0, 200);
    }
    app.cleanup().await;
}

/// Sends `bytes` on a bare TCP connection and returns what came back
/// before the server closed it (failing if it stays open 5 s).
async fn raw_exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut back = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut back)).await;
    // A reset is a clean close too; only a connection left open fails.
    assert!(read.is_ok(), "the server kept the connection open");
    back
}

#[tokio::test]
async fn plain_http_and_silence_on_the_tls_port_are_closed_and_serving_goes_on() {
    let opts = Options {
        http: ficha::http::HttpSettings {
            header_timeout: Duration::from_secs(1),
            ..Default::default()
        },
        ..Options::default()
    };
    let Some((app, ca, _certs)) = tls_app(opts).await else {
        return;
    };
    let plain = b"POST /oauth2/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
    for _ in 0..20 {
        let back = raw_exchange(app.port, plain).await;
        // At most a TLS alert, never an HTTP response (no 400, no 500).
        assert!(
            !back.starts_with(b"HTTP/"),
            "{}",
            String::from_utf8_lossy(&back)
        );
    }
    let plain_client = reqwest::Client::new();
    let url = app
        .url("/.well-known/jwks.json")
        .replacen("https://", "http://", 1);
    assert!(plain_client.get(&url).send().await.is_err());
    // A connection that never starts its handshake is closed at the
    // header timeout, as a silent plain one is.
    let started = std::time::Instant::now();
    let back = raw_exchange(app.port, b"").await;
    assert!(back.is_empty());
    assert!(started.elapsed() >= Duration::from_secs(1));

    let status = reqwest_with(&ca)
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_certificate_for_new_connections_and_open_ones_go_on() {
    let dir = TempDir::new().unwrap();
    let paths = paths_in(&dir);
    let ca = Ca::new("ficha test CA");
    let first = ca.issue("first");
    first.write(&paths);
    let Some(served) = Served::start(&dir, Some(&paths)).await else {
        return;
    };
    let config = || client_config(&[&ca], rustls::DEFAULT_VERSIONS);
    let mut open = connect(served.port, config()).await;
    assert_eq!(get(&mut open, "/.well-known/jwks.json").await.0, 200);
    assert_eq!(served_cert(&open), first.der);
    // Plain HTTP meanwhile costs that connection only, and no error line.
    let back = raw_exchange(served.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(!back.starts_with(b"HTTP/"));

    let second: Leaf = ca.issue("second");
    second.write(&paths);
    served.hangup();
    let swapped = eventually(Duration::from_secs(10), || async {
        served_cert(&connect(served.port, config()).await) == second.der
    })
    .await;
    assert!(swapped, "new connections still see the old certificate");
    // The connection opened before the reload is served on, under the
    // session it negotiated.
    assert_eq!(get(&mut open, "/.well-known/jwks.json").await.0, 200);
    assert_eq!(served_cert(&open), first.der);
    served.logged("TLS certificate reloaded", 1).await;
    assert_eq!(served.reloads(&reqwest_with(&ca), "ok").await, 1);

    let log = served.stop().await;
    assert!(log.contains("CN=second"), "{log}");
    assert!(!log.contains("ERROR") && !log.contains("panicked"), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_pair_on_sighup_is_logged_once_and_the_old_one_kept() {
    let dir = TempDir::new().unwrap();
    let paths = paths_in(&dir);
    let ca = Ca::new("ficha test CA");
    let first = ca.issue("first");
    first.write(&paths);
    let Some(served) = Served::start(&dir, Some(&paths)).await else {
        return;
    };
    let still_first = || async {
        let mut stream =
            connect(served.port, client_config(&[&ca], rustls::DEFAULT_VERSIONS)).await;
        assert_eq!(served_cert(&stream), first.der);
        assert_eq!(get(&mut stream, "/.well-known/jwks.json").await.0, 200);
    };

    // Not PEM at all.
    std::fs::write(&paths.key, "this is not a key\n").unwrap();
    served.hangup();
    served.logged("TLS reload failed", 1).await;
    still_first().await;

    // Another certificate's key: parses, does not match.
    let other = ca.issue("other");
    std::fs::write(&paths.cert, &other.cert_pem).unwrap();
    std::fs::write(&paths.key, &first.key_pem).unwrap();
    served.hangup();
    served.logged("TLS reload failed", 2).await;
    still_first().await;
    assert_eq!(served.reloads(&reqwest_with(&ca), "failed").await, 2);

    let log = served.stop().await;
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("TLS reload failed"))
        .collect();
    assert_eq!(failures.len(), 2, "{log}");
    assert!(
        failures[0].contains("key.pem") && failures[0].contains("no PEM private key"),
        "{log}"
    );
    assert!(failures[1].contains("does not match"), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_tls_is_noted_and_serving_goes_on() {
    let dir = TempDir::new().unwrap();
    let Some(served) = Served::start(&dir, None).await else {
        return;
    };
    served.hangup();
    served
        .logged("SIGHUP: TLS is off, nothing to reload", 1)
        .await;
    let http = reqwest::Client::new();
    let health = http
        .get(format!("{}/health", served.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    served.stop().await;
}

#[tokio::test]
async fn config_check_loads_the_pair_as_serve_does() {
    let dir = TempDir::new().unwrap();
    let paths = paths_in(&dir);
    let ca = Ca::new("ficha test CA");
    let db = format!("sqlite://{}/none.db", dir.path().display());
    let keys = dir.path().join("keys");
    let check = |extra: &[&str]| {
        let mut args = vec!["config", "check", "--sandbox"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--tls-cert", paths.cert.to_str().unwrap()]);
        args.extend_from_slice(&["--tls-key", paths.key.to_str().unwrap()]);
        let out = run_cli(&db, &keys, &args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success(), text)
    };

    ca.issue("good").write(&paths);
    let (ok, text) = check(&[]);
    assert!(ok, "{text}");
    assert!(
        text.contains("ok    tls: ") && text.contains("CN=good"),
        "{text}"
    );

    let yesterday = time::OffsetDateTime::from_unix_timestamp(system_now() - 86_400).unwrap();
    ca.issue_until("stale", Some(yesterday)).write(&paths);
    let (ok, text) = check(&[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("error tls: ") && text.contains("expired at"),
        "{text}"
    );
    // serve refuses the same pair, in one line.
    let out = run_cli(
        &db,
        &keys,
        &[
            "serve",
            "--sandbox",
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            paths.cert.to_str().unwrap(),
            "--tls-key",
            paths.key.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("expired at"),
        "{err}"
    );

    let other = ca.issue("other");
    let good = ca.issue("good");
    std::fs::write(&paths.cert, &good.cert_pem).unwrap();
    std::fs::write(&paths.key, &other.key_pem).unwrap();
    let (ok, text) = check(&["--json"]);
    assert!(!ok, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tls = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "tls")
        .unwrap();
    assert_eq!(tls["status"], "error");
    assert!(
        tls["message"].as_str().unwrap().contains("does not match"),
        "{v}"
    );
    assert_eq!(v["config"]["tls_cert"], paths.cert.to_str().unwrap());
    assert_eq!(v["config"]["issuer"], "https://127.0.0.1:8080");

    // The config file's `tls_cert` and `FICHA_TLS_KEY` make a pair too.
    ca.issue("from the file").write(&paths);
    let file = dir.path().join("ficha.toml");
    std::fs::write(
        &file,
        format!("tls_cert = {:?}\n", paths.cert.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ficha"))
        .args([
            "--config",
            file.to_str().unwrap(),
            "config",
            "check",
            "--sandbox",
        ])
        .env("FICHA_DATABASE_URL", &db)
        .env("FICHA_KEY_DIR", &keys)
        .env("FICHA_TLS_KEY", &paths.key)
        .env_remove("FICHA_CONFIG")
        .env_remove("FICHA_KEK")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("CN=from the file"), "{text}");

    // Half a pair is refused outright.
    let out = run_cli(
        &db,
        &keys,
        &["config", "check", "--sandbox", "--tls-cert", "x.pem"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("TLS needs both"));
}

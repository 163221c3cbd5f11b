//! Losing the database: 503 `temporarily_unavailable` (never a token for a
//! client the server cannot check, never a 500 or a long hang), readiness
//! 503, and recovery without a restart. The database sits behind a TCP
//! proxy the test can cut.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::{drop_database, eventually, fresh_database, Backend, Options, TestApp};

/// A loopback TCP proxy to PostgreSQL that can drop every connection and
/// refuse new ones.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(target: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let h = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(h);
            }
        });
        Proxy {
            port,
            up,
            conns,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_database_gives_503_then_recovers_without_a_restart() {
    let dir = tempfile::TempDir::new().unwrap();
    let Some(direct) = fresh_database(Backend::Postgres, &dir).await else {
        return;
    };
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let name = direct.rsplit('/').next().unwrap();
    let via_proxy = format!("postgres://postgres@127.0.0.1:{}/{name}", proxy.port);
    let app = TestApp::spawn_with_url(&via_proxy, Options::default()).await;
    let (id, secret) = app.create_client(&["--scopes", "transaction"]);
    // payvalida is cached; the other client has never been seen by the server.
    app.token_for("payvalida", "client_secret", None).await;

    proxy.cut();

    // A client the server cannot check: 503, quickly, never a token.
    let started = Instant::now();
    let resp = app
        .post_token(
            Some((&id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "hung for {:?}",
        started.elapsed()
    );
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");

    // Even the cached client stops getting tokens once the cache cannot be
    // kept fresh (5 s bound); never a 500 along the way.
    let mut statuses = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while statuses.last() != Some(&503) && Instant::now() < deadline {
        let s = app
            .post_token(
                Some(("payvalida", "client_secret")),
                &[("grant_type", "client_credentials")],
            )
            .await
            .status()
            .as_u16();
        statuses.push(s);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(statuses.last(), Some(&503), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );

    let ready = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        app.http
            .get(app.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    proxy.restore();
    let recovered = eventually(Duration::from_secs(15), || async {
        app.post_token(
            Some((&id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await
        .status()
            == 200
            && app
                .http
                .get(app.url("/health/ready"))
                .send()
                .await
                .unwrap()
                .status()
                == 200
    })
    .await;
    assert!(recovered, "no recovery after the database came back");
    app.token_for("payvalida", "client_secret", None).await;

    app.cleanup().await;
    drop(proxy);
    drop_database(&direct).await;
}

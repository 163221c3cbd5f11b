//! `GET /sandbox/requests/stream` read over HTTP as a script reads it: the
//! backlog then live requests, filters and resumption, keep-alives within
//! the idle timeout, and the end of every stream at shutdown.

use std::time::Duration;

use ficha::http::HttpSettings;
use serde_json::Value;

use super::payvalida_status;
use crate::helpers::{Backend, Options, TestApp};

/// A Server-Sent Events reader over a real HTTP response.
struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    /// Opens the stream at `query`, resuming after `last_id` if given.
    async fn open(app: &TestApp, query: &str, last_id: Option<u64>) -> Events {
        let mut req = app
            .http
            .get(app.url(&format!("/sandbox/requests/stream{query}")));
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        assert_eq!(resp.headers()["cache-control"], "no-cache");
        Events {
            resp,
            buf: String::new(),
        }
    }

    /// The next event or comment (its lines), `Err(true)` once the stream
    /// has ended, `Err(false)` when nothing came within `within`.
    async fn next(&mut self, within: Duration) -> Result<String, bool> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block = self.buf[..end].to_owned();
                self.buf.drain(..end + 2);
                return Ok(block);
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Err(_) => return Err(false),
                Ok(Ok(Some(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None) | Err(_)) => return Err(true),
            }
        }
    }

    /// The next `request` event's id and captured request, skipping
    /// keep-alives.
    async fn request(&mut self) -> (u64, Value) {
        loop {
            let block = self.next(Duration::from_secs(10)).await.unwrap();
            if block.starts_with(':') {
                continue;
            }
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_else(|| panic!("no {name} in {block:?}"))
                    .to_owned()
            };
            assert_eq!(field("event"), "request", "{block}");
            let data: Value = serde_json::from_str(&field("data")).unwrap();
            let id: u64 = field("id").parse().unwrap();
            assert_eq!(data["id"], id);
            return (id, data);
        }
    }
}

async fn nequi_request(app: &TestApp) {
    let resp = app
        .http
        .post(app.url("/nequi/oauth2/token?grant_type=client_credentials"))
        .basic_auth("nequi-sandbox", Some("nequi-sandbox-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn the_stream_sends_the_backlog_then_each_new_request_and_resumes() {
    let app = TestApp::spawn().await;
    assert_eq!(payvalida_status(&app).await, "200");
    nequi_request(&app).await;

    let mut all = Events::open(&app, "", None).await;
    let mut only_nequi = Events::open(&app, "?client_id=nequi-sandbox", None).await;
    // The backlog, oldest first, masked as `GET /sandbox/requests` is.
    let (first, r) = all.request().await;
    assert_eq!(r["client_id"], "payvalida");
    assert_eq!(r["headers"]["authorization"], "Basic ***");
    let (second, r) = all.request().await;
    assert_eq!((first, second), (1, 2));
    assert_eq!(r["client_id"], "nequi-sandbox");
    assert_eq!(only_nequi.request().await.0, 2);

    // Then each request as it is captured.
    assert_eq!(payvalida_status(&app).await, "200");
    nequi_request(&app).await;
    let (third, r) = all.request().await;
    assert_eq!((third, r["client_id"].as_str()), (3, Some("payvalida")));
    assert_eq!(all.request().await.0, 4);
    assert_eq!(only_nequi.request().await.0, 4);

    // A reconnecting EventSource sends the last id it saw.
    let mut resumed = Events::open(&app, "", Some(3)).await;
    assert_eq!(resumed.request().await.0, 4);
    let mut limited = Events::open(&app, "?limit=1", None).await;
    assert_eq!(limited.request().await.0, 4);

    let bad = app
        .http
        .get(app.url("/sandbox/requests/stream?limit=many"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    app.cleanup().await;
}

#[tokio::test]
async fn a_quiet_stream_outlives_the_idle_timeout_on_keep_alives() {
    let app = TestApp::spawn_on(
        Backend::from_env(),
        Options {
            http: HttpSettings {
                idle_timeout: Duration::from_secs(1),
                ..HttpSettings::default()
            },
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let mut events = Events::open(&app, "", None).await;
    // Three idle timeouts with nothing to send: comments keep it open.
    let quiet_until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut comments = 0;
    while tokio::time::Instant::now() < quiet_until {
        match events.next(Duration::from_millis(800)).await {
            Ok(block) => {
                assert_eq!(block, ": keep-alive");
                comments += 1;
            }
            Err(ended) => panic!("no keep-alive within 800 ms (ended: {ended})"),
        }
    }
    assert!(comments >= 4, "{comments} keep-alives in 3 s");
    // Still live.
    assert_eq!(payvalida_status(&app).await, "200");
    assert_eq!(events.request().await.0, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn every_stream_ends_when_the_server_stops() {
    let mut app = TestApp::spawn().await;
    assert_eq!(payvalida_status(&app).await, "200");
    let mut events = Events::open(&app, "", None).await;
    assert_eq!(events.request().await.0, 1);
    // The drain waits for every response: a stream that never ended would
    // hold the server up for ever.
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("the server did not stop with a stream open");
    loop {
        match events.next(Duration::from_secs(5)).await {
            Ok(block) => assert!(block.starts_with(':'), "{block}"),
            Err(ended) => {
                assert!(ended, "the stream is still open");
                break;
            }
        }
    }
    app.cleanup().await;
}

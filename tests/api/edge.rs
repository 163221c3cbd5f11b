//! The HTTP edge under slow and large input (SPEC §9): header and idle
//! timeouts, the header size limit, the connection cap, and a slowloris.
//! Slow clients are raw TCP streams so that every byte's timing is ours.
//! Timing checks are one-sided where they can be (a deadline is never
//! early, however loaded the machine) and generous where they cannot.

use std::time::Duration;

use ficha::http::HttpSettings;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use crate::helpers::{basic_header, Options, TestApp};

mod lifecycle;

/// How late a server-side deadline may be observed on a loaded machine.
const SLACK: Duration = Duration::from_secs(10);

async fn spawn(http: HttpSettings) -> TestApp {
    TestApp::spawn_on(
        crate::helpers::Backend::Sqlite,
        Options {
            http,
            ..Options::default()
        },
    )
    .await
    .unwrap()
}

fn settings(header_secs: u64, idle_secs: u64, max_connections: usize) -> HttpSettings {
    HttpSettings {
        header_timeout: Duration::from_secs(header_secs),
        idle_timeout: Duration::from_secs(idle_secs),
        max_connections,
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(("127.0.0.1", app.port)).await.unwrap()
}

fn get_health() -> Vec<u8> {
    b"GET /health HTTP/1.1\r\nHost: ficha\r\n\r\n".to_vec()
}

/// Reads one response; returns its status and body.
async fn read_response(s: &mut TcpStream) -> std::io::Result<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    Ok((status, body))
}

/// Sends `request` and reads its response, within `SLACK`.
async fn exchange(s: &mut TcpStream, request: &[u8]) -> (u16, String) {
    s.write_all(request).await.unwrap();
    timeout(SLACK, read_response(s))
        .await
        .expect("no response in time")
        .unwrap()
}

/// Waits until the server closes `s` (EOF or reset); returns when, or
/// `None` if it is still open at `deadline`. Bytes received are dropped.
async fn closed_by(s: &mut TcpStream, deadline: Instant) -> Option<Instant> {
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(Instant::now()),
            Ok(Ok(_)) => {}
        }
    }
}

/// True while the server has neither closed `s` nor sent anything.
fn still_open(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.try_read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_does_not_send_complete_headers_in_time_is_closed() {
    let app = spawn(settings(1, 60, 100)).await;
    let limit = Duration::from_secs(1);

    // One sends nothing; one trickles header lines, bytes that must not
    // buy it more time; neither ever ends its headers.
    let mut silent = connect(&app).await;
    let silent_since = Instant::now();
    let mut trickle = connect(&app).await;
    let trickle_since = Instant::now();
    trickle
        .write_all(b"GET /health HTTP/1.1\r\n")
        .await
        .unwrap();
    let (mut rx, tx) = trickle.into_split();
    let writer = tokio::spawn(async move {
        let mut tx = tx;
        for i in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if tx
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    });

    let closed = closed_by(&mut silent, silent_since + limit + SLACK)
        .await
        .expect("a silent connection was never closed");
    assert!(closed - silent_since >= limit, "closed early");

    let mut got = Vec::new();
    let read = timeout(limit + SLACK, rx.read_to_end(&mut got)).await;
    let closed = Instant::now();
    assert!(read.is_ok(), "a trickling connection was never closed");
    assert!(closed - trickle_since >= limit, "closed early");
    assert!(got.is_empty(), "answered a request never completed");
    writer.abort();

    // The server still serves.
    let mut fresh = connect(&app).await;
    assert_eq!(exchange(&mut fresh, &get_health()).await.0, 200);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_outlives_the_header_timeout_and_closes_at_the_idle_timeout()
{
    let (header, idle) = (Duration::from_secs(1), Duration::from_secs(4));
    let app = spawn(settings(1, 4, 100)).await;
    let mut s = connect(&app).await;
    assert_eq!(exchange(&mut s, &get_health()).await.0, 200);

    // Idle past the header timeout: hyper's own header timeout would
    // have closed it here.
    tokio::time::sleep(header * 2).await;
    assert!(
        still_open(&s),
        "idle connection closed at the header timeout"
    );
    let sent = Instant::now();
    assert_eq!(exchange(&mut s, &get_health()).await.0, 200);

    let closed = closed_by(&mut s, sent + idle + SLACK)
        .await
        .expect("an idle connection was never closed");
    assert!(closed - sent >= idle, "closed before the idle timeout");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_connection_and_a_slow_request_are_not_cut() {
    let idle = Duration::from_secs(2);
    let app = spawn(settings(1, 2, 100)).await;

    // Requests 0.7 s apart on one connection for twice the idle timeout.
    let mut s = connect(&app).await;
    let start = Instant::now();
    while start.elapsed() < idle * 2 {
        assert_eq!(exchange(&mut s, &get_health()).await.0, 200);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    // A token request whose body takes longer than both timeouts: its
    // headers came in time and its handler runs, so it is served.
    let body = b"grant_type=client_credentials&scope=transaction";
    let head = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: ficha\r\nAuthorization: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        basic_header("payvalida", "client_secret"),
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let sending = Instant::now();
    for piece in body.chunks(body.len().div_ceil(6)) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        s.write_all(piece).await.unwrap();
    }
    assert!(sending.elapsed() > idle, "the body was not slow");
    let (status, body) = timeout(SLACK, read_response(&mut s))
        .await
        .expect("no response in time")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("access_token"), "{body}");
    app.cleanup().await;
}

fn request_with_headers_of(bytes: usize) -> Vec<u8> {
    let start = "GET /health HTTP/1.1\r\nHost: ficha\r\nX-Pad: ";
    let end = "\r\n\r\n";
    let pad = bytes - start.len() - end.len();
    format!("{start}{}{end}", "a".repeat(pad)).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_headers_over_16_kib_are_answered_431() {
    let app = spawn(HttpSettings::default()).await;

    let mut s = connect(&app).await;
    let (status, _) = exchange(&mut s, &request_with_headers_of(15 * 1024)).await;
    assert_eq!(status, 200);

    let mut s = connect(&app).await;
    let (status, _) = exchange(&mut s, &request_with_headers_of(17 * 1024)).await;
    assert_eq!(status, 431);
    let closed = closed_by(&mut s, Instant::now() + SLACK).await;
    assert!(closed.is_some(), "kept the connection after a 431");

    // The boundary itself: 16 KiB exactly is served, one byte more is not.
    let mut s = connect(&app).await;
    let limit = ficha::http::MAX_HEADER_BYTES;
    assert_eq!(
        exchange(&mut s, &request_with_headers_of(limit)).await.0,
        200
    );
    let mut s = connect(&app).await;
    let (status, _) = exchange(&mut s, &request_with_headers_of(limit + 1)).await;
    assert_eq!(status, 431);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_over_max_connections_waits_until_another_closes() {
    let app = spawn(settings(10, 60, 2)).await;
    let mut a = connect(&app).await;
    let mut b = connect(&app).await;
    assert_eq!(exchange(&mut a, &get_health()).await.0, 200);
    assert_eq!(exchange(&mut b, &get_health()).await.0, 200);

    // The kernel completes the handshake (backlog); the server does not
    // take the connection while both slots are held.
    let mut c = connect(&app).await;
    c.write_all(&get_health()).await.unwrap();
    let early = timeout(Duration::from_secs(1), read_response(&mut c)).await;
    assert!(
        early.is_err(),
        "served a third connection with a cap of two"
    );

    // Still open ones keep being served.
    assert_eq!(exchange(&mut b, &get_health()).await.0, 200);

    drop(a);
    let (status, _) = timeout(SLACK, read_response(&mut c))
        .await
        .expect("the waiting connection was not served after a slot freed")
        .unwrap();
    assert_eq!(status, 200);
    app.cleanup().await;
}

/// The soft limit on open files, from /proc (Linux), if known.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_does_not_stop_health_or_tokens_and_its_sockets_are_closed() {
    // Each slow socket costs this process two descriptors (both ends);
    // leave room for the rest of the suite running alongside.
    let sockets = open_files_limit()
        .map_or(2000, |n| n.saturating_sub(3000) / 2)
        .min(2000);
    assert!(sockets >= 500, "too few open files allowed for this test");
    // The defaults: the header timeout is the window the checks below
    // must fit in while every slow socket is still open.
    let header = Duration::from_secs(10);
    let app = spawn(HttpSettings::default()).await;

    let opened_from = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let port = app.port;
    // A few hundred connects at a time: more would overflow the listen
    // backlog, and a dropped SYN is retried only after a second.
    let connecting = std::sync::Arc::new(tokio::sync::Semaphore::new(200));
    for i in 0..sockets {
        let connecting = connecting.clone();
        tasks.spawn(async move {
            let _turn = connecting.acquire().await.unwrap();
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            s.write_all(format!("GET /health HTTP/1.1\r\nHost: ficha\r\nX-{i}: ").as_bytes())
                .await
                .unwrap();
            s
        });
    }
    let mut slow = Vec::with_capacity(sockets);
    while let Some(s) = tasks.join_next().await {
        slow.push(s.unwrap());
    }
    let opened_in = opened_from.elapsed();

    // Another client, on its own connections.
    let http = reqwest::Client::new();
    let asked = Instant::now();
    let health = http.get(app.url("/health")).send().await.unwrap();
    let health_in = asked.elapsed();
    assert_eq!(health.status(), 200);
    let asked = Instant::now();
    let token = http
        .post(app.url("/oauth2/token"))
        .header("Authorization", basic_header("payvalida", "client_secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let token_in = asked.elapsed();
    assert_eq!(token.status(), 200);
    eprintln!(
        "{sockets} slow sockets opened in {opened_in:?}; /health in {health_in:?}, token in {token_in:?}"
    );
    assert!(
        health_in < Duration::from_secs(5),
        "/health took {health_in:?}"
    );
    assert!(token_in < Duration::from_secs(5), "token took {token_in:?}");
    let open = slow.iter().filter(|s| still_open(s)).count();
    assert_eq!(
        open, sockets,
        "slow sockets closed before the header timeout"
    );

    // Every slow socket is closed by the header timeout, none early.
    let deadline = opened_from + opened_in + header + SLACK;
    let mut waits = tokio::task::JoinSet::new();
    for mut s in slow {
        waits.spawn(async move { closed_by(&mut s, deadline).await });
    }
    while let Some(closed) = waits.join_next().await {
        let closed = closed.unwrap().expect("a slow socket was never closed");
        assert!(
            closed - opened_from >= header,
            "closed before the header timeout"
        );
    }
    app.cleanup().await;
}

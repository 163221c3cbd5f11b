//! Authentication under load, restarts and attack (SPEC §9): a right
//! secret is never refused because of others, cold starts coalesce, the
//! throttles count failures by (id, address) and by address, hashing is
//! bounded, and a failure costs the same whether the id exists.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::helpers::{basic_header, Backend, Options, TestApp};

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// An HTTP client whose connections come from `source` (a loopback alias).
pub fn client_from(source: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source)
        .build()
        .unwrap()
}

async fn token_status(
    http: &reqwest::Client,
    app: &TestApp,
    id: &str,
    secret: &str,
) -> reqwest::StatusCode {
    http.post(app.url("/oauth2/token"))
        .header("Authorization", basic_header(id, secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
}

/// How many failures a bucket draining one every `every` seconds has let
/// go since `started`, plus one for the partial interval.
fn drained(started: Instant, every: u64) -> u64 {
    started.elapsed().as_secs() / every + 1
}

fn strict() -> Options {
    // The SPEC's defaults: 10 failures a minute per (id, address), 120 per
    // address.
    Options {
        throttle_client_per_minute: 10,
        throttle_address_per_minute: 120,
        ..Options::default()
    }
}

#[tokio::test]
async fn concurrent_first_requests_after_a_restart_share_one_verification() {
    let mut app = TestApp::spawn_on(Backend::from_env(), strict())
        .await
        .unwrap();
    let (id, secret) = app.create_client(&["--scopes", "transaction"]);
    app.token_for(&id, &secret, None).await;
    // A restart forgets every verified secret.
    app.stop().await;
    app.start(&strict()).await.unwrap();
    let before = app.metric("ficha_hash_verifications_total").await;
    assert_eq!(before, 0);
    let requests = (0..48).map(|_| token_status(&app.http, &app, &id, &secret));
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(app.metric("ficha_hash_verifications_total").await, 1);
    assert_eq!(app.metric("ficha_auth_throttled_total").await, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn a_flood_aimed_at_a_client_id_never_locks_it_out_from_another_address() {
    let app = TestApp::spawn_on(Backend::from_env(), strict())
        .await
        .unwrap();
    let (id, secret) = app.create_client(&["--scopes", "transaction"]);
    let attacker = client_from(ATTACKER);
    let started = Instant::now();
    let mut statuses = Vec::new();
    for i in 0..30 {
        statuses.push(
            token_status(&attacker, &app, &id, &format!("guess-{i}"))
                .await
                .as_u16(),
        );
    }
    // The bucket drains one failure every 6 s: on a slow machine a few
    // more guesses may be let through, never more than that.
    let drained = drained(started, 6);
    let hashed = statuses.iter().filter(|s| **s == 401).count() as u64;
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert!(hashed <= 10 + drained, "{statuses:?}");
    assert_eq!(
        statuses.len() as u64 - hashed,
        statuses.iter().filter(|s| **s == 429).count() as u64
    );
    // Only the counted failures were hashed.
    assert_eq!(app.metric("ficha_hash_verifications_total").await, hashed);
    // The client has never been verified here: its cold request, from its
    // own address, during the attack, gets its token.
    assert_eq!(token_status(&app.http, &app, &id, &secret).await, 200);
    // And a repeated wrong secret is refused without hashing or counting.
    let other = client_from(OTHER);
    for _ in 0..20 {
        assert_eq!(token_status(&other, &app, &id, "same-guess").await, 401);
    }
    assert_eq!(
        app.metric("ficha_hash_verifications_total").await,
        hashed + 2
    );
    assert_eq!(
        app.metric("ficha_auth_rejected_without_hashing_total")
            .await,
        19
    );
    app.cleanup().await;
}

#[tokio::test]
async fn an_id_spray_from_one_address_is_stopped_before_the_database() {
    let app = TestApp::spawn_on(
        Backend::from_env(),
        Options {
            throttle_client_per_minute: 10,
            throttle_address_per_minute: 20,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let attacker = client_from(ATTACKER);
    let started = Instant::now();
    let mut throttled: u64 = 0;
    for i in 0..200 {
        let s = token_status(&attacker, &app, &format!("ghost-{i}"), "x").await;
        match s.as_u16() {
            429 => throttled += 1,
            401 => {}
            other => panic!("{other}"),
        }
    }
    // 20 a minute drains one every 3 s.
    let hashed = 200 - throttled;
    assert!(
        hashed >= 20 && hashed <= 20 + drained(started, 3),
        "{hashed}"
    );
    assert_eq!(app.metric("ficha_hash_verifications_total").await, hashed);
    // Another address is not affected.
    assert_eq!(
        token_status(&client_from(OTHER), &app, "payvalida", "client_secret").await,
        200
    );
    app.cleanup().await;
}

#[tokio::test]
async fn basic_is_refused_for_a_client_registered_for_the_body_only() {
    let app = TestApp::spawn().await;
    let (id, secret) = app.create_client(&[
        "--scopes",
        "transaction",
        "--auth-methods",
        "client_secret_post",
    ]);
    let resp = app
        .post_token(
            Some((&id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    let resp = app
        .post_token(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_full_hashing_queue_answers_503_with_retry_after() {
    let app = TestApp::spawn_on(
        Backend::Sqlite,
        Options {
            throttle_client_per_minute: 0,
            throttle_address_per_minute: 0,
            hash_concurrency: 1,
            hash_queue_size: 1,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let requests = (0..16).map(|i| {
        let app = &app;
        async move {
            app.post_token(
                Some(("payvalida", &format!("wrong-{i}"))),
                &[("grant_type", "client_credentials")],
            )
            .await
        }
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut busy = 0;
    for r in &responses {
        match r.status().as_u16() {
            401 => {}
            503 => {
                busy += 1;
                assert_eq!(r.headers()["retry-after"], "1");
            }
            other => panic!("{other}"),
        }
    }
    assert!(busy > 0, "the queue never filled");
    assert!(app.metric("ficha_hash_queue_peak").await <= 1);
}

/// The median of the ratios of `n` adjacent pairs of requests, one with
/// each of two credentials: pairing keeps each comparison within a few
/// milliseconds, so the noise of a shared machine falls on both alike.
async fn paired_median_ratio(app: &TestApp, a: (&str, &str), b: (&str, &str), n: usize) -> f64 {
    let mut ratios = Vec::new();
    for i in 0..n {
        let mut took = [Duration::ZERO; 2];
        // Alternate which goes first, so that neither always pays for a
        // scheduler wake-up.
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let (id, secret) = [a, b][k];
            // A fresh wrong secret each time: a repeated one is not hashed.
            let secret = format!("{secret}{i}");
            let started = Instant::now();
            let s = token_status(&app.http, app, id, &secret).await;
            took[k] = started.elapsed();
            assert_eq!(s, 401);
        }
        ratios.push(took[0].as_secs_f64() / took[1].as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    ratios[n / 2]
}

#[tokio::test]
async fn a_failure_takes_as_long_whether_the_id_exists_or_not() {
    let app = TestApp::spawn_on(
        Backend::Sqlite,
        Options {
            throttle_client_per_minute: 0,
            throttle_address_per_minute: 0,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let (plain, _) = app.create_client(&["--scopes", "transaction"]);
    let (odd, _) = app.create_client(&[
        "--scopes",
        "transaction",
        "--secret",
        "a+b%2Fc-0123456789abcdefghijklmnop",
    ]);
    // Both shapes of Basic header: plain, and one whose `+` and `%` give it
    // two readings.
    for (known, secret) in [(plain.as_str(), "wrong"), (odd.as_str(), "wr+ng%21")] {
        // Within 15 %; a real difference (a second argon2 pass per
        // reading) is a ratio of 2 or 0.5, so a few tries absorb a noisy
        // machine, not a leak.
        let mut within = false;
        let mut seen = Vec::new();
        for _ in 0..5 {
            let ratio = paired_median_ratio(&app, (known, secret), ("ghost-id", secret), 21).await;
            seen.push(ratio);
            if (0.85..=1.15).contains(&ratio) {
                within = true;
                break;
            }
        }
        assert!(
            within,
            "known/unknown paired median ratios {seen:?} for {secret:?}"
        );
    }
}

//! The load driver of `bench/coldstart` and `bench/flood` (SPEC §9):
//! legitimate clients, cold clients and wrong-secret floods against a
//! running ficha, each from its own loopback source address, bounded in
//! time. Prints figures; asserts nothing (the scripts compare them with the
//! targets).
//!
//!     authbench coldstart --url URL --clients FILE [--conns 64] [--secs 5]
//!     authbench flood --url URL --clients FILE --cold ID:SECRET [--rate 2000] [--secs 10]
//!
//! FILE holds one `id:secret` per line. Traffic goes only to the URL given,
//! which the scripts point at 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every client at `conns` connections from one address, right secrets.
    Coldstart {
        #[arg(long)]
        url: String,
        #[arg(long)]
        clients: String,
        #[arg(long, default_value_t = 64)]
        conns: usize,
        #[arg(long, default_value_t = 5)]
        secs: u64,
    },
    /// Legitimate clients at a fixed rate from 127.0.0.1, first alone, then
    /// during a flood from 127.0.0.2, with a cold client from 127.0.0.3.
    Flood {
        #[arg(long)]
        url: String,
        #[arg(long)]
        clients: String,
        /// A client never used before: `id:secret`.
        #[arg(long)]
        cold: String,
        #[arg(long, default_value_t = 2000)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 32)]
        flood_conns: usize,
    },
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn client_from(source: &str, conns: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .pool_max_idle_per_host(conns)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn read_clients(path: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

async fn token(http: &reqwest::Client, url: &str, id: &str, secret: &str) -> u16 {
    match http
        .post(url)
        .header("Authorization", basic(id, secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
    {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, u64>,
    latencies: Vec<Duration>,
}

impl Tally {
    fn add(&mut self, status: u16, took: Duration) {
        *self.statuses.entry(status).or_default() += 1;
        self.latencies.push(took);
    }

    fn report(&mut self, label: &str) -> (f64, Duration) {
        let total: u64 = self.statuses.values().sum();
        let ok = self.statuses.get(&200).copied().unwrap_or(0);
        self.latencies.sort();
        let pct = |p: f64| {
            self.latencies
                .get(
                    ((self.latencies.len() as f64 * p) as usize)
                        .min(self.latencies.len().saturating_sub(1)),
                )
                .copied()
                .unwrap_or_default()
        };
        let (p50, p99) = (pct(0.50), pct(0.99));
        let rate = if total == 0 {
            0.0
        } else {
            100.0 * ok as f64 / total as f64
        };
        println!(
            "{label}: {total} requests, statuses {:?}, success {rate:.2} %, p50 {:.2} ms, p99 {:.2} ms",
            self.statuses,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        (rate, p99)
    }
}

async fn coldstart(url: String, clients: Vec<(String, String)>, conns: usize, secs: u64) {
    let http = client_from("127.0.0.1", conns);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let next = Arc::new(AtomicUsize::new(0));
    let clients = Arc::new(clients);
    let until = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..conns)
        .map(|_| {
            let (http, tally, next, clients, url) = (
                http.clone(),
                tally.clone(),
                next.clone(),
                clients.clone(),
                url.clone(),
            );
            tokio::spawn(async move {
                while Instant::now() < until {
                    let i = next.fetch_add(1, Ordering::Relaxed) % clients.len();
                    let (id, secret) = &clients[i];
                    let started = Instant::now();
                    let s = token(&http, &url, id, secret).await;
                    tally.lock().unwrap().add(s, started.elapsed());
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    tally.lock().unwrap().report(&format!(
        "{} client(s) at {conns} connections for {secs} s",
        clients.len()
    ));
}

/// Requests at `rate` a second until `until`, round-robin over `clients`.
async fn paced(
    http: reqwest::Client,
    url: String,
    clients: Arc<Vec<(String, String)>>,
    rate: u64,
    until: Instant,
) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    let mut i = 0usize;
    while Instant::now() < until {
        tick.tick().await;
        let (http, url, tally, clients) =
            (http.clone(), url.clone(), tally.clone(), clients.clone());
        let n = i;
        i += 1;
        tasks.push(tokio::spawn(async move {
            let (id, secret) = &clients[n % clients.len()];
            let started = Instant::now();
            let s = token(&http, &url, id, secret).await;
            tally.lock().unwrap().add(s, started.elapsed());
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Arc::try_unwrap(tally).ok().unwrap().into_inner().unwrap()
}

async fn metric(url: &str, name: &str) -> u64 {
    let base = url.trim_end_matches("/oauth2/token");
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

async fn flood(
    url: String,
    clients: Vec<(String, String)>,
    cold: String,
    rate: u64,
    secs: u64,
    flood_conns: usize,
) {
    let clients = Arc::new(clients);
    let legit = client_from("127.0.0.1", 64);
    // Warm: every legitimate client verified once.
    for (id, secret) in clients.iter() {
        assert_eq!(
            token(&legit, &url, id, secret).await,
            200,
            "warm-up of {id}"
        );
    }
    let window = Duration::from_secs(secs);
    let mut alone = paced(
        legit.clone(),
        url.clone(),
        clients.clone(),
        rate,
        Instant::now() + window,
    )
    .await;
    let (alone_rate, alone_p99) = alone.report(&format!("legitimate, {rate}/s, alone"));

    let until = Instant::now() + window;
    let sent = Arc::new(AtomicUsize::new(0));
    let floods: Vec<_> = (0..flood_conns)
        .map(|w| {
            let (url, clients, sent) = (url.clone(), clients.clone(), sent.clone());
            let http = client_from("127.0.0.2", 1);
            tokio::spawn(async move {
                let mut n = 0u64;
                let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
                while Instant::now() < until {
                    n += 1;
                    // Half at the legitimate ids, half at random unknown ones.
                    let (id, secret) = if n % 2 == 0 {
                        let (id, _) = &clients[(n as usize + w) % clients.len()];
                        (id.clone(), format!("wrong-{w}-{n}"))
                    } else {
                        (format!("ghost-{w}-{n}"), format!("wrong-{n}"))
                    };
                    *statuses
                        .entry(token(&http, &url, &id, &secret).await)
                        .or_default() += 1;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                statuses
            })
        })
        .collect();
    let cold_task = {
        let url = url.clone();
        tokio::spawn(async move {
            tokio::time::sleep(window / 2).await;
            let http = client_from("127.0.0.3", 1);
            let (id, secret) = cold.split_once(':').unwrap();
            let started = Instant::now();
            let s = token(&http, &url, id, secret).await;
            (s, started.elapsed())
        })
    };
    let mut during = paced(legit, url.clone(), clients.clone(), rate, until).await;
    let mut flood_statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for f in floods {
        for (s, n) in f.await.unwrap() {
            *flood_statuses.entry(s).or_default() += n;
        }
    }
    let (flood_rate, flood_p99) = during.report(&format!("legitimate, {rate}/s, during the flood"));
    let (cold_status, cold_took) = cold_task.await.unwrap();
    println!(
        "flood from 127.0.0.2: {} requests ({:.0}/s), statuses {flood_statuses:?}",
        sent.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed) as f64 / secs as f64
    );
    println!(
        "cold client from 127.0.0.3 during the flood: status {cold_status} in {:.1} ms",
        cold_took.as_secs_f64() * 1e3
    );
    let peak = metric(&url, "ficha_hash_queue_peak").await;
    let runs = metric(&url, "ficha_hash_verifications_total").await;
    println!("hash queue peak: {peak} job(s); verifications run in all: {runs}");
    println!(
        "SUMMARY success_alone={alone_rate:.2} p99_alone_ms={:.2} success_flood={flood_rate:.2} p99_flood_ms={:.2} cold_status={cold_status} cold_ms={:.1} queue_peak={peak}",
        alone_p99.as_secs_f64() * 1e3,
        flood_p99.as_secs_f64() * 1e3,
        cold_took.as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    match Cli::parse().command {
        Cmd::Coldstart {
            url,
            clients,
            conns,
            secs,
        } => {
            coldstart(url, read_clients(&clients), conns, secs).await;
        }
        Cmd::Flood {
            url,
            clients,
            cold,
            rate,
            secs,
            flood_conns,
        } => {
            flood(url, read_clients(&clients), cold, rate, secs, flood_conns).await;
        }
    }
}

//! Crash safety: the real binary, server and CLI, killed with SIGKILL at
//! random points in the middle of client creates and updates, secret
//! rotations, key generations and rotations and server start-ups, on SQLite
//! and PostgreSQL. Afterwards the store must be whole: SQLite's integrity
//! check passes; every client is there with a live secret or not at all, and
//! every client whose create (or last rotation) printed a secret gets a token
//! with it; every key file parses and every published key is loadable; the
//! server starts, sweeps the temporary files killed writers left, and issues
//! tokens. `CRASH_SEED=N` replays a run (each run prints its seed).

mod harness;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::helpers::{basic_header, drop_database, fresh_database, verify_with_jwks, Backend};
use harness::{check_key_dir, hammer, listening, sqlite_integrity, Actor, Op, Site};

/// Processes killed mid-run per backend, and the time the loop may take.
const KILLS: usize = 40;
const BUDGET: Duration = Duration::from_secs(45);

/// What the test knows of its clients: id → the secret a finished create or
/// rotation printed (`None` once a rotation died, leaving it unknown).
type Known = BTreeMap<String, Option<String>>;

async fn crash_loop(site: &Site, rng: &mut StdRng) -> (usize, Known) {
    let started = Instant::now();
    let ready = Arc::new(AtomicBool::new(false));
    let mut known = Known::new();
    let (mut kills, mut round, mut next_id) = (0, 0, 0);
    while kills < KILLS && started.elapsed() < BUDGET {
        round += 1;
        let mut ops = Vec::new();
        if round <= 2 || rng.gen_bool(0.4) {
            ops.push(Op::Serve);
        }
        // Key commands only once the first start-up has made the keys:
        // two first start-ups at once would each make an active key.
        if ready.load(Ordering::Relaxed) && rng.gen_bool(0.5) {
            let alg = if rng.gen_bool(0.3) { "RS256" } else { "ES256" };
            ops.push(if rng.gen_bool(0.7) {
                Op::KeyRotate(alg)
            } else {
                Op::KeyGenerate(alg)
            });
        }
        let mut targets: Vec<String> = known.keys().cloned().collect();
        for _ in 0..rng.gen_range(1..=2) {
            if targets.is_empty() || rng.gen_bool(0.4) {
                next_id += 1;
                ops.push(Op::Create(format!("crash-{next_id}")));
            } else {
                let id = targets.swap_remove(rng.gen_range(0..targets.len()));
                ops.push(if rng.gen_bool(0.5) {
                    Op::Update(id)
                } else {
                    Op::RotateSecret(id)
                });
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut actors = Vec::new();
        let mut hammers = Vec::new();
        for (n, op) in ops.into_iter().enumerate() {
            let name = format!("r{round}-{n}");
            let (args, delay_ms): (Vec<String>, u64) = match &op {
                Op::Serve => {
                    // Until one start-up has finished, give one room to.
                    let max = if ready.load(Ordering::Relaxed) || round < 3 {
                        1500
                    } else {
                        6000
                    };
                    (
                        ["serve", "--sandbox", "--bind", "127.0.0.1:0"]
                            .map(String::from)
                            .to_vec(),
                        rng.gen_range(0..max),
                    )
                }
                Op::Create(id) => (
                    ["client", "create", "--id", id, "--scopes", "transaction"]
                        .map(String::from)
                        .to_vec(),
                    rng.gen_range(0..350),
                ),
                Op::Update(id) => (
                    vec![
                        "client".into(),
                        "update".into(),
                        id.clone(),
                        "--name".into(),
                        format!("round {round}"),
                    ],
                    rng.gen_range(0..250),
                ),
                Op::RotateSecret(id) => (
                    ["client", "rotate-secret", id].map(String::from).to_vec(),
                    rng.gen_range(0..200),
                ),
                Op::KeyRotate(alg) => (
                    ["key", "rotate", "--alg", alg].map(String::from).to_vec(),
                    rng.gen_range(0..300),
                ),
                Op::KeyGenerate(alg) => (
                    ["key", "generate", "--alg", alg].map(String::from).to_vec(),
                    rng.gen_range(0..300),
                ),
            };
            let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
            if !matches!(op, Op::Serve) {
                args.push("--json");
            }
            let (mut cmd, out) = site.command(&args, &name);
            if let Op::Serve = op {
                let known_creds = known
                    .iter()
                    .filter_map(|(id, s)| Some((id.clone(), s.clone()?)))
                    .collect();
                hammers.push(hammer(
                    out.clone(),
                    known_creds,
                    ready.clone(),
                    stop.clone(),
                ));
            }
            actors.push(Actor {
                op,
                child: cmd.spawn().unwrap(),
                out,
                kill_at: Instant::now() + Duration::from_millis(delay_ms),
                ended: None,
            });
        }
        while actors.iter().any(|a| a.ended.is_none()) {
            for a in actors.iter_mut().filter(|a| a.ended.is_none()) {
                if let Some(status) = a.child.try_wait().unwrap() {
                    a.ended = Some((false, status));
                } else if Instant::now() >= a.kill_at {
                    a.child.kill().unwrap();
                    a.ended = Some((true, a.child.wait().unwrap()));
                    kills += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        stop.store(true, Ordering::Relaxed);
        for h in hammers {
            h.await.unwrap();
        }
        for a in &actors {
            settle(a, &mut known);
        }
    }
    (kills, known)
}

/// Learns what a finished process printed; a process that failed on its
/// own (not killed) fails the test.
fn settle(a: &Actor, known: &mut Known) {
    let Some((killed, status)) = a.ended else {
        unreachable!()
    };
    if killed {
        if let Op::RotateSecret(id) = &a.op {
            // Its new secret may or may not be the live one now.
            known.insert(id.clone(), None);
        }
        return;
    }
    let stderr = std::fs::read_to_string(a.out.with_extension("err")).unwrap_or_default();
    assert!(
        status.success(),
        "{:?} failed by itself after earlier kills ({status}): {stderr}",
        a.op
    );
    let stdout = std::fs::read_to_string(&a.out).unwrap();
    match &a.op {
        Op::Create(id) | Op::RotateSecret(id) => {
            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(v["client_id"], id.as_str());
            let secret = v["client_secret"].as_str().unwrap().to_owned();
            known.insert(id.clone(), Some(secret));
        }
        _ => {}
    }
}

async fn run(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let Some(db_url) = fresh_database(backend, &dir).await else {
        return;
    };
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let site = Site {
        db_url,
        key_dir: dir.path().join("keys"),
        logs,
    };
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash test on {backend:?}: CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);

    let (kills, mut known) = crash_loop(&site, &mut rng).await;
    assert!(kills >= KILLS / 3, "only {kills} processes were killed");
    // The store still takes writes.
    let after = site.cli_json(&[
        "client",
        "create",
        "--id",
        "after",
        "--scopes",
        "transaction",
    ]);
    known.insert(
        "after".into(),
        Some(after["client_secret"].as_str().unwrap().to_owned()),
    );

    // The database.
    if backend == Backend::Sqlite {
        assert_eq!(sqlite_integrity(&site.db_url).await, "ok");
    }
    let clients = site.cli_json(&["client", "list"]);
    let clients: BTreeMap<String, &serde_json::Value> = clients
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["client_id"].as_str().unwrap().to_owned(), c))
        .collect();
    for (id, c) in &clients {
        // The Fegora seed is a public client: it has no secret by design.
        if id != "apiApp" {
            assert!(
                !c["secrets"].as_array().unwrap().is_empty(),
                "client {id} is there without a live secret: {c}"
            );
        }
    }
    for id in known.keys() {
        assert!(
            clients.contains_key(id),
            "client {id} was created, then lost"
        );
    }

    // The keys: every file whole, every published key's file there.
    let (pems, temps) = check_key_dir(&site.key_dir);
    let keys = site.cli_json(&["key", "list"]);
    let live: Vec<String> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] != "retired")
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    for kid in &live {
        assert!(
            pems.contains(kid),
            "key {kid} is in the ring without its file"
        );
    }
    // A writer killed mid-write leaves a temporary file like this one; the
    // ring's next load must ignore it and remove it.
    let planted = site
        .key_dir
        .join(".planted.pem.tmp.4294967295.00000000000000ff");
    std::fs::write(&planted, "-----BEGIN PRIVATE KEY-----\nMIGH").unwrap();

    // The server starts, sweeps, publishes every key and issues tokens.
    let (mut cmd, out) = site.command(&["serve", "--sandbox", "--bind", "127.0.0.1:0"], "final");
    let mut server = Actor {
        op: Op::Serve,
        child: cmd.spawn().unwrap(),
        out: out.clone(),
        kill_at: Instant::now(),
        ended: None,
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let base = loop {
        if let Some(base) = listening(&out) {
            if let Ok(r) = http.get(format!("{base}/health/ready")).send().await {
                if r.status() == 200 {
                    break base;
                }
            }
        }
        if let Some(status) = server.child.try_wait().unwrap() {
            server.ended = Some((false, status));
            panic!(
                "the server did not start after the crashes: {}",
                std::fs::read_to_string(out.with_extension("err")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "the server did not get ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for t in temps.iter().chain([&planted]) {
        assert!(!t.exists(), "{} was not swept", t.display());
    }
    let jwks: serde_json::Value = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    for kid in &live {
        assert!(
            published.contains(&kid.as_str()),
            "key {kid} is not published"
        );
    }
    let mut creds = vec![("payvalida".to_owned(), "client_secret".to_owned())];
    creds.extend(
        known
            .iter()
            .filter_map(|(id, s)| Some((id.clone(), s.clone()?))),
    );
    for (id, secret) in &creds {
        let resp = http
            .post(format!("{base}/oauth2/token"))
            .header("Authorization", basic_header(id, secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "client {id}: {body}");
        verify_with_jwks(body["access_token"].as_str().unwrap(), &jwks).unwrap();
    }
    eprintln!(
        "crash test on {backend:?}: {kills} kills, {} clients, {} with a known secret, {} live keys",
        clients.len(),
        creds.len() - 2,
        live.len()
    );
    let status = crate::helpers::terminate(&mut server.child);
    server.ended = Some((false, status));
    drop_database(&site.db_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_write_leaves_a_usable_store_on_sqlite() {
    run(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_write_leaves_a_usable_store_on_postgres() {
    run(Backend::Postgres).await;
}

/// A server and a CLI command opening a new SQLite database at once both
/// migrate it: sqlx's migration lock is a no-op on SQLite, so without a
/// lock of ficha's own the slower one failed on a table the other made.
#[tokio::test]
async fn processes_opening_a_new_sqlite_database_at_once_all_migrate_it() {
    for _ in 0..3 {
        let dir = tempfile::TempDir::new().unwrap();
        let url = format!("sqlite://{}/ficha.db", dir.path().display());
        let children: Vec<Child> = (0..6)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_ficha"))
                    .arg("migrate")
                    .env("FICHA_DATABASE_URL", &url)
                    .env_remove("FICHA_CONFIG")
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(sqlite_integrity(&url).await, "ok");
    }
}

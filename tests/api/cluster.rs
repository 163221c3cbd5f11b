//! Several real `ficha serve` processes on one PostgreSQL database: one
//! JWKS, each other's tokens, and every change reaching all of them within
//! 5 seconds (SPEC §7, §8).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{
    basic_header, drop_database, fresh_database, jwt_parts, verify_with_jwks, Backend,
};

/// Child processes killed when the test ends, however it ends.
struct Instances(Vec<(Child, String)>);

impl Drop for Instances {
    fn drop(&mut self) {
        for (child, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn ficha(db: &str, kek: &str, key_dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ficha"));
    c.env("FICHA_DATABASE_URL", db)
        .env("FICHA_KEK", kek)
        .env("FICHA_KEY_DIR", key_dir)
        .env_remove("FICHA_CONFIG");
    c
}

fn cli(db: &str, kek: &str, key_dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = ficha(db, kek, key_dir)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Starts `ficha serve` on a free port and returns it with its base URL.
fn start(db: &str, kek: &str, key_dir: &std::path::Path) -> (Child, String) {
    let mut child = ficha(db, kek, key_dir)
        // The test polls with wrong secrets many times a second; the
        // failure throttle (tested elsewhere) would answer 429 to the poll.
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--throttle-client-per-minute",
            "0",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("ficha exited before listening")
            .unwrap();
        if let Some(addr) = line.strip_prefix("ficha listening on ") {
            break addr.trim().to_owned();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

async fn token(http: &reqwest::Client, base: &str, id: &str, secret: &str) -> reqwest::Response {
    http.post(format!("{base}/oauth2/token"))
        .header("Authorization", basic_header(id, secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

async fn jwks(http: &reqwest::Client, base: &str) -> serde_json::Value {
    http.get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `pred` on every instance concurrently; returns the slowest
/// instance's time to converge, failing past `limit`.
async fn all_within<F, Fut>(bases: &[String], limit: Duration, pred: F) -> Duration
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let started = Instant::now();
    let polls: Vec<_> = bases
        .iter()
        .map(|base| {
            let first = pred(base.clone());
            let again: Vec<_> = (0..100).map(|_| pred(base.clone())).collect();
            let base = base.clone();
            tokio::spawn(async move {
                if first.await {
                    return Ok(started.elapsed());
                }
                for check in again {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if check.await {
                        return Ok(started.elapsed());
                    }
                    if started.elapsed() > limit {
                        break;
                    }
                }
                Err(base)
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for p in polls {
        match p.await.unwrap() {
            Ok(t) => slowest = slowest.max(t),
            Err(base) => panic!("{base} did not converge within {limit:?}"),
        }
    }
    assert!(slowest <= limit, "converged only after {slowest:?}");
    slowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_database_agree_and_converge_within_five_seconds() {
    let dir = tempfile::TempDir::new().unwrap();
    let Some(db) = fresh_database(Backend::Postgres, &dir).await else {
        return;
    };
    let kek = ficha::keys::Kek::generate()
        .unwrap()
        .to_base64()
        .to_string();
    let admin_keys = dir.path().join("admin-keys");
    let key = cli(&db, &kek, &admin_keys, &["key", "generate"]);
    assert_eq!(
        key["storage"], "database",
        "with a KEK the ring lives in the database"
    );
    let created = cli(
        &db,
        &kek,
        &admin_keys,
        &["client", "create", "--scopes", "transaction"],
    );
    let (id, secret) = (
        created["client_id"].as_str().unwrap().to_owned(),
        created["client_secret"].as_str().unwrap().to_owned(),
    );

    // Each instance has only the database URL and the KEK: its own, empty key directory.
    let mut instances = Instances(Vec::new());
    for i in 0..3 {
        instances
            .0
            .push(start(&db, &kek, &dir.path().join(format!("node{i}"))));
    }
    let bases: Vec<String> = instances.0.iter().map(|(_, b)| b.clone()).collect();
    let http = reqwest::Client::new();

    // One JWKS; each instance's token verifies against every instance's JWKS.
    let sets = [
        jwks(&http, &bases[0]).await,
        jwks(&http, &bases[1]).await,
        jwks(&http, &bases[2]).await,
    ];
    assert!(sets[0] == sets[1] && sets[1] == sets[2]);
    for base in &bases {
        let resp = token(&http, base, &id, &secret).await;
        assert_eq!(resp.status(), 200);
        let t: serde_json::Value = resp.json().await.unwrap();
        for set in &sets {
            verify_with_jwks(t["access_token"].as_str().unwrap(), set).unwrap();
        }
    }

    // Disable through the CLI: refused everywhere within 5 s.
    cli(&db, &kek, &admin_keys, &["client", "disable", &id]);
    let took = all_within(&bases, Duration::from_secs(5), |b| {
        let (http, id, secret) = (http.clone(), id.clone(), secret.clone());
        async move { token(&http, &b, &id, &secret).await.status() == 401 }
    })
    .await;
    eprintln!("disable reached 3 instances in {took:?}");
    cli(&db, &kek, &admin_keys, &["client", "enable", &id]);

    // Secret rotation without grace: the old secret dies everywhere, the new works.
    let rotated = cli(&db, &kek, &admin_keys, &["client", "rotate-secret", &id]);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    let took = all_within(&bases, Duration::from_secs(5), |b| {
        let (http, id, old, new) = (http.clone(), id.clone(), secret.clone(), new_secret.clone());
        async move {
            // The old secret may also meet the failure throttle (429): refused either way.
            token(&http, &b, &id, &old).await.status() != 200
                && token(&http, &b, &id, &new).await.status() == 200
        }
    })
    .await;
    eprintln!("secret rotation reached 3 instances in {took:?}");

    // Key rotation done once reaches all three: published, then signing.
    let r = cli(&db, &kek, &admin_keys, &["key", "rotate", "--now"]);
    let new_kid = r["active"].as_str().unwrap().to_owned();
    let took = all_within(&bases, Duration::from_secs(5), |b| {
        let (http, id, secret, kid) = (
            http.clone(),
            id.clone(),
            new_secret.clone(),
            new_kid.clone(),
        );
        async move {
            let set = jwks(&http, &b).await;
            let published = set["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kid"] == kid.as_str());
            let resp = token(&http, &b, &id, &secret).await;
            let t: serde_json::Value = resp.json().await.unwrap();
            let signs = jwt_parts(t["access_token"].as_str().unwrap()).0["kid"] == kid.as_str();
            published && signs
        }
    })
    .await;
    eprintln!("key rotation reached 3 instances in {took:?}");
    let sets = [
        jwks(&http, &bases[0]).await,
        jwks(&http, &bases[1]).await,
        jwks(&http, &bases[2]).await,
    ];
    assert!(sets[0] == sets[1] && sets[1] == sets[2]);
    assert_eq!(
        sets[0]["keys"].as_array().unwrap().len(),
        2,
        "old key still published while retiring"
    );

    // SIGTERM: a graceful exit with status 0.
    for (child, _) in &mut instances.0 {
        let exit = crate::helpers::terminate(child);
        assert!(exit.success(), "{exit:?}");
    }
    drop(instances);
    drop_database(&db).await;
}

//! The crash test's processes: the real binary as a child with its output
//! in files, a load on a server while it lives, and the checks of what the
//! kills left behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::helpers::basic_header;

/// One database and key directory, and where the processes' output goes.
pub struct Site {
    pub db_url: String,
    pub key_dir: PathBuf,
    pub logs: PathBuf,
}

impl Site {
    pub fn command(&self, args: &[&str], name: &str) -> (Command, PathBuf) {
        let out = self.logs.join(format!("{name}.out"));
        let err = self.logs.join(format!("{name}.err"));
        let mut c = Command::new(env!("CARGO_BIN_EXE_ficha"));
        c.args(args)
            .env("FICHA_DATABASE_URL", &self.db_url)
            .env("FICHA_KEY_DIR", &self.key_dir)
            .env_remove("FICHA_CONFIG")
            .env_remove("FICHA_KEK")
            .env_remove("FICHA_KEK_FILE")
            // Frequent polls and secret-use flushes: more writes to die in.
            .env("FICHA_SYNC_INTERVAL_MS", "50")
            .env("RUST_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(err).unwrap());
        (c, out)
    }

    /// Runs the CLI to the end and returns its `--json` output.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = Command::new(env!("CARGO_BIN_EXE_ficha"))
            .args(&all)
            .env("FICHA_DATABASE_URL", &self.db_url)
            .env("FICHA_KEY_DIR", &self.key_dir)
            .env_remove("FICHA_CONFIG")
            .env_remove("FICHA_KEK")
            .env_remove("FICHA_KEK_FILE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ficha {all:?} failed after the crashes: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

#[derive(Debug, Clone)]
pub enum Op {
    Serve,
    Create(String),
    Update(String),
    RotateSecret(String),
    KeyRotate(&'static str),
    KeyGenerate(&'static str),
}

pub struct Actor {
    pub op: Op,
    pub child: Child,
    pub out: PathBuf,
    pub kill_at: Instant,
    /// `Some` once it ended: whether it was killed, and its status.
    pub ended: Option<(bool, ExitStatus)>,
}

impl Drop for Actor {
    fn drop(&mut self) {
        if self.ended.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The base URL a `serve --bind 127.0.0.1:0` printed, once it has.
pub fn listening(out: &Path) -> Option<String> {
    let text = std::fs::read_to_string(out).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("ficha listening on "))
        .map(|a| a.trim().to_owned())
}

/// Token requests against a server while it lives (so it dies serving),
/// noting whether it ever was ready.
pub fn hammer(
    out: PathBuf,
    known: Vec<(String, String)>,
    ready: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let mut base = None;
        let mut creds = vec![("payvalida".to_owned(), "client_secret".to_owned())];
        creds.extend(known);
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            if base.is_none() {
                base = listening(&out);
            }
            if let Some(base) = &base {
                if let Ok(r) = http.get(format!("{base}/health/ready")).send().await {
                    if r.status() == 200 {
                        ready.store(true, Ordering::Relaxed);
                    }
                }
                let (id, secret) = &creds[i % creds.len()];
                i += 1;
                let _ = http
                    .post(format!("{base}/oauth2/token"))
                    .header("Authorization", basic_header(id, secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    })
}

/// The kinds of file the key directory may hold, each checked whole.
pub fn check_key_dir(dir: &Path) -> (Vec<String>, Vec<PathBuf>) {
    let (mut pems, mut temps) = (Vec::new(), Vec::new());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (pems, temps);
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.starts_with('.') && name.contains(".tmp.") {
            temps.push(path);
        } else if let Some(kid) = name.strip_suffix(".pem") {
            let text = std::fs::read_to_string(&path).unwrap();
            let (label, doc) = p256::pkcs8::SecretDocument::from_pem(&text)
                .unwrap_or_else(|e| panic!("{name} is not a whole PEM key ({e}): {text:?}"));
            assert_eq!(label, "PRIVATE KEY");
            let der = doc.as_bytes();
            let parses = <p256::SecretKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_der(der)
                .is_ok()
                || aws_lc_rs::signature::RsaKeyPair::from_pkcs8(der).is_ok();
            assert!(parses, "{name} holds no usable private key");
            pems.push(kid.to_owned());
        } else if name == "claims.key" {
            let text = std::fs::read_to_string(&path).unwrap();
            let key = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .unwrap_or_else(|_| panic!("claims.key is not whole: {text:?}"));
            assert_eq!(key.len(), 32, "claims.key is not whole");
        } else {
            panic!("unexpected file in the key directory: {name}");
        }
    }
    (pems, temps)
}

pub async fn sqlite_integrity(db_url: &str) -> String {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(db_url).await.unwrap();
    let (verdict,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    verdict
}

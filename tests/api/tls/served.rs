//! A `ficha serve` process for the TLS tests: started on a fresh
//! database, signalled with SIGHUP, its log read back.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ficha::http::tls::TlsPaths;
use tempfile::TempDir;

use crate::helpers::{drop_database, eventually, fresh_database, metric_in, terminate, Backend};

/// A `ficha serve` process, its stderr kept in a file.
pub struct Served {
    child: Child,
    pub port: u16,
    pub base: String,
    stderr: std::path::PathBuf,
    db_url: String,
}

impl Served {
    /// Starts a sandbox on a fresh database, with TLS when `tls` is set.
    pub async fn start(dir: &TempDir, tls: Option<&TlsPaths>) -> Option<Served> {
        let db_url = fresh_database(Backend::from_env(), dir).await?;
        let stderr = dir.path().join("stderr.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ficha"));
        command.args(["serve", "--sandbox", "--bind", "127.0.0.1:0"]);
        if let Some(paths) = tls {
            command.arg("--tls-cert").arg(&paths.cert);
            command.arg("--tls-key").arg(&paths.key);
        }
        let mut child = command
            .env("FICHA_DATABASE_URL", &db_url)
            .env("FICHA_KEY_DIR", dir.path().join("keys"))
            .env_remove("FICHA_CONFIG")
            .env_remove("FICHA_KEK")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("ficha exited before listening")
                .unwrap();
            if let Some(base) = line.strip_prefix("ficha listening on ") {
                break base.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let port = base.rsplit(':').next().unwrap().parse().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        assert!(
            base.starts_with(&format!("{scheme}://127.0.0.1:")),
            "{base}"
        );
        Some(Served {
            child,
            port,
            base,
            stderr,
            db_url,
        })
    }

    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap()
    }

    /// Waits for the log to say `what` `times` times.
    pub async fn logged(&self, what: &str, times: usize) {
        let said = eventually(Duration::from_secs(10), || async {
            self.log().matches(what).count() >= times
        })
        .await;
        assert!(said, "{what:?} not logged {times} time(s): {}", self.log());
    }

    /// `ficha_tls_reloads_total{result}`, read through `http`.
    pub async fn reloads(&self, http: &reqwest::Client, result: &str) -> u64 {
        let text = http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metric_in(
            &text,
            &format!("ficha_tls_reloads_total{{result=\"{result}\"}}"),
        )
    }

    pub async fn stop(mut self) -> String {
        assert!(terminate(&mut self.child).success());
        drop_database(&self.db_url).await;
        self.log()
    }
}

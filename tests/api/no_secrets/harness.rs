//! The harness of the no-secrets test: a `ficha serve` child process, CLI
//! runs and HTTP requests whose every output is kept, the values none of
//! them may show, and the search.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// One output to search, and the values it is allowed to show.
pub struct Output {
    pub source: String,
    pub text: String,
    pub allowed: Vec<String>,
}

pub struct Run {
    pub dir: tempfile::TempDir,
    pub db_url: String,
    /// (what, value): everything no output may show.
    pub secrets: Vec<(String, String)>,
    pub outputs: Vec<Output>,
    pub http: reqwest::Client,
    pub base: String,
    /// The key-encryption key, when the keys are sealed in the database.
    pub kek: Option<String>,
}

impl Run {
    pub fn watch(&mut self, what: &str, value: &str) {
        assert!(value.len() >= 8, "too short to search for: {what}");
        self.secrets.push((what.to_owned(), value.to_owned()));
    }

    /// Watches an `Authorization` value: itself and its credentials part.
    pub fn watch_authorization(&mut self, value: &str) {
        self.watch("an Authorization value", value);
        if let Some((_, credentials)) = value.split_once(' ') {
            self.watch("Authorization credentials", credentials);
        }
    }

    pub fn key_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    /// Runs the CLI to the end (`--json` added); `designed` is the value its
    /// stdout is made to show, if any.
    pub fn cli(&mut self, args: &[&str], designed: Option<&str>) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = Command::new(env!("CARGO_BIN_EXE_ficha"))
            .args(&all)
            .env("FICHA_DATABASE_URL", &self.db_url)
            .env("FICHA_KEY_DIR", self.key_dir())
            .env("RUST_LOG", "trace")
            .env("FICHA_KEK", self.kek.as_deref().unwrap_or_default())
            .env_remove("FICHA_CONFIG")
            .env_remove("FICHA_CLIENT_SECRET")
            .env_remove("FICHA_USER_PASSWORD")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let name = format!("ficha {}", args.join(" "));
        self.outputs.push(Output {
            source: format!("stdout of {name}"),
            text: stdout.clone(),
            allowed: designed.map(str::to_owned).into_iter().collect(),
        });
        self.outputs.push(Output {
            source: format!("stderr of {name}"),
            text: stderr.clone(),
            allowed: Vec::new(),
        });
        if !out.status.success() {
            return json!({"failed": stderr});
        }
        serde_json::from_str(&stdout).unwrap_or(Value::Null)
    }

    /// Runs the binary to the end with a database URL that carries a
    /// password (nothing listens on port 1): help texts and the errors of a
    /// database that cannot be reached.
    pub fn with_db_password(&mut self, password: &str, args: &[&str]) {
        let url = format!("postgres://ficha:{password}@127.0.0.1:1/ficha");
        let out = Command::new(env!("CARGO_BIN_EXE_ficha"))
            .args(args)
            .env("FICHA_DATABASE_URL", url)
            .env("FICHA_KEY_DIR", self.key_dir())
            .env("RUST_LOG", "trace")
            .env("FICHA_KEK", self.kek.as_deref().unwrap_or_default())
            .env_remove("FICHA_CONFIG")
            .output()
            .unwrap();
        let name = format!("ficha {}", args.join(" "));
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            self.outputs.push(Output {
                source: format!("{stream} of {name} (password in the database URL)"),
                text: String::from_utf8_lossy(bytes).into_owned(),
                allowed: Vec::new(),
            });
        }
    }

    /// Sends a request, watching every token and refresh token it returns.
    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        for field in ["access_token", "refresh_token"] {
            if let Some(t) = body[field].as_str() {
                self.watch(field, t);
                // A token's signature alone would betray a logged token.
                if let Some(sig) = t.rsplit('.').next().filter(|s| s.len() >= 8) {
                    self.watch("a token signature", sig);
                }
            }
        }
        (status, body)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base))
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    pub async fn basic_token(
        &mut self,
        path: &str,
        authorization: &str,
        body: &str,
    ) -> (u16, Value) {
        self.watch_authorization(authorization);
        let req = self
            .post(path)
            .header("Authorization", authorization)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        self.send(req).await
    }

    pub async fn form(&mut self, path: &str, body: &str) -> (u16, Value) {
        let req = self
            .post(path)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        self.send(req).await
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the server if the test fails before stopping it.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start_server(run: &Run, format: &str, port: u16, logs: &Path) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_ficha"))
        .args(["serve", "--sandbox", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--log-format", format])
        .env("FICHA_DATABASE_URL", &run.db_url)
        .env("FICHA_KEY_DIR", run.key_dir())
        .env("RUST_LOG", "trace")
        .env("FICHA_SYNC_INTERVAL_MS", "200")
        .env("FICHA_KEK", run.kek.as_deref().unwrap_or_default())
        .env_remove("FICHA_CONFIG")
        .stdin(Stdio::null())
        // Files, not pipes: trace logs would fill a pipe and stall the server.
        .stdout(std::fs::File::create(logs.join("serve.out")).unwrap())
        .stderr(std::fs::File::create(logs.join("serve.err")).unwrap())
        .spawn()
        .unwrap();
    Server(child)
}

impl Run {
    /// Runs a command line whose arguments hold no space (see [`Run::cli`]).
    pub fn sh(&mut self, line: &str, designed: Option<&str>) -> Value {
        let args: Vec<&str> = line.split(' ').collect();
        self.cli(&args, designed)
    }

    /// Lets the stdout of the last CLI run show `value`, which it is made to
    /// show once (a generated secret or password).
    pub fn allow_last_stdout(&mut self, value: &str) {
        let stdout = self.outputs.iter_mut().rev().nth(1).unwrap();
        assert!(stdout.source.starts_with("stdout of ficha"));
        stdout.allowed = vec![value.to_owned()];
    }

    /// Waits until the server answers ready.
    pub async fn wait_ready(&self, server: &mut Server, logs: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .get("/health/ready")
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(
                server.0.try_wait().unwrap().is_none(),
                "ficha serve exited: {}",
                std::fs::read_to_string(logs.join("serve.err")).unwrap_or_default()
            );
            assert!(Instant::now() < deadline, "ficha serve did not get ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Watches the private keys and the claims key as they are at rest.
    pub fn watch_key_files(&mut self) {
        let files = std::fs::read_dir(self.key_dir()).into_iter().flatten();
        for path in files.map(|e| e.unwrap().path()) {
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text
                .lines()
                .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
            {
                self.watch("private key material", line.trim());
            }
        }
    }

    /// Every watched value an output shows without being made to, with
    /// the line that shows it.
    pub fn leaks(&self) -> Vec<String> {
        let mut leaks = Vec::new();
        for out in &self.outputs {
            for (what, value) in &self.secrets {
                if out.allowed.contains(value) {
                    continue;
                }
                let Some(at) = out.text.find(value.as_str()) else {
                    continue;
                };
                let start = out.text[..at].rfind('\n').map_or(0, |i| i + 1);
                let end = out.text[at..].find('\n').map_or(out.text.len(), |i| at + i);
                leaks.push(format!(
                    "{} shows {what}: {}",
                    out.source,
                    &out.text[start..end]
                ));
            }
        }
        leaks
    }
}

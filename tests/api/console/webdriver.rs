//! Just enough of the W3C WebDriver protocol to drive Debian's chromium
//! through chromedriver: a session, navigation, elements (find, click,
//! type, read), script, window size, screenshots and the browser's console
//! log (chromedriver's `se/log`, which the crates that wrap WebDriver do not
//! expose). Plain JSON over HTTP with the test suite's reqwest.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// The key WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Debian puts chromium and its driver, or `None` when either is
/// missing.
pub fn find_browser() -> Option<(PathBuf, PathBuf)> {
    let which = |name: &str| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    };
    Some((which("chromium")?, which("chromedriver")?))
}

/// A running chromedriver with one headless chromium session; both end
/// when it is dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    http: reqwest::Client,
    /// The session's URL.
    session: String,
    quit: bool,
}

impl Drop for Browser {
    /// A test that fails before [`Browser::quit`] still closes chromium:
    /// killing only chromedriver would leave the browser running.
    fn drop(&mut self) {
        if !self.quit && !self.session.is_empty() {
            let path = self
                .session
                .split_once("/session/")
                .map(|(_, id)| format!("/session/{id}"))
                .unwrap_or_default();
            let _ = blocking_delete(self.port, &path);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE path` to chromedriver, without an async runtime (from `Drop`).
fn blocking_delete(port: u16, path: &str) -> std::io::Result<()> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "DELETE {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(())
}

impl Browser {
    pub async fn start(chromium: &std::path::Path, chromedriver: &std::path::Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            port,
            http,
            session: String::new(),
            quit: false,
        };
        let ready = crate::helpers::eventually(Duration::from_secs(20), || async {
            match browser.http.get(format!("{base}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            }
        })
        .await;
        assert!(ready, "chromedriver did not start");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000"]
            },
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let created = browser.call("POST", &format!("{base}/session"), caps).await;
        browser.session = format!("{base}/session/{}", created["sessionId"].as_str().unwrap());
        browser
    }

    async fn call(&self, method: &str, url: &str, body: Value) -> Value {
        let req = self.http.request(method.parse().unwrap(), url);
        let req = if method == "GET" || method == "DELETE" {
            req
        } else {
            req.json(&body)
        };
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let value: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "{method} {url}: {status} {value}");
        value["value"].clone()
    }

    async fn session(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("{}{path}", self.session), body)
            .await
    }

    pub async fn goto(&self, url: &str) {
        self.session("POST", "/url", json!({"url": url})).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`).
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.session(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// The element `css` selects, or a panic.
    pub async fn find(&self, css: &str) -> Element<'_> {
        let found = self
            .session(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        Element {
            browser: self,
            id: found[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("{css}: {found}"))
                .to_owned(),
        }
    }

    /// Waits up to ten seconds for `script` to return a truthy value.
    pub async fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.run(script, json!([])).await;
            let truthy =
                !matches!(&got, Value::Null | Value::Bool(false)) && got.as_str() != Some("");
            if truthy {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn set_window(&self, width: u32, height: u32) {
        self.session(
            "POST",
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .await;
    }

    /// The viewport as PNG.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let b64 = self.session("GET", "/screenshot", Value::Null).await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap()
    }

    /// What the page wrote to the browser's console (and the network
    /// errors chromium reports there) since the last call.
    pub async fn console_log(&self) -> Vec<Value> {
        let log = self
            .session("POST", "/se/log", json!({"type": "browser"}))
            .await;
        log.as_array().cloned().unwrap_or_default()
    }

    pub async fn quit(mut self) {
        self.session("DELETE", "", Value::Null).await;
        self.quit = true;
    }
}

/// An element of the page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Element<'_> {
    pub async fn click(&self) {
        self.browser
            .session("POST", &format!("/element/{}/click", self.id), json!({}))
            .await;
    }

    /// Types `text` into it, as keystrokes.
    pub async fn type_text(&self, text: &str) {
        self.browser
            .session(
                "POST",
                &format!("/element/{}/value", self.id),
                json!({"text": text}),
            )
            .await;
    }

    pub async fn text(&self) -> String {
        self.browser
            .session("GET", &format!("/element/{}/text", self.id), Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }
}

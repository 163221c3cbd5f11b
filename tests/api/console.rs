//! The sandbox console (`/sandbox/console`) and the request stream
//! (`/sandbox/requests/stream`): a real chromium drives the page against a
//! real server while real curl makes the token requests; the stream is read
//! over HTTP as a script would; production has neither.

mod stream;
mod webdriver;

use std::time::Duration;

use ficha::oauth::Mode;
use serde_json::{json, Value};

use crate::helpers::{Backend, Options, TestApp};
use webdriver::{find_browser, Browser};

/// `payvalida:client_secret` in base64, as a Basic header carries it.
const PAYVALIDA_BASIC: &str = "cGF5dmFsaWRhOmNsaWVudF9zZWNyZXQ=";

/// What sticks out past the window's width, elements or text (scrolled to
/// the top, nothing focused, for the screenshots).
const OVERFLOWING: &str = "
    document.activeElement.blur();
    window.scrollTo(0, 0);
    const root = document.documentElement;
    const width = root.clientWidth + 1;
    const out = [];
    for (const e of document.querySelectorAll('body *')) {
      const right = e.getBoundingClientRect().right;
      if (right > width) out.push(`${e.tagName}.${e.className} ends at ${right}`);
    }
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walk.nextNode()) {
      const range = document.createRange();
      range.selectNodeContents(walk.currentNode);
      const right = range.getBoundingClientRect().right;
      if (right > width) out.push(`text ${walk.currentNode.textContent.slice(0, 40)} ends at ${right}`);
    }
    if (root.scrollWidth > width) out.push(`the page is ${root.scrollWidth} px wide`);
    return out;
";

/// WebDriver's Enter key.
const ENTER: &str = "\u{E007}";

/// Runs curl with `args`; its standard output.
async fn curl(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "curl failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A Payválida token request with curl; the HTTP status.
async fn payvalida_status(app: &TestApp) -> String {
    curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &app.url("/oauth2/token"),
        "-u",
        "payvalida:client_secret",
        "-d",
        "grant_type=client_credentials&scope=transaction",
    ])
    .await
}

/// A Payválida access token, with curl.
async fn payvalida_token(app: &TestApp) -> String {
    let body = curl(&[
        "-s",
        &app.url("/oauth2/token"),
        "-u",
        "payvalida:client_secret",
        "-d",
        "grant_type=client_credentials&scope=transaction",
    ])
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

/// The token with one character in the middle of its signature changed.
fn tampered(token: &str) -> String {
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let mut sig: Vec<char> = sig.chars().collect();
    let mid = sig.len() / 2;
    sig[mid] = if sig[mid] == 'A' { 'B' } else { 'A' };
    format!("{signed}.{}", sig.into_iter().collect::<String>())
}

/// Pastes `token` into the checker (one `input` event, as a paste makes);
/// the verdict it then shows.
async fn check_token(browser: &Browser, token: &str) -> String {
    browser.find("#token-clear").await.click().await;
    browser
        .wait_for(
            "the verdict to clear",
            "return document.getElementById('token-verdict').textContent === ''",
        )
        .await;
    browser
        .run(
            "const input = document.getElementById('token-input'); \
             input.value = arguments[0]; \
             input.dispatchEvent(new Event('input', { bubbles: true }));",
            json!([token]),
        )
        .await;
    let verdict = browser
        .wait_for(
            "a verdict",
            "return document.getElementById('token-verdict').textContent",
        )
        .await;
    verdict.as_str().unwrap().to_owned()
}

async fn set_fault(app: &TestApp, body: Value) {
    let resp = app
        .http
        .post(app.url("/sandbox/faults"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

async fn faults(app: &TestApp) -> Value {
    app.http
        .get(app.url("/sandbox/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_console_shows_requests_sets_faults_and_checks_tokens() {
    let Some((chromium, chromedriver)) = find_browser() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium and chromedriver are required in CI (.ci/run installs them)"
        );
        eprintln!("skipped: chromium or chromedriver not found (apt-get install chromium chromium-driver)");
        return;
    };
    let app = TestApp::spawn().await;
    let browser = Browser::start(&chromium, &chromedriver).await;
    browser.goto(&app.url("/sandbox/console")).await;
    browser
        .wait_for(
            "the stream to open",
            "return document.getElementById('stream-status').textContent === 'live'",
        )
        .await;

    // A token request made with curl appears, its credentials masked.
    assert_eq!(payvalida_status(&app).await, "200");
    let body = r#"{"action":"authorize","grant_type":"client_credentials","audience":"x","client_id":"your_client_id","client_secret":"your_client_secret","scope":"create:token"}"#;
    curl(&[
        "-s",
        &app.url("/payme/token"),
        "-H",
        "Content-Type: application/json",
        "-d",
        body,
    ])
    .await;
    browser
        .wait_for(
            "both requests to appear",
            "return document.querySelectorAll('#request-list li').length === 2",
        )
        .await;
    // Newest first.
    let order = browser
        .run(
            "return [...document.querySelectorAll('#request-list li')].map(li => li.dataset.client)",
            json!([]),
        )
        .await;
    assert_eq!(order, json!(["your_client_id", "payvalida"]));
    // Expanded from the keyboard: Enter on a focused summary.
    for client in ["payvalida", "your_client_id"] {
        browser
            .find(&format!("#request-list li[data-client='{client}'] summary"))
            .await
            .type_text(ENTER)
            .await;
    }
    let open = browser
        .run(
            "return [...document.querySelectorAll('#request-list details')].every(d => d.open)",
            json!([]),
        )
        .await;
    assert_eq!(open, true);
    let basic = browser
        .find("#request-list li[data-client='payvalida']")
        .await
        .text()
        .await;
    assert!(basic.contains("Basic ***"), "{basic}");
    assert!(basic.contains("issued") && basic.contains("200"), "{basic}");
    assert!(!basic.contains(PAYVALIDA_BASIC), "{basic}");
    let posted = browser
        .find("#request-list li[data-client='your_client_id']")
        .await
        .text()
        .await;
    assert!(posted.contains(r#""client_secret":"***""#), "{posted}");
    assert!(!posted.contains("your_client_secret"), "{posted}");

    // The filters hide the other client's and dialect's requests.
    browser
        .find("#filter-dialect option[value='payme']")
        .await
        .click()
        .await;
    let shown = browser
        .run(
            "return [...document.querySelectorAll('#request-list li')].filter(li => !li.hidden).map(li => li.dataset.client)",
            json!([]),
        )
        .await;
    assert_eq!(shown, json!(["your_client_id"]));
    browser
        .find("#filter-dialect option[value='']")
        .await
        .click()
        .await;

    // A 503 fault set from the page fails the next request.
    browser
        .find("#fault-client")
        .await
        .type_text("payvalida")
        .await;
    browser
        .find("#fault-kind option[value='status:503']")
        .await
        .click()
        .await;
    // Enter in a field submits the form, as it does without a mouse.
    browser
        .find("#fault-times")
        .await
        .type_text(&format!("1{ENTER}"))
        .await;
    browser
        .wait_for(
            "the fault to show",
            "const li = document.querySelector('#fault-list li[data-client=\"payvalida\"]'); \
             return !!li && li.textContent.includes('status:503')",
        )
        .await;
    let set = faults(&app).await;
    assert_eq!(set[0]["kind"], "status:503");
    assert_eq!(set[0]["times"], 1);
    assert_eq!(payvalida_status(&app).await, "503");
    browser
        .wait_for(
            "the failed request to appear with its fault",
            "return [...document.querySelectorAll('#request-list li[data-client=\"payvalida\"]')] \
             .some(li => li.querySelector('.status').textContent === '503' \
                      && li.textContent.includes('fault status:503'))",
        )
        .await;
    // Spent after one: the page's count shows it, and the next succeeds.
    browser
        .wait_for(
            "the fault's count to update",
            "return document.querySelector('#fault-list li').textContent.includes('0 of 1 left')",
        )
        .await;
    assert_eq!(payvalida_status(&app).await, "200");
    browser.find("#clear-all").await.click().await;
    browser
        .wait_for(
            "the fault list to empty",
            "return document.querySelectorAll('#fault-list li').length === 0",
        )
        .await;
    assert_eq!(faults(&app).await, json!([]));

    // The token checker: a fresh token is valid; a tampered one, an expired
    // one and one signed under an unpublished kid are not, and say why.
    let token = payvalida_token(&app).await;
    assert_eq!(check_token(&browser, &token).await, "valid");
    let reasons = browser.find("#token-reasons").await.text().await;
    assert!(reasons.contains("signature verifies"), "{reasons}");
    assert_eq!(
        check_token(&browser, &tampered(&token)).await,
        "not valid: bad signature"
    );
    set_fault(
        &app,
        json!({"client_id": "payvalida", "kind": "expired-token"}),
    )
    .await;
    let expired = payvalida_token(&app).await;
    assert_eq!(check_token(&browser, &expired).await, "not valid: expired");
    set_fault(&app, json!({"client_id": "payvalida", "kind": "wrong-kid"})).await;
    let unknown = payvalida_token(&app).await;
    assert_eq!(
        check_token(&browser, &unknown).await,
        "not valid: unknown kid"
    );

    // Readable on a phone: nothing wider than a 375 px screen.
    check_token(&browser, &token).await;
    let shots = std::env::var_os("FICHA_CONSOLE_SCREENSHOTS").map(std::path::PathBuf::from);
    for (width, height, name) in [(1280, 1400, "desktop"), (375, 812, "375")] {
        browser.set_window(width, height).await;
        let wider = browser.run(OVERFLOWING, json!([])).await;
        assert_eq!(wider, json!([]), "wider than the {width} px window");
        // `FICHA_CONSOLE_SCREENSHOTS=docs cargo test --test api console::`
        // refreshes the README's pictures.
        if let Some(dir) = &shots {
            let png = browser.screenshot().await;
            std::fs::write(dir.join(format!("console-{name}.png")), png).unwrap();
        }
    }

    // Nothing went wrong in the page: no script error, no CSP violation,
    // no failed load.
    let log = browser.console_log().await;
    let errors: Vec<&Value> = log.iter().filter(|e| e["level"] == "SEVERE").collect();
    assert!(errors.is_empty(), "browser console errors: {errors:#?}");
    browser.quit().await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_page_is_served_under_a_strict_content_security_policy() {
    let app = TestApp::spawn().await;
    for (path, content_type) in [
        ("/sandbox/console", "text/html; charset=utf-8"),
        (
            "/sandbox/console/console.js",
            "text/javascript; charset=utf-8",
        ),
        ("/sandbox/console/console.css", "text/css; charset=utf-8"),
    ] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], content_type, "{path}");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        let csp = resp.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"));
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("http"),
            "{csp}"
        );
    }
    let page = app
        .http
        .get(app.url("/sandbox/console"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Only the JSON data block is inline, and nothing is fetched from
    // elsewhere.
    assert_eq!(page.matches("<script").count(), 2, "{page}");
    assert!(page.contains(r#"<script type="application/json" id="console-data">"#));
    assert!(!page.contains("<style") && !page.contains(" style=") && !page.contains(" on"));
    for attr in [" src=\"", " href=\""] {
        for value in page.split(attr).skip(1) {
            assert!(
                value.starts_with('/') || value.starts_with("data:") || value.starts_with('#'),
                "{attr}{value}"
            );
        }
    }
    app.cleanup().await;
}

/// The console's data block: what its script reads.
async fn console_data(app: &TestApp) -> Value {
    let page = app
        .http
        .get(app.url("/sandbox/console"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = page.find(r#"id="console-data">"#).unwrap() + r#"id="console-data">"#.len();
    let end = start + page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..end]).unwrap()
}

#[tokio::test]
async fn every_start_here_command_gets_a_token_as_pasted_into_a_shell() {
    let app = TestApp::spawn().await;
    let data = console_data(&app).await;
    let dialects = data["dialects"].as_array().unwrap();
    assert_eq!(dialects.len(), 5);
    for d in dialects {
        let command = d["curl"]
            .as_str()
            .unwrap()
            .replace(data["origin_marker"].as_str().unwrap(), &app.base);
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("sh")
                .args(["-c", &command])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let body = String::from_utf8_lossy(&out.stdout);
        let parsed: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{}: {e}: {body}", d["dialect"]));
        let token = parsed["access_token"]
            .as_str()
            .or(parsed["accessToken"].as_str())
            .or(parsed["data"]["access_token"].as_str());
        assert!(
            token.is_some_and(|t| t.split('.').count() == 3),
            "{}: {body}",
            d["dialect"]
        );
    }
    app.cleanup().await;
}

#[tokio::test]
async fn production_has_no_console_and_no_stream() {
    let app = TestApp::spawn_on(
        Backend::Sqlite,
        Options {
            mode: Mode::Production,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    for path in [
        "/sandbox/console",
        "/sandbox/console/console.js",
        "/sandbox/console/console.css",
        "/sandbox/requests/stream",
        "/sandbox/requests/stream?client_id=x",
    ] {
        let resp =
            tokio::time::timeout(Duration::from_secs(10), app.http.get(app.url(path)).send())
                .await
                .unwrap()
                .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        assert!(resp.bytes().await.unwrap().is_empty(), "{path}");
    }
    app.cleanup().await;
}

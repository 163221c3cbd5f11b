//! No secret in any output: the real binary (`ficha serve --sandbox` as a
//! child process with its own directory and database, logging at
//! `RUST_LOG=trace`, in both log formats) answers every endpoint and every
//! dialect, in success and in failure, and every CLI command runs, all with
//! known secrets, passwords, refresh tokens and tokens. Then every log line,
//! every stderr and every stdout is searched for each of them and for every
//! `Authorization` value sent. The only outputs allowed to carry one are
//! those made to show it once, and only that one value: the stdout of
//! `client create`, `client rotate-secret` and `user create`/`set-password`
//! with a generated password, and the start-up banner listing the public
//! seed credentials.

mod harness;

use base64::Engine as _;
use serde_json::json;

use crate::helpers::basic_header;
use harness::{free_port, start_server, Output, Run};

const SHOP_SECRET: &str = "Shop-Secret-4f1c2a9e77d3";
const WRONG_SECRET: &str = "Wrong-Secret-9d8e7f6a5b";
const GHOST_SECRET: &str = "Ghost-Secret-1a2b3c4d5e";
const BODY_SECRET: &str = "Body-Secret-5e6f7a8b9c";
const ALICE_PASSWORD: &str = "Alice-Pass-3141592653";
const ALICE_NEW_PASSWORD: &str = "Alice-Pass-2718281828";
const WRONG_PASSWORD: &str = "Wrong-Pass-1123581321";
const MALFORMED_BASIC: &str = "Basic Zm9vYmFy!!Malformed-7c6b5a4f";
const JUNK_BEARER: &str = "not-a-jwt-Bearer-Junk-0a9b8c7d";
const JUNK_REFRESH: &str = "Refresh-Junk-6d5c4b3a2f";
const IDENTIFIER: &str = "Sealed-Identifier-55aa77";
const DB_PASSWORD: &str = "Db-Pass-8e7d6c5b4a";

const PEINAU_ID: &str = "641281901508761220281";
const PEINAU_SECRET: &str = "B8WKRXMiWHHrMCectt9Rg3ju4Y8GNheEa50gx6365sBV";
/// The seed credentials the sandbox banner prints by design. The Payválida
/// seed's secret is the word `client_secret`, which every auth-method name
/// contains; its Basic value stands for it.
const SEED_VALUES: [&str; 5] = [
    "nequi-sandbox-secret",
    PEINAU_SECRET,
    "your_client_secret",
    "{contrasenia}",
    "cGF5dmFsaWRhOmNsaWVudF9zZWNyZXQ=",
];

/// Every dialect's token endpoint, in success and failure.
async fn token_endpoints(run: &mut Run, gen_secret: &str) {
    let shop = basic_header("shop", SHOP_SECRET);
    let cc = "grant_type=client_credentials";
    assert_eq!(run.basic_token("/oauth2/token", &shop, cc).await.0, 200);
    let seed = basic_header("payvalida", "client_secret");
    let body = "grant_type=client_credentials&client_id=payvalida&scope=TuScope";
    assert_eq!(run.basic_token("/oauth2/token", &seed, body).await.0, 200);
    let wrong = basic_header("shop", WRONG_SECRET);
    assert_eq!(run.basic_token("/oauth2/token", &wrong, cc).await.0, 401);
    let ghost = basic_header("ghost", GHOST_SECRET);
    assert_eq!(run.basic_token("/oauth2/token", &ghost, cc).await.0, 401);
    run.watch_authorization(MALFORMED_BASIC);
    assert_eq!(
        run.basic_token("/oauth2/token", MALFORMED_BASIC, cc)
            .await
            .0,
        400
    );
    // client_secret_post, right and wrong; and with a Basic header too.
    let post = format!("{cc}&client_id=shop&client_secret={SHOP_SECRET}");
    assert_eq!(run.form("/oauth2/token", &post).await.0, 200);
    let post = format!("{cc}&client_id=shop&client_secret={BODY_SECRET}");
    assert_eq!(run.form("/oauth2/token", &post).await.0, 401);
    let both = format!("{cc}&client_secret={BODY_SECRET}");
    assert_eq!(run.basic_token("/oauth2/token", &shop, &both).await.0, 400);
    // A client not allowed client_secret_post, with its right secret.
    let post = format!("{cc}&client_id=gen&client_secret={gen_secret}");
    assert_eq!(run.form("/oauth2/token", &post).await.0, 401);

    // Nequi.
    let nequi = basic_header("nequi-sandbox", "nequi-sandbox-secret");
    let path = "/nequi/oauth2/token?grant_type=client_credentials";
    assert_eq!(run.basic_token(path, &nequi, "").await.0, 200);
    let nequi_wrong = basic_header("nequi-sandbox", WRONG_SECRET);
    assert_eq!(run.basic_token(path, &nequi_wrong, "").await.0, 401);

    // Peinau: raw Basic as documented, the brace form with an identifier.
    run.watch("the Peinau identifier", IDENTIFIER);
    let raw = format!("Basic {PEINAU_ID}:{PEINAU_SECRET}");
    let path = "/peinau/sso/oauth2/v2/token";
    assert_eq!(run.basic_token(path, &raw, cc).await.0, 200);
    let brace = format!("{{grant_type=client_credentials, identifier={IDENTIFIER}}}");
    assert_eq!(run.basic_token(path, &raw, &brace).await.0, 200);
    let raw_wrong = format!("Basic {PEINAU_ID}:{WRONG_SECRET}");
    assert_eq!(run.basic_token(path, &raw_wrong, cc).await.0, 401);

    // Pay-me: the secret in a JSON body.
    for (secret, status) in [("your_client_secret", 200), (WRONG_SECRET, 401)] {
        let body = json!({"action": "authorize", "grant_type": "client_credentials",
            "audience": "https://api.preprod.alignet.io/", "client_id": "your_client_id",
            "client_secret": secret, "scope": "create:token post:charges"});
        let req = run
            .post("/payme/token")
            .header("Content-Type", "application/json")
            .header("ALG-API-VERSION", "1709847567")
            .body(body.to_string());
        assert_eq!(run.send(req).await.0, status);
    }

    // Fegora: password and refresh_token grants; a spent refresh token.
    let documented =
        "grant_type=password&client_id=apiApp&username=25365421&password={contrasenia}";
    let (status, first) = run.form("/fegora/token", documented).await;
    assert_eq!(status, 200, "{first}");
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let refresh = format!("grant_type=refresh_token&refresh_token={r1}&client_id=apiApp");
    assert_eq!(run.form("/fegora/token", &refresh).await.0, 200);
    assert_eq!(run.form("/fegora/token", &refresh).await.0, 400);
    let alice = format!(
        "grant_type=password&client_id=apiApp&username=alice&password={ALICE_NEW_PASSWORD}"
    );
    assert_eq!(run.form("/fegora/token", &alice).await.0, 200);
    let bad =
        format!("grant_type=password&client_id=apiApp&username=alice&password={WRONG_PASSWORD}");
    assert_eq!(run.form("/fegora/token", &bad).await.0, 400);
    let stale =
        format!("grant_type=password&client_id=apiApp&username=alice&password={ALICE_PASSWORD}");
    assert_eq!(run.form("/fegora/token", &stale).await.0, 400);
    run.watch("a junk refresh token", JUNK_REFRESH);
    let junk = format!("grant_type=refresh_token&refresh_token={JUNK_REFRESH}&client_id=apiApp");
    assert_eq!(run.form("/fegora/token", &junk).await.0, 400);
    let unknown = "grant_type=password&client_id=apiAp&username=25365421&password={contrasenia}";
    assert_eq!(run.form("/fegora/token", unknown).await.0, 400);

    // The standard endpoint's password and refresh_token grants.
    let pw =
        format!("grant_type=password&client_id=pwapp&username=alice&password={ALICE_NEW_PASSWORD}");
    let (status, body) = run.form("/oauth2/token", &pw).await;
    assert_eq!(status, 200, "{body}");
    let r = body["refresh_token"].as_str().unwrap().to_owned();
    let refresh = format!("grant_type=refresh_token&client_id=pwapp&refresh_token={r}");
    assert_eq!(run.form("/oauth2/token", &refresh).await.0, 200);
}

/// Introspection, revocation, `/auth/verify` and the plain endpoints.
async fn other_endpoints(run: &mut Run) -> (String, String) {
    let shop = basic_header("shop", SHOP_SECRET);
    let (_, a) = run
        .basic_token("/oauth2/token", &shop, "grant_type=client_credentials")
        .await;
    let (_, b) = run
        .basic_token("/oauth2/token", &shop, "grant_type=client_credentials")
        .await;
    let (kept, revoked) = (
        a["access_token"].as_str().unwrap().to_owned(),
        b["access_token"].as_str().unwrap().to_owned(),
    );
    let wrong = basic_header("shop", WRONG_SECRET);
    for (caller, token, status) in [
        (&shop, kept.as_str(), 200),
        (&wrong, kept.as_str(), 401),
        (&shop, JUNK_BEARER, 200),
    ] {
        let (s, _) = run
            .basic_token("/oauth2/introspect", caller, &format!("token={token}"))
            .await;
        assert_eq!(s, status);
    }
    let (s, _) = run
        .basic_token("/oauth2/revoke", &shop, &format!("token={revoked}"))
        .await;
    assert_eq!(s, 200);
    let (s, _) = run
        .basic_token("/oauth2/revoke", &wrong, &format!("token={kept}"))
        .await;
    assert_eq!(s, 401);
    run.watch("a junk bearer token", JUNK_BEARER);
    for (token, status) in [
        (kept.as_str(), 200),
        (revoked.as_str(), 401),
        (JUNK_BEARER, 401),
    ] {
        let bearer = format!("Bearer {token}");
        run.watch_authorization(&bearer);
        let req = run
            .get("/auth/verify?scope=transaction")
            .header("Authorization", bearer);
        assert_eq!(run.send(req).await.0, status, "/auth/verify");
    }
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/health",
        "/health/ready",
        "/metrics",
    ] {
        let req = run.get(path);
        assert_eq!(run.send(req).await.0, 200, "{path}");
    }
    (kept, revoked)
}

/// The sandbox endpoints, with a fault that fires on a request.
async fn sandbox_endpoints(run: &mut Run, gen_secret: &str) {
    let req = run
        .post("/sandbox/faults")
        .json(&json!({"client_id": "gen", "kind": "status:503", "times": 1}));
    assert_eq!(run.send(req).await.0, 201);
    let req = run.get("/sandbox/faults");
    assert_eq!(run.send(req).await.0, 200);
    let gen = basic_header("gen", gen_secret);
    let (s, _) = run
        .basic_token("/oauth2/token", &gen, "grant_type=client_credentials")
        .await;
    assert_eq!(s, 503);
    let req = run
        .post("/sandbox/faults")
        .json(&json!({"client_id": "gen", "kind": "bad-signature"}));
    assert_eq!(run.send(req).await.0, 201);
    let (s, _) = run
        .basic_token("/oauth2/token", &gen, "grant_type=client_credentials")
        .await;
    assert_eq!(s, 200);
    let req = run.http.delete(format!("{}/sandbox/faults", run.base));
    assert_eq!(run.send(req).await.0, 200);
    // The capture is masked: searched like an output.
    let text = run
        .get("/sandbox/requests?limit=500")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    run.outputs.push(Output {
        source: "GET /sandbox/requests".into(),
        text,
        allowed: Vec::new(),
    });
}

/// The CLI before the server starts; returns the generated secret of `gen`.
fn cli_before_server(run: &mut Run) -> String {
    // A database URL's password: in help texts and connection errors.
    for args in [
        &["--help"][..],
        &["client", "list", "--help"],
        &["serve", "--help"],
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--pool-acquire-timeout-ms",
            "300",
        ],
    ] {
        run.with_db_password(DB_PASSWORD, args);
    }
    run.sh("migrate", None);
    run.sh("key generate", None);
    run.sh("key generate --alg RS256", None);
    let shop = run.cli(
        &[
            "client",
            "create",
            "--id",
            "shop",
            "--secret",
            SHOP_SECRET,
            "--introspect",
            "--scopes",
            "transaction confirmation",
            "--auth-methods",
            "client_secret_basic,client_secret_post",
        ],
        Some(SHOP_SECRET),
    );
    assert_eq!(shop["client_secret"], SHOP_SECRET, "{shop}");
    let gen = run.sh("client create --id gen --scopes transaction", None);
    let gen_secret = gen["client_secret"].as_str().unwrap().to_owned();
    run.watch("a generated client secret", &gen_secret);
    run.allow_last_stdout(&gen_secret);
    let line = "client create --id pwapp --scopes transaction --grants password,refresh_token --auth-methods none";
    assert!(run.sh(line, None)["failed"].is_null());
    run.sh(
        &format!("user create alice --password {ALICE_PASSWORD}"),
        None,
    );
    run.sh(
        &format!("user set-password alice --password {ALICE_NEW_PASSWORD}"),
        None,
    );
    for line in ["user create bob", "user set-password bob"] {
        let password = run.sh(line, None)["password"].as_str().unwrap().to_owned();
        run.watch("a generated password", &password);
        run.allow_last_stdout(&password);
    }
    gen_secret
}

/// The CLI while the server runs.
fn cli_while_serving(run: &mut Run, kept: &str, revoked: &str) {
    run.sh("client list", None);
    run.sh("client show shop", None);
    run.sh("client update shop --name Shop", None);
    let rotated = run.sh("client rotate-secret gen --grace 60", None);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    run.watch("a rotated client secret", &new_secret);
    run.allow_last_stdout(&new_secret);
    run.sh("client disable gen", None);
    run.sh("client enable gen", None);
    let line = format!("client create --id doomed --scopes x --secret {BODY_SECRET}");
    run.sh(&line, Some(BODY_SECRET));
    run.sh("client delete doomed", None);
    let claims = run.sh(&format!("token verify {kept} --scope transaction"), None);
    assert_eq!(claims["client_id"], "shop", "{claims}");
    for line in [
        format!("token verify {revoked}"),
        format!("token verify {JUNK_BEARER}"),
        format!("token verify {kept} --scope annulment"),
        // Failures with secrets and passwords on their command lines.
        format!("client create --id shop --secret {SHOP_SECRET} --scopes x"),
        format!("user create alice --password {ALICE_PASSWORD}"),
        format!("user set-password nobody --password {ALICE_PASSWORD}"),
        "client rotate-secret nobody".to_owned(),
    ] {
        let failed = run.sh(&line, None);
        assert!(failed["failed"].is_string(), "{line} succeeded: {failed}");
    }
    run.sh("key list", None);
    // `--now`: a `next` key must otherwise wait out the JWKS max-age.
    let rotation = run.sh("key rotate --now", None);
    let retiring = rotation["retiring"].as_str().unwrap().to_owned();
    run.sh(&format!("key retire {retiring} --force"), None);
    run.sh("sandbox fault set gen status:429 --times 1", None);
    run.sh("sandbox fault list", None);
    run.sh("sandbox fault clear gen", None);
}

async fn run_with_log_format(format: &str) {
    let dir = tempfile::TempDir::new().unwrap();
    let db_url = format!("sqlite://{}/ficha.db", dir.path().display());
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let mut run = Run {
        dir,
        db_url,
        secrets: Vec::new(),
        outputs: Vec::new(),
        http: reqwest::Client::new(),
        base: String::new(),
        // One run keeps its private keys in PEM files, the other sealed in
        // the database under a key-encryption key.
        kek: (format == "json")
            .then(|| base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())),
    };
    if let Some(kek) = run.kek.clone() {
        run.watch("the key-encryption key", &kek);
    }
    for value in SEED_VALUES {
        run.watch("a sandbox seed credential", value);
    }
    for (what, value) in [
        ("a client secret", SHOP_SECRET),
        ("a wrong secret", WRONG_SECRET),
        ("an unknown client's secret", GHOST_SECRET),
        ("a body secret", BODY_SECRET),
        ("a password", ALICE_PASSWORD),
        ("a password", ALICE_NEW_PASSWORD),
        ("a wrong password", WRONG_PASSWORD),
        ("the database password", DB_PASSWORD),
    ] {
        run.watch(what, value);
    }

    let gen_secret = cli_before_server(&mut run);
    let port = free_port();
    run.base = format!("http://127.0.0.1:{port}");
    let mut server = start_server(&run, format, port, &logs);
    run.wait_ready(&mut server, &logs).await;
    token_endpoints(&mut run, &gen_secret).await;
    let (kept, revoked) = other_endpoints(&mut run).await;
    sandbox_endpoints(&mut run, &gen_secret).await;
    cli_while_serving(&mut run, &kept, &revoked);

    let status = crate::helpers::terminate(&mut server.0);
    assert!(status.success(), "{status:?}");
    let stdout = std::fs::read_to_string(logs.join("serve.out")).unwrap();
    let stderr = std::fs::read_to_string(logs.join("serve.err")).unwrap();
    assert!(stderr.contains("token issued"), "no audit record logged");
    assert!(stderr.lines().count() > 200, "few logs at trace: {stderr}");
    run.outputs.push(Output {
        source: "the server's stdout".into(),
        text: stdout,
        allowed: SEED_VALUES.iter().map(|s| s.to_string()).collect(),
    });
    run.outputs.push(Output {
        source: format!("the server's logs ({format})"),
        text: stderr,
        allowed: Vec::new(),
    });
    run.watch_key_files();
    assert_eq!(
        run.secrets.iter().any(|(w, _)| w == "private key material"),
        run.kek.is_none(),
        "private keys are files exactly when there is no key-encryption key"
    );

    let leaks = run.leaks();
    assert!(
        leaks.is_empty(),
        "secrets in the output:\n{}",
        leaks.join("\n")
    );
    // The check saw every kind of value it looks for.
    let watched = |what: &str| run.secrets.iter().filter(|(w, _)| w == what).count();
    assert!(watched("access_token") >= 15 && watched("refresh_token") >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_in_any_output_with_pretty_logs() {
    run_with_log_format("pretty").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_in_any_output_with_json_logs() {
    run_with_log_format("json").await;
}

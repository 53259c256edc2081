//! Browser (OAuth) sign-in against a small fake authorization server and a protected MCP
//! resource on loopback: `testrelay login URL` through a scripted "browser", the bridge
//! on the stored tokens, a silent refresh with rotation, two processes sharing one rotating
//! refresh token, a revoked grant, and a browser that never comes back.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientRequest, ServerCapabilities, ServerConfig,
    ServerResult,
};
use rmcp::service::PeerRequestOptions;
use rmcp::transport::TokioChildProcess;
use rmcp::transport::streamable_http_server::{
    StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use sha2::Digest;

use crate::cloud::Ide;
use crate::support::BIN;

#[derive(Clone)]
struct Resource {
    tool_router: ToolRouter<Self>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct WhoArgs {
    /// Who asks.
    name: String,
}

#[tool_router]
impl Resource {
    /// Greets the caller.
    #[tool]
    async fn whoami(&self, Parameters(a): Parameters<WhoArgs>) -> String {
        format!("hello {} from the protected server", a.name)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Resource {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(rmcp::model::Implementation::new("protected", "1.0.0"))
    }
}

/// What the fake authorization server knows.
#[derive(Default)]
struct AsState {
    base: String,
    counter: u64,
    /// code → (PKCE challenge, redirect URI)
    codes: HashMap<String, (String, String)>,
    /// access token → grant
    access: HashMap<String, u64>,
    /// current refresh token → grant
    refresh: HashMap<String, u64>,
    revoked: HashSet<u64>,
    /// Refresh tokens already rotated away: presenting one again revokes the grant, as
    /// real authorization servers do.
    spent: HashMap<String, u64>,
    /// Every token issued, to check that none leaks.
    issued: Vec<String>,
    refreshes: usize,
    registered: usize,
    /// Authorization requests: one per browser window opened on the sign-in page.
    authorizations: usize,
    /// Tokens presented to the revocation endpoint.
    revocations: Vec<String>,
    /// Leave `code_challenge_methods_supported` out of the metadata.
    no_pkce: bool,
}

type Shared = Arc<Mutex<AsState>>;

fn new_token(s: &mut AsState, prefix: &str) -> String {
    s.counter += 1;
    let t = format!("{prefix}-{}-{:x}", s.counter, rand_suffix(s.counter));
    s.issued.push(t.clone());
    t
}

fn rand_suffix(n: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    now.wrapping_mul(6364136223846793005).wrapping_add(n)
}

async fn prm(State(s): State<Shared>) -> Json<Value> {
    let base = s.lock().unwrap().base.clone();
    Json(json!({
        "resource": format!("{base}/mcp"),
        "authorization_servers": [base],
        "scopes_supported": ["mcp"],
        "bearer_methods_supported": ["header"],
    }))
}

async fn as_metadata(State(s): State<Shared>) -> Json<Value> {
    let (base, no_pkce) = {
        let s = s.lock().unwrap();
        (s.base.clone(), s.no_pkce)
    };
    let mut metadata = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "registration_endpoint": format!("{base}/register"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "authorization_response_iss_parameter_supported": true,
        "scopes_supported": ["mcp"],
        "revocation_endpoint": format!("{base}/revoke"),
    });
    if no_pkce {
        metadata
            .as_object_mut()
            .unwrap()
            .remove("code_challenge_methods_supported");
    }
    Json(metadata)
}

/// RFC 7009: revoking a refresh or access token ends its grant; unknown tokens are fine.
async fn revoke(State(s): State<Shared>, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut s = s.lock().unwrap();
    if f.get("client_id").is_none_or(|c| !c.starts_with("client-")) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let token = f.get("token").cloned().unwrap_or_default();
    // Like servers with self-contained access tokens: only refresh tokens are revocable.
    if f.get("token_type_hint").map(String::as_str) == Some("access_token") {
        s.revocations.push(token);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_token_type"})),
        )
            .into_response();
    }
    let grant = s
        .refresh
        .get(&token)
        .or_else(|| s.access.get(&token))
        .copied();
    if let Some(g) = grant {
        s.revoked.insert(g);
    }
    s.revocations.push(token);
    StatusCode::OK.into_response()
}

async fn register(State(s): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut s = s.lock().unwrap();
    s.registered += 1;
    let id = format!("client-{}", s.registered);
    (
        StatusCode::CREATED,
        Json(json!({
            "client_id": id,
            "client_name": body["client_name"],
            "redirect_uris": body["redirect_uris"],
            "token_endpoint_auth_method": "none",
        })),
    )
        .into_response()
}

async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut s = s.lock().unwrap();
    s.authorizations += 1;
    if q.get("code_challenge_method").map(String::as_str) != Some("S256")
        || q.get("response_type").map(String::as_str) != Some("code")
    {
        return (StatusCode::BAD_REQUEST, "PKCE S256 required").into_response();
    }
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    assert!(redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"));
    let code = new_token(&mut s, "code");
    s.codes.insert(
        code.clone(),
        (
            q.get("code_challenge").cloned().unwrap_or_default(),
            redirect.clone(),
        ),
    );
    let mut to = url::Url::parse(&redirect).unwrap();
    to.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", q.get("state").map(String::as_str).unwrap_or(""))
        .append_pair("iss", &s.base);
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

fn issue(s: &mut AsState, grant: u64) -> Json<Value> {
    let access = new_token(s, "at");
    let refresh = new_token(s, "rt");
    s.access.insert(access.clone(), grant);
    s.refresh.insert(refresh.clone(), grant);
    Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": refresh,
        "scope": "mcp",
    }))
}

fn invalid_grant() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_grant"})),
    )
        .into_response()
}

async fn token(State(s): State<Shared>, Form(f): Form<HashMap<String, String>>) -> Response {
    if f.get("grant_type").map(String::as_str) == Some("refresh_token") {
        // Slow refreshes make two unsynchronised processes overlap for sure.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut s = s.lock().unwrap();
    match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some((challenge, redirect)) = f.get("code").and_then(|c| s.codes.remove(c)) else {
                return invalid_grant();
            };
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            if computed != challenge || f.get("redirect_uri") != Some(&redirect) {
                return invalid_grant();
            }
            s.counter += 1;
            let grant = s.counter;
            issue(&mut s, grant).into_response()
        }
        Some("refresh_token") => {
            let old = f.get("refresh_token").cloned().unwrap_or_default();
            if let Some(grant) = s.spent.get(&old).copied() {
                s.revoked.insert(grant);
                return invalid_grant();
            }
            // Rotation: a refresh token works once.
            let Some(grant) = s.refresh.remove(&old) else {
                return invalid_grant();
            };
            s.spent.insert(old, grant);
            if s.revoked.contains(&grant) {
                return invalid_grant();
            }
            s.refreshes += 1;
            issue(&mut s, grant).into_response()
        }
        _ => invalid_grant(),
    }
}

async fn require_token(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let (ok, base) = {
        let s = s.lock().unwrap();
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = token
            .and_then(|t| s.access.get(t))
            .is_some_and(|g| !s.revoked.contains(g));
        (ok, s.base.clone())
    };
    if ok {
        next.run(req).await
    } else {
        let challenge = format!(
            "Bearer error=\"invalid_token\", resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
        );
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
            "unauthorized",
        )
            .into_response()
    }
}

/// Start the fake AS + resource; returns its state and the MCP URL.
async fn fake_oauth_cloud() -> (Shared, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state: Shared = Arc::new(Mutex::new(AsState {
        base: base.clone(),
        ..Default::default()
    }));
    let service: StreamableHttpService<Resource, LocalSessionManager> = StreamableHttpService::new(
        || {
            Ok(Resource {
                tool_router: Resource::tool_router(),
            })
        },
        Default::default(),
        Default::default(),
    );
    let mcp =
        Router::new()
            .nest_service("/mcp", service)
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                require_token,
            ));
    let app = Router::new()
        .route("/.well-known/oauth-protected-resource/mcp", get(prm))
        .route("/.well-known/oauth-authorization-server", get(as_metadata))
        .route("/register", post(register))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/revoke", post(revoke))
        .with_state(state.clone())
        .merge(mcp);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (state, format!("{base}/mcp"))
}

/// The test "browser": GETs the URL and follows redirects (to the loopback callback).
fn browser_script(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("browser.py");
    std::fs::write(
        &path,
        "#!/usr/bin/env python3\nimport sys, urllib.request\nurllib.request.urlopen(sys.argv[1], timeout=30).read()\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

fn browser_login(home: &std::path::Path, url: &str) -> (std::process::Output, String) {
    let browser = browser_script(home);
    let out = std::process::Command::new(BIN)
        .args(["login", url, "--credential-store", "file"])
        .env("XDG_CONFIG_HOME", home)
        .env("TESTRELAY_BROWSER", &browser)
        .env("TESTRELAY_LOGIN_TIMEOUT", "60")
        .env_remove("TESTRELAY_SERVER")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out, said)
}

fn credential_file(home: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(home.join("testrelay/credentials"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a credential file")
}

/// The refresh token the server would accept now (one grant).
fn refresh_token(state: &Shared) -> String {
    let s = state.lock().unwrap();
    s.refresh.keys().next().cloned().expect("a refresh token")
}

fn assert_no_token(state: &Shared, text: &str, what: &str) {
    for t in &state.lock().unwrap().issued {
        assert!(
            !text.contains(t.as_str()),
            "{what} contains an issued token or code"
        );
    }
}

fn text(r: &rmcp::model::CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sign_in_then_bridge_refresh_and_revocation() {
    let (state, url) = fake_oauth_cloud().await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();

    // Sign in through the scripted browser.
    let h = home.path().to_path_buf();
    let u = url.clone();
    let (out, said) = tokio::task::spawn_blocking(move || browser_login(&h, &u))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("signed in to") && said.contains("OAuth") && said.contains("1 tools"),
        "{said}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/authorize?"),
        "the URL is always printed: {stderr}"
    );
    assert_no_token(&state, &said, "login output");
    let file = credential_file(home.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let stored = std::fs::read_to_string(&file).unwrap();
    let first_rt = refresh_token(&state);
    assert!(stored.contains(&first_rt), "the tokens were stored");

    let status = tokio::process::Command::new(BIN)
        .args(["status", "--server", &url, "--credential-store", "file"])
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&status.stdout).to_string();
    assert_eq!(status.status.code(), Some(0), "{said}");
    assert!(
        said.contains("(connected)")
            && said.contains("signed in with oauth")
            && said.contains("credential: oauth access token valid for")
            && said.contains("renewed automatically"),
        "{said}"
    );

    // The IDE session uses the stored tokens.
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["--server", &url, "--credential-store", "file"])
        .env("XDG_CONFIG_HOME", home.path())
        .env("TESTRELAY_STATE_DIR", work.path())
        // A browser nobody uses: the revoked sign-in below is not renewed.
        .env("TESTRELAY_BROWSER", "true")
        .env("TESTRELAY_SIGN_IN_WAIT", "1")
        .env("TESTRELAY_LOG", "debug");
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = stderr.unwrap();
    let logs = tokio::spawn(async move {
        let mut s = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s).await;
        s
    });
    let client = ().serve(transport).await.unwrap();
    let mut found = false;
    for _ in 0..100 {
        let tools = client.list_all_tools().await.unwrap();
        if tools.iter().any(|t| t.name == "whoami") {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "the upstream tool never appeared");
    let call = |name: &'static str| {
        let client = &client;
        async move {
            client
                .call_tool(
                    CallToolRequestParams::new(name)
                        .with_arguments(json!({"name": "ada"}).as_object().cloned().unwrap()),
                )
                .await
                .unwrap()
        }
    };
    let r = call("whoami").await;
    assert_eq!(text(&r), "hello ada from the protected server");

    // The access token expires: one silent refresh, and the rotated token is persisted.
    state.lock().unwrap().access.clear();
    let r = call("whoami").await;
    assert_eq!(
        (text(&r).as_str(), r.is_error),
        ("hello ada from the protected server", Some(false))
    );
    assert!(state.lock().unwrap().refreshes >= 1);
    let stored = std::fs::read_to_string(&file).unwrap();
    let current_rt = refresh_token(&state);
    assert!(
        stored.contains(&current_rt) && !stored.contains(&first_rt),
        "the rotated refresh token was not persisted"
    );

    // The grant is revoked: the next call opens the sign-in page, and, the user not
    // coming, says where to sign in; the state says to sign in again.
    {
        let mut s = state.lock().unwrap();
        let grants: Vec<u64> = s.access.values().copied().collect();
        s.revoked.extend(grants);
    }
    let r = call("whoami").await;
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    assert!(
        text(&r).contains("needs the user to sign in again") && text(&r).contains("/authorize?"),
        "{}",
        text(&r)
    );
    let mut last = Value::Null;
    for _ in 0..60 {
        let conn = client
            .call_tool(CallToolRequestParams::new("test_connection"))
            .await
            .unwrap();
        last = conn.structured_content.clone().unwrap();
        if last["servers"][0]["state"] == "rejected" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(last["servers"][0]["state"], "rejected", "{last}");
    assert_eq!(last["servers"][0]["auth"], "oauth", "{last}");
    let next = last["servers"][0]["next_step"].as_str().unwrap();
    assert!(next.contains(&format!("testrelay login {url}")), "{next}");
    assert!(!next.contains("--api-key-stdin"), "{next}");

    client.cancel().await.unwrap();
    let logs = logs.await.unwrap();
    assert_no_token(&state, &logs, "the serve logs");
    assert_no_token(&state, &last.to_string(), "test_connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_never_comes_back_times_out_with_the_url_printed() {
    let (state, url) = fake_oauth_cloud().await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args(["login", &url, "--credential-store", "file"])
            .env("XDG_CONFIG_HOME", &h)
            // A "browser" that opens nothing, as on a headless machine.
            .env("TESTRELAY_BROWSER", "true")
            .env("TESTRELAY_LOGIN_TIMEOUT", "1")
            .env_remove("TESTRELAY_SERVER")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/authorize?"), "{stderr}");
    assert!(
        stderr.contains("no sign-in came back within 1s") && stderr.contains("--api-key-stdin"),
        "{stderr}"
    );
    assert!(
        !home.path().join("testrelay/credentials").exists() || {
            std::fs::read_dir(home.path().join("testrelay/credentials"))
                .unwrap()
                .all(|e| {
                    !std::fs::read_to_string(e.unwrap().path())
                        .unwrap()
                        .contains("access_token")
                })
        }
    );
    assert_eq!(state.lock().unwrap().refreshes, 0);
}

/// An IDE session of `testrelay` bridging `url`, once its upstream tool is listed.
async fn session(home: &std::path::Path, work: &std::path::Path, url: &str) -> IdeSession {
    session_with(home, work, url, &[]).await
}

async fn session_with(
    home: &std::path::Path,
    work: &std::path::Path,
    url: &str,
    envs: &[(&str, &std::ffi::OsStr)],
) -> IdeSession {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["--server", url, "--credential-store", "file"])
        .env("XDG_CONFIG_HOME", home)
        .env("TESTRELAY_STATE_DIR", work)
        .envs(envs.iter().copied());
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ide = Ide::default();
    let client = ide.clone().serve(transport).await.unwrap();
    for _ in 0..20 {
        let tools = client.list_all_tools().await.unwrap();
        if tools.iter().any(|t| t.name == "whoami") {
            return client;
        }
        // The bridge announces its tools with tools/list_changed.
        let _ = tokio::time::timeout(Duration::from_millis(500), ide.changed.notified()).await;
    }
    panic!("the upstream tool never appeared");
}

/// An IDE session whose handler records list changes and progress.
type IdeSession = rmcp::service::RunningService<rmcp::RoleClient, Ide>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_refresh_one_rotating_token_without_spending_it_twice() {
    let (state, url) = fake_oauth_cloud().await;
    let home = tempfile::tempdir().unwrap();
    let (w1, w2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (h, u) = (home.path().to_path_buf(), url.clone());
    let (out, said) = tokio::task::spawn_blocking(move || browser_login(&h, &u))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{said}");
    let a = session(home.path(), w1.path(), &url).await;
    let b = session(home.path(), w2.path(), &url).await;

    // Both processes find their access token rejected at the same moment.
    state.lock().unwrap().access.clear();
    let args = json!({"name": "ada"}).as_object().cloned().unwrap();
    let (ra, rb) = tokio::join!(
        a.call_tool(CallToolRequestParams::new("whoami").with_arguments(args.clone())),
        b.call_tool(CallToolRequestParams::new("whoami").with_arguments(args)),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    {
        let s = state.lock().unwrap();
        assert!(s.revoked.is_empty(), "a refresh token was spent twice");
        assert!(s.refreshes >= 2, "{} refreshes", s.refreshes);
    }
    assert_eq!(text(&ra), "hello ada from the protected server");
    assert_eq!(text(&rb), "hello ada from the protected server");
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_can_start_the_browser_sign_in_itself() {
    let (state, url) = fake_oauth_cloud().await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let browser = browser_script(home.path());
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["--server", &url, "--credential-store", "file"])
        .env("XDG_CONFIG_HOME", home.path())
        .env("TESTRELAY_STATE_DIR", work.path())
        .env("TESTRELAY_BROWSER", &browser);
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = ().serve(transport).await.unwrap();
    let args = |v: Value| v.as_object().cloned().unwrap_or_default();

    let before = client
        .call_tool(rmcp::model::CallToolRequestParams::new("test_connection"))
        .await
        .unwrap();
    let v = before.structured_content.unwrap();
    assert_eq!(v["servers"][0]["state"], "not_signed_in", "{v}");
    assert!(
        v["next_step"].as_str().unwrap().contains("sign_in=true"),
        "{v}"
    );

    let signed = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("test_connection").with_arguments(args(
                serde_json::json!({"sign_in": true, "wait_seconds": 60}),
            )),
        )
        .await
        .unwrap();
    let text_out = text(&signed);
    let v = signed.structured_content.unwrap();
    assert_eq!(v["sign_in"][0]["state"], "signed_in", "{v}");
    assert!(
        v["sign_in"][0]["url"]
            .as_str()
            .unwrap()
            .contains("/authorize"),
        "{v}"
    );
    assert_eq!(v["servers"][0]["state"], "connected", "{v}");
    assert_no_token(&state, &text_out, "the test_connection answer");
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "whoami"));
    assert!(
        std::fs::metadata(credential_file(home.path()))
            .unwrap()
            .len()
            > 0
    );
}

/// A "browser" that appends each URL it is asked to open to `opened.log` in `dir` and,
/// when `follow`, signs in (follows the URL back to testrelay's loopback callback).
fn recording_browser(
    dir: &std::path::Path,
    follow: bool,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let log = dir.join("opened.log");
    let path = dir.join(if follow { "follow.py" } else { "record.py" });
    let follow = if follow {
        "urllib.request.urlopen(sys.argv[1], timeout=30).read()\n"
    } else {
        ""
    };
    std::fs::write(
        &path,
        format!(
            "#!/usr/bin/env python3\nimport sys, urllib.request\nopen({:?}, 'a').write(sys.argv[1] + '\\n')\n{follow}",
            log.to_str().unwrap()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (path, log)
}

fn windows_opened(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn revoke_every_grant(state: &Shared) {
    let mut s = state.lock().unwrap();
    let grants: Vec<u64> = s
        .access
        .values()
        .chain(s.refresh.values())
        .copied()
        .collect();
    s.revoked.extend(grants);
}

async fn signed_in(state: &Shared, home: &std::path::Path, url: &str) {
    let (h, u) = (home.to_path_buf(), url.to_string());
    let (out, said) = tokio::task::spawn_blocking(move || browser_login(&h, &u))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert_no_token(state, &said, "login output");
}

/// A signed-in IDE session whose browser records the windows it opens (and signs in when
/// `follow`).
struct Recorded {
    state: Shared,
    client: IdeSession,
    log: std::path::PathBuf,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn recorded_session(follow: bool, envs: &[(&str, &str)]) -> Recorded {
    let (state, url) = fake_oauth_cloud().await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    signed_in(&state, home.path(), &url).await;
    let (browser, log) = recording_browser(home.path(), follow);
    let mut all = vec![("TESTRELAY_BROWSER", browser.as_os_str())];
    all.extend(envs.iter().map(|(k, v)| (*k, std::ffi::OsStr::new(v))));
    let client = session_with(home.path(), work.path(), &url, &all).await;
    Recorded {
        state,
        client,
        log,
        _dirs: (home, work),
    }
}

fn whoami() -> CallToolRequestParams {
    CallToolRequestParams::new("whoami")
        .with_arguments(json!({"name": "ada"}).as_object().cloned().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_after_a_revoked_sign_in_open_one_browser_window_then_succeed() {
    // `_dirs` keeps the session's directories until the test ends.
    let Recorded {
        state,
        client,
        log,
        _dirs,
    } = recorded_session(true, &[]).await;
    let before = state.lock().unwrap().authorizations;

    // The grant dies while the IDE is idle; then the agent fires five calls at once.
    revoke_every_grant(&state);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let peer = client.peer().clone();
        calls.spawn(async move { peer.call_tool(whoami()).await });
    }
    let mut answers = Vec::new();
    while let Some(r) = calls.join_next().await {
        answers.push(r.unwrap().unwrap());
    }
    for r in &answers {
        assert_eq!(
            (text(r).as_str(), r.is_error),
            ("hello ada from the protected server", Some(false)),
            "every call completes after the one sign-in"
        );
    }
    assert_eq!(windows_opened(&log), 1, "one browser window for five calls");
    assert_eq!(state.lock().unwrap().authorizations, before + 1);
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_nobody_finishes_is_not_reopened_by_every_call() {
    // `_dirs` keeps the session's directories until the test ends.
    let Recorded {
        state,
        client,
        log,
        _dirs,
    } = recorded_session(
        false,
        &[
            ("TESTRELAY_SIGN_IN_WAIT", "1"),
            ("TESTRELAY_LOGIN_TIMEOUT", "2"),
        ],
    )
    .await;
    revoke_every_grant(&state);

    // The first call shows the sign-in page as progress while it waits, then in its answer.
    let handle = client
        .send_request_with_option(
            ClientRequest::CallToolRequest(CallToolRequest::new(whoami())),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let ServerResult::CallToolResult(first) = handle.await_response().await.unwrap() else {
        panic!("not a tool result");
    };
    let said = text(&first);
    assert_eq!(first.is_error, Some(true), "{said}");
    assert!(
        said.contains("/authorize?") && said.contains("call this tool again"),
        "{said}"
    );
    assert_no_token(&state, &said, "the call's answer");
    let ide = client.service();
    let shown = loop {
        let seen = ide
            .progress
            .lock()
            .await
            .iter()
            .find(|p| p.progress_token == token)
            .cloned();
        if let Some(p) = seen {
            break p.message.unwrap_or_default();
        }
        tokio::time::timeout(Duration::from_secs(5), ide.progressed.notified())
            .await
            .expect("no progress while the call waited for the sign-in");
    };
    assert!(
        shown.contains("sign in") && shown.contains("/authorize?"),
        "{shown}"
    );

    // Calls while the flow runs join it; once it has timed out, calls are held back.
    let mut held = None;
    for _ in 0..20 {
        let r = client.call_tool(whoami()).await.unwrap();
        assert_eq!(r.is_error, Some(true));
        if text(&r).contains("no new browser window was opened") {
            held = Some(text(&r));
            break;
        }
    }
    let held = held.expect("calls kept waiting on a sign-in that had timed out");
    assert!(held.contains("sign_in=true"), "{held}");
    for _ in 0..3 {
        client.call_tool(whoami()).await.unwrap();
    }
    assert_eq!(windows_opened(&log), 1, "a call reopened the sign-in page");

    // The user asking for it opens the page again.
    let asked = client
        .call_tool(
            CallToolRequestParams::new("test_connection").with_arguments(
                json!({"sign_in": true, "wait_seconds": 1})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ),
        )
        .await
        .unwrap();
    let v = asked.structured_content.unwrap();
    assert_eq!(v["sign_in"][0]["state"], "waiting", "{v}");
    assert_eq!(windows_opened(&log), 2);
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_server_without_pkce_is_refused_before_anything_opens() {
    let (state, url) = fake_oauth_cloud().await;
    state.lock().unwrap().no_pkce = true;
    let home = tempfile::tempdir().unwrap();
    let (h, u) = (home.path().to_path_buf(), url.clone());
    let (out, said) = tokio::task::spawn_blocking(move || browser_login(&h, &u))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("code_challenge_methods_supported") && said.contains("PKCE"),
        "{said}"
    );
    let s = state.lock().unwrap();
    assert_eq!((s.registered, s.authorizations), (0, 0), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_sign_in_at_the_server_and_deletes_it_here() {
    let (state, url) = fake_oauth_cloud().await;
    let home = tempfile::tempdir().unwrap();
    signed_in(&state, home.path(), &url).await;
    let refresh = refresh_token(&state);
    let out = tokio::process::Command::new(BIN)
        .args(["logout", &url, "--credential-store", "file"])
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("TESTRELAY_SERVER")
        .output()
        .await
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("revoked the sign-in at") && said.contains("/revoke"),
        "{said}"
    );
    assert_no_token(&state, &said, "logout output");
    {
        let s = state.lock().unwrap();
        assert_eq!(
            s.revocations.first(),
            Some(&refresh),
            "the refresh token goes first"
        );
        assert_eq!(s.revocations.len(), 2, "then the access token");
        assert!(
            !s.revoked.is_empty(),
            "the grant is still alive at the server"
        );
    }
    let left: Vec<_> = std::fs::read_dir(home.path().join("testrelay/credentials"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(left.is_empty(), "credentials left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_with_a_dead_sign_in_the_tools_are_listed_and_a_call_signs_in() {
    let (state, url) = fake_oauth_cloud().await;
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    signed_in(&state, home.path(), &url).await;
    // A first IDE session sees the tools; then the IDE closes.
    session(home.path(), work.path(), &url)
        .await
        .cancel()
        .await
        .unwrap();

    // The grant dies while nothing runs (a refresh token that expired over the weekend).
    revoke_every_grant(&state);
    let (browser, log) = recording_browser(home.path(), true);
    let client = session_with(
        home.path(),
        work.path(),
        &url,
        &[("TESTRELAY_BROWSER", browser.as_os_str())],
    )
    .await;
    assert_eq!(
        windows_opened(&log),
        0,
        "listing the tools opened a browser"
    );
    let r = client.call_tool(whoami()).await.unwrap();
    assert_eq!(
        (text(&r).as_str(), r.is_error),
        ("hello ada from the protected server", Some(false))
    );
    assert_eq!(windows_opened(&log), 1);
    client.cancel().await.unwrap();
}

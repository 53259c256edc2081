//! The cloud bridge against a real rmcp Streamable HTTP server on loopback, protected by
//! a bearer key: login with the key on stdin, tools merged into the IDE's list, calls,
//! errors and progress passed through, an unreachable cloud, and no key in any output.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientRequest, ProgressNotificationParam,
    ServerCapabilities, ServerConfig, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestContext};
use rmcp::transport::TokioChildProcess;
use rmcp::transport::streamable_http_server::{
    StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{
    ClientHandler, Peer, RoleClient, RoleServer, ServerHandler, ServiceExt, tool, tool_handler,
    tool_router,
};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify};

use crate::support::BIN;

pub(crate) const GOOD_KEY: &str = "tr-test-key-5f1c2a9e";

#[derive(Clone)]
struct FakeCloud {
    extra_tool: Arc<AtomicBool>,
    tool_router: ToolRouter<Self>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// Text to send back.
    text: String,
}

#[tool_router]
impl FakeCloud {
    /// Send the text back.
    #[tool]
    async fn list_projects(&self, Parameters(a): Parameters<EchoArgs>) -> String {
        format!("projects for {}", a.text)
    }

    /// Always fails the way a tool reports a problem.
    #[tool]
    async fn broken_tool(&self) -> Result<String, String> {
        Err("project not found".into())
    }

    /// Reports progress three times, then answers.
    #[tool]
    async fn generate_tests(&self, ctx: RequestContext<RoleServer>) -> String {
        if let Some(token) = ctx.meta.get_progress_token() {
            for i in 1..=3 {
                let _ = ctx
                    .peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), i as f64).with_total(3.0),
                    )
                    .await;
            }
        }
        "generated 3 tests".into()
    }

    /// Makes one more tool appear and says so.
    #[tool]
    async fn enable_more(&self, peer: Peer<RoleServer>) -> String {
        self.extra_tool.store(true, Ordering::SeqCst);
        let _ = peer.notify_tool_list_changed().await;
        "enabled".into()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for FakeCloud {
    async fn list_tools(
        &self,
        _r: Option<rmcp::model::PaginatedRequestParams>,
        _c: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, rmcp::ErrorData> {
        let mut tools = self.tool_router.list_all();
        if self.extra_tool.load(Ordering::SeqCst) {
            let mut extra = tools[0].clone();
            extra.name = "report_results".into();
            tools.push(extra);
        }
        Ok(rmcp::model::ListToolsResult::with_all_items(tools))
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(rmcp::model::Implementation::new("fake-cloud", "9.9.9"))
    }
}

pub(crate) async fn require_key(req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {GOOD_KEY}"));
    if ok {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer realm=\"fake\"")],
            "unauthorized",
        )
            .into_response()
    }
}

/// Start the fake cloud; returns its MCP URL.
async fn fake_cloud() -> String {
    let extra = Arc::new(AtomicBool::new(false));
    serve_behind_key(move || FakeCloud {
        extra_tool: extra.clone(),
        tool_router: FakeCloud::tool_router(),
    })
    .await
}

/// Serve the MCP server `make` builds (one per session) on loopback at `/mcp`, behind the
/// bearer-key check; returns its URL.
pub(crate) async fn serve_behind_key<S>(make: impl Fn() -> S + Send + Sync + 'static) -> String
where
    S: ServerHandler + Send + 'static,
{
    let service: StreamableHttpService<S, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(make()), Default::default(), Default::default());
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn(require_key));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/mcp")
}

/// The IDE side: records list_changed and progress notifications.
#[derive(Clone, Default)]
pub(crate) struct Ide {
    pub(crate) changed: Arc<Notify>,
    pub(crate) progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub(crate) progressed: Arc<Notify>,
}

impl ClientHandler for Ide {
    async fn on_tool_list_changed(&self, _cx: NotificationContext<RoleClient>) {
        self.changed.notify_one();
    }

    async fn on_progress(
        &self,
        p: ProgressNotificationParam,
        _cx: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().await.push(p);
        self.progressed.notify_one();
    }
}

pub(crate) fn login(config_home: &std::path::Path, url: &str, key: &str) -> std::process::Output {
    login_in("file", config_home, url, key)
}

/// `testrelay login URL --api-key-stdin` with the key on stdin, into credential store `store`.
fn login_in(
    store: &str,
    config_home: &std::path::Path,
    url: &str,
    key: &str,
) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(BIN)
        .args(["login", url, "--api-key-stdin", "--credential-store", store])
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("TESTRELAY_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(key.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The real binary serving an IDE over stdio, and its stderr (read to the end on exit).
pub(crate) struct Session {
    pub(crate) client: rmcp::service::RunningService<RoleClient, Ide>,
    pub(crate) ide: Ide,
    pub(crate) stderr: tokio::task::JoinHandle<String>,
}

pub(crate) async fn serve(
    config_home: &std::path::Path,
    state: &std::path::Path,
    url: &str,
) -> Session {
    serve_in("file", config_home, state, url).await
}

async fn serve_in(
    store: &str,
    config_home: &std::path::Path,
    state: &std::path::Path,
    url: &str,
) -> Session {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["--server", url, "--credential-store", store])
        .env("XDG_CONFIG_HOME", config_home)
        .env("TESTRELAY_STATE_DIR", state)
        .env("TESTRELAY_LOG", "debug");
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = stderr.unwrap();
    let stderr = tokio::spawn(async move {
        let mut s = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s).await;
        s
    });
    let ide = Ide::default();
    let client = ide.clone().serve(transport).await.unwrap();
    Session {
        client,
        ide,
        stderr,
    }
}

impl Session {
    /// Tool names, after waiting (bounded) for the list to contain `expected`.
    pub(crate) async fn tools_with(&self, expected: &str) -> Vec<String> {
        for _ in 0..50 {
            let names: Vec<String> = self
                .client
                .list_all_tools()
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.name.to_string())
                .collect();
            if names.iter().any(|n| n == expected) {
                return names;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.ide.changed.notified()).await;
        }
        panic!("tool {expected} never appeared");
    }

    pub(crate) async fn call(&self, name: &str, args: Value) -> rmcp::model::CallToolResult {
        let params = CallToolRequestParams::new(name.to_string())
            .with_arguments(args.as_object().cloned().unwrap_or_default());
        self.client.call_tool(params).await.unwrap()
    }
}

pub(crate) fn text(r: &rmcp::model::CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_merges_upstream_tools_and_forwards_calls() {
    let url = fake_cloud().await;
    let home = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();

    let rejected = login(home.path(), &url, "wrong-key");
    let said = String::from_utf8_lossy(&rejected.stderr).to_string()
        + &String::from_utf8_lossy(&rejected.stdout);
    assert_eq!(rejected.status.code(), Some(1), "{said}");
    assert!(said.contains("rejected the API key"), "{said}");
    assert!(
        !said.contains("worker quit"),
        "rmcp's internal error leaked into the output: {said}"
    );
    assert!(
        !home.path().join("testrelay/credentials").exists()
            || std::fs::read_dir(home.path().join("testrelay/credentials"))
                .unwrap()
                .next()
                .is_none()
    );

    let ok = login(home.path(), &url, GOOD_KEY);
    let out =
        String::from_utf8_lossy(&ok.stdout).to_string() + &String::from_utf8_lossy(&ok.stderr);
    assert_eq!(ok.status.code(), Some(0), "{out}");
    assert!(
        out.contains("signed in to") && out.contains("fake-cloud 9.9.9") && out.contains("4 tools"),
        "{out}"
    );
    assert!(!out.contains(GOOD_KEY));

    let status = std::process::Command::new(BIN)
        .args(["status", "--server", &url, "--credential-store", "file"])
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&status.stdout).to_string()
        + &String::from_utf8_lossy(&status.stderr);
    assert_eq!(status.status.code(), Some(0), "{said}");
    assert!(
        said.contains("(connected): fake-cloud 9.9.9") && said.contains("4 tools"),
        "{said}"
    );

    let session = serve(home.path(), state.path(), &url).await;
    let names = session.tools_with("list_projects").await;
    assert!(
        names.contains(&"run_tests".to_string()) && names.contains(&"test_connection".to_string())
    );
    assert!(names.contains(&"broken_tool".to_string()));

    let r = session.call("list_projects", json!({"text": "acme"})).await;
    assert_eq!(
        (text(&r).as_str(), r.is_error),
        ("projects for acme", Some(false))
    );
    let r = session.call("broken_tool", json!({})).await;
    assert_eq!(
        (text(&r).as_str(), r.is_error),
        ("project not found", Some(true))
    );

    // Progress from upstream reaches the IDE under the IDE's own token.
    let handle = session
        .client
        .send_request_with_option(
            ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new(
                "generate_tests",
            ))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let done = handle.await_response().await.unwrap();
    assert!(
        matches!(done, ServerResult::CallToolResult(ref r) if text(r) == "generated 3 tests"),
        "{done:?}"
    );
    // The IDE side runs each notification handler as its own task (rmcp): wait, bounded,
    // for all three to be handled.
    let mut seen = 0;
    for _ in 0..50 {
        seen = session
            .ide
            .progress
            .lock()
            .await
            .iter()
            .filter(|p| p.progress_token == token)
            .count();
        if seen >= 3 {
            break;
        }
        let _ = tokio::time::timeout(
            Duration::from_millis(200),
            session.ide.progressed.notified(),
        )
        .await;
    }
    assert_eq!(seen, 3, "{:?}", session.ide.progress.lock().await);

    // An upstream list change reaches the IDE.
    session.call("enable_more", json!({})).await;
    session.tools_with("report_results").await;

    let conn = session.call("test_connection", json!({})).await;
    let v = conn.structured_content.clone().unwrap();
    assert_eq!(v["servers"][0]["state"], "connected", "{v}");
    assert_eq!(v["servers"][0]["tools"], 5);
    assert!(
        v["servers"][0]["server"]
            .as_str()
            .unwrap()
            .starts_with("fake-cloud 9.9.9")
    );
    assert!(
        v["credential_store"]
            .as_str()
            .unwrap()
            .contains("file store")
    );
    assert!(!serde_json::to_string(&v).unwrap().contains(GOOD_KEY));

    session.client.cancel().await.unwrap();
    let logs = session.stderr.await.unwrap();
    assert!(!logs.contains(GOOD_KEY), "the key leaked into the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cloud_leaves_local_tools_working_and_says_why() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    drop(listener);
    let home = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let stored = login(home.path(), &url, GOOD_KEY);
    assert_eq!(
        stored.status.code(),
        Some(1),
        "a key for a server that is down is kept, exit 1"
    );
    assert!(String::from_utf8_lossy(&stored.stdout).contains("stored the key"));

    let session = serve(home.path(), state.path(), &url).await;
    let conn = session.call("test_connection", json!({})).await;
    let v = conn.structured_content.clone().unwrap();
    assert_eq!(v["servers"][0]["state"], "unreachable", "{v}");
    assert!(
        v["next_step"]
            .as_str()
            .unwrap()
            .contains("local tools keep working"),
        "{v}"
    );
    let list = session.call("list_test_executions", json!({})).await;
    assert_eq!(list.is_error, Some(false));
    let missing = session
        .client
        .call_tool(CallToolRequestParams::new("list_projects"))
        .await;
    assert!(missing.is_err(), "an unknown tool is a protocol error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_server_test_connection_explains_how_to_connect() {
    let home = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.env("XDG_CONFIG_HOME", home.path())
        .env("TESTRELAY_STATE_DIR", state.path())
        .env_remove("TESTRELAY_SERVER");
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = ().serve(transport).await.unwrap();
    let r = client
        .call_tool(CallToolRequestParams::new("test_connection"))
        .await
        .unwrap();
    let v = r.structured_content.unwrap();
    assert_eq!(v["configured"], false);
    assert!(v["next_step"].as_str().unwrap().contains("--server URL"));
    let status = std::process::Command::new(BIN)
        .arg("status")
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("TESTRELAY_SERVER")
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_os_keychain_keeps_the_key_for_the_next_process_and_off_the_disk() {
    let url = fake_cloud().await;
    let home = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = login_in("keychain", home.path(), &url, GOOD_KEY);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains(GOOD_KEY));
    assert!(
        !home.path().join("testrelay/credentials").exists(),
        "the keychain store wrote a credential file"
    );
    if said.contains("no OS keychain is available") {
        // A machine without any keychain: a clear refusal that names the opt-in, and
        // nothing stored.
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(said.contains("--credential-store file"), "{said}");
        eprintln!("no OS keychain here: only the refusal was checked");
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("OS keychain"), "{said}");

    // Another process (the IDE's) finds the key there.
    let session = serve_in("keychain", home.path(), state.path(), &url).await;
    session.tools_with("list_projects").await;
    let r = session.call("list_projects", json!({"text": "acme"})).await;
    assert_eq!(text(&r), "projects for acme");
    session.client.cancel().await.unwrap();
    assert!(!session.stderr.await.unwrap().contains(GOOD_KEY));

    let logout = std::process::Command::new(BIN)
        .args(["logout", &url])
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("TESTRELAY_SERVER")
        .output()
        .unwrap();
    assert_eq!(logout.status.code(), Some(0));
    let status = std::process::Command::new(BIN)
        .args(["status", "--server", &url])
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(said.contains("(not_signed_in)"), "{said}");
}

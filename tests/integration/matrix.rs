//! The cloud bridge against upstreams that speak Streamable HTTP in different ways (the
//! conformance matrix): a POST-only server that answers GET with 405, plain JSON responses
//! on protocol 2024-11-05, a server that restarts on the same port with fresh session
//! state, and cancellation forwarded from the IDE. Each test drives the real binary over
//! stdio with rmcp's client against a loopback fake, and checks that the key never shows.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest, Implementation,
    InitializeRequestParams, InitializeResult, ProtocolVersion, ServerCapabilities, ServerConfig,
};
use rmcp::service::{PeerRequestOptions, RequestContext};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::cloud::{GOOD_KEY, Session, login, require_key, serve, text};

/// How long any one awaited event may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);

/// How a fake upstream speaks Streamable HTTP.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// rmcp's defaults: sessions, SSE responses, a GET stream.
    Sessions,
    /// Sessions, but GET on the endpoint answers 405 (no server-initiated stream).
    PostOnly,
    /// Stateless, plain `application/json` responses, protocol 2024-11-05 only.
    JsonOldProtocol,
}

/// What a fake upstream saw, shared with the test.
#[derive(Default)]
struct Seen {
    /// Session ids the server handed out, in order.
    sessions: Mutex<Vec<String>>,
    /// GET requests per session id ("" for none).
    gets: Mutex<HashMap<String, usize>>,
    /// The protocol versions clients asked for in `initialize`, in order.
    asked: Mutex<Vec<String>>,
    /// Content types of the answers to POSTs that had a body.
    content_types: Mutex<Vec<String>>,
    /// Any request was recorded.
    changed: Notify,
    /// `wait_for_cancel` is running.
    waiting: Notify,
    /// `wait_for_cancel` saw its cancellation token fire.
    cancelled: Notify,
}

impl Seen {
    fn sessions(&self) -> Vec<String> {
        self.sessions.lock().unwrap().clone()
    }

    fn gets(&self) -> HashMap<String, usize> {
        self.gets.lock().unwrap().clone()
    }

    /// Wait (bounded by `within`) until `ready` holds; false when it never did.
    async fn wait_until(&self, within: Duration, ready: impl Fn(&Seen) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.changed.notified();
            if ready(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return ready(self);
            }
        }
    }
}

#[derive(Clone)]
struct Upstream {
    seen: Arc<Seen>,
    old_protocol: bool,
    tool_router: ToolRouter<Self>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct TextArgs {
    /// Any text.
    text: String,
}

#[tool_router]
impl Upstream {
    /// Send the text back.
    #[tool]
    async fn echo(&self, Parameters(a): Parameters<TextArgs>) -> String {
        format!("echo: {}", a.text)
    }

    /// Look a project up; there are none, so this reports a tool error.
    #[tool]
    async fn find_project(&self, Parameters(a): Parameters<TextArgs>) -> Result<String, String> {
        Err(format!("no project named {}", a.text))
    }

    /// Run until the call is cancelled.
    #[tool]
    async fn wait_for_cancel(&self, ctx: RequestContext<RoleServer>) -> String {
        self.seen.waiting.notify_one();
        ctx.ct.cancelled().await;
        self.seen.cancelled.notify_one();
        "cancelled".into()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Upstream {
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        let asked = request.protocol_version.as_str().to_string();
        self.seen.asked.lock().unwrap().push(asked);
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    fn get_info(&self) -> ServerConfig {
        let info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("matrix-cloud", "1.2.3"));
        if self.old_protocol {
            info.with_protocol_version(ProtocolVersion::V_2024_11_05)
        } else {
            info
        }
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        if self.old_protocol {
            Cow::Owned(vec![ProtocolVersion::V_2024_11_05])
        } else {
            Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS)
        }
    }
}

/// Records what reaches the MCP endpoint (behind the key check) and, for a POST-only
/// server, refuses GET the way the spec allows: 405.
async fn observe(
    State((seen, flavor)): State<(Arc<Seen>, Flavor)>,
    req: Request,
    next: Next,
) -> Response {
    let session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let response = if req.method() == Method::GET {
        *seen.gets.lock().unwrap().entry(session).or_default() += 1;
        if flavor == Flavor::PostOnly {
            (StatusCode::METHOD_NOT_ALLOWED, [("allow", "POST, DELETE")]).into_response()
        } else {
            next.run(req).await
        }
    } else {
        let post = req.method() == Method::POST;
        let response = next.run(req).await;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if let Some(id) = header("mcp-session-id") {
            let mut sessions = seen.sessions.lock().unwrap();
            if !sessions.contains(&id) {
                sessions.push(id);
            }
        }
        if post && let Some(kind) = header("content-type") {
            seen.content_types.lock().unwrap().push(kind);
        }
        response
    };
    seen.changed.notify_waiters();
    response
}

/// A fake upstream serving on a loopback port until stopped.
struct Fake {
    addr: SocketAddr,
    seen: Arc<Seen>,
    stop: CancellationToken,
    served: tokio::task::JoinHandle<()>,
}

impl Fake {
    async fn start(flavor: Flavor) -> Fake {
        Fake::start_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), flavor)
    }

    fn start_on(listener: TcpListener, flavor: Flavor) -> Fake {
        let seen = Arc::new(Seen::default());
        let stop = CancellationToken::new();
        // The service's token ends its sessions and their open streams, so the graceful
        // shutdown below does not wait on them.
        let mut config =
            StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token());
        if flavor == Flavor::JsonOldProtocol {
            config = config
                .with_legacy_session_mode(false)
                .with_json_response(true);
        }
        let handler_seen = seen.clone();
        let service: StreamableHttpService<Upstream, LocalSessionManager> =
            StreamableHttpService::new(
                move || {
                    Ok(Upstream {
                        seen: handler_seen.clone(),
                        old_protocol: flavor == Flavor::JsonOldProtocol,
                        tool_router: Upstream::tool_router(),
                    })
                },
                Default::default(),
                config,
            );
        let app = axum::Router::new()
            .nest_service("/mcp", service)
            .layer(axum::middleware::from_fn_with_state(
                (seen.clone(), flavor),
                observe,
            ))
            .layer(axum::middleware::from_fn(require_key));
        let addr = listener.local_addr().unwrap();
        let shutdown = stop.clone();
        let served = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
        });
        Fake {
            addr,
            seen,
            stop,
            served,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Stop serving and wait (bounded) until the port is closed.
    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.served)
            .await
            .expect("the fake upstream did not shut down")
            .unwrap();
    }
}

/// A key stored for `fake` (the login checks it against the server) and the binary
/// serving an IDE with it; the temp dirs live as long as the session.
struct Connected {
    session: Session,
    /// Sessions the login opened on the fake; the others are the bridge's.
    login_sessions: Vec<String>,
    _home: tempfile::TempDir,
    _state: tempfile::TempDir,
}

/// Log in to `fake`, start the binary and, as an IDE's first call often is, ask
/// test_connection at once: it finds the connection under way and reports it connected.
async fn connect(fake: &Fake) -> Connected {
    let url = fake.url();
    let home = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let stored = login(home.path(), &url, GOOD_KEY);
    let said = String::from_utf8_lossy(&stored.stdout).to_string()
        + &String::from_utf8_lossy(&stored.stderr);
    assert_eq!(stored.status.code(), Some(0), "{said}");
    assert_no_key(&said);
    let c = Connected {
        session: serve(home.path(), state.path(), &url).await,
        login_sessions: fake.seen.sessions(),
        _home: home,
        _state: state,
    };
    let server = c.server_report().await;
    assert_eq!(server["state"], "connected", "{server}");
    c.session.tools_with("echo").await;
    c
}

impl Connected {
    /// The first (only) server of `test_connection`, which probes a server that is not
    /// connected.
    async fn server_report(&self) -> Value {
        let r = self.session.call("test_connection", json!({})).await;
        let v = r.structured_content.clone().expect("structured report");
        assert_no_key(&v.to_string());
        v["servers"][0].clone()
    }

    /// Sessions the bridge opened on `seen`'s server.
    fn bridge_sessions(&self, seen: &Seen) -> Vec<String> {
        let mut ids = seen.sessions();
        ids.retain(|id| !self.login_sessions.contains(id));
        ids
    }

    /// Close the IDE side and return the binary's whole stderr, checked for the key.
    async fn finish(self) -> String {
        self.session.client.cancel().await.unwrap();
        let logs = tokio::time::timeout(WAIT, self.session.stderr)
            .await
            .expect("the server did not exit after stdin closed")
            .unwrap();
        assert_no_key(&logs);
        logs
    }
}

fn assert_no_key(said: &str) {
    assert!(!said.contains(GOOD_KEY), "the key leaked: {said}");
}

/// A tool result as the wire carries it, checked for the key.
fn wire(r: &CallToolResult) -> Value {
    let v = serde_json::to_value(r).unwrap();
    assert_no_key(&v.to_string());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_only_upstream_works_without_retrying_its_get() {
    let fake = Fake::start(Flavor::PostOnly).await;
    let c = connect(&fake).await;
    let names = c.session.tools_with("echo").await;
    for name in ["find_project", "wait_for_cancel", "list_test_executions"] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
    let r = c.session.call("echo", json!({"text": "post only"})).await;
    assert_eq!(wire(&r)["content"][0]["text"], "echo: post only");
    assert_eq!(r.is_error, Some(false));
    let r = c
        .session
        .call("find_project", json!({"text": "acme"}))
        .await;
    assert_eq!(
        (text(&r).as_str(), r.is_error),
        ("no project named acme", Some(true))
    );

    // The bridge's session asked for its SSE stream once and was refused...
    let bridge_get = |s: &Seen| {
        s.gets()
            .iter()
            .any(|(id, _)| !id.is_empty() && !c.login_sessions.contains(id))
    };
    assert!(
        fake.seen.wait_until(WAIT, bridge_get).await,
        "the bridge never tried GET; the 405 path is not exercised: {:?}",
        fake.seen.gets()
    );
    // ...and does not ask again: a client retrying with rmcp's stream backoff (1 s, then
    // 2 s) would show a second GET within this wait.
    let retried = |s: &Seen| s.gets().values().any(|&n| n > 1);
    assert!(
        !fake.seen.wait_until(Duration::from_secs(4), retried).await,
        "GET was retried after 405: {:?}",
        fake.seen.gets()
    );
    let r = c.session.call("echo", json!({"text": "still"})).await;
    assert_eq!(text(&r), "echo: still");

    let server = c.server_report().await;
    assert_eq!(server["state"], "connected", "{server}");
    assert_eq!(server["tools"], 3, "{server}");
    // One connection: neither the probe at startup nor a 405 opens another.
    let ours = c.bridge_sessions(&fake.seen);
    assert_eq!(ours.len(), 1, "{ours:?}");

    let logs = c.finish().await;
    let storm: Vec<&str> = logs
        .lines()
        .filter(|l| {
            l.contains("fail to get common stream")
                || l.contains("event stream terminated with error")
        })
        .collect();
    assert!(storm.is_empty(), "{storm:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_json_on_protocol_2024_11_05_passes_through_unchanged() {
    let fake = Fake::start(Flavor::JsonOldProtocol).await;
    let url = fake.url();
    let c = connect(&fake).await;

    // The bridge (and the login check) ask for 2025-11-25 and accept the older version
    // the server answers.
    let asked = fake.seen.asked.lock().unwrap().clone();
    assert!(
        !asked.is_empty() && asked.iter().all(|v| v == "2025-11-25"),
        "{asked:?}"
    );
    let server = c.server_report().await;
    assert_eq!(server["state"], "connected", "{server}");
    assert_eq!(
        server["server"], "matrix-cloud 1.2.3 (protocol 2024-11-05)",
        "{server}"
    );

    // What the IDE gets is what a direct client gets from the server.
    let direct = {
        // reqwest is built without a crypto provider; testrelay installs its own.
        testrelay::cloud::init_tls();
        let config =
            StreamableHttpClientTransportConfig::with_uri(url.as_str()).auth_header(GOOD_KEY);
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .unwrap()
    };
    assert_eq!(
        direct.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2024_11_05
    );
    for (tool, is_error) in [("echo", false), ("find_project", true)] {
        let args = json!({"text": "acme"});
        let bridged = c.session.call(tool, args.clone()).await;
        let expected = direct
            .call_tool(
                CallToolRequestParams::new(tool).with_arguments(args.as_object().cloned().unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(bridged.is_error, Some(is_error), "{tool}");
        assert_eq!(wire(&bridged), wire(&expected), "{tool}");
    }
    direct.cancel().await.unwrap();

    // The server really answered in plain JSON, and, having no sessions, was never asked
    // for a stream.
    let kinds = fake.seen.content_types.lock().unwrap().clone();
    assert!(
        !kinds.is_empty() && kinds.iter().all(|k| k.starts_with("application/json")),
        "{kinds:?}"
    );
    assert!(fake.seen.gets().is_empty(), "{:?}", fake.seen.gets());
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_restarted_on_the_same_port_is_used_again() {
    let fake = Fake::start(Flavor::Sessions).await;
    let (url, addr) = (fake.url(), fake.addr);
    let c = connect(&fake).await;
    let r = c.session.call("echo", json!({"text": "before"})).await;
    assert_eq!(text(&r), "echo: before");
    assert_eq!(c.bridge_sessions(&fake.seen).len(), 1);

    fake.stop().await;
    let r = c.session.call("echo", json!({"text": "down"})).await;
    wire(&r);
    let said = text(&r);
    assert_eq!(r.is_error, Some(true), "{said}");
    assert!(
        said.contains("failed") && said.contains("reconnecting"),
        "the error does not say what happened: {said}"
    );
    // test_connection, which the model calls to find out why, says so too.
    let server = c.server_report().await;
    assert_eq!(server["state"], "unreachable", "{server}");
    assert!(
        server["error"].as_str().unwrap_or_default().contains(&url),
        "{server}"
    );
    let local = c.session.call("list_test_executions", json!({})).await;
    assert_eq!(local.is_error, Some(false), "{}", text(&local));

    // Fresh session state on the same port: the old session id means nothing to it.
    let fake = Fake::start_on(TcpListener::bind(addr).await.unwrap(), Flavor::Sessions);
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = String::new();
    loop {
        let server = c.server_report().await;
        if server["state"] == "connected" {
            // The tool list may still be catching up: an unknown tool is a protocol error.
            let call = c
                .session
                .client
                .call_tool(
                    CallToolRequestParams::new("echo")
                        .with_arguments(json!({"text": "after"}).as_object().cloned().unwrap()),
                )
                .await;
            match call {
                Ok(r) if r.is_error != Some(true) => {
                    assert_eq!(text(&r), "echo: after");
                    break;
                }
                Ok(r) => last = text(&r),
                Err(e) => last = e.to_string(),
            }
        } else {
            last = server.to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no successful call after the restart; last: {last}"
        );
        let _ =
            tokio::time::timeout(Duration::from_secs(1), c.session.ide.changed.notified()).await;
    }
    assert_no_key(&last);
    // The connection that answered is kept: the background retry, whose timer was set
    // while the server was down (1 s, then 2 s), must not replace it with a second one.
    let replaced = fake
        .seen
        .wait_until(Duration::from_secs(4), |s| s.sessions().len() > 1)
        .await;
    assert!(!replaced, "sessions: {:?}", fake.seen.sessions());
    let r = c.session.call("echo", json!({"text": "later"})).await;
    assert_eq!(
        (text(&r).as_str(), r.is_error),
        ("echo: later", Some(false))
    );
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_call_in_the_ide_cancels_it_upstream() {
    let fake = Fake::start(Flavor::Sessions).await;
    let c = connect(&fake).await;
    c.session.tools_with("wait_for_cancel").await;

    let handle = c
        .session
        .client
        .send_request_with_option(
            ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new(
                "wait_for_cancel",
            ))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    tokio::time::timeout(WAIT, fake.seen.waiting.notified())
        .await
        .expect("the call never reached the upstream");
    handle
        .cancel(Some("the user pressed stop".into()))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, fake.seen.cancelled.notified())
        .await
        .expect("the upstream never saw the cancellation");

    // The connection survives the cancellation: the next call goes over it.
    let r = c.session.call("echo", json!({"text": "next"})).await;
    assert_eq!((text(&r).as_str(), r.is_error), ("echo: next", Some(false)));
    assert_eq!(c.bridge_sessions(&fake.seen).len(), 1);
    c.finish().await;
}

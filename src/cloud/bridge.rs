//! The bridge: keeps one connection per configured upstream server alive in the
//! background, exposes their tools (renamed and filtered) next to the local ones, and
//! forwards calls, progress and cancellation.
//!
//! Connecting never delays the IDE: it starts after `initialize`, and local tools work
//! whatever the cloud does. A server that is down, slow or rejects the credential gets
//! a clear state and retries with backoff; calls to its tools return an error result
//! saying why and what to do.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, CancelledNotificationParam,
    ClientRequest, ContentBlock, ProgressNotificationParam, ProgressToken, ServerResult, Tool,
};
use rmcp::service::PeerRequestOptions;
use rmcp::{Peer, RoleServer};
use tokio::sync::{Notify, RwLock};
use tokio_util::sync::CancellationToken;

use super::config::{CloudConfig, ServerSpec};
use super::credentials::Credentials;
use super::error::CloudError;
use super::oauth::{self, AuthStyle, Credential};
use super::upstream::{self, Upstream, UpstreamHandler};

const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How often a server without a credential is looked at again (a `testrelay login` in a
/// terminal is picked up without restarting the IDE).
const LOGIN_POLL: Duration = Duration::from_secs(15);
/// How long a tool call that needs a new sign-in waits for the user to finish it in the
/// browser (`TESTRELAY_SIGN_IN_WAIT` seconds overrides it) before answering "sign in at
/// <url>, then retry". The flow itself goes on for the login timeout.
const CALL_SIGN_IN_WAIT: Duration = Duration::from_secs(60);
/// After a browser sign-in that a tool call started ends without the user (timed out,
/// refused), calls open no new browser window for this long: repeated 401s, retries by the
/// agent or a laptop waking up never turn into a storm of sign-in pages. The user can
/// still start one at any time with `test_connection {sign_in: true}`.
const SIGN_IN_COOLDOWN: Duration = Duration::from_secs(300);

/// Where one upstream server stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnState {
    Connecting,
    Connected,
    /// No credential stored for it.
    NotSignedIn,
    /// The server answered 401 to the stored credential.
    Rejected,
    Unreachable,
    /// The credential store itself failed (no keychain, unreadable file).
    StoreFailed,
}

struct ServerConn {
    spec: ServerSpec,
    state: RwLock<(ConnState, Option<String>)>,
    client: RwLock<Option<Arc<Upstream>>>,
    tools: RwLock<Vec<Tool>>,
    /// Upstream tool names as the server lists them (before renaming and allow/deny
    /// filtering): what the hybrid tools may call on it.
    offered: RwLock<HashSet<String>>,
    described: RwLock<Option<String>>,
    auth: RwLock<Option<AuthStyle>>,
    kick: Notify,
    /// The newest connection generation a reconnect was asked for.
    wanted: AtomicU64,
    /// Counts finished connection attempts, so a caller can ask for a reconnect and wait
    /// for its outcome. Only the server's background task connects.
    attempts: tokio::sync::watch::Sender<u64>,
    /// The browser sign-in started from the IDE, while one runs: its authorization URL.
    /// At most one flow per server at a time, so repeated calls never open a browser storm.
    sign_in: tokio::sync::Mutex<Option<SignIn>>,
    /// When the last sign-in that a tool call started ended without success, and why:
    /// the circuit breaker of [`SIGN_IN_COOLDOWN`].
    sign_in_failed: Mutex<Option<(std::time::Instant, String)>>,
}

/// Who asked for a browser sign-in: the user (through `test_connection`), or a tool call
/// that found the sign-in rejected. Only the latter is held back by the circuit breaker.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trigger {
    User,
    Call,
}

#[derive(Clone)]
struct SignIn {
    url: Option<String>,
    done: tokio::sync::watch::Receiver<Option<Result<(), String>>>,
}

/// Where an IDE-started sign-in stands, for `test_connection`.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct SignInReport {
    pub server: String,
    /// The page to sign in on (also opened in the browser and printed to stderr).
    pub url: Option<String>,
    /// `signed_in`, `waiting` (the user has not finished yet) or `failed`.
    // (Internally also `held_back`: a tool call found the last sign-in unfinished and
    // opened no new browser window; test_connection never holds back.)
    pub state: String,
    pub error: Option<String>,
}

pub(super) struct BridgeInner {
    config: CloudConfig,
    file_dir: PathBuf,
    servers: Vec<ServerConn>,
    ide: OnceLock<Peer<RoleServer>>,
    /// Upstream progress token → the IDE's token for the same call, and the channel of the
    /// task forwarding that call (it sends the IDE the progress, in order, before the result).
    progress: Mutex<
        HashMap<
            ProgressToken,
            (
                ProgressToken,
                tokio::sync::mpsc::UnboundedSender<ProgressNotificationParam>,
            ),
        >,
    >,
    /// Local tool names: an upstream tool never shadows one.
    reserved: HashSet<String>,
    /// Where each server's last tool list is kept (see `tool_cache_file`).
    tool_cache: Option<PathBuf>,
    credentials: Arc<CredentialsCache>,
    started: OnceLock<()>,
    shutdown: CancellationToken,
}

/// A snapshot of one server for `test_connection` and `testrelay status`.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ServerReport {
    pub name: String,
    pub url: String,
    pub state: ConnState,
    /// What went wrong, when something did.
    pub error: Option<String>,
    /// The upstream server's name, version and negotiated protocol, once connected.
    pub server: Option<String>,
    /// Tools exposed from this server (after allow/deny filtering).
    pub tools: usize,
    /// How testrelay signs in to it: `oauth` (browser sign-in) or `api_key`; null when
    /// no credential is stored.
    pub auth: Option<AuthStyle>,
    /// How the stored credential stands (valid for how long, expired, revoked); never
    /// the credential itself. Null when none is stored.
    pub credential: Option<String>,
    pub next_step: Option<String>,
}

#[derive(Clone)]
pub struct Bridge {
    inner: Arc<BridgeInner>,
}

fn exposed_name(config: &CloudConfig, spec: &ServerSpec, tool: &str) -> String {
    if config.servers.len() > 1 {
        format!("{}_{tool}", spec.name)
    } else {
        tool.to_string()
    }
}

fn next_step(spec: &ServerSpec, state: &ConnState, auth: Option<AuthStyle>) -> Option<String> {
    let url = &spec.url;
    match state {
        ConnState::Connected | ConnState::Connecting => None,
        ConnState::NotSignedIn => Some(format!("if the user wants to connect now, call test_connection with sign_in=true (opens the sign-in page in their browser); or ask them to run `testrelay login {url}` in a terminal (`--api-key-stdin` for an API key); testrelay picks a new credential up within {}s", LOGIN_POLL.as_secs())),
        ConnState::Rejected if auth == Some(AuthStyle::Oauth) => Some(format!("the sign-in was revoked or has expired: call test_connection with sign_in=true to sign in again in the browser, or ask the user to run `testrelay login {url}`")),
        ConnState::Rejected => Some(format!("the stored credential was rejected: ask the user to run `testrelay login {url} --api-key-stdin` with a valid key")),
        ConnState::Unreachable => Some("check the network and the server URL; testrelay keeps reconnecting with backoff, and local tools keep working".into()),
        ConnState::StoreFailed => Some("fix the credential store (see error), or opt in to a 0600 file with --credential-store file, then log in again".into()),
    }
}

impl Bridge {
    /// `tool_cache` keeps each server's last tool list across restarts (None: not kept).
    pub fn new(
        config: CloudConfig,
        file_dir: PathBuf,
        reserved: HashSet<String>,
        tool_cache: Option<PathBuf>,
    ) -> Self {
        let servers = config
            .servers
            .iter()
            .map(|spec| ServerConn {
                spec: spec.clone(),
                state: RwLock::new((ConnState::Connecting, None)),
                client: RwLock::new(None),
                tools: RwLock::new(Vec::new()),
                offered: RwLock::new(HashSet::new()),
                described: RwLock::new(None),
                auth: RwLock::new(None),
                kick: Notify::new(),
                wanted: AtomicU64::new(0),
                attempts: tokio::sync::watch::Sender::new(0),
                sign_in: tokio::sync::Mutex::new(None),
                sign_in_failed: Mutex::new(None),
            })
            .collect();
        let credentials = Arc::new(CredentialsCache {
            kind: config.credential_store,
            dir: file_dir.clone(),
            opened: Mutex::new(None),
        });
        Bridge {
            inner: Arc::new(BridgeInner {
                config,
                file_dir,
                servers,
                ide: OnceLock::new(),
                progress: Mutex::new(HashMap::new()),
                reserved,
                tool_cache,
                credentials,
                started: OnceLock::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    pub fn config(&self) -> &CloudConfig {
        &self.inner.config
    }

    pub fn configured(&self) -> bool {
        !self.inner.servers.is_empty()
    }

    /// Start connecting (once), relaying notifications to `ide`.
    pub fn start(&self, ide: Peer<RoleServer>) {
        let _ = self.inner.ide.set(ide);
        if self.inner.started.set(()).is_err() {
            return;
        }
        upstream::init_tls();
        for i in 0..self.inner.servers.len() {
            let inner = self.inner.clone();
            tokio::spawn(async move { inner.run(i).await });
        }
    }

    pub fn stop(&self) {
        self.inner.shutdown.cancel();
    }

    /// Upstream tools as the IDE sees them (renamed and filtered).
    pub async fn tools(&self) -> Vec<Tool> {
        let mut out = Vec::new();
        for s in &self.inner.servers {
            out.extend(s.tools.read().await.iter().cloned());
        }
        out
    }

    /// Forward a call if `params.name` is an upstream tool; None when it is not one.
    pub async fn call(
        &self,
        params: CallToolRequestParams,
        ide_progress: Option<ProgressToken>,
        ide_cancel: CancellationToken,
    ) -> Option<CallToolResult> {
        let (index, upstream_name) = self.inner.route(&params.name).await?;
        Some(
            self.inner
                .forward(index, upstream_name, params, ide_progress, ide_cancel)
                .await,
        )
    }

    /// Whether one connected server offers every tool in `names` (upstream names).
    pub async fn offers(&self, names: &[&str]) -> bool {
        self.inner.server_offering(names).await.is_some()
    }

    /// Call an upstream tool by its upstream name on the first connected server that
    /// offers it, for the hybrid tools. An unavailable server or a transport failure is
    /// an error result, like a forwarded call's.
    pub async fn call_upstream(
        &self,
        name: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
        cancel: CancellationToken,
    ) -> CallToolResult {
        let Some(i) = self.inner.server_offering(&[name]).await else {
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "no connected cloud server offers the tool {name}; call test_connection to see why"
            ))]);
        };
        let params = CallToolRequestParams::new(name.to_string()).with_arguments(arguments);
        self.inner
            .forward(i, name.to_string(), params, None, cancel)
            .await
    }

    /// Start the browser sign-in for every server that is not signed in (at most one flow
    /// per server at a time) and wait up to `wait` for them; connected servers are left
    /// alone. The authorization URL is printed to stderr and returned, so the user can open
    /// it when no browser opens.
    pub async fn sign_in_from_ide(&self, wait: Duration) -> Vec<SignInReport> {
        let mut out = Vec::new();
        for i in 0..self.inner.servers.len() {
            let state = self.inner.servers[i].state.read().await.0.clone();
            if !matches!(state, ConnState::NotSignedIn | ConnState::Rejected) {
                continue;
            }
            out.push(self.inner.clone().sign_in(i, wait, Trigger::User).await);
        }
        out
    }

    /// Connection state of every server; `probe` first tries to connect any server that
    /// is not connected (bounded by the connect timeout).
    pub async fn report(&self, probe: bool) -> Vec<ServerReport> {
        if probe {
            let mut attempts = tokio::task::JoinSet::new();
            for i in 0..self.inner.servers.len() {
                let inner = self.inner.clone();
                attempts.spawn(async move {
                    if inner.servers[i].state.read().await.0 != ConnState::Connected {
                        let seen = inner.conn_gen(i);
                        inner.reconnect(i, seen).await;
                    }
                });
            }
            while attempts.join_next().await.is_some() {}
        }
        let mut out = Vec::new();
        for (i, s) in self.inner.servers.iter().enumerate() {
            let (state, error) = s.state.read().await.clone();
            let credential = self.inner.credential_state(i).await;
            let auth = *s.auth.read().await;
            out.push(ServerReport {
                name: s.spec.name.clone(),
                url: s.spec.url.to_string(),
                next_step: next_step(&s.spec, &state, auth),
                auth,
                state,
                error,
                server: s.described.read().await.clone(),
                tools: s.tools.read().await.len(),
                credential,
            });
        }
        out
    }

    /// Which credential store is in use, or why none is (blocking).
    pub fn credential_store(&self) -> String {
        match self.inner.credentials.open() {
            Ok(c) => c.describe().to_string(),
            Err(e) => format!("unavailable: {e}"),
        }
    }
}

/// The credential store, opened (and probed) once it works: opening a keychain writes
/// and deletes a canary entry, which the reconnect loop must not do every few seconds.
/// A failure is not kept, so a keychain unlocked later is picked up.
struct CredentialsCache {
    kind: super::credentials::StoreKind,
    dir: PathBuf,
    opened: Mutex<Option<Arc<Credentials>>>,
}

impl CredentialsCache {
    /// Blocking: keychain calls block.
    fn open(&self) -> Result<Arc<Credentials>, CloudError> {
        let mut opened = self.opened.lock().expect("credentials lock");
        if let Some(c) = opened.as_ref() {
            return Ok(c.clone());
        }
        let c = Arc::new(Credentials::open(self.kind, &self.dir)?);
        *opened = Some(c.clone());
        Ok(c)
    }
}

impl BridgeInner {
    async fn set_state(&self, i: usize, state: ConnState, error: Option<String>) {
        *self.servers[i].state.write().await = (state, error);
    }

    async fn credential_state(&self, i: usize) -> Option<String> {
        let cache = self.credentials.clone();
        let url = self.servers[i].spec.url.clone();
        tokio::task::spawn_blocking(move || cache.open().and_then(|c| oauth::token_state(&c, &url)))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
    }

    /// One attempt: read the credential, connect, list tools. Updates the state.
    async fn connect_once(self: &Arc<Self>, i: usize) -> ConnState {
        let spec = self.servers[i].spec.clone();
        let cache = self.credentials.clone();
        let url = spec.url.clone();
        let lock_dir = oauth::default_lock_dir(&self.file_dir);
        let found =
            tokio::task::spawn_blocking(move || oauth::lookup(cache.open()?, &url, &lock_dir))
                .await;
        *self.servers[i].auth.write().await = match &found {
            Ok(Ok(Some(c))) => Some(c.style()),
            _ => None,
        };
        let credential = match found {
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) => {
                self.set_state(
                    i,
                    ConnState::NotSignedIn,
                    Some(format!("not signed in to {}", spec.url)),
                )
                .await;
                return ConnState::NotSignedIn;
            }
            Ok(Err(e)) => {
                self.set_state(i, ConnState::StoreFailed, Some(e.to_string()))
                    .await;
                return ConnState::StoreFailed;
            }
            Err(e) => {
                self.set_state(i, ConnState::StoreFailed, Some(e.to_string()))
                    .await;
                return ConnState::StoreFailed;
            }
        };
        let handler = UpstreamHandler {
            bridge: Arc::downgrade(self),
            server: i,
        };
        let connected = match credential {
            Credential::ApiKey(key) => upstream::connect(&spec.url, Some(&key), handler).await,
            Credential::OAuth(store) => oauth::connect(&spec.url, store, handler).await,
            Credential::OAuthRejected => Err(CloudError::Unauthorized {
                url: spec.url.to_string(),
            }),
        };
        match connected {
            Ok(client) => {
                let client = Arc::new(client);
                *self.servers[i].described.write().await = Some(upstream::describe(&client));
                *self.servers[i].client.write().await = Some(client);
                self.set_state(i, ConnState::Connected, None).await;
                self.refresh_tools(i).await;
                ConnState::Connected
            }
            Err(CloudError::Unauthorized { url }) => {
                let msg = match *self.servers[i].auth.read().await {
                    Some(AuthStyle::Oauth) => {
                        format!("{url} rejected the OAuth sign-in (revoked or expired)")
                    }
                    _ => format!("{url} rejected the stored credential (HTTP 401)"),
                };
                self.set_state(i, ConnState::Rejected, Some(msg)).await;
                if *self.servers[i].auth.read().await == Some(AuthStyle::Oauth) {
                    self.expose_cached_tools(i).await;
                }
                ConnState::Rejected
            }
            Err(e) => {
                self.set_state(i, ConnState::Unreachable, Some(e.to_string()))
                    .await;
                ConnState::Unreachable
            }
        }
    }

    /// The generation of server `i`'s current connection: a reconnect asked for with it
    /// is done once an attempt that started later has finished.
    fn conn_gen(&self, i: usize) -> u64 {
        let v = *self.servers[i].attempts.borrow();
        v + v % 2
    }

    /// Ask the background task to replace the connection of generation `seen`; a request
    /// about a connection already replaced is ignored, so a burst of failed calls
    /// reconnects once.
    fn request_reconnect(&self, i: usize, seen: u64) {
        let server = &self.servers[i];
        server.wanted.fetch_max(seen, Ordering::SeqCst);
        server.kick.notify_one();
    }

    /// Make sure a connection attempt newer than generation `seen` has finished (asking
    /// for one when needed), bounded by the connect timeout; returns the state after it.
    async fn reconnect(self: &Arc<Self>, i: usize, seen: u64) -> ConnState {
        let server = &self.servers[i];
        if self.started.get().is_none() {
            // No background task (a CLI command): connect here.
            return self.connect_once(i).await;
        }
        let mut rx = server.attempts.subscribe();
        let now = *rx.borrow_and_update();
        let target = if now % 2 == 1 {
            // One is running: its outcome is the answer.
            now + 1
        } else if now > seen {
            return server.state.read().await.0.clone();
        } else {
            self.request_reconnect(i, seen);
            now + 2
        };
        let bound = upstream::CONNECT_TIMEOUT + Duration::from_secs(5);
        let _ = tokio::time::timeout(bound, rx.wait_for(|v| *v >= target)).await;
        server.state.read().await.0.clone()
    }

    /// Keep server `i` connected for the life of the process. This task is the only one
    /// that connects; others ask it with [`Self::reconnect`].
    async fn run(self: Arc<Self>, i: usize) {
        let server = &self.servers[i];
        let mut backoff = Duration::from_secs(1);
        loop {
            server.attempts.send_modify(|v| *v += 1);
            let state = self.connect_once(i).await;
            server.attempts.send_modify(|v| *v += 1);
            match state {
                // The credential is gone (logged out, store broken): its tools go too.
                ConnState::NotSignedIn | ConnState::StoreFailed => self.forget_tools(i).await,
                // Rejected or unreachable: the tools stay listed, and calling one says why
                // it fails and what to do (for an OAuth server, starts the sign-in).
                _ => {}
            }
            let wait = match state {
                ConnState::Connected => {
                    backoff = Duration::from_secs(1);
                    None
                }
                ConnState::NotSignedIn | ConnState::Rejected | ConnState::StoreFailed => {
                    Some(LOGIN_POLL)
                }
                _ => {
                    let w = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    Some(w)
                }
            };
            let deadline = wait.map(|w| tokio::time::Instant::now() + w);
            loop {
                tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    // A failed call asks for a reconnect; one about an older connection is stale.
                    _ = server.kick.notified() => {
                        if server.wanted.load(Ordering::SeqCst) >= *server.attempts.borrow() {
                            break;
                        }
                    }
                    _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => break,
                }
            }
            *server.client.write().await = None;
        }
    }

    /// Sign in to server `i` in the browser and wait up to `wait` for the user.
    async fn sign_in(self: Arc<Self>, i: usize, wait: Duration, trigger: Trigger) -> SignInReport {
        match self.clone().start_sign_in(i, trigger).await {
            Ok(flow) => self.wait_sign_in(i, flow, wait).await,
            Err(held_back) => held_back,
        }
    }

    /// The browser sign-in of server `i`: the flow already running, or a new one (for a
    /// tool call, not within [`SIGN_IN_COOLDOWN`] of one that came to nothing: then the
    /// report saying so). A finished sign-in has reconnected the server.
    async fn start_sign_in(
        self: Arc<Self>,
        i: usize,
        trigger: Trigger,
    ) -> Result<SignIn, SignInReport> {
        let server = &self.servers[i];
        let flow = {
            let mut slot = server.sign_in.lock().await;
            match slot.as_ref() {
                // A flow is running: never a second browser window.
                Some(f) if f.done.borrow().is_none() => f.clone(),
                _ => {
                    if trigger == Trigger::Call
                        && let Some((at, why)) = server.sign_in_failed.lock().expect("lock").clone()
                        && at.elapsed() < SIGN_IN_COOLDOWN
                    {
                        return Err(SignInReport {
                            server: server.spec.name.clone(),
                            url: None,
                            state: "held_back".into(),
                            error: Some(format!(
                                "the last browser sign-in ended {} ago without the user ({why})",
                                humantime::format_duration(Duration::from_secs(
                                    at.elapsed().as_secs()
                                ))
                            )),
                        });
                    }
                    let (url_tx, url_rx) = tokio::sync::oneshot::channel::<String>();
                    let (done_tx, done_rx) = tokio::sync::watch::channel(None);
                    let inner = self.clone();
                    tokio::spawn(async move {
                        let result = inner.run_sign_in(i, url_tx).await;
                        let server = &inner.servers[i];
                        match &result {
                            Ok(()) => {
                                *server.sign_in_failed.lock().expect("lock") = None;
                                // Waiters see the outcome once the server is connected.
                                let seen = inner.conn_gen(i);
                                inner.reconnect(i, seen).await;
                            }
                            Err(e) => {
                                *server.sign_in_failed.lock().expect("lock") =
                                    Some((std::time::Instant::now(), e.clone()));
                            }
                        }
                        let _ = done_tx.send(Some(result));
                    });
                    // The URL comes right after discovery and registration.
                    let url = tokio::time::timeout(Duration::from_secs(20), url_rx)
                        .await
                        .ok()
                        .and_then(Result::ok);
                    let f = SignIn { url, done: done_rx };
                    *slot = Some(f.clone());
                    f
                }
            }
        };
        Ok(flow)
    }

    /// Wait up to `wait` for a sign-in flow to end.
    async fn wait_sign_in(&self, i: usize, flow: SignIn, wait: Duration) -> SignInReport {
        let server = &self.servers[i];
        let mut done = flow.done.clone();
        let _ = tokio::time::timeout(wait, done.wait_for(Option::is_some)).await;
        let outcome = done.borrow().clone();
        let (state, error) = match outcome {
            Some(Ok(())) => ("signed_in", None),
            Some(Err(e)) => ("failed", Some(e)),
            None => ("waiting", None),
        };
        SignInReport {
            server: server.spec.name.clone(),
            url: flow.url,
            state: state.into(),
            error,
        }
    }

    async fn run_sign_in(
        &self,
        i: usize,
        url_tx: tokio::sync::oneshot::Sender<String>,
    ) -> Result<(), String> {
        let spec = self.servers[i].spec.clone();
        let cache = self.credentials.clone();
        let creds = tokio::task::spawn_blocking(move || cache.open())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let store =
            oauth::OAuthStore::new(creds, &spec.url, &oauth::default_lock_dir(&self.file_dir));
        let mut url_tx = Some(url_tx);
        oauth::sign_in(&spec.url, store, oauth::login_timeout(), |line| {
            // stdout is the MCP channel: the sign-in text goes to stderr only.
            eprintln!("testrelay: {line}");
            // "Sign in to <server> in your browser. If it does not open, visit: <page>"
            if let Some(url) = line
                .split_whitespace()
                .rev()
                .find(|w| w.starts_with("http"))
                && let Some(tx) = url_tx.take()
            {
                let _ = tx.send(url.to_string());
            }
        })
        .await
        .map_err(|e| e.to_string())
    }

    /// Drop server `i`'s tools (and the hybrid tools they enable) from the IDE's list.
    async fn forget_tools(&self, i: usize) {
        let had_tools = !self.servers[i].tools.read().await.is_empty()
            || !self.servers[i].offered.read().await.is_empty();
        self.servers[i].tools.write().await.clear();
        self.servers[i].offered.write().await.clear();
        if had_tools {
            self.notify_ide_tools_changed().await;
        }
    }

    async fn notify_ide_tools_changed(&self) {
        if let Some(ide) = self.ide.get() {
            let _ = ide.notify_tool_list_changed().await;
        }
    }

    /// Re-read server `i`'s tool list and tell the IDE when it changed.
    pub(super) async fn refresh_tools(&self, i: usize) {
        let Some(client) = self.servers[i].client.read().await.clone() else {
            return;
        };
        let tools = match upstream::list_tools(&client).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(server = %self.servers[i].spec.name, error = %e, "listing upstream tools failed");
                self.request_reconnect(i, self.conn_gen(i));
                return;
            }
        };
        self.save_tool_cache(i, &tools);
        self.expose_tools(i, tools).await;
    }

    /// Show `tools` (server `i`'s list as it offers it) to the IDE, renamed and filtered,
    /// and tell it when its list changed.
    async fn expose_tools(&self, i: usize, tools: Vec<Tool>) {
        let offered: HashSet<String> = tools.iter().map(|t| t.name.to_string()).collect();
        let allow = build_globs(&self.config.allow);
        let deny = build_globs(&self.config.deny);
        let spec = &self.servers[i].spec;
        let exposed: Vec<Tool> = tools
            .into_iter()
            .filter(|t| allow.as_ref().is_none_or(|g| g.is_match(t.name.as_ref())))
            .filter(|t| deny.as_ref().is_none_or(|g| !g.is_match(t.name.as_ref())))
            .filter_map(|mut t| {
                let name = exposed_name(&self.config, spec, &t.name);
                if self.reserved.contains(&name) {
                    tracing::warn!(tool = %name, "upstream tool hidden: a local tool has the same name");
                    return None;
                }
                t.name = name.into();
                Some(t)
            })
            .collect();
        let changed = {
            let mut current = self.servers[i].tools.write().await;
            let changed = *current != exposed;
            *current = exposed;
            changed
        };
        // Hybrid tools come and go with the upstream names, even filtered ones.
        let offered_changed = {
            let mut current = self.servers[i].offered.write().await;
            let changed = *current != offered;
            *current = offered;
            changed
        };
        let changed = changed || offered_changed;
        if changed {
            self.notify_ide_tools_changed().await;
        }
    }

    /// Where server `i`'s last tool list is kept (not a secret: names, descriptions and
    /// schemas), so that after a restart with a sign-in that no longer works its tools are
    /// still listed, and calling one signs in.
    fn tool_cache_file(&self, i: usize) -> Option<PathBuf> {
        use sha2::Digest;
        let url = self.servers[i].spec.url.as_str().trim_end_matches('/');
        let digest = sha2::Sha256::digest(url.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Some(self.tool_cache.as_ref()?.join(format!("{hex}.tools.json")))
    }

    fn save_tool_cache(&self, i: usize, tools: &[Tool]) {
        let Some(path) = self.tool_cache_file(i) else {
            return;
        };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
            std::fs::write(&tmp, serde_json::to_vec(tools).unwrap_or_default())?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::debug!(path = %path.display(), error = %e, "could not save the tool list");
        }
    }

    /// List server `i`'s last known tools when it has none listed (a restart with a
    /// rejected sign-in).
    async fn expose_cached_tools(&self, i: usize) {
        if !self.servers[i].offered.read().await.is_empty() {
            return;
        }
        let Some(path) = self.tool_cache_file(i) else {
            return;
        };
        let cached = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<Tool>>(&b).ok());
        if let Some(tools) = cached.filter(|t| !t.is_empty()) {
            self.expose_tools(i, tools).await;
        }
    }

    async fn server_offering(&self, names: &[&str]) -> Option<usize> {
        for (i, s) in self.servers.iter().enumerate() {
            let offered = s.offered.read().await;
            if !offered.is_empty() && names.iter().all(|n| offered.contains(*n)) {
                return Some(i);
            }
        }
        None
    }

    async fn route(&self, name: &str) -> Option<(usize, String)> {
        for (i, s) in self.servers.iter().enumerate() {
            if s.tools.read().await.iter().any(|t| t.name == name) {
                let upstream = if self.config.servers.len() > 1 {
                    name.strip_prefix(&format!("{}_", s.spec.name))
                        .unwrap_or(name)
                        .to_string()
                } else {
                    name.to_string()
                };
                return Some((i, upstream));
            }
        }
        None
    }

    pub(super) async fn relay_progress(&self, mut params: ProgressNotificationParam) {
        let route = self
            .progress
            .lock()
            .expect("progress lock")
            .get(&params.progress_token)
            .cloned();
        if let Some((token, tx)) = route {
            params.progress_token = token;
            let _ = tx.send(params);
        }
    }

    /// Forward a call to server `i`. When the server rejects its OAuth sign-in, the
    /// browser sign-in starts (or is joined) and the call waits a bounded time for the
    /// user: once signed in, the call is sent again (a rejected request was never run);
    /// otherwise the answer says where to sign in.
    async fn forward(
        self: &Arc<Self>,
        i: usize,
        upstream_name: String,
        params: CallToolRequestParams,
        ide_progress: Option<ProgressToken>,
        ide_cancel: CancellationToken,
    ) -> CallToolResult {
        let arguments = params.arguments;
        let first = self
            .forward_once(
                i,
                &upstream_name,
                arguments.clone(),
                ide_progress.clone(),
                &ide_cancel,
            )
            .await;
        if let Forwarded::Done(result) = first {
            return result;
        }
        let server = &self.servers[i];
        let (name, url) = (&server.spec.name, &server.spec.url);
        // Start (or join) the flow first, so the IDE can show the URL while the call waits.
        let report = match self.clone().start_sign_in(i, Trigger::Call).await {
            Err(held_back) => held_back,
            Ok(flow) => {
                if let (Some(token), Some(page), Some(ide)) =
                    (&ide_progress, &flow.url, self.ide.get())
                {
                    let message =
                        format!("waiting for the user to sign in to {name} in the browser: {page}");
                    let _ = ide
                        .notify_progress(
                            ProgressNotificationParam::new(token.clone(), 0.0)
                                .with_message(message),
                        )
                        .await;
                }
                tokio::select! {
                    r = self.wait_sign_in(i, flow, call_sign_in_wait()) => r,
                    _ = ide_cancel.cancelled() => {
                        return CallToolResult::error(vec![ContentBlock::text("the call was cancelled")]);
                    }
                }
            }
        };
        let text = match report.state.as_str() {
            "signed_in" => {
                return match self
                    .forward_once(i, &upstream_name, arguments, ide_progress, &ide_cancel)
                    .await
                {
                    Forwarded::NeedsSignIn => {
                        CallToolResult::error(vec![ContentBlock::text(format!(
                            "signed in to cloud server {name} again, but it still rejects the sign-in; ask the user to check their account's access, then run `testrelay login {url}`"
                        ))])
                    }
                    Forwarded::Done(result) => result,
                };
            }
            "waiting" => format!(
                "cloud server {name} needs the user to sign in again. Ask them to open {} and sign in (testrelay opened it in their browser), then call this tool again",
                report.url.as_deref().unwrap_or("the sign-in page")
            ),
            "held_back" => format!(
                "cloud server {name} needs the user to sign in again; {}, so no new browser window was opened. When the user is ready, call test_connection with sign_in=true (opens the sign-in page), or ask them to run `testrelay login {url}`, then call this tool again",
                report
                    .error
                    .as_deref()
                    .unwrap_or("the last sign-in did not finish")
            ),
            _ => format!(
                "the browser sign-in to cloud server {name} failed ({}). Call test_connection with sign_in=true to try again, or ask the user to run `testrelay login {url}`",
                report.error.as_deref().unwrap_or("no reason given")
            ),
        };
        CallToolResult::error(vec![ContentBlock::text(text)])
    }

    async fn forward_once(
        self: &Arc<Self>,
        i: usize,
        upstream_name: &str,
        arguments: Option<serde_json::Map<String, serde_json::Value>>,
        ide_progress: Option<ProgressToken>,
        ide_cancel: &CancellationToken,
    ) -> Forwarded {
        let server = &self.servers[i];
        let (client, seen) = {
            let client = server.client.read().await.clone();
            (client, self.conn_gen(i))
        };
        let Some(client) = client else {
            return self.unavailable(i, None).await;
        };
        let mut upstream_params = CallToolRequestParams::new(upstream_name.to_string());
        if let Some(args) = arguments {
            upstream_params = upstream_params.with_arguments(args);
        }
        let peer = client.peer().clone();
        let handle = match peer
            .send_request_with_option(
                ClientRequest::CallToolRequest(CallToolRequest::new(upstream_params)),
                PeerRequestOptions::no_options(),
            )
            .await
        {
            Ok(h) => h,
            Err(e) => return self.transport_failure(i, seen, e.to_string()).await,
        };
        let (id, upstream_token) = (handle.id.clone(), handle.progress_token.clone());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        if let Some(token) = ide_progress {
            self.progress
                .lock()
                .expect("progress lock")
                .insert(upstream_token.clone(), (token, tx));
        }
        let ide = self.ide.get().cloned();
        let response = handle.await_response();
        tokio::pin!(response);
        let outcome = loop {
            tokio::select! {
                r = &mut response => break Some(r),
                _ = ide_cancel.cancelled() => break None,
                Some(p) = rx.recv() => if let Some(ide) = &ide {
                    let _ = ide.notify_progress(p).await;
                },
            }
        };
        // rmcp runs each notification handler as its own task, so progress the server sent
        // just before its result may still be on its way: let those tasks run, then send the
        // IDE what arrived, before the result goes out.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.progress
            .lock()
            .expect("progress lock")
            .remove(&upstream_token);
        while let Ok(p) = rx.try_recv() {
            if let Some(ide) = &ide {
                let _ = ide.notify_progress(p).await;
            }
        }
        match outcome {
            None => {
                let _ = peer
                    .notify_cancelled(CancelledNotificationParam::new(
                        Some(id),
                        Some("cancelled by the client".into()),
                    ))
                    .await;
                Forwarded::Done(CallToolResult::error(vec![ContentBlock::text(
                    "the call was cancelled",
                )]))
            }
            Some(Ok(ServerResult::CallToolResult(result))) => Forwarded::Done(result),
            Some(Ok(_)) => {
                Forwarded::Done(CallToolResult::error(vec![ContentBlock::text(format!(
                    "cloud server {} answered the call with an unexpected result type",
                    server.spec.name
                ))]))
            }
            Some(Err(e)) => self.transport_failure(i, seen, e.to_string()).await,
        }
    }

    /// Server `i` has no connection: a rejected OAuth sign-in needs the browser, anything
    /// else is an error result naming the cause and the next step.
    async fn unavailable(&self, i: usize, failure: Option<String>) -> Forwarded {
        let server = &self.servers[i];
        let (state, error) = server.state.read().await.clone();
        let auth = *server.auth.read().await;
        if state == ConnState::Rejected && auth == Some(AuthStyle::Oauth) {
            return Forwarded::NeedsSignIn;
        }
        let why = error.unwrap_or_else(|| format!("{state:?}"));
        let next = next_step(&server.spec, &state, auth).unwrap_or_default();
        let text = match failure {
            // The cause of a request that never got an answer is in `why`.
            Some(f) if f.starts_with("error sending request") => format!(
                "the call to cloud server {} failed: {why}. {next}",
                server.spec.name
            ),
            Some(f) => format!(
                "the call to cloud server {} failed ({f}), and it is not available now: {why}. {next}",
                server.spec.name
            ),
            None => format!(
                "cloud server {} is not available: {why}. {next}",
                server.spec.name
            ),
        };
        Forwarded::Done(CallToolResult::error(vec![ContentBlock::text(text)]))
    }

    /// A call failed in transport (network, 5xx, a token nobody can refresh): reconnect
    /// once to learn why, and say so. The call itself is not repeated: it may have run.
    async fn transport_failure(self: &Arc<Self>, i: usize, seen: u64, error: String) -> Forwarded {
        let error = plain_error(&error);
        match self.reconnect(i, seen).await {
            ConnState::Connected => {
                Forwarded::Done(CallToolResult::error(vec![ContentBlock::text(format!(
                    "the call to cloud server {} failed ({error}); testrelay has reconnected, so retry the call; local tools keep working",
                    self.servers[i].spec.name
                ))]))
            }
            _ => self.unavailable(i, Some(error)).await,
        }
    }
}

/// How one attempt to forward a call ended.
enum Forwarded {
    Done(CallToolResult),
    /// The server rejected the OAuth sign-in: only the user can fix it, in the browser.
    NeedsSignIn,
}

/// How long a call waits for a browser sign-in it started.
fn call_sign_in_wait() -> Duration {
    oauth::env_seconds("TESTRELAY_SIGN_IN_WAIT", CALL_SIGN_IN_WAIT)
}

/// The part of a transport error a person can act on: rmcp's messages nest the transport's
/// type name (`Transport [rmcp::transport::worker::WorkerTransport<…>] error: HTTP 502`);
/// keep what follows the last "error: ".
pub(super) fn plain_error(error: &str) -> String {
    let tail = error.rsplit("error: ").next().unwrap_or(error).trim();
    let tail = tail.trim_end_matches('.');
    if tail.is_empty() {
        error.to_string()
    } else {
        tail.to_string()
    }
}

fn build_globs(patterns: &[String]) -> Option<globset::GlobSet> {
    if patterns.is_empty() {
        return None;
    }
    let mut b = globset::GlobSetBuilder::new();
    for p in patterns {
        if let Ok(g) = globset::Glob::new(p) {
            b.add(g);
        }
    }
    b.build().ok()
}

#[cfg(test)]
mod plain_error_tests {
    #[test]
    fn transport_type_names_are_dropped() {
        let raw = "Transport send error: Transport [rmcp::transport::worker::WorkerTransport<rmcp::transport::streamable_http_client::StreamableHttpClientWorker<reqwest::async_impl::client::Client>>] error: HTTP 502";
        assert_eq!(super::plain_error(raw), "HTTP 502");
        assert_eq!(
            super::plain_error("connection refused"),
            "connection refused"
        );
    }
}

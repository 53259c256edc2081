//! OAuth sign-in for hosted servers: rmcp's `CredentialStore` over testrelay's
//! [`Credentials`] (entry kind `oauth`), the browser flow behind `testrelay login URL`,
//! and the OAuth connection the bridge uses.
//!
//! rmcp does discovery, registration, PKCE, `state`/`iss` checks, the code exchange and
//! every refresh; this module owns what rmcp leaves to the application: where tokens
//! live, serialising refreshes across processes (a rotating refresh token spent twice
//! revokes the whole grant), the loopback redirect listener, and opening the browser only
//! on a URL that cannot launch anything but a browser. Nothing token-derived is logged or
//! printed, not even the callback URL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{
    AuthClient, AuthError, AuthorizationManager, AuthorizationMetadata, AuthorizationRequest,
    CredentialRefreshGuard, CredentialStore, OAuthState, StoredCredentials,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use super::config::is_loopback;
use super::credentials::{Credentials, Kind, Secret};
use super::error::CloudError;
use super::upstream::{self, Upstream, UpstreamHandler};

/// How long `testrelay login` waits for the browser to come back.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a browser sign-in waits for the user: `TESTRELAY_LOGIN_TIMEOUT` seconds, or
/// [`LOGIN_TIMEOUT`].
pub fn login_timeout() -> Duration {
    env_seconds("TESTRELAY_LOGIN_TIMEOUT", LOGIN_TIMEOUT)
}

/// A duration from environment variable `name` in whole seconds, or `default`.
pub(super) fn env_seconds(name: &str, default: Duration) -> Duration {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(default)
}

/// How long a process waits for another one to finish refreshing the same server's token.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// rmcp's credential store for one server, backed by testrelay's store.
#[derive(Clone)]
pub struct OAuthStore {
    creds: Arc<Credentials>,
    url: Url,
    lock_file: PathBuf,
}

fn store_err(e: impl std::fmt::Display) -> AuthError {
    AuthError::CredentialStoreError(e.to_string())
}

impl OAuthStore {
    /// `lock_dir` holds one lock file per server (`<config dir>/testrelay/locks`).
    pub fn new(creds: Arc<Credentials>, url: &Url, lock_dir: &Path) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(url.as_str().trim_end_matches('/').as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        OAuthStore {
            creds,
            url: url.clone(),
            lock_file: lock_dir.join(format!("{hex}.lock")),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Credentials, &Url) -> Result<T, CloudError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let (creds, url) = (self.creds.clone(), self.url.clone());
        tokio::task::spawn_blocking(move || f(&creds, &url))
            .await
            .map_err(store_err)?
            .map_err(store_err)
    }
}

/// Where lock files go, next to the opt-in credential directory.
pub fn default_lock_dir(file_dir: &Path) -> PathBuf {
    file_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir)
        .join("locks")
}

#[async_trait]
impl CredentialStore for OAuthStore {
    async fn load(&self) -> Result<Option<StoredCredentials>, AuthError> {
        let raw = self.blocking(|c, u| c.get_kind(u, Kind::OAuth)).await?;
        match raw {
            None => Ok(None),
            Some(s) => serde_json::from_str(s.expose())
                .map(Some)
                .map_err(|_| store_err("the stored OAuth credentials are not readable")),
        }
    }

    async fn save(&self, credentials: StoredCredentials) -> Result<(), AuthError> {
        let json = serde_json::to_string(&credentials).map_err(store_err)?;
        let secret = Secret::new(json);
        self.blocking(move |c, u| c.set_kind(u, Kind::OAuth, &secret))
            .await
    }

    async fn clear(&self) -> Result<(), AuthError> {
        self.blocking(|c, u| c.delete_kind(u, Kind::OAuth).map(|_| ()))
            .await
    }

    /// The grant is gone: drop the tokens (keeping only the client id as a marker) so
    /// every process reports "rejected, sign in again" instead of retrying them. rmcp calls this under the refresh guard; tokens another
    /// process saved since (a newer `token_received_at`) are kept.
    async fn on_refresh_token_rejected(
        &self,
        rejected: &StoredCredentials,
    ) -> Result<(), AuthError> {
        let current = self.load().await?;
        let same = current.is_some_and(|c| {
            c.client_id == rejected.client_id && c.token_received_at == rejected.token_received_at
        });
        if !same {
            return Ok(());
        }
        let tombstone = StoredCredentials::new(rejected.client_id.clone(), None, vec![], None)
            .with_issuer(rejected.issuer.clone());
        self.save(tombstone).await
    }

    /// An exclusive lock on a file per server, held across rmcp's load → refresh → save,
    /// so two testrelay processes never spend one rotating refresh token. rmcp loads the
    /// credentials again after taking the guard, so a token refreshed by the other process
    /// meanwhile is used instead of refreshed twice.
    async fn acquire_refresh_guard(&self) -> Result<Option<CredentialRefreshGuard>, AuthError> {
        let path = self.lock_file.clone();
        let file = tokio::task::spawn_blocking(move || open_lock_file(&path))
            .await
            .map_err(store_err)?
            .map_err(store_err)?;
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(CredentialRefreshGuard::new(file))),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(store_err(format!(
                            "another testrelay process held {} for {}s",
                            self.lock_file.display(),
                            LOCK_WAIT.as_secs()
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(store_err(format!(
                        "failed to lock {}: {e}",
                        self.lock_file.display()
                    )));
                }
            }
        }
    }
}

fn open_lock_file(path: &Path) -> Result<std::fs::File, String> {
    let fail = |e: std::io::Error| format!("failed to open the lock file {}: {e}", path.display());
    if let Some(dir) = path.parent() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(fail)
}

/// Check the authorization URL before anything opens it: `https`, or `http` only to this
/// machine. A `file:` or `javascript:` URL (or a path) would make the opener run or show
/// something other than the sign-in page. Returns the re-serialised URL.
pub fn validate_authorization_url(raw: &str) -> Result<Url, CloudError> {
    let bad = |why: &str| {
        CloudError::Credentials(format!(
            "refusing to open the authorization URL: {why}; the server's OAuth metadata is wrong or hostile"
        ))
    };
    let url = Url::parse(raw).map_err(|_| bad("it is not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(bad("plain http is only allowed to this machine")),
        other => return Err(bad(&format!("scheme '{other}' is not https"))),
    }
    if url.host().is_none() {
        return Err(bad("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it carries a user name or password"));
    }
    Ok(url)
}

/// The `WWW-Authenticate` challenge the server answers an unauthenticated request with,
/// if any: it names the protected-resource metadata (and may name scopes).
async fn fetch_challenge(url: &Url) -> Option<String> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "testrelay", "version": env!("CARGO_PKG_VERSION")}
        }
    });
    let response = upstream::http_client()
        .post(url.as_str())
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(upstream::CONNECT_TIMEOUT)
        .send()
        .await
        .ok()?;
    if response.status() != reqwest::StatusCode::UNAUTHORIZED {
        return None;
    }
    response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

fn oauth_err(url: &Url, e: AuthError) -> CloudError {
    CloudError::Connect {
        url: url.to_string(),
        reason: format!("OAuth sign-in failed: {e}"),
    }
}

/// Open `url` in the user's browser: the program in `TESTRELAY_BROWSER` (run directly with
/// the URL as its one argument, no shell), else the platform opener. Never waits for it.
fn open_browser(url: &Url) -> Result<(), String> {
    match std::env::var_os("TESTRELAY_BROWSER").filter(|v| !v.is_empty()) {
        Some(program) => {
            let mut child = tokio::process::Command::new(&program)
                .arg(url.as_str())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| format!("failed to start {}: {e}", program.to_string_lossy()))?;
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
            Ok(())
        }
        None => open::that_detached(url.as_str()).map_err(|e| e.to_string()),
    }
}

const CALLBACK_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>testrelay</title></head>\
<body><h1>testrelay</h1><p>Sign-in finished. You can close this tab and go back to the terminal.</p></body></html>";

/// Answer requests on `listener` until one is `GET /callback?...`; returns its path and
/// query. Other paths (a browser's favicon request) get a 404.
async fn accept_callback(listener: tokio::net::TcpListener) -> std::io::Result<String> {
    loop {
        let (mut socket, _) = listener.accept().await?;
        let mut buf = Vec::with_capacity(2048);
        let mut chunk = [0u8; 2048];
        // The request head only; bounded in size and time.
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                let n = socket.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Ok::<_, std::io::Error>(())
        })
        .await;
        if !matches!(read, Ok(Ok(()))) {
            continue;
        }
        let head = String::from_utf8_lossy(&buf);
        let mut parts = head.lines().next().unwrap_or("").split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let is_callback =
            method == "GET" && (target == "/callback" || target.starts_with("/callback?"));
        let (status, body) = if is_callback {
            ("200 OK", CALLBACK_PAGE)
        } else {
            ("404 Not Found", "not found")
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncache-control: no-store\r\n\
             referrer-policy: no-referrer\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = socket.write_all(response.as_bytes()).await;
        let _ = socket.shutdown().await;
        if is_callback {
            return Ok(target.to_string());
        }
    }
}

/// The browser sign-in: discovery and registration (rmcp), a loopback redirect listener,
/// the browser, and the code exchange. Tokens end up in `store`. `show_url` is called with
/// the authorization URL before the browser is opened (print it: the browser may not
/// open), `note` with progress lines.
pub async fn sign_in(
    url: &Url,
    store: OAuthStore,
    wait: Duration,
    mut note: impl FnMut(&str),
) -> Result<(), CloudError> {
    upstream::init_tls();
    let challenge = fetch_challenge(url).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CloudError::Credentials(format!("failed to listen on 127.0.0.1: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| CloudError::Credentials(e.to_string()))?
        .port();
    let redirect = format!("http://127.0.0.1:{port}/callback");

    let mut manager = AuthorizationManager::new(url.as_str())
        .await
        .map_err(|e| oauth_err(url, e))?;
    // rmcp refuses metadata that lists PKCE methods without S256, but only warns when the
    // list is missing; MCP clients must refuse that too, before anything is registered.
    let resolved = manager
        .resolve_metadata_from_challenge(challenge.as_deref())
        .await
        .map_err(|e| oauth_err(url, e))?;
    require_pkce(url, &resolved.metadata)?;
    manager.set_credential_store(store);
    let mut state = OAuthState::Unauthorized(manager);
    let mut request = AuthorizationRequest::new(&redirect).with_client_name("testrelay");
    if let Some(c) = challenge {
        request = request.with_challenge(c);
    }
    state
        .start_authorization(request)
        .await
        .map_err(|e| oauth_err(url, e))?;
    let auth_url = state
        .get_authorization_url()
        .await
        .map_err(|e| oauth_err(url, e))?;
    let auth_url = validate_authorization_url(&auth_url)?;

    // Accept before opening: a console browser (or the test hook) blocks until the
    // callback is answered.
    let accept = tokio::spawn(accept_callback(listener));
    note(&format!(
        "Sign in to {url} in your browser. If it does not open, visit:\n\n  {auth_url}\n"
    ));
    if let Err(e) = open_browser(&auth_url) {
        note(&format!(
            "could not open a browser ({e}); open the URL above yourself"
        ));
    }
    let target = match tokio::time::timeout(wait, accept).await {
        Ok(Ok(Ok(target))) => target,
        Ok(Ok(Err(e))) => {
            return Err(CloudError::Credentials(format!(
                "the sign-in callback listener failed: {e}"
            )));
        }
        Ok(Err(e)) => return Err(CloudError::Credentials(e.to_string())),
        Err(_) => {
            return Err(CloudError::Credentials(format!(
                "no sign-in came back within {}s; run `testrelay login {url}` again",
                wait.as_secs()
            )));
        }
    };
    state
        .handle_callback_url(&format!("http://127.0.0.1:{port}{target}"))
        .await
        .map_err(|e| oauth_err(url, e))
}

/// Refuse an authorization server that does not advertise PKCE with S256: without it
/// nothing guarantees the code cannot be redeemed by whoever intercepts the redirect.
fn require_pkce(url: &Url, metadata: &AuthorizationMetadata) -> Result<(), CloudError> {
    let methods = metadata.code_challenge_methods_supported.as_deref();
    if methods.is_some_and(|m| m.iter().any(|m| m == "S256")) {
        return Ok(());
    }
    let listed = match methods {
        None => "does not list code_challenge_methods_supported".to_string(),
        Some(m) => format!("lists only {:?}", m),
    };
    Err(CloudError::Connect {
        url: url.to_string(),
        reason: format!(
            "its authorization server {} {listed}; testrelay signs in only with PKCE (S256). Ask the service to enable PKCE, or use an API key",
            metadata
                .issuer
                .as_deref()
                .unwrap_or(&metadata.authorization_endpoint)
        ),
    })
}

/// What `testrelay logout` achieved at the authorization server.
#[derive(Debug, PartialEq, Eq)]
pub enum Revocation {
    /// No OAuth tokens were stored.
    NothingStored,
    /// The server revoked the refresh (and access) token: the grant is gone there too.
    Revoked {
        endpoint: String,
    },
    /// The server publishes no revocation endpoint (RFC 7009).
    Unsupported,
    Failed(String),
}

/// Revoke the stored OAuth tokens for `url` at its authorization server (RFC 7009): the
/// refresh token first (which ends the grant), then the access token. Bounded in time;
/// the caller deletes the local credentials whatever this returns.
pub async fn revoke(creds: Arc<Credentials>, url: &Url) -> Revocation {
    upstream::init_tls();
    let u = url.clone();
    let stored = tokio::task::spawn_blocking(move || creds.get_kind(&u, Kind::OAuth)).await;
    let stored: StoredCredentials = match stored {
        Ok(Ok(Some(raw))) => match serde_json::from_str(raw.expose()) {
            Ok(s) => s,
            Err(_) => {
                return Revocation::Failed("the stored OAuth credentials are not readable".into());
            }
        },
        Ok(Ok(None)) => return Revocation::NothingStored,
        Ok(Err(e)) => return Revocation::Failed(e.to_string()),
        Err(e) => return Revocation::Failed(e.to_string()),
    };
    let Some(tokens) = stored
        .token_response
        .as_ref()
        .and_then(|t| serde_json::to_value(t).ok())
    else {
        return Revocation::NothingStored;
    };
    let work = async {
        let challenge = fetch_challenge(url).await;
        let manager = AuthorizationManager::new(url.as_str())
            .await
            .map_err(|e| e.to_string())?;
        let metadata = manager
            .resolve_metadata_from_challenge(challenge.as_deref())
            .await
            .map_err(|e| e.to_string())?
            .metadata;
        let Some(endpoint) = metadata
            .additional_fields
            .get("revocation_endpoint")
            .and_then(|v| v.as_str())
        else {
            return Ok(Revocation::Unsupported);
        };
        let endpoint = validate_endpoint(endpoint)?;
        for hint in ["refresh_token", "access_token"] {
            let Some(token) = tokens.get(hint).and_then(|v| v.as_str()) else {
                continue;
            };
            let body = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("token", token)
                .append_pair("token_type_hint", hint)
                .append_pair("client_id", &stored.client_id)
                .finish();
            let response = upstream::http_client()
                .post(endpoint.as_str())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| format!("{}: {}", endpoint, e.without_url()))?;
            let status = response.status();
            if !status.is_success() {
                // RFC 7009 answers errors as JSON with an `error` code; nothing else of the
                // body is shown.
                let code = response
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from));
                // A server that issues self-contained (JWT) access tokens cannot revoke
                // them: they end at their expiry, the grant ended with the refresh token.
                if hint == "access_token" && code.as_deref() == Some("unsupported_token_type") {
                    continue;
                }
                return Err(format!(
                    "{endpoint} answered HTTP {}{}",
                    status.as_u16(),
                    code.map(|c| format!(" ({c})")).unwrap_or_default()
                ));
            }
        }
        Ok(Revocation::Revoked {
            endpoint: endpoint.to_string(),
        })
    };
    match tokio::time::timeout(upstream::CONNECT_TIMEOUT, work).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Revocation::Failed(e),
        Err(_) => Revocation::Failed(format!(
            "no answer within {}s",
            upstream::CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// An endpoint a token may be sent to: `https`, or `http` to this machine only.
fn validate_endpoint(raw: &str) -> Result<Url, String> {
    let url =
        Url::parse(raw).map_err(|_| format!("the revocation endpoint '{raw}' is not a URL"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        _ => Err(format!(
            "refusing to send a token to the revocation endpoint {url}: not https"
        )),
    }
}

/// How a server is signed in to, as `status` and `test_connection` say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthStyle {
    ApiKey,
    Oauth,
}

/// The credential stored for a server.
pub enum Credential {
    ApiKey(Secret),
    OAuth(OAuthStore),
    /// An OAuth sign-in whose refresh token the server rejected (revoked or expired):
    /// the tokens are gone, the registration is kept so the state can say so.
    OAuthRejected,
}

impl Credential {
    pub fn style(&self) -> AuthStyle {
        match self {
            Credential::ApiKey(_) => AuthStyle::ApiKey,
            Credential::OAuth(_) | Credential::OAuthRejected => AuthStyle::Oauth,
        }
    }
}

/// How the stored credential for `url` stands, in words, for `status` and
/// `test_connection` (blocking; never shows the credential): None when there is none.
pub fn token_state(creds: &Credentials, url: &Url) -> Result<Option<String>, CloudError> {
    if creds.get(url)?.is_some() {
        return Ok(Some("api key (does not expire)".into()));
    }
    let Some(raw) = creds.get_kind(url, Kind::OAuth)? else {
        return Ok(None);
    };
    let Ok(stored) = serde_json::from_str::<StoredCredentials>(raw.expose()) else {
        return Ok(Some("unreadable: sign in again".into()));
    };
    let Some(tokens) = stored
        .token_response
        .as_ref()
        .and_then(|t| serde_json::to_value(t).ok())
    else {
        return Ok(Some("revoked or expired for good: sign in again".into()));
    };
    let refreshable = tokens.get("refresh_token").is_some_and(|v| v.is_string());
    let expires_in = tokens.get("expires_in").and_then(|v| v.as_u64());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (Some(expires_in), Some(received)) = (expires_in, stored.token_received_at) else {
        return Ok(Some("oauth access token (no expiry given)".into()));
    };
    let expires_at = received.saturating_add(expires_in);
    Ok(Some(if expires_at > now {
        format!(
            "oauth access token valid for {}{}",
            approx(expires_at - now),
            if refreshable {
                ", renewed automatically"
            } else {
                ""
            }
        )
    } else if refreshable {
        format!(
            "oauth access token expired {} ago, renewed on next use",
            approx(now - expires_at)
        )
    } else {
        "oauth access token expired and cannot be renewed: sign in again".into()
    }))
}

/// A duration to the minute (to the second under one).
fn approx(secs: u64) -> String {
    let secs = if secs >= 60 { secs / 60 * 60 } else { secs };
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// The credential for `url` in `creds` (blocking): an API key wins over OAuth tokens.
pub fn lookup(
    creds: Arc<Credentials>,
    url: &Url,
    lock_dir: &Path,
) -> Result<Option<Credential>, CloudError> {
    if let Some(key) = creds.get(url)? {
        return Ok(Some(Credential::ApiKey(key)));
    }
    let Some(raw) = creds.get_kind(url, Kind::OAuth)? else {
        return Ok(None);
    };
    let stored: StoredCredentials = serde_json::from_str(raw.expose()).map_err(|_| {
        CloudError::Credentials(format!(
            "the stored OAuth credentials for {url} are not readable; run `testrelay login {url}`"
        ))
    })?;
    if stored.token_response.is_none() {
        return Ok(Some(Credential::OAuthRejected));
    }
    Ok(Some(Credential::OAuth(OAuthStore::new(
        creds, url, lock_dir,
    ))))
}

/// Connect to `url` with the OAuth credentials in `store`; rmcp's `AuthClient` refreshes
/// the access token (under the store's lock) whenever it is about to expire or rejected.
pub async fn connect(
    url: &Url,
    store: OAuthStore,
    handler: UpstreamHandler,
) -> Result<Upstream, CloudError> {
    upstream::init_tls();
    let mut manager = AuthorizationManager::new(url.as_str())
        .await
        .map_err(|e| oauth_err(url, e))?;
    manager.set_credential_store(store);
    let ready = tokio::time::timeout(upstream::CONNECT_TIMEOUT, manager.initialize_from_store())
        .await
        .map_err(|_| CloudError::Connect {
            url: url.to_string(),
            reason: "OAuth discovery timed out".into(),
        })?;
    match ready {
        Ok(true) => {}
        Ok(false) => {
            return Err(CloudError::Unauthorized {
                url: url.to_string(),
            });
        }
        Err(e) => return Err(oauth_err(url, e)),
    }
    let client = AuthClient::new(upstream::http_client(), manager);
    let config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
    let transport = StreamableHttpClientTransport::with_client(client, config);
    upstream::initialize(url, handler, transport).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_urls_that_could_run_something_are_refused() {
        for bad in [
            "file:///etc/passwd",
            "file:///C:/Windows/System32/calc.exe",
            "javascript:alert(1)",
            "http://evil.example.com/authorize",
            "/tmp/run-me",
            "https://user:pw@as.example.com/authorize",
        ] {
            let err = validate_authorization_url(bad).unwrap_err().to_string();
            assert!(err.contains("refusing to open"), "{bad}: {err}");
        }
        for good in [
            "https://as.example.com/authorize?x=1",
            "http://127.0.0.1:8080/authorize",
            "http://localhost/authorize",
        ] {
            assert!(validate_authorization_url(good).is_ok(), "{good}");
        }
    }

    #[tokio::test]
    async fn the_refresh_lock_is_exclusive_across_handles() {
        let d = tempfile::tempdir().unwrap();
        let creds = Arc::new(
            Credentials::open(super::super::StoreKind::File, &d.path().join("c")).unwrap(),
        );
        let url = Url::parse("https://mcp.example.com/mcp").unwrap();
        let a = OAuthStore::new(creds.clone(), &url, &d.path().join("locks"));
        let b = OAuthStore::new(creds, &url, &d.path().join("locks"));
        let held = a.acquire_refresh_guard().await.unwrap();
        let other = tokio::time::timeout(Duration::from_millis(300), b.acquire_refresh_guard());
        assert!(other.await.is_err(), "a second holder got the lock");
        drop(held);
        let again = tokio::time::timeout(Duration::from_secs(5), b.acquire_refresh_guard()).await;
        assert!(matches!(again, Ok(Ok(Some(_)))));
    }

    #[test]
    fn the_credential_state_says_how_long_without_showing_it() {
        let d = tempfile::tempdir().unwrap();
        let creds = Credentials::open(super::super::StoreKind::File, &d.path().join("c")).unwrap();
        let url = Url::parse("https://mcp.example.com/mcp").unwrap();
        assert_eq!(token_state(&creds, &url).unwrap(), None);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let tokens = |refresh: bool| {
            let mut v = serde_json::json!({"access_token": "at-secret", "token_type": "bearer", "expires_in": 3600});
            if refresh {
                v["refresh_token"] = "rt-secret".into();
            }
            serde_json::from_value(v).unwrap()
        };
        let save = |stored: StoredCredentials| {
            let json = serde_json::to_string(&stored).unwrap();
            creds
                .set_kind(&url, Kind::OAuth, &Secret::new(json))
                .unwrap();
        };
        save(StoredCredentials::new(
            "c".into(),
            Some(tokens(true)),
            vec![],
            Some(now - 600),
        ));
        let fresh = token_state(&creds, &url).unwrap().unwrap();
        assert_eq!(
            fresh,
            "oauth access token valid for 50m, renewed automatically"
        );
        save(StoredCredentials::new(
            "c".into(),
            Some(tokens(true)),
            vec![],
            Some(now - 3700),
        ));
        assert_eq!(
            token_state(&creds, &url).unwrap().unwrap(),
            "oauth access token expired 1m ago, renewed on next use"
        );
        save(StoredCredentials::new(
            "c".into(),
            Some(tokens(false)),
            vec![],
            Some(now - 3700),
        ));
        assert!(
            token_state(&creds, &url)
                .unwrap()
                .unwrap()
                .contains("sign in again")
        );
        save(StoredCredentials::new("c".into(), None, vec![], None));
        assert!(
            token_state(&creds, &url)
                .unwrap()
                .unwrap()
                .starts_with("revoked")
        );
        creds.set(&url, &Secret::new("k-secret")).unwrap();
        let key = token_state(&creds, &url).unwrap().unwrap();
        assert_eq!(key, "api key (does not expire)");
    }

    #[tokio::test]
    async fn credentials_round_trip_and_a_rejected_grant_is_cleared() {
        let d = tempfile::tempdir().unwrap();
        let creds = Arc::new(
            Credentials::open(super::super::StoreKind::File, &d.path().join("c")).unwrap(),
        );
        let url = Url::parse("https://mcp.example.com/mcp").unwrap();
        let store = OAuthStore::new(creds.clone(), &url, &d.path().join("locks"));
        assert!(store.load().await.unwrap().is_none());
        let saved = StoredCredentials::new("client-1".into(), None, vec!["mcp".into()], Some(7));
        store.save(saved.clone()).await.unwrap();
        let back = store.load().await.unwrap().unwrap();
        assert_eq!(
            (back.client_id.as_str(), back.token_received_at),
            ("client-1", Some(7))
        );
        // A newer save is not cleared by a stale rejection.
        let stale = StoredCredentials::new("client-1".into(), None, vec![], Some(3));
        store.on_refresh_token_rejected(&stale).await.unwrap();
        assert!(store.load().await.unwrap().is_some());
        store.on_refresh_token_rejected(&saved).await.unwrap();
        let left = store.load().await.unwrap().unwrap();
        assert!(left.token_response.is_none());
        assert!(matches!(
            lookup(creds, &url, &d.path().join("locks")).unwrap(),
            Some(Credential::OAuthRejected)
        ));
    }
}

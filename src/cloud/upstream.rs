//! One connection to an upstream MCP server over Streamable HTTP, and the client-side
//! handler that relays its notifications (progress, tool list changes) to the bridge.
//!
//! The protocol is pinned to 2025-11-25 (rmcp falls back to what the server answers,
//! down to 2024-11-05); POST-only servers and plain-JSON responses are handled by rmcp's
//! transport. The API key travels only in the `Authorization: Bearer` header.

use std::sync::Weak;
use std::time::Duration;

use rmcp::model::{
    ClientCapabilities, ClientConfig, Implementation, ProgressNotificationParam, ProtocolVersion,
    Tool,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use url::Url;

use super::bridge::BridgeInner;
use super::credentials::Secret;
use super::error::CloudError;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Relays upstream notifications to the bridge (and from there to the IDE).
#[derive(Clone)]
pub struct UpstreamHandler {
    pub(super) bridge: Weak<BridgeInner>,
    pub(super) server: usize,
}

impl ClientHandler for UpstreamHandler {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("testrelay", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _cx: NotificationContext<RoleClient>,
    ) {
        if let Some(bridge) = self.bridge.upgrade() {
            bridge.relay_progress(params).await;
        }
    }

    async fn on_tool_list_changed(&self, _cx: NotificationContext<RoleClient>) {
        if let Some(bridge) = self.bridge.upgrade() {
            bridge.refresh_tools(self.server).await;
        }
    }
}

impl UpstreamHandler {
    /// A handler for a one-off connection (CLI checks) that relays nothing.
    pub fn detached() -> Self {
        UpstreamHandler {
            bridge: Weak::new(),
            server: 0,
        }
    }
}

pub type Upstream = RunningService<RoleClient, UpstreamHandler>;

/// One HTTP client for every upstream connection of the process. Unlike the transport's
/// default (no idle pool), it keeps connections alive: a new TCP and TLS handshake per
/// tool call costs far more than anything else on the path. `TCP_NODELAY` avoids the
/// delayed-ACK stall that made the default give up pooling. Redirects are followed only
/// within the same origin, so the credential never travels elsewhere.
pub(super) fn http_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            init_tls();
            let policy = reqwest::redirect::Policy::custom(|attempt| {
                let first = attempt.previous().first().cloned();
                let same = first.is_some_and(|f| f.origin() == attempt.url().origin());
                if attempt.previous().len() > 5 || !same {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            });
            reqwest::Client::builder()
                .tcp_nodelay(true)
                .redirect(policy)
                .build()
                .unwrap_or_default()
        })
        .clone()
}

/// Connect and initialize; `handler` receives the server's notifications.
pub async fn connect(
    url: &Url,
    key: Option<&Secret>,
    handler: UpstreamHandler,
) -> Result<Upstream, CloudError> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
    if let Some(key) = key {
        config = config.auth_header(key.expose());
    }
    let transport = StreamableHttpClientTransport::with_client(http_client(), config);
    initialize(url, handler, transport).await
}

/// Run the MCP handshake over `transport` (API key or OAuth), bounded by the connect
/// timeout; a 401 becomes [`CloudError::Unauthorized`].
pub(super) async fn initialize<T, E, A>(
    url: &Url,
    handler: UpstreamHandler,
    transport: T,
) -> Result<Upstream, CloudError>
where
    T: rmcp::transport::IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(CONNECT_TIMEOUT, handler.serve(transport)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) if e.is_authorization_required() => Err(CloudError::Unauthorized {
            url: url.to_string(),
        }),
        // The authorization server refusing the stored grant (a revoked sign-in, a client
        // registration it forgot) is a sign-in problem, not a network one.
        Ok(Err(e)) if is_dead_grant(&e.to_string()) => Err(CloudError::Unauthorized {
            url: url.to_string(),
        }),
        Ok(Err(e)) => {
            let mut reason = super::bridge::plain_error(&e.to_string());
            // rmcp's transport error hides its cause ("error sending request for url"):
            // ask the HTTP stack once more, and name what stands in the way.
            if reason.starts_with("error sending request")
                && let Some(cause) = unreachable_cause(url).await
            {
                reason = cause;
            }
            Err(CloudError::Connect {
                url: url.to_string(),
                reason,
            })
        }
        Err(_) => Err(CloudError::Connect {
            url: url.to_string(),
            reason: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
        }),
    }
}

/// Why `url` cannot be reached, in the words of the innermost error of the HTTP stack
/// (connection refused, a name that does not resolve, a certificate it does not trust, a
/// timeout); None when the server answers at all.
async fn unreachable_cause(url: &Url) -> Option<String> {
    let sent = http_client()
        .get(url.as_str())
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let error = sent.err()?;
    let mut cause: &dyn std::error::Error = &error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    Some(cause.to_string())
}

/// All tools of a connected server.
pub async fn list_tools(client: &Upstream) -> Result<Vec<Tool>, String> {
    client
        .peer()
        .list_all_tools()
        .await
        .map_err(|e| e.to_string())
}

/// OAuth errors that only a new sign-in can fix.
fn is_dead_grant(error: &str) -> bool {
    ["invalid_grant", "invalid_client", "unauthorized_client"]
        .iter()
        .any(|code| error.contains(code))
}

/// `name version` of a connected server, for status output.
pub fn describe(client: &Upstream) -> String {
    match client.peer().peer_info() {
        Some(info) => match info.server_info.as_ref() {
            Some(i) => {
                let version = if i.version.is_empty() {
                    String::new()
                } else {
                    format!(" {}", i.version)
                };
                format!("{}{version} (protocol {})", i.name, info.protocol_version)
            }
            None => format!("protocol {}", info.protocol_version),
        },
        None => "unknown server".into(),
    }
}

/// Make sure rustls has its crypto provider; idempotent.
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    #[test]
    fn refused_grants_mean_sign_in_again() {
        let refused = "Auth error: OAuth token refresh failed: Server returned error response: invalid_client: client authentication failed";
        assert!(super::is_dead_grant(refused));
        assert!(super::is_dead_grant(
            "invalid_grant: grant request is invalid"
        ));
        assert!(!super::is_dead_grant(
            "error sending request: connection refused"
        ));
    }
}

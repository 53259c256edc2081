//! The cloud bridge: testrelay as a client of hosted MCP servers.
//!
//! `config` says which servers to bridge; `credentials` keeps their API keys and OAuth
//! tokens in the OS keychain (or an opt-in 0600 file), and `chunked` splits a secret too
//! long for one keychain entry; `upstream` is one Streamable HTTP connection;
//! `oauth` is browser sign-in and the OAuth connection (rmcp does the protocol);
//! `bridge` keeps connections alive in the background and forwards tool calls. Only this
//! module speaks HTTP. Credentials never reach logs, tool output or command lines.

mod bridge;
mod chunked;
mod config;
pub mod contract;
mod credentials;
mod error;
mod oauth;
mod upstream;

pub use bridge::{Bridge, ConnState, ServerReport, SignInReport};
pub use config::{CloudConfig, ServerSpec, default_config_file, parse_server_url};
pub use credentials::{Credentials, Kind as CredentialKind, Secret, StoreKind, default_file_dir};
pub use error::CloudError;
pub use oauth::{
    AuthStyle, OAuthStore, Revocation, connect as connect_oauth, default_lock_dir, login_timeout,
    revoke, sign_in, validate_authorization_url,
};
pub use upstream::{
    Upstream, UpstreamHandler, connect as connect_upstream, describe as describe_upstream,
    init_tls, list_tools as list_upstream_tools,
};

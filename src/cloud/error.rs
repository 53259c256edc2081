//! Errors of the cloud bridge. Messages are lowercase fragments that name the server URL
//! or file involved and never contain a credential.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("invalid server URL '{0}': {1}")]
    BadUrl(String, String),
    #[error("invalid server name '{0}': use letters, digits, '-' or '_'")]
    BadName(String),
    #[error("failed to read the config file {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("invalid tool name pattern '{0}': {1}")]
    Pattern(String, String),
    #[error(
        "no cloud server is configured: pass --server URL (or set TESTRELAY_SERVER), or add one to {0}"
    )]
    NoServer(String),
    #[error("several cloud servers are configured ({0}); name the one you mean")]
    WhichServer(String),
    #[error("no configured server matches '{0}'")]
    UnknownServer(String),
    #[error("{0}")]
    Credentials(String),
    #[error("failed to connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error(
        "{url} rejected the credential (HTTP 401): run `testrelay login {url}` to sign in again"
    )]
    Unauthorized { url: String },
}

//! The MCP surface: testrelay's tools over stdio.
//!
//! This module turns tool calls into calls on the domain modules (`jobs`, `runners`) and
//! shapes their answers for a model's context window. A failure the model can act on is a
//! tool result with `isError` and a next step; malformed requests are rmcp's JSON-RPC
//! errors. Nothing here writes to stdout except through the MCP transport.

mod hybrid;
mod paths;
mod render;
mod screenshots;
mod tools;
mod wire;

pub use paths::{PathError, resolve_project_dir};
pub use render::{StatusOptions, render_status};
pub use tools::TestRelayServer;
pub use wire::{FailureItem, StatusResult};

use std::path::PathBuf;
use std::time::Duration;

use rmcp::ServiceExt;

use crate::cloud::Bridge;
use crate::jobs::Registry;
use crate::runners::HostEnv;

/// What every tool call needs: the job registry, where the workspace is, and the cloud
/// bridge (with no servers when none is configured).
#[derive(Clone)]
pub struct AppContext {
    pub registry: Registry,
    /// `--workspace` / `TESTRELAY_WORKSPACE`, when given.
    pub workspace: Option<PathBuf>,
    /// The server's own environment, inherited by runs.
    pub env: HostEnv,
    pub bridge: Bridge,
    /// Why the cloud configuration could not be read, if it could not.
    pub cloud_error: Option<String>,
}

/// Serve MCP on stdin/stdout until the client closes stdin, then stop every job.
pub async fn serve_stdio(ctx: AppContext) -> anyhow::Result<()> {
    let registry = ctx.registry.clone();
    let bridge = ctx.bridge.clone();
    // Recovery (marking jobs of a dead server interrupted, retention) runs in the
    // background: `initialize` is answered before any disk work.
    let recovering = registry.clone();
    tokio::spawn(async move { recovering.recover().await });
    let served = TestRelayServer::new(ctx)
        .serve(rmcp::transport::stdio())
        .await;
    match served {
        Ok(running) => {
            if let Err(e) = running.waiting().await {
                tracing::warn!(error = %e, "MCP session ended with an error");
            }
        }
        Err(e) => tracing::warn!(error = %e, "MCP session failed to start"),
    }
    bridge.stop();
    registry.shutdown(Duration::from_millis(900)).await;
    Ok(())
}

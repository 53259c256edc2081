//! `testrelay serve`: the stdio MCP server.

use std::process::ExitCode;

use crate::server::{AppContext, serve_stdio};

pub async fn run(ctx: AppContext) -> ExitCode {
    match serve_stdio(ctx).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::from(2)
        }
    }
}

//! One file per subcommand; each returns the process exit code. `anyhow` lives here and in
//! `main` only. The MCP server and the CLI share the same domain code paths.

mod check;
mod cloud;
mod doctor;
mod hybrid;
mod init;
mod pack;
mod run;
mod serve;
mod supervise;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::cloud::{Bridge, CloudConfig};
use crate::jobs::{JobSettings, Registry, Store};
use crate::runners::HostEnv;
use crate::server::AppContext;

/// Parse arguments, set up logging and run the chosen subcommand.
pub fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    if let Some(Command::Supervise(args)) = cli.command {
        // The supervisor is plain synchronous code: no runtime, no logging set-up.
        return supervise::run(args);
    }
    init_logging(matches!(cli.command, None | Some(Command::Serve)));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("testrelay: failed to start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let ctx = context(&cli);
    let code = runtime.block_on(async move {
        match cli.command {
            None | Some(Command::Serve) => serve::run(ctx).await,
            Some(Command::Run(args)) => run::run(ctx, args).await,
            Some(Command::Check(args)) => check::run(ctx, args).await,
            Some(Command::Pack(args)) => pack::run(ctx, args).await,
            Some(Command::Login(args)) => cloud::login(ctx, args).await,
            Some(Command::Logout(args)) => cloud::logout(ctx, args).await,
            Some(Command::Status) => cloud::status(ctx).await,
            Some(Command::Init(args)) => init::run(ctx, args),
            Some(Command::Doctor(args)) => doctor::run(ctx, args).await,
            Some(Command::Cloud(cmd)) => hybrid::cloud(ctx, cmd).await,
            Some(Command::Sync) => hybrid::sync(ctx).await,
            Some(Command::Supervise(_)) => unreachable!("handled above"),
        }
    });
    // Do not wait for blocked stdin reads or lingering tasks: the work is done.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}

fn context(cli: &Cli) -> AppContext {
    let state_root = cli.state_dir.clone().unwrap_or_else(Store::default_root);
    let store = Store::new(state_root.clone());
    let supervisor = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("testrelay"));
    let mut settings = JobSettings::new(supervisor);
    settings.max_concurrent = cli.max_jobs.max(1);
    let (config, cloud_error) = match CloudConfig::load(
        &cli.servers,
        None,
        crate::cloud::default_config_file().as_deref(),
        cli.credential_store,
    ) {
        Ok(c) => (c, None),
        Err(e) => (
            CloudConfig::local_only(cli.credential_store),
            Some(e.to_string()),
        ),
    };
    let reserved = crate::server::TestRelayServer::local_tool_names();
    AppContext {
        registry: Registry::new(store, settings),
        workspace: cli.workspace.clone(),
        // The login shell is read only when a toolchain cannot be found otherwise, on the
        // first tool call that needs it, never at start-up.
        env: HostEnv::from_process().with_login_shell_fallback(),
        bridge: Bridge::new(
            config,
            crate::cloud::default_file_dir(),
            reserved,
            Some(state_root.join("cloud")),
        ),
        cloud_error,
    }
}

/// Logs go to stderr only (stdout is the JSON-RPC channel), filtered by `TESTRELAY_LOG`
/// (falling back to `RUST_LOG`), quiet by default, without colours when serving.
fn init_logging(serving: bool) {
    use std::io::IsTerminal;
    let filter = std::env::var("TESTRELAY_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        // rmcp logs transport failures at ERROR that testrelay reports itself, in words
        // the user can act on; `TESTRELAY_LOG=rmcp=debug` brings them back.
        .unwrap_or_else(|_| "warn,rmcp=off".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!serving && std::io::stderr().is_terminal())
        .try_init();
}

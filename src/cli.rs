//! Command-line arguments. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::clients::Client;
use crate::runners::Framework;

/// Run your project's tests for IDE agents: a local MCP server (stdio) that runs pytest, Jest
/// and Playwright as background jobs, plus the same engine on the command line.
///
/// With no subcommand, testrelay serves MCP on stdin/stdout: point your IDE's MCP
/// configuration at this binary.
#[derive(Debug, Parser)]
#[command(
    name = "testrelay",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The workspace (project root) that tools resolve paths in. IDE configs pass ${workspaceFolder}.
    #[arg(
        long,
        global = true,
        env = "TESTRELAY_WORKSPACE",
        hide_env_values = true,
        value_name = "PATH"
    )]
    pub workspace: Option<PathBuf>,

    /// Where job records and logs are kept [default: the per-user state directory, e.g. ~/.local/state/testrelay]
    #[arg(
        long,
        global = true,
        env = "TESTRELAY_STATE_DIR",
        hide_env_values = true,
        value_name = "DIR"
    )]
    pub state_dir: Option<PathBuf>,

    /// How many test runs may execute at once; further runs wait in a queue.
    #[arg(
        long,
        global = true,
        env = "TESTRELAY_MAX_JOBS",
        hide_env_values = true,
        default_value_t = 2,
        value_name = "N"
    )]
    pub max_jobs: usize,

    /// A hosted MCP server to bridge: `URL` or `name=URL` (repeatable). Its tools appear
    /// next to the local ones. Also read from the config file.
    #[arg(
        long = "server",
        global = true,
        env = "TESTRELAY_SERVER",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub servers: Vec<String>,

    /// Where credentials are kept: the OS keychain, or (opt-in) a 0600 file in the user's config dir.
    #[arg(
        long,
        global = true,
        env = "TESTRELAY_CREDENTIAL_STORE",
        hide_env_values = true,
        value_name = "STORE"
    )]
    pub credential_store: Option<crate::cloud::StoreKind>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over stdin/stdout (the default). Logs go to stderr; set TESTRELAY_LOG=debug for more.
    Serve,
    /// Run tests now through the same job engine the MCP tools use, with live progress.
    ///
    /// Exits 0 when every test passed, 1 when tests failed, 2 when the run could not run
    /// (nothing to run, usage error, crash, timeout, cancel).
    Run(RunArgs),
    /// Check whether the project's tests can run here and print what to install.
    ///
    /// Exits 0 when ready, 1 when something is missing or no framework was detected.
    Check(CheckArgs),
    /// Package the workspace into a ZIP for codebase analysis: what git would consider part
    /// of the project, never secrets, dependencies or build output.
    ///
    /// `--dry-run` lists exactly what the archive would hold and what is left out and why.
    /// Exits 0 on success, 2 on error (for example a size cap exceeded).
    Pack(PackArgs),
    /// Sign in to a hosted server in the browser (OAuth), or with an API key.
    ///
    /// Without --api-key-stdin it opens the server's sign-in page in the browser (the URL is
    /// also printed, for machines without one) and waits up to 5 minutes for it to come
    /// back to testrelay on 127.0.0.1. Set TESTRELAY_BROWSER to a program to open the URL
    /// with instead (run directly with the URL as its one argument). Tokens or the key go
    /// to the OS keychain (or the opt-in file store) and are refreshed automatically. Exits
    /// 0 when the server accepted the credential, 1 when sign-in failed, it rejected the
    /// credential or could not be reached, 2 on error.
    Login(LoginArgs),
    /// Forget the stored credential of a hosted server.
    Logout(ServerArg),
    /// Per configured server: credential store, signed in or not, reachable, tool count.
    ///
    /// Exits 0 when every server is connected, 1 otherwise.
    Status,
    /// Add testrelay to an IDE's MCP configuration: VS Code, Cursor, Windsurf or Claude Code.
    ///
    /// Writes the entry that launches this binary (by its absolute path) with the workspace
    /// in the form the IDE expands, into the project's configuration (.vscode/mcp.json,
    /// .cursor/mcp.json, .mcp.json) or the user's (~/.cursor/mcp.json,
    /// ~/.codeium/windsurf/mcp_config.json). Other servers, comments and formatting are kept;
    /// a file that is not valid JSON is left untouched. Running it again changes nothing.
    /// Exits 0 when the configuration is in place, 2 on error.
    Init(InitArgs),
    /// Check that testrelay can work here, one line per check with what to do about it.
    ///
    /// Checks the installed version, the state directory, each test framework detected in
    /// the project, and the PATH testrelay sees against your login shell's.
    /// Exits 0 when every check passes, 1 when one fails, 2 on error.
    Doctor(DoctorArgs),
    /// Hybrid workflows with the hosted service: create a project from this codebase,
    /// report a finished run's results.
    #[command(subcommand)]
    Cloud(CloudCommand),
    /// Finish result reports that were interrupted (kept in the local outbox), without
    /// sending anything twice.
    ///
    /// Exits 0 when the outbox is empty afterwards, 1 when reports are still pending, 2 on error.
    Sync,
    /// Internal: supervise one job's process tree (started by testrelay itself).
    #[command(name = "__supervise", hide = true)]
    Supervise(SuperviseArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The project directory, then test files, directories or test ids (pytest node ids,
    /// Jest `file::full name`, Playwright `file:line`).
    /// The first argument is taken as the project directory when it is a directory with a
    /// detectable test setup; otherwise every argument is a test and the project is the
    /// workspace or the current directory.
    #[arg(value_name = "PATH | TEST")]
    pub args: Vec<String>,

    /// The framework to use [default: detected from the project's files]
    #[arg(long, short = 'f', value_name = "NAME")]
    pub framework: Option<Framework>,

    /// Stop the run after this many seconds; tests that finished are kept.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,

    /// Only tests matching this name expression (pytest -k; for Jest a regex, -t).
    #[arg(short = 'k', long, value_name = "EXPR")]
    pub keyword: Option<String>,

    /// Only tests matching this marker expression (pytest -m; Jest has none).
    #[arg(short = 'm', long, value_name = "EXPR")]
    pub markers: Option<String>,

    /// Print the final status as JSON (the get_test_execution_status answer) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The project directory [default: the workspace or the current directory]
    pub path: Option<String>,

    /// Check only this framework.
    #[arg(long, short = 'f', value_name = "NAME")]
    pub framework: Option<Framework>,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The directory to package [default: the workspace or the current directory]
    pub path: Option<PathBuf>,

    /// Where to write the ZIP [default: <state dir>/packages/workspace-<hash>.zip]
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Do not write anything: list what would be packed, and what is left out and why.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the result (the listing with --dry-run) as JSON.
    #[arg(long)]
    pub json: bool,

    /// Only pack files matching this glob (repeatable), e.g. 'src/**'.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// Leave out files matching this glob (repeatable), e.g. '**/*.snap'.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Skip files larger than this many bytes (reported, not an error).
    #[arg(long, default_value_t = 2 * 1024 * 1024, value_name = "BYTES")]
    pub max_file_bytes: u64,

    /// Fail when the packed files add up to more than this many bytes.
    #[arg(long, default_value_t = 100 * 1024 * 1024, value_name = "BYTES")]
    pub max_total_bytes: u64,

    /// Fail when more than this many files would be packed.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub max_files: usize,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server URL or name [default: the only configured server]
    pub server: Option<String>,

    /// Read an API key from standard input (sent as `Authorization: Bearer`) instead of
    /// signing in in the browser. The key is never read from the command line.
    #[arg(long)]
    pub api_key_stdin: bool,
}

#[derive(Debug, Args)]
pub struct ServerArg {
    /// The server URL or name [default: the only configured server]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The IDE to configure.
    #[arg(value_enum)]
    pub client: Client,

    /// The project directory [default: the workspace or the current directory]
    pub path: Option<PathBuf>,

    /// Configure this project only (the default for vscode, cursor and claude).
    #[arg(long, conflicts_with = "global")]
    pub project: bool,

    /// Configure every project of this user (cursor; windsurf's only scope).
    #[arg(long)]
    pub global: bool,

    /// Print the configuration instead of writing it.
    #[arg(long)]
    pub print: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The project directory [default: the workspace or the current directory]
    pub path: Option<String>,

    /// Print the checks as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SuperviseArgs {
    #[arg(long)]
    pub report: PathBuf,
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    #[arg(long, default_value_t = 5000)]
    pub grace_int_ms: u64,
    #[arg(long, default_value_t = 3000)]
    pub grace_term_ms: u64,
    /// The runner program and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<std::ffi::OsString>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_serve_and_globals_work_anywhere() {
        let cli = Cli::try_parse_from(["testrelay", "--workspace", "/w"]).unwrap();
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from([
            "testrelay",
            "run",
            "tests/test_a.py",
            "--workspace",
            "/w",
            "-k",
            "x",
        ])
        .unwrap();
        assert_eq!(cli.workspace.as_deref(), Some(std::path::Path::new("/w")));
        match cli.command {
            Some(Command::Run(r)) => assert_eq!(
                (r.args, r.keyword.as_deref()),
                (vec!["tests/test_a.py".to_string()], Some("x"))
            ),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["testrelay", "run", "--framework", "cobol"]).is_err());
    }
}

#[derive(Debug, Subcommand)]
pub enum CloudCommand {
    /// Package the workspace (never secrets), upload it and create a cloud project from it.
    ///
    /// Prints what was sent (files, bytes, secrets left out) and the new project's id.
    /// Exits 0 on success, 2 on error.
    CreateProject(CreateProjectArgs),
    /// Report a finished run's results to a cloud project.
    ///
    /// Without --confirm it only prints what would be sent. Tests map to cloud test cases
    /// by a case id like TC-42 in their names. Exits 0 when reported (or previewed), 1 when
    /// the upload failed and was kept in the outbox for `testrelay sync`, 2 on error.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct CreateProjectArgs {
    /// The new project's name
    #[arg(long)]
    pub name: String,
    /// What the application does
    #[arg(long)]
    pub description: Option<String>,
    /// AI provider the service should use [default: the service's]
    #[arg(long)]
    pub ai_provider: Option<String>,
    /// AI model the service should use [default: the service's]
    #[arg(long)]
    pub ai_model: Option<String>,
    /// The least number of test cases to generate
    #[arg(long)]
    pub minimum_test_cases: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The finished run (job id from `testrelay run` or the MCP tools)
    pub job: String,
    /// The cloud project the test cases belong to
    #[arg(long)]
    pub project: String,
    /// The run's name in the cloud [default: "testrelay <job id>"]
    #[arg(long)]
    pub run_name: Option<String>,
    /// A longer description of the run
    #[arg(long)]
    pub run_description: Option<String>,
    /// Send the results; without it nothing is sent
    #[arg(long)]
    pub confirm: bool,
}

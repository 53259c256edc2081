//! `testrelay init`: put testrelay into an IDE's MCP configuration, or print the entry.
//!
//! The facts per IDE live in `clients`; this file picks the scope and the project, finds
//! the installed binary, and reports what changed and what to do next in the IDE.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::InitArgs;
use crate::clients::{self, Client, Launch, Outcome, Scope};
use crate::printer::Printer;
use crate::runners::tilde;
use crate::server::AppContext;
use crate::workspace::WorkspaceRoot;

pub fn run(ctx: AppContext, a: InitArgs) -> ExitCode {
    let mut printer = Printer::new();
    match init(&ctx, &a, &mut printer) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            printer.error(&message);
            ExitCode::from(2)
        }
    }
}

fn init(ctx: &AppContext, a: &InitArgs, printer: &mut Printer) -> Result<(), String> {
    let home = ctx.env.home();
    let scope = match (a.project, a.global) {
        (true, _) => Scope::Project,
        (_, true) => Scope::Global,
        _ => a.client.default_scope(),
    };
    let cwd = std::env::current_dir()
        .map_err(|e| format!("failed to read the current directory: {e}"))?;
    // A user-wide entry with ${workspaceFolder} does not depend on where init runs; every
    // other entry names a project, which must be a real one (not / or the home directory).
    let needs_project = scope == Scope::Project || a.client == Client::Windsurf;
    let project = if needs_project {
        project_dir(
            a.path.as_deref(),
            ctx.workspace.as_deref(),
            &cwd,
            home.as_deref(),
        )?
    } else {
        cwd
    };
    let launch = Launch {
        command: installed_binary()?,
        // A configured cloud server (`--server URL`) will be passed here, for every client.
        extra_args: Vec::new(),
    };
    let target = a
        .client
        .target(scope, &project, home.as_deref(), &launch)
        .map_err(|e| e.to_string())?;
    let shown = tilde(&target.file, home.as_deref());
    if a.print {
        printer.note(&format!("# {} configuration for {shown}", a.client.name()));
        printer.text(&clients::render(&target));
        return Ok(());
    }
    if in_cargo_target_dir(&launch.command) {
        printer.note(&format!(
            "note: {} is a build inside a cargo target directory; the IDE breaks when it is rebuilt or cleaned. Run ./install.sh and init again from the installed binary.",
            launch.command.display()
        ));
    }
    let outcome = clients::write_entry(&target).map_err(|e| e.to_string())?;
    let what = match outcome {
        Outcome::Created => format!("created {shown} with the testrelay server"),
        Outcome::Added => format!("added testrelay to {shown} (everything else in it kept)"),
        Outcome::Updated => format!("updated testrelay in {shown} (everything else in it kept)"),
        Outcome::Unchanged => format!("{shown} already configures testrelay; nothing changed"),
    };
    printer.text(&format!("{what}\nnext: {}\n", a.client.next_step(&project)));
    Ok(())
}

/// The project: the argument (relative to the current directory), the workspace, or the
/// current directory, under the workspace root policy (never `/` or the home directory).
fn project_dir(
    arg: Option<&Path>,
    workspace: Option<&Path>,
    cwd: &Path,
    home: Option<&Path>,
) -> Result<PathBuf, String> {
    let dir = arg
        .map(|p| cwd.join(p))
        .or_else(|| workspace.map(Path::to_path_buf));
    let dir = dir.unwrap_or_else(|| cwd.to_path_buf());
    WorkspaceRoot::open(&dir, home)
        .map(|root| root.path().to_path_buf())
        .map_err(|e| format!("{e} (run init in your project directory, or pass it)"))
}

/// The absolute, symlink-free path of this binary: what the IDE will start.
fn installed_binary() -> Result<PathBuf, String> {
    std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| format!("failed to find the path of the testrelay binary: {e}"))
}

fn in_cargo_target_dir(exe: &Path) -> bool {
    let parts: Vec<_> = exe.components().map(|c| c.as_os_str()).collect();
    parts
        .windows(2)
        .any(|w| w[0] == "target" && (w[1] == "debug" || w[1] == "release"))
}

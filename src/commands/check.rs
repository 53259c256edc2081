//! `testrelay check`: the environment check, for humans.

use std::process::ExitCode;

use crate::cli::CheckArgs;
use crate::printer::Printer;
use crate::server::{AppContext, resolve_project_dir};

pub async fn run(ctx: AppContext, a: CheckArgs) -> ExitCode {
    let mut printer = Printer::new();
    let cwd = std::env::current_dir().ok();
    let (dir, stop) = match resolve_project_dir(
        a.path.as_deref(),
        ctx.workspace.as_deref(),
        cwd.as_deref(),
        ctx.env.home().as_deref(),
    ) {
        Ok(d) => d,
        Err(e) => {
            printer.error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let checks = crate::jobs::check_environment(&dir, stop.as_deref(), &ctx.env, a.framework).await;
    if a.json {
        printer.json(&serde_json::json!({ "directory": dir, "frameworks": checks }));
    } else {
        printer.check(&dir, &checks);
    }
    if !checks.is_empty() && checks.iter().all(|c| c.ready) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

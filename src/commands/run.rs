//! `testrelay run`: one run through the same job engine as the `run_tests` tool, in the
//! foreground, with live progress and a summary. Ctrl-C cancels the run (and everything
//! it started) and still prints the tests that finished.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::RunArgs;
use crate::jobs::{JobStatus, StartSpec};
use crate::printer::Printer;
use crate::runners::{self, RunRequest};
use crate::server::{AppContext, StatusOptions, render_status, resolve_project_dir};

/// Split `[PATH] [TEST...]`: the first argument is the project when it is a directory
/// where a framework is detected.
fn split_args(args: &[String]) -> (Option<&str>, Vec<String>) {
    match args.first() {
        Some(first)
            if Path::new(first).is_dir() && !runners::detect(Path::new(first)).is_empty() =>
        {
            (Some(first.as_str()), args[1..].to_vec())
        }
        _ => (None, args.to_vec()),
    }
}

pub async fn run(ctx: AppContext, a: RunArgs) -> ExitCode {
    let mut printer = Printer::new();
    let (path, tests) = split_args(&a.args);
    let cwd = std::env::current_dir().ok();
    let (dir, stop) = match resolve_project_dir(
        path,
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
    let framework = match runners::choose(&dir, a.framework) {
        Ok(f) => f,
        Err(e) => {
            printer.error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let spec = StartSpec {
        framework,
        project_dir: dir,
        stop_at: stop,
        request: RunRequest {
            tests,
            keyword: a.keyword,
            markers: a.markers,
            ..Default::default()
        },
        timeout: Some(Duration::from_secs(a.timeout.max(1))),
        idempotency_key: None,
        env: ctx.env.clone(),
        cloud_test_case_id: None,
    };
    let registry = ctx.registry.clone();
    let started = match registry.start(spec) {
        Ok(s) => s,
        Err(e) => {
            printer.error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let id = started.record.id.to_string();
    printer.note(&format!(
        "{} · {}",
        started.record.command, started.record.toolchain
    ));
    if let Some(mut rx) = registry.subscribe(&id) {
        let mut cancelling = false;
        loop {
            let snap = rx.borrow_and_update().clone();
            if snap.status.is_terminal() {
                break;
            }
            printer.progress(&snap);
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { break },
                _ = tokio::signal::ctrl_c(), if !cancelling => {
                    cancelling = true;
                    printer.note("cancelling: stopping the run and everything it started…");
                    let r = registry.clone();
                    let jid = id.clone();
                    tokio::spawn(async move { let _ = r.cancel(&jid).await; });
                }
            }
        }
    }
    let view = match registry.view(&id) {
        Ok(v) => v,
        Err(e) => {
            printer.error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    if a.json {
        let opts = StatusOptions {
            failures_limit: 50,
            ..StatusOptions::default()
        };
        printer.json(&render_status(&view, opts));
    } else {
        printer.run_summary(&view);
    }
    match view.record.status {
        JobStatus::Passed => ExitCode::SUCCESS,
        JobStatus::Failed => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}

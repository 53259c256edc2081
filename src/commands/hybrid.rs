//! `testrelay cloud create-project`, `testrelay cloud report` and `testrelay sync`: the
//! hybrid workflows for humans, through the same `crate::hybrid` code as the MCP tools.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::cli::{CloudCommand, CreateProjectArgs, ReportArgs};
use crate::cloud::contract;
use crate::hybrid::{self, CreateProjectRequest, ReportRequest};
use crate::printer::Printer;
use crate::server::AppContext;
use crate::workspace::{self, RootSources};

pub async fn cloud(ctx: AppContext, cmd: CloudCommand) -> ExitCode {
    match cmd {
        CloudCommand::CreateProject(a) => create_project(ctx, a).await,
        CloudCommand::Report(a) => report(ctx, a).await,
    }
}

/// Connect to the configured servers and check one offers `needs`.
async fn connect(ctx: &AppContext, needs: &[&str], printer: &mut Printer) -> Result<(), ExitCode> {
    if let Some(e) = &ctx.cloud_error {
        printer.error(e);
        return Err(ExitCode::from(2));
    }
    if !ctx.bridge.configured() {
        printer.error("no cloud server configured: pass --server URL, set TESTRELAY_SERVER, or add [[server]] to the config file");
        return Err(ExitCode::from(2));
    }
    let reports = ctx.bridge.report(true).await;
    if ctx.bridge.offers(needs).await {
        return Ok(());
    }
    let why: Vec<String> = reports
        .iter()
        .map(|r| match (&r.error, &r.next_step) {
            (Some(e), Some(n)) => format!("{}: {e} ({n})", r.url),
            (Some(e), None) => format!("{}: {e}", r.url),
            _ => format!(
                "{}: connected, but it does not offer {}",
                r.url,
                needs.join(", ")
            ),
        })
        .collect();
    printer.error(&why.join("; "));
    Err(ExitCode::from(2))
}

async fn create_project(ctx: AppContext, a: CreateProjectArgs) -> ExitCode {
    let mut printer = Printer::new();
    if let Err(code) = connect(&ctx, contract::CREATE_PROJECT_TOOLS, &mut printer).await {
        return code;
    }
    let sources = RootSources {
        configured: ctx.workspace.clone(),
        cwd: std::env::current_dir().ok(),
        ..RootSources::default()
    };
    let root = match workspace::resolve_root(&sources, ctx.env.home().as_deref()) {
        Ok(r) => r,
        Err(e) => {
            printer.error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let progress = |done: u64, total: u64, msg: String| {
        eprintln!("[{done}/{total}] {msg}");
    };
    let req = CreateProjectRequest {
        name: a.name,
        description: a.description,
        ai_provider: a.ai_provider,
        ai_model: a.ai_model,
        minimum_test_cases: a.minimum_test_cases,
    };
    match hybrid::create_project(
        &ctx.bridge,
        root,
        ctx.registry.store().root(),
        req,
        &progress,
        CancellationToken::new(),
    )
    .await
    {
        Ok(out) => {
            let mut text = format!(
                "created project {} ({}) from {} files, {} bytes (about {} tokens), sent as {} chunk(s)\n",
                out.project.project_id,
                out.project.name,
                out.files,
                out.bytes,
                out.est_tokens,
                out.chunks
            );
            for s in &out.excluded_secrets {
                text.push_str(&format!("  left out {}: {}\n", s.path, s.reason));
            }
            printer.text(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            printer.error(&e.to_string());
            ExitCode::from(2)
        }
    }
}

async fn report(ctx: AppContext, a: ReportArgs) -> ExitCode {
    let mut printer = Printer::new();
    let view = match ctx.registry.view(&a.job) {
        Ok(v) => v,
        Err(e) => {
            printer.error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    if a.confirm
        && let Err(code) = connect(&ctx, contract::REPORT_TOOLS, &mut printer).await
    {
        return code;
    }
    let req = ReportRequest {
        project_id: a.project,
        run_name: a.run_name.unwrap_or_else(|| format!("testrelay {}", a.job)),
        run_description: a.run_description,
        screenshot_path: None,
        job_case_id: view.record.cloud_test_case_id.clone(),
        confirm: a.confirm,
    };
    match hybrid::report_job(
        &ctx.bridge,
        ctx.registry.store().root(),
        &view,
        req,
        CancellationToken::new(),
    )
    .await
    {
        Ok(out) => {
            let mut text = String::new();
            for c in &out.cases {
                text.push_str(&format!("{} {} ({})", c.test_case_id, c.status, c.test));
                if let Some(n) = &c.notes {
                    text.push_str(&format!(": {n}"));
                }
                text.push('\n');
            }
            text.push_str(&format!(
                "{} local tests without a case id are not reported\n",
                out.unmapped_tests
            ));
            if out.status == "needs_confirmation" {
                text.push_str("nothing was sent: run again with --confirm to send these results\n");
            } else {
                text.push_str(&format!(
                    "{}: execution {}\n",
                    out.status.replace('_', " "),
                    out.execution_id.unwrap_or_default()
                ));
            }
            printer.text(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            printer.error(&e.to_string());
            ExitCode::from(1)
        }
    }
}

pub async fn sync(ctx: AppContext) -> ExitCode {
    let mut printer = Printer::new();
    if let Err(code) = connect(&ctx, contract::REPORT_TOOLS, &mut printer).await {
        return code;
    }
    let out = hybrid::sync_outbox(
        &ctx.bridge,
        ctx.registry.store().root(),
        CancellationToken::new(),
    )
    .await;
    let mut text = String::new();
    for id in &out.completed {
        text.push_str(&format!("sent {id}\n"));
    }
    for p in &out.pending {
        text.push_str(&format!("still pending {}: {}\n", p.client_run_id, p.error));
    }
    if text.is_empty() {
        text.push_str("nothing to send: the outbox is empty\n");
    }
    printer.text(&text);
    if out.pending.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

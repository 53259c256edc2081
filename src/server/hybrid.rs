//! The hybrid tools: local work plus the hosted service's contract tools. Each is listed
//! only while a connected upstream offers every contract tool it calls
//! ([`required_upstream_tools`]); the work itself is in `crate::hybrid`, shared with the CLI.

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::ProgressNotificationParam;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use serde::Deserialize;

use super::tools::TestRelayServer;
use crate::cloud::contract;
use crate::hybrid::{
    self, CreateProjectOutcome, CreateProjectRequest, ExecuteRequest, FeatureOutcome,
    FeatureRequest, ProgressFn, ReportOutcome, ReportRequest,
};
use crate::jobs::JobStatus;
use crate::runners::Framework;

/// The upstream tools a hybrid tool calls; empty for a name that is not a hybrid tool.
pub fn required_upstream_tools(tool: &str) -> &'static [&'static str] {
    match tool {
        "create_project_from_current_codebase" => contract::CREATE_PROJECT_TOOLS,
        "report_test_results" => contract::REPORT_TOOLS,
        "execute_test_case_directly" => contract::SCRIPT_TOOLS,
        "create_tests_for_specific_feature" => contract::FEATURE_TOOLS,
        _ => &[],
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CreateProjectParams {
    /// The new project's name, e.g. the repository name.
    pub name: String,
    /// What the application does, in a sentence or two; helps the service write relevant tests.
    #[serde(default)]
    pub description: Option<String>,
    /// AI provider the service should use (e.g. `openai`, `anthropic`); the service's default when omitted.
    #[serde(default)]
    pub ai_provider: Option<String>,
    /// AI model the service should use; the service's default when omitted.
    #[serde(default)]
    pub ai_model: Option<String>,
    /// The least number of test cases the service should generate.
    #[serde(default)]
    pub minimum_test_cases: Option<u32>,
    /// The workspace directory to package; defaults to the configured workspace, the IDE's workspace folder, or the current directory.
    #[serde(default)]
    pub workspace_path: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ReportParams {
    /// The finished local run whose results to report (from run_tests or execute_test_case_directly).
    pub job_id: String,
    /// The cloud project the test cases belong to.
    pub project_id: String,
    /// A name for the run as it appears in the cloud, e.g. `local run before merge`.
    pub run_name: String,
    /// A longer description of the run.
    #[serde(default)]
    pub run_description: Option<String>,
    /// A screenshot file inside the workspace to attach to failed cases that have no screenshot of their own.
    #[serde(default)]
    pub screenshot_path: Option<String>,
    /// Leave unset on the first call: it returns exactly what would be sent and sends nothing. Set true only after the user has seen that preview and agreed to send it.
    #[serde(default)]
    pub confirm: Option<bool>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ExecuteParams {
    /// The cloud test case to run, e.g. `TC-42`.
    pub test_case_id: String,
    /// The framework the script is for: pytest, jest or playwright. The project must be set up for it (check_test_environment says what is missing).
    pub framework: Framework,
    /// The project directory to run in (inside the workspace); defaults to the workspace.
    #[serde(default)]
    pub working_directory: Option<String>,
    /// Stop the run after this many seconds (1 to 3600; default 600).
    #[serde(default)]
    pub timeout: Option<u64>,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ExecuteResult {
    pub job_id: String,
    pub status: JobStatus,
    pub test_case_id: String,
    pub framework: Framework,
    pub project_dir: String,
    /// Where the script was written; testrelay removes it when the run ends.
    pub script_path: String,
    /// The runner command, for display.
    pub command: String,
    pub next_step: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct FeatureParams {
    /// The cloud project to add the tests to.
    pub project_id: String,
    /// What the feature does and what matters about it, in plain words.
    pub feature_description: String,
    /// The code files that implement the feature, relative to the workspace root (at most 50, 256 KiB each, 1 MiB in all). Files outside the workspace and secret files (.env, keys, files containing tokens) are refused.
    pub code_files: Vec<String>,
    /// Kinds of tests wanted, e.g. `functional`, `e2e`, `api`, `unit`.
    #[serde(default)]
    pub test_types: Option<Vec<String>>,
    /// The least number of test cases to generate.
    #[serde(default)]
    pub minimum_test_cases: Option<u32>,
    /// The suite the new test cases go into.
    #[serde(default)]
    pub suite_name: Option<String>,
    /// AI provider the service should use; the service's default when omitted.
    #[serde(default)]
    pub ai_provider: Option<String>,
    /// AI model the service should use; the service's default when omitted.
    #[serde(default)]
    pub ai_model: Option<String>,
}

/// The user's answer when the client can ask them directly (MCP elicitation).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SendConfirmation {
    /// Send these results to the cloud.
    pub send: bool,
}
rmcp::elicit_safe!(SendConfirmation);

/// How long the user has to answer the confirmation question.
const CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Relays progress to the client while the returned callback lives, when the request
/// carried a progress token.
fn progress_relay(ctx: &RequestContext<RoleServer>) -> Box<dyn Fn(u64, u64, String) + Send + Sync> {
    let Some(token) = ctx.meta.get_progress_token() else {
        return Box::new(|_, _, _| {});
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64, String)>();
    let peer = ctx.peer.clone();
    tokio::spawn(async move {
        while let Some((done, total, msg)) = rx.recv().await {
            let note = ProgressNotificationParam::new(token.clone(), done as f64)
                .with_total(total as f64)
                .with_message(msg);
            let _ = peer.notify_progress(note).await;
        }
    });
    Box::new(move |done, total, msg| {
        let _ = tx.send((done, total, msg));
    })
}

#[tool_router(router = hybrid_router, vis = "pub(super)")]
impl TestRelayServer {
    /// Create a project in the hosted test-management service from this codebase. Packages the workspace locally (following .gitignore; secrets, dependencies and build output are never included), uploads the archive in chunks with progress, and asks the service to create a project from it and generate test cases. Returns the project (with its project_id) and exactly what was sent: file count, bytes, estimated tokens, and every file left out as a secret (path and reason). Call preview_workspace_package first if the user wants to see the file list before anything leaves the machine.
    #[tool(annotations(
        title = "Create cloud project from this codebase",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn create_project_from_current_codebase(
        &self,
        Parameters(p): Parameters<CreateProjectParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CreateProjectOutcome>, String> {
        let root = self
            .workspace_root(p.workspace_path.as_deref(), &ctx.peer)
            .await?;
        let relay = progress_relay(&ctx);
        let progress: ProgressFn<'_> = &*relay;
        let req = CreateProjectRequest {
            name: p.name,
            description: p.description,
            ai_provider: p.ai_provider,
            ai_model: p.ai_model,
            minimum_test_cases: p.minimum_test_cases,
        };
        hybrid::create_project(
            &self.ctx.bridge,
            root,
            self.ctx.registry.store().root(),
            req,
            progress,
            ctx.ct.clone(),
        )
        .await
        .map(Json)
        .map_err(|e| e.to_string())
    }

    /// Report a finished local test run's results to the hosted service, as a new run of the given project: each local test whose name carries a cloud test case id (like TC-42), or the run's own cloud test case for runs started by execute_test_case_directly, becomes that case's result with its status, the failure message as notes, and a failure screenshot. Never call this on your own initiative: the first call (without confirm) sends nothing and returns exactly what would be sent; show that to the user, and only if they agree call again with confirm: true. When the client can ask the user itself, testrelay asks them directly and sends only on their yes (status `reported`, or `declined`). A report interrupted by a network failure is kept locally and finished on the next call (or `testrelay sync`) without duplicating results.
    #[tool(annotations(
        title = "Report test results to the cloud",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn report_test_results(
        &self,
        Parameters(p): Parameters<ReportParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ReportOutcome>, String> {
        let view = self
            .ctx
            .registry
            .view(&p.job_id)
            .map_err(|e| e.to_string())?;
        let screenshot_path = match p.screenshot_path.as_deref() {
            Some(path) => {
                let root = self.workspace_root(None, &ctx.peer).await?;
                Some(root.resolve_inside(path).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let mut req = ReportRequest {
            project_id: p.project_id,
            run_name: p.run_name,
            run_description: p.run_description,
            screenshot_path,
            job_case_id: view.record.cloud_test_case_id.clone(),
            confirm: p.confirm.unwrap_or(false),
        };
        let state = self.ctx.registry.store().root();
        // A client that can ask the user directly does so; others get the preview and
        // the model asks, calling again with confirm: true.
        let can_ask = ctx
            .peer
            .supported_elicitation_modes()
            .contains(&rmcp::service::ElicitationMode::Form);
        if !req.confirm && can_ask {
            let preview =
                hybrid::report_job(&self.ctx.bridge, state, &view, req.clone(), ctx.ct.clone())
                    .await
                    .map_err(|e| e.to_string())?;
            let c = &preview.counts;
            let question = format!(
                "Send {} test results from local run {} to cloud project {} as run \"{}\" ({} passed, {} failed, {} errored, {} skipped), with failure messages and screenshots?",
                preview.cases.len(),
                preview.job_id,
                preview.project_id,
                preview.run_name,
                c.passed,
                c.failed,
                c.errored,
                c.skipped
            );
            match ctx
                .peer
                .elicit_with_timeout::<SendConfirmation>(question, Some(CONFIRM_TIMEOUT))
                .await
            {
                Ok(Some(SendConfirmation { send: true })) => req.confirm = true,
                Ok(_)
                | Err(rmcp::service::ElicitationError::UserDeclined)
                | Err(rmcp::service::ElicitationError::UserCancelled) => {
                    return Ok(Json(ReportOutcome {
                        status: "declined".into(),
                        next_step: "the user declined: nothing was sent. Do not report these results unless the user asks again".into(),
                        ..preview
                    }));
                }
                // The client could not ask: fall back to the preview.
                Err(_) => return Ok(Json(preview)),
            }
        }
        hybrid::report_job(&self.ctx.bridge, state, &view, req, ctx.ct.clone())
            .await
            .map(Json)
            .map_err(|e| e.to_string())
    }

    /// Run one cloud test case here: fetches the case's automation script from the hosted service for the given framework, writes it into the project under a testrelay-owned name (never over an existing file; removed when the run ends), and starts it as an ordinary background run. Returns the job_id at once: follow it with get_test_execution_status, then (only if the user agrees) report_test_results, which maps the run's results to this test case.
    #[tool(annotations(
        title = "Run a cloud test case locally",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn execute_test_case_directly(
        &self,
        Parameters(p): Parameters<ExecuteParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ExecuteResult>, String> {
        let (dir, stop) = self.project_dir(p.working_directory.as_deref())?;
        let req = ExecuteRequest {
            test_case_id: p.test_case_id.trim().to_string(),
            framework: p.framework,
            project_dir: dir,
            stop_at: stop,
            timeout: p
                .timeout
                .map(|s| std::time::Duration::from_secs(s.clamp(1, 3600))),
            env: self.ctx.env.clone(),
        };
        let done = hybrid::execute_case(&self.ctx.bridge, &self.ctx.registry, req, ctx.ct.clone())
            .await
            .map_err(|e| e.to_string())?;
        let r = done.record;
        Ok(Json(ExecuteResult {
            next_step: format!(
                "call get_test_execution_status with job_id={} and wait_seconds=30",
                r.id
            ),
            job_id: r.id.to_string(),
            status: r.status,
            test_case_id: r.cloud_test_case_id.unwrap_or_default(),
            framework: r.framework,
            project_dir: r.project_dir.display().to_string(),
            script_path: done.script_path.display().to_string(),
            command: r.command,
        }))
    }

    /// Generate cloud test cases for one feature from its code: reads the named code files from the workspace (only files inside it; secret files are refused, sizes are capped), sends them with the feature description to the hosted service, and returns the generated test cases (ids and titles) plus the list of files sent (paths and sizes, never content). Run them here with execute_test_case_directly.
    #[tool(annotations(
        title = "Create cloud tests for a feature",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn create_tests_for_specific_feature(
        &self,
        Parameters(p): Parameters<FeatureParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<FeatureOutcome>, String> {
        let root = self.workspace_root(None, &ctx.peer).await?;
        let req = FeatureRequest {
            project_id: p.project_id,
            feature_description: p.feature_description,
            code_files: p.code_files,
            test_types: p.test_types,
            minimum_test_cases: p.minimum_test_cases,
            suite_name: p.suite_name,
            ai_provider: p.ai_provider,
            ai_model: p.ai_model,
        };
        hybrid::create_tests_for_feature(&self.ctx.bridge, &root, req, ctx.ct.clone())
            .await
            .map(Json)
            .map_err(|e| e.to_string())
    }
}

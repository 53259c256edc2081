//! The tool router: one method per MCP tool, each a thin call into `jobs`/`runners`.

use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, RequestMetaObject, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, tool, tool_handler, tool_router};

use super::AppContext;
use super::paths::resolve_project_dir;
use super::render::{DEFAULT_FAILURES, StatusOptions, render_status};
use super::screenshots;
use super::wire::*;
use crate::jobs::{JobStatus, StartSpec, Stream, format_ms, now_ms};
use crate::runners::{self, Framework, RunRequest};
use crate::workspace::{self, ExcludeKind, PackOptions, RootSources, WorkspaceRoot};

const INSTRUCTIONS: &str = "testrelay runs this project's tests (pytest, Jest, Playwright) on the developer's machine as background jobs. \
Call run_tests to start a run: it returns a job_id at once. Then call get_test_execution_status with that job_id and \
wait_seconds (up to 60) until the status is final; failures come first, each with a `selector` you can pass back to \
run_tests `tests` to rerun just that test. cancel_test_execution stops a run and everything it started. \
check_test_environment says what is missing when a run cannot start. \
When a hosted test-management service is connected, hybrid tools may appear: report_test_results sends results \
only after the user has agreed.";

#[derive(Clone)]
pub struct TestRelayServer {
    pub(super) ctx: AppContext,
    tool_router: ToolRouter<Self>,
    hybrid_router: ToolRouter<Self>,
}

fn status_of(view: &crate::jobs::JobView) -> JobStatus {
    view.record.status
}

impl TestRelayServer {
    /// Names of the local tools (an upstream tool never shadows one).
    pub fn local_tool_names() -> std::collections::HashSet<String> {
        Self::tool_router()
            .list_all()
            .into_iter()
            .chain(Self::hybrid_router().list_all())
            .map(|t| t.name.to_string())
            .collect()
    }

    pub fn new(ctx: AppContext) -> Self {
        TestRelayServer {
            ctx,
            tool_router: Self::tool_router(),
            hybrid_router: Self::hybrid_router(),
        }
    }

    /// Connect to the configured cloud servers in the background (once), after the
    /// handshake: never before the first response.
    fn start_bridge(&self, peer: &Peer<RoleServer>) {
        if self.ctx.bridge.configured() {
            self.ctx.bridge.start(peer.clone());
        }
    }

    /// The workspace root for packaging: an explicit path (confined like every tool's),
    /// the configured workspace, the client's roots, the current directory.
    pub(super) async fn workspace_root(
        &self,
        path: Option<&str>,
        peer: &Peer<RoleServer>,
    ) -> Result<WorkspaceRoot, String> {
        let roots = if path.is_none() && self.ctx.workspace.is_none() {
            client_roots(peer).await
        } else {
            Vec::new()
        };
        let explicit = match path {
            Some(path) => Some(self.project_dir(Some(path))?.0),
            None => None,
        };
        let sources = RootSources {
            explicit,
            configured: self.ctx.workspace.clone(),
            roots,
            cwd: std::env::current_dir().ok(),
        };
        workspace::resolve_root(&sources, self.ctx.env.home().as_deref()).map_err(|e| e.to_string())
    }

    pub(super) fn project_dir(
        &self,
        path: Option<&str>,
    ) -> Result<(std::path::PathBuf, Option<std::path::PathBuf>), String> {
        let cwd = std::env::current_dir().ok();
        resolve_project_dir(
            path,
            self.ctx.workspace.as_deref(),
            cwd.as_deref(),
            self.ctx.env.home().as_deref(),
        )
        .map_err(|e| e.to_string())
    }
}

#[tool_router]
impl TestRelayServer {
    /// Check whether this project's tests can run here: detects the test framework from the project's files, finds the project's own toolchain (its virtualenv or node_modules first, then version managers), and checks the framework and, for Playwright, its browsers are installed. For each framework it returns `ready`, the toolchain that would be used, what is missing, and the exact setup commands to run. Call it when run_tests fails to start or reports an error, or before the first run in an unfamiliar project.
    #[tool(annotations(
        title = "Check test environment",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn check_test_environment(
        &self,
        Parameters(p): Parameters<CheckParams>,
    ) -> Result<Json<CheckResult>, String> {
        let (dir, stop) = self.project_dir(p.path.as_deref())?;
        let checks =
            crate::jobs::check_environment(&dir, stop.as_deref(), &self.ctx.env, p.framework).await;
        let ready = !checks.is_empty() && checks.iter().all(|c| c.ready);
        let next_step = if checks.is_empty() {
            format!(
                "no supported test framework detected in {}: point `path` at the project directory, or pass `framework` (supported: {})",
                dir.display(),
                Framework::ALL.map(Framework::name).join(", ")
            )
        } else if ready {
            "ready: call run_tests".into()
        } else {
            "run the setup_commands in the project directory (ask the user first), then check again"
                .into()
        };
        Ok(Json(CheckResult {
            directory: dir.display().to_string(),
            ready,
            frameworks: checks,
            next_step,
        }))
    }

    /// Start a test run in the background and return its job_id immediately (status `queued` or `running`); it never waits for the tests. Runs the whole suite by default, or only the given files, test ids, name filter or markers. Follow it with get_test_execution_status (use wait_seconds to long-poll). At most a few runs execute at once; others queue. Pass an idempotency_key when retrying so a repeated call cannot start the same run twice.
    #[tool(annotations(
        title = "Run tests",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    async fn run_tests(
        &self,
        Parameters(p): Parameters<RunTestsParams>,
    ) -> Result<Json<RunTestsResult>, String> {
        let (dir, stop) = self.project_dir(p.path.as_deref())?;
        let framework = runners::choose(&dir, p.framework).map_err(|e| e.to_string())?;
        let timeout = p
            .timeout_seconds
            .map(|s| Duration::from_secs(s.clamp(1, 3600)));
        let request = RunRequest {
            tests: p.tests.unwrap_or_default(),
            keyword: p.keyword.filter(|k| !k.trim().is_empty()),
            markers: p.markers.filter(|m| !m.trim().is_empty()),
            extra_args: p.extra_args.unwrap_or_default(),
            env: p.env.unwrap_or_default(),
        };
        let spec = StartSpec {
            framework,
            project_dir: dir,
            stop_at: stop,
            request,
            timeout,
            idempotency_key: p.idempotency_key.filter(|k| !k.is_empty()),
            env: self.ctx.env.clone(),
            cloud_test_case_id: None,
        };
        let started = self.ctx.registry.start(spec).map_err(|e| e.to_string())?;
        let r = started.record;
        Ok(Json(RunTestsResult {
            next_step: format!(
                "call get_test_execution_status with job_id={} and wait_seconds=30",
                r.id
            ),
            job_id: r.id.to_string(),
            status: r.status,
            framework: r.framework,
            project_dir: r.project_dir.display().to_string(),
            command: r.command,
            toolchain: r.toolchain,
            reused: started.reused,
        }))
    }

    /// Get a test run's status: queued/running/passed/failed/error/timed_out/cancelled/interrupted, progress (tests done of total), summary counts, and failures first (files that failed to import, then failed tests, each with message, trimmed traceback, file, line, a `selector` to rerun it and the paths of saved attachments such as screenshots), plus the last lines of output. Pass wait_seconds (up to 60) to wait for the run to finish instead of polling quickly. Page through many failures with failures_offset. For browser tests, include_screenshots=true adds the failure screenshots as images.
    #[tool(
        // The answer may carry image blocks besides the structured status, so the tool
        // returns a CallToolResult; its schema is still StatusResult's.
        output_schema = rmcp::handler::server::tool::schema_for_output::<StatusResult>(),
        annotations(
        title = "Get test run status",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn get_test_execution_status(
        &self,
        Parameters(p): Parameters<StatusParams>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, String> {
        let registry = &self.ctx.registry;
        let wait = Duration::from_secs(p.wait_seconds.unwrap_or(0).min(60));
        let view = registry.view(&p.job_id).map_err(|e| e.to_string())?;
        if !wait.is_zero() && !status_of(&view).is_terminal() {
            let token = meta.get_progress_token();
            if let Some(mut rx) = registry.subscribe(&p.job_id) {
                let deadline = tokio::time::Instant::now() + wait;
                loop {
                    let snap = rx.borrow_and_update().clone();
                    if snap.status.is_terminal() {
                        break;
                    }
                    if let Some(token) = &token {
                        let mut note = ProgressNotificationParam::new(
                            token.clone(),
                            snap.progress.done as f64,
                        );
                        if let Some(total) = snap.progress.total {
                            note = note.with_total(total as f64);
                        }
                        let msg = match &snap.progress.current_file {
                            Some(f) => format!(
                                "{} tests done, {} failed; running {f}",
                                snap.progress.done, snap.progress.failed
                            ),
                            None => format!(
                                "{} tests done, {} failed",
                                snap.progress.done, snap.progress.failed
                            ),
                        };
                        let _ = peer.notify_progress(note.with_message(msg)).await;
                    }
                    tokio::select! {
                        changed = rx.changed() => if changed.is_err() { break },
                        _ = tokio::time::sleep_until(deadline) => break,
                    }
                }
            }
        }
        let view = registry.view(&p.job_id).map_err(|e| e.to_string())?;
        let opts = StatusOptions {
            failures_offset: p.failures_offset.unwrap_or(0),
            failures_limit: p.failures_limit.unwrap_or(DEFAULT_FAILURES),
            include_output: p.include_output.unwrap_or(false),
        };
        let mut status = render_status(&view, opts);
        let mut images = Vec::new();
        if p.include_screenshots.unwrap_or(false) {
            (status.screenshots, images) = screenshots::collect(&view.dir, &status.failures);
        }
        let value = serde_json::to_value(&status)
            .map_err(|e| format!("failed to serialize the status: {e}"))?;
        let mut result = CallToolResult::structured(value);
        result.content.extend(images);
        Ok(result)
    }

    /// Stop a test run and every process it started (browsers, servers, child processes), waiting until it has stopped. The runner first gets a chance to stop cleanly, then is killed. Results of tests that finished before the stop are kept and returned, like get_test_execution_status.
    #[tool(annotations(
        title = "Cancel test run",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn cancel_test_execution(
        &self,
        Parameters(p): Parameters<JobIdParams>,
    ) -> Result<Json<StatusResult>, String> {
        let view = self
            .ctx
            .registry
            .cancel(&p.job_id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Json(render_status(&view, StatusOptions::default())))
    }

    /// List recent test runs, newest first, including runs from earlier sessions (they survive a restart; a run that was going when testrelay stopped shows as `interrupted`). Each entry has the job_id, status, selection, timing and summary counts.
    #[tool(annotations(
        title = "List test runs",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn list_test_executions(
        &self,
        Parameters(p): Parameters<ListParams>,
    ) -> Result<Json<ListResult>, String> {
        let limit = p.limit.unwrap_or(20).clamp(1, 100);
        let records = self.ctx.registry.list(usize::MAX).await;
        let now = now_ms();
        let jobs = records
            .into_iter()
            .filter(|r| p.status.is_none_or(|s| s == r.status))
            .take(limit)
            .map(|r| {
                let q = &r.request;
                let mut parts: Vec<String> = q.tests.clone();
                if let Some(k) = &q.keyword {
                    parts.push(format!("-k {k}"));
                }
                if let Some(m) = &q.markers {
                    parts.push(format!("-m {m}"));
                }
                JobListItem {
                    job_id: r.id.to_string(),
                    status: r.status,
                    duration_ms: r.duration_ms(now),
                    reason: r.reason,
                    framework: r.framework,
                    project_dir: r.project_dir.display().to_string(),
                    selection: (!parts.is_empty()).then(|| parts.join(" ")),
                    created_at: format_ms(r.created_at_ms),
                    summary: r.summary,
                }
            })
            .collect();
        Ok(Json(ListResult { jobs }))
    }

    /// Show exactly what a workspace package (the ZIP of the codebase sent for analysis) would contain, without creating or sending anything: file count, bytes, estimated tokens, the biggest top-level folders, every file left out as a secret (path and reason, never its content), counts of other exclusions, and the file listing, paged. Follows .gitignore (every level), .git/info/exclude, .testrelayignore and built-in excludes (node_modules, virtualenvs, build output, caches). Call it before packaging so the user can see what would leave the machine.
    #[tool(annotations(
        title = "Preview workspace package",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn preview_workspace_package(
        &self,
        Parameters(p): Parameters<PreviewParams>,
        peer: Peer<RoleServer>,
    ) -> Result<Json<PreviewResult>, String> {
        // A given path obeys the same rule as every tool's: inside the workspace.
        let root = self.workspace_root(p.path.as_deref(), &peer).await?;
        let opts = PackOptions {
            include: p.include.unwrap_or_default(),
            exclude: p.exclude.unwrap_or_default(),
            ..PackOptions::default()
        };
        let scan_root = root.clone();
        let listing = tokio::task::spawn_blocking(move || workspace::scan(&scan_root, &opts))
            .await
            .map_err(|e| format!("failed to scan the workspace: {e}"))?
            .map_err(|e| e.to_string())?;
        let offset = p.offset.unwrap_or(0).min(listing.files.len());
        let limit = p.limit.unwrap_or(100).clamp(1, 1000);
        let page: Vec<PreviewFile> = listing
            .files
            .iter()
            .skip(offset)
            .take(limit)
            .map(|f| PreviewFile {
                path: f.path.clone(),
                bytes: f.size,
                est_tokens: f.est_tokens,
            })
            .collect();
        let next = (offset + page.len() < listing.files.len()).then_some(offset + page.len());
        let mut excluded_other = std::collections::BTreeMap::new();
        let mut excluded_secrets = Vec::new();
        for e in &listing.excluded {
            if e.kind == ExcludeKind::Secret {
                excluded_secrets.push(PreviewExcluded {
                    path: e.path.clone(),
                    reason: e.reason.clone(),
                });
            } else {
                let kind = serde_json::to_value(e.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                *excluded_other.entry(kind).or_insert(0) += 1;
            }
        }
        Ok(Json(PreviewResult {
            root: root.path().display().to_string(),
            files: listing.files.len(),
            bytes: listing.total_bytes,
            est_tokens: listing.est_tokens,
            top_folders: listing
                .top_dirs
                .iter()
                .take(10)
                .map(|(path, bytes)| PreviewFolder {
                    path: path.clone(),
                    bytes: *bytes,
                })
                .collect(),
            excluded_secrets,
            excluded_other,
            listing: page,
            listing_offset: offset,
            next_offset: next,
        }))
    }

    /// Check the connection to the hosted test-management service: whether a cloud server is configured, which credential store holds the credential, whether the server is reachable and accepts the credential, the upstream server's name and version, and how many of its tools are available here. When something is wrong it says what to do next. With `sign_in: true` it also opens the sign-in page in the user's browser for servers that are not signed in, waits for the user, and returns the sign-in URL to show them (a call to a cloud tool whose sign-in was revoked does the same by itself). Local tools work without any cloud.
    #[tool(annotations(
        title = "Test cloud connection",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn test_connection(
        &self,
        Parameters(p): Parameters<ConnectionParams>,
    ) -> Result<Json<ConnectionResult>, String> {
        let bridge = &self.ctx.bridge;
        if !bridge.configured() {
            let next_step = match &self.ctx.cloud_error {
                Some(e) => format!("the cloud configuration is invalid: {e}"),
                None => "no cloud server is configured; local tools work offline. To connect, add `--server URL` to testrelay's args in the IDE's MCP config (or set TESTRELAY_SERVER), then ask the user to run `testrelay login URL --api-key-stdin` in a terminal".into(),
            };
            return Ok(Json(ConnectionResult {
                configured: false,
                credential_store: None,
                servers: Vec::new(),
                config_error: self.ctx.cloud_error.clone(),
                sign_in: Vec::new(),
                next_step,
            }));
        }
        let mut servers = bridge.report(true).await;
        let mut sign_in = Vec::new();
        if p.sign_in.unwrap_or(false) {
            let wait = Duration::from_secs(p.wait_seconds.unwrap_or(60).min(120));
            sign_in = bridge.sign_in_from_ide(wait).await;
            servers = bridge.report(false).await;
        }
        let store = {
            let b = bridge.clone();
            tokio::task::spawn_blocking(move || b.credential_store())
                .await
                .ok()
        };
        let all_ok = servers
            .iter()
            .all(|s| s.state == crate::cloud::ConnState::Connected);
        let waiting: Vec<String> = sign_in
            .iter()
            .filter(|r| r.state == "waiting")
            .filter_map(|r| {
                r.url.as_ref().map(|u| {
                    format!(
                        "ask the user to sign in to {} at {u}, then call test_connection again",
                        r.server
                    )
                })
            })
            .collect();
        let next_step = if all_ok {
            "connected: the cloud tools are listed next to the local ones".into()
        } else if !waiting.is_empty() {
            waiting.join("; ")
        } else {
            servers
                .iter()
                .filter_map(|s| s.next_step.clone())
                .collect::<Vec<_>>()
                .join("; ")
        };
        Ok(Json(ConnectionResult {
            configured: true,
            credential_store: store,
            servers,
            config_error: None,
            sign_in,
            next_step,
        }))
    }

    /// Read a test run's raw output (stdout or stderr), paged by byte offset, optionally keeping only lines that contain a filter text. Use it when the status' log_tail is not enough, e.g. to find a warning or a full traceback.
    #[tool(annotations(
        title = "Read test run output",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn get_test_execution_output(
        &self,
        Parameters(p): Parameters<OutputParams>,
    ) -> Result<Json<OutputResult>, String> {
        let stream = p.stream.unwrap_or(Stream::Stdout);
        let limit = p.limit_bytes.unwrap_or(16 * 1024).clamp(1, 64 * 1024);
        let page = self
            .ctx
            .registry
            .output(
                &p.job_id,
                stream,
                p.offset.unwrap_or(0),
                limit,
                p.filter.as_deref(),
            )
            .map_err(|e| e.to_string())?;
        Ok(Json(OutputResult {
            job_id: p.job_id.trim().to_string(),
            stream,
            page,
        }))
    }
}

/// The client's workspace folders, when it declared the roots capability and the session
/// allows server requests (roots are deprecated and refused on protocol 2026-07-28).
#[allow(deprecated)]
async fn client_roots(peer: &Peer<RoleServer>) -> Vec<std::path::PathBuf> {
    let declared = peer
        .peer_info()
        .is_some_and(|i| i.capabilities.roots.is_some());
    if !declared {
        return Vec::new();
    }
    match tokio::time::timeout(Duration::from_secs(3), peer.list_roots()).await {
        Ok(Ok(list)) => list
            .roots
            .into_iter()
            .filter_map(|r| url::Url::parse(&r.uri).ok()?.to_file_path().ok())
            .collect(),
        _ => Vec::new(),
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TestRelayServer {
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.start_bridge(&context.peer);
        let mut tools = self.tool_router.list_all();
        // A hybrid tool is listed only while the cloud offers what it calls.
        for tool in self.hybrid_router.list_all() {
            if self
                .ctx
                .bridge
                .offers(super::hybrid::required_upstream_tools(&tool.name))
                .await
            {
                tools.push(tool);
            }
        }
        tools.extend(self.ctx.bridge.tools().await);
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Before any tool runs: test_connection may come before rmcp has run the
        // `initialized` handler, and must find the bridge's own connection attempt.
        self.start_bridge(&context.peer);
        if self.tool_router.has_route(&request.name) {
            return self
                .tool_router
                .call(ToolCallContext::new(self, request, context))
                .await;
        }
        if self.hybrid_router.has_route(&request.name) {
            let needs = super::hybrid::required_upstream_tools(&request.name);
            if !self.ctx.bridge.offers(needs).await {
                return Ok(CallToolResponse::Complete(CallToolResult::error(vec![
                    rmcp::model::ContentBlock::text(format!(
                        "{} needs a connected cloud server offering {}; call test_connection to see why it is not available",
                        request.name,
                        needs.join(", ")
                    )),
                ])));
            }
            return self
                .hybrid_router
                .call(ToolCallContext::new(self, request, context))
                .await;
        }
        let progress = context.meta.get_progress_token();
        match self
            .ctx
            .bridge
            .call(request, progress, context.ct.clone())
            .await
        {
            Some(result) => Ok(CallToolResponse::Complete(result)),
            None => Err(ErrorData::invalid_params("tool not found", None)),
        }
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.start_bridge(&context.peer);
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(
            Implementation::new("testrelay", env!("CARGO_PKG_VERSION"))
                .with_title("testrelay")
                .with_description(
                    "Runs the project's tests as background jobs and returns structured results",
                ),
        )
        .with_instructions(INSTRUCTIONS)
    }
}

//! The hybrid tools against a fake hosted service that implements the cloud contract
//! (`docs/cloud-contract.md`) in memory: what the uploaded ZIP holds (no secrets), a failed
//! chunk retried once, reports refused without confirmation, a report failing midway
//! finished later without duplicates, and hybrid tools hidden when the contract is missing.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest, ContentBlock,
    ServerCapabilities, ServerConfig, ServerResult,
};
use rmcp::service::PeerRequestOptions;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest;

use crate::cloud::{GOOD_KEY, Ide, login, serve_behind_key, text};
use crate::support::{BIN, assert_snapshot, fixture_venv};

/// What the fake service holds, and the failures it is told to inject.
#[derive(Default)]
struct Cloud {
    /// Serve the contract tools at all.
    contract: bool,
    /// Fail the first attempt of chunk 0.
    fail_first_chunk: bool,
    chunk_calls: usize,
    uploads: HashMap<String, BTreeMap<u64, Vec<u8>>>,
    /// ZIP listing of each created project's upload.
    projects: Vec<(String, Vec<String>)>,
    /// Fail the n-th update_execution_progress call (1-based), once.
    fail_update_call: Option<usize>,
    update_calls: usize,
    registrations: usize,
    /// client_run_id → execution id.
    by_client_run: HashMap<String, String>,
    /// execution id → (test case → status, notes, screenshot bytes), completed.
    executions: HashMap<String, (CaseResults, bool)>,
    /// The code files generate_tests_for_feature received.
    feature_files: Vec<Value>,
    /// How many update calls were accepted for each (execution, case).
    accepted: HashMap<(String, String), usize>,
}

type Shared = Arc<Mutex<Cloud>>;
/// test case → (status, notes, screenshot bytes).
type CaseResults = BTreeMap<String, (String, Option<String>, usize)>;

#[derive(Clone)]
struct FakeContract {
    cloud: Shared,
    tool_router: ToolRouter<Self>,
}

fn ok(v: Value) -> CallToolResult {
    CallToolResult::structured(v)
}

fn fail(msg: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(msg.to_string())])
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ChunkArgs {
    upload_id: String,
    index: u64,
    count: u64,
    data: String,
    sha256: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ProjectArgs {
    upload_id: String,
    name: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct RegisterArgs {
    project_id: String,
    client_run_id: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct UpdateArgs {
    execution_id: String,
    test_case_id: String,
    status: String,
    notes: Option<String>,
    screenshot_base64: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct CompleteArgs {
    execution_id: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Anything {}

#[derive(Deserialize, schemars::JsonSchema)]
struct FeatureArgs {
    project_id: String,
    code_files: Vec<Value>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ScriptArgs {
    test_case_id: String,
    framework: String,
}

#[tool_router]
impl FakeContract {
    /// Upload one chunk of the workspace archive.
    #[tool]
    async fn upload_codebase_chunk(&self, Parameters(a): Parameters<ChunkArgs>) -> CallToolResult {
        let mut c = self.cloud.lock().unwrap();
        c.chunk_calls += 1;
        if c.fail_first_chunk && a.index == 0 && c.chunk_calls == 1 {
            return fail("storage hiccup, try again");
        }
        let Ok(data) = base64::engine::general_purpose::STANDARD.decode(&a.data) else {
            return fail("invalid base64");
        };
        if data.len() > 1024 * 1024 || a.index >= a.count {
            return fail("chunk too large or index out of range");
        }
        let chunks = c.uploads.entry(a.upload_id.clone()).or_default();
        chunks.insert(a.index, data);
        let received = chunks.len() as u64;
        if received == a.count {
            let whole: Vec<u8> = chunks.values().flatten().copied().collect();
            let digest: String = sha2::Sha256::digest(&whole)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if a.sha256.as_deref() != Some(digest.as_str()) {
                return fail("sha256 mismatch");
            }
        }
        ok(json!({"upload_id": a.upload_id, "received": received, "complete": received == a.count}))
    }

    /// Create a project from a completed upload.
    #[tool]
    async fn create_project_from_codebase(
        &self,
        Parameters(a): Parameters<ProjectArgs>,
    ) -> CallToolResult {
        let mut c = self.cloud.lock().unwrap();
        let Some(chunks) = c.uploads.get(&a.upload_id) else {
            return fail("unknown upload");
        };
        let whole: Vec<u8> = chunks.values().flatten().copied().collect();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(whole)).expect("a ZIP");
        let mut names = Vec::new();
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).unwrap();
            let mut s = String::new();
            let _ = f.read_to_string(&mut s);
            names.push(f.name().unwrap().to_string());
            assert!(!s.contains("sk_live_"), "a secret reached the cloud");
        }
        let id = format!("proj-{}", c.projects.len() + 1);
        c.projects.push((id.clone(), names));
        ok(json!({"project_id": id, "name": a.name, "status": "analyzing", "test_cases": 0}))
    }

    /// Open a run of client results.
    #[tool]
    async fn register_client_execution(
        &self,
        Parameters(a): Parameters<RegisterArgs>,
    ) -> CallToolResult {
        let mut c = self.cloud.lock().unwrap();
        c.registrations += 1;
        let key = format!("{}/{}", a.project_id, a.client_run_id);
        let next = format!("exec-{}", c.by_client_run.len() + 1);
        let id = c.by_client_run.entry(key).or_insert(next).clone();
        c.executions.entry(id.clone()).or_default();
        ok(json!({"execution_id": id}))
    }

    /// Record one test case's result.
    #[tool]
    async fn update_execution_progress(
        &self,
        Parameters(a): Parameters<UpdateArgs>,
    ) -> CallToolResult {
        let mut c = self.cloud.lock().unwrap();
        c.update_calls += 1;
        if c.fail_update_call == Some(c.update_calls) {
            c.fail_update_call = None;
            return fail("the service is restarting");
        }
        let shot = a
            .screenshot_base64
            .map(|s| {
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .unwrap()
                    .len()
            })
            .unwrap_or(0);
        let Some((cases, done)) = c.executions.get_mut(&a.execution_id) else {
            return fail("unknown execution");
        };
        if *done {
            return fail("execution already completed");
        }
        cases.insert(a.test_case_id.clone(), (a.status, a.notes, shot));
        *c.accepted
            .entry((a.execution_id, a.test_case_id))
            .or_default() += 1;
        ok(json!({"recorded": true}))
    }

    /// Close a run.
    #[tool]
    async fn complete_client_execution(
        &self,
        Parameters(a): Parameters<CompleteArgs>,
    ) -> CallToolResult {
        let mut c = self.cloud.lock().unwrap();
        let Some((_, done)) = c.executions.get_mut(&a.execution_id) else {
            return fail("unknown execution");
        };
        *done = true;
        ok(
            json!({"execution_id": a.execution_id, "status": "completed", "url": "https://cloud.example/runs/1"}),
        )
    }

    /// A pytest script for any case: it fails with a known message.
    #[tool]
    async fn get_test_script_for_execution(
        &self,
        Parameters(a): Parameters<ScriptArgs>,
    ) -> CallToolResult {
        if a.framework != "pytest" {
            return fail("no script for that framework");
        }
        ok(json!({
            "script": format!("def test_checkout():\n    assert False, 'cart empty for {}'\n", a.test_case_id),
            "filename": "test_checkout.py",
        }))
    }

    /// Generates one test case per code file; remembers the files it got.
    #[tool]
    async fn generate_tests_for_feature(
        &self,
        Parameters(a): Parameters<FeatureArgs>,
    ) -> CallToolResult {
        let mut c = self.cloud.lock().unwrap();
        c.feature_files = a.code_files.clone();
        let cases: Vec<Value> = a
            .code_files
            .iter()
            .enumerate()
            .map(|(i, f)| json!({"test_case_id": format!("TC-{}", 100 + i), "title": format!("covers {}", f["path"])}))
            .collect();
        ok(json!({"suite_id": format!("{}-suite", a.project_id), "test_cases": cases}))
    }

    /// Starts offering the contract tools and says so.
    #[tool]
    async fn enable_contract(&self, peer: rmcp::Peer<rmcp::RoleServer>) -> String {
        self.cloud.lock().unwrap().contract = true;
        let _ = peer.notify_tool_list_changed().await;
        "enabled".into()
    }

    /// Something every server has.
    #[tool]
    async fn list_projects(&self, Parameters(_a): Parameters<Anything>) -> String {
        "none".into()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for FakeContract {
    async fn list_tools(
        &self,
        _r: Option<rmcp::model::PaginatedRequestParams>,
        _c: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, rmcp::ErrorData> {
        let contract = self.cloud.lock().unwrap().contract;
        let tools = self
            .tool_router
            .list_all()
            .into_iter()
            .filter(|t| contract || t.name == "list_projects" || t.name == "enable_contract")
            .collect();
        Ok(rmcp::model::ListToolsResult::with_all_items(tools))
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(rmcp::model::Implementation::new("fake-contract", "1.0.0"))
    }
}

async fn fake_contract(cloud: Shared) -> String {
    serve_behind_key(move || FakeContract {
        cloud: cloud.clone(),
        tool_router: FakeContract::tool_router(),
    })
    .await
}

struct Setup {
    cloud: Shared,
    url: String,
    home: tempfile::TempDir,
    state: tempfile::TempDir,
}

async fn setup(contract: bool) -> Setup {
    let cloud: Shared = Arc::new(Mutex::new(Cloud {
        contract,
        ..Cloud::default()
    }));
    let url = fake_contract(cloud.clone()).await;
    let home = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = login(home.path(), &url, GOOD_KEY);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    Setup {
        cloud,
        url,
        home,
        state,
    }
}

struct Session {
    client: rmcp::service::RunningService<RoleClient, Ide>,
    ide: Ide,
}

impl Setup {
    async fn serve(&self, workspace: &std::path::Path) -> Session {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(["--server", &self.url, "--credential-store", "file"])
            .arg("--workspace")
            .arg(workspace)
            .env("XDG_CONFIG_HOME", self.home.path())
            .env("TESTRELAY_STATE_DIR", self.state.path())
            .env_remove("VIRTUAL_ENV");
        let (transport, _) = TokioChildProcess::builder(cmd)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ide = Ide::default();
        let client = ide.clone().serve(transport).await.unwrap();
        Session { client, ide }
    }

    /// `testrelay <args>` with this setup's config, state and server.
    fn cli(&self, args: &[&str], workspace: &std::path::Path) -> std::process::Output {
        std::process::Command::new(BIN)
            .args(args)
            .args(["--server", &self.url, "--credential-store", "file"])
            .arg("--workspace")
            .arg(workspace)
            .env("XDG_CONFIG_HOME", self.home.path())
            .env("TESTRELAY_STATE_DIR", self.state.path())
            .env_remove("VIRTUAL_ENV")
            .output()
            .unwrap()
    }
}

impl Session {
    async fn names(&self) -> Vec<String> {
        self.client
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    /// Tool names once `expected` is listed (bounded wait).
    async fn tools_with(&self, expected: &str) -> Vec<String> {
        for _ in 0..50 {
            let names = self.names().await;
            if names.iter().any(|n| n == expected) {
                return names;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.ide.changed.notified()).await;
        }
        panic!("tool {expected} never appeared");
    }

    async fn call(&self, name: &str, args: Value) -> CallToolResult {
        let params = CallToolRequestParams::new(name.to_string())
            .with_arguments(args.as_object().cloned().unwrap_or_default());
        self.client.call_tool(params).await.unwrap()
    }
}

/// Every hybrid tool the fake offers the contract for: a real description, an output
/// schema, annotations; the whole definition snapshotted so drift shows in review.
async fn snapshot_hybrid_tools(session: &Session) {
    let mut tools: Vec<rmcp::model::Tool> = session
        .client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .filter(|t| {
            [
                "create_project_from_current_codebase",
                "report_test_results",
                "execute_test_case_directly",
                "create_tests_for_specific_feature",
            ]
            .contains(&t.name.as_ref())
        })
        .collect();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    for t in &tools {
        assert!(
            t.description.as_deref().is_some_and(|d| d.len() > 80),
            "{} needs a real description",
            t.name
        );
        assert!(t.output_schema.is_some(), "{} has no output schema", t.name);
        assert!(t.annotations.is_some(), "{} has no annotations", t.name);
    }
    assert_snapshot(
        "hybrid-tools.json",
        &(serde_json::to_string_pretty(&tools).unwrap() + "\n"),
    );
}

fn workspace_with_a_secret() -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    let w = ws.path();
    std::fs::create_dir_all(w.join("src")).unwrap();
    std::fs::create_dir_all(w.join("node_modules/left-pad")).unwrap();
    std::fs::write(w.join("src/app.py"), "def add(a, b):\n    return a + b\n").unwrap();
    std::fs::write(w.join("README.md"), "# demo\n").unwrap();
    std::fs::write(w.join(".env"), "STRIPE_KEY=sk_live_0123456789abcdef\n").unwrap();
    std::fs::write(
        w.join("node_modules/left-pad/index.js"),
        "module.exports = 1;\n",
    )
    .unwrap();
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_project_uploads_the_workspace_without_secrets_and_retries_a_chunk() {
    let s = setup(true).await;
    s.cloud.lock().unwrap().fail_first_chunk = true;
    let ws = workspace_with_a_secret();
    let session = s.serve(ws.path()).await;
    let names = session
        .tools_with("create_project_from_current_codebase")
        .await;
    assert!(
        names.contains(&"report_test_results".to_string()),
        "{names:?}"
    );
    snapshot_hybrid_tools(&session).await;

    // With a progress token, as an IDE showing a progress bar sends it.
    let args = json!({"name": "demo", "description": "adds numbers", "minimum_test_cases": 3});
    let handle = session
        .client
        .send_request_with_option(
            ClientRequest::CallToolRequest(CallToolRequest::new(
                CallToolRequestParams::new("create_project_from_current_codebase")
                    .with_arguments(args.as_object().cloned().unwrap()),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let ServerResult::CallToolResult(r) = handle.await_response().await.unwrap() else {
        panic!("not a tool result");
    };
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let v = r.structured_content.clone().unwrap();
    assert_eq!(v["project"]["project_id"], "proj-1", "{v}");
    assert_eq!(v["files"], 2, "{v}");
    assert_eq!(v["chunks"], 1);
    assert_eq!(v["retried_chunks"], 1, "the failed chunk was retried once");
    assert_eq!(v["excluded_secrets"][0]["path"], ".env", "{v}");
    assert!(!v.to_string().contains("sk_live_"), "{v}");

    {
        let cloud = s.cloud.lock().unwrap();
        assert_eq!(cloud.chunk_calls, 2);
        let listing = &cloud.projects[0].1;
        assert_eq!(
            listing,
            &vec!["README.md".to_string(), "src/app.py".to_string()]
        );
    }

    // Progress notifications arrive asynchronously; wait for them (bounded).
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen = session
            .ide
            .progress
            .lock()
            .await
            .iter()
            .filter(|p| p.progress_token == token)
            .map(|p| p.progress)
            .collect();
        if seen.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Packaging started, packaged, chunk 1 uploaded; progress only increases.
    assert_eq!(seen, vec![0.0, 1.0, 2.0], "progress: {seen:?}");
    session.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_tools_are_absent_when_the_cloud_lacks_the_contract() {
    let s = setup(false).await;
    let ws = workspace_with_a_secret();
    let session = s.serve(ws.path()).await;
    let names = session.tools_with("list_projects").await;
    for hybrid in [
        "create_project_from_current_codebase",
        "report_test_results",
        "execute_test_case_directly",
        "create_tests_for_specific_feature",
    ] {
        assert!(
            !names.contains(&hybrid.to_string()),
            "{hybrid} listed: {names:?}"
        );
    }
    let r = session
        .call("create_project_from_current_codebase", json!({"name": "x"}))
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("test_connection"), "{}", text(&r));

    // The upstream starts offering the contract: the IDE is told and the tools appear.
    session.call("enable_contract", json!({})).await;
    let names = session
        .tools_with("create_project_from_current_codebase")
        .await;
    assert!(names.contains(&"report_test_results".to_string()));
    session.client.cancel().await.unwrap();
}

/// A pytest project whose tests carry cloud case ids (one passes, one fails) plus one
/// without an id.
fn project_with_cases() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("tests")).unwrap();
    std::fs::write(
        p.join("tests/test_cases.py"),
        "def test_tc_1_login():\n    assert True\n\n\
         def test_tc_2_checkout():\n    assert 1 + 1 == 3, 'total is wrong'\n\n\
         def test_unmapped():\n    assert True\n",
    )
    .unwrap();
    std::fs::write(p.join("pytest.ini"), "[pytest]\n").unwrap();
    std::os::unix::fs::symlink(fixture_venv(), p.join(".venv")).unwrap();
    dir
}

async fn finished_job(session: &Session) -> String {
    let r = session.call("run_tests", json!({})).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let job = r.structured_content.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_failed(session, &job).await;
    job
}

/// Wait for the job to end; it must have failed.
async fn wait_failed(session: &Session, job: &str) {
    for _ in 0..10 {
        let st = session
            .call(
                "get_test_execution_status",
                json!({"job_id": job, "wait_seconds": 30}),
            )
            .await;
        let v = st.structured_content.unwrap();
        if v["status"] == "failed" || v["status"] == "passed" {
            assert_eq!(v["status"], "failed", "{v}");
            return;
        }
    }
    panic!("the run never finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_needs_confirmation_and_resumes_without_duplicates() {
    let s = setup(true).await;
    let project = project_with_cases();
    let session = s.serve(project.path()).await;
    session.tools_with("report_test_results").await;
    let job = finished_job(&session).await;
    let args = json!({"job_id": job, "project_id": "proj-9", "run_name": "local"});

    // The CLI without --confirm previews the same cases and sends nothing.
    let out = s.cli(
        &["cloud", "report", &job, "--project", "proj-9"],
        project.path(),
    );
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("TC-2 failed") && said.contains("nothing was sent"),
        "{said}"
    );

    // Without confirmation: a preview, nothing sent.
    let r = session.call("report_test_results", args.clone()).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let v = r.structured_content.unwrap();
    assert_eq!(v["status"], "needs_confirmation", "{v}");
    assert_eq!(v["cases"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["unmapped_tests"], 1);
    let failed = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["test_case_id"] == "TC-2")
        .unwrap();
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["notes"].as_str().unwrap().contains("total is wrong"),
        "{failed}"
    );
    assert_eq!(
        s.cloud.lock().unwrap().registrations,
        0,
        "sent without confirmation"
    );

    // Confirmed, but the service fails on the second case: kept in the outbox.
    s.cloud.lock().unwrap().fail_update_call = Some(2);
    let mut confirmed = args.clone();
    confirmed["confirm"] = json!(true);
    let r = session.call("report_test_results", confirmed.clone()).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("outbox"), "{}", text(&r));
    assert!(!s.cloud.lock().unwrap().executions["exec-1"].1);

    // `testrelay sync` finishes it; nothing is sent twice.
    let out = s.cli(&["sync"], project.path());
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    {
        let c = s.cloud.lock().unwrap();
        let (cases, done) = &c.executions["exec-1"];
        assert!(done, "the run was completed");
        assert_eq!(cases.len(), 2);
        assert_eq!(cases["TC-2"].0, "failed");
        assert!(c.accepted.values().all(|n| *n == 1), "{:?}", c.accepted);
        assert_eq!(c.executions.len(), 1);
    }

    // Reporting again changes nothing.
    let r = session.call("report_test_results", confirmed).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert_eq!(r.structured_content.unwrap()["status"], "already_reported");
    {
        let c = s.cloud.lock().unwrap();
        assert!(c.accepted.values().all(|n| *n == 1), "{:?}", c.accepted);
    }
    session.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_test_case_runs_the_script_as_a_job_and_reports_to_its_case() {
    let s = setup(true).await;
    let project = project_with_cases();
    // A user file with testrelay's first-choice name: it must survive untouched.
    let mine = project.path().join("test_testrelay_tc_7.py");
    std::fs::write(&mine, "# mine\n").unwrap();
    let session = s.serve(project.path()).await;
    session.tools_with("execute_test_case_directly").await;

    let r = session
        .call(
            "execute_test_case_directly",
            json!({"test_case_id": "TC-7", "framework": "pytest", "timeout": 120}),
        )
        .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let v = r.structured_content.unwrap();
    let script = std::path::PathBuf::from(v["script_path"].as_str().unwrap());
    assert!(script.ends_with("test_testrelay_tc_7_1.py"), "{v}");
    let job = v["job_id"].as_str().unwrap().to_string();
    wait_failed(&session, &job).await;

    let mut gone = false;
    for _ in 0..50 {
        if !script.exists() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the script was not removed after the run");
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "# mine\n");

    // The run's only test maps to the case it executed.
    let r = session
        .call(
            "report_test_results",
            json!({"job_id": job, "project_id": "proj-1", "run_name": "direct", "confirm": true}),
        )
        .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let v = r.structured_content.unwrap();
    assert_eq!(v["status"], "reported", "{v}");
    let c = s.cloud.lock().unwrap();
    let (cases, done) = &c.executions["exec-1"];
    assert!(done);
    assert_eq!(cases["TC-7"].0, "failed");
    assert!(
        cases["TC-7"]
            .1
            .as_deref()
            .unwrap()
            .contains("cart empty for TC-7"),
        "{cases:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feature_tests_get_the_named_files_and_never_secrets() {
    let s = setup(true).await;
    let ws = workspace_with_a_secret();
    let session = s.serve(ws.path()).await;
    session
        .tools_with("create_tests_for_specific_feature")
        .await;
    let base = json!({"project_id": "proj-1", "feature_description": "adding numbers"});

    for refused in [".env", "../outside.py", "node_modules/../../x.py"] {
        let mut args = base.clone();
        args["code_files"] = json!(["src/app.py", refused]);
        let r = session
            .call("create_tests_for_specific_feature", args)
            .await;
        assert_eq!(r.is_error, Some(true), "{refused} was accepted");
    }
    assert!(
        s.cloud.lock().unwrap().feature_files.is_empty(),
        "a refused request was sent"
    );

    let mut args = base.clone();
    args["code_files"] = json!(["src/app.py", "README.md"]);
    let r = session
        .call("create_tests_for_specific_feature", args)
        .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    let v = r.structured_content.unwrap();
    assert_eq!(
        v["generated"]["test_cases"].as_array().unwrap().len(),
        2,
        "{v}"
    );
    assert_eq!(v["files_sent"][0]["path"], "src/app.py");
    let files = s.cloud.lock().unwrap().feature_files.clone();
    assert_eq!(files[0]["path"], "src/app.py");
    assert!(files[0]["content"].as_str().unwrap().contains("def add"));
    session.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_a_project_and_syncs_an_empty_outbox() {
    let s = setup(true).await;
    let ws = workspace_with_a_secret();
    let out = s.cli(&["cloud", "create-project", "--name", "demo"], ws.path());
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("created project proj-1"), "{said}");
    assert!(said.contains("left out .env"), "{said}");
    assert!(!said.contains("sk_live_"), "{said}");
    assert_eq!(s.cloud.lock().unwrap().projects.len(), 1);

    let out = s.cli(
        &["cloud", "report", "no-such-job", "--project", "p"],
        ws.path(),
    );
    assert_eq!(out.status.code(), Some(2));

    let out = s.cli(&["sync"], ws.path());
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("outbox is empty"), "{said}");
}

/// An IDE that can ask the user (MCP elicitation) and answers with `send`.
#[derive(Clone, Default)]
struct AskingIde {
    send: Arc<std::sync::atomic::AtomicBool>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl rmcp::ClientHandler for AskingIde {
    async fn create_elicitation(
        &self,
        request: rmcp::model::ElicitRequestParams,
        _cx: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        if let rmcp::model::ElicitRequestParams::FormElicitationParams { message, .. } = request {
            self.asked.lock().unwrap().push(message);
        }
        use rmcp::model::{ElicitResult, ElicitationAction};
        Ok(if self.send.load(std::sync::atomic::Ordering::SeqCst) {
            ElicitResult::new(ElicitationAction::Accept).with_content(json!({"send": true}))
        } else {
            ElicitResult::new(ElicitationAction::Decline)
        })
    }

    fn get_info(&self) -> rmcp::model::ClientConfig {
        rmcp::model::ClientConfig::new(
            rmcp::model::ClientCapabilities::builder()
                .enable_elicitation()
                .build(),
            rmcp::model::Implementation::new("asking-ide", "1.0.0"),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_can_ask_confirms_the_report_with_the_user() {
    let s = setup(true).await;
    let project = project_with_cases();
    let plain = s.serve(project.path()).await;
    plain.tools_with("report_test_results").await;
    let job = finished_job(&plain).await;
    plain.client.cancel().await.unwrap();

    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["--server", &s.url, "--credential-store", "file"])
        .arg("--workspace")
        .arg(project.path())
        .env("XDG_CONFIG_HOME", s.home.path())
        .env("TESTRELAY_STATE_DIR", s.state.path());
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ide = AskingIde::default();
    let client = ide.clone().serve(transport).await.unwrap();
    let args = json!({"job_id": job, "project_id": "proj-9", "run_name": "asked"});
    let call = |args: Value| {
        let params = CallToolRequestParams::new("report_test_results")
            .with_arguments(args.as_object().cloned().unwrap());
        client.call_tool(params)
    };
    // The bridge connects in the background: wait until the tool is callable.
    let mut r = call(args.clone()).await.unwrap();
    for _ in 0..50 {
        if r.is_error != Some(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        r = call(args.clone()).await.unwrap();
    }
    // The user says no: nothing is sent.
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert_eq!(r.structured_content.unwrap()["status"], "declined");
    assert_eq!(s.cloud.lock().unwrap().registrations, 0);
    let question = ide.asked.lock().unwrap()[0].clone();
    assert!(
        question.contains("proj-9") && question.contains("1 failed"),
        "{question}"
    );

    // The user says yes: sent without a second call.
    ide.send.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = call(args).await.unwrap();
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert_eq!(r.structured_content.unwrap()["status"], "reported");
    assert!(s.cloud.lock().unwrap().executions["exec-1"].1);
    client.cancel().await.unwrap();
}

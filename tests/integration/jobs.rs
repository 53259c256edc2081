//! Job control through MCP: cancel, timeout, queueing, server death and restart. Every
//! run carries a token in its environment, so "no process left" is checked against the
//! whole process table, including processes that escaped into their own session.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    Project, RawServer, processes_with_token, start_server, token, wait_for_file, wait_no_processes,
};

/// `run_tests` arguments for a run of `project` that hangs once it has written its marker
/// file, with the token every one of its processes carries: (token, marker, arguments).
fn hang(project: &Project) -> (String, std::path::PathBuf, Value) {
    let token = token();
    let marker = project.path().join("hang.marker");
    let args = json!({
        "tests": ["tests/test_basic.py", "tests/test_procs.py"],
        "env": {"FX_HANG": "1", "FX_MARKER": marker, "TESTRELAY_TEST_TOKEN": token},
    });
    (token, marker, args)
}

#[tokio::test]
async fn cancel_keeps_finished_results_and_leaves_no_process() {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let (token, marker, args) = hang(&project);
    let started = server.ok("run_tests", args).await;
    wait_for_file(&marker, Duration::from_secs(30));
    assert!(
        processes_with_token(&token).len() >= 3,
        "pytest, its sleep and the leaked sleep should be running"
    );

    let running = server
        .ok(
            "get_test_execution_status",
            json!({"job_id": started["job_id"]}),
        )
        .await;
    assert_eq!(running["status"], "running");
    assert_eq!(running["progress"]["done"], 10);
    assert_eq!(running["progress"]["current_file"], "tests/test_procs.py");

    let cancelled = server
        .ok(
            "cancel_test_execution",
            json!({"job_id": started["job_id"]}),
        )
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["summary"]["total"], 10, "{cancelled}");
    assert_eq!(cancelled["failures_total"], 2);
    let left = processes_with_token(&token);
    assert!(
        left.is_empty(),
        "processes left after cancel returned: {left:?}"
    );
}

#[tokio::test]
async fn a_timed_out_run_leaves_no_process() {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let (token, _marker, mut args) = hang(&project);
    args["timeout_seconds"] = json!(3);
    let started = server.ok("run_tests", args).await;
    let done = server.wait_final(started["job_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "timed_out");
    assert!(
        done["reason"]
            .as_str()
            .unwrap()
            .starts_with("timed out after 3s; 10 tests finished"),
        "{done}"
    );
    assert!(processes_with_token(&token).is_empty());
}

#[tokio::test]
async fn runs_beyond_the_limit_wait_in_the_queue() {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();

    let mut cmd = tokio::process::Command::new(crate::support::BIN);
    cmd.env("TESTRELAY_STATE_DIR", state.path())
        .env("TESTRELAY_MAX_JOBS", "1")
        .arg("--workspace")
        .arg(project.path());
    let (transport, _) = rmcp::transport::TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = rmcp::ServiceExt::serve((), transport).await.unwrap();
    let server = crate::support::Server { client, pid: 0 };

    let (_token, marker, args) = hang(&project);
    let first = server.ok("run_tests", args).await;
    wait_for_file(&marker, Duration::from_secs(30));
    let second = server
        .ok(
            "run_tests",
            json!({"tests": ["tests/test_basic.py::test_passes"]}),
        )
        .await;
    assert_eq!(second["status"], "queued");
    let still = server
        .ok(
            "get_test_execution_status",
            json!({"job_id": second["job_id"], "wait_seconds": 1}),
        )
        .await;
    assert_eq!(still["status"], "queued");
    server
        .ok("cancel_test_execution", json!({"job_id": first["job_id"]}))
        .await;
    let done = server.wait_final(second["job_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "passed");
}

#[tokio::test]
async fn killing_the_server_kills_the_run_and_a_restart_marks_it_interrupted() {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let quick = server
        .ok(
            "run_tests",
            json!({"tests": ["tests/test_basic.py::test_passes"]}),
        )
        .await;
    server.wait_final(quick["job_id"].as_str().unwrap()).await;

    let (token, marker, args) = hang(&project);
    let hanging = server.ok("run_tests", args).await;
    wait_for_file(&marker, Duration::from_secs(30));
    nix_kill9(server.pid);
    let left = wait_no_processes(&token, Duration::from_secs(2));
    assert!(
        left.is_empty(),
        "processes alive 2 s after kill -9 of the server: {left:?}"
    );

    let again = start_server(state.path(), Some(project.path())).await;
    let list = again.ok("list_test_executions", json!({})).await;
    let jobs = list["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    let find = |id: &Value| jobs.iter().find(|j| &j["job_id"] == id).unwrap().clone();
    assert_eq!(find(&quick["job_id"])["status"], "passed");
    let interrupted = find(&hanging["job_id"]);
    assert_eq!(interrupted["status"], "interrupted");
    let status = again
        .ok(
            "get_test_execution_status",
            json!({"job_id": hanging["job_id"]}),
        )
        .await;
    assert_eq!(status["status"], "interrupted");
    let output = again
        .ok(
            "get_test_execution_output",
            json!({"job_id": hanging["job_id"]}),
        )
        .await;
    assert!(
        output["text"]
            .as_str()
            .unwrap()
            .contains("tests/test_basic.py"),
        "{output}"
    );
}

fn nix_kill9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn a_runner_that_dies_without_a_report_is_an_error_with_its_words() {
    let state = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("pytest.ini"), "[pytest]\n").unwrap();
    let venv = project.path().join(".venv");
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
    std::os::unix::fs::symlink(
        crate::support::repo().join("fixtures/fake-runners/crash-python.sh"),
        venv.join("bin/python"),
    )
    .unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let started = server.ok("run_tests", json!({})).await;
    let done = server.wait_final(started["job_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "error");
    let reason = done["reason"].as_str().unwrap();
    assert!(
        reason.contains("pytest did not start (exit status 3)")
            && reason.contains("Fatal Python error"),
        "{reason}"
    );
    assert!(
        done["log_tail"]["stderr"]
            .as_str()
            .unwrap()
            .contains("Fatal Python error")
    );
}

/// A raw-stdio session on protocol `version` whose run hangs (after 10 finished tests),
/// with the token its processes carry and the job id.
fn hanging_run_over_raw_stdio(
    version: &str,
) -> (Project, tempfile::TempDir, RawServer, String, String) {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();
    let mut raw = RawServer::start(state.path(), &[]);
    raw.initialize(version);
    let (token, marker, mut args) = hang(&project);
    args["path"] = json!(project.path());
    let started = raw.call(1, "run_tests", args);
    let job_id = started["result"]["structuredContent"]["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for_file(&marker, Duration::from_secs(30));
    (project, state, raw, token, job_id)
}

#[test]
fn closing_stdin_stops_running_jobs_and_exits() {
    let (_project, state, mut raw, token, job_id) = hanging_run_over_raw_stdio("2025-06-18");
    let exit = raw.close_and_wait(Duration::from_secs(5));
    assert!(
        exit.is_some_and(|s| s.success()),
        "server did not exit cleanly on stdin EOF: {exit:?}"
    );
    let left = processes_with_token(&token);
    assert!(
        left.is_empty(),
        "processes left after the server exited: {left:?}"
    );
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(state.path().join("jobs").join(&job_id).join("job.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["status"], "interrupted");
}

#[test]
fn long_polling_sends_progress_for_the_callers_token() {
    // The project and state directories must outlive the run.
    let (_project, _state, mut raw, token, job_id) = hanging_run_over_raw_stdio("2025-11-25");
    raw.send(
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{
        "name":"get_test_execution_status","arguments":{"job_id":job_id,"wait_seconds":1},
        "_meta":{"progressToken":"poll-1"}}}),
    );
    let status = raw.response(2);
    assert_eq!(status["result"]["structuredContent"]["status"], "running");
    let progress: Vec<Value> = raw
        .seen
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["method"] == "notifications/progress")
        .collect();
    assert!(
        progress
            .iter()
            .any(|n| n["params"]["progressToken"] == "poll-1"
                && n["params"]["progress"].as_f64() == Some(10.0)
                && n["params"]["total"].as_f64() == Some(12.0)
                && n["params"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("tests/test_procs.py")),
        "{progress:?}"
    );
    let cancelled = raw.call(3, "cancel_test_execution", json!({"job_id": job_id}));
    assert_eq!(
        cancelled["result"]["structuredContent"]["status"],
        "cancelled"
    );
    assert!(processes_with_token(&token).is_empty());
}

fn supervisor_pid(state: &std::path::Path, job_id: &str) -> u32 {
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(state.join("jobs").join(job_id).join("job.json")).unwrap(),
    )
    .unwrap();
    record["supervisor_pid"]
        .as_u64()
        .expect("running job records its supervisor") as u32
}

#[tokio::test]
async fn a_killed_supervisor_does_not_leave_the_run_behind() {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let (token, marker, args) = hang(&project);
    let started = server.ok("run_tests", args).await;
    let job_id = started["job_id"].as_str().unwrap();
    wait_for_file(&marker, Duration::from_secs(30));
    nix_kill9(supervisor_pid(state.path(), job_id));
    let done = server.wait_final(job_id).await;
    assert_eq!(done["status"], "error");
    let reason = done["reason"].as_str().unwrap();
    assert!(
        reason.contains("supervisor ended without a report")
            && reason.contains("leftover processes of the run were stopped"),
        "{reason}"
    );
    assert!(processes_with_token(&token).is_empty());
}

#[tokio::test]
async fn the_next_start_stops_what_a_dead_server_and_supervisor_left() {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let (token, marker, args) = hang(&project);
    let started = server.ok("run_tests", args).await;
    let job_id = started["job_id"].as_str().unwrap().to_string();
    wait_for_file(&marker, Duration::from_secs(30));
    let sup = supervisor_pid(state.path(), &job_id);
    let both = std::process::Command::new("kill")
        .args(["-9", &server.pid.to_string(), &sup.to_string()])
        .status()
        .unwrap();
    assert!(both.success());
    let again = start_server(state.path(), Some(project.path())).await;
    let list = again.ok("list_test_executions", json!({})).await;
    assert_eq!(list["jobs"][0]["status"], "interrupted");
    let left = wait_no_processes(&token, Duration::from_secs(2));
    assert!(left.is_empty(), "leftovers after the next start: {left:?}");
}

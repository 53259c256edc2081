//! Tool behaviour through rmcp's client: the tool list, results on the pytest fixture,
//! selection, idempotency and errors a model can act on.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Project, assert_snapshot, fixture_venv, start_server};

#[tokio::test]
async fn tool_list_matches_the_snapshot() {
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), None).await;
    let info = server.client.peer_info().expect("server info");
    let server_info = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(server_info.name, "testrelay");
    assert_eq!(server_info.version, env!("CARGO_PKG_VERSION"));
    let tools = server.client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cancel_test_execution",
            "check_test_environment",
            "get_test_execution_output",
            "get_test_execution_status",
            "list_test_executions",
            "preview_workspace_package",
            "run_tests",
            "test_connection"
        ]
    );
    for t in &tools {
        assert!(
            t.description.as_deref().is_some_and(|d| d.len() > 80),
            "{} needs a real description",
            t.name
        );
        assert!(t.output_schema.is_some(), "{} has no output schema", t.name);
        assert!(t.annotations.is_some(), "{} has no annotations", t.name);
    }
    let mut snapshot = serde_json::to_value(&tools).unwrap();
    snapshot
        .as_array_mut()
        .unwrap()
        .sort_by_key(|t| t["name"].as_str().unwrap().to_string());
    assert_snapshot(
        "tools.json",
        &(serde_json::to_string_pretty(&snapshot).unwrap() + "\n"),
    );
}

/// Failing node ids as pytest itself reports them (`-rfE` short summary), run directly.
fn pytest_directly(project: &Project) -> (BTreeSet<String>, String) {
    let out = Command::new(fixture_venv().join("bin/python"))
        .args([
            "-m",
            "pytest",
            "-q",
            "-rfE",
            "--continue-on-collection-errors",
            "-p",
            "no:cacheprovider",
        ])
        .current_dir(project.path())
        .env_remove("FX_HANG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let failing = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("FAILED ")
                .or_else(|| l.strip_prefix("ERROR "))
                // `SUBFAILED(n=2) tests/x.py::T::t - ...`: the node id follows the first space.
                .or_else(|| {
                    l.starts_with("SUBFAILED")
                        .then(|| l.split_once(' ').map_or("", |(_, r)| r))
                })
        })
        .map(|l| l.split(" - ").next().unwrap().trim().to_string())
        .collect();
    let summary = text.lines().last().unwrap_or("").to_string();
    (failing, summary)
}

#[tokio::test]
async fn pytest_results_match_a_direct_run() {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;

    let started = server.ok("run_tests", json!({})).await;
    assert!(
        matches!(started["status"].as_str(), Some("queued" | "running")),
        "{started}"
    );
    assert_eq!(started["framework"], "pytest");
    assert!(
        started["toolchain"].as_str().unwrap().contains(".venv"),
        "{started}"
    );
    let job = started["job_id"].as_str().unwrap().to_string();
    let done = server.wait_final(&job).await;

    assert_eq!(done["status"], "failed");
    assert_eq!(
        done["summary"],
        json!({"total": 15, "passed": 7, "failed": 3, "errors": 2, "skipped": 4, "pending": 0})
    );
    assert_eq!(done["progress"]["done"], 14);
    assert_eq!(done["progress"]["total"], 14);

    let (direct_failing, direct_summary) = pytest_directly(&project);
    assert!(
        direct_summary.contains("3 failed, 7 passed, 3 skipped, 1 xfailed, 2 errors"),
        "{direct_summary}"
    );
    let ours: BTreeSet<String> = done["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["selector"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ours, direct_failing);
    assert_eq!(done["failures_total"], 5);

    let failures = done["failures"].as_array().unwrap();
    assert_eq!(failures[0]["kind"], "file");
    assert_eq!(
        failures[0]["message"],
        "ModuleNotFoundError: No module named 'not_a_real_module_for_testrelay'"
    );
    let fails = failures.iter().find(|f| f["name"] == "test_fails").unwrap();
    assert_eq!(
        (fails["file"].as_str(), fails["line"].as_u64()),
        (Some("tests/test_basic.py"), Some(14))
    );
    assert!(
        fails["message"]
            .as_str()
            .unwrap()
            .starts_with("AssertionError: add should sum its arguments")
    );
    assert!(
        fails["trace"]
            .as_str()
            .unwrap()
            .contains("tests/test_basic.py:15: AssertionError")
    );
    assert_eq!(fails["failed_at"], "tests/test_basic.py:15");
    let fixture = failures
        .iter()
        .find(|f| f["name"] == "test_uses_broken_fixture")
        .unwrap();
    assert_eq!(fixture["status"], "errored");
    assert!(
        done["log_tail"]["stdout"]
            .as_str()
            .unwrap()
            .contains("3 failed, 7 passed, 3 skipped, 1 xfailed, 2 errors")
    );
    let subtest = failures
        .iter()
        .find(|f| f["name"] == "test_basic (n='2')")
        .unwrap();
    assert_eq!(
        subtest["selector"],
        "tests/test_subtests.py::LastTests::test_basic"
    );
    assert_eq!(subtest["message"], "AssertionError: 2 not less than 2");

    let job_dir = std::path::PathBuf::from(done["job_dir"].as_str().unwrap());
    let ctrf: Value =
        serde_json::from_str(&std::fs::read_to_string(job_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(ctrf["results"]["summary"]["tests"], 15);
    assert!(
        std::fs::read_to_string(job_dir.join("junit.xml"))
            .unwrap()
            .contains("<testsuites name=\"pytest\" tests=\"16\"")
    );
}

#[tokio::test]
async fn a_failure_selector_reruns_exactly_that_test() {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let started = server
        .ok(
            "run_tests",
            json!({"tests": ["tests/test_basic.py::test_param[3]"]}),
        )
        .await;
    let done = server.wait_final(started["job_id"].as_str().unwrap()).await;
    assert_eq!(done["summary"]["total"], 1);
    assert_eq!(
        done["failures"][0]["selector"],
        "tests/test_basic.py::test_param[3]"
    );

    let by_keyword = server
        .ok(
            "run_tests",
            json!({"keyword": "param and not 3", "path": ".", "tests": ["tests/test_basic.py"]}),
        )
        .await;
    let done = server
        .wait_final(by_keyword["job_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "passed");
    assert_eq!(done["summary"]["passed"], 2);

    let by_marker = server
        .ok(
            "run_tests",
            json!({"markers": "slow", "tests": ["tests/test_basic.py"]}),
        )
        .await;
    let done = server
        .wait_final(by_marker["job_id"].as_str().unwrap())
        .await;
    assert_eq!(
        (done["status"].as_str(), done["summary"]["total"].as_u64()),
        (Some("passed"), Some(1))
    );
}

#[tokio::test]
async fn a_selection_that_matches_nothing_is_an_error_with_a_reason() {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let started = server
        .ok("run_tests", json!({"tests": ["tests/test_nope.py"]}))
        .await;
    let done = server.wait_final(started["job_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "error");
    let reason = done["reason"].as_str().unwrap();
    assert!(
        reason.contains("usage error") && reason.contains("tests/test_nope.py"),
        "{reason}"
    );
}

#[tokio::test]
async fn idempotency_key_returns_the_same_job() {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let args = json!({"tests": ["tests/test_basic.py::test_passes"], "idempotency_key": "retry-1"});
    let first = server.ok("run_tests", args.clone()).await;
    let second = server.ok("run_tests", args).await;
    assert_eq!(first["job_id"], second["job_id"]);
    assert_eq!(
        (first["reused"].as_bool(), second["reused"].as_bool()),
        (Some(false), Some(true))
    );
    server.wait_final(first["job_id"].as_str().unwrap()).await;
    let list = server.ok("list_test_executions", json!({})).await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1);
    let (_, is_error, text) = server
        .call(
            "run_tests",
            json!({"tests": ["tests/test_basic.py"], "idempotency_key": "retry-1"}),
        )
        .await;
    assert!(
        is_error && text.contains("already used for job") && text.contains("different arguments"),
        "{text}"
    );
}

#[tokio::test]
async fn mistakes_get_tool_errors_with_a_next_step() {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;

    let (_, is_error, text) = server
        .call(
            "get_test_execution_status",
            json!({"job_id": "../../etc/passwd"}),
        )
        .await;
    assert!(
        is_error && text.contains("unknown job id") && text.contains("list_test_executions"),
        "{text}"
    );

    let (_, is_error, text) = server.call("run_tests", json!({"path": "/tmp"})).await;
    assert!(is_error && text.contains("outside the workspace"), "{text}");

    let (_, is_error, text) = server
        .call("run_tests", json!({"timeout_seconds": "soon"}))
        .await;
    assert!(
        is_error && text.contains("invalid type: string \"soon\", expected u64"),
        "{text}"
    );

    let (_, is_error, text) = server
        .call("run_tests", json!({"tests": ["--collect-only"]}))
        .await;
    assert!(is_error && text.contains("extra_args"), "{text}");

    let empty = tempfile::tempdir_in(project.path()).unwrap();
    let rel = empty.path().file_name().unwrap().to_str().unwrap();
    let (_, is_error, text) = server.call("run_tests", json!({"path": rel})).await;
    assert!(
        is_error && text.contains("no test framework detected"),
        "{text}"
    );

    // The server keeps serving after all of that.
    let check = server.ok("check_test_environment", json!({})).await;
    assert_eq!(check["ready"], true);
}

#[tokio::test]
async fn check_reports_a_missing_pytest_with_setup_commands() {
    let state = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("pytest.ini"), "[pytest]\n").unwrap();
    std::fs::write(project.path().join("requirements.txt"), "requests\n").unwrap();
    // A virtualenv without pytest.
    let venv = project.path().join(".venv");
    let made = Command::new(fixture_venv().join("bin/python"))
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success());
    let server = start_server(state.path(), Some(project.path())).await;
    let check = server.ok("check_test_environment", json!({})).await;
    assert_eq!(check["ready"], false);
    let fw = &check["frameworks"][0];
    assert_eq!(fw["detected_by"], json!(["pytest.ini"]));
    assert!(
        fw["missing"][0]
            .as_str()
            .unwrap()
            .contains("pytest is not installed"),
        "{fw}"
    );
    let python = venv
        .join("bin/python")
        .canonicalize()
        .unwrap_or(venv.join("bin/python"));
    let cmd = fw["setup_commands"][0].as_str().unwrap();
    assert!(
        cmd.ends_with("-m pip install pytest") && cmd.contains(".venv/bin/python"),
        "{cmd} vs {}",
        python.display()
    );
}

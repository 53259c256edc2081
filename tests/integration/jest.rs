//! The Jest adapter end to end: the real binary over stdio on copies of the Jest fixture,
//! checked against Jest run directly on the same copy. Every run carries a token in its
//! environment, so "no process left" is checked against the whole process table.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    Project, Server, kill_token, processes_with_token, start_server, token, wait_for_file,
    wait_no_processes,
};

/// Jest's own `--json` report of the fixture copy, run the way a developer would.
fn jest_directly(project: &Project) -> Value {
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("direct.json");
    let token = token();
    let status = Command::new("node")
        .arg(project.path().join("node_modules/jest/bin/jest.js"))
        .arg("--json")
        .arg(format!("--outputFile={}", report.display()))
        .args(["--testLocationInResults", "--forceExit"])
        .current_dir(project.path())
        .env("TESTRELAY_TEST_TOKEN", &token)
        .env_remove("FX_HANG")
        .output()
        .unwrap()
        .status;
    // The fixture leaks a `sleep 120` on purpose; this run has no supervisor to reap it.
    kill_token(&token);
    assert_eq!(status.code(), Some(1), "jest should report failures");
    serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap()
}

/// A failure message the way testrelay shows it: the text before the stack, no blank lines.
fn message_of(failure: &str) -> String {
    failure
        .lines()
        .take_while(|l| !l.trim_start().starts_with("at "))
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn run(server: &Server, args: Value) -> Value {
    let started = server.ok("run_tests", args).await;
    assert_eq!(started["framework"], "jest", "{started}");
    server.wait_final(started["job_id"].as_str().unwrap()).await
}

#[tokio::test]
async fn jest_results_match_a_direct_run_and_leave_no_process() {
    let project = Project::jest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let token = token();
    let started = server
        .ok("run_tests", json!({"env": {"TESTRELAY_TEST_TOKEN": token}}))
        .await;
    assert!(
        started["toolchain"]
            .as_str()
            .unwrap()
            .contains("running jest 30.5.2"),
        "{started}"
    );
    assert!(
        !started["command"].as_str().unwrap().contains("npx"),
        "{started}"
    );
    let done = server.wait_final(started["job_id"].as_str().unwrap()).await;
    // The fixture leaks a child: the job still ends as soon as Jest does, and the child is
    // gone with it.
    let left = wait_no_processes(&token, Duration::from_secs(5));
    assert!(left.is_empty(), "processes left after the run: {left:?}");

    let direct = jest_directly(&project);
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(
        done["summary"],
        json!({"total": 11, "passed": 6, "failed": 2, "errors": 1, "skipped": 2, "pending": 1})
    );
    let n = |k: &str| direct[k].as_u64().unwrap();
    assert_eq!(
        (
            n("numTotalTests"),
            n("numPassedTests"),
            n("numFailedTests"),
            n("numPendingTests"),
            n("numTodoTests"),
            n("numRuntimeErrorTestSuites")
        ),
        (11, 6, 2, 2, 1, 1)
    );
    assert_eq!(done["progress"]["done"], 11);
    assert_eq!(done["progress"]["total"], 11);

    // The same failing tests with the same messages, and the broken file.
    let mut direct_failing = BTreeSet::new();
    let mut direct_file_errors = BTreeSet::new();
    let root = project.path().canonicalize().unwrap();
    for file in direct["testResults"].as_array().unwrap() {
        let abs = std::path::PathBuf::from(file["name"].as_str().unwrap());
        let rel = abs
            .strip_prefix(&root)
            .or_else(|_| abs.strip_prefix(project.path()))
            .unwrap()
            .display()
            .to_string();
        let tests = file["assertionResults"].as_array().unwrap();
        if tests.is_empty() {
            direct_file_errors.insert(rel.clone());
        }
        for t in tests.iter().filter(|t| t["status"] == "failed") {
            direct_failing.insert((
                format!("{rel}::{}", t["fullName"].as_str().unwrap()),
                message_of(t["failureMessages"][0].as_str().unwrap()),
            ));
        }
    }
    let failures = done["failures"].as_array().unwrap();
    let ours: BTreeSet<(String, String)> = failures
        .iter()
        .filter(|f| f["kind"] == "test")
        .map(|f| {
            (
                f["selector"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(ours, direct_failing);
    assert_eq!(done["failures_total"], 3);

    let broken = &failures[0];
    assert_eq!(broken["kind"], "file");
    assert_eq!(broken["status"], "file_error");
    assert_eq!(
        BTreeSet::from([broken["file"].as_str().unwrap().to_string()]),
        direct_file_errors
    );
    assert_eq!(
        broken["message"],
        "Cannot find module 'not-a-real-module-for-testrelay' from '__tests__/broken.test.js'"
    );
    let fails = failures
        .iter()
        .find(|f| f["name"] == "fails with a clear message")
        .unwrap();
    assert_eq!(
        (fails["file"].as_str(), fails["line"].as_u64()),
        (Some("__tests__/basic.test.js"), Some(8))
    );
    assert_eq!(fails["failed_at"], "__tests__/basic.test.js:9");

    // Both machine-readable files are in the job directory, and the exports were written.
    let job_dir = std::path::PathBuf::from(done["job_dir"].as_str().unwrap());
    for f in [
        "jest-report.json",
        "jest-events.jsonl",
        "testrelay-jest-reporter.cjs",
        "report.json",
        "junit.xml",
    ] {
        assert!(
            job_dir.join(f).is_file(),
            "{f} missing in {}",
            job_dir.display()
        );
    }
}

#[tokio::test]
async fn a_selector_reruns_exactly_that_test_and_filtered_tests_are_not_skips() {
    let project = Project::jest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;

    let selector = "__tests__/basic.test.js::math param 3";
    let done = run(&server, json!({"tests": [selector]})).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(
        done["summary"],
        json!({"total": 1, "passed": 0, "failed": 1, "errors": 0, "skipped": 0, "pending": 0}),
        "the 8 tests -t filtered out must not count as skipped"
    );
    assert_eq!(done["failures"][0]["selector"], selector);
    assert_eq!(
        done["failures"][0]["message"],
        "Error: expect(received).toBe(expected) // Object.is equality\nExpected: 4\nReceived: 3"
    );

    // A nested describe, through its selector.
    let done = run(
        &server,
        json!({"tests": ["__tests__/basic.test.js::math nested multiplies"]}),
    )
    .await;
    assert_eq!(
        (done["status"].as_str(), done["summary"]["passed"].as_u64()),
        (Some("passed"), Some(1))
    );
    assert_eq!(done["summary"]["total"], 1);

    // A keyword is Jest's -t regex: only matching tests count, and a real skip that
    // matches is still a skip.
    let done = run(
        &server,
        json!({"keyword": "param|is skipped", "tests": ["__tests__/basic.test.js"]}),
    )
    .await;
    assert_eq!(
        done["summary"],
        json!({"total": 4, "passed": 2, "failed": 1, "errors": 0, "skipped": 1, "pending": 0})
    );

    // A pattern that matches nothing is a broken run with a reason, not a pass.
    let done = run(
        &server,
        json!({"keyword": "no test is called this", "tests": ["__tests__/basic.test.js"]}),
    )
    .await;
    assert_eq!(done["status"], "error");
    assert!(
        done["reason"]
            .as_str()
            .unwrap()
            .starts_with("no test name matched the pattern"),
        "{done}"
    );

    // Mistakes a model can fix are tool errors that say how.
    let (_, is_error, text) = server
        .call("run_tests", json!({"tests": ["__tests__/nope.test.js"]}))
        .await;
    assert!(is_error && text.contains("no such test file"), "{text}");
    let (_, is_error, text) = server.call("run_tests", json!({"markers": "slow"})).await;
    assert!(is_error && text.contains("Jest has no markers"), "{text}");
}

#[tokio::test]
async fn a_file_that_fails_to_import_is_a_file_level_failure() {
    let project = Project::jest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let done = run(&server, json!({"tests": ["__tests__/broken.test.js"]})).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["summary"]["total"], 0);
    assert_eq!(done["summary"]["errors"], 1);
    let f = &done["failures"][0];
    assert_eq!(
        (f["kind"].as_str(), f["selector"].as_str()),
        (Some("file"), Some("__tests__/broken.test.js"))
    );
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("Cannot find module 'not-a-real-module-for-testrelay'"),
        "{f}"
    );
    let trace = f["trace"].as_str().unwrap();
    assert!(!trace.contains('\u{1b}'), "ANSI codes in {trace:?}");
}

#[tokio::test]
async fn a_leaked_child_does_not_keep_the_job_running() {
    let project = Project::jest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let token = token();
    let done = run(
        &server,
        json!({"tests": ["__tests__/procs.test.js"], "env": {"TESTRELAY_TEST_TOKEN": token}}),
    )
    .await;
    assert_eq!(done["status"], "passed", "{done}");
    assert_eq!(
        (
            done["summary"]["passed"].as_u64(),
            done["summary"]["skipped"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // Without --forceExit Jest waits for the leaked `sleep 120`.
    let ms = done["duration_ms"].as_u64().unwrap();
    assert!(ms < 30_000, "the run took {ms} ms");
    let left = wait_no_processes(&token, Duration::from_secs(5));
    assert!(left.is_empty(), "processes left: {left:?}");
}

#[tokio::test]
async fn cancel_mid_run_keeps_finished_tests_and_leaves_no_process() {
    let project = Project::jest();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let token = token();
    let marker = project.path().join("hang.marker");
    let started = server
        .ok(
            "run_tests",
            json!({"env": {"FX_HANG": "1", "FX_MARKER": marker, "TESTRELAY_TEST_TOKEN": token}}),
        )
        .await;
    let job = started["job_id"].clone();
    let pids = wait_for_file(&marker, Duration::from_secs(60));
    assert_eq!(pids.split_whitespace().count(), 2, "{pids}");
    assert!(processes_with_token(&token).len() >= 2);

    // "leaks a child" finished before "hangs" started in the same file; wait (bounded)
    // for its line to reach testrelay.
    let mut running = Value::Null;
    for _ in 0..100 {
        running = server
            .ok("get_test_execution_status", json!({"job_id": job}))
            .await;
        if running["progress"]["done"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(running["status"], "running");
    assert_eq!(
        running["progress"]["current_file"],
        "__tests__/procs.test.js"
    );
    let done_before = running["progress"]["done"].as_u64().unwrap();
    assert!(done_before >= 1, "{running}");

    let cancelled = server
        .ok("cancel_test_execution", json!({"job_id": job}))
        .await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["summary"]["total"].as_u64(), Some(done_before));
    let left = processes_with_token(&token);
    assert!(left.is_empty(), "processes left after cancel: {left:?}");

    let job_dir = std::path::PathBuf::from(cancelled["job_dir"].as_str().unwrap());
    assert!(
        !job_dir.join("jest-report.json").exists(),
        "Jest writes no --json report when it is stopped; the events are all there is"
    );
    let ctrf: Value =
        serde_json::from_str(&std::fs::read_to_string(job_dir.join("report.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = ctrf["results"]["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"leaks a child"), "{names:?}");
    assert!(!names.contains(&"hangs"), "{names:?}");
}

#[tokio::test]
async fn check_without_node_modules_says_what_is_missing_and_the_command() {
    let project = Project::jest_without_modules();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let check = server.ok("check_test_environment", json!({})).await;
    assert_eq!(check["ready"], false, "{check}");
    let fw = &check["frameworks"][0];
    assert_eq!(fw["framework"], "jest");
    assert_eq!(
        fw["detected_by"],
        json!([
            "jest.config.js",
            "package.json scripts.test runs jest",
            "package.json devDependencies.jest"
        ])
    );
    let missing: Vec<&str> = fw["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        missing[0].starts_with("node_modules in") && missing[0].contains("not installed"),
        "{missing:?}"
    );
    assert!(
        missing[1].starts_with("jest is not installed"),
        "{missing:?}"
    );
    assert_eq!(fw["setup_commands"], json!(["npm ci"]));
    assert!(
        fw["runtime_version"].as_str().unwrap().starts_with('v'),
        "{fw}"
    );

    let (_, is_error, text) = server.call("run_tests", json!({})).await;
    assert!(
        is_error && text.contains("Jest is not installed") && text.contains("npm ci"),
        "{text}"
    );

    // The installed fixture is ready.
    let ready = Project::jest();
    let server = start_server(state.path(), Some(ready.path())).await;
    let check = server.ok("check_test_environment", json!({})).await;
    let fw = &check["frameworks"][0];
    assert_eq!(fw["ready"], true, "{fw}");
    assert_eq!(fw["version"], "30.5.2");
}

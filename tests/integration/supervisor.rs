//! The supervisor on its own (`testrelay __supervise`), with fake runner scripts.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{BIN, processes_with_token, repo, token, wait_for_file, wait_no_processes};

struct Run {
    child: std::process::Child,
    dir: tempfile::TempDir,
    token: String,
}

fn supervise(script: &str, timeout_ms: Option<u64>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let token = token();
    let mut cmd = Command::new(BIN);
    cmd.arg("__supervise")
        .arg("--report")
        .arg(dir.path().join("report.json"));
    cmd.args(["--grace-int-ms", "300", "--grace-term-ms", "300"]);
    if let Some(t) = timeout_ms {
        cmd.arg("--timeout-ms").arg(t.to_string());
    }
    cmd.arg("--")
        .arg(repo().join("fixtures/fake-runners").join(script));
    cmd.env("FX_MARKER", dir.path().join("marker"))
        .env("TESTRELAY_TEST_TOKEN", &token);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Run {
        child: cmd.spawn().unwrap(),
        dir,
        token,
    }
}

impl Run {
    fn marker(&self) -> String {
        wait_for_file(&self.dir.path().join("marker"), Duration::from_secs(20))
    }

    fn finish(mut self) -> (i32, Value) {
        // `Child::wait` would close stdin first, which the supervisor reads as "server gone".
        let _stdin = self.child.stdin.take();
        let status = self.child.wait().unwrap();
        let report = std::fs::read_to_string(self.dir.path().join("report.json")).unwrap();
        let left = processes_with_token(&self.token);
        assert!(left.is_empty(), "processes left behind: {left:?}");
        (
            status.code().unwrap(),
            serde_json::from_str(&report).unwrap(),
        )
    }
}

#[test]
fn a_runner_ignoring_sigterm_is_killed_on_cancel() {
    let mut run = supervise("ignore-term.sh", None);
    run.marker();
    writeln!(run.child.stdin.as_mut().unwrap(), "cancel").unwrap();
    let (code, report) = run.finish();
    assert_eq!(report["stop"], "cancel");
    assert_eq!(report["escalated_to"], "SIGKILL");
    assert_eq!(report["signal"], 9);
    assert_eq!(code, 128 + 9);
}

#[test]
fn a_grandchild_in_its_own_session_is_killed_after_a_normal_exit() {
    let run = supervise("setsid-leak.sh", None);
    let grandchild: i32 = run.marker().trim().parse().unwrap();
    let (code, report) = run.finish();
    assert_eq!(code, 0);
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["stop"], Value::Null);
    assert!(
        report["leftovers_killed"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert!(!std::path::Path::new(&format!("/proc/{grandchild}")).exists());
}

#[test]
fn the_timeout_stops_the_tree() {
    let run = supervise("hang.sh", Some(500));
    run.marker();
    let (_, report) = run.finish();
    assert_eq!(report["stop"], "timeout");
    assert_eq!(report["escalated_to"], "SIGINT");
}

#[test]
fn closing_stdin_means_the_server_is_gone() {
    let mut run = supervise("hang.sh", None);
    run.marker();
    drop(run.child.stdin.take());
    let token = run.token.clone();
    let (_, report) = run.finish();
    assert_eq!(report["stop"], "server_gone");
    assert!(wait_no_processes(&token, Duration::from_secs(1)).is_empty());
}

#[test]
fn a_program_that_cannot_start_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(BIN)
        .arg("__supervise")
        .arg("--report")
        .arg(dir.path().join("r.json"))
        .args(["--", "/nonexistent/runner"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(127));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert!(
        report["spawn_error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/runner")
    );
}

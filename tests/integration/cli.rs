//! The command line: `run` and `check` on the fixture, exit codes, and help text.

use std::process::Command;

use crate::support::{BIN, Project, assert_snapshot};

fn testrelay(state: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("TESTRELAY_STATE_DIR", state)
        .env_remove("TESTRELAY_WORKSPACE")
        .env_remove("VIRTUAL_ENV");
    c
}

#[test]
fn run_prints_failures_and_exits_by_outcome() {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();
    let out = testrelay(state.path())
        .arg("run")
        .arg(project.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAILED tests/test_basic.py::test_fails (tests/test_basic.py:15)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ERROR  tests/test_broken.py\n  ModuleNotFoundError"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pytest: 3 failed, 2 errors, 7 passed, 4 skipped in "),
        "{stdout}"
    );

    let pass = testrelay(state.path())
        .current_dir(project.path())
        .args([
            "run",
            "tests/test_basic.py::test_passes",
            "tests/test_basic.py::TestGroup",
        ])
        .output()
        .unwrap();
    assert_eq!(
        pass.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&pass.stdout)
    );
    assert!(String::from_utf8_lossy(&pass.stdout).contains("pytest: 2 passed in "));

    let broken = testrelay(state.path())
        .current_dir(project.path())
        .args(["run", "-k", "nothing_matches_this", "tests/test_basic.py"])
        .output()
        .unwrap();
    assert_eq!(broken.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&broken.stdout).contains("no tests were collected"));

    let json = testrelay(state.path())
        .current_dir(project.path())
        .args(["run", "--json", "tests/test_basic.py"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        (v["status"].as_str(), v["summary"]["total"].as_u64()),
        (Some("failed"), Some(9))
    );
}

#[test]
fn check_says_ready_or_what_to_do() {
    let project = Project::pytest();
    let state = tempfile::tempdir().unwrap();
    let out = testrelay(state.path())
        .arg("check")
        .arg(project.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("pytest: ✓ ready (pytest 9.2.0, runtime 3."),
        "{stdout}"
    );

    let empty = tempfile::tempdir().unwrap();
    let out = testrelay(state.path())
        .arg("check")
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no supported test framework detected"));

    let out = testrelay(state.path())
        .current_dir("/")
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no workspace is known"));
}

#[test]
fn help_and_version_match_the_snapshots() {
    let help = Command::new(BIN)
        .arg("--help")
        .env_remove("TESTRELAY_WORKSPACE")
        .output()
        .unwrap();
    assert_snapshot("help.txt", &String::from_utf8_lossy(&help.stdout));
    let run_help = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    assert_snapshot("help-run.txt", &String::from_utf8_lossy(&run_help.stdout));
    let version = Command::new(BIN).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("testrelay {}", env!("CARGO_PKG_VERSION"))
    );
}

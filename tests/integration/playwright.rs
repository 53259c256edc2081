//! Playwright through MCP on the real fixture (Chromium from the OS): results equal a
//! direct run's, screenshots come back as images, a cancelled run leaves no browser,
//! worker or web server behind and frees its port, and the environment check names what
//! is missing.
//!
//! The fixture's webServer listens on one fixed port, so runs take [`PORT_LOCK`] and
//! never overlap, whatever the test harness runs in parallel.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::support::{
    Project, Server, chromium, processes_with_token, start_server, start_server_with_env, token,
    wait_for_file,
};

static PORT_LOCK: Mutex<()> = Mutex::const_new(());

/// Counts and failing titles as Playwright itself reports them, run directly with its JSON
/// reporter (no testrelay involved); also the wall time.
fn playwright_directly(project: &Project) -> (Value, BTreeSet<String>, Duration) {
    let scratch = tempfile::tempdir().unwrap();
    let report = scratch.path().join("direct-report.json");
    let output = format!("--output={}", scratch.path().join("artifacts").display());
    let started = Instant::now();
    let out = std::process::Command::new("node")
        .args([
            "node_modules/@playwright/test/cli.js",
            "test",
            "--reporter=json",
            &output,
        ])
        .current_dir(project.path())
        .env("PLAYWRIGHT_JSON_OUTPUT_FILE", &report)
        .env("PW_CHROMIUM_PATH", chromium())
        .env_remove("FX_HANG")
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a direct run fails one test: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let mut failing = BTreeSet::new();
    fn walk(suite: &Value, failing: &mut BTreeSet<String>) {
        for spec in suite["specs"].as_array().into_iter().flatten() {
            for t in spec["tests"].as_array().into_iter().flatten() {
                if t["status"] == "unexpected" {
                    failing.insert(spec["title"].as_str().unwrap().to_string());
                }
            }
        }
        for s in suite["suites"].as_array().into_iter().flatten() {
            walk(s, failing);
        }
    }
    for s in v["suites"].as_array().unwrap() {
        walk(s, &mut failing);
    }
    (v["stats"].clone(), failing, took)
}

fn run_args(token: &str, extra: Value) -> Value {
    let mut args = json!({
        "framework": "playwright",
        "env": {"PW_CHROMIUM_PATH": chromium(), "TESTRELAY_TEST_TOKEN": token},
    });
    for (k, v) in extra.as_object().unwrap() {
        if k == "env" {
            for (ek, ev) in v.as_object().unwrap() {
                args["env"][ek] = ev.clone();
            }
        } else {
            args[k] = v.clone();
        }
    }
    args
}

/// Poll the status (bounded) until `done` tests have finished.
async fn wait_progress(server: &Server, job_id: &Value, done: u64, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let v = server
            .ok("get_test_execution_status", json!({"job_id": job_id}))
            .await;
        if v["progress"]["done"].as_u64().unwrap_or(0) >= done {
            return v;
        }
        assert!(
            Instant::now() < deadline && v["status"] == "running",
            "{done} tests did not finish within {within:?}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn results_match_a_direct_run_and_screenshots_come_back_as_images() {
    let _port = PORT_LOCK.lock().await;
    let project = Project::playwright(true);
    let (stats, failing_directly, direct_took) = playwright_directly(&project);

    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let token = token();
    let started = Instant::now();
    let run = server.ok("run_tests", run_args(&token, json!({}))).await;
    assert!(
        run["command"]
            .as_str()
            .unwrap()
            .contains("@playwright/test/cli.js test"),
        "{run}"
    );
    let done = server.wait_final(run["job_id"].as_str().unwrap()).await;
    eprintln!(
        "fixture wall time: {direct_took:?} directly, {:?} through testrelay",
        started.elapsed()
    );
    assert_eq!(done["status"], "failed", "{done}");
    let summary = &done["summary"];
    let n = |k: &str| stats[k].as_u64().unwrap();
    assert_eq!(summary["passed"].as_u64(), Some(n("expected") + n("flaky")));
    assert_eq!(summary["failed"].as_u64(), Some(n("unexpected")));
    assert_eq!(summary["skipped"].as_u64(), Some(n("skipped")));
    assert_eq!(summary["total"], 7);
    let failing: BTreeSet<String> = done["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(failing, failing_directly);

    let failure = &done["failures"][0];
    assert_eq!(failure["selector"], "tests/basic.spec.ts:14");
    assert_eq!(failure["failed_at"], "tests/basic.spec.ts:17");
    let message = failure["message"].as_str().unwrap();
    assert!(
        message.contains("Expected: \"Welcome aboard\""),
        "{message}"
    );
    assert!(
        !message.contains('\u{1b}'),
        "ANSI codes left in {message:?}"
    );
    let job_dir = done["job_dir"].as_str().unwrap();
    let screenshot = failure["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "screenshot")
        .unwrap_or_else(|| panic!("no screenshot listed: {failure}"));
    let path = screenshot["path"].as_str().unwrap();
    assert!(path.starts_with(job_dir) && std::path::Path::new(path).exists());
    assert!(
        done["next_step"]
            .as_str()
            .unwrap()
            .contains("include_screenshots=true"),
        "{}",
        done["next_step"]
    );
    assert!(
        !project.path().join("test-results").exists(),
        "artifacts belong in the job directory, not the project"
    );

    let full = server
        .call_full(
            "get_test_execution_status",
            json!({"job_id": run["job_id"], "include_screenshots": true}),
        )
        .await;
    let structured = full.structured_content.clone().unwrap();
    assert_eq!(
        structured["screenshots"][0]["attached"], true,
        "{structured}"
    );
    let image = full
        .content
        .iter()
        .find_map(|c| c.as_image())
        .expect("an image content block");
    assert_eq!(image.mime_type, "image/png");
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(&image.data)
        .unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));

    // The selector reruns exactly that test.
    let rerun = server
        .ok(
            "run_tests",
            run_args(&token, json!({"tests": [failure["selector"]]})),
        )
        .await;
    let again = server.wait_final(rerun["job_id"].as_str().unwrap()).await;
    assert_eq!(again["summary"]["total"], 1, "{again}");
    assert_eq!(again["failures"][0]["name"], failure["name"]);
    assert!(processes_with_token(&token).is_empty());
}

#[tokio::test]
async fn cancel_keeps_finished_tests_leaves_no_process_and_frees_the_port() {
    let _port = PORT_LOCK.lock().await;
    let project = Project::playwright(true);
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(project.path())).await;
    let token = token();
    let marker = project.path().join("hang.marker");
    let run = server
        .ok(
            "run_tests",
            run_args(
                &token,
                json!({"env": {"FX_HANG": "1", "FX_MARKER": marker}}),
            ),
        )
        .await;
    wait_for_file(&marker, Duration::from_secs(60));
    // Every test but the hanging one finishes first.
    let running = wait_progress(&server, &run["job_id"], 6, Duration::from_secs(60)).await;
    assert_eq!(running["progress"]["total"], 7, "{running}");
    let alive = processes_with_token(&token);
    assert!(
        alive.len() >= 4,
        "node, its worker, Chromium and the web server should be running: {alive:?}"
    );

    let started = Instant::now();
    let cancelled = server
        .ok("cancel_test_execution", json!({"job_id": run["job_id"]}))
        .await;
    eprintln!("cancel took {:?}", started.elapsed());
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["summary"]["passed"], 4, "{cancelled}");
    assert_eq!(cancelled["summary"]["failed"], 1);
    assert_eq!(cancelled["failures"][0]["name"], "fails on wrong heading");
    let left = processes_with_token(&token);
    assert!(left.is_empty(), "processes left after cancel: {left:?}");
    let job_dir = std::path::Path::new(cancelled["job_dir"].as_str().unwrap());
    assert!(
        job_dir.join("playwright-report.json").exists(),
        "Playwright writes its JSON report when stopped with SIGINT"
    );
    // SIGINT was enough: Playwright stopped by itself within the grace period.
    let supervisor: Value =
        serde_json::from_slice(&std::fs::read(job_dir.join("supervisor.json")).unwrap()).unwrap();
    eprintln!("supervisor after cancel: {supervisor}");
    assert_eq!(supervisor["escalated_to"], "SIGINT", "{supervisor}");

    // Same port, right away: the web server of the cancelled run is gone.
    let next = server.ok("run_tests", run_args(&token, json!({}))).await;
    let done = server.wait_final(next["job_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["summary"]["total"], 7);
    assert!(processes_with_token(&token).is_empty());
}

fn playwright_check(v: &Value) -> &Value {
    v["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["framework"] == "playwright")
        .unwrap_or_else(|| panic!("no playwright entry: {v}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_environment_check_names_what_is_missing_and_the_commands() {
    let state = tempfile::tempdir().unwrap();
    let bare = Project::playwright(false);
    let server = start_server(state.path(), Some(bare.path())).await;
    let v = server
        .ok("check_test_environment", json!({"framework": "playwright"}))
        .await;
    let check = playwright_check(&v);
    assert_eq!(check["ready"], false);
    assert!(
        strings(&check["missing"])
            .iter()
            .any(|m| m.contains("@playwright/test is listed in package.json but not installed")),
        "{check}"
    );
    assert_eq!(strings(&check["setup_commands"]), ["npm ci"]);
    let (_, is_error, text) = server
        .call("run_tests", json!({"framework": "playwright"}))
        .await;
    assert!(is_error && text.contains("npm ci"), "{text}");

    // Installed, but no browser: Playwright's cache is empty and the config has no
    // executablePath (PW_CHROMIUM_PATH unset).
    let project = Project::playwright(true);
    let empty_cache = tempfile::tempdir().unwrap();
    let cache = empty_cache.path().to_str().unwrap();
    let server = start_server_with_env(
        state.path(),
        Some(project.path()),
        &[("PLAYWRIGHT_BROWSERS_PATH", cache)],
        &["PW_CHROMIUM_PATH"],
    )
    .await;
    let v = server.ok("check_test_environment", json!({})).await;
    let check = playwright_check(&v);
    assert_eq!(check["ready"], false, "{check}");
    assert_eq!(check["version"], "1.65.1");
    let missing = strings(&check["missing"]);
    assert!(
        missing
            .iter()
            .any(|m| m.contains("chromium") && m.contains(cache)),
        "{missing:?}"
    );
    assert_eq!(
        strings(&check["setup_commands"]),
        ["npx playwright install --with-deps chromium"]
    );
    assert!(
        strings(&check["notes"])
            .iter()
            .any(|n| n.contains("apt-get install -y chromium")
                && n.contains("executablePath: '/usr/bin/chromium'")),
        "{check}"
    );

    // The config points at the system Chromium: ready.
    let server = start_server_with_env(
        state.path(),
        Some(project.path()),
        &[
            ("PLAYWRIGHT_BROWSERS_PATH", cache),
            ("PW_CHROMIUM_PATH", &chromium()),
        ],
        &[],
    )
    .await;
    let v = server.ok("check_test_environment", json!({})).await;
    let check = playwright_check(&v);
    assert_eq!(check["ready"], true, "{check}");
    assert!(strings(&check["setup_commands"]).is_empty());
}

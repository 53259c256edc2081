//! Shared test harness: fixture projects, the real binary driven by rmcp's client or by a
//! raw JSON-RPC pipe, and a process-table check that finds every process of a run.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_testrelay");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The virtualenv with pytest that scripts/provision.sh creates. Tests never skip when it
/// is missing: they fail and say how to provision it.
pub fn fixture_venv() -> PathBuf {
    let venv = std::env::var_os("TESTRELAY_FIXTURE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/fixture-env/venv"));
    assert!(
        venv.join("bin/python").exists(),
        "no fixture virtualenv at {}: run ./scripts/test.sh (or scripts/provision.sh) first",
        venv.display()
    );
    venv
}

/// A fresh copy of a fixture project in a temp dir, with `.venv` pointing at the fixture
/// virtualenv (so detection goes through the project-venv path, as for a real user).
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn pytest() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo().join("fixtures/pytest/basic"), dir.path());
        std::os::unix::fs::symlink(fixture_venv(), dir.path().join(".venv")).unwrap();
        Project { dir }
    }

    /// A copy of the Jest fixture whose `node_modules` is a link to the fixture's own
    /// (installed by scripts/provision.sh), so no test downloads anything.
    pub fn jest() -> Self {
        let fixture = repo().join("fixtures/jest/basic");
        assert!(
            fixture.join("node_modules/jest/package.json").exists(),
            "no node_modules in {}: run ./scripts/test.sh (or scripts/provision.sh) first",
            fixture.display()
        );
        let project = Self::jest_without_modules();
        std::os::unix::fs::symlink(
            fixture.join("node_modules"),
            project.path().join("node_modules"),
        )
        .unwrap();
        project
    }

    /// A copy of the Jest fixture as a fresh clone has it: nothing installed.
    pub fn jest_without_modules() -> Self {
        let fixture = repo().join("fixtures/jest/basic");
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixture, dir.path());
        // The copy must not look newer than the install it links to, or the environment
        // check would rightly call node_modules stale.
        let lock = fixture.join("package-lock.json");
        let mtime = std::fs::metadata(&lock).unwrap().modified().unwrap();
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("package-lock.json"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        Project { dir }
    }

    /// A copy of the Playwright fixture. `node_modules` links to the fixture's own, which
    /// scripts/provision.sh installs from the lockfile; without it there is none, as in a
    /// fresh clone.
    pub fn playwright(with_node_modules: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fixture = repo().join("fixtures/playwright/basic");
        copy_dir(&fixture, dir.path());
        if with_node_modules {
            let modules = fixture.join("node_modules");
            assert!(
                modules.join("@playwright/test/cli.js").exists(),
                "no {}: run ./scripts/test.sh (or scripts/provision.sh) first",
                modules.display()
            );
            std::os::unix::fs::symlink(modules, dir.path().join("node_modules")).unwrap();
        }
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The Chromium the Playwright fixture runs with: $PW_CHROMIUM_PATH or Debian's. Tests
/// never skip without it: they fail and say how to provision it.
pub fn chromium() -> String {
    let path = std::env::var("PW_CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "no Chromium at {path}: run ./scripts/test.sh (or scripts/provision.sh), or set PW_CHROMIUM_PATH"
    );
    path
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            let skip = [
                "__pycache__",
                ".pytest_cache",
                "node_modules",
                "test-results",
            ];
            if skip.iter().any(|n| e.file_name() == *n) {
                continue;
            }
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A unique marker put into a run's environment; every process of the run inherits it.
pub fn token() -> String {
    format!("tr-test-{}-{}", std::process::id(), fastrand_u64())
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

/// Pids of live (non-zombie) processes whose environment holds `TESTRELAY_TEST_TOKEN=<token>`.
pub fn processes_with_token(token: &str) -> Vec<i32> {
    let needle = format!("TESTRELAY_TEST_TOKEN={token}");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        if !zombie && env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

/// SIGKILL every process carrying the token (for runs the test started itself).
pub fn kill_token(token: &str) {
    for pid in processes_with_token(token) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Wait (bounded) until no process of the run is left; returns what is still alive.
pub fn wait_no_processes(token: &str, within: Duration) -> Vec<i32> {
    let deadline = Instant::now() + within;
    loop {
        let left = processes_with_token(token);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait (bounded) for a file to appear, e.g. the marker a hanging test writes.
pub fn wait_for_file(path: &Path, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {within:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server as an IDE starts it, driven by rmcp's client.
pub struct Server {
    pub client: RunningService<RoleClient, ()>,
    pub pid: u32,
}

pub async fn start_server(state: &Path, workspace: Option<&Path>) -> Server {
    start_server_with_env(state, workspace, &[], &[]).await
}

/// The server with variables set (`set`) or removed (`unset`) in its environment.
pub async fn start_server_with_env(
    state: &Path,
    workspace: Option<&Path>,
    set: &[(&str, &str)],
    unset: &[&str],
) -> Server {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.env("TESTRELAY_STATE_DIR", state)
        .env_remove("TESTRELAY_WORKSPACE")
        .env_remove("VIRTUAL_ENV");
    for (k, v) in set {
        cmd.env(k, v);
    }
    for k in unset {
        cmd.env_remove(k);
    }
    if let Some(w) = workspace {
        cmd.arg("--workspace").arg(w);
    }
    let (transport, _stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = transport.id().expect("server pid");
    let client = ().serve(transport).await.expect("initialize");
    Server { client, pid }
}

impl Server {
    /// Call a tool; returns (structuredContent, isError, text of the first content block).
    pub async fn call(&self, name: &str, args: Value) -> (Value, bool, String) {
        let args = args.as_object().cloned().unwrap_or_default();
        let res = self
            .client
            .call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args))
            .await
            .unwrap_or_else(|e| panic!("{name} failed at the protocol level: {e}"));
        let text = res
            .content
            .first()
            .and_then(|c| c.as_text().map(|t| t.text.clone()))
            .unwrap_or_default();
        (
            res.structured_content.unwrap_or(Value::Null),
            res.is_error.unwrap_or(false),
            text,
        )
    }

    /// Call a tool and return the whole result, every content block included.
    pub async fn call_full(&self, name: &str, args: Value) -> CallToolResult {
        let args = args.as_object().cloned().unwrap_or_default();
        self.client
            .call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args))
            .await
            .unwrap_or_else(|e| panic!("{name} failed at the protocol level: {e}"))
    }

    pub async fn ok(&self, name: &str, args: Value) -> Value {
        let (v, is_error, text) = self.call(name, args).await;
        assert!(!is_error, "{name} returned an error: {text}");
        v
    }

    /// Poll with long waits until the job is final (bounded).
    pub async fn wait_final(&self, job_id: &str) -> Value {
        for _ in 0..10 {
            let v = self
                .ok(
                    "get_test_execution_status",
                    json!({"job_id": job_id, "wait_seconds": 30, "failures_limit": 50}),
                )
                .await;
            if !matches!(v["status"].as_str(), Some("queued" | "running")) {
                return v;
            }
        }
        panic!("job {job_id} did not finish");
    }
}

/// The server driven line by line, for protocol-level checks.
pub struct RawServer {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl RawServer {
    pub fn start(state: &Path, extra_env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.env("TESTRELAY_STATE_DIR", state)
            .env_remove("TESTRELAY_WORKSPACE");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        Self::spawn(cmd)
    }

    /// Start `cmd` (the binary with the caller's environment, cwd and arguments) with
    /// piped stdin and stdout.
    pub fn spawn(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        RawServer {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    pub fn send(&mut self, v: Value) {
        self.send_line(&v.to_string());
    }

    /// Read lines until the response with `id` (bounded); every line is kept in `seen`.
    pub fn response(&mut self, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let line = match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(l) => l,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no response to id {id}; saw {:?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("server closed stdout; saw {:?}", self.seen)
                }
            };
            self.seen.push(line.clone());
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    pub fn initialize(&mut self, version: &str) -> Value {
        self.send(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion": version, "capabilities": {}, "clientInfo": {"name":"raw-test","version":"0"}}}));
        let r = self.response(0);
        self.send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        r
    }

    pub fn call(&mut self, id: i64, name: &str, args: Value) -> Value {
        self.send(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":args}}));
        self.response(id)
    }

    /// Long-poll a job's status, with request ids from `id` on, until it is final (at most
    /// ten polls); returns the status and the next free request id.
    pub fn wait_final(&mut self, job_id: &str, mut id: i64) -> (Value, i64) {
        for _ in 0..10 {
            let r = self.call(
                id,
                "get_test_execution_status",
                json!({"job_id": job_id, "wait_seconds": 30}),
            );
            id += 1;
            let s = r["result"]["structuredContent"].clone();
            if !matches!(s["status"].as_str(), Some("queued" | "running")) {
                return (s, id);
            }
        }
        panic!("job {job_id} did not finish");
    }

    /// Close stdin (as an IDE does on shutdown) and wait, bounded, for the exit.
    pub fn close_and_wait(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        drop(self.stdin.take());
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Compare `actual` with the snapshot file, or rewrite it when UPDATE_SNAPSHOTS=1.
pub fn assert_snapshot(name: &str, actual: &str) {
    let path = repo().join("tests/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}: run with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "snapshot {name} differs; review and rerun with UPDATE_SNAPSHOTS=1 if intended.\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

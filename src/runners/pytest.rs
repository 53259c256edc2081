//! pytest: detect, plan, check and collect.
//!
//! Results come from testrelay's own pytest plugin (`pytest_plugin.py`), which the job
//! writes into its directory and loads with `-p testrelay_pytest`. It streams one JSON line
//! per finished test, so a cancelled or timed-out run keeps every test that finished, and
//! it reports how many tests were collected, so progress has a total. Nothing is installed
//! into the project's environment.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::plan::{
    EnvironmentCheck, Plan, ProbeOutput, ProbePlan, Progress, RunRequest, RunnerError, SupportFile,
    Verdict,
};
use super::python::{find_python, in_environment, project_tool};
use super::{Framework, HostEnv, PythonSource, ToolSource};
use crate::report::{FileError, TestCase, TestReport, TestStatus};

pub const EVENTS_FILE: &str = "events.jsonl";
const PLUGIN_DIR: &str = "pytest-plugin";
const PLUGIN: SupportFile = SupportFile {
    relative: "pytest-plugin/testrelay_pytest.py",
    contents: include_str!("pytest_plugin.py"),
};

/// Prints what the check needs as one JSON line; runs in the project's interpreter.
const PROBE_SCRIPT: &str = r#"import json, sys
from importlib import metadata
def ver(name):
    try:
        return metadata.version(name)
    except Exception:
        return None
try:
    plugins = sorted({ep.dist.name for ep in metadata.entry_points(group="pytest11") if ep.dist})
except Exception:
    plugins = []
print(json.dumps({"python": sys.version.split()[0], "pytest": ver("pytest"), "plugins": plugins}))
"#;

const SKIP_DIRS: [&str; 8] = [
    "node_modules",
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    ".tox",
    "site-packages",
    "dist",
];

/// Files that show the project uses pytest.
pub fn detect(dir: &Path) -> Vec<String> {
    let mut evidence = Vec::new();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    if dir.join("pytest.ini").is_file() {
        evidence.push("pytest.ini".to_string());
    }
    let pyproject = read("pyproject.toml");
    if pyproject.contains("[tool.pytest") {
        evidence.push("pyproject.toml [tool.pytest.ini_options]".to_string());
    }
    if read("setup.cfg").contains("[tool:pytest]") {
        evidence.push("setup.cfg [tool:pytest]".to_string());
    }
    if read("tox.ini").contains("[pytest]") {
        evidence.push("tox.ini [pytest]".to_string());
    }
    if dir.join("conftest.py").is_file() {
        evidence.push("conftest.py".to_string());
    }
    if evidence.is_empty()
        && let Some(file) = find_test_file(dir, 3)
    {
        evidence.push(file);
    }
    evidence
}

/// A `test_*.py` or `*_test.py` file at most `depth` levels down, skipping dependencies.
fn find_test_file(dir: &Path, depth: usize) -> Option<String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    let mut subdirs = Vec::new();
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_file()
            && name.ends_with(".py")
            && (name.starts_with("test_") || name.ends_with("_test.py"))
        {
            return Some(name);
        }
        if ft.is_dir() && depth > 0 && !SKIP_DIRS.contains(&name.as_str()) && !name.starts_with('.')
        {
            subdirs.push((name, e.path()));
        }
    }
    subdirs
        .into_iter()
        .find_map(|(name, path)| find_test_file(&path, depth - 1).map(|f| format!("{name}/{f}")))
}

fn venv_setup(project: &Path, tool: &str) -> Vec<String> {
    match tool {
        "uv" => vec!["uv sync".into(), "uv add --dev pytest".into()],
        "poetry" => vec![
            "poetry install".into(),
            "poetry add --group dev pytest".into(),
        ],
        "pipenv" => vec!["pipenv install --dev pytest".into()],
        _ => {
            let mut cmds = vec!["python3 -m venv .venv".to_string()];
            for req in ["requirements-dev.txt", "requirements.txt"] {
                if project.join(req).is_file() {
                    cmds.push(format!(".venv/bin/python -m pip install -r {req}"));
                }
            }
            cmds.push(".venv/bin/python -m pip install pytest".into());
            cmds
        }
    }
}

fn install_pytest(interpreter: &str, tool: &str) -> String {
    match tool {
        "uv" => "uv add --dev pytest".into(),
        "poetry" => "poetry add --group dev pytest".into(),
        "pipenv" => "pipenv install --dev pytest".into(),
        _ => format!("{interpreter} -m pip install pytest"),
    }
}

fn base_check(dir: &Path) -> EnvironmentCheck {
    EnvironmentCheck::new(Framework::Pytest, detect(dir))
}

pub fn probe(
    dir: &Path,
    stop_at: Option<&Path>,
    env: &HostEnv,
) -> Result<ProbePlan, Box<EnvironmentCheck>> {
    let tool = project_tool(dir);
    let Some(py) = find_python(dir, stop_at, env) else {
        let mut check = base_check(dir);
        check.missing.push(
            "a Python interpreter (no virtualenv in the project and no python3 on PATH)".into(),
        );
        check.setup_commands = venv_setup(dir, tool);
        check
            .notes
            .push("install Python 3 first if `python3` is not available".into());
        return Err(Box::new(check));
    };
    Ok(ProbePlan {
        program: py.interpreter.clone(),
        args: vec!["-c".into(), PROBE_SCRIPT.into()],
        cwd: dir.to_path_buf(),
        toolchain: py.describe(),
        project_tool: tool,
    })
}

#[derive(Deserialize)]
struct ProbeReply {
    python: String,
    pytest: Option<String>,
    #[serde(default)]
    plugins: Vec<String>,
}

pub fn check(dir: &Path, plan: &ProbePlan, out: &ProbeOutput) -> EnvironmentCheck {
    let mut check = base_check(dir);
    check.toolchain = Some(plan.toolchain.clone());
    let interpreter = plan.program.display().to_string();
    let Some(reply) = out.reply::<ProbeReply>() else {
        let why = out.failure();
        check.missing.push(format!(
            "a working Python interpreter ({interpreter} failed: {why})"
        ));
        check.setup_commands = venv_setup(dir, plan.project_tool);
        return check;
    };
    check.runtime_version = Some(reply.python);
    check.plugins = reply.plugins;
    let isolated = in_environment(&plan.program);
    if !isolated {
        check.notes.push(
            "no project virtualenv found; using an interpreter outside the project. A project venv (.venv) keeps test dependencies isolated".into(),
        );
    }
    match reply.pytest {
        Some(v) => {
            check.version = Some(v);
            check.ready = true;
        }
        None => {
            check
                .missing
                .push(format!("pytest is not installed in {interpreter}"));
            if isolated {
                check
                    .setup_commands
                    .push(install_pytest(&interpreter, plan.project_tool));
            } else {
                check.setup_commands = venv_setup(dir, plan.project_tool);
            }
        }
    }
    if check.detected_by.is_empty() {
        check
            .notes
            .push("no pytest configuration or test_*.py files found in this directory".into());
    }
    check
}

pub fn plan(
    dir: &Path,
    stop_at: Option<&Path>,
    job_dir: &Path,
    request: &RunRequest,
    env: &HostEnv,
) -> Result<Plan, RunnerError> {
    let py = find_python(dir, stop_at, env).ok_or_else(|| {
        RunnerError::NotReady(format!(
            "no Python interpreter found for {}: create a virtualenv (python3 -m venv .venv) or install Python 3",
            dir.display()
        ))
    })?;
    let mut args: Vec<String> = [
        "-m",
        "pytest",
        "-p",
        "testrelay_pytest",
        "--continue-on-collection-errors",
        "--color=no",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    if let Some(k) = &request.keyword {
        args.extend(["-k".into(), k.clone()]);
    }
    if let Some(m) = &request.markers {
        args.extend(["-m".into(), m.clone()]);
    }
    args.extend(request.extra_args.iter().cloned());
    args.extend(request.tests.iter().cloned());

    let plugin_dir = job_dir.join(PLUGIN_DIR).display().to_string();
    let python_path = match env.get("PYTHONPATH") {
        Some(existing) => format!(
            "{existing}{}{plugin_dir}",
            if cfg!(windows) { ';' } else { ':' }
        ),
        None => plugin_dir,
    };
    let mut vars = vec![
        ("PYTHONPATH".to_string(), python_path),
        (
            "TESTRELAY_PYTEST_EVENTS".to_string(),
            job_dir.join(EVENTS_FILE).display().to_string(),
        ),
        ("PYTHONUNBUFFERED".to_string(), "1".to_string()),
        ("NO_COLOR".to_string(), "1".to_string()),
        ("PY_COLORS".to_string(), "0".to_string()),
    ];
    // Tests that start `python` themselves should get the interpreter that runs them: the
    // project's environment as if it were activated, or the one a version manager or the
    // login shell provided when the inherited PATH has none.
    let path = env.vars().remove("PATH");
    let path = path.as_deref().unwrap_or("/usr/bin:/bin");
    let bin = py.interpreter.parent();
    match (&py.source, &py.prefix, bin) {
        (_, Some(prefix), Some(bin)) if py.is_isolated() => {
            vars.push(("VIRTUAL_ENV".into(), prefix.display().to_string()));
            vars.push(("PATH".into(), format!("{}:{path}", bin.display())));
        }
        (PythonSource::Outside(source), _, Some(bin)) if *source != ToolSource::Path => {
            vars.push(("PATH".into(), format!("{}:{path}", bin.display())));
        }
        _ => {}
    }
    Ok(Plan {
        framework: Framework::Pytest,
        program: py.interpreter.clone(),
        args,
        cwd: dir.to_path_buf(),
        env: vars,
        support_files: vec![PLUGIN],
        toolchain: py.describe(),
    })
}

/// One line of the plugin's event file.
#[derive(Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    Start {
        pytest_version: Option<String>,
    },
    CollectError {
        nodeid: String,
        longrepr: Option<String>,
    },
    Collected {
        count: u64,
    },
    TestStart {
        file: Option<String>,
    },
    Test(Box<TestEvent>),
    Finish {
        exitstatus: i32,
    },
}

#[derive(Deserialize)]
struct TestEvent {
    nodeid: String,
    /// What reruns this entry when it differs from the node id (a subtest's parent).
    selector: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    status: TestStatus,
    raw_status: String,
    duration: f64,
    start: Option<f64>,
    message: Option<String>,
    trace: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    failed_at: Option<String>,
}

/// Builds the report from the plugin's events as they arrive.
#[derive(Default)]
pub struct Collector {
    version: Option<String>,
    collected: Option<u64>,
    tests: Vec<TestCase>,
    index: HashMap<String, usize>,
    file_errors: Vec<FileError>,
    current_file: Option<String>,
    /// Test items finished (a failed subtest is an extra entry, not an extra item).
    finished: u64,
    failed: u64,
    start_ms: Option<u64>,
    finish_status: Option<i32>,
}

/// The decisive lines of a pytest error: the `E   ` lines, else the last line.
fn decisive_message(longrepr: &str) -> String {
    let e_lines: Vec<&str> = longrepr
        .lines()
        .filter_map(|l| l.strip_prefix("E "))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if !e_lines.is_empty() {
        return e_lines.join("\n");
    }
    longrepr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Split a node id into its enclosing suite and short name:
/// `tests/a.py::TestX::test_y[1]` → (`["tests/a.py", "TestX"]`, `test_y[1]`).
fn split_nodeid(nodeid: &str) -> (Vec<String>, String) {
    // Parameters may contain "::"; split only the part before the first '['.
    let (head, params) = match nodeid.find('[') {
        Some(i) => nodeid.split_at(i),
        None => (nodeid, ""),
    };
    let mut parts: Vec<String> = head.split("::").map(String::from).collect();
    let name = format!("{}{params}", parts.pop().unwrap_or_default());
    (parts, name)
}

impl Collector {
    pub fn feed_line(&mut self, line: &str) {
        let Ok(event) = serde_json::from_str::<Event>(line) else {
            return;
        };
        match event {
            Event::Start { pytest_version } => self.version = pytest_version,
            Event::Collected { count } => self.collected = Some(count),
            Event::CollectError { nodeid, longrepr } => {
                let details = longrepr.unwrap_or_default();
                self.file_errors.push(FileError {
                    file: nodeid,
                    message: decisive_message(&details),
                    details: Some(details),
                });
            }
            Event::TestStart { file } => self.current_file = file,
            Event::Test(t) => {
                let t = *t;
                let (suite, name) = split_nodeid(&t.nodeid);
                if t.status.is_problem() {
                    self.failed += 1;
                }
                if t.selector.is_none() {
                    self.finished += 1;
                }
                if let Some(s) = t.start {
                    let ms = (s * 1000.0) as u64;
                    self.start_ms = Some(self.start_ms.map_or(ms, |m| m.min(ms)));
                }
                let case = TestCase {
                    name,
                    suite,
                    file: t.file,
                    line: t.line,
                    status: t.status,
                    raw_status: t.raw_status,
                    duration_ms: t.duration * 1000.0,
                    message: t.message,
                    trace: t.trace,
                    stdout: t.stdout,
                    stderr: t.stderr,
                    selector: t.selector.unwrap_or_else(|| t.nodeid.clone()),
                    failed_at: t.failed_at,
                    attachments: Vec::new(),
                    retries: 0,
                    flaky: false,
                };
                // A rerun plugin may report a node id twice; the last report wins.
                match self.index.get(&t.nodeid) {
                    Some(&i) => self.tests[i] = case,
                    None => {
                        self.index.insert(t.nodeid, self.tests.len());
                        self.tests.push(case);
                    }
                }
            }
            Event::Finish { exitstatus } => {
                self.finish_status = Some(exitstatus);
                self.current_file = None;
            }
        }
    }

    pub fn progress(&self) -> Progress {
        Progress {
            done: self.finished,
            total: self.collected,
            failed: self.failed + self.file_errors.len() as u64,
            current_file: self.current_file.clone(),
        }
    }

    pub fn report(&self) -> TestReport {
        let mut r = TestReport::new("pytest");
        r.tool.version = self.version.clone();
        r.tests = self.tests.clone();
        r.file_errors = self.file_errors.clone();
        r.start_ms = self.start_ms;
        r
    }

    pub fn classify(
        &self,
        exit_code: Option<i32>,
        report: &TestReport,
        stderr_tail: &str,
    ) -> Verdict {
        let quoted = || {
            super::text::last_error_line(stderr_tail)
                .map(|l| format!(": {l}"))
                .unwrap_or_default()
        };
        let started = self.version.is_some() || self.finish_status.is_some();
        match exit_code {
            None => Verdict::Broken("pytest was killed by a signal".into()),
            Some(code) if code != 0 && !started => {
                Verdict::Broken(format!("pytest did not start (exit status {code}){}", quoted()))
            }
            Some(0) if report.tests.is_empty() => Verdict::Broken("pytest ran no tests".into()),
            Some(0) => Verdict::Passed,
            Some(1) if report.has_problems() => Verdict::Failed,
            Some(1) => Verdict::Broken(format!("pytest exited with status 1 but reported no failures{}", quoted())),
            Some(2) => Verdict::Broken(format!("pytest was interrupted{}", quoted())),
            Some(3) => Verdict::Broken(format!("pytest hit an internal error{}", quoted())),
            Some(4) => Verdict::Broken(format!("pytest usage error{}", quoted())),
            Some(5) => Verdict::Broken(
                "no tests were collected: check the selection (paths, node ids, -k or -m expression)".into(),
            ),
            Some(code) => Verdict::Broken(format!("pytest exited with status {code}{}", quoted())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_collector() -> Collector {
        let text = include_str!("../../fixtures/reports/pytest-events.jsonl");
        let mut c = Collector::default();
        for line in text.lines() {
            c.feed_line(line);
        }
        c
    }

    #[test]
    fn parses_the_captured_fixture_run() {
        let c = fixture_collector();
        let r = c.report();
        let s = r.summary();
        assert_eq!(
            (s.total, s.passed, s.failed, s.errors, s.skipped),
            (15, 7, 3, 2, 4)
        );
        assert_eq!(r.tool.version.as_deref(), Some("9.2.0"));
        let failed: Vec<_> = r
            .tests
            .iter()
            .filter(|t| t.status.is_problem())
            .map(|t| t.selector.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "tests/test_basic.py::test_fails",
                "tests/test_basic.py::test_param[3]",
                "tests/test_fixture_error.py::test_uses_broken_fixture",
                "tests/test_subtests.py::LastTests::test_basic"
            ]
        );
        let fails = &r.tests[1];
        assert_eq!(fails.name, "test_fails");
        assert_eq!(
            (fails.file.as_deref(), fails.line),
            (Some("tests/test_basic.py"), Some(14))
        );
        assert!(
            fails
                .message
                .as_deref()
                .unwrap()
                .starts_with("AssertionError: add should sum its arguments")
        );
        assert!(
            fails
                .trace
                .as_deref()
                .unwrap()
                .contains("tests/test_basic.py:15: AssertionError")
        );
        assert_eq!(fails.failed_at.as_deref(), Some("tests/test_basic.py:15"));
        let class_test = r.tests.iter().find(|t| t.name == "test_in_class").unwrap();
        assert_eq!(class_test.suite, ["tests/test_basic.py", "TestGroup"]);
        let xfail = r.tests.iter().find(|t| t.name == "test_xfail").unwrap();
        assert_eq!(
            (xfail.status, xfail.raw_status.as_str()),
            (TestStatus::Skipped, "xfailed")
        );
        let printed = r
            .tests
            .iter()
            .find(|t| t.name == "test_prints_output")
            .unwrap();
        assert_eq!(printed.stdout.as_deref(), Some("hello from stdout\n"));
        assert_eq!(r.file_errors.len(), 1);
        assert_eq!(r.file_errors[0].file, "tests/test_broken.py");
        assert_eq!(
            r.file_errors[0].message,
            "ModuleNotFoundError: No module named 'not_a_real_module_for_testrelay'"
        );
        let sub = r
            .tests
            .iter()
            .find(|t| t.raw_status == "subfailed")
            .unwrap();
        assert_eq!(sub.name, "test_basic (n='2')");
        assert_eq!(sub.suite, ["tests/test_subtests.py", "LastTests"]);
        assert_eq!(
            sub.message.as_deref(),
            Some("AssertionError: 2 not less than 2")
        );
        assert_eq!(
            c.progress(),
            Progress {
                done: 14,
                total: Some(14),
                failed: 5,
                current_file: None
            }
        );
        assert_eq!(c.classify(Some(1), &r, ""), Verdict::Failed);
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_progress_is_partial() {
        let text = include_str!("../../fixtures/reports/pytest-events.jsonl");
        let mut c = Collector::default();
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines[..8] {
            c.feed_line(line);
        }
        c.feed_line(&lines[8][..20]);
        let p = c.progress();
        assert_eq!((p.done, p.total), (4, Some(14)));
        assert_eq!(p.current_file.as_deref(), Some("tests/test_basic.py"));
    }

    #[test]
    fn exit_codes_are_told_apart() {
        let mut c = Collector::default();
        let empty = TestReport::new("pytest");
        let not_started = c.classify(
            Some(4),
            &empty,
            "ERROR: usage: pytest [options]\npytest: error: unrecognized arguments: --bogus\n",
        );
        assert_eq!(not_started, Verdict::Broken("pytest did not start (exit status 4): pytest: error: unrecognized arguments: --bogus".into()));
        c.feed_line(r#"{"event": "start", "pytest_version": "9.2.0", "rootdir": "/p"}"#);
        assert_eq!(
            c.classify(Some(0), &empty, ""),
            Verdict::Broken("pytest ran no tests".into())
        );
        assert!(
            matches!(c.classify(Some(5), &empty, ""), Verdict::Broken(r) if r.contains("no tests were collected"))
        );
        let usage = c.classify(
            Some(4),
            &empty,
            "ERROR: file or directory not found: tests/nope.py\n\n",
        );
        assert_eq!(
            usage,
            Verdict::Broken(
                "pytest usage error: ERROR: file or directory not found: tests/nope.py".into()
            )
        );
        assert!(matches!(c.classify(None, &empty, ""), Verdict::Broken(r) if r.contains("signal")));
    }

    #[test]
    fn node_ids_split_into_suite_and_name() {
        assert_eq!(
            split_nodeid("a.py::T::t[x::y]"),
            (vec!["a.py".into(), "T".into()], "t[x::y]".into())
        );
        assert_eq!(split_nodeid("a.py::t"), (vec!["a.py".into()], "t".into()));
    }

    #[test]
    fn detects_config_and_plain_test_files() {
        let d = tempfile::tempdir().unwrap();
        assert!(detect(d.path()).is_empty());
        std::fs::create_dir_all(d.path().join("node_modules/x")).unwrap();
        std::fs::write(d.path().join("node_modules/x/test_dep.py"), "").unwrap();
        assert!(detect(d.path()).is_empty());
        std::fs::create_dir_all(d.path().join("pkg/tests")).unwrap();
        std::fs::write(d.path().join("pkg/tests/test_a.py"), "").unwrap();
        assert_eq!(detect(d.path()), ["pkg/tests/test_a.py"]);
        std::fs::write(d.path().join("pytest.ini"), "[pytest]\n").unwrap();
        assert_eq!(detect(d.path()), ["pytest.ini"]);
    }

    #[test]
    fn plan_loads_the_plugin_and_refuses_option_injection() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(".venv/bin")).unwrap();
        std::fs::write(d.path().join(".venv/pyvenv.cfg"), "").unwrap();
        std::fs::write(d.path().join(".venv/bin/python"), "").unwrap();
        let env = HostEnv::from_pairs([("PATH".to_string(), "/usr/bin".to_string())]);
        let req = RunRequest {
            tests: vec!["tests/test_a.py::t".into()],
            keyword: Some("a or b".into()),
            ..Default::default()
        };
        let plan = plan(d.path(), None, Path::new("/state/job"), &req, &env).unwrap();
        assert_eq!(plan.program, d.path().join(".venv/bin/python"));
        assert_eq!(
            plan.args,
            [
                "-m",
                "pytest",
                "-p",
                "testrelay_pytest",
                "--continue-on-collection-errors",
                "--color=no",
                "-k",
                "a or b",
                "tests/test_a.py::t"
            ]
        );
        let env_of = |k: &str| {
            plan.env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(env_of("PYTHONPATH"), Some("/state/job/pytest-plugin"));
        assert_eq!(
            env_of("TESTRELAY_PYTEST_EVENTS"),
            Some("/state/job/events.jsonl")
        );
        assert!(
            env_of("PATH")
                .unwrap()
                .starts_with(&d.path().join(".venv/bin").display().to_string())
        );
        let bad = RunRequest {
            tests: vec!["--help".into()],
            ..Default::default()
        };
        let via_dispatch = crate::runners::plan(
            Framework::Pytest,
            d.path(),
            None,
            Path::new("/j"),
            &bad,
            &env,
        );
        assert!(matches!(via_dispatch, Err(RunnerError::BadSelection(_))));
    }
}

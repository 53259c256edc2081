//! Runner adapters: detect a framework, plan its command, read its results.
//!
//! This module is pure: given a project directory and a request it returns a [`Plan`]
//! (program, argv, env, support files to write); given the event lines a job produced it
//! builds a [`TestReport`](crate::report::TestReport). It never spawns a process: `jobs/`
//! runs plans and environment probes and hands the output back here. Every framework is
//! one file with the same faces (detect, plan, probe/check, collect, classify), dispatched
//! by an exhaustive `match` on [`Framework`].

mod engines;
mod env;
mod jest;
mod jest_results;
pub mod node;
mod node_project;
mod plan;
mod playwright;
mod playwright_results;
mod pytest;
mod python;
mod text;
mod toolchain;

pub use env::{HostEnv, LoginShell};
pub use plan::{
    Detection, EnvironmentCheck, Plan, ProbeOutput, ProbePlan, Progress, RunRequest, RunnerError,
    SupportFile, Verdict,
};
pub use python::{PythonEnv, PythonSource};
pub use toolchain::{Tool, ToolSource, locate_node, locate_python, tilde};

use std::path::Path;

use crate::report::TestReport;

/// A test framework testrelay knows how to run.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    Pytest,
    Jest,
    Playwright,
}

impl Framework {
    pub const ALL: [Framework; 3] = [Framework::Pytest, Framework::Jest, Framework::Playwright];

    pub fn name(self) -> &'static str {
        match self {
            Framework::Pytest => "pytest",
            Framework::Jest => "jest",
            Framework::Playwright => "playwright",
        }
    }
}

impl std::fmt::Display for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Framework {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Framework::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let known: Vec<_> = Framework::ALL.iter().map(|f| f.name()).collect();
                format!("unknown framework '{s}' (known: {})", known.join(", "))
            })
    }
}

/// Frameworks found in `dir`, each with the files that gave it away.
pub fn detect(dir: &Path) -> Vec<Detection> {
    Framework::ALL
        .into_iter()
        .filter_map(|f| {
            let evidence = match f {
                Framework::Pytest => pytest::detect(dir),
                Framework::Jest => jest::detect(dir),
                Framework::Playwright => playwright::detect(dir),
            };
            (!evidence.is_empty()).then_some(Detection {
                framework: f,
                evidence,
            })
        })
        .collect()
}

/// The framework to run in `dir`: the explicit one, else the only one detected.
pub fn choose(dir: &Path, explicit: Option<Framework>) -> Result<Framework, RunnerError> {
    if let Some(f) = explicit {
        return Ok(f);
    }
    let found = detect(dir);
    match found.as_slice() {
        [one] => Ok(one.framework),
        [] => Err(RunnerError::NothingDetected(dir.to_path_buf())),
        many => Err(RunnerError::Ambiguous(
            dir.to_path_buf(),
            many.iter()
                .map(|d| d.framework.name())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

/// True when the program `framework` runs under (Python, Node.js) can be found for `dir`
/// with `env`, from files alone. `jobs` asks this before it reads the login shell, which
/// costs a process and up to a few seconds.
pub fn toolchain_found(
    framework: Framework,
    dir: &Path,
    stop_at: Option<&Path>,
    env: &HostEnv,
) -> bool {
    match framework {
        Framework::Pytest => python::find_python(dir, stop_at, env).is_some(),
        Framework::Jest | Framework::Playwright => locate_node(Some(dir), env).is_some(),
    }
}

/// The command that checks a project's toolchain for `framework`, or the check's final
/// answer when no command is needed (for example when no interpreter exists at all).
pub fn probe(
    framework: Framework,
    dir: &Path,
    stop_at: Option<&Path>,
    env: &HostEnv,
) -> Result<ProbePlan, Box<EnvironmentCheck>> {
    match framework {
        Framework::Pytest => pytest::probe(dir, stop_at, env),
        Framework::Jest => jest::probe(dir, stop_at, env),
        Framework::Playwright => playwright::probe(dir, stop_at, env),
    }
}

/// Interpret the output of [`probe`]'s command.
pub fn check(
    framework: Framework,
    dir: &Path,
    plan: &ProbePlan,
    out: &ProbeOutput,
) -> EnvironmentCheck {
    match framework {
        Framework::Pytest => pytest::check(dir, plan, out),
        Framework::Jest => jest::check(dir, plan, out),
        Framework::Playwright => playwright::check(dir, plan, out),
    }
}

/// Plan a run. `job_dir` is where the runner's machine-readable output must go.
pub fn plan(
    framework: Framework,
    dir: &Path,
    stop_at: Option<&Path>,
    job_dir: &Path,
    request: &RunRequest,
    env: &HostEnv,
) -> Result<Plan, RunnerError> {
    // Selections are paths or test ids; options belong in `extra_args`, for every framework.
    if let Some(bad) = request
        .tests
        .iter()
        .find(|t| t.starts_with('-') || t.trim().is_empty())
    {
        return Err(RunnerError::BadSelection(bad.clone()));
    }
    match framework {
        Framework::Pytest => pytest::plan(dir, stop_at, job_dir, request, env),
        Framework::Jest => jest::plan(dir, stop_at, job_dir, request, env),
        Framework::Playwright => playwright::plan(dir, stop_at, job_dir, request, env),
    }
}

/// The incremental reader of a running job's event file.
pub enum Collector {
    Pytest(pytest::Collector),
    Jest(jest::Collector),
    Playwright(playwright::Collector),
}

impl Collector {
    pub fn new(framework: Framework) -> Self {
        match framework {
            Framework::Pytest => Collector::Pytest(pytest::Collector::default()),
            Framework::Jest => Collector::Jest(jest::Collector::default()),
            Framework::Playwright => Collector::Playwright(playwright::Collector::default()),
        }
    }

    /// The file in the job directory that the runner streams its events to.
    pub fn events_file(framework: Framework) -> &'static str {
        match framework {
            Framework::Pytest => pytest::EVENTS_FILE,
            Framework::Jest => jest::EVENTS_FILE,
            Framework::Playwright => playwright::EVENTS_FILE,
        }
    }

    /// Feed one complete line of the event file.
    pub fn feed_line(&mut self, line: &str) {
        match self {
            Collector::Pytest(c) => c.feed_line(line),
            Collector::Jest(c) => c.feed_line(line),
            Collector::Playwright(c) => c.feed_line(line),
        }
    }

    /// Read the runner's end-of-run files from the job directory, after the last event
    /// line. Runners whose events are the whole story have nothing to read.
    pub fn finish(&mut self, job_dir: &Path) {
        match self {
            Collector::Pytest(_) | Collector::Jest(_) => {}
            Collector::Playwright(c) => c.finish(job_dir),
        }
    }

    pub fn progress(&self) -> Progress {
        match self {
            Collector::Pytest(c) => c.progress(),
            Collector::Jest(c) => c.progress(),
            Collector::Playwright(c) => c.progress(),
        }
    }

    pub fn report(&self) -> TestReport {
        match self {
            Collector::Pytest(c) => c.report(),
            Collector::Jest(c) => c.report(),
            Collector::Playwright(c) => c.report(),
        }
    }

    /// Judge a finished run from its exit code (None when killed by a signal), the report
    /// and the tail of the runner's stderr (only used to quote the runner's own words).
    pub fn classify(
        &self,
        exit_code: Option<i32>,
        report: &TestReport,
        stderr_tail: &str,
    ) -> Verdict {
        match self {
            Collector::Pytest(c) => c.classify(exit_code, report, stderr_tail),
            Collector::Jest(c) => c.classify(exit_code, report, stderr_tail),
            Collector::Playwright(c) => c.classify(exit_code, report, stderr_tail),
        }
    }
}

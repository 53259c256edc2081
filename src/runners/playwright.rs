//! Playwright: detect, plan, check and collect. Placeholder on the scaffold branch: the adapter
//! is being built and replaces every function here.

use std::path::Path;

use super::plan::{EnvironmentCheck, Plan, ProbePlan, Progress, RunRequest, RunnerError, Verdict};
use super::{Framework, HostEnv};
use crate::report::TestReport;

pub const EVENTS_FILE: &str = "playwright-events.jsonl";

pub fn detect(_dir: &Path) -> Vec<String> {
    Vec::new()
}

pub fn probe(
    dir: &Path,
    _stop_at: Option<&Path>,
    _env: &HostEnv,
) -> Result<ProbePlan, Box<EnvironmentCheck>> {
    Err(Box::new(EnvironmentCheck {
        framework: Framework::Playwright,
        detected_by: detect(dir),
        ready: false,
        toolchain: None,
        version: None,
        runtime_version: None,
        plugins: Vec::new(),
        missing: vec!["playwright support".into()],
        setup_commands: Vec::new(),
        notes: Vec::new(),
    }))
}

pub fn check(dir: &Path, _plan: &ProbePlan, _out: &super::plan::ProbeOutput) -> EnvironmentCheck {
    *probe(dir, None, &HostEnv::default()).unwrap_err()
}

pub fn plan(
    _dir: &Path,
    _stop_at: Option<&Path>,
    _job_dir: &Path,
    _request: &RunRequest,
    _env: &HostEnv,
) -> Result<Plan, RunnerError> {
    Err(RunnerError::NotReady(
        "playwright support is not built yet".into(),
    ))
}

#[derive(Default)]
pub struct Collector {
    report: Option<TestReport>,
}

impl Collector {
    pub fn feed_line(&mut self, _line: &str) {}

    pub fn progress(&self) -> Progress {
        Progress::default()
    }

    pub fn report(&self) -> TestReport {
        self.report
            .clone()
            .unwrap_or_else(|| TestReport::new("playwright"))
    }

    pub fn classify(
        &self,
        _exit_code: Option<i32>,
        _report: &TestReport,
        _stderr_tail: &str,
    ) -> Verdict {
        Verdict::Broken("playwright support is not built yet".into())
    }
}

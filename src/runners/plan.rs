//! The data types runner adapters exchange with the rest of testrelay.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::Framework;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(
        "no test framework detected in {0}: pass `framework` explicitly or point `path` at the project"
    )]
    NothingDetected(PathBuf),
    #[error("several test frameworks detected in {0} ({1}): pass `framework` to choose one")]
    Ambiguous(PathBuf, String),
    #[error("{0}")]
    NotReady(String),
    #[error(
        "invalid test selection '{0}': tests are paths or test ids; put options in `extra_args`"
    )]
    BadSelection(String),
    /// The request asks for something this framework cannot do; the text says what to do instead.
    #[error("{0}")]
    Unsupported(String),
}

/// Which tests to run and how. Empty means "the project's default test set".
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct RunRequest {
    /// Test files, directories or test ids (pytest node ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<String>,
    /// A name filter expression (pytest `-k`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// A marker expression (pytest `-m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markers: Option<String>,
    /// Extra command-line arguments passed to the runner as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
    /// Extra environment variables for the run. Values are never logged or echoed back.
    #[serde(default, skip_serializing)]
    pub env: BTreeMap<String, String>,
}

/// A file the runner needs that testrelay writes into the job directory first.
#[derive(Debug, Clone)]
pub struct SupportFile {
    /// Path relative to the job directory.
    pub relative: &'static str,
    pub contents: &'static str,
}

/// Everything needed to start a run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub framework: Framework,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// Variables set on top of the host environment.
    pub env: Vec<(String, String)>,
    pub support_files: Vec<SupportFile>,
    /// How the toolchain was found, e.g. `.venv (/p/.venv/bin/python)`.
    pub toolchain: String,
}

impl Plan {
    /// The command as a user would type it, for display.
    pub fn display_command(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .map(|a| {
                if a.contains(' ') || a.is_empty() {
                    format!("'{a}'")
                } else {
                    a
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A short command that inspects a toolchain (never a test run).
#[derive(Debug, Clone)]
pub struct ProbePlan {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// How the toolchain was found, reported back in the check.
    pub toolchain: String,
    pub project_tool: &'static str,
}

/// What a probe printed.
#[derive(Debug, Clone)]
pub struct ProbeOutput {
    /// None when the probe could not be started or was killed.
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl ProbeOutput {
    /// The probe's answer: the last line of stdout that parses as `T`, when it exited 0.
    pub fn reply<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        if self.exit_code != Some(0) {
            return None;
        }
        self.stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
    }

    /// Why a probe failed, in its own words: the last non-empty line of stderr.
    pub fn failure(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output")
    }
}

/// Readiness of one framework in one directory.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, PartialEq)]
pub struct EnvironmentCheck {
    pub framework: Framework,
    /// Files or settings that show the project uses this framework.
    pub detected_by: Vec<String>,
    /// True when a run can start now.
    pub ready: bool,
    /// The interpreter or binary that will run the tests, and how it was found.
    pub toolchain: Option<String>,
    /// Version of the framework itself, when installed.
    pub version: Option<String>,
    /// Version of the language runtime.
    pub runtime_version: Option<String>,
    /// Installed plugins that matter for runs.
    pub plugins: Vec<String>,
    /// What is missing, in words.
    pub missing: Vec<String>,
    /// Exact commands to run in the project directory, in order, to become ready.
    pub setup_commands: Vec<String>,
    pub notes: Vec<String>,
}

impl EnvironmentCheck {
    /// Not ready, nothing known yet: adapters fill in what their probe finds.
    pub fn new(framework: Framework, detected_by: Vec<String>) -> Self {
        EnvironmentCheck {
            framework,
            detected_by,
            ready: false,
            toolchain: None,
            version: None,
            runtime_version: None,
            plugins: Vec::new(),
            missing: Vec::new(),
            setup_commands: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// A framework found in a directory.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Detection {
    pub framework: Framework,
    pub evidence: Vec<String>,
}

/// Live progress of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Progress {
    /// Tests finished so far.
    pub done: u64,
    /// Tests selected for the run, once the runner has collected them.
    pub total: Option<u64>,
    /// Failed or errored so far.
    pub failed: u64,
    /// The file of the test running now.
    pub current_file: Option<String>,
}

/// How a finished run ended, judged from its exit code and report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// Tests ran and some failed.
    Failed,
    /// The run itself broke (usage error, nothing collected, crash), with the reason.
    Broken(String),
}

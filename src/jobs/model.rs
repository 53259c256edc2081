//! What a job is: its id, its state machine and the record persisted as `job.json`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::report::Summary;
use crate::runners::{Framework, Progress, RunRequest};

/// A job id like `20261121-061530-3fa2`: sortable by start time, safe as a directory name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    pub fn generate(now: SystemTime) -> Self {
        let stamp: String = humantime::format_rfc3339_seconds(now)
            .to_string()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        JobId(format!(
            "{}-{}-{:04x}",
            &stamp[..8],
            &stamp[8..14],
            fastrand::u16(..)
        ))
    }

    /// Accept only the shape [`JobId::generate`] makes, so an id can never name a path
    /// outside the jobs directory.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let ok = b.len() == 20
            && b.iter().enumerate().all(|(i, c)| match i {
                8 | 15 => *c == b'-',
                0..=14 => c.is_ascii_digit(),
                _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
            });
        ok.then(|| JobId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// queued → running → passed | failed | error | timed_out | cancelled;
/// `interrupted` when testrelay stopped while the job was queued or running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    /// Every selected test passed.
    Passed,
    /// Tests ran and some failed or errored.
    Failed,
    /// The run itself broke: could not start, usage error, nothing collected, crash.
    Error,
    TimedOut,
    Cancelled,
    Interrupted,
}

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Passed => "passed",
            JobStatus::Failed => "failed",
            JobStatus::Error => "error",
            JobStatus::TimedOut => "timed_out",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Interrupted => "interrupted",
        }
    }
}

/// The process that owns a running job, so a later start can tell a dead owner
/// (mark the job interrupted) from another live testrelay (leave it alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    pub start_ticks: Option<u64>,
}

/// `job.json`: everything known about a job, written atomically on every transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub status: JobStatus,
    /// Why a job ended as error, timed_out, cancelled or interrupted.
    pub reason: Option<String>,
    pub framework: Framework,
    pub project_dir: PathBuf,
    /// The runner command, for display.
    pub command: String,
    /// The interpreter or binary used, and how it was found.
    pub toolchain: String,
    pub request: RunRequest,
    /// Names of the extra environment variables given (values are never stored).
    #[serde(default)]
    pub env_keys: Vec<String>,
    pub timeout_secs: u64,
    pub idempotency_key: Option<String>,
    pub created_at_ms: u64,
    pub started_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub summary: Option<Summary>,
    /// Final progress (tests done / collected) once the job ended.
    #[serde(default)]
    pub done: u64,
    #[serde(default)]
    pub total: Option<u64>,
    pub owner: Owner,
    /// The supervisor process while the job runs; SIGTERM to it cancels the run.
    #[serde(default)]
    pub supervisor_pid: Option<u32>,
    /// The hosted service's test case this run executes (execute_test_case_directly);
    /// report_test_results maps the run's results to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_test_case_id: Option<String>,
}

impl JobRecord {
    pub fn duration_ms(&self, now_ms: u64) -> Option<u64> {
        let start = self.started_at_ms?;
        Some(self.finished_at_ms.unwrap_or(now_ms).saturating_sub(start))
    }

    pub fn progress_hint(&self) -> Progress {
        Progress {
            done: self.done,
            total: self.total,
            failed: 0,
            current_file: None,
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn format_ms(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_hostile_ids_do_not() {
        let id = JobId::generate(UNIX_EPOCH + std::time::Duration::from_secs(1_795_241_711));
        assert!(id.as_str().starts_with("20261121-"));
        assert_eq!(JobId::parse(id.as_str()), Some(id));
        for bad in [
            "",
            "../../etc/passwd",
            "20261121-061530-3FA2",
            "20261121-061530-3fa2/..",
            "2026112a-061530-3fa2",
        ] {
            assert_eq!(JobId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_queued_and_running_are_live() {
        assert!(!JobStatus::Queued.is_terminal());
        assert!(!JobStatus::Running.is_terminal());
        assert!(JobStatus::Interrupted.is_terminal());
        assert_eq!(
            serde_json::to_string(&JobStatus::TimedOut).unwrap(),
            "\"timed_out\""
        );
    }
}

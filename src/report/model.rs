//! The normalized report model shared by every runner adapter.

use serde::{Deserialize, Serialize};

/// The outcome of one test, in words every framework maps onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    Passed,
    Failed,
    /// The test could not run properly: a fixture or setup/teardown failure.
    Errored,
    Skipped,
    /// Declared but not implemented (Jest `todo`).
    Pending,
}

impl TestStatus {
    /// Failed and errored tests are what an agent needs to look at.
    pub fn is_problem(self) -> bool {
        matches!(self, TestStatus::Failed | TestStatus::Errored)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::Passed => "passed",
            TestStatus::Failed => "failed",
            TestStatus::Errored => "errored",
            TestStatus::Skipped => "skipped",
            TestStatus::Pending => "pending",
        }
    }
}

/// One test case as the runner reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    /// Short display name, e.g. `test_param[3]` or `TestGroup.test_in_class`.
    pub name: String,
    /// Enclosing hierarchy, outermost first (file, then classes or describe blocks).
    pub suite: Vec<String>,
    /// File path relative to the project directory, forward slashes.
    pub file: Option<String>,
    /// 1-based line of the test definition.
    pub line: Option<u32>,
    pub status: TestStatus,
    /// The runner's own word (`xfailed`, `xpassed`, `error`, `todo`, ...).
    pub raw_status: String,
    pub duration_ms: f64,
    /// One-line reason: the assertion or exception message, or the skip reason.
    pub message: Option<String>,
    /// Full failure text as the runner printed it.
    pub trace: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    /// An argument that reruns exactly this test with the same runner (a pytest node id).
    pub selector: String,
    /// Where it failed: the deepest frame in the test's own file (else the crash site),
    /// as `path:line`. Unlike `line`, which is where the test is defined.
    #[serde(default)]
    pub failed_at: Option<String>,
    /// Files the runner saved for this test (screenshots, traces, error context), with
    /// absolute paths inside the job directory. Their content is data produced by the
    /// test, never instructions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// How many times the test was retried after its first attempt.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// Passed only after failing at least once (on a retry).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flaky: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A file a test run saved about one test, e.g. a failure screenshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The runner's name for it: `screenshot`, `trace`, `error-context`, `video`, ...
    pub name: String,
    /// MIME type, e.g. `image/png`.
    pub content_type: String,
    /// Absolute path.
    pub path: String,
}

/// A file that could not be loaded at all (import or syntax error), so none of its tests ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileError {
    pub file: String,
    /// The decisive line of the error, e.g. `ModuleNotFoundError: No module named 'x'`.
    pub message: String,
    /// The full error text.
    pub details: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: Option<String>,
}

/// Everything a run produced, in runner order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    pub tool: ToolInfo,
    pub tests: Vec<TestCase>,
    pub file_errors: Vec<FileError>,
    /// Milliseconds since the Unix epoch when the first test started, when known.
    pub start_ms: Option<u64>,
}

/// Counts by outcome. `errors` counts errored tests plus files that failed to load,
/// which is how pytest counts them in its own summary line.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Summary {
    /// Test cases reported (file-level errors are not test cases).
    pub total: u64,
    pub passed: u64,
    pub failed: u64,
    pub errors: u64,
    pub skipped: u64,
    pub pending: u64,
}

impl TestReport {
    pub fn new(tool: &str) -> Self {
        TestReport {
            tool: ToolInfo {
                name: tool.to_string(),
                version: None,
            },
            tests: Vec::new(),
            file_errors: Vec::new(),
            start_ms: None,
        }
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            errors: self.file_errors.len() as u64,
            ..Summary::default()
        };
        for t in &self.tests {
            s.total += 1;
            match t.status {
                TestStatus::Passed => s.passed += 1,
                TestStatus::Failed => s.failed += 1,
                TestStatus::Errored => s.errors += 1,
                TestStatus::Skipped => s.skipped += 1,
                TestStatus::Pending => s.pending += 1,
            }
        }
        s
    }

    /// Whether anything needs fixing: a failed or errored test, or a file that did not load.
    pub fn has_problems(&self) -> bool {
        !self.file_errors.is_empty() || self.tests.iter().any(|t| t.status.is_problem())
    }

    /// Sum of test durations in milliseconds.
    pub fn total_duration_ms(&self) -> f64 {
        self.tests.iter().map(|t| t.duration_ms).sum()
    }
}

impl Summary {
    /// `2 failed, 6 passed, 4 skipped, 2 errors`: non-zero counts, problems first.
    pub fn describe(&self) -> String {
        let parts = [
            (self.failed, "failed"),
            (
                self.errors,
                if self.errors == 1 { "error" } else { "errors" },
            ),
            (self.passed, "passed"),
            (self.skipped, "skipped"),
            (self.pending, "pending"),
        ];
        let text: Vec<String> = parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, w)| format!("{n} {w}"))
            .collect();
        if text.is_empty() {
            "no tests".to_string()
        } else {
            text.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(status: TestStatus) -> TestCase {
        TestCase {
            name: "t".into(),
            suite: vec![],
            file: None,
            line: None,
            status,
            raw_status: status.as_str().into(),
            duration_ms: 1.5,
            message: None,
            trace: None,
            stdout: None,
            stderr: None,
            selector: "t".into(),
            failed_at: None,
            attachments: Vec::new(),
            retries: 0,
            flaky: false,
        }
    }

    #[test]
    fn summary_counts_file_errors_as_errors() {
        let mut r = TestReport::new("pytest");
        r.tests = vec![
            case(TestStatus::Passed),
            case(TestStatus::Failed),
            case(TestStatus::Errored),
            case(TestStatus::Skipped),
        ];
        r.file_errors.push(FileError {
            file: "a.py".into(),
            message: "boom".into(),
            details: None,
        });
        let s = r.summary();
        assert_eq!(
            (s.total, s.passed, s.failed, s.errors, s.skipped),
            (4, 1, 1, 2, 1)
        );
        assert_eq!(s.describe(), "1 failed, 2 errors, 1 passed, 1 skipped");
        assert!(r.has_problems());
    }

    #[test]
    fn empty_report_describes_itself() {
        let r = TestReport::new("pytest");
        assert_eq!(r.summary().describe(), "no tests");
        assert!(!r.has_problems());
    }
}

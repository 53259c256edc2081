//! Shaping a job's state for a model's context window: counts, progress, failures first
//! (trimmed and paged), a short log tail, and the next step. The default answer for a
//! 5,000-test run with 500 failures stays well under 4,000 tokens.

use crate::jobs::{JobStatus, JobView, format_ms, now_ms};
use crate::report::{TestReport, TestStatus};

use super::wire::{AttachmentOut, FailureItem, LogTail, ProgressOut, StatusResult};

pub const MESSAGE_CHARS: usize = 240;
pub const TRACE_CHARS: usize = 400;
pub const OUTPUT_CHARS: usize = 500;
pub const TAIL_CHARS: usize = 800;
pub const DEFAULT_FAILURES: usize = 10;
pub const MAX_FAILURES: usize = 50;

#[derive(Debug, Clone, Copy)]
pub struct StatusOptions {
    pub failures_offset: usize,
    pub failures_limit: usize,
    pub include_output: bool,
}

impl Default for StatusOptions {
    fn default() -> Self {
        StatusOptions {
            failures_offset: 0,
            failures_limit: DEFAULT_FAILURES,
            include_output: false,
        }
    }
}

/// The first `max` characters, marked when cut.
fn head(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The last `max` characters, marked when cut (the end of a traceback matters most).
fn tail(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        return s.to_string();
    }
    let start = s.char_indices().nth(count - max).map_or(0, |(i, _)| i);
    format!("…{}", &s[start..])
}

/// Every failure in the report, files that did not load first.
pub fn failures(report: &TestReport, include_output: bool) -> Vec<FailureItem> {
    let files = report.file_errors.iter().map(|e| FailureItem {
        kind: "file".into(),
        name: e.file.clone(),
        selector: e.file.clone(),
        file: Some(e.file.clone()),
        line: None,
        failed_at: None,
        status: "file_error".into(),
        message: Some(head(&e.message, MESSAGE_CHARS)),
        trace: e.details.as_deref().map(|d| tail(d, TRACE_CHARS)),
        duration_ms: None,
        stdout: None,
        stderr: None,
        attachments: Vec::new(),
    });
    let tests = report
        .tests
        .iter()
        .filter(|t| t.status.is_problem())
        .map(|t| FailureItem {
            kind: "test".into(),
            name: t.name.clone(),
            selector: t.selector.clone(),
            file: t.file.clone(),
            line: t.line,
            failed_at: t.failed_at.clone(),
            status: if t.status == TestStatus::Errored {
                "errored".into()
            } else {
                "failed".into()
            },
            message: t.message.as_deref().map(|m| head(m, MESSAGE_CHARS)),
            trace: t.trace.as_deref().map(|m| tail(m, TRACE_CHARS)),
            duration_ms: Some(t.duration_ms.round() as u64),
            stdout: t
                .stdout
                .as_deref()
                .filter(|_| include_output)
                .map(|s| tail(s, OUTPUT_CHARS)),
            stderr: t
                .stderr
                .as_deref()
                .filter(|_| include_output)
                .map(|s| tail(s, OUTPUT_CHARS)),
            attachments: t
                .attachments
                .iter()
                .map(|a| AttachmentOut {
                    name: a.name.clone(),
                    content_type: a.content_type.clone(),
                    path: a.path.clone(),
                })
                .collect(),
        });
    files.chain(tests).collect()
}

fn next_step(view: &JobView, failures_total: usize) -> String {
    let id = &view.record.id;
    match view.record.status {
        JobStatus::Queued => format!("waiting for a free slot; call get_test_execution_status with job_id={id} and wait_seconds=30"),
        JobStatus::Running => format!("still running; call get_test_execution_status with job_id={id} and wait_seconds=30 (up to 60) to wait for the end"),
        JobStatus::Passed => "all selected tests passed".into(),
        JobStatus::Failed => {
            let mut step = format!(
                "{failures_total} failures: fix them, then rerun only those tests by passing their `selector` values as run_tests `tests`"
            );
            if has_screenshots(view) {
                step.push_str(&format!(
                    ". Failure screenshots are listed in `attachments`; call get_test_execution_status with job_id={id} and include_screenshots=true to see them"
                ));
            }
            step
        }
        JobStatus::Error => "the run itself broke (see reason and log_tail); check_test_environment tells what is missing, get_test_execution_output shows the full log".into(),
        JobStatus::TimedOut => "the run hit its timeout; results of finished tests are kept. Rerun with a larger timeout_seconds or a narrower selection".into(),
        JobStatus::Cancelled => "cancelled; results of finished tests are kept".into(),
        JobStatus::Interrupted => "testrelay stopped during this run; start it again with run_tests".into(),
    }
}

fn has_screenshots(view: &JobView) -> bool {
    view.report.as_deref().is_some_and(|r| {
        r.tests.iter().any(|t| {
            t.status.is_problem()
                && t.attachments
                    .iter()
                    .any(|a| a.content_type.starts_with("image/"))
        })
    })
}

/// Build the status answer for one job.
pub fn render_status(view: &JobView, opts: StatusOptions) -> StatusResult {
    let r = &view.record;
    let all = view
        .report
        .as_deref()
        .map(|rep| failures(rep, opts.include_output))
        .unwrap_or_default();
    let total = all.len();
    let offset = opts.failures_offset.min(total);
    let limit = opts.failures_limit.min(MAX_FAILURES);
    let page: Vec<FailureItem> = all.into_iter().skip(offset).take(limit).collect();
    let next = (offset + page.len() < total).then_some(offset + page.len());
    let summary = view
        .report
        .as_deref()
        .map(TestReport::summary)
        .or(r.summary);
    StatusResult {
        job_id: r.id.to_string(),
        status: r.status,
        reason: r.reason.clone(),
        framework: r.framework,
        project_dir: r.project_dir.display().to_string(),
        command: r.command.clone(),
        created_at: format_ms(r.created_at_ms),
        started_at: r.started_at_ms.map(format_ms),
        finished_at: r.finished_at_ms.map(format_ms),
        duration_ms: r.duration_ms(now_ms()),
        progress: ProgressOut {
            done: view.progress.done,
            total: view.progress.total,
            current_file: view.progress.current_file.clone(),
        },
        summary,
        next_step: next_step(view, total),
        failures: page,
        failures_total: total,
        failures_offset: offset,
        next_failures_offset: next,
        log_tail: LogTail {
            stdout: tail(&view.stdout_tail, TAIL_CHARS),
            stderr: tail(&view.stderr_tail, TAIL_CHARS / 2),
        },
        screenshots: Vec::new(),
        job_dir: view.dir.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{JobId, JobRecord};
    use crate::report::TestCase;
    use crate::runners::{Framework, Progress};
    use std::sync::Arc;

    fn big_view() -> JobView {
        let mut report = TestReport::new("pytest");
        for i in 0..5000 {
            let failed = i % 10 == 0;
            report.tests.push(TestCase {
                name: format!("test_case_{i}[param-{i}]"),
                suite: vec![format!("tests/test_mod_{}.py", i / 100)],
                file: Some(format!("tests/test_mod_{}.py", i / 100)),
                line: Some(10 + i % 100),
                status: if failed { TestStatus::Failed } else { TestStatus::Passed },
                raw_status: "failed".into(),
                duration_ms: 1.0,
                message: failed.then(|| format!("AssertionError: {}", "expected value mismatch ".repeat(40))),
                trace: failed.then(|| "    def test():\n>       assert compute() == expected\nE       AssertionError\n".repeat(60)),
                stdout: failed.then(|| "noise\n".repeat(500)),
                stderr: None,
                selector: format!("tests/test_mod_{}.py::test_case_{i}[param-{i}]", i / 100),
                failed_at: None,
                attachments: Vec::new(),
                retries: 0,
                flaky: false,
            });
        }
        let record: JobRecord = serde_json::from_value(serde_json::json!({
            "id": JobId::generate(std::time::SystemTime::now()),
            "status": "failed", "reason": null, "framework": "pytest", "project_dir": "/work/project",
            "command": "/work/project/.venv/bin/python -m pytest", "toolchain": "python", "request": {},
            "timeout_secs": 300, "idempotency_key": null, "created_at_ms": 1, "started_at_ms": 2,
            "finished_at_ms": 9000, "exit_code": 1, "signal": null, "summary": null,
            "owner": {"pid": 1, "start_ticks": null}
        }))
        .unwrap();
        assert_eq!(record.framework, Framework::Pytest);
        JobView {
            record,
            progress: Progress {
                done: 5000,
                total: Some(5000),
                failed: 500,
                current_file: None,
            },
            report: Some(Arc::new(report)),
            stdout_tail: "x".repeat(4096),
            stderr_tail: "y".repeat(4096),
            dir: "/state/jobs/x".into(),
        }
    }

    #[test]
    fn a_huge_failing_run_fits_the_token_budget() {
        let view = big_view();
        let status = render_status(&view, StatusOptions::default());
        let text = serde_json::to_string(&status).unwrap();
        // JSON with code runs at roughly 3.5 bytes per token: stay near 3,000 tokens.
        assert!(text.len() < 11_000, "status is {} bytes", text.len());
        assert_eq!(status.failures.len(), DEFAULT_FAILURES);
        assert_eq!(status.failures_total, 500);
        assert_eq!(status.next_failures_offset, Some(10));
        assert_eq!(status.summary.unwrap().failed, 500);
        assert!(
            status.failures[0]
                .trace
                .as_deref()
                .unwrap()
                .ends_with("E       AssertionError\n")
        );
        assert!(status.failures[0].stdout.is_none());
    }

    #[test]
    fn paging_reaches_the_last_failure() {
        let view = big_view();
        let opts = StatusOptions {
            failures_offset: 495,
            failures_limit: 50,
            include_output: true,
        };
        let status = render_status(&view, opts);
        assert_eq!(status.failures.len(), 5);
        assert_eq!(status.next_failures_offset, None);
        assert_eq!(status.failures[4].name, "test_case_4990[param-4990]");
        assert!(
            status.failures[4]
                .stdout
                .as_deref()
                .unwrap()
                .chars()
                .count()
                <= OUTPUT_CHARS + 1
        );
    }

    #[test]
    fn trimming_respects_characters() {
        assert_eq!(head("ééé", 2), "éé…");
        assert_eq!(tail("ééé", 2), "…éé");
        assert_eq!(tail("ab", 2), "ab");
    }
}

//! CTRF (Common Test Report Format) export and import.
//!
//! `report.json` in each job directory is CTRF, so other tools can read it, and testrelay
//! reads it back to answer status requests for jobs of earlier sessions. What CTRF cannot
//! say (errored vs failed, the selector, file-level errors) travels in its `extra` objects.

use serde::{Deserialize, Serialize};

use super::model::{Attachment, FileError, TestCase, TestReport, TestStatus, ToolInfo};

#[derive(Debug, thiserror::Error)]
pub enum CtrfError {
    #[error("report is not valid CTRF JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("report is not a CTRF document (reportFormat is {0:?})")]
    NotCtrf(String),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    report_format: String,
    spec_version: String,
    results: Results,
}

#[derive(Serialize, Deserialize)]
struct Results {
    tool: Tool,
    summary: CtrfSummary,
    tests: Vec<Test>,
    #[serde(default)]
    extra: ResultsExtra,
}

#[derive(Serialize, Deserialize)]
struct Tool {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct CtrfSummary {
    tests: u64,
    passed: u64,
    failed: u64,
    skipped: u64,
    pending: u64,
    other: u64,
    start: u64,
    stop: u64,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ResultsExtra {
    #[serde(default)]
    file_errors: Vec<FileError>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Test {
    name: String,
    status: String,
    duration: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<String>,
    raw_status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    suite: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    stdout: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    stderr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flaky: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<CtrfAttachment>,
    extra: TestExtra,
}

/// CTRF's attachment object: `{name, contentType, path}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CtrfAttachment {
    name: String,
    content_type: String,
    path: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestExtra {
    selector: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed_at: Option<String>,
    status: TestStatus,
    duration_ms: f64,
}

fn ctrf_status(s: TestStatus) -> &'static str {
    match s {
        TestStatus::Passed => "passed",
        TestStatus::Failed | TestStatus::Errored => "failed",
        TestStatus::Skipped => "skipped",
        TestStatus::Pending => "pending",
    }
}

/// Serialize a report as a CTRF document. `stop_ms` is when the run ended.
pub fn to_ctrf_json(report: &TestReport, stop_ms: u64) -> String {
    let s = report.summary();
    let start = report.start_ms.unwrap_or(stop_ms);
    let doc = Doc {
        report_format: "CTRF".into(),
        spec_version: "0.0.0".into(),
        results: Results {
            tool: Tool {
                name: report.tool.name.clone(),
                version: report.tool.version.clone(),
            },
            summary: CtrfSummary {
                tests: s.total,
                passed: s.passed,
                failed: s.failed + s.errors - report.file_errors.len() as u64,
                skipped: s.skipped,
                pending: s.pending,
                other: 0,
                start,
                stop: stop_ms.max(start),
            },
            tests: report
                .tests
                .iter()
                .map(|t| Test {
                    name: t.name.clone(),
                    status: ctrf_status(t.status).into(),
                    duration: t.duration_ms.round() as u64,
                    file_path: t.file.clone(),
                    line: t.line,
                    message: t.message.clone(),
                    trace: t.trace.clone(),
                    raw_status: t.raw_status.clone(),
                    suite: t.suite.clone(),
                    stdout: t.stdout.iter().cloned().collect(),
                    stderr: t.stderr.iter().cloned().collect(),
                    retries: (t.retries > 0).then_some(t.retries),
                    flaky: t.flaky.then_some(true),
                    attachments: t
                        .attachments
                        .iter()
                        .map(|a| CtrfAttachment {
                            name: a.name.clone(),
                            content_type: a.content_type.clone(),
                            path: a.path.clone(),
                        })
                        .collect(),
                    extra: TestExtra {
                        selector: t.selector.clone(),
                        failed_at: t.failed_at.clone(),
                        status: t.status,
                        duration_ms: t.duration_ms,
                    },
                })
                .collect(),
            extra: ResultsExtra {
                file_errors: report.file_errors.clone(),
            },
        },
    };
    serde_json::to_string(&doc).expect("report serializes")
}

/// Read back a CTRF document written by [`to_ctrf_json`].
pub fn from_ctrf_json(text: &str) -> Result<TestReport, CtrfError> {
    let doc: Doc = serde_json::from_str(text)?;
    if doc.report_format != "CTRF" {
        return Err(CtrfError::NotCtrf(doc.report_format));
    }
    let start = doc.results.summary.start;
    Ok(TestReport {
        tool: ToolInfo {
            name: doc.results.tool.name,
            version: doc.results.tool.version,
        },
        tests: doc
            .results
            .tests
            .into_iter()
            .map(|t| TestCase {
                name: t.name,
                suite: t.suite,
                file: t.file_path,
                line: t.line,
                status: t.extra.status,
                raw_status: t.raw_status,
                duration_ms: t.extra.duration_ms,
                message: t.message,
                trace: t.trace,
                stdout: t.stdout.into_iter().next(),
                stderr: t.stderr.into_iter().next(),
                selector: t.extra.selector,
                failed_at: t.extra.failed_at,
                attachments: t
                    .attachments
                    .into_iter()
                    .map(|a| Attachment {
                        name: a.name,
                        content_type: a.content_type,
                        path: a.path,
                    })
                    .collect(),
                retries: t.retries.unwrap_or(0),
                flaky: t.flaky.unwrap_or(false),
            })
            .collect(),
        file_errors: doc.results.extra.file_errors,
        start_ms: Some(start),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TestReport {
        let mut r = TestReport::new("pytest");
        r.tool.version = Some("9.2.0".into());
        r.start_ms = Some(1_000);
        for (name, status, raw) in [
            ("test_ok", TestStatus::Passed, "passed"),
            ("test_bad", TestStatus::Failed, "failed"),
            ("test_fixture", TestStatus::Errored, "error"),
            ("test_x", TestStatus::Skipped, "xfailed"),
        ] {
            r.tests.push(TestCase {
                name: name.into(),
                suite: vec!["tests/test_a.py".into()],
                file: Some("tests/test_a.py".into()),
                line: Some(3),
                status,
                raw_status: raw.into(),
                duration_ms: 0.4,
                message: (status != TestStatus::Passed).then(|| format!("{name} message")),
                trace: None,
                stdout: Some("out".into()),
                stderr: None,
                selector: format!("tests/test_a.py::{name}"),
                failed_at: None,
                attachments: Vec::new(),
                retries: 0,
                flaky: false,
            });
        }
        r.file_errors.push(FileError {
            file: "tests/test_broken.py".into(),
            message: "ModuleNotFoundError: No module named 'nope'".into(),
            details: Some("Traceback ...".into()),
        });
        r
    }

    #[test]
    fn round_trip_keeps_everything_status_needs() {
        let r = sample();
        let text = to_ctrf_json(&r, 5_000);
        assert_eq!(from_ctrf_json(&text).unwrap(), r);
    }

    #[test]
    fn export_is_ctrf_shaped() {
        let v: serde_json::Value = serde_json::from_str(&to_ctrf_json(&sample(), 5_000)).unwrap();
        assert_eq!(v["reportFormat"], "CTRF");
        let summary = &v["results"]["summary"];
        assert_eq!(summary["tests"], 4);
        // CTRF has no "errored": the setup error counts as failed, the import error is extra.
        assert_eq!(summary["failed"], 2);
        assert_eq!(summary["start"], 1_000);
        assert_eq!(summary["stop"], 5_000);
        let fixture = &v["results"]["tests"][2];
        assert_eq!(fixture["status"], "failed");
        assert_eq!(fixture["rawStatus"], "error");
        assert_eq!(fixture["duration"], 0);
        assert_eq!(
            v["results"]["extra"]["fileErrors"][0]["file"],
            "tests/test_broken.py"
        );
    }

    #[test]
    fn attachments_retries_and_flaky_travel_as_ctrf_fields() {
        let mut r = sample();
        r.tests[1].attachments.push(Attachment {
            name: "screenshot".into(),
            content_type: "image/png".into(),
            path: "/state/jobs/x/artifacts/t/test-failed-1.png".into(),
        });
        r.tests[0].retries = 1;
        r.tests[0].flaky = true;
        let text = to_ctrf_json(&r, 5_000);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let bad = &v["results"]["tests"][1];
        assert_eq!(bad["attachments"][0]["contentType"], "image/png");
        assert_eq!(
            bad["attachments"][0]["path"],
            "/state/jobs/x/artifacts/t/test-failed-1.png"
        );
        assert_eq!(v["results"]["tests"][0]["flaky"], true);
        assert_eq!(v["results"]["tests"][0]["retries"], 1);
        assert!(bad.get("flaky").is_none() && bad.get("retries").is_none());
        assert_eq!(from_ctrf_json(&text).unwrap(), r);
    }

    #[test]
    fn rejects_other_documents() {
        assert!(matches!(from_ctrf_json("{}"), Err(CtrfError::Json(_))));
        let other = r#"{"reportFormat":"X","specVersion":"1","results":{"tool":{"name":"a"},"summary":{"tests":0,"passed":0,"failed":0,"skipped":0,"pending":0,"other":0,"start":0,"stop":0},"tests":[]}}"#;
        assert!(matches!(from_ctrf_json(other), Err(CtrfError::NotCtrf(_))));
    }
}

//! JUnit XML export, for CI dashboards and tools that only read JUnit.
//!
//! One `<testsuite>` per file, in first-seen order; file-level errors become a testcase with
//! an `<error>` so that JUnit consumers count them, as pytest's own JUnit output does.

use std::fmt::Write;

use quick_xml::escape::escape;

use super::model::{TestReport, TestStatus};

/// Render the report as a JUnit XML document.
pub fn to_junit_xml(report: &TestReport) -> String {
    let mut files: Vec<&str> = Vec::new();
    let file_of = |f: &Option<String>| f.as_deref().unwrap_or("(unknown)").to_string();
    for t in &report.tests {
        let f = t.file.as_deref().unwrap_or("(unknown)");
        if !files.contains(&f) {
            files.push(f);
        }
    }
    for e in &report.file_errors {
        if !files.contains(&e.file.as_str()) {
            files.push(&e.file);
        }
    }
    let s = report.summary();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        escape(report.tool.name.as_str()),
        s.total + report.file_errors.len() as u64,
        s.failed,
        s.errors,
        s.skipped + s.pending,
        report.total_duration_ms() / 1000.0
    );
    for file in files {
        let cases: Vec<_> = report
            .tests
            .iter()
            .filter(|t| file_of(&t.file) == file)
            .collect();
        let errors: Vec<_> = report
            .file_errors
            .iter()
            .filter(|e| e.file == file)
            .collect();
        let count = |st: TestStatus| cases.iter().filter(|t| t.status == st).count();
        let time: f64 = cases.iter().map(|t| t.duration_ms).sum::<f64>() / 1000.0;
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            escape(file),
            cases.len() + errors.len(),
            count(TestStatus::Failed),
            count(TestStatus::Errored) + errors.len(),
            count(TestStatus::Skipped) + count(TestStatus::Pending),
            time
        );
        for e in errors {
            let _ = writeln!(
                out,
                "    <testcase classname=\"\" name=\"{}\" time=\"0.000\">",
                escape(e.file.as_str())
            );
            let _ = writeln!(
                out,
                "      <error message=\"{}\">{}</error>",
                escape(e.message.as_str()),
                escape(e.details.as_deref().unwrap_or(""))
            );
            out.push_str("    </testcase>\n");
        }
        for t in cases {
            let classname = t.suite.join(".");
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(classname.as_str()),
                escape(t.name.as_str()),
                t.duration_ms / 1000.0
            );
            if let Some(f) = &t.file {
                let _ = write!(out, " file=\"{}\"", escape(f.as_str()));
            }
            if let Some(l) = t.line {
                let _ = write!(out, " line=\"{l}\"");
            }
            out.push_str(">\n");
            let message = escape(t.message.as_deref().unwrap_or(""));
            let body = escape(t.trace.as_deref().unwrap_or(""));
            match t.status {
                TestStatus::Passed => {}
                TestStatus::Failed => {
                    let _ = writeln!(out, "      <failure message=\"{message}\">{body}</failure>");
                }
                TestStatus::Errored => {
                    let _ = writeln!(out, "      <error message=\"{message}\">{body}</error>");
                }
                TestStatus::Skipped | TestStatus::Pending => {
                    let _ = writeln!(out, "      <skipped message=\"{message}\"/>");
                }
            }
            // Attachments as `[[ATTACHMENT|path]]` lines, the convention CI JUnit viewers
            // (and Playwright's own JUnit reporter) use.
            let mut system_out = t.stdout.clone().unwrap_or_default();
            for a in &t.attachments {
                if !system_out.is_empty() && !system_out.ends_with('\n') {
                    system_out.push('\n');
                }
                system_out.push_str(&format!("[[ATTACHMENT|{}]]\n", a.path));
            }
            if !system_out.is_empty() {
                let _ = writeln!(
                    out,
                    "      <system-out>{}</system-out>",
                    escape(system_out.as_str())
                );
            }
            if let Some(e) = &t.stderr {
                let _ = writeln!(out, "      <system-err>{}</system-err>", escape(e.as_str()));
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{FileError, TestCase};
    use quick_xml::Reader;
    use quick_xml::events::Event;

    #[test]
    fn junit_is_well_formed_and_counts_match() {
        let mut r = TestReport::new("pytest");
        r.tests.push(TestCase {
            name: "test_<lt> & \"q\"".into(),
            suite: vec!["tests/a.py".into()],
            file: Some("tests/a.py".into()),
            line: Some(2),
            status: TestStatus::Failed,
            raw_status: "failed".into(),
            duration_ms: 12.0,
            message: Some("assert 1 < 2 & more".into()),
            trace: Some("E  assert <x>".into()),
            stdout: Some("printed ]]> text".into()),
            stderr: None,
            selector: "tests/a.py::x".into(),
            failed_at: None,
            attachments: vec![crate::report::Attachment {
                name: "screenshot".into(),
                content_type: "image/png".into(),
                path: "/jobs/x/artifacts/t/test-failed-1.png".into(),
            }],
            retries: 0,
            flaky: false,
        });
        r.file_errors.push(FileError {
            file: "tests/b.py".into(),
            message: "ImportError".into(),
            details: None,
        });
        let xml = to_junit_xml(&r);
        let mut reader = Reader::from_str(&xml);
        let mut names = Vec::new();
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Eof => break,
                Event::Start(e) | Event::Empty(e) => names.push(e.name().as_ref().to_string()),
                _ => {}
            }
        }
        assert_eq!(
            names,
            [
                "testsuites",
                "testsuite",
                "testcase",
                "failure",
                "system-out",
                "testsuite",
                "testcase",
                "error"
            ]
        );
        assert!(xml.contains("tests=\"2\" failures=\"1\" errors=\"1\""));
        assert!(xml.contains(
            "<system-out>printed ]]&gt; text\n[[ATTACHMENT|/jobs/x/artifacts/t/test-failed-1.png]]\n</system-out>"
        ));
        assert!(xml.contains("name=\"test_&lt;lt&gt; &amp; &quot;q&quot;\""));
    }
}

//! Playwright results: reads testrelay's streaming reporter (`playwright-events.jsonl`)
//! while the run goes, and Playwright's own JSON report once it has ended.
//!
//! Both sources describe the same thing, one test per (spec, project), each with one
//! attempt per retry, so both are read into the same [`Entry`] list and turned into
//! [`TestCase`]s by one function. The events alone are enough for a run that was killed
//! before Playwright could write its JSON. Error texts carry ANSI colour codes even with
//! `FORCE_COLOR=0`; they are stripped here. Attachment paths are kept absolute (they point
//! into the job directory); their content is never read.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;
use serde::Deserialize;

use super::plan::{Progress, Verdict};
use super::playwright::{JSON_REPORT_FILE, selector};
use crate::report::{Attachment, FileError, TestCase, TestReport, TestStatus};

use super::text::last_error_line;
use super::text::strip_ansi;

#[derive(Debug, Clone, Deserialize)]
struct Location {
    file: String,
    line: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct PwError {
    message: Option<String>,
    stack: Option<String>,
    snippet: Option<String>,
    location: Option<Location>,
}

#[derive(Debug, Clone, Deserialize)]
struct Annotation {
    #[serde(rename = "type")]
    kind: String,
    description: Option<String>,
}

/// One attempt (the first run or a retry) of one test.
#[derive(Debug, Clone, Deserialize)]
struct Attempt {
    #[serde(default)]
    retry: u32,
    /// passed, failed, timedOut, skipped or interrupted.
    status: String,
    #[serde(default)]
    duration: f64,
    start_ms: Option<u64>,
    #[serde(default)]
    errors: Vec<PwError>,
    #[serde(default)]
    attachments: Vec<Attachment>,
    stdout: Option<String>,
    stderr: Option<String>,
}

/// One test in one project, with its attempts so far.
#[derive(Debug, Clone)]
struct Entry {
    title: String,
    describes: Vec<String>,
    project: String,
    file: String,
    line: Option<u32>,
    expected_status: String,
    /// Playwright's verdict over all attempts: expected, unexpected, flaky or skipped.
    outcome: String,
    annotations: Vec<Annotation>,
    attempts: Vec<Attempt>,
    /// No retry follows the last attempt.
    finished: bool,
}

/// A line of the streaming reporter's file.
#[derive(Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    Begin {
        version: Option<String>,
        cwd: Option<String>,
        #[serde(default)]
        projects: Vec<String>,
        total: Option<u64>,
    },
    TestBegin {
        file: Option<String>,
    },
    TestEnd(Box<TestEnd>),
    Error {
        error: PwError,
    },
    End {
        status: Option<String>,
    },
}

#[derive(Deserialize)]
struct TestEnd {
    id: String,
    title: String,
    #[serde(default)]
    describes: Vec<String>,
    #[serde(default)]
    project: String,
    file: Option<String>,
    line: Option<u32>,
    expected_status: String,
    outcome: String,
    #[serde(default)]
    annotations: Vec<Annotation>,
    #[serde(rename = "final", default = "yes")]
    finished: bool,
    result: Attempt,
}

fn yes() -> bool {
    true
}

/// Builds the report from the reporter's events as they arrive, then from the JSON report.
#[derive(Default)]
pub struct Collector {
    version: Option<String>,
    /// The directory Playwright ran in; paths in the JSON report are made relative to it.
    cwd: Option<String>,
    projects: Vec<String>,
    total: Option<u64>,
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    /// Errors outside any test: config, webServer, a test file that fails to load.
    errors: Vec<PwError>,
    current_file: Option<String>,
    end_status: Option<String>,
    from_json: bool,
}

impl Collector {
    pub fn feed_line(&mut self, line: &str) {
        let Ok(event) = serde_json::from_str::<Event>(line) else {
            return;
        };
        match event {
            Event::Begin {
                version,
                cwd,
                projects,
                total,
            } => {
                self.version = version;
                self.cwd = cwd;
                self.projects = projects;
                self.total = total;
            }
            Event::TestBegin { file } => self.current_file = file,
            Event::TestEnd(t) => {
                let t = *t;
                let i = match self.index.get(&t.id) {
                    Some(&i) => i,
                    None => {
                        self.entries.push(Entry {
                            title: t.title.clone(),
                            describes: Vec::new(),
                            project: String::new(),
                            file: String::new(),
                            line: None,
                            expected_status: String::new(),
                            outcome: String::new(),
                            annotations: Vec::new(),
                            attempts: Vec::new(),
                            finished: false,
                        });
                        self.index.insert(t.id.clone(), self.entries.len() - 1);
                        self.entries.len() - 1
                    }
                };
                let e = &mut self.entries[i];
                e.title = t.title;
                e.describes = t.describes;
                e.project = t.project;
                e.file = t.file.unwrap_or_default();
                e.line = t.line;
                e.expected_status = t.expected_status;
                e.outcome = t.outcome;
                e.annotations = t.annotations;
                e.finished = t.finished;
                e.attempts.push(t.result);
            }
            Event::Error { error } => self.errors.push(error),
            Event::End { status } => {
                self.end_status = status;
                self.current_file = None;
            }
        }
    }

    /// Read Playwright's JSON report from the job directory once the run is over. When it
    /// is there and whole, it replaces what the events said (it also lists tests that
    /// never started); otherwise the events stand.
    pub fn finish(&mut self, job_dir: &Path) {
        if let Ok(text) = std::fs::read_to_string(job_dir.join(JSON_REPORT_FILE)) {
            self.absorb_json(&text);
        }
    }

    /// Replace the results with those of a JSON report; false when it does not parse.
    fn absorb_json(&mut self, text: &str) -> bool {
        let Ok(json) = serde_json::from_str::<JsonReport>(text) else {
            return false;
        };
        let c = &json.config;
        let base = self
            .cwd
            .clone()
            .or_else(|| {
                c.config_file
                    .as_deref()
                    .and_then(|f| Path::new(f).parent().map(|p| p.display().to_string()))
            })
            .or_else(|| c.root_dir.clone())
            .unwrap_or_default();
        let root = c.root_dir.clone().unwrap_or_else(|| base.clone());
        let paths = Paths { base, root };
        let mut entries = Vec::new();
        let mut selected = 0;
        for suite in &json.suites {
            selected += collect_suite(suite, &[], &paths, &mut entries);
        }
        self.version = c.version.clone().or(self.version.take());
        if !c.projects.is_empty() {
            self.projects = c.projects.iter().map(|p| p.name.clone()).collect();
        }
        self.total = Some(selected);
        self.entries = entries;
        self.index.clear();
        self.errors = json.errors.into_iter().map(|e| paths.error(e)).collect();
        self.current_file = None;
        self.from_json = true;
        true
    }

    pub fn progress(&self) -> Progress {
        let finished = self.entries.iter().filter(|e| e.finished);
        let failed = finished
            .clone()
            .filter(|e| case_status(e).0.is_problem())
            .count();
        Progress {
            done: finished.count() as u64,
            total: self.total,
            failed: (failed + self.file_errors().len()) as u64,
            current_file: self.current_file.clone(),
        }
    }

    fn file_errors(&self) -> Vec<FileError> {
        self.errors
            .iter()
            .filter_map(|e| {
                let loc = e.location.as_ref()?;
                Some(FileError {
                    file: loc.file.clone(),
                    message: error_message(e),
                    details: e.stack.as_deref().map(strip_ansi),
                })
            })
            .collect()
    }

    pub fn report(&self) -> TestReport {
        let multi = self.projects.len() > 1;
        let mut r = TestReport::new("playwright");
        r.tool.version = self.version.clone();
        // Workers finish tests in any order; file and line order reads better and does not
        // change between a running and a finished report.
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        r.tests = entries.into_iter().map(|e| to_case(e, multi)).collect();
        r.file_errors = self.file_errors();
        r.start_ms = self
            .entries
            .iter()
            .flat_map(|e| e.attempts.iter().filter_map(|a| a.start_ms))
            .min();
        r
    }

    pub fn classify(
        &self,
        exit_code: Option<i32>,
        report: &TestReport,
        stderr_tail: &str,
    ) -> Verdict {
        let quoted = || {
            last_error_line(stderr_tail)
                .map(|l| format!(": {l}"))
                .unwrap_or_default()
        };
        let global = self
            .errors
            .iter()
            .find(|e| e.location.is_none())
            .map(error_message);
        let no_tests = global
            .as_deref()
            .is_some_and(|m| m.contains("No tests found"))
            || stderr_tail.contains("No tests found");
        match exit_code {
            None => Verdict::Broken("playwright was killed by a signal".into()),
            Some(0) if report.tests.is_empty() => Verdict::Broken("playwright ran no tests".into()),
            Some(0) => Verdict::Passed,
            Some(_) if no_tests && report.tests.is_empty() => Verdict::Broken(
                "no tests matched the selection: check the `tests` paths or `file:line` selectors, the `keyword` (--grep) pattern and any --project in extra_args".into(),
            ),
            Some(1) if report.has_problems() => Verdict::Failed,
            Some(code) => {
                let why = global.map(|g| format!(": {g}")).unwrap_or_else(quoted);
                let began = self.total.is_some() || self.from_json;
                Verdict::Broken(if !began {
                    format!("playwright did not start (exit status {code}){why}")
                } else if code == 130 {
                    format!("playwright was interrupted{why}")
                } else {
                    format!("playwright exited with status {code} without a failing test{why}")
                })
            }
        }
    }
}

/// Status and raw status of an entry from Playwright's outcome and its last attempt.
fn case_status(e: &Entry) -> (TestStatus, &'static str) {
    let last = e.attempts.last().map(|a| a.status.as_str());
    match (e.outcome.as_str(), last) {
        ("flaky", _) => (TestStatus::Passed, "flaky"),
        // `test.fail()`: the test is expected to fail, and did.
        ("expected", Some("failed" | "timedOut")) if e.expected_status == "failed" => {
            (TestStatus::Passed, "failed_as_expected")
        }
        ("expected", _) => (TestStatus::Passed, "passed"),
        (_, Some("interrupted")) => (TestStatus::Skipped, "interrupted"),
        ("skipped", _) => (TestStatus::Skipped, "skipped"),
        (_, Some("timedOut")) => (TestStatus::Failed, "timedOut"),
        (_, Some("passed")) => (TestStatus::Failed, "passed_unexpectedly"),
        _ => (TestStatus::Failed, "failed"),
    }
}

/// The decisive part of an error message: what was expected and received, without the
/// call log that follows.
fn error_message(e: &PwError) -> String {
    let text = e
        .message
        .as_deref()
        .or_else(|| e.stack.as_deref().and_then(|s| s.lines().next()))
        .unwrap_or("unknown error");
    let text = strip_ansi(text);
    let head = text.split("\nCall log:").next().unwrap_or_default();
    head.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The full text of an attempt's errors: each stack (or message), then the source snippet
/// that points at the failing line.
fn error_trace(errors: &[PwError]) -> Option<String> {
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            let mut s = strip_ansi(
                e.stack
                    .as_deref()
                    .or(e.message.as_deref())
                    .unwrap_or("unknown error"),
            );
            if let Some(snippet) = &e.snippet {
                s.push_str("\n\n");
                s.push_str(&strip_ansi(snippet));
            }
            s
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

fn first_error(a: Option<&Attempt>) -> Option<&PwError> {
    a.and_then(|a| a.errors.first())
}

fn to_case(e: &Entry, multi_project: bool) -> TestCase {
    let (status, raw) = case_status(e);
    let last = e.attempts.last();
    let failing = e.attempts.iter().rev().find(|a| !a.errors.is_empty());
    let (mut trace, mut failed_at) = (None, None);
    let message = if status.is_problem() {
        let a = last.filter(|a| !a.errors.is_empty()).or(failing);
        trace = a.and_then(|a| error_trace(&a.errors));
        failed_at = first_error(a)
            .and_then(|err| err.location.as_ref())
            .map(|l| format!("{}:{}", l.file, l.line));
        first_error(a).map(error_message).or_else(|| {
            (raw == "passed_unexpectedly")
                .then(|| "expected to fail (test.fail()), but passed".to_string())
        })
    } else {
        match raw {
            "flaky" => Some(format!(
                "passed on retry {} after failing: {}",
                last.map_or(0, |a| a.retry),
                first_error(failing).map(error_message).unwrap_or_default()
            )),
            "interrupted" => {
                Some("interrupted: the run was stopped while this test was running".into())
            }
            "skipped" => e
                .annotations
                .iter()
                .find(|a| a.kind == "skip" || a.kind == "fixme")
                .map(|a| a.description.clone().unwrap_or_else(|| a.kind.clone())),
            _ => None,
        }
    };
    let project = (multi_project && !e.project.is_empty()).then_some(e.project.as_str());
    let mut suite: Vec<String> = project.map(String::from).into_iter().collect();
    suite.push(e.file.clone());
    suite.extend(e.describes.iter().cloned());
    TestCase {
        name: e.title.clone(),
        suite,
        file: Some(e.file.clone()).filter(|f| !f.is_empty()),
        line: e.line,
        status,
        raw_status: raw.into(),
        duration_ms: e.attempts.iter().map(|a| a.duration).sum(),
        message,
        trace,
        stdout: last.and_then(|a| a.stdout.clone()),
        stderr: last.and_then(|a| a.stderr.clone()),
        selector: selector(&e.file, e.line, project),
        failed_at,
        attachments: e
            .attempts
            .iter()
            .flat_map(|a| a.attachments.iter().cloned())
            .collect(),
        retries: e.attempts.len().saturating_sub(1) as u32,
        flaky: raw == "flaky",
    }
}

// Playwright's JSON report (the parts testrelay reads).

#[derive(Deserialize)]
struct JsonReport {
    config: JsonConfig,
    #[serde(default)]
    suites: Vec<JsonSuite>,
    #[serde(default)]
    errors: Vec<PwError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonConfig {
    config_file: Option<String>,
    root_dir: Option<String>,
    version: Option<String>,
    #[serde(default)]
    projects: Vec<JsonProject>,
}

#[derive(Deserialize)]
struct JsonProject {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct JsonSuite {
    #[serde(default)]
    title: String,
    #[serde(default)]
    specs: Vec<JsonSpec>,
    #[serde(default)]
    suites: Vec<JsonSuite>,
}

#[derive(Deserialize)]
struct JsonSpec {
    title: String,
    file: String,
    line: Option<u32>,
    #[serde(default)]
    tests: Vec<JsonTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonTest {
    #[serde(default)]
    project_name: String,
    expected_status: String,
    status: String,
    #[serde(default)]
    annotations: Vec<Annotation>,
    #[serde(default)]
    results: Vec<JsonResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonResult {
    #[serde(default)]
    retry: u32,
    status: String,
    #[serde(default)]
    duration: f64,
    start_time: Option<String>,
    /// The first error with its stack and snippet; `errors` repeats it without them.
    error: Option<PwError>,
    #[serde(default)]
    errors: Vec<PwError>,
    #[serde(default)]
    attachments: Vec<JsonAttachment>,
    #[serde(default)]
    stdout: Vec<JsonOutput>,
    #[serde(default)]
    stderr: Vec<JsonOutput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonAttachment {
    name: String,
    content_type: String,
    /// Absent for attachments kept inline (`body`), which testrelay leaves out.
    path: Option<String>,
}

#[derive(Deserialize)]
struct JsonOutput {
    text: Option<String>,
    /// Base64, for output that was written as bytes.
    buffer: Option<String>,
}

/// Turns the JSON report's paths into the events' form: files relative to the project.
struct Paths {
    /// The directory Playwright ran in.
    base: String,
    /// The config's test directory, which `spec.file` is relative to.
    root: String,
}

impl Paths {
    fn relative(&self, abs: &Path) -> String {
        abs.strip_prefix(&self.base)
            .unwrap_or(abs)
            .to_string_lossy()
            .replace('\\', "/")
    }

    fn error(&self, mut e: PwError) -> PwError {
        if let Some(loc) = &mut e.location {
            loc.file = self.relative(Path::new(&loc.file));
        }
        e
    }
}

fn join_output(chunks: &[JsonOutput]) -> Option<String> {
    let text: String = chunks
        .iter()
        .map(|c| match (&c.text, &c.buffer) {
            (Some(t), _) => t.clone(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default(),
            (None, None) => String::new(),
        })
        .collect();
    (!text.is_empty()).then_some(text)
}

/// Add the tests of `suite` that ran to `out`; returns how many tests it selected. Tests
/// that never started (the run was stopped first) have no attempt and are left out: they
/// are not results, and the streamed events never list them either.
fn collect_suite(
    suite: &JsonSuite,
    describes: &[String],
    paths: &Paths,
    out: &mut Vec<Entry>,
) -> u64 {
    let mut selected = 0;
    for spec in &suite.specs {
        let file = paths.relative(&Path::new(&paths.root).join(&spec.file));
        for t in &spec.tests {
            selected += 1;
            if t.results.is_empty() {
                continue;
            }
            let attempts = t
                .results
                .iter()
                .map(|r| {
                    let mut errors: Vec<PwError> =
                        r.errors.iter().cloned().map(|e| paths.error(e)).collect();
                    if let Some(full) = &r.error {
                        let full = paths.error(full.clone());
                        match errors.first_mut() {
                            Some(first) => *first = full,
                            None => errors.push(full),
                        }
                    }
                    Attempt {
                        retry: r.retry,
                        status: r.status.clone(),
                        duration: r.duration,
                        start_ms: r
                            .start_time
                            .as_deref()
                            .and_then(|s| humantime::parse_rfc3339_weak(s).ok())
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map(|d| d.as_millis() as u64),
                        errors,
                        attachments: r
                            .attachments
                            .iter()
                            .filter_map(|a| {
                                Some(Attachment {
                                    name: a.name.clone(),
                                    content_type: a.content_type.clone(),
                                    path: a.path.clone()?,
                                })
                            })
                            .collect(),
                        stdout: join_output(&r.stdout),
                        stderr: join_output(&r.stderr),
                    }
                })
                .collect();
            out.push(Entry {
                title: spec.title.clone(),
                describes: describes.to_vec(),
                project: t.project_name.clone(),
                file: file.clone(),
                line: spec.line,
                expected_status: t.expected_status.clone(),
                outcome: t.status.clone(),
                annotations: t.annotations.clone(),
                attempts,
                finished: true,
            });
        }
    }
    for child in &suite.suites {
        let mut inner = describes.to_vec();
        if !child.title.is_empty() {
            inner.push(child.title.clone());
        }
        selected += collect_suite(child, &inner, paths, out);
    }
    selected
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: &str = include_str!("../../fixtures/reports/playwright-events.jsonl");
    const JSON: &str = include_str!("../../fixtures/reports/playwright-report.json");
    const INTERRUPTED: &str =
        include_str!("../../fixtures/reports/playwright-interrupted-events.jsonl");

    fn fed(text: &str) -> Collector {
        let mut c = Collector::default();
        for line in text.lines() {
            c.feed_line(line);
        }
        c
    }

    fn find<'a>(r: &'a TestReport, name: &str) -> &'a TestCase {
        r.tests.iter().find(|t| t.name == name).unwrap()
    }

    #[test]
    fn strips_ansi_colour_codes() {
        assert_eq!(
            strip_ansi(
                "Error: \u{1b}[2mexpect(\u{1b}[22m\u{1b}[31mlocator\u{1b}[39m) \u{1b}[1;32mok\u{1b}[0m"
            ),
            "Error: expect(locator) ok"
        );
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn the_streamed_events_describe_the_fixture_run() {
        let c = fed(EVENTS);
        let r = c.report();
        let s = r.summary();
        assert_eq!((s.total, s.passed, s.failed, s.skipped), (7, 4, 1, 2));
        assert_eq!(r.tool.version.as_deref(), Some("1.65.1"));

        let failed = find(&r, "fails on wrong heading");
        assert_eq!(failed.status, TestStatus::Failed);
        assert_eq!(failed.selector, "tests/basic.spec.ts:14");
        assert_eq!(failed.suite, ["tests/basic.spec.ts"]);
        assert_eq!(failed.failed_at.as_deref(), Some("tests/basic.spec.ts:17"));
        let message = failed.message.as_deref().unwrap();
        assert!(!message.contains('\u{1b}'), "{message:?}");
        assert!(message.starts_with("Error: expect(locator).toHaveText(expected) failed"));
        assert!(message.contains("Expected: \"Welcome aboard\"\nReceived: \"testrelay fixture\""));
        assert!(!message.contains("Call log"), "{message}");
        let trace = failed.trace.as_deref().unwrap();
        assert!(
            trace.contains("> 17 |"),
            "the snippet points at the line: {trace}"
        );
        assert!(!trace.contains('\u{1b}'));
        assert_eq!(failed.stdout.as_deref(), Some("checking the heading\n"));
        let kinds: Vec<(&str, &str)> = failed
            .attachments
            .iter()
            .map(|a| (a.name.as_str(), a.content_type.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("screenshot", "image/png"),
                ("error-context", "text/markdown")
            ]
        );
        assert_eq!(
            failed.attachments[0].path,
            "/JOB/artifacts/basic-fails-on-wrong-heading-chromium/test-failed-1.png"
        );

        let flaky = find(&r, "passes on retry");
        assert_eq!(
            (flaky.status, flaky.flaky, flaky.retries),
            (TestStatus::Passed, true, 1)
        );
        assert_eq!(flaky.raw_status, "flaky");
        assert_eq!(flaky.suite, ["tests/basic.spec.ts", "math"]);
        assert!(
            flaky.message.as_deref().unwrap().starts_with(
                "passed on retry 1 after failing: Error: fails on the first attempt on purpose"
            ),
            "{:?}",
            flaky.message
        );
        let skipped = find(&r, "skipped on purpose");
        assert_eq!(skipped.message.as_deref(), Some("not ready yet"));
        assert_eq!(
            c.progress(),
            Progress {
                done: 7,
                total: Some(7),
                failed: 1,
                current_file: None
            }
        );
        assert_eq!(c.classify(Some(1), &r, ""), Verdict::Failed);
    }

    #[test]
    fn the_json_report_agrees_with_the_events() {
        let streamed = fed(EVENTS).report();
        let mut both = fed(EVENTS);
        assert!(both.absorb_json(JSON));
        assert_eq!(both.report(), streamed);
        // Without the events the project directory comes from the config file's location.
        let mut alone = Collector::default();
        assert!(alone.absorb_json(JSON));
        assert_eq!(alone.report(), streamed);
        assert_eq!(alone.progress().done, 7);
    }

    #[test]
    fn tests_that_never_started_count_as_selected_but_are_not_results() {
        let json = r#"{"config":{"configFile":"/p/playwright.config.ts","rootDir":"/p/tests","version":"1.65.1","projects":[{"name":"chromium"}]},
            "suites":[{"title":"a.spec.ts","file":"a.spec.ts","specs":[
                {"title":"ran","file":"a.spec.ts","line":3,"tests":[{"projectName":"chromium","expectedStatus":"passed","status":"expected","results":[{"retry":0,"status":"passed","duration":5,"startTime":"2026-11-21T06:54:13.414Z","errors":[],"attachments":[],"stdout":[{"text":"hi\n"}],"stderr":[{"buffer":"aGk="}]}]}]},
                {"title":"never started","file":"a.spec.ts","line":9,"tests":[{"projectName":"chromium","expectedStatus":"passed","status":"skipped","results":[]}]}
            ]}],"errors":[]}"#;
        let mut c = Collector::default();
        assert!(c.absorb_json(json));
        let r = c.report();
        assert_eq!(r.tests.len(), 1);
        assert_eq!(r.tests[0].selector, "tests/a.spec.ts:3");
        assert_eq!(r.tests[0].stdout.as_deref(), Some("hi\n"));
        assert_eq!(r.tests[0].stderr.as_deref(), Some("hi"));
        assert_eq!(r.start_ms, Some(1_795_244_053_414));
        assert_eq!((c.progress().done, c.progress().total), (1, Some(2)));
    }

    #[test]
    fn a_torn_json_report_leaves_the_events_in_charge() {
        let mut c = fed(EVENTS);
        assert!(!c.absorb_json(&JSON[..JSON.len() / 2]));
        assert_eq!(c.report().tests.len(), 7);
    }

    #[test]
    fn an_interrupted_run_keeps_every_finished_test() {
        let c = fed(INTERRUPTED);
        let r = c.report();
        let s = r.summary();
        assert_eq!((s.total, s.passed, s.failed, s.skipped), (7, 4, 1, 2));
        let hang = find(&r, "hangs until cancelled");
        assert_eq!(
            (hang.status, hang.raw_status.as_str()),
            (TestStatus::Skipped, "interrupted")
        );
        assert!(hang.message.as_deref().unwrap().starts_with("interrupted"));
    }

    #[test]
    fn streaming_progress_counts_only_final_attempts() {
        let lines: Vec<&str> = EVENTS.lines().collect();
        let retry_pending = lines
            .iter()
            .position(|l| l.contains("\"final\":false"))
            .unwrap();
        let mut c = Collector::default();
        for l in &lines[..=retry_pending] {
            c.feed_line(l);
        }
        c.feed_line(&lines[retry_pending + 1][..30]);
        let p = c.progress();
        assert_eq!(p.total, Some(7));
        assert_eq!(p.done as usize, c.entries.len() - 1);
    }

    #[test]
    fn several_projects_put_the_project_into_the_selector() {
        let mut c = Collector::default();
        c.feed_line(r#"{"event":"begin","version":"1.65.1","cwd":"/p","projects":["chromium","firefox"],"total":2}"#);
        for project in ["chromium", "firefox"] {
            c.feed_line(&format!(
                r#"{{"event":"test_end","id":"a-{project}","title":"t","describes":[],"project":"{project}","file":"tests/a.spec.ts","line":3,"expected_status":"passed","outcome":"unexpected","annotations":[],"final":true,"result":{{"retry":0,"status":"timedOut","duration":5,"start_ms":1,"errors":[{{"message":"Test timeout of 5ms exceeded.","stack":null,"snippet":null,"location":null}}],"attachments":[],"stdout":null,"stderr":null}}}}"#
            ));
        }
        let r = c.report();
        assert_eq!(r.tests[1].selector, "tests/a.spec.ts:3 --project=firefox");
        assert_eq!(r.tests[1].suite, ["firefox", "tests/a.spec.ts"]);
        assert_eq!(r.tests[1].raw_status, "timedOut");
        assert_eq!(
            r.tests[1].message.as_deref(),
            Some("Test timeout of 5ms exceeded.")
        );
    }

    #[test]
    fn broken_runs_say_why() {
        let empty = TestReport::new("playwright");
        let c = Collector::default();
        assert_eq!(
            c.classify(
                Some(1),
                &empty,
                "Error: Cannot find module '@playwright/test'\nRequire stack:\n"
            ),
            Verdict::Broken(
                "playwright did not start (exit status 1): Error: Cannot find module '@playwright/test'".into()
            )
        );
        let mut c = Collector::default();
        c.feed_line(
            r#"{"event":"begin","version":"1.65.1","cwd":"/p","projects":["chromium"],"total":0}"#,
        );
        c.feed_line(r#"{"event":"error","error":{"message":"Error: No tests found","stack":null,"location":null}}"#);
        assert!(matches!(
            c.classify(Some(1), &empty, ""),
            Verdict::Broken(m) if m.starts_with("no tests matched the selection")
        ));
        let mut c = Collector::default();
        c.feed_line(
            r#"{"event":"begin","version":"1.65.1","cwd":"/p","projects":["chromium"],"total":3}"#,
        );
        c.feed_line(r#"{"event":"error","error":{"message":"Error: http://127.0.0.1:39517/ is already used, make sure that nothing is running on the port/url or set reuseExistingServer:true in config.webServer.","location":null}}"#);
        assert!(matches!(
            c.classify(Some(1), &empty, ""),
            Verdict::Broken(m) if m.contains("is already used")
        ));
        assert_eq!(
            c.classify(None, &empty, ""),
            Verdict::Broken("playwright was killed by a signal".into())
        );
    }

    #[test]
    fn a_test_file_that_fails_to_load_is_a_file_error() {
        let mut c = Collector::default();
        c.feed_line(r#"{"event":"error","error":{"message":"SyntaxError: Unexpected token (3:1)","stack":"SyntaxError: Unexpected token (3:1)\n    at tests/broken.spec.ts:3","location":{"file":"tests/broken.spec.ts","line":3,"column":1}}}"#);
        let r = c.report();
        assert_eq!(r.file_errors.len(), 1);
        assert_eq!(r.file_errors[0].file, "tests/broken.spec.ts");
        assert_eq!(
            r.file_errors[0].message,
            "SyntaxError: Unexpected token (3:1)"
        );
        assert_eq!(c.classify(Some(1), &r, ""), Verdict::Failed);
    }
}

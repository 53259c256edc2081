//! Jest results: the incremental reader of testrelay's reporter events, merged at the end
//! with Jest's own `--json` report, and the judgement of how a run ended.
//!
//! Sources, in order of trust:
//! - Jest's `--json` report, written when the run ends normally. When it exists it decides
//!   the tests, statuses and failure texts of every file it lists.
//! - The reporter's `file_done` events: the final list of a file's tests, its load error and
//!   its console output (which the `--json` report does not carry).
//! - The reporter's `test` events, one per test as it finishes: what remains of a file that
//!   was still running when the run was killed.
//!
//! Tests that `-t` filtered out arrive as `pending`, like real skips. The reporter marks them
//! `selected: false` by applying Jest's own pattern, and they are left out of the report.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::plan::{Progress, Verdict};
use super::text::{last_error_line, strip_ansi};
use crate::report::{FileError, TestCase, TestReport, TestStatus};

/// One test as the reporter writes it.
#[derive(Debug, Clone, Deserialize)]
struct TestLine {
    file: String,
    title: String,
    #[serde(default)]
    ancestors: Vec<String>,
    full_name: String,
    status: String,
    #[serde(default = "yes")]
    selected: bool,
    duration: Option<f64>,
    start: Option<u64>,
    line: Option<u32>,
    failure: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
struct ConsoleEntry {
    #[serde(rename = "type")]
    kind: String,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    RunStart {
        jest_version: Option<String>,
        root: Option<String>,
        report_file: Option<PathBuf>,
        name_pattern: Option<String>,
    },
    FileStart {
        file: String,
    },
    Test(TestLine),
    FileDone {
        file: String,
        error: Option<String>,
        #[serde(default)]
        tests: Vec<TestLine>,
        #[serde(default)]
        console: Vec<ConsoleEntry>,
    },
    RunDone {},
}

/// What is known about one test file.
#[derive(Debug, Default)]
struct FileState {
    done: bool,
    tests: Vec<TestLine>,
    error: Option<String>,
    console: Vec<ConsoleEntry>,
}

/// Jest's `--json` report, the parts testrelay reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport {
    test_results: Vec<JsonFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonFile {
    name: String,
    status: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    assertion_results: Vec<JsonTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonTest {
    #[serde(default)]
    ancestor_titles: Vec<String>,
    title: String,
    full_name: String,
    status: String,
    duration: Option<f64>,
    #[serde(default)]
    failure_messages: Vec<String>,
    location: Option<JsonLocation>,
    start_at: Option<u64>,
}

#[derive(Deserialize)]
struct JsonLocation {
    line: u32,
}

/// Builds the report from the reporter's events as they arrive.
#[derive(Default)]
pub struct Collector {
    version: Option<String>,
    /// The directory Jest ran in: absolute paths under it are shown relative.
    root: Option<String>,
    report_file: Option<PathBuf>,
    name_pattern: Option<String>,
    started: bool,
    files: Vec<(String, FileState)>,
    index: HashMap<String, usize>,
    run_done: bool,
}

impl Collector {
    fn file_mut(&mut self, file: &str) -> &mut FileState {
        let i = match self.index.get(file) {
            Some(&i) => i,
            None => {
                self.files.push((file.to_string(), FileState::default()));
                self.index.insert(file.to_string(), self.files.len() - 1);
                self.files.len() - 1
            }
        };
        &mut self.files[i].1
    }

    pub fn feed_line(&mut self, line: &str) {
        let Ok(event) = serde_json::from_str::<Event>(line) else {
            return;
        };
        match event {
            Event::RunStart {
                jest_version,
                root,
                report_file,
                name_pattern,
            } => {
                self.started = true;
                self.version = jest_version;
                self.root = root;
                self.report_file = report_file;
                self.name_pattern = name_pattern;
            }
            Event::FileStart { file } => {
                self.file_mut(&file);
            }
            Event::Test(t) => {
                let file = t.file.clone();
                let state = self.file_mut(&file);
                // A file's final list replaces what streamed in; late lines change nothing.
                if !state.done {
                    state.tests.push(t);
                }
            }
            Event::FileDone {
                file,
                error,
                tests,
                console,
            } => {
                let state = self.file_mut(&file);
                *state = FileState {
                    done: true,
                    tests,
                    error,
                    console,
                };
            }
            Event::RunDone {} => self.run_done = true,
        }
    }

    fn counted(&self) -> impl Iterator<Item = &TestLine> {
        self.files
            .iter()
            .flat_map(|(_, f)| f.tests.iter())
            .filter(|t| t.selected)
    }

    pub fn progress(&self) -> Progress {
        let done = self.counted().count() as u64;
        let failed = self.counted().filter(|t| t.status == "failed").count()
            + self.files.iter().filter(|(_, f)| f.error.is_some()).count();
        Progress {
            done,
            // Jest counts a file's tests only once it has loaded the file, so the total is
            // known only at the end.
            total: self.run_done.then_some(done),
            failed: failed as u64,
            current_file: self
                .files
                .iter()
                .rev()
                .find(|(_, f)| !f.done)
                .map(|(name, _)| name.clone()),
        }
    }

    /// A path as the user's project sees it: relative to where Jest ran.
    fn relative(&self, path: &str) -> String {
        match &self.root {
            Some(root) => path
                .strip_prefix(root.as_str())
                .and_then(|p| p.strip_prefix('/'))
                .unwrap_or(path)
                .to_string(),
            None => path.to_string(),
        }
    }

    /// Failure text without colour codes, absolute project paths, or the stack frames of
    /// Jest's own machinery (which would otherwise fill the end of every trace).
    fn clean_trace(&self, text: &str) -> String {
        let text = strip_ansi(text);
        let text = match &self.root {
            Some(root) => text.replace(&format!("{root}/"), ""),
            None => text,
        };
        text.lines()
            .filter(|l| {
                let t = l.trim_start();
                !(t.starts_with("at ")
                    && (t.contains("node_modules/")
                        || t.contains("node:internal")
                        || t.contains("(<anonymous>)")))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn case(&self, t: &TestLine, console: &[ConsoleEntry]) -> TestCase {
        let status = match t.status.as_str() {
            "passed" => TestStatus::Passed,
            "failed" => TestStatus::Failed,
            "todo" => TestStatus::Pending,
            _ => TestStatus::Skipped,
        };
        let trace = t.failure.as_deref().map(|f| self.clean_trace(f));
        let message = trace.as_deref().map(failure_message);
        let failed_at = trace.as_deref().and_then(|tr| failed_at(tr, &t.file));
        let (stdout, stderr) = if status == TestStatus::Failed {
            console_text(&t.file, console)
        } else {
            (None, None)
        };
        let mut suite = vec![t.file.clone()];
        suite.extend(t.ancestors.iter().cloned());
        TestCase {
            name: t.title.clone(),
            suite,
            file: Some(t.file.clone()),
            line: t.line,
            status,
            raw_status: t.status.clone(),
            duration_ms: t.duration.unwrap_or(0.0),
            message,
            trace,
            stdout,
            stderr,
            selector: format!("{}::{}", t.file, t.full_name),
            failed_at,
            attachments: Vec::new(),
            retries: 0,
            flaky: false,
        }
    }

    fn file_error(&self, file: &str, text: &str) -> FileError {
        let details = self.clean_trace(text);
        FileError {
            file: file.to_string(),
            message: decisive_line(&details),
            details: Some(details),
        }
    }

    /// Jest's `--json` report, once the run has ended and Jest has written it.
    fn json_report(&self) -> Option<JsonReport> {
        if !self.run_done {
            return None;
        }
        let text = std::fs::read_to_string(self.report_file.as_ref()?).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn report(&self) -> TestReport {
        let mut r = TestReport::new("jest");
        r.tool.version = self.version.clone();
        let json = self.json_report();
        let mut from_json: HashMap<String, (Vec<TestLine>, Option<String>)> = HashMap::new();
        let mut order: Vec<String> = self.files.iter().map(|(f, _)| f.clone()).collect();
        if let Some(json) = json {
            for f in json.test_results {
                let file = self.relative(&f.name);
                let (tests, error) = self.json_file(&file, f);
                if !self.index.contains_key(&file) {
                    order.push(file.clone());
                }
                from_json.insert(file, (tests, error));
            }
        }
        let empty = FileState::default();
        for file in order {
            let state = self.index.get(&file).map_or(&empty, |&i| &self.files[i].1);
            let (tests, error) = match from_json.remove(&file) {
                Some((tests, error)) => (tests, error),
                None => (state.tests.clone(), state.error.clone()),
            };
            for t in tests.iter().filter(|t| t.selected) {
                r.tests.push(self.case(t, &state.console));
            }
            if let Some(e) = error {
                r.file_errors.push(self.file_error(&file, &e));
            }
        }
        r.start_ms = self
            .files
            .iter()
            .flat_map(|(_, f)| f.tests.iter())
            .filter_map(|t| t.start)
            .min();
        r
    }

    /// One file of the `--json` report as test lines, each marked selected or not the way
    /// the reporter marked the same test (matched by full name and occurrence).
    fn json_file(&self, file: &str, f: JsonFile) -> (Vec<TestLine>, Option<String>) {
        let events = self
            .index
            .get(file)
            .map(|&i| &self.files[i].1)
            .filter(|s| s.done);
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let fallback = self.name_pattern.as_deref().map(|p| {
            regex::RegexBuilder::new(p)
                .case_insensitive(true)
                .build()
                .ok()
        });
        let any_failed = f.assertion_results.iter().any(|a| a.status == "failed");
        let error = (f.status == "failed" && !any_failed && !f.message.trim().is_empty())
            .then(|| f.message.clone());
        let tests = f
            .assertion_results
            .iter()
            .map(|a| {
                let nth = seen.entry(a.full_name.as_str()).or_default();
                let from_events = events.and_then(|s| {
                    s.tests
                        .iter()
                        .filter(|t| t.full_name == a.full_name)
                        .nth(*nth)
                });
                *nth += 1;
                let selected = match (from_events, &fallback) {
                    (Some(t), _) => t.selected,
                    // No reporter events for this file: judge by the pattern itself, as
                    // far as Rust's regex syntax agrees with JavaScript's.
                    (None, Some(Some(re))) => a.status != "pending" || re.is_match(&a.full_name),
                    _ => true,
                };
                TestLine {
                    file: file.to_string(),
                    title: a.title.clone(),
                    ancestors: a.ancestor_titles.clone(),
                    full_name: a.full_name.clone(),
                    status: a.status.clone(),
                    selected,
                    duration: a.duration,
                    start: a.start_at,
                    line: a.location.as_ref().map(|l| l.line),
                    failure: (!a.failure_messages.is_empty())
                        .then(|| a.failure_messages.join("\n\n")),
                }
            })
            .collect();
        (tests, error)
    }

    pub fn classify(
        &self,
        exit_code: Option<i32>,
        report: &TestReport,
        stderr_tail: &str,
    ) -> Verdict {
        let quoted = || {
            quote_jest(stderr_tail)
                .map(|q| format!(": {q}"))
                .unwrap_or_default()
        };
        let ran_any = !report.tests.is_empty() || !report.file_errors.is_empty();
        match exit_code {
            None => Verdict::Broken("jest was killed by a signal".into()),
            Some(code) if !self.started => Verdict::Broken(format!(
                "jest did not start (exit status {code}){}",
                quoted()
            )),
            Some(_) if !ran_any && self.name_pattern.is_some() && !self.files.is_empty() => {
                Verdict::Broken(format!(
                    "no test name matched the pattern /{}/: check the test ids or the keyword (a regex matched case-insensitively against full test names: describe titles and the test title joined by spaces)",
                    self.name_pattern.as_deref().unwrap_or_default()
                ))
            }
            Some(_) if !ran_any => Verdict::Broken(format!(
                "no tests found: check the selection (test files, directories, test ids) and Jest's testMatch{}",
                quoted()
            )),
            Some(0) => Verdict::Passed,
            Some(1) if report.has_problems() => Verdict::Failed,
            Some(code) if report.has_problems() => {
                Verdict::Broken(format!("jest exited with status {code}{}", quoted()))
            }
            Some(code) => Verdict::Broken(format!(
                "jest exited with status {code} but no test failed (a coverage threshold, an obsolete snapshot in --ci mode, or a crash after the tests){}",
                quoted()
            )),
        }
    }
}

/// The assertion or error text of a failure, without its stack and blank lines.
fn failure_message(trace: &str) -> String {
    trace
        .lines()
        .take_while(|l| !l.trim_start().starts_with("at "))
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `file:line` of the first stack frame in the test's own file, else the first frame.
fn failed_at(trace: &str, file: &str) -> Option<String> {
    let frames: Vec<(String, String)> = trace
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("at "))
        .filter_map(|frame| {
            // `fn (path:line:col)` or a bare `path:line:col`.
            let loc = frame
                .rsplit_once('(')
                .map_or(frame, |(_, rest)| rest.trim_end_matches(')'));
            let mut parts = loc.rsplitn(3, ':');
            let _col = parts.next()?;
            let line = parts.next()?.parse::<u32>().ok()?;
            let path = parts.next()?;
            Some((path.to_string(), line.to_string()))
        })
        .collect();
    frames
        .iter()
        .find(|(p, _)| p == file)
        .or_else(|| frames.first())
        .map(|(p, l)| format!("{p}:{l}"))
}

/// The line that says what went wrong in a "Test suite failed to run" text.
fn decisive_line(details: &str) -> String {
    details
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('●'))
        .unwrap_or("the test file failed to run")
        .to_string()
}

/// A file's console output, split into stdout-like and stderr-like calls. Jest collects
/// console output per file, not per test, so each failing test of the file carries it,
/// under a heading that says so.
fn console_text(file: &str, console: &[ConsoleEntry]) -> (Option<String>, Option<String>) {
    let collect = |to_stderr: bool| {
        let lines: Vec<&str> = console
            .iter()
            .filter(|e| {
                matches!(e.kind.as_str(), "error" | "warn" | "trace" | "assert") == to_stderr
            })
            .filter_map(|e| e.message.as_deref())
            .collect();
        (!lines.is_empty()).then(|| {
            format!(
                "[console output of {file}; Jest records it per file]\n{}\n",
                lines.join("\n")
            )
        })
    };
    (collect(false), collect(true))
}

/// Jest's own words for why it stopped: a `●` heading and the line after it, else the last
/// line that mentions an error.
fn quote_jest(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if let Some(i) = lines.iter().position(|l| l.starts_with('●')) {
        let mut q = lines[i].to_string();
        if let Some(next) = lines.get(i + 1) {
            q = format!("{q} {next}");
        }
        return Some(strip_ansi(&q));
    }
    last_error_line(stderr)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: &str = include_str!("../../fixtures/reports/jest-events.jsonl");

    /// The captured events, with the run's `--json` report at `report_file` (None: absent).
    fn collector(lines: &[&str], report_file: Option<&str>) -> Collector {
        let mut c = Collector::default();
        for line in lines {
            let line = match report_file {
                Some(path) => line.replace("/JOB/jest-report.json", path),
                None => line.replace("/JOB/jest-report.json", "/nonexistent/jest-report.json"),
            };
            c.feed_line(&line);
        }
        c
    }

    fn captured_report() -> String {
        format!(
            "{}/fixtures/reports/jest-report.json",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    fn check_fixture_report(r: &TestReport) {
        let s = r.summary();
        assert_eq!(
            (s.total, s.passed, s.failed, s.errors, s.skipped, s.pending),
            (11, 6, 2, 1, 2, 1)
        );
        assert_eq!(r.tool.version.as_deref(), Some("30.5.2"));
        let failed: Vec<_> = r
            .tests
            .iter()
            .filter(|t| t.status.is_problem())
            .map(|t| t.selector.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "__tests__/basic.test.js::fails with a clear message",
                "__tests__/basic.test.js::math param 3"
            ]
        );
        let fails = r
            .tests
            .iter()
            .find(|t| t.name == "fails with a clear message")
            .unwrap();
        assert_eq!(
            fails.message.as_deref(),
            Some(
                "Error: expect(received).toBe(expected) // Object.is equality\nExpected: 3\nReceived: 2"
            )
        );
        assert_eq!(
            (fails.file.as_deref(), fails.line),
            (Some("__tests__/basic.test.js"), Some(8))
        );
        assert_eq!(
            fails.failed_at.as_deref(),
            Some("__tests__/basic.test.js:9")
        );
        let trace = fails.trace.as_deref().unwrap();
        assert!(
            trace.ends_with("at Object.toBe (__tests__/basic.test.js:9:21)"),
            "{trace}"
        );
        assert!(
            !trace.contains("node_modules") && !trace.contains("/PROJECT"),
            "{trace}"
        );
        assert_eq!(
            fails.stdout.as_deref(),
            Some(
                "[console output of __tests__/basic.test.js; Jest records it per file]\nhello from console.log\n"
            )
        );
        assert!(
            fails
                .stderr
                .as_deref()
                .unwrap()
                .ends_with("oops on console.error\n")
        );
        let nested = r.tests.iter().find(|t| t.name == "multiplies").unwrap();
        assert_eq!(nested.suite, ["__tests__/basic.test.js", "math", "nested"]);
        assert_eq!(
            nested.selector,
            "__tests__/basic.test.js::math nested multiplies"
        );
        let todo = r
            .tests
            .iter()
            .find(|t| t.status == TestStatus::Pending)
            .unwrap();
        assert_eq!(
            (todo.name.as_str(), todo.raw_status.as_str()),
            ("handles negative numbers", "todo")
        );
        let skipped: Vec<_> = r
            .tests
            .iter()
            .filter(|t| t.status == TestStatus::Skipped)
            .map(|t| (t.name.as_str(), t.raw_status.as_str()))
            .collect();
        assert_eq!(skipped, [("is skipped", "pending"), ("hangs", "pending")]);
        let passed = r.tests.iter().find(|t| t.name == "prints output").unwrap();
        assert_eq!(
            passed.stdout, None,
            "only failures carry the file's console output"
        );
        assert_eq!(r.file_errors.len(), 1);
        let e = &r.file_errors[0];
        assert_eq!(e.file, "__tests__/broken.test.js");
        assert_eq!(
            e.message,
            "Cannot find module 'not-a-real-module-for-testrelay' from '__tests__/broken.test.js'"
        );
        assert!(
            e.details
                .as_deref()
                .unwrap()
                .starts_with("  ● Test suite failed to run")
        );
        assert!(r.start_ms.is_some());
    }

    #[test]
    fn the_captured_events_alone_make_the_report() {
        let lines: Vec<&str> = EVENTS.lines().collect();
        let c = collector(&lines, None);
        check_fixture_report(&c.report());
        assert_eq!(
            c.progress(),
            Progress {
                done: 11,
                total: Some(11),
                failed: 3,
                current_file: None
            }
        );
        assert_eq!(c.classify(Some(1), &c.report(), ""), Verdict::Failed);
    }

    #[test]
    fn the_json_report_wins_where_it_exists_and_events_fill_in() {
        let lines: Vec<&str> = EVENTS.lines().collect();
        let path = captured_report();
        let with_json = collector(&lines, Some(&path));
        let merged = with_json.report();
        check_fixture_report(&merged);
        assert_eq!(merged, collector(&lines, None).report());

        // A file the reporter never finished (its file_done is missing) still comes out
        // whole from Jest's report.
        let without_basic_done: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| !(l.contains("\"file_done\"") && l.contains("basic.test.js")))
            .collect();
        let c = collector(&without_basic_done, Some(&path));
        assert_eq!(c.report().summary().total, 11);
    }

    #[test]
    fn a_killed_run_keeps_finished_tests_and_names_the_running_file() {
        let lines: Vec<&str> = EVENTS.lines().collect();
        let cut = lines
            .iter()
            .position(|l| l.contains("\"fails with a clear message\""))
            .unwrap();
        let c = collector(&lines[..=cut], Some(&captured_report()));
        let p = c.progress();
        assert_eq!((p.done, p.total, p.failed), (2, None, 2));
        assert_eq!(p.current_file.as_deref(), Some("__tests__/basic.test.js"));
        let r = c.report();
        assert_eq!(
            r.tests.len(),
            2,
            "the --json report is not trusted before run_done"
        );
        assert_eq!(r.tests[1].status, TestStatus::Failed);
        assert_eq!(r.file_errors.len(), 1);
    }

    #[test]
    fn tests_filtered_out_by_the_name_pattern_are_not_skips() {
        let mut c = Collector::default();
        for line in [
            r#"{"event":"run_start","jest_version":"30.5.2","root":"/p","files":1,"report_file":null,"name_pattern":"^math param 2$"}"#.to_string(),
            r#"{"event":"file_start","file":"a.test.js"}"#.into(),
            r#"{"event":"test","file":"a.test.js","title":"param 2","ancestors":["math"],"full_name":"math param 2","status":"passed","selected":true,"duration":1,"start":null,"line":3,"failure":null}"#.into(),
            r#"{"event":"file_done","file":"a.test.js","error":null,"console":[],"tests":[
                {"file":"a.test.js","title":"skipped","ancestors":[],"full_name":"skipped","status":"pending","selected":false,"duration":null,"start":null,"line":1,"failure":null},
                {"file":"a.test.js","title":"param 2","ancestors":["math"],"full_name":"math param 2","status":"passed","selected":true,"duration":1,"start":5,"line":3,"failure":null}]}"#
                .replace('\n', ""),
            r#"{"event":"run_done","tests":2,"success":true,"interrupted":false}"#.into(),
        ]
        .iter()
        {
            c.feed_line(line);
        }
        let r = c.report();
        assert_eq!(r.summary().total, 1);
        assert_eq!(r.summary().skipped, 0);
        assert_eq!(c.progress().done, 1);
        assert_eq!(c.classify(Some(0), &r, ""), Verdict::Passed);

        // Jest's report for a file the reporter did not describe: the pattern decides.
        let json = JsonFile {
            name: "/p/b.test.js".into(),
            status: "passed".into(),
            message: String::new(),
            assertion_results: vec![
                JsonTest {
                    ancestor_titles: vec!["Math".into()],
                    title: "Param 2".into(),
                    full_name: "Math Param 2".into(),
                    status: "passed".into(),
                    duration: Some(1.0),
                    failure_messages: vec![],
                    location: None,
                    start_at: None,
                },
                JsonTest {
                    ancestor_titles: vec![],
                    title: "other".into(),
                    full_name: "other".into(),
                    status: "pending".into(),
                    duration: None,
                    failure_messages: vec![],
                    location: None,
                    start_at: None,
                },
            ],
        };
        let (tests, error) = c.json_file("b.test.js", json);
        assert_eq!(error, None);
        assert_eq!(
            tests.iter().map(|t| t.selected).collect::<Vec<_>>(),
            [true, false]
        );
    }

    #[test]
    fn runs_that_broke_are_told_from_failed_tests() {
        let empty = TestReport::new("jest");
        let c = Collector::default();
        let usage = "● Unrecognized CLI Parameter:\n\n  Unrecognized option \"bogus\". Did you mean \"b\"?\n\n  CLI Options Documentation:\n";
        assert_eq!(
            c.classify(Some(1), &empty, usage),
            Verdict::Broken("jest did not start (exit status 1): ● Unrecognized CLI Parameter: Unrecognized option \"bogus\". Did you mean \"b\"?".into())
        );
        let mut c = Collector::default();
        c.feed_line(r#"{"event":"run_start","jest_version":"30.5.2","root":"/p","files":0,"report_file":null,"name_pattern":null}"#);
        c.feed_line(r#"{"event":"run_done","tests":0}"#);
        assert!(matches!(
            c.classify(Some(1), &empty, "No tests found, exiting with code 1\nRun with `--passWithNoTests` to exit with code 0\n"),
            Verdict::Broken(r) if r.starts_with("no tests found")
        ));
        let mut passing = TestReport::new("jest");
        passing.tests.push(c.case(
            &TestLine {
                file: "a.test.js".into(),
                title: "t".into(),
                ancestors: vec![],
                full_name: "t".into(),
                status: "passed".into(),
                selected: true,
                duration: Some(1.0),
                start: None,
                line: Some(1),
                failure: None,
            },
            &[],
        ));
        assert_eq!(c.classify(Some(0), &passing, ""), Verdict::Passed);
        assert!(matches!(
            c.classify(Some(1), &passing, "Jest: \"global\" coverage threshold for lines (90%) not met: 50%\n"),
            Verdict::Broken(r) if r.contains("no test failed") && r.contains("coverage threshold")
        ));
        assert_eq!(
            c.classify(None, &passing, ""),
            Verdict::Broken("jest was killed by a signal".into())
        );
    }

    #[test]
    fn colour_codes_and_machinery_frames_are_removed() {
        let c = Collector {
            root: Some("/p".into()),
            ..Collector::default()
        };
        let raw = "\u{1b}[2mexpect(\u{1b}[22m\u{1b}[31mreceived\u{1b}[39m)\n\n    at Object.<anonymous> (/p/a.test.js:3:9)\n    at Promise.then.completed (/p/node_modules/jest-circus/build/utils.js:298:28)\n    at new Promise (<anonymous>)\n    at processTicksAndRejections (node:internal/process/task_queues:95:5)";
        let trace = c.clean_trace(raw);
        assert_eq!(
            trace,
            "expect(received)\n\n    at Object.<anonymous> (a.test.js:3:9)"
        );
        assert_eq!(failure_message(&trace), "expect(received)");
        assert_eq!(
            failed_at(&trace, "a.test.js").as_deref(),
            Some("a.test.js:3")
        );
        assert_eq!(
            failed_at("    at helper (lib/x.js:7:1)", "a.test.js").as_deref(),
            Some("lib/x.js:7")
        );
    }
}

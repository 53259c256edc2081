//! Human output for the CLI subcommands: results on stdout, progress and errors on stderr.
//! Nothing in serve mode goes through here.

use std::io::{IsTerminal, Write};

use crate::jobs::{JobStatus, JobView, Snapshot};
use crate::report::TestStatus;
use crate::runners::EnvironmentCheck;

pub struct Printer {
    tty: bool,
    last_file: Option<String>,
    drawn: bool,
}

impl Default for Printer {
    fn default() -> Self {
        Self::new()
    }
}

impl Printer {
    pub fn new() -> Self {
        Printer {
            tty: std::io::stderr().is_terminal(),
            last_file: None,
            drawn: false,
        }
    }

    pub fn error(&mut self, msg: &str) {
        self.clear_progress();
        eprintln!("error: {msg}");
    }

    pub fn note(&mut self, msg: &str) {
        self.clear_progress();
        eprintln!("{msg}");
    }

    /// Live progress: one redrawn line on a terminal, a plain line per file otherwise.
    pub fn progress(&mut self, snap: &Snapshot) {
        let p = &snap.progress;
        let count = match p.total {
            Some(t) => format!("{}/{t}", p.done),
            None => p.done.to_string(),
        };
        let failed = if p.failed > 0 {
            format!("  {} failed", p.failed)
        } else {
            String::new()
        };
        let file = p.current_file.clone().unwrap_or_default();
        if self.tty {
            let mut line = format!("  {} {count}{failed}  {file}", snap.status.as_str());
            line.truncate(line.char_indices().nth(100).map_or(line.len(), |(i, _)| i));
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
            self.drawn = true;
        } else if !file.is_empty() && self.last_file.as_deref() != Some(file.as_str()) {
            eprintln!("  [{count}{failed}] {file}");
            self.last_file = Some(file);
        }
    }

    pub fn clear_progress(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
            self.drawn = false;
        }
    }

    /// Failures with their messages, then one summary line.
    pub fn run_summary(&mut self, view: &JobView) {
        self.clear_progress();
        let mut out = String::new();
        if let Some(report) = &view.report {
            for e in &report.file_errors {
                out.push_str(&format!("ERROR  {}\n  {}\n", e.file, indent(&e.message)));
            }
            for t in report.tests.iter().filter(|t| t.status.is_problem()) {
                let word = if t.status == TestStatus::Errored {
                    "ERROR "
                } else {
                    "FAILED"
                };
                let at = match (&t.failed_at, &t.file, t.line) {
                    (Some(at), _, _) => format!(" ({at})"),
                    (None, Some(f), Some(l)) => format!(" ({f}:{l})"),
                    _ => String::new(),
                };
                // Suite and name, not the selector: a failed subtest shares its parent's selector.
                let id = t
                    .suite
                    .iter()
                    .chain(std::iter::once(&t.name))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("::");
                out.push_str(&format!("{word} {id}{at}\n"));
                if let Some(m) = &t.message {
                    out.push_str(&format!("  {}\n", indent(first_lines(m, 6))));
                }
                for a in &t.attachments {
                    out.push_str(&format!("  {}: {}\n", a.name, a.path));
                }
            }
        }
        let r = &view.record;
        if matches!(r.status, JobStatus::Error | JobStatus::Interrupted)
            && !view.stderr_tail.trim().is_empty()
        {
            out.push_str("\nrunner stderr (last lines):\n");
            for line in last_lines(&view.stderr_tail, 15) {
                out.push_str(&format!("  {line}\n"));
            }
        }
        let counts = view
            .report
            .as_ref()
            .map(|rep| rep.summary().describe())
            .unwrap_or_else(|| "no results".into());
        let secs = r.duration_ms(crate::jobs::now_ms()).unwrap_or(0) as f64 / 1000.0;
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!(
            "{}: {counts} in {secs:.2}s: {}\n",
            r.framework,
            r.status.as_str()
        ));
        if let Some(reason) = &r.reason {
            out.push_str(&format!("reason: {reason}\n"));
        }
        out.push_str(&format!(
            "job {} (logs and reports in {})\n",
            r.id,
            view.dir.display()
        ));
        print!("{out}");
    }

    pub fn check(&mut self, dir: &std::path::Path, checks: &[EnvironmentCheck]) {
        let mut out = String::new();
        if checks.is_empty() {
            out.push_str(&format!(
                "no supported test framework detected in {}\n",
                dir.display()
            ));
        }
        for c in checks {
            let what = match (&c.version, &c.runtime_version) {
                (Some(v), Some(rt)) => format!(" ({} {v}, runtime {rt})", c.framework),
                (Some(v), None) => format!(" ({} {v})", c.framework),
                _ => String::new(),
            };
            let mark = if c.ready {
                "✓ ready"
            } else {
                "✗ not ready"
            };
            out.push_str(&format!("{}: {mark}{what}\n", c.framework));
            if let Some(t) = &c.toolchain {
                out.push_str(&format!("  toolchain:   {t}\n"));
            }
            if !c.detected_by.is_empty() {
                out.push_str(&format!("  detected by: {}\n", c.detected_by.join(", ")));
            }
            if !c.plugins.is_empty() {
                out.push_str(&format!("  plugins:     {}\n", c.plugins.join(", ")));
            }
            for m in &c.missing {
                out.push_str(&format!("  missing:     {m}\n"));
            }
            if !c.setup_commands.is_empty() {
                out.push_str("  to set up, run in the project directory:\n");
                for cmd in &c.setup_commands {
                    out.push_str(&format!("    {cmd}\n"));
                }
            }
            for n in &c.notes {
                out.push_str(&format!("  note:        {n}\n"));
            }
        }
        print!("{out}");
    }

    pub fn text(&mut self, text: &str) {
        self.clear_progress();
        print!("{text}");
    }

    pub fn json<T: serde::Serialize>(&mut self, value: &T) {
        self.clear_progress();
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("value serializes")
        );
    }
}

fn indent(s: &str) -> String {
    s.replace('\n', "\n  ")
}

fn first_lines(s: &str, n: usize) -> &str {
    match s.match_indices('\n').nth(n - 1) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn last_lines(s: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

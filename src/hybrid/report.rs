//! `report_test_results` and `testrelay sync`: send a finished job's results to the cloud,
//! only after explicit confirmation, through a local outbox so that an upload failing
//! midway resumes later without duplicating what was already acknowledged.
//!
//! The outbox is `<state dir>/outbox/<client run id>.json`. Each entry holds the
//! registration, one pending update per cloud test case (screenshots by path, read at send
//! time), and what the service acknowledged so far. The client run id is derived from the
//! job and the project, so reporting the same job to the same project twice reuses it and
//! the service's idempotency (see `docs/cloud-contract.md`) does the rest.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::HybridError;
use crate::cloud::Bridge;
use crate::cloud::contract::{
    self, COMPLETE_CLIENT_EXECUTION, CompleteExecution, Completed, Ignored,
    REGISTER_CLIENT_EXECUTION, RegisterExecution, Registered, RunCounts, UPDATE_EXECUTION_PROGRESS,
    UpdateProgress,
};
use crate::jobs::JobView;
use crate::report::TestStatus;

/// Screenshots bigger than this are left out (the result says so).
pub const SCREENSHOT_CAP: u64 = 2 * 1024 * 1024;
/// How long a completed report is remembered (to answer `already_reported`).
const KEEP_COMPLETED: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
/// Failure messages are cut to this many bytes.
const NOTES_CAP: usize = 4096;

/// Reports from several calls never interleave: one outbox writer at a time.
fn outbox_lock() -> &'static tokio::sync::Mutex<()> {
    static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

#[derive(Debug, Clone)]
pub struct ReportRequest {
    pub project_id: String,
    pub run_name: String,
    pub run_description: Option<String>,
    /// A screenshot (already confined to the workspace) for failed cases that have none.
    pub screenshot_path: Option<PathBuf>,
    /// The job's own cloud test case, when it was started from one.
    pub job_case_id: Option<String>,
    pub confirm: bool,
}

/// One cloud test case and what would be (or was) sent for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CasePreview {
    pub test_case_id: String,
    /// The local test it comes from.
    pub test: String,
    /// passed, failed, errored or skipped.
    pub status: String,
    /// The failure message sent as notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// A screenshot file sent with it (base64), by path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ReportOutcome {
    /// `needs_confirmation` (nothing sent yet), `declined` (the user said no when asked;
    /// nothing sent), `reported`, or `already_reported`.
    pub status: String,
    pub job_id: String,
    pub project_id: String,
    pub run_name: String,
    /// Exactly what is sent: one entry per cloud test case.
    pub cases: Vec<CasePreview>,
    /// Local tests with no cloud test case id (like `TC-42` in the name): not reported.
    pub unmapped_tests: usize,
    pub counts: RunCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Earlier interrupted reports completed by this call.
    pub synced_from_outbox: usize,
    pub next_step: String,
}

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct SyncOutcome {
    /// Client run ids whose reports are now complete.
    pub completed: Vec<String>,
    /// Reports still pending, with why.
    pub pending: Vec<PendingReport>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PendingReport {
    pub client_run_id: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OutboxEntry {
    client_run_id: String,
    job_id: String,
    register: RegisterExecution,
    execution_id: Option<String>,
    updates: Vec<PendingUpdate>,
    summary: RunCounts,
    completed: Option<Completed>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingUpdate {
    case: CasePreview,
    duration_ms: Option<f64>,
    sent: bool,
}

/// A cloud test case id in a test's name, as `TC-<digits>`: `TC-42`, or `TC_42` / `tc_42`
/// in a name that cannot hold a dash (a Python function), not glued to a longer word.
pub fn find_case_id(text: &str) -> Option<String> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"(?i)(?:^|[^a-z0-9])tc[-_](\d+)(?:$|[^0-9])").expect("valid regex")
    });
    re.captures(text).map(|c| format!("TC-{}", &c[1]))
}

fn status_word(s: TestStatus) -> &'static str {
    match s {
        TestStatus::Passed => "passed",
        TestStatus::Failed => "failed",
        TestStatus::Errored => "errored",
        TestStatus::Skipped | TestStatus::Pending => "skipped",
    }
}

fn rank(status: &str) -> u8 {
    match status {
        "errored" => 3,
        "failed" => 2,
        "passed" => 1,
        _ => 0,
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The cloud cases a job's results map to, and how many local tests map to none.
fn map_cases(view: &JobView, req: &ReportRequest) -> (Vec<PendingUpdate>, usize) {
    let mut out: Vec<PendingUpdate> = Vec::new();
    let mut unmapped = 0;
    let Some(report) = view.report.as_deref() else {
        return (out, 0);
    };
    for t in &report.tests {
        let label = format!("{} {}", t.suite.join(" "), t.name);
        let Some(id) = find_case_id(&label).or_else(|| req.job_case_id.clone()) else {
            unmapped += 1;
            continue;
        };
        let status = status_word(t.status);
        let problem = t.status.is_problem();
        let notes = problem
            .then(|| t.message.as_deref().map(|m| cut(m, NOTES_CAP)))
            .flatten();
        let shot = if problem {
            t.attachments
                .iter()
                .find(|a| a.content_type.starts_with("image/"))
                .map(|a| PathBuf::from(&a.path))
                .or_else(|| req.screenshot_path.clone())
        } else {
            None
        };
        let shot = shot.and_then(|p| {
            let size = std::fs::metadata(&p).ok()?.len();
            (size <= SCREENSHOT_CAP).then(|| (p.display().to_string(), size))
        });
        let case = CasePreview {
            test_case_id: id.clone(),
            test: if t.selector.is_empty() {
                t.name.clone()
            } else {
                t.selector.clone()
            },
            status: status.into(),
            notes,
            screenshot_bytes: shot.as_ref().map(|s| s.1),
            screenshot: shot.map(|s| s.0),
        };
        let update = PendingUpdate {
            case,
            duration_ms: Some(t.duration_ms),
            sent: false,
        };
        // Several local tests for one case (parametrized): the worst outcome is the case's.
        match out.iter_mut().find(|u| u.case.test_case_id == id) {
            Some(existing) if rank(status) > rank(&existing.case.status) => *existing = update,
            Some(_) => {}
            None => out.push(update),
        }
    }
    (out, unmapped)
}

fn counts(updates: &[PendingUpdate]) -> RunCounts {
    let mut c = RunCounts::default();
    for u in updates {
        match u.case.status.as_str() {
            "passed" => c.passed += 1,
            "failed" => c.failed += 1,
            "errored" => c.errored += 1,
            _ => c.skipped += 1,
        }
    }
    c
}

fn client_run_id(job_id: &str, project_id: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._:-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(60)
            .collect()
    };
    format!("{}.{}", clean(job_id), clean(project_id))
}

fn outbox_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("outbox")
}

fn save(path: &Path, entry: &OutboxEntry) -> Result<(), HybridError> {
    let bytes = serde_json::to_vec_pretty(entry).expect("outbox entries serialize");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(|e| HybridError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| HybridError::io("write", path, e))
}

fn load(path: &Path) -> Result<OutboxEntry, HybridError> {
    let bytes = std::fs::read(path).map_err(|e| HybridError::io("read", path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        HybridError::Invalid(format!(
            "the outbox entry {} is unreadable: {e}",
            path.display()
        ))
    })
}

/// Send what the entry still owes the service, saving after every acknowledged step.
async fn deliver(
    bridge: &Bridge,
    path: &Path,
    entry: &mut OutboxEntry,
    cancel: &CancellationToken,
) -> Result<Completed, HybridError> {
    if let Some(done) = &entry.completed {
        return Ok(done.clone());
    }
    let execution_id = match &entry.execution_id {
        Some(id) => id.clone(),
        None => {
            let r: Registered = contract::call(
                bridge,
                REGISTER_CLIENT_EXECUTION,
                &entry.register,
                cancel.clone(),
            )
            .await?;
            entry.execution_id = Some(r.execution_id.clone());
            save(path, entry)?;
            r.execution_id
        }
    };
    for i in 0..entry.updates.len() {
        if entry.updates[i].sent {
            continue;
        }
        let u = &entry.updates[i];
        let (screenshot_base64, screenshot_mime) = match &u.case.screenshot {
            Some(p) => match std::fs::read(p) {
                Ok(bytes) if bytes.len() as u64 <= SCREENSHOT_CAP => (
                    Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                    Some(mime_for(p).to_string()),
                ),
                // Gone or grown since the preview: send the result without it.
                _ => (None, None),
            },
            None => (None, None),
        };
        let args = UpdateProgress {
            execution_id: execution_id.clone(),
            test_case_id: u.case.test_case_id.clone(),
            status: u.case.status.clone(),
            notes: u.case.notes.clone(),
            duration_ms: u.duration_ms,
            screenshot_base64,
            screenshot_mime,
        };
        let _: Ignored =
            contract::call(bridge, UPDATE_EXECUTION_PROGRESS, &args, cancel.clone()).await?;
        entry.updates[i].sent = true;
        save(path, entry)?;
    }
    let done: Completed = contract::call(
        bridge,
        COMPLETE_CLIENT_EXECUTION,
        &CompleteExecution {
            execution_id,
            summary: entry.summary.clone(),
        },
        cancel.clone(),
    )
    .await?;
    entry.completed = Some(done.clone());
    save(path, entry)?;
    Ok(done)
}

fn mime_for(path: &str) -> &'static str {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
        "image/jpeg"
    } else if lower.ends_with(".webp") {
        "image/webp"
    } else {
        "image/png"
    }
}

/// Finish every pending report in the outbox.
pub async fn sync_outbox(
    bridge: &Bridge,
    state_dir: &Path,
    cancel: CancellationToken,
) -> SyncOutcome {
    let _guard = outbox_lock().lock().await;
    sync_locked(bridge, state_dir, &cancel).await
}

async fn sync_locked(bridge: &Bridge, state_dir: &Path, cancel: &CancellationToken) -> SyncOutcome {
    let mut out = SyncOutcome::default();
    let Ok(dir) = std::fs::read_dir(outbox_dir(state_dir)) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let mut entry = match load(&path) {
            Ok(e) => e,
            Err(e) => {
                out.pending.push(PendingReport {
                    client_run_id: path.display().to_string(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        if entry.completed.is_some() {
            // Kept so a repeated report is recognised; forgotten after a while.
            let old = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > KEEP_COMPLETED);
            if old {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        }
        match deliver(bridge, &path, &mut entry, cancel).await {
            Ok(_) => out.completed.push(entry.client_run_id),
            Err(e) => out.pending.push(PendingReport {
                client_run_id: entry.client_run_id,
                error: e.to_string(),
            }),
        }
    }
    out
}

/// Preview (without `confirm`) or send a finished job's results. Pending reports in the
/// outbox are retried first.
pub async fn report_job(
    bridge: &Bridge,
    state_dir: &Path,
    view: &JobView,
    req: ReportRequest,
    cancel: CancellationToken,
) -> Result<ReportOutcome, HybridError> {
    let job_id = view.record.id.to_string();
    if !view.record.status.is_terminal() {
        return Err(HybridError::Invalid(format!(
            "job {job_id} is still {}: wait for it with get_test_execution_status, then report",
            serde_json::to_value(view.record.status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        )));
    }
    if req.project_id.trim().is_empty() || req.run_name.trim().is_empty() {
        return Err(HybridError::Invalid(
            "project_id and run_name are required".into(),
        ));
    }
    let (updates, unmapped) = map_cases(view, &req);
    let mut outcome = ReportOutcome {
        status: "needs_confirmation".into(),
        job_id: job_id.clone(),
        project_id: req.project_id.clone(),
        run_name: req.run_name.clone(),
        cases: updates.iter().map(|u| u.case.clone()).collect(),
        unmapped_tests: unmapped,
        counts: counts(&updates),
        execution_id: None,
        url: None,
        synced_from_outbox: 0,
        next_step: String::new(),
    };
    if updates.is_empty() {
        return Err(HybridError::Invalid(format!(
            "none of job {job_id}'s {unmapped} tests maps to a cloud test case: put the case id (like TC-42) in the test's name, or run the case with execute_test_case_directly"
        )));
    }
    if !req.confirm {
        outcome.next_step = "nothing was sent. Show the user these cases (statuses, notes and screenshots) and ask whether to send them to the cloud; only if they agree, call report_test_results again with the same arguments and confirm: true".into();
        return Ok(outcome);
    }

    let _guard = outbox_lock().lock().await;
    let synced = sync_locked(bridge, state_dir, &cancel).await;
    outcome.synced_from_outbox = synced.completed.len();
    let dir = outbox_dir(state_dir);
    std::fs::create_dir_all(&dir).map_err(|e| HybridError::io("create", &dir, e))?;
    let id = client_run_id(&job_id, &req.project_id);
    let path = dir.join(format!("{id}.json"));
    let mut entry = match load(&path) {
        Ok(e) => e,
        Err(_) => {
            let entry = OutboxEntry {
                client_run_id: id.clone(),
                job_id: job_id.clone(),
                register: RegisterExecution {
                    project_id: req.project_id.clone(),
                    run_name: req.run_name.clone(),
                    run_description: req.run_description.clone(),
                    client_run_id: id.clone(),
                    framework: Some(view.record.framework.name().to_string()),
                    total_cases: updates.len() as u64,
                },
                execution_id: None,
                summary: counts(&updates),
                updates,
                completed: None,
            };
            save(&path, &entry)?;
            entry
        }
    };
    // Already reported means nothing was owed: every update acknowledged and the run completed.
    let already = entry.completed.is_some() && entry.updates.iter().all(|u| u.sent);
    match deliver(bridge, &path, &mut entry, &cancel).await {
        Ok(done) => {
            outcome.status = if already {
                "already_reported".into()
            } else {
                "reported".into()
            };
            outcome.execution_id = Some(done.execution_id);
            outcome.url = done.url;
            outcome.next_step = if already {
                "these results were reported before; nothing was sent again".into()
            } else {
                "done: the run is recorded in the cloud".into()
            };
            Ok(outcome)
        }
        Err(e) => {
            let sent = entry.updates.iter().filter(|u| u.sent).count();
            Err(HybridError::Invalid(format!(
                "{e}. {sent} of {} results were acknowledged; the rest is kept in the local outbox and is sent on the next report_test_results call or by `testrelay sync` (nothing is sent twice)",
                entry.updates.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_are_found_in_names() {
        assert_eq!(find_case_id("test_login_tc_42_works"), Some("TC-42".into()));
        assert_eq!(find_case_id("test_etc_42"), None);
        assert_eq!(find_case_id("login works [TC-42]"), Some("TC-42".into()));
        assert_eq!(find_case_id("TC-7 signs in"), Some("TC-7".into()));
        assert_eq!(find_case_id("utf-8 decoding"), None);
    }

    #[test]
    fn client_run_ids_are_stable_and_safe() {
        assert_eq!(client_run_id("j1", "p/1 x"), "j1.p_1_x");
    }
}

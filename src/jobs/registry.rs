//! The job registry: start, observe, cancel and list jobs; one tokio task owns each job.
//!
//! Each job's task waits for a slot (the concurrency limit), spawns the supervisor, drains
//! its output, follows the runner's event file for progress, and on exit turns the
//! supervisor's report plus the runner's results into a final state. Observers read
//! snapshots; they never touch the child. Jobs of earlier sessions are read from disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::{OnceCell, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::capture::{self, SharedTail};
use super::model::{JobId, JobRecord, JobStatus, Owner, now_ms};
use super::output::{OutputPage, read_page};
use super::process;
use super::store::{Recovery, Store, StoreError, write_atomic};
use super::supervisor::{self, StopReason};
use crate::report::{TestReport, from_ctrf_json, to_ctrf_json, to_junit_xml};
use crate::runners::{
    self, Collector, Framework, HostEnv, Plan, Progress, RunRequest, RunnerError, Verdict,
};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("unknown job id '{0}': call list_test_executions to see recent runs")]
    UnknownJob(String),
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to read the output of job {id}: {source}")]
    Read { id: String, source: std::io::Error },
    #[error("job {0} belongs to another testrelay process that is no longer running")]
    Orphaned(String),
    #[error(
        "idempotency_key '{key}' was already used for job {job} with different arguments; use a new key to start a different run"
    )]
    KeyReused { key: String, job: String },
}

/// Limits and timings for jobs.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub max_concurrent: usize,
    pub default_timeout: Duration,
    /// SIGINT → SIGTERM grace period on cancel and timeout.
    pub grace_int: Duration,
    /// SIGTERM → SIGKILL grace period.
    pub grace_term: Duration,
    /// Per-stream cap for the stdout/stderr log files.
    pub log_cap_bytes: u64,
    /// The testrelay binary, re-executed as `__supervise`.
    pub supervisor: PathBuf,
}

impl JobSettings {
    pub fn new(supervisor: PathBuf) -> Self {
        JobSettings {
            max_concurrent: 2,
            default_timeout: Duration::from_secs(300),
            grace_int: Duration::from_secs(5),
            grace_term: Duration::from_secs(3),
            log_cap_bytes: 32 * 1024 * 1024,
            supervisor,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct StartSpec {
    pub framework: Framework,
    pub project_dir: PathBuf,
    /// Where searches for the project's toolchain stop (the workspace root).
    pub stop_at: Option<PathBuf>,
    pub request: RunRequest,
    pub timeout: Option<Duration>,
    pub idempotency_key: Option<String>,
    /// The environment the run inherits; `request.env` is applied on top.
    pub env: HostEnv,
    /// The cloud test case this run executes, recorded on the job.
    pub cloud_test_case_id: Option<String>,
}

pub struct Started {
    pub record: JobRecord,
    /// True when an earlier start with the same idempotency key was returned.
    pub reused: bool,
}

/// A job's state and progress, published on every change.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub status: JobStatus,
    pub progress: Progress,
}

/// Everything an observer may want to know about one job.
pub struct JobView {
    pub record: JobRecord,
    pub progress: Progress,
    /// Results so far (running) or final results; None when the runner produced none.
    pub report: Option<Arc<TestReport>>,
    pub stdout_tail: String,
    pub stderr_tail: String,
    pub dir: PathBuf,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn file(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout.log",
            Stream::Stderr => "stderr.log",
        }
    }
}

struct LiveJob {
    dir: PathBuf,
    events: Mutex<EventTail>,
    record: Mutex<JobRecord>,
    collector: Mutex<Collector>,
    report: Mutex<Option<Arc<TestReport>>>,
    watch: watch::Sender<Snapshot>,
    cancel: CancellationToken,
    stdout: SharedTail,
    stderr: SharedTail,
}

struct Inner {
    store: Store,
    settings: JobSettings,
    slots: Arc<Semaphore>,
    jobs: Mutex<HashMap<JobId, Arc<LiveJob>>>,
    /// Idempotency key → the job it started and a fingerprint of that start's arguments.
    keys: Mutex<HashMap<String, (JobId, String)>>,
    owner: Owner,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    recovered: OnceCell<()>,
}

#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

const TAIL_IN_VIEW: usize = 4096;
/// The environment variable that marks every process of a job with the job's id.
pub const JOB_MARKER: &str = "TESTRELAY_JOB_ID";
const CANCEL_WAIT: Duration = Duration::from_secs(20);

impl Registry {
    pub fn new(store: Store, settings: JobSettings) -> Self {
        let pid = std::process::id();
        Registry {
            inner: Arc::new(Inner {
                store,
                slots: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
                settings,
                jobs: Mutex::default(),
                keys: Mutex::default(),
                owner: Owner {
                    pid,
                    start_ticks: process::start_ticks(pid),
                },
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                recovered: OnceCell::new(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Mark jobs of dead owners interrupted and apply retention, once per process.
    pub async fn recover(&self) {
        self.inner
            .recovered
            .get_or_init(|| async {
                let store = self.inner.store.clone();
                let stats = tokio::task::spawn_blocking(move || store.recover())
                    .await
                    .unwrap_or_default();
                if stats != Recovery::default() {
                    tracing::info!(
                        interrupted = stats.interrupted,
                        removed = stats.removed,
                        "recovered job records"
                    );
                }
            })
            .await;
    }

    /// Plan and queue a job; returns at once.
    pub fn start(&self, spec: StartSpec) -> Result<Started, JobError> {
        // Before any lock is taken: this may wait (bounded, once per process) for the login
        // shell when the toolchain cannot be found from files.
        super::shell_env::fill_if_needed(
            spec.framework,
            &spec.project_dir,
            spec.stop_at.as_deref(),
            &spec.env,
        );
        let inner = &self.inner;
        let mut keys = inner.keys.lock().expect("keys lock");
        let fingerprint = format!(
            "{}\n{}\n{:?}\n{}",
            spec.framework,
            spec.project_dir.display(),
            spec.timeout,
            serde_json::to_string(&(&spec.request, &spec.request.env)).unwrap_or_default()
        );
        if let Some(key) = &spec.idempotency_key
            && let Some((id, seen)) = keys.get(key)
        {
            if *seen != fingerprint {
                return Err(JobError::KeyReused {
                    key: key.clone(),
                    job: id.to_string(),
                });
            }
            return Ok(Started {
                record: self.view(id.as_str())?.record,
                reused: true,
            });
        }
        let (id, dir) = inner.store.create_job_dir()?;
        let env = spec.env.with_overrides(&spec.request.env);
        let plan = match runners::plan(
            spec.framework,
            &spec.project_dir,
            spec.stop_at.as_deref(),
            &dir,
            &spec.request,
            &env,
        ) {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e.into());
            }
        };
        for f in &plan.support_files {
            let path = dir.join(f.relative);
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, f.contents));
            if let Err(source) = written {
                return Err(JobError::Write { path, source });
            }
        }
        let timeout = spec.timeout.unwrap_or(inner.settings.default_timeout);
        let record = JobRecord {
            id: id.clone(),
            status: JobStatus::Queued,
            reason: None,
            framework: spec.framework,
            project_dir: spec.project_dir.clone(),
            command: plan.display_command(),
            toolchain: plan.toolchain.clone(),
            request: spec.request.clone(),
            env_keys: spec.request.env.keys().cloned().collect(),
            timeout_secs: timeout.as_secs(),
            idempotency_key: spec.idempotency_key.clone(),
            created_at_ms: now_ms(),
            started_at_ms: None,
            finished_at_ms: None,
            exit_code: None,
            signal: None,
            summary: None,
            done: 0,
            total: None,
            owner: inner.owner.clone(),
            supervisor_pid: None,
            cloud_test_case_id: spec.cloud_test_case_id.clone(),
        };
        inner.store.save(&record)?;
        let (watch, _) = watch::channel(Snapshot {
            status: JobStatus::Queued,
            progress: Progress::default(),
        });
        let job = Arc::new(LiveJob {
            events: Mutex::new(EventTail {
                path: dir.join(Collector::events_file(spec.framework)),
                offset: 0,
                partial: Vec::new(),
            }),
            dir,
            record: Mutex::new(record.clone()),
            collector: Mutex::new(Collector::new(spec.framework)),
            report: Mutex::new(None),
            watch,
            cancel: CancellationToken::new(),
            stdout: SharedTail::default(),
            stderr: SharedTail::default(),
        });
        inner
            .jobs
            .lock()
            .expect("jobs lock")
            .insert(id.clone(), job.clone());
        if let Some(key) = spec.idempotency_key {
            keys.insert(key, (id, fingerprint));
        }
        inner
            .tasks
            .spawn(run_job(inner.clone(), job, plan, env, timeout));
        Ok(Started {
            record,
            reused: false,
        })
    }

    fn live(&self, id: &JobId) -> Option<Arc<LiveJob>> {
        self.inner.jobs.lock().expect("jobs lock").get(id).cloned()
    }

    fn parse_id(id: &str) -> Result<JobId, JobError> {
        JobId::parse(id.trim()).ok_or_else(|| JobError::UnknownJob(id.to_string()))
    }

    /// The current state of a job of this process or of an earlier one.
    pub fn view(&self, id: &str) -> Result<JobView, JobError> {
        let id = Self::parse_id(id)?;
        if let Some(job) = self.live(&id) {
            // Read what the runner wrote since the last tick, so status is never stale.
            job.poll_events();
            let record = job.record.lock().expect("record lock").clone();
            let (progress, running_report) = {
                let c = job.collector.lock().expect("collector lock");
                let report = (!record.status.is_terminal()).then(|| Arc::new(c.report()));
                (c.progress(), report)
            };
            let report = running_report.or_else(|| job.report.lock().expect("report lock").clone());
            return Ok(JobView {
                progress,
                report,
                stdout_tail: job.stdout.lock().expect("tail lock").text(TAIL_IN_VIEW),
                stderr_tail: job.stderr.lock().expect("tail lock").text(TAIL_IN_VIEW),
                dir: job.dir.clone(),
                record,
            });
        }
        let record = self.inner.store.load(&id).map_err(|e| match e {
            StoreError::NotFound(_) => JobError::UnknownJob(id.to_string()),
            other => other.into(),
        })?;
        let dir = self.inner.store.job_dir(&id);
        let report = std::fs::read_to_string(dir.join("report.json"))
            .ok()
            .and_then(|t| from_ctrf_json(&t).ok())
            .map(Arc::new);
        let file_tail = |name: &str| {
            use std::io::{Read, Seek, SeekFrom};
            let Ok(mut f) = std::fs::File::open(dir.join(name)) else {
                return String::new();
            };
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(TAIL_IN_VIEW as u64)));
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf);
            capture::tail_text(&buf, TAIL_IN_VIEW)
        };
        Ok(JobView {
            progress: record.progress_hint(),
            report,
            stdout_tail: file_tail("stdout.log"),
            stderr_tail: file_tail("stderr.log"),
            dir,
            record,
        })
    }

    /// Watch a live job's status and progress.
    pub fn subscribe(&self, id: &str) -> Option<watch::Receiver<Snapshot>> {
        Self::parse_id(id)
            .ok()
            .and_then(|id| self.live(&id))
            .map(|j| j.watch.subscribe())
    }

    /// Wait up to `max` for the job to end, calling `on_progress` when progress changes.
    pub async fn wait(&self, id: &str, max: Duration, mut on_progress: impl FnMut(&Snapshot)) {
        let Some(mut rx) = self.subscribe(id) else {
            return;
        };
        let deadline = tokio::time::Instant::now() + max;
        loop {
            if rx.borrow_and_update().status.is_terminal() {
                return;
            }
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let snap = rx.borrow().clone();
                    if !snap.status.is_terminal() {
                        on_progress(&snap);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    /// Stop a job and its whole process tree; returns its final state. Results of the
    /// tests that finished before the stop are kept.
    pub async fn cancel(&self, id: &str) -> Result<JobView, JobError> {
        let jid = Self::parse_id(id)?;
        if let Some(job) = self.live(&jid) {
            job.cancel.cancel();
            self.wait(id, CANCEL_WAIT, |_| {}).await;
            return self.view(id);
        }
        let view = self.view(id)?;
        if view.record.status.is_terminal() {
            return Ok(view);
        }
        // A job of another live testrelay process: its supervisor treats SIGTERM as cancel.
        let owner_alive = process::is_alive(view.record.owner.pid, view.record.owner.start_ticks);
        match view.record.supervisor_pid {
            Some(pid) if owner_alive => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
                let deadline = std::time::Instant::now() + CANCEL_WAIT;
                while std::time::Instant::now() < deadline {
                    let v = self.view(id)?;
                    if v.record.status.is_terminal() {
                        return Ok(v);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                self.view(id)
            }
            _ => Err(JobError::Orphaned(id.to_string())),
        }
    }

    /// Recent jobs, newest first, including those of earlier sessions.
    pub async fn list(&self, limit: usize) -> Vec<JobRecord> {
        self.recover().await;
        let store = self.inner.store.clone();
        let mut records = tokio::task::spawn_blocking(move || store.load_all())
            .await
            .unwrap_or_default();
        let jobs = self.inner.jobs.lock().expect("jobs lock");
        for r in records.iter_mut() {
            if let Some(job) = jobs.get(&r.id) {
                *r = job.record.lock().expect("record lock").clone();
            }
        }
        records.truncate(limit);
        records
    }

    /// A page of a job's captured output.
    pub fn output(
        &self,
        id: &str,
        stream: Stream,
        offset: u64,
        limit: usize,
        filter: Option<&str>,
    ) -> Result<OutputPage, JobError> {
        let view_dir = {
            let jid = Self::parse_id(id)?;
            match self.live(&jid) {
                Some(job) => job.dir.clone(),
                None => {
                    self.inner
                        .store
                        .load(&jid)
                        .map_err(|_| JobError::UnknownJob(id.to_string()))?;
                    self.inner.store.job_dir(&jid)
                }
            }
        };
        read_page(&view_dir.join(stream.file()), offset, limit, filter).map_err(|source| {
            JobError::Read {
                id: id.to_string(),
                source,
            }
        })
    }

    /// Stop every job of this process (their supervisors kill the process trees) and wait
    /// a bounded time for them to record their end.
    pub async fn shutdown(&self, max: Duration) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        let _ = tokio::time::timeout(max, self.inner.tasks.wait()).await;
    }
}

/// Reads the lines a runner appends to its event file.
struct EventTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl EventTail {
    fn read_lines(&mut self) -> Vec<String> {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        let Ok(n) = f.read_to_end(&mut buf) else {
            return Vec::new();
        };
        self.offset += n as u64;
        self.partial.extend_from_slice(&buf);
        let Some(last_nl) = self.partial.iter().rposition(|&c| c == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=last_nl).collect();
        String::from_utf8_lossy(&complete)
            .lines()
            .map(String::from)
            .collect()
    }
}

impl LiveJob {
    fn publish(&self) {
        let status = self.record.lock().expect("record lock").status;
        let progress = self.collector.lock().expect("collector lock").progress();
        self.watch.send_if_modified(|s| {
            let next = Snapshot { status, progress };
            let changed = *s != next;
            *s = next;
            changed
        });
    }

    fn poll_events(&self) {
        let lines = self.events.lock().expect("events lock").read_lines();
        if lines.is_empty() {
            return;
        }
        {
            let mut c = self.collector.lock().expect("collector lock");
            for line in &lines {
                c.feed_line(line);
            }
        }
        self.publish();
    }

    fn update(&self, store: &Store, f: impl FnOnce(&mut JobRecord)) {
        let record = {
            let mut r = self.record.lock().expect("record lock");
            f(&mut r);
            r.clone()
        };
        if let Err(e) = store.save(&record) {
            tracing::warn!(error = %e, "failed to persist job record");
        }
        self.publish();
    }

    fn finish(
        &self,
        store: &Store,
        status: JobStatus,
        reason: Option<String>,
        report: Option<TestReport>,
    ) {
        let progress = self.collector.lock().expect("collector lock").progress();
        if let Some(r) = &report {
            *self.report.lock().expect("report lock") = Some(Arc::new(r.clone()));
        }
        self.update(store, |r| {
            r.status = status;
            r.reason = reason;
            r.finished_at_ms = Some(now_ms());
            r.summary = report.as_ref().map(TestReport::summary);
            r.done = progress.done;
            r.total = progress.total;
            r.supervisor_pid = None;
        });
    }
}

fn write_exports(dir: &Path, report: &TestReport) {
    let ctrf = to_ctrf_json(report, now_ms());
    for (name, bytes) in [
        ("report.json", ctrf.as_bytes()),
        ("junit.xml", to_junit_xml(report).as_bytes()),
    ] {
        if let Err(e) = write_atomic(&dir.join(name), bytes) {
            tracing::warn!(error = %e, file = name, "failed to write report export");
        }
    }
}

async fn run_job(
    inner: Arc<Inner>,
    job: Arc<LiveJob>,
    plan: Plan,
    env: HostEnv,
    timeout: Duration,
) {
    let store = &inner.store;
    let permit = tokio::select! {
        p = inner.slots.clone().acquire_owned() => p.ok(),
        _ = job.cancel.cancelled() => {
            job.finish(store, JobStatus::Cancelled, Some("cancelled before it started".into()), None);
            return;
        }
        _ = inner.shutdown.cancelled() => {
            job.finish(store, JobStatus::Interrupted, Some("testrelay shut down before the job started".into()), None);
            return;
        }
    };
    job.update(store, |r| {
        r.status = JobStatus::Running;
        r.started_at_ms = Some(now_ms());
    });

    let report_path = job.dir.join("supervisor.json");
    let s = &inner.settings;
    let mut cmd = tokio::process::Command::new(&s.supervisor);
    cmd.arg("__supervise")
        .arg("--report")
        .arg(&report_path)
        .arg("--timeout-ms")
        .arg(timeout.as_millis().to_string())
        .arg("--grace-int-ms")
        .arg(s.grace_int.as_millis().to_string())
        .arg("--grace-term-ms")
        .arg(s.grace_term.as_millis().to_string())
        .arg("--")
        .arg(&plan.program)
        .args(&plan.args)
        .current_dir(&plan.cwd)
        .env_clear()
        .envs(env.vars())
        .envs(plan.env.iter().cloned())
        // Inherited by everything the run starts: lets testrelay find the run's processes
        // even when the supervisor itself is gone.
        .env(
            JOB_MARKER,
            job.record.lock().expect("record lock").id.as_str(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let reason = format!("failed to start {}: {e}", s.supervisor.display());
            job.finish(store, JobStatus::Error, Some(reason), None);
            return;
        }
    };
    let sup_pid = child.id();
    job.update(store, |r| r.supervisor_pid = sup_pid);
    let cap = s.log_cap_bytes;
    let out = child.stdout.take().map(|r| {
        tokio::spawn(capture::drain(
            r,
            job.dir.join("stdout.log"),
            cap,
            job.stdout.clone(),
        ))
    });
    let err = child.stderr.take().map(|r| {
        tokio::spawn(capture::drain(
            r,
            job.dir.join("stderr.log"),
            cap,
            job.stderr.clone(),
        ))
    });
    let mut stdin = child.stdin.take();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut cancel_sent = false;
    let exit = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = job.cancel.cancelled(), if !cancel_sent => {
                cancel_sent = true;
                if let Some(pipe) = stdin.as_mut() {
                    let _ = pipe.write_all(b"cancel\n").await;
                    let _ = pipe.flush().await;
                }
            }
            // Closing the pipe tells the supervisor the server is going away.
            _ = inner.shutdown.cancelled(), if stdin.is_some() => stdin = None,
            _ = tick.tick() => job.poll_events(),
        }
    };
    drop(stdin);
    // Leaked grandchildren may hold the pipes open; the state comes from the exit status,
    // so the drains only get a bounded time to reach EOF.
    let bound = if inner.shutdown.is_cancelled() {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(2)
    };
    for task in [out, err].into_iter().flatten() {
        let _ = tokio::time::timeout(bound, task).await;
    }
    job.poll_events();
    job.collector
        .lock()
        .expect("collector lock")
        .finish(&job.dir);

    let report = job.collector.lock().expect("collector lock").report();
    let sup = supervisor::read_report(&report_path);
    let has_results = !report.tests.is_empty() || !report.file_errors.is_empty();
    if has_results {
        write_exports(&job.dir, &report);
    }
    // A test the stop interrupted is in the report (Playwright lists it) but did not finish.
    let done = report
        .tests
        .iter()
        .filter(|t| t.raw_status != "interrupted")
        .count();
    let (status, reason) = match &sup {
        None => {
            // The supervisor died (killed from outside?): stop what it left running.
            let id = job.record.lock().expect("record lock").id.to_string();
            let killed = tokio::task::spawn_blocking(move || process::kill_marked(JOB_MARKER, &id))
                .await
                .unwrap_or(0);
            let how = match exit {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            };
            (
                JobStatus::Error,
                Some(format!(
                    "the job supervisor ended without a report ({how}); {killed} leftover processes of the run were stopped"
                )),
            )
        }
        Some(s) if s.spawn_error.is_some() => (JobStatus::Error, s.spawn_error.clone()),
        Some(s) => match s.stop {
            Some(StopReason::Timeout) => (
                JobStatus::TimedOut,
                Some(format!(
                    "timed out after {}s; {done} tests finished before the run was stopped",
                    timeout.as_secs()
                )),
            ),
            Some(StopReason::Cancel) => (
                JobStatus::Cancelled,
                Some(format!(
                    "cancelled; {done} tests finished before the run was stopped"
                )),
            ),
            Some(StopReason::ServerGone) => (
                JobStatus::Interrupted,
                Some("testrelay shut down while the job was running".into()),
            ),
            None => {
                let stderr_tail = job.stderr.lock().expect("tail lock").text(4096);
                let verdict = job.collector.lock().expect("collector lock").classify(
                    s.exit_code,
                    &report,
                    &stderr_tail,
                );
                match verdict {
                    Verdict::Passed => (JobStatus::Passed, None),
                    Verdict::Failed => (JobStatus::Failed, None),
                    Verdict::Broken(why) => (JobStatus::Error, Some(why)),
                }
            }
        },
    };
    if let Some(s) = &sup {
        let mut r = job.record.lock().expect("record lock");
        r.exit_code = s.exit_code;
        r.signal = s.signal;
    }
    job.finish(store, status, reason, has_results.then_some(report));
    drop(permit);
}

//! The per-job supervisor: `testrelay __supervise`, a small process between the server and
//! the test runner that guarantees nothing the run started outlives it.
//!
//! It becomes a child subreaper (Linux), so processes that escape the runner's process
//! group with `setsid` (browsers, web servers, daemons) are re-parented to it instead of to
//! init. It starts the runner in a new process group with stdin closed and the supervisor's
//! own stdout/stderr (pipes the server drains). Then it waits for one of:
//! - the runner exiting: leftovers in the group and below us are killed;
//! - `cancel` on stdin, SIGINT/SIGTERM/SIGHUP, or the timeout: SIGINT to the group, a grace
//!   period, SIGTERM, another grace period, SIGKILL, then the same cleanup;
//! - stdin closing, meaning the server is gone (even `kill -9`): a short SIGTERM, then
//!   SIGKILL. It does not rely on `PR_SET_PDEATHSIG`, which fires when the forking
//!   *thread* exits.
//!
//! The runner's exit status is observed with `waitid(WNOWAIT)` so the leader stays an
//! unreaped zombie until cleanup ends, and its process-group id cannot be recycled while we
//! still signal it. The outcome is written as JSON to the `--report` file.

use std::ffi::OsString;
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::process;

/// Why the runner was stopped before it finished by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Cancel,
    Timeout,
    ServerGone,
}

/// What the supervisor writes to its report file when it is done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorReport {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stop: Option<StopReason>,
    /// The last signal the escalation needed (`SIGINT`, `SIGTERM`, `SIGKILL`).
    pub escalated_to: Option<String>,
    /// Processes still alive after the runner exited, which the supervisor killed.
    pub leftovers_killed: usize,
    pub spawn_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SuperviseArgs {
    pub report: PathBuf,
    pub timeout: Option<Duration>,
    pub grace_int: Duration,
    pub grace_term: Duration,
    pub program: OsString,
    pub args: Vec<OsString>,
}

enum Msg {
    Exited(WaitStatus),
    Cancel,
    ServerGone,
}

/// Run the supervisor to completion; returns the process exit code to use.
pub fn supervise(a: SuperviseArgs) -> i32 {
    // Block the signals we turn into "cancel" before any thread exists, so only the
    // signal thread receives them. std resets the mask in the child before exec.
    let mut mask = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        mask.add(s);
    }
    let _ = mask.thread_block();
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_child_subreaper(true);

    let mut report = SupervisorReport::default();
    let mut command = Command::new(&a.program);
    command.args(&a.args).stdin(Stdio::null()).process_group(0);
    let child_mask = mask;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (sigprocmask, sigaction). It undoes our own mask and any
    // `SIG_IGN` inherited from a shell, so the runner sees SIGINT/SIGTERM as usual
    // (Python, for one, never raises KeyboardInterrupt when SIGINT starts ignored).
    unsafe {
        command.pre_exec(move || {
            child_mask.thread_unblock().map_err(std::io::Error::from)?;
            for s in [
                Signal::SIGINT,
                Signal::SIGTERM,
                Signal::SIGHUP,
                Signal::SIGQUIT,
            ] {
                nix::sys::signal::signal(s, nix::sys::signal::SigHandler::SigDfl)
                    .map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
    let child = command.spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            report.spawn_error = Some(format!(
                "failed to start {}: {e}",
                a.program.to_string_lossy()
            ));
            eprintln!(
                "testrelay: {}",
                report.spawn_error.as_deref().unwrap_or_default()
            );
            write_report(&a.report, &report);
            return 127;
        }
    };
    let pid = Pid::from_raw(child.id() as i32);
    // The Child handle is not used to wait: its `wait` would reap the leader too early.
    std::mem::forget(child);

    let (tx, rx) = mpsc::channel::<Msg>();
    let exit_tx = tx.clone();
    std::thread::spawn(move || {
        let status = wait_keep_zombie(pid);
        let _ = exit_tx.send(Msg::Exited(status));
    });
    let stdin_tx = tx.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if l.trim() == "cancel" => {
                    let _ = stdin_tx.send(Msg::Cancel);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = stdin_tx.send(Msg::ServerGone);
    });
    std::thread::spawn(move || {
        while mask.wait().is_ok() {
            if tx.send(Msg::Cancel).is_err() {
                break;
            }
        }
    });

    let deadline = a.timeout.map(|t| Instant::now() + t);
    let msg = match deadline {
        Some(d) => match rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Msg::ServerGone),
        },
        None => Some(rx.recv().unwrap_or(Msg::ServerGone)),
    };
    let gentle = [
        (Signal::SIGINT, a.grace_int),
        (Signal::SIGTERM, a.grace_term),
        (Signal::SIGKILL, KILL_WAIT),
    ];
    let hurried = [
        (Signal::SIGTERM, SERVER_GONE_GRACE),
        (Signal::SIGKILL, KILL_WAIT),
    ];
    let stop: Option<(StopReason, &[(Signal, Duration)])> = match msg {
        Some(Msg::Exited(_)) => None,
        Some(Msg::Cancel) => Some((StopReason::Cancel, &gentle)),
        None => Some((StopReason::Timeout, &gentle)),
        Some(Msg::ServerGone) => Some((StopReason::ServerGone, &hurried)),
    };
    let status = match (msg, stop) {
        (Some(Msg::Exited(status)), _) => status,
        (_, Some((reason, steps))) => {
            report.stop = Some(reason);
            let (status, last) = escalate(pid, &rx, steps);
            report.escalated_to = Some(last.as_str().to_string());
            // A leader that outlives SIGKILL (uninterruptible sleep) is still waited for.
            status.unwrap_or_else(|| {
                loop {
                    match rx.recv() {
                        Ok(Msg::Exited(s)) => break s,
                        Ok(_) => continue,
                        Err(_) => break WaitStatus::StillAlive,
                    }
                }
            })
        }
        _ => unreachable!("every message either ends the run or stops it"),
    };
    report.leftovers_killed = clean_up(pid);
    let _ = waitpid(pid, None);
    // Reap every other child we still hold (leftovers that died during clean-up), so no
    // zombie is handed to an init that may never reap it.
    while let Ok(s) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if s == WaitStatus::StillAlive {
            break;
        }
    }
    match status {
        WaitStatus::Exited(_, code) => report.exit_code = Some(code),
        WaitStatus::Signaled(_, sig, _) => report.signal = Some(sig as i32),
        _ => {}
    }
    write_report(&a.report, &report);
    match (report.exit_code, report.signal) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    }
}

const KILL_WAIT: Duration = Duration::from_secs(5);
const SERVER_GONE_GRACE: Duration = Duration::from_millis(300);
const LEFTOVER_GRACE: Duration = Duration::from_millis(500);

/// Wait for the leader to exit without reaping it.
#[cfg(target_os = "linux")]
fn wait_keep_zombie(pid: Pid) -> WaitStatus {
    use nix::sys::wait::{Id, waitid};
    loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(s) => return s,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return WaitStatus::StillAlive,
        }
    }
}

/// Without `waitid(WNOWAIT)` the leader is reaped here; the group id then stays valid only
/// while other members live, which is the best this platform allows.
#[cfg(not(target_os = "linux"))]
fn wait_keep_zombie(pid: Pid) -> WaitStatus {
    loop {
        match waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(s) => return s,
            Err(_) => return WaitStatus::StillAlive,
        }
    }
}

/// Send each signal in turn until the leader exits; returns its status (None if it
/// outlived every step) and the last signal sent.
fn escalate(
    pid: Pid,
    rx: &mpsc::Receiver<Msg>,
    steps: &[(Signal, Duration)],
) -> (Option<WaitStatus>, Signal) {
    let mut last = steps[0].0;
    for &(sig, grace) in steps {
        last = sig;
        let _ = killpg(pid, sig);
        if sig != Signal::SIGINT {
            // Processes that left the group (setsid) only get the harder signals: SIGINT is
            // the runner's chance to shut down its own helpers cleanly.
            signal_descendants(pid, sig);
        }
        let until = Instant::now() + grace;
        loop {
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Msg::Exited(s)) => return (Some(s), last),
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    (None, last)
}

fn live_members(leader: Pid) -> Vec<i32> {
    let me = std::process::id() as i32;
    let procs = process::all();
    let mut pids: Vec<i32> = process::descendants_in(&procs, me)
        .into_iter()
        .chain(procs.iter().copied().filter(|p| p.pgrp == leader.as_raw()))
        .filter(|p| !p.is_zombie() && p.pid != me)
        .map(|p| p.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn signal_descendants(leader: Pid, sig: Signal) {
    for pid in live_members(leader) {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

/// Reap zombies re-parented to us, except the leader (reaped last, by the caller).
fn reap_orphans(leader: Pid) {
    let me = std::process::id() as i32;
    for p in process::all()
        .into_iter()
        .filter(|p| p.ppid == me && p.is_zombie() && p.pid != leader.as_raw())
    {
        let _ = waitpid(Pid::from_raw(p.pid), Some(WaitPidFlag::WNOHANG));
    }
}

/// Kill whatever the run left behind: the rest of its process group and, on Linux, every
/// process below the supervisor. Returns how many were found alive.
fn clean_up(leader: Pid) -> usize {
    if cfg!(not(target_os = "linux")) {
        // No process table to consult: signal the group and trust it.
        if killpg(leader, Signal::SIGTERM).is_ok() {
            std::thread::sleep(LEFTOVER_GRACE);
            let _ = killpg(leader, Signal::SIGKILL);
        }
        return 0;
    }
    let found = live_members(leader);
    if found.is_empty() {
        return 0;
    }
    let _ = killpg(leader, Signal::SIGTERM);
    signal_descendants(leader, Signal::SIGTERM);
    // Give leftovers a short, bounded chance to exit on SIGTERM before SIGKILL.
    let until = Instant::now() + LEFTOVER_GRACE;
    while Instant::now() < until {
        reap_orphans(leader);
        if live_members(leader).is_empty() {
            return found.len();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let until = Instant::now() + KILL_WAIT;
    while Instant::now() < until {
        let _ = killpg(leader, Signal::SIGKILL);
        signal_descendants(leader, Signal::SIGKILL);
        reap_orphans(leader);
        if live_members(leader).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    found.len()
}

fn write_report(path: &std::path::Path, report: &SupervisorReport) {
    let json = serde_json::to_vec(report).expect("supervisor report serializes");
    if let Err(e) = super::store::write_atomic(path, &json) {
        eprintln!("testrelay: failed to write {}: {e}", path.display());
    }
}

/// Read the report a supervisor wrote.
pub fn read_report(path: &std::path::Path) -> Option<SupervisorReport> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

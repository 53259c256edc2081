//! Facts about live processes: is an owner still alive, which processes descend from us.
//!
//! Linux reads `/proc`; other Unix systems fall back to `kill(pid, 0)` and know no tree.

use nix::sys::signal::kill;
use nix::unistd::Pid;

/// One line of `/proc/<pid>/stat`, the fields testrelay needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub start_ticks: u64,
}

impl ProcStat {
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Parse `/proc/<pid>/stat`. The command name may hold spaces and parentheses, so the
/// fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let pid = text.split_whitespace().next()?.parse().ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        pid,
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
    })
}

#[cfg(target_os = "linux")]
pub fn stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

#[cfg(not(target_os = "linux"))]
pub fn stat(_pid: i32) -> Option<ProcStat> {
    None
}

/// Every process on the system that we can read.
#[cfg(target_os = "linux")]
pub fn all() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

#[cfg(not(target_os = "linux"))]
pub fn all() -> Vec<ProcStat> {
    Vec::new()
}

/// Processes below `root` in the parent tree (not `root` itself).
pub fn descendants(root: i32) -> Vec<ProcStat> {
    descendants_in(&all(), root)
}

pub fn descendants_in(procs: &[ProcStat], root: i32) -> Vec<ProcStat> {
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in procs.iter().filter(|p| p.ppid == parent && p.pid != root) {
            if !out.iter().any(|o: &ProcStat| o.pid == p.pid) {
                out.push(*p);
                frontier.push(p.pid);
            }
        }
    }
    out
}

/// Live processes whose environment holds `key=value`. Every process a job starts inherits
/// the job's marker, including those that left its process group or lost their parent.
#[cfg(target_os = "linux")]
pub fn with_env(key: &str, value: &str) -> Vec<i32> {
    let needle = format!("{key}={value}");
    all()
        .into_iter()
        .filter(|p| !p.is_zombie() && p.pid != std::process::id() as i32)
        .filter(|p| {
            std::fs::read(format!("/proc/{}/environ", p.pid))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .map(|p| p.pid)
        .collect()
}

#[cfg(not(target_os = "linux"))]
pub fn with_env(_key: &str, _value: &str) -> Vec<i32> {
    Vec::new()
}

/// SIGKILL every process marked `key=value`, repeating (bounded) while new ones appear.
/// Returns how many were killed. Used when a job's supervisor is gone.
pub fn kill_marked(key: &str, value: &str) -> usize {
    use nix::sys::signal::Signal;
    let mut killed = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let found = with_env(key, value);
        if found.is_empty() || std::time::Instant::now() > deadline {
            return killed.len();
        }
        for pid in found {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            killed.insert(pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Start time of `pid` in clock ticks since boot, when the platform tells.
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat(pid as i32).map(|s| s.start_ticks)
}

/// Whether the process `pid` that started at `ticks` is still running (a recycled pid
/// with another start time is not the same process).
pub fn is_alive(pid: u32, ticks: Option<u64>) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    match kill(Pid::from_raw(raw), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => {}
        Err(_) => return false,
    }
    match (ticks, stat(raw)) {
        (Some(t), Some(s)) => s.start_ticks == t && !s.is_zombie(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_odd_command_names() {
        let line = "4242 (python3 (x) y) S 4000 4242 4000 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            (s.pid, s.state, s.ppid, s.pgrp, s.start_ticks),
            (4242, 'S', 4000, 4242, 987654)
        );
    }

    #[test]
    fn descendants_follow_the_parent_tree() {
        let p = |pid, ppid| ProcStat {
            pid,
            state: 'S',
            ppid,
            pgrp: pid,
            start_ticks: 0,
        };
        let procs = [p(1, 0), p(10, 1), p(11, 10), p(12, 11), p(20, 1), p(13, 10)];
        let mut pids: Vec<i32> = descendants_in(&procs, 10).iter().map(|s| s.pid).collect();
        pids.sort();
        assert_eq!(pids, [11, 12, 13]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn marked_processes_are_found_and_killed() {
        let value = format!("marker-{}", std::process::id());
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .env("TESTRELAY_JOB_ID", &value)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // The environment is readable as soon as exec has happened; wait for that (bounded).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while with_env("TESTRELAY_JOB_ID", &value).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "marked child never seen"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(with_env("TESTRELAY_JOB_ID", &value), [pid]);
        assert!(with_env("TESTRELAY_JOB_ID", "other").is_empty());
        assert_eq!(kill_marked("TESTRELAY_JOB_ID", &value), 1);
        assert!(!child.wait().unwrap().success());
    }

    #[test]
    fn we_are_alive_and_a_wrong_start_time_is_not_us() {
        let me = std::process::id();
        assert!(is_alive(me, start_ticks(me)));
        if let Some(t) = start_ticks(me) {
            assert!(!is_alive(me, Some(t + 1)));
        }
        assert!(!is_alive(u32::MAX - 1, None));
    }
}

//! Reading the user's login-shell environment, for toolchains the IDE's environment hides.
//!
//! Editors started from a dock or a desktop launcher inherit a bare PATH, while the user's
//! shell start-up files are where nvm, pyenv, Homebrew and friends add theirs. The fix
//! editors use is ours too: run `$SHELL -i -l -c` once, print the environment between
//! random markers with `env -0`, parse it. It is bounded in time (a start-up file can wait
//! on a prompt, a network mount or a slow plugin manager), runs at most once per process,
//! only when a runner's toolchain cannot be found from files, and never before the MCP
//! handshake: the first tool call that needs it pays for it. Only the PATH is used, searched
//! after the inherited one (see [`HostEnv`]), so nothing the IDE set explicitly is overridden.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::runners::{self, Framework, HostEnv, LoginShell};

/// How long the login shell may take before testrelay carries on without it.
pub const TIMEOUT: Duration = Duration::from_secs(8);
/// Output beyond this is not read: an environment is a few kilobytes.
const MAX_OUTPUT: usize = 4 << 20;
/// Set for the shell, so start-up files can skip slow interactive work (like VS Code's
/// `VSCODE_RESOLVING_ENVIRONMENT`).
pub const RESOLVING_MARKER: &str = "TESTRELAY_RESOLVING_ENVIRONMENT";

#[derive(Debug, thiserror::Error)]
pub enum ShellEnvError {
    #[error("SHELL is not set to an absolute path, so there is no login shell to ask")]
    NoShell,
    #[error("failed to start the login shell {shell}: {source}")]
    Spawn {
        shell: String,
        source: std::io::Error,
    },
    #[error(
        "the login shell {shell} did not print its environment within {}s (does a start-up file wait for input or do slow work?)",
        .timeout.as_secs()
    )]
    TimedOut { shell: String, timeout: Duration },
    #[error("the login shell {shell} exited without printing its environment{stderr}")]
    NoOutput { shell: String, stderr: String },
}

/// A login shell's environment.
#[derive(Debug, Clone)]
pub struct Captured {
    pub shell: String,
    pub vars: BTreeMap<String, String>,
    pub elapsed: Duration,
}

/// Run `env`'s `$SHELL` as an interactive login shell and read its environment, giving up
/// after `timeout`. Blocking; call it from a blocking context.
pub fn capture(env: &HostEnv, timeout: Duration) -> Result<Captured, ShellEnvError> {
    let shell = env
        .get("SHELL")
        .filter(|s| Path::new(s).is_absolute())
        .ok_or(ShellEnvError::NoShell)?
        .to_string();
    let tag = format!("{:016x}", fastrand::u64(..));
    let (start, end) = (
        format!("__TESTRELAY_ENV_START_{tag}__"),
        format!("__TESTRELAY_ENV_END_{tag}__"),
    );
    // The markers are printed in two halves so that the script text itself never contains
    // them: a start-up file that echoes commands cannot fake a match. `/usr/bin/env` by its
    // absolute path sidesteps aliases and functions named `env`.
    let script = format!(
        "printf '%s%s' '__TESTRELAY_ENV_' 'START_{tag}__'; /usr/bin/env -0; printf '%s%s' '__TESTRELAY_ENV_' 'END_{tag}__'"
    );
    let began = Instant::now();
    let mut command = Command::new(&shell);
    command
        .args(["-i", "-l", "-c", &script])
        .env_clear()
        .envs(env.vars())
        .env(RESOLVING_MARKER, "1")
        .current_dir(env.home().filter(|h| h.is_dir()).unwrap_or("/".into()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    detach(&mut command);
    let mut child = command.spawn().map_err(|source| ShellEnvError::Spawn {
        shell: shell.clone(),
        source,
    })?;
    // The last bytes of stderr, to quote when the shell fails; `stderr_done` says they are
    // complete.
    let stderr_tail = Arc::new(Mutex::new(Vec::new()));
    let (stderr_done, stderr_finished) = mpsc::channel::<()>();
    if let Some(mut err) = child.stderr.take() {
        let tail = stderr_tail.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                let mut t = tail.lock().expect("stderr tail lock");
                t.extend_from_slice(&buf[..n]);
                let excess = t.len().saturating_sub(2048);
                t.drain(..excess);
            }
            let _ = stderr_done.send(());
        });
    }
    // The reader hands the output over as soon as the end marker arrives: a daemon started
    // by a start-up file (ssh-agent, gpg-agent) may hold the pipe open long after the shell
    // has exited, so EOF cannot be the signal.
    let (tx, rx) = mpsc::channel();
    if let Some(mut out) = child.stdout.take() {
        let end = end.clone().into_bytes();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
                if find(&seen, &end).is_some() || seen.len() > MAX_OUTPUT {
                    break;
                }
            }
            let _ = tx.send(seen);
        });
    }
    let output = rx.recv_timeout(timeout).ok();
    // Whatever the shell is still doing, it is done for us; its group goes with it.
    if !matches!(child.try_wait(), Ok(Some(_))) {
        kill_group(child.id());
    }
    let _ = child.wait();
    let Some(output) = output else {
        return Err(ShellEnvError::TimedOut { shell, timeout });
    };
    match parse(&output, &start, &end) {
        Some(vars) => Ok(Captured {
            shell,
            vars,
            elapsed: began.elapsed(),
        }),
        None => {
            // Bounded, for the same reason as above: a daemon may hold stderr open.
            let _ = stderr_finished.recv_timeout(Duration::from_secs(1));
            let tail = stderr_tail.lock().expect("stderr tail lock");
            let text = String::from_utf8_lossy(&tail);
            let last = text.lines().rev().find(|l| !l.trim().is_empty());
            Err(ShellEnvError::NoOutput {
                shell,
                stderr: last.map(|l| format!(" ({})", l.trim())).unwrap_or_default(),
            })
        }
    }
}

/// Put the shell in a session of its own, without a controlling terminal: an interactive
/// shell that finds the terminal of a `testrelay doctor` run would otherwise try to take
/// it over and be stopped (SIGTTOU) in the background.
#[cfg(unix)]
fn detach(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: runs in the forked child before exec and only calls setsid(2), which is
    // async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
}

#[cfg(not(unix))]
fn detach(_command: &mut Command) {}

#[cfg(unix)]
fn kill_group(pid: u32) {
    // After setsid the shell leads its own process group, whose id is its pid.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[cfg(not(unix))]
fn kill_group(_pid: u32) {}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The variables printed by `env -0` between `start` and `end`; whatever a start-up file
/// printed around them is ignored, and so are entries that are not UTF-8 or whose names
/// are not portable (`BASH_FUNC_x%%` exported functions, for one).
pub fn parse(output: &[u8], start: &str, end: &str) -> Option<BTreeMap<String, String>> {
    let from = find(output, start.as_bytes())? + start.len();
    let body = &output[from..];
    let body = &body[..find(body, end.as_bytes())?];
    let portable = |name: &str| {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    Some(
        body.split(|&b| b == 0)
            .filter_map(|entry| std::str::from_utf8(entry).ok())
            .filter_map(|entry| entry.split_once('='))
            .filter(|(name, _)| portable(name))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Read the login shell into `env`'s fallback slot unless that already happened in this
/// process (or the fallback is off). Blocking.
pub fn fill(env: &HostEnv) -> Option<&LoginShell> {
    env.fill_login_shell(|| match capture(env, TIMEOUT) {
        Ok(c) => {
            tracing::info!(shell = %c.shell, elapsed_ms = c.elapsed.as_millis() as u64, "read the login shell's environment");
            LoginShell::Captured {
                path: c.vars.get("PATH").cloned().unwrap_or_default(),
                shell: c.shell,
                elapsed: c.elapsed,
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "carrying on without the login shell's environment");
            LoginShell::Unavailable(e.to_string())
        }
    })
}

/// When `framework`'s toolchain cannot be found from files, read the login shell first,
/// so that planning sees its PATH. Blocking, at most once per process; from async code on
/// a multi-threaded runtime the worker is handed over (`block_in_place`) while it waits.
pub fn fill_if_needed(framework: Framework, dir: &Path, stop_at: Option<&Path>, env: &HostEnv) {
    if !env.login_shell_pending() || runners::toolchain_found(framework, dir, stop_at, env) {
        return;
    }
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| fill(env));
        }
        _ => {
            fill(env);
        }
    }
}

/// [`fill_if_needed`] for async callers, on the blocking pool.
pub async fn fill_if_needed_async(
    framework: Framework,
    dir: &Path,
    stop_at: Option<&Path>,
    env: &HostEnv,
) {
    if !env.login_shell_pending() || runners::toolchain_found(framework, dir, stop_at, env) {
        return;
    }
    let env = env.clone();
    let _ = tokio::task::spawn_blocking(move || {
        fill(&env);
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in for `$SHELL`: runs the `-c` script with /bin/sh after `prelude`.
    fn fake_shell(dir: &Path, prelude: &str) -> String {
        let path = dir.join("fake-shell");
        std::fs::write(
            &path,
            format!("#!/bin/sh\n{prelude}\nfor last; do :; done\nexec /bin/sh -c \"$last\"\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    fn env_with_shell(shell: &str, home: &Path) -> HostEnv {
        HostEnv::from_pairs([
            ("SHELL".to_string(), shell.to_string()),
            ("HOME".to_string(), home.display().to_string()),
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("KEEP".to_string(), "parent".to_string()),
        ])
    }

    #[test]
    fn output_around_the_markers_and_odd_entries_are_ignored() {
        let out = b"Welcome!\nS\0A=1\0MULTI=line one\nline two\0BASH_FUNC_f%%=() { :; }\0=x\0noequals\0B=\xff\0C=a=b\0E\nbye";
        let vars = parse(out, "S\0", "\0E").unwrap();
        assert_eq!(
            vars,
            BTreeMap::from([
                ("A".into(), "1".into()),
                ("MULTI".into(), "line one\nline two".into()),
                ("C".into(), "a=b".into()),
            ])
        );
        assert_eq!(parse(b"no markers here", "S", "E"), None);
    }

    #[test]
    fn a_login_shell_is_read_with_its_start_up_output_and_additions() {
        let dir = tempfile::tempdir().unwrap();
        let shell = fake_shell(
            dir.path(),
            "echo 'motd: hello'\necho 'warning' >&2\nexport PATH=\"/opt/tools/bin:$PATH\"\nexport KEEP=login",
        );
        let env = env_with_shell(&shell, dir.path());
        let got = capture(&env, TIMEOUT).unwrap();
        assert_eq!(got.vars["PATH"], "/opt/tools/bin:/usr/bin:/bin");
        assert_eq!(got.vars[RESOLVING_MARKER], "1");
        assert_eq!(got.vars["KEEP"], "login");
        // Only the PATH is used, after the inherited one; KEEP stays the parent's.
        let with = env.clone().with_login_shell_fallback();
        assert!(matches!(fill(&with), Some(LoginShell::Captured { .. })));
        assert_eq!(with.vars()["PATH"], "/usr/bin:/bin:/opt/tools/bin");
        assert_eq!(with.vars()["KEEP"], "parent");
    }

    #[test]
    fn a_hanging_shell_is_given_up_on_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let shell = fake_shell(dir.path(), "exec sleep 30");
        let env = env_with_shell(&shell, dir.path());
        let began = Instant::now();
        let err = capture(&env, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, ShellEnvError::TimedOut { .. }), "{err}");
        assert!(began.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_daemon_holding_the_pipe_does_not_delay_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        // The daemon leaves the shell's session and keeps its stdout open for 30 s.
        let pidfile = dir.path().join("daemon.pid");
        let pid = pidfile.display();
        let shell = fake_shell(
            dir.path(),
            &format!(
                "(setsid sh -c 'echo $$ > {pid}.tmp; mv {pid}.tmp {pid}; exec sleep 30' &)\n\
                 while [ ! -s {pid} ]; do :; done"
            ),
        );
        let env = env_with_shell(&shell, dir.path());
        let began = Instant::now();
        assert!(capture(&env, TIMEOUT).is_ok());
        assert!(began.elapsed() < Duration::from_secs(5));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }

    #[test]
    fn failures_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let no_shell = HostEnv::from_pairs([("PATH".to_string(), "/usr/bin".to_string())]);
        assert!(matches!(
            capture(&no_shell, TIMEOUT),
            Err(ShellEnvError::NoShell)
        ));
        let shell = fake_shell(dir.path(), "echo 'broken rc' >&2; exit 3");
        let err = capture(&env_with_shell(&shell, dir.path()), TIMEOUT).unwrap_err();
        assert!(err.to_string().ends_with("(broken rc)"), "{err}");
    }
}

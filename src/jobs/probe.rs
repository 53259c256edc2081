//! Environment checks: run each detected framework's probe command and interpret it.
//! When a framework's toolchain cannot be found from files, the login shell is read first
//! (once per process, see `shell_env`), so the check sees what a terminal would.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::runners::{self, EnvironmentCheck, Framework, HostEnv, ProbeOutput, ProbePlan};

const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

async fn run_probe(plan: &ProbePlan, env: &HostEnv) -> ProbeOutput {
    let mut cmd = tokio::process::Command::new(&plan.program);
    cmd.args(&plan.args)
        .current_dir(&plan.cwd)
        .env_clear()
        .envs(env.vars())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let result = match cmd.spawn() {
        Ok(child) => tokio::time::timeout(PROBE_TIMEOUT, child.wait_with_output()).await,
        Err(e) => {
            return ProbeOutput {
                exit_code: None,
                stdout: String::new(),
                stderr: e.to_string(),
            };
        }
    };
    match result {
        Ok(Ok(out)) => ProbeOutput {
            exit_code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Ok(Err(e)) => ProbeOutput {
            exit_code: None,
            stdout: String::new(),
            stderr: e.to_string(),
        },
        Err(_) => ProbeOutput {
            exit_code: None,
            stdout: String::new(),
            stderr: format!("no answer within {}s", PROBE_TIMEOUT.as_secs()),
        },
    }
}

/// Check `framework` (or every framework detected in `dir`) and say what is missing.
/// An empty result means nothing was detected.
pub async fn check_environment(
    dir: &Path,
    stop_at: Option<&Path>,
    env: &HostEnv,
    framework: Option<Framework>,
) -> Vec<EnvironmentCheck> {
    let frameworks: Vec<Framework> = match framework {
        Some(f) => vec![f],
        None => runners::detect(dir)
            .into_iter()
            .map(|d| d.framework)
            .collect(),
    };
    let mut checks = Vec::new();
    for f in frameworks {
        super::shell_env::fill_if_needed_async(f, dir, stop_at, env).await;
        let check = match runners::probe(f, dir, stop_at, env) {
            Ok(plan) => {
                let out = run_probe(&plan, env).await;
                runners::check(f, dir, &plan, &out)
            }
            Err(done) => *done,
        };
        checks.push(check);
    }
    checks
}

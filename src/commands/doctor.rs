//! `testrelay doctor`: can testrelay work here? One line per check, each failure with a fix.
//!
//! Checks are plain data ([`Check`]) made by small functions that [`gather`] lists in order,
//! so a later check (the credential store, a cloud server) is one more function there. They
//! reuse the engine's own code paths (`jobs::check_environment`, the toolchain lookups,
//! the login-shell reader), so doctor sees exactly what the server would.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::cli::DoctorArgs;
use crate::jobs::shell_env;
use crate::printer::Printer;
use crate::runners::{self, Framework, HostEnv, LoginShell, tilde};
use crate::server::{AppContext, resolve_project_dir};

/// One thing doctor looked at.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// What was found, in words.
    pub detail: String,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &str, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

pub async fn run(ctx: AppContext, a: DoctorArgs) -> ExitCode {
    let mut printer = Printer::new();
    let cwd = std::env::current_dir().ok();
    let home = ctx.env.home();
    let project = resolve_project_dir(
        a.path.as_deref(),
        ctx.workspace.as_deref(),
        cwd.as_deref(),
        home.as_deref(),
    );
    // A directory the user named that cannot be used is a usage error; not being in a
    // project is just one failed check among the others.
    let project = match project {
        Ok((dir, stop)) => Ok((dir, stop)),
        Err(e) if a.path.is_some() => {
            printer.error(&e.to_string());
            return ExitCode::from(2);
        }
        Err(e) => Err(e.to_string()),
    };
    let checks = gather(&ctx, project).await;
    let ok = checks.iter().all(|c| c.ok);
    if a.json {
        printer.json(&serde_json::json!({ "ok": ok, "checks": checks }));
    } else {
        printer.text(&render(&checks));
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Every check, in the order they are shown.
async fn gather(
    ctx: &AppContext,
    project: Result<(PathBuf, Option<PathBuf>), String>,
) -> Vec<Check> {
    let env = &ctx.env;
    let mut checks = vec![
        version(env),
        state_dir(ctx.registry.store().root()),
        login_shell(env).await,
    ];
    match project {
        Ok((dir, stop)) => {
            let frameworks = frameworks(&dir, stop.as_deref(), env).await;
            let js = runners::detect(&dir)
                .iter()
                .any(|d| matches!(d.framework, Framework::Jest | Framework::Playwright));
            checks.extend(frameworks);
            checks.push(node(&dir, env, js));
            checks.push(python(&dir, env));
        }
        Err(e) => checks.push(Check::fail(
            "project",
            e,
            "run `testrelay doctor` in your project directory, or pass the directory",
        )),
    }
    checks
}

fn version(env: &HostEnv) -> Check {
    let exe = std::env::current_exe().and_then(std::fs::canonicalize);
    let exe = match exe {
        Ok(p) => p,
        Err(e) => {
            return Check::fail(
                "testrelay",
                format!(
                    "{} (failed to find its own path: {e})",
                    env!("CARGO_PKG_VERSION")
                ),
                "reinstall with ./install.sh",
            );
        }
    };
    let home = env.home();
    let on_path = env
        .which("testrelay")
        .and_then(|p| std::fs::canonicalize(p).ok());
    let where_ = match on_path {
        Some(p) if p == exe => String::new(),
        Some(p) => format!(
            "; note: `testrelay` on PATH is another copy ({}), IDE configs written by init use this one",
            tilde(&p, home.as_deref())
        ),
        None => "; not on PATH (IDE configs use the absolute path)".to_string(),
    };
    Check::pass(
        "testrelay",
        format!(
            "{} at {}{where_}",
            env!("CARGO_PKG_VERSION"),
            tilde(&exe, home.as_deref())
        ),
    )
}

fn state_dir(root: &Path) -> Check {
    let probe = root.join(format!(".doctor-{:08x}", fastrand::u32(..)));
    let written = std::fs::create_dir_all(root)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    match written {
        Ok(()) => Check::pass("state dir", format!("{} is writable", root.display())),
        Err(e) => Check::fail(
            "state dir",
            format!("cannot write to {}: {e}", root.display()),
            "set TESTRELAY_STATE_DIR (or --state-dir) to a writable directory",
        ),
    }
}

/// The PATH testrelay sees against the login shell's. The answer also fills the server's
/// login-shell slot, so the framework checks below do not read the shell a second time.
async fn login_shell(env: &HostEnv) -> Check {
    let probe = env.clone();
    let captured =
        tokio::task::spawn_blocking(move || shell_env::capture(&probe, shell_env::TIMEOUT))
            .await
            .unwrap_or_else(|e| {
                Err(shell_env::ShellEnvError::NoOutput {
                    shell: "the login shell".into(),
                    stderr: format!(" ({e})"),
                })
            });
    env.fill_login_shell(|| match &captured {
        Ok(c) => LoginShell::Captured {
            shell: c.shell.clone(),
            path: c.vars.get("PATH").cloned().unwrap_or_default(),
            elapsed: c.elapsed,
        },
        Err(e) => LoginShell::Unavailable(e.to_string()),
    });
    let c = match captured {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                "login shell",
                e.to_string(),
                "make `$SHELL -ilc env` finish quickly without input, or put the directories of your tools on PATH in the IDE configuration's \"env\"",
            );
        }
    };
    let login_path = c.vars.get("PATH").map_or("", String::as_str);
    let with = env.clone().with_fallback_path(&c.shell, login_path);
    let extra = with.fallback_path_entries();
    let took = format!("{} answered in {:.2}s", c.shell, c.elapsed.as_secs_f64());
    if extra.is_empty() {
        Check::pass(
            "login shell",
            format!("{took}; its PATH adds nothing to testrelay's"),
        )
    } else {
        let list: Vec<String> = extra.iter().map(|p| p.display().to_string()).collect();
        Check::pass(
            "login shell",
            format!(
                "{took}; testrelay's PATH lacks {} from it, searched when a tool is not found otherwise",
                list.join(", ")
            ),
        )
    }
}

async fn frameworks(dir: &Path, stop: Option<&Path>, env: &HostEnv) -> Vec<Check> {
    let checks = crate::jobs::check_environment(dir, stop, env, None).await;
    if checks.is_empty() {
        return vec![Check::fail(
            "tests",
            format!("no supported test framework detected in {}", dir.display()),
            format!(
                "run `testrelay doctor` in the project's directory, or pass it (supported: {})",
                Framework::ALL.map(Framework::name).join(", ")
            ),
        )];
    }
    checks
        .into_iter()
        .map(|c| {
            let name = c.framework.name();
            let toolchain = c.toolchain.as_deref().unwrap_or("no toolchain found");
            if c.ready {
                let version = c.version.as_deref().unwrap_or("?");
                let runtime = c
                    .runtime_version
                    .as_deref()
                    .map(|r| format!(", runtime {r}"))
                    .unwrap_or_default();
                Check::pass(
                    name,
                    format!("ready: {name} {version}{runtime}, {toolchain}"),
                )
            } else {
                let fix = if c.setup_commands.is_empty() {
                    "see `testrelay check` for details".to_string()
                } else {
                    format!(
                        "in {}, run: {}",
                        dir.display(),
                        c.setup_commands.join(" && ")
                    )
                };
                Check::fail(
                    name,
                    format!(
                        "not ready: {}; toolchain: {toolchain}",
                        c.missing.join("; ")
                    ),
                    fix,
                )
            }
        })
        .collect()
}

fn node(dir: &Path, env: &HostEnv, needed: bool) -> Check {
    match runners::locate_node(Some(dir), env) {
        Some(tool) => Check::pass("node", tool.describe(env.home().as_deref())),
        None if needed => Check::fail(
            "node",
            "not found on PATH, in nvm, fnm, volta, asdf, mise, Homebrew or the login shell",
            "install Node.js (e.g. with nvm), or add its directory to PATH in the IDE configuration's \"env\"",
        ),
        None => Check::pass("node", "not found (only Jest and Playwright need it)"),
    }
}

fn python(dir: &Path, env: &HostEnv) -> Check {
    match runners::locate_python(dir, env) {
        Some(tool) => Check::pass("python", tool.describe(env.home().as_deref())),
        None => Check::pass(
            "python",
            "no interpreter outside project environments (pytest needs one in the project or here)",
        ),
    }
}

/// `✓ name  detail`, names aligned, and a `fix:` line under each failure.
fn render(checks: &[Check]) -> String {
    let width = checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let mark = if c.ok { '✓' } else { '✗' };
        out.push_str(&format!("{mark} {:width$}  {}\n", c.name, c.detail));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("  {:width$}  fix: {fix}\n", ""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_carry_their_fix_under_aligned_names() {
        let text = render(&[
            Check::pass("testrelay", "0.1.0"),
            Check::fail("pytest", "not ready", "pip install pytest"),
        ]);
        assert_eq!(
            text,
            "✓ testrelay  0.1.0\n✗ pytest     not ready\n             fix: pip install pytest\n"
        );
    }

    #[test]
    fn an_unwritable_state_dir_fails_with_a_fix() {
        let d = tempfile::tempdir().unwrap();
        assert!(state_dir(&d.path().join("state")).ok);
        let file = d.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let c = state_dir(&file.join("state"));
        assert!(!c.ok && c.fix.unwrap().contains("TESTRELAY_STATE_DIR"));
    }
}

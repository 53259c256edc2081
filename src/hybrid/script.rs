//! `execute_test_case_directly`: fetch a cloud test case's script, write it where the
//! framework collects it under a name of testrelay's own (never over an existing file),
//! run it as an ordinary job that records the case id, and remove the file afterwards.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::HybridError;
use crate::cloud::Bridge;
use crate::cloud::contract::{self, GET_TEST_SCRIPT_FOR_EXECUTION, GetScript, Script};
use crate::jobs::{JobRecord, Registry, StartSpec};
use crate::runners::{Framework, HostEnv, RunRequest};

/// Scripts bigger than this are refused: a test file, not a bundle.
const SCRIPT_CAP: usize = 1024 * 1024;

pub struct ExecuteRequest {
    pub test_case_id: String,
    pub framework: Framework,
    pub project_dir: PathBuf,
    pub stop_at: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub env: HostEnv,
}

/// What was started.
pub struct Executed {
    pub record: JobRecord,
    /// Where the script was written (removed once the run ends).
    pub script_path: PathBuf,
}

/// `TC-42` → `tc_42`: safe in a file name and a Python module name.
fn slug(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    if s.is_empty() { "case".into() } else { s }
}

/// The extension to keep from the service's suggested name, if it suits the framework.
fn extension(framework: Framework, suggested: &str) -> &'static str {
    let lower = suggested.to_ascii_lowercase();
    let allowed: &[&'static str] = match framework {
        Framework::Pytest => &["py"],
        Framework::Jest | Framework::Playwright => &["ts", "tsx", "mjs", "cjs", "js", "jsx"],
    };
    allowed
        .iter()
        .copied()
        .find(|ext| lower.ends_with(&format!(".{ext}")))
        .unwrap_or(match framework {
            Framework::Pytest => "py",
            Framework::Jest => "js",
            Framework::Playwright => "ts",
        })
}

/// The file name the framework collects: `test_testrelay_<id>.py`,
/// `testrelay-<id>.test.<ext>`, `testrelay-<id>.spec.<ext>`; `n` > 0 adds a suffix.
fn file_name(framework: Framework, id: &str, ext: &str, n: u32) -> String {
    let suffix = if n == 0 {
        String::new()
    } else {
        format!("_{n}")
    };
    let id = slug(id);
    match framework {
        Framework::Pytest => format!("test_testrelay_{id}{suffix}.py"),
        Framework::Jest => format!("testrelay-{id}{suffix}.test.{ext}"),
        Framework::Playwright => format!("testrelay-{id}{suffix}.spec.{ext}"),
    }
}

/// Playwright only collects under its `testDir`: read it from the config (a plain string
/// literal), else the project directory.
fn playwright_test_dir(project: &Path) -> PathBuf {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r#"testDir\s*:\s*['"`]([^'"`]+)['"`]"#).expect("valid regex")
    });
    for name in [
        "playwright.config.ts",
        "playwright.config.js",
        "playwright.config.mjs",
        "playwright.config.cjs",
        "playwright.config.mts",
    ] {
        if let Ok(text) = std::fs::read_to_string(project.join(name))
            && let Some(c) = re.captures(&text)
        {
            let dir = project.join(c[1].trim_start_matches("./"));
            // Never follow a config outside the project.
            if let (Ok(d), Ok(p)) = (dir.canonicalize(), project.canonicalize())
                && d.starts_with(&p)
            {
                return d;
            }
        }
    }
    project.to_path_buf()
}

/// Write `script` into `dir` under a fresh name; returns the path.
fn write_new(
    dir: &Path,
    framework: Framework,
    id: &str,
    ext: &str,
    script: &str,
) -> Result<PathBuf, HybridError> {
    use std::io::Write;
    for n in 0..100 {
        let path = dir.join(file_name(framework, id, ext, n));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(script.as_bytes())
                    .map_err(|e| HybridError::io("write", &path, e))?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(HybridError::io("create", &path, e)),
        }
    }
    Err(HybridError::Invalid(format!(
        "too many testrelay scripts for {id} in {}: remove the stale ones",
        dir.display()
    )))
}

pub async fn execute_case(
    bridge: &Bridge,
    registry: &Registry,
    req: ExecuteRequest,
    cancel: CancellationToken,
) -> Result<Executed, HybridError> {
    if req.test_case_id.trim().is_empty() {
        return Err(HybridError::Invalid("test_case_id is empty".into()));
    }
    let script: Script = contract::call(
        bridge,
        GET_TEST_SCRIPT_FOR_EXECUTION,
        &GetScript {
            test_case_id: req.test_case_id.clone(),
            framework: req.framework.name().to_string(),
        },
        cancel,
    )
    .await?;
    if script.script.len() > SCRIPT_CAP {
        return Err(HybridError::Invalid(format!(
            "the script for {} is {} bytes, over the {SCRIPT_CAP} byte cap",
            req.test_case_id,
            script.script.len()
        )));
    }
    let dir = match req.framework {
        Framework::Playwright => playwright_test_dir(&req.project_dir),
        Framework::Pytest | Framework::Jest => req.project_dir.clone(),
    };
    let ext = extension(req.framework, &script.filename);
    let path = write_new(&dir, req.framework, &req.test_case_id, ext, &script.script)?;
    let selector = path
        .strip_prefix(&req.project_dir)
        .unwrap_or(&path)
        .to_string_lossy()
        .replace('\\', "/");
    let spec = StartSpec {
        framework: req.framework,
        project_dir: req.project_dir,
        stop_at: req.stop_at,
        request: RunRequest {
            tests: vec![selector],
            ..RunRequest::default()
        },
        timeout: req.timeout,
        idempotency_key: None,
        // The script is removed after the run; its bytecode would stay behind.
        env: req.env.with_overrides(
            &[("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string())]
                .into_iter()
                .collect(),
        ),
        cloud_test_case_id: Some(req.test_case_id),
    };
    let started = match registry.start(spec) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(HybridError::Invalid(e.to_string()));
        }
    };
    // Remove the script once the run is over, whoever watches it.
    let id = started.record.id.to_string();
    let watcher = registry.clone();
    let script_path = path.clone();
    tokio::spawn(async move {
        if let Some(mut rx) = watcher.subscribe(&id) {
            while !rx.borrow_and_update().status.is_terminal() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }
        let _ = std::fs::remove_file(&script_path);
    });
    Ok(Executed {
        record: started.record,
        script_path: path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_each_frameworks_pattern() {
        assert_eq!(
            file_name(Framework::Pytest, "TC-42", "py", 0),
            "test_testrelay_tc_42.py"
        );
        assert_eq!(
            file_name(
                Framework::Jest,
                "TC-42",
                extension(Framework::Jest, "x.test.ts"),
                1
            ),
            "testrelay-tc_42_1.test.ts"
        );
        assert_eq!(
            file_name(
                Framework::Playwright,
                "../x",
                extension(Framework::Playwright, "a.rb"),
                0
            ),
            "testrelay-___x.spec.ts"
        );
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("test_testrelay_tc_1.py"), "mine").unwrap();
        let p = write_new(d.path(), Framework::Pytest, "TC-1", "py", "theirs").unwrap();
        assert!(p.ends_with("test_testrelay_tc_1_1.py"));
        assert_eq!(
            std::fs::read_to_string(d.path().join("test_testrelay_tc_1.py")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn playwright_scripts_go_under_test_dir() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("e2e")).unwrap();
        std::fs::write(
            d.path().join("playwright.config.ts"),
            "export default { testDir: './e2e' };",
        )
        .unwrap();
        assert!(playwright_test_dir(d.path()).ends_with("e2e"));
    }
}

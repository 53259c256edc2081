//! Finding the project's own Python interpreter from files, not from the inherited shell.
//!
//! Order: `$VIRTUAL_ENV`; a virtualenv folder (`.venv`, `venv`, `env`, `.env` holding a
//! `pyvenv.cfg`) in the project or a parent up to the workspace or repository root;
//! `$UV_PROJECT_ENVIRONMENT`; poetry's own virtualenv for the project (found by the name
//! poetry derives from the project path, without running poetry); `$CONDA_PREFIX`; then an
//! interpreter outside any project environment: `python3`/`python` on PATH, then where
//! version managers and Homebrew keep one, then the login shell's PATH (see `toolchain`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::HostEnv;
use super::toolchain::{self, ToolSource};

const VENV_DIRS: [&str; 4] = [".venv", "venv", "env", ".env"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PythonSource {
    VirtualEnvVar,
    ProjectVenv,
    UvProjectEnvironment,
    Poetry,
    Conda,
    /// Not a project environment: found on PATH, by a version manager, Homebrew or the
    /// login shell (see [`toolchain::locate_python`]).
    Outside(ToolSource),
}

/// A Python interpreter and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    pub interpreter: PathBuf,
    pub source: PythonSource,
    /// The environment's prefix when it is a virtualenv or conda env.
    pub prefix: Option<PathBuf>,
    /// The version, when the interpreter's location tells it (pyenv).
    pub version: Option<String>,
}

impl PythonEnv {
    pub fn describe(&self) -> String {
        let how = match self.source {
            PythonSource::VirtualEnvVar => "$VIRTUAL_ENV".to_string(),
            PythonSource::ProjectVenv => match &self.prefix {
                Some(p) => format!("virtualenv {}", p.display()),
                None => "virtualenv".to_string(),
            },
            PythonSource::UvProjectEnvironment => "$UV_PROJECT_ENVIRONMENT".to_string(),
            PythonSource::Poetry => match &self.prefix {
                Some(p) => format!("poetry virtualenv {}", p.display()),
                None => "poetry".to_string(),
            },
            PythonSource::Conda => "$CONDA_PREFIX".to_string(),
            PythonSource::Outside(source) => match &self.version {
                Some(v) => format!("{} {v}", source.label()),
                None => source.label().to_string(),
            },
        };
        format!("{} (from {how})", self.interpreter.display())
    }

    pub fn is_isolated(&self) -> bool {
        !matches!(self.source, PythonSource::Outside(_))
    }
}

fn interpreter_in(prefix: &Path) -> Option<PathBuf> {
    let candidates: &[&str] = if cfg!(windows) {
        &["Scripts/python.exe", "python.exe"]
    } else {
        &["bin/python", "bin/python3"]
    };
    candidates
        .iter()
        .map(|c| prefix.join(c))
        .find(|p| p.is_file())
}

fn is_venv(dir: &Path) -> bool {
    dir.join("pyvenv.cfg").is_file()
}

/// Directories from `start` upwards where a project virtualenv may live: stop at
/// `stop_at` (the workspace root), at the first directory holding `.git`, or below home.
fn search_dirs(start: &Path, stop_at: Option<&Path>, home: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in start.ancestors() {
        if Some(dir) == home || dir.parent().is_none() {
            break;
        }
        out.push(dir.to_path_buf());
        if Some(dir) == stop_at || dir.join(".git").exists() {
            break;
        }
    }
    out
}

/// Find the interpreter that should run the project's tests.
pub fn find_python(project: &Path, stop_at: Option<&Path>, env: &HostEnv) -> Option<PythonEnv> {
    let from_prefix = |prefix: PathBuf, source: PythonSource| {
        interpreter_in(&prefix).map(|interpreter| PythonEnv {
            interpreter,
            source,
            prefix: Some(prefix),
            version: None,
        })
    };
    if let Some(found) = env
        .get("VIRTUAL_ENV")
        .and_then(|v| from_prefix(v.into(), PythonSource::VirtualEnvVar))
    {
        return Some(found);
    }
    let home = env.home();
    for dir in search_dirs(project, stop_at, home.as_deref()) {
        for name in VENV_DIRS {
            let candidate = dir.join(name);
            if is_venv(&candidate)
                && let Some(found) = from_prefix(candidate, PythonSource::ProjectVenv)
            {
                return Some(found);
            }
        }
    }
    if let Some(v) = env.get("UV_PROJECT_ENVIRONMENT") {
        let p = PathBuf::from(v);
        let p = if p.is_absolute() { p } else { project.join(p) };
        if let Some(found) = from_prefix(p, PythonSource::UvProjectEnvironment) {
            return Some(found);
        }
    }
    if let Some(found) =
        poetry_venv(project, env).and_then(|p| from_prefix(p, PythonSource::Poetry))
    {
        return Some(found);
    }
    if let Some(found) = env
        .get("CONDA_PREFIX")
        .and_then(|v| from_prefix(v.into(), PythonSource::Conda))
    {
        return Some(found);
    }
    toolchain::locate_python(project, env).map(|tool| PythonEnv {
        interpreter: tool.path,
        source: PythonSource::Outside(tool.source),
        prefix: None,
        version: tool.version,
    })
}

/// True when `interpreter` belongs to a virtualenv or a conda environment (its prefix holds
/// `pyvenv.cfg` or `conda-meta`). Judged from files, since a probe plan carries only the path.
pub fn in_environment(interpreter: &Path) -> bool {
    let Some(prefix) = interpreter.parent().and_then(Path::parent) else {
        return false;
    };
    prefix.join("pyvenv.cfg").is_file() || prefix.join("conda-meta").is_dir()
}

/// The name poetry gives a project's virtualenv (before its `-pyX.Y` suffix): the
/// sanitized project name and 8 characters of the URL-safe base64 SHA-256 of the
/// project's real path.
pub fn poetry_env_name(name: &str, project_realpath: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let sanitized: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if " $`!*@\"\\\r\n\t".contains(c) {
                '_'
            } else {
                c
            }
        })
        .take(42)
        .collect();
    let digest = sha2::Sha256::digest(project_realpath.as_bytes());
    let hash = base64::engine::general_purpose::URL_SAFE.encode(digest);
    format!("{sanitized}-{}", &hash[..8])
}

/// `name = "..."` under `[tool.poetry]` (preferred) or `[project]` in a pyproject.toml.
fn pyproject_name(pyproject: &str) -> Option<String> {
    let mut table = "";
    let mut found = None;
    for line in pyproject.lines().map(str::trim) {
        if line.starts_with('[') {
            table = line;
            continue;
        }
        if (table == "[tool.poetry]" || table == "[project]")
            && let Some(value) = line
                .strip_prefix("name")
                .map(str::trim_start)
                .and_then(|l| l.strip_prefix('='))
        {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            if table == "[tool.poetry]" || found.is_none() {
                found = Some(value.to_string());
            }
        }
    }
    found
}

/// Poetry's virtualenv for `project`, when poetry manages it and the venv exists.
fn poetry_venv(project: &Path, env: &HostEnv) -> Option<PathBuf> {
    let pyproject = std::fs::read_to_string(project.join("pyproject.toml")).ok()?;
    if !pyproject.contains("[tool.poetry") && !project.join("poetry.lock").is_file() {
        return None;
    }
    let name = pyproject_name(&pyproject)?;
    let root = match (
        env.get("POETRY_VIRTUALENVS_PATH"),
        env.get("POETRY_CACHE_DIR"),
    ) {
        (Some(p), _) => PathBuf::from(p),
        (None, Some(c)) => PathBuf::from(c).join("virtualenvs"),
        (None, None) if cfg!(windows) => dirs::cache_dir()?.join("pypoetry/Cache/virtualenvs"),
        (None, None) => dirs::cache_dir()?.join("pypoetry/virtualenvs"),
    };
    let real = project.canonicalize().ok()?;
    let prefix = format!("{}-py", poetry_env_name(&name, &real.to_string_lossy()));
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .filter(|p| is_venv(p))
        .collect();
    // With several Python versions prefer the newest, by version (3.12 after 3.9).
    candidates.sort_by_key(|p| {
        let n = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        n.rsplit("-py")
            .next()
            .unwrap_or("")
            .split('.')
            .filter_map(|x| x.parse::<u32>().ok())
            .collect::<Vec<_>>()
    });
    candidates.pop()
}

/// The tool that manages the project's Python environment, judged from its files.
pub fn project_tool(project: &Path) -> &'static str {
    let pyproject = std::fs::read_to_string(project.join("pyproject.toml")).unwrap_or_default();
    if project.join("uv.lock").is_file() || pyproject.contains("[tool.uv") {
        "uv"
    } else if project.join("poetry.lock").is_file() || pyproject.contains("[tool.poetry") {
        "poetry"
    } else if project.join("Pipfile").is_file() {
        "pipenv"
    } else {
        "pip"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_venv(dir: &Path) {
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        std::fs::write(dir.join("bin/python"), "").unwrap();
    }

    fn env(pairs: &[(&str, &str)]) -> HostEnv {
        HostEnv::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn project_venv_in_a_parent_is_found_and_virtual_env_wins() {
        let root = tempfile::tempdir().unwrap();
        let project = root.path().join("repo/sub");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir(root.path().join("repo/.git")).unwrap();
        fake_venv(&root.path().join("repo/.venv"));

        let found = find_python(&project, None, &env(&[("PATH", "")])).unwrap();
        assert_eq!(found.source, PythonSource::ProjectVenv);
        assert_eq!(found.interpreter, root.path().join("repo/.venv/bin/python"));

        let other = root.path().join("other");
        fake_venv(&other);
        let found = find_python(
            &project,
            None,
            &env(&[("VIRTUAL_ENV", other.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(found.source, PythonSource::VirtualEnvVar);
    }

    #[test]
    fn search_stops_at_the_repository_root() {
        let root = tempfile::tempdir().unwrap();
        fake_venv(&root.path().join(".venv"));
        let project = root.path().join("repo");
        std::fs::create_dir_all(project.join(".git")).unwrap();
        let home = root.path().to_str().unwrap();
        let bare = env(&[("PATH", ""), ("HOME", home), ("HOMEBREW_PREFIX", home)]);
        assert_eq!(find_python(&project, None, &bare), None);
    }

    #[test]
    fn a_dot_env_file_is_not_a_venv() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(".git")).unwrap();
        std::fs::write(root.path().join(".env"), "SECRET=1").unwrap();
        let home = root.path().to_str().unwrap();
        let bare = env(&[("PATH", ""), ("HOME", home), ("HOMEBREW_PREFIX", home)]);
        assert_eq!(find_python(root.path(), None, &bare), None);
    }

    #[test]
    fn poetry_env_names_match_poetry() {
        // Values computed with poetry's own algorithm in Python.
        assert_eq!(
            poetry_env_name("My App", "/home/user/proj"),
            "my_app-fXO_T96u"
        );
        assert_eq!(
            poetry_env_name("testrelay-pytest-fixture", "/srv/p"),
            "testrelay-pytest-fixture-xMvome3w"
        );
        assert_eq!(
            pyproject_name("[project]\nname = \"a\"\n[tool.poetry]\nname = 'b'\n"),
            Some("b".into())
        );
    }

    #[test]
    fn poetry_venv_outside_the_project_is_found() {
        let root = tempfile::tempdir().unwrap();
        let project = root.path().join("proj");
        std::fs::create_dir(&project).unwrap();
        std::fs::create_dir(project.join(".git")).unwrap();
        std::fs::write(
            project.join("pyproject.toml"),
            "[tool.poetry]\nname = \"Demo\"\n",
        )
        .unwrap();
        let cache = root.path().join("venvs");
        let real = project.canonicalize().unwrap();
        let name = poetry_env_name("Demo", &real.to_string_lossy());
        fake_venv(&cache.join(format!("{name}-py3.9")));
        fake_venv(&cache.join(format!("{name}-py3.12")));
        fake_venv(&cache.join("other-abcdefgh-py3.12"));
        let vars = [
            ("PATH", ""),
            ("POETRY_VIRTUALENVS_PATH", cache.to_str().unwrap()),
        ];
        let found = find_python(&project, None, &env(&vars)).unwrap();
        assert_eq!(found.source, PythonSource::Poetry);
        assert_eq!(found.prefix, Some(cache.join(format!("{name}-py3.12"))));
    }

    #[test]
    fn project_tool_from_lockfiles() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(project_tool(d.path()), "pip");
        std::fs::write(d.path().join("pyproject.toml"), "[tool.poetry]\nname='x'\n").unwrap();
        assert_eq!(project_tool(d.path()), "poetry");
        std::fs::write(d.path().join("uv.lock"), "").unwrap();
        assert_eq!(project_tool(d.path()), "uv");
    }
}

//! The environment a runner will see: the server's own variables plus per-run overrides,
//! and, once it has been read, the PATH of the user's login shell as a fallback.
//!
//! IDEs often start MCP servers with a minimal environment, so adapters read this snapshot
//! (never `std::env` directly) and otherwise rely on files in the project. The login shell's
//! PATH is captured by `jobs::shell_env` (it spawns a process, which this pure module must
//! not); this module only holds the result and searches it, always *after* the inherited
//! PATH, so nothing the parent set explicitly is ever overridden.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct HostEnv {
    vars: BTreeMap<String, String>,
    /// Shared by every clone, so one capture serves the whole process. `None` means the
    /// login-shell fallback is off (tests, and callers that never asked for it).
    login: Option<Arc<OnceLock<LoginShell>>>,
}

/// What the user's login shell reported, read at most once per process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginShell {
    /// The shell that answered, its PATH, and how long it took.
    Captured {
        shell: String,
        path: String,
        elapsed: Duration,
    },
    /// Why it could not be read (no `SHELL`, a timeout, no output); lookups go on without it.
    Unavailable(String),
}

const PATH_SEPARATOR: char = if cfg!(windows) { ';' } else { ':' };

impl HostEnv {
    /// The current process environment (variables that are not valid UTF-8 are left out).
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars())
    }

    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        HostEnv {
            vars: pairs.into_iter().collect(),
            login: None,
        }
    }

    /// Turn on the login-shell fallback: an empty slot that `jobs::shell_env` fills the
    /// first time a toolchain cannot be found otherwise.
    pub fn with_login_shell_fallback(mut self) -> Self {
        self.login.get_or_insert_with(Default::default);
        self
    }

    /// This environment with `path` as the login shell's PATH, as if it had been captured.
    pub fn with_fallback_path(mut self, shell: &str, path: &str) -> Self {
        let slot = OnceLock::new();
        let _ = slot.set(LoginShell::Captured {
            shell: shell.to_string(),
            path: path.to_string(),
            elapsed: Duration::ZERO,
        });
        self.login = Some(Arc::new(slot));
        self
    }

    /// The same environment with `overrides` applied on top.
    pub fn with_overrides(&self, overrides: &BTreeMap<String, String>) -> Self {
        let mut vars = self.vars.clone();
        vars.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        HostEnv {
            vars,
            login: self.login.clone(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from).or_else(dirs::home_dir)
    }

    /// Find `program` on the inherited PATH.
    pub fn which(&self, program: &str) -> Option<PathBuf> {
        let path = self.get("PATH")?;
        which::which_in(program, Some(path), "/").ok()
    }

    /// Find `program` in the login shell's PATH entries that the inherited PATH lacks.
    pub fn which_fallback(&self, program: &str) -> Option<PathBuf> {
        let extra = std::env::join_paths(self.fallback_path_entries()).ok()?;
        if extra.is_empty() {
            return None;
        }
        which::which_in(program, Some(extra), "/").ok()
    }

    /// True when the fallback is on and the login shell has not been read yet.
    pub fn login_shell_pending(&self) -> bool {
        self.login.as_ref().is_some_and(|slot| slot.get().is_none())
    }

    /// The login shell's answer, once read.
    pub fn login_shell(&self) -> Option<&LoginShell> {
        self.login.as_ref()?.get()
    }

    /// Fill the login-shell slot with `capture` unless it is already filled (concurrent
    /// callers wait for the first). Returns None when the fallback is off.
    pub fn fill_login_shell(&self, capture: impl FnOnce() -> LoginShell) -> Option<&LoginShell> {
        Some(self.login.as_ref()?.get_or_init(capture))
    }

    /// Login-shell PATH entries that the inherited PATH does not already hold, in order.
    pub fn fallback_path_entries(&self) -> Vec<PathBuf> {
        let Some(LoginShell::Captured { path, .. }) = self.login_shell() else {
            return Vec::new();
        };
        let inherited: Vec<&Path> = self.path_entries().collect();
        let mut out: Vec<PathBuf> = Vec::new();
        for entry in path.split(PATH_SEPARATOR).filter(|e| !e.is_empty()) {
            let entry = Path::new(entry);
            if entry.is_absolute() && !inherited.contains(&entry) && !out.iter().any(|o| o == entry)
            {
                out.push(entry.to_path_buf());
            }
        }
        out
    }

    fn path_entries(&self) -> impl Iterator<Item = &Path> {
        self.get("PATH")
            .unwrap_or("")
            .split(PATH_SEPARATOR)
            .filter(|e| !e.is_empty())
            .map(Path::new)
    }

    /// Every variable, for handing to a child process whose environment is cleared first.
    /// PATH is the inherited one with the login shell's extra entries appended, so a run
    /// finds what a terminal would, without shadowing anything the parent put first.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut vars = self.vars.clone();
        let extra = self.fallback_path_entries();
        if !extra.is_empty() {
            let joined = self
                .path_entries()
                .map(Path::to_path_buf)
                .chain(extra)
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(&PATH_SEPARATOR.to_string());
            vars.insert("PATH".into(), joined);
        }
        vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HostEnv {
        HostEnv::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn the_login_path_only_adds_what_the_inherited_path_lacks() {
        let bin = tempfile::tempdir().unwrap();
        let tool = bin.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();

        let plain = env(&[("PATH", "/usr/bin:/bin")]);
        assert_eq!(plain.which_fallback("tool"), None);
        assert!(!plain.login_shell_pending());
        let login = format!("/usr/bin:{}:relative:/usr/bin", bin.path().display());
        let with = plain.with_fallback_path("/bin/zsh", &login);
        assert_eq!(with.fallback_path_entries(), vec![bin.path().to_path_buf()]);
        assert_eq!(with.which_fallback("tool"), Some(tool));
        assert_eq!(
            with.vars()["PATH"],
            format!("/usr/bin:/bin:{}", bin.path().display())
        );
        // The inherited value stays what `get` answers; only children see the extension.
        assert_eq!(with.get("PATH"), Some("/usr/bin:/bin"));
    }

    #[test]
    fn the_slot_is_filled_once_and_shared_by_clones() {
        let base = env(&[("PATH", "/usr/bin")]).with_login_shell_fallback();
        let clone = base.with_overrides(&BTreeMap::from([("X".into(), "1".into())]));
        assert!(clone.login_shell_pending());
        base.fill_login_shell(|| LoginShell::Unavailable("no SHELL".into()));
        assert!(!clone.login_shell_pending());
        let again = clone.fill_login_shell(|| unreachable!("filled once"));
        assert_eq!(again, Some(&LoginShell::Unavailable("no SHELL".into())));
        assert_eq!(env(&[]).fill_login_shell(|| unreachable!()), None);
    }
}

//! The environment a runner will see: the server's own variables plus per-run overrides.
//!
//! IDEs often start MCP servers with a minimal environment, so adapters read this snapshot
//! (never `std::env` directly) and otherwise rely on files in the project.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct HostEnv {
    vars: BTreeMap<String, String>,
}

impl HostEnv {
    /// The current process environment (variables that are not valid UTF-8 are left out).
    pub fn from_process() -> Self {
        HostEnv {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        HostEnv {
            vars: pairs.into_iter().collect(),
        }
    }

    /// The same environment with `overrides` applied on top.
    pub fn with_overrides(&self, overrides: &BTreeMap<String, String>) -> Self {
        let mut vars = self.vars.clone();
        vars.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        HostEnv { vars }
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

    /// Find `program` on this environment's PATH.
    pub fn which(&self, program: &str) -> Option<PathBuf> {
        let path = self.get("PATH")?;
        which::which_in(program, Some(path), "/").ok()
    }
}

impl HostEnv {
    /// Every variable, for handing to a child process whose environment is cleared first.
    pub fn vars(&self) -> impl Iterator<Item = (&String, &String)> {
        self.vars.iter()
    }
}

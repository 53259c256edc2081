//! What a Node.js project's files say about its installation: which package manager it
//! uses, where its lockfile and `node_modules` live (workspaces install at their root),
//! whether the install is older than the lockfile, and the commands that fix it.
//!
//! File checks only: nothing here runs a package manager (which could download).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// A package manager, as the project declares it or as its lockfile shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Manager {
    Npm,
    Pnpm,
    /// Yarn 1.x.
    YarnClassic,
    /// Yarn 2 and later.
    YarnBerry,
    Bun,
}

impl Manager {
    pub fn name(self) -> &'static str {
        match self {
            Manager::Npm => "npm",
            Manager::Pnpm => "pnpm",
            Manager::YarnClassic => "yarn classic",
            Manager::YarnBerry => "yarn berry",
            Manager::Bun => "bun",
        }
    }

    /// The command that installs exactly what the lockfile pins.
    pub fn install(self, has_lockfile: bool) -> &'static str {
        match (self, has_lockfile) {
            (Manager::Npm, true) => "npm ci",
            (Manager::Npm, false) => "npm install",
            (Manager::Pnpm, true) => "pnpm install --frozen-lockfile",
            (Manager::Pnpm, false) => "pnpm install",
            (Manager::YarnClassic, true) => "yarn install --frozen-lockfile",
            (Manager::YarnBerry, true) => "yarn install --immutable",
            (Manager::YarnClassic | Manager::YarnBerry, false) => "yarn install",
            (Manager::Bun, true) => "bun install --frozen-lockfile",
            (Manager::Bun, false) => "bun install",
        }
    }

    /// The command that adds `package` as a development dependency.
    pub fn add_dev(self, package: &str) -> String {
        match self {
            Manager::Npm => format!("npm i -D {package}"),
            Manager::Pnpm => format!("pnpm add -D {package}"),
            Manager::YarnClassic | Manager::YarnBerry => format!("yarn add -D {package}"),
            Manager::Bun => format!("bun add -d {package}"),
        }
    }

    /// The file the manager writes into `node_modules` when it installs, if it writes one.
    fn install_marker(self) -> Option<&'static str> {
        match self {
            Manager::Npm => Some(".package-lock.json"),
            Manager::Pnpm => Some(".modules.yaml"),
            Manager::YarnClassic => Some(".yarn-integrity"),
            Manager::YarnBerry => Some(".yarn-state.yml"),
            Manager::Bun => None,
        }
    }
}

const LOCKFILES: [&str; 6] = [
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "bun.lock",
    "bun.lockb",
];

/// Where and how a Node project is installed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// The directory whose `node_modules` the package manager fills: the one holding the
    /// lockfile (a workspace root), else the project itself.
    pub root: PathBuf,
    pub manager: Manager,
    /// What gave the manager away: `packageManager` in package.json, a lockfile, or nothing.
    pub manager_evidence: String,
    pub lockfile: Option<PathBuf>,
    /// Yarn Plug'n'Play: `.pnp.cjs` and no `node_modules`; packages resolve through yarn.
    pub pnp: bool,
}

/// Directories from `project` up to the workspace root (`stop_at`) or repository root.
fn ancestors<'a>(project: &'a Path, stop_at: Option<&'a Path>) -> impl Iterator<Item = &'a Path> {
    let mut done = false;
    project.ancestors().take_while(move |dir| {
        if done {
            return false;
        }
        done = Some(*dir) == stop_at || dir.join(".git").exists();
        true
    })
}

/// A package.json as JSON, or Null when missing or unreadable.
pub fn manifest(dir: &Path) -> serde_json::Value {
    std::fs::read_to_string(dir.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn from_package_manager_field(value: &str) -> Option<Manager> {
    let (name, version) = value.split_once('@').unwrap_or((value, ""));
    let major: Option<u64> = version.split('.').next().and_then(|m| m.parse().ok());
    match name {
        "npm" => Some(Manager::Npm),
        "pnpm" => Some(Manager::Pnpm),
        "bun" => Some(Manager::Bun),
        "yarn" if major.is_some_and(|m| m < 2) => Some(Manager::YarnClassic),
        "yarn" => Some(Manager::YarnBerry),
        _ => None,
    }
}

fn from_lockfile(root: &Path, lockfile: &str) -> Manager {
    match lockfile {
        "pnpm-lock.yaml" => Manager::Pnpm,
        "bun.lock" | "bun.lockb" => Manager::Bun,
        "yarn.lock" => {
            let berry = root.join(".yarnrc.yml").is_file()
                || std::fs::read_to_string(root.join("yarn.lock"))
                    .is_ok_and(|t| t.contains("__metadata:"));
            if berry {
                Manager::YarnBerry
            } else {
                Manager::YarnClassic
            }
        }
        _ => Manager::Npm,
    }
}

/// Read the project's layout from its files.
pub fn layout(project: &Path, stop_at: Option<&Path>) -> Layout {
    let mut declared: Option<(Manager, String)> = None;
    let mut found: Option<(PathBuf, &str)> = None;
    for dir in ancestors(project, stop_at) {
        if declared.is_none()
            && let Some(value) = manifest(dir)["packageManager"].as_str()
            && let Some(m) = from_package_manager_field(value)
        {
            declared = Some((m, format!("packageManager \"{value}\" in package.json")));
        }
        if found.is_none()
            && let Some(lock) = LOCKFILES.iter().find(|l| dir.join(l).is_file())
        {
            found = Some((dir.to_path_buf(), lock));
        }
        if found.is_some() && declared.is_some() {
            break;
        }
    }
    let root = found
        .as_ref()
        .map_or_else(|| project.to_path_buf(), |(d, _)| d.clone());
    let (manager, manager_evidence) = match (&declared, &found) {
        (Some((m, why)), _) => (*m, why.clone()),
        (None, Some((dir, lock))) => (from_lockfile(dir, lock), (*lock).to_string()),
        (None, None) => (Manager::Npm, "no lockfile; npm assumed".to_string()),
    };
    let pnp = !root.join("node_modules").is_dir()
        && (root.join(".pnp.cjs").is_file() || root.join(".pnp.js").is_file());
    Layout {
        lockfile: found.map(|(d, l)| d.join(l)),
        root,
        manager,
        manager_evidence,
        pnp,
    }
}

/// Why the installed `node_modules` does not match the lockfile, if it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallState {
    Current,
    Missing,
    /// The manager's install record is older than the lockfile, or absent.
    Stale(String),
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Layout {
    pub fn install_state(&self) -> InstallState {
        let modules = self.root.join("node_modules");
        if !modules.is_dir() {
            return InstallState::Missing;
        }
        let (Some(lockfile), Some(marker)) = (&self.lockfile, self.manager.install_marker()) else {
            return InstallState::Current;
        };
        let lock_name = lockfile.file_name().unwrap_or_default().to_string_lossy();
        match (modified(&modules.join(marker)), modified(lockfile)) {
            (None, _) => InstallState::Stale(format!(
                "node_modules was not installed by {} (no node_modules/{marker}), so it may not match {lock_name}",
                self.manager.name()
            )),
            (Some(installed), Some(locked)) if installed < locked => InstallState::Stale(format!(
                "node_modules is older than {lock_name}: dependencies changed since the last install"
            )),
            _ => InstallState::Current,
        }
    }

    pub fn install_command(&self) -> &'static str {
        self.manager.install(self.lockfile.is_some())
    }
}

/// Whether package.json of `dir` lists `package` in any dependency section.
pub fn declares(dir: &Path, package: &str) -> bool {
    let m = manifest(dir);
    [
        "dependencies",
        "devDependencies",
        "optionalDependencies",
        "peerDependencies",
    ]
    .iter()
    .any(|section| m[section].get(package).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn workspace_lockfile_and_package_manager_field() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join(".git")).unwrap();
        write(&d.path().join("pnpm-lock.yaml"), "lockfileVersion: 9\n");
        write(&d.path().join("package.json"), r#"{"private":true}"#);
        let app = d.path().join("packages/app");
        write(
            &app.join("package.json"),
            r#"{"devDependencies":{"jest":"30.0.0"}}"#,
        );
        let l = layout(&app, None);
        assert_eq!(l.root, d.path());
        assert_eq!(l.manager, Manager::Pnpm);
        assert_eq!(l.install_state(), InstallState::Missing);
        assert_eq!(l.install_command(), "pnpm install --frozen-lockfile");
        assert!(declares(&app, "jest"));

        write(
            &app.join("package.json"),
            r#"{"packageManager":"yarn@4.1.0"}"#,
        );
        let l = layout(&app, None);
        assert_eq!(l.manager, Manager::YarnBerry);
        assert_eq!(l.install_command(), "yarn install --immutable");
        assert_eq!(l.manager.add_dev("jest"), "yarn add -D jest");
    }

    #[test]
    fn yarn_flavours_bun_and_no_lockfile() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("yarn.lock"), "# yarn lockfile v1\n");
        assert_eq!(
            layout(d.path(), Some(d.path())).manager,
            Manager::YarnClassic
        );
        write(&d.path().join("yarn.lock"), "__metadata:\n  version: 8\n");
        write(&d.path().join(".pnp.cjs"), "");
        let l = layout(d.path(), Some(d.path()));
        assert_eq!((l.manager, l.pnp), (Manager::YarnBerry, true));

        let b = tempfile::tempdir().unwrap();
        write(&b.path().join("bun.lockb"), "");
        let l = layout(b.path(), Some(b.path()));
        assert_eq!(l.install_command(), "bun install --frozen-lockfile");

        let none = tempfile::tempdir().unwrap();
        let l = layout(none.path(), Some(none.path()));
        assert_eq!((l.manager, l.lockfile.as_ref()), (Manager::Npm, None));
        assert_eq!(l.install_command(), "npm install");
    }

    #[test]
    fn npm_install_older_than_the_lockfile_is_stale() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("node_modules/.package-lock.json"), "{}");
        write(&d.path().join("package-lock.json"), "{}");
        let old = SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(d.path().join("node_modules/.package-lock.json"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let l = layout(d.path(), Some(d.path()));
        assert!(
            matches!(l.install_state(), InstallState::Stale(why) if why.contains("older than package-lock.json"))
        );
        std::fs::File::options()
            .write(true)
            .open(d.path().join("node_modules/.package-lock.json"))
            .unwrap()
            .set_modified(SystemTime::now())
            .unwrap();
        assert_eq!(l.install_state(), InstallState::Current);
        assert_eq!(l.install_command(), "npm ci");
    }
}

//! Finding Node.js and a project's own npm packages from files, never through `npx`
//! (which downloads and runs packages that are not installed).

use std::path::{Path, PathBuf};

use super::HostEnv;
pub use super::toolchain::locate_node;

/// The `node` binary: on this environment's PATH, else where a version manager, Homebrew
/// or the login shell keeps it (nvm's `default` alias, not a project pin; use
/// [`locate_node`] with the project to honour `.nvmrc` and to describe where it came from).
pub fn find_node(env: &HostEnv) -> Option<PathBuf> {
    locate_node(None, env).map(|tool| tool.path)
}

/// The directory of `package` as installed for `project`: `node_modules/<package>` in the
/// project or an ancestor (workspaces hoist dependencies), up to `stop_at` or the
/// repository root.
pub fn resolve_package(project: &Path, stop_at: Option<&Path>, package: &str) -> Option<PathBuf> {
    for dir in project.ancestors() {
        let candidate = dir.join("node_modules").join(package);
        if candidate.join("package.json").is_file() {
            return Some(candidate);
        }
        if Some(dir) == stop_at || dir.join(".git").exists() {
            break;
        }
    }
    None
}

/// The JavaScript file of a package's `bin` entry named `name` (or its only entry).
pub fn package_bin(package_dir: &Path, name: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(package_dir.join("package.json")).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    let rel = match &manifest["bin"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(map) => map.get(name).and_then(|v| v.as_str())?.to_string(),
        _ => return None,
    };
    let path = package_dir.join(rel);
    path.is_file().then_some(path)
}

/// `version` from a package's manifest.
pub fn package_version(package_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(package_dir.join("package.json")).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    manifest["version"].as_str().map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hoisted_packages_and_their_bins_are_found() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(".git")).unwrap();
        let jest = root.path().join("node_modules/jest");
        std::fs::create_dir_all(jest.join("bin")).unwrap();
        std::fs::write(
            jest.join("package.json"),
            r#"{"version":"30.1.0","bin":{"jest":"./bin/jest.js"}}"#,
        )
        .unwrap();
        std::fs::write(jest.join("bin/jest.js"), "").unwrap();
        let pkg = root.path().join("packages/app");
        std::fs::create_dir_all(&pkg).unwrap();
        let found = resolve_package(&pkg, None, "jest").unwrap();
        assert_eq!(found, jest);
        assert_eq!(
            package_bin(&found, "jest"),
            Some(jest.join("./bin/jest.js"))
        );
        assert_eq!(package_version(&found).as_deref(), Some("30.1.0"));
        assert_eq!(resolve_package(&pkg, None, "vitest"), None);
    }
}

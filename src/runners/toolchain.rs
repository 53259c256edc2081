//! Where users keep toolchains that the inherited PATH does not show: version managers
//! (nvm, fnm, volta, asdf, mise, pyenv), Homebrew, and last the login shell's PATH.
//!
//! IDEs started from a dock or a desktop launcher often run with a PATH that has none of
//! these (macOS GUI apps get `/usr/bin:/bin:/usr/sbin:/sbin`), and MCP clients pass that on.
//! So when a program is not on the inherited PATH we look where the managers install it,
//! honouring the project's pins (`.nvmrc`, `.node-version`, `.python-version`) and the
//! managers' default aliases. File lookups only: nothing here runs a program, and the login
//! shell's PATH arrives ready-made in [`HostEnv`]. Every find carries its source, so the
//! toolchain a job reports says where it came from.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::HostEnv;

/// How a program was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolSource {
    Path,
    Nvm,
    Fnm,
    Volta,
    Asdf,
    Mise,
    Pyenv,
    Homebrew,
    LoginShell,
}

impl ToolSource {
    pub fn label(self) -> &'static str {
        match self {
            ToolSource::Path => "PATH",
            ToolSource::Nvm => "nvm",
            ToolSource::Fnm => "fnm",
            ToolSource::Volta => "volta",
            ToolSource::Asdf => "asdf",
            ToolSource::Mise => "mise",
            ToolSource::Pyenv => "pyenv",
            ToolSource::Homebrew => "Homebrew",
            ToolSource::LoginShell => "login shell PATH",
        }
    }
}

/// A program found for a runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    /// What was looked for, e.g. `node` or `python3`.
    pub name: &'static str,
    pub path: PathBuf,
    pub source: ToolSource,
    /// The version, when the install directory's name tells it (nvm, fnm, pyenv).
    pub version: Option<String>,
}

impl Tool {
    /// For humans and models, e.g. `node v20.1.0 from nvm (~/.nvm/versions/node/v20.1.0/bin/node)`.
    pub fn describe(&self, home: Option<&Path>) -> String {
        let version = self
            .version
            .as_deref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        format!(
            "{}{version} from {} ({})",
            self.name,
            self.source.label(),
            tilde(&self.path, home)
        )
    }

    /// The directory to put first on a run's PATH so that scripts calling the program by
    /// name (`#!/usr/bin/env node`) get this one.
    pub fn bin_dir(&self) -> Option<&Path> {
        self.path.parent()
    }
}

/// `path` with the home directory written as `~`.
pub fn tilde(path: &Path, home: Option<&Path>) -> String {
    match home.and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) if rest.as_os_str().is_empty() => "~".to_string(),
        Some(rest) => format!("~/{}", rest.display()),
        None => path.display().to_string(),
    }
}

/// Node.js for `project`: the inherited PATH, then nvm, fnm, volta, asdf, mise, Homebrew,
/// then the login shell's PATH.
pub fn locate_node(project: Option<&Path>, env: &HostEnv) -> Option<Tool> {
    Places::new(env).node(project)
}

/// A Python interpreter outside any project environment: the inherited PATH, then pyenv,
/// asdf, mise, Homebrew, then the login shell's PATH.
pub fn locate_python(project: &Path, env: &HostEnv) -> Option<Tool> {
    Places::new(env).python(project)
}

/// Where the lookups search. Built from the environment; tests replace the system prefixes
/// so that what happens to be installed on the machine does not leak in.
pub(crate) struct Places<'a> {
    env: &'a HostEnv,
    home: Option<PathBuf>,
    brew_prefixes: Vec<PathBuf>,
}

const PYTHON_NAMES: [&str; 2] = ["python3", "python"];

impl<'a> Places<'a> {
    pub(crate) fn new(env: &'a HostEnv) -> Self {
        let brew_prefixes = match env.get("HOMEBREW_PREFIX") {
            Some(p) => vec![PathBuf::from(p)],
            None => ["/opt/homebrew", "/usr/local", "/home/linuxbrew/.linuxbrew"]
                .map(PathBuf::from)
                .to_vec(),
        };
        Places {
            env,
            home: env.home(),
            brew_prefixes,
        }
    }

    #[cfg(test)]
    fn without_system_prefixes(mut self) -> Self {
        self.brew_prefixes.clear();
        self
    }

    /// `$VAR` if set, else `default` under home.
    fn root(&self, var: &str, default: &str) -> Option<PathBuf> {
        match self.env.get(var) {
            Some(v) => Some(PathBuf::from(v)),
            None => self.home.as_ref().map(|h| h.join(default)),
        }
    }

    /// The XDG data directory (`$XDG_DATA_HOME` or `~/.local/share`).
    fn data_dir(&self) -> Option<PathBuf> {
        self.root("XDG_DATA_HOME", ".local/share")
    }

    fn found(name: &'static str, path: PathBuf, source: ToolSource) -> Tool {
        Tool {
            name,
            path,
            source,
            version: None,
        }
    }

    fn node(&self, project: Option<&Path>) -> Option<Tool> {
        if let Some(path) = self.env.which("node") {
            return Some(Self::found("node", path, ToolSource::Path));
        }
        let pins = project.map_or_else(Vec::new, |p| pins(p, &[".nvmrc", ".node-version"]));
        self.nvm(&pins)
            .or_else(|| self.fnm(&pins))
            .or_else(|| self.shim("node", "VOLTA_HOME", ".volta", "bin", ToolSource::Volta))
            .or_else(|| self.shim("node", "ASDF_DATA_DIR", ".asdf", "shims", ToolSource::Asdf))
            .or_else(|| self.mise_shim("node"))
            .or_else(|| self.brew("node"))
            .or_else(|| {
                self.env
                    .which_fallback("node")
                    .map(|p| Self::found("node", p, ToolSource::LoginShell))
            })
    }

    fn python(&self, project: &Path) -> Option<Tool> {
        for name in PYTHON_NAMES {
            if let Some(path) = self.env.which(name) {
                return Some(Self::found(name, path, ToolSource::Path));
            }
        }
        PYTHON_NAMES
            .into_iter()
            .find_map(|name| self.pyenv(name, project))
            .or_else(|| {
                PYTHON_NAMES.into_iter().find_map(|name| {
                    self.shim(name, "ASDF_DATA_DIR", ".asdf", "shims", ToolSource::Asdf)
                        .or_else(|| self.mise_shim(name))
                        .or_else(|| self.brew(name))
                })
            })
            .or_else(|| {
                PYTHON_NAMES.into_iter().find_map(|name| {
                    self.env
                        .which_fallback(name)
                        .map(|p| Self::found(name, p, ToolSource::LoginShell))
                })
            })
    }

    /// nvm: `$NVM_DIR/versions/node/v*/bin/node`, chosen by the project's pin, then the
    /// `default` alias, then the newest.
    fn nvm(&self, pins: &[String]) -> Option<Tool> {
        let root = self.root("NVM_DIR", ".nvm")?;
        let installed = installed(&root.join("versions/node"), Path::new("bin/node"));
        let wanted = pins
            .iter()
            .cloned()
            .chain(std::iter::once("default".to_string()));
        let pick = wanted
            .filter_map(|spec| resolve_nvm_alias(&root, &spec))
            .find_map(|want| choose(&installed, &want))
            .or_else(|| choose(&installed, &Want::Newest))?;
        Some(Tool {
            name: "node",
            path: pick.path.clone(),
            source: ToolSource::Nvm,
            version: Some(pick.name.clone()),
        })
    }

    /// fnm: `<fnm dir>/node-versions/v*/installation/bin/node`, chosen by the project's
    /// pin, then the `default` alias (a symlink to an installation), then the newest.
    fn fnm(&self, pins: &[String]) -> Option<Tool> {
        let mut roots: Vec<PathBuf> = Vec::new();
        if let Some(dir) = self.env.get("FNM_DIR") {
            roots.push(dir.into());
        }
        roots.extend(self.data_dir().map(|d| d.join("fnm")));
        if let Some(h) = &self.home {
            roots.push(h.join("Library/Application Support/fnm"));
            roots.push(h.join(".fnm"));
        }
        let root = roots
            .into_iter()
            .find(|r| r.join("node-versions").is_dir())?;
        let installed = installed(
            &root.join("node-versions"),
            Path::new("installation/bin/node"),
        );
        let default = std::fs::canonicalize(root.join("aliases/default"))
            .ok()
            .and_then(|p| Some(p.parent()?.file_name()?.to_string_lossy().into_owned()));
        let pick = pins
            .iter()
            .map(|p| Want::parse(p))
            .chain(default.map(Want::Version))
            .find_map(|want| choose(&installed, &want))
            .or_else(|| choose(&installed, &Want::Newest))?;
        Some(Tool {
            name: "node",
            path: pick.path.clone(),
            source: ToolSource::Fnm,
            version: Some(pick.name.clone()),
        })
    }

    /// pyenv: the version the project pins (`$PYENV_VERSION`, `.python-version`, then the
    /// global `version` file) from `versions/`, else the shim, which resolves it at run time.
    fn pyenv(&self, name: &'static str, project: &Path) -> Option<Tool> {
        let root = self.root("PYENV_ROOT", ".pyenv")?;
        let bin = Path::new("bin").join(name);
        let installed = installed(&root.join("versions"), &bin);
        let global = std::fs::read_to_string(root.join("version")).ok();
        let specs = self
            .env
            .get("PYENV_VERSION")
            .map(String::from)
            .into_iter()
            .chain(pins(project, &[".python-version"]))
            .chain(global);
        let pick = specs
            .flat_map(|s| {
                s.split(|c: char| c.is_whitespace() || c == ':')
                    .filter(|v| !v.is_empty() && *v != "system")
                    .map(Want::parse)
                    .collect::<Vec<_>>()
            })
            .find_map(|want| choose(&installed, &want));
        if let Some(pick) = pick {
            return Some(Tool {
                name,
                path: pick.path.clone(),
                source: ToolSource::Pyenv,
                version: Some(pick.name.clone()),
            });
        }
        let shim = root.join("shims").join(name);
        shim.is_file()
            .then(|| Self::found(name, shim, ToolSource::Pyenv))
    }

    /// A manager's shim directory: `$VAR/<dir>/<name>` or `~/<default>/<dir>/<name>`.
    fn shim(
        &self,
        name: &'static str,
        var: &str,
        default: &str,
        dir: &str,
        source: ToolSource,
    ) -> Option<Tool> {
        let path = self.root(var, default)?.join(dir).join(name);
        path.is_file().then(|| Self::found(name, path, source))
    }

    fn mise_shim(&self, name: &'static str) -> Option<Tool> {
        let root = match self.env.get("MISE_DATA_DIR") {
            Some(d) => PathBuf::from(d),
            None => self.data_dir()?.join("mise"),
        };
        let path = root.join("shims").join(name);
        path.is_file()
            .then(|| Self::found(name, path, ToolSource::Mise))
    }

    fn brew(&self, name: &'static str) -> Option<Tool> {
        self.brew_prefixes
            .iter()
            .map(|p| p.join("bin").join(name))
            .find(|p| p.is_file())
            .map(|p| Self::found(name, p, ToolSource::Homebrew))
    }
}

/// One installed version: its directory name, its parsed number and the program in it.
struct Installed {
    name: String,
    number: Vec<u64>,
    path: PathBuf,
}

/// The versions under `dir` that hold `program` (a path relative to each version).
fn installed(dir: &Path, program: &Path) -> Vec<Installed> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path().join(program);
            path.is_file().then(|| Installed {
                number: version_number(&name).unwrap_or_default(),
                name,
                path,
            })
        })
        .collect()
}

/// `v20.1.0` → `[20, 1, 0]`; `3.12` → `[3, 12]`; names that do not start with a number
/// (`pypy3.10-7.3`, `lts/iron`) → None.
fn version_number(name: &str) -> Option<Vec<u64>> {
    let s = name.trim().trim_start_matches('v');
    let mut out = Vec::new();
    for part in s.split('.') {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            break;
        }
        out.push(digits.parse().ok()?);
        if digits.len() != part.len() {
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// What a pin or alias asks for.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    Newest,
    /// A version or a prefix of one (`20`, `v20.1`, `3.12.1`), or an exact directory name.
    Version(String),
}

impl Want {
    fn parse(spec: &str) -> Want {
        match spec.trim() {
            "node" | "stable" | "latest" | "lts/*" | "" => Want::Newest,
            s => Want::Version(s.to_string()),
        }
    }
}

/// The installed version that `want` means: an exact directory name, else the highest
/// version that starts with the requested numbers.
fn choose<'i>(installed: &'i [Installed], want: &Want) -> Option<&'i Installed> {
    let newest =
        |it: &mut dyn Iterator<Item = &'i Installed>| it.max_by(|a, b| a.number.cmp(&b.number));
    match want {
        Want::Newest => newest(&mut installed.iter().filter(|i| !i.number.is_empty())),
        Want::Version(spec) => {
            let bare = spec.trim_start_matches('v');
            if let Some(exact) = installed
                .iter()
                .find(|i| i.name == *spec || i.name.trim_start_matches('v') == bare)
            {
                return Some(exact);
            }
            let prefix = version_number(spec)?;
            newest(&mut installed.iter().filter(|i| i.number.starts_with(&prefix)))
        }
    }
}

/// Follow nvm aliases (`default` → `lts/iron` → `v20.11.1`) to what they ask for.
/// `system` and unknown aliases mean nothing here.
fn resolve_nvm_alias(root: &Path, spec: &str) -> Option<Want> {
    let mut spec = spec.trim().to_string();
    for _ in 0..8 {
        match Want::parse(&spec) {
            Want::Newest => return Some(Want::Newest),
            Want::Version(_) if spec == "system" || spec == "iojs" => return None,
            Want::Version(_) if version_number(&spec).is_some() => {
                return Some(Want::Version(spec));
            }
            Want::Version(_) => {
                spec = std::fs::read_to_string(root.join("alias").join(&spec))
                    .ok()?
                    .trim()
                    .to_string();
            }
        }
    }
    None
}

/// The lines (comments and blanks dropped) of the nearest of `names` in `project` or an
/// ancestor, e.g. `.nvmrc` saying `20`.
fn pins(project: &Path, names: &[&str]) -> Vec<String> {
    for dir in project.ancestors() {
        let found: Vec<String> = names
            .iter()
            .filter_map(|n| std::fs::read_to_string(dir.join(n)).ok())
            .flat_map(|text| {
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
            })
            .collect();
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HostEnv {
        HostEnv::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
    }

    fn node_in(home: &Path, project: Option<&Path>, extra: &[(&str, &str)]) -> Option<Tool> {
        let mut pairs = vec![("HOME", home.to_str().unwrap()), ("PATH", "/nonexistent")];
        pairs.extend_from_slice(extra);
        let env = env(&pairs);
        Places::new(&env).without_system_prefixes().node(project)
    }

    #[test]
    fn versions_parse_and_match_by_prefix() {
        assert_eq!(version_number("v20.11.1"), Some(vec![20, 11, 1]));
        assert_eq!(version_number("3.13.0rc1"), Some(vec![3, 13, 0]));
        assert_eq!(version_number("lts/iron"), None);
        assert_eq!(version_number("pypy3.10-7.3"), None);
        let installed: Vec<Installed> = ["v18.19.0", "v20.9.0", "v20.11.1", "v8.0.0"]
            .iter()
            .map(|n| Installed {
                name: n.to_string(),
                number: version_number(n).unwrap(),
                path: PathBuf::from(n),
            })
            .collect();
        let pick = |w: Want| choose(&installed, &w).map(|i| i.name.as_str());
        assert_eq!(pick(Want::parse("20")), Some("v20.11.1"));
        assert_eq!(pick(Want::parse("v20.9")), Some("v20.9.0"));
        assert_eq!(pick(Want::parse("18.19.0")), Some("v18.19.0"));
        assert_eq!(pick(Want::parse("lts/*")), Some("v20.11.1"));
        assert_eq!(pick(Want::parse("16")), None);
    }

    #[test]
    fn nvm_honours_the_project_pin_then_the_default_alias_then_the_newest() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        for v in ["v18.19.0", "v20.11.1", "v22.1.0"] {
            touch(&h.join(".nvm/versions/node").join(v).join("bin/node"));
        }
        let newest = node_in(h, None, &[]).unwrap();
        assert_eq!(
            (newest.source, newest.version.as_deref()),
            (ToolSource::Nvm, Some("v22.1.0"))
        );
        std::fs::create_dir_all(h.join(".nvm/alias/lts")).unwrap();
        std::fs::write(h.join(".nvm/alias/default"), "lts/iron\n").unwrap();
        std::fs::write(h.join(".nvm/alias/lts/iron"), "v20.11.1\n").unwrap();
        assert_eq!(
            node_in(h, None, &[]).unwrap().version.as_deref(),
            Some("v20.11.1")
        );
        let project = h.join("src/app/pkg");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(h.join("src/app/.nvmrc"), "18 # pinned\n").unwrap();
        let pinned = node_in(h, Some(&project), &[]).unwrap();
        assert_eq!(pinned.path, h.join(".nvm/versions/node/v18.19.0/bin/node"));
        assert_eq!(
            pinned.describe(Some(h)),
            "node v18.19.0 from nvm (~/.nvm/versions/node/v18.19.0/bin/node)"
        );
        // An inherited PATH that has node wins over every manager.
        let bin = h.join("bin");
        touch(&bin.join("node"));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("node"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = env(&[
            ("HOME", h.to_str().unwrap()),
            ("PATH", bin.to_str().unwrap()),
        ]);
        assert_eq!(locate_node(None, &env).unwrap().source, ToolSource::Path);
    }

    #[test]
    fn fnm_volta_and_shims_are_found_in_order() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        assert_eq!(node_in(h, None, &[]), None);
        touch(&h.join(".local/share/mise/shims/node"));
        assert_eq!(node_in(h, None, &[]).unwrap().source, ToolSource::Mise);
        touch(&h.join(".asdf/shims/node"));
        assert_eq!(node_in(h, None, &[]).unwrap().source, ToolSource::Asdf);
        touch(&h.join(".volta/bin/node"));
        assert_eq!(node_in(h, None, &[]).unwrap().source, ToolSource::Volta);
        let fnm = h.join(".local/share/fnm");
        touch(&fnm.join("node-versions/v20.1.0/installation/bin/node"));
        touch(&fnm.join("node-versions/v21.0.0/installation/bin/node"));
        std::fs::create_dir_all(fnm.join("aliases")).unwrap();
        std::os::unix::fs::symlink(
            fnm.join("node-versions/v20.1.0/installation"),
            fnm.join("aliases/default"),
        )
        .unwrap();
        let found = node_in(h, None, &[]).unwrap();
        assert_eq!(
            (found.source, found.version.as_deref()),
            (ToolSource::Fnm, Some("v20.1.0"))
        );
        let custom = tempfile::tempdir().unwrap();
        touch(&custom.path().join("versions/node/v19.0.0/bin/node"));
        let found = node_in(h, None, &[("NVM_DIR", custom.path().to_str().unwrap())]).unwrap();
        assert_eq!(found.source, ToolSource::Nvm);
    }

    #[test]
    fn pyenv_picks_the_pinned_version_or_its_shim() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let project = h.join("proj");
        std::fs::create_dir_all(&project).unwrap();
        let env = env(&[("HOME", h.to_str().unwrap()), ("PATH", "/nonexistent")]);
        let places = Places::new(&env).without_system_prefixes();
        assert_eq!(places.python(&project), None);
        touch(&h.join(".pyenv/shims/python3"));
        let shim = places.python(&project).unwrap();
        assert_eq!((shim.source, shim.version), (ToolSource::Pyenv, None));
        touch(&h.join(".pyenv/versions/3.11.7/bin/python3"));
        touch(&h.join(".pyenv/versions/3.12.1/bin/python3"));
        std::fs::write(h.join(".pyenv/version"), "3.11.7\n").unwrap();
        assert_eq!(
            places.python(&project).unwrap().version.as_deref(),
            Some("3.11.7")
        );
        std::fs::write(project.join(".python-version"), "system\n3.12\n").unwrap();
        let pinned = places.python(&project).unwrap();
        assert_eq!(pinned.path, h.join(".pyenv/versions/3.12.1/bin/python3"));
        assert_eq!(
            pinned.describe(Some(h)),
            "python3 3.12.1 from pyenv (~/.pyenv/versions/3.12.1/bin/python3)"
        );
    }

    #[test]
    fn the_login_shell_path_is_the_last_resort() {
        let home = tempfile::tempdir().unwrap();
        let bin = home.path().join("opt/bin");
        touch(&bin.join("node"));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("node"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = env(&[
            ("HOME", home.path().to_str().unwrap()),
            ("PATH", "/nonexistent"),
        ])
        .with_fallback_path("/bin/zsh", &format!("/nonexistent:{}", bin.display()));
        let found = Places::new(&env)
            .without_system_prefixes()
            .node(None)
            .unwrap();
        assert_eq!(
            found.describe(Some(home.path())),
            "node from login shell PATH (~/opt/bin/node)"
        );
    }
}

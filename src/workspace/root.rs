//! Workspace root resolution and confinement.
//!
//! Owns: choosing the root directory from the sources a request can name (explicit argument,
//! server configuration, MCP client roots, process cwd), canonicalizing it, refusing roots
//! that would sweep up a whole machine or home directory, and mapping user-supplied paths to
//! canonical paths that are guaranteed to lie inside the root. Must not: walk the tree, read
//! file contents, or consult environment variables itself (the caller passes `home`/`cwd`, so
//! the policy is testable and the binary decides where those come from).

use std::io;
use std::path::{Component, Path, PathBuf};

use super::error::WorkspaceError;

/// Where a root may come from, in priority order: `explicit` (a tool argument), `configured`
/// (server configuration), `roots` (the MCP client's `roots/list`, already turned from
/// `file://` URIs into paths; the first one wins), then `cwd` (the directory the IDE spawned
/// the server in).
#[derive(Debug, Clone, Default)]
pub struct RootSources {
    pub explicit: Option<PathBuf>,
    pub configured: Option<PathBuf>,
    pub roots: Vec<PathBuf>,
    pub cwd: Option<PathBuf>,
}

/// A canonical, existing directory that is neither `/` nor the home directory.
///
/// The inner path is canonical (symlinks resolved), which is what makes the `starts_with`
/// confinement checks below sound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRoot(PathBuf);

impl WorkspaceRoot {
    /// Canonicalizes `path` and checks that it is an acceptable root. `home`, when given, is
    /// refused as a root: packing a whole home directory is never what an agent meant.
    pub fn open(path: &Path, home: Option<&Path>) -> Result<Self, WorkspaceError> {
        let canonical = std::fs::canonicalize(path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                WorkspaceError::RootNotADirectory {
                    path: path.to_path_buf(),
                }
            } else {
                WorkspaceError::read(path, source)
            }
        })?;
        if !canonical.is_dir() {
            return Err(WorkspaceError::RootNotADirectory { path: canonical });
        }
        if canonical.parent().is_none() {
            return Err(WorkspaceError::RootIsFilesystemRoot { path: canonical });
        }
        if let Some(home) = home {
            // Compare canonical forms: $HOME is often reached through a symlink (/home -> /usr/home).
            let home_canon = std::fs::canonicalize(home).unwrap_or_else(|_| home.to_path_buf());
            if canonical == home_canon {
                return Err(WorkspaceError::RootIsHome { path: canonical });
            }
        }
        Ok(WorkspaceRoot(canonical))
    }

    /// The canonical root directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Maps a user-supplied path (relative to the root, or absolute) to a canonical path inside
    /// the root, refusing anything that escapes it.
    ///
    /// Existing paths are canonicalized, so a symlink pointing outside is caught. For a path
    /// that does not exist yet (an output file, say), the longest existing ancestor is
    /// canonicalized and the rest is appended after lexical normalization; a `..` that would
    /// climb above that ancestor is refused rather than guessed at.
    pub fn resolve_inside(&self, p: &str) -> Result<PathBuf, WorkspaceError> {
        let outside = || WorkspaceError::OutsideRoot {
            path: p.to_string(),
            root: self.0.clone(),
        };
        let joined = if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            self.0.join(p)
        };
        let lexical = normalize_lexically(&joined).ok_or_else(outside)?;

        let resolved = match std::fs::canonicalize(&lexical) {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                resolve_missing(&lexical).map_err(|e| WorkspaceError::read(&lexical, e))?
            }
            // A symlink loop or permission problem: the path cannot be proven to stay inside.
            Err(_) => return Err(outside()),
        };
        if resolved.starts_with(&self.0) {
            Ok(resolved)
        } else {
            Err(outside())
        }
    }
}

/// Removes `.` and resolves `..` textually. Returns `None` if `..` would climb above the
/// filesystem root, which can only mean "outside".
fn normalize_lexically(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            Component::Prefix(_) | Component::RootDir => out.push(comp.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() || out.as_os_str().is_empty() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Some(out)
}

/// Canonicalizes the longest existing ancestor of an (already normalized, absolute) path and
/// appends the missing tail. The ancestor may be a symlink; canonicalizing it is exactly what
/// lets the caller's `starts_with` check see where a write would really land.
fn resolve_missing(path: &Path) -> io::Result<PathBuf> {
    let mut tail = Vec::new();
    let mut cur = path;
    loop {
        match std::fs::canonicalize(cur) {
            Ok(base) => {
                let mut out = base;
                for part in tail.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (cur.parent(), cur.file_name()) else {
                    return Err(e);
                };
                tail.push(name.to_os_string());
                cur = parent;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Picks the root from `sources` in priority order and validates it with [`WorkspaceRoot::open`].
///
/// A relative `explicit` path is tried against `configured` first (agents often pass paths
/// relative to the project they were told about), then against `cwd`. The first *present*
/// source wins even if it is bad: silently falling back to another directory would pack
/// something the caller did not ask for.
pub fn resolve_root(
    sources: &RootSources,
    home: Option<&Path>,
) -> Result<WorkspaceRoot, WorkspaceError> {
    let chosen: PathBuf = if let Some(explicit) = &sources.explicit {
        if explicit.is_absolute() {
            explicit.clone()
        } else {
            let tries: Vec<PathBuf> = [sources.configured.as_ref(), sources.cwd.as_ref()]
                .into_iter()
                .flatten()
                .map(|base| base.join(explicit))
                .collect();
            // First base under which the path exists; else the first base, so the error names
            // the location we would have used.
            tries
                .iter()
                .find(|c| c.is_dir())
                .or(tries.first())
                .cloned()
                .unwrap_or_else(|| explicit.clone())
        }
    } else if let Some(configured) = &sources.configured {
        configured.clone()
    } else if let Some(first) = sources.roots.first() {
        first.clone()
    } else if let Some(cwd) = &sources.cwd {
        cwd.clone()
    } else {
        return Err(WorkspaceError::NoRoot);
    };
    WorkspaceRoot::open(&chosen, home)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn priority_order_is_explicit_configured_roots_cwd() {
        let t = tmp();
        let dirs: Vec<PathBuf> = ["e", "c", "r", "w"]
            .iter()
            .map(|n| {
                let d = t.path().join(n);
                fs::create_dir(&d).unwrap();
                fs::canonicalize(d).unwrap()
            })
            .collect();
        let mut s = RootSources {
            explicit: Some(dirs[0].clone()),
            configured: Some(dirs[1].clone()),
            roots: vec![dirs[2].clone()],
            cwd: Some(dirs[3].clone()),
        };
        assert_eq!(resolve_root(&s, None).unwrap().path(), dirs[0]);
        s.explicit = None;
        assert_eq!(resolve_root(&s, None).unwrap().path(), dirs[1]);
        s.configured = None;
        assert_eq!(resolve_root(&s, None).unwrap().path(), dirs[2]);
        s.roots.clear();
        assert_eq!(resolve_root(&s, None).unwrap().path(), dirs[3]);
        s.cwd = None;
        assert!(matches!(
            resolve_root(&s, None),
            Err(WorkspaceError::NoRoot)
        ));
    }

    #[test]
    fn relative_explicit_resolves_against_configured_then_cwd() {
        let t = tmp();
        let conf = t.path().join("conf");
        let cwd = t.path().join("cwd");
        fs::create_dir_all(conf.join("pkg")).unwrap();
        fs::create_dir_all(cwd.join("only-in-cwd")).unwrap();
        let s = RootSources {
            explicit: Some(PathBuf::from("pkg")),
            configured: Some(conf.clone()),
            roots: vec![],
            cwd: Some(cwd.clone()),
        };
        let r = resolve_root(&s, None).unwrap();
        assert_eq!(r.path(), fs::canonicalize(conf.join("pkg")).unwrap());
        let s = RootSources {
            explicit: Some(PathBuf::from("only-in-cwd")),
            ..s
        };
        let r = resolve_root(&s, None).unwrap();
        assert_eq!(r.path(), fs::canonicalize(cwd.join("only-in-cwd")).unwrap());
    }

    #[test]
    fn refuses_filesystem_root_and_home() {
        let s = RootSources {
            explicit: Some(PathBuf::from("/")),
            ..Default::default()
        };
        let e = resolve_root(&s, None).unwrap_err();
        assert!(
            matches!(e, WorkspaceError::RootIsFilesystemRoot { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("pass an explicit path"));

        let t = tmp();
        let home = t.path().join("home");
        fs::create_dir(&home).unwrap();
        let s = RootSources {
            cwd: Some(home.join(".")),
            ..Default::default()
        };
        let e = resolve_root(&s, Some(&home)).unwrap_err();
        assert!(matches!(e, WorkspaceError::RootIsHome { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("is the home directory; pass an explicit path")
        );
        // A project *inside* home is fine.
        fs::create_dir(home.join("proj")).unwrap();
        let s = RootSources {
            cwd: Some(home.join("proj")),
            ..Default::default()
        };
        assert!(resolve_root(&s, Some(&home)).is_ok());
    }

    #[test]
    fn missing_root_is_reported_with_its_path() {
        let t = tmp();
        let missing = t.path().join("nope");
        let e = WorkspaceRoot::open(&missing, None).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        assert!(matches!(e, WorkspaceError::RootNotADirectory { .. }));
    }

    #[test]
    fn resolve_inside_confines_paths() {
        let t = tmp();
        let outside = t.path().join("outside");
        let rootdir = t.path().join("root");
        fs::create_dir_all(rootdir.join("src")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(rootdir.join("src/a.py"), "x").unwrap();
        fs::write(outside.join("x"), "secret").unwrap();
        let root = WorkspaceRoot::open(&rootdir, None).unwrap();
        let canon = root.path().to_path_buf();

        assert_eq!(
            root.resolve_inside("src/a.py").unwrap(),
            canon.join("src/a.py")
        );
        assert_eq!(
            root.resolve_inside("./src/../src/a.py").unwrap(),
            canon.join("src/a.py")
        );
        // Not-yet-existing paths are normalized lexically.
        assert_eq!(
            root.resolve_inside("out/new.zip").unwrap(),
            canon.join("out/new.zip")
        );

        for bad in ["../x", "../outside/x", "src/../../outside/x", "/etc/passwd"] {
            let e = root.resolve_inside(bad).unwrap_err();
            assert!(
                matches!(e, WorkspaceError::OutsideRoot { .. }),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains("is outside the workspace"), "{e}");
        }
        // An absolute path that is inside is accepted.
        let abs = canon.join("src/a.py");
        assert_eq!(root.resolve_inside(abs.to_str().unwrap()).unwrap(), abs);
    }

    #[cfg(unix)]
    #[test]
    fn resolve_inside_refuses_symlinks_that_leave_the_root() {
        let t = tmp();
        let outside = t.path().join("outside");
        let rootdir = t.path().join("root");
        fs::create_dir_all(&rootdir).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("x"), "secret").unwrap();
        std::os::unix::fs::symlink(&outside, rootdir.join("link")).unwrap();
        std::os::unix::fs::symlink(".", rootdir.join("loop")).unwrap();
        let root = WorkspaceRoot::open(&rootdir, None).unwrap();
        for bad in ["link/x", "link", "link/not-yet-there/y"] {
            let e = root.resolve_inside(bad).unwrap_err();
            assert!(
                matches!(e, WorkspaceError::OutsideRoot { .. }),
                "{bad}: {e}"
            );
        }
        // A loop back into the root stays inside and terminates.
        assert_eq!(root.resolve_inside("loop/loop").unwrap(), root.path());
    }
}

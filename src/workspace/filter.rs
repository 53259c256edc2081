//! The workspace walker: which paths are *candidates* for packing.
//!
//! Owns: the `ignore`-crate walk (`.gitignore` with or without a repository, `.git/info/exclude`,
//! the global git excludes, `.testrelayignore`), the built-in directory excludes, the caller's
//! include/exclude globs, and symlink policy. Must not: read file contents (secret, binary and
//! size decisions on content belong to `archive.rs`/`secrets.rs`), or follow symlinked
//! directories.
//!
//! Symlink policy (never followed during the walk, so a loop such as `a -> .` cannot hang):
//! * a symlink to a *regular file inside the root* is packed under the link's own path with
//!   the target's content, but only if the target itself was walked as a candidate, i.e. it is
//!   not ignored, not under a pruned directory, not excluded by the caller's globs, and not a
//!   secret by name. A link cannot smuggle in what the walk would have left out;
//! * a symlink resolving outside the root is excluded as [`ExcludeKind::SymlinkOutside`];
//! * a symlink to a directory, a dangling link and a loop are excluded as
//!   [`ExcludeKind::Symlink`].

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::{DirEntry, WalkBuilder, WalkState};

use super::error::WorkspaceError;
use super::listing::{ExcludeKind, Excluded, contributors_by_files};
use super::root::WorkspaceRoot;
use super::secrets::secret_by_name;

/// Per-directory ignore file honoured in addition to `.gitignore` (same syntax; wins over it).
pub const CUSTOM_IGNORE_FILENAME: &str = ".testrelayignore";

/// Directories pruned wherever they appear, even when no ignore file mentions them, with the
/// reason reported for each. They are dependency trees, build output or tool caches: large,
/// regenerable, and noise for code analysis.
const BUILTIN_DIRS: &[(&str, &str)] = &[
    ("node_modules", "dependency directory"),
    (".venv", "python virtualenv"),
    ("venv", "python virtualenv"),
    ("__pycache__", "python bytecode cache"),
    (".pytest_cache", "tool cache"),
    (".mypy_cache", "tool cache"),
    (".ruff_cache", "tool cache"),
    (".tox", "tool environment"),
    (".nox", "tool environment"),
    (".gradle", "tool cache"),
    (".cache", "tool cache"),
    (".turbo", "tool cache"),
    ("target", "build output"),
    ("dist", "build output"),
    ("build", "build output"),
    (".next", "build output"),
    (".nuxt", "build output"),
    ("coverage", "coverage output"),
];

/// Version-control metadata: pruned silently (reporting `.git/` on every pack is noise).
const VCS_DIRS: &[&str] = &[".git", ".hg", ".svn"];

/// A file the walk accepted.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// Forward-slash path relative to the root (the ZIP entry name).
    pub rel: String,
    /// What to read: the file itself, or the canonical target of a symlink.
    pub disk: PathBuf,
    /// Size seen by the walk (the symlink target's size for links).
    pub size: u64,
    /// For symlinks: the target's root-relative path.
    pub link_target: Option<String>,
}

impl Candidate {
    /// File names whose secrecy rules apply: the link's own and, for a symlink, its target's.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(file_name(&self.rel)).chain(self.link_target.as_deref().map(file_name))
    }
}

pub(crate) fn file_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// Candidates (sorted by path) plus what was left out with a reportable reason.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    pub candidates: Vec<Candidate>,
    pub excluded: Vec<Excluded>,
}

/// The caller's globs, matched against forward-slash relative paths. `*` crosses `/`, so
/// `*.md` means "any markdown file at any depth"; `docs/**` means everything under `docs`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Globs {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl Globs {
    pub(crate) fn new(include: &[String], exclude: &[String]) -> Result<Self, WorkspaceError> {
        Ok(Globs {
            include: build_set("include", include)?,
            exclude: build_set("exclude", exclude)?,
        })
    }
}

fn build_set(kind: &'static str, patterns: &[String]) -> Result<Option<GlobSet>, WorkspaceError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let glob = GlobBuilder::new(p.trim_end_matches('/'))
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| WorkspaceError::Pattern {
                kind,
                pattern: p.clone(),
                message: e.kind().to_string(),
            })?;
        b.add(glob);
    }
    let set = b.build().map_err(|e| WorkspaceError::Pattern {
        kind,
        pattern: patterns.join(", "),
        message: e.to_string(),
    })?;
    Ok(Some(set))
}

/// Root-relative, forward-slash form of `path`; `None` for non-UTF-8 names.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let mut out = String::new();
    for comp in rel.components() {
        if let Component::Normal(part) = comp {
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(part.to_str()?);
        }
    }
    Some(out)
}

/// `Some(reason)` if the built-in list prunes this directory.
fn builtin_dir_reason(dir: &Path, name: &str) -> Option<String> {
    if let Some((n, what)) = BUILTIN_DIRS.iter().find(|(n, _)| *n == name) {
        return Some(format!("built-in exclude: {n}/ ({what})"));
    }
    // A virtualenv can have any name; `pyvenv.cfg` at its top is the reliable marker.
    if dir.join("pyvenv.cfg").is_file() {
        return Some("built-in exclude: python virtualenv (contains pyvenv.cfg)".to_string());
    }
    None
}

/// Walks `root` and returns the sorted candidates.
///
/// `max_candidates` bounds memory on a runaway tree: once that many files are seen the walk
/// stops and the file-count cap error is returned (with contributors) right away.
pub(crate) fn walk(
    root: &WorkspaceRoot,
    globs: &Globs,
    max_files: usize,
) -> Result<Walked, WorkspaceError> {
    let root_path: Arc<PathBuf> = Arc::new(root.path().to_path_buf());
    let pruned: Arc<Mutex<Vec<Excluded>>> = Arc::default();
    let exclude = globs.exclude.clone().map(Arc::new);

    let mut builder = WalkBuilder::new(root.path());
    builder
        .hidden(false) // .github/, .gitignore, .eslintrc… are source
        .ignore(false) // ripgrep's `.ignore` files are not a git convention
        .git_ignore(true)
        .git_exclude(true)
        .git_global(true)
        .require_git(false) // honour .gitignore in a tree that is not (yet) a repository
        .parents(false) // the root is the boundary; a parent's .gitignore is not ours
        .follow_links(false)
        .threads(2);
    builder.add_custom_ignore_filename(CUSTOM_IGNORE_FILENAME);
    {
        let root_path = Arc::clone(&root_path);
        let pruned = Arc::clone(&pruned);
        // Runs after the ignore rules, so a directory that is already gitignored is skipped
        // without being reported here. Returning false prunes the whole subtree.
        builder.filter_entry(move |entry: &DirEntry| {
            if entry.depth() == 0 {
                return true;
            }
            let name = entry.file_name().to_string_lossy();
            if VCS_DIRS.contains(&name.as_ref()) {
                return false;
            }
            let Some(rel) = relative(&root_path, entry.path()) else {
                return true; // reported as InvalidName by the visitor
            };
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            if let Some(set) = &exclude
                && set.is_match(&rel)
            {
                return false;
            }
            if is_dir && let Some(reason) = builtin_dir_reason(entry.path(), &name) {
                let mut list = pruned.lock().unwrap_or_else(|p| p.into_inner());
                list.push(Excluded {
                    path: format!("{rel}/"),
                    reason,
                    kind: ExcludeKind::BuiltinDir,
                });
                return false;
            }
            true
        });
    }

    let candidates: Mutex<Vec<Candidate>> = Mutex::default();
    let excluded: Mutex<Vec<Excluded>> = Mutex::default();
    let seen = AtomicUsize::new(0);
    let overflow = AtomicBool::new(false);
    let limit = max_files.saturating_mul(2).saturating_add(1000);

    builder.build_parallel().run(|| {
        let root_path = Arc::clone(&root_path);
        let (candidates, excluded, seen, overflow) = (&candidates, &excluded, &seen, &overflow);
        Box::new(move |result| {
            let outcome = match result {
                Ok(entry) => visit(&root_path, &entry),
                Err(err) => walk_error(&root_path, err),
            };
            match outcome {
                Some(Ok(c)) => {
                    candidates.lock().unwrap_or_else(|p| p.into_inner()).push(c);
                    if seen.fetch_add(1, Ordering::Relaxed) + 1 > limit {
                        overflow.store(true, Ordering::Relaxed);
                        return WalkState::Quit;
                    }
                }
                Some(Err(e)) => excluded.lock().unwrap_or_else(|p| p.into_inner()).push(e),
                None => {}
            }
            WalkState::Continue
        })
    });

    let mut candidates = candidates.into_inner().unwrap_or_else(|p| p.into_inner());
    if overflow.load(Ordering::Relaxed) {
        let count = candidates.len();
        return Err(WorkspaceError::FileCountCap {
            cap: max_files,
            count,
            contributors: contributors_by_files(
                candidates.iter().map(|c| (c.rel.as_str(), c.size)),
            ),
        });
    }
    let mut excluded = excluded.into_inner().unwrap_or_else(|p| p.into_inner());
    excluded.extend(pruned.lock().unwrap_or_else(|p| p.into_inner()).drain(..));
    candidates.sort_by(|a, b| a.rel.cmp(&b.rel));

    // Symlinks are only packed if their target is a packable regular file (see module docs).
    let regular: HashSet<&str> = candidates
        .iter()
        .filter(|c| c.link_target.is_none())
        .map(|c| c.rel.as_str())
        .collect();
    let mut drop_links = HashSet::new();
    for c in candidates.iter() {
        let Some(target) = &c.link_target else {
            continue;
        };
        if let Some(reason) = secret_by_name(file_name(target)) {
            drop_links.insert(c.rel.clone());
            excluded.push(Excluded {
                path: c.rel.clone(),
                reason: format!("symlink target {target} is a secret: {reason}"),
                kind: ExcludeKind::Secret,
            });
        } else if !regular.contains(target.as_str()) {
            drop_links.insert(c.rel.clone());
            excluded.push(Excluded {
                path: c.rel.clone(),
                reason: format!("symlink target {target} is not packed (ignored or excluded)"),
                kind: ExcludeKind::Symlink,
            });
        }
    }
    candidates.retain(|c| !drop_links.contains(&c.rel));

    // Include globs narrow the set last, so they cannot re-admit anything pruned above.
    if let Some(set) = &globs.include {
        candidates.retain(|c| set.is_match(&c.rel));
    }
    excluded.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Walked {
        candidates,
        excluded,
    })
}

/// Classifies one walked entry: a candidate, a reportable exclusion, or nothing (directories).
fn visit(root: &Path, entry: &DirEntry) -> Option<Result<Candidate, Excluded>> {
    if entry.depth() == 0 {
        return None;
    }
    let file_type = entry.file_type()?;
    if file_type.is_dir() {
        return None;
    }
    let Some(rel) = relative(root, entry.path()) else {
        return Some(Err(Excluded {
            path: entry.path().to_string_lossy().into_owned(),
            reason: "file name is not valid UTF-8".into(),
            kind: ExcludeKind::InvalidName,
        }));
    };
    let excluded = |kind, reason: &str| {
        Some(Err(Excluded {
            path: rel.clone(),
            reason: reason.to_string(),
            kind,
        }))
    };
    if file_type.is_file() {
        return match entry.metadata() {
            Ok(md) => Some(Ok(Candidate {
                disk: entry.path().to_path_buf(),
                size: md.len(),
                link_target: None,
                rel,
            })),
            Err(e) => excluded(ExcludeKind::Unreadable, &format!("failed to read: {e}")),
        };
    }
    if !file_type.is_symlink() {
        return excluded(
            ExcludeKind::NotRegular,
            "not a regular file (socket, fifo or device)",
        );
    }
    // canonicalize resolves the whole chain; the kernel's ELOOP bounds a loop.
    let target = match std::fs::canonicalize(entry.path()) {
        Ok(t) => t,
        Err(_) => {
            return excluded(
                ExcludeKind::Symlink,
                "symlink cannot be resolved (dangling or a loop)",
            );
        }
    };
    if !target.starts_with(root) {
        return excluded(
            ExcludeKind::SymlinkOutside,
            "symlink points outside the workspace root",
        );
    }
    let Some(target_rel) = relative(root, &target) else {
        return excluded(
            ExcludeKind::InvalidName,
            "symlink target name is not valid UTF-8",
        );
    };
    match std::fs::metadata(&target) {
        Ok(md) if md.is_file() => Some(Ok(Candidate {
            rel,
            disk: target,
            size: md.len(),
            link_target: Some(target_rel),
        })),
        Ok(md) if md.is_dir() => excluded(
            ExcludeKind::Symlink,
            "symlink to a directory is not followed",
        ),
        Ok(_) => excluded(
            ExcludeKind::NotRegular,
            "symlink to something that is not a regular file",
        ),
        Err(e) => excluded(ExcludeKind::Unreadable, &format!("failed to read: {e}")),
    }
}

/// Walk errors: an unreadable directory is reported as excluded (the pack continues, but not
/// silently); anything else (a malformed ignore file line, say) is only logged.
fn walk_error(root: &Path, err: ignore::Error) -> Option<Result<Candidate, Excluded>> {
    fn path_of(err: &ignore::Error) -> Option<&Path> {
        match err {
            ignore::Error::WithPath { path, .. } => Some(path),
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
                path_of(err)
            }
            _ => None,
        }
    }
    tracing::warn!(error = %err, "workspace walk error");
    let kind = err.io_error()?.kind();
    let path = path_of(&err)?;
    let rel = relative(root, path).unwrap_or_else(|| path.to_string_lossy().into_owned());
    Some(Err(Excluded {
        path: rel,
        reason: format!("failed to read: {kind}"),
        kind: ExcludeKind::Unreadable,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_forward_slash_paths_at_any_depth() {
        let g = Globs::new(&["src/**".into(), "*.md".into()], &["docs/".into()]).unwrap();
        let inc = g.include.as_ref().unwrap();
        assert!(inc.is_match("src/a/b.rs"));
        assert!(inc.is_match("README.md") && inc.is_match("deep/er/x.md"));
        assert!(!inc.is_match("lib/a.rs"));
        // A trailing slash is accepted and names the directory itself.
        assert!(g.exclude.as_ref().unwrap().is_match("docs"));
        assert!(Globs::new(&[], &[]).unwrap().include.is_none());
        let e = Globs::new(&["a/{b".into()], &[]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid include pattern \"a/{b\""),
            "{e}"
        );
    }

    #[test]
    fn relative_paths_use_forward_slashes() {
        let root = Path::new("/w");
        assert_eq!(
            relative(root, Path::new("/w/a/b c/d.rs")).unwrap(),
            "a/b c/d.rs"
        );
        assert_eq!(relative(root, Path::new("/w")).unwrap(), "");
        assert!(relative(root, Path::new("/elsewhere/x")).is_none());
        assert_eq!(file_name("a/b/c.txt"), "c.txt");
        assert_eq!(file_name("top"), "top");
    }

    #[test]
    fn builtin_directories_and_virtualenv_marker() {
        let t = tempfile::tempdir().unwrap();
        let plain = t.path().join("tools");
        let venv = t.path().join("whatever-env");
        std::fs::create_dir_all(&plain).unwrap();
        std::fs::create_dir_all(&venv).unwrap();
        std::fs::write(venv.join("pyvenv.cfg"), "home = /usr\n").unwrap();
        assert_eq!(builtin_dir_reason(&plain, "tools"), None);
        let r = builtin_dir_reason(&venv, "whatever-env").unwrap();
        assert!(r.contains("pyvenv.cfg"), "{r}");
        for name in [
            "node_modules",
            "target",
            "dist",
            "build",
            "__pycache__",
            ".venv",
            "venv",
        ] {
            let r = builtin_dir_reason(&plain, name).unwrap();
            assert!(r.starts_with(&format!("built-in exclude: {name}/")), "{r}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlink_candidates_expose_both_names() {
        let c = Candidate {
            rel: "src/settings".into(),
            disk: PathBuf::from("/w/.env"),
            size: 3,
            link_target: Some(".env".into()),
        };
        let names: Vec<&str> = c.names().collect();
        assert_eq!(names, ["settings", ".env"]);
    }
}

//! Turning a tool's `path` argument into a project directory inside the workspace.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PathError {
    #[error(
        "no workspace is known: pass `path` as an absolute project directory, or start testrelay with --workspace (IDE configs pass ${{workspaceFolder}})"
    )]
    NoWorkspace,
    #[error("path {0} does not exist or is not a directory")]
    NotADirectory(String),
    #[error("path {path} is outside the workspace {workspace}; pass a directory inside it")]
    OutsideWorkspace { path: String, workspace: String },
    #[error(
        "refusing to use {0} as a project directory: it is the filesystem root or the home directory"
    )]
    TooBroad(String),
}

fn canonical_dir(p: &Path) -> Result<PathBuf, PathError> {
    let c = p
        .canonicalize()
        .map_err(|_| PathError::NotADirectory(p.display().to_string()))?;
    if c.is_dir() {
        Ok(c)
    } else {
        Err(PathError::NotADirectory(p.display().to_string()))
    }
}

/// Resolve a project directory. Returns the directory and the workspace root (if any)
/// that searches for toolchains stop at.
///
/// Order: the argument (relative paths against the workspace); the configured workspace;
/// the current directory unless it is `/` or the home directory.
pub fn resolve_project_dir(
    arg: Option<&str>,
    workspace: Option<&Path>,
    cwd: Option<&Path>,
    home: Option<&Path>,
) -> Result<(PathBuf, Option<PathBuf>), PathError> {
    let too_broad = |p: &Path| p.parent().is_none() || Some(p) == home;
    let workspace = workspace.map(canonical_dir).transpose()?;
    let fallback = || -> Result<PathBuf, PathError> {
        let cwd = cwd.ok_or(PathError::NoWorkspace)?;
        let cwd = canonical_dir(cwd)?;
        if too_broad(&cwd) {
            Err(PathError::NoWorkspace)
        } else {
            Ok(cwd)
        }
    };
    let arg = arg.map(str::trim).filter(|a| !a.is_empty());
    let Some(arg) = arg else {
        let dir = match &workspace {
            Some(w) => w.clone(),
            None => fallback()?,
        };
        return Ok((dir, workspace));
    };
    let raw = Path::new(arg);
    let base = match (&workspace, raw.is_absolute()) {
        (_, true) => None,
        (Some(w), false) => Some(w.clone()),
        (None, false) => Some(fallback()?),
    };
    let dir = canonical_dir(
        &base
            .as_deref()
            .map_or_else(|| raw.to_path_buf(), |b| b.join(raw)),
    )?;
    let root = workspace.clone().or(base);
    if let Some(root) = &root
        && !dir.starts_with(root)
    {
        return Err(PathError::OutsideWorkspace {
            path: dir.display().to_string(),
            workspace: root.display().to_string(),
        });
    }
    if root.is_none() && too_broad(&dir) {
        return Err(PathError::TooBroad(dir.display().to_string()));
    }
    Ok((dir, workspace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside_the_workspace() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ws.path().join("pkg/tests")).unwrap();
        let root = ws.path().canonicalize().unwrap();
        let (dir, stop) = resolve_project_dir(Some("pkg"), Some(ws.path()), None, None).unwrap();
        assert_eq!(
            (dir, stop.as_deref()),
            (root.join("pkg"), Some(root.as_path()))
        );
        let escape = resolve_project_dir(Some("../"), Some(&root.join("pkg")), None, None);
        assert!(matches!(escape, Err(PathError::OutsideWorkspace { .. })));
        let abs_outside = resolve_project_dir(Some("/tmp"), Some(&root), None, None);
        assert!(matches!(
            abs_outside,
            Err(PathError::OutsideWorkspace { .. })
        ));
        let missing = resolve_project_dir(Some("nope"), Some(&root), None, None);
        assert!(matches!(missing, Err(PathError::NotADirectory(_))));
    }

    #[test]
    fn without_a_workspace_cwd_is_used_unless_it_is_home_or_root() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().canonicalize().unwrap();
        std::fs::create_dir(home.join("proj")).unwrap();
        let (dir, stop) =
            resolve_project_dir(None, None, Some(&home.join("proj")), Some(&home)).unwrap();
        assert_eq!((dir, stop), (home.join("proj"), None));
        assert_eq!(
            resolve_project_dir(None, None, Some(&home), Some(&home)),
            Err(PathError::NoWorkspace)
        );
        assert_eq!(
            resolve_project_dir(None, None, Some(Path::new("/")), None),
            Err(PathError::NoWorkspace)
        );
        assert!(matches!(
            resolve_project_dir(Some("/"), None, None, None),
            Err(PathError::TooBroad(_))
        ));
        let (dir, _) = resolve_project_dir(
            Some(home.join("proj").to_str().unwrap()),
            None,
            Some(Path::new("/")),
            Some(&home),
        )
        .unwrap();
        assert_eq!(dir, home.join("proj"));
    }
}

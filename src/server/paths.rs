//! Turning a tool's `path` argument into a project directory inside the workspace, with
//! the root policy of [`crate::workspace`] (never `/` or the home directory, no escapes).

use std::path::{Path, PathBuf};

use crate::workspace::{WorkspaceError, WorkspaceRoot};

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error(
        "no workspace is known: pass `path` as an absolute project directory, or start testrelay with --workspace (IDE configs pass ${{workspaceFolder}})"
    )]
    NoWorkspace,
    #[error("path {0} is not a directory")]
    NotADirectory(String),
    #[error("{0}")]
    Workspace(#[from] WorkspaceError),
}

/// Resolve a project directory. Returns the directory and the workspace root (if one is
/// configured) that searches for toolchains stop at.
///
/// Order: the argument (relative paths against the workspace, else the current
/// directory); the configured workspace; the current directory unless it is `/` or home.
pub fn resolve_project_dir(
    arg: Option<&str>,
    workspace: Option<&Path>,
    cwd: Option<&Path>,
    home: Option<&Path>,
) -> Result<(PathBuf, Option<PathBuf>), PathError> {
    let configured = workspace
        .map(|w| WorkspaceRoot::open(w, home))
        .transpose()?;
    let cwd_root = || -> Result<WorkspaceRoot, PathError> {
        cwd.and_then(|c| WorkspaceRoot::open(c, home).ok())
            .ok_or(PathError::NoWorkspace)
    };
    let arg = arg.map(str::trim).filter(|a| !a.is_empty());
    let dir = match (arg, &configured) {
        (None, Some(root)) => root.path().to_path_buf(),
        (None, None) => cwd_root()?.path().to_path_buf(),
        (Some(a), Some(root)) => root.resolve_inside(a)?,
        (Some(a), None) if Path::new(a).is_absolute() => WorkspaceRoot::open(Path::new(a), home)?
            .path()
            .to_path_buf(),
        (Some(a), None) => cwd_root()?.resolve_inside(a)?,
    };
    if !dir.is_dir() {
        return Err(PathError::NotADirectory(dir.display().to_string()));
    }
    Ok((dir, configured.map(|r| r.path().to_path_buf())))
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
        assert!(matches!(
            escape,
            Err(PathError::Workspace(WorkspaceError::OutsideRoot { .. }))
        ));
        let abs_outside = resolve_project_dir(Some("/tmp"), Some(&root), None, None);
        assert!(matches!(
            abs_outside,
            Err(PathError::Workspace(WorkspaceError::OutsideRoot { .. }))
        ));
        let missing = resolve_project_dir(Some("nope"), Some(&root), None, None);
        assert!(
            matches!(missing, Err(PathError::NotADirectory(_))),
            "{missing:?}"
        );
    }

    #[test]
    fn without_a_workspace_cwd_is_used_unless_it_is_home_or_root() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().canonicalize().unwrap();
        std::fs::create_dir(home.join("proj")).unwrap();
        let (dir, stop) =
            resolve_project_dir(None, None, Some(&home.join("proj")), Some(&home)).unwrap();
        assert_eq!((dir, stop), (home.join("proj"), None));
        assert!(matches!(
            resolve_project_dir(None, None, Some(&home), Some(&home)),
            Err(PathError::NoWorkspace)
        ));
        assert!(matches!(
            resolve_project_dir(None, None, Some(Path::new("/")), None),
            Err(PathError::NoWorkspace)
        ));
        let root = resolve_project_dir(Some("/"), None, None, None);
        assert!(matches!(
            root,
            Err(PathError::Workspace(
                WorkspaceError::RootIsFilesystemRoot { .. }
            ))
        ));
        let abs = home.join("proj");
        let (dir, _) = resolve_project_dir(
            Some(abs.to_str().unwrap()),
            None,
            Some(Path::new("/")),
            Some(&home),
        )
        .unwrap();
        assert_eq!(dir, home.join("proj"));
    }
}

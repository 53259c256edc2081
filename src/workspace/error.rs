//! The one error type of the workspace module.
//!
//! Owns: [`WorkspaceError`] and the formatting of its messages. Messages are lowercase
//! fragments that name the path involved, so the MCP layer can wrap them ("pack failed: …")
//! without rewording. Must not: carry file *contents* of any kind (a secret must never leak
//! into an error), print anything, or depend on the callers' error types.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

use serde::Serialize;

/// A top-level directory (or a top-level file) and how much it contributes to the packed set.
/// Used to explain cap errors: the user needs to know *what* to exclude, not just that a cap hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contributor {
    /// Forward-slash path relative to the root; directories end in `/`.
    pub path: String,
    pub bytes: u64,
    pub files: u64,
}

/// Everything that can go wrong while resolving a root, walking it, or packing it.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("failed to read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to compress {}: {source}", path.display())]
    Compress {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "archive would need zip64 ({entries} entries, {bytes} bytes or more); lower max_files or max_total_bytes"
    )]
    ArchiveTooLarge { entries: usize, bytes: u64 },

    #[error("workspace root {} does not exist or is not a directory", path.display())]
    RootNotADirectory { path: PathBuf },

    #[error("workspace root {} is the home directory; pass an explicit path", path.display())]
    RootIsHome { path: PathBuf },

    #[error("workspace root {} is the filesystem root; pass an explicit path", path.display())]
    RootIsFilesystemRoot { path: PathBuf },

    #[error(
        "no workspace root: no explicit path, configured root, client root or working directory; pass an explicit path"
    )]
    NoRoot,

    #[error("path {path} is outside the workspace {}", root.display())]
    OutsideRoot { path: String, root: PathBuf },

    #[error("invalid {kind} pattern {pattern:?}: {message}")]
    Pattern {
        kind: &'static str,
        pattern: String,
        message: String,
    },

    #[error(
        "total size cap of {cap} bytes exceeded ({total} bytes or more would be packed): biggest contributors: {}; exclude some of them or raise the cap",
        format_contributors(contributors, ByWhat::Bytes)
    )]
    TotalSizeCap {
        cap: u64,
        total: u64,
        contributors: Vec<Contributor>,
    },

    #[error(
        "file count cap of {cap} files exceeded ({count} files or more would be packed): biggest contributors: {}; exclude some of them or raise the cap",
        format_contributors(contributors, ByWhat::Files)
    )]
    FileCountCap {
        cap: usize,
        count: usize,
        contributors: Vec<Contributor>,
    },
}

impl WorkspaceError {
    pub(crate) fn read(path: impl Into<PathBuf>, source: io::Error) -> Self {
        WorkspaceError::Read {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn write(path: impl Into<PathBuf>, source: io::Error) -> Self {
        WorkspaceError::Write {
            path: path.into(),
            source,
        }
    }
}

#[derive(Clone, Copy)]
enum ByWhat {
    Bytes,
    Files,
}

/// Renders bytes the way people read sizes in an error: one decimal, SI megabytes.
pub(crate) fn human_mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

fn format_contributors(list: &[Contributor], by: ByWhat) -> String {
    if list.is_empty() {
        return "(none recorded)".to_string();
    }
    let mut out = String::new();
    for (i, c) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        // Writing to a String cannot fail.
        let _ = match by {
            ByWhat::Bytes => write!(out, "{} ({})", c.path, human_mb(c.bytes)),
            ByWhat::Files => write!(out, "{} ({} files, {})", c.path, c.files, human_mb(c.bytes)),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contributors() -> Vec<Contributor> {
        vec![
            Contributor {
                path: "assets/".into(),
                bytes: 52_400_000,
                files: 12,
            },
            Contributor {
                path: "big.bin".into(),
                bytes: 3_000_000,
                files: 1,
            },
        ]
    }

    #[test]
    fn size_cap_message_names_contributors_in_order() {
        let e = WorkspaceError::TotalSizeCap {
            cap: 1000,
            total: 55_400_000,
            contributors: contributors(),
        };
        let msg = e.to_string();
        assert!(
            msg.starts_with("total size cap of 1000 bytes exceeded"),
            "{msg}"
        );
        assert!(
            msg.contains("biggest contributors: assets/ (52.4 MB), big.bin (3.0 MB)"),
            "{msg}"
        );
    }

    #[test]
    fn count_cap_message_lists_file_counts() {
        let e = WorkspaceError::FileCountCap {
            cap: 10,
            count: 13,
            contributors: contributors(),
        };
        let msg = e.to_string();
        assert!(msg.contains("file count cap of 10 files exceeded"), "{msg}");
        assert!(msg.contains("assets/ (12 files, 52.4 MB)"), "{msg}");
    }

    #[test]
    fn root_messages_name_the_path_and_ask_for_an_explicit_one() {
        let e = WorkspaceError::RootIsHome {
            path: PathBuf::from("/home/dev"),
        };
        assert_eq!(
            e.to_string(),
            "workspace root /home/dev is the home directory; pass an explicit path"
        );
        let e = WorkspaceError::read("/x/y", io::Error::from(io::ErrorKind::NotFound));
        assert!(e.to_string().starts_with("failed to read /x/y: "));
    }
}

//! The result types of a scan or pack, and the bookkeeping that produces them.
//!
//! Owns: [`Listing`], [`FileEntry`], [`Excluded`], [`ExcludeKind`], [`ArchiveSummary`], the
//! manifest JSON, the per-top-level-entry totals, and the cap checks with their
//! "biggest contributors" explanation. Must not: touch the filesystem, decide *whether* a file
//! is packed (that is `archive.rs`, fed by `filter.rs` and `secrets.rs`), or hold file contents.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::error::{Contributor, WorkspaceError};

/// Why a file the walker saw is not in the archive. Files hidden by `.gitignore`,
/// `.testrelayignore` or the caller's exclude globs are not reported: the user asked for that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExcludeKind {
    /// A secret by name or by content.
    Secret,
    /// Over the per-file size cap.
    TooLarge,
    /// Binary content that is not a kept asset type.
    Binary,
    /// A symlink whose target lies outside the root.
    SymlinkOutside,
    /// Any other symlink that is not packed (to a directory, dangling, looping, or to a
    /// target that is itself not packed).
    Symlink,
    /// A directory pruned by the built-in list (`node_modules`, virtualenvs, build output, …).
    BuiltinDir,
    /// Sockets, FIFOs, devices.
    NotRegular,
    /// A path that is not valid UTF-8 and so cannot be named portably in a ZIP.
    InvalidName,
    /// Vanished or unreadable between the walk and the read, or an unreadable directory.
    Unreadable,
}

/// One excluded path and a human-readable reason. Never carries file content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excluded {
    /// Forward-slash path relative to the root; directories end in `/`.
    pub path: String,
    pub reason: String,
    pub kind: ExcludeKind,
}

/// One packed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// Forward-slash path relative to the root; also the ZIP entry name.
    pub path: String,
    /// Bytes actually read (and archived), not the size the walk saw.
    pub size: u64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    /// False for kept binary assets (images).
    pub text: bool,
    /// Rough LLM token count, see [`estimate_tokens`].
    pub est_tokens: u64,
}

/// What a scan found, and exactly what a pack of the same tree writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    /// Sorted by path (byte order), the same order as the ZIP entries.
    pub files: Vec<FileEntry>,
    /// Sorted by path.
    pub excluded: Vec<Excluded>,
    pub total_bytes: u64,
    pub est_tokens: u64,
    /// Bytes per top-level entry (directories end in `/`), biggest first, at most
    /// [`TOP_DIRS_SHOWN`]: tells an agent where the bulk is.
    pub top_dirs: Vec<(String, u64)>,
}

/// How many entries `Listing::top_dirs` keeps.
pub const TOP_DIRS_SHOWN: usize = 20;
/// How many contributors a cap error names.
pub const CONTRIBUTORS_SHOWN: usize = 5;

/// The result of writing an archive.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveSummary {
    /// Where the archive now is (after the atomic rename).
    pub path: PathBuf,
    pub archive_bytes: u64,
    /// Lowercase hex SHA-256 of the archive file.
    pub archive_sha256: String,
    /// Exactly the entries in the archive, plus what was left out and why.
    pub listing: Listing,
}

impl ArchiveSummary {
    /// The manifest (paths, sizes, sha256) of the archived files; kept out of the ZIP itself so
    /// the archive stays a plain copy of the workspace.
    pub fn to_manifest_json(&self) -> String {
        self.listing.to_manifest_json()
    }
}

#[derive(Serialize)]
struct Manifest<'a> {
    file_count: usize,
    total_bytes: u64,
    files: Vec<ManifestFile<'a>>,
}

#[derive(Serialize)]
struct ManifestFile<'a> {
    path: &'a str,
    size: u64,
    sha256: &'a str,
}

impl Listing {
    /// `{"file_count":N,"total_bytes":N,"files":[{"path","size","sha256"},…]}` in ZIP order.
    pub fn to_manifest_json(&self) -> String {
        let manifest = Manifest {
            file_count: self.files.len(),
            total_bytes: self.total_bytes,
            files: self
                .files
                .iter()
                .map(|f| ManifestFile {
                    path: &f.path,
                    size: f.size,
                    sha256: &f.sha256,
                })
                .collect(),
        };
        serde_json::to_string(&manifest).expect("manifest serializes")
    }

    /// The whole listing as JSON (what `pack --dry-run --json` prints).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("listing serializes")
    }
}

/// Token estimate for a text file: one token per 4 bytes, rounded up. This is the usual rule
/// of thumb for English prose and code with BPE tokenizers; it is meant for budgeting ("this
/// workspace is ~2M tokens"), not billing. Binary assets count 0.
pub fn estimate_tokens(size: u64, text: bool) -> u64 {
    if text { size.div_ceil(4) } else { 0 }
}

/// The top-level entry a path belongs to: `src/` for `src/a/b.rs`, `README.md` for itself.
pub(crate) fn top_level(path: &str) -> String {
    match path.split_once('/') {
        Some((first, _)) => format!("{first}/"),
        None => path.to_string(),
    }
}

/// Groups `(path, size)` pairs by top-level entry.
fn group_top_level<'a>(items: impl Iterator<Item = (&'a str, u64)>) -> Vec<Contributor> {
    let mut map: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (path, size) in items {
        let e = map.entry(top_level(path)).or_default();
        e.0 += size;
        e.1 += 1;
    }
    map.into_iter()
        .map(|(path, (bytes, files))| Contributor { path, bytes, files })
        .collect()
}

/// The biggest contributors by bytes (ties broken by path for determinism).
pub(crate) fn contributors_by_bytes<'a>(
    items: impl Iterator<Item = (&'a str, u64)>,
) -> Vec<Contributor> {
    let mut all = group_top_level(items);
    all.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    all.truncate(CONTRIBUTORS_SHOWN);
    all
}

/// The biggest contributors by file count.
pub(crate) fn contributors_by_files<'a>(
    items: impl Iterator<Item = (&'a str, u64)>,
) -> Vec<Contributor> {
    let mut all = group_top_level(items);
    all.sort_by(|a, b| b.files.cmp(&a.files).then_with(|| a.path.cmp(&b.path)));
    all.truncate(CONTRIBUTORS_SHOWN);
    all
}

/// Accumulates decisions in path order and enforces the caps as it goes.
///
/// Caps are checked on every inclusion so a too-big workspace fails early; the error explains
/// it with the files included so far *plus* the ones still pending (by their walked size),
/// because "what would have gone in" is what the user needs to trim.
pub(crate) struct Collector {
    max_total_bytes: u64,
    max_files: usize,
    files: Vec<FileEntry>,
    excluded: Vec<Excluded>,
    total_bytes: u64,
}

impl Collector {
    pub(crate) fn new(max_total_bytes: u64, max_files: usize) -> Self {
        Collector {
            max_total_bytes,
            max_files,
            files: Vec::new(),
            excluded: Vec::new(),
            total_bytes: 0,
        }
    }

    pub(crate) fn exclude(&mut self, e: Excluded) {
        self.excluded.push(e);
    }

    /// Adds `entry`; `pending` yields `(path, size)` of candidates not yet decided.
    pub(crate) fn include<'a>(
        &mut self,
        entry: FileEntry,
        pending: impl Iterator<Item = (&'a str, u64)>,
    ) -> Result<(), WorkspaceError> {
        self.total_bytes += entry.size;
        self.files.push(entry);
        let over_size = self.total_bytes > self.max_total_bytes;
        let over_count = self.files.len() > self.max_files;
        if !over_size && !over_count {
            return Ok(());
        }
        // Error path only: materialize included + pending for the explanation.
        let pending: Vec<(&str, u64)> = pending.collect();
        let all: Vec<(&str, u64)> = self.included().chain(pending.iter().copied()).collect();
        if over_size {
            Err(WorkspaceError::TotalSizeCap {
                cap: self.max_total_bytes,
                total: all.iter().map(|(_, s)| s).sum(),
                contributors: contributors_by_bytes(all.into_iter()),
            })
        } else {
            Err(WorkspaceError::FileCountCap {
                cap: self.max_files,
                count: all.len(),
                contributors: contributors_by_files(all.into_iter()),
            })
        }
    }

    fn included(&self) -> impl Iterator<Item = (&str, u64)> {
        self.files.iter().map(|f| (f.path.as_str(), f.size))
    }

    pub(crate) fn finish(mut self) -> Listing {
        self.excluded.sort_by(|a, b| a.path.cmp(&b.path));
        let mut top = group_top_level(self.included());
        top.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
        top.truncate(TOP_DIRS_SHOWN);
        Listing {
            est_tokens: self.files.iter().map(|f| f.est_tokens).sum(),
            total_bytes: self.total_bytes,
            top_dirs: top.into_iter().map(|c| (c.path, c.bytes)).collect(),
            files: self.files,
            excluded: self.excluded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, size: u64) -> FileEntry {
        FileEntry {
            path: path.into(),
            size,
            sha256: "00".repeat(32),
            text: true,
            est_tokens: estimate_tokens(size, true),
        }
    }

    #[test]
    fn tokens_are_bytes_over_four_rounded_up_and_zero_for_binary() {
        assert_eq!(estimate_tokens(0, true), 0);
        assert_eq!(estimate_tokens(1, true), 1);
        assert_eq!(estimate_tokens(8, true), 2);
        assert_eq!(estimate_tokens(9, true), 3);
        assert_eq!(estimate_tokens(1000, false), 0);
    }

    #[test]
    fn collector_totals_and_top_dirs() {
        let mut c = Collector::new(1000, 10);
        for (p, s) in [
            ("README.md", 10),
            ("src/a.rs", 100),
            ("src/b/c.rs", 50),
            ("docs/x.md", 200),
        ] {
            c.include(entry(p, s), std::iter::empty()).unwrap();
        }
        c.exclude(Excluded {
            path: "b.pem".into(),
            reason: "r".into(),
            kind: ExcludeKind::Secret,
        });
        c.exclude(Excluded {
            path: "a.bin".into(),
            reason: "r".into(),
            kind: ExcludeKind::Binary,
        });
        let l = c.finish();
        assert_eq!(l.total_bytes, 360);
        assert_eq!(l.est_tokens, 3 + 25 + 13 + 50);
        assert_eq!(
            l.top_dirs,
            vec![
                ("docs/".to_string(), 200),
                ("src/".to_string(), 150),
                ("README.md".to_string(), 10)
            ]
        );
        let ex: Vec<&str> = l.excluded.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(ex, ["a.bin", "b.pem"]);
        let m: serde_json::Value = serde_json::from_str(&l.to_manifest_json()).unwrap();
        assert_eq!(m["file_count"], 4);
        assert_eq!(m["files"][1]["path"], "src/a.rs");
        assert_eq!(m["files"][1]["size"], 100);
    }

    #[test]
    fn size_cap_error_counts_pending_files_in_contributors() {
        let mut c = Collector::new(100, 10);
        c.include(entry("src/a.rs", 60), std::iter::empty())
            .unwrap();
        let pending = [("vendor/big.js", 5_000_000u64), ("src/b.rs", 10)];
        let e = c
            .include(
                entry("small.txt", 50),
                pending.iter().map(|(p, s)| (*p, *s)),
            )
            .unwrap_err();
        match &e {
            WorkspaceError::TotalSizeCap {
                cap,
                total,
                contributors,
            } => {
                assert_eq!(*cap, 100);
                assert_eq!(*total, 5_000_120);
                assert_eq!(contributors[0].path, "vendor/");
                assert_eq!(contributors[1].path, "src/");
                assert_eq!(contributors[1].files, 2);
            }
            other => panic!("unexpected {other}"),
        }
        assert!(
            e.to_string()
                .contains("biggest contributors: vendor/ (5.0 MB)"),
            "{e}"
        );
    }

    #[test]
    fn count_cap_error_ranks_by_file_count() {
        let mut c = Collector::new(u64::MAX, 2);
        c.include(entry("a/1", 1), std::iter::empty()).unwrap();
        c.include(entry("b/1", 1_000), std::iter::empty()).unwrap();
        let pending = [("a/2", 1u64), ("a/3", 1)];
        let e = c
            .include(entry("a/4", 1), pending.iter().map(|(p, s)| (*p, *s)))
            .unwrap_err();
        match e {
            WorkspaceError::FileCountCap {
                cap,
                count,
                contributors,
            } => {
                assert_eq!((cap, count), (2, 5));
                assert_eq!(contributors[0].path, "a/");
                assert_eq!(contributors[0].files, 4);
            }
            other => panic!("unexpected {other}"),
        }
    }
}

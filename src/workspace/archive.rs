//! Scanning and packing: one pipeline that decides what goes in, and a writer that writes it.
//!
//! Owns: [`PackOptions`], [`scan`] (dry run), [`write_archive`] and [`pack_to_dir`], the
//! per-file decisions that need content (size, binary, secret by content), SHA-256, which
//! formats are stored rather than deflated, and the atomic temp-file-then-rename. Must not:
//! walk the tree itself (`filter.rs`), know secret patterns (`secrets.rs`), lay out ZIP bytes
//! (`zipfmt.rs`), print anything, or leave a partial archive at the requested path.
//!
//! `scan` and `write_archive` run the *same* two functions (`plan`, then `execute`); the only
//! difference is whether each included file is also compressed and appended. Every included
//! file is read exactly once, and that one buffer is used for binary sniffing, secret
//! detection, hashing and compression, so the archive holds exactly the files the dry run
//! lists.
//!
//! Determinism: entries are in byte-sorted path order, every entry has the 1980-01-01 DOS
//! timestamp and mode 0644, no extra fields are written, and compression is a pure function of
//! the bytes. The same tree therefore gives a byte-identical ZIP whatever the mtimes.
//!
//! Throughput: files are read, hashed and deflated in parallel on rayon's pool in ordered
//! windows (at most [`WINDOW_FILES`] files or [`WINDOW_BYTES`] bytes), then appended in order
//! by the single-threaded [`ZipSink`]. Memory is bounded by one window of compressed output.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::error::{WorkspaceError, human_mb};
use super::filter::{self, Candidate, Globs};
use super::listing::{
    ArchiveSummary, Collector, ExcludeKind, Excluded, FileEntry, Listing, estimate_tokens,
};
use super::root::WorkspaceRoot;
use super::secrets::{secret_by_name, secret_in_content};
use super::zipfmt::{self, SinkError, ZipSink};

/// Files per parallel window.
pub const WINDOW_FILES: usize = 256;
/// Walked bytes per parallel window (bounds buffered compressed output).
pub const WINDOW_BYTES: u64 = 64 * 1024 * 1024;
/// How much of a file is sniffed for a NUL byte to call it binary (what git and grep do).
const SNIFF_BYTES: usize = 8 * 1024;

/// Image formats kept even though they are binary: UI code refers to them and the analysis
/// service can use them; the per-file cap still keeps huge ones out. Every other binary file
/// (executables, archives, fonts, databases, …) is skipped with reason "binary".
const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "gif", "webp", "avif", "ico", "bmp"];

/// Already-compressed formats: deflating them burns CPU for ~0 gain (measured: half the CPU of
/// packing a front-end repo at +0.4 % size), so they are stored.
const STORED_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "avif", "ico", "heic", "jxl", "woff", "woff2", "zip",
    "gz", "tgz", "bz2", "xz", "zst", "lz4", "br", "7z", "rar", "jar", "war", "whl", "apk", "wasm",
    "mp3", "mp4", "m4a", "ogg", "webm", "mov", "pdf", "docx", "xlsx", "pptx", "epub",
];

/// What to pack and the limits that apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackOptions {
    /// If non-empty, only files matching one of these globs are packed (it narrows, it never
    /// re-admits ignored or built-in-excluded files). Matched against forward-slash relative
    /// paths; `*` crosses `/`.
    pub include: Vec<String>,
    /// Files or directories matching any of these globs are left out (silently).
    pub exclude: Vec<String>,
    /// Larger files are skipped with reason; the default is 2 MiB.
    pub max_file_bytes: u64,
    /// Exceeding this is an error, never a truncated archive; the default is 100 MiB.
    pub max_total_bytes: u64,
    /// Exceeding this is an error; the default is 20 000.
    pub max_files: usize,
    /// Deflate level 1–9; 0 or less stores everything. The default is 6.
    pub compression_level: i64,
    /// Keep image files (see [`IMAGE_EXTENSIONS`]); the default is true.
    pub keep_images: bool,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            include: Vec::new(),
            exclude: Vec::new(),
            max_file_bytes: 2 * 1024 * 1024,
            max_total_bytes: 100 * 1024 * 1024,
            max_files: 20_000,
            compression_level: 6,
            keep_images: true,
        }
    }
}

/// Dry run: walks, reads and classifies everything exactly as [`write_archive`] would, without
/// writing. The returned listing is the archive's content.
pub fn scan(root: &WorkspaceRoot, opts: &PackOptions) -> Result<Listing, WorkspaceError> {
    execute::<std::io::Sink>(opts, plan(root, opts)?, None, &|_, _| {})
}

/// Writes the archive to `out` (atomically: a temp file in the same directory, renamed at the
/// end; on error nothing is left behind). `progress(done, total)` is called with file counts
/// after each window, from the calling thread.
pub fn write_archive(
    root: &WorkspaceRoot,
    opts: &PackOptions,
    out: &Path,
    progress: impl Fn(usize, usize) + Sync,
) -> Result<ArchiveSummary, WorkspaceError> {
    let dir = parent_dir(out);
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "workspace.zip".into());
    pack_into(root, opts, &dir, &name, |_| out.to_path_buf(), &progress)
}

/// Packs into `<dir>/workspace-<first 16 hex of the archive sha256>.zip`. The name is a content
/// address, so re-packing an unchanged tree yields the same file.
pub fn pack_to_dir(
    root: &WorkspaceRoot,
    opts: &PackOptions,
    dir: &Path,
) -> Result<ArchiveSummary, WorkspaceError> {
    pack_to_dir_with_progress(root, opts, dir, |_, _| {})
}

/// [`pack_to_dir`] with a progress callback as in [`write_archive`].
pub fn pack_to_dir_with_progress(
    root: &WorkspaceRoot,
    opts: &PackOptions,
    dir: &Path,
    progress: impl Fn(usize, usize) + Sync,
) -> Result<ArchiveSummary, WorkspaceError> {
    pack_into(
        root,
        opts,
        dir,
        "workspace.zip",
        |sha| dir.join(format!("workspace-{}.zip", &sha[..16])),
        &progress,
    )
}

fn parent_dir(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Deletes the temp file unless the pack succeeded and renamed it.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn create_temp(dir: &Path, name: &str) -> Result<(File, TempFile), WorkspaceError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match File::options().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((f, TempFile { path, keep: false })),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(WorkspaceError::write(path, e)),
        }
    }
}

fn pack_into(
    root: &WorkspaceRoot,
    opts: &PackOptions,
    dir: &Path,
    temp_stem: &str,
    final_path: impl FnOnce(&str) -> PathBuf,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<ArchiveSummary, WorkspaceError> {
    // Walk before the temp file exists, so an output directory inside the workspace never
    // sees its own half-written archive.
    let plan = plan(root, opts)?;
    let (file, mut temp) = create_temp(dir, temp_stem)?;
    let writer = HashingWriter {
        inner: BufWriter::with_capacity(256 * 1024, file),
        hasher: Sha256::new(),
        written: 0,
    };
    let mut sink = ZipSink::new(writer);
    let listing = execute(opts, plan, Some((&mut sink, &temp.path)), progress)?;
    let writer = sink.finish().map_err(|e| sink_error(e, &temp.path))?;
    let archive_sha256 = hex(&writer.hasher.finalize());
    let archive_bytes = writer.written;
    drop(writer.inner);
    let out = final_path(&archive_sha256);
    fs::rename(&temp.path, &out).map_err(|e| WorkspaceError::write(&out, e))?;
    temp.keep = true;
    Ok(ArchiveSummary {
        path: out,
        archive_bytes,
        archive_sha256,
        listing,
    })
}

/// Hashes the archive as it is written (the writer never seeks), so naming it by content
/// costs no second read.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn sink_error(e: SinkError, path: &Path) -> WorkspaceError {
    match e {
        SinkError::Io(source) => WorkspaceError::write(path, source),
        SinkError::Limit(l) => WorkspaceError::ArchiveTooLarge {
            entries: l.entries,
            bytes: l.bytes,
        },
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn extension(rel: &str) -> Option<String> {
    let name = filter::file_name(rel);
    name.rsplit_once('.')
        .filter(|(stem, _)| !stem.is_empty())
        .map(|(_, ext)| ext.to_ascii_lowercase())
}

fn is_image(rel: &str) -> bool {
    extension(rel).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

fn is_precompressed(rel: &str) -> bool {
    extension(rel).is_some_and(|e| STORED_EXTENSIONS.contains(&e.as_str()))
}

fn too_large(path: &str, size: u64, cap: u64) -> Excluded {
    Excluded {
        path: path.to_string(),
        reason: format!(
            "file is {} ({size} bytes), over the per-file cap of {cap} bytes",
            human_mb(size)
        ),
        kind: ExcludeKind::TooLarge,
    }
}

/// The walk plus every decision that needs no content: the first half of the shared pipeline.
struct Plan {
    collector: Collector,
    to_read: Vec<Candidate>,
}

fn plan(root: &WorkspaceRoot, opts: &PackOptions) -> Result<Plan, WorkspaceError> {
    let globs = Globs::new(&opts.include, &opts.exclude)?;
    let walked = filter::walk(root, &globs, opts.max_files)?;
    let mut collector = Collector::new(opts.max_total_bytes, opts.max_files);
    for e in walked.excluded {
        collector.exclude(e);
    }
    let mut to_read: Vec<Candidate> = Vec::with_capacity(walked.candidates.len());
    for c in walked.candidates {
        let secret_name = c.names().find_map(secret_by_name);
        if let Some(reason) = secret_name {
            collector.exclude(Excluded {
                path: c.rel,
                reason,
                kind: ExcludeKind::Secret,
            });
        } else if c.size > opts.max_file_bytes {
            collector.exclude(too_large(&c.rel, c.size, opts.max_file_bytes));
        } else {
            to_read.push(c);
        }
    }
    Ok(Plan { collector, to_read })
}

/// The second half: read, classify, hash and (with `sink`) compress and append, in order.
fn execute<W: Write>(
    opts: &PackOptions,
    plan: Plan,
    mut sink: Option<(&mut ZipSink<W>, &Path)>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Listing, WorkspaceError> {
    let Plan {
        mut collector,
        to_read,
    } = plan;
    let compress = sink.is_some();
    let total = to_read.len();
    progress(0, total);
    for window in windows(&to_read) {
        let start = window.start;
        let results: Vec<Result<Outcome, WorkspaceError>> = to_read[window.clone()]
            .par_iter()
            .map(|c| examine(c, opts, compress))
            .collect();
        for (i, result) in results.into_iter().enumerate() {
            match result? {
                Outcome::Excluded(e) => collector.exclude(e),
                Outcome::Included(entry, prepared) => {
                    let pending = to_read[start + i + 1..]
                        .iter()
                        .map(|c| (c.rel.as_str(), c.size));
                    collector.include(entry, pending)?;
                    if let (Some((zs, path)), Some(prepared)) = (sink.as_mut(), prepared) {
                        zs.add(&prepared).map_err(|e| sink_error(e, path))?;
                    }
                }
            }
        }
        progress(window.end, total);
    }
    Ok(collector.finish())
}

/// Ordered windows of at most `WINDOW_FILES` files and (unless one file alone exceeds it)
/// `WINDOW_BYTES` walked bytes.
fn windows(cands: &[Candidate]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0usize, 0u64);
    for (i, c) in cands.iter().enumerate() {
        if i > start && (i - start == WINDOW_FILES || bytes + c.size > WINDOW_BYTES) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += c.size;
    }
    if start < cands.len() {
        out.push(start..cands.len());
    }
    out
}

enum Outcome {
    Included(FileEntry, Option<zipfmt::Entry>),
    Excluded(Excluded),
}

/// Reads one candidate once and makes every content decision on that buffer.
fn examine(c: &Candidate, opts: &PackOptions, compress: bool) -> Result<Outcome, WorkspaceError> {
    let excluded = |kind, reason: String| {
        Ok(Outcome::Excluded(Excluded {
            path: c.rel.clone(),
            reason,
            kind,
        }))
    };
    // Bounded read: a file that grew past the cap since the walk (a live log) is not slurped.
    let mut data = Vec::with_capacity(c.size.min(opts.max_file_bytes) as usize + 1);
    let read =
        File::open(&c.disk).and_then(|f| f.take(opts.max_file_bytes + 1).read_to_end(&mut data));
    if let Err(e) = read {
        return excluded(
            ExcludeKind::Unreadable,
            format!("failed to read: {}", e.kind()),
        );
    }
    let size = data.len() as u64;
    if size > opts.max_file_bytes {
        return Ok(Outcome::Excluded(too_large(
            &c.rel,
            size,
            opts.max_file_bytes,
        )));
    }
    let image = opts.keep_images && is_image(&c.rel);
    let has_nul = data[..data.len().min(SNIFF_BYTES)].contains(&0);
    if has_nul && !image {
        return excluded(
            ExcludeKind::Binary,
            "binary file (NUL byte in the first 8 KiB)".into(),
        );
    }
    if let Some(reason) = c.names().find_map(|name| secret_in_content(name, &data)) {
        return excluded(ExcludeKind::Secret, reason);
    }
    let text = !image;
    let entry = FileEntry {
        path: c.rel.clone(),
        size,
        sha256: hex(&Sha256::digest(&data)),
        text,
        est_tokens: estimate_tokens(size, text),
    };
    let prepared = if compress {
        let store = is_precompressed(&c.rel);
        let entry =
            zipfmt::prepare(&c.rel, data, opts.compression_level, store).map_err(|source| {
                WorkspaceError::Compress {
                    path: c.disk.clone(),
                    source,
                }
            })?;
        Some(entry)
    } else {
        None
    };
    Ok(Outcome::Included(entry, prepared))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(rel: &str, size: u64) -> Candidate {
        Candidate {
            rel: rel.into(),
            disk: PathBuf::from(rel),
            size,
            link_target: None,
        }
    }

    #[test]
    fn windows_split_by_count_and_bytes_in_order() {
        let many: Vec<Candidate> = (0..600).map(|i| cand(&format!("f{i}"), 1)).collect();
        assert_eq!(windows(&many), vec![0..256, 256..512, 512..600]);
        let big = vec![
            cand("a", WINDOW_BYTES),
            cand("b", 1),
            cand("c", WINDOW_BYTES - 1),
        ];
        assert_eq!(windows(&big), vec![0..1, 1..3]);
        assert!(windows(&[]).is_empty());
    }

    #[test]
    fn extension_rules() {
        assert!(is_precompressed("assets/logo.PNG"));
        assert!(is_precompressed("lib/x.woff2"));
        assert!(!is_precompressed("src/main.rs"));
        assert!(!is_precompressed(".png")); // a dotfile named .png has no extension
        assert!(is_image("a/b.jpeg"));
        assert!(!is_image("a/b.woff"));
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }

    #[test]
    fn defaults_match_the_documented_limits() {
        let o = PackOptions::default();
        assert_eq!(o.max_file_bytes, 2 * 1024 * 1024);
        assert_eq!(o.max_total_bytes, 100 * 1024 * 1024);
        assert_eq!(o.max_files, 20_000);
        assert_eq!(o.compression_level, 6);
        assert!(o.keep_images && o.include.is_empty() && o.exclude.is_empty());
    }
}

//! Workspace packaging for testrelay: find the workspace root, walk it the way git would, drop
//! secrets and bulk, and write a deterministic ZIP for the hosted codebase-analysis service.
//!
//! This file only declares the submodules and re-exports the public API; the code lives in:
//!
//! * `root.rs`: choosing the root (explicit > configured > client roots > cwd), refusing
//!   `/` and `$HOME`, confining user-supplied paths;
//! * `filter.rs`: the `ignore`-crate walk, built-in directory excludes, include/exclude globs,
//!   symlink policy;
//! * `secrets.rs`: secret detection by file name and by content;
//! * `listing.rs`: result types, manifest JSON, token estimate, cap accounting;
//! * `archive.rs`: the shared scan/pack pipeline, parallel read/hash/deflate, atomic write;
//! * `zipfmt.rs`: the deterministic ZIP container writer and the per-thread deflater;
//! * `error.rs`: [`WorkspaceError`].
//!
//! # What ends up in the archive
//!
//! A file is packed when all of these hold:
//!
//! 1. the walk reaches it: not matched by `.gitignore` (at any depth, negations honoured, with
//!    or without a git repository), `.git/info/exclude`, the user's global git excludes, or a
//!    `.testrelayignore` file (same syntax, higher precedence); not under `.git/`;
//! 2. it is not under a built-in excluded directory (`node_modules`, `.venv`/`venv` or any
//!    directory holding `pyvenv.cfg`, `target`, `dist`, `build`, `__pycache__`, tool caches,
//!    `.next`, `.nuxt`, `.turbo`, `.gradle`, `.cache`, `coverage`), even if nothing ignores it;
//! 3. it matches the caller's include globs (if any) and none of the exclude globs;
//! 4. it is a regular file, or a symlink to a packed regular file inside the root;
//! 5. its name is not a secret name (`.env*` except templates, SSH/TLS keys, credential stores,
//!    Terraform state) and its content holds no recognisable secret (private keys, cloud and
//!    SaaS tokens, auth lines in `.npmrc`/`.pypirc`);
//! 6. it is at most `max_file_bytes`, and it is text (no NUL in its first 8 KiB) or an image.
//!
//! Every file the walk reached but left out (rules 2, 4, 5, 6) is reported in
//! [`Listing::excluded`] with a reason that names the rule, never the content. Ignored files
//! (rules 1 and 3) are not reported: the user asked for that.
//!
//! If the packed set exceeds `max_total_bytes` or `max_files`, packing fails with an error
//! naming the biggest top-level contributors; an archive is never silently truncated.
//!
//! # Determinism
//!
//! Same tree → byte-identical ZIP: sorted entries, 1980-01-01 timestamps, mode 0644, no extra
//! fields, deflate level fixed by [`PackOptions`]. The manifest (paths, sizes, SHA-256) is not
//! inside the ZIP; it comes back in [`ArchiveSummary`] and from [`Listing::to_manifest_json`].
//!
//! # Usage
//!
//! The example is not compiled as a doctest because the crate path differs between the
//! scratch crate and testrelay; in testrelay the module is `crate::workspace`.
//!
//! ```ignore
//! use std::path::Path;
//! use crate::workspace::{PackOptions, RootSources, pack_to_dir, resolve_root, scan};
//!
//! // Root: an explicit tool argument wins, then config, then the client's roots, then cwd.
//! let sources = RootSources { cwd: std::env::current_dir().ok(), ..Default::default() };
//! let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
//! let root = resolve_root(&sources, home.as_deref())?;
//!
//! // Dry run: exactly what would be sent, and what would not and why.
//! let opts = PackOptions::default();
//! let dry = scan(&root, &opts)?;
//! let json_for_the_agent = dry.to_json();
//!
//! // The real thing: `<dir>/workspace-<sha16>.zip`, written atomically.
//! let summary = pack_to_dir(&root, &opts, Path::new("/tmp/testrelay-upload"))?;
//! let manifest = summary.to_manifest_json(); // paths, sizes, sha256 of every entry
//! ```
//!
//! # Output discipline
//!
//! Nothing in this module writes to stdout or stderr: the server's stdout is JSON-RPC. The one
//! log line (a walk error such as a malformed ignore file) goes through `tracing`.
//!
//! # Performance
//!
//! The walk prunes ignored and built-in directories instead of filtering names afterwards
//! (a naive walk of `node_modules` and a virtualenv costs tens of thousands of stat calls);
//! files are read, hashed, secret-scanned and deflated in parallel in ordered windows; formats
//! that are already compressed are stored. See `archive.rs` for the details.

mod archive;
mod error;
mod filter;
mod listing;
mod root;
mod secrets;
mod zipfmt;

#[cfg(all(test, unix))]
mod fixture;
#[cfg(all(test, unix))]
mod tests;

pub use archive::{
    PackOptions, WINDOW_BYTES, WINDOW_FILES, pack_to_dir, pack_to_dir_with_progress, scan,
    write_archive,
};
pub use error::{Contributor, WorkspaceError};
pub use filter::CUSTOM_IGNORE_FILENAME;
pub use listing::{ArchiveSummary, ExcludeKind, Excluded, FileEntry, Listing, estimate_tokens};
pub use root::{RootSources, WorkspaceRoot, resolve_root};
pub use secrets::{secret_by_name, secret_in_content};

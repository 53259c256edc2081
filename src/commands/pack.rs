//! `testrelay pack`: the workspace ZIP, or with `--dry-run` the exact listing of what
//! would go and what would not (with reasons, never content).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cli::PackArgs;
use crate::printer::Printer;
use crate::server::AppContext;
use crate::workspace::{self, ExcludeKind, Listing, PackOptions, RootSources};

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn describe(listing: &Listing) -> String {
    let secrets = listing
        .excluded
        .iter()
        .filter(|e| e.kind == ExcludeKind::Secret)
        .count();
    format!(
        "{} files, {}, about {} tokens; {} left out ({} secrets)",
        listing.files.len(),
        human_bytes(listing.total_bytes),
        listing.est_tokens,
        listing.excluded.len(),
        secrets
    )
}

pub async fn run(ctx: AppContext, a: PackArgs) -> ExitCode {
    let mut printer = Printer::new();
    let sources = RootSources {
        explicit: a.path.clone(),
        configured: ctx.workspace.clone(),
        roots: Vec::new(),
        cwd: std::env::current_dir().ok(),
    };
    let root = match workspace::resolve_root(&sources, ctx.env.home().as_deref()) {
        Ok(r) => r,
        Err(e) => {
            printer.error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let opts = PackOptions {
        include: a.include,
        exclude: a.exclude,
        max_file_bytes: a.max_file_bytes,
        max_total_bytes: a.max_total_bytes,
        max_files: a.max_files,
        ..PackOptions::default()
    };
    let state = ctx.registry.store().root().join("packages");
    let output = a.output.clone();
    let dry_run = a.dry_run;
    let tty = std::io::stderr().is_terminal() && !a.json;
    let result = tokio::task::spawn_blocking(move || {
        if dry_run {
            return workspace::scan(&root, &opts).map(|l| (l, None));
        }
        let last = AtomicUsize::new(0);
        let progress = |done: usize, total: usize| {
            // Redraw at most every 1% to keep the terminal cheap.
            let step = (total / 100).max(1);
            if tty && (done == total || done >= last.load(Ordering::Relaxed) + step) {
                last.store(done, Ordering::Relaxed);
                eprint!("\r\x1b[2K  packing {done}/{total} files");
            }
        };
        let summary = match &output {
            Some(out) => workspace::write_archive(&root, &opts, out, progress),
            None => workspace::pack_to_dir_with_progress(&root, &opts, &state, progress),
        };
        if tty {
            eprint!("\r\x1b[2K");
        }
        summary.map(|s| {
            (
                s.listing.clone(),
                Some((s.path, s.archive_bytes, s.archive_sha256)),
            )
        })
    })
    .await;
    let (listing, archive) = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            printer.error(&e.to_string());
            return ExitCode::from(2);
        }
        Err(e) => {
            printer.error(&format!("packing failed: {e}"));
            return ExitCode::from(2);
        }
    };
    if a.json {
        let mut v: serde_json::Value =
            serde_json::from_str(&listing.to_json()).expect("listing is JSON");
        if let Some((path, bytes, sha)) = &archive {
            v["archive"] = serde_json::json!({ "path": path, "bytes": bytes, "sha256": sha });
        }
        printer.json(&v);
        return ExitCode::SUCCESS;
    }
    let mut out = String::new();
    if archive.is_none() {
        for f in &listing.files {
            out.push_str(&format!("{:>10}  {}\n", f.size, f.path));
        }
    }
    if !listing.excluded.is_empty() {
        out.push_str("\nleft out:\n");
        for e in &listing.excluded {
            out.push_str(&format!("  {}  ({})\n", e.path, e.reason));
        }
    }
    out.push_str(&format!("\n{}\n", describe(&listing)));
    if let Some((path, bytes, _)) = archive {
        out.push_str(&format!(
            "wrote {} ({})\n",
            path.display(),
            human_bytes(bytes)
        ));
    }
    printer.text(&out);
    ExitCode::SUCCESS
}

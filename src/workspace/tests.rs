//! End-to-end tests of the workspace module on fixture trees built at test time.
//!
//! Owns: the tests that cross module boundaries (walk + secrets + archive + listing), including
//! the exact-archive-listing, determinism, dry-run parity, cap, and git-parity checks. Must not:
//! rely on files checked into the repository (fixtures come from `fixture.rs` and are built in
//! temp dirs), sleep, or touch anything outside its temp dirs.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;

use sha2::{Digest, Sha256};

use super::fixture::*;
use super::*;

#[test]
fn archive_holds_exactly_the_expected_files() {
    let f = Fixture::new();
    build_main(&f);
    let out = f.outside.join("out.zip");
    let s = write_archive(&f.ws(), &PackOptions::default(), &out, |_, _| {}).unwrap();
    assert_eq!(zip_names(&out), MAIN_EXPECTED);
    assert_eq!(s.path, out);
    assert_eq!(s.archive_bytes, fs::metadata(&out).unwrap().len());
    // The in-root symlink carries its target's content.
    let contents = zip_contents(&out);
    let alias = contents.iter().find(|(n, _)| n == "src/alias.py").unwrap();
    assert_eq!(alias.1, b"print('hello')\n");
}

#[test]
fn every_exclusion_has_the_right_kind_and_a_reason() {
    let f = Fixture::new();
    build_main(&f);
    let l = scan(&f.ws(), &PackOptions::default()).unwrap();
    use ExcludeKind::*;
    let expected = [
        (".env", Secret),
        (".env.local", Secret),
        ("config/id_rsa", Secret),
        ("certs/server.pem", Secret),
        ("certs/server.key", Secret),
        ("certs/c.p12", Secret),
        ("certs/c.pfx", Secret),
        ("certs/a.jks", Secret),
        ("certs/b.keystore", Secret),
        (".netrc", Secret),
        (".npmrc", Secret),
        (".pypirc", Secret),
        ("credentials", Secret),
        ("aws/credentials.json", Secret),
        (".git-credentials", Secret),
        ("infra/terraform.tfstate", Secret),
        ("gcp/service.json", Secret),
        ("src/config.py", Secret),
        ("notes.txt", Secret),
        ("src/env_alias", Secret),
        ("node_modules/", BuiltinDir),
        ("web/node_modules/", BuiltinDir),
        ("myenv/", BuiltinDir),
        ("target/", BuiltinDir),
        ("src/__pycache__/", BuiltinDir),
        ("outside_link", SymlinkOutside),
        ("a", Symlink),
        ("src/log_alias", Symlink),
        ("big.dat", TooLarge),
        ("bin/tool.bin", Binary),
    ];
    for (path, kind) in expected {
        assert_eq!(excluded_kind(&l, path), kind, "{path}");
    }
    assert_eq!(l.excluded.len(), expected.len(), "{:#?}", l.excluded);
    for e in &l.excluded {
        assert!(!e.reason.is_empty(), "{}", e.path);
    }
    let reason = |p: &str| {
        l.excluded
            .iter()
            .find(|e| e.path == p)
            .unwrap()
            .reason
            .clone()
    };
    assert_eq!(
        reason("certs/server.pem"),
        "name matches private key pattern *.pem"
    );
    assert_eq!(reason("src/config.py"), "content contains a GitHub token");
    assert_eq!(
        reason("notes.txt"),
        "content contains a PEM private key block"
    );
    assert!(
        reason("big.dat").contains("per-file cap"),
        "{}",
        reason("big.dat")
    );
    assert!(reason("myenv/").contains("pyvenv.cfg"));
    // Ignored files are not reported at all.
    for quiet in [
        "debug.log",
        "ignored_dir/x.txt",
        "sub/local.txt",
        "scratch/notes.txt",
        "a.tmp",
    ] {
        assert!(l.excluded.iter().all(|e| e.path != quiet), "{quiet}");
        assert!(l.files.iter().all(|e| e.path != quiet), "{quiet}");
    }
}

#[test]
fn secret_content_never_appears_in_listing_or_summary_json() {
    let f = Fixture::new();
    build_main(&f);
    let out = f.outside.join("out.zip");
    let s = write_archive(&f.ws(), &PackOptions::default(), &out, |_, _| {}).unwrap();
    let json = serde_json::to_string(&s).unwrap() + &s.listing.to_json() + &s.to_manifest_json();
    for marker in secret_markers() {
        assert!(!json.contains(&marker), "listing leaks {marker}");
    }
    // Nor in the archive itself.
    for (name, content) in zip_contents(&out) {
        let text = String::from_utf8_lossy(&content);
        for marker in secret_markers() {
            assert!(!text.contains(&marker), "{name} leaks a secret");
        }
    }
}

#[test]
fn dry_run_lists_exactly_what_the_archive_holds() {
    let f = Fixture::new();
    build_main(&f);
    let opts = PackOptions::default();
    let listing = scan(&f.ws(), &opts).unwrap();
    let out = f.outside.join("out.zip");
    let s = write_archive(&f.ws(), &opts, &out, |_, _| {}).unwrap();
    assert_eq!(s.listing, listing);
    let contents = zip_contents(&out);
    assert_eq!(contents.len(), listing.files.len());
    for ((name, data), entry) in contents.iter().zip(&listing.files) {
        assert_eq!(name, &entry.path);
        assert_eq!(data.len() as u64, entry.size);
        let sha: String = Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sha, entry.sha256, "{name}");
    }
    assert_eq!(
        listing.total_bytes,
        listing.files.iter().map(|e| e.size).sum::<u64>()
    );
    let png = listing
        .files
        .iter()
        .find(|e| e.path == "assets/logo.png")
        .unwrap();
    assert!(!png.text && png.est_tokens == 0);
    let readme = listing
        .files
        .iter()
        .find(|e| e.path == "README.md")
        .unwrap();
    assert!(readme.text && readme.est_tokens == 2); // 7 bytes / 4, rounded up
}

#[test]
fn packing_is_deterministic_even_after_touching_mtimes() {
    let f = Fixture::new();
    build_main(&f);
    let opts = PackOptions::default();
    let a = f.outside.join("a.zip");
    let b = f.outside.join("b.zip");
    write_archive(&f.ws(), &opts, &a, |_, _| {}).unwrap();
    write_archive(&f.ws(), &opts, &b, |_, _| {}).unwrap();
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
    let later = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(2_000_000_000);
    for rel in MAIN_EXPECTED.iter().filter(|r| **r != "src/alias.py") {
        let file = fs::File::options()
            .write(true)
            .open(f.root.join(rel))
            .unwrap();
        file.set_modified(later).unwrap();
    }
    let c = f.outside.join("c.zip");
    write_archive(&f.ws(), &opts, &c, |_, _| {}).unwrap();
    assert_eq!(fs::read(&a).unwrap(), fs::read(&c).unwrap());
    // Entry metadata is fixed.
    let mut z = zip::ZipArchive::new(fs::File::open(&c).unwrap()).unwrap();
    for i in 0..z.len() {
        let e = z.by_index(i).unwrap();
        assert_eq!(
            e.unix_mode().map(|m| m & 0o777),
            Some(0o644),
            "{:?}",
            e.name()
        );
        let t = e.last_modified().unwrap();
        assert_eq!((t.year(), t.month(), t.day()), (1980, 1, 1));
    }
}

#[test]
fn many_files_cross_windows_in_order_and_progress_reaches_total() {
    let f = Fixture::new();
    for i in 0..700 {
        f.write(
            &format!("gen/f{i:04}.txt"),
            format!("file {i}\n").repeat(i % 7 + 1),
        );
    }
    let calls = std::sync::Mutex::new(Vec::new());
    let out = f.outside.join("many.zip");
    let s = write_archive(&f.ws(), &PackOptions::default(), &out, |d, t| {
        calls.lock().unwrap().push((d, t))
    })
    .unwrap();
    let names = zip_names(&out);
    assert_eq!(names.len(), 700);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(s.listing.files.len(), 700);
    let calls = calls.into_inner().unwrap();
    assert_eq!(calls.first(), Some(&(0, 700)));
    assert_eq!(calls.last(), Some(&(700, 700)));
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(calls.len(), 1 + 700usize.div_ceil(WINDOW_FILES));
}

#[test]
fn caps_are_errors_naming_the_biggest_contributor_and_leave_no_file() {
    let f = Fixture::new();
    f.write("src/a.py", "a\n");
    for i in 0..4 {
        f.write(&format!("vendor/blob{i}.js"), "v".repeat(300_000));
    }
    f.write("small.txt", "s\n");
    let outdir = f.outside.join("o");
    fs::create_dir_all(&outdir).unwrap();
    let opts = PackOptions {
        max_total_bytes: 1_000_000,
        ..Default::default()
    };
    let e = write_archive(&f.ws(), &opts, &outdir.join("x.zip"), |_, _| {}).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("total size cap of 1000000 bytes exceeded"),
        "{msg}"
    );
    assert!(
        msg.contains("biggest contributors: vendor/ (1.2 MB)"),
        "{msg}"
    );
    assert!(matches!(
        scan(&f.ws(), &opts),
        Err(WorkspaceError::TotalSizeCap { .. })
    ));
    assert_eq!(
        fs::read_dir(&outdir).unwrap().count(),
        0,
        "temp file left behind"
    );

    let opts = PackOptions {
        max_files: 3,
        ..Default::default()
    };
    let e = scan(&f.ws(), &opts).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("file count cap of 3 files exceeded"), "{msg}");
    assert!(
        msg.contains("biggest contributors: vendor/ (4 files"),
        "{msg}"
    );
}

#[test]
fn include_and_exclude_globs_narrow_the_set() {
    let f = Fixture::new();
    build_main(&f);
    let opts = PackOptions {
        include: vec!["src/**".into(), "*.md".into()],
        exclude: vec!["docs".into()],
        ..Default::default()
    };
    let l = scan(&f.ws(), &opts).unwrap();
    let names: Vec<&str> = l.files.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        names,
        [
            "README.md",
            "src/alias.py",
            "src/héllo wörld.py",
            "src/main.py"
        ]
    );
    let bad = PackOptions {
        exclude: vec!["src/[".into()],
        ..Default::default()
    };
    let e = scan(&f.ws(), &bad).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("invalid exclude pattern \"src/[\""),
        "{e}"
    );
}

#[test]
fn pack_to_dir_names_the_archive_by_its_hash() {
    let f = Fixture::new();
    build_main(&f);
    let dir = f.outside.join("cloud");
    fs::create_dir_all(&dir).unwrap();
    let s = pack_to_dir(&f.ws(), &PackOptions::default(), &dir).unwrap();
    let bytes = fs::read(&s.path).unwrap();
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sha, s.archive_sha256);
    assert_eq!(s.path, dir.join(format!("workspace-{}.zip", &sha[..16])));
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    assert_eq!(zip_names(&s.path), MAIN_EXPECTED);
}

#[test]
fn git_info_exclude_is_honoured_and_git_dir_never_packed() {
    let f = Fixture::new();
    f.write("src/lib.rs", "pub fn x() {}\n");
    f.write("local-only.txt", "listed in .git/info/exclude\n");
    f.write(".gitignore", "*.log\n");
    f.write("x.log", "ignored\n");
    f.git(&["init", "-q"]);
    fs::write(f.root.join(".git/info/exclude"), "local-only.txt\n").unwrap();
    let l = scan(&f.ws(), &PackOptions::default()).unwrap();
    let names: Vec<&str> = l.files.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(names, [".gitignore", "src/lib.rs"]);
    assert!(l.excluded.is_empty(), "{:?}", l.excluded);
}

#[test]
fn file_set_matches_git_ls_files_minus_secrets_and_builtin_excludes() {
    let f = Fixture::new();
    f.write(".gitignore", "*.log\n!keep.log\n/out/\n.venv/\n");
    f.write("keep.log", "k\n");
    f.write("noise.log", "n\n");
    f.write("out/gen.txt", "g\n");
    f.write("lib/.gitignore", "*.tmp\n!special.tmp\n");
    f.write("lib/a.tmp", "t\n");
    f.write("lib/special.tmp", "s\n");
    f.write("lib/mod.py", "m\n");
    f.write("lib/ünï cødé.py", "u\n");
    f.write("docs/guide.md", "g\n");
    f.write(".github/workflows/ci.yml", "on: push\n");
    f.write(".venv/pyvenv.cfg", "home = /usr\n");
    f.write(".venv/lib/x.py", "x\n");
    f.write("node_modules/left-pad/index.js", "x\n");
    f.write("dist/bundle.js", "x\n");
    f.write("pkg/build/output.o.txt", "x\n");
    f.write(".env", "K=v\n");
    f.write("deploy/server.key", "k\n");
    f.write("src/settings.py", format!("T = '{}'\n", github_token()));
    f.git(&["init", "-q"]);
    f.git(&["add", "lib/mod.py", "docs/guide.md", ".gitignore"]);
    f.git(&["commit", "-q", "-m", "init"]);

    let git_files = f.git(&[
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ]);
    let secrets = [".env", "deploy/server.key", "src/settings.py"];
    let builtin = ["node_modules", "dist", "build", ".venv"];
    let expected: BTreeSet<String> = git_files
        .split('\0')
        .filter(|p| !p.is_empty())
        .filter(|p| !secrets.contains(p))
        .filter(|p| !p.split('/').any(|c| builtin.contains(&c)))
        .map(str::to_string)
        .collect();
    assert!(expected.contains("lib/special.tmp") && expected.contains("lib/ünï cødé.py"));

    let out = f.outside.join("git.zip");
    write_archive(&f.ws(), &PackOptions::default(), &out, |_, _| {}).unwrap();
    let got: BTreeSet<String> = zip_names(&out).into_iter().collect();
    assert_eq!(got, expected);
}

#[test]
fn a_root_that_is_a_symlink_is_canonicalized() {
    let f = Fixture::new();
    f.write("a.txt", "a\n");
    let alias = f.outside.join("alias");
    symlink(&f.root, &alias).unwrap();
    let ws = WorkspaceRoot::open(&alias, None).unwrap();
    assert_eq!(ws.path(), fs::canonicalize(&f.root).unwrap());
    let l = scan(&ws, &PackOptions::default()).unwrap();
    assert_eq!(l.files.len(), 1);
    assert_eq!(l.files[0].path, "a.txt");
}

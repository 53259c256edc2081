//! Fixture trees for the end-to-end tests in `tests.rs`, built at test time.
//!
//! Owns: the temp-dir fixture builder, the one big "every rule at once" tree, its expected
//! archive listing, the secret markers that must never leak, and small ZIP-reading helpers.
//! Must not: contain a token-shaped literal (every secret is assembled at run time so this
//! repository never trips a secret scanner, including our own), or write outside its temp dir.

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::*;

/// A temp dir holding `root/` (the workspace) and `outside/` (for escaping symlinks).
pub(super) struct Fixture {
    _tmp: TempDir,
    pub root: PathBuf,
    pub outside: PathBuf,
}

impl Fixture {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        Fixture {
            _tmp: tmp,
            root,
            outside,
        }
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    pub fn link(&self, target: impl AsRef<Path>, rel: &str) {
        let p = self.root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
    }

    pub fn ws(&self) -> WorkspaceRoot {
        WorkspaceRoot::open(&self.root, None).unwrap()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(["-c", "init.defaultBranch=main", "-c", "core.autocrlf=false"])
            .args(args)
            .current_dir(&self.root)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Secret-bearing texts, assembled at run time.
pub(super) fn github_token() -> String {
    format!("ghp_{}", "Ab3dE".repeat(7) + "x")
}
pub(super) fn pem_block() -> String {
    format!(
        "-----BEGIN {} KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END {} KEY-----\n",
        "RSA PRIVATE", "RSA PRIVATE"
    )
}
pub(super) fn npm_auth_line() -> String {
    format!(
        "//registry.npmjs.org/:_authToken=npm_{}\n",
        "Zq8".repeat(12)
    )
}

/// The distinctive substrings of every secret written by `build_main`: none may leak.
pub(super) fn secret_markers() -> Vec<String> {
    vec![
        github_token(),
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".to_string(),
        "Zq8Zq8Zq8Zq8".to_string(),
        "hunter2-db-password".to_string(),
        "pypi-AgEIcHlwaS5vcmc".to_string(),
        "sa-key-material-0123456789".to_string(),
    ]
}

/// The main fixture: every filter rule in one tree (not a git repository).
pub(super) fn build_main(f: &Fixture) {
    f.write("README.md", "# demo\n");
    f.write("src/main.py", "print('hello')\n");
    f.write("src/héllo wörld.py", "x = 1\n");
    f.write("docs/日本語.md", "こんにちは\n");
    // .gitignore with a negation, plus a nested .gitignore that re-includes and ignores.
    f.write(".gitignore", "*.log\n!keep.log\n/ignored_dir/\n");
    f.write("keep.log", "kept by negation\n");
    f.write("debug.log", "ignored\n");
    f.write("ignored_dir/x.txt", "ignored\n");
    f.write("sub/.gitignore", "local.txt\n!important.log\n");
    f.write("sub/local.txt", "ignored by sub\n");
    f.write("sub/important.log", "re-included by sub\n");
    f.write("sub/code.rs", "fn f() {}\n");
    f.write(".testrelayignore", "scratch/\n*.tmp\n");
    f.write("scratch/notes.txt", "ignored by testrelayignore\n");
    f.write("a.tmp", "ignored by testrelayignore\n");
    // Built-in excludes that no ignore file mentions.
    f.write("node_modules/pkg/index.js", "module.exports = 1;\n");
    f.write("web/node_modules/x/y.js", "nested\n");
    f.write("myenv/pyvenv.cfg", "home = /usr/bin\n");
    f.write("myenv/lib/site.py", "venv content\n");
    f.write("target/debug/app.d", "build output\n");
    f.write("src/__pycache__/main.cpython-311.pyc", "bytecode\n");
    // Secrets by name.
    f.write(".env", "DB_PASSWORD=hunter2-db-password\n");
    f.write(".env.local", "DB_PASSWORD=hunter2-db-password\n");
    f.write(".env.example", "DB_PASSWORD=\n");
    f.write("config/id_rsa", pem_block());
    f.write("config/id_rsa.pub", "ssh-rsa AAAAB3Nza demo\n");
    for name in [
        "server.pem",
        "server.key",
        "c.p12",
        "c.pfx",
        "a.jks",
        "b.keystore",
    ] {
        f.write(&format!("certs/{name}"), "opaque\n");
    }
    f.write(
        ".netrc",
        "machine example.com login u password hunter2-db-password\n",
    );
    f.write(".npmrc", npm_auth_line());
    f.write("sub/.npmrc", "registry=https://registry.npmjs.org/\n");
    f.write(
        ".pypirc",
        "[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc\n",
    );
    f.write("credentials", "x\n");
    f.write("aws/credentials.json", "{}\n");
    f.write(
        ".git-credentials",
        "https://u:hunter2-db-password@example.com\n",
    );
    f.write("infra/terraform.tfstate", "{}\n");
    // Secrets by content, in innocent-looking files.
    f.write(
        "gcp/service.json",
        format!(
            "{{\"type\": \"service_account\", \"{}\": \"{}\"}}\n",
            "private_key", "sa-key-material-0123456789"
        ),
    );
    f.write("src/config.py", format!("TOKEN = \"{}\"\n", github_token()));
    f.write("notes.txt", format!("remember:\n{}", pem_block()));
    // Symlinks: inside (packed with target content), outside, loop.
    fs::write(f.outside.join("secret.txt"), "outside the root\n").unwrap();
    f.link(f.outside.join("secret.txt"), "outside_link");
    f.link(".", "a");
    f.link("main.py", "src/alias.py");
    f.link("../.env", "src/env_alias");
    f.link("../debug.log", "src/log_alias");
    // Size, binary, image.
    f.write("big.dat", "x".repeat(5 * 1024 * 1024));
    f.write("bin/tool.bin", [0x7f, b'E', b'L', b'F', 0, 0, 1, 2, 3]);
    f.write(
        "assets/logo.png",
        [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13],
    );
}

/// What the archive of `build_main` must hold, exactly, in ZIP order.
pub(super) const MAIN_EXPECTED: &[&str] = &[
    ".env.example",
    ".gitignore",
    ".testrelayignore",
    "README.md",
    "assets/logo.png",
    "config/id_rsa.pub",
    "docs/日本語.md",
    "keep.log",
    "src/alias.py",
    "src/héllo wörld.py",
    "src/main.py",
    "sub/.gitignore",
    "sub/.npmrc",
    "sub/code.rs",
    "sub/important.log",
];

pub(super) fn zip_names(path: &Path) -> Vec<String> {
    let mut z = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().unwrap().to_string())
        .collect()
}

pub(super) fn zip_contents(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| {
            let mut e = z.by_index(i).unwrap();
            let mut buf = Vec::new();
            e.read_to_end(&mut buf).unwrap();
            (e.name().unwrap().to_string(), buf)
        })
        .collect()
}

pub(super) fn excluded_kind(l: &Listing, path: &str) -> ExcludeKind {
    l.excluded
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("{path} not reported as excluded"))
        .kind
}

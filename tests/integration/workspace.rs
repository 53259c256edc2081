//! Workspace packaging through the CLI and the MCP tool: the dry run lists exactly what the
//! archive holds, the archive is deterministic, secrets stay out and are never echoed.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{BIN, start_server};

/// A small repository with an ignored folder, dependencies, a virtualenv and secrets.
fn workspace() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let write = |rel: &str, text: &str| {
        let path = p.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(".gitignore", "*.log\n!keep.log\ncoverage-data/\n");
    write("src/app.py", "def main():\n    return 1\n");
    write("src/util/helpers.py", "X = 1\n");
    write("src/nested/.gitignore", "generated.py\n");
    write("src/nested/generated.py", "# generated\n");
    write("src/nested/kept.py", "Y = 2\n");
    write("debug.log", "noise\n");
    write("keep.log", "kept on purpose\n");
    write("coverage-data/x.json", "{}\n");
    write("node_modules/left-pad/index.js", "module.exports = 1\n");
    write(".venv/pyvenv.cfg", "home = /usr/bin\n");
    write(".venv/lib/site.py", "x = 1\n");
    write(".env", "API_TOKEN=value-that-must-not-leak\n");
    write(".env.example", "API_TOKEN=\n");
    write("deploy/server.pem", "not really a key\n");
    // A private key block inside an innocent-looking file, assembled at run time.
    let pem = format!(
        "-----BEGIN {} PRIVATE KEY-----\nMIIEvQIBADAN\n-----END {} PRIVATE KEY-----\n",
        "RSA", "RSA"
    );
    write("docs/notes.txt", &pem);
    write("docs/guide.md", "# Guide\n");
    let ok = Command::new("git")
        .args(["init", "-q"])
        .current_dir(p)
        .status()
        .unwrap();
    assert!(ok.success());
    d
}

fn pack(args: &[&str], dir: &std::path::Path, state: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .arg("pack")
        .args(args)
        .arg(dir)
        .env("TESTRELAY_STATE_DIR", state)
        .output()
        .unwrap()
}

fn zip_names(path: &std::path::Path) -> BTreeSet<String> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().unwrap().to_string())
        .collect()
}

const EXPECTED: [&str; 8] = [
    ".env.example",
    ".gitignore",
    "docs/guide.md",
    "keep.log",
    "src/app.py",
    "src/nested/.gitignore",
    "src/nested/kept.py",
    "src/util/helpers.py",
];

#[test]
fn the_dry_run_lists_exactly_what_the_archive_holds() {
    let ws = workspace();
    let state = tempfile::tempdir().unwrap();
    let dry = pack(&["--dry-run", "--json"], ws.path(), state.path());
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let listing: Value = serde_json::from_slice(&dry.stdout).unwrap();
    let listed: BTreeSet<String> = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, EXPECTED.iter().map(|s| s.to_string()).collect());
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        !text.contains("value-that-must-not-leak") && !text.contains("MIIEvQIBADAN"),
        "secret content echoed"
    );
    let secrets: BTreeSet<&str> = listing["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "secret")
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        secrets,
        BTreeSet::from([".env", "deploy/server.pem", "docs/notes.txt"])
    );

    let out = state.path().join("ws.zip");
    let first = pack(&["-o", out.to_str().unwrap()], ws.path(), state.path());
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(zip_names(&out), listed);

    // Same tree again (even with new mtimes) gives the same bytes.
    let bytes = std::fs::read(&out).unwrap();
    std::fs::write(ws.path().join("src/app.py"), "def main():\n    return 1\n").unwrap();
    let again = state.path().join("again.zip");
    assert!(
        pack(&["-o", again.to_str().unwrap()], ws.path(), state.path())
            .status
            .success()
    );
    assert_eq!(std::fs::read(&again).unwrap(), bytes);
}

#[test]
fn the_archive_matches_what_git_considers_the_project() {
    let ws = workspace();
    let state = tempfile::tempdir().unwrap();
    let git = Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(ws.path())
        .output()
        .unwrap();
    let secrets = [".env", "deploy/server.pem", "docs/notes.txt"];
    let from_git: BTreeSet<String> = String::from_utf8_lossy(&git.stdout)
        .lines()
        .filter(|l| {
            !secrets.contains(l) && !l.starts_with("node_modules/") && !l.starts_with(".venv/")
        })
        .map(String::from)
        .collect();
    let out = state.path().join("ws.zip");
    assert!(
        pack(&["-o", out.to_str().unwrap()], ws.path(), state.path())
            .status
            .success()
    );
    assert_eq!(zip_names(&out), from_git);
}

#[test]
fn a_cap_is_a_clear_error_not_a_truncated_archive() {
    let ws = workspace();
    let state = tempfile::tempdir().unwrap();
    let out = state.path().join("capped.zip");
    let run = pack(
        &["--max-files", "3", "-o", out.to_str().unwrap()],
        ws.path(),
        state.path(),
    );
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("file count cap of 3 files exceeded")
            && err.contains("biggest contributors: src/"),
        "{err}"
    );
    assert!(!out.exists());
}

#[tokio::test]
async fn preview_shows_counts_and_secrets_without_their_content() {
    let ws = workspace();
    let state = tempfile::tempdir().unwrap();
    let server = start_server(state.path(), Some(ws.path())).await;
    let (preview, is_error, text) = server
        .call("preview_workspace_package", json!({"limit": 3}))
        .await;
    assert!(!is_error, "{text}");
    assert_eq!(preview["files"], 8);
    assert_eq!(preview["listing"].as_array().unwrap().len(), 3);
    assert_eq!(preview["next_offset"], 3);
    let secrets: Vec<&str> = preview["excluded_secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(secrets, [".env", "deploy/server.pem", "docs/notes.txt"]);
    assert!(
        preview["excluded_secrets"][0]["reason"]
            .as_str()
            .unwrap()
            .len()
            > 5
    );
    assert!(!text.contains("value-that-must-not-leak") && !text.contains("MIIEvQIBADAN"));
    let last = server
        .ok(
            "preview_workspace_package",
            json!({"offset": 6, "limit": 3}),
        )
        .await;
    assert_eq!(last["listing"].as_array().unwrap().len(), 2);
    assert!(last["next_offset"].is_null());
    let (_, is_error, text) = server
        .call("preview_workspace_package", json!({"path": "/"}))
        .await;
    assert!(is_error && text.contains("outside the workspace"), "{text}");
}

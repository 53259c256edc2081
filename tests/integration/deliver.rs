//! Delivery: `init` against each IDE's configuration file (new, shared with other servers,
//! JSONC with comments, broken), `doctor` on a ready and a broken project, and the server
//! launched the way IDEs launch it: a bare environment, cwd `/` or the home directory, the
//! workspace from `--workspace`, `server/discover` first. It still finds the project's venv,
//! a version manager's node, and a python only the login shell knows. Every run gets a
//! temporary HOME, so nothing here touches the real one.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::{BIN, Project, RawServer, assert_snapshot, copy_dir, fixture_venv, repo};

/// Write an executable script.
fn script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in for the user's `$SHELL`: runs the `-c` script with /bin/sh after `prelude`
/// (fast and the same on every machine, unlike a real login shell).
fn fake_shell(dir: &Path, prelude: &str) -> PathBuf {
    let path = dir.join("fake-login-shell");
    script(
        &path,
        &format!("#!/bin/sh\n{prelude}\nfor last; do :; done\nexec /bin/sh -c \"$last\"\n"),
    );
    path
}

/// The binary with only the variables MCP clients pass by default.
fn ide_command(home: &Path, path: &str, shell: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("HOME", home)
        .env("LOGNAME", "tester")
        .env("USER", "tester")
        .env("PATH", path)
        .env("SHELL", shell)
        .env("TERM", "xterm-256color");
    c
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn run(c: &mut Command) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().unwrap();
    (status.code(), text(&stdout), text(&stderr))
}

/// A temp HOME with a project directory in it.
struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("home/project")).unwrap();
        Sandbox { root }
    }
    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }
    fn project(&self) -> PathBuf {
        self.home().join("project").canonicalize().unwrap()
    }
    fn testrelay(&self, args: &[&str]) -> Command {
        let shell = fake_shell(self.root.path(), "");
        let mut c = ide_command(&self.home(), "/usr/bin:/bin", &shell);
        c.current_dir(self.project()).args(args);
        c
    }
}

/// Each client: its name, its file (under the project or under home) and its servers key.
const CLIENTS: [(&str, &str, bool, &str); 4] = [
    ("vscode", ".vscode/mcp.json", false, "servers"),
    ("cursor", ".cursor/mcp.json", false, "mcpServers"),
    (
        "windsurf",
        ".codeium/windsurf/mcp_config.json",
        true,
        "mcpServers",
    ),
    ("claude", ".mcp.json", false, "mcpServers"),
];

fn config_file(sb: &Sandbox, rel: &str, in_home: bool) -> PathBuf {
    if in_home {
        sb.home().join(rel)
    } else {
        sb.project().join(rel)
    }
}

fn parse_jsonc(text: &str) -> Value {
    jsonc_parser::cst::CstRootNode::parse(text, &Default::default())
        .unwrap()
        .to_serde_value()
        .unwrap()
}

fn installed_binary() -> String {
    Path::new(BIN).canonicalize().unwrap().display().to_string()
}

#[test]
fn init_writes_each_clients_entry_and_rerunning_changes_nothing() {
    for (client, rel, in_home, key) in CLIENTS {
        let sb = Sandbox::new();
        let (code, stdout, stderr) = run(&mut sb.testrelay(&["init", client]));
        assert_eq!(code, Some(0), "{client}: {stdout}{stderr}");
        assert!(stdout.starts_with("created "), "{client}: {stdout}");
        assert!(stdout.contains("\nnext: "), "{client}: {stdout}");
        let file = config_file(&sb, rel, in_home);
        let first = std::fs::read(&file).unwrap();
        // New files are strict JSON, whatever the client accepts.
        let v: Value = serde_json::from_slice(&first).unwrap();
        let entry = &v[key]["testrelay"];
        assert_eq!(entry["command"], installed_binary(), "{client}");
        let expected_args = match client {
            "vscode" | "cursor" => json!(["--workspace", "${workspaceFolder}"]),
            "windsurf" => json!(["--workspace", sb.project()]),
            _ => json!([]),
        };
        assert_eq!(entry["args"], expected_args, "{client}");

        let (code, stdout, _) = run(&mut sb.testrelay(&["init", client]));
        assert_eq!(code, Some(0));
        assert!(stdout.contains("nothing changed"), "{client}: {stdout}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            first,
            "{client}: not byte-identical"
        );
    }
}

#[test]
fn init_keeps_other_servers_comments_and_user_settings() {
    for (client, rel, in_home, key) in CLIENTS {
        let sb = Sandbox::new();
        let file = config_file(&sb, rel, in_home);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();

        // Plain JSON shared with another server stays plain JSON.
        let plain =
            format!(r#"{{"{key}": {{"lint": {{"command": "lint-mcp", "args": ["--fast"]}}}}}}"#);
        std::fs::write(&file, &plain).unwrap();
        let (code, stdout, stderr) = run(&mut sb.testrelay(&["init", client]));
        assert_eq!(code, Some(0), "{client}: {stdout}{stderr}");
        assert!(
            stdout.starts_with("added testrelay to "),
            "{client}: {stdout}"
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(
            v[key]["lint"],
            json!({"command": "lint-mcp", "args": ["--fast"]}),
            "{client}"
        );
        assert_eq!(v[key]["testrelay"]["command"], installed_binary());

        // JSONC with comments, an outdated entry with the user's own env, trailing commas.
        let commented = format!(
            r#"// Shared MCP servers: ask #infra before changing.
{{
  "{key}": {{
    /* the linter */
    "lint": {{ "command": "lint-mcp" }}, // fast mode off
    "testrelay": {{
      "command": "/old/place/testrelay",
      "env": {{ "TESTRELAY_LOG": "debug" }},
    }},
  }},
}}
"#
        );
        std::fs::write(&file, &commented).unwrap();
        let (code, stdout, stderr) = run(&mut sb.testrelay(&["init", client]));
        assert_eq!(code, Some(0), "{client}: {stdout}{stderr}");
        assert!(
            stdout.starts_with("updated testrelay in "),
            "{client}: {stdout}"
        );
        let after = std::fs::read_to_string(&file).unwrap();
        for kept in [
            "// Shared MCP servers: ask #infra before changing.",
            "/* the linter */",
            r#""lint": { "command": "lint-mcp" }, // fast mode off"#,
            r#""env": { "TESTRELAY_LOG": "debug" }"#,
        ] {
            assert!(after.contains(kept), "{client}: lost {kept}\n{after}");
        }
        let v = parse_jsonc(&after);
        assert_eq!(v[key]["testrelay"]["command"], installed_binary());
        assert!(v[key]["testrelay"]["args"].is_array(), "{client}");
        let (_, stdout, _) = run(&mut sb.testrelay(&["init", client]));
        assert!(stdout.contains("nothing changed"), "{client}: {stdout}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), after);
    }
}

#[test]
fn init_refuses_broken_files_and_print_only_prints() {
    for (client, rel, in_home, key) in CLIENTS {
        let sb = Sandbox::new();
        let file = config_file(&sb, rel, in_home);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let broken = format!("{{ \"{key}\": {{ \"lint\": {{ \"command\": \"x\" ");
        std::fs::write(&file, &broken).unwrap();
        let (code, stdout, stderr) = run(&mut sb.testrelay(&["init", client]));
        assert_eq!(code, Some(2), "{client}: {stdout}");
        assert!(
            stderr.contains("is not valid JSON") && stderr.contains("left it untouched"),
            "{client}: {stderr}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), broken);

        let fresh = Sandbox::new();
        let (code, stdout, stderr) = run(&mut fresh.testrelay(&["init", client, "--print"]));
        assert_eq!(code, Some(0), "{client}: {stderr}");
        let v: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v[key]["testrelay"]["command"], installed_binary());
        assert!(!config_file(&fresh, rel, in_home).exists(), "{client}");
        assert!(!fresh.home().join(".codeium").exists() && !fresh.home().join(".cursor").exists());
    }
    let sb = Sandbox::new();
    let (code, _, stderr) = run(&mut sb.testrelay(&["init", "vscode", "--global"]));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("MCP: Open User Configuration"), "{stderr}");
    let (code, _, stderr) = run(sb.testrelay(&["init", "vscode"]).current_dir(sb.home()));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("is the home directory"), "{stderr}");
    let help = run(Command::new(BIN).args(["init", "--help"])).1;
    assert_snapshot("help-init.txt", &help);
}

#[test]
fn doctor_passes_on_a_ready_project_and_names_the_fix_on_a_broken_one() {
    let sb = Sandbox::new();
    let project = Project::pytest();
    let dir = project.path().to_str().unwrap();
    let (code, stdout, stderr) = run(&mut sb.testrelay(&["doctor", dir]));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    for (i, name) in ["testrelay", "state dir", "login shell", "pytest"]
        .iter()
        .enumerate()
    {
        assert!(lines[i].starts_with(&format!("✓ {name} ")), "{stdout}");
    }
    assert!(
        stdout.contains("ready: pytest 9.2.0, runtime 3."),
        "{stdout}"
    );
    assert!(stdout.contains("its PATH adds nothing"), "{stdout}");

    let broken = tempfile::tempdir().unwrap();
    let b = broken.path();
    std::fs::write(b.join("pytest.ini"), "[pytest]\n").unwrap();
    std::fs::create_dir_all(b.join(".venv")).unwrap();
    std::fs::write(b.join(".venv/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
    script(
        &b.join(".venv/bin/python"),
        "#!/bin/sh\necho 'interpreter is broken' >&2\nexit 1\n",
    );
    let (code, stdout, stderr) = run(&mut sb.testrelay(&["doctor", b.to_str().unwrap()]));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("✗ pytest "), "{stdout}");
    assert!(stdout.contains("interpreter is broken"), "{stdout}");
    assert!(
        stdout.contains("fix: in ") && stdout.contains("python3 -m venv .venv"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&mut sb.testrelay(&["doctor", b.to_str().unwrap(), "--json"]));
    assert_eq!(code, Some(1));
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["ok"], false);
    let pytest = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "pytest")
        .unwrap();
    assert_eq!(pytest["ok"], false);
    assert!(
        pytest["fix"]
            .as_str()
            .unwrap()
            .contains("python3 -m venv .venv")
    );

    let (code, _, stderr) = run(&mut sb.testrelay(&["doctor", "/no/such/dir"]));
    assert_eq!(code, Some(2), "{stderr}");
}

#[test]
fn doctor_finds_node_where_nvm_keeps_it_when_path_lacks_it() {
    let sb = Sandbox::new();
    let home = sb.home();
    for v in ["v18.19.0", "v20.11.1", "v22.1.0"] {
        script(
            &home.join(".nvm/versions/node").join(v).join("bin/node"),
            &format!("#!/bin/sh\necho {v}\n"),
        );
    }
    std::fs::write(sb.project().join(".nvmrc"), "20\n").unwrap();
    let empty = home.join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let shell = fake_shell(sb.root.path(), "");
    let (code, stdout, stderr) = run(ide_command(&home, empty.to_str().unwrap(), &shell)
        .current_dir(sb.project())
        .arg("doctor"));
    assert_eq!(
        code,
        Some(1),
        "no framework in the project: {stdout}{stderr}"
    );
    assert!(
        stdout.contains(
            "✓ node         node v20.11.1 from nvm (~/.nvm/versions/node/v20.11.1/bin/node)"
        ),
        "{stdout}"
    );
}

/// `server/discover` as auto-negotiating clients send it first, then the handshake.
fn discover_then_initialize(raw: &mut RawServer) {
    raw.send(
        json!({"jsonrpc":"2.0","id":100,"method":"server/discover","params":{"_meta":{
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}}}),
    );
    let reply = raw.response(100);
    assert!(reply["result"]["supportedVersions"].is_array(), "{reply}");
    let init = raw.initialize("2025-11-25");
    assert_eq!(init["result"]["serverInfo"]["name"], "testrelay");
}

#[test]
fn launched_like_an_ide_the_server_finds_the_project_venv_and_runs_the_suite() {
    let sb = Sandbox::new();
    let project = Project::pytest();
    // PATH without the venv; cwd `/`, where IDEs often start servers.
    let mut cmd = ide_command(&sb.home(), "/usr/bin:/bin", Path::new("/bin/sh"));
    cmd.current_dir("/").arg("--workspace").arg(project.path());
    let mut raw = RawServer::spawn(cmd);
    discover_then_initialize(&mut raw);
    let started = raw.call(1, "run_tests", json!({}));
    let sc = &started["result"]["structuredContent"];
    let toolchain = sc["toolchain"]
        .as_str()
        .unwrap_or_else(|| panic!("{started}"));
    assert!(
        toolchain.contains("/.venv/bin/python (from virtualenv "),
        "{toolchain}"
    );
    let job_id = sc["job_id"].as_str().unwrap().to_string();
    let (status, _) = raw.wait_final(&job_id, 2);
    assert_eq!(status["status"], "failed", "{status}");
    let s = &status["summary"];
    assert_eq!(
        (&s["passed"], &s["failed"], &s["errors"], &s["skipped"]),
        (&json!(7), &json!(3), &json!(2), &json!(4)),
        "{status}"
    );
    // Job state lives under the temporary HOME's state directory.
    assert!(
        sb.home()
            .join(".local/state/testrelay/jobs")
            .join(&job_id)
            .join("job.json")
            .is_file()
    );
}

#[test]
fn a_python_only_the_login_shell_knows_is_found_after_the_handshake_and_read_once() {
    let sb = Sandbox::new();
    let home = sb.home();
    let project = sb.project();
    copy_dir(&repo().join("fixtures/pytest/basic"), &project);
    let login_bin = home.join("login-bin");
    script(
        &login_bin.join("python3"),
        &format!(
            "#!/bin/sh\nexec {} \"$@\"\n",
            fixture_venv().join("bin/python").display()
        ),
    );
    let marker = home.join("login-shell-ran");
    let shell = fake_shell(
        sb.root.path(),
        &format!(
            "echo ran >> {}\nPATH=\"{}:$PATH\"; export PATH",
            marker.display(),
            login_bin.display()
        ),
    );
    let empty = home.join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = ide_command(&home, empty.to_str().unwrap(), &shell);
    // Beyond the bare IDE environment only this: a Homebrew python on the test machine
    // must not be found before the login shell is asked.
    cmd.env("HOMEBREW_PREFIX", &empty)
        .current_dir(&home)
        .arg("--workspace")
        .arg(&project);
    let mut raw = RawServer::spawn(cmd);
    discover_then_initialize(&mut raw);
    raw.send(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}));
    assert_eq!(
        raw.response(1)["result"]["tools"].as_array().unwrap().len(),
        8
    );
    assert!(
        !marker.exists(),
        "the login shell ran before any tool needed it"
    );

    // run_tests first: starting a job is where the server waits for the shell in-line.
    let started = raw.call(
        2,
        "run_tests",
        json!({"tests": ["tests/test_basic.py::test_passes"]}),
    );
    let sc = &started["result"]["structuredContent"];
    let expected = format!(
        "{} (from login shell PATH)",
        login_bin.join("python3").display()
    );
    assert_eq!(sc["toolchain"], expected.as_str(), "{started}");
    let (status, _) = raw.wait_final(sc["job_id"].as_str().unwrap(), 3);
    assert_eq!(status["status"], "passed", "{status}");
    let check = raw.call(20, "check_test_environment", json!({}));
    let sc = &check["result"]["structuredContent"];
    assert_eq!(sc["ready"], true, "{check}");
    assert_eq!(sc["frameworks"][0]["toolchain"], expected.as_str());
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "ran\n",
        "read more than once"
    );
}

#[test]
fn install_sh_installs_checks_configures_and_can_run_again() {
    let sb = Sandbox::new();
    let tools = sb.root.path().join("fake-bin");
    let cargo_root = sb.root.path().join("cargo-root");
    let log = sb.root.path().join("cargo.log");
    // A cargo that records its arguments and "installs" the binary under test.
    script(
        &tools.join("cargo"),
        &format!(
            "#!/bin/sh\necho \"$*\" >> {}\nmkdir -p \"$CARGO_INSTALL_ROOT/bin\"\nln -sf {BIN} \"$CARGO_INSTALL_ROOT/bin/testrelay\"\n",
            log.display()
        ),
    );
    let install = |path: &str, args: &[&str]| {
        let mut c = Command::new(repo().join("install.sh"));
        c.env_clear()
            .env("HOME", sb.home())
            .env("PATH", path)
            .env("CARGO_INSTALL_ROOT", &cargo_root)
            .current_dir(sb.project())
            .args(args);
        run(&mut c)
    };
    let with_cargo = format!("{}:/usr/bin:/bin", tools.display());
    let (code, stdout, stderr) = install(&with_cargo, &["--client", "cursor"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(concat!("testrelay ", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    assert!(stdout.contains("created "), "{stdout}");
    let config = sb.project().join(".cursor/mcp.json");
    let first = std::fs::read_to_string(&config).unwrap();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("install --path {} --locked\n", repo().display())
    );
    let (code, stdout, _) = install(&with_cargo, &["--client=cursor"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("nothing changed"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), first);
    let (code, stdout, _) = install(&with_cargo, &[]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("init vscode") && stdout.contains("doctor"),
        "{stdout}"
    );

    let (code, _, stderr) = install("/usr/bin:/bin", &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("cargo was not found") && stderr.contains("rustup.rs"),
        "{stderr}"
    );
    let (code, _, stderr) = install(&with_cargo, &["--client", "emacs"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("unknown client 'emacs'"), "{stderr}");
}

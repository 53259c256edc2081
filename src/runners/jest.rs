//! Jest: detect, check, plan. Results are read by [`Collector`] (in `jest_results.rs`).
//!
//! testrelay runs the project's own Jest (`node_modules/jest/bin/jest.js`, found by walking
//! up from the project, since workspaces hoist it) with `node` directly, never `npx`, which
//! would download a Jest that is not installed. Yarn Plug'n'Play projects have no
//! `node_modules`, so they run through `yarn jest`. Each run writes two machine-readable
//! files into the job directory: Jest's own `--json` report (written only when the run
//! ends normally) and the events of testrelay's reporter (`jest_reporter.cjs`, written as
//! tests finish, so a killed run keeps what finished).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::engines::{self, Version};
use super::node::{find_node, package_bin, package_version, resolve_package};
use super::node_project::{self, InstallState, Layout, manifest};
use super::plan::{
    EnvironmentCheck, Plan, ProbeOutput, ProbePlan, RunRequest, RunnerError, SupportFile,
};
use super::{Framework, HostEnv};

pub use super::jest_results::Collector;

pub const EVENTS_FILE: &str = "jest-events.jsonl";
/// Jest's own `--json` report, in the job directory.
pub const REPORT_FILE: &str = "jest-report.json";
const REPORTER: SupportFile = SupportFile {
    relative: "testrelay-jest-reporter.cjs",
    contents: include_str!("jest_reporter.cjs"),
};

const CONFIG_FILES: [&str; 7] = [
    "jest.config.js",
    "jest.config.cjs",
    "jest.config.mjs",
    "jest.config.ts",
    "jest.config.cts",
    "jest.config.mts",
    "jest.config.json",
];

/// Files and package.json entries that show the project uses Jest.
pub fn detect(dir: &Path) -> Vec<String> {
    let mut evidence: Vec<String> = CONFIG_FILES
        .iter()
        .filter(|f| dir.join(f).is_file())
        .map(|f| f.to_string())
        .collect();
    let pkg = manifest(dir);
    if pkg.get("jest").is_some() {
        evidence.push("package.json \"jest\" key".into());
    }
    if let Some(scripts) = pkg["scripts"].as_object() {
        for (name, command) in scripts {
            let runs_jest = command.as_str().is_some_and(|c| {
                c.split(|ch: char| ch.is_whitespace() || ch == ';' || ch == '&' || ch == '|')
                    .any(|word| word == "jest" || word.ends_with("/jest"))
            });
            if runs_jest {
                evidence.push(format!("package.json scripts.{name} runs jest"));
            }
        }
    }
    for section in ["devDependencies", "dependencies"] {
        if pkg[section].get("jest").is_some() {
            evidence.push(format!("package.json {section}.jest"));
        }
    }
    evidence
}

/// How Jest will be started.
#[derive(Debug, Clone)]
enum Launcher {
    /// `node <jest bin>`: the normal case.
    Node {
        node: PathBuf,
        bin: PathBuf,
        package: PathBuf,
    },
    /// `yarn jest`: Plug'n'Play resolves packages only through yarn.
    YarnPnp { yarn: PathBuf },
}

fn no_node_message(dir: &Path) -> String {
    format!(
        "Node.js was not found on PATH for {}: install Node.js (or start the IDE from a shell where `node` works), then call check_test_environment",
        dir.display()
    )
}

fn launcher(
    dir: &Path,
    stop_at: Option<&Path>,
    layout: &Layout,
    env: &HostEnv,
) -> Result<Launcher, RunnerError> {
    if layout.pnp {
        let yarn = env.which("yarn").ok_or_else(|| {
            RunnerError::NotReady(format!(
                "{} uses Yarn Plug'n'Play, which runs Jest through `yarn jest`, but yarn is not on PATH: run `corepack enable`",
                layout.root.display()
            ))
        })?;
        return Ok(Launcher::YarnPnp { yarn });
    }
    let node = find_node(env).ok_or_else(|| RunnerError::NotReady(no_node_message(dir)))?;
    let package = resolve_package(dir, stop_at, "jest").ok_or_else(|| {
        RunnerError::NotReady(format!(
            "Jest is not installed for {} (no node_modules/jest up to {}): run `{}` in {}, or call check_test_environment",
            dir.display(),
            layout.root.display(),
            if node_project::declares(dir, "jest") {
                layout.install_command().to_string()
            } else {
                layout.manager.add_dev("jest")
            },
            layout.root.display()
        ))
    })?;
    let bin = package_bin(&package, "jest").ok_or_else(|| {
        RunnerError::NotReady(format!(
            "{} has no `jest` bin entry: reinstall it with `{}`",
            package.display(),
            layout.install_command()
        ))
    })?;
    Ok(Launcher::Node { node, bin, package })
}

/// What `probe` learned from files, handed to `check` through the probe's command line
/// (the probe script ignores it), so that `check` judges exactly what `probe` found.
#[derive(Debug, Serialize, Deserialize)]
struct Facts {
    layout: Layout,
    jest_package: Option<PathBuf>,
    yarn: Option<PathBuf>,
}

const PROBE_SCRIPT: &str = "process.stdout.write(JSON.stringify({node: process.version}) + '\\n')";

fn base_check(dir: &Path) -> EnvironmentCheck {
    EnvironmentCheck::new(Framework::Jest, detect(dir))
}

fn version_manager_hint(dir: &Path, layout: &Layout) -> Option<String> {
    [dir, layout.root.as_path()].iter().find_map(|d| {
        if d.join(".nvmrc").is_file() {
            Some("nvm install".to_string())
        } else if d.join(".node-version").is_file() {
            Some("fnm install".to_string())
        } else {
            None
        }
    })
}

pub fn probe(
    dir: &Path,
    stop_at: Option<&Path>,
    env: &HostEnv,
) -> Result<ProbePlan, Box<EnvironmentCheck>> {
    let layout = node_project::layout(dir, stop_at);
    let Some(node) = find_node(env) else {
        let mut check = base_check(dir);
        check
            .missing
            .push("Node.js (no `node` on the PATH testrelay was started with)".into());
        check
            .setup_commands
            .extend(version_manager_hint(dir, &layout));
        if layout.install_state() == InstallState::Missing {
            check
                .setup_commands
                .push(layout.install_command().to_string());
        }
        check.notes.push(
            "install Node.js first (nodejs.org, or a version manager such as nvm); IDEs often start MCP servers with a shorter PATH than your shell".into(),
        );
        return Err(Box::new(check));
    };
    let facts = Facts {
        jest_package: resolve_package(dir, stop_at, "jest"),
        yarn: env.which("yarn"),
        layout,
    };
    Ok(ProbePlan {
        program: node.clone(),
        args: vec![
            "-e".into(),
            PROBE_SCRIPT.into(),
            serde_json::to_string(&facts).unwrap_or_default(),
        ],
        cwd: dir.to_path_buf(),
        toolchain: format!("{} (from PATH)", node.display()),
        project_tool: match facts.layout.manager {
            node_project::Manager::Npm => "npm",
            node_project::Manager::Pnpm => "pnpm",
            node_project::Manager::YarnClassic | node_project::Manager::YarnBerry => "yarn",
            node_project::Manager::Bun => "bun",
        },
    })
}

#[derive(Deserialize)]
struct ProbeReply {
    node: String,
}

/// `engines.node` of the package.json in `dir`, if it declares one.
fn engines_node(dir: &Path) -> Option<String> {
    manifest(dir)["engines"]["node"].as_str().map(String::from)
}

pub fn check(dir: &Path, plan: &ProbePlan, out: &ProbeOutput) -> EnvironmentCheck {
    let mut check = base_check(dir);
    check.toolchain = Some(plan.toolchain.clone());
    let Some(facts) = plan
        .args
        .last()
        .and_then(|a| serde_json::from_str::<Facts>(a).ok())
    else {
        check
            .missing
            .push("testrelay could not read its own probe (a bug): rerun the check".into());
        return check;
    };
    let layout = &facts.layout;
    check.notes.push(format!(
        "package manager: {} ({})",
        layout.manager.name(),
        layout.manager_evidence
    ));

    let node = plan.program.display().to_string();
    let reply = out.reply::<ProbeReply>();
    match reply {
        Some(r) => {
            check_engines(&mut check, &r.node, dir, facts.jest_package.as_deref());
            check.runtime_version = Some(r.node);
        }
        None => {
            let why = out.failure();
            check
                .missing
                .push(format!("a working Node.js ({node} failed: {why})"));
        }
    }

    if layout.pnp {
        check.notes.push(
            "Yarn Plug'n'Play (.pnp.cjs, no node_modules): Jest runs through `yarn jest`".into(),
        );
        if facts.yarn.is_none() {
            check
                .missing
                .push("yarn (Plug'n'Play projects run Jest through it)".into());
            check.setup_commands.push("corepack enable".into());
        }
        if !node_project::declares(dir, "jest") && !node_project::declares(&layout.root, "jest") {
            check
                .missing
                .push("jest is not a dependency of this project".into());
            check.setup_commands.push(layout.manager.add_dev("jest"));
        }
    } else {
        match layout.install_state() {
            InstallState::Missing => {
                check.missing.push(format!(
                    "node_modules in {} (dependencies are not installed)",
                    layout.root.display()
                ));
                check
                    .setup_commands
                    .push(layout.install_command().to_string());
            }
            InstallState::Stale(why) => {
                check.missing.push(why);
                check
                    .setup_commands
                    .push(layout.install_command().to_string());
            }
            InstallState::Current => {}
        }
        match &facts.jest_package {
            Some(pkg) => {
                check.version = package_version(pkg);
                if package_bin(pkg, "jest").is_none() {
                    check.missing.push(format!(
                        "a runnable Jest ({} has no `jest` bin entry)",
                        pkg.display()
                    ));
                }
            }
            None => {
                check.missing.push(format!(
                    "jest is not installed (no node_modules/jest from {} up to {})",
                    dir.display(),
                    layout.root.display()
                ));
                let declared = node_project::declares(dir, "jest")
                    || node_project::declares(&layout.root, "jest");
                let cmd = if declared {
                    layout.install_command().to_string()
                } else {
                    layout.manager.add_dev("jest")
                };
                if !check.setup_commands.contains(&cmd) {
                    check.setup_commands.push(cmd);
                }
            }
        }
    }
    if layout.root != dir && !check.setup_commands.is_empty() {
        check.notes.push(format!(
            "run the install commands in {} (the workspace root that holds the lockfile)",
            layout.root.display()
        ));
    }
    if check.detected_by.is_empty() {
        check
            .notes
            .push("no Jest configuration or dependency found in this directory".into());
    }
    check.ready = check.missing.is_empty();
    check
}

/// Compare node's version with `engines.node` of the project and of Jest itself.
fn check_engines(check: &mut EnvironmentCheck, node: &str, dir: &Path, jest: Option<&Path>) {
    let Some(version) = Version::parse(node) else {
        check
            .notes
            .push(format!("could not read the Node.js version '{node}'"));
        return;
    };
    let sources = [
        (Some(dir.to_path_buf()), "the project's package.json"),
        (jest.map(Path::to_path_buf), "jest's package.json"),
    ];
    for (pkg_dir, whose) in sources {
        let Some(range) = pkg_dir.as_deref().and_then(engines_node) else {
            continue;
        };
        match engines::satisfies(version, &range) {
            Some(true) => {}
            Some(false) => {
                check.missing.push(format!(
                    "a Node.js version matching \"{range}\" (engines.node in {whose}); this is Node.js {node}"
                ));
                check.notes.push(format!(
                    "install a Node.js that satisfies \"{range}\" (e.g. with nvm) and make it the first `node` on PATH"
                ));
            }
            None => check.notes.push(format!(
                "could not interpret engines.node \"{range}\" in {whose}; not checked"
            )),
        }
    }
}

/// Escape `text` so that a JavaScript `RegExp` matches it literally.
pub(super) fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if "\\^$.*+?()[]{}|".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Jest's arguments for the request's selection.
///
/// - Test ids (`file::full name`, the `selector` of a result) become `--runTestsByPath
///   <file>` plus `--testNamePattern=^<escaped full name>$`. Jest matches that pattern
///   against every test's full name (describe titles and the test title joined by single
///   spaces, case-insensitively), so the id reruns exactly that test.
/// - Files become `--runTestsByPath <file>`; when a directory is among them, every path
///   becomes an anchored regex over absolute paths instead, since `--runTestsByPath` only
///   takes files.
/// - `keyword` is passed as Jest's `--testNamePattern` (a regex).
fn selection_args(dir: &Path, request: &RunRequest) -> Result<Vec<String>, RunnerError> {
    let mut ids: Vec<(&str, &str)> = Vec::new();
    let mut paths: Vec<&str> = Vec::new();
    for t in &request.tests {
        match t.split_once("::") {
            Some((file, name)) if !name.is_empty() => ids.push((file, name)),
            _ => paths.push(t.as_str()),
        }
    }
    let exists = |p: &str| -> Result<PathBuf, RunnerError> {
        let full = dir.join(p);
        if full.exists() {
            Ok(full)
        } else {
            Err(RunnerError::Unsupported(format!(
                "no such test file or directory: {p} (paths are relative to {})",
                dir.display()
            )))
        }
    };
    let mut args = Vec::new();
    if !ids.is_empty() {
        if !paths.is_empty() {
            return Err(RunnerError::Unsupported(
                "Jest cannot run whole files and single test ids in one run (its name filter applies to every file): start two runs, one with the files and one with the test ids".into(),
            ));
        }
        if request.keyword.is_some() {
            return Err(RunnerError::Unsupported(
                "test ids already select exact tests: pass either test ids in `tests` or a `keyword`, not both".into(),
            ));
        }
        let mut files: Vec<&str> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for (file, name) in &ids {
            exists(file)?;
            if !files.contains(file) {
                files.push(file);
            }
            let escaped = regex_escape(name);
            if !names.contains(&escaped) {
                names.push(escaped);
            }
        }
        let pattern = match names.as_slice() {
            [one] => format!("^{one}$"),
            many => format!("^(?:{})$", many.join("|")),
        };
        args.push(format!("--testNamePattern={pattern}"));
        args.push("--runTestsByPath".into());
        args.extend(files.iter().map(|f| f.to_string()));
        return Ok(args);
    }
    if let Some(k) = &request.keyword {
        args.push(format!("--testNamePattern={k}"));
    }
    if paths.is_empty() {
        return Ok(args);
    }
    let resolved: Vec<PathBuf> = paths.iter().map(|p| exists(p)).collect::<Result<_, _>>()?;
    if resolved.iter().all(|p| p.is_file()) {
        args.push("--runTestsByPath".into());
        args.extend(paths.iter().map(|p| p.to_string()));
    } else {
        // Jest matches these against absolute, symlink-resolved paths.
        for p in &resolved {
            let abs = p.canonicalize().unwrap_or_else(|_| p.clone());
            let escaped = regex_escape(&abs.display().to_string());
            args.push(if p.is_dir() {
                format!("^{}/", escaped.trim_end_matches('/'))
            } else {
                format!("^{escaped}$")
            });
        }
    }
    Ok(args)
}

pub fn plan(
    dir: &Path,
    stop_at: Option<&Path>,
    job_dir: &Path,
    request: &RunRequest,
    env: &HostEnv,
) -> Result<Plan, RunnerError> {
    if request.markers.is_some() {
        return Err(RunnerError::Unsupported(
            "Jest has no markers: select tests with `keyword` (a regex over full test names, Jest's -t) or with `tests`".into(),
        ));
    }
    if let Some(watch) = request.extra_args.iter().find(|a| a.starts_with("--watch")) {
        return Err(RunnerError::Unsupported(format!(
            "`{watch}` starts Jest's watch mode, which never ends on its own: testrelay runs are one-shot, so leave it out and call run_tests again after a change"
        )));
    }
    let layout = node_project::layout(dir, stop_at);
    let launcher = launcher(dir, stop_at, &layout, env)?;
    let reporter = job_dir.join(REPORTER.relative).display().to_string();
    let mut args: Vec<String> = Vec::new();
    let (program, toolchain) = match &launcher {
        Launcher::Node { node, bin, package } => {
            args.push(bin.display().to_string());
            let version = package_version(package).unwrap_or_else(|| "?".into());
            (
                node.clone(),
                format!(
                    "{} (from PATH) running jest {version} from {}",
                    node.display(),
                    package.display()
                ),
            )
        }
        Launcher::YarnPnp { yarn } => {
            args.push("jest".into());
            (
                yarn.clone(),
                format!("{} jest (Yarn Plug'n'Play)", yarn.display()),
            )
        }
    };
    args.extend([
        "--json".to_string(),
        format!("--outputFile={}", job_dir.join(REPORT_FILE).display()),
        "--testLocationInResults".to_string(),
        // A test that leaves a child process or handle behind keeps Jest alive for minutes
        // after its results are written ("Jest did not exit one second after the test run
        // has completed"). --forceExit ends Jest when the run is done; the job supervisor
        // then kills whatever the tests left behind.
        "--forceExit".to_string(),
        "--reporters=default".to_string(),
        format!("--reporters={reporter}"),
    ]);
    // Jest turns on verbose mode by itself when a run has one test file, and verbose mode
    // prints console output directly instead of handing it to reporters; keep it buffered
    // so results carry it, unless the caller asked for verbose output.
    if !request
        .extra_args
        .iter()
        .any(|a| a.starts_with("--verbose"))
    {
        args.push("--verbose=false".into());
    }
    args.extend(request.extra_args.iter().cloned());
    args.extend(selection_args(dir, request)?);
    let vars = vec![
        (
            "TESTRELAY_JEST_EVENTS".to_string(),
            job_dir.join(EVENTS_FILE).display().to_string(),
        ),
        ("NO_COLOR".to_string(), "1".to_string()),
        ("FORCE_COLOR".to_string(), "0".to_string()),
    ];
    Ok(Plan {
        framework: Framework::Jest,
        program,
        args,
        cwd: dir.to_path_buf(),
        env: vars,
        support_files: vec![REPORTER],
        toolchain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A project with a fake installed Jest and a fake `node` on PATH.
    fn project() -> (tempfile::TempDir, HostEnv) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir(root.join(".git")).unwrap();
        std::fs::write(
            root.join("package.json"),
            r#"{"scripts":{"test":"jest --ci"},"devDependencies":{"jest":"30.5.2"}}"#,
        )
        .unwrap();
        std::fs::write(root.join("package-lock.json"), "{}").unwrap();
        let jest = root.join("node_modules/jest");
        std::fs::create_dir_all(jest.join("bin")).unwrap();
        std::fs::write(
            jest.join("package.json"),
            r#"{"version":"30.5.2","bin":{"jest":"./bin/jest.js"}}"#,
        )
        .unwrap();
        std::fs::write(jest.join("bin/jest.js"), "").unwrap();
        std::fs::write(root.join("node_modules/.package-lock.json"), "{}").unwrap();
        std::fs::create_dir_all(root.join("__tests__/unit")).unwrap();
        std::fs::write(root.join("__tests__/a.test.js"), "").unwrap();
        std::fs::write(root.join("__tests__/unit/b.test.js"), "").unwrap();
        let bin = root.join("bin");
        std::fs::create_dir(&bin).unwrap();
        let node = bin.join("node");
        std::fs::write(&node, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = HostEnv::from_pairs([("PATH".to_string(), bin.display().to_string())]);
        (d, env)
    }

    fn run_plan(dir: &Path, env: &HostEnv, req: RunRequest) -> Result<Plan, RunnerError> {
        plan(dir, None, Path::new("/state/job"), &req, env)
    }

    #[test]
    fn detects_configs_scripts_and_dependencies() {
        let (d, _) = project();
        assert_eq!(
            detect(d.path()),
            [
                "package.json scripts.test runs jest",
                "package.json devDependencies.jest"
            ]
        );
        std::fs::write(d.path().join("jest.config.ts"), "").unwrap();
        assert_eq!(detect(d.path())[0], "jest.config.ts");
        let empty = tempfile::tempdir().unwrap();
        std::fs::write(
            empty.path().join("package.json"),
            r#"{"scripts":{"test":"jest-like-tool"}}"#,
        )
        .unwrap();
        assert!(detect(empty.path()).is_empty());
    }

    #[test]
    fn plan_runs_the_projects_jest_with_node_and_both_result_files() {
        let (d, env) = project();
        let p = run_plan(d.path(), &env, RunRequest::default()).unwrap();
        assert_eq!(p.program, d.path().join("bin/node"));
        assert_eq!(
            p.args,
            [
                d.path()
                    .join("node_modules/jest/./bin/jest.js")
                    .display()
                    .to_string(),
                "--json".into(),
                "--outputFile=/state/job/jest-report.json".into(),
                "--testLocationInResults".into(),
                "--forceExit".into(),
                "--reporters=default".into(),
                "--reporters=/state/job/testrelay-jest-reporter.cjs".into(),
                "--verbose=false".into(),
            ]
        );
        assert!(
            p.toolchain.contains("running jest 30.5.2"),
            "{}",
            p.toolchain
        );
        assert!(p.env.contains(&(
            "TESTRELAY_JEST_EVENTS".into(),
            "/state/job/jest-events.jsonl".into()
        )));
        assert_eq!(p.support_files[0].relative, "testrelay-jest-reporter.cjs");
    }

    #[test]
    fn test_ids_become_exact_name_patterns() {
        let (d, env) = project();
        let req = RunRequest {
            tests: vec![
                "__tests__/a.test.js::math param (3) + 1".into(),
                "__tests__/a.test.js::adds".into(),
            ],
            ..Default::default()
        };
        let p = run_plan(d.path(), &env, req).unwrap();
        assert_eq!(
            p.args[p.args.len() - 3..],
            [
                r"--testNamePattern=^(?:math param \(3\) \+ 1|adds)$".to_string(),
                "--runTestsByPath".into(),
                "__tests__/a.test.js".into()
            ]
        );
        let mixed = RunRequest {
            tests: vec![
                "__tests__/a.test.js::adds".into(),
                "__tests__/a.test.js".into(),
            ],
            ..Default::default()
        };
        assert!(matches!(
            run_plan(d.path(), &env, mixed),
            Err(RunnerError::Unsupported(m)) if m.contains("start two runs")
        ));
    }

    #[test]
    fn files_directories_keywords_and_mistakes() {
        let (d, env) = project();
        let files = RunRequest {
            tests: vec!["__tests__/a.test.js".into()],
            keyword: Some("adds".into()),
            ..Default::default()
        };
        let p = run_plan(d.path(), &env, files).unwrap();
        assert_eq!(
            p.args[p.args.len() - 3..],
            [
                "--testNamePattern=adds",
                "--runTestsByPath",
                "__tests__/a.test.js"
            ]
        );
        let dirs = RunRequest {
            tests: vec!["__tests__/unit".into(), "__tests__/a.test.js".into()],
            ..Default::default()
        };
        let p = run_plan(d.path(), &env, dirs).unwrap();
        let root = regex_escape(&d.path().canonicalize().unwrap().display().to_string());
        assert_eq!(
            p.args[p.args.len() - 2..],
            [
                format!("^{root}/__tests__/unit/"),
                format!(r"^{root}/__tests__/a\.test\.js$")
            ]
        );
        let missing = RunRequest {
            tests: vec!["__tests__/nope.test.js".into()],
            ..Default::default()
        };
        assert!(matches!(
            run_plan(d.path(), &env, missing),
            Err(RunnerError::Unsupported(m)) if m.contains("no such test file")
        ));
        let markers = RunRequest {
            markers: Some("slow".into()),
            ..Default::default()
        };
        assert!(matches!(
            run_plan(d.path(), &env, markers),
            Err(RunnerError::Unsupported(m)) if m.contains("no markers")
        ));
        let watch = RunRequest {
            extra_args: vec!["--watchAll".into()],
            ..Default::default()
        };
        assert!(matches!(
            run_plan(d.path(), &env, watch),
            Err(RunnerError::Unsupported(m)) if m.contains("watch mode")
        ));
        let option = RunRequest {
            tests: vec!["--watch".into()],
            ..Default::default()
        };
        assert!(matches!(
            crate::runners::plan(
                Framework::Jest,
                d.path(),
                None,
                Path::new("/state/job"),
                &option,
                &env
            ),
            Err(RunnerError::BadSelection(_))
        ));
    }

    #[test]
    fn a_missing_jest_or_node_says_what_to_run() {
        let (d, env) = project();
        std::fs::remove_dir_all(d.path().join("node_modules")).unwrap();
        let err = run_plan(d.path(), &env, RunRequest::default()).unwrap_err();
        assert!(err.to_string().contains("run `npm ci`"), "{err}");
        let no_path = HostEnv::from_pairs([("PATH".to_string(), "/nonexistent".to_string())]);
        let err = run_plan(d.path(), &no_path, RunRequest::default()).unwrap_err();
        assert!(err.to_string().contains("Node.js was not found"), "{err}");
    }

    #[test]
    fn yarn_pnp_runs_through_yarn() {
        let (d, env) = project();
        std::fs::remove_dir_all(d.path().join("node_modules")).unwrap();
        std::fs::remove_file(d.path().join("package-lock.json")).unwrap();
        std::fs::write(d.path().join("yarn.lock"), "__metadata:\n").unwrap();
        std::fs::write(d.path().join(".pnp.cjs"), "").unwrap();
        let err = run_plan(d.path(), &env, RunRequest::default()).unwrap_err();
        assert!(err.to_string().contains("corepack enable"), "{err}");
        let yarn = d.path().join("bin/yarn");
        std::fs::copy(d.path().join("bin/node"), &yarn).unwrap();
        let p = run_plan(d.path(), &env, RunRequest::default()).unwrap();
        assert_eq!((p.program, p.args[0].as_str()), (yarn, "jest"));
    }

    fn probe_and_check(dir: &Path, env: &HostEnv, node_says: &str) -> EnvironmentCheck {
        let plan = probe(dir, None, env).unwrap();
        let out = ProbeOutput {
            exit_code: Some(0),
            stdout: format!("{{\"node\":\"{node_says}\"}}\n"),
            stderr: String::new(),
        };
        check(dir, &plan, &out)
    }

    #[test]
    fn check_reports_versions_engines_and_stale_installs() {
        let (d, env) = project();
        let ok = probe_and_check(d.path(), &env, "v20.20.2");
        assert!(ok.ready, "{ok:?}");
        assert_eq!(ok.version.as_deref(), Some("30.5.2"));
        assert_eq!(ok.runtime_version.as_deref(), Some("v20.20.2"));

        std::fs::write(
            d.path().join("node_modules/jest/package.json"),
            r#"{"version":"30.5.2","bin":{"jest":"./bin/jest.js"},"engines":{"node":"^18.14.0 || ^20.0.0 || ^22.0.0 || >=24.0.0"}}"#,
        )
        .unwrap();
        let old = probe_and_check(d.path(), &env, "v16.20.2");
        assert!(!old.ready);
        assert_eq!(
            old.missing,
            [
                "a Node.js version matching \"^18.14.0 || ^20.0.0 || ^22.0.0 || >=24.0.0\" (engines.node in jest's package.json); this is Node.js v16.20.2"
            ]
        );

        std::fs::remove_file(d.path().join("node_modules/.package-lock.json")).unwrap();
        let stale = probe_and_check(d.path(), &env, "v20.20.2");
        assert!(
            stale.missing[0].contains("not installed by npm"),
            "{stale:?}"
        );
        assert_eq!(stale.setup_commands, ["npm ci"]);
    }

    #[test]
    fn check_without_node_modules_or_node() {
        let (d, env) = project();
        std::fs::remove_dir_all(d.path().join("node_modules")).unwrap();
        let c = probe_and_check(d.path(), &env, "v20.20.2");
        assert!(!c.ready);
        assert!(c.missing[0].starts_with("node_modules in"), "{c:?}");
        assert!(c.missing[1].starts_with("jest is not installed"), "{c:?}");
        assert_eq!(c.setup_commands, ["npm ci"]);

        let no_node = HostEnv::from_pairs([("PATH".to_string(), "/nonexistent".to_string())]);
        let c = *probe(d.path(), None, &no_node).unwrap_err();
        assert!(c.missing[0].starts_with("Node.js"), "{c:?}");
        assert_eq!(c.setup_commands, ["npm ci"]);
    }

    #[test]
    fn escaping_matches_javascript_regex_syntax() {
        assert_eq!(
            regex_escape("a.b (c) [d] {e} f|g ^$ * + ? / \\"),
            r"a\.b \(c\) \[d\] \{e\} f\|g \^\$ \* \+ \? / \\"
        );
    }
}

//! Playwright Test: detect, plan, check and collect.
//!
//! A run is `node <@playwright/test>/cli.js test` from the project's own `node_modules`
//! (never `npx`, which may download), with three reporters: `line` for the log,
//! `json` into the job directory (`PLAYWRIGHT_JSON_OUTPUT_FILE`), and testrelay's own
//! reporter (`playwright_reporter.cjs`, written into the job directory), which appends one
//! JSON line per finished test. The streaming file gives live progress and survives a
//! SIGKILL; the JSON report, which Playwright also writes when stopped with SIGINT, is the
//! complete account once the run is over. Artifacts (screenshots, traces, error context)
//! go to `<job>/artifacts` via `--output`, never into the project's `test-results/`.
//!
//! Parsing the two sources lives in `playwright_results.rs`; this file decides what to run
//! and whether the toolchain is ready.

use std::path::Path;

use serde::Deserialize;

use super::node::{find_node, package_bin, package_version, resolve_package};
use super::plan::{
    EnvironmentCheck, Plan, ProbeOutput, ProbePlan, RunRequest, RunnerError, SupportFile,
};
use super::{Framework, HostEnv};

pub use super::playwright_results::Collector;

pub const EVENTS_FILE: &str = "playwright-events.jsonl";
/// Playwright's own JSON report, written at the end of the run (also on SIGINT).
pub const JSON_REPORT_FILE: &str = "playwright-report.json";
const ARTIFACTS_DIR: &str = "artifacts";
const PACKAGE: &str = "@playwright/test";
const REPORTER: SupportFile = SupportFile {
    relative: "playwright-reporter/testrelay-reporter.cjs",
    contents: include_str!("playwright_reporter.cjs"),
};
const PROBE_SCRIPT: &str = include_str!("playwright_probe.js");
const CONFIG_FILES: [&str; 6] = [
    "playwright.config.ts",
    "playwright.config.js",
    "playwright.config.mts",
    "playwright.config.mjs",
    "playwright.config.cts",
    "playwright.config.cjs",
];
/// A selector's suffix naming the project to run it in: `tests/a.spec.ts:12 --project=firefox`.
const PROJECT_SUFFIX: &str = " --project=";

/// Files that show the project uses Playwright Test.
pub fn detect(dir: &Path) -> Vec<String> {
    let mut evidence: Vec<String> = CONFIG_FILES
        .iter()
        .filter(|name| dir.join(name).is_file())
        .map(|name| name.to_string())
        .collect();
    if evidence.is_empty() && manifest_lists(dir, PACKAGE) {
        evidence.push(format!("package.json lists {PACKAGE}"));
    }
    evidence
}

fn read_manifest(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("package.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether `package.json` in `dir` depends on `package`.
fn manifest_lists(dir: &Path, package: &str) -> bool {
    read_manifest(dir).is_some_and(|m| {
        ["dependencies", "devDependencies", "optionalDependencies"]
            .iter()
            .any(|k| m[k].get(package).is_some())
    })
}

/// The project's package manager: `packageManager` in package.json, else its lockfile
/// (in the project or an ancestor, where workspaces keep it), else npm.
fn package_manager(dir: &Path, stop_at: Option<&Path>) -> &'static str {
    if let Some(pm) = read_manifest(dir)
        .and_then(|m| m["packageManager"].as_str().map(String::from))
        .and_then(|s| s.split('@').next().map(String::from))
    {
        match pm.as_str() {
            "pnpm" => return "pnpm",
            "yarn" => return "yarn",
            "bun" => return "bun",
            "npm" => return "npm",
            _ => {}
        }
    }
    for d in dir.ancestors() {
        let has = |f: &str| d.join(f).is_file();
        if has("pnpm-lock.yaml") {
            return "pnpm";
        }
        if has("yarn.lock") {
            return "yarn";
        }
        if has("bun.lock") || has("bun.lockb") {
            return "bun";
        }
        if has("package-lock.json") || has("npm-shrinkwrap.json") {
            return "npm";
        }
        if Some(d) == stop_at || d.join(".git").exists() {
            break;
        }
    }
    "npm"
}

/// Installs the project's locked dependencies.
fn install_locked(pm: &str, dir: &Path) -> String {
    let locked = ["package-lock.json", "npm-shrinkwrap.json"]
        .iter()
        .any(|f| dir.join(f).is_file());
    match pm {
        "pnpm" => "pnpm install --frozen-lockfile".into(),
        "yarn" => "yarn install --frozen-lockfile".into(),
        "bun" => "bun install --frozen-lockfile".into(),
        _ if locked => "npm ci".into(),
        _ => "npm install".into(),
    }
}

fn add_dev(pm: &str, package: &str) -> String {
    match pm {
        "pnpm" => format!("pnpm add -D {package}"),
        "yarn" => format!("yarn add -D {package}"),
        "bun" => format!("bun add -d {package}"),
        _ => format!("npm i -D {package}"),
    }
}

/// Runs the project's local Playwright CLI the way the package manager does it.
fn playwright_cli(pm: &str) -> &'static str {
    match pm {
        "pnpm" => "pnpm exec playwright",
        "yarn" => "yarn playwright",
        "bun" => "bunx playwright",
        _ => "npx playwright",
    }
}

fn base_check(dir: &Path) -> EnvironmentCheck {
    EnvironmentCheck::new(Framework::Playwright, detect(dir))
}

fn toolchain(node: &Path, package: &Path) -> String {
    format!(
        "node ({}) with {PACKAGE} {} ({})",
        node.display(),
        package_version(package).unwrap_or_else(|| "?".into()),
        package.display()
    )
}

const NO_NODE: &str = "Node.js (no `node` on PATH; Playwright needs Node.js 18 or newer)";

/// What to do when `@playwright/test` cannot be found for `dir`.
fn missing_package(dir: &Path, stop_at: Option<&Path>) -> (String, Vec<String>) {
    let pm = package_manager(dir, stop_at);
    if manifest_lists(dir, PACKAGE) {
        (
            format!(
                "{PACKAGE} is listed in package.json but not installed (no node_modules/{PACKAGE} in {} or above)",
                dir.display()
            ),
            vec![install_locked(pm, dir)],
        )
    } else {
        (
            format!("{PACKAGE} is not installed in {}", dir.display()),
            vec![add_dev(pm, PACKAGE)],
        )
    }
}

pub fn probe(
    dir: &Path,
    stop_at: Option<&Path>,
    env: &HostEnv,
) -> Result<ProbePlan, Box<EnvironmentCheck>> {
    let mut check = base_check(dir);
    let node = find_node(env);
    let package = resolve_package(dir, stop_at, PACKAGE);
    let cli = package
        .as_deref()
        .and_then(|p| package_bin(p, "playwright"));
    if node.is_none() {
        check.missing.push(NO_NODE.into());
        check.notes.push(
            "install Node.js (https://nodejs.org or your OS package manager), then check again"
                .into(),
        );
    }
    if cli.is_none() {
        let (what, commands) = missing_package(dir, stop_at);
        check.missing.push(what);
        check.setup_commands = commands;
    }
    match (node, package, cli) {
        (Some(node), Some(package), Some(cli)) => Ok(ProbePlan {
            args: vec![
                "-e".into(),
                PROBE_SCRIPT.into(),
                package.display().to_string(),
                cli.display().to_string(),
            ],
            toolchain: toolchain(&node, &package),
            program: node,
            cwd: dir.to_path_buf(),
            project_tool: package_manager(dir, stop_at),
        }),
        _ => Err(Box::new(check)),
    }
}

#[derive(Deserialize)]
struct ProbeReply {
    node: String,
    #[serde(default)]
    browsers: Vec<BrowserNeed>,
    list_error: Option<String>,
    core_error: Option<String>,
}

/// The browser one configured project launches, and whether it is there.
#[derive(Deserialize)]
struct BrowserNeed {
    project: Option<String>,
    browser: String,
    channel: Option<String>,
    /// `config` (launchOptions.executablePath), `channel` (a branded browser) or `bundled`.
    source: String,
    path: Option<String>,
    exists: Option<bool>,
}

pub fn check(dir: &Path, plan: &ProbePlan, out: &ProbeOutput) -> EnvironmentCheck {
    let mut check = base_check(dir);
    check.toolchain = Some(plan.toolchain.clone());
    check.version = plan.args.get(2).and_then(|p| package_version(Path::new(p)));
    let pm = plan.project_tool;
    let Some(reply) = out.reply::<ProbeReply>() else {
        let why = out.failure();
        check.missing.push(format!(
            "a working Node.js with {PACKAGE} ({} failed: {why})",
            plan.program.display()
        ));
        check.setup_commands.push(install_locked(pm, dir));
        return check;
    };
    check.runtime_version = Some(reply.node);
    if let Some(e) = reply.core_error {
        check
            .missing
            .push(format!("playwright-core, which {PACKAGE} needs ({e})"));
        check.setup_commands.push(install_locked(pm, dir));
        return check;
    }
    if let Some(e) = &reply.list_error {
        check.notes.push(format!(
            "`playwright test --list` failed, so the config's projects are unknown and only the default Chromium was checked: {e}"
        ));
    }
    let mut to_install: Vec<&str> = Vec::new();
    for b in &reply.browsers {
        let project = b
            .project
            .as_deref()
            .map(|p| format!(" for project '{p}'"))
            .unwrap_or_default();
        match (b.source.as_str(), b.exists) {
            (_, Some(true)) => {}
            ("channel", _) => check.notes.push(format!(
                "project{project} uses the installed browser channel '{}', which is not checked here",
                b.channel.as_deref().unwrap_or("?")
            )),
            ("config", _) => {
                let path = b.path.as_deref().unwrap_or("?");
                check.missing.push(format!(
                    "{}{project}: launchOptions.executablePath in the config is {path}, which does not exist",
                    b.browser
                ));
                // The config chose a browser by path: install one there, or point the
                // config at one that exists, or use Playwright's own download instead.
                let fix = format!(
                    "point launchOptions.executablePath{project} at an installed browser, or install one at {path}; \
                     or remove executablePath and run `{} install{} {}`",
                    playwright_cli(pm),
                    if cfg!(target_os = "linux") { " --with-deps" } else { "" },
                    b.browser
                );
                if !check.notes.contains(&fix) {
                    check.notes.push(fix);
                }
                if b.browser == "chromium" && cfg!(target_os = "linux") {
                    let apt = "sudo apt-get update && sudo apt-get install -y chromium".to_string();
                    if !check.setup_commands.contains(&apt) {
                        check.setup_commands.push(apt);
                    }
                }
            }
            _ => {
                check.missing.push(format!(
                    "Playwright's {}{project} is not installed (expected at {})",
                    b.browser,
                    b.path.as_deref().unwrap_or("the browser cache")
                ));
                if !to_install.contains(&b.browser.as_str()) {
                    to_install.push(&b.browser);
                }
            }
        }
    }
    if !to_install.is_empty() {
        let deps = if cfg!(target_os = "linux") {
            " --with-deps"
        } else {
            ""
        };
        check.setup_commands.push(format!(
            "{} install{deps} {}",
            playwright_cli(pm),
            to_install.join(" ")
        ));
        if to_install.contains(&"chromium") {
            check.notes.push(offline_chromium_note());
        }
    }
    check.ready = check.missing.is_empty();
    check
}

/// The alternative to Playwright's download for machines that cannot reach its CDN.
fn offline_chromium_note() -> String {
    let use_it = "then set `use: { launchOptions: { executablePath: '/usr/bin/chromium' } }` in the Playwright config (or in the project that needs it)";
    if cfg!(target_os = "linux") {
        format!(
            "offline alternative to the download: install the system Chromium (Debian/Ubuntu: `sudo apt-get update && sudo apt-get install -y chromium`), {use_it}"
        )
    } else {
        format!(
            "offline alternative to the download: install Chromium or Chrome with your OS package manager, {use_it} with its path, or use `channel: 'chrome'` for an installed Google Chrome"
        )
    }
}

/// Split `path:line --project=name` into the location and the project.
fn split_selector(entry: &str) -> (&str, Option<&str>) {
    match entry.split_once(PROJECT_SUFFIX) {
        Some((loc, project)) if !project.trim().is_empty() => (loc.trim(), Some(project.trim())),
        _ => (entry.trim(), None),
    }
}

/// The selector that reruns exactly one test: `file:line`, plus the project when the run
/// had several (the same test then runs once per project).
pub(super) fn selector(file: &str, line: Option<u32>, project: Option<&str>) -> String {
    let mut s = match line {
        Some(l) => format!("{file}:{l}"),
        None => file.to_string(),
    };
    if let Some(p) = project.filter(|p| !p.is_empty()) {
        s.push_str(PROJECT_SUFFIX);
        s.push_str(p);
    }
    s
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
            "`markers` is a pytest option; for Playwright put a title or tag pattern in `keyword` (passed as --grep, e.g. `@smoke`), or a project in `extra_args` (`--project=chromium`)".into(),
        ));
    }
    let mut locations = Vec::new();
    let mut projects: Vec<String> = Vec::new();
    for entry in &request.tests {
        let (loc, project) = split_selector(entry);
        if loc.is_empty() || loc.starts_with('-') {
            return Err(RunnerError::BadSelection(entry.clone()));
        }
        locations.push(loc.to_string());
        if let Some(p) = project
            && !projects.iter().any(|q| q == p)
        {
            projects.push(p.to_string());
        }
    }
    let node = find_node(env).ok_or_else(|| {
        RunnerError::NotReady(format!(
            "Node.js was not found on PATH for {}: install Node.js 18 or newer, then call check_test_environment",
            dir.display()
        ))
    })?;
    let package = resolve_package(dir, stop_at, PACKAGE).ok_or_else(|| {
        let (what, commands) = missing_package(dir, stop_at);
        RunnerError::NotReady(format!(
            "{what}: run `{}` in the project directory, then try again",
            commands.join(" && ")
        ))
    })?;
    let cli = package_bin(&package, "playwright").ok_or_else(|| {
        RunnerError::NotReady(format!(
            "{} has no `playwright` bin entry: reinstall it (`{}`)",
            package.display(),
            install_locked(package_manager(dir, stop_at), dir)
        ))
    })?;
    let reporter = job_dir.join(REPORTER.relative);
    let mut args = vec![
        cli.display().to_string(),
        "test".into(),
        format!("--reporter=line,json,{}", reporter.display()),
        format!("--output={}", job_dir.join(ARTIFACTS_DIR).display()),
    ];
    if let Some(k) = &request.keyword {
        args.extend(["--grep".into(), k.clone()]);
    }
    args.extend(projects.iter().map(|p| format!("--project={p}")));
    args.extend(request.extra_args.iter().cloned());
    args.extend(locations);
    let vars = vec![
        (
            "PLAYWRIGHT_JSON_OUTPUT_FILE".to_string(),
            job_dir.join(JSON_REPORT_FILE).display().to_string(),
        ),
        (
            "TESTRELAY_PLAYWRIGHT_EVENTS".to_string(),
            job_dir.join(EVENTS_FILE).display().to_string(),
        ),
        // Node honours FORCE_COLOR=0 and warns when NO_COLOR is set beside it. Playwright
        // still colours some error messages; the parser strips ANSI codes.
        ("FORCE_COLOR".to_string(), "0".to_string()),
    ];
    Ok(Plan {
        framework: Framework::Playwright,
        program: node.clone(),
        args,
        cwd: dir.to_path_buf(),
        env: vars,
        support_files: vec![REPORTER],
        toolchain: toolchain(&node, &package),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_project() -> (tempfile::TempDir, HostEnv) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join(".git")).unwrap();
        let pkg = d.path().join("node_modules/@playwright/test");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(
            pkg.join("package.json"),
            r#"{"version":"1.65.1","bin":{"playwright":"cli.js"}}"#,
        )
        .unwrap();
        std::fs::write(pkg.join("cli.js"), "").unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let node = bin.join("node");
        std::fs::write(&node, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = HostEnv::from_pairs([("PATH".to_string(), bin.display().to_string())]);
        (d, env)
    }

    #[test]
    fn detects_configs_and_the_dependency() {
        let d = tempfile::tempdir().unwrap();
        assert!(detect(d.path()).is_empty());
        std::fs::write(
            d.path().join("package.json"),
            r#"{"devDependencies":{"@playwright/test":"1.65.1"}}"#,
        )
        .unwrap();
        assert_eq!(detect(d.path()), ["package.json lists @playwright/test"]);
        std::fs::write(d.path().join("playwright.config.ts"), "").unwrap();
        assert_eq!(detect(d.path()), ["playwright.config.ts"]);
    }

    #[test]
    fn plan_runs_the_local_cli_with_three_reporters() {
        let (d, env) = node_project();
        let req = RunRequest {
            tests: vec![
                "tests/a.spec.ts:12 --project=firefox".into(),
                "tests/b.spec.ts".into(),
            ],
            keyword: Some("@smoke".into()),
            ..Default::default()
        };
        let plan = plan(d.path(), None, Path::new("/state/job"), &req, &env).unwrap();
        assert_eq!(plan.program, d.path().join("bin/node"));
        let cli = d.path().join("node_modules/@playwright/test/cli.js");
        assert_eq!(
            plan.args,
            [
                cli.display().to_string().as_str(),
                "test",
                "--reporter=line,json,/state/job/playwright-reporter/testrelay-reporter.cjs",
                "--output=/state/job/artifacts",
                "--grep",
                "@smoke",
                "--project=firefox",
                "tests/a.spec.ts:12",
                "tests/b.spec.ts",
            ]
        );
        let env_of = |k: &str| {
            plan.env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            env_of("PLAYWRIGHT_JSON_OUTPUT_FILE"),
            Some("/state/job/playwright-report.json")
        );
        assert_eq!(
            env_of("TESTRELAY_PLAYWRIGHT_EVENTS"),
            Some("/state/job/playwright-events.jsonl")
        );
        assert!(env_of("CI").is_none(), "CI changes config behaviour");
        assert!(plan.toolchain.contains("@playwright/test 1.65.1"));
    }

    #[test]
    fn plan_refuses_options_as_tests_and_markers() {
        let (d, env) = node_project();
        for tests in [vec!["--headed".to_string()], vec![" --project=x".into()]] {
            let req = RunRequest {
                tests,
                ..Default::default()
            };
            assert!(matches!(
                plan(d.path(), None, Path::new("/j"), &req, &env),
                Err(RunnerError::BadSelection(_))
            ));
        }
        let req = RunRequest {
            markers: Some("slow".into()),
            ..Default::default()
        };
        assert!(matches!(
            plan(d.path(), None, Path::new("/j"), &req, &env),
            Err(RunnerError::Unsupported(m)) if m.contains("--grep")
        ));
    }

    #[test]
    fn a_missing_package_says_which_install_command() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join(".git")).unwrap();
        std::fs::write(
            d.path().join("package.json"),
            r#"{"devDependencies":{"@playwright/test":"1.65.1"}}"#,
        )
        .unwrap();
        std::fs::write(d.path().join("package-lock.json"), "{}").unwrap();
        let env = HostEnv::from_pairs([("PATH".to_string(), "/nonexistent".to_string())]);
        let check = *probe(d.path(), None, &env).unwrap_err();
        assert!(!check.ready);
        assert_eq!(check.setup_commands, ["npm ci"]);
        assert!(check.missing.iter().any(|m| m.starts_with("Node.js")));
        assert!(
            check
                .missing
                .iter()
                .any(|m| m.contains("listed in package.json but not installed"))
        );
        std::fs::remove_file(d.path().join("package-lock.json")).unwrap();
        std::fs::write(d.path().join("pnpm-lock.yaml"), "").unwrap();
        std::fs::write(d.path().join("package.json"), "{}").unwrap();
        let check = *probe(d.path(), None, &env).unwrap_err();
        assert_eq!(check.setup_commands, ["pnpm add -D @playwright/test"]);
    }

    fn probe_output(stdout: &str) -> ProbeOutput {
        ProbeOutput {
            exit_code: Some(0),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn missing_browsers_come_with_install_commands_and_the_offline_route() {
        let (d, env) = node_project();
        let plan = probe(d.path(), None, &env).unwrap();
        let out = probe_output(
            r#"{"node":"v20.20.2","browsers":[{"project":"chromium","browser":"chromium","channel":null,"source":"bundled","path":"/root/.cache/ms-playwright/chromium_headless_shell-1255","exists":false},{"project":"firefox","browser":"firefox","channel":null,"source":"bundled","path":"/x/firefox","exists":false}],"list_error":null,"core_error":null}"#,
        );
        let check = check(d.path(), &plan, &out);
        assert!(!check.ready);
        assert_eq!(check.version.as_deref(), Some("1.65.1"));
        assert_eq!(check.runtime_version.as_deref(), Some("v20.20.2"));
        assert_eq!(check.missing.len(), 2, "{:?}", check.missing);
        assert!(check.missing[0].contains("chromium for project 'chromium'"));
        assert_eq!(
            check.setup_commands,
            ["npx playwright install --with-deps chromium firefox"]
        );
        assert!(
            check
                .notes
                .iter()
                .any(|n| n.contains("apt-get install -y chromium")
                    && n.contains("executablePath: '/usr/bin/chromium'"))
        );
    }

    #[test]
    fn a_configured_executable_or_channel_counts_as_present() {
        let (d, env) = node_project();
        let plan = probe(d.path(), None, &env).unwrap();
        let out = probe_output(
            r#"{"node":"v20.20.2","browsers":[{"project":"chromium","browser":"chromium","channel":null,"source":"config","path":"/usr/bin/chromium","exists":true},{"project":"chrome","browser":"chromium","channel":"chrome","source":"channel","path":null,"exists":null}],"list_error":null,"core_error":null}"#,
        );
        let check = check(d.path(), &plan, &out);
        assert!(check.ready, "{check:?}");
        assert!(check.setup_commands.is_empty());
        assert!(check.notes[0].contains("channel 'chrome'"));
        let bad = probe_output(
            r#"{"node":"v20.20.2","browsers":[{"project":"chromium","browser":"chromium","channel":null,"source":"config","path":"/opt/nope","exists":false}],"list_error":null,"core_error":null}"#,
        );
        let check = super::check(d.path(), &plan, &bad);
        assert!(!check.ready);
        assert!(check.missing[0].contains("/opt/nope, which does not exist"));
        // It also says how to fix it, not only what is wrong.
        assert!(
            check
                .notes
                .iter()
                .any(|n| n.contains("point launchOptions.executablePath") && n.contains("install"))
        );
        if cfg!(target_os = "linux") {
            assert!(
                check
                    .setup_commands
                    .iter()
                    .any(|c| c.contains("apt-get install -y chromium")),
                "{check:?}"
            );
        }
    }

    #[test]
    fn selectors_round_trip_through_the_plan() {
        assert_eq!(
            selector("tests/a.spec.ts", Some(3), None),
            "tests/a.spec.ts:3"
        );
        let s = selector("tests/a.spec.ts", Some(3), Some("webkit"));
        assert_eq!(s, "tests/a.spec.ts:3 --project=webkit");
        assert_eq!(split_selector(&s), ("tests/a.spec.ts:3", Some("webkit")));
    }
}

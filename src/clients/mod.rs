//! IDE clients: where each keeps its MCP server configuration, and the entry that launches
//! testrelay in the form each expects.
//!
//! The facts per client (file, top-level key, which variables it expands, where it starts
//! servers) are in one table-like `match` here; `edit` merges an entry into a file while
//! keeping everything else in it (other servers, comments, formatting), and never rewrites a
//! file it cannot parse. Nothing here knows about the command line.

mod edit;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

pub use edit::{EditError, Outcome, render, write_entry};

/// The name testrelay's entry has in every client's configuration.
pub const SERVER_NAME: &str = "testrelay";

/// An IDE (or agent) that starts testrelay as a stdio MCP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    /// VS Code (Copilot agent mode): `.vscode/mcp.json`.
    Vscode,
    /// Cursor: `.cursor/mcp.json`, or `~/.cursor/mcp.json` with --global.
    Cursor,
    /// Windsurf: `~/.codeium/windsurf/mcp_config.json` (global only).
    Windsurf,
    /// Claude Code: `.mcp.json` in the project.
    Claude,
}

/// Which configuration file: the project's own or the user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Project,
    Global,
}

/// How testrelay is launched: the same for every client, written in each one's form.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The absolute path of the installed binary.
    pub command: PathBuf,
    /// Arguments that follow the workspace argument. This is where options that apply to
    /// every client go, such as a cloud server (`--server URL`) once that exists.
    pub extra_args: Vec<String>,
}

/// One configuration file and the entry to put in it.
#[derive(Debug, Clone)]
pub struct Target {
    pub client: Client,
    pub scope: Scope,
    pub file: PathBuf,
    /// The object that holds the servers: `servers` for VS Code, `mcpServers` elsewhere.
    pub top_key: &'static str,
    pub entry: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    UnsupportedScope(String),
    #[error("no home directory is known (HOME is not set), so {0} cannot be found")]
    NoHome(&'static str),
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::Vscode => "VS Code",
            Client::Cursor => "Cursor",
            Client::Windsurf => "Windsurf",
            Client::Claude => "Claude Code",
        }
    }

    /// The scope used when neither `--project` nor `--global` is given.
    pub fn default_scope(self) -> Scope {
        match self {
            Client::Windsurf => Scope::Global,
            Client::Vscode | Client::Cursor | Client::Claude => Scope::Project,
        }
    }

    /// Where the entry goes and what it says, for `project` (an absolute directory).
    pub fn target(
        self,
        scope: Scope,
        project: &Path,
        home: Option<&Path>,
        launch: &Launch,
    ) -> Result<Target, ClientError> {
        let home_join = |rel: &str| {
            home.map(|h| h.join(rel))
                .ok_or(ClientError::NoHome("the user configuration"))
        };
        let command = launch.command.display().to_string();
        // VS Code and Cursor expand ${workspaceFolder} per window, so one entry serves every
        // project; Windsurf expands no such variable, so it gets this project's absolute
        // path; Claude Code starts servers in the project directory, which testrelay
        // already takes as the workspace.
        let args = |workspace: Option<String>| -> Vec<String> {
            workspace
                .map(|w| vec!["--workspace".to_string(), w])
                .unwrap_or_default()
                .into_iter()
                .chain(launch.extra_args.iter().cloned())
                .collect()
        };
        let folder = Some("${workspaceFolder}".to_string());
        let (file, top_key, entry) = match (self, scope) {
            (Client::Vscode, Scope::Project) => (
                project.join(".vscode/mcp.json"),
                "servers",
                json!({"type": "stdio", "command": command, "args": args(folder)}),
            ),
            (Client::Vscode, Scope::Global) => {
                return Err(ClientError::UnsupportedScope(
                    "VS Code keeps its user MCP configuration in its profile: run the command `MCP: Open User Configuration` and add the entry that `testrelay init vscode --print` shows, or configure the project with `testrelay init vscode`".into(),
                ));
            }
            (Client::Cursor, Scope::Project) => (
                project.join(".cursor/mcp.json"),
                "mcpServers",
                json!({"command": command, "args": args(folder)}),
            ),
            (Client::Cursor, Scope::Global) => (
                home_join(".cursor/mcp.json")?,
                "mcpServers",
                json!({"command": command, "args": args(folder)}),
            ),
            (Client::Windsurf, Scope::Global) => (
                home_join(".codeium/windsurf/mcp_config.json")?,
                "mcpServers",
                json!({"command": command, "args": args(Some(project.display().to_string()))}),
            ),
            (Client::Windsurf, Scope::Project) => {
                return Err(ClientError::UnsupportedScope(
                    "Windsurf reads only its global configuration (~/.codeium/windsurf/mcp_config.json): run `testrelay init windsurf` (it writes this project's path there)".into(),
                ));
            }
            (Client::Claude, Scope::Project) => (
                project.join(".mcp.json"),
                "mcpServers",
                json!({"type": "stdio", "command": command, "args": args(None)}),
            ),
            (Client::Claude, Scope::Global) => {
                return Err(ClientError::UnsupportedScope(format!(
                    "Claude Code manages its user configuration itself: run `claude mcp add --scope user {SERVER_NAME} -- {command}` (testrelay then uses the directory claude starts in), or configure the project with `testrelay init claude`"
                )));
            }
        };
        Ok(Target {
            client: self,
            scope,
            file,
            top_key,
            entry,
        })
    }

    /// What to do in the IDE once the file is written.
    pub fn next_step(self, project: &Path) -> String {
        match self {
            Client::Vscode => "in VS Code, open this folder, run `MCP: List Servers`, start testrelay, then ask the agent (agent mode) to run the tests".into(),
            Client::Cursor => "in Cursor, open Settings → MCP and enable testrelay, then ask the agent to run the tests".into(),
            Client::Windsurf => format!(
                "in Windsurf, refresh the MCP servers in Cascade's panel; the workspace is fixed to {} (run `testrelay init windsurf` in another project to switch)",
                project.display()
            ),
            Client::Claude => format!(
                "start `claude` in {} and approve the project's testrelay server when asked (`/mcp` lists it)",
                project.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch() -> Launch {
        Launch {
            command: PathBuf::from("/opt/bin/testrelay"),
            extra_args: Vec::new(),
        }
    }

    #[test]
    fn each_client_gets_its_own_file_key_and_workspace_form() {
        let project = Path::new("/src/app");
        let home = Some(Path::new("/home/u"));
        let t = |c: Client, s: Scope| c.target(s, project, home, &launch());
        let vscode = t(Client::Vscode, Scope::Project).unwrap();
        assert_eq!(
            (vscode.file.as_path(), vscode.top_key),
            (Path::new("/src/app/.vscode/mcp.json"), "servers")
        );
        assert_eq!(
            vscode.entry,
            json!({"type": "stdio", "command": "/opt/bin/testrelay", "args": ["--workspace", "${workspaceFolder}"]})
        );
        let cursor = t(Client::Cursor, Scope::Global).unwrap();
        assert_eq!(cursor.file, Path::new("/home/u/.cursor/mcp.json"));
        assert_eq!(cursor.entry["args"][1], "${workspaceFolder}");
        let windsurf = t(Client::Windsurf, Scope::Global).unwrap();
        assert_eq!(
            windsurf.file,
            Path::new("/home/u/.codeium/windsurf/mcp_config.json")
        );
        assert_eq!(windsurf.entry["args"], json!(["--workspace", "/src/app"]));
        let claude = t(Client::Claude, Scope::Project).unwrap();
        assert_eq!(
            (claude.file.as_path(), &claude.entry["args"]),
            (Path::new("/src/app/.mcp.json"), &json!([]))
        );
        for (c, s) in [
            (Client::Vscode, Scope::Global),
            (Client::Windsurf, Scope::Project),
            (Client::Claude, Scope::Global),
        ] {
            assert!(matches!(t(c, s), Err(ClientError::UnsupportedScope(_))));
        }
    }

    #[test]
    fn extra_arguments_reach_every_client() {
        let launch = Launch {
            extra_args: vec!["--server".into(), "https://example.test/mcp".into()],
            ..launch()
        };
        for c in [
            Client::Vscode,
            Client::Cursor,
            Client::Windsurf,
            Client::Claude,
        ] {
            let t = c
                .target(
                    c.default_scope(),
                    Path::new("/p"),
                    Some(Path::new("/h")),
                    &launch,
                )
                .unwrap();
            let args = t.entry["args"].as_array().unwrap();
            assert_eq!(
                args[args.len() - 2..],
                [json!("--server"), json!("https://example.test/mcp")]
            );
        }
    }
}

//! testrelay: a local stdio MCP server that runs a project's tests as background jobs.
//!
//! Data flows one way:
//! `commands` (CLI) and `server` (MCP tools) → `jobs` (spawn, supervise, persist) →
//! `runners` (detect, plan, parse; pure) → `report` (normalized results and exports);
//! `workspace` resolves the project root and packages it (gitignore-aware, never secrets);
//! `clients` knows each IDE's MCP configuration file and edits it without losing anything.
//! Only `jobs` spawns processes; stdout belongs to JSON-RPC in serve mode, so human output
//! goes through `printer` in CLI subcommands only.

pub mod cli;
pub mod clients;
pub mod cloud;
pub mod commands;
pub mod hybrid;
pub mod jobs;
mod printer;
pub mod report;
pub mod runners;
pub mod server;
pub mod workspace;

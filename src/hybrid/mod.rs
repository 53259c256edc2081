//! Hybrid workflows: local work (packaging the workspace, test runs) combined with calls to
//! the hosted service's contract tools (`cloud::contract`, `docs/cloud-contract.md`).
//!
//! The MCP tools (`server`) and the CLI (`commands`) both call these functions, so the
//! two share one code path. Nothing here speaks HTTP (that is `cloud`) or spawns
//! processes (that is `jobs`); file contents never reach a result, only paths and counts.

mod feature;
mod project;
mod report;
mod script;

pub use project::{CreateProjectOutcome, CreateProjectRequest, ExcludedSecret, create_project};
pub use report::{
    CasePreview, ReportOutcome, ReportRequest, SyncOutcome, find_case_id, report_job, sync_outbox,
};

pub use feature::{
    FeatureOutcome, FeatureRequest, SentFile, create_tests_for_feature, read_code_files,
};
pub use script::{ExecuteRequest, Executed, execute_case};

/// Progress of a long step: (done, total, message).
pub type ProgressFn<'a> = &'a (dyn Fn(u64, u64, String) + Send + Sync);

#[derive(Debug, thiserror::Error)]
pub enum HybridError {
    #[error(transparent)]
    Workspace(#[from] crate::workspace::WorkspaceError),
    #[error(transparent)]
    Contract(#[from] crate::cloud::contract::ContractError),
    #[error("failed to {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl HybridError {
    fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        HybridError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

//! Background test jobs: the only module that spawns processes.
//!
//! A [`Registry`] starts jobs from runner [`Plan`](crate::runners::Plan)s, queues them behind a
//! concurrency limit, runs each under a [`supervisor`] process that owns its whole process
//! tree, drains its output, follows its event file for live progress and persists every
//! transition under the state directory. It knows nothing about MCP.

mod capture;
mod model;
mod output;
mod probe;
pub mod process;
mod registry;
pub mod shell_env;
mod store;
pub mod supervisor;

pub use model::{JobId, JobRecord, JobStatus, format_ms, now_ms};
pub use output::OutputPage;
pub use probe::check_environment;
pub use registry::{
    JobError, JobSettings, JobView, Registry, Snapshot, StartSpec, Started, Stream,
};
pub use store::Store;

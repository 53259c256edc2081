//! Normalized test results: one model every runner adapter produces, and its exports.
//!
//! The model is shaped after CTRF (name, status, duration, file, line, message, trace) with
//! the things CTRF lacks kept explicitly: the runner's own status word (`raw_status`), the
//! selector that reruns exactly one test, and file-level errors such as a module that fails
//! to import. This module parses and writes data only; it never spawns or talks to the network.

mod ctrf;
mod junit;
mod model;

pub use ctrf::{CtrfError, from_ctrf_json, to_ctrf_json};
pub use junit::to_junit_xml;
pub use model::{Attachment, FileError, Summary, TestCase, TestReport, TestStatus, ToolInfo};

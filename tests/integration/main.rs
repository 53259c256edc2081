//! One integration-test binary: the real `testrelay` binary over stdio, driven by rmcp's
//! client (as IDEs do) and by a raw JSON-RPC pipe for protocol-level checks.

mod cli;
mod cloud;
mod deliver;
mod hybrid;
mod jest;
mod jobs;
mod matrix;
mod oauth;
mod playwright;
mod protocol;
mod supervisor;
mod support;
mod tools;
mod workspace;

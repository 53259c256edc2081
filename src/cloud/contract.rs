//! The cloud contract: the upstream tools the hybrid tools call, with typed arguments and
//! results (see `docs/cloud-contract.md`). This file only encodes calls and decodes
//! answers; what to call when is the hybrid layer's business.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::bridge::Bridge;

pub const UPLOAD_CODEBASE_CHUNK: &str = "upload_codebase_chunk";
pub const CREATE_PROJECT_FROM_CODEBASE: &str = "create_project_from_codebase";
pub const GENERATE_TESTS_FOR_FEATURE: &str = "generate_tests_for_feature";
pub const GET_TEST_SCRIPT_FOR_EXECUTION: &str = "get_test_script_for_execution";
pub const REGISTER_CLIENT_EXECUTION: &str = "register_client_execution";
pub const UPDATE_EXECUTION_PROGRESS: &str = "update_execution_progress";
pub const COMPLETE_CLIENT_EXECUTION: &str = "complete_client_execution";

/// Upstream tools `create_project_from_current_codebase` needs.
pub const CREATE_PROJECT_TOOLS: &[&str] = &[UPLOAD_CODEBASE_CHUNK, CREATE_PROJECT_FROM_CODEBASE];
/// Upstream tools `report_test_results` needs.
pub const REPORT_TOOLS: &[&str] = &[
    REGISTER_CLIENT_EXECUTION,
    UPDATE_EXECUTION_PROGRESS,
    COMPLETE_CLIENT_EXECUTION,
];
/// Upstream tools `execute_test_case_directly` needs.
pub const SCRIPT_TOOLS: &[&str] = &[GET_TEST_SCRIPT_FOR_EXECUTION];
/// Upstream tools `create_tests_for_specific_feature` needs.
pub const FEATURE_TOOLS: &[&str] = &[GENERATE_TESTS_FOR_FEATURE];

/// Largest decoded chunk `upload_codebase_chunk` accepts.
pub const CHUNK_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The upstream tool answered with `isError` (or the call could not be made).
    #[error("the cloud tool {tool} failed: {message}")]
    Tool { tool: String, message: String },
    #[error("the cloud tool {tool} answered without the expected result: {detail}")]
    Malformed { tool: String, detail: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadChunk {
    pub upload_id: String,
    pub index: u64,
    pub count: u64,
    pub data: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadAck {
    pub upload_id: String,
    pub received: u64,
    #[serde(default)]
    pub complete: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateProject {
    pub upload_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ai_provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ai_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_test_cases: Option<u32>,
}

/// A project in the hosted service.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Project {
    pub project_id: String,
    pub name: String,
    /// For example `analyzing` or `ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Where a human can see the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Test cases generated so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_cases: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CodeFile {
    /// Relative to the workspace root, forward slashes.
    pub path: String,
    pub content: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateTests {
    pub project_id: String,
    pub feature_description: String,
    pub code_files: Vec<CodeFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_test_cases: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suite_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ai_provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ai_model: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GeneratedCase {
    pub test_case_id: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GeneratedTests {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite_id: Option<String>,
    pub test_cases: Vec<GeneratedCase>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetScript {
    pub test_case_id: String,
    pub framework: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Script {
    pub script: String,
    pub filename: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RegisterExecution {
    pub project_id: String,
    pub run_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_description: Option<String>,
    pub client_run_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    pub total_cases: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registered {
    pub execution_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UpdateProgress {
    pub execution_id: String,
    pub test_case_id: String,
    /// passed, failed, errored or skipped.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screenshot_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screenshot_mime: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct RunCounts {
    pub passed: u64,
    pub failed: u64,
    pub errored: u64,
    pub skipped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompleteExecution {
    pub execution_id: String,
    pub summary: RunCounts,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Completed {
    pub execution_id: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Any answer whose content we do not inspect.
#[derive(Debug, Clone, Deserialize)]
pub struct Ignored {}

/// Call `tool` with `args` and decode its result: `structuredContent`, else the first
/// text block parsed as JSON.
pub async fn call<A: Serialize, R: DeserializeOwned>(
    bridge: &Bridge,
    tool: &str,
    args: &A,
    cancel: CancellationToken,
) -> Result<R, ContractError> {
    let malformed = |detail: String| ContractError::Malformed {
        tool: tool.to_string(),
        detail,
    };
    let arguments = match serde_json::to_value(args) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => return Err(malformed("arguments are not an object".into())),
        Err(e) => return Err(malformed(e.to_string())),
    };
    let result = bridge.call_upstream(tool, arguments, cancel).await;
    let text = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    if result.is_error == Some(true) {
        return Err(ContractError::Tool {
            tool: tool.to_string(),
            message: if text.is_empty() {
                "no message".into()
            } else {
                text
            },
        });
    }
    let value = match result.structured_content {
        Some(v) => v,
        None => serde_json::from_str(&text).map_err(|e| {
            malformed(format!(
                "no structuredContent and the text is not JSON: {e}"
            ))
        })?,
    };
    serde_json::from_value(value).map_err(|e| malformed(e.to_string()))
}

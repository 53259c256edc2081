//! `create_tests_for_specific_feature`: read the code files the model named, inside the
//! workspace only, never secrets (the workspace module's detection by name and by
//! content), within size caps, and ask the service to generate tests from them.

use tokio_util::sync::CancellationToken;

use super::HybridError;
use crate::cloud::Bridge;
use crate::cloud::contract::{
    self, CodeFile, GENERATE_TESTS_FOR_FEATURE, GenerateTests, GeneratedTests,
};
use crate::workspace::{WorkspaceRoot, secret_by_name, secret_in_content};

/// Per file, as the contract promises.
pub const FILE_CAP: usize = 256 * 1024;
/// All files together.
pub const TOTAL_CAP: usize = 1024 * 1024;
pub const MAX_FILES: usize = 50;

#[derive(Debug, Clone, Default)]
pub struct FeatureRequest {
    pub project_id: String,
    pub feature_description: String,
    pub code_files: Vec<String>,
    pub test_types: Option<Vec<String>>,
    pub minimum_test_cases: Option<u32>,
    pub suite_name: Option<String>,
    pub ai_provider: Option<String>,
    pub ai_model: Option<String>,
}

/// A file that was sent: its path and size, never its content.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct SentFile {
    pub path: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct FeatureOutcome {
    pub generated: GeneratedTests,
    pub files_sent: Vec<SentFile>,
}

/// Read `paths` (relative to the root, or absolute inside it) for sending. Any refused
/// file fails the whole request, naming the file and why, so nothing is sent partially.
pub fn read_code_files(
    root: &WorkspaceRoot,
    paths: &[String],
) -> Result<Vec<CodeFile>, HybridError> {
    if paths.is_empty() {
        return Err(HybridError::Invalid(
            "code_files is empty: name the files that implement the feature".into(),
        ));
    }
    if paths.len() > MAX_FILES {
        return Err(HybridError::Invalid(format!(
            "{} code files is more than the {MAX_FILES} allowed: name the files that matter most",
            paths.len()
        )));
    }
    let mut out = Vec::new();
    let mut total = 0;
    for p in paths {
        let path = root.resolve_inside(p)?;
        let rel = path
            .strip_prefix(root.path())
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        // The name asked for and the name it resolves to (a symlink to `.env`).
        for name in [std::path::Path::new(p).file_name(), path.file_name()]
            .into_iter()
            .flatten()
        {
            if let Some(why) = secret_by_name(&name.to_string_lossy()) {
                return Err(HybridError::Invalid(format!(
                    "refused to send {rel}: {why}"
                )));
            }
        }
        if !path.is_file() {
            return Err(HybridError::Invalid(format!("{rel} is not a file")));
        }
        let bytes = std::fs::read(&path).map_err(|e| HybridError::io("read", &path, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(why) = secret_in_content(&name, &bytes) {
            return Err(HybridError::Invalid(format!(
                "refused to send {rel}: {why}"
            )));
        }
        if bytes.len() > FILE_CAP {
            return Err(HybridError::Invalid(format!(
                "{rel} is {} bytes, over the {FILE_CAP} byte cap per file: name a smaller file",
                bytes.len()
            )));
        }
        let Ok(content) = String::from_utf8(bytes) else {
            return Err(HybridError::Invalid(format!("{rel} is not UTF-8 text")));
        };
        total += content.len();
        if total > TOTAL_CAP {
            return Err(HybridError::Invalid(format!(
                "the code files add up to more than {TOTAL_CAP} bytes: name fewer files"
            )));
        }
        out.push(CodeFile { path: rel, content });
    }
    Ok(out)
}

pub async fn create_tests_for_feature(
    bridge: &Bridge,
    root: &WorkspaceRoot,
    req: FeatureRequest,
    cancel: CancellationToken,
) -> Result<FeatureOutcome, HybridError> {
    if req.project_id.trim().is_empty() || req.feature_description.trim().is_empty() {
        return Err(HybridError::Invalid(
            "project_id and feature_description are required".into(),
        ));
    }
    let files = read_code_files(root, &req.code_files)?;
    let files_sent = files
        .iter()
        .map(|f| SentFile {
            path: f.path.clone(),
            bytes: f.content.len() as u64,
        })
        .collect();
    let generated: GeneratedTests = contract::call(
        bridge,
        GENERATE_TESTS_FOR_FEATURE,
        &GenerateTests {
            project_id: req.project_id,
            feature_description: req.feature_description,
            code_files: files,
            test_types: req.test_types,
            minimum_test_cases: req.minimum_test_cases,
            suite_name: req.suite_name,
            ai_provider: req.ai_provider,
            ai_model: req.ai_model,
        },
        cancel,
    )
    .await?;
    Ok(FeatureOutcome {
        generated,
        files_sent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, WorkspaceRoot) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("src")).unwrap();
        std::fs::write(d.path().join("src/cart.py"), "def total(): return 1\n").unwrap();
        std::fs::write(d.path().join(".env"), "A=1\n").unwrap();
        std::fs::write(
            d.path().join("src/keys.py"),
            "KEY = 'AKIAIOSFODNN7EXAMPLE'\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(d.path().join(".env"), d.path().join("src/settings.txt"))
            .unwrap();
        let r = WorkspaceRoot::open(d.path(), None).unwrap();
        (d, r)
    }

    #[test]
    fn reads_files_inside_the_workspace() {
        let (_d, r) = root();
        let files = read_code_files(&r, &["src/cart.py".into()]).unwrap();
        assert_eq!(files[0].path, "src/cart.py");
        assert!(files[0].content.contains("def total"));
    }

    #[test]
    fn refuses_outside_paths_and_secrets() {
        let (_d, r) = root();
        let outside = tempfile::NamedTempFile::new().unwrap();
        for p in [
            outside.path().to_string_lossy().into_owned(),
            "../x.py".into(),
            ".env".into(),
            "src/settings.txt".into(),
            "src/keys.py".into(),
        ] {
            assert!(
                read_code_files(&r, std::slice::from_ref(&p)).is_err(),
                "{p} was accepted"
            );
        }
    }
}

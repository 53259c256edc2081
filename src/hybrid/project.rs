//! `create_project_from_current_codebase`: package the workspace into the state
//! directory, upload it in chunks of at most 1 MiB (one retry per chunk), then create the
//! project from the upload.

use std::path::Path;

use base64::Engine;
use tokio_util::sync::CancellationToken;

use super::{HybridError, ProgressFn};
use crate::cloud::Bridge;
use crate::cloud::contract::{
    self, CHUNK_BYTES, CREATE_PROJECT_FROM_CODEBASE, CreateProject, Project, UPLOAD_CODEBASE_CHUNK,
    UploadAck, UploadChunk,
};
use crate::workspace::{self, ExcludeKind, PackOptions, WorkspaceRoot};

/// Pause before retrying a failed chunk.
const RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

#[derive(Debug, Clone, Default)]
pub struct CreateProjectRequest {
    pub name: String,
    pub description: Option<String>,
    pub ai_provider: Option<String>,
    pub ai_model: Option<String>,
    pub minimum_test_cases: Option<u32>,
}

/// A file left out of the package as a secret: its path and why, never its content.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ExcludedSecret {
    pub path: String,
    pub reason: String,
}

/// What was created and exactly what was sent.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct CreateProjectOutcome {
    pub project: Project,
    pub workspace_root: String,
    pub upload_id: String,
    /// Files in the uploaded archive.
    pub files: usize,
    /// Their total size before compression.
    pub bytes: u64,
    /// Size of the uploaded ZIP.
    pub archive_bytes: u64,
    pub archive_sha256: String,
    /// Rough token count of the packaged text.
    pub est_tokens: u64,
    pub chunks: u64,
    /// Chunks that failed once and succeeded on the retry.
    pub retried_chunks: u64,
    /// Files left out because they are or contain secrets.
    pub excluded_secrets: Vec<ExcludedSecret>,
    /// Other files left out (dependencies, build output, binaries, too big), by kind.
    pub excluded_other: usize,
}

/// Package `root`, upload it and create a project. The archive is written under
/// `state_dir/uploads` and removed once uploaded.
pub async fn create_project(
    bridge: &Bridge,
    root: WorkspaceRoot,
    state_dir: &Path,
    req: CreateProjectRequest,
    progress: ProgressFn<'_>,
    cancel: CancellationToken,
) -> Result<CreateProjectOutcome, HybridError> {
    if req.name.trim().is_empty() {
        return Err(HybridError::Invalid(
            "the project name is empty: pass `name`".into(),
        ));
    }
    let dir = state_dir.join("uploads");
    std::fs::create_dir_all(&dir).map_err(|e| HybridError::io("create", &dir, e))?;
    progress(0, 1, "packaging the workspace".into());
    let pack_root = root.clone();
    let summary = tokio::task::spawn_blocking(move || {
        workspace::pack_to_dir(&pack_root, &PackOptions::default(), &dir)
    })
    .await
    .map_err(|e| HybridError::Invalid(format!("packaging the workspace failed: {e}")))??;
    let listing = &summary.listing;
    let bytes = std::fs::read(&summary.path).map_err(|e| HybridError::io("read", &summary.path, e));
    let _ = std::fs::remove_file(&summary.path);
    let bytes = bytes?;

    let upload_id = format!(
        "tr-{}-{}",
        &summary.archive_sha256[..16],
        crate::jobs::now_ms()
    );
    let pieces: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[][..]]
    } else {
        bytes.chunks(CHUNK_BYTES).collect()
    };
    let count = pieces.len() as u64;
    // Progress only ever increases: packaging is step 1, chunk i is step i + 2.
    progress(
        1,
        count + 1,
        format!(
            "packaged {} files, {} bytes (about {} tokens) into a {} byte archive",
            listing.files.len(),
            listing.total_bytes,
            listing.est_tokens,
            summary.archive_bytes
        ),
    );
    let mut retried = 0;
    for (index, piece) in pieces.iter().enumerate() {
        let last = index as u64 + 1 == count;
        let args = UploadChunk {
            upload_id: upload_id.clone(),
            index: index as u64,
            count,
            data: base64::engine::general_purpose::STANDARD.encode(piece),
            sha256: last.then(|| summary.archive_sha256.clone()),
            total_bytes: last.then_some(summary.archive_bytes),
        };
        let first: Result<UploadAck, _> =
            contract::call(bridge, UPLOAD_CODEBASE_CHUNK, &args, cancel.clone()).await;
        if let Err(e) = first {
            if cancel.is_cancelled() {
                return Err(e.into());
            }
            tracing::warn!(index, error = %e, "chunk upload failed; retrying once");
            retried += 1;
            // A transport failure makes the bridge reconnect: give it a moment.
            tokio::time::sleep(RETRY_DELAY).await;
            let _: UploadAck =
                contract::call(bridge, UPLOAD_CODEBASE_CHUNK, &args, cancel.clone()).await?;
        }
        progress(
            index as u64 + 2,
            count + 1,
            format!("uploaded chunk {} of {count}", index + 1),
        );
    }

    let project: Project = contract::call(
        bridge,
        CREATE_PROJECT_FROM_CODEBASE,
        &CreateProject {
            upload_id: upload_id.clone(),
            name: req.name,
            description: req.description,
            ai_provider: req.ai_provider,
            ai_model: req.ai_model,
            minimum_test_cases: req.minimum_test_cases,
        },
        cancel,
    )
    .await?;

    let listing = summary.listing;
    let excluded_secrets = listing
        .excluded
        .iter()
        .filter(|e| e.kind == ExcludeKind::Secret)
        .map(|e| ExcludedSecret {
            path: e.path.clone(),
            reason: e.reason.clone(),
        })
        .collect::<Vec<_>>();
    Ok(CreateProjectOutcome {
        project,
        workspace_root: root.path().display().to_string(),
        upload_id,
        files: listing.files.len(),
        bytes: listing.total_bytes,
        archive_bytes: summary.archive_bytes,
        archive_sha256: summary.archive_sha256,
        est_tokens: listing.est_tokens,
        chunks: count,
        retried_chunks: retried,
        excluded_other: listing.excluded.len() - excluded_secrets.len(),
        excluded_secrets,
    })
}

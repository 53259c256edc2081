//! Job persistence: one directory per job under the state directory.
//!
//! `jobs/<id>/job.json` is written atomically (temporary file, then rename) on every state
//! change. At start-up [`Store::recover`] marks jobs whose owning process died as
//! `interrupted` and removes the oldest finished jobs beyond the retention bounds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::model::{JobId, JobRecord, JobStatus, now_ms};
use super::process;

/// Keep at most this many finished jobs...
pub const KEEP_JOBS: usize = 200;
/// ...and none older than this.
pub const KEEP_FOR: Duration = Duration::from_secs(14 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to create the state directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no job with id {0}")]
    NotFound(String),
    #[error("job record {path} is unreadable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// What [`Store::recover`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    pub interrupted: usize,
    pub removed: usize,
}

/// Write `bytes` to `path` so a reader never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "tmp-{}-{:x}",
        std::process::id(),
        fastrand::u32(..)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl Store {
    pub fn new(root: PathBuf) -> Self {
        Store { root }
    }

    /// `$TESTRELAY_STATE_DIR`, else the per-user state directory (XDG state dir on Linux).
    pub fn default_root() -> PathBuf {
        dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .unwrap_or_else(std::env::temp_dir)
            .join("testrelay")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn jobs_dir(&self) -> PathBuf {
        self.root.join("jobs")
    }

    pub fn job_dir(&self, id: &JobId) -> PathBuf {
        self.jobs_dir().join(id.as_str())
    }

    /// Create a fresh job directory with a new id.
    pub fn create_job_dir(&self) -> Result<(JobId, PathBuf), StoreError> {
        let jobs = self.jobs_dir();
        std::fs::create_dir_all(&jobs).map_err(|source| StoreError::CreateDir {
            path: jobs.clone(),
            source,
        })?;
        loop {
            let id = JobId::generate(std::time::SystemTime::now());
            let dir = self.job_dir(&id);
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok((id, dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(StoreError::CreateDir { path: dir, source }),
            }
        }
    }

    pub fn save(&self, record: &JobRecord) -> Result<(), StoreError> {
        let path = self.job_dir(&record.id).join("job.json");
        let json = serde_json::to_vec_pretty(record).expect("job record serializes");
        write_atomic(&path, &json).map_err(|source| StoreError::Write { path, source })
    }

    pub fn load(&self, id: &JobId) -> Result<JobRecord, StoreError> {
        let path = self.job_dir(id).join("job.json");
        let text =
            std::fs::read_to_string(&path).map_err(|_| StoreError::NotFound(id.to_string()))?;
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            path,
            reason: e.to_string(),
        })
    }

    /// Every readable job record, newest first.
    pub fn load_all(&self) -> Vec<JobRecord> {
        let Ok(dir) = std::fs::read_dir(self.jobs_dir()) else {
            return Vec::new();
        };
        let mut ids: Vec<JobId> = dir
            .flatten()
            .filter_map(|e| JobId::parse(e.file_name().to_str()?))
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.iter().filter_map(|id| self.load(id).ok()).collect()
    }

    /// Mark jobs of dead owners interrupted; drop finished jobs beyond the retention bounds.
    pub fn recover(&self) -> Recovery {
        let mut stats = Recovery::default();
        let now = now_ms();
        let mut kept_finished = 0usize;
        for mut record in self.load_all() {
            if !record.status.is_terminal() {
                if process::is_alive(record.owner.pid, record.owner.start_ticks) {
                    continue;
                }
                // Normally the job's supervisor stopped the run when testrelay died; if the
                // supervisor died too, whatever is left still carries the job's marker.
                let leftovers =
                    process::kill_marked(super::registry::JOB_MARKER, record.id.as_str());
                let was = record.status.as_str();
                record.reason = Some(match leftovers {
                    0 => format!(
                        "testrelay stopped while this job was {was}; the run was stopped with it"
                    ),
                    n => format!(
                        "testrelay stopped while this job was {was}; {n} leftover processes of the run were stopped at the next start"
                    ),
                });
                record.status = JobStatus::Interrupted;
                record.finished_at_ms.get_or_insert(now);
                if self.save(&record).is_ok() {
                    stats.interrupted += 1;
                }
            }
            kept_finished += 1;
            let age = now.saturating_sub(record.created_at_ms);
            if (kept_finished > KEEP_JOBS || age > KEEP_FOR.as_millis() as u64)
                && std::fs::remove_dir_all(self.job_dir(&record.id)).is_ok()
            {
                stats.removed += 1;
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::model::Owner;
    use crate::runners::{Framework, RunRequest};

    fn record(store: &Store, status: JobStatus, owner_pid: u32, created: u64) -> JobRecord {
        let (id, _) = store.create_job_dir().unwrap();
        let r = JobRecord {
            id,
            status,
            reason: None,
            framework: Framework::Pytest,
            project_dir: "/p".into(),
            command: "python -m pytest".into(),
            toolchain: "python".into(),
            request: RunRequest::default(),
            env_keys: vec![],
            timeout_secs: 300,
            idempotency_key: None,
            created_at_ms: created,
            started_at_ms: None,
            finished_at_ms: None,
            exit_code: None,
            signal: None,
            summary: None,
            done: 0,
            total: None,
            owner: Owner {
                pid: owner_pid,
                start_ticks: process::start_ticks(owner_pid),
            },
            supervisor_pid: None,
            cloud_test_case_id: None,
        };
        store.save(&r).unwrap();
        r
    }

    #[test]
    fn save_load_round_trip_and_no_temp_files_left() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path().into());
        let r = record(&store, JobStatus::Passed, 1, now_ms());
        assert_eq!(store.load(&r.id).unwrap(), r);
        let names: Vec<_> = std::fs::read_dir(store.job_dir(&r.id))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["job.json"]);
    }

    #[test]
    fn recover_marks_dead_owners_interrupted_and_spares_live_ones() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path().into());
        let dead = record(&store, JobStatus::Running, u32::MAX - 7, now_ms());
        let live = record(&store, JobStatus::Running, std::process::id(), now_ms());
        let old = record(
            &store,
            JobStatus::Passed,
            1,
            now_ms() - KEEP_FOR.as_millis() as u64 - 1,
        );
        let stats = store.recover();
        assert_eq!(
            stats,
            Recovery {
                interrupted: 1,
                removed: 1
            }
        );
        let after = store.load(&dead.id).unwrap();
        assert_eq!(after.status, JobStatus::Interrupted);
        assert!(after.reason.unwrap().contains("testrelay stopped"));
        assert_eq!(store.load(&live.id).unwrap().status, JobStatus::Running);
        assert!(matches!(store.load(&old.id), Err(StoreError::NotFound(_))));
    }
}

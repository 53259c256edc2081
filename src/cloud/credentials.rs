//! Where credentials live: the OS keychain (macOS: the login keychain; Windows: Credential
//! Manager; Linux: Secret Service, then the kernel keyutils store), or, only when the user
//! opts in, a 0600 file in a 0700 directory. Other platforms have no keychain support.
//!
//! One entry per server URL and kind (service `testrelay:<url>`, user `api-key` or
//! `oauth`), independent of testrelay's version, holding the secret as UTF-8 bytes. Where
//! an entry is too small for OAuth tokens (Windows: 2,560 bytes), `chunked` splits the
//! secret across several. Secrets are wrapped in [`Secret`], whose `Debug` never shows the
//! value, and nothing here logs or returns one in an error. Keychain calls block, so
//! callers run them on a blocking thread.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use url::Url;

use super::chunked::{self, ChunkError};
use super::error::CloudError;

/// Which store holds credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Keychain,
    File,
}

impl std::str::FromStr for StoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "keychain" => Ok(StoreKind::Keychain),
            "file" => Ok(StoreKind::File),
            other => Err(format!(
                "unknown credential store '{other}' (keychain or file)"
            )),
        }
    }
}

/// A credential. Its value is only reachable through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

enum Backend {
    Keychain {
        store: Arc<keyring_core::CredentialStore>,
        /// Secrets longer than this are split across entries.
        entry_limit: Option<usize>,
    },
    File(PathBuf),
}

/// An opened credential store.
pub struct Credentials {
    backend: Backend,
    description: String,
}

/// What an entry holds: the keychain "user" of the entry for a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An API key sent as `Authorization: Bearer`.
    ApiKey,
    /// OAuth tokens and client registration (rmcp's `StoredCredentials` as JSON).
    OAuth,
}

impl Kind {
    fn user(self) -> &'static str {
        match self {
            Kind::ApiKey => "api-key",
            Kind::OAuth => "oauth",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::ApiKey => "API key",
            Kind::OAuth => "OAuth credentials",
        }
    }
}

fn service(url: &Url) -> String {
    format!("testrelay:{}", url.as_str().trim_end_matches('/'))
}

fn keyring_err(e: keyring_core::Error) -> CloudError {
    // keyring-core errors name the platform failure, never the secret.
    CloudError::Credentials(format!("the OS keychain failed: {e}"))
}

fn chunk_err(e: ChunkError, url: &Url, kind: Kind) -> CloudError {
    let noun = kind.noun();
    match e {
        ChunkError::Store(e) => keyring_err(e),
        ChunkError::Torn(why) => CloudError::Credentials(format!(
            "failed to read the {noun} stored for {url}: {why} (a write was interrupted or \
             another program changed the keychain entries); run `testrelay logout {url}` and \
             sign in again"
        )),
        ChunkError::TooLarge { .. } => CloudError::Credentials(format!(
            "failed to store the {noun} for {url} in the OS keychain: {e}; opt in to a 0600 \
             file with --credential-store file"
        )),
    }
}

/// The largest secret one keychain entry takes; longer ones are split by `chunked`.
/// Credential Manager refuses a blob over `CRED_MAX_CREDENTIAL_BLOB_SIZE`, 2,560 bytes:
/// windows-native-keyring-store's `set_secret` returns `TooLong("secret", 2560)`.
#[cfg(windows)]
const ENTRY_LIMIT: Option<usize> = Some(2560);

/// The macOS keychain and Secret Service took megabytes in tests; the kernel keyutils
/// store holds 32 KB per key (less under a user's quota), more than OAuth tokens need.
#[cfg(not(windows))]
const ENTRY_LIMIT: Option<usize> = None;

/// Write, read back and delete a canary entry: a store can open fine and still refuse
/// writes (keyutils without a session keyring, a locked Secret Service collection).
fn probe(store: &Arc<keyring_core::CredentialStore>) -> Result<(), String> {
    let entry = store
        .build("testrelay:probe", "canary", None)
        .map_err(|e| e.to_string())?;
    entry.set_secret(b"ok").map_err(|e| e.to_string())?;
    let back = entry.get_secret().map_err(|e| e.to_string());
    let _ = entry.delete_credential();
    match back {
        Ok(v) if v == b"ok" => Ok(()),
        Ok(_) => Err("read back a different value".into()),
        Err(e) => Err(e),
    }
}

/// A store just opened, once the canary probe passed: the store, or why it is unusable.
#[cfg_attr(
    not(any(target_os = "linux", target_os = "macos", windows)),
    allow(dead_code)
)]
fn probed<S>(
    opened: keyring_core::Result<Arc<S>>,
) -> Result<Arc<keyring_core::CredentialStore>, String>
where
    S: keyring_core::api::CredentialStoreApi + Send + Sync + 'static,
{
    let store: Arc<keyring_core::CredentialStore> = opened.map_err(|e| e.to_string())?;
    probe(&store).map(|()| store)
}

#[cfg(target_os = "linux")]
fn open_keychain() -> Result<(Arc<keyring_core::CredentialStore>, String), CloudError> {
    let secret_service = probed(zbus_secret_service_keyring_store::Store::new());
    let ss_error = match secret_service {
        Ok(s) => return Ok((s, "OS keychain (Secret Service)".into())),
        Err(e) => e,
    };
    let open_keyutils = || probed(linux_keyutils_keyring_store::Store::new());
    let keyutils = open_keyutils().or_else(|first| open_keyutils().map_err(|_| first));
    match keyutils {
        Ok(s) => Ok((s, "OS keychain (kernel keyutils; cleared at reboot)".into())),
        Err(ku_error) => Err(CloudError::Credentials(format!(
            "no OS keychain is available (Secret Service: {ss_error}; kernel keyutils: {ku_error}). \
             Install and unlock a Secret Service provider (gnome-keyring, KWallet), or opt in to a 0600 file \
             with --credential-store file (or credential_store = \"file\" in the config file)"
        ))),
    }
}

#[cfg(target_os = "macos")]
fn open_keychain() -> Result<(Arc<keyring_core::CredentialStore>, String), CloudError> {
    let keychain = probed(apple_native_keyring_store::keychain::Store::new());
    match keychain {
        Ok(s) => Ok((s, "OS keychain (macOS login keychain)".into())),
        Err(e) => Err(CloudError::Credentials(format!(
            "the macOS login keychain is not usable ({e}). Unlock it (Keychain Access, or \
             `security unlock-keychain` over SSH), or opt in to a 0600 file with \
             --credential-store file (or credential_store = \"file\" in the config file)"
        ))),
    }
}

#[cfg(windows)]
fn open_keychain() -> Result<(Arc<keyring_core::CredentialStore>, String), CloudError> {
    let manager = probed(windows_native_keyring_store::Store::new());
    match manager {
        Ok(s) => Ok((s, "OS keychain (Windows Credential Manager)".into())),
        Err(e) => Err(CloudError::Credentials(format!(
            "the Windows Credential Manager is not usable ({e}); opt in to a 0600 file with \
             --credential-store file (or credential_store = \"file\" in the config file)"
        ))),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn open_keychain() -> Result<(Arc<keyring_core::CredentialStore>, String), CloudError> {
    Err(CloudError::Credentials(
        "testrelay has no OS keychain support on this platform (only macOS, Windows and Linux); \
         opt in to a 0600 file with --credential-store file (or credential_store = \"file\" in \
         the config file)"
            .into(),
    ))
}

/// The directory of the opt-in file store: `<config dir>/testrelay/credentials`.
pub fn default_file_dir() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("testrelay")
        .join("credentials")
}

#[derive(Serialize, Deserialize)]
struct FileEntry {
    url: String,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    oauth: Option<String>,
}

impl Credentials {
    /// Open the store of `kind`. The keychain is probed with a canary entry; failure
    /// is an error naming the cause, never a silent fall back to a file.
    pub fn open(kind: StoreKind, file_dir: &Path) -> Result<Self, CloudError> {
        match kind {
            StoreKind::Keychain => {
                let (store, description) = open_keychain()?;
                Ok(Credentials {
                    backend: Backend::Keychain {
                        store,
                        entry_limit: ENTRY_LIMIT,
                    },
                    description,
                })
            }
            StoreKind::File => Ok(Credentials {
                description: format!("file store {} (opted in; 0600)", file_dir.display()),
                backend: Backend::File(file_dir.to_path_buf()),
            }),
        }
    }

    /// A store over any keyring-core store (tests use keyring-core's mock), with no
    /// limit on the size of an entry.
    pub fn with_keyring_store(
        store: Arc<keyring_core::CredentialStore>,
        description: &str,
    ) -> Self {
        Credentials {
            backend: Backend::Keychain {
                store,
                entry_limit: None,
            },
            description: description.to_string(),
        }
    }

    pub fn describe(&self) -> &str {
        &self.description
    }

    fn file_path(dir: &Path, url: &Url) -> PathBuf {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(service(url).as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        dir.join(format!("{hex}.json"))
    }

    fn read_file(dir: &Path, url: &Url) -> Result<Option<FileEntry>, CloudError> {
        let path = Self::file_path(dir, url);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CloudError::Credentials(format!(
                    "failed to read {}: {e}",
                    path.display()
                )));
            }
        };
        check_private(&path)?;
        serde_json::from_str(&text).map(Some).map_err(|_| {
            CloudError::Credentials(format!(
                "{} is not a testrelay credential file",
                path.display()
            ))
        })
    }

    /// The stored API key for `url`, if any.
    pub fn get(&self, url: &Url) -> Result<Option<Secret>, CloudError> {
        self.get_kind(url, Kind::ApiKey)
    }

    pub fn set(&self, url: &Url, secret: &Secret) -> Result<(), CloudError> {
        self.set_kind(url, Kind::ApiKey, secret)
    }

    /// Remove every credential for `url` (API key and OAuth tokens and registration);
    /// true when there was one.
    pub fn delete(&self, url: &Url) -> Result<bool, CloudError> {
        let a = self.delete_kind(url, Kind::ApiKey)?;
        let b = self.delete_kind(url, Kind::OAuth)?;
        Ok(a || b)
    }

    pub fn get_kind(&self, url: &Url, kind: Kind) -> Result<Option<Secret>, CloudError> {
        match &self.backend {
            Backend::Keychain { store, .. } => {
                let Some(bytes) = chunked::read(store, &service(url), kind.user())
                    .map_err(|e| chunk_err(e, url, kind))?
                else {
                    return Ok(None);
                };
                // The error would carry the bytes; drop it.
                let noun = kind.noun();
                String::from_utf8(bytes)
                    .map(|v| Some(Secret(v)))
                    .map_err(|_| {
                        CloudError::Credentials(format!(
                            "failed to read the {noun} stored for {url}: it is not UTF-8 text; \
                             run `testrelay logout {url}` and sign in again"
                        ))
                    })
            }
            Backend::File(dir) => Ok(Self::read_file(dir, url)?
                .and_then(|e| match kind {
                    Kind::ApiKey => e.api_key,
                    Kind::OAuth => e.oauth,
                })
                .map(Secret)),
        }
    }

    pub fn set_kind(&self, url: &Url, kind: Kind, secret: &Secret) -> Result<(), CloudError> {
        match &self.backend {
            Backend::Keychain { store, entry_limit } => chunked::write(
                store,
                &service(url),
                kind.user(),
                secret.expose().as_bytes(),
                *entry_limit,
            )
            .map_err(|e| chunk_err(e, url, kind)),
            Backend::File(dir) => {
                let mut entry = Self::read_file(dir, url)?.unwrap_or(FileEntry {
                    url: url.to_string(),
                    api_key: None,
                    oauth: None,
                });
                match kind {
                    Kind::ApiKey => entry.api_key = Some(secret.expose().to_string()),
                    Kind::OAuth => entry.oauth = Some(secret.expose().to_string()),
                }
                write_private(
                    dir,
                    &Self::file_path(dir, url),
                    &serde_json::to_vec(&entry).expect("serializes"),
                )
            }
        }
    }

    pub fn delete_kind(&self, url: &Url, kind: Kind) -> Result<bool, CloudError> {
        match &self.backend {
            Backend::Keychain { store, .. } => chunked::delete(store, &service(url), kind.user())
                .map_err(|e| chunk_err(e, url, kind)),
            Backend::File(dir) => {
                let Some(mut entry) = Self::read_file(dir, url)? else {
                    return Ok(false);
                };
                let had = match kind {
                    Kind::ApiKey => entry.api_key.take().is_some(),
                    Kind::OAuth => entry.oauth.take().is_some(),
                };
                let path = Self::file_path(dir, url);
                if entry.api_key.is_none() && entry.oauth.is_none() {
                    std::fs::remove_file(&path).map_err(|e| {
                        CloudError::Credentials(format!("failed to delete {}: {e}", path.display()))
                    })?;
                } else if had {
                    write_private(dir, &path, &serde_json::to_vec(&entry).expect("serializes"))?;
                }
                Ok(had)
            }
        }
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), CloudError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0);
    if mode & 0o077 != 0 {
        return Err(CloudError::Credentials(format!(
            "refusing to use {}: other users can read it (mode {:o}); run `chmod 600` on it or log in again",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), CloudError> {
    Ok(())
}

/// Create `dir` as 0700 and write `path` as 0600 from the first byte (never chmod after
/// writing), replacing it atomically.
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), CloudError> {
    let fail = |e: std::io::Error| {
        CloudError::Credentials(format!("failed to write {}: {e}", path.display()))
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir).map_err(fail)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    #[cfg(not(unix))]
    builder.create(dir).map_err(fail)?;
    // Unique per write: two writes in one process (a refresh and a sign-in) must not
    // share, and rename away, one temporary file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let _ = std::fs::remove_file(&tmp);
    let mut f = options.open(&tmp).map_err(fail)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_data())
        .map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use keyring_core::api::CredentialStoreApi;

    use super::*;

    fn url() -> Url {
        Url::parse("https://mcp.example.com/mcp").unwrap()
    }

    #[test]
    fn keychain_round_trip_on_the_mock_store() {
        let store: Arc<keyring_core::CredentialStore> = keyring_core::mock::Store::new().unwrap();
        let creds = Credentials::with_keyring_store(store, "mock");
        assert_eq!(creds.get(&url()).unwrap(), None);
        creds.set(&url(), &Secret::new("k-123")).unwrap();
        assert_eq!(creds.get(&url()).unwrap(), Some(Secret::new("k-123")));
        assert!(creds.delete(&url()).unwrap());
        assert!(!creds.delete(&url()).unwrap());
        assert_eq!(creds.get(&url()).unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn file_store_is_private_and_refuses_a_readable_file() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("creds");
        let creds = Credentials::open(StoreKind::File, &dir).unwrap();
        creds.set(&url(), &Secret::new("k-456")).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(creds.get(&url()).unwrap(), Some(Secret::new("k-456")));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = creds.get(&url()).unwrap_err().to_string();
        assert!(
            err.contains("other users can read it") && !err.contains("k-456"),
            "{err}"
        );
    }

    /// A store refusing entries over Windows' limit, with that limit applied.
    fn windows_like() -> (Arc<chunked::test_store::Limited>, Credentials) {
        let limited = chunked::test_store::Limited::new(2560);
        let creds = Credentials {
            backend: Backend::Keychain {
                store: chunked::test_store::dyn_store(&limited),
                entry_limit: Some(2560),
            },
            description: "mock".into(),
        };
        (limited, creds)
    }

    #[test]
    fn oauth_credentials_over_the_entry_limit_round_trip_and_delete_cleanly() {
        let (limited, creds) = windows_like();
        // 2,559 ASCII bytes then multi-byte characters: part 1 ends inside one.
        let json = format!("{}{}", "a".repeat(2559), "é🔑".repeat(1500));
        creds
            .set_kind(&url(), Kind::OAuth, &Secret::new(json.clone()))
            .unwrap();
        creds.set(&url(), &Secret::new("k-789")).unwrap();
        assert_eq!(
            creds.get_kind(&url(), Kind::OAuth).unwrap(),
            Some(Secret::new(json))
        );
        assert!(creds.delete(&url()).unwrap());
        assert_eq!(limited.users(), Vec::<String>::new());
        assert_eq!(creds.get_kind(&url(), Kind::OAuth).unwrap(), None);
    }

    #[test]
    fn a_torn_credential_is_an_error_naming_the_fix_and_not_the_secret() {
        let (limited, creds) = windows_like();
        let json = format!("{{\"access_token\":\"{}\"}}", "t".repeat(6000));
        creds
            .set_kind(&url(), Kind::OAuth, &Secret::new(json))
            .unwrap();
        let service = service(&url());
        limited
            .mock
            .build(&service, "oauth#a2", None)
            .unwrap()
            .delete_credential()
            .unwrap();
        let err = creds.get_kind(&url(), Kind::OAuth).unwrap_err().to_string();
        assert!(
            err.contains("part 2 of 3 is missing")
                && err.contains("testrelay logout https://mcp.example.com/mcp")
                && !err.contains("ttt"),
            "{err}"
        );
        // Logging out clears what is left.
        assert!(creds.delete(&url()).unwrap());
        assert_eq!(limited.users(), Vec::<String>::new());
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let s = Secret::new("super-secret-value");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    }
}

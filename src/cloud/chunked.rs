//! Secrets longer than one keychain entry holds, split across several entries.
//!
//! Windows Credential Manager refuses a secret over 2,560 bytes, and OAuth credentials
//! (access JWT, refresh token, client registration) can be several KB. A secret that fits
//! is stored as is in the entry `<user>`, so entries written before this layer still read.
//! A longer one is written as parts `<user>#a1`, `<user>#a2`, … (slot `a`) or
//! `<user>#b1`, … (slot `b`), and `<user>` holds a head line naming the slot, the number
//! of parts, the length and the SHA-256 of the whole secret:
//! `testrelay-chunked/1 b 4 9123 <64 hex digits>`.
//!
//! A write goes to the slot the current head does not name and writes the head last, so a
//! crash mid-write leaves the old secret readable; the other slot is emptied after. A
//! reader that finds a part missing or the checksum wrong (an interrupted delete, another
//! program editing the entries, a writer racing it) reports [`ChunkError::Torn`] and never
//! returns a mix of parts. This module knows nothing of URLs; it never logs or returns a
//! secret in an error. Every call blocks.

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error as KeyringError};
use sha2::Digest;

/// Starts every head. A secret that itself starts with it is always stored in parts, so
/// a plain secret is never mistaken for a head.
const MAGIC: &[u8] = b"testrelay-chunked/1 ";

/// At most this many parts per secret (160 KiB under Windows' limit), which also bounds
/// every probe for leftover parts.
pub(super) const MAX_PARTS: usize = 64;

/// Why a secret could not be read or written. `Display` names the cause, never a secret.
pub(super) enum ChunkError {
    /// The store itself failed.
    Store(KeyringError),
    /// The head names parts that are missing or do not add up to the secret it describes.
    Torn(String),
    /// The secret needs more than [`MAX_PARTS`] parts.
    TooLarge { len: usize, max: usize },
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkError::Store(e) => e.fmt(f),
            ChunkError::Torn(why) => f.write_str(why),
            ChunkError::TooLarge { len, max } => {
                write!(
                    f,
                    "the secret is {len} bytes long, more than the {max} bytes allowed"
                )
            }
        }
    }
}

// keyring-core's own `Debug` can carry raw secret bytes (`BadEncoding`), so this one
// shows the `Display` text only.
impl std::fmt::Debug for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    A,
    B,
}

impl Slot {
    fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
}

/// What the entry `<user>` holds when the secret is in parts.
struct Head {
    slot: Slot,
    parts: usize,
    len: usize,
    sha256: String,
}

impl Head {
    fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let fields = format!(
            "{} {} {} {}",
            self.slot.tag(),
            self.parts,
            self.len,
            self.sha256
        );
        out.extend_from_slice(fields.as_bytes());
        out
    }

    /// The head in `bytes`, or `None` when they start with [`MAGIC`] but are malformed.
    fn parse(bytes: &[u8]) -> Option<Head> {
        let text = std::str::from_utf8(bytes.strip_prefix(MAGIC)?).ok()?;
        let mut fields = text.split(' ');
        let slot = match fields.next()? {
            "a" => Slot::A,
            "b" => Slot::B,
            _ => return None,
        };
        let parts: usize = fields.next()?.parse().ok()?;
        let len: usize = fields.next()?.parse().ok()?;
        let sha256 = fields.next()?.to_string();
        let well_formed = fields.next().is_none()
            && (1..=MAX_PARTS).contains(&parts)
            && sha256.len() == 64
            && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then_some(Head {
            slot,
            parts,
            len,
            sha256,
        })
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn part_user(user: &str, slot: Slot, index: usize) -> String {
    format!("{user}#{}{index}", slot.tag())
}

fn entry(store: &Arc<CredentialStore>, service: &str, user: &str) -> Result<Entry, ChunkError> {
    store.build(service, user, None).map_err(ChunkError::Store)
}

fn get(
    store: &Arc<CredentialStore>,
    service: &str,
    user: &str,
) -> Result<Option<Vec<u8>>, ChunkError> {
    match entry(store, service, user)?.get_secret() {
        Ok(v) => Ok(Some(v)),
        Err(KeyringError::NoEntry) => Ok(None),
        Err(e) => Err(ChunkError::Store(e)),
    }
}

fn set(
    store: &Arc<CredentialStore>,
    service: &str,
    user: &str,
    bytes: &[u8],
) -> Result<(), ChunkError> {
    entry(store, service, user)?
        .set_secret(bytes)
        .map_err(ChunkError::Store)
}

fn exists(store: &Arc<CredentialStore>, service: &str, user: &str) -> Result<bool, ChunkError> {
    match entry(store, service, user)?.get_credential() {
        Ok(_) => Ok(true),
        Err(KeyringError::NoEntry) => Ok(false),
        Err(e) => Err(ChunkError::Store(e)),
    }
}

fn remove(store: &Arc<CredentialStore>, service: &str, user: &str) -> Result<bool, ChunkError> {
    match entry(store, service, user)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(KeyringError::NoEntry) => Ok(false),
        Err(e) => Err(ChunkError::Store(e)),
    }
}

/// Delete the parts of `slot` numbered `from` and up, downwards from the top. Parts up to
/// `known` (what the head named) are deleted even if one is missing. Past them, parts are
/// only written upwards from 1 and deleted downwards, so what an interrupted write or
/// sweep left behind is a run without gaps, and probing finds its top.
fn sweep(
    store: &Arc<CredentialStore>,
    service: &str,
    user: &str,
    slot: Slot,
    from: usize,
    known: usize,
) -> Result<(), ChunkError> {
    let mut top = from.max(known + 1);
    while top <= MAX_PARTS && exists(store, service, &part_user(user, slot, top))? {
        top += 1;
    }
    for index in (from..top).rev() {
        remove(store, service, &part_user(user, slot, index))?;
    }
    Ok(())
}

/// The head in the entry `<user>`, if it holds one.
fn current_head(
    store: &Arc<CredentialStore>,
    service: &str,
    user: &str,
) -> Result<Option<Head>, ChunkError> {
    Ok(get(store, service, user)?.and_then(|bytes| Head::parse(&bytes)))
}

/// How many parts `head` names in `slot`.
fn known_parts(head: Option<&Head>, slot: Slot) -> usize {
    head.filter(|h| h.slot == slot).map_or(0, |h| h.parts)
}

/// The secret stored for (`service`, `user`), whole, or `None` when there is none.
pub(super) fn read(
    store: &Arc<CredentialStore>,
    service: &str,
    user: &str,
) -> Result<Option<Vec<u8>>, ChunkError> {
    // Another process may move the head and empty the slot this reader is halfway
    // through; reading again sees its complete write.
    match read_once(store, service, user) {
        Err(ChunkError::Torn(_)) => read_once(store, service, user),
        other => other,
    }
}

fn read_once(
    store: &Arc<CredentialStore>,
    service: &str,
    user: &str,
) -> Result<Option<Vec<u8>>, ChunkError> {
    let Some(first) = get(store, service, user)? else {
        return Ok(None);
    };
    if !first.starts_with(MAGIC) {
        return Ok(Some(first));
    }
    let head = Head::parse(&first)
        .ok_or_else(|| ChunkError::Torn("its head entry is malformed".into()))?;
    let mut secret = Vec::with_capacity(head.len);
    for index in 1..=head.parts {
        match get(store, service, &part_user(user, head.slot, index))? {
            Some(part) => secret.extend_from_slice(&part),
            None => {
                return Err(ChunkError::Torn(format!(
                    "part {index} of {} is missing",
                    head.parts
                )));
            }
        }
    }
    if secret.len() != head.len || sha256_hex(&secret) != head.sha256 {
        return Err(ChunkError::Torn(format!(
            "its {} parts do not match the length and checksum in its head",
            head.parts
        )));
    }
    Ok(Some(secret))
}

/// Store `secret` for (`service`, `user`), in parts of at most `limit` bytes when it is
/// longer than `limit`, and remove every part of the secret it replaces.
pub(super) fn write(
    store: &Arc<CredentialStore>,
    service: &str,
    user: &str,
    secret: &[u8],
    limit: Option<usize>,
) -> Result<(), ChunkError> {
    let current = current_head(store, service, user)?;
    let part_len = match limit {
        Some(limit) if secret.len() > limit => limit.max(1),
        _ if secret.starts_with(MAGIC) => secret.len(),
        _ => {
            set(store, service, user, secret)?;
            tidy(store, service, user, current.as_ref(), &[Slot::A, Slot::B]);
            return Ok(());
        }
    };
    let parts: Vec<&[u8]> = secret.chunks(part_len).collect();
    if parts.len() > MAX_PARTS {
        return Err(ChunkError::TooLarge {
            len: secret.len(),
            max: MAX_PARTS * part_len,
        });
    }
    let slot = current.as_ref().map_or(Slot::A, |head| head.slot.other());
    for (index, part) in parts.iter().enumerate() {
        set(store, service, &part_user(user, slot, index + 1), part)?;
    }
    sweep(store, service, user, slot, parts.len() + 1, 0)?;
    let head = Head {
        slot,
        parts: parts.len(),
        len: secret.len(),
        sha256: sha256_hex(secret),
    };
    set(store, service, user, &head.encode())?;
    tidy(store, service, user, current.as_ref(), &[slot.other()]);
    Ok(())
}

/// Empty `slots` once the new secret is in place (`old` is the head it replaced). It is
/// stored whatever happens here, so a failure is a warning, and the next write or delete
/// sweeps again.
fn tidy(
    store: &Arc<CredentialStore>,
    service: &str,
    user: &str,
    old: Option<&Head>,
    slots: &[Slot],
) {
    for &slot in slots {
        if let Err(e) = sweep(store, service, user, slot, 1, known_parts(old, slot)) {
            tracing::warn!(%service, user, "failed to delete leftover parts of a credential: {e}");
        }
    }
}

/// Delete the secret for (`service`, `user`) and all its parts; true when there was one.
pub(super) fn delete(
    store: &Arc<CredentialStore>,
    service: &str,
    user: &str,
) -> Result<bool, ChunkError> {
    // The head goes first: once it is gone no reader sees the secret, and parts left by a
    // failure below are swept by the next write or delete.
    let current = current_head(store, service, user)?;
    let existed = remove(store, service, user)?;
    for slot in [Slot::A, Slot::B] {
        sweep(
            store,
            service,
            user,
            slot,
            1,
            known_parts(current.as_ref(), slot),
        )?;
    }
    Ok(existed)
}

/// keyring-core's mock store, refusing a secret over a limit the way
/// windows-native-keyring-store does (`TooLong("secret", 2560)`), with a hook that runs
/// once before a chosen entry is read (to play another process).
#[cfg(test)]
pub(super) mod test_store {
    use std::any::Any;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use keyring_core::api::{CredentialApi, CredentialStoreApi};
    use keyring_core::{Credential, CredentialStore, Entry, Error, Result, mock};

    type Hook = Arc<Mutex<Option<(String, Box<dyn FnOnce() + Send>)>>>;

    pub struct Limited {
        pub mock: Arc<mock::Store>,
        limit: usize,
        hook: Hook,
    }

    impl Limited {
        pub fn new(limit: usize) -> Arc<Limited> {
            Arc::new(Limited {
                mock: mock::Store::new().unwrap(),
                limit,
                hook: Hook::default(),
            })
        }

        /// Run `f` just before the next read of the entry of `user`.
        pub fn before_reading(&self, user: &str, f: impl FnOnce() + Send + 'static) {
            *self.hook.lock().unwrap() = Some((user.to_string(), Box::new(f)));
        }

        /// The users of every entry holding a secret, sorted.
        pub fn users(&self) -> Vec<String> {
            let mut users: Vec<String> = self
                .mock
                .search(&HashMap::new())
                .unwrap()
                .into_iter()
                .filter(|e| e.get_secret().is_ok())
                .map(|e| e.get_specifiers().unwrap().1)
                .collect();
            users.sort();
            users
        }
    }

    struct LimitedCred {
        entry: Entry,
        user: String,
        limit: usize,
        hook: Hook,
    }

    impl CredentialApi for LimitedCred {
        fn set_secret(&self, secret: &[u8]) -> Result<()> {
            if secret.len() > self.limit {
                return Err(Error::TooLong("secret".into(), self.limit as u32));
            }
            self.entry.set_secret(secret)
        }

        fn get_secret(&self) -> Result<Vec<u8>> {
            let hook = {
                let mut hook = self.hook.lock().unwrap();
                match hook.take() {
                    Some((user, f)) if user == self.user => Some(f),
                    other => {
                        *hook = other;
                        None
                    }
                }
            };
            if let Some(f) = hook {
                f();
            }
            self.entry.get_secret()
        }

        fn delete_credential(&self) -> Result<()> {
            self.entry.delete_credential()
        }

        fn get_credential(&self) -> Result<Option<Arc<Credential>>> {
            self.entry.get_credential().map(|_| None)
        }

        fn get_specifiers(&self) -> Option<(String, String)> {
            self.entry.get_specifiers()
        }

        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    impl CredentialStoreApi for Limited {
        fn vendor(&self) -> String {
            "mock store with a size limit".into()
        }

        fn id(&self) -> String {
            self.mock.id()
        }

        fn build(
            &self,
            service: &str,
            user: &str,
            modifiers: Option<&HashMap<&str, &str>>,
        ) -> Result<Entry> {
            Ok(Entry::new_with_credential(Arc::new(LimitedCred {
                entry: self.mock.build(service, user, modifiers)?,
                user: user.to_string(),
                limit: self.limit,
                hook: self.hook.clone(),
            })))
        }

        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    /// `store` as the type [`super::read`] and friends take.
    pub fn dyn_store(store: &Arc<Limited>) -> Arc<CredentialStore> {
        store.clone()
    }
}

#[cfg(test)]
mod tests {
    use keyring_core::api::CredentialStoreApi;

    use super::test_store::{Limited, dyn_store};
    use super::*;

    const LIMIT: usize = 2560;
    const SERVICE: &str = "testrelay:https://mcp.example.com/mcp";

    /// An rmcp-like `StoredCredentials` JSON of about 9 KB, different for each `seed`.
    fn oauth_json(seed: u64) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut token = |n: usize| -> String { (0..n).map(|_| rng.alphanumeric()).collect() };
        serde_json::to_vec(&serde_json::json!({
            "client_id": token(32),
            "token_response": {
                "access_token": token(8600),
                "token_type": "Bearer",
                "refresh_token": token(64),
                "expires_in": 3600,
            },
            "granted_scopes": ["mcp"],
            "token_received_at": 1_700_000_000,
            "issuer": "https://auth.example.com",
        }))
        .unwrap()
    }

    fn roundtrip(store: &Arc<CredentialStore>, secret: &[u8], limit: Option<usize>) -> Vec<u8> {
        write(store, SERVICE, "oauth", secret, limit).unwrap();
        read(store, SERVICE, "oauth").unwrap().unwrap()
    }

    #[test]
    fn a_9_kb_oauth_json_round_trips_in_parts_the_store_accepts() {
        let limited = Limited::new(LIMIT);
        let store = dyn_store(&limited);
        let json = oauth_json(1);
        assert!(
            json.len() > 3 * LIMIT && json.len() <= 4 * LIMIT,
            "{}",
            json.len()
        );
        assert_eq!(roundtrip(&store, &json, Some(LIMIT)), json);
        assert_eq!(
            limited.users(),
            ["oauth", "oauth#a1", "oauth#a2", "oauth#a3", "oauth#a4"]
        );
        // Replacing it writes the other slot and empties this one.
        let json2 = oauth_json(2);
        assert_eq!(roundtrip(&store, &json2, Some(LIMIT)), json2);
        assert_eq!(
            limited.users(),
            ["oauth", "oauth#b1", "oauth#b2", "oauth#b3", "oauth#b4"]
        );
    }

    #[test]
    fn exactly_the_limit_is_one_plain_entry_and_one_more_byte_is_two_parts() {
        let limited = Limited::new(LIMIT);
        let store = dyn_store(&limited);
        let at_limit = vec![b'x'; LIMIT];
        assert_eq!(roundtrip(&store, &at_limit, Some(LIMIT)), at_limit);
        assert_eq!(limited.users(), ["oauth"]);
        assert_eq!(get(&store, SERVICE, "oauth").unwrap().unwrap(), at_limit);

        let over = vec![b'y'; LIMIT + 1];
        assert_eq!(roundtrip(&store, &over, Some(LIMIT)), over);
        assert_eq!(limited.users(), ["oauth", "oauth#a1", "oauth#a2"]);
        assert_eq!(
            get(&store, SERVICE, "oauth#a1").unwrap().unwrap().len(),
            LIMIT
        );
        assert_eq!(get(&store, SERVICE, "oauth#a2").unwrap().unwrap(), b"y");
    }

    #[test]
    fn a_shorter_secret_leaves_no_parts_of_the_longer_one() {
        let limited = Limited::new(LIMIT);
        let store = dyn_store(&limited);
        roundtrip(&store, &oauth_json(1), Some(LIMIT));
        // Still in parts, but fewer of them.
        let shorter = vec![b'z'; LIMIT * 2 - 7];
        assert_eq!(roundtrip(&store, &shorter, Some(LIMIT)), shorter);
        assert_eq!(limited.users(), ["oauth", "oauth#b1", "oauth#b2"]);
        // Fits in one entry.
        assert_eq!(roundtrip(&store, b"short", Some(LIMIT)), b"short");
        assert_eq!(limited.users(), ["oauth"]);
    }

    #[test]
    fn delete_removes_the_head_and_every_part() {
        let limited = Limited::new(LIMIT);
        let store = dyn_store(&limited);
        write(&store, SERVICE, "oauth", &oauth_json(1), Some(LIMIT)).unwrap();
        write(&store, SERVICE, "api-key", b"k-1", Some(LIMIT)).unwrap();
        assert!(delete(&store, SERVICE, "oauth").unwrap());
        assert_eq!(limited.users(), ["api-key"]);
        assert!(read(&store, SERVICE, "oauth").unwrap().is_none());
        assert!(!delete(&store, SERVICE, "oauth").unwrap());
    }

    #[test]
    fn a_missing_part_is_reported_not_assembled() {
        let limited = Limited::new(LIMIT);
        let store = dyn_store(&limited);
        write(&store, SERVICE, "oauth", &oauth_json(1), Some(LIMIT)).unwrap();
        assert!(remove(&store, SERVICE, "oauth#a2").unwrap());
        let err = read(&store, SERVICE, "oauth").unwrap_err();
        assert!(matches!(err, ChunkError::Torn(_)), "{err}");
        assert_eq!(err.to_string(), "part 2 of 4 is missing");
        // Deleting still clears what is left, gap or not.
        assert!(delete(&store, SERVICE, "oauth").unwrap());
        assert_eq!(limited.users(), Vec::<String>::new());
    }

    #[test]
    fn a_part_of_another_write_fails_the_checksum() {
        let limited = Limited::new(LIMIT);
        let store = dyn_store(&limited);
        let (old, new) = (oauth_json(1), oauth_json(2));
        write(&store, SERVICE, "oauth", &old, Some(LIMIT)).unwrap();
        let old_part = get(&store, SERVICE, "oauth#a3").unwrap().unwrap();
        write(&store, SERVICE, "oauth", &new, Some(LIMIT)).unwrap();
        // The head names slot b; put the old write's part 3 there, same length.
        assert_eq!(old_part.len(), LIMIT);
        set(&store, SERVICE, "oauth#b3", &old_part).unwrap();
        let err = read(&store, SERVICE, "oauth").unwrap_err();
        assert!(matches!(err, ChunkError::Torn(_)), "{err}");
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn a_malformed_head_is_torn_and_not_returned_as_the_secret() {
        let limited = Limited::new(LIMIT);
        let store = dyn_store(&limited);
        set(&store, SERVICE, "oauth", b"testrelay-chunked/1 c 2 10 00").unwrap();
        let err = read(&store, SERVICE, "oauth").unwrap_err();
        assert_eq!(err.to_string(), "its head entry is malformed");
    }

    #[test]
    fn an_interrupted_write_keeps_the_old_secret_and_the_next_write_clears_its_parts() {
        let limited = Limited::new(LIMIT);
        let store = dyn_store(&limited);
        let old = oauth_json(1);
        write(&store, SERVICE, "oauth", &old, Some(LIMIT)).unwrap();
        // The write to slot b fails at its third part, as if the process died there.
        let part3 = limited.mock.build(SERVICE, "oauth#b3", None).unwrap();
        let mock: &keyring_core::mock::Cred = part3.as_any().downcast_ref().unwrap();
        mock.set_error(KeyringError::PlatformFailure("simulated crash".into()));
        assert!(matches!(
            write(&store, SERVICE, "oauth", &oauth_json(2), Some(LIMIT)),
            Err(ChunkError::Store(_))
        ));
        assert_eq!(read(&store, SERVICE, "oauth").unwrap().unwrap(), old);
        assert!(limited.users().contains(&"oauth#b2".to_string()));
        assert_eq!(roundtrip(&store, b"short", Some(LIMIT)), b"short");
        assert_eq!(limited.users(), ["oauth"]);
    }

    #[test]
    fn a_reader_racing_a_writer_reads_the_complete_new_secret() {
        let limited = Limited::new(LIMIT);
        let store = dyn_store(&limited);
        let (old, new) = (oauth_json(1), oauth_json(2));
        write(&store, SERVICE, "oauth", &old, Some(LIMIT)).unwrap();
        // Another process replaces the secret after this reader has read the head and
        // part 1 of slot a, and empties slot a.
        let writer = store.clone();
        let written = new.clone();
        limited.before_reading("oauth#a2", move || {
            write(&writer, SERVICE, "oauth", &written, Some(LIMIT)).unwrap();
        });
        assert_eq!(read(&store, SERVICE, "oauth").unwrap().unwrap(), new);
    }

    #[test]
    fn a_secret_that_looks_like_a_head_is_stored_in_parts_and_round_trips() {
        let limited = Limited::new(LIMIT);
        let store = dyn_store(&limited);
        let sneaky = b"testrelay-chunked/1 a 1 5 not-a-checksum".to_vec();
        for limit in [None, Some(LIMIT)] {
            assert_eq!(roundtrip(&store, &sneaky, limit), sneaky);
            assert_eq!(limited.users(), ["oauth", "oauth#a1"]);
            assert!(delete(&store, SERVICE, "oauth").unwrap());
        }
    }

    #[test]
    fn without_a_limit_a_long_secret_is_one_entry() {
        let store: Arc<CredentialStore> = keyring_core::mock::Store::new().unwrap();
        let json = oauth_json(1);
        assert_eq!(roundtrip(&store, &json, None), json);
        assert_eq!(get(&store, SERVICE, "oauth").unwrap().unwrap(), json);
    }

    #[test]
    fn a_secret_needing_too_many_parts_is_refused_and_the_old_one_kept() {
        let limited = Limited::new(LIMIT);
        let store = dyn_store(&limited);
        write(&store, SERVICE, "oauth", b"old", Some(LIMIT)).unwrap();
        let huge = vec![b'h'; MAX_PARTS * LIMIT + 1];
        let err = write(&store, SERVICE, "oauth", &huge, Some(LIMIT)).unwrap_err();
        assert!(matches!(err, ChunkError::TooLarge { .. }), "{err}");
        assert_eq!(read(&store, SERVICE, "oauth").unwrap().unwrap(), b"old");
        assert_eq!(limited.users(), ["oauth"]);
    }
}

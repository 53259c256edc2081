//! Merging testrelay's entry into an MCP configuration file without disturbing the rest.
//!
//! Files are JSON, or JSONC for VS Code (comments and trailing commas). They are edited
//! through a concrete syntax tree (`jsonc-parser`'s CST), so other servers, comments and
//! formatting survive; in testrelay's own entry only the keys it writes change, so a
//! user's `env` or `disabled` stays. A file that does not parse is never rewritten. Writes
//! are atomic (a temporary file renamed over the original, with the original's permissions,
//! through a symlink to the real file) and happen only when something changes, so running
//! `init` again leaves the file byte-identical.

use std::io::Write;
use std::path::{Path, PathBuf};

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use serde_json::Value;

use super::{SERVER_NAME, Target};

/// What writing an entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The file did not exist.
    Created,
    /// The file existed without a testrelay entry.
    Added,
    /// The testrelay entry said something else (another binary path, say).
    Updated,
    /// The file already says exactly this; it was not touched.
    Unchanged,
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("failed to read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is not valid JSON ({message}); testrelay left it untouched: fix it, or add the entry shown by --print by hand",
        path.display()
    )]
    Invalid { path: PathBuf, message: String },
    #[error(
        "{}: {what} is not a JSON object; testrelay left the file untouched: fix it, or add the entry shown by --print by hand",
        path.display()
    )]
    Shape { path: PathBuf, what: String },
    #[error("failed to write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// VS Code's JSONC: comments and trailing commas, nothing looser (no single quotes, no
/// bare keys), so that what we accept every client accepts too.
fn parse_options() -> ParseOptions {
    ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

/// The order keys are written in, so the entry reads as the docs show it.
const KEY_ORDER: [&str; 4] = ["type", "command", "args", "env"];

fn to_cst(value: &Value) -> CstInputValue {
    match value {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(items) => CstInputValue::Array(items.iter().map(to_cst).collect()),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| {
                KEY_ORDER
                    .iter()
                    .position(|o| o == k)
                    .unwrap_or(KEY_ORDER.len())
            });
            CstInputValue::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), to_cst(&map[k])))
                    .collect(),
            )
        }
    }
}

/// `text` (None: no file yet) with `entry` under `top_key`.`SERVER_NAME`. Returns the new
/// text, or None when the file already says exactly this. Errors are messages for
/// [`EditError::Invalid`] or [`EditError::Shape`].
fn merge(
    text: Option<&str>,
    top_key: &str,
    entry: &Value,
) -> Result<Option<(Outcome, String)>, (bool, String)> {
    let source = text.unwrap_or("");
    let root = CstRootNode::parse(source, &parse_options()).map_err(|e| (true, e.to_string()))?;
    let top = match root.value() {
        None => root.object_value_or_set(),
        Some(v) => v.as_object().ok_or((false, "the top level".to_string()))?,
    };
    let servers = match top.get(top_key) {
        None => top.object_value_or_set(top_key),
        Some(prop) => prop
            .object_value()
            .ok_or((false, format!("\"{top_key}\"")))?,
    };
    let outcome = match servers.get(SERVER_NAME) {
        None => {
            servers.append(SERVER_NAME, to_cst(entry));
            if text.is_some_and(|t| !t.trim().is_empty()) {
                Outcome::Added
            } else {
                Outcome::Created
            }
        }
        Some(prop) => match prop.object_value() {
            Some(existing) if update_keys(&existing, entry) => Outcome::Updated,
            Some(_) => return Ok(None),
            None => {
                prop.set_value(to_cst(entry));
                Outcome::Updated
            }
        },
    };
    let mut out = root.to_string();
    if text.is_none_or(|t| t.trim().is_empty()) && !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(Some((outcome, out)))
}

/// Set each key of `entry` in `existing` where it differs; other keys stay. True when
/// anything changed.
fn update_keys(existing: &CstObject, entry: &Value) -> bool {
    let Value::Object(wanted) = entry else {
        return false;
    };
    let mut changed = false;
    for key in KEY_ORDER
        .iter()
        .filter(|k| wanted.contains_key(**k))
        .copied()
        .chain(
            wanted
                .keys()
                .map(String::as_str)
                .filter(|k| !KEY_ORDER.contains(k)),
        )
    {
        let value = &wanted[key];
        match existing.get(key) {
            Some(prop) if prop.value().and_then(|v| v.to_serde_value()).as_ref() == Some(value) => {
            }
            Some(prop) => {
                prop.set_value(to_cst(value));
                changed = true;
            }
            None => {
                existing.append(key, to_cst(value));
                changed = true;
            }
        }
    }
    changed
}

/// The entry as a configuration file of its own: what `--print` shows and what a new file
/// holds.
pub fn render(target: &Target) -> String {
    match merge(None, target.top_key, &target.entry) {
        Ok(Some((_, text))) => text,
        _ => unreachable!("an empty document always takes the entry"),
    }
}

/// Put the target's entry into its file, creating the file (and its directory) if needed.
pub fn write_entry(target: &Target) -> Result<Outcome, EditError> {
    // Edit the real file when the configuration is a symlink (dotfile managers use them),
    // rather than replacing the link with a copy.
    let path = std::fs::canonicalize(&target.file).unwrap_or_else(|_| target.file.clone());
    let existing = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => return Err(EditError::Read { path, source }),
    };
    let merged = merge(existing.as_deref(), target.top_key, &target.entry).map_err(
        |(invalid, message)| {
            if invalid {
                EditError::Invalid {
                    path: path.clone(),
                    message,
                }
            } else {
                EditError::Shape {
                    path: path.clone(),
                    what: message,
                }
            }
        },
    )?;
    let Some((outcome, text)) = merged else {
        return Ok(Outcome::Unchanged);
    };
    write_atomically(&path, text.as_bytes()).map_err(|source| EditError::Write { path, source })?;
    Ok(outcome)
}

/// Write a sibling temporary file and rename it over `path`, so an IDE reading the file
/// never sees half of it.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.testrelay-{:08x}.tmp", fastrand::u32(..)));
    let written = (|| {
        let mut file = std::fs::File::create_new(&tmp)?;
        file.write_all(bytes)?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry() -> Value {
        json!({"type": "stdio", "command": "/bin/testrelay", "args": ["--workspace", "${workspaceFolder}"]})
    }

    fn merged(text: Option<&str>) -> (Outcome, String) {
        merge(text, "servers", &entry()).unwrap().unwrap()
    }

    #[test]
    fn a_new_file_reads_like_the_docs() {
        let (outcome, text) = merged(None);
        assert_eq!(outcome, Outcome::Created);
        assert_eq!(
            text,
            r#"{
  "servers": {
    "testrelay": {
      "type": "stdio",
      "command": "/bin/testrelay",
      "args": ["--workspace", "${workspaceFolder}"]
    }
  }
}
"#
        );
        assert_eq!(merge(Some(&text), "servers", &entry()).unwrap(), None);
        assert_eq!(merged(Some("  \n")).0, Outcome::Created);
    }

    #[test]
    fn comments_other_servers_and_user_keys_survive() {
        let before = r#"// my servers
{
  "inputs": [],
  "servers": {
    /* the linter */
    "lint": { "command": "lint-mcp" }, // keep me
    "testrelay": {
      "command": "/old/testrelay",
      "env": { "TESTRELAY_LOG": "debug" },
    },
  },
}
"#;
        let (outcome, after) = merged(Some(before));
        assert_eq!(outcome, Outcome::Updated);
        for kept in [
            "// my servers",
            "/* the linter */",
            r#""lint": { "command": "lint-mcp" }, // keep me"#,
            r#""env": { "TESTRELAY_LOG": "debug" }"#,
            r#""inputs": [],"#,
        ] {
            assert!(after.contains(kept), "{kept} lost:\n{after}");
        }
        let parsed = CstRootNode::parse(&after, &parse_options())
            .unwrap()
            .to_serde_value()
            .unwrap();
        assert_eq!(parsed["servers"]["testrelay"]["command"], "/bin/testrelay");
        assert_eq!(parsed["servers"]["testrelay"]["type"], "stdio");
        assert_eq!(merge(Some(&after), "servers", &entry()).unwrap(), None);
    }

    #[test]
    fn files_it_cannot_read_as_json_are_refused() {
        for (bad, invalid) in [
            ("{ \"servers\": { ", true),
            ("{ servers: {} }", true),
            ("[1, 2]", false),
            ("{ \"servers\": [] }", false),
        ] {
            match merge(Some(bad), "servers", &entry()) {
                Err((i, _)) => assert_eq!(i, invalid, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn writes_keep_permissions_and_follow_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles/mcp.json");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, "{}\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("mcp.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let target = Target {
            client: super::super::Client::Cursor,
            scope: super::super::Scope::Global,
            file: link.clone(),
            top_key: "mcpServers",
            entry: entry(),
        };
        assert_eq!(write_entry(&target).unwrap(), Outcome::Added);
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            std::fs::read_to_string(&real)
                .unwrap()
                .contains("mcpServers")
        );
        assert_eq!(write_entry(&target).unwrap(), Outcome::Unchanged);
    }
}

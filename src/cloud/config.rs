//! Which hosted servers to bridge, and how: from `--server` (repeatable, `URL` or
//! `name=URL`), `TESTRELAY_SERVER` (comma separated), or the config file
//! (`<config dir>/testrelay/config.toml`). Allow/deny globs filter upstream tool names.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use super::credentials::StoreKind;
use super::error::CloudError;

/// One upstream MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// Short name: the tool-name prefix when several servers are configured.
    pub name: String,
    pub url: Url,
}

/// The bridge configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudConfig {
    pub servers: Vec<ServerSpec>,
    /// Upstream tool names to expose (globs); empty means all.
    pub allow: Vec<String>,
    /// Upstream tool names to hide (globs), applied after `allow`.
    pub deny: Vec<String>,
    pub credential_store: StoreKind,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: Vec<FileServer>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    credential_store: Option<StoreKind>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    name: Option<String>,
    url: String,
}

/// `<config dir>/testrelay/config.toml` (`$XDG_CONFIG_HOME` on Linux).
pub fn default_config_file() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("testrelay").join("config.toml"))
}

pub(super) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parse and check a server URL: https, or http only to this machine.
pub fn parse_server_url(raw: &str) -> Result<Url, CloudError> {
    let url =
        Url::parse(raw.trim()).map_err(|e| CloudError::BadUrl(raw.to_string(), e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(CloudError::BadUrl(
                raw.to_string(),
                "plain http is only allowed to localhost; use https".into(),
            ));
        }
        other => {
            return Err(CloudError::BadUrl(
                raw.to_string(),
                format!("scheme '{other}' is not http(s)"),
            ));
        }
    }
    if url.host().is_none() {
        return Err(CloudError::BadUrl(raw.to_string(), "no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CloudError::BadUrl(
            raw.to_string(),
            "credentials do not belong in the URL; use `testrelay login`".into(),
        ));
    }
    Ok(url)
}

/// A name derived from the host: `mcp.example.com` → `example`.
fn name_from_url(url: &Url) -> String {
    let host = url.host_str().unwrap_or("cloud");
    let labels: Vec<&str> = host.split('.').filter(|l| !l.is_empty()).collect();
    let pick = match labels.len() {
        0 => "cloud",
        1 => labels[0],
        n => labels[n - 2],
    };
    let name: String = pick
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.chars().all(|c| c.is_ascii_digit() || c == '_') {
        "cloud".to_string()
    } else {
        name
    }
}

fn check_name(name: &str) -> Result<(), CloudError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(CloudError::BadName(name.to_string()))
    }
}

/// `URL` or `name=URL`.
pub fn parse_server_arg(arg: &str) -> Result<ServerSpec, CloudError> {
    let (name, raw) = match arg.split_once('=') {
        Some((n, u)) if !n.contains(':') && !n.contains('/') => (Some(n.trim()), u),
        _ => (None, arg),
    };
    let url = parse_server_url(raw)?;
    let name = match name {
        Some(n) => n.to_string(),
        None => name_from_url(&url),
    };
    check_name(&name)?;
    Ok(ServerSpec { name, url })
}

impl CloudConfig {
    /// No servers: local tools only.
    pub fn local_only(store: Option<StoreKind>) -> Self {
        CloudConfig {
            servers: Vec::new(),
            allow: Vec::new(),
            deny: Vec::new(),
            credential_store: store.unwrap_or(StoreKind::Keychain),
        }
    }

    /// Servers from the first non-empty source of: `--server` arguments, `TESTRELAY_SERVER`,
    /// the config file. Filters and the credential store come from the file unless
    /// overridden.
    pub fn load(
        cli_servers: &[String],
        env_servers: Option<&str>,
        file: Option<&Path>,
        store_override: Option<StoreKind>,
    ) -> Result<Self, CloudError> {
        let file_cfg = match file {
            Some(path) if path.is_file() => {
                let text = std::fs::read_to_string(path).map_err(|e| CloudError::Config {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| CloudError::Config {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?
            }
            _ => FileConfig::default(),
        };
        let env_list: Vec<String> = env_servers
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let servers: Vec<ServerSpec> = if !cli_servers.is_empty() {
            cli_servers
                .iter()
                .map(|s| parse_server_arg(s))
                .collect::<Result<_, _>>()?
        } else if !env_list.is_empty() {
            env_list
                .iter()
                .map(|s| parse_server_arg(s))
                .collect::<Result<_, _>>()?
        } else {
            file_cfg
                .server
                .iter()
                .map(|s| match &s.name {
                    Some(n) => parse_server_arg(&format!("{n}={}", s.url)),
                    None => parse_server_arg(&s.url),
                })
                .collect::<Result<_, _>>()?
        };
        let mut seen = std::collections::HashSet::new();
        let mut unique = Vec::new();
        for mut s in servers {
            // Two servers on the same host would get the same derived name.
            let base = s.name.clone();
            let mut n = 2;
            while !seen.insert(s.name.clone()) {
                s.name = format!("{base}{n}");
                n += 1;
            }
            unique.push(s);
        }
        for glob in file_cfg.allow.iter().chain(&file_cfg.deny) {
            globset::Glob::new(glob)
                .map_err(|e| CloudError::Pattern(glob.clone(), e.to_string()))?;
        }
        Ok(CloudConfig {
            servers: unique,
            allow: file_cfg.allow,
            deny: file_cfg.deny,
            credential_store: store_override
                .or(file_cfg.credential_store)
                .unwrap_or(StoreKind::Keychain),
        })
    }

    /// The server a CLI command means: by URL or name, or the only one configured.
    pub fn pick(&self, which: Option<&str>) -> Result<ServerSpec, CloudError> {
        match which {
            Some(w) => {
                if let Some(s) = self.servers.iter().find(|s| s.name == w) {
                    return Ok(s.clone());
                }
                let url = parse_server_url(w)?;
                Ok(self
                    .servers
                    .iter()
                    .find(|s| s.url == url)
                    .cloned()
                    .unwrap_or_else(|| ServerSpec {
                        name: name_from_url(&url),
                        url,
                    }))
            }
            None => match self.servers.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(CloudError::NoServer(
                    default_config_file()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "config.toml".into()),
                )),
                many => Err(CloudError::WhichServer(
                    many.iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_or_loopback_http() {
        assert!(parse_server_url("https://mcp.example.com/mcp").is_ok());
        assert!(parse_server_url("http://127.0.0.1:8000/mcp").is_ok());
        assert!(parse_server_url("http://localhost/mcp").is_ok());
        assert!(parse_server_url("http://[::1]:9/mcp").is_ok());
        for bad in [
            "http://example.com/mcp",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://user:pw@x.com/mcp",
            "nope",
        ] {
            assert!(parse_server_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_come_from_the_argument_or_the_host() {
        assert_eq!(
            parse_server_arg("https://mcp.acme.io/mcp").unwrap().name,
            "acme"
        );
        assert_eq!(
            parse_server_arg("qa=https://mcp.acme.io/mcp").unwrap().name,
            "qa"
        );
        assert_eq!(
            parse_server_arg("http://127.0.0.1:9/mcp").unwrap().name,
            "cloud"
        );
        assert!(parse_server_arg("bad name=https://x.io").is_err());
    }

    #[test]
    fn sources_in_order_and_file_settings() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("config.toml");
        std::fs::write(
            &file,
            "credential_store = \"file\"\ndeny = [\"delete_*\"]\n[[server]]\nname = \"tm\"\nurl = \"https://tm.example.com/mcp\"\n",
        )
        .unwrap();
        let from_file = CloudConfig::load(&[], None, Some(&file), None).unwrap();
        assert_eq!(from_file.servers[0].name, "tm");
        assert_eq!(from_file.credential_store, StoreKind::File);
        assert_eq!(from_file.deny, ["delete_*"]);
        let from_env = CloudConfig::load(
            &[],
            Some("https://a.example.com/mcp, https://b.example.com/mcp"),
            Some(&file),
            None,
        )
        .unwrap();
        assert_eq!(from_env.servers.len(), 2);
        assert_eq!(from_env.servers[1].name, "example2");
        let from_cli = CloudConfig::load(
            &["https://c.io/mcp".into()],
            Some("https://a.io"),
            Some(&file),
            Some(StoreKind::Keychain),
        )
        .unwrap();
        assert_eq!(
            (from_cli.servers.len(), from_cli.credential_store),
            (1, StoreKind::Keychain)
        );
        assert!(from_cli.pick(None).is_ok());
        assert!(matches!(
            from_env.pick(None),
            Err(CloudError::WhichServer(_))
        ));
        std::fs::write(&file, "bogus = 1\n").unwrap();
        assert!(matches!(
            CloudConfig::load(&[], None, Some(&file), None),
            Err(CloudError::Config { .. })
        ));
    }
}

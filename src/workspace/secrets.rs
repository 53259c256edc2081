//! Secret detection by file name and by file content.
//!
//! Owns: the list of names that are secrets on sight (`.env`, private keys, credential stores,
//! Terraform state), the content patterns for well-known token formats, and the wording of the
//! reasons. Must not: read files itself (the packer hands it the bytes it already read for the
//! archive, so detection costs no second read), or ever return, log or format the matched text:
//! a reason names the *kind* of secret only, because reasons end up in JSON sent to an agent.
//!
//! The patterns are deliberately ASCII-only (`(?-u)`): Unicode word boundaries would push the
//! regex engine off its fast DFA path on any non-ASCII source file.

use std::sync::LazyLock;

use regex::bytes::{Regex, RegexSet};

/// Name suffixes that mark a template that is meant to be committed (`.env.example`,
/// `credentials.json.sample`, …). These are never secrets *by name*; their content is still
/// scanned like any other file.
const TEMPLATE_SUFFIXES: &[&str] = &[".example", ".sample", ".template", ".dist"];

/// Extensions that are private keys or key stores.
const KEY_EXTENSIONS: &[&str] = &["pem", "key", "p12", "pfx", "jks", "keystore"];

/// SSH private key file name prefixes (`id_rsa`, `id_rsa_work`, …); `.pub` halves are fine.
const SSH_KEY_PREFIXES: &[&str] = &["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"];

/// Credential stores excluded whatever they contain.
const CREDENTIAL_NAMES: &[&str] = &[
    ".netrc",
    "_netrc",
    "credentials",
    "credentials.json",
    ".git-credentials",
];

/// Returns why `file_name` (the last path component) is a secret by name alone, if it is.
///
/// `.npmrc` and `.pypirc` are *not* decided here: they are usually harmless registry settings
/// and only become secrets when they hold a token or password, see [`secret_in_content`].
pub fn secret_by_name(file_name: &str) -> Option<String> {
    let lower = file_name.to_ascii_lowercase();
    if TEMPLATE_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
        return None;
    }
    if lower == ".env" {
        return Some("name matches dotenv pattern .env".into());
    }
    if lower.starts_with(".env.") {
        return Some("name matches dotenv pattern .env.*".into());
    }
    if let Some(prefix) = SSH_KEY_PREFIXES.iter().find(|p| lower.starts_with(*p))
        && !lower.ends_with(".pub")
    {
        return Some(format!("name matches ssh private key pattern {prefix}*"));
    }
    if CREDENTIAL_NAMES.contains(&lower.as_str()) {
        return Some(format!("name matches credentials file {lower}"));
    }
    if lower.ends_with(".tfstate") || lower.ends_with(".tfstate.backup") {
        return Some("name matches terraform state pattern *.tfstate".into());
    }
    if let Some((_, ext)) = lower.rsplit_once('.')
        && KEY_EXTENSIONS.contains(&ext)
    {
        return Some(format!("name matches private key pattern *.{ext}"));
    }
    None
}

/// True for files whose secrecy depends on a config line (`.npmrc`, `.pypirc`).
fn is_registry_config(lower_name: &str) -> bool {
    lower_name == ".npmrc" || lower_name == ".pypirc"
}

/// An auth line in `.npmrc` (`//host/:_authToken=…`, `_auth=…`, `_password=…`) or `.pypirc`
/// (`password = …`). A value that starts with `$` is an environment reference such as
/// `${NPM_TOKEN}`, which is the *recommended* way to commit an `.npmrc`, so it does not count.
static REGISTRY_AUTH_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u)(?mi)(?:^|:)\s*_(?:authtoken|auth|password)\s*=\s*[^\s$]|^\s*password\s*[=:]\s*[^\s$]")
        .expect("registry auth regex is valid")
});

/// One content rule: a pattern, the noun used in the reason, and an optional extra check on the
/// matched bytes for patterns whose shape alone would give false positives.
struct ContentRule {
    pattern: &'static str,
    what: &'static str,
    validate: Option<fn(&[u8]) -> bool>,
}

/// `sk-` keys: require the mix of digits and both letter cases that random keys always have,
/// so long kebab-case identifiers that happen to start with `sk-` are not flagged.
fn looks_random(m: &[u8]) -> bool {
    let body = &m[3..];
    body.iter().any(u8::is_ascii_digit)
        && body.iter().any(u8::is_ascii_uppercase)
        && body.iter().any(u8::is_ascii_lowercase)
}

const CONTENT_RULES: &[ContentRule] = &[
    ContentRule {
        // Matches RSA/EC/DSA/OPENSSH/ENCRYPTED/plain PKCS#8 and PGP private key armour headers.
        pattern: r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        what: "a PEM private key block",
        validate: None,
    },
    ContentRule {
        pattern: r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        what: "an AWS access key id",
        validate: None,
    },
    ContentRule {
        pattern: r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{82}\b",
        what: "a GitHub token",
        validate: None,
    },
    ContentRule {
        pattern: r"\bglpat-[A-Za-z0-9_\-]{20}",
        what: "a GitLab token",
        validate: None,
    },
    ContentRule {
        pattern: r"\bxox[baprs]-[A-Za-z0-9\-]{10,}",
        what: "a Slack token",
        validate: None,
    },
    ContentRule {
        pattern: r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}",
        what: "a Stripe live key",
        validate: None,
    },
    ContentRule {
        pattern: r"\bAIza[0-9A-Za-z_\-]{35}",
        what: "a Google API key",
        validate: None,
    },
    ContentRule {
        pattern: r"\bnpm_[A-Za-z0-9]{36}\b",
        what: "an npm token",
        validate: None,
    },
    ContentRule {
        pattern: r"\bsk-[A-Za-z0-9_\-]{40,}",
        what: "an OpenAI-style API key",
        validate: Some(looks_random),
    },
    ContentRule {
        // Service-account JSON and similar: a quoted private_key field with a real value.
        pattern: r#""private_key"\s*:\s*"[^"]{16,}""#,
        what: "a private key JSON field",
        validate: None,
    },
];

/// Compiled once: the set screens a file in one pass; the individual regexes are only run on
/// the rare files the set flags and whose rule needs validation.
static RULE_SET: LazyLock<(RegexSet, Vec<Regex>)> = LazyLock::new(|| {
    let patterns: Vec<String> = CONTENT_RULES
        .iter()
        .map(|r| format!("(?-u){}", r.pattern))
        .collect();
    let set = RegexSet::new(&patterns).expect("secret regex set is valid");
    let each = patterns
        .iter()
        .map(|p| Regex::new(p).expect("secret regex is valid"))
        .collect();
    (set, each)
});

/// Returns why `bytes` (the full content of a file named `file_name`) is a secret, if it is.
/// The reason names the kind of secret, never the matched text.
pub fn secret_in_content(file_name: &str, bytes: &[u8]) -> Option<String> {
    let lower = file_name.to_ascii_lowercase();
    if is_registry_config(&lower) && REGISTRY_AUTH_LINE.is_match(bytes) {
        return Some(format!(
            "name matches registry config {lower} and it contains an auth token or password line"
        ));
    }
    let (set, each) = &*RULE_SET;
    for idx in set.matches(bytes).iter() {
        let rule = &CONTENT_RULES[idx];
        let hit = match rule.validate {
            None => true,
            Some(ok) => each[idx].find_iter(bytes).any(|m| ok(m.as_bytes())),
        };
        if hit {
            return Some(format!("content contains {}", rule.what));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_secrets() {
        let cases = [
            (".env", "dotenv pattern .env"),
            (".env.local", "dotenv pattern .env.*"),
            (".env.production", "dotenv pattern .env.*"),
            ("id_rsa", "ssh private key pattern id_rsa*"),
            ("id_ed25519_work", "ssh private key pattern id_ed25519*"),
            ("id_ecdsa", "ssh private key pattern id_ecdsa*"),
            ("id_dsa", "ssh private key pattern id_dsa*"),
            ("server.pem", "private key pattern *.pem"),
            ("Server.KEY", "private key pattern *.key"),
            ("cert.p12", "private key pattern *.p12"),
            ("cert.pfx", "private key pattern *.pfx"),
            ("release.jks", "private key pattern *.jks"),
            ("android.keystore", "private key pattern *.keystore"),
            (".netrc", "credentials file .netrc"),
            ("credentials", "credentials file credentials"),
            ("credentials.json", "credentials file credentials.json"),
            (".git-credentials", "credentials file .git-credentials"),
            ("terraform.tfstate", "terraform state"),
            ("terraform.tfstate.backup", "terraform state"),
        ];
        for (name, want) in cases {
            let got = secret_by_name(name).unwrap_or_else(|| panic!("{name} not flagged"));
            assert!(got.starts_with("name matches "), "{name}: {got}");
            assert!(got.contains(want), "{name}: {got}");
        }
    }

    #[test]
    fn names_that_are_not_secrets() {
        for name in [
            ".env.example",
            ".env.sample",
            ".env.template",
            ".env.dist",
            ".env.local.example",
            "credentials.json.example",
            "id_rsa.pub",
            "id_ed25519.pub",
            ".npmrc",
            ".pypirc",
            "keys.py",
            "monkey.txt",
            "environment.ts",
            "README.md",
        ] {
            assert_eq!(secret_by_name(name), None, "{name}");
        }
    }

    fn tokens() -> Vec<(String, &'static str)> {
        vec![
            (
                format!("key = \"AKIA{}\"", "Q".repeat(16)),
                "AWS access key id",
            ),
            (format!("x ASIA{} y", "7".repeat(16)), "AWS access key id"),
            (format!("t=ghp_{}", "a".repeat(36)), "GitHub token"),
            (format!("t=ghs_{}", "Z9".repeat(18)), "GitHub token"),
            (format!("t=github_pat_{}", "b".repeat(82)), "GitHub token"),
            (format!("t=glpat-{}", "c".repeat(20)), "GitLab token"),
            (
                format!("slack: xoxb-{}", "1234-abcd".repeat(3)),
                "Slack token",
            ),
            (
                format!("stripe sk_live_{}", "d".repeat(24)),
                "Stripe live key",
            ),
            (
                format!("stripe rk_live_{}", "e".repeat(24)),
                "Stripe live key",
            ),
            (format!("g = 'AIza{}'", "f".repeat(35)), "Google API key"),
            (format!("npm_{}", "g".repeat(36)), "npm token"),
            (
                format!("OPENAI=sk-{}", "Ab1".repeat(16)),
                "OpenAI-style API key",
            ),
            (
                format!("OPENAI=sk-proj-{}", "Xy9_".repeat(12)),
                "OpenAI-style API key",
            ),
            (
                format!("-----BEGIN {} KEY-----\nMIIE\n", "RSA PRIVATE"),
                "PEM private key block",
            ),
            (
                format!("-----BEGIN {} KEY-----\n", "OPENSSH PRIVATE"),
                "PEM private key block",
            ),
            (
                format!("-----BEGIN {} KEY-----\n", "PRIVATE"),
                "PEM private key block",
            ),
            (
                format!(
                    "{{\"type\": \"service_account\", \"{}\": \"{}\"}}",
                    "private_key",
                    "k".repeat(40)
                ),
                "private key JSON field",
            ),
        ]
    }

    #[test]
    fn content_tokens_are_detected_and_reason_never_quotes_them() {
        for (text, want) in tokens() {
            let reason = secret_in_content("config.py", text.as_bytes())
                .unwrap_or_else(|| panic!("not detected: {want}"));
            assert!(reason.starts_with("content contains "), "{reason}");
            assert!(reason.contains(want), "{want}: {reason}");
            // The reason must not echo any 12-char window of the secret-bearing text.
            let chars: Vec<char> = text.chars().collect();
            for w in chars.windows(12) {
                let w: String = w.iter().collect();
                if w.chars().all(|c| c.is_ascii_alphanumeric()) {
                    assert!(!reason.contains(&w), "reason leaks {w}");
                }
            }
        }
    }

    #[test]
    fn lookalikes_are_not_secrets() {
        let benign = [
            // Too short / wrong shape.
            format!("AKIA{}", "Q".repeat(10)),
            format!("ghp_{}", "a".repeat(20)),
            // Public certificates and public keys are fine.
            format!("-----BEGIN {}-----", "CERTIFICATE"),
            format!("-----BEGIN {} KEY-----", "PUBLIC"),
            // Long kebab identifier starting with sk-: no digits/uppercase.
            format!("sk-{}", "long-kebab-case-identifier-".repeat(3)),
            // Test-mode Stripe keys are not live.
            format!("sk_test_{}", "d".repeat(24)),
            // Code mentioning the field without a value.
            "data[\"private_key\"] = key  # \"private_key\": None".to_string(),
            "plain text with héllo wörld and 日本語".to_string(),
        ];
        for text in benign {
            assert_eq!(secret_in_content("a.py", text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn registry_configs_need_an_auth_line() {
        let plain = b"registry=https://registry.npmjs.org/\nsave-exact=true\n";
        assert_eq!(secret_in_content(".npmrc", plain), None);
        let env_ref = b"//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n";
        assert_eq!(secret_in_content(".npmrc", env_ref), None);
        let token = format!("//registry.npmjs.org/:_authToken={}\n", "h".repeat(20));
        let r = secret_in_content(".npmrc", token.as_bytes()).unwrap();
        assert!(
            r.contains(".npmrc") && r.contains("auth token or password line"),
            "{r}"
        );
        let pypirc = b"[pypi]\nusername = __token__\npassword = pypi-abcdef\n";
        assert!(secret_in_content(".pypirc", pypirc).is_some());
        assert_eq!(
            secret_in_content(".pypirc", b"[distutils]\nindex-servers = pypi\n"),
            None
        );
        // The same auth line in an ordinary file is not a registry config.
        assert_eq!(secret_in_content("notes.md", pypirc), None);
    }
}

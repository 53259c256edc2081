//! Runner output as people read it: colour codes removed, and the line of a runner's
//! stderr worth quoting when it failed before reporting anything.

use std::sync::LazyLock;

use regex::Regex;

static ANSI: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]").expect("valid regex"));

/// Remove ANSI escape sequences (colours, cursor moves): runners colour their messages
/// when they think a terminal may be listening.
pub fn strip_ansi(s: &str) -> String {
    ANSI.replace_all(s, "").into_owned()
}

/// The last line of `stderr` that mentions an error (any case), else its last non-empty
/// line; trimmed, without colour codes.
pub fn last_error_line(stderr: &str) -> Option<String> {
    let lines = || {
        stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .rev()
    };
    lines()
        .find(|l| l.to_ascii_lowercase().contains("error"))
        .or_else(|| lines().next())
        .map(strip_ansi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_go_and_the_error_line_is_found() {
        assert_eq!(strip_ansi("\x1b[31mred\x1b[39m \x1b[2Kplain"), "red plain");
        let tail =
            "collecting\n  \x1b[31mImportError: no module named x\x1b[0m  \ncleanup done\n\n";
        assert_eq!(
            last_error_line(tail).as_deref(),
            Some("ImportError: no module named x")
        );
        assert_eq!(
            last_error_line("a\nlast words\n").as_deref(),
            Some("last words")
        );
        assert_eq!(last_error_line(" \n"), None);
    }
}

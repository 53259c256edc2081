//! Paging a job's captured stdout/stderr by byte offset, with an optional line filter.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

/// One page of a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct OutputPage {
    /// The text: raw bytes from `offset`, or matching lines when filtered.
    pub text: String,
    /// Byte offset this page started at.
    pub offset: u64,
    /// Offset to pass next to continue; equals `total_bytes` at the end.
    pub next_offset: u64,
    /// Size of the log file so far.
    pub total_bytes: u64,
    /// True when nothing is left after this page (the job may still be writing).
    pub eof: bool,
    /// With a filter: how many matching lines this page holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<u64>,
}

/// Read up to `limit` bytes of `path` from `offset`. With `filter`, scan forward from
/// `offset` and return whole lines that contain it (case-insensitive), up to `limit`
/// bytes of matches, stopping at a line boundary.
pub fn read_page(
    path: &Path,
    offset: u64,
    limit: usize,
    filter: Option<&str>,
) -> std::io::Result<OutputPage> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(OutputPage {
                text: String::new(),
                offset,
                next_offset: 0,
                total_bytes: 0,
                eof: true,
                matches: None,
            });
        }
        Err(e) => return Err(e),
    };
    let total = f.metadata()?.len();
    let offset = offset.min(total);
    f.seek(SeekFrom::Start(offset))?;
    let Some(needle) = filter.map(str::to_lowercase).filter(|n| !n.is_empty()) else {
        let mut buf = Vec::with_capacity(limit.min((total - offset) as usize));
        f.take(limit as u64).read_to_end(&mut buf)?;
        // Do not split a UTF-8 character across pages.
        let mut end = buf.len();
        if offset + (end as u64) < total {
            while end > 0 && end > buf.len().saturating_sub(4) && (buf[end - 1] & 0xC0) == 0x80 {
                end -= 1;
            }
            if end > 0 && buf[end - 1] >= 0xC0 {
                end -= 1;
            }
        }
        let next = offset + end as u64;
        return Ok(OutputPage {
            text: String::from_utf8_lossy(&buf[..end]).into_owned(),
            offset,
            next_offset: next,
            total_bytes: total,
            eof: next >= total,
            matches: None,
        });
    };
    let mut reader = std::io::BufReader::new(f);
    let mut line = Vec::new();
    let mut text = String::new();
    let mut pos = offset;
    let mut matches = 0u64;
    // Scan at most 64 MiB per call so a filter over a huge log stays bounded.
    let scan_limit = offset + 64 * 1024 * 1024;
    while pos < total && pos < scan_limit {
        line.clear();
        let n = std::io::BufRead::read_until(&mut reader, b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        let s = String::from_utf8_lossy(&line);
        if s.to_lowercase().contains(&needle) {
            if !text.is_empty() && text.len() + s.len() > limit {
                break;
            }
            text.push_str(&s);
            matches += 1;
        }
        pos += n as u64;
    }
    Ok(OutputPage {
        text,
        offset,
        next_offset: pos,
        total_bytes: total,
        eof: pos >= total,
        matches: Some(matches),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: usize) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("stdout.log");
        let text: String = (0..lines)
            .map(|i| format!("line {i} {}\n", if i % 10 == 0 { "ERROR" } else { "ok" }))
            .collect();
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn pages_cover_the_file_exactly() {
        let (_d, p) = log(1000);
        let whole = std::fs::read_to_string(&p).unwrap();
        let mut got = String::new();
        let mut offset = 0;
        loop {
            let page = read_page(&p, offset, 777, None).unwrap();
            got.push_str(&page.text);
            offset = page.next_offset;
            if page.eof {
                break;
            }
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn filter_returns_matching_lines_and_resumes() {
        let (_d, p) = log(1000);
        let page = read_page(&p, 0, 60, Some("error")).unwrap();
        assert_eq!(
            page.text,
            "line 0 ERROR\nline 10 ERROR\nline 20 ERROR\nline 30 ERROR\n"
        );
        assert_eq!(page.matches, Some(4));
        let next = read_page(&p, page.next_offset, 15, Some("error")).unwrap();
        assert_eq!(next.text, "line 40 ERROR\n");
    }

    #[test]
    fn missing_file_is_an_empty_page() {
        let page = read_page(Path::new("/nonexistent/x.log"), 5, 10, None).unwrap();
        assert!(page.eof && page.text.is_empty());
    }

    #[test]
    fn pages_never_split_a_character() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("u.log");
        std::fs::write(&p, "ééééé").unwrap();
        let page = read_page(&p, 0, 3, None).unwrap();
        assert_eq!((page.text.as_str(), page.next_offset), ("é", 2));
    }
}

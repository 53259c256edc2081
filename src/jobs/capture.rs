//! Draining a child's stdout or stderr into a capped log file plus a bounded in-memory tail.
//!
//! Both pipes are always drained concurrently (a full 64 KiB pipe buffer would stall the
//! runner). Past the cap the file stops growing and a marker says so; the tail keeps the
//! last bytes, and is appended after the marker when the stream ends, so the end of a
//! flood is still readable. Memory stays flat whatever a test prints.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

pub const TAIL_BYTES: usize = 16 * 1024;

/// The last bytes of a stream and how much of it there was.
#[derive(Debug, Default)]
pub struct Tail {
    buf: VecDeque<u8>,
    pub total_bytes: u64,
    pub truncated: bool,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.total_bytes += chunk.len() as u64;
        let chunk = &chunk[chunk.len().saturating_sub(TAIL_BYTES)..];
        let overflow = (self.buf.len() + chunk.len()).saturating_sub(TAIL_BYTES);
        self.buf.drain(..overflow);
        self.buf.extend(chunk);
    }

    /// The last `max` bytes as text, starting at a line boundary when one is near.
    pub fn text(&self, max: usize) -> String {
        let (a, b) = self.buf.as_slices();
        let mut bytes = Vec::with_capacity(a.len() + b.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        tail_text(&bytes, max)
    }
}

/// The last `max` bytes of `bytes` as text, cut at a line start when one is near.
pub fn tail_text(bytes: &[u8], max: usize) -> String {
    let mut start = bytes.len().saturating_sub(max);
    if start > 0
        && let Some(nl) = bytes[start..]
            .iter()
            .take(max / 4)
            .position(|&c| c == b'\n')
    {
        start += nl + 1;
    }
    String::from_utf8_lossy(&bytes[start..])
        .trim_start_matches('\u{fffd}')
        .to_string()
}

pub type SharedTail = Arc<Mutex<Tail>>;

/// Copy `reader` into `path` (at most `cap` bytes) and into `tail` until EOF.
pub async fn drain<R: AsyncRead + Unpin>(
    mut reader: R,
    path: PathBuf,
    cap: u64,
    tail: SharedTail,
) -> std::io::Result<()> {
    let mut file = tokio::fs::File::create(&path).await?;
    let mut written = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = &buf[..n];
        tail.lock().expect("tail lock").push(chunk);
        let take = chunk.len().min(cap.saturating_sub(written) as usize);
        if take > 0 {
            file.write_all(&chunk[..take]).await?;
            written += take as u64;
        }
        if take < chunk.len() && !tail.lock().expect("tail lock").truncated {
            let marker = format!(
                "\n[testrelay: log capped at {cap} bytes; the end of the output follows when the run ends]\n"
            );
            file.write_all(marker.as_bytes()).await?;
            tail.lock().expect("tail lock").truncated = true;
        }
    }
    let (truncated, total, end) = {
        let t = tail.lock().expect("tail lock");
        (t.truncated, t.total_bytes, t.text(TAIL_BYTES))
    };
    if truncated {
        let note = format!(
            "[testrelay: {} bytes in all; the last {} bytes follow]\n",
            total,
            end.len()
        );
        file.write_all(note.as_bytes()).await?;
        file.write_all(end.as_bytes()).await?;
    }
    file.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn caps_the_file_and_keeps_the_end() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out.log");
        let mut input = Vec::new();
        for i in 0..50_000 {
            input.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let tail = SharedTail::default();
        drain(&input[..], path.clone(), 1000, tail.clone())
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("line 0\nline 1\n"));
        assert!(text.contains("[testrelay: log capped at 1000 bytes"));
        assert!(text.ends_with("line 49999\n"));
        assert!(
            text.len() < 1000 + TAIL_BYTES + 300,
            "file grew to {}",
            text.len()
        );
        let t = tail.lock().unwrap();
        assert_eq!(t.total_bytes, input.len() as u64);
        assert!(t.truncated);
        assert_eq!(t.text(22), "line 49998\nline 49999\n");
    }

    #[tokio::test]
    async fn a_chunk_ending_exactly_at_the_cap_still_marks_the_cut() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out.log");
        let first = vec![b'a'; 1000];
        let rest = b"after the cap\n".repeat(10);
        let tail = SharedTail::default();
        drain(
            (&first[..]).chain(&rest[..]),
            path.clone(),
            1000,
            tail.clone(),
        )
        .await
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("[testrelay: log capped at 1000 bytes"),
            "{text}"
        );
        assert!(text.ends_with("after the cap\n"));
        assert!(tail.lock().unwrap().truncated);
    }

    #[tokio::test]
    async fn small_output_is_kept_whole() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out.log");
        let tail = SharedTail::default();
        drain(&b"hello\nworld\n"[..], path.clone(), 1000, tail.clone())
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello\nworld\n");
        assert_eq!(tail.lock().unwrap().text(100), "hello\nworld\n");
    }

    #[test]
    fn tail_text_starts_at_a_line() {
        assert_eq!(tail_text(b"aaaa\nbbbb\ncccc\n", 12), "bbbb\ncccc\n");
        assert_eq!(tail_text("é".repeat(10).as_bytes(), 5), "éé");
    }
}

//! Upload planning, pure: monolithic or chunked, the byte ranges of each chunk, the
//! `Content-Range`/`Range` headers of chunked uploads, retry backoff and URL helpers.

use std::time::Duration;

/// Default chunk size (and the largest blob sent in one request): 32 MiB.
pub const DEFAULT_CHUNK: u64 = 32 << 20;

/// How a blob is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// POST for a session, then one PUT `?digest=` carrying the whole blob.
    Monolithic,
    /// POST, PATCHes of at most `chunk` bytes each, then an empty PUT `?digest=`.
    Chunked {
        /// Bytes per PATCH.
        chunk: u64,
    },
}

/// Small blobs go in one request; larger ones in chunks (bounded memory and resumable).
#[must_use]
pub fn plan_upload(size: u64, chunk: u64) -> Upload {
    let chunk = chunk.max(1);
    if size <= chunk {
        Upload::Monolithic
    } else {
        Upload::Chunked { chunk }
    }
}

/// The next chunk `[start, end)` of a `size`-byte blob from `offset`, or `None` when done.
#[must_use]
pub fn next_chunk(size: u64, offset: u64, chunk: u64) -> Option<(u64, u64)> {
    (offset < size).then(|| (offset, size.min(offset.saturating_add(chunk.max(1)))))
}

/// `Content-Range` of a PATCH for `[start, end)`: the distribution spec's inclusive
/// `start-last`, without a unit.
#[must_use]
pub fn content_range(start: u64, end: u64) -> String {
    format!("{start}-{}", end.saturating_sub(1))
}

/// The offset to continue from, given an upload status `Range: 0-<last>` header.
///
/// `0-0` is ambiguous (distribution sends it both for nothing and for one byte received):
/// it reads as 0, and a mismatch then costs a restart of the blob, never a corrupt one
/// (the registry checks `Content-Range` and the final digest).
#[must_use]
pub fn resume_offset(range: &str) -> Option<u64> {
    let r = range.trim();
    let r = r.strip_prefix("bytes=").unwrap_or(r);
    let (start, last) = r.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    let last: u64 = last.trim().parse().ok()?;
    Some(if last == 0 { 0 } else { last + 1 })
}

/// Delay before retry number `attempt` (1-based): `base`·2^(attempt−1), at most 30 s.
#[must_use]
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(Duration::from_secs(30))
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
#[must_use]
pub fn encode_query(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `url` with `key=value` appended to its query.
#[must_use]
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={}", encode_query(value))
}

/// A `Location` header resolved against the registry's base URL (`scheme://host[:port]`):
/// absolute URLs as they are, absolute paths prefixed with the base.
#[must_use]
pub fn resolve_location(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        format!("{base}/{location}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_blobs_are_monolithic() {
        assert_eq!(plan_upload(0, 10), Upload::Monolithic);
        assert_eq!(plan_upload(10, 10), Upload::Monolithic);
        assert_eq!(plan_upload(11, 10), Upload::Chunked { chunk: 10 });
        assert_eq!(plan_upload(5, 0), Upload::Chunked { chunk: 1 });
    }

    #[test]
    fn chunks_cover_the_blob_exactly() {
        let mut offset = 0;
        let mut ranges = Vec::new();
        while let Some((s, e)) = next_chunk(25, offset, 10) {
            ranges.push(content_range(s, e));
            offset = e;
        }
        assert_eq!(ranges, ["0-9", "10-19", "20-24"]);
        assert_eq!(next_chunk(25, 25, 10), None);
        // Resuming mid-chunk.
        assert_eq!(next_chunk(25, 13, 10), Some((13, 23)));
    }

    #[test]
    fn range_headers() {
        assert_eq!(resume_offset("0-9"), Some(10));
        assert_eq!(resume_offset("bytes=0-1023"), Some(1024));
        assert_eq!(resume_offset("0-0"), Some(0));
        assert_eq!(resume_offset("5-9"), None);
        assert_eq!(resume_offset("junk"), None);
        assert_eq!(resume_offset("0--1"), None);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_millis(100);
        assert_eq!(backoff(b, 1), Duration::from_millis(100));
        assert_eq!(backoff(b, 3), Duration::from_millis(400));
        assert_eq!(backoff(b, 40), Duration::from_secs(30));
    }

    #[test]
    fn urls() {
        assert_eq!(
            with_query(
                "http://h/v2/r/blobs/uploads/u?_state=x",
                "digest",
                "sha256:ab"
            ),
            "http://h/v2/r/blobs/uploads/u?_state=x&digest=sha256%3Aab"
        );
        assert_eq!(with_query("/p", "from", "a/b"), "/p?from=a%2Fb");
        assert_eq!(resolve_location("http://h:1", "/v2/x"), "http://h:1/v2/x");
        assert_eq!(resolve_location("http://h:1", "https://o/x"), "https://o/x");
    }
}

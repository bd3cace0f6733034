//! Async byte sources: where a slide's bytes come from. Only ranges are ever read, never the whole
//! file (except a small file from a server that ignores Range requests).

#[cfg(target_arch = "wasm32")]
mod browser;
mod concat;
#[cfg(not(target_arch = "wasm32"))]
mod file;
mod http;
#[cfg(not(target_arch = "wasm32"))]
mod native_http;

#[cfg(target_arch = "wasm32")]
pub use browser::{BlobSource, FetchSource};
pub use concat::ConcatSource;
#[cfg(not(target_arch = "wasm32"))]
pub use file::FileSource;
pub use http::{MAX_WHOLE_BODY, RetryPolicy};
#[cfg(not(target_arch = "wasm32"))]
pub use native_http::HttpSource;

use super::{Error, Result};
use std::ops::Range;

/// Cheaply cloneable, sliceable bytes (a tile's compressed data, a metadata block).
pub type Bytes = bytes::Bytes;

/// Ranges closer than this are fetched in one request (the gap is read and dropped).
pub const COALESCE_GAP: u64 = 64 * 1024;
/// Coalesced requests stop growing at this size.
pub const MAX_REQUEST: u64 = 16 << 20;

/// `Send + Sync` natively, where sources are shared across decoding threads; nothing on wasm,
/// where browser handles are single-threaded.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}
/// `Send + Sync` natively, where sources are shared across decoding threads; nothing on wasm,
/// where browser handles are single-threaded.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSendSync for T {}

/// Random access to the bytes of one file, wherever it lives.
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait ByteSource: MaybeSendSync {
    /// Length of the file in bytes.
    fn len(&self) -> u64;

    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The path or URL, for messages.
    fn name(&self) -> &str;

    /// Reads exactly `range` (which lies inside `0..len()`).
    async fn read_range(&self, range: Range<u64>) -> Result<Bytes>;

    /// Reads several ranges, fetching neighbours (gaps up to [`COALESCE_GAP`]) in one request.
    async fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let mut out = vec![Bytes::new(); ranges.len()];
        for group in coalesce(ranges) {
            let bytes = self.read_range(group.span.clone()).await?;
            for (i, r) in group.members {
                let from = (r.start - group.span.start) as usize;
                out[i] = bytes.slice(from..from + (r.end - r.start) as usize);
            }
        }
        Ok(out)
    }
}

/// One request covering several wanted ranges.
#[derive(Debug, PartialEq)]
pub(crate) struct Group {
    pub span: Range<u64>,
    pub members: Vec<(usize, Range<u64>)>,
}

/// Groups ranges (in any order, possibly overlapping) into requests: sorted, merged across gaps of
/// at most [`COALESCE_GAP`], each at most [`MAX_REQUEST`] long unless one range alone is longer.
pub(crate) fn coalesce(ranges: &[Range<u64>]) -> Vec<Group> {
    let mut order: Vec<usize> = (0..ranges.len()).filter(|&i| ranges[i].end > ranges[i].start).collect();
    order.sort_by_key(|&i| (ranges[i].start, ranges[i].end));
    let mut groups: Vec<Group> = Vec::new();
    for i in order {
        let r = ranges[i].clone();
        match groups.last_mut() {
            Some(g) if r.start <= g.span.end + COALESCE_GAP && r.end.max(g.span.end) - g.span.start <= MAX_REQUEST => {
                g.span.end = g.span.end.max(r.end);
                g.members.push((i, r));
            }
            _ => groups.push(Group { span: r.clone(), members: vec![(i, r)] }),
        }
    }
    groups
}

/// Checks a requested range against the file length.
pub(crate) fn check_range(range: &Range<u64>, len: u64) -> Result<()> {
    if range.start > range.end || range.end > len {
        return Err(Error::Truncated { start: range.start, end: range.end, len });
    }
    Ok(())
}

/// Bytes already in memory: tests, small downloads, files a browser handed over whole.
pub struct MemorySource {
    bytes: Bytes,
    name: String,
}

impl MemorySource {
    /// Wraps bytes; `name` appears in messages.
    pub fn new(bytes: impl Into<Bytes>, name: &str) -> Self {
        Self { bytes: bytes.into(), name: name.to_string() }
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl ByteSource for MemorySource {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        check_range(&range, self.len())?;
        Ok(self.bytes.slice(range.start as usize..range.end as usize))
    }
}

/// Opens a local path or an `http(s)://` URL.
#[cfg(not(target_arch = "wasm32"))]
pub async fn open_native(path_or_url: &str) -> Result<std::sync::Arc<dyn ByteSource>> {
    if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
        Ok(std::sync::Arc::new(HttpSource::open(path_or_url, RetryPolicy::default()).await?))
    } else {
        Ok(std::sync::Arc::new(FileSource::open(std::path::Path::new(path_or_url))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_are_coalesced_and_far_ranges_are_not() {
        let ranges = [0..10, 20..30, 10_000_000..10_000_010, 15..25];
        let groups = coalesce(&ranges);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].span, 0..30);
        assert_eq!(groups[0].members.iter().map(|m| m.0).collect::<Vec<_>>(), vec![0, 3, 1]);
        assert_eq!(groups[1].span, 10_000_000..10_000_010);
        assert!(coalesce(&[5..5, 7..7]).is_empty());
    }

    #[test]
    fn requests_stop_growing_at_the_limit() {
        let step = 1 << 20;
        let ranges: Vec<_> = (0..40u64).map(|i| i * step..(i + 1) * step).collect();
        let groups = coalesce(&ranges);
        assert!(groups.iter().all(|g| g.span.end - g.span.start <= MAX_REQUEST));
        assert_eq!(groups.iter().map(|g| g.members.len()).sum::<usize>(), 40);
    }

    #[test]
    fn memory_source_slices_and_rejects_out_of_range() {
        let src = MemorySource::new(b"0123456789".to_vec(), "mem");
        let got = futures_lite::future::block_on(src.read_ranges(&[2..4, 8..10, 0..1])).unwrap();
        assert_eq!(got, vec![Bytes::from_static(b"23"), Bytes::from_static(b"89"), Bytes::from_static(b"0")]);
        let err = futures_lite::future::block_on(src.read_range(8..12)).unwrap_err();
        assert!(matches!(err, Error::Truncated { start: 8, end: 12, len: 10 }));
    }
}

//! Several sources read as one: file `k` starts where file `k-1` ends. A DICOM whole-slide series
//! (one file per level) becomes one byte space, so the reader's levels, tile offsets and cache work
//! unchanged; each request still goes to the one file it falls in.

use super::{ByteSource, Bytes, check_range};
use crate::slide::Result;
use std::ops::Range;
use std::sync::Arc;

/// Files end to end.
pub struct ConcatSource {
    parts: Vec<(u64, Arc<dyn ByteSource>)>,
    len: u64,
    name: String,
}

impl ConcatSource {
    /// `parts` in order; `name` is what errors and `info` show (a folder, say).
    pub fn new(parts: Vec<Arc<dyn ByteSource>>, name: &str) -> Self {
        let mut base = 0;
        let parts = parts
            .into_iter()
            .map(|p| {
                let at = base;
                base += p.len();
                (at, p)
            })
            .collect();
        Self { parts, len: base, name: name.to_string() }
    }

    /// Where file `k` starts.
    pub fn base(&self, k: usize) -> u64 {
        self.parts.get(k).map_or(self.len, |p| p.0)
    }

    /// The files.
    pub fn parts(&self) -> impl Iterator<Item = &Arc<dyn ByteSource>> {
        self.parts.iter().map(|p| &p.1)
    }

    fn part_of(&self, at: u64) -> usize {
        self.parts.partition_point(|(base, _)| *base <= at).saturating_sub(1)
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl ByteSource for ConcatSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        check_range(&range, self.len)?;
        let mut out = Vec::new();
        let mut at = range.start;
        while at < range.end {
            let (base, part) = &self.parts[self.part_of(at)];
            let end = range.end.min(base + part.len());
            let bytes = part.read_range(at - base..end - base).await?;
            if at == range.start && end == range.end {
                return Ok(bytes);
            }
            out.extend_from_slice(&bytes);
            at = end;
        }
        Ok(out.into())
    }

    /// Ranges go to their files, coalesced within each file only.
    async fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let mut out = vec![Bytes::new(); ranges.len()];
        for (k, (base, part)) in self.parts.iter().enumerate() {
            let mine: Vec<usize> = (0..ranges.len())
                .filter(|&i| ranges[i].end > ranges[i].start && self.part_of(ranges[i].start) == k && ranges[i].end <= base + part.len())
                .collect();
            if mine.is_empty() {
                continue;
            }
            let local: Vec<Range<u64>> = mine.iter().map(|&i| ranges[i].start - base..ranges[i].end - base).collect();
            for (i, bytes) in mine.iter().zip(part.read_ranges(&local).await?) {
                out[*i] = bytes;
            }
        }
        // Ranges across a file boundary (not made by the reader, but allowed).
        for (i, r) in ranges.iter().enumerate() {
            if r.end > r.start && out[i].is_empty() {
                out[i] = self.read_range(r.clone()).await?;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slide::MemorySource;
    use futures_lite::future::block_on;

    #[test]
    fn ranges_land_in_their_files() {
        let a: Arc<dyn ByteSource> = Arc::new(MemorySource::new(b"abcd".to_vec(), "a"));
        let b: Arc<dyn ByteSource> = Arc::new(MemorySource::new(b"efghij".to_vec(), "b"));
        let c = ConcatSource::new(vec![a, b], "dir");
        assert_eq!(c.len(), 10);
        assert_eq!(c.base(1), 4);
        assert_eq!(&block_on(c.read_range(2..7)).unwrap()[..], b"cdefg");
        let got = block_on(c.read_ranges(&[0..2, 5..9, 3..5, 4..4])).unwrap();
        assert_eq!(got.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), [b"ab".to_vec(), b"fghi".to_vec(), b"de".to_vec(), vec![]]);
        assert!(block_on(c.read_range(8..11)).is_err());
    }
}

//! The bridge between async byte sources and the synchronous `tiff` crate: a `Read + Seek` view of
//! the file that answers only from bytes already fetched. A read that needs missing bytes fails with
//! a [`Missing`] error naming the range; [`Blocks::with_fetched`] then fetches that range (rounded
//! out to whole read-ahead blocks, so the next tag reads are served too) and runs the closure again.

use super::source::{ByteSource, Bytes};
use super::{Error, Result};
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::{Arc, RwLock};

/// Read-ahead granularity for metadata.
pub const BLOCK: u64 = 64 * 1024;
/// Most metadata kept per slide (IFDs, offset arrays, JPEG tables).
pub const MAX_METADATA: u64 = 256 << 20;
/// Fetch rounds allowed for one metadata step (each fetch makes progress, so this only stops a
/// pathological file).
const MAX_ROUNDS: usize = 10_000;

/// Bytes a read needed and did not find.
#[derive(Debug)]
pub struct Missing(pub Range<u64>);

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bytes {}..{} not fetched", self.0.start, self.0.end)
    }
}

impl std::error::Error for Missing {}

/// Fetched metadata blocks, shared by every reader of one slide.
#[derive(Default)]
pub struct Blocks {
    blocks: RwLock<BTreeMap<u64, Bytes>>,
}

impl Blocks {
    fn fetched_bytes(&self) -> u64 {
        self.blocks.read().map(|b| b.values().map(|v| v.len() as u64).sum()).unwrap_or(0)
    }

    /// Runs `step` on a reader over the fetched blocks, fetching what it misses, until it succeeds
    /// or fails for another reason.
    pub async fn with_fetched<T>(
        self: &Arc<Self>,
        source: &dyn ByteSource,
        mut step: impl FnMut(SparseReader) -> std::result::Result<T, tiff::TiffError>,
    ) -> Result<T> {
        let len = source.len();
        for _ in 0..MAX_ROUNDS {
            let missing = match step(SparseReader::new(self.clone(), len)) {
                Ok(value) => return Ok(value),
                Err(e) => match missing_range(&e) {
                    Some(range) => range,
                    None => return Err(tiff_error(e, len)),
                },
            };
            if missing.end > len {
                return Err(Error::Truncated { start: missing.start, end: missing.end, len });
            }
            if self.fetched_bytes() > MAX_METADATA {
                return Err(Error::Limit(format!("more than {} MiB of metadata", MAX_METADATA >> 20)));
            }
            let first = missing.start / BLOCK;
            let last = (missing.end - 1) / BLOCK;
            let span = first * BLOCK..((last + 1) * BLOCK).min(len);
            let bytes = source.read_range(span.clone()).await?;
            let mut blocks = self.blocks.write().map_err(|_| Error::Io("metadata lock poisoned".into()))?;
            for b in first..=last {
                let from = (b * BLOCK - span.start) as usize;
                let to = ((b + 1) * BLOCK).min(len) - span.start;
                blocks.entry(b).or_insert_with(|| bytes.slice(from..to as usize));
            }
        }
        Err(Error::Limit("too many metadata reads".into()))
    }
}

/// Maps a `tiff` crate error to ours.
pub fn tiff_error(e: tiff::TiffError, len: u64) -> Error {
    use tiff::TiffError as T;
    match e {
        T::FormatError(tiff::TiffFormatError::TiffSignatureNotFound | tiff::TiffFormatError::TiffSignatureInvalid) => Error::NotTiff,
        T::FormatError(f) => Error::Format(f.to_string()),
        T::UnsupportedError(u) => Error::Unsupported(u.to_string()),
        T::LimitsExceeded => Error::Limit("a tag or chunk is larger than the decoder limits".into()),
        T::IoError(io) if io.kind() == io::ErrorKind::UnexpectedEof => Error::Truncated { start: len, end: len + 1, len },
        T::IoError(io) => Error::Format(io.to_string()),
        other => Error::Format(other.to_string()),
    }
}

fn missing_range(e: &tiff::TiffError) -> Option<Range<u64>> {
    match e {
        tiff::TiffError::IoError(io) => io.get_ref()?.downcast_ref::<Missing>().map(|m| m.0.clone()),
        _ => None,
    }
}

/// `Read + Seek` over fetched blocks plus, optionally, one extra range (a tile's bytes).
pub struct SparseReader {
    blocks: Arc<Blocks>,
    extra: Vec<(u64, Bytes)>,
    pos: u64,
    len: u64,
}

impl SparseReader {
    /// A reader at position 0.
    pub fn new(blocks: Arc<Blocks>, len: u64) -> Self {
        Self { blocks, extra: Vec::new(), pos: 0, len }
    }

    /// Also serves `bytes` at `offset` (tile data fetched for one decode).
    pub fn with_extra(mut self, offset: u64, bytes: Bytes) -> Self {
        self.extra.push((offset, bytes));
        self
    }
}

impl Read for SparseReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.len {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.len - self.pos) as usize;
        for (offset, bytes) in &self.extra {
            let end = offset + bytes.len() as u64;
            if (*offset..end).contains(&self.pos) {
                let from = (self.pos - offset) as usize;
                let n = want.min(bytes.len() - from);
                buf[..n].copy_from_slice(&bytes[from..from + n]);
                self.pos += n as u64;
                return Ok(n);
            }
        }
        let block = self.pos / BLOCK;
        let blocks = self.blocks.blocks.read().map_err(|_| io::Error::other("metadata lock poisoned"))?;
        match blocks.get(&block) {
            Some(bytes) => {
                let from = (self.pos - block * BLOCK) as usize;
                let n = want.min(bytes.len().saturating_sub(from));
                if n == 0 {
                    return Ok(0);
                }
                buf[..n].copy_from_slice(&bytes[from..from + n]);
                self.pos += n as u64;
                Ok(n)
            }
            // Decoding a tile: all metadata is fetched, so this is a decompressor reading ahead past
            // the tile's bytes; it gets an end of file.
            None if !self.extra.is_empty() => Ok(0),
            // Ask for the whole read (not just this block), so one fetch answers it.
            None => Err(io::Error::other(Missing(self.pos..self.pos + want as u64))),
        }
    }
}

impl Seek for SparseReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

//! A local file, read with positioned reads (no shared cursor, so decoding threads do not contend).

use super::{ByteSource, Bytes, check_range};
use crate::slide::{Error, Result};
use std::fs::File;
use std::ops::Range;
use std::path::Path;

/// A local file.
pub struct FileSource {
    file: File,
    len: u64,
    name: String,
}

impl FileSource {
    /// Opens `path` for reading.
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let located = |e: std::io::Error| Error::Io(e.to_string()).at(&name);
        let file = File::open(path).map_err(located)?;
        let meta = file.metadata().map_err(located)?;
        if meta.is_dir() {
            return Err(Error::Io("is a directory".into()).at(&name));
        }
        Ok(Self { file, len: meta.len(), name })
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut at: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, at)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                at += n as u64;
            }
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl ByteSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        check_range(&range, self.len)?;
        let mut buf = vec![0; (range.end - range.start) as usize];
        read_at(&self.file, &mut buf, range.start).map_err(|e| Error::Io(e.to_string()))?;
        Ok(buf.into())
    }
}

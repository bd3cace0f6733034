//! Where pixels come from: whole-slide TIFFs (classic, BigTIFF, OME-TIFF, SVS, flat or pyramidal)
//! streamed tile by tile from a [`ByteSource`] (file, HTTP Range, browser Blob or fetch, memory),
//! and plain PNG/JPEG images decoded whole.
//!
//! Bytes flow one way: a source fetches ranges ([`source`]), a read-ahead block store answers the
//! `tiff` crate's metadata reads (`sparse`), the page layout becomes levels and associated images
//! (`layout`), tiles are decoded synchronously by the `tiff` crate (or zune-jpeg for JPEG tiles,
//! which the `tiff` crate hands back undecoded to RGB, and hayro-jpeg2000 for JPEG 2000 tiles)
//! (`decode`, `jpeg2000`), kept in a byte-bounded LRU
//! (`cache`), and composed into regions by [`Slide`].

mod cache;
mod decode;
mod dicom;
mod jpeg2000;
mod layout;
mod overview;
mod picture;
mod reader;
mod samples;
pub mod source;
mod sparse;
mod vendor;
mod write;

pub use dicom::MAX_FILES as MAX_SERIES_FILES;
pub use layout::{AssociatedImage, Level, SlideFormat};
pub use picture::{MAX_IMAGE_BYTES, MAX_IMAGE_FILE_BYTES, MAX_IMAGE_SIDE, decode_image, rgb_from_rgba, test_pattern};
pub use reader::{LevelInfo, Slide, SlideInfo, SlideOptions, resize};
pub use source::{ByteSource, Bytes, MemorySource};
pub use vendor::{Foreign, describe, recognise};
pub use write::{PageSpec, TiffWriter, TileCompression, image_to_tiff};

/// Errors while reading an image or a slide. Messages say what failed, then why; [`Error::At`]
/// appends the path or URL last.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not an image format ftuscope can read, or the image is corrupt.
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// The image decodes, but is larger than the limits allow.
    #[error("image too large: {width}×{height} exceeds the {max}px side limit")]
    TooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The limit.
        max: u32,
    },
    /// The image has no pixels.
    #[error("image is empty (0 pixels)")]
    Empty,
    /// The file does not start with a TIFF or BigTIFF header (nor a PNG or JPEG signature).
    #[error("not a TIFF (no II*/MM* header), nor a PNG or JPEG image")]
    NotTiff,
    /// The file ends before a structure it points to.
    #[error("truncated: needs bytes {start}..{end} but the file has {len}")]
    Truncated {
        /// First byte needed.
        start: u64,
        /// One past the last byte needed.
        end: u64,
        /// The file's length.
        len: u64,
    },
    /// The TIFF structure is invalid.
    #[error("invalid TIFF: {0}")]
    Format(String),
    /// A valid TIFF that uses something ftuscope does not read (named in the message).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A size, count or ratio over the configured limits (a hostile or broken file).
    #[error("over the limits: {0}")]
    Limit(String),
    /// A format ftuscope recognises but does not read: what it is, why, and the conversion to use.
    #[error("{format} is not read by ftuscope ({why}): {advice}")]
    Foreign {
        /// The format, with its vendor.
        format: &'static str,
        /// Why it is not read.
        why: &'static str,
        /// What to do instead.
        advice: &'static str,
    },
    /// No page in the file is an image ftuscope can show.
    #[error("no readable image page")]
    NoImage,
    /// A level or associated image that does not exist.
    #[error("no such {0}")]
    NotFound(String),
    /// Reading the file failed.
    #[error("read failed: {0}")]
    Io(String),
    /// The server answered with an error status.
    #[error("HTTP {status}")]
    Http {
        /// The status code.
        status: u16,
    },
    /// The server ignores Range requests and the file is too large to download whole.
    #[error("the server does not support Range requests and the file is larger than {max_mib} MiB")]
    NoRangeSupport {
        /// Largest file read whole from such a server, in MiB.
        max_mib: u64,
    },
    /// The server's answer does not match the request (e.g. a wrong Content-Range).
    #[error("bad server response: {0}")]
    BadResponse(String),
    /// The request failed before an answer (network down, DNS, TLS, timeout, or — in a browser —
    /// a CORS refusal, which the browser does not distinguish).
    #[error("network error: {0}")]
    Network(String),
    /// The work was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// An error in one tile (column, row of the level's tile grid).
    #[error("tile {col},{row}: {error}")]
    InTile {
        /// Tile column.
        col: u32,
        /// Tile row.
        row: u32,
        /// What went wrong.
        error: Box<Error>,
    },
    /// Another error, located: the file path or URL it happened in.
    #[error("{error}: {at}")]
    At {
        /// What went wrong.
        error: Box<Error>,
        /// Path or URL.
        at: String,
    },
}

impl Error {
    /// Adds the path or URL, once.
    pub fn at(self, at: &str) -> Self {
        match self {
            Self::At { .. } => self,
            error => Self::At { error: Box::new(error), at: at.to_string() },
        }
    }

    /// The error without its location.
    pub fn kind(&self) -> &Error {
        match self {
            Self::At { error, .. } | Self::InTile { error, .. } => error.kind(),
            other => other,
        }
    }
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

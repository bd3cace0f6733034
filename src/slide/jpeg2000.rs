//! JPEG 2000 chunks: Aperio's 33003 (a YCbCr codestream without the multiple-component transform)
//! and 33005 (RGB), and plain TIFF's 34712, decoded by `hayro-jpeg2000` (pure Rust, so the same
//! code runs natively and in wasm). OpenSlide decodes the same codes with libopenjp2 and converts
//! 33003's components from YCbCr itself; so does this.

use super::layout::Page;
use super::samples::{Samples, ycbcr_to_rgb};
use super::{Error, Result};
use hayro_jpeg2000::{DecodeSettings, DecoderContext, Image};

/// Aperio: YCbCr components, no MCT in the codestream (chroma may be subsampled inside it).
pub const APERIO_YCBCR: u16 = 33003;
/// Aperio: RGB components (the codestream may apply the MCT itself).
pub const APERIO_RGB: u16 = 33005;
/// TIFF's JPEG 2000 (as libtiff and tifffile write it).
pub const TIFF_JPEG2000: u16 = 34712;

/// Whether `compression` is one of the JPEG 2000 codes.
pub fn is_jpeg2000(compression: u16) -> bool {
    matches!(compression, APERIO_YCBCR | APERIO_RGB | TIFF_JPEG2000)
}

/// Decodes one chunk's codestream (or JP2 file) to 8-bit interleaved samples. The codestream's
/// declared size must fit the chunk (a little padding allowed), so a hostile header cannot make
/// the decoder allocate more than a tile.
pub(super) fn decode(page: &Page, bytes: &[u8]) -> Result<Samples> {
    let bad = |e: hayro_jpeg2000::DecodeError| Error::Format(format!("JPEG 2000 chunk: {e}"));
    let image = Image::new(bytes, &DecodeSettings::default()).map_err(bad)?;
    let (width, height) = (image.width(), image.height());
    if width == 0 || height == 0 || width > page.chunk_width + 16 || height > page.chunk_height + 16 {
        return Err(Error::Format(format!(
            "JPEG 2000 chunk: the codestream is {width}×{height}, the tile {}×{}",
            page.chunk_width, page.chunk_height
        )));
    }
    let mut context = DecoderContext::default();
    let decoded = image.decode(&mut context).map_err(bad)?;
    let channels = decoded.components().len();
    if !(1..=4).contains(&channels) {
        return Err(Error::Unsupported(format!("a JPEG 2000 chunk with {channels} components")));
    }
    let mut data = decoded.data_u8();
    if data.len() < width as usize * height as usize * channels {
        return Err(Error::Format("JPEG 2000 chunk decoded short".into()));
    }
    if page.compression == APERIO_YCBCR && channels >= 3 {
        for p in data.chunks_exact_mut(channels) {
            let rgb = ycbcr_to_rgb(p[0], p[1], p[2]);
            p[..3].copy_from_slice(&rgb);
        }
    }
    Ok(Samples { width, height, channels, data })
}

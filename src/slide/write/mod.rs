//! A small streaming writer for tiled TIFF and BigTIFF: tiles are produced one at a time by a
//! callback, compressed (none, LZW or Deflate by the `tiff` crate's compressors; JPEG by the `image`
//! crate), written straight out, and only their offsets are kept — memory stays at one tile
//! whatever the image size. The `tiff` crate's own encoder writes strips only, hence this.

use super::{ByteSource, MemorySource, Slide, SlideFormat, SlideOptions};
use image::RgbImage;
#[cfg(not(target_arch = "wasm32"))]
use rayon::prelude::*;
use std::io::{self, Seek, SeekFrom, Write};
use std::sync::Arc;
use tiff::encoder::compression::{CompressionAlgorithm, Deflate, Lzw};

/// How tiles are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileCompression {
    /// Raw bytes.
    None,
    /// Adobe Deflate (zlib).
    Deflate,
    /// LZW with the TIFF code-size switch (compression 5).
    Lzw,
    /// Baseline JPEG at this quality (1–100), stored as YCbCr without subsampling.
    Jpeg(u8),
}

impl TileCompression {
    fn tag(self) -> u16 {
        match self {
            Self::None => 1,
            Self::Lzw => 5,
            Self::Jpeg(_) => 7,
            Self::Deflate => 8,
        }
    }
}

/// One page (IFD) to write.
#[derive(Debug, Clone)]
pub struct PageSpec {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Tile side, a multiple of 16.
    pub tile: u32,
    /// Tile compression.
    pub compression: TileCompression,
    /// Marks a reduced-resolution (pyramid) page (NewSubfileType = 1).
    pub reduced: bool,
    /// Write only this channel (0 = R, 1 = G, 2 = B) as a grey page, for the HuBMAP layout where an
    /// RGB image is three single-channel pages.
    pub channel: Option<usize>,
    /// ImageDescription, if any.
    pub description: Option<String>,
    /// Pixel size in µm, written as X/YResolution in pixels per centimetre (ResolutionUnit 3).
    pub pixel_size_um: Option<f64>,
}

/// Writes pages of tiles to `W`.
pub struct TiffWriter<W: Write + Seek> {
    out: W,
    big: bool,
    /// Where the previous "next IFD" pointer sits, to patch when the next page is written.
    next_pointer_at: u64,
}

const SHORT: u16 = 3;
const LONG: u16 = 4;
const ASCII: u16 = 2;
const LONG8: u16 = 16;
const RATIONAL: u16 = 5;

impl<W: Write + Seek> TiffWriter<W> {
    /// Starts a little-endian TIFF (`big = false`, offsets up to 4 GiB) or BigTIFF.
    pub fn new(mut out: W, big: bool) -> io::Result<Self> {
        if big {
            out.write_all(b"II\x2b\x00\x08\x00\x00\x00")?;
            out.write_all(&0u64.to_le_bytes())?;
            Ok(Self { out, big, next_pointer_at: 8 })
        } else {
            out.write_all(b"II\x2a\x00")?;
            out.write_all(&0u32.to_le_bytes())?;
            Ok(Self { out, big, next_pointer_at: 4 })
        }
    }

    /// Writes one page; `tile(column, row)` renders each tile (edge tiles may be smaller or full
    /// size: they are padded with white to the tile size).
    ///
    /// Each row of tiles is rendered and compressed in parallel, then written in order: memory holds
    /// one row of tiles.
    pub fn write_page(&mut self, spec: &PageSpec, tile: impl Fn(u32, u32) -> RgbImage + Sync) -> io::Result<()> {
        if spec.tile == 0 || !spec.tile.is_multiple_of(16) || spec.width == 0 || spec.height == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "tile must be a positive multiple of 16 and the page non-empty"));
        }
        let (cols, rows) = (spec.width.div_ceil(spec.tile), spec.height.div_ceil(spec.tile));
        let mut offsets = Vec::with_capacity((cols * rows) as usize);
        let mut counts = Vec::with_capacity((cols * rows) as usize);
        let samples: u16 = if spec.channel.is_some() { 1 } else { 3 };
        for row in 0..rows {
            #[cfg(not(target_arch = "wasm32"))]
            let columns = (0..cols).into_par_iter();
            #[cfg(target_arch = "wasm32")]
            let columns = 0..cols;
            let encoded: Vec<io::Result<Vec<u8>>> = columns.map(|col| encode_tile(spec, &tile(col, row), samples)).collect();
            for bytes in encoded {
                let bytes = bytes?;
                let at = self.out.stream_position()?;
                self.out.write_all(&bytes)?;
                offsets.push(at);
                counts.push(bytes.len() as u64);
            }
        }
        let t = spec.tile;
        let photometric = match (spec.channel, spec.compression) {
            (Some(_), _) => 1,
            (None, TileCompression::Jpeg(_)) => 6,
            (None, _) => 2,
        };
        let mut entries: Vec<(u16, u16, u64, Vec<u8>)> = vec![
            (254, LONG, 1, u32::from(spec.reduced).to_le_bytes().to_vec()),
            (256, LONG, 1, spec.width.to_le_bytes().to_vec()),
            (257, LONG, 1, spec.height.to_le_bytes().to_vec()),
            (258, SHORT, samples as u64, (0..samples).flat_map(|_| 8u16.to_le_bytes()).collect()),
            (259, SHORT, 1, spec.compression.tag().to_le_bytes().to_vec()),
            (262, SHORT, 1, (photometric as u16).to_le_bytes().to_vec()),
            (277, SHORT, 1, samples.to_le_bytes().to_vec()),
            (284, SHORT, 1, 1u16.to_le_bytes().to_vec()),
            (322, LONG, 1, t.to_le_bytes().to_vec()),
            (323, LONG, 1, t.to_le_bytes().to_vec()),
            self.offsets_entry(324, &offsets)?,
            self.offsets_entry(325, &counts)?,
        ];
        if let Some(text) = &spec.description {
            let mut bytes = text.as_bytes().to_vec();
            bytes.push(0);
            entries.push((270, ASCII, bytes.len() as u64, bytes));
        }
        if let Some(um) = spec.pixel_size_um.filter(|um| um.is_finite() && *um > 0.0) {
            // Pixels per centimetre as a rational with a denominator of 1000.
            let per_cm = ((10_000.0 / um) * 1000.0).round().clamp(1.0, u32::MAX as f64) as u32;
            let rational = [per_cm.to_le_bytes(), 1000u32.to_le_bytes()].concat();
            entries.push((282, RATIONAL, 1, rational.clone()));
            entries.push((283, RATIONAL, 1, rational));
            entries.push((296, SHORT, 1, 3u16.to_le_bytes().to_vec()));
        }
        if photometric == 6 {
            entries.push((530, SHORT, 2, [1u16.to_le_bytes(), 1u16.to_le_bytes()].concat()));
        }
        entries.sort_by_key(|e| e.0);
        self.write_ifd(&entries)
    }

    fn offsets_entry(&self, tag: u16, values: &[u64]) -> io::Result<(u16, u16, u64, Vec<u8>)> {
        if self.big {
            return Ok((tag, LONG8, values.len() as u64, values.iter().flat_map(|v| v.to_le_bytes()).collect()));
        }
        let narrow = values
            .iter()
            .map(|&v| u32::try_from(v).map(u32::to_le_bytes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the file passes 4 GiB: write a BigTIFF"))?;
        Ok((tag, LONG, values.len() as u64, narrow.concat()))
    }

    /// Writes out-of-line values, then the IFD, and links it from the previous one.
    fn write_ifd(&mut self, entries: &[(u16, u16, u64, Vec<u8>)]) -> io::Result<()> {
        let inline = if self.big { 8 } else { 4 };
        let mut placed = Vec::with_capacity(entries.len());
        for (_, _, _, data) in entries {
            if data.len() > inline {
                self.align()?;
                placed.push(Some(self.out.stream_position()?));
                self.out.write_all(data)?;
            } else {
                placed.push(None);
            }
        }
        self.align()?;
        let ifd_at = self.out.stream_position()?;
        let mut ifd = Vec::new();
        if self.big {
            ifd.extend((entries.len() as u64).to_le_bytes());
        } else {
            ifd.extend((entries.len() as u16).to_le_bytes());
        }
        for ((tag, kind, count, data), at) in entries.iter().zip(&placed) {
            ifd.extend(tag.to_le_bytes());
            ifd.extend(kind.to_le_bytes());
            let mut value = match at {
                Some(offset) if self.big => offset.to_le_bytes().to_vec(),
                Some(offset) => (*offset as u32).to_le_bytes().to_vec(),
                None => data.clone(),
            };
            value.resize(inline, 0);
            if self.big {
                ifd.extend(count.to_le_bytes());
            } else {
                ifd.extend((*count as u32).to_le_bytes());
            }
            ifd.extend(value);
        }
        let next_at = ifd_at + ifd.len() as u64;
        ifd.extend(vec![0u8; inline]);
        if !self.big && ifd_at > u32::MAX as u64 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the file passes 4 GiB: write a BigTIFF"));
        }
        self.out.write_all(&ifd)?;
        let end = self.out.stream_position()?;
        self.out.seek(SeekFrom::Start(self.next_pointer_at))?;
        if self.big {
            self.out.write_all(&ifd_at.to_le_bytes())?;
        } else {
            self.out.write_all(&(ifd_at as u32).to_le_bytes())?;
        }
        self.out.seek(SeekFrom::Start(end))?;
        self.next_pointer_at = next_at;
        Ok(())
    }

    fn align(&mut self) -> io::Result<()> {
        if self.out.stream_position()? % 2 == 1 {
            self.out.write_all(&[0])?;
        }
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Pads a tile to full size (white), picks the channel(s) and compresses it.
fn encode_tile(spec: &PageSpec, image: &RgbImage, samples: u16) -> io::Result<Vec<u8>> {
    let t = spec.tile;
    // Pad to the full tile size (white), as TIFF tiles always are.
    let mut full = RgbImage::from_pixel(t, t, image::Rgb([255, 255, 255]));
    image::imageops::replace(&mut full, image, 0, 0);
    let raw: Vec<u8> = match spec.channel {
        Some(c) => full.pixels().map(|p| p.0[c.min(2)]).collect(),
        None => full.into_raw(),
    };
    let mut out = Vec::new();
    match spec.compression {
        TileCompression::None => out = raw,
        TileCompression::Deflate => {
            Deflate::default().write_to(&mut out, &raw)?;
        }
        TileCompression::Lzw => {
            Lzw.write_to(&mut out, &raw)?;
        }
        TileCompression::Jpeg(quality) => {
            let colour = if samples == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
                .encode(&raw, t, t, colour)
                .map_err(io::Error::other)?;
        }
    }
    Ok(out)
}

/// `image` as a one-page tiled TIFF in memory (Deflate, lossless): how a plain image becomes a
/// one-level slide for the engine ([`Slide::from_image`]).
pub fn image_to_tiff(image: &RgbImage, pixel_size_um: Option<f64>) -> io::Result<Vec<u8>> {
    const TILE: u32 = 256;
    let (width, height) = image.dimensions();
    let spec = PageSpec {
        width,
        height,
        tile: TILE,
        compression: TileCompression::Deflate,
        reduced: false,
        channel: None,
        description: None,
        pixel_size_um,
    };
    let mut writer = TiffWriter::new(io::Cursor::new(Vec::new()), false)?;
    writer.write_page(&spec, |c, r| {
        let (x, y) = (c * TILE, r * TILE);
        image::imageops::crop_imm(image, x, y, TILE.min(width - x), TILE.min(height - y)).to_image()
    })?;
    Ok(writer.finish()?.into_inner())
}

impl Slide {
    /// A decoded image (PNG, JPEG, a canvas) as a one-level slide named `name`, so that plain
    /// images run through the same engine as whole slides.
    pub async fn from_image(image: &RgbImage, pixel_size_um: Option<f64>, name: &str) -> super::Result<Slide> {
        Self::from_image_with(image, SlideOptions::new().with_pixel_size_um(pixel_size_um), name).await
    }

    /// [`Slide::from_image`] with reading options (the pixel size comes from `options`).
    pub async fn from_image_with(image: &RgbImage, options: SlideOptions, name: &str) -> super::Result<Slide> {
        let bytes = image_to_tiff(image, options.pixel_size_um)
            .map_err(|e| super::Error::Decode(format!("cannot hold the image as a slide: {e}")))?;
        Slide::open_tiff(std::sync::Arc::new(MemorySource::new(bytes, name)), options).await
    }

    /// A PNG/JPEG file (already recognised as `format`) read whole, decoded and held as a one-level slide.
    pub(super) async fn open_picture(source: Arc<dyn ByteSource>, options: SlideOptions, format: SlideFormat) -> super::Result<Slide> {
        let name = source.name().to_string();
        let image = super::picture::read_picture(source.as_ref()).await.map_err(|e| e.at(&name))?;
        let mut slide = Self::from_image_with(&image, options, &name).await?;
        slide.layout.format = format;
        slide.file_len = source.len();
        Ok(slide)
    }
}

#[cfg(test)]
mod tests;

//! Decoding one chunk (tile or strip) whose compressed bytes are already fetched: a plain
//! synchronous step. JPEG chunks go to zune-jpeg with the page's JPEGTables (the `tiff` crate hands
//! back JPEG data in the stream's own colour space, which for SVS and YCbCr TIFFs is not RGB);
//! JPEG 2000 chunks to `super::jpeg2000`; everything else to the `tiff` crate. The result is 8-bit RGB.

use super::layout::{MAX_CHUNK_BYTES, Page, decoder_limits};
use super::samples::{Samples, ycbcr_to_rgb};
use super::source::Bytes;
use super::sparse::{Blocks, SparseReader, tiff_error};
use super::{Error, Result};
use image::RgbImage;
use std::sync::Arc;
use tiff::ColorType;
use tiff::decoder::{Decoder, DecodingResult};
use tiff::tags::IfdPointer;
use zune_jpeg::zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions};

/// Most decoded bytes per compressed byte (Deflate's ceiling is ~1032:1, LZW's ~1300:1 per table);
/// more means a hostile file.
pub const MAX_RATIO: u64 = 4096;

/// One part of a chunk: a page, its chunk index, and the compressed bytes.
pub struct Part<'a> {
    pub page: &'a Page,
    pub index: u32,
    pub bytes: Bytes,
}

/// Decodes the parts of one chunk — one chunky part, or one part per plane (planar pages and the
/// HuBMAP three-page layout) — into an RGB image of the chunk's data size (`width`×`height`).
pub fn decode_chunk(blocks: &Arc<Blocks>, len: u64, parts: &[Part<'_>], width: u32, height: u32) -> Result<RgbImage> {
    let mut decoded = parts.iter().map(|p| decode_part(blocks, len, p)).collect::<Result<Vec<_>>>()?;
    let (w, h) = (width as usize, height as usize);
    if decoded.len() == 1 && decoded[0].channels == 3 && decoded[0].width as usize >= w && decoded[0].height as usize >= h {
        // The common case: RGB, as large as the chunk or larger (padded edge tiles): rows are copied.
        let s = decoded.swap_remove(0);
        let row = s.width as usize * 3;
        let mut data = s.data;
        if row != w * 3 {
            for y in 0..h {
                data.copy_within(y * row..y * row + w * 3, y * w * 3);
            }
        }
        data.truncate(w * h * 3);
        return RgbImage::from_raw(width, height, data).ok_or_else(|| Error::Format("a chunk decoded short".into()));
    }
    let mut out = RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    if decoded.len() == 1 {
        let s = &decoded[0];
        let (cw, ch) = ((s.width as usize).min(w), (s.height as usize).min(h));
        let row = s.width as usize * s.channels;
        for y in 0..ch {
            for x in 0..cw {
                let p = &s.data[y * row + x * s.channels..][..s.channels];
                let rgb = match s.channels {
                    1 => [p[0]; 3],
                    2 => [over_white(p[0], p[1]); 3],
                    3 => [p[0], p[1], p[2]],
                    _ => [over_white(p[0], p[3]), over_white(p[1], p[3]), over_white(p[2], p[3])],
                };
                out.put_pixel(x as u32, y as u32, image::Rgb(rgb));
            }
        }
    } else {
        for (c, s) in decoded.iter().take(3).enumerate() {
            let (cw, ch) = ((s.width as usize).min(w), (s.height as usize).min(h));
            for y in 0..ch {
                for x in 0..cw {
                    out.get_pixel_mut(x as u32, y as u32).0[c] = s.data[(y * s.width as usize + x) * s.channels];
                }
            }
        }
        if decoded.len() < 3 {
            for p in out.pixels_mut() {
                p.0 = [p.0[0]; 3];
            }
        }
    }
    Ok(out)
}

fn over_white(value: u8, alpha: u8) -> u8 {
    ((value as u32 * alpha as u32 + 255 * (255 - alpha as u32)) / 255) as u8
}

fn decode_part(blocks: &Arc<Blocks>, len: u64, part: &Part<'_>) -> Result<Samples> {
    let page = part.page;
    let declared = page.chunk_width as u64 * page.chunk_height as u64 * page.samples.max(1) as u64 * page.bits.div_ceil(8).max(1) as u64;
    if declared > MAX_CHUNK_BYTES {
        return Err(Error::Limit(format!(
            "a {}×{} chunk is larger than {} MiB",
            page.chunk_width,
            page.chunk_height,
            MAX_CHUNK_BYTES >> 20
        )));
    }
    if page.compression == 7 && !page.planar {
        return decode_jpeg(page, &part.bytes);
    }
    if page.compression == 6 {
        return Err(Error::Unsupported("old-style JPEG (compression 6)".into()));
    }
    if super::jpeg2000::is_jpeg2000(page.compression) {
        return super::jpeg2000::decode(page, &part.bytes);
    }
    if let Some(planar) = page.raw {
        return decode_raw(page, &part.bytes, planar);
    }
    if page.compression != 1 && declared > MAX_RATIO * part.bytes.len() as u64 + 65_536 {
        return Err(Error::Limit(format!(
            "a chunk of {} bytes claims to expand to {declared} (ratio over {MAX_RATIO}:1)",
            part.bytes.len()
        )));
    }
    let offset = page.offsets.get(part.index as usize).copied().ok_or_else(|| Error::Format("chunk index outside the offsets".into()))?;
    let reader = SparseReader::new(blocks.clone(), len).with_extra(offset, part.bytes.clone());
    let run = || -> std::result::Result<(DecodingResult, ColorType, (u32, u32)), tiff::TiffError> {
        let mut d = Decoder::new(reader)?.with_limits(decoder_limits());
        d.seek_to_directory(IfdPointer(page.ptr))?;
        let color = d.colortype()?;
        let dims = d.chunk_data_dimensions(part.index);
        Ok((d.read_chunk(part.index)?, color, dims))
    };
    let (result, color, (width, height)) = run().map_err(|e| tiff_error(e, len))?;
    let channels = if page.planar {
        1
    } else {
        match color {
            ColorType::Gray(_) => 1,
            ColorType::GrayA(_) => 2,
            ColorType::RGB(_) | ColorType::YCbCr(_) => 3,
            ColorType::RGBA(_) => 4,
            other => return Err(Error::Unsupported(format!("colour type {other:?}"))),
        }
    };
    let mut data = match result {
        DecodingResult::U8(v) => v,
        // 16 → 8 bits for display and the model: the high byte.
        DecodingResult::U16(v) => v.into_iter().map(|s| (s >> 8) as u8).collect(),
        _ => return Err(Error::Unsupported(format!("{}-bit or floating-point samples", page.bits))),
    };
    if matches!(color, ColorType::YCbCr(_)) && !page.planar {
        for p in data.chunks_exact_mut(3) {
            let rgb = ycbcr_to_rgb(p[0], p[1], p[2]);
            p.copy_from_slice(&rgb);
        }
    }
    if data.len() < width as usize * height as usize * channels {
        return Err(Error::Format("a chunk decoded to fewer samples than its size".into()));
    }
    Ok(Samples { width, height, channels, data })
}

fn decode_jpeg(page: &Page, bytes: &[u8]) -> Result<Samples> {
    // JPEGTables holds the shared tables: SOI + tables, without EOI; each chunk is SOI + scan.
    let data: Vec<u8> = match &page.jpeg_tables {
        Some(tables) if tables.len() >= 4 && bytes.len() >= 2 => {
            let mut data = Vec::with_capacity(tables.len() + bytes.len());
            data.extend_from_slice(&tables[..tables.len() - 2]);
            data.extend_from_slice(&bytes[2..]);
            data
        }
        _ => bytes.to_vec(),
    };
    let grey = page.samples == 1;
    let limits = DecoderOptions::default().set_max_width(page.chunk_width as usize + 16).set_max_height(page.chunk_height as usize + 16);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(data), limits);
    decoder.decode_headers().map_err(|e| Error::Format(format!("JPEG chunk: {e:?}")))?;
    // Ask for the components as stored and convert by the TIFF's photometric interpretation, as
    // libtiff does: Aperio writes RGB components under photometric RGB, without the markers JPEG
    // decoders use to tell RGB from YCbCr.
    let stored = decoder.input_colorspace().unwrap_or(ColorSpace::YCbCr);
    // Photometric RGB over a stream that looks YCbCr: the components are RGB already (Aperio), so
    // ask for them unconverted; otherwise let the decoder convert (its SIMD path).
    let raw_rgb = page.photometric == 2 && stored == ColorSpace::YCbCr;
    let out = if grey {
        ColorSpace::Luma
    } else if raw_rgb {
        ColorSpace::YCbCr
    } else {
        ColorSpace::RGB
    };
    decoder.set_options(limits.jpeg_set_out_colorspace(out));
    let pixels = decoder.decode().map_err(|e| Error::Format(format!("JPEG chunk: {e:?}")))?;
    let (w, h) = decoder.dimensions().ok_or_else(|| Error::Format("JPEG chunk without a size".into()))?;
    let channels = if grey { 1 } else { 3 };
    if pixels.len() < w * h * channels {
        return Err(Error::Format("JPEG chunk decoded short".into()));
    }
    Ok(Samples { width: w as u32, height: h as u32, channels, data: pixels })
}

/// An uncompressed DICOM frame: 8-bit samples, interleaved or (`planar`) plane after plane.
fn decode_raw(page: &Page, bytes: &[u8], planar: bool) -> Result<Samples> {
    let (w, h, channels) = (page.chunk_width as usize, page.chunk_height as usize, page.samples.clamp(1, 4) as usize);
    let n = w * h;
    if bytes.len() < n * channels {
        return Err(Error::Format(format!("an uncompressed frame of {} bytes, {} needed", bytes.len(), n * channels)));
    }
    let mut data = if planar && channels > 1 {
        let mut out = vec![0u8; n * channels];
        for c in 0..channels {
            for (i, v) in bytes[c * n..(c + 1) * n].iter().enumerate() {
                out[i * channels + c] = *v;
            }
        }
        out
    } else {
        bytes[..n * channels].to_vec()
    };
    if page.photometric == 6 && channels >= 3 {
        for p in data.chunks_exact_mut(channels) {
            let rgb = ycbcr_to_rgb(p[0], p[1], p[2]);
            p[..3].copy_from_slice(&rgb);
        }
    }
    Ok(Samples { width: w as u32, height: h as u32, channels, data })
}

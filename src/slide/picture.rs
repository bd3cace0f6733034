//! Plain images (PNG, JPEG) decoded whole from bytes with the `image` crate, with limits so a
//! hostile file cannot exhaust memory.

use super::{ByteSource, Error, SlideFormat};
use image::{ImageDecoder, ImageReader, Limits, RgbImage};
use std::io::Cursor;

/// Largest width or height accepted for a plain image (whole slides are streamed, never decoded whole).
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// Largest decoded allocation accepted for a plain image, in bytes.
pub const MAX_IMAGE_BYTES: u64 = 1 << 30;

/// Decodes PNG or JPEG bytes into 8-bit RGB, rejecting corrupt, empty and oversized images.
///
/// The header is read once: its size is checked before any pixel is allocated.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage, Error> {
    let decode_error = |e: image::ImageError| Error::Decode(e.to_string());
    let mut decoder = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Decode(e.to_string()))?
        .into_decoder()
        .map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(Error::TooLarge { width, height, max: MAX_IMAGE_SIDE });
    }
    if width == 0 || height == 0 {
        return Err(Error::Empty);
    }
    decoder.set_limits(limits()).map_err(decode_error)?;
    let image = image::DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    Ok(image.into_rgb8())
}

/// Largest PNG/JPEG *file* opened as a slide (it is read whole before decoding).
pub const MAX_IMAGE_FILE_BYTES: u64 = 512 << 20;

/// PNG or JPEG by the file's first bytes; `None` for anything else (TIFFs, unknown files).
pub(super) fn sniff(head: &[u8]) -> Option<SlideFormat> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(SlideFormat::Png)
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(SlideFormat::Jpeg)
    } else {
        None
    }
}

/// The whole file of a plain image, decoded (bounded by [`MAX_IMAGE_FILE_BYTES`] and the decoder limits).
pub(super) async fn read_picture(source: &dyn ByteSource) -> Result<RgbImage, Error> {
    if source.len() > MAX_IMAGE_FILE_BYTES {
        return Err(Error::Decode(format!(
            "the image file is {} MiB; plain images are decoded whole and may be at most {} MiB (convert it to a tiled TIFF)",
            source.len() >> 20,
            MAX_IMAGE_FILE_BYTES >> 20
        )));
    }
    let bytes = source.read_range(0..source.len()).await?;
    decode_image(&bytes)
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    limits
}

/// Wraps RGBA bytes (as a browser canvas gives them) into an RGB image, dropping alpha.
pub fn rgb_from_rgba(rgba: &[u8], width: u32, height: u32) -> Result<RgbImage, Error> {
    let expected = width as usize * height as usize * 4;
    if width == 0 || height == 0 {
        return Err(Error::Empty);
    }
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(Error::TooLarge { width, height, max: MAX_IMAGE_SIDE });
    }
    if rgba.len() != expected {
        return Err(Error::Decode(format!("expected {expected} RGBA bytes for {width}×{height}, got {}", rgba.len())));
    }
    let rgb = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    RgbImage::from_raw(width, height, rgb).ok_or(Error::Empty)
}

/// A deterministic `width`×`height` RGB image (smooth colour gradients with a few dark discs), used
/// by self-tests on every platform so that native and browser runs can be compared number for number.
pub fn test_pattern(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let disc = |cx: f32, cy: f32, r: f32| {
            let (dx, dy) = (x as f32 - cx * width as f32, y as f32 - cy * height as f32);
            dx * dx + dy * dy < (r * width.min(height) as f32).powi(2)
        };
        if disc(0.3, 0.3, 0.15) || disc(0.7, 0.6, 0.2) {
            image::Rgb([90, 40, 120])
        } else {
            let r = 200 + (x * 55 / width.max(1)) as u8;
            let g = 150 + (y * 60 / height.max(1)) as u8;
            image::Rgb([r, g, 200])
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn decodes_png_to_rgb() {
        let img = decode_image(&png_bytes(5, 3)).unwrap();
        assert_eq!(img.dimensions(), (5, 3));
        assert_eq!(img.get_pixel(4, 2).0, [4, 2, 7]);
    }

    #[test]
    fn garbage_and_truncated_files_are_typed_errors() {
        assert!(matches!(decode_image(b"definitely not an image"), Err(Error::Decode(_))));
        let png = png_bytes(64, 64);
        assert!(matches!(decode_image(&png[..png.len() / 2]), Err(Error::Decode(_))));
        assert!(matches!(decode_image(&[]), Err(Error::Decode(_))));
    }

    #[test]
    fn oversized_images_are_rejected_from_the_header() {
        let wide = png_bytes(MAX_IMAGE_SIDE + 1, 1);
        assert!(matches!(decode_image(&wide), Err(Error::TooLarge { width, .. }) if width == MAX_IMAGE_SIDE + 1));
    }

    #[test]
    fn rgba_length_is_checked() {
        assert!(rgb_from_rgba(&[0; 16], 2, 2).is_ok());
        assert!(matches!(rgb_from_rgba(&[0; 15], 2, 2), Err(Error::Decode(_))));
        assert!(matches!(rgb_from_rgba(&[], 0, 2), Err(Error::Empty)));
    }

    /// PNG and JPEG bytes open as one-level slides wherever slides open (the signature decides),
    /// keep their pixels, take a pixel size, and a truncated or oversized file is a typed error.
    #[test]
    fn plain_images_open_as_slides() {
        use crate::slide::{MemorySource, Slide, SlideFormat, SlideOptions};
        use futures_lite::future::block_on;
        use std::sync::Arc;
        let png = png_bytes(300, 200);
        let want = decode_image(&png).unwrap();
        let slide = block_on(Slide::open(Arc::new(MemorySource::new(png.clone(), "a.png")))).unwrap();
        assert_eq!((slide.format(), slide.dimensions(), slide.pixel_size_um()), (SlideFormat::Png, (300, 200), None));
        let info = slide.info();
        assert_eq!((info.bytes, info.levels[0].compression.as_str()), (png.len() as u64, "PNG (decoded whole)"));
        assert_eq!(block_on(slide.read_region(0, 0, 0, 300, 200)).unwrap(), want);
        slide.set_pixel_size_um(Some(0.5));
        assert_eq!((slide.pixel_size_um(), slide.info().pixel_size_um), (Some(0.5), Some(0.5)));
        slide.set_pixel_size_um(Some(f64::NAN));
        assert_eq!(slide.pixel_size_um(), None);
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&want).unwrap();
        let options = SlideOptions::new().with_pixel_size_um(Some(1.0));
        let slide = block_on(Slide::open_with(Arc::new(MemorySource::new(jpeg.clone(), "a.jpg")), options)).unwrap();
        assert_eq!((slide.format(), slide.pixel_size_um()), (SlideFormat::Jpeg, Some(1.0)));
        let cut = block_on(Slide::open(Arc::new(MemorySource::new(png[..png.len() / 3].to_vec(), "cut.png"))));
        let Err(error) = cut else { panic!("a truncated PNG opened") };
        assert!(error.to_string().starts_with("cannot decode image") && error.to_string().ends_with("cut.png"), "{error}");
    }
}

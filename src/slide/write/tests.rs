use super::*;
use std::io::Cursor;
use tiff::decoder::{Decoder, DecodingResult};

fn pattern(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7 % 256) as u8, (y * 3 % 256) as u8, ((x + y) % 256) as u8]))
}

fn write(image: &RgbImage, pages: &[PageSpec], big: bool) -> Vec<u8> {
    let mut writer = TiffWriter::new(Cursor::new(Vec::new()), big).unwrap();
    for spec in pages {
        let t = spec.tile;
        writer
            .write_page(spec, |c, r| {
                let (x, y) = (c * t, r * t);
                image::imageops::crop_imm(image, x, y, t.min(image.width() - x), t.min(image.height() - y)).to_image()
            })
            .unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn spec(compression: TileCompression) -> PageSpec {
    PageSpec { width: 100, height: 70, tile: 32, compression, reduced: false, channel: None, description: None, pixel_size_um: Some(0.5) }
}

fn pixels(decoder: &mut Decoder<Cursor<Vec<u8>>>) -> Vec<u8> {
    match decoder.read_image().unwrap() {
        DecodingResult::U8(v) => v,
        other => panic!("not 8-bit: {other:?}"),
    }
}

#[test]
fn lossless_pages_read_back_identically_with_the_tiff_crate() {
    let image = pattern(100, 70);
    for big in [false, true] {
        let bytes = write(&image, &[spec(TileCompression::None), spec(TileCompression::Deflate), spec(TileCompression::Lzw)], big);
        let mut decoder = Decoder::new(Cursor::new(bytes)).unwrap();
        for page in 0..3 {
            assert_eq!(decoder.dimensions().unwrap(), (100, 70));
            assert_eq!(decoder.get_tag_u32_vec(tiff::tags::Tag::XResolution).unwrap(), vec![20_000_000, 1000]);
            assert_eq!(decoder.get_tag_u32(tiff::tags::Tag::ResolutionUnit).unwrap(), 3);
            assert_eq!(pixels(&mut decoder), image.as_raw().clone(), "page {page}, bigtiff {big}");
            assert_eq!(decoder.more_images(), page < 2);
            if page < 2 {
                decoder.next_image().unwrap();
            }
        }
    }
}

#[test]
fn jpeg_tiles_read_back_closely() {
    let source = RgbImage::from_fn(100, 70, |x, y| image::Rgb([(x * 2) as u8, (y * 3) as u8, 128]));
    let bytes = write(&source, &[spec(TileCompression::Jpeg(95))], false);
    let mut decoder = Decoder::new(Cursor::new(bytes)).unwrap();
    assert!(matches!(decoder.colortype().unwrap(), tiff::ColorType::YCbCr(8)));
    // The tiff crate hands back YCbCr samples for YCbCr pages: convert them (JFIF) to compare.
    let back: Vec<f64> = pixels(&mut decoder)
        .chunks_exact(3)
        .flat_map(|p| {
            let (y, cb, cr) = (p[0] as f64, p[1] as f64 - 128.0, p[2] as f64 - 128.0);
            [y + 1.402 * cr, y - 0.344_136 * cb - 0.714_136 * cr, y + 1.772 * cb]
        })
        .collect();
    let mean_error = back.iter().zip(source.as_raw()).map(|(a, b)| (a - *b as f64).abs()).sum::<f64>() / back.len() as f64;
    assert!(mean_error < 3.0, "mean |error| {mean_error}");
}

#[test]
fn single_channel_pages_and_reduced_flag() {
    let image = pattern(100, 70);
    let mut red = spec(TileCompression::Deflate);
    red.channel = Some(0);
    red.reduced = true;
    let bytes = write(&image, &[red], false);
    let mut decoder = Decoder::new(Cursor::new(bytes)).unwrap();
    let back = pixels(&mut decoder);
    let expected: Vec<u8> = image.pixels().map(|p| p.0[0]).collect();
    assert_eq!(back, expected);
    assert_eq!(decoder.get_tag_u32(tiff::tags::Tag::NewSubfileType).unwrap(), 1);
}

#[test]
fn bad_tile_size_is_an_error() {
    let mut writer = TiffWriter::new(Cursor::new(Vec::new()), false).unwrap();
    let mut bad = spec(TileCompression::None);
    bad.tile = 30;
    assert!(writer.write_page(&bad, |_, _| RgbImage::new(30, 30)).is_err());
}

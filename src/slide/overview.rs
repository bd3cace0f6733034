//! Overview levels for slides without small levels (the Kaggle TIFFs are flat): one streaming pass
//! over the smallest stored level, in bands, averaging f×f blocks into an in-memory level, then
//! halving it down to a few hundred pixels. Memory: one band plus the overviews.

use super::reader::{MAX_REGION_SIDE, Slide};
use super::{Level, Result};
use image::RgbImage;
use std::sync::Arc;

/// Slides whose smallest level is at most this large on its longer side need no overview.
pub const OVERVIEW_THRESHOLD: u32 = 2048;
/// Overviews stop halving below this side.
const SMALLEST_SIDE: u32 = 256;

impl Slide {
    /// Builds overview levels when the smallest stored level is larger than
    /// [`OVERVIEW_THRESHOLD`]; `progress(done, total)` is called after each band. Returns how many
    /// levels were added (0 when none are needed or they exist already).
    pub async fn build_overviews(&self, progress: &mut dyn FnMut(u32, u32)) -> Result<usize> {
        let levels = self.levels();
        let source_index = levels.iter().rposition(|l| !l.is_virtual).unwrap_or(0);
        let base = levels[source_index].clone();
        if levels.len() > source_index + 1 || base.width.max(base.height) <= OVERVIEW_THRESHOLD {
            return Ok(0);
        }
        // The first overview: the smallest power-of-two reduction that fits the memory budget.
        let budget = self.options.overview_bytes.max(1 << 20);
        let mut factor = 2u32;
        while (base.width.div_ceil(factor) as u64 * base.height.div_ceil(factor) as u64 * 3) > budget / 2 {
            factor *= 2;
        }
        let (ow, oh) = (base.width.div_ceil(factor), base.height.div_ceil(factor));
        let mut overview = RgbImage::new(ow, oh);
        let (band, piece) = band_and_piece(&base, factor);
        let total = base.height.div_ceil(band);
        for (done, y) in (0..base.height).step_by(band as usize).enumerate() {
            let mut x = 0;
            while x < base.width {
                let region = self.read_region_cached(source_index, x as i64, y as i64, piece, band, false).await?;
                average_into(&mut overview, &region, x / factor, y / factor, factor);
                x += piece;
            }
            progress(done as u32 + 1, total);
        }
        let mut added = Vec::new();
        let mut current = Arc::new(overview);
        let mut scale = factor as f64 * base.downsample;
        loop {
            added.push((
                Level {
                    width: current.width(),
                    height: current.height(),
                    downsample: scale,
                    tile_width: 512.min(current.width()),
                    tile_height: 512.min(current.height()),
                    is_virtual: true,
                    pages: Vec::new(),
                },
                current.clone(),
            ));
            if current.width().max(current.height()) <= SMALLEST_SIDE {
                break;
            }
            let mut half = RgbImage::new(current.width().div_ceil(2), current.height().div_ceil(2));
            average_into(&mut half, &current, 0, 0, 2);
            current = Arc::new(half);
            scale *= 2.0;
        }
        let count = added.len();
        if let Ok(mut overviews) = self.overviews.write()
            && overviews.is_empty()
        {
            *overviews = added;
        }
        Ok(count)
    }

    /// The overview levels [`Slide::build_overviews`] built (largest first): each one's downsample
    /// and pixels, to hand to another reader of the same slide ([`Slide::adopt_overviews`]) so that
    /// the pass over the slide is made once.
    pub fn overviews(&self) -> Vec<(f64, Arc<RgbImage>)> {
        self.overviews.read().map(|o| o.iter().map(|(level, image)| (level.downsample, image.clone())).collect()).unwrap_or_default()
    }

    /// Takes the overview levels another reader of the same slide built ([`Slide::overviews`]),
    /// after checking that they fit this slide: the downsamples increase from above the smallest
    /// stored level's and each side is that level's divided by the ratio (to within a pixel).
    /// Returns how many were added: 0 when this slide needs none or has them already.
    pub fn adopt_overviews(&self, levels: Vec<(f64, RgbImage)>) -> Result<usize> {
        let stored = self.levels();
        let source_index = stored.iter().rposition(|l| !l.is_virtual).unwrap_or(0);
        let base = stored[source_index].clone();
        if stored.len() > source_index + 1 || base.width.max(base.height) <= OVERVIEW_THRESHOLD || levels.is_empty() {
            return Ok(0);
        }
        let mut previous = base.downsample;
        let mut added = Vec::with_capacity(levels.len());
        for (i, (downsample, image)) in levels.into_iter().enumerate() {
            let ratio = downsample / base.downsample;
            let fits = |side: u32, own: u32| (side as f64 / ratio - own as f64).abs() <= 1.0;
            let fitting = downsample.is_finite()
                && downsample > previous * 1.5
                && fits(base.width, image.width())
                && fits(base.height, image.height());
            if !fitting {
                return Err(super::Error::Limit(format!(
                    "overview {i} ({}×{} at downsample {downsample}) does not fit this {}×{} slide",
                    image.width(),
                    image.height(),
                    base.width,
                    base.height
                )));
            }
            previous = downsample;
            added.push((
                Level {
                    width: image.width(),
                    height: image.height(),
                    downsample,
                    tile_width: 512.min(image.width()),
                    tile_height: 512.min(image.height()),
                    is_virtual: true,
                    pages: Vec::new(),
                },
                Arc::new(image),
            ));
        }
        let count = added.len();
        match self.overviews.write() {
            Ok(mut overviews) if overviews.is_empty() => {
                *overviews = added;
                Ok(count)
            }
            _ => Ok(0),
        }
    }
}

/// Averages `factor`×`factor` blocks of `region` into `out` at (`ox`, `oy`); blocks cut by the
/// region's edge average what they have.
fn average_into(out: &mut RgbImage, region: &RgbImage, ox: u32, oy: u32, factor: u32) {
    let (rw, rh) = region.dimensions();
    for by in 0..rh.div_ceil(factor) {
        let y = oy + by;
        if y >= out.height() {
            break;
        }
        for bx in 0..rw.div_ceil(factor) {
            let x = ox + bx;
            if x >= out.width() {
                break;
            }
            let mut sum = [0u32; 3];
            let mut n = 0;
            for sy in by * factor..((by + 1) * factor).min(rh) {
                for sx in bx * factor..((bx + 1) * factor).min(rw) {
                    let p = region.get_pixel(sx, sy).0;
                    for c in 0..3 {
                        sum[c] += p[c] as u32;
                    }
                    n += 1;
                }
            }
            out.put_pixel(x, y, image::Rgb(sum.map(|s| ((s + n / 2) / n.max(1)) as u8)));
        }
    }
}

/// The rows and columns read at a time over `base` for a reduction by `factor`: whole tile rows, a
/// multiple of the factor, no taller than the image (a strip may declare millions of rows: found by
/// fuzzing, a 24-row image with one strip was read in 16384-row bands, an 805 MB region of
/// background), pieces at most [`MAX_REGION_SIDE`] wide.
fn band_and_piece(base: &Level, factor: u32) -> (u32, u32) {
    let band = base.tile_height.max(factor).div_ceil(factor) * factor;
    let band = band.min(MAX_REGION_SIDE / factor * factor).min(base.height.div_ceil(factor) * factor).max(factor);
    let piece = (MAX_REGION_SIDE / factor * factor).min(base.width.div_ceil(factor) * factor);
    (band, piece)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_averaged() {
        let region = RgbImage::from_fn(4, 2, |x, _| image::Rgb([x as u8 * 10, 0, 255]));
        let mut out = RgbImage::new(2, 1);
        average_into(&mut out, &region, 0, 0, 2);
        assert_eq!(out.get_pixel(0, 0).0, [5, 0, 255]);
        assert_eq!(out.get_pixel(1, 0).0, [25, 0, 255]);
    }

    #[test]
    fn bands_follow_tile_rows_but_never_exceed_the_image() {
        let level = |width, height, tile_height| Level {
            width,
            height,
            downsample: 1.0,
            tile_width: width,
            tile_height,
            is_virtual: false,
            pages: Vec::new(),
        };
        assert_eq!(band_and_piece(&level(32773, 24, 11_665_432), 2), (24, 16384));
        assert_eq!(band_and_piece(&level(30000, 40000, 512), 4), (512, 16384));
        assert_eq!(band_and_piece(&level(6000, 4000, 100_000), 2), (4000, 6000));
        assert_eq!(band_and_piece(&level(3000, 3001, 7), 2), (8, 3000));
    }
}

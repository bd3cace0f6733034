//! Where to look: a tissue mask from a low-resolution view (saturation, Otsu threshold), then
//! windows on a regular overlapping grid, kept only where they touch tissue. [`plan_slide`] does it
//! all for an open slide; inference (native and web) and training's tile extraction all call it.

use super::Error;
use crate::model::Manifest;
use crate::slide::Slide;
use burn::config::Config;
use image::RgbImage;

/// How a slide is cut into windows.
#[derive(Config, Debug, PartialEq)]
pub struct PlanConfig {
    /// Window side in level-0 pixels (the seed: 1536).
    #[config(default = 1536)]
    pub window: u32,
    /// Side of the network's input; each window is resized to it (the seed: 512).
    #[config(default = 512)]
    pub input_size: u32,
    /// Overlap between neighbouring windows in level-0 pixels.
    #[config(default = 384)]
    pub overlap: u32,
    /// Longer side of the low-resolution view the tissue mask is computed on.
    #[config(default = 1024)]
    pub tissue_view: u32,
    /// Fraction of a window's area that must be tissue for it to be run (0 = any tissue pixel).
    #[config(default = 0.0)]
    pub min_tissue: f64,
    /// Only windows meeting this level-0 rectangle (x, y, width, height): "segment this region".
    #[config(default = "None")]
    pub region: Option<[u32; 4]>,
}

impl PlanConfig {
    /// The windows a model's manifest asks for on a slide of `pixel_size_um` µm/px (the slide's
    /// [`crate::slide::Slide::pixel_size_um`]): its window and overlap resampled to the model's
    /// input pixel size, and its input size.
    pub fn for_model(manifest: &Manifest, pixel_size_um: Option<f64>) -> Self {
        Self::new()
            .with_window(manifest.window_for(pixel_size_um))
            .with_overlap(manifest.overlap_for_slide(pixel_size_um))
            .with_input_size(manifest.model.input_size as u32)
    }
}

/// Plans `slide`: builds overview levels if it has no small ones (a flat slide), computes the
/// tissue mask on a low-resolution view and keeps the windows of `config` that touch tissue.
pub async fn plan_slide(slide: &Slide, config: &PlanConfig) -> Result<Plan, Error> {
    slide.build_overviews(&mut |_, _| {}).await?;
    let (width, height) = slide.dimensions();
    let view = slide.thumbnail(config.tissue_view).await?;
    Plan::new(config, width, height, &tissue_mask(&view), view.dimensions(), width as f64 / view.width() as f64)
}

/// One window: its top-left corner in level-0 pixels and its place in the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// Left edge (level 0).
    pub x: i64,
    /// Top edge (level 0).
    pub y: i64,
    /// Grid column.
    pub col: u32,
    /// Grid row.
    pub row: u32,
}

/// The windows to run, in raster order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// Windows over tissue.
    pub windows: Vec<Window>,
    /// Grid size (columns, rows) before the tissue filter.
    pub grid: (u32, u32),
    /// Level-0 pixels per network pixel (`window / input_size`).
    pub scale: f64,
    /// Window side (level 0).
    pub window: u32,
    /// Distance between window origins (level 0).
    pub step: u32,
    /// Network input side.
    pub input_size: u32,
    /// Level-0 size.
    pub width: u32,
    /// Level-0 size.
    pub height: u32,
    /// Fraction of the slide covered by tissue.
    pub tissue_fraction: f64,
}

/// Tissue (stained, saturated) against glass: HSV saturation above an Otsu threshold (at least
/// 0.07), and not near-black. Returns one flag per pixel of `view`.
pub fn tissue_mask(view: &RgbImage) -> Vec<bool> {
    let saturation: Vec<u8> = view.pixels().map(|p| saturation(p.0)).collect();
    let threshold = otsu(&saturation).max(18);
    view.pixels().zip(&saturation).map(|(p, &s)| s > threshold && p.0.iter().map(|&v| v as u32).sum::<u32>() > 60).collect()
}

/// HSV saturation of an RGB pixel, 0–255 (0 for black).
pub fn saturation([r, g, b]: [u8; 3]) -> u8 {
    let (max, min) = (r.max(g).max(b) as u32, r.min(g).min(b) as u32);
    ((max - min) * 255).checked_div(max).unwrap_or(0) as u8
}

/// Otsu's threshold of 8-bit values.
fn otsu(values: &[u8]) -> u8 {
    let mut hist = [0u64; 256];
    for &v in values {
        hist[v as usize] += 1;
    }
    let total = values.len() as f64;
    let sum: f64 = hist.iter().enumerate().map(|(i, &n)| i as f64 * n as f64).sum();
    let (mut weight_b, mut sum_b, mut best, mut best_t) = (0.0, 0.0, 0.0, 0u8);
    for (t, &n) in hist.iter().enumerate() {
        weight_b += n as f64;
        if weight_b == 0.0 {
            continue;
        }
        let weight_f = total - weight_b;
        if weight_f == 0.0 {
            break;
        }
        sum_b += t as f64 * n as f64;
        let (mean_b, mean_f) = (sum_b / weight_b, (sum - sum_b) / weight_f);
        let between = weight_b * weight_f * (mean_b - mean_f).powi(2);
        if between > best {
            best = between;
            best_t = t as u8;
        }
    }
    best_t
}

impl Plan {
    /// Plans windows over a `width`×`height` slide whose low-resolution `view` has `tissue` flags
    /// (one per view pixel; `view_scale` level-0 pixels per view pixel).
    pub fn new(
        config: &PlanConfig,
        width: u32,
        height: u32,
        tissue: &[bool],
        view_size: (u32, u32),
        view_scale: f64,
    ) -> Result<Self, Error> {
        if config.window == 0 || config.input_size == 0 || config.overlap >= config.window {
            return Err(Error::Config(format!("window {} must be positive and larger than the overlap {}", config.window, config.overlap)));
        }
        let step = config.window - config.overlap;
        let cols = width.saturating_sub(config.overlap).div_ceil(step).max(1);
        let rows = height.saturating_sub(config.overlap).div_ceil(step).max(1);
        let (vw, vh) = view_size;
        let tissue_px = tissue.iter().filter(|&&t| t).count();
        let mut windows = Vec::new();
        for row in 0..rows {
            for col in 0..cols {
                let (x, y) = (col as i64 * step as i64, row as i64 * step as i64);
                if let Some([rx, ry, rw, rh]) = config.region {
                    let w = config.window as i64;
                    if x + w <= rx as i64 || y + w <= ry as i64 || x >= rx as i64 + rw as i64 || y >= ry as i64 + rh as i64 {
                        continue;
                    }
                }
                // The window's footprint in the view.
                let vx0 = ((x as f64 / view_scale).floor() as i64).clamp(0, vw as i64) as u32;
                let vy0 = ((y as f64 / view_scale).floor() as i64).clamp(0, vh as i64) as u32;
                let vx1 = (((x + config.window as i64) as f64 / view_scale).ceil() as i64).clamp(0, vw as i64) as u32;
                let vy1 = (((y + config.window as i64) as f64 / view_scale).ceil() as i64).clamp(0, vh as i64) as u32;
                let area = ((vx1 - vx0) * (vy1 - vy0)).max(1) as f64;
                let count = (vy0..vy1).map(|vy| (vx0..vx1).filter(|&vx| tissue[(vy * vw + vx) as usize]).count()).sum::<usize>();
                if count > 0 && count as f64 / area >= config.min_tissue {
                    windows.push(Window { x, y, col, row });
                }
            }
        }
        Ok(Self {
            windows,
            grid: (cols, rows),
            scale: config.window as f64 / config.input_size as f64,
            window: config.window,
            step,
            input_size: config.input_size,
            width,
            height,
            tissue_fraction: tissue_px as f64 / (vw as f64 * vh as f64).max(1.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_splits_two_populations() {
        let values: Vec<u8> = (0..100).map(|i| if i < 60 { 10 } else { 200 }).collect();
        let t = otsu(&values);
        assert!((10..200).contains(&t), "{t}");
    }

    #[test]
    fn windows_cover_the_slide_and_skip_glass() {
        let config = PlanConfig::new().with_window(100).with_input_size(50).with_overlap(20);
        // A 10×10 view of a 1000×1000 slide with tissue only in the top-left view pixel.
        let mut tissue = vec![false; 100];
        tissue[0] = true;
        let plan = Plan::new(&config, 1000, 1000, &tissue, (10, 10), 100.0).unwrap();
        assert_eq!(plan.grid, (13, 13));
        assert_eq!(plan.scale, 2.0);
        assert_eq!(plan.windows.len(), 2 * 2, "windows overlapping view pixel (0,0): {:?}", plan.windows);
        let all = Plan::new(&config, 1000, 1000, &[true; 100], (10, 10), 100.0).unwrap();
        assert_eq!(all.windows.len(), 13 * 13);
        let last = all.windows.last().unwrap();
        assert!(last.x + 100 >= 1000 && last.y + 100 >= 1000, "the grid reaches the far edges");
        assert!(Plan::new(&config.clone().with_overlap(100), 1000, 1000, &tissue, (10, 10), 100.0).is_err());
        // "Segment this region": only the windows meeting the rectangle.
        let region = Plan::new(&config.clone().with_region(Some([450, 450, 100, 100])), 1000, 1000, &[true; 100], (10, 10), 100.0).unwrap();
        assert!(region.windows.iter().all(|w| w.x < 550 && w.x + 100 > 450 && w.y < 550 && w.y + 100 > 450));
        assert_eq!(region.windows.len(), 4);
    }
}

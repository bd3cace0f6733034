//! A finished whole-slide prediction: the model-scale probability canvas and what people take away
//! from it — glomeruli (area, centroid, bounding box, outline), the Kaggle RLE at full resolution
//! (streamed column by column, never a full-resolution mask), QuPath GeoJSON and an overview image.

use super::plan::Plan;
use crate::mask::{Annotation, CONFIDENCE, Components, Polygon, RleStream, components_of_rows, row_runs, threshold_level};
use image::GrayImage;
use serde::Serialize;

/// Which thresholded objects count as glomeruli: the probability threshold and the area bounds,
/// level-0 pixels² (smaller objects are specks; larger ones are not one glomerulus).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObjectFilter {
    /// Probability threshold.
    pub threshold: f32,
    /// Smallest object kept.
    pub min_area: f64,
    /// Largest object kept; `None`: no upper bound.
    pub max_area: Option<f64>,
}

impl ObjectFilter {
    /// Objects above `threshold` of at least `min_area` level-0 pixels², however large.
    pub fn new(threshold: f32, min_area: f64) -> Self {
        Self { threshold, min_area, max_area: None }
    }

    /// Also drops objects larger than `max_area` level-0 pixels².
    pub fn with_max_area(self, max_area: Option<f64>) -> Self {
        Self { max_area, ..self }
    }

    /// Whether an object of `area` level-0 pixels² is kept.
    pub fn keeps(&self, area: f64) -> bool {
        area >= self.min_area && self.max_area.is_none_or(|max| area <= max)
    }
}

/// Where the time went, in seconds.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct Timings {
    /// Tissue mask and plan (including overviews of a flat slide).
    pub plan_s: f64,
    /// Fetching and decoding window pixels.
    pub read_s: f64,
    /// Resizing windows to the network's input.
    pub resize_s: f64,
    /// The network (upload, forward, TTA, read-back).
    pub model_s: f64,
    /// Blending into the canvas.
    pub blend_s: f64,
    /// Everything.
    pub total_s: f64,
}

/// One glomerulus, in level-0 pixels.
#[derive(Debug, Clone, Serialize)]
pub struct Glomerulus {
    /// 1-based number.
    pub id: u32,
    /// Area in level-0 pixels².
    pub area_px: f64,
    /// Area in µm², when the slide's pixel size is known.
    pub area_um2: Option<f64>,
    /// Centroid (x, y).
    pub centroid: [f64; 2],
    /// Bounding box: x, y, width, height.
    pub bbox: [f64; 4],
    /// The model's confidence: the mean probability inside the object, 0–1.
    pub confidence: f64,
    /// Outline.
    #[serde(skip)]
    pub outline: Option<Polygon>,
}

/// The result of [`super::predict_slide`].
pub struct Prediction {
    /// Level-0 size.
    pub width: u32,
    /// Level-0 size.
    pub height: u32,
    /// The plan that ran.
    pub plan: Plan,
    /// Canvas size (model scale).
    pub canvas_width: u32,
    /// Canvas size (model scale).
    pub canvas_height: u32,
    /// Probabilities 0–255 at model scale, row-major.
    pub canvas: Vec<u8>,
    /// µm per level-0 pixel.
    pub pixel_size_um: Option<f64>,
    /// Time split.
    pub timings: Timings,
}

impl Prediction {
    /// Connected objects of the thresholded canvas, and which `filter` keeps.
    fn objects(&self, filter: ObjectFilter) -> (Components, Vec<bool>) {
        let level = threshold_level(filter.threshold);
        let w = self.canvas_width as usize;
        let c = components_of_rows(self.canvas_width, self.canvas_height, |y, runs| {
            row_runs(&self.canvas[y as usize * w..(y as usize + 1) * w], |&p| p >= level, runs)
        });
        let s2 = self.plan.scale * self.plan.scale;
        let keep = c.objects.iter().map(|o| filter.keeps(o.area as f64 * s2)).collect();
        (c, keep)
    }

    /// The objects `filter` keeps (above its threshold, within its area bounds), with outlines
    /// simplified to about one model pixel.
    pub fn glomeruli(&self, filter: ObjectFilter) -> Vec<Glomerulus> {
        let (c, keep) = self.objects(filter);
        let s = self.plan.scale;
        c.objects
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .enumerate()
            .map(|(i, (o, _))| {
                let area_px = o.area as f64 * s * s;
                let w = self.canvas_width as usize;
                let sum: u64 = c
                    .runs_of(o.label)
                    .flat_map(|r| &self.canvas[r.y as usize * w + r.x0 as usize..r.y as usize * w + r.x1 as usize])
                    .map(|&v| v as u64)
                    .sum();
                let confidence = sum as f64 / (o.area.max(1) as f64 * 255.0);
                let outline = c
                    .outline(o.label, 1.0)
                    .map(|p| Polygon { rings: p.rings.iter().map(|r| r.iter().map(|&[x, y]| [x * s, y * s]).collect()).collect() });
                Glomerulus {
                    id: i as u32 + 1,
                    area_px,
                    area_um2: self.pixel_size_um.map(|um| area_px * um * um),
                    centroid: [o.centroid[0] * s, o.centroid[1] * s],
                    bbox: [
                        o.bbox[0] as f64 * s,
                        o.bbox[1] as f64 * s,
                        (o.bbox[2] - o.bbox[0] + 1) as f64 * s,
                        (o.bbox[3] - o.bbox[1] + 1) as f64 * s,
                    ],
                    confidence,
                    outline,
                }
            })
            .collect()
    }

    /// QuPath annotations (classification "Glomerulus") of glomeruli from [`Prediction::glomeruli`]
    /// (passed in, so the components are not labelled again).
    pub fn annotations(glomeruli: &[Glomerulus]) -> Vec<Annotation> {
        glomeruli
            .iter()
            .filter_map(|g| {
                let mut measurements = vec![("Area px^2".to_string(), g.area_px)];
                if let Some(um2) = g.area_um2 {
                    measurements.push(("Area µm^2".to_string(), um2));
                }
                measurements.push((CONFIDENCE.to_string(), g.confidence));
                g.outline.clone().map(|p| Annotation {
                    polygons: vec![p],
                    classification: "Glomerulus".into(),
                    locked: false,
                    measurements,
                })
            })
            .collect()
    }

    /// The competition's RLE of the full-resolution mask: probabilities upsampled bilinearly from
    /// the canvas (objects `filter` drops removed first) and thresholded, column by column.
    pub fn rle(&self, filter: ObjectFilter) -> String {
        let (c, keep) = self.objects(filter);
        let threshold = filter.threshold;
        let (cw, ch) = (self.canvas_width as usize, self.canvas_height as usize);
        // Probabilities with dropped objects cleared (a copy only when something is dropped).
        let cleaned: std::borrow::Cow<'_, [u8]> = if keep.iter().all(|&k| k) {
            std::borrow::Cow::Borrowed(&self.canvas)
        } else {
            let mut copy = self.canvas.clone();
            for r in c.runs.iter().filter(|r| !keep[r.label as usize - 1]) {
                let row = r.y as usize * cw;
                copy[row + r.x0 as usize..row + r.x1 as usize].fill(0);
            }
            std::borrow::Cow::Owned(copy)
        };
        // Per canvas column, the rows that can be positive (a run list), to skip glass quickly.
        let level = threshold_level(threshold) as f32;
        let columns: Vec<Vec<(usize, usize)>> = (0..cw)
            .map(|x| {
                let mut runs: Vec<(usize, usize)> = Vec::new();
                for y in 0..ch {
                    if cleaned[y * cw + x] > 0 {
                        match runs.last_mut() {
                            Some(r) if r.1 == y => r.1 = y + 1,
                            _ => runs.push((y, y + 1)),
                        }
                    }
                }
                runs
            })
            .collect();
        let s = self.plan.scale;
        let mut out = RleStream::new(self.height);
        let at = |x: usize, y: usize| cleaned[y.min(ch - 1) * cw + x.min(cw - 1)] as f32;
        for x in 0..self.width {
            let fx = ((x as f64 + 0.5) / s - 0.5).max(0.0);
            let (x0, wx) = (fx.floor() as usize, (fx - fx.floor()) as f32);
            let x1 = (x0 + 1).min(cw - 1);
            let mut spans: Vec<(usize, usize)> = columns[x0.min(cw - 1)].iter().chain(&columns[x1]).copied().collect();
            spans.sort_unstable();
            let mut run_start: Option<u32> = None;
            let mut last_y = 0u32;
            for (a, b) in spans {
                // Full-resolution rows whose bilinear neighbours include canvas rows a..b.
                let y_from = (((a as f64 - 0.5) * s).floor().max(0.0) as u32).max(last_y);
                let y_to = (((b as f64 + 0.5) * s).ceil() as u32).min(self.height);
                for y in y_from..y_to {
                    let fy = ((y as f64 + 0.5) / s - 0.5).max(0.0);
                    let (y0, wy) = (fy.floor() as usize, (fy - fy.floor()) as f32);
                    let top = at(x0, y0) * (1.0 - wx) + at(x1, y0) * wx;
                    let bottom = at(x0, y0 + 1) * (1.0 - wx) + at(x1, y0 + 1) * wx;
                    let p = top * (1.0 - wy) + bottom * wy;
                    match (p >= level, run_start) {
                        (true, None) => run_start = Some(y),
                        (false, Some(start)) => {
                            out.push(x, start, y);
                            run_start = None;
                        }
                        _ => {}
                    }
                }
                if let Some(start) = run_start.take() {
                    out.push(x, start, y_to);
                }
                last_y = last_y.max(y_to);
            }
        }
        out.finish()
    }

    /// The probabilities at `width`×`height` (level 0 for a plain image), resized bilinearly from
    /// the canvas: for images, not whole slides, whose level 0 would not fit in memory.
    pub fn probability_image(&self, width: u32, height: u32) -> GrayImage {
        let image = GrayImage::from_raw(self.canvas_width, self.canvas_height, self.canvas.clone()).unwrap_or_default();
        image::imageops::resize(&image, width.max(1), height.max(1), image::imageops::FilterType::Triangle)
    }

    /// The probability canvas as a grey image, scaled to fit `max_side`.
    pub fn overview(&self, max_side: u32) -> GrayImage {
        let image = GrayImage::from_raw(self.canvas_width, self.canvas_height, self.canvas.clone()).unwrap_or_default();
        let scale = max_side as f64 / self.canvas_width.max(self.canvas_height).max(1) as f64;
        if scale >= 1.0 {
            return image;
        }
        let (w, h) =
            (((self.canvas_width as f64 * scale).round() as u32).max(1), ((self.canvas_height as f64 * scale).round() as u32).max(1));
        image::imageops::resize(&image, w, h, image::imageops::FilterType::Triangle)
    }
}

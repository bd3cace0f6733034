//! Whole-slide inference: plan windows over tissue, read each from the cheapest sufficient level,
//! resize to the network's input, run batches (with flip TTA), and blend overlapping windows into a
//! model-scale probability canvas (centre crops or linear ramps), reporting progress per batch and
//! stopping between batches when cancelled.

use super::plan::{Plan, PlanConfig, Window, tissue_mask};
use super::prediction::{Prediction, Timings};
use super::{Error, MEAN, STD};
use crate::model::{Manifest, SegmentationModel};
use crate::slide::Slide;
use crate::slide::source::MaybeSendSync;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use image::RgbImage;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

/// How overlapping windows are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Blend {
    /// Each window contributes only its centre (half the overlap is cut on sides with a neighbour),
    /// as the HuBMAP winners did.
    Centre,
    /// Weighted average with weights ramping up linearly over the overlap.
    Ramp,
}

/// Whole-slide settings.
#[derive(Config, Debug)]
pub struct WsiConfig {
    /// Windows and tissue.
    #[config(default = "PlanConfig::new()")]
    pub plan: PlanConfig,
    /// Windows per forward pass.
    #[config(default = 4)]
    pub batch: usize,
    /// Flip test-time augmentation: 1 (none), 2, 4 or 8 views averaged.
    #[config(default = 1)]
    pub tta: u8,
    /// Overlap merging.
    #[config(default = "Blend::Centre")]
    pub blend: Blend,
    /// Probability threshold.
    #[config(default = 0.5)]
    pub threshold: f32,
    /// Objects smaller than this (level-0 pixels²) are dropped.
    #[config(default = 2000.0)]
    pub min_area: f64,
}

impl WsiConfig {
    /// The settings a model's manifest asks for: its window, overlap, input size, threshold,
    /// minimum area and TTA.
    pub fn for_model(manifest: &Manifest) -> Self {
        Self::new()
            .with_plan(
                PlanConfig::new()
                    .with_window(manifest.window)
                    .with_overlap(manifest.overlap)
                    .with_model_size(manifest.model.input_size as u32),
            )
            .with_threshold(manifest.threshold)
            .with_min_area(manifest.min_area)
            .with_tta(manifest.tta)
    }
}

/// Progress after a batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Windows done.
    pub done: usize,
    /// Windows planned.
    pub total: usize,
    /// Windows per second so far.
    pub tiles_per_s: f64,
    /// Estimated seconds left.
    pub eta_s: f64,
}

/// One window's result, for overlays that grow while the slide runs.
pub struct Update<'a> {
    /// The window.
    pub window: Window,
    /// Probabilities 0–255 at model scale, `model_size`² row-major.
    pub probs: &'a [u8],
}

/// Something that turns resized windows into probabilities: the network, or a test oracle.
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait TileModel: MaybeSendSync {
    /// Probabilities in 0..1 for each image (`plan.model_size`² pixels, row-major), in order.
    async fn predict(&self, plan: &Plan, windows: &[Window], images: &[RgbImage]) -> Result<Vec<Vec<f32>>, Error>;
}

/// A [`SegmentationModel`] on a device, with optional flip TTA.
pub struct NetModel {
    model: SegmentationModel,
    device: Device,
    tta: u8,
    mean: [f32; 3],
    std: [f32; 3],
}

impl NetModel {
    /// Wraps a network already on `device`; `tta` is 1, 2, 4 or 8.
    pub fn new(model: SegmentationModel, device: &Device, tta: u8) -> Result<Self, Error> {
        if ![1, 2, 4, 8].contains(&tta) {
            return Err(Error::Config(format!("--tta {tta}: expected 1, 2, 4 or 8")));
        }
        Ok(Self { model, device: device.clone(), tta, mean: MEAN, std: STD })
    }

    /// Uses the input normalisation the model was trained with (its manifest's).
    pub fn with_normalisation(mut self, mean: [f32; 3], std: [f32; 3]) -> Self {
        (self.mean, self.std) = (mean, std);
        self
    }
}

/// The `k`-th of the 8 flip/transpose views (self-inverse for k < 4; k ≥ 4 transposes first).
fn view(x: Tensor<4>, k: u8, inverse: bool) -> Tensor<4> {
    let flip = |x: Tensor<4>| match k % 4 {
        1 => x.flip([3]),
        2 => x.flip([2]),
        3 => x.flip([2, 3]),
        _ => x,
    };
    match (k >= 4, inverse) {
        (false, _) => flip(x),
        (true, false) => flip(x.swap_dims(2, 3)),
        (true, true) => flip(x).swap_dims(2, 3),
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl TileModel for NetModel {
    async fn predict(&self, plan: &Plan, _windows: &[Window], images: &[RgbImage]) -> Result<Vec<Vec<f32>>, Error> {
        let s = plan.model_size as usize;
        let mut input = vec![0f32; images.len() * 3 * s * s];
        for (i, image) in images.iter().enumerate() {
            let out = &mut input[i * 3 * s * s..(i + 1) * 3 * s * s];
            for (j, p) in image.pixels().enumerate() {
                for c in 0..3 {
                    out[c * s * s + j] = (p.0[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
                }
            }
        }
        let x = Tensor::<4>::from_data(TensorData::new(input, [images.len(), 3, s, s]), &self.device);
        let mut sum: Option<Tensor<4>> = None;
        for k in 0..self.tta {
            let p = view(sigmoid(self.model.forward(view(x.clone(), k, false))), k, true);
            sum = Some(match sum {
                Some(acc) => acc + p,
                None => p,
            });
        }
        let probs = sum.ok_or_else(|| Error::Config("no TTA view".into()))? / self.tta as f32;
        let data: Vec<f32> = probs
            .into_data_async()
            .await
            .map_err(|e| Error::Backend(e.to_string()))?
            .try_into_vec()
            .map_err(|e| Error::Backend(format!("{e:?}")))?;
        Ok(data.chunks(s * s).map(<[f32]>::to_vec).collect())
    }
}

/// Tiles of the blending accumulators, in model pixels.
const ACC_TILE: u32 = 256;

/// Blending accumulators by tile: weighted sums and weights.
type Accumulators = HashMap<(u32, u32), (Vec<f32>, Vec<f32>)>;

/// Runs `model` over the tissue of `slide`.
pub async fn predict_slide(
    slide: &Slide,
    model: &dyn TileModel,
    config: &WsiConfig,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(&Progress, &[Update<'_>]),
) -> Result<Prediction, Error> {
    let mut run = SlideRun::start(slide, config).await?;
    run.run(slide, model, config.batch, cancel, progress).await?;
    Ok(run.finish(slide))
}

/// A whole-slide segmentation that survives a failed model: windows are blended batch by batch,
/// and a batch whose forward pass fails leaves the run as it was before it. [`SlideRun::run`] can
/// then continue with another model (the same weights on another device: the CPU after a lost
/// GPU), keeping every window already computed; [`SlideRun::finish`] gives the prediction.
pub struct SlideRun {
    plan: Plan,
    blend: Blend,
    width: u32,
    height: u32,
    mw: u32,
    mh: u32,
    canvas: Vec<u8>,
    acc: Accumulators,
    present: HashSet<(u32, u32)>,
    /// The last window touching each accumulator tile: the tile is final once it has run.
    last: HashMap<(u32, u32), usize>,
    done: usize,
    clock: Clock,
    timings: Timings,
}

impl SlideRun {
    /// Builds overviews if the slide needs them, finds the tissue and plans the windows.
    pub async fn start(slide: &Slide, config: &WsiConfig) -> Result<Self, Error> {
        let clock = Clock::start();
        let slide_error = |e: crate::slide::Error| Error::Slide(e.to_string());
        slide.build_overviews(&mut |_, _| {}).await.map_err(slide_error)?;
        let (width, height) = slide.dimensions();
        let view = slide.thumbnail(config.plan.tissue_view).await.map_err(slide_error)?;
        let tissue = tissue_mask(&view);
        let plan = Plan::new(&config.plan, width, height, &tissue, view.dimensions(), width as f64 / view.width() as f64)
            .map_err(Error::Config)?;
        let timings = Timings { plan_s: clock.seconds(), ..Timings::default() };
        let (mw, mh) = ((width as f64 / plan.scale).ceil() as u32, (height as f64 / plan.scale).ceil() as u32);
        let present: HashSet<(u32, u32)> = plan.windows.iter().map(|w| (w.col, w.row)).collect();
        let mut last: HashMap<(u32, u32), usize> = HashMap::new();
        for (i, w) in plan.windows.iter().enumerate() {
            for tile in tiles_of(&plan, w, mw, mh) {
                last.insert(tile, i);
            }
        }
        let canvas = vec![0u8; mw as usize * mh as usize];
        Ok(Self { plan, blend: config.blend, width, height, mw, mh, canvas, acc: HashMap::new(), present, last, done: 0, clock, timings })
    }

    /// Windows blended so far.
    pub fn done(&self) -> usize {
        self.done
    }

    /// Windows planned.
    pub fn total(&self) -> usize {
        self.plan.windows.len()
    }

    /// Runs the windows not yet done, `batch` at a time, with `model`. On an error (cancelled,
    /// slide or model) the windows blended before the failing batch stay blended and a later call
    /// continues from there.
    pub async fn run(
        &mut self,
        slide: &Slide,
        model: &dyn TileModel,
        batch: usize,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(&Progress, &[Update<'_>]),
    ) -> Result<(), Error> {
        let slide_error = |e: crate::slide::Error| Error::Slide(e.to_string());
        let levels = slide.levels();
        let batch = batch.clamp(1, 64);
        let (started, first) = (self.clock.seconds(), self.done);
        while self.done < self.plan.windows.len() {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let chunk = &self.plan.windows[self.done..(self.done + batch).min(self.plan.windows.len())];
            let (t, resize_before) = (self.clock.seconds(), self.timings.resize_s);
            let mut images = Vec::with_capacity(chunk.len());
            for w in chunk {
                images.push(read_window(slide, &levels, &self.plan, w, &mut self.timings).await.map_err(slide_error)?);
            }
            self.timings.read_s += self.clock.seconds() - t - (self.timings.resize_s - resize_before);
            let t = self.clock.seconds();
            let probs = model.predict(&self.plan, chunk, &images).await?;
            let side = self.plan.model_size as usize;
            if probs.len() != chunk.len() || probs.iter().any(|p| p.len() != side * side) {
                let sizes: Vec<usize> = probs.iter().map(Vec::len).collect();
                return Err(Error::Backend(format!(
                    "the model answered {} windows of {sizes:?} values for {} of {side}×{side}",
                    probs.len(),
                    chunk.len()
                )));
            }
            self.timings.model_s += self.clock.seconds() - t;
            let t = self.clock.seconds();
            let quantised: Vec<Vec<u8>> =
                probs.iter().map(|p| p.iter().map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect()).collect();
            for (k, (w, p)) in chunk.iter().zip(&probs).enumerate() {
                accumulate(&self.plan, w, p, self.blend, &self.present, &mut self.acc, self.mw, self.mh);
                finalise(&self.plan, self.done + k, &self.last, &mut self.acc, &mut self.canvas, self.mw, self.mh);
            }
            self.timings.blend_s += self.clock.seconds() - t;
            self.done += chunk.len();
            // The rate of this call (a resumed run may be on a slower device).
            let rate = (self.done - first) as f64 / (self.clock.seconds() - started).max(1e-9);
            let total = self.plan.windows.len();
            let updates: Vec<Update<'_>> = chunk.iter().zip(&quantised).map(|(w, q)| Update { window: *w, probs: q }).collect();
            progress(&Progress { done: self.done, total, tiles_per_s: rate, eta_s: (total - self.done) as f64 / rate.max(1e-9) }, &updates);
        }
        Ok(())
    }

    /// The prediction (windows not run, if any, count as background).
    pub fn finish(mut self, slide: &Slide) -> Prediction {
        self.timings.total_s = self.clock.seconds();
        Prediction::new(self.width, self.height, self.plan, self.mw, self.mh, self.canvas, slide.pixel_size_um(), self.timings)
    }
}

/// Reads a window from the level with the largest downsample not above the plan's scale, and
/// resizes it to the model's input.
async fn read_window(
    slide: &Slide,
    levels: &[crate::slide::Level],
    plan: &Plan,
    w: &Window,
    timings: &mut Timings,
) -> Result<RgbImage, crate::slide::Error> {
    read_resized(slide, levels, w.x, w.y, plan.window, plan.model_size, &mut timings.resize_s).await
}

/// The `window`² level-0 square at (`x`, `y`) resized to `size`², read from the level with the
/// largest downsample not above `window / size` (the cheapest that still has the resolution);
/// adds the resizing time to `resize_s`. Training extracts its tiles with it too, so the network
/// sees pixels prepared exactly as at inference.
pub async fn read_resized(
    slide: &Slide,
    levels: &[crate::slide::Level],
    x: i64,
    y: i64,
    window: u32,
    size: u32,
    resize_s: &mut f64,
) -> Result<RgbImage, crate::slide::Error> {
    let scale = window as f64 / size as f64;
    let (index, level) = levels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.downsample <= scale * 1.000_001)
        .max_by(|a, b| a.1.downsample.total_cmp(&b.1.downsample))
        .unwrap_or((0, &levels[0]));
    let d = level.downsample;
    let side = ((window as f64 / d).round() as u32).max(1);
    let region = slide.read_region(index, (x as f64 / d).round() as i64, (y as f64 / d).round() as i64, side, side).await?;
    if side == size {
        return Ok(region);
    }
    let t = Clock::start();
    let resized = image::imageops::resize(&region, size, size, image::imageops::FilterType::Triangle);
    *resize_s += t.seconds();
    Ok(resized)
}

/// The accumulator tiles a window covers.
fn tiles_of(plan: &Plan, w: &Window, mw: u32, mh: u32) -> Vec<(u32, u32)> {
    let (x0, y0) = ((w.x as f64 / plan.scale).round() as i64, (w.y as f64 / plan.scale).round() as i64);
    let s = plan.model_size as i64;
    let (x1, y1) = ((x0 + s).min(mw as i64), (y0 + s).min(mh as i64));
    if x1 <= x0.max(0) || y1 <= y0.max(0) {
        return Vec::new();
    }
    let t = ACC_TILE as i64;
    (y0.max(0) / t..=(y1 - 1) / t).flat_map(|ty| (x0.max(0) / t..=(x1 - 1) / t).map(move |tx| (tx as u32, ty as u32))).collect()
}

/// Adds one window's probabilities, weighted by the blend, into the accumulator tiles.
#[allow(clippy::too_many_arguments)]
fn accumulate(
    plan: &Plan,
    w: &Window,
    probs: &[f32],
    blend: Blend,
    present: &HashSet<(u32, u32)>,
    acc: &mut Accumulators,
    mw: u32,
    mh: u32,
) {
    let s = plan.model_size as i64;
    let half = (plan.window - plan.step) as f64 / plan.scale / 2.0;
    let neighbour = |dc: i64, dr: i64| present.contains(&((w.col as i64 + dc) as u32, (w.row as i64 + dr) as u32));
    // Distance-to-edge limits per side: infinite where no neighbour shares that edge.
    let sides = [neighbour(-1, 0), neighbour(1, 0), neighbour(0, -1), neighbour(0, 1)];
    let weight = |i: i64, j: i64| -> f32 {
        let d = |has: bool, v: i64| if has { v as f64 + 0.5 } else { f64::INFINITY };
        let dist = d(sides[0], i).min(d(sides[1], s - 1 - i)).min(d(sides[2], j)).min(d(sides[3], s - 1 - j));
        match blend {
            Blend::Centre => (dist >= half) as u8 as f32,
            Blend::Ramp => (dist / (2.0 * half).max(1.0)).min(1.0) as f32,
        }
    };
    let (x0, y0) = ((w.x as f64 / plan.scale).round() as i64, (w.y as f64 / plan.scale).round() as i64);
    let t = ACC_TILE as i64;
    for j in 0..s {
        let y = y0 + j;
        if y < 0 || y >= mh as i64 {
            continue;
        }
        for i in 0..s {
            let x = x0 + i;
            if x < 0 || x >= mw as i64 {
                continue;
            }
            let wgt = weight(i, j);
            if wgt <= 0.0 {
                continue;
            }
            let tile =
                acc.entry(((x / t) as u32, (y / t) as u32)).or_insert_with(|| (vec![0.0; (t * t) as usize], vec![0.0; (t * t) as usize]));
            let k = ((y % t) * t + x % t) as usize;
            tile.0[k] += wgt * probs[(j * s + i) as usize];
            tile.1[k] += wgt;
        }
    }
}

/// Moves tiles no later window touches from the accumulators into the canvas.
fn finalise(plan: &Plan, index: usize, last: &HashMap<(u32, u32), usize>, acc: &mut Accumulators, canvas: &mut [u8], mw: u32, mh: u32) {
    let w = &plan.windows[index];
    for tile in tiles_of(plan, w, mw, mh) {
        if last.get(&tile) != Some(&index) {
            continue;
        }
        let Some((sum, weight)) = acc.remove(&tile) else { continue };
        let t = ACC_TILE;
        for ty in 0..t {
            let y = tile.1 * t + ty;
            if y >= mh {
                break;
            }
            for tx in 0..t {
                let x = tile.0 * t + tx;
                if x >= mw {
                    break;
                }
                let k = (ty * t + tx) as usize;
                if weight[k] > 0.0 {
                    canvas[(y * mw + x) as usize] = ((sum[k] / weight[k]).clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
    }
}

/// Wall-clock seconds, natively and in the browser.
struct Clock(f64);

impl Clock {
    fn start() -> Self {
        Self(now_s())
    }

    fn seconds(&self) -> f64 {
        now_s() - self.0
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn now_s() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[cfg(target_arch = "wasm32")]
fn now_s() -> f64 {
    js_sys::Date::now() / 1000.0
}

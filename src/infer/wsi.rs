//! Whole-slide inference: windows planned over tissue, read from the cheapest sufficient level
//! and resized to the network's input, run in batches, blended into a model-scale canvas,
//! reporting progress per batch and stopping between batches when cancelled. A run survives a
//! failed model: see [`SlideRun`].

use super::Error;
use super::blend::{Blend, Blender};
use super::net::TileModel;
use super::plan::{Plan, PlanConfig, Window, plan_slide};
use super::prediction::{ObjectFilter, Prediction, Timings};
use super::stain::{LabAccumulator, StainNormaliser};
use crate::model::{LabStats, Manifest};
use crate::slide::{Slide, resize};
use burn::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whole-slide settings. The network's own (normalisation, TTA) travel with the [`TileModel`].
#[derive(Config, Debug)]
pub struct WsiConfig {
    /// Windows and tissue.
    #[config(default = "PlanConfig::new()")]
    pub plan: PlanConfig,
    /// Windows per forward pass.
    #[config(default = 4)]
    pub batch: usize,
    /// Batches computed at once natively, each on its own thread (reading, resizing and the
    /// network; the CPU backend also spreads each pass over the cores). 1: one batch after another.
    /// Ignored in the browser, where a pool of workers does this (the app).
    #[config(default = 1)]
    pub threads: usize,
    /// Overlap merging.
    #[config(default = "Blend::Centre")]
    pub blend: Blend,
    /// Probability threshold.
    #[config(default = "Manifest::DEFAULT_THRESHOLD")]
    pub threshold: f32,
    /// Objects smaller than this (level-0 pixels²) are dropped.
    #[config(default = "Manifest::DEFAULT_MIN_AREA")]
    pub min_area: f64,
    /// Objects larger than this (level-0 pixels²) are dropped; `None`: no upper bound.
    #[config(default = "None")]
    pub max_area: Option<f64>,
    /// Stain normalisation: the reference colour statistics each slide is matched to (the
    /// manifest's); `None`: colours as scanned.
    #[config(default = "None")]
    pub stain_reference: Option<LabStats>,
}

impl WsiConfig {
    /// The settings a model's manifest asks for on a slide of `pixel_size_um` µm/px: its windows
    /// (resampled by the pixel size), threshold and area bounds (scaled alike).
    pub fn for_model(manifest: &Manifest, pixel_size_um: Option<f64>) -> Self {
        Self::new()
            .with_plan(PlanConfig::for_model(manifest, pixel_size_um))
            .with_threshold(manifest.threshold)
            .with_min_area(manifest.min_area_for(pixel_size_um))
            .with_max_area(manifest.max_area_for(pixel_size_um))
            .with_stain_reference(manifest.stain_reference)
    }

    /// Which objects of the thresholded canvas are glomeruli: threshold and area bounds.
    pub fn objects(&self) -> ObjectFilter {
        ObjectFilter::new(self.threshold, self.min_area).with_max_area(self.max_area)
    }
}

/// Progress after a batch.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Progress {
    /// Windows done.
    pub done: usize,
    /// Windows planned.
    pub total: usize,
    /// Windows per second so far (in this call of [`SlideRun::run`]).
    pub windows_per_s: f64,
    /// Estimated seconds left.
    pub eta_s: f64,
}

/// One window's result, for overlays that grow while the slide runs.
pub struct Update<'a> {
    /// The window.
    pub window: Window,
    /// Probabilities 0–255 at the network's input scale, `input_size`² row-major.
    pub probs: &'a [u8],
}

/// Runs `model` over the tissue of `slide`.
pub async fn predict_slide(
    slide: &Slide,
    model: &dyn TileModel,
    config: &WsiConfig,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(&Progress, &[Update<'_>]),
) -> Result<Prediction, Error> {
    let mut run = SlideRun::start(slide, config).await?;
    #[cfg(not(target_arch = "wasm32"))]
    if config.threads > 1 {
        run.run_threads(slide, model, config.batch, config.threads, cancel, progress)?;
        return Ok(run.finish(slide));
    }
    run.run(slide, model, config.batch, cancel, progress).await?;
    Ok(run.finish(slide))
}

/// The windows of a planned slide and how each is prepared (the stain map measured on the slide):
/// everything a worker needs, with the slide and the model, to compute windows that another
/// place blends. The engine splits plan → windows → blend here: [`SlideRun`] plans and blends, a
/// `WindowJob` — in the same process, in another thread or in another browser worker, sent as
/// JSON — reads, resizes, normalises and runs any windows of it. The same windows give the same
/// probabilities wherever they run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WindowJob {
    /// The windows and their geometry.
    pub plan: Plan,
    /// The slide's stain map, measured once by [`SlideRun::start`]; `None`: colours as scanned.
    pub stain: Option<StainNormaliser>,
}

impl WindowJob {
    /// Reads windows `indices` of the plan, resizes and stain-normalises them and runs them
    /// through `model` in one forward pass: `input_size`² probabilities (0–1, row-major) per
    /// window. Read, resize and model time are added to `timings`.
    pub async fn run(
        &self,
        slide: &Slide,
        model: &dyn TileModel,
        indices: &[usize],
        timings: &mut Timings,
    ) -> Result<Vec<Vec<f32>>, Error> {
        let clock = Clock::start();
        let mut windows = Vec::with_capacity(indices.len());
        let mut images = Vec::with_capacity(indices.len());
        for &i in indices {
            let w = self
                .plan
                .windows
                .get(i)
                .ok_or_else(|| Error::Config(format!("window {i} is not in the plan of {} windows", self.plan.windows.len())))?;
            windows.push(*w);
            images.push(self.prepared(slide, w, &clock, timings).await?);
        }
        let t = clock.seconds();
        let probs = model.predict(&self.plan, &windows, &images).await?;
        timings.model_s += clock.seconds() - t;
        self.check(indices.len(), &probs)?;
        Ok(probs)
    }

    /// The window at `w` — on the plan's grid or anywhere else (fine-tuning's windows) — as the
    /// network sees it: read from the cheapest sufficient level, resized to its input and
    /// stain-normalised when the job says so.
    pub async fn image(&self, slide: &Slide, w: &Window) -> Result<image::RgbImage, Error> {
        self.prepared(slide, w, &Clock::start(), &mut Timings::default()).await
    }

    /// [`WindowJob::image`], timing the read and the resize.
    async fn prepared(&self, slide: &Slide, w: &Window, clock: &Clock, timings: &mut Timings) -> Result<image::RgbImage, Error> {
        let mut image = read_window(slide, &self.plan, w, clock, timings).await?;
        if let Some(stain) = &self.stain {
            stain.apply(&mut image);
        }
        Ok(image)
    }

    /// Whether `probs` is `count` windows of `input_size`² values.
    fn check(&self, count: usize, probs: &[Vec<f32>]) -> Result<(), Error> {
        let side = self.plan.input_size as usize;
        if probs.len() != count || probs.iter().any(|p| p.len() != side * side) {
            let sizes: Vec<usize> = probs.iter().map(Vec::len).collect();
            return Err(Error::Backend(format!(
                "the model answered {} windows of {sizes:?} values for {count} of {side}×{side}",
                probs.len()
            )));
        }
        Ok(())
    }
}

/// A whole-slide segmentation that survives a failed model: windows are blended as they come, and
/// a batch whose forward pass fails leaves the run as it was before it. [`SlideRun::run`] can
/// then continue with another model (the same weights on another device: the CPU after a lost
/// GPU), keeping every window already computed; [`SlideRun::finish`] gives the prediction.
///
/// Windows may also be computed elsewhere — a pool of browser workers, threads — from
/// [`SlideRun::job`] and handed back with [`SlideRun::add`] in any order: they are blended in plan
/// order (a window that arrives early waits for the ones before it), so the canvas is the same,
/// to the bit, however many workers computed it and in whatever order they answered.
pub struct SlideRun {
    job: WindowJob,
    blender: Blender,
    /// Which windows have arrived.
    received: Vec<bool>,
    /// How many have arrived.
    done: usize,
    /// Windows blended: all before this index have arrived and are in the canvas.
    blended: usize,
    /// Windows that arrived before an earlier one, waiting to be blended.
    waiting: BTreeMap<usize, Vec<f32>>,
    clock: Clock,
    /// When windows were last handed out, and how many were done then: the rate counts from there.
    since: (f64, usize),
    timings: Timings,
}

/// Windows [`SlideRun::add`] blended for the first time, each with its probabilities quantised to
/// 0–255 (as [`Update`] carries them), for overlays that grow while the slide runs.
pub type NewWindows = Vec<(Window, Vec<u8>)>;

/// Windows whose tissue gives a slide's colour statistics for stain normalisation (evenly spread
/// over the planned windows, read at the network's scale as the windows themselves are).
const STAIN_SAMPLE_WINDOWS: usize = 8;

impl SlideRun {
    /// Builds overviews if the slide needs them, finds the tissue and plans the windows; with a
    /// stain reference, measures the slide's colours on a sample of its windows.
    pub async fn start(slide: &Slide, config: &WsiConfig) -> Result<Self, Error> {
        let clock = Clock::start();
        let plan = plan_slide(slide, &config.plan).await?;
        let stain = match &config.stain_reference {
            Some(reference) => {
                let mut acc = LabAccumulator::default();
                sample_colours(slide, &plan, &mut acc, &clock, &mut Timings::default()).await?;
                // Too little tissue to measure: colours as scanned.
                acc.stats().map(|stats| StainNormaliser::new(&stats, reference))
            }
            None => None,
        };
        // The sample's reads count as planning.
        let timings = Timings { plan_s: clock.seconds(), ..Timings::default() };
        let blender = Blender::new(&plan, config.blend);
        let total = plan.windows.len();
        let since = (clock.seconds(), 0);
        Ok(Self {
            job: WindowJob { plan, stain },
            blender,
            received: vec![false; total],
            done: 0,
            blended: 0,
            waiting: BTreeMap::new(),
            clock,
            since,
            timings,
        })
    }

    /// Windows done so far (arrived, whether blended yet or waiting for an earlier one).
    pub fn done(&self) -> usize {
        self.done
    }

    /// Windows planned.
    pub fn total(&self) -> usize {
        self.job.plan.windows.len()
    }

    /// The indices of the windows not done yet, in plan order.
    pub fn remaining(&self) -> Vec<usize> {
        (0..self.total()).filter(|&i| !self.received[i]).collect()
    }

    /// What workers need to compute this run's windows. The windows-per-second rate of
    /// [`SlideRun::add`]'s progress counts from this call.
    pub fn job(&mut self) -> &WindowJob {
        self.since = (self.clock.seconds(), self.done);
        &self.job
    }

    /// Hands back windows computed from [`SlideRun::job`]: `probs` holds `input_size`² values
    /// (0–1, row-major) per index, `timings` what computing them took (read, resize, model). A
    /// window already done is ignored (a worker thought lost that answered after all). Returns
    /// the progress and the windows that were new, for a growing overlay.
    pub fn add(&mut self, indices: &[usize], probs: Vec<Vec<f32>>, timings: &Timings) -> Result<(Progress, NewWindows), Error> {
        self.job.check(indices.len(), &probs)?;
        if let Some(&i) = indices.iter().find(|&&i| i >= self.total()) {
            return Err(Error::Config(format!("window {i} is not in the plan of {} windows", self.total())));
        }
        self.timings.read_s += timings.read_s;
        self.timings.resize_s += timings.resize_s;
        self.timings.model_s += timings.model_s;
        let mut fresh = Vec::new();
        for (&i, p) in indices.iter().zip(probs) {
            if std::mem::replace(&mut self.received[i], true) {
                continue;
            }
            self.done += 1;
            fresh.push((self.job.plan.windows[i], p.iter().map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect()));
            self.waiting.insert(i, p);
        }
        let t = self.clock.seconds();
        while let Some(p) = self.waiting.remove(&self.blended) {
            self.blender.add(&self.job.plan, self.blended, &p);
            self.blended += 1;
        }
        self.timings.blend_s += self.clock.seconds() - t;
        Ok((self.progress(), fresh))
    }

    /// Progress now, the rate counted from the last [`SlideRun::job`] (or [`SlideRun::run`]).
    fn progress(&self) -> Progress {
        let (since, first) = self.since;
        let total = self.total();
        let rate = (self.done - first) as f64 / (self.clock.seconds() - since).max(1e-9);
        Progress { done: self.done, total, windows_per_s: rate, eta_s: (total - self.done) as f64 / rate.max(1e-9) }
    }

    /// Runs the windows not yet done, `batch` at a time, with `model`. On an error (cancelled,
    /// slide or model) the windows done before the failing batch stay done and a later call
    /// continues from there.
    pub async fn run(
        &mut self,
        slide: &Slide,
        model: &dyn TileModel,
        batch: usize,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(&Progress, &[Update<'_>]),
    ) -> Result<(), Error> {
        let batch = batch.clamp(1, 64);
        // The rate of this call (a resumed run may be on a slower device).
        self.since = (self.clock.seconds(), self.done);
        for chunk in self.remaining().chunks(batch) {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let mut timings = Timings::default();
            let probs = self.job.run(slide, model, chunk, &mut timings).await?;
            self.add_and_report(chunk, probs, &timings, progress)?;
        }
        Ok(())
    }

    /// [`SlideRun::add`], then `progress` with the windows that were new.
    fn add_and_report(
        &mut self,
        indices: &[usize],
        probs: Vec<Vec<f32>>,
        timings: &Timings,
        progress: &mut dyn FnMut(&Progress, &[Update<'_>]),
    ) -> Result<(), Error> {
        let (p, fresh) = self.add(indices, probs, timings)?;
        let updates: Vec<Update<'_>> = fresh.iter().map(|(w, q)| Update { window: *w, probs: q }).collect();
        progress(&p, &updates);
        Ok(())
    }

    /// [`SlideRun::run`] with `threads` batches in flight natively: each thread takes the next
    /// batch of the windows not yet done, reads, prepares and runs it ([`WindowJob::run`]), and
    /// this thread blends the results as they come (in plan order: the canvas is the one
    /// [`SlideRun::run`] makes) and reports progress. On an error or a cancel, no new batch
    /// starts; those in flight finish and are kept, and the first error is returned.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_threads(
        &mut self,
        slide: &Slide,
        model: &dyn TileModel,
        batch: usize,
        threads: usize,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(&Progress, &[Update<'_>]),
    ) -> Result<(), Error> {
        use std::sync::atomic::AtomicUsize;
        let remaining = self.remaining();
        let chunks: Vec<&[usize]> = remaining.chunks(batch.clamp(1, 64)).collect();
        let (next, stop) = (AtomicUsize::new(0), AtomicBool::new(false));
        self.since = (self.clock.seconds(), self.done);
        let job = self.job.clone();
        let mut failure = None;
        rayon::in_place_scope(|scope| {
            let (send, receive) = std::sync::mpsc::channel();
            for _ in 0..threads.clamp(1, chunks.len().max(1)) {
                let (send, chunks, next, stop, job) = (send.clone(), &chunks, &next, &stop, &job);
                scope.spawn(move |_| {
                    while !stop.load(Ordering::Relaxed) && !cancel.load(Ordering::Relaxed) {
                        let Some(&chunk) = chunks.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
                        let mut timings = Timings::default();
                        let result = futures_lite::future::block_on(job.run(slide, model, chunk, &mut timings));
                        if send.send((chunk, result, timings)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(send);
            for (chunk, result, timings) in receive {
                if let Err(e) = result.and_then(|probs| self.add_and_report(chunk, probs, &timings, progress)) {
                    stop.store(true, Ordering::Relaxed);
                    failure.get_or_insert(e);
                }
            }
        });
        match failure {
            Some(e) => Err(e),
            None if cancel.load(Ordering::Relaxed) && self.done < self.total() => Err(Error::Cancelled),
            None => Ok(()),
        }
    }

    /// The prediction (windows not run, if any, count as background).
    pub fn finish(mut self, slide: &Slide) -> Prediction {
        // Windows that arrived after one that never did: blended in order, skipping the gaps.
        for (i, p) in std::mem::take(&mut self.waiting) {
            self.blender.add(&self.job.plan, i, &p);
        }
        self.timings.total_s = self.clock.seconds();
        let (canvas_width, canvas_height) = self.blender.canvas_size();
        Prediction {
            width: self.job.plan.width,
            height: self.job.plan.height,
            plan: self.job.plan,
            canvas_width,
            canvas_height,
            canvas: self.blender.into_canvas(),
            pixel_size_um: slide.pixel_size_um(),
            timings: self.timings,
        }
    }
}

/// Adds the tissue colours of up to [`STAIN_SAMPLE_WINDOWS`] of `plan`'s windows, evenly spread,
/// read and resized as the network sees them.
async fn sample_colours(slide: &Slide, plan: &Plan, acc: &mut LabAccumulator, clock: &Clock, timings: &mut Timings) -> Result<(), Error> {
    let n = plan.windows.len();
    let count = STAIN_SAMPLE_WINDOWS.min(n);
    for k in 0..count {
        acc.add(&read_window(slide, plan, &plan.windows[k * n / count], clock, timings).await?);
    }
    Ok(())
}

/// Adds the tissue colours of `slide`, as [`SlideRun`] measures them for stain normalisation, to
/// `acc`: to build a reference from a lab's own slides or tiles.
pub async fn slide_colours(slide: &Slide, config: &WsiConfig, acc: &mut LabAccumulator) -> Result<(), Error> {
    let plan = plan_slide(slide, &config.plan).await?;
    sample_colours(slide, &plan, acc, &Clock::start(), &mut Timings::default()).await
}

/// Reads window `w` of `plan` and resizes it to the network's input, timing the two apart.
async fn read_window(slide: &Slide, plan: &Plan, w: &Window, clock: &Clock, timings: &mut Timings) -> Result<image::RgbImage, Error> {
    let (window, size) = (plan.window as f64, plan.input_size);
    let t = clock.seconds();
    let region = slide.read_for_scale(w.x as f64, w.y as f64, window, window, size, size).await?;
    let t_read = clock.seconds();
    let image = resize(region, size, size);
    timings.read_s += t_read - t;
    timings.resize_s += clock.seconds() - t_read;
    Ok(image)
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

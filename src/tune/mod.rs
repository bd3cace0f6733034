//! Fine-tuning on one slide's reviewed objects (issue #30): the decoder and head of a loaded
//! network train for a bounded number of steps on windows around the reviewed glomeruli
//! (positives), around the rejected ones (hard negatives) and on random tissue windows of the same
//! slide, with the encoder frozen (weights and batch-norm statistics), training's loss (BCE + Dice)
//! and AdamW. Windows are read exactly as inference reads them (the run's [`WindowJob`]: the plan's
//! scale, the slide's stain map), and every read-back is async, so the same loop can run natively
//! and in a browser worker. Data never leaves the process: the slide, the outlines and the tuned
//! weights stay where they are.

pub mod loss;

pub use loss::LossConfig;

use crate::infer::{Error, TileModel, Window, WindowJob, WsiConfig, predict_slide};
use crate::mask::{Polygon, Predicted, rasterise, review};
use crate::model::{Manifest, Normaliser, Precision, SegmentationModel};
use crate::rng::SplitMix64;
use crate::slide::Slide;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use image::RgbImage;

/// How a network is fine-tuned on a slide.
#[derive(Config, Debug, PartialEq)]
pub struct TuneConfig {
    /// Optimiser steps.
    #[config(default = 40)]
    pub steps: usize,
    /// Windows per step.
    #[config(default = 2)]
    pub batch: usize,
    /// Learning rate (AdamW, constant).
    #[config(default = 3e-4)]
    pub lr: f64,
    /// Random tissue windows, as a fraction of the windows around reviewed objects (at least one).
    #[config(default = 0.5)]
    pub background: f64,
    /// Most windows read from the slide (each `input_size`²·3 bytes in memory).
    #[config(default = 64)]
    pub max_windows: usize,
    /// Seed of the window offsets, the background draw and the batch order.
    #[config(default = 7)]
    pub seed: u64,
    /// The loss (the seed's: BCE + Dice).
    #[config(default = "LossConfig::new()")]
    pub loss: LossConfig,
}

/// One training window: the network's input and its target (1 inside a positive outline).
pub struct TuneWindow {
    /// The window as the network sees it (`input_size`², stain-normalised when the job says so).
    pub image: RgbImage,
    /// `input_size`² targets, row-major.
    pub mask: Vec<f32>,
}

/// The windows to train on: one centred on each outline of `positives` and `negatives` (shifted by
/// up to a quarter window, seeded), and random windows of the plan (its tissue windows, shifted
/// alike); targets rasterised from `positives` at the network's scale. At most
/// `config.max_windows`, objects first.
pub async fn tune_windows(
    slide: &Slide,
    job: &WindowJob,
    positives: &[Polygon],
    negatives: &[Polygon],
    config: &TuneConfig,
) -> Result<Vec<TuneWindow>, Error> {
    let plan = &job.plan;
    let (window, size) = (plan.window as f64, plan.input_size);
    let mut rng = SplitMix64::new(config.seed);
    let jitter = |rng: &mut SplitMix64| rng.range(-0.25, 0.25) * window;
    let mut origins = Vec::new();
    for outline in positives.iter().chain(negatives) {
        let Some([cx, cy]) = centre(outline) else { continue };
        origins.push([cx - window / 2.0 + jitter(&mut rng), cy - window / 2.0 + jitter(&mut rng)]);
    }
    let background = ((origins.len() as f64 * config.background).ceil() as usize).max(1);
    for _ in 0..background {
        if plan.windows.is_empty() {
            break;
        }
        let w = plan.windows[(rng.next_u64() % plan.windows.len() as u64) as usize];
        origins.push([w.x as f64 + jitter(&mut rng), w.y as f64 + jitter(&mut rng)]);
    }
    origins.truncate(config.max_windows.max(1));
    let mut out = Vec::with_capacity(origins.len());
    for [x, y] in origins {
        let w = Window { x: x.round() as i64, y: y.round() as i64, col: 0, row: 0 };
        let image = job.image(slide, &w).await?;
        let local: Vec<Polygon> = positives
            .iter()
            .map(|p| Polygon {
                rings: p
                    .rings
                    .iter()
                    .map(|r| r.iter().map(|&[px, py]| [(px - w.x as f64) / plan.scale, (py - w.y as f64) / plan.scale]).collect())
                    .collect(),
            })
            .collect();
        let m = rasterise(&local, size, size);
        let mask = (0..size).flat_map(|y| (0..size).map(move |x| (x, y))).map(|(x, y)| m.get(x, y) as u8 as f32).collect();
        out.push(TuneWindow { image, mask });
    }
    Ok(out)
}

/// The mean of an outline's exterior ring, or `None` for an empty one.
fn centre(p: &Polygon) -> Option<[f64; 2]> {
    let ring = p.rings.first().filter(|r| !r.is_empty())?;
    let n = ring.len() as f64;
    Some([ring.iter().map(|q| q[0]).sum::<f64>() / n, ring.iter().map(|q| q[1]).sum::<f64>() / n])
}

/// A fine-tuning in progress: call [`FineTune::step`] until [`FineTune::done`] (or stop early),
/// then take [`FineTune::model`].
pub struct FineTune {
    model: SegmentationModel,
    optim: ModuleOptimizer,
    normaliser: Normaliser,
    windows: Vec<TuneWindow>,
    config: TuneConfig,
    device: Device,
    order: Vec<usize>,
    step: usize,
    rng: SplitMix64,
    /// The loss of every step so far.
    pub losses: Vec<f32>,
}

impl FineTune {
    /// Prepares `model` (moved to the autodiff form of `device`, its encoder frozen with its batch
    /// norms on running statistics) for training on `windows`, fed through `normaliser`.
    pub fn new(
        model: SegmentationModel,
        normaliser: Normaliser,
        device: &Device,
        windows: Vec<TuneWindow>,
        config: TuneConfig,
    ) -> Result<Self, Error> {
        if windows.is_empty() {
            return Err(Error::Config("nothing to fine-tune on: no reviewed object and no tissue".into()));
        }
        if config.steps == 0 || config.batch == 0 || !(config.lr > 0.0 && config.lr.is_finite()) {
            return Err(Error::Config(format!("fine-tuning needs steps, batch and a learning rate above 0 ({config:?})")));
        }
        let device = device.clone().autodiff();
        let model = model.train().fork(&device).freeze_encoder(5, true);
        let optim: ModuleOptimizer = AdamWConfig::new().with_weight_decay(1e-4).init();
        let rng = SplitMix64::new(config.seed ^ 0x7E57);
        Ok(Self { model, optim, normaliser, windows, config, device, order: Vec::new(), step: 0, rng, losses: Vec::new() })
    }

    /// Steps done.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Whether every configured step is done.
    pub fn done(&self) -> bool {
        self.step >= self.config.steps
    }

    /// Windows trained on.
    pub fn window_count(&self) -> usize {
        self.windows.len()
    }

    /// One optimiser step on the next `batch` windows (a seeded shuffle, reshuffled each pass) with
    /// random flips; returns the step's loss.
    pub async fn step(&mut self) -> Result<f32, Error> {
        let side = self.windows[0].image.width() as usize;
        let batch = self.config.batch.min(self.windows.len());
        let (mut rgb, mut masks) = (Vec::with_capacity(batch * side * side * 3), Vec::with_capacity(batch * side * side));
        for _ in 0..batch {
            if self.order.is_empty() {
                self.order = (0..self.windows.len()).collect();
                for i in (1..self.order.len()).rev() {
                    self.order.swap(i, (self.rng.next_u64() % (i as u64 + 1)) as usize);
                }
            }
            let w = &self.windows[self.order.pop().unwrap_or(0)];
            let (flip_x, flip_y) = (self.rng.next_u64() & 1 == 1, self.rng.next_u64() & 2 == 2);
            for y in 0..side {
                for x in 0..side {
                    let (sx, sy) = (if flip_x { side - 1 - x } else { x }, if flip_y { side - 1 - y } else { y });
                    rgb.extend_from_slice(&w.image.get_pixel(sx as u32, sy as u32).0);
                    masks.push(w.mask[sy * side + sx]);
                }
            }
        }
        let x = self.normaliser.input(&rgb, batch, side, &self.device);
        let y = Tensor::<4>::from_data(TensorData::new(masks, [batch, 1, side, side]), &self.device);
        let loss = self.config.loss.loss(self.model.forward(x), y);
        let value = loss
            .clone()
            .detach()
            .into_data_async()
            .await
            .map_err(|e| Error::Backend(format!("{e:?}")))?
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Backend(format!("{e:?}")))?[0];
        if !value.is_finite() {
            return Err(Error::Backend(format!("the loss is {value}: lower the learning rate")));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optim.step(self.config.lr, self.model.clone(), grads);
        self.step += 1;
        self.losses.push(value);
        Ok(value)
    }

    /// The tuned network, for inference (off the autodiff device).
    pub fn model(&self) -> SegmentationModel {
        self.model.valid()
    }
}

/// The manifest of a model fine-tuned from `manifest` on `positives` reviewed glomeruli and
/// `negatives` rejected objects of `slide` in `steps` steps: named `<name>-tuned`, its card saying
/// so and that it is not validated since, its weights f32.
pub fn tuned_manifest(manifest: &Manifest, positives: usize, negatives: usize, slide: &str, steps: usize) -> Manifest {
    let mut m = manifest.clone();
    m.name = format!("{}-tuned", manifest.name);
    m.trained_on = format!(
        "{}; then its decoder fine-tuned on {positives} reviewed glomeruli ({negatives} rejected) of {slide} ({steps} steps)",
        manifest.trained_on
    );
    m.validation = format!("not validated after fine-tuning on one slide (before: {})", manifest.validation);
    m.validation_dice = None;
    m.precision = Precision::F32;
    m
}

/// How a model's glomeruli agree with a reviewed set: of `reviewed` objects, `found` are matched by
/// a predicted glomerulus at IoU ≥ 0.5; `predicted` glomeruli meet the reviewed objects' box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Agreement {
    /// Reviewed glomeruli.
    pub reviewed: usize,
    /// Predicted glomeruli in their box.
    pub predicted: usize,
    /// Reviewed glomeruli a prediction matches.
    pub found: usize,
}

/// Runs `model` over the box that holds `reviewed` (with `wsi`'s windows; a region run) and matches
/// its glomeruli with them: how a tuned model and its original compare on what was reviewed.
pub async fn agreement(slide: &Slide, model: &dyn TileModel, wsi: &WsiConfig, reviewed: &[Polygon]) -> Result<Agreement, Error> {
    let points = || reviewed.iter().flat_map(|p| p.rings.iter().flatten());
    let (x0, y0) = points().fold((f64::INFINITY, f64::INFINITY), |(x, y), p| (x.min(p[0]), y.min(p[1])));
    let (x1, y1) = points().fold((f64::NEG_INFINITY, f64::NEG_INFINITY), |(x, y), p| (x.max(p[0]), y.max(p[1])));
    if !(x0.is_finite() && y0.is_finite() && x1 > x0 && y1 > y0) {
        return Err(Error::Config("no reviewed outline to compare on".into()));
    }
    let mut wsi = wsi.clone();
    let clamp = |v: f64| v.max(0.0).min(u32::MAX as f64) as u32;
    wsi.plan.region = Some([clamp(x0), clamp(y0), clamp(x1 - x0).max(1), clamp(y1 - y0).max(1)]);
    let prediction = predict_slide(slide, model, &wsi, &std::sync::atomic::AtomicBool::new(false), &mut |_, _| {}).await?;
    let predicted: Vec<Predicted> = prediction
        .glomeruli(wsi.objects())
        .into_iter()
        .filter(|g| g.bbox[0] <= x1 && g.bbox[1] <= y1 && g.bbox[0] + g.bbox[2] >= x0 && g.bbox[1] + g.bbox[3] >= y0)
        .filter_map(|g| g.outline.map(|outline| Predicted { outline, confidence: Some(g.confidence) }))
        .collect();
    let r = review(&predicted, reviewed);
    Ok(Agreement { reviewed: reviewed.len(), predicted: predicted.len(), found: r.counts.agreed })
}

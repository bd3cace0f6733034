//! Native training (feature `train`): the seed's recipe — tiles cut once from the Kaggle layout and
//! cached, tissue filter, glomerulus/cortex oversampling and the drop-what-is-learnt filter,
//! seeded augmentations, BCE/Dice/focal/Lovász losses, AdamW with cosine or one-cycle schedules and
//! gradient accumulation, K-fold validation by slide with the competition's full-slide Dice through
//! the inference engine, per-epoch checkpoints with `--resume`, a metrics CSV and curve PNGs — and
//! `export` into the model folder the web app and `predict` read.

pub mod augment;
mod bench;
pub mod data;
/// The losses live with fine-tuning (which the browser builds too); training uses the same.
pub use crate::tune::loss;
pub mod plot;
mod run;
pub mod schedule;

pub use augment::AugmentConfig;
pub use bench::{TrainBench, bench_train};
pub use data::{DatasetConfig, SamplerConfig, SlideEntry, TileConfig, TileMeta, Tiles};
pub use loss::LossConfig;
pub use run::{EpochMetrics, Event, SlideScore, export, resume, train};
pub use schedule::Schedule;

use crate::model::{Manifest, Normaliser, SegmenterConfig};
use burn::config::Config;

/// Errors while training or exporting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The dataset is missing or malformed.
    #[error("dataset: {0}")]
    Data(String),
    /// Settings that cannot work together.
    #[error("configuration: {0}")]
    Config(String),
    /// Reading or writing the run folder failed.
    #[error("{0}")]
    Io(String),
    /// The compute backend failed.
    #[error("backend: {0}")]
    Backend(String),
    /// Stopped by the caller; the last checkpoint is kept.
    #[error("cancelled (the run resumes from its last finished epoch)")]
    Cancelled,
    /// Whole-slide validation failed.
    #[error("validation: {0}")]
    Infer(String),
    /// A model folder cannot be read or written.
    #[error(transparent)]
    Model(#[from] crate::model::Error),
}

/// Everything a training run is made of; saved as `config.json` in the run folder.
#[derive(Config, Debug)]
pub struct TrainConfig {
    /// The datasets: Kaggle layouts (folders or http(s) URLs) and annotated image folders, each
    /// with its pixel size and weight.
    pub data: Vec<DatasetConfig>,
    /// The network (its `input_size` must equal `tiles.size`).
    pub model: SegmenterConfig,
    /// Tile extraction.
    #[config(default = "TileConfig::new()")]
    pub tiles: TileConfig,
    /// Tile sampling.
    #[config(default = "SamplerConfig::new()")]
    pub sampler: SamplerConfig,
    /// Augmentations.
    #[config(default = "AugmentConfig::new()")]
    pub augment: AugmentConfig,
    /// Loss terms.
    #[config(default = "LossConfig::new()")]
    pub loss: LossConfig,
    /// Epochs.
    #[config(default = 20)]
    pub epochs: usize,
    /// Tiles per forward pass (per device).
    #[config(default = 8)]
    pub batch: usize,
    /// Forward passes whose gradients are summed before each optimiser step.
    #[config(default = 1)]
    pub accumulate: usize,
    /// Peak learning rate (AdamW).
    #[config(default = 1e-3)]
    pub lr: f64,
    /// AdamW weight decay.
    #[config(default = 1e-2)]
    pub weight_decay: f64,
    /// Learning-rate schedule.
    #[config(default = "Schedule::Cosine")]
    pub schedule: Schedule,
    /// Warm-up length in epochs.
    #[config(default = 1.0)]
    pub warmup_epochs: f64,
    /// K of the K-fold split by slide (1: train on every slide, no validation).
    #[config(default = 4)]
    pub folds: usize,
    /// Which fold is held out.
    #[config(default = 0)]
    pub fold: usize,
    /// Seed of weights, sampling and augmentations.
    #[config(default = 0)]
    pub seed: u64,
    /// Input normalisation, used for every training and validation batch and written into the
    /// exported manifest, so inference feeds the network exactly as it was trained.
    #[config(default = "Normaliser::new()")]
    pub normaliser: Normaliser,
    /// Probability threshold for Dice and the exported manifest.
    #[config(default = "Manifest::DEFAULT_THRESHOLD")]
    pub threshold: f32,
    /// Smallest object kept at inference, level-0 pixels².
    #[config(default = "Manifest::DEFAULT_MIN_AREA")]
    pub min_area: f64,
    /// Largest object kept at inference, level-0 pixels² (same scale); `None`: no upper bound.
    #[config(default = "None")]
    pub max_area: Option<f64>,
    /// At the end, run the held-out slides through the whole-slide engine and score them with
    /// the competition's Dice.
    #[config(default = true)]
    pub slide_validation: bool,
    /// What the data is, in words (written into the exported manifest); detected for synthetic sets.
    #[config(default = "None")]
    pub trained_on: Option<String>,
    /// What the model was not validated on and must not be used for (the manifest's `limits`).
    #[config(default = "None")]
    pub limits: Option<String>,
    /// A model folder (model.json + model.bpk, e.g. the bundled model or an earlier `export`) whose
    /// weights the network starts from instead of seeded random ones: fine-tuning, e.g. on a lab's
    /// own annotated tiles. Its network must be `model` exactly; the optimiser starts fresh.
    #[config(default = "None")]
    pub init: Option<String>,
    /// Fine-tuning: the encoder's learning rate as a fraction of `lr` (e.g. 0.1 for a pretrained
    /// encoder under a fresh decoder).
    #[config(default = 1.0)]
    pub encoder_lr: f64,
    /// Fine-tuning: encoder feature levels (0–5: the stride-2 stem, then the stages ending at
    /// strides 4…32) kept frozen: not trained, their batch norms on running statistics.
    #[config(default = 0)]
    pub frozen_levels: usize,
    /// Fine-tuning: every batch norm of the encoder normalises with its running statistics (a
    /// pretrained encoder's) instead of the batch's; their scale and shift still train.
    #[config(default = false)]
    pub frozen_norms: bool,
    /// Stain normalisation: record the training tiles' colour statistics in the manifest, so that
    /// inference matches each slide's colours to them (Reinhard, in L*a*b*).
    #[config(default = false)]
    pub stain_normalise: bool,
}

impl TrainConfig {
    /// Reads a run's `config.json`; settings added to ftuscope since the run was started (absent
    /// from the file, at any depth) take their defaults, so an older run still resumes.
    pub fn from_json_with_defaults(text: &str) -> Result<Self, serde_json::Error> {
        use serde_json::{Value, from_value};
        // Objects gain their missing keys; each element of an array is filled from the defaults'
        // first element (the datasets).
        fn fill(value: &mut Value, defaults: &Value) {
            match (value, defaults) {
                (Value::Object(object), Value::Object(defaults)) => {
                    for (key, default) in defaults {
                        match object.get_mut(key) {
                            Some(present) => fill(present, default),
                            None => {
                                object.insert(key.clone(), default.clone());
                            }
                        }
                    }
                }
                (Value::Array(items), Value::Array(defaults)) => {
                    if let Some(default) = defaults.first() {
                        items.iter_mut().for_each(|item| fill(item, default));
                    }
                }
                _ => {}
            }
        }
        let mut value: Value = serde_json::from_str(text)?;
        let encoder = value.pointer("/model/encoder").cloned().map(from_value).transpose()?.unwrap_or(crate::model::EncoderKind::Tiny);
        let decoder = value.pointer("/model/decoder").cloned().map(from_value).transpose()?.unwrap_or(crate::model::DecoderKind::Unet);
        let defaults = Self::new(vec![DatasetConfig::new(String::new())], SegmenterConfig::new(encoder, decoder));
        fill(&mut value, &serde_json::to_value(&defaults)?);
        from_value(value)
    }

    /// Rejects settings that cannot work.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Config(m));
        if self.model.input_size != self.tiles.size as usize {
            return bad(format!("the model's input_size {} differs from the tile size {}", self.model.input_size, self.tiles.size));
        }
        if self.tiles.size == 0 || !(self.tiles.size as usize).is_multiple_of(crate::model::STRIDE) {
            return bad(format!("tile size {} must be a positive multiple of {}", self.tiles.size, crate::model::STRIDE));
        }
        if let Some(p) = self.tiles.input_pixel_size_um
            && !(p.is_finite() && p > 0.0)
        {
            return bad(format!("input pixel size {p} must be positive"));
        }
        if self.data.iter().any(|d| !(d.weight.is_finite() && d.weight > 0.0)) {
            return bad("dataset weights must be positive".into());
        }
        if self.tiles.input_pixel_size_um.is_none() && (self.tiles.window < self.tiles.size || self.tiles.overlap >= self.tiles.window) {
            return bad(format!(
                "window {} must be at least the tile size {} and larger than the overlap {}",
                self.tiles.window, self.tiles.size, self.tiles.overlap
            ));
        }
        if self.epochs == 0 || self.batch == 0 || self.accumulate == 0 {
            return bad("epochs, batch and accumulate must be positive".into());
        }
        if self.folds > 1 && self.fold >= self.folds {
            return bad(format!("--fold {} must be below --folds {}", self.fold, self.folds));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("learning rate {} must be positive", self.lr));
        }
        if !(self.encoder_lr >= 0.0 && self.encoder_lr.is_finite()) {
            return bad(format!("encoder learning-rate fraction {} must be 0 or more", self.encoder_lr));
        }
        if self.frozen_levels > 5 {
            return bad(format!("frozen levels {} must be 0…5 (the encoder has five)", self.frozen_levels));
        }
        Ok(())
    }
}

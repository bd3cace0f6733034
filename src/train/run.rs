//! The training loop, its run folder (config.json, metrics.csv, curves, checkpoint/, best/,
//! validation.csv) and export.
//!
//! A checkpoint is written after every epoch (model, optimiser state, sampler state) into
//! `checkpoint.partial/` and then swapped in, so a run killed at any moment resumes from the last
//! finished epoch.

use super::augment::augment;
use super::data::{SlideEntry, Tiles, epoch_order, held_out, read_datasets, resolve_pixel_sizes, slide_tiles};
use super::plot::{Series, line_chart};
use super::schedule::learning_rate;
use super::{Error, TrainConfig};
use crate::infer::{NetModel, WsiConfig, predict_slide};
use crate::mask::{Scores, score_rle};
use crate::model::{Manifest, Precision, SegmentationModel, SegmenterConfig, folder, seeded};
use crate::rng::{SplitMix64, mix};
use crate::slide::source::open_native;
use crate::slide::{Slide, SlideOptions};
use burn::lr_scheduler::constant::ConstantLr;
use burn::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::module::{Module, ParamGroup};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::prelude::*;
use futures_lite::future::block_on;
use image::{GrayImage, RgbImage};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What the loop reports as it goes (the CLI draws progress bars from these).
pub enum Event<'a> {
    /// Cutting a slide into tiles (only on the first run over a dataset; then cached).
    Extracting {
        /// Slide id.
        slide: &'a str,
        /// Windows done.
        done: usize,
        /// Windows planned.
        total: usize,
    },
    /// Tiles are ready.
    Tiles {
        /// Training tiles.
        train: usize,
        /// Validation tiles.
        valid: usize,
        /// Training slides.
        train_slides: usize,
        /// Held-out slides.
        valid_slides: usize,
    },
    /// An optimiser step finished.
    Step {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the epoch (1-based).
        step: usize,
        /// Steps in this epoch.
        steps: usize,
        /// Mean loss of the step's batches.
        loss: f64,
        /// Learning rate used.
        lr: f64,
        /// Training images per second so far this epoch.
        images_per_s: f64,
    },
    /// An epoch finished (metrics written, checkpoint saved).
    Epoch(&'a EpochMetrics),
    /// A held-out slide was scored through the whole-slide engine.
    Slide(&'a SlideScore),
}

/// One row of metrics.csv.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Optimiser steps so far.
    pub step: usize,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Mean training loss.
    pub train_loss: f64,
    /// Dice over all training tiles of the epoch (as augmented, before the step).
    pub train_dice: f64,
    /// Mean loss on the held-out slides' tiles.
    pub valid_loss: Option<f64>,
    /// Dice over all held-out tiles.
    pub valid_dice: Option<f64>,
    /// Tiles no longer drawn (the drop-what-is-learnt filter).
    pub dropped: usize,
    /// Seconds the epoch took.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_s: f64,
}

/// The scores of one held-out slide or image through the whole-slide engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlideScore {
    /// Slide id.
    pub id: String,
    /// Full-resolution Dice against its truth.
    pub dice: f64,
    /// Glomeruli found.
    pub count: usize,
    /// Pixel and object counts (object precision/recall at IoU ≥ 0.5).
    pub scores: Scores,
    /// Seconds the slide took.
    pub seconds: f64,
}

/// What survives between epochs besides the weights (state.json in the checkpoint).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// Epochs finished.
    epoch: usize,
    /// Optimiser steps taken.
    step: usize,
    /// Best held-out tile Dice so far.
    best: Option<f64>,
    /// Per training tile: predicted perfectly at its last visit.
    perfect: Vec<bool>,
    /// Metrics of the finished epochs.
    history: Vec<EpochMetrics>,
}

/// Trains from scratch into `run` (created; must not hold a run already).
///
/// `cancel` is checked between batches: a cancelled run returns [`Error::Cancelled`] and keeps its
/// last checkpoint, as a killed one does.
pub fn train(
    config: TrainConfig,
    run: &Path,
    devices: &[Device],
    cache: &Path,
    cancel: &AtomicBool,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<SlideScore>, Error> {
    config.check()?;
    if run.join("config.json").exists() {
        return Err(Error::Config(format!("{} already holds a run: use --resume {0}, or another --run folder", run.display())));
    }
    std::fs::create_dir_all(run).map_err(|e| io_error(run, e))?;
    write_atomic(&run.join("config.json"), config.to_string().as_bytes())?;
    execute(&config, run, devices, cache, None, cancel, events)
}

/// Continues the run in `run` from its last checkpoint, with the config it was started with.
pub fn resume(
    run: &Path,
    devices: &[Device],
    cache: &Path,
    cancel: &AtomicBool,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<SlideScore>, Error> {
    let text = std::fs::read_to_string(run.join("config.json")).map_err(|e| io_error(&run.join("config.json"), e))?;
    let config =
        TrainConfig::from_json_with_defaults(&text).map_err(|e| Error::Config(format!("{}: {e}", run.join("config.json").display())))?;
    config.check()?;
    let checkpoint = run.join("checkpoint");
    let state = match std::fs::read_to_string(checkpoint.join("state.json")) {
        Ok(text) => {
            Some(serde_json::from_str::<State>(&text).map_err(|e| Error::Io(format!("{}: {e}", checkpoint.join("state.json").display())))?)
        }
        Err(_) => None,
    };
    execute(&config, run, devices, cache, state, cancel, events)
}

/// The weights of the model folder `dir` on the training device, for a run that starts from them
/// (`TrainConfig::init`); a folder whose network is not `model` is refused, naming both.
/// The learning rate of each parameter: `lr`, the encoder's (`encoder`) scaled by `encoder_lr`.
pub(crate) fn learning_rates(lr: f64, encoder_lr: f64, encoder: &ParamGroup) -> ModuleLearningRate {
    if encoder_lr == 1.0 {
        return lr.into();
    }
    ModuleLrScheduler::new(ConstantLr::from(lr)).with_group(encoder.clone(), ConstantLr::from(lr * encoder_lr)).step()
}

fn start_from(dir: &str, model: &SegmenterConfig, device: &Device) -> Result<SegmentationModel, Error> {
    let (weights, manifest) = folder::load(Path::new(dir), device)?;
    // The weights do not depend on the input size: a model may be fine-tuned at another one.
    if manifest.model.clone().with_input_size(model.input_size) != *model {
        return Err(Error::Config(format!(
            "--init {dir}: its network ({}) is not the one configured ({}); give the same \
             --arch/--tiny-widths/--decoder-channels as the model was trained with",
            manifest.model.arch(),
            model.arch(),
        )));
    }
    Ok(weights)
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io(format!("{}: {e}", path.display()))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(|e| io_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

/// Says "synthetic tissue" when the dataset came from `ftuscope synth` (its information CSV has a
/// seed column), else what the user said, else "unspecified data".
async fn describe_data(config: &TrainConfig, entries: &[SlideEntry]) -> String {
    if let Some(text) = &config.trained_on {
        return text.clone();
    }
    let mut parts = Vec::new();
    for (k, dataset) in config.data.iter().enumerate() {
        let n = entries.iter().filter(|e| e.dataset == k).count();
        parts.push(format!("{} ({n} images)", describe_dataset(&dataset.location).await));
    }
    parts.join(" + ")
}

async fn describe_dataset(location: &str) -> String {
    let info = format!("{}/HuBMAP-20-dataset_information.csv", location.trim_end_matches('/'));
    let header = match open_native(&info).await {
        Ok(source) => source
            .read_range(0..source.len().min(4096))
            .await
            .ok()
            .map(|b| String::from_utf8_lossy(&b).lines().next().unwrap_or("").to_string()),
        Err(_) => None,
    };
    match header {
        Some(h) if h.split(',').any(|c| c.trim() == "seed") => "synthetic tissue (ftuscope synth), not real kidney".into(),
        _ => format!("unspecified data from {location}"),
    }
}

#[allow(clippy::too_many_arguments)]
fn execute(
    config: &TrainConfig,
    run: &Path,
    devices: &[Device],
    cache: &Path,
    state: Option<State>,
    cancel: &AtomicBool,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<SlideScore>, Error> {
    let first = devices.first().ok_or_else(|| Error::Config("no device".into()))?.clone();
    if devices.len() > 1 && config.accumulate > 1 {
        return Err(Error::Config("gradient accumulation with several devices is not supported: raise --batch instead".into()));
    }
    // Data.
    let mut entries = block_on(read_datasets(&config.data))?;
    if config.tiles.input_pixel_size_um.is_some() {
        block_on(resolve_pixel_sizes(&mut entries))?;
    }
    let held = held_out(&entries, config.folds, config.fold);
    let valid_ids: Vec<String> = entries.iter().zip(&held).filter(|(_, h)| **h).map(|(e, _)| e.id.clone()).collect();
    let train_ids: Vec<String> = entries.iter().zip(&held).filter(|(_, h)| !**h).map(|(e, _)| e.id.clone()).collect();
    let mut train_tiles = Tiles::default();
    let mut valid_tiles = Tiles::default();
    for (entry, &held) in entries.iter().zip(&held) {
        let mut tiles = block_on(slide_tiles(entry, &config.tiles, cache, &mut |done, total| {
            events(Event::Extracting { slide: &entry.id, done, total })
        }))?;
        tiles.meta.iter_mut().for_each(|m| m.dataset = entry.dataset);
        if held { valid_tiles.extend(tiles) } else { train_tiles.extend(tiles) }
    }
    let dataset_weights: Vec<f64> = config.data.iter().map(|d| d.weight).collect();
    let stain_reference = if config.stain_normalise { stain_reference(&train_tiles, config) } else { None };
    // The pixel size the manifest's `window` and `min_area` are given at: the first slide's.
    let reference_pixel_size = entries.first().and_then(|e| e.pixel_size_um);
    if train_tiles.is_empty() {
        return Err(Error::Data("no training tile has tissue or glomeruli".into()));
    }
    events(Event::Tiles {
        train: train_tiles.len(),
        valid: valid_tiles.len(),
        train_slides: train_ids.len(),
        valid_slides: valid_ids.len(),
    });

    // Model and optimiser, fresh or from the checkpoint.
    let train_device = first.clone().autodiff();
    let checkpoint = run.join("checkpoint");
    let mut state = state.unwrap_or_default();
    let mut model: SegmentationModel = if state.epoch > 0 {
        // The record keeps the parameters' ids, which key the optimiser's state.
        let path = checkpoint.join("train.bpk");
        config.model.init(&train_device).try_load_file(&path).map_err(|e| io_error(&path, format!("{e:?}")))?
    } else if let Some(init) = &config.init {
        start_from(init, &config.model, &train_device)?
    } else {
        seeded(config.model.init(&train_device), mix(config.seed ^ 0x5EED))
    };
    model = model.freeze_encoder(config.frozen_levels, config.frozen_norms);
    let encoder_params = model.encoder_params();
    let lr_of = |lr: f64| learning_rates(lr, config.encoder_lr, &encoder_params);
    let mut optim: ModuleOptimizer = AdamWConfig::new().with_weight_decay(config.weight_decay as f32).init();
    if state.epoch > 0 {
        optim = optim.load(checkpoint.join("optim.bpk")).map_err(|e| io_error(&checkpoint.join("optim.bpk"), format!("{e:?}")))?;
    }
    state.perfect.resize(train_tiles.len(), false);
    state.history.truncate(state.epoch);
    let samples = config.sampler.samples_per_epoch.unwrap_or(train_tiles.len());
    let per_step = config.batch * config.accumulate * devices.len();
    let steps_per_epoch = samples.div_ceil(per_step).max(1);
    let total_steps = steps_per_epoch * config.epochs;
    let warmup = (config.warmup_epochs * steps_per_epoch as f64).round() as usize;
    let data_label = block_on(describe_data(config, &entries));
    write_metrics(run, &state.history)?;

    for epoch in state.epoch..config.epochs {
        let started = Instant::now();
        let drop_active = config.sampler.drop_perfect_after.is_some_and(|after| epoch >= after);
        let dropped: Vec<bool> = if drop_active { state.perfect.clone() } else { Vec::new() };
        let mut order = epoch_order(&train_tiles, &config.sampler, &dropped, mix(config.seed ^ (epoch as u64 + 1)), &dataset_weights);
        if order.is_empty() {
            // Everything was learnt: fall back to every tile rather than stopping silently.
            order = epoch_order(&train_tiles, &config.sampler, &[], mix(config.seed ^ (epoch as u64 + 1)), &dataset_weights);
        }
        let (mut loss_sum, mut loss_n, mut counts) = (0.0, 0usize, [0f64; 3]);
        let mut lr = 0.0;
        let mut accumulator = GradientsAccumulator::<SegmentationModel>::new();
        let mut pending = 0;
        let mut images = 0usize;
        let batches: Vec<&[usize]> = order.chunks(config.batch * devices.len()).collect();
        let mut step_in_epoch = 0;
        for (b, chunk) in batches.iter().enumerate() {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let seed = mix(config.seed ^ mix(epoch as u64 * 1_000_003 + b as u64));
            let (x, y) = make_batch(&train_tiles, chunk, config, seed);
            let s = train_tiles.size as usize;
            let parts = chunk.len().div_ceil(devices.len());
            let mut multi = MultiGradientsParams::default();
            for (k, device) in devices.iter().enumerate() {
                let (lo, hi) = (k * parts, ((k + 1) * parts).min(chunk.len()));
                if lo >= hi {
                    continue;
                }
                let device = if k == 0 { train_device.clone() } else { device.clone().autodiff() };
                let local = if k == 0 { model.clone() } else { model.clone().fork(&device) };
                let xs = config.normaliser.input(&x[lo * 3 * s * s..hi * 3 * s * s], hi - lo, s, &device);
                let ys = Tensor::<4>::from_data(TensorData::new(y[lo * s * s..hi * s * s].to_vec(), [hi - lo, 1, s, s]), &device);
                let logits = local.forward(xs);
                let loss = config.loss.loss(logits.clone(), ys.clone());
                let (value, stats) = batch_stats(loss.clone(), logits, ys)?;
                loss_sum += value * (hi - lo) as f64;
                loss_n += hi - lo;
                for (j, st) in stats.iter().enumerate() {
                    counts[0] += st[0];
                    counts[1] += st[1];
                    counts[2] += st[2];
                    let perfect = if st[2] == 0.0 { st[1] == 0.0 } else { 2.0 * st[0] / (st[1] + st[2]) >= config.sampler.perfect_dice };
                    state.perfect[chunk[lo + j]] = perfect;
                }
                let grads = GradientsParams::from_grads(loss.backward(), &local);
                if devices.len() > 1 {
                    multi.grads.push((grads, device.clone()));
                } else {
                    accumulator.accumulate(&model, grads);
                }
            }
            images += chunk.len();
            pending += 1;
            if pending == config.accumulate || b + 1 == batches.len() {
                lr = learning_rate(config.schedule, config.lr, state.step, total_steps, warmup);
                model = if devices.len() > 1 {
                    optim.step_multi(lr_of(lr), model, multi)
                } else {
                    optim.step(lr_of(lr), model, accumulator.grads())
                };
                state.step += 1;
                step_in_epoch += 1;
                pending = 0;
                events(Event::Step {
                    epoch: epoch + 1,
                    step: step_in_epoch,
                    steps: steps_per_epoch,
                    loss: loss_sum / loss_n.max(1) as f64,
                    lr,
                    images_per_s: images as f64 / started.elapsed().as_secs_f64().max(1e-9),
                });
            }
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let (valid_loss, valid_dice) = if valid_tiles.is_empty() {
            (None, None)
        } else {
            let (l, d) = evaluate_tiles(&model.valid(), &valid_tiles, config, &first)?;
            (Some(l), Some(d))
        };
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            step: state.step,
            lr,
            train_loss: loss_sum / loss_n.max(1) as f64,
            train_dice: 2.0 * counts[0] / (counts[1] + counts[2]).max(1e-9),
            valid_loss,
            valid_dice,
            dropped: dropped.iter().filter(|&&d| d).count(),
            seconds: started.elapsed().as_secs_f64(),
            images_per_s: images as f64 / train_seconds.max(1e-9),
        };
        state.history.push(metrics.clone());
        state.epoch = epoch + 1;
        // Best model by held-out tile Dice (or the latest, without validation).
        let score = valid_dice.unwrap_or(metrics.train_dice);
        let mut manifest = manifest_for(config, &data_label, reference_pixel_size);
        manifest.stain_reference = stain_reference;
        if state.best.is_none_or(|best| score >= best) {
            state.best = Some(score);
            manifest.validation = format!(
                "epoch {}: tile Dice {score:.4} on {}",
                epoch + 1,
                if valid_dice.is_some() { "held-out slides" } else { "training tiles (no held-out fold)" }
            );
            folder::save(&model.valid(), &manifest, &run.join("best"))?;
        }
        save_checkpoint(run, &model, &optim, &state, &manifest)?;
        write_metrics(run, &state.history)?;
        events(Event::Epoch(&metrics));
    }

    // Whole-slide validation of the best model on the held-out slides.
    let mut scores = Vec::new();
    if config.slide_validation && !valid_ids.is_empty() {
        let (best, mut manifest) = folder::load(&run.join("best"), &first)?;
        let net = NetModel::new(best.clone(), &manifest, &first, Some(1)).map_err(|e| Error::Infer(e.to_string()))?;
        for entry in entries.iter().filter(|e| valid_ids.contains(&e.id)) {
            let score = score_slide(entry, &net, &manifest)?;
            events(Event::Slide(&score));
            scores.push(score);
        }
        let mean = scores.iter().map(|s| s.dice).sum::<f64>() / scores.len() as f64;
        let mut pooled = Scores::default();
        scores.iter().for_each(|s| pooled.add(&s.scores));
        let mut csv = String::from("id,dice,count,truth_count,matched,seconds\n");
        for s in &scores {
            csv.push_str(&format!("{},{:.6},{},{},{},{:.1}\n", s.id, s.dice, s.count, s.scores.truth_objects, s.scores.matched, s.seconds));
        }
        csv.push_str(&format!("mean,{mean:.6},,,,\n"));
        csv.push_str(&format!("pooled,{:.6},{},{},{},\n", pooled.dice(), pooled.predicted_objects, pooled.truth_objects, pooled.matched));
        write_atomic(&run.join("validation.csv"), csv.as_bytes())?;
        manifest.validation_dice = Some(pooled.dice());
        let list = if scores.len() <= 12 {
            format!(": {}", scores.iter().map(|s| format!("{} {:.4}", s.id, s.dice)).collect::<Vec<_>>().join(", "))
        } else {
            format!(" ({} … {})", scores[0].id, scores[scores.len() - 1].id)
        };
        manifest.validation = format!(
            "whole-image engine on {} held-out image(s) of fold {}/{} (contiguous blocks){list}: pooled Dice {:.4}, mean Dice {mean:.4}, \
             glomeruli found (IoU ≥ 0.5) {}/{} (recall {:.3}), precision {:.3}",
            scores.len(),
            config.fold,
            config.folds,
            pooled.dice(),
            pooled.matched,
            pooled.truth_objects,
            pooled.recall(),
            pooled.precision()
        );
        folder::save(&best, &manifest, &run.join("best"))?;
    }
    Ok(scores)
}

/// The manifest a model of this run is saved with: `window` and `min_area` at the reference pixel size.
/// The colour of the training tiles' tissue (datasets of glomeruli, not negatives), every fourth
/// tile: the reference stain normalisation matches slides to at inference.
fn stain_reference(tiles: &Tiles, config: &TrainConfig) -> Option<crate::model::LabStats> {
    let mut acc = crate::infer::LabAccumulator::default();
    let s = tiles.size;
    for i in (0..tiles.len()).step_by(4) {
        if config.data.get(tiles.meta[i].dataset).is_some_and(|d| !d.negative)
            && let Some(image) = RgbImage::from_raw(s, s, tiles.rgb(i).to_vec())
        {
            acc.add(&image);
        }
    }
    acc.stats()
}

fn manifest_for(config: &TrainConfig, data_label: &str, reference_pixel_size: Option<f64>) -> Manifest {
    let mut m = Manifest::new("model", config.model.clone()).with_pixel_size(config.tiles.input_pixel_size_um);
    m.window = config.tiles.window_for(reference_pixel_size).unwrap_or(config.tiles.window);
    m.overlap = Manifest::overlap_for(m.window);
    (m.mean, m.std) = (config.normaliser.mean, config.normaliser.std);
    m.threshold = config.threshold;
    m.min_area = config.min_area;
    m.max_area = config.max_area;
    m.trained_on = data_label.to_string();
    m.limits = config.limits.clone().unwrap_or_else(|| "not validated beyond its held-out data; research use, not for diagnosis".into());
    m.date = utc_now();
    m
}

/// Augmented 8-bit RGB tiles (one after another, for [`crate::model::Normaliser::input`]) and 0/1
/// targets `[n, 1, s, s]` of tiles `chunk`; each sample's augmentation seeded by its position, so
/// threads do not change the result.
fn make_batch(tiles: &Tiles, chunk: &[usize], config: &TrainConfig, seed: u64) -> (Vec<u8>, Vec<f32>) {
    let s = tiles.size;
    let samples: Vec<(Vec<u8>, Vec<f32>)> = chunk
        .par_iter()
        .enumerate()
        .map(|(k, &i)| {
            let image = RgbImage::from_raw(s, s, tiles.rgb(i).to_vec()).unwrap_or_else(|| RgbImage::new(s, s));
            let mask = GrayImage::from_raw(s, s, tiles.mask(i).iter().map(|&m| m * 255).collect()).unwrap_or_else(|| GrayImage::new(s, s));
            let mut rng = SplitMix64::new(mix(seed ^ (k as u64 + 1)));
            let (image, mask) = augment(&image, &mask, &config.augment, &mut rng);
            (image.into_raw(), mask.as_raw().iter().map(|&m| (m > 127) as u8 as f32).collect())
        })
        .collect();
    let n = (s * s) as usize;
    let mut x = Vec::with_capacity(chunk.len() * 3 * n);
    let mut y = Vec::with_capacity(chunk.len() * n);
    for (a, b) in samples {
        x.extend(a);
        y.extend(b);
    }
    (x, y)
}

/// The loss value and, per sample, [intersection, predicted, true] pixel counts at threshold 0.5.
fn batch_stats(loss: Tensor<1>, logits: Tensor<4>, targets: Tensor<4>) -> Result<(f64, Vec<[f64; 3]>), Error> {
    let [b, _, h, w] = logits.dims();
    let pred = logits.detach().greater_elem(0.0).float().reshape([b, h * w]);
    let truth = targets.reshape([b, h * w]);
    let stats = Tensor::cat(vec![(pred.clone() * truth.clone()).sum_dim(1), pred.sum_dim(1), truth.sum_dim(1)], 1);
    let backend = |e: burn::tensor::DataError| Error::Backend(format!("{e:?}"));
    let value = loss.detach().into_data().convert::<f32>().try_to_vec::<f32>().map_err(backend)?[0] as f64;
    if !value.is_finite() {
        return Err(Error::Backend(format!("the loss is {value}: lower the learning rate")));
    }
    let stats = stats.into_data().convert::<f32>().try_to_vec::<f32>().map_err(backend)?;
    Ok((value, stats.chunks(3).map(|c| [c[0] as f64, c[1] as f64, c[2] as f64]).collect()))
}

/// Mean loss and Dice over held-out tiles (no augmentation).
fn evaluate_tiles(model: &SegmentationModel, tiles: &Tiles, config: &TrainConfig, device: &Device) -> Result<(f64, f64), Error> {
    let plain = TrainConfig { augment: super::AugmentConfig::none(), ..config.clone() };
    let (mut loss, mut counts) = (0.0, [0f64; 3]);
    let all: Vec<usize> = (0..tiles.len()).collect();
    let s = tiles.size as usize;
    for chunk in all.chunks(config.batch) {
        let (x, y) = make_batch(tiles, chunk, &plain, 0);
        let xs = config.normaliser.input(&x, chunk.len(), s, device);
        let ys = Tensor::<4>::from_data(TensorData::new(y, [chunk.len(), 1, s, s]), device);
        let logits = model.forward(xs);
        let (value, stats) = batch_stats(config.loss.loss(logits.clone(), ys.clone()), logits, ys)?;
        loss += value * chunk.len() as f64;
        for st in stats {
            for k in 0..3 {
                counts[k] += st[k];
            }
        }
    }
    Ok((loss / tiles.len().max(1) as f64, 2.0 * counts[0] / (counts[1] + counts[2]).max(1e-9)))
}

/// One held-out slide through the whole-slide engine (at its pixel size), scored against its truth.
fn score_slide(entry: &SlideEntry, net: &NetModel, manifest: &Manifest) -> Result<SlideScore, Error> {
    let started = Instant::now();
    let error = |e: &dyn std::fmt::Display| Error::Infer(format!("{}: {e}", entry.id));
    let slide = block_on(Slide::open_location(&entry.location, SlideOptions::one_pass().with_pixel_size_um(entry.pixel_size_um)))
        .map_err(|e| error(&e))?;
    let wsi = WsiConfig::for_model(manifest, slide.pixel_size_um());
    let prediction = block_on(predict_slide(&slide, net, &wsi, &AtomicBool::new(false), &mut |_, _| {})).map_err(|e| error(&e))?;
    let count = prediction.glomeruli(wsi.objects()).len();
    let rle = prediction.rle(wsi.objects());
    let objects = (!entry.objects.is_empty()).then_some(entry.objects.as_slice());
    let (width, height) = slide.dimensions();
    let scores = score_rle(&entry.rle, objects, &rle, width, height).map_err(|e| error(&e))?;
    Ok(SlideScore { id: entry.id.clone(), dice: scores.dice(), count, scores, seconds: started.elapsed().as_secs_f64() })
}

/// Writes the checkpoint into `checkpoint.partial/`, then swaps it in.
fn save_checkpoint(
    run: &Path,
    model: &SegmentationModel,
    optim: &ModuleOptimizer,
    state: &State,
    manifest: &Manifest,
) -> Result<(), Error> {
    let partial = run.join("checkpoint.partial");
    let _ = std::fs::remove_dir_all(&partial);
    folder::save(&model.valid(), manifest, &partial)?;
    model.clone().save_file(partial.join("train.bpk")).map_err(|e| io_error(&partial.join("train.bpk"), format!("{e:?}")))?;
    optim.save(partial.join("optim.bpk")).map_err(|e| io_error(&partial.join("optim.bpk"), format!("{e:?}")))?;
    let json = serde_json::to_vec(state).map_err(|e| Error::Io(e.to_string()))?;
    std::fs::write(partial.join("state.json"), json).map_err(|e| io_error(&partial, e))?;
    let target = run.join("checkpoint");
    let old = run.join("checkpoint.old");
    let _ = std::fs::remove_dir_all(&old);
    if target.exists() {
        std::fs::rename(&target, &old).map_err(|e| io_error(&target, e))?;
    }
    std::fs::rename(&partial, &target).map_err(|e| io_error(&target, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// metrics.csv and the three curves.
fn write_metrics(run: &Path, history: &[EpochMetrics]) -> Result<(), Error> {
    let opt = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
    let mut csv = String::from("epoch,step,lr,train_loss,train_dice,valid_loss,valid_dice,dropped_tiles,seconds,images_per_s\n");
    for m in history {
        csv.push_str(&format!(
            "{},{},{:.6e},{:.6},{:.6},{},{},{},{:.1},{:.2}\n",
            m.epoch,
            m.step,
            m.lr,
            m.train_loss,
            m.train_dice,
            opt(m.valid_loss),
            opt(m.valid_dice),
            m.dropped,
            m.seconds,
            m.images_per_s
        ));
    }
    write_atomic(&run.join("metrics.csv"), csv.as_bytes())?;
    if history.is_empty() {
        return Ok(());
    }
    let points =
        |f: &dyn Fn(&EpochMetrics) -> Option<f64>| history.iter().filter_map(|m| f(m).map(|v| (m.epoch as f64, v))).collect::<Vec<_>>();
    let (tl, vl) = (points(&|m| Some(m.train_loss)), points(&|m| m.valid_loss));
    let (td, vd) = (points(&|m| Some(m.train_dice)), points(&|m| m.valid_dice));
    let lr = points(&|m| Some(m.lr));
    let chart = |name: &str, title: &str, series: &[Series<'_>], unit: bool| {
        line_chart(&run.join(name), title, "epoch", series, unit).map_err(|e| Error::Io(format!("{name}: {e}")))
    };
    chart("loss.png", "loss", &[Series { name: "train", points: &tl }, Series { name: "held-out", points: &vl }], false)?;
    chart("dice.png", "tile Dice", &[Series { name: "train", points: &td }, Series { name: "held-out", points: &vd }], true)?;
    chart("lr.png", "learning rate", &[Series { name: "lr", points: &lr }], false)
}

/// `ftuscope export RUN --out DIR`: the run's best model (its final checkpoint when there is no
/// best/) as a model folder, f32 or f16, with the manifest filled in.
pub fn export(run: &Path, out: &Path, name: &str, f16: bool) -> Result<Manifest, Error> {
    let source = if run.join("best/model.bpk").exists() { run.join("best") } else { run.join("checkpoint") };
    let (model, mut manifest) =
        folder::load(&source, &Device::flex()).map_err(|e| Error::Io(format!("{e} (is {} a training run?)", run.display())))?;
    manifest.name = name.to_string();
    manifest.precision = if f16 { Precision::F16 } else { Precision::F32 };
    manifest.date = utc_now();
    folder::save(&model, &manifest, out)?;
    Ok(manifest)
}

/// The current UTC time as ISO 8601 (civil-from-days, no time-zone crate needed).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;

//! `ftuscope train` and `ftuscope export` (feature `train`): argument parsing into a
//! [`TrainConfig`], progress bars, and the run folder's summary.

use crate::args::{LossTerm, LrSchedule, parse_loss_term};
use anyhow::anyhow;
use clap::Args;
use ftuscope::backend::DeviceChoice;
use std::path::PathBuf;
use std::str::FromStr;

/// Options of `ftuscope train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// A dataset: `LOCATION[,pixel-size=UM][,weight=W][,negative]`, repeatable. LOCATION is the
    /// Kaggle HuBMAP layout (train.csv, train/<id>.tiff; a folder or an http(s) URL) or a folder of
    /// images (PNG/JPEG/TIFF) each with LabelMe JSON, GeoJSON or a mask PNG. `pixel-size` (µm/px)
    /// is needed when the files record none; `weight` is the dataset's share of the draws [1];
    /// `negative` marks a folder of images with no glomerulus (other organs, non-kidney tissue),
    /// read without annotation files.
    #[arg(long, required_unless_present = "resume")]
    pub data: Vec<String>,
    /// Run folder (config.json, metrics.csv, curves, checkpoint/, best/, validation.csv).
    #[arg(long, required_unless_present = "resume")]
    pub run: Option<PathBuf>,
    /// Continue the run in this folder from its last finished epoch (its own config is used).
    #[arg(long, conflicts_with_all = ["data", "run", "config"])]
    pub resume: Option<PathBuf>,
    /// A config.json (TrainConfig) to start from; the options below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Network: unet-efficientnet-b0, fpn-resnet34, unet-scse-efficientnet-b4, unet-tiny…
    #[arg(long)]
    pub arch: Option<String>,
    /// Widths of the tiny encoder's five stages, e.g. 16,24,32,48,64.
    #[arg(long, value_delimiter = ',')]
    pub tiny_widths: Option<Vec<usize>>,
    /// U-Net decoder channels, deepest first, e.g. 64,48,32,24,16.
    #[arg(long, value_delimiter = ',')]
    pub decoder_channels: Option<Vec<usize>>,
    /// Window side in level-0 pixels [default 1536] (ignored with --input-pixel-size).
    #[arg(long)]
    pub window: Option<u32>,
    /// µm per network input pixel, e.g. 2: windows cover --size × this many µm on every slide,
    /// resampled by each slide's pixel size (recorded in the exported manifest).
    #[arg(long)]
    pub input_pixel_size: Option<f64>,
    /// Smallest object kept at inference, level-0 pixels² at the first dataset's pixel size [default 2000].
    #[arg(long)]
    pub min_area: Option<f64>,
    /// Largest object kept at inference, level-0 pixels² at the same scale [default: no bound].
    #[arg(long)]
    pub max_area: Option<f64>,
    /// Stain variation in optical density: gain 1 ± S and shift ± S per channel [default 0.05].
    #[arg(long)]
    pub stain: Option<f64>,
    /// Largest |scale − 1| of the shift/scale/rotate warp [default 0.1].
    #[arg(long)]
    pub scale_jitter: Option<f64>,
    /// Probability of a JPEG round trip (quality 40–95) [default 0.2].
    #[arg(long)]
    pub p_jpeg: Option<f64>,
    /// Network input side each window is resized to [default 512].
    #[arg(long)]
    pub size: Option<u32>,
    /// Overlap between training windows, level-0 pixels [default 0].
    #[arg(long)]
    pub tile_overlap: Option<u32>,
    /// Epochs [default 20].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Tiles per forward pass and device [default 8].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Gradient accumulation: forward passes per optimiser step [default 1].
    #[arg(long)]
    pub accumulate: Option<usize>,
    /// Peak learning rate [default 1e-3].
    #[arg(long)]
    pub lr: Option<f64>,
    /// AdamW weight decay [default 1e-2].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule [default cosine].
    #[arg(long, value_enum)]
    pub schedule: Option<LrSchedule>,
    /// Warm-up epochs [default 1].
    #[arg(long)]
    pub warmup_epochs: Option<f64>,
    /// Loss terms, e.g. bce:1,dice:1 (the seed), wbce:1,lovasz:0.5, focal:1,gamma:2; a term not
    /// named gets weight 0.
    #[arg(long, value_name = "NAME:WEIGHT", value_delimiter = ',', value_parser = parse_loss_term)]
    pub loss: Option<Vec<LossTerm>>,
    /// K-fold split by slide [default 4; 1 = no validation].
    #[arg(long)]
    pub folds: Option<usize>,
    /// Held-out fold [default 0].
    #[arg(long)]
    pub fold: Option<usize>,
    /// Seed of weights, sampling and augmentation [default 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Tiles drawn per epoch [default: all tiles].
    #[arg(long)]
    pub samples_per_epoch: Option<usize>,
    /// Weight of tiles with glomeruli [default 3].
    #[arg(long)]
    pub glomerulus_weight: Option<f64>,
    /// Weight of cortex tiles (anatomy JSON) [default 2].
    #[arg(long)]
    pub cortex_weight: Option<f64>,
    /// The seed's filter: from this epoch on, skip tiles predicted perfectly at their last visit.
    #[arg(long)]
    pub drop_perfect_after: Option<usize>,
    /// No augmentation.
    #[arg(long)]
    pub no_augment: bool,
    /// Skip the final whole-slide Dice on the held-out slides.
    #[arg(long)]
    pub no_slide_validation: bool,
    /// What the data is, for the exported manifest [default: detected for synthetic sets].
    #[arg(long)]
    pub trained_on: Option<String>,
    /// What the model was not validated on and must not be used for, for the manifest's model card.
    #[arg(long)]
    pub limits: Option<String>,
    /// Start from this model folder's weights (fine-tuning, e.g. `www/models/fast` on your own
    /// annotated tiles) instead of random ones; the network options must match the folder's.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Fine-tuning: the encoder's learning rate as a fraction of --lr, e.g. 0.1 for a pretrained
    /// encoder (`import --encoder-only`, then --init) [default 1].
    #[arg(long)]
    pub encoder_lr: Option<f64>,
    /// Fine-tuning: keep the encoder's first N feature levels frozen (0–5: the stride-2 stem,
    /// then the stages ending at strides 4…32) [default 0].
    #[arg(long)]
    pub frozen_levels: Option<usize>,
    /// Fine-tuning: the encoder's batch norms normalise with their running statistics (a
    /// pretrained encoder's) instead of each batch's.
    #[arg(long)]
    pub frozen_norms: bool,
    /// Stain normalisation: the model records the training tiles' colours and matches every
    /// slide's to them at inference (`predict`/`eval --stain-reference none` turns it off).
    #[arg(long)]
    pub stain_normalise: bool,
    /// Probability of restaining a training tile in the colours of another stain of kidney (H&E,
    /// another lab's PAS, Jones silver, Sirius red) [default 0].
    #[arg(long)]
    pub restain: Option<f64>,
    /// Compute device: cpu, wgpu or cuda.
    #[arg(long, default_value = "cpu", value_parser = DeviceChoice::from_str)]
    pub device: DeviceChoice,
    /// Data-parallel training over this many devices of that kind (CUDA: 0…N−1).
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
    /// Tile cache folder [default: ~/.cache/ftuscope/tiles].
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Time box for this invocation, in minutes (tile extraction included): no epoch starts that
    /// would end past it (judged by the last epoch's length). The run stops cleanly at an epoch's
    /// end with its checkpoint, says how to continue (`--resume RUN`) and exits with code 3.
    #[arg(long, value_parser = positive_minutes)]
    pub max_minutes: Option<f64>,
}

#[cfg(feature = "train")]
pub fn train(args: TrainArgs) -> anyhow::Result<()> {
    use burn::config::Config;
    use ftuscope::backend::select_devices;
    use ftuscope::model::SegmenterConfig;
    use ftuscope::train::{AugmentConfig, DatasetConfig, Event, TrainConfig, resume, train};
    use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
    use std::sync::atomic::{AtomicBool, Ordering};

    let (devices, info) = select_devices(args.device, args.devices)?;
    let started = std::time::Instant::now();
    // Set when the next epoch would end past --max-minutes: the run then stops before its first
    // batch (as a cancel does), right after the epoch's checkpoint.
    let stop = AtomicBool::new(false);
    let last_epoch = std::sync::atomic::AtomicUsize::new(0);
    let cache = args.cache.clone().unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
        home.join(".cache/ftuscope/tiles")
    });
    let bars = MultiProgress::new();
    let style = |t: &str| ProgressStyle::with_template(t).map(|s| s.progress_chars("=> ")).map_err(|e| anyhow!(e));
    let extract_bar = bars
        .add(ProgressBar::new(0).with_style(style("{prefix:>12} [{bar:30}] {pos}/{len} windows, tiles cut once and cached, ETA {eta}")?));
    let epoch_bar = bars.add(ProgressBar::new(0).with_style(style("{prefix:>12} [{bar:30}] {pos}/{len} steps {msg} ETA {eta}")?));
    let mut events = |event: Event<'_>| match event {
        Event::Extracting { slide, done, total } => {
            extract_bar.set_prefix(slide.to_string());
            extract_bar.set_length(total as u64);
            extract_bar.set_position(done as u64);
        }
        Event::Tiles { train, valid, train_slides, valid_slides } => {
            extract_bar.finish_and_clear();
            say(&bars, format!("tiles: {train} for training from {train_slides} slides, {valid} held out from {valid_slides}"));
        }
        Event::Step { epoch, step, steps, loss, lr, images_per_s } => {
            epoch_bar.set_prefix(format!("epoch {epoch}"));
            epoch_bar.set_length(steps as u64);
            epoch_bar.set_position(step as u64);
            epoch_bar.set_message(format!("loss {loss:.4} lr {lr:.2e} {images_per_s:.1} img/s"));
        }
        Event::Epoch(m) => {
            last_epoch.store(m.epoch, Ordering::Relaxed);
            if let Some(minutes) = args.max_minutes
                && started.elapsed().as_secs_f64() + m.seconds > minutes * 60.0
            {
                stop.store(true, Ordering::Relaxed);
            }
            let valid = match (m.valid_loss, m.valid_dice) {
                (Some(l), Some(d)) => format!(", held-out loss {l:.4} Dice {d:.4}"),
                _ => String::new(),
            };
            say(
                &bars,
                format!(
                    "epoch {:>3}: loss {:.4} Dice {:.4}{valid}, lr {:.2e}, {:.1} img/s, {:.0} s{}",
                    m.epoch,
                    m.train_loss,
                    m.train_dice,
                    m.lr,
                    m.images_per_s,
                    m.seconds,
                    if m.dropped > 0 { format!(", {} tiles dropped", m.dropped) } else { String::new() }
                ),
            );
        }
        Event::Slide(s) => {
            let objects = format!("{} glomeruli ({} of {} true found)", s.count, s.scores.matched, s.scores.truth_objects);
            say(&bars, format!("held-out {}: Dice {:.4}, {objects}, {:.0} s", s.id, s.dice, s.seconds));
        }
    };
    println!("device: {} [{}] × {}", info.backend, info.adapter, devices.len());
    let (run, scores) = if let Some(run) = &args.resume {
        let result = resume(run, &devices, &cache, &stop, &mut events);
        (run.clone(), time_boxed(result, run, &last_epoch, args.max_minutes)?)
    } else {
        let data = args
            .data
            .iter()
            .map(|spec| DatasetConfig::parse(spec).map_err(|e| anyhow!("--data {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let run = args.run.clone().unwrap_or_default();
        let mut config = match &args.config {
            Some(path) => TrainConfig::load(path).map_err(|e| anyhow!("{}: {e}", path.display()))?,
            None => TrainConfig::new(data.clone(), SegmenterConfig::from_arch("unet-efficientnet-b0").map_err(|e| anyhow!(e))?),
        };
        config.data = data;
        if let Some(arch) = &args.arch {
            let input_size = config.model.input_size;
            config.model = SegmenterConfig::from_arch(arch).map_err(|e| anyhow!(e))?.with_input_size(input_size);
        }
        if let Some(w) = &args.tiny_widths {
            config.model.tiny_widths = w.as_slice().try_into().map_err(|_| anyhow!("--tiny-widths needs five numbers"))?;
        }
        if let Some(d) = &args.decoder_channels {
            config.model.decoder_channels = d.clone();
        }
        if let Some(size) = args.size {
            config.tiles.size = size;
            config.model.input_size = size as usize;
        }
        macro_rules! set {
            ($($field:expr => $value:expr),*) => { $(if let Some(v) = $value { $field = v; })* };
        }
        set!(config.tiles.window => args.window, config.tiles.overlap => args.tile_overlap, config.epochs => args.epochs,
             config.batch => args.batch, config.accumulate => args.accumulate, config.lr => args.lr,
             config.weight_decay => args.weight_decay, config.warmup_epochs => args.warmup_epochs,
             config.folds => args.folds, config.fold => args.fold, config.seed => args.seed,
             config.sampler.glomerulus_weight => args.glomerulus_weight, config.sampler.cortex_weight => args.cortex_weight,
             config.min_area => args.min_area, config.augment.stain => args.stain, config.augment.scale => args.scale_jitter,
             config.augment.p_jpeg => args.p_jpeg, config.encoder_lr => args.encoder_lr, config.augment.p_restain => args.restain,
             config.frozen_levels => args.frozen_levels);
        config.frozen_norms |= args.frozen_norms;
        config.stain_normalise |= args.stain_normalise;
        if args.max_area.is_some() {
            config.max_area = args.max_area;
        }
        if args.input_pixel_size.is_some() {
            config.tiles.input_pixel_size_um = args.input_pixel_size;
        }
        if args.samples_per_epoch.is_some() {
            config.sampler.samples_per_epoch = args.samples_per_epoch;
        }
        if args.drop_perfect_after.is_some() {
            config.sampler.drop_perfect_after = args.drop_perfect_after;
        }
        if let Some(schedule) = args.schedule {
            config.schedule = schedule_of(schedule);
        }
        if let Some(terms) = &args.loss {
            config.loss = loss_config(terms)?;
        }
        if args.no_augment {
            config.augment = AugmentConfig::none();
        }
        if args.no_slide_validation {
            config.slide_validation = false;
        }
        if args.trained_on.is_some() {
            config.trained_on = args.trained_on.clone();
        }
        if args.limits.is_some() {
            config.limits = args.limits.clone();
        }
        if let Some(init) = &args.init {
            config.init = Some(init.display().to_string());
        }
        let scale = match config.tiles.input_pixel_size_um {
            Some(p) => format!("{:.0} µm → {} px ({p} µm/px)", p * config.tiles.size as f64, config.tiles.size),
            None => format!("{}→{} px", config.tiles.window, config.tiles.size),
        };
        println!("training {} at {scale} for {} epochs into {}", config.model.arch(), config.epochs, run.display());
        let result = train(config, &run, &devices, &cache, &stop, &mut events);
        (run.clone(), time_boxed(result, &run, &last_epoch, args.max_minutes)?)
    };
    epoch_bar.finish_and_clear();
    if !scores.is_empty() {
        let mean = scores.iter().map(|s| s.dice).sum::<f64>() / scores.len() as f64;
        let mut pooled = ftuscope::mask::Scores::default();
        scores.iter().for_each(|s| pooled.add(&s.scores));
        println!(
            "held-out (whole-image engine, {} images): pooled Dice {:.4}, mean Dice {mean:.4}, glomeruli found {}/{} (recall {:.3}), precision {:.3} → {}",
            scores.len(),
            pooled.dice(),
            pooled.matched,
            pooled.truth_objects,
            pooled.recall(),
            pooled.precision(),
            run.join("validation.csv").display()
        );
    }
    println!(
        "run: {} (metrics.csv, loss.png, dice.png, lr.png, best/); export with: ftuscope export {} --out DIR",
        run.display(),
        run.display()
    );
    Ok(())
}

/// The library's schedule for a `--schedule` name.
#[cfg(feature = "train")]
fn schedule_of(schedule: LrSchedule) -> ftuscope::train::Schedule {
    use ftuscope::train::Schedule;
    match schedule {
        LrSchedule::Cosine => Schedule::Cosine,
        LrSchedule::OneCycle => Schedule::OneCycle,
        LrSchedule::Constant => Schedule::Constant,
    }
}

/// The loss that `--loss` terms describe, applied in order: only the terms named count.
#[cfg(feature = "train")]
fn loss_config(terms: &[LossTerm]) -> anyhow::Result<ftuscope::train::LossConfig> {
    use crate::args::LossName;
    let mut config = ftuscope::train::LossConfig::new().with_bce(0.0).with_dice(0.0);
    for &LossTerm { name, weight } in terms {
        match name {
            LossName::Bce => config.bce = weight,
            LossName::Wbce => {
                config.bce = weight;
                // Weighted BCE: positives count 3× unless pos_weight was set already.
                if config.pos_weight == 1.0 {
                    config.pos_weight = 3.0;
                }
            }
            LossName::PosWeight => config.pos_weight = weight,
            LossName::Dice => config.dice = weight,
            LossName::Focal => config.focal = weight,
            LossName::Gamma => config.focal_gamma = weight,
            LossName::Lovasz => config.lovasz = weight,
        }
    }
    if config.bce + config.dice + config.focal + config.lovasz <= 0.0 {
        return Err(anyhow!("--loss: every term has weight 0"));
    }
    Ok(config)
}

/// `--max-minutes`: a positive number of minutes.
fn positive_minutes(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(m) if m > 0.0 && m.is_finite() => Ok(m),
        _ => Err(format!("'{s}' is not a positive number of minutes")),
    }
}

/// A run stopped by `--max-minutes` before its last epoch: its checkpoint is kept and `--resume`
/// continues it. The command line exits with [`Unfinished::EXIT_CODE`].
#[derive(Debug)]
pub struct Unfinished {
    /// The run folder.
    pub run: PathBuf,
    /// Epochs finished, and planned.
    pub epochs: (usize, usize),
    /// The time box, minutes.
    pub minutes: f64,
}

impl Unfinished {
    /// The exit code of a time-boxed run that has epochs left.
    pub const EXIT_CODE: u8 = 3;
}

impl std::fmt::Display for Unfinished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped at the {} min time box after epoch {} of {}, checkpoint kept: continue with `ftuscope train --resume {}`",
            self.minutes,
            self.epochs.0,
            self.epochs.1,
            self.run.display()
        )
    }
}

impl std::error::Error for Unfinished {}

/// A run's result, where a stop by the time box (a cancel with `--max-minutes` given) becomes
/// [`Unfinished`] with the epochs done and planned (from the run's config.json).
#[cfg(feature = "train")]
fn time_boxed(
    result: Result<Vec<ftuscope::train::SlideScore>, ftuscope::train::Error>,
    run: &std::path::Path,
    last_epoch: &std::sync::atomic::AtomicUsize,
    max_minutes: Option<f64>,
) -> anyhow::Result<Vec<ftuscope::train::SlideScore>> {
    use burn::config::Config;
    match (result, max_minutes) {
        (Err(ftuscope::train::Error::Cancelled), Some(minutes)) => {
            let planned = ftuscope::train::TrainConfig::load(run.join("config.json")).map(|c| c.epochs).unwrap_or(0);
            let done = last_epoch.load(std::sync::atomic::Ordering::Relaxed);
            Err(Unfinished { run: run.to_path_buf(), epochs: (done, planned), minutes }.into())
        }
        (result, _) => Ok(result?),
    }
}

/// A line above the progress bars, or on stderr when they are hidden (not a terminal).
#[cfg(feature = "train")]
fn say(bars: &indicatif::MultiProgress, line: String) {
    if bars.is_hidden() {
        println!("{line}");
    } else {
        let _ = bars.println(line);
    }
}

#[cfg(not(feature = "train"))]
pub fn train(_: TrainArgs) -> anyhow::Result<()> {
    Err(anyhow!("this ftuscope was built without training: rebuild with `cargo build --release --features train`"))
}

#[cfg(feature = "train")]
pub fn export(run: &std::path::Path, out: &std::path::Path, name: &str, f16: bool) -> anyhow::Result<()> {
    let m = ftuscope::train::export(run, out, name, f16)?;
    let size = std::fs::metadata(out.join("model.bpk")).map(|m| m.len()).unwrap_or(0);
    println!(
        "{} → {} ({}, {:.2} MB, {}; trained on {}; validation Dice {})",
        run.display(),
        out.display(),
        m.model.arch(),
        size as f64 / 1e6,
        m.precision,
        m.trained_on,
        m.validation_dice.map(|d| format!("{d:.4}")).unwrap_or_else(|| "not measured".into())
    );
    Ok(())
}

#[cfg(not(feature = "train"))]
pub fn export(_: &std::path::Path, _: &std::path::Path, _: &str, _: bool) -> anyhow::Result<()> {
    Err(anyhow!("this ftuscope was built without training: rebuild with `cargo build --release --features train`"))
}

/// `ftuscope bench train`.
#[cfg(feature = "train")]
pub fn bench(
    arch: &str,
    model: Option<&std::path::Path>,
    size: usize,
    batch: usize,
    steps: usize,
    device: DeviceChoice,
    frozen: (usize, bool),
) -> anyhow::Result<()> {
    use ftuscope::backend::select_device;
    use ftuscope::model::{Manifest, SegmenterConfig};
    let (device, info) = select_device(device)?;
    let config = match model {
        Some(dir) => {
            let text = std::fs::read_to_string(dir.join("model.json")).map_err(|e| anyhow!("{}: {e}", dir.join("model.json").display()))?;
            Manifest::from_json(&text).map_err(|e| anyhow!(e))?.model
        }
        None => SegmenterConfig::from_arch(arch).map_err(|e| anyhow!(e))?,
    }
    .with_input_size(size);
    let report = ftuscope::train::bench_train(&config, &device, batch, steps, frozen.0, frozen.1)?;
    let mut json = serde_json::to_value(&report)?;
    json["device"] = serde_json::json!(format!("{} [{}]", info.backend, info.adapter));
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

#[cfg(not(feature = "train"))]
pub fn bench(_: &str, _: Option<&std::path::Path>, _: usize, _: usize, _: usize, _: DeviceChoice, _: (usize, bool)) -> anyhow::Result<()> {
    Err(anyhow!("this ftuscope was built without training: rebuild with `cargo build --release --features train`"))
}

#[cfg(all(test, feature = "train"))]
mod tests {
    use super::*;

    fn loss(spec: &str) -> anyhow::Result<ftuscope::train::LossConfig> {
        let terms: Vec<LossTerm> = spec.split(',').map(parse_loss_term).collect::<Result<_, _>>().map_err(|e| anyhow!(e))?;
        loss_config(&terms)
    }

    #[test]
    fn loss_terms_make_the_loss_config() {
        let c = loss("wbce:1, lovasz:0.5, gamma:3").unwrap();
        assert_eq!((c.bce, c.pos_weight, c.lovasz, c.dice, c.focal_gamma), (1.0, 3.0, 0.5, 0.0, 3.0));
        let c = loss("pos_weight:2,wbce:1,focal").unwrap();
        assert_eq!((c.bce, c.pos_weight, c.focal, c.dice), (1.0, 2.0, 1.0, 0.0));
        assert_eq!(loss("bce:0.5,dice:2").unwrap(), ftuscope::train::LossConfig::new().with_bce(0.5).with_dice(2.0));
        for bad in ["bce:x", "bce:-1", "huber:1", "bce:0", "", "gamma:2"] {
            assert!(loss(bad).is_err(), "{bad}");
        }
        assert_eq!(loss("bce:0,dice:0").unwrap_err().to_string(), "--loss: every term has weight 0");
    }

    #[test]
    fn schedules_map_onto_the_library() {
        use ftuscope::train::Schedule;
        assert_eq!(schedule_of(LrSchedule::OneCycle), Schedule::OneCycle);
        assert_eq!(schedule_of(LrSchedule::Cosine), Schedule::Cosine);
        assert_eq!(schedule_of(LrSchedule::Constant), Schedule::Constant);
    }
}

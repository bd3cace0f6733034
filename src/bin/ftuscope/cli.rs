//! Argument parsing and the subcommands. Errors are printed as one line and exit with code 2.

use crate::args::{Blending, Compression, Rect, Shard, parse_pixel_size, parse_rect, parse_shard, parse_size, parse_tta};
use crate::output::save_png;
use anyhow::anyhow;
use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use ftuscope::backend::DeviceChoice;
use ftuscope::slide::{Slide, SlideOptions};
use ftuscope::synth::{DatasetOptions, write_dataset};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Instant;

use futures_lite::future::block_on as block;

/// Finds glomeruli in kidney histology images.
#[derive(Parser, Debug)]
#[command(name = "ftuscope", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// Whole-slide inference on one slide without writing outputs: prints the time split (plan,
    /// read/decode, resize, model, blend, post-processing) and window counts as JSON.
    Infer {
        /// Path or URL.
        slide: String,
        /// Model folder or `untrained:ARCH`.
        #[arg(long, default_value = "untrained:unet-tiny")]
        model: String,
        /// Compute device: cpu, wgpu or cuda.
        #[arg(long, default_value = "cpu", value_parser = DeviceChoice::from_str)]
        device: DeviceChoice,
        /// Windows per forward pass.
        #[arg(long, default_value_t = 4)]
        batch: usize,
        /// Batches in flight, each on its own thread: the slide is run once per value given, and
        /// the speed-up over the first is reported.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        threads: Vec<usize>,
    },
    /// The network alone (no slide): milliseconds per forward pass, first and warm, with batch
    /// norms folded as the engine runs it and unfolded; JSON. The ftuscope side of `make bench-peers`.
    Forward {
        /// Model folder or `untrained:ARCH`.
        #[arg(long, default_value = "untrained:unet-efficientnet-b0")]
        model: String,
        /// A PyTorch state dict (.pth or .safetensors, smp names) to load into the network first.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Input side.
        #[arg(long, default_value_t = 512)]
        size: usize,
        /// Windows per pass.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Timed passes after the first (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// The input as little-endian f32 [batch, 3, size, size] (default: seeded values).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Write the logits (f32 LE) here.
        #[arg(long)]
        logits: Option<PathBuf>,
        /// Compute device: cpu, wgpu or cuda.
        #[arg(long, default_value = "cpu", value_parser = DeviceChoice::from_str)]
        device: DeviceChoice,
    },
    /// Training throughput (needs the `train` feature): AdamW steps of a network on synthetic
    /// tiles held in memory; prints images/s and the loss of each step as JSON.
    Train {
        /// Network, e.g. unet-efficientnet-b0 (or take the network of --model).
        #[arg(long, default_value = "unet-efficientnet-b0")]
        arch: String,
        /// A model folder whose network to time instead of --arch.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Input side.
        #[arg(long, default_value_t = 512)]
        size: usize,
        /// Images per step.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Timed steps (after one warm-up step).
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Compute device: cpu, wgpu or cuda.
        #[arg(long, default_value = "cpu", value_parser = DeviceChoice::from_str)]
        device: DeviceChoice,
        /// Fine-tuning as `train --frozen-levels`: the encoder's first N feature levels frozen.
        #[arg(long, default_value_t = 0)]
        frozen_levels: usize,
        /// Fine-tuning as `train --frozen-norms`: the encoder's batch norms on running statistics.
        #[arg(long)]
        frozen_norms: bool,
    },
    /// Read a whole level in 1024² regions through an empty cache; print decoded MB/s.
    Read {
        /// Path or URL.
        slide: String,
        /// Level to read.
        #[arg(long, default_value_t = 0)]
        level: usize,
        /// Decoding threads (0 = all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Segment one PNG/JPEG image with a model: the image runs through the whole-slide engine as a
    /// one-level slide; writes the glomerulus probabilities as a grey PNG of the image's size
    /// (0 = none, 255 = certain) and prints the glomeruli found.
    Segment {
        /// The image to segment (PNG or JPEG).
        image: PathBuf,
        /// A model folder (model.json + model.bpk), e.g. www/models/fast, or `untrained:ARCH`.
        #[arg(long)]
        model: String,
        /// Where to write the probability PNG.
        #[arg(long)]
        out: PathBuf,
        /// Also write the image with the glomeruli overlaid (PNG).
        #[arg(long)]
        overlay: Option<PathBuf>,
        /// Compute device: cpu, wgpu (needs the `wgpu` feature) or cuda (needs `cuda`).
        #[arg(long, default_value = "cpu", value_parser = DeviceChoice::from_str)]
        device: DeviceChoice,
        /// Windows per forward pass.
        #[arg(long, default_value_t = 4)]
        batch: usize,
        /// Flip test-time augmentation: 1, 2, 4 or 8 views [default: the model's manifest].
        #[arg(long, value_parser = parse_tta)]
        tta: Option<u8>,
        /// Probability threshold for glomeruli and the overlay [default: the model's manifest].
        #[arg(long)]
        threshold: Option<f32>,
        /// µm per pixel of the image (PNG/JPEG record none) [default: the file's, else the model's].
        #[arg(long, value_parser = parse_pixel_size)]
        pixel_size: Option<f64>,
    },
    /// Describe a slide (TIFF, BigTIFF, OME-TIFF, SVS; a path or an http(s) URL) as JSON: format,
    /// levels, tile sizes, compression, pixel size, associated images. Reads only the metadata.
    Info {
        /// Path or URL.
        slide: String,
    },
    /// Read one region of a slide and write it as PNG (outside the image is white).
    Region {
        /// Path or URL.
        slide: String,
        /// Pyramid level (0 = full resolution).
        #[arg(long, default_value_t = 0)]
        level: usize,
        /// X,Y,W,H in that level's pixels (X and Y may be negative).
        #[arg(long, value_name = "X,Y,W,H", value_parser = parse_rect, allow_hyphen_values = true)]
        rect: Rect,
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the slide's thumbnail, or one associated image (label, macro), as PNG. Flat slides get
    /// overview levels first (one pass over the image).
    Thumbnail {
        /// Path or URL.
        slide: String,
        /// Longer side in pixels.
        #[arg(long, default_value_t = 1024)]
        size: u32,
        /// An associated image's name instead (see `info`).
        #[arg(long)]
        associated: Option<String>,
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
    },
    /// Import PyTorch weights (a whole segmentation_models_pytorch U-Net/FPN state dict, or timm /
    /// torchvision ImageNet encoder weights with --encoder-only) into OUT/model.bpk + OUT/model.json.
    Import {
        /// A .pth/.pt (PyTorch) or .safetensors file.
        #[arg(long)]
        from: PathBuf,
        /// The network: unet-efficientnet-b0…b7, unet-scse-efficientnet-bN, fpn-efficientnet-bN,
        /// unet-resnet34, unet-resnet50, fpn-resnet34/50, unet-tiny.
        #[arg(long, required_unless_present = "like", conflicts_with = "like")]
        arch: Option<String>,
        /// Take the network and the manifest (input size, pixel size, threshold…) of this model
        /// folder instead of --arch: its weights replaced by the file's.
        #[arg(long)]
        like: Option<PathBuf>,
        /// The file holds only the encoder (ImageNet weights): the decoder stays freshly initialised.
        #[arg(long)]
        encoder_only: bool,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Find glomeruli in whole slides (paths or URLs): writes OUT/submission.csv (Kaggle `id,predicted`,
    /// full-resolution RLE), OUT/<id>.geojson (QuPath), OUT/<id>.glomeruli.json (count, areas,
    /// centroids, boxes, timings) and OUT/<id>.mask.png (probability overview).
    ///
    /// Split a cohort with --shard I/N (slides I, I+N, …), e.g. in a Slurm array:
    /// `sbatch --array=0-7 --wrap 'ftuscope predict data/*.tiff --model m --out o --shard $SLURM_ARRAY_TASK_ID/8'`,
    /// or a Kubernetes indexed Job (completions 8): `--shard $JOB_COMPLETION_INDEX/8`.
    Predict {
        /// Slides (paths or http(s) URLs).
        #[arg(required = true)]
        slides: Vec<String>,
        /// A model folder (model.json + model.bpk, from `ftuscope import` or `export`), or
        /// `untrained:ARCH` (seeded random weights: checks the pipeline, finds nothing real).
        #[arg(long)]
        model: String,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Compute device: cpu, wgpu or cuda.
        #[arg(long, default_value = "cpu", value_parser = DeviceChoice::from_str)]
        device: DeviceChoice,
        /// Windows per forward pass.
        #[arg(long, default_value_t = 4)]
        batch: usize,
        /// Flip test-time augmentation: 1, 2, 4 or 8 views [default: the model's manifest].
        #[arg(long, value_parser = parse_tta)]
        tta: Option<u8>,
        /// Run only shard I of N (0-based).
        #[arg(long, value_name = "I/N", value_parser = parse_shard)]
        shard: Option<Shard>,
        /// Batches in flight, each on its own thread [default: one per core, at most 4, on the CPU; 1 on a GPU].
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        threads: usize,
        /// Probability threshold [default: the manifest's].
        #[arg(long)]
        threshold: Option<f32>,
        /// Smallest object kept, in level-0 pixels² [default: the manifest's].
        #[arg(long)]
        min_area: Option<f64>,
        /// Largest object kept, in level-0 pixels² [default: the manifest's].
        #[arg(long)]
        max_area: Option<f64>,
        /// Overlap blending.
        #[arg(long, value_enum, default_value_t = Blending::Centre)]
        blend: Blending,
        /// Window side in level-0 pixels, resized to the model's input [default: the manifest's].
        #[arg(long)]
        window: Option<u32>,
        /// Overlap between windows in level-0 pixels [default: the manifest's].
        #[arg(long)]
        overlap: Option<u32>,
        /// µm per level-0 pixel, overriding what the files record (PNG/JPEG record none): windows
        /// are resampled so the model sees its own scale.
        #[arg(long, value_parser = parse_pixel_size)]
        pixel_size: Option<f64>,
        /// Stain normalisation: `none` (colours as scanned), or `DIR[,pixel-size=UM]`: match each
        /// slide's colours to the tissue of DIR's images (e.g. the training tiles) [default: the
        /// manifest's reference, if it has one].
        #[arg(long)]
        stain_reference: Option<String>,
    },
    /// Train a network on a Kaggle-layout dataset (needs the `train` feature): tiles cached on
    /// disk, K-fold validation by slide, checkpoints every epoch, metrics.csv and curves.
    Train(Box<crate::train::TrainArgs>),
    /// Export a training run's best model as a model folder (model.bpk + model.json manifest) for
    /// the web app and `predict`.
    Export {
        /// The run folder.
        run: PathBuf,
        /// Output folder, e.g. www/models/mine/.
        #[arg(long)]
        out: PathBuf,
        /// The model's name in the manifest.
        #[arg(long, default_value = "model")]
        name: String,
        /// Store conv weights as f16 (half the size; BatchNorm stays f32).
        #[arg(long)]
        f16: bool,
    },
    /// Fine-tune a model's decoder on one slide's reviewed objects (the encoder frozen): windows
    /// around the glomeruli of a reviewed GeoJSON (classes naming a glomerulus; "Rejected" ones are
    /// negatives) and random tissue of the slide, BCE + Dice, AdamW; prints each step's loss and
    /// writes the tuned model folder. Needs the `tune` (or `train`) feature.
    Tune {
        /// The slide or image (path or URL).
        slide: String,
        /// The model folder to start from.
        #[arg(long)]
        model: PathBuf,
        /// The reviewed objects: GeoJSON from the app's Review panel or `ftuscope review`.
        #[arg(long)]
        reviewed: PathBuf,
        /// Where to write the tuned model folder.
        #[arg(long)]
        out: PathBuf,
        /// Optimiser steps.
        #[arg(long, default_value_t = 40)]
        steps: usize,
        /// Windows per step.
        #[arg(long, default_value_t = 2)]
        batch: usize,
        /// Learning rate.
        #[arg(long, default_value_t = 3e-4)]
        lr: f64,
        /// µm per pixel of the slide [default: the file's, else the model's].
        #[arg(long, value_parser = parse_pixel_size)]
        pixel_size: Option<f64>,
        /// Compute device: cpu, wgpu or cuda.
        #[arg(long, default_value = "cpu", value_parser = DeviceChoice::from_str)]
        device: DeviceChoice,
    },
    /// Review a prediction against annotations: every disagreement — a prediction nobody annotated,
    /// an annotation the model did not find, a pair overlapping with IoU < 0.5 — is an item, sorted
    /// by the model's confidence and size (without --truth every prediction is one to confirm);
    /// writes OUT/review.json. With --decisions (a JSON list of {"action": "accept"|"reject"|"edit"|"add",
    /// "item", "outline"}, or the app's saved review) writes the reviewed set as OUT/reviewed.geojson,
    /// classed Glomerulus / Glomerulus (added) [/ Rejected / Unreviewed], and with --size its RLE.
    Review {
        /// The prediction: GeoJSON as `predict` writes it (<id>.geojson, with confidences) or any outlines.
        #[arg(long)]
        pred: PathBuf,
        /// The annotations: QuPath/HuBMAP GeoJSON or LabelMe JSON.
        #[arg(long)]
        truth: Option<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Decisions to apply.
        #[arg(long)]
        decisions: Option<PathBuf>,
        /// Image size WxH (level 0): also write the reviewed glomeruli as a Kaggle RLE (reviewed.csv).
        #[arg(long, value_parser = parse_size)]
        size: Option<(u32, u32)>,
        /// Keep rejected objects in the GeoJSON, as the class "Rejected".
        #[arg(long)]
        rejected: bool,
        /// Keep undecided items in the GeoJSON, as the class "Unreviewed".
        #[arg(long)]
        unreviewed: bool,
        /// µm per pixel, for areas in µm².
        #[arg(long, value_parser = parse_pixel_size)]
        pixel_size: Option<f64>,
    },
    /// Score predictions against truth. With --pred: the competition metric (per-image and mean
    /// Dice) of a submission CSV against a truth CSV (both `id,encoding`). With --model: runs the
    /// model on an annotated image folder (images with LabelMe JSON, GeoJSON or mask PNGs) and
    /// prints per-image scores, pooled Dice, mean per-image Dice and object-level recall and
    /// precision (a glomerulus is found when a predicted object overlaps it with IoU ≥ 0.5).
    Eval {
        /// Truth: train.csv (with --pred) or an annotated image folder (with --model).
        #[arg(long)]
        truth: PathBuf,
        /// Predictions, e.g. submission.csv.
        #[arg(long, required_unless_present = "model", conflicts_with = "model")]
        pred: Option<PathBuf>,
        /// A model folder (or `untrained:ARCH`) to run on the folder's images.
        #[arg(long)]
        model: Option<String>,
        /// Only fold I of N of the folder: contiguous blocks in natural name order, as training holds out.
        #[arg(long, value_name = "I/N", value_parser = parse_shard, requires = "model")]
        fold: Option<Shard>,
        /// µm per pixel of the images (PNG/JPEG record none) [default: the file's, else the model's].
        #[arg(long, value_parser = parse_pixel_size)]
        pixel_size: Option<f64>,
        /// Compute device: cpu, wgpu or cuda.
        #[arg(long, default_value = "cpu", value_parser = DeviceChoice::from_str)]
        device: DeviceChoice,
        /// Windows per forward pass.
        #[arg(long, default_value_t = 4)]
        batch: usize,
        /// Flip test-time augmentation: 1, 2, 4 or 8 views [default: the model's manifest].
        #[arg(long, value_parser = parse_tta)]
        tta: Option<u8>,
        /// Also write the per-image scores as CSV.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Stain normalisation: `none` (colours as scanned), or `DIR[,pixel-size=UM]`: match each
        /// slide's colours to the tissue of DIR's images (e.g. the training tiles) [default: the
        /// manifest's reference, if it has one].
        #[arg(long)]
        stain_reference: Option<String>,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: Bench,
    },
    /// Write synthetic kidney slides with exact ground truth in the Kaggle HuBMAP layout:
    /// train/<id>.tiff, train.csv (id,encoding), train/<id>.json, train/<id>-anatomical-structure.json
    /// and HuBMAP-20-dataset_information.csv. The tissue is synthetic, not real.
    Synth {
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Number of slides.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Slide size in pixels at 0.5 µm/px.
        #[arg(long, value_name = "WIDTHxHEIGHT", default_value = "6000x4000", value_parser = parse_size)]
        size: (u32, u32),
        /// Seed: the same seed writes byte-identical files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Tile side in pixels (a multiple of 16).
        #[arg(long, default_value_t = 512)]
        tile: u32,
        /// Tile compression.
        #[arg(long, value_enum, default_value_t = Compression::Jpeg)]
        compression: Compression,
        /// Add reduced-resolution pages (÷2, ÷4, …).
        #[arg(long)]
        pyramid: bool,
        /// Write BigTIFF (needed past 4 GiB).
        #[arg(long)]
        bigtiff: bool,
        /// Write level 0 as three single-channel pages, like some HuBMAP files.
        #[arg(long)]
        hubmap_planes: bool,
        /// Fraction of glomeruli left out of the annotations (0–1).
        #[arg(long, default_value_t = 0.0)]
        unannotated: f64,
        /// Tissue piece size relative to the default (0.7 ≈ 20% tissue, 1 ≈ 40%, 1.25 ≈ 60%).
        #[arg(long, default_value_t = 1.0)]
        tissue_scale: f64,
    },
}

/// Runs the CLI; any error, a bad argument included, becomes one line on stderr and exit code 2.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version (stdout, code 0), and help for a bare `ftuscope` or a bare
        // subcommand group, are printed as clap prints them.
        Err(e) if !e.use_stderr() || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        Err(e) => return fail(&one_line(&e.render().to_string())),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A time-boxed training run with epochs left: not a failure, but not finished either.
        Err(e) if e.downcast_ref::<crate::train::Unfinished>().is_some() => {
            eprintln!("{e}");
            ExitCode::from(crate::train::Unfinished::EXIT_CODE)
        }
        Err(e) => fail(&format!("{e:#}").replace('\n', " ")),
    }
}

/// Prints `error: MESSAGE` and gives exit code 2.
fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// A clap error on one line: its message and what clap adds to it (the values it expected, a
/// tip), without the usage and the pointer to --help that follow.
fn one_line(rendered: &str) -> String {
    let mut line = String::new();
    let footer = |l: &str| l.starts_with("Usage:") || l.starts_with("For more information");
    for part in rendered.lines().map(str::trim).take_while(|l| !footer(l)).filter(|l| !l.is_empty()) {
        let part = part.strip_prefix("error: ").unwrap_or(part);
        if !line.is_empty() {
            line.push_str(if part.starts_with("tip:") { "; " } else { " " });
        }
        line.push_str(part);
    }
    line
}

fn open_slide(path_or_url: &str) -> anyhow::Result<Slide> {
    Ok(block(Slide::open_location(path_or_url, SlideOptions::new()))?)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Info { slide } => {
            let slide = open_slide(&slide)?;
            println!("{}", serde_json::to_string_pretty(&slide.info())?);
            Ok(())
        }
        Command::Region { slide, level, rect: Rect { x, y, width: w, height: h }, out } => {
            let slide = open_slide(&slide)?;
            let image = block(slide.read_region(level, x, y, w, h))?;
            save_png(&out, |p| image.save_with_format(p, image::ImageFormat::Png))?;
            println!("level {level} region {x},{y} {w}×{h} → {}", out.display());
            Ok(())
        }
        Command::Thumbnail { slide, size, associated, out } => {
            let slide = open_slide(&slide)?;
            let image = match associated {
                Some(name) => block(slide.associated_image(&name))?,
                None => {
                    let added = block(slide.build_overviews(&mut |done, total| eprint!("\roverview: band {done}/{total}")))?;
                    if added > 0 {
                        eprintln!(" — {added} overview levels");
                    }
                    block(slide.thumbnail(size))?
                }
            };
            save_png(&out, |p| image.save_with_format(p, image::ImageFormat::Png))?;
            println!("{}×{} → {}", image.width(), image.height(), out.display());
            Ok(())
        }
        Command::Bench { what: Bench::Train { arch, model, size, batch, steps, device, frozen_levels, frozen_norms } } => {
            crate::train::bench(&arch, model.as_deref(), size, batch, steps, device, (frozen_levels, frozen_norms))
        }
        Command::Bench { what: Bench::Read { slide, level, threads } } => bench_read(&slide, level, threads),
        Command::Bench { what: Bench::Forward { model, weights, size, batch, runs, input, logits, device } } => {
            crate::predict::bench_forward(crate::predict::ForwardBench { model, weights, size, batch, runs, input, logits, device })
        }
        Command::Bench { what: Bench::Infer { slide, model, device, batch, threads } } => {
            crate::predict::bench_infer(&slide, &model, device, batch, &threads)
        }
        Command::Predict {
            slides,
            model,
            out,
            device,
            batch,
            tta,
            shard,
            threshold,
            min_area,
            max_area,
            blend,
            window,
            overlap,
            pixel_size,
            stain_reference,
            threads,
        } => crate::predict::predict(crate::predict::PredictArgs {
            slides,
            model,
            out,
            device,
            batch,
            tta,
            shard: shard.unwrap_or(Shard::ALL),
            threshold,
            min_area,
            max_area,
            blend: blend.into(),
            window,
            overlap,
            pixel_size,
            stain_reference,
            threads,
        }),
        Command::Tune { slide, model, reviewed, out, steps, batch, lr, pixel_size, device } => {
            crate::tune::run(crate::tune::TuneArgs { slide, model, reviewed, out, steps, batch, lr, pixel_size, device })
        }
        Command::Review { pred, truth, out, decisions, size, rejected, unreviewed, pixel_size } => {
            crate::review::run(crate::review::ReviewArgs { pred, truth, out, decisions, size, rejected, unreviewed, pixel_size })
        }
        Command::Eval { truth, pred: Some(pred), .. } => crate::predict::eval(&truth, &pred),
        Command::Eval { truth, pred: None, model, fold, pixel_size, device, batch, tta, out, stain_reference } => {
            crate::predict::eval_folder(crate::predict::EvalFolderArgs {
                stain_reference,
                truth,
                model: model.unwrap_or_default(),
                fold,
                pixel_size,
                device,
                batch,
                tta,
                out,
            })
        }
        Command::Train(args) => crate::train::train(*args),
        Command::Export { run, out, name, f16 } => crate::train::export(&run, &out, &name, f16),
        Command::Import { from, arch, like, encoder_only, out } => {
            use ftuscope::model::folder::save;
            use ftuscope::model::import::{WeightsKind, import, trainable_params};
            let device = burn::prelude::Device::flex();
            let mut manifest = match (&like, &arch) {
                (Some(dir), _) => ftuscope::model::folder::load(dir, &device)?.1,
                (None, Some(arch)) => {
                    ftuscope::model::Manifest::new("imported", ftuscope::model::SegmenterConfig::from_arch(arch).map_err(|e| anyhow!(e))?)
                }
                (None, None) => return Err(anyhow!("give --arch or --like")),
            };
            let config = manifest.model.clone();
            let mut model = config.init(&device);
            let kind = if encoder_only { WeightsKind::EncoderOnly } else { WeightsKind::Full };
            let report = import(&mut model, &config, &from, kind).map_err(|e| anyhow!("{e}: {}", from.display()))?;
            println!(
                "{}: {} tensors applied, {} missing (freshly initialised), {} unused; {} parameters",
                config.arch(),
                report.applied,
                report.missing.len(),
                report.unused.len(),
                trainable_params(&model)
            );
            for (what, list) in [("missing", &report.missing), ("unused", &report.unused)] {
                if !list.is_empty() {
                    println!(
                        "  {what}: {}{}",
                        list.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                        if list.len() > 5 { ", …" } else { "" }
                    );
                }
            }
            manifest.name = "imported".into();
            manifest.trained_on = format!("imported from {}", from.display());
            manifest.validation = String::new();
            manifest.validation_dice = None;
            save(&model, &manifest, &out)?;
            println!("saved {} and {}", out.join("model.bpk").display(), out.join("model.json").display());
            Ok(())
        }
        Command::Synth { out, count, size, seed, tile, compression, pyramid, bigtiff, hubmap_planes, unannotated, tissue_scale } => {
            if tile == 0 || tile % 16 != 0 {
                return Err(anyhow!("tile {tile} must be a positive multiple of 16"));
            }
            if !(0.1..=1.3).contains(&tissue_scale) {
                return Err(anyhow!("--tissue-scale {tissue_scale} must be within 0.1..=1.3"));
            }
            if !(0.0..=1.0).contains(&unannotated) {
                return Err(anyhow!("--unannotated {unannotated} must be within 0..=1"));
            }
            let options = DatasetOptions {
                count,
                size,
                seed,
                tile,
                compression: compression.into(),
                pyramid,
                bigtiff,
                hubmap_planes,
                unannotated_fraction: unannotated,
                tissue_scale,
            };
            let started = Instant::now();
            let slides = write_dataset(&out, &options, |done, of| eprintln!("slide {done}/{of} written"))
                .map_err(|e| anyhow!("cannot write the data set: {e}: {}", out.display()))?;
            for s in &slides {
                println!("{}: {} glomeruli, {} annotated", s.id, s.glomeruli, s.annotated);
            }
            println!("{} synthetic slides written to {} in {:.1} s", slides.len(), out.display(), started.elapsed().as_secs_f64());
            Ok(())
        }
        Command::Segment { image, model, out, overlay, device, batch, tta, threshold, pixel_size } => {
            crate::predict::segment(crate::predict::SegmentArgs { image, model, out, overlay, device, batch, tta, threshold, pixel_size })
        }
    }
}

/// Reads a whole level region by region with a cold cache and reports decoded MB/s.
fn bench_read(path: &str, level: usize, threads: usize) -> anyhow::Result<()> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    // A small cache: every tile is fetched and decoded once, as in a first view.
    let slide = block(Slide::open_location(path, SlideOptions::one_pass()))?;
    let levels = slide.levels();
    let l = levels.get(level).ok_or_else(|| anyhow!("no level {level}: the slide has {}", levels.len()))?;
    let step = 1024;
    let started = Instant::now();
    let mut bytes = 0u64;
    pool.install(|| -> anyhow::Result<()> {
        for y in (0..l.height).step_by(step) {
            for x in (0..l.width).step_by(step) {
                let (w, h) = ((l.width - x).min(step as u32), (l.height - y).min(step as u32));
                let region = block(slide.read_region(level, x as i64, y as i64, w, h))?;
                bytes += region.as_raw().len() as u64;
            }
        }
        Ok(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"slide\": {:?}, \"level\": {level}, \"width\": {}, \"height\": {}, \"threads\": {}, \"seconds\": {seconds:.3}, \"decoded_mb_per_s\": {:.1}}}",
        path,
        l.width,
        l.height,
        pool.current_num_threads(),
        bytes as f64 / 1e6 / seconds
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use ftuscope::infer::Blend;

    fn parse(args: &[&str]) -> Result<Command, String> {
        Cli::try_parse_from(std::iter::once("ftuscope").chain(args.iter().copied()))
            .map(|cli| cli.command)
            .map_err(|e| one_line(&e.render().to_string()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parse_errors_fit_on_one_line() {
        assert_eq!(parse(&["info"]).unwrap_err(), "the following required arguments were not provided: <SLIDE>");
        assert_eq!(
            parse(&["info", "s", "--nope"]).unwrap_err(),
            "unexpected argument '--nope' found; tip: to pass '--nope' as a value, use '-- --nope'"
        );
        assert_eq!(
            parse(&["thumbnail", "s", "--out", "t.png", "--size", "x"]).unwrap_err(),
            "invalid value 'x' for '--size <SIZE>': invalid digit found in string"
        );
    }

    #[test]
    fn arguments_arrive_typed() {
        let predict = parse(&[
            "predict", "a.tiff", "--model", "m", "--out", "o", "--blend", "center", "--shard", "1/4", "--tta", "8", "--device", "CUDA",
        ]);
        let Ok(Command::Predict { device, tta, shard, blend, .. }) = predict else { panic!("{predict:?}") };
        assert_eq!(
            (device, tta, shard, Blend::from(blend)),
            (DeviceChoice::Cuda, Some(8), Some(Shard { index: 1, count: 4 }), Blend::Centre)
        );
        let Ok(Command::Predict { device, tta, shard, blend, .. }) = parse(&["predict", "a.tiff", "--model", "m", "--out", "o"]) else {
            panic!()
        };
        assert_eq!((device, tta, shard, blend), (DeviceChoice::Cpu, None, None, Blending::Centre));
        let Ok(Command::Synth { size, compression, .. }) = parse(&["synth", "--out", "d"]) else { panic!() };
        assert_eq!((size, compression), ((6000, 4000), Compression::Jpeg));
        let Ok(Command::Synth { size, compression, .. }) = parse(&["synth", "--out", "d", "--size", "64x32", "--compression", "lzw"])
        else {
            panic!()
        };
        assert_eq!((size, compression), ((64, 32), Compression::Lzw));
        let Ok(Command::Region { rect, .. }) = parse(&["region", "s.tiff", "--rect", "-1,2,3,4", "--out", "r.png"]) else { panic!() };
        assert_eq!(rect, Rect { x: -1, y: 2, width: 3, height: 4 });
        let Ok(Command::Bench { what: Bench::Infer { device, .. } }) = parse(&["bench", "infer", "s.tiff", "--device", "wgpu"]) else {
            panic!()
        };
        assert_eq!(device, DeviceChoice::Wgpu);
    }

    #[test]
    fn bad_values_are_refused_in_one_line() {
        let cases: [(&[&str], &str); 6] = [
            (
                &["region", "s.tiff", "--rect", "1,2,x", "--out", "r.png"],
                "invalid value '1,2,x' for '--rect <X,Y,W,H>': expected four integers X,Y,W,H",
            ),
            (
                &["synth", "--out", "d", "--size", "0x5"],
                "invalid value '0x5' for '--size <WIDTHxHEIGHT>': expected WIDTHxHEIGHT, each 1–200000",
            ),
            (
                &["synth", "--out", "d", "--compression", "zip"],
                "invalid value 'zip' for '--compression <COMPRESSION>' [possible values: jpeg, deflate, lzw, none]",
            ),
            (
                &["predict", "a", "--model", "m", "--out", "o", "--blend", "foo"],
                "invalid value 'foo' for '--blend <BLEND>' [possible values: centre, ramp]",
            ),
            (
                &["predict", "a", "--model", "m", "--out", "o", "--device", "tpu"],
                "invalid value 'tpu' for '--device <DEVICE>': unknown device 'tpu': expected cpu, wgpu or cuda",
            ),
            (
                &["predict", "a", "--model", "m", "--out", "o", "--shard", "3/3"],
                "invalid value '3/3' for '--shard <I/N>': expected I/N with 0 ≤ I < N (e.g. $SLURM_ARRAY_TASK_ID/8)",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(parse(args).unwrap_err(), want);
        }
    }
}

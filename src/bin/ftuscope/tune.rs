//! `ftuscope tune`: fine-tunes a model's decoder on one slide's reviewed objects (a reviewed GeoJSON
//! from the app or `ftuscope review`), as the app's "Improve the model on this slide" does, and
//! writes the tuned model folder.

#[cfg(feature = "tune")]
use anyhow::Context;
use anyhow::anyhow;
use std::path::PathBuf;

/// Options of `ftuscope tune`.
#[cfg_attr(not(feature = "tune"), allow(dead_code))]
pub struct TuneArgs {
    pub slide: String,
    pub model: PathBuf,
    pub reviewed: PathBuf,
    pub out: PathBuf,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub pixel_size: Option<f64>,
    pub device: ftuscope::backend::DeviceChoice,
}

#[cfg(not(feature = "tune"))]
pub fn run(_: TuneArgs) -> anyhow::Result<()> {
    Err(anyhow!("this ftuscope was built without fine-tuning: rebuild with `cargo build --release --features tune` (or `train`)"))
}

/// Loads the model and the slide, reads windows around the reviewed objects and random tissue,
/// trains the decoder for `steps` steps (printing each loss) and saves the tuned model folder.
#[cfg(feature = "tune")]
pub fn run(args: TuneArgs) -> anyhow::Result<()> {
    use crate::predict::wsi_config;
    use ftuscope::backend::select_device;
    use ftuscope::infer::SlideRun;
    use ftuscope::mask::{Polygon, read_outlines};
    use ftuscope::model::folder;
    use ftuscope::slide::{Slide, SlideOptions};
    use ftuscope::tune::{FineTune, TuneConfig, tune_windows, tuned_manifest};
    use futures_lite::future::block_on;

    let (device, info) = select_device(args.device)?;
    let (model, manifest) = folder::load(&args.model, &device).map_err(|e| anyhow!("{e}"))?;
    let slide = block_on(Slide::open_location(&args.slide, SlideOptions::one_pass().with_pixel_size_um(args.pixel_size)))?;
    let text = std::fs::read_to_string(&args.reviewed).with_context(|| format!("cannot read {}", args.reviewed.display()))?;
    let annotations = read_outlines(&text).map_err(|e| anyhow!("{e}: {}", args.reviewed.display()))?;
    let (mut positives, mut negatives): (Vec<Polygon>, Vec<Polygon>) = (Vec::new(), Vec::new());
    for a in annotations {
        if a.is_glomerulus() {
            positives.extend(a.polygons);
        } else if a.classification.eq_ignore_ascii_case("rejected") {
            negatives.extend(a.polygons);
        }
    }
    if positives.is_empty() {
        return Err(anyhow!("no glomerulus in {}: review first (confirmed or added objects train the model)", args.reviewed.display()));
    }
    let wsi = wsi_config(&manifest, &slide, None, None);
    let mut run = block_on(SlideRun::start(&slide, &wsi))?;
    let job = run.job().clone();
    let config = TuneConfig::new().with_steps(args.steps).with_batch(args.batch).with_lr(args.lr);
    let windows = block_on(tune_windows(&slide, &job, &positives, &negatives, &config))?;
    eprintln!(
        "fine-tuning {} ({}) on {}: {} glomeruli, {} rejected, {} windows, {} steps of {} on {}",
        manifest.name,
        manifest.model.arch(),
        slide.name(),
        positives.len(),
        negatives.len(),
        windows.len(),
        args.steps,
        args.batch,
        info.backend
    );
    let started = std::time::Instant::now();
    let mut tune = FineTune::new(model, manifest.normaliser(), &device, windows, config)?;
    while !tune.done() {
        let loss = block_on(tune.step())?;
        println!("step {}/{}: loss {loss:.4}", tune.steps_done(), args.steps);
    }
    let manifest = tuned_manifest(&manifest, positives.len(), negatives.len(), slide.name(), args.steps);
    folder::save(&tune.model(), &manifest, &args.out).map_err(|e| anyhow!("{e}"))?;
    eprintln!("{:.1} s; tuned model → {}", started.elapsed().as_secs_f64(), args.out.display());
    Ok(())
}

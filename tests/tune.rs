//! Fine-tuning on a slide's reviewed objects (issue #30): the bundled small model's decoder trains
//! on windows around a synthetic slide's glomeruli and on its tissue; the loss falls, the encoder
//! does not move, the tuned model saves and loads as a model folder, and bad settings are typed errors.
#![cfg(feature = "tune")]

use burn::module::Module;
use burn::prelude::*;
use ftuscope::infer::{NetModel, SlideRun, WsiConfig};
use ftuscope::mask::{Polygon, read_annotations};
use ftuscope::model::folder;
use ftuscope::slide::source::FileSource;
use ftuscope::slide::{Slide, TileCompression};
use ftuscope::synth::{DatasetOptions, write_dataset};
use ftuscope::tune::{FineTune, TuneConfig, agreement, tune_windows};
use futures_lite::future::block_on;
use std::path::Path;
use std::sync::Arc;

fn synthetic(dir: &Path) -> (Slide, Vec<Polygon>) {
    let options = DatasetOptions { size: (3000, 2400), seed: 5, compression: TileCompression::Jpeg(85), ..DatasetOptions::default() };
    let id = write_dataset(dir, &options, |_, _| {}).unwrap()[0].id.clone();
    let json = std::fs::read_to_string(dir.join("train").join(format!("{id}.json"))).unwrap();
    let polygons = read_annotations(&json).unwrap().into_iter().flat_map(|a| a.polygons).collect();
    let source = Arc::new(FileSource::open(&dir.join("train").join(format!("{id}.tiff"))).unwrap());
    (block_on(Slide::open(source)).unwrap(), polygons)
}

/// Every tensor of `model` (parameters and batch-norm statistics) whose name starts with `prefix`, flattened.
fn weights(model: &ftuscope::model::SegmentationModel, prefix: &str) -> Vec<f32> {
    let mut out = Vec::new();
    for t in burn_store::ModuleSnapshot::collect(&model.valid(), None, None, true) {
        if t.name.starts_with(prefix) {
            out.extend(burn_store::bridge::to_data(&t).unwrap().convert::<f32>().try_to_vec::<f32>().unwrap());
        }
    }
    out
}

#[test]
fn the_decoder_learns_the_reviewed_objects_and_the_encoder_stays() {
    let dir = tempfile::tempdir().unwrap();
    let (slide, polygons) = synthetic(dir.path());
    assert!(polygons.len() >= 3, "{} glomeruli", polygons.len());
    let device = Device::default();
    let (model, manifest) = folder::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/fast")), &device).unwrap();
    let mut run = block_on(SlideRun::start(&slide, &WsiConfig::for_model(&manifest, slide.pixel_size_um()))).unwrap();
    let job = run.job().clone();
    let (positives, negatives) = (&polygons[1..], &polygons[..1]);
    let config = TuneConfig::new().with_steps(12).with_batch(2).with_lr(1e-3).with_seed(3);
    let windows = block_on(tune_windows(&slide, &job, positives, negatives, &config)).unwrap();
    let expected = polygons.len() + (polygons.len() as f64 * 0.5).ceil() as usize;
    assert_eq!(windows.len(), expected, "one window per reviewed object, and half as many of tissue");
    let side = manifest.model.input_size;
    assert!(windows.iter().all(|w| w.image.width() as usize == side && w.mask.len() == side * side));
    assert!(windows[0].mask.contains(&1.0), "a window around a glomerulus has it in its target");
    let encoder_before = weights(&model, "encoder");
    let decoder_before = weights(&model, "decoder");
    let mut tune = FineTune::new(model, manifest.normaliser(), &device, windows, config).unwrap();
    while !tune.done() {
        block_on(tune.step()).unwrap();
    }
    let losses = &tune.losses;
    assert_eq!(losses.len(), 12);
    let (first, last) = (losses[..3].iter().sum::<f32>() / 3.0, losses[9..].iter().sum::<f32>() / 3.0);
    assert!(last < first, "the loss falls: {losses:?}");
    let tuned = tune.model();
    assert_eq!(weights(&tuned, "encoder"), encoder_before, "the encoder is frozen (weights and statistics)");
    assert_ne!(weights(&tuned, "decoder"), decoder_before, "the decoder trained");
    // The tuned network is a model folder like any other.
    let out = dir.path().join("tuned");
    folder::save(&tuned, &manifest, &out).unwrap();
    let (loaded, _) = folder::load(&out, &device).unwrap();
    assert_eq!(weights(&loaded, "decoder"), weights(&tuned, "decoder"));
    // The browser's export: read back asynchronously onto the CPU, then the same bytes load.
    let cpu = block_on(folder::to_cpu(&tuned)).unwrap();
    assert_eq!(weights(&cpu, ""), weights(&tuned, ""));
    let bytes = folder::weights_bytes(&cpu).unwrap();
    let (reloaded, _) = folder::load_bytes(&bytes, &manifest.to_json(), &device).unwrap();
    assert_eq!(weights(&reloaded, ""), weights(&tuned, ""));
    // How the tuned and the original model find the reviewed objects (each run over their box).
    let wsi = WsiConfig::for_model(&manifest, slide.pixel_size_um());
    let (original, _) = folder::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/fast")), &device).unwrap();
    let before = block_on(agreement(&slide, &NetModel::new(original, &manifest, &device, None).unwrap(), &wsi, positives)).unwrap();
    let after = block_on(agreement(&slide, &NetModel::new(tuned.clone(), &manifest, &device, None).unwrap(), &wsi, positives)).unwrap();
    assert_eq!((before.reviewed, after.reviewed), (positives.len(), positives.len()));
    assert!(before.found + 1 >= positives.len(), "the bundled model finds the synthetic glomeruli: {before:?}");
    assert!(after.found <= after.reviewed && after.predicted >= after.found, "{after:?}");
    assert!(block_on(agreement(&slide, &NetModel::new(tuned.clone(), &manifest, &device, None).unwrap(), &wsi, &[])).is_err());
    // Nothing to train on, or settings that cannot work: typed errors.
    let (model, _) = folder::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/fast")), &device).unwrap();
    assert!(FineTune::new(model.clone(), manifest.normaliser(), &device, Vec::new(), TuneConfig::new()).is_err());
    let one = block_on(tune_windows(&slide, &job, positives, &[], &TuneConfig::new().with_max_windows(1))).unwrap();
    assert_eq!(one.len(), 1);
    assert!(FineTune::new(model, manifest.normaliser(), &device, one, TuneConfig::new().with_lr(0.0)).is_err());
}

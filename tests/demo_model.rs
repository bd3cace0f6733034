//! The committed demo model (www/models/demo/) loads into the current architecture and still finds
//! glomeruli: Dice ≥ 0.9 (the competition's, full resolution) on a freshly generated synthetic
//! slide whose seed no training run used. If an architecture change breaks the weights, or the
//! engine's scaling, tiling or thresholds drift, this fails.

use burn::prelude::*;
use ftuscope::infer::{NetModel, WsiConfig, predict_slide};
use ftuscope::mask::dice_rle;
use ftuscope::model::folder;
use ftuscope::slide::source::open_native;
use ftuscope::slide::{Slide, TileCompression};
use ftuscope::synth::{DatasetOptions, write_dataset};
use futures_lite::future::block_on;
use std::path::Path;
use std::sync::atomic::AtomicBool;

#[test]
fn the_demo_model_still_segments_a_fresh_synthetic_slide() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("www/models/demo");
    let (model, manifest) = folder::load(&dir, &Device::flex()).expect("www/models/demo must load into the current architecture");
    assert!(
        manifest.trained_on.contains("synthetic"),
        "the demo manifest must say it was trained on synthetic tissue: {}",
        manifest.trained_on
    );
    assert!(std::fs::metadata(dir.join("model.bpk")).unwrap().len() <= 10_000_000, "the demo model must stay ≤ 10 MB");

    let data = tempfile::tempdir().unwrap();
    let options = DatasetOptions { size: (6000, 4000), seed: 424_242, compression: TileCompression::Jpeg(85), ..DatasetOptions::default() };
    let id = write_dataset(data.path(), &options, |_, _| {}).unwrap()[0].id.clone();
    let csv = std::fs::read_to_string(data.path().join("train.csv")).unwrap();
    let truth = csv.lines().find_map(|l| l.strip_prefix(&format!("{id},"))).unwrap().to_string();

    let path = data.path().join("train").join(format!("{id}.tiff"));
    let slide = block_on(Slide::open(block_on(open_native(path.to_str().unwrap())).unwrap())).unwrap();
    let net = NetModel::new(model, &manifest, &Device::flex(), None).unwrap();
    let wsi = WsiConfig::for_model(&manifest);
    let prediction = block_on(predict_slide(&slide, &net, &wsi, &AtomicBool::new(false), &mut |_, _| {})).unwrap();
    let found = prediction.glomeruli(wsi.threshold, wsi.min_area).len();
    let dice = dice_rle(&truth, &prediction.rle(wsi.threshold, wsi.min_area)).unwrap();
    println!(
        "demo model on fresh slide {id}: Dice {dice:.4}, {found} glomeruli found, {} windows, {:.1} s",
        prediction.plan.windows.len(),
        prediction.timings.total_s
    );
    assert!(dice >= 0.9, "demo model Dice {dice:.4} < 0.9");
}

//! The committed demo model (www/models/fast/): it loads into the current architecture, says what
//! it was trained on, finds glomeruli in held-out real kidney tiles (a floor measured when it was
//! trained), still segments synthetic slides, sees the same tissue at two pixel sizes the same way,
//! and claims no glomerulus in H&E skin. If an architecture change breaks the weights, or the
//! engine's scaling, tiling or thresholds drift, these fail.

use burn::prelude::*;
use ftuscope::infer::{NetModel, Prediction, WsiConfig, predict_slide};
use ftuscope::mask::{BinaryMask, Scores, dice, dice_rle, read_folder, score_rle};
use ftuscope::model::{Manifest, folder};
use ftuscope::slide::source::open_native;
use ftuscope::slide::{Slide, SlideOptions, TileCompression};
use ftuscope::synth::{DatasetOptions, write_dataset};
use futures_lite::future::block_on;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// Held-out real tiles of the bundled model (its fold 3 of 4: tiles 279–339) used as the fixture.
const REAL_TILES: [&str; 4] = ["306", "307", "323", "337"];
/// Floors under what the bundled model scored on `REAL_TILES` when it was trained (`ftuscope eval`:
/// pooled Dice 0.84, 24 of 32 glomeruli found), less a margin.
const REAL_FLOOR: (f64, f64) = (0.80, 0.70);

fn demo() -> (ftuscope::model::SegmentationModel, Manifest, NetModel) {
    bundled("fast")
}

/// A bundled model folder (www/models/NAME), loaded as the app and `predict` load it.
fn bundled(name: &str) -> (ftuscope::model::SegmentationModel, Manifest, NetModel) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("www/models").join(name);
    let (model, manifest) =
        folder::load(&dir, &Device::flex()).unwrap_or_else(|e| panic!("www/models/{name} must load into the current architecture: {e}"));
    let net = NetModel::new(model.clone(), &manifest, &Device::flex(), None).unwrap();
    (model, manifest, net)
}

/// The real data committed in tests/data/ (provenance and licences in its README): the held-out
/// tiles `REAL_TILES` with their outlines, and CMU-1-Small-Region.svs.
fn test_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn predict(slide: &Slide, net: &NetModel, manifest: &Manifest) -> (Prediction, WsiConfig) {
    let wsi = WsiConfig::for_model(manifest, slide.pixel_size_um());
    let prediction = block_on(predict_slide(slide, net, &wsi, &AtomicBool::new(false), &mut |_, _| {})).unwrap();
    (prediction, wsi)
}

#[test]
fn the_demo_model_says_what_it_was_trained_on_and_where_not_to_use_it() {
    let (_, manifest, _) = demo();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("www/models/fast");
    assert!(std::fs::metadata(dir.join("model.bpk")).unwrap().len() <= 10_000_000, "the demo model must stay ≤ 10 MB");
    let said = manifest.trained_on.to_lowercase();
    assert!(said.contains("real") && said.contains("kidney") && said.contains("pas"), "{}", manifest.trained_on);
    let limits = manifest.limits.to_lowercase();
    assert!(limits.contains("not for diagnosis") && limits.contains("h&e"), "{}", manifest.limits);
    assert!(manifest.validation.contains("held-out") && manifest.validation_dice.is_some(), "{}", manifest.validation);
    assert_eq!(manifest.input_pixel_size_um, Some(2.0), "the model's scale is part of it");
}

#[test]
fn the_demo_model_still_segments_a_fresh_synthetic_slide() {
    let (_, manifest, net) = demo();
    let data = tempfile::tempdir().unwrap();
    let options = DatasetOptions { size: (6000, 4000), seed: 424_242, compression: TileCompression::Jpeg(85), ..DatasetOptions::default() };
    let id = write_dataset(data.path(), &options, |_, _| {}).unwrap()[0].id.clone();
    let csv = std::fs::read_to_string(data.path().join("train.csv")).unwrap();
    let truth = csv.lines().find_map(|l| l.strip_prefix(&format!("{id},"))).unwrap().to_string();

    let path = data.path().join("train").join(format!("{id}.tiff"));
    let slide = block_on(Slide::open(block_on(open_native(path.to_str().unwrap())).unwrap())).unwrap();
    let (prediction, wsi) = predict(&slide, &net, &manifest);
    let found = prediction.glomeruli(wsi.objects()).len();
    let dice = dice_rle(&truth, &prediction.rle(wsi.objects())).unwrap();
    println!(
        "demo model on fresh synthetic slide {id}: Dice {dice:.4}, {found} glomeruli found, {} windows, {:.1} s",
        prediction.plan.windows.len(),
        prediction.timings.total_s
    );
    assert!(dice >= 0.9, "demo model Dice {dice:.4} < 0.9");
}

/// The same tissue written at 0.5 µm/px (the synthetic test slide, pixel size in its TIFF tags) and
/// reduced 2× to 1 µm/px (a PNG-like image with the pixel size given): the engine resamples each by
/// its own pixel size, so both reach the network at the model's scale and give the same glomeruli.
#[test]
fn the_same_tissue_at_two_pixel_sizes_gives_the_same_glomeruli() {
    let (_, manifest, net) = demo();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/synth-3072x2048.tif");
    let fine = block_on(Slide::open_location(path, SlideOptions::one_pass())).unwrap();
    assert_eq!(fine.pixel_size_um(), Some(0.5));
    let (w, h) = fine.dimensions();
    let full = block_on(fine.read_region(0, 0, 0, w, h)).unwrap();
    let reduced = image::imageops::resize(&full, w / 2, h / 2, image::imageops::FilterType::Triangle);
    let coarse = block_on(Slide::from_image(&reduced, Some(1.0), "reduced")).unwrap();
    let (a, wa) = predict(&fine, &net, &manifest);
    let (b, wb) = predict(&coarse, &net, &manifest);
    assert_eq!(wa.plan.window, 2 * wb.plan.window, "windows cover the same µm");
    let mask = |p: &Prediction, threshold: f32| {
        let probs = p.probability_image(w, h);
        let mut m = BinaryMask::new(w, h);
        for (x, y, v) in probs.enumerate_pixels() {
            m.set(x, y, v.0[0] >= ftuscope::mask::threshold_level(threshold));
        }
        m
    };
    let (ma, mb) = (mask(&a, wa.threshold), mask(&b, wb.threshold));
    let agreement = dice(&ma, &mb);
    let (na, nb) = (a.glomeruli(wa.objects()).len(), b.glomeruli(wb.objects()).len());
    println!(
        "0.5 µm/px: {na} glomeruli, window {}; 1 µm/px: {nb} glomeruli, window {}; Dice between them {agreement:.4}",
        wa.plan.window, wb.plan.window
    );
    assert_eq!(na, nb);
    assert!(agreement >= 0.95, "Dice between the two scales {agreement:.4} < 0.95");
}

/// Held-out real PAS tiles (never seen in training): pooled Dice and object recall above the floor
/// measured when the model was trained.
#[test]
fn the_demo_model_finds_glomeruli_in_held_out_real_kidney_tiles() {
    let (_, manifest, net) = demo();
    let pooled = score_real_tiles(&net, &manifest);
    assert!(pooled.dice() >= REAL_FLOOR.0, "pooled Dice {:.4} < {}", pooled.dice(), REAL_FLOOR.0);
    assert!(pooled.recall() >= REAL_FLOOR.1, "recall {:.3} < {}", pooled.recall(), REAL_FLOOR.1);
}

/// The committed real tiles `REAL_TILES` through the whole-image engine at 1 µm/px, pooled.
fn score_real_tiles(net: &NetModel, manifest: &Manifest) -> Scores {
    let images = read_folder(&test_data().join("real-kidney")).unwrap();
    assert_eq!(images.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), REAL_TILES, "the committed fixture is these tiles");
    let mut pooled = Scores::default();
    for image in images {
        let options = SlideOptions::one_pass().with_pixel_size_um(Some(1.0));
        let slide = block_on(Slide::open_location(image.image.to_str().unwrap(), options)).unwrap();
        let (prediction, wsi) = predict(&slide, net, manifest);
        let (width, height) = slide.dimensions();
        let (truth, objects) = image.objects(width, height).unwrap();
        let scores = score_rle(&truth, Some(&objects), &prediction.rle(wsi.objects()), width, height).unwrap();
        println!(
            "real tile {}: Dice {:.4}, {}/{} glomeruli found, {} predicted",
            image.id,
            scores.dice(),
            scores.matched,
            scores.truth_objects,
            scores.predicted_objects
        );
        pooled.add(&scores);
    }
    println!(
        "held-out real tiles {REAL_TILES:?}: pooled Dice {:.4}, recall {:.3}, precision {:.3}",
        pooled.dice(),
        pooled.recall(),
        pooled.precision()
    );
    pooled
}

/// H&E skin (the CC0 OpenSlide sample): tissue, but no kidney, so a good model claims no glomerulus.
/// The bundled model, which has seen no H&E, still claims 5 (measured when it was trained; issue #16's
/// goal of 0 is not met): this guards against it getting worse until a model with H&E negatives ships.
#[test]
fn the_demo_model_claims_few_glomeruli_in_h_and_e_skin() {
    let (_, manifest, net) = demo();
    let svs = test_data().join("CMU-1-Small-Region.svs");
    let slide = block_on(Slide::open_location(svs.to_str().unwrap(), SlideOptions::one_pass())).unwrap();
    let (prediction, wsi) = predict(&slide, &net, &manifest);
    let found = prediction.glomeruli(wsi.objects());
    println!("H&E skin: {} glomeruli claimed in {} windows", found.len(), prediction.plan.windows.len());
    assert!(found.len() <= 5, "{} glomeruli claimed in skin", found.len());
}

// ---- the accurate model (www/models/accurate: U-Net-EfficientNet-Lite0, ImageNet encoder) ----------

/// Floors under what the accurate model scored on `REAL_TILES` when it was bundled (`ftuscope eval
/// --truth tests/data/real-kidney --model www/models/accurate --pixel-size 1`, the 12-epoch v2: pooled
/// Dice 0.917, 28 of 32 glomeruli found, precision 0.875; the 5-epoch v2 before it: 0.867, 25 of 32),
/// less a margin.
const ACCURATE_REAL_FLOOR: (f64, f64) = (0.89, 0.81);

#[test]
fn the_accurate_model_says_what_it_was_trained_on_and_fits_the_budget() {
    let (_, manifest, _) = bundled("accurate");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("www/models/accurate");
    assert!(std::fs::metadata(dir.join("model.bpk")).unwrap().len() <= 25_000_000, "the accurate model must stay ≤ 25 MB");
    let said = manifest.trained_on.to_lowercase();
    for word in ["imagenet", "kidney", "pas", "negatives", "apache-2.0", "mit"] {
        assert!(said.contains(word), "trained_on lacks {word:?}: {}", manifest.trained_on);
    }
    let limits = manifest.limits.to_lowercase();
    assert!(limits.contains("not for diagnosis"), "{}", manifest.limits);
    let validation = manifest.validation.to_lowercase();
    assert!(validation.contains("held-out") && validation.contains("other lab"), "{}", manifest.validation);
    assert!(manifest.stain_reference.is_some(), "the accurate model matches each slide's stain to its training tiles'");
    assert_eq!(manifest.input_pixel_size_um, Some(2.0));
}

#[test]
fn the_accurate_model_finds_glomeruli_in_held_out_real_kidney_tiles() {
    let (_, manifest, net) = bundled("accurate");
    let pooled = score_real_tiles(&net, &manifest);
    assert!(pooled.dice() >= ACCURATE_REAL_FLOOR.0, "pooled Dice {:.4} < {}", pooled.dice(), ACCURATE_REAL_FLOOR.0);
    assert!(pooled.recall() >= ACCURATE_REAL_FLOOR.1, "recall {:.3} < {}", pooled.recall(), ACCURATE_REAL_FLOOR.1);
}

/// H&E skin: the accurate model was trained with non-kidney H&E negatives and claims no glomerulus.
#[test]
fn the_accurate_model_claims_no_glomerulus_in_h_and_e_skin() {
    let (_, manifest, net) = bundled("accurate");
    let svs = test_data().join("CMU-1-Small-Region.svs");
    let slide = block_on(Slide::open_location(svs.to_str().unwrap(), SlideOptions::one_pass())).unwrap();
    let (prediction, wsi) = predict(&slide, &net, &manifest);
    let found = prediction.glomeruli(wsi.objects());
    println!("accurate model, H&E skin: {} glomeruli claimed in {} windows", found.len(), prediction.plan.windows.len());
    assert_eq!(found.len(), 0, "glomeruli claimed in skin");
}

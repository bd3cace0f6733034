//! Training (feature `train`): a small run on synthetic slides in the Kaggle layout learns, writes
//! its run folder, resumes exactly where a killed run stopped, trains over two devices, and
//! exports a model folder that `predict` reads and a further run can start from (fine-tuning); a
//! run mixing an annotated image folder (PNG + mask PNGs, pixel size given) with a Kaggle layout
//! records its scale and scores objects.
#![cfg(feature = "train")]

use burn::prelude::*;
use ftuscope::model::{SegmenterConfig, folder};
use ftuscope::synth::{DatasetOptions, write_dataset};
use ftuscope::train::{AugmentConfig, DatasetConfig, Event, TrainConfig, export, resume, train};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

fn go() -> AtomicBool {
    AtomicBool::new(false)
}

/// Two 1536×1536 synthetic slides (ids sorted: one trains, one is held out with --folds 2).
fn dataset(dir: &Path) {
    let options = DatasetOptions { count: 2, size: (1536, 1536), seed: 11, tile: 256, ..DatasetOptions::default() };
    write_dataset(dir, &options, |_, _| {}).unwrap();
}

/// A small, fast run: 512 px windows at 128 px, a tiny U-Net, 24 tiles an epoch.
fn config(data: &Path, epochs: usize) -> TrainConfig {
    let model = SegmenterConfig::from_arch("unet-tiny").unwrap().with_input_size(128).with_decoder_channels(vec![32, 24, 16, 12, 8]);
    let mut c = TrainConfig::new(vec![DatasetConfig::new(data.display().to_string())], model)
        .with_epochs(epochs)
        .with_batch(4)
        .with_folds(2)
        .with_lr(3e-3)
        .with_slide_validation(false);
    c.tiles.window = 512;
    c.tiles.size = 128;
    c.tiles.overlap = 256;
    c.sampler.samples_per_epoch = Some(24);
    c.augment = AugmentConfig::new();
    c
}

fn metrics(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(8).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn a_run_learns_checkpoints_resumes_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let (data, cache) = (dir.path().join("data"), dir.path().join("cache"));
    dataset(&data);
    let device = [Device::flex()];
    let mut tiles = (0, 0);
    let mut epochs = Vec::new();

    // Uninterrupted: 3 epochs.
    let full = dir.path().join("full");
    train(config(&data, 3), &full, &device, &cache, &go(), &mut |e| match e {
        Event::Tiles { train, valid, .. } => tiles = (train, valid),
        Event::Epoch(m) => epochs.push(m.clone()),
        _ => {}
    })
    .unwrap();
    assert!(tiles.0 > 0 && tiles.1 > 0, "tiles {tiles:?}");
    assert_eq!(epochs.len(), 3);
    println!("epochs: {epochs:#?}");
    assert!(epochs.iter().all(|m| m.train_loss.is_finite() && m.valid_dice.is_some()));
    assert!(
        epochs[2].train_loss < epochs[0].train_loss,
        "the loss does not fall: {:?}",
        epochs.iter().map(|m| m.train_loss).collect::<Vec<_>>()
    );
    for file in [
        "config.json",
        "metrics.csv",
        "loss.png",
        "dice.png",
        "lr.png",
        "checkpoint/model.bpk",
        "checkpoint/optim.bpk",
        "checkpoint/state.json",
        "best/model.json",
    ] {
        assert!(full.join(file).exists(), "{file} missing");
    }
    assert_eq!(metrics(&full).len(), 3);
    // A run folder is never overwritten.
    assert!(train(config(&data, 3), &full, &device, &cache, &go(), &mut |_| {}).is_err());

    // Killed after epoch 2 (mid-epoch 3, a half-written checkpoint left behind): resuming
    // finishes epoch 3 exactly as the uninterrupted run did.
    let killed = dir.path().join("killed");
    let stop = AtomicBool::new(false);
    let err = train(config(&data, 3), &killed, &device, &cache, &stop, &mut |e| {
        if let Event::Epoch(m) = e
            && m.epoch == 2
        {
            stop.store(true, Ordering::Relaxed);
        }
    })
    .unwrap_err();
    assert!(matches!(err, ftuscope::train::Error::Cancelled), "{err}");
    assert_eq!(metrics(&killed).len(), 2);
    std::fs::create_dir_all(killed.join("checkpoint.partial")).unwrap();
    std::fs::write(killed.join("checkpoint.partial/model.bpk"), b"half").unwrap();
    resume(&killed, &device, &cache, &go(), &mut |_| {}).unwrap();
    assert_eq!(metrics(&killed), metrics(&full), "resumed run differs from the uninterrupted one");

    // Export: a model folder with the manifest filled in, loadable, f16 smaller.
    let out = dir.path().join("model");
    let manifest = export(&full, &out, "test", false).unwrap();
    assert_eq!((manifest.window, manifest.model.input_size, manifest.name.as_str()), (512, 128, "test"));
    assert!(manifest.trained_on.contains("synthetic"), "{}", manifest.trained_on);
    let (_, back) = folder::load(&out, &Device::flex()).unwrap();
    assert_eq!(back, manifest);
    let half = dir.path().join("model16");
    export(&full, &half, "test", true).unwrap();
    assert!(std::fs::metadata(half.join("model.bpk")).unwrap().len() < std::fs::metadata(out.join("model.bpk")).unwrap().len());
    assert!(export(&dir.path().join("nothing"), &out, "x", false).is_err());

    // Fine-tuning: a run that starts from the exported model (`init`) begins where that model
    // left off — its first held-out loss is below a fresh run's first — and a model folder of
    // another network is refused before any training, naming the flag.
    let warm = dir.path().join("warm");
    let mut warm_epochs = Vec::new();
    train(config(&data, 1).with_init(Some(out.display().to_string())), &warm, &device, &cache, &go(), &mut |e| {
        if let Event::Epoch(m) = e {
            warm_epochs.push(m.clone())
        }
    })
    .unwrap();
    let (fresh_loss, warm_loss) = (epochs[0].valid_loss.unwrap(), warm_epochs[0].valid_loss.unwrap());
    println!("first held-out loss: fresh {fresh_loss:.4}, from the exported model {warm_loss:.4}");
    assert!(warm_loss < fresh_loss, "a warm start does not start from the model: {warm_loss} vs fresh {fresh_loss}");
    let mut other = config(&data, 1).with_init(Some(out.display().to_string()));
    other.model.decoder_channels = vec![16, 16, 8, 8, 8];
    let err = train(other, &dir.path().join("other"), &device, &cache, &go(), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("--init") && err.to_string().contains("not the one configured"), "{err}");
    let err = train(
        config(&data, 1).with_init(Some(dir.path().join("nothing").display().to_string())),
        &dir.path().join("none"),
        &device,
        &cache,
        &go(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("model.json"), "{err}");
}

#[test]
fn two_devices_and_whole_slide_validation() {
    let dir = tempfile::tempdir().unwrap();
    let (data, cache) = (dir.path().join("data"), dir.path().join("cache"));
    dataset(&data);
    let run = dir.path().join("run");
    let mut scores = Vec::new();
    let devices = [Device::flex(), Device::flex()];
    let result = train(config(&data, 1).with_slide_validation(true), &run, &devices, &cache, &go(), &mut |e| {
        if let Event::Slide(s) = e {
            scores.push(s.clone());
        }
    })
    .unwrap();
    assert_eq!(result.len(), 1);
    assert_eq!(scores.len(), 1);
    assert!((0.0..=1.0).contains(&scores[0].dice));
    let validation = std::fs::read_to_string(run.join("validation.csv")).unwrap();
    assert!(validation.starts_with("id,dice") && validation.contains("mean,"), "{validation}");
    let manifest = std::fs::read_to_string(run.join("best/model.json")).unwrap();
    assert!(manifest.contains("\"validation_dice\": ") && !manifest.contains("\"validation_dice\": null"), "{manifest}");
}

/// A folder of PNG images with mask PNGs (cut from the synthetic test slide, no pixel size in the
/// files: given as 0.5 µm/px) mixed with a Kaggle-layout dataset: windows follow the input pixel
/// size, held-out images are scored with object counts, and the manifest carries the scale.
#[test]
fn an_image_folder_mixed_with_a_kaggle_dataset_trains_at_its_pixel_size() {
    use ftuscope::slide::{Slide, SlideOptions};
    use futures_lite::future::block_on;
    let dir = tempfile::tempdir().unwrap();
    let (kaggle, images, cache) = (dir.path().join("kaggle"), dir.path().join("images"), dir.path().join("cache"));
    dataset(&kaggle);
    std::fs::create_dir_all(&images).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/synth-3072x2048.tif");
    let slide = block_on(Slide::open_location(path, SlideOptions::one_pass())).unwrap();
    let rle = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/synth-3072x2048.rle")).unwrap();
    let truth = ftuscope::mask::rle_decode(rle.trim(), 3072, 2048).unwrap();
    for (k, (x, y)) in [(0u32, 0u32), (1536, 0), (0, 1024), (1536, 1024)].into_iter().enumerate() {
        let image = block_on(slide.read_region(0, x as i64, y as i64, 1536, 1024)).unwrap();
        image.save(images.join(format!("{k}.png"))).unwrap();
        let mask = image::GrayImage::from_fn(1536, 1024, |i, j| image::Luma([255 * truth.get(x + i, y + j) as u8]));
        mask.save(images.join(format!("{k}_mask.png"))).unwrap();
    }
    let mut c = config(&kaggle, 1).with_slide_validation(true);
    c.data = vec![
        DatasetConfig::new(images.display().to_string()).with_pixel_size_um(Some(0.5)).with_weight(3.0),
        DatasetConfig::new(kaggle.display().to_string()),
    ];
    c.tiles.input_pixel_size_um = Some(4.0);
    c.tiles.overlap = 0;
    let run = dir.path().join("run");
    let mut held = Vec::new();
    train(c, &run, &[Device::flex()], &cache, &go(), &mut |e| {
        if let Event::Slide(s) = e {
            held.push(s.clone());
        }
    })
    .unwrap();
    // Fold 0 of 2: the first two images and the first Kaggle slide.
    assert_eq!(held.iter().map(|s| s.id.as_str()).filter(|id| id.starts_with("0-")).collect::<Vec<_>>(), ["0-0", "0-1"]);
    assert!(held.iter().any(|s| s.id.starts_with("1-")));
    assert!(held.iter().map(|s| s.scores.truth_objects).sum::<usize>() > 0, "{held:?}");
    let (_, manifest) = folder::load(&run.join("best"), &Device::flex()).unwrap();
    assert_eq!((manifest.input_pixel_size_um, manifest.window), (Some(4.0), 1024), "512 µm windows at the first dataset's 0.5 µm/px");
    assert!(manifest.trained_on.contains("(4 images)") && manifest.validation.contains("recall"), "{manifest:?}");
    // An image folder without a pixel size (and none in its PNGs) cannot be scaled: a clear error.
    let mut c = config(&kaggle, 1);
    c.data = vec![DatasetConfig::new(images.display().to_string())];
    c.tiles.input_pixel_size_um = Some(4.0);
    let err = train(c, &dir.path().join("run2"), &[Device::flex()], &cache, &go(), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("pixel size"), "{err}");
}

#[test]
fn bad_settings_and_data_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let device = [Device::flex()];
    let cache = dir.path().join("cache");
    // No dataset.
    let err = train(config(&dir.path().join("none"), 1), &dir.path().join("r1"), &device, &cache, &go(), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("train.csv"), "{err}");
    // A train.csv with a broken RLE.
    std::fs::create_dir_all(dir.path().join("bad/train")).unwrap();
    std::fs::write(dir.path().join("bad/train.csv"), "id,encoding\nabc,1 2 x\n").unwrap();
    let err = train(config(&dir.path().join("bad"), 1), &dir.path().join("r2"), &device, &cache, &go(), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("abc"), "{err}");
    // A tile size the model does not take.
    let mut c = config(&dir.path().join("bad"), 1);
    c.tiles.size = 100;
    assert!(train(c, &dir.path().join("r3"), &device, &cache, &go(), &mut |_| {}).is_err());
    // Resuming nothing.
    assert!(resume(&dir.path().join("r4"), &device, &cache, &go(), &mut |_| {}).is_err());
}

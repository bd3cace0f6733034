//! Tests of the training loop: identical tensors for training and inference, exact resume, dates.

use super::*;

/// Training and inference feed the network the same tensors for the same pixels: tiles are cut
/// with the engine's scaled read, and batches are normalised with the statistics the exported
/// manifest carries, through the one normaliser inference uses.
#[test]
fn training_tiles_and_inference_windows_of_the_same_pixels_give_the_same_tensors() {
    let slide_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/synth-3072x2048.tif");
    let entry = SlideEntry {
        id: "s".into(),
        location: slide_path.into(),
        rle: String::new(),
        anatomy: Vec::new(),
        dataset: 0,
        group: "s".into(),
        pixel_size_um: None,
        objects: Vec::new(),
    };
    let tile_config = super::super::TileConfig::new().with_window(1024).with_size(128).with_min_tissue(0.0);
    let tiles = block_on(super::super::data::extract(&entry, &tile_config, &mut |_, _| {})).unwrap();
    assert!(tiles.len() >= 4, "{} tiles", tiles.len());
    let model = crate::model::SegmenterConfig::from_arch("unet-tiny").unwrap().with_input_size(128);
    let odd = crate::model::Normaliser::new().with_mean([0.3, 0.5, 0.7]).with_std([0.2, 0.3, 0.4]);
    let config = TrainConfig::new(Vec::new(), model)
        .with_tiles(tile_config)
        .with_normaliser(odd.clone())
        .with_augment(super::super::AugmentConfig::none());
    let manifest = manifest_for(&config, "test", None);
    assert_eq!(manifest.normaliser(), odd, "the manifest carries the training normalisation");
    let device = Device::flex();
    let slide = block_on(Slide::open_location(slide_path, SlideOptions::one_pass())).unwrap();
    block_on(slide.build_overviews(&mut |_, _| {})).unwrap();
    for i in [0, tiles.len() - 1] {
        let (x, _) = make_batch(&tiles, &[i], &config, 0);
        let trained = config.normaliser.input(&x, 1, 128, &device).into_data().try_to_vec::<f32>().unwrap();
        let meta = &tiles.meta[i];
        let window = slide.read_scaled(meta.x as f64, meta.y as f64, 1024.0, 1024.0, 128, 128);
        let window = block_on(window).unwrap();
        let inferred = manifest.normaliser().input(window.as_raw(), 1, 128, &device).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(trained, inferred, "tile {i} at ({}, {})", meta.x, meta.y);
    }
}

#[test]
fn utc_dates_are_iso() {
    let now = utc_now();
    assert_eq!(now.len(), 20);
    assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
}

/// Every weight of a seeded network trains (a seeded tensor once lost its tracking, leaving
/// only BatchNorm learning), and a model + optimiser reloaded from a checkpoint take exactly
/// the step the originals take.
#[test]
fn a_reloaded_model_and_optimiser_step_exactly_as_the_originals() {
    let dev = Device::flex().autodiff();
    let cfg = crate::model::SegmenterConfig::from_arch("unet-tiny").unwrap().with_input_size(64).with_decoder_channels(vec![8, 8, 8, 8, 8]);
    struct Untracked(usize);
    impl burn::module::ModuleVisitor for Untracked {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
            // Only BatchNorm running statistics (rank 1, never trained) may be untracked.
            if D > 1 && !p.is_require_grad() {
                self.0 += 1;
            }
        }
    }
    let mut model = seeded(cfg.init(&dev), 3);
    let mut untracked = Untracked(0);
    model.visit(&mut untracked);
    assert_eq!(untracked.0, 0, "seeded weights are not trainable");
    let mut optim: ModuleOptimizer = AdamWConfig::new().init();
    let x = Tensor::<4>::ones([2, 3, 64, 64], &dev);
    let step = |model: SegmentationModel, optim: &mut ModuleOptimizer| {
        let loss = model.forward(x.clone()).mean();
        let g = GradientsParams::from_grads(loss.backward(), &model);
        optim.step(1e-2, model, g)
    };
    model = step(model, &mut optim);
    let dir = tempfile::tempdir().unwrap();
    model.clone().save_file(dir.path().join("m.bpk")).unwrap();
    optim.save(dir.path().join("o.bpk")).unwrap();
    let a = step(model, &mut optim);
    let loaded: SegmentationModel = cfg.init(&dev).try_load_file(dir.path().join("m.bpk")).unwrap();
    let mut optim2 = AdamWConfig::new().init().load(dir.path().join("o.bpk")).unwrap();
    let b = step(loaded, &mut optim2);
    assert_eq!(a.forward(x.clone()).into_data(), b.forward(x).into_data());
}

/// Fine-tuning options: frozen encoder levels get no gradient and keep their weights, frozen norms
/// keep the encoder's running statistics while the decoder's move, and an encoder learning rate
/// of 0 leaves the whole encoder as it was while the decoder trains.
#[test]
fn frozen_levels_frozen_norms_and_the_encoder_learning_rate_hold_the_encoder() {
    let dev = Device::flex().autodiff();
    let cfg = crate::model::SegmenterConfig::from_arch("unet-tiny").unwrap().with_input_size(64).with_decoder_channels(vec![8, 8, 8, 8, 8]);
    let tensors = |model: &SegmentationModel| -> std::collections::BTreeMap<String, Vec<f32>> {
        burn_store::ModuleSnapshot::collect(&model.valid(), None, None, true)
            .into_iter()
            .map(|t| (t.name.clone(), burn_store::bridge::to_data(&t).unwrap().convert::<f32>().try_to_vec::<f32>().unwrap()))
            .collect()
    };
    let x = Tensor::<4>::random([2, 3, 64, 64], burn::tensor::Distribution::Normal(0.5, 1.0), &dev);
    let step = |model: SegmentationModel, encoder_lr: f64| {
        let mut optim: ModuleOptimizer = AdamWConfig::new().init();
        let group = model.encoder_params();
        let loss = model.forward(x.clone()).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optim.step(learning_rates(1e-2, encoder_lr, &group), model, grads)
    };
    let changed = |before: &std::collections::BTreeMap<String, Vec<f32>>,
                   after: &std::collections::BTreeMap<String, Vec<f32>>,
                   name: &str| { before[name] != after[name] };

    let model = seeded(cfg.init(&dev), 3).freeze_encoder(2, true);
    let before = tensors(&model);
    let after = tensors(&step(model, 1.0));
    assert!(!changed(&before, &after, "encoder.stages.0.conv.weight") && !changed(&before, &after, "encoder.stages.1.conv.weight"));
    assert!(changed(&before, &after, "encoder.stages.2.conv.weight"), "level 3 trains");
    assert!(changed(&before, &after, "encoder.stages.2.bn.gamma"), "frozen norms still train their scale");
    assert!(!changed(&before, &after, "encoder.stages.2.bn.running_mean"), "frozen norms keep their statistics");
    assert!(changed(&before, &after, "decoder.blocks.0.conv1.bn.running_mean"), "the decoder's norms learn statistics");

    let model = seeded(cfg.init(&dev), 3);
    let before = tensors(&model);
    let after = tensors(&step(model, 0.0));
    assert!(!changed(&before, &after, "encoder.stages.2.conv.weight"), "encoder learning rate 0");
    assert!(changed(&before, &after, "decoder.blocks.0.conv1.conv.weight"), "the decoder trains");
}

/// A run started by an older ftuscope resumes: settings added since (at the top, in nested
/// configs, in each dataset) are absent from its config.json and take their defaults.
#[test]
fn an_older_config_json_reads_with_the_new_settings_defaulted() {
    let config = TrainConfig::new(
        vec![super::super::DatasetConfig::new("a".into()), super::super::DatasetConfig::new("b".into()).with_weight(2.0)],
        crate::model::SegmenterConfig::from_arch("unet-efficientnet-lite0").unwrap(),
    )
    .with_epochs(3);
    let mut old: serde_json::Value = serde_json::from_str(&config.to_string()).unwrap();
    old.as_object_mut().unwrap().remove("stain_normalise");
    old["augment"].as_object_mut().unwrap().remove("p_restain");
    old["model"].as_object_mut().unwrap().remove("drop_path_rate");
    for d in old["data"].as_array_mut().unwrap() {
        d.as_object_mut().unwrap().remove("negative");
    }
    assert!(serde_json::from_value::<TrainConfig>(old.clone()).is_err(), "serde alone refuses the old file");
    let read = TrainConfig::from_json_with_defaults(&old.to_string()).unwrap();
    assert_eq!(read.to_string(), config.to_string());
    assert!(TrainConfig::from_json_with_defaults("{").is_err());
}

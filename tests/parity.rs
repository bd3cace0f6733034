//! Parity with PyTorch (run by `make parity`, which writes the fixtures with .ci/parity.py): each
//! segmentation_models_pytorch network, loaded from its state dict, must give the same logits on the
//! same input (against PyTorch's float64 evaluation of the same network: max |Δ| ≤ 1e-4, or ≤ 2× PyTorch's own
//! float32 deviation where f32 rounding alone exceeds that) and have the same parameter count. Also times the CPU forward pass
//! of U-Net-effb0 at 512×512 beside PyTorch's. Ignored in `make test` (the fixtures need torch).

use burn::prelude::*;
use ftuscope::model::import::{WeightsKind, import, trainable_params};
use ftuscope::model::{DecoderKind, SegmenterConfig};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn floats(path: &Path) -> Vec<f32> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

#[test]
#[ignore = "needs the fixtures of `make parity`"]
fn logits_and_parameter_counts_equal_pytorch() {
    let root = PathBuf::from(std::env::var("FTUSCOPE_PARITY_DIR").expect("FTUSCOPE_PARITY_DIR (make parity sets it)"));
    let device = Device::flex();
    let mut names: Vec<_> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("facts.json").exists()).collect();
    names.sort();
    println!(
        "| model | params (smp) | params (ftuscope) | GFLOPs at 512² | tensors applied | max abs logit | max abs diff, ftuscope f32 | max abs diff, PyTorch f32 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    for dir in &names {
        let facts: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("facts.json")).unwrap()).unwrap();
        let decoder = if facts["decoder"] == "fpn" { DecoderKind::Fpn } else { DecoderKind::Unet };
        let config = SegmenterConfig::new(facts["encoder"].as_str().unwrap().parse().unwrap(), decoder)
            .with_attention(facts["attention"].as_bool().unwrap());
        let mut model = config.init(&device);
        let report = import(&mut model, &config, &dir.join("weights.safetensors"), WeightsKind::Full).unwrap();
        let shape: Vec<usize> = facts["input"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let input = Tensor::<4>::from_data(TensorData::new(floats(&dir.join("input.bin")), shape.clone()), &device);
        let ours: Vec<f32> = model.forward(input).into_data().try_to_vec::<f32>().unwrap();
        let theirs = floats(&dir.join("logits.bin"));
        assert_eq!(ours.len(), theirs.len());
        let diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let params = trainable_params(&model);
        let name = dir.file_name().unwrap().to_string_lossy();
        println!(
            "| {name} | {} | {params} | {:.1} | {} | {:.1} | {diff:.1e} | {:.1e} |",
            facts["params"],
            facts["gflops_512"].as_f64().unwrap_or(0.0),
            report.applied,
            facts["logit_abs_max"].as_f64().unwrap_or(0.0),
            facts["torch_f32_diff"].as_f64().unwrap_or(0.0)
        );
        // f32 rounding alone moves these random-weight networks' logits by up to ~1e-3 (PyTorch's own
        // f32 run shows it): within 1e-4, or within twice PyTorch's own f32 deviation.
        let torch_f32 = facts["torch_f32_diff"].as_f64().unwrap_or(0.0) as f32;
        if diff > 1e-4_f32.max(2.0 * torch_f32)
            || params as u64 != facts["params"].as_u64().unwrap()
            || !report.missing.is_empty()
            || !report.unused.is_empty()
        {
            failures.push(format!(
                "{name}: diff {diff:e}, params {params}, missing {:?}, unused {:?}",
                &report.missing[..report.missing.len().min(3)],
                &report.unused[..report.unused.len().min(3)]
            ));
        }
        if let Some(torch_ms) = facts["torch_ms_512"].as_f64() {
            // The .pth path too, and the speed comparison.
            let mut from_pth = config.init(&device);
            import(&mut from_pth, &config, &dir.join("weights.pth"), WeightsKind::Full).unwrap();
            let big = Tensor::<4>::random([1, 3, 512, 512], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
            let _ = model.forward(big.clone()).into_data();
            let mut times: Vec<f64> = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let _ = model.forward(big.clone()).into_data();
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let ms = times[2];
            println!(
                "SPEED {name} 512×512 CPU forward: ftuscope (flex) {ms:.0} ms, PyTorch {torch_ms:.0} ms ({} threads): PyTorch/ftuscope = {:.2}",
                facts["torch_threads"],
                torch_ms / ms
            );
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

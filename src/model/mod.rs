//! Segmentation networks: the seed's encoders (EfficientNet b0–b7, ResNet-34/50, tiny) under U-Net
//! or FPN decoders, built from a [`SegmenterConfig`] with smp's structure and parameter names
//! ([`SegmentationModel`]); the [`Manifest`] that travels with the weights in a model folder
//! ([`folder`]); and the input [`Normaliser`] training and inference share.

mod blocks;
mod decoders;
mod efficientnet;
mod error;
pub mod folder;
#[cfg(not(target_arch = "wasm32"))]
pub mod import;
mod manifest;
mod net;
mod normalise;
mod resnet;

pub use error::{Error, Result};
pub use manifest::{MANIFEST_FORMAT, Manifest, Precision};
pub use net::{DecoderKind, EncoderKind, STRIDE, SegmentationModel, SegmenterConfig};
pub use normalise::{IMAGENET_MEAN, IMAGENET_STD, LabStats, Normaliser};

use crate::rng::SplitMix64;
use burn::module::{ModuleMapper, Param};
use burn::prelude::*;

/// Seed of the weights of networks run untrained (`untrained:ARCH`: pipeline checks, benchmarks).
pub const UNTRAINED_SEED: u64 = 42;

/// `module` with its weights redrawn from a seeded stream: identical on every device and thread
/// (for untrained networks that must be compared across backends). Norm layers keep their
/// initial values (scale 1, shift 0, unit running variance).
pub fn seeded<M: Module>(module: M, seed: u64) -> M {
    module.map(&mut SeededInit::new(seed))
}

/// Replaces every float parameter: weights uniform in ±1/√fan_in (PyTorch's default conv
/// initialisation), biases zero, drawn from a [`SplitMix64`] stream.
struct SeededInit {
    rng: SplitMix64,
    containers: Vec<String>,
}

impl SeededInit {
    fn new(seed: u64) -> Self {
        Self { rng: SplitMix64::new(seed), containers: Vec::new() }
    }
}

impl ModuleMapper for SeededInit {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.containers.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.containers.last().is_some_and(|c| c.ends_with("Norm")) {
            return param;
        }
        param.map(|tensor| {
            // Keep the parameter trainable on an autodiff device (a fresh tensor is untracked).
            let track = tensor.is_require_grad();
            let dims = tensor.dims();
            let count: usize = dims.iter().product();
            let fan_in: usize = if D > 1 { dims[1..].iter().product() } else { count };
            // Biases start at zero; weights uniform in ±1/√fan_in.
            let bound = if D > 1 { 1.0 / (fan_in.max(1) as f32).sqrt() } else { 0.0 };
            let values: Vec<f32> = (0..count).map(|_| self.rng.signed_f32() * bound).collect();
            Tensor::from_data(TensorData::new(values, dims), &tensor.device()).set_require_grad(track)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(encoder: &str, decoder: DecoderKind) -> usize {
        import::trainable_params(&SegmenterConfig::new(encoder.parse().unwrap(), decoder).init(&Device::flex()))
    }

    /// Counts printed by segmentation_models_pytorch 0.6.0 (`sum(p.numel() for p in m.parameters())`).
    #[test]
    fn parameter_counts_equal_smp() {
        assert_eq!(params("efficientnet-b0", DecoderKind::Unet), 6_251_469);
        assert_eq!(params("efficientnet-b0", DecoderKind::Fpn), 5_759_485);
        assert_eq!(params("efficientnet-b4", DecoderKind::Unet), 20_225_689);
        assert_eq!(params("resnet34", DecoderKind::Unet), 24_436_369);
    }

    #[test]
    fn every_encoder_and_decoder_gives_logits_at_input_resolution() {
        let device = Device::flex();
        for encoder in ["tiny", "efficientnet-b0", "resnet34"] {
            for decoder in [DecoderKind::Unet, DecoderKind::Fpn] {
                let model = SegmenterConfig::new(encoder.parse().unwrap(), decoder).init(&device);
                let out = model.forward(Tensor::zeros([1, 3, 64, 96], &device));
                assert_eq!(out.dims(), [1, 1, 64, 96], "{encoder} {decoder:?}");
            }
        }
    }

    /// Gives every norm layer's γ, β, running mean and running variance distinct values in
    /// 0.5..1.5, so that a norm folded into the wrong convolution, or its statistics misused, shows.
    struct DistinctNorms(SeededInit);

    impl ModuleMapper for DistinctNorms {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.0.enter_module(name, container_type);
        }

        fn exit_module(&mut self, name: &str, container_type: &str) {
            self.0.exit_module(name, container_type);
        }

        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if !self.0.containers.last().is_some_and(|c| c.ends_with("Norm")) {
                return param;
            }
            param.map(|tensor| {
                let values: Vec<f32> = (0..tensor.dims().iter().product()).map(|_| 1.0 + 0.5 * self.0.rng.signed_f32()).collect();
                Tensor::from_data(TensorData::new(values, tensor.dims()), &tensor.device())
            })
        }
    }

    #[test]
    fn folding_batch_norms_keeps_the_logits_and_leaves_no_norm() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 64, 96], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        for encoder in ["tiny", "efficientnet-b0", "resnet50"] {
            for decoder in [DecoderKind::Unet, DecoderKind::Fpn] {
                let model = seeded(SegmenterConfig::new(encoder.parse().unwrap(), decoder).init(&device), 7);
                let model = model.map(&mut DistinctNorms(SeededInit::new(8)));
                let plain: Vec<f32> = model.clone().forward(x.clone()).into_data().try_to_vec().unwrap();
                let folded = model.folded();
                assert!(!format!("{folded:?}").contains("BatchNorm"), "{encoder} {decoder:?}: a batch norm left");
                let out: Vec<f32> = folded.forward(x.clone()).into_data().try_to_vec().unwrap();
                let scale = plain.iter().fold(1f32, |m, v| m.max(v.abs()));
                let worst = plain.iter().zip(&out).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(worst <= 1e-4 * scale, "{encoder} {decoder:?}: max |Δlogit| {worst} (logits up to {scale})");
            }
        }
    }

    /// The vendored burn-flex computes depthwise-convolution gradients with direct kernels
    /// (vendor/README.md). A depthwise convolution equals a dense (`groups = 1`) convolution whose
    /// weight is block-diagonal, so outputs, input gradients (the dense one by upstream's
    /// unpatched path) and the diagonal of the dense weight gradient (patched: im2col + GEMM,
    /// checked against the definition in the vendored crate's tests) must all agree, on random
    /// data and awkward geometries, through burn's autodiff as training uses it.
    #[test]
    fn depthwise_gradients_equal_the_dense_path() {
        use burn::tensor::module::conv2d;
        use burn::tensor::ops::ConvOptions;
        let device = Device::flex().autodiff();
        let mut rng = crate::rng::SplitMix64::new(11);
        let mut random = |dims: [usize; 4]| -> Vec<f32> { (0..dims.iter().product()).map(|_| rng.signed_f32()).collect() };
        let (b, c, h, w) = (2, 5, 13, 11);
        // (kernel, stride, padding, dilation), as EfficientNet uses them and beyond.
        for (k, stride, pad, dil) in [(3, 1, 1, 1), (5, 2, 2, 1), (3, 2, 1, 1), (3, 1, 2, 2), (1, 1, 0, 1)] {
            let x_values = random([b, c, h, w]);
            let w_values = random([c, 1, k, k]);
            let mut dense = vec![0f32; c * c * k * k];
            for ch in 0..c {
                dense[(ch * c + ch) * k * k..][..k * k].copy_from_slice(&w_values[ch * k * k..][..k * k]);
            }
            let run = |weight: Vec<f32>, in_per_group: usize, groups: usize| {
                let x = Tensor::<4>::from_data(TensorData::new(x_values.clone(), [b, c, h, w]), &device).require_grad();
                let wt = Tensor::<4>::from_data(TensorData::new(weight, [c, in_per_group, k, k]), &device).require_grad();
                let options = ConvOptions::new([stride; 2], [pad; 2], [dil; 2], groups);
                let y = conv2d(x.clone(), wt.clone(), None, options);
                let dims = y.dims();
                let r: Vec<f32> = (0..dims.iter().product::<usize>()).map(|i| ((i * 7919) % 13) as f32 / 6.0 - 1.0).collect();
                let loss = (y.clone() * Tensor::<4>::from_data(TensorData::new(r, dims), &device)).sum();
                let grads = loss.backward();
                let flat = |t: Tensor<4>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
                (flat(y.inner()), flat(x.grad(&grads).unwrap()), flat(wt.grad(&grads).unwrap()))
            };
            let (y_dw, dx_dw, dw_dw) = run(w_values.clone(), 1, c);
            let (y_dense, dx_dense, dw_dense) = run(dense, c, 1);
            let dw_diag: Vec<f32> = (0..c).flat_map(|ch| dw_dense[(ch * c + ch) * k * k..][..k * k].to_vec()).collect();
            let close = |what: &str, a: &[f32], e: &[f32]| {
                assert_eq!(a.len(), e.len(), "{what}");
                let scale = e.iter().fold(1f32, |m, v| m.max(v.abs()));
                let worst = a.iter().zip(e).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
                assert!(worst <= 1e-5 * scale, "k{k} s{stride} p{pad} d{dil} {what}: max |Δ| {worst} (values up to {scale})");
            };
            close("output", &y_dw, &y_dense);
            close("input gradient", &dx_dw, &dx_dense);
            close("weight gradient", &dw_dw, &dw_diag);
        }
    }

    #[test]
    fn config_round_trips_through_json() {
        let config = SegmenterConfig::new("efficientnet-b4".parse().unwrap(), DecoderKind::Fpn).with_attention(true);
        let json = serde_json::to_string(&config).unwrap();
        let back: SegmenterConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
        assert!("efficientnet-b9".parse::<EncoderKind>().is_err());
    }

    #[test]
    fn seeded_weights_are_identical_across_threads() {
        let weights = || {
            let config = SegmenterConfig::from_arch("unet-tiny").unwrap().with_decoder_channels(vec![8; 5]);
            let model = seeded(config.init(&Device::flex()), UNTRAINED_SEED);
            model.forward(Tensor::<4>::ones([1, 3, 32, 32], &Device::flex())).into_data().try_to_vec::<f32>().unwrap()
        };
        let here = weights();
        let threads: Vec<_> = (0..4).map(|_| std::thread::spawn(weights)).collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), here);
        }
    }
}

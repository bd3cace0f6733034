//! Segmentation networks. For now one small placeholder U-Net ([`TinyUNet`]); the EfficientNet/ResNet
//! encoders with U-Net/FPN decoders of the seed's recipe come later and plug in behind the same
//! `forward(images) -> logits` contract.

mod tiny;

pub use tiny::{TinyUNet, TinyUNetConfig};

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use crate::rng::SplitMix64;

/// Seed of the placeholder network's weights.
pub const PLACEHOLDER_SEED: u64 = 42;

/// The placeholder network with fixed, untrained weights, on `device`.
///
/// The weights come from a local seeded stream rather than the backend's random generator (which
/// is global and shared between threads), so every build, thread and device — native CPU, CUDA,
/// WebGPU — gets exactly the same numbers and their outputs can be compared.
pub fn placeholder(device: &Device) -> TinyUNet {
    TinyUNetConfig::new()
        .init(&Device::flex())
        .map(&mut SeededInit::new(PLACEHOLDER_SEED))
        .to_device(device)
}

/// Replaces every float parameter: weights uniform in ±1/√fan_in (PyTorch's default conv
/// initialisation), biases zero, drawn from a [`SplitMix64`] stream.
struct SeededInit {
    rng: SplitMix64,
}

impl SeededInit {
    fn new(seed: u64) -> Self {
        Self { rng: SplitMix64::new(seed) }
    }
}

impl ModuleMapper for SeededInit {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|tensor| {
            let dims = tensor.dims();
            let count: usize = dims.iter().product();
            let fan_in: usize = if D > 1 { dims[1..].iter().product() } else { count };
            // Biases start at zero; weights uniform in ±1/√fan_in.
            let bound = if D > 1 { 1.0 / (fan_in.max(1) as f32).sqrt() } else { 0.0 };
            let values: Vec<f32> = (0..count).map(|_| self.rng.signed_f32() * bound).collect();
            Tensor::from_data(TensorData::new(values, dims), &tensor.device())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_weights_are_identical_across_threads() {
        let weights = || {
            let model = placeholder(&Device::flex());
            let input = Tensor::<4>::ones([1, 3, 8, 8], &Device::flex());
            model.forward(input).into_data().try_into_vec::<f32>().unwrap()
        };
        let here = weights();
        let threads: Vec<_> = (0..4).map(|_| std::thread::spawn(weights)).collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), here);
        }
    }
}

//! Segmentation networks. For now one small placeholder U-Net ([`TinyUNet`]); the EfficientNet/ResNet
//! encoders with U-Net/FPN decoders of the seed's recipe come later and plug in behind the same
//! `forward(images) -> logits` contract.

mod tiny;

pub use tiny::{TinyUNet, TinyUNetConfig};

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;

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

/// Replaces every float parameter with values uniform in ±1/√fan_in (PyTorch's default conv
/// initialisation) drawn from a SplitMix64 stream.
struct SeededInit {
    state: u64,
}

impl SeededInit {
    fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Uniform in `[-1, 1)`.
    fn next(&mut self) -> f32 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
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
            let values: Vec<f32> = (0..count).map(|_| self.next() * bound).collect();
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

    #[test]
    fn seeded_stream_is_uniform_in_range() {
        let mut init = SeededInit::new(1);
        let values: Vec<f32> = (0..10_000).map(|_| init.next()).collect();
        assert!(values.iter().all(|v| (-1.0..1.0).contains(v)));
        let mean = values.iter().sum::<f32>() / values.len() as f32;
        assert!(mean.abs() < 0.05, "mean {mean}");
    }
}

//! A deliberately small U-Net: two encoder stages, a bottleneck and two decoder stages with skip
//! connections, nearest-neighbour ×2 upsampling and a 1-channel logit head. It exercises every
//! operation the real decoders use (conv, ReLU, max-pool, nearest upsampling, concat) at a cost a
//! CPU-emulated GPU can run in a test.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::interpolate::{Interpolate2d, Interpolate2dConfig, InterpolateMode};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{PaddingConfig2d, Relu};
use burn::prelude::*;

/// Hyper-parameters of [`TinyUNet`]; serialised beside its weights.
#[derive(Config, Debug)]
pub struct TinyUNetConfig {
    /// Input channels (3 for RGB).
    #[config(default = 3)]
    pub in_channels: usize,
    /// Channels of the first stage; the second stage and the bottleneck use twice as many.
    #[config(default = 8)]
    pub width: usize,
}

impl TinyUNetConfig {
    /// Total downsampling factor: input sides must be multiples of this.
    pub const STRIDE: usize = 4;

    /// Builds the network with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> TinyUNet {
        let w = self.width;
        let conv3 = |i: usize, o: usize| Conv2dConfig::new([i, o], [3, 3]).with_padding(PaddingConfig2d::Same).init(device);
        TinyUNet {
            enc1: conv3(self.in_channels, w),
            enc2: conv3(w, 2 * w),
            bottleneck: conv3(2 * w, 2 * w),
            dec2: conv3(4 * w, w),
            dec1: conv3(2 * w, w),
            head: Conv2dConfig::new([w, 1], [1, 1]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            up: Interpolate2dConfig::new().with_scale_factor(Some([2.0, 2.0])).with_mode(InterpolateMode::Nearest).init(),
            relu: Relu::new(),
        }
    }
}

/// The placeholder segmentation network. Untrained unless weights are loaded into it.
#[derive(Module, Debug)]
pub struct TinyUNet {
    enc1: Conv2d,
    enc2: Conv2d,
    bottleneck: Conv2d,
    dec2: Conv2d,
    dec1: Conv2d,
    head: Conv2d,
    pool: MaxPool2d,
    up: Interpolate2d,
    relu: Relu,
}

impl TinyUNet {
    /// Computes per-pixel glomerulus logits.
    ///
    /// # Shapes
    /// - `images`: `[batch, in_channels, height, width]`, normalised; height and width multiples of
    ///   [`TinyUNetConfig::STRIDE`].
    /// - returns: `[batch, 1, height, width]` logits (apply a sigmoid for probabilities).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let e1 = self.relu.forward(self.enc1.forward(images));
        let e2 = self.relu.forward(self.enc2.forward(self.pool.forward(e1.clone())));
        let b = self.relu.forward(self.bottleneck.forward(self.pool.forward(e2.clone())));
        let d2 = Tensor::cat(vec![self.up.forward(b), e2], 1);
        let d2 = self.relu.forward(self.dec2.forward(d2));
        let d1 = Tensor::cat(vec![self.up.forward(d2), e1], 1);
        let d1 = self.relu.forward(self.dec1.forward(d1));
        self.head.forward(d1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex()
    }

    #[test]
    fn output_has_input_resolution_and_one_channel() {
        let device = device();
        let model = TinyUNetConfig::new().init(&device);
        for (h, w) in [(16, 16), (64, 32), (128, 128)] {
            let out = model.forward(Tensor::zeros([2, 3, h, w], &device));
            assert_eq!(out.dims(), [2, 1, h, w]);
        }
    }

    #[test]
    fn width_changes_the_parameter_count() {
        let device = device();
        let small = TinyUNetConfig::new().with_width(4).init(&device).num_params();
        let big = TinyUNetConfig::new().with_width(8).init(&device).num_params();
        // 8 wide: enc1 3·8·9+8, enc2 8·16·9+16, bottleneck 16·16·9+16, dec2 32·8·9+8, dec1 16·8·9+8, head 8+1.
        assert_eq!(big, 224 + 1168 + 2320 + 2312 + 1160 + 9);
        assert!(small < big);
    }

    #[test]
    fn config_round_trips_through_json() {
        let config = TinyUNetConfig::new().with_width(6);
        let json = serde_json::to_string(&config).unwrap();
        let back: TinyUNetConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.width, 6);
        assert_eq!(back.in_channels, 3);
    }
}

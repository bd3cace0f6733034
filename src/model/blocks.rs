//! Building blocks shared by the encoders and decoders: conv + batch norm (and the folding of one
//! into the other for inference), squeeze-excitation.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid, silu};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

/// A convolution without bias and its batch norm (the pair every encoder repeats).
pub fn conv(device: &Device, channels: [usize; 2], kernel: usize, stride: usize, groups: usize, bias: bool) -> Conv2d {
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(kernel / 2, kernel / 2, kernel / 2, kernel / 2))
        .with_groups(groups)
        .with_bias(bias)
        .init(device)
}

/// A batch norm after a convolution; `None` once [`fold`] has merged it into that convolution (for
/// inference). Weights files always hold it: folding happens after loading.
pub type Norm = Option<BatchNorm>;

/// Batch norm with PyTorch's epsilon (1e-5, as timm, torchvision and smp use).
pub fn bn(device: &Device, channels: usize) -> Norm {
    bn_with_epsilon(device, channels, 1e-5)
}

/// Batch norm with the given epsilon (TensorFlow-trained weights use 1e-3).
pub fn bn_with_epsilon(device: &Device, channels: usize, epsilon: f64) -> Norm {
    Some(BatchNormConfig::new(channels).with_epsilon(epsilon).init(device))
}

/// `x` through the batch norm, or as it is once the norm has been folded into its convolution.
pub fn norm(bn: &Norm, x: Tensor<4>) -> Tensor<4> {
    match bn {
        Some(bn) => bn.forward(x),
        None => x,
    }
}

/// Folds a batch norm, with its running statistics (inference), into the convolution that feeds
/// it: with s = γ / √(σ² + ε) per output channel, w' = w·s and b' = (b − μ)·s + β. The pair then
/// costs one convolution and no pass over the activation (burn runs a norm as four broadcast ops).
/// Nothing happens if the norm is already folded.
pub fn fold(conv: &mut Conv2d, bn: &mut Norm) {
    let Some(bn) = bn.take() else { return };
    let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt();
    let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
    let [out, ..] = conv.weight.dims();
    let weight = conv.weight.val() * scale.clone().reshape([out, 1, 1, 1]);
    let bias = match &conv.bias {
        Some(bias) => bias.val() * scale + shift,
        None => shift,
    };
    conv.weight = Param::from_tensor(weight);
    conv.bias = Some(Param::from_tensor(bias));
}

/// Squeeze-and-excitation as timm builds it: global average → 1×1 reduce → SiLU → 1×1 expand →
/// sigmoid gate. Names match timm (`conv_reduce`, `conv_expand`).
#[derive(Module, Debug)]
pub struct SqueezeExcite {
    conv_reduce: Conv2d,
    conv_expand: Conv2d,
}

impl SqueezeExcite {
    /// `channels` gated through `reduced` channels.
    pub fn new(device: &Device, channels: usize, reduced: usize) -> Self {
        Self {
            conv_reduce: conv(device, [channels, reduced], 1, 1, 1, true),
            conv_expand: conv(device, [reduced, channels], 1, 1, 1, true),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, channels, h, w]` → same.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = x.clone().mean_dim(2).mean_dim(3);
        let s = self.conv_expand.forward(silu(self.conv_reduce.forward(s)));
        x * sigmoid(s)
    }
}

/// Conv → batch norm → ReLU, smp's `Conv2dReLU` (PyTorch keys `0.*` conv, `1.*` norm; remapped to
/// `conv.*`, `bn.*` on import).
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    conv: Conv2d,
    bn: Norm,
}

impl ConvBnRelu {
    /// A `kernel`×`kernel` convolution (stride `stride`) without bias, its norm and ReLU.
    pub fn new(device: &Device, channels: [usize; 2], kernel: usize, stride: usize) -> Self {
        Self { conv: conv(device, channels, kernel, stride, 1, false), bn: bn(device, channels[1]) }
    }

    /// # Shapes
    /// - `x`: `[batch, in, h, w]` → `[batch, out, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(norm(&self.bn, self.conv.forward(x)))
    }

    /// Folds the norm into the convolution ([`fold`]).
    pub fn fold(&mut self) {
        fold(&mut self.conv, &mut self.bn);
    }
}

/// Nearest-neighbour ×`factor` upsampling (PyTorch `interpolate(mode="nearest")`).
pub fn upsample_nearest(x: Tensor<4>, factor: usize) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let options = InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h * factor, w * factor]);
    burn::tensor::module::interpolate(x, options)
}

/// Bilinear ×`factor` upsampling, corners aligned or not as PyTorch's `align_corners`.
pub fn upsample_bilinear(x: Tensor<4>, factor: usize, align_corners: bool) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let options =
        InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(align_corners).with_output_size([h * factor, w * factor]);
    burn::tensor::module::interpolate(x, options)
}

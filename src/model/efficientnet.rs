//! EfficientNet b0–b7 and EfficientNet-Lite0 as timm builds them (and smp's `timm-efficientnet-bN`
//! / `timm-efficientnet-lite0` encoders wrap them), with timm's parameter names, so timm/smp state
//! dicts load key for key: `conv_stem`, `bn1`, `blocks.{stage}.{block}.{conv_pw, bn1, conv_dw, bn2,
//! se.conv_reduce, se.conv_expand, conv_pwl, bn3}`, `conv_head`, `bn2`.
//!
//! Lite0 is b0 made for mobile accelerators: no squeeze-excitation, ReLU6 instead of SiLU, and
//! batch norms with TensorFlow's epsilon (1e-3) as its ImageNet weights were trained.

use super::blocks::{Norm, SqueezeExcite, bn_with_epsilon, conv, fold, norm};
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::silu;

/// Which EfficientNet: b`scale` (0–7), or Lite`scale` (0 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// The compound-scaling step (b0…b7).
    pub scale: usize,
    /// EfficientNet-Lite: no squeeze-excitation, ReLU6, batch-norm epsilon 1e-3.
    pub lite: bool,
}

impl Variant {
    /// Batch-norm epsilon: PyTorch's 1e-5 for timm's b-variants, TensorFlow's 1e-3 for Lite.
    fn epsilon(self) -> f64 {
        if self.lite { 1e-3 } else { 1e-5 }
    }

    /// Repeats of each of the seven stages.
    pub fn stage_repeats(self) -> [usize; 7] {
        let (_, depth) = SCALING[self.scale.min(7)];
        STAGES.map(|s| (s.1 as f64 * depth).ceil() as usize)
    }
}

/// The block activation: SiLU, or ReLU6 for Lite.
fn activation(x: Tensor<4>, relu6: bool) -> Tensor<4> {
    if relu6 { x.clamp(0.0, 6.0) } else { silu(x) }
}

/// timm's stage table for b0: (block type, repeats, kernel, stride, expansion, output channels).
/// `true` = depthwise-separable (the first stage), `false` = inverted residual.
const STAGES: [(bool, usize, usize, usize, usize, usize); 7] = [
    (true, 1, 3, 1, 1, 16),
    (false, 2, 3, 2, 6, 24),
    (false, 2, 5, 2, 6, 40),
    (false, 3, 3, 2, 6, 80),
    (false, 3, 5, 1, 6, 112),
    (false, 4, 5, 2, 6, 192),
    (false, 1, 3, 1, 6, 320),
];

/// Width and depth multipliers of b0…b7.
pub const SCALING: [(f64, f64); 8] = [(1.0, 1.0), (1.0, 1.1), (1.1, 1.2), (1.2, 1.4), (1.4, 1.8), (1.6, 2.2), (1.8, 2.6), (2.0, 3.1)];

/// timm's `make_divisible` with divisor 8 and round limit 0.9.
pub fn round_channels(channels: f64, multiplier: f64) -> usize {
    let v = channels * multiplier;
    let divisor = 8.0;
    let mut new = (divisor as usize).max(((v + divisor / 2.0) / divisor).floor() as usize * divisor as usize);
    if (new as f64) < 0.9 * v {
        new += divisor as usize;
    }
    new
}

/// Python's round (half to even), as timm uses for squeeze-excitation widths.
fn round_half_even(v: f64) -> usize {
    let r = v.round();
    let r = if (v - v.trunc()).abs() == 0.5 && r % 2.0 != 0.0 { r - v.signum() } else { r };
    r as usize
}

/// One MBConv block: depthwise-separable (`conv_dw → bn1 → se → conv_pw → bn2`) or inverted
/// residual (`conv_pw → bn1 → conv_dw → bn2 → se → conv_pwl → bn3`).
#[derive(Module, Debug)]
pub struct MbBlock {
    conv_pw: Conv2d,
    bn1: Norm,
    conv_dw: Conv2d,
    bn2: Norm,
    se: Option<SqueezeExcite>,
    conv_pwl: Option<Conv2d>,
    bn3: Norm,
    #[module(skip)]
    separable: bool,
    /// ReLU6 instead of SiLU (Lite).
    #[module(skip)]
    relu6: bool,
    #[module(skip)]
    residual: bool,
    /// Stochastic depth in training (timm: the model's rate × block index / block count).
    #[module(skip)]
    drop_path: f64,
}

impl MbBlock {
    #[allow(clippy::too_many_arguments)]
    fn new(
        device: &Device,
        variant: Variant,
        separable: bool,
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        expansion: usize,
        drop_path: f64,
    ) -> Self {
        let residual = stride == 1 && in_ch == out_ch;
        let bn = |channels| bn_with_epsilon(device, channels, variant.epsilon());
        let se = |channels, reduced| (!variant.lite).then(|| SqueezeExcite::new(device, channels, reduced));
        let relu6 = variant.lite;
        if separable {
            let reduced = round_half_even(in_ch as f64 * 0.25);
            Self {
                conv_dw: conv(device, [in_ch, in_ch], kernel, stride, in_ch, false),
                bn1: bn(in_ch),
                se: se(in_ch, reduced),
                conv_pw: conv(device, [in_ch, out_ch], 1, 1, 1, false),
                bn2: bn(out_ch),
                conv_pwl: None,
                bn3: None,
                separable,
                relu6,
                residual,
                drop_path,
            }
        } else {
            let mid = round_channels(in_ch as f64 * expansion as f64, 1.0);
            let reduced = round_half_even(mid as f64 * 0.25 / expansion as f64);
            Self {
                conv_pw: conv(device, [in_ch, mid], 1, 1, 1, false),
                bn1: bn(mid),
                conv_dw: conv(device, [mid, mid], kernel, stride, mid, false),
                bn2: bn(mid),
                se: se(mid, reduced),
                conv_pwl: Some(conv(device, [mid, out_ch], 1, 1, 1, false)),
                bn3: bn(out_ch),
                separable,
                relu6,
                residual,
                drop_path,
            }
        }
    }

    /// # Shapes
    /// - `x`: `[batch, in, h, w]` → `[batch, out, h / stride, w / stride]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = x.clone();
        let se = |y: Tensor<4>| match &self.se {
            Some(se) => se.forward(y),
            None => y,
        };
        let y = if self.separable {
            let y = activation(norm(&self.bn1, self.conv_dw.forward(x)), self.relu6);
            norm(&self.bn2, self.conv_pw.forward(se(y)))
        } else {
            let y = activation(norm(&self.bn1, self.conv_pw.forward(x)), self.relu6);
            let y = se(activation(norm(&self.bn2, self.conv_dw.forward(y)), self.relu6));
            match &self.conv_pwl {
                Some(pwl) => norm(&self.bn3, pwl.forward(y)),
                None => y,
            }
        };
        if !self.residual {
            return y;
        }
        // Drop-path: in training (an autodiff device) each sample's branch is dropped with the
        // block's probability and the survivors rescaled; at inference the branch is added as is.
        if self.drop_path > 0.0 && y.device().is_autodiff() {
            let keep = 1.0 - self.drop_path;
            let [batch, ..] = y.dims();
            let mask = Tensor::<4>::random([batch, 1, 1, 1], burn::tensor::Distribution::Bernoulli(keep), &y.device()) / keep;
            return y * mask + shortcut;
        }
        y + shortcut
    }

    /// Folds each norm into the convolution before it (inference).
    fn fold(&mut self) {
        if self.separable {
            fold(&mut self.conv_dw, &mut self.bn1);
            fold(&mut self.conv_pw, &mut self.bn2);
        } else {
            fold(&mut self.conv_pw, &mut self.bn1);
            fold(&mut self.conv_dw, &mut self.bn2);
            if let Some(pwl) = &mut self.conv_pwl {
                fold(pwl, &mut self.bn3);
            }
        }
    }
}

/// The EfficientNet trunk; `conv_head`/`bn2` exist (timm and smp keep them) but the encoder's
/// features stop before them.
#[derive(Module, Debug)]
pub struct EfficientNet {
    conv_stem: Conv2d,
    bn1: Norm,
    blocks: Vec<Vec<MbBlock>>,
    conv_head: Conv2d,
    bn2: Norm,
    /// ReLU6 instead of SiLU after the stem (Lite).
    #[module(skip)]
    relu6: bool,
}

/// Channels of the five features (strides 2…32) of `variant` (Lite0's equal b0's).
pub fn feature_channels(variant: Variant) -> [usize; 5] {
    let (width, _) = SCALING[variant.scale.min(7)];
    let c = |i: usize| round_channels(STAGES[i].5 as f64, width);
    [round_channels(32.0, width), c(1), c(2), c(4), c(6)]
}

impl EfficientNet {
    /// EfficientNet `variant` with freshly initialised weights; `drop_path_rate` is the
    /// stochastic-depth rate of the last block (timm's `drop_path_rate`, 0.2 in smp).
    pub fn new(device: &Device, variant: Variant, in_channels: usize, drop_path_rate: f64) -> Self {
        let (width, _) = SCALING[variant.scale.min(7)];
        let stem = round_channels(32.0, width);
        let repeats = variant.stage_repeats();
        let total: usize = repeats.iter().sum();
        let mut index = 0;
        let mut in_ch = stem;
        let mut blocks = Vec::new();
        for (&(separable, _, kernel, stride, expansion, out), &n) in STAGES.iter().zip(&repeats) {
            let out_ch = round_channels(out as f64, width);
            let stage: Vec<MbBlock> = (0..n)
                .map(|i| {
                    let rate = drop_path_rate * index as f64 / total as f64;
                    let block =
                        MbBlock::new(device, variant, separable, in_ch, out_ch, kernel, if i == 0 { stride } else { 1 }, expansion, rate);
                    in_ch = out_ch;
                    index += 1;
                    block
                })
                .collect();
            blocks.push(stage);
        }
        let head = round_channels(1280.0, width);
        let bn = |channels| bn_with_epsilon(device, channels, variant.epsilon());
        Self {
            conv_stem: conv(device, [in_channels, stem], 3, 2, 1, false),
            bn1: bn(stem),
            blocks,
            conv_head: conv(device, [in_ch, head], 1, 1, 1, false),
            bn2: bn(head),
            relu6: variant.lite,
        }
    }

    /// The feature pyramid smp's encoder returns (without the input itself): after the stem
    /// (stride 2), stages 0–1 (4), stage 2 (8), stages 3–4 (16) and stages 5–6 (32).
    pub fn features(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut x = activation(norm(&self.bn1, self.conv_stem.forward(x)), self.relu6);
        let mut out = vec![x.clone()];
        for (i, stage) in self.blocks.iter().enumerate() {
            for block in stage {
                x = block.forward(x);
            }
            if matches!(i, 1 | 2 | 4 | 6) {
                out.push(x.clone());
            }
        }
        out
    }

    /// Freezes the layers of the first `levels` features (0–5): the stem, then the stages that
    /// end at strides 4, 8, 16 and 32 ([`Module::freeze`]: untrained, norms on running statistics).
    pub fn freeze_levels(mut self, levels: usize) -> Self {
        if levels >= 1 {
            self.conv_stem = self.conv_stem.freeze();
            self.bn1 = self.bn1.freeze();
        }
        let stages = [0, 0, 2, 3, 5, 7][levels.min(5)];
        for stage in self.blocks.iter_mut().take(stages) {
            *stage = core::mem::take(stage).into_iter().map(Module::freeze).collect();
        }
        self
    }

    /// Folds every norm into the convolution before it (inference).
    pub fn fold(&mut self) {
        fold(&mut self.conv_stem, &mut self.bn1);
        self.blocks.iter_mut().flatten().for_each(MbBlock::fold);
        fold(&mut self.conv_head, &mut self.bn2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_rounding_matches_timm() {
        let b = |scale| feature_channels(Variant { scale, lite: false });
        assert_eq!(b(0), [32, 24, 40, 112, 320]);
        assert_eq!(b(4), [48, 32, 56, 160, 448]);
        assert_eq!(b(7), [64, 48, 80, 224, 640]);
        assert_eq!(feature_channels(Variant { scale: 0, lite: true }), [32, 24, 40, 112, 320]);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(3.5), 4);
    }
}

//! Decoders as segmentation_models_pytorch builds them: U-Net (nearest ×2 upsampling, skip
//! concatenation, two conv-BN-ReLU per stage, optional scSE attention) and FPN (1×1 lateral
//! convolutions, top-down sum, per-level conv-GroupNorm-ReLU heads with bilinear upsampling, merged by
//! sum). PyTorch keys such as `conv1.0` / `conv1.1`, `cSE.1`, `block.0.block.1` are remapped on
//! import (see `import.rs`).

use super::blocks::{ConvBnRelu, conv, upsample_bilinear, upsample_nearest};
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, GroupNormConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

/// Concurrent spatial and channel squeeze-excitation (smp's `SCSEModule`, reduction 16).
#[derive(Module, Debug)]
pub struct Scse {
    c_reduce: Conv2d,
    c_expand: Conv2d,
    s_conv: Conv2d,
}

impl Scse {
    fn new(device: &Device, channels: usize) -> Self {
        let reduced = channels / 16;
        Self {
            c_reduce: conv(device, [channels, reduced], 1, 1, 1, true),
            c_expand: conv(device, [reduced, channels], 1, 1, 1, true),
            s_conv: conv(device, [channels, 1], 1, 1, 1, true),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let c = x.clone().mean_dim(2).mean_dim(3);
        let c = sigmoid(self.c_expand.forward(relu(self.c_reduce.forward(c))));
        let s = sigmoid(self.s_conv.forward(x.clone()));
        x.clone() * c + x * s
    }
}

/// One U-Net stage: upsample, concatenate the skip, (attention), conv, conv, (attention).
#[derive(Module, Debug)]
pub struct UnetBlock {
    conv1: ConvBnRelu,
    conv2: ConvBnRelu,
    attention1: Option<Scse>,
    attention2: Option<Scse>,
}

/// smp's U-Net decoder.
#[derive(Module, Debug)]
pub struct UnetDecoder {
    blocks: Vec<UnetBlock>,
}

impl UnetDecoder {
    /// `features`: the encoder's five feature channels (strides 2…32); `channels`: the decoder's.
    pub fn new(device: &Device, features: [usize; 5], channels: &[usize], attention: bool) -> Self {
        let mut reversed = features;
        reversed.reverse();
        let mut in_ch = reversed[0];
        let blocks = channels
            .iter()
            .enumerate()
            .map(|(i, &out)| {
                let skip = reversed.get(i + 1).copied().unwrap_or(0);
                let block = UnetBlock {
                    conv1: ConvBnRelu::new(device, [in_ch + skip, out], 3, 1),
                    conv2: ConvBnRelu::new(device, [out, out], 3, 1),
                    attention1: attention.then(|| Scse::new(device, in_ch + skip)),
                    attention2: attention.then(|| Scse::new(device, out)),
                };
                in_ch = out;
                block
            })
            .collect();
        Self { blocks }
    }

    /// # Shapes
    /// - `features`: five tensors at strides 2, 4, 8, 16, 32 → `[batch, channels.last, h, w]` at
    ///   stride 2 / 2^(5 − stages).
    pub fn forward(&self, mut features: Vec<Tensor<4>>) -> Tensor<4> {
        let mut x = features.pop().expect("the encoder returns five features");
        features.reverse();
        for (i, block) in self.blocks.iter().enumerate() {
            x = upsample_nearest(x, 2);
            if let Some(skip) = features.get(i) {
                x = Tensor::cat(vec![x, skip.clone()], 1);
                if let Some(a) = &block.attention1 {
                    x = a.forward(x);
                }
            }
            x = block.conv2.forward(block.conv1.forward(x));
            if let Some(a) = &block.attention2 {
                x = a.forward(x);
            }
        }
        x
    }

    /// Folds each batch norm into its convolution (inference).
    pub fn fold(&mut self) {
        for block in &mut self.blocks {
            block.conv1.fold();
            block.conv2.fold();
        }
    }
}

/// Conv 3×3 → GroupNorm(32) → ReLU, then ×2 bilinear (corners aligned) when `upsample`.
#[derive(Module, Debug)]
pub struct GnBlock {
    conv: Conv2d,
    gn: GroupNorm,
    #[module(skip)]
    upsample: bool,
}

/// One level of the FPN segmentation branch.
#[derive(Module, Debug)]
pub struct SegBlock {
    block: Vec<GnBlock>,
}

/// Top-down merge: ×2 nearest of the coarser level plus a 1×1 lateral of the skip.
#[derive(Module, Debug)]
pub struct FpnBlock {
    skip_conv: Conv2d,
}

/// smp's FPN decoder (merge policy "add").
#[derive(Module, Debug)]
pub struct FpnDecoder {
    p5: Conv2d,
    p4: FpnBlock,
    p3: FpnBlock,
    p2: FpnBlock,
    seg_blocks: Vec<SegBlock>,
}

impl FpnDecoder {
    /// `features`: the encoder's five feature channels; `pyramid` and `segmentation` widths.
    pub fn new(device: &Device, features: [usize; 5], pyramid: usize, segmentation: usize) -> Self {
        let lateral = |c: usize| FpnBlock { skip_conv: conv(device, [c, pyramid], 1, 1, 1, true) };
        let gn_block = |i: usize, o: usize, upsample: bool| GnBlock {
            conv: conv(device, [i, o], 3, 1, 1, false),
            gn: GroupNormConfig::new(32, o).init(device),
            upsample,
        };
        let seg_blocks = [3usize, 2, 1, 0]
            .iter()
            .map(|&n| {
                let mut block = vec![gn_block(pyramid, segmentation, n > 0)];
                for _ in 1..n {
                    block.push(gn_block(segmentation, segmentation, true));
                }
                SegBlock { block }
            })
            .collect();
        Self {
            p5: conv(device, [features[4], pyramid], 1, 1, 1, true),
            p4: lateral(features[3]),
            p3: lateral(features[2]),
            p2: lateral(features[1]),
            seg_blocks,
        }
    }

    /// # Shapes
    /// - `features`: five tensors at strides 2…32 → `[batch, segmentation, h/4, w/4]`.
    pub fn forward(&self, features: Vec<Tensor<4>>) -> Tensor<4> {
        let [_, c2, c3, c4, c5]: [Tensor<4>; 5] = features.try_into().expect("the encoder returns five features");
        let merge = |block: &FpnBlock, x: Tensor<4>, skip: Tensor<4>| upsample_nearest(x, 2) + block.skip_conv.forward(skip);
        let p5 = self.p5.forward(c5);
        let p4 = merge(&self.p4, p5.clone(), c4);
        let p3 = merge(&self.p3, p4.clone(), c3);
        let p2 = merge(&self.p2, p3.clone(), c2);
        let mut sum: Option<Tensor<4>> = None;
        for (seg, p) in self.seg_blocks.iter().zip([p5, p4, p3, p2]) {
            let mut x = p;
            for b in &seg.block {
                x = relu(b.gn.forward(b.conv.forward(x)));
                if b.upsample {
                    x = upsample_bilinear(x, 2, true);
                }
            }
            sum = Some(match sum {
                Some(s) => s + x,
                None => x,
            });
        }
        sum.expect("four pyramid levels")
    }
}

//! ResNet-34 and ResNet-50 with torchvision's parameter names (`conv1`, `bn1`,
//! `layer{1-4}.{i}.{conv1, bn1, conv2, bn2, conv3, bn3, downsample.0, downsample.1}`; the
//! `downsample.N` keys are remapped to `downsample.conv`/`downsample.bn` on import).

use super::blocks::{Norm, bn, conv, fold, norm};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// A 1×1 strided projection for the shortcut.
#[derive(Module, Debug)]
pub struct Downsample {
    conv: Conv2d,
    bn: Norm,
}

/// A basic (two 3×3) or bottleneck (1×1, 3×3, 1×1) residual block.
#[derive(Module, Debug)]
pub struct ResBlock {
    conv1: Conv2d,
    bn1: Norm,
    conv2: Conv2d,
    bn2: Norm,
    conv3: Option<Conv2d>,
    bn3: Norm,
    downsample: Option<Downsample>,
}

impl ResBlock {
    fn new(device: &Device, bottleneck: bool, in_ch: usize, width: usize, stride: usize) -> Self {
        let out = if bottleneck { width * 4 } else { width };
        let downsample = (stride != 1 || in_ch != out)
            .then(|| Downsample { conv: conv(device, [in_ch, out], 1, stride, 1, false), bn: bn(device, out) });
        if bottleneck {
            Self {
                conv1: conv(device, [in_ch, width], 1, 1, 1, false),
                bn1: bn(device, width),
                conv2: conv(device, [width, width], 3, stride, 1, false),
                bn2: bn(device, width),
                conv3: Some(conv(device, [width, out], 1, 1, 1, false)),
                bn3: bn(device, out),
                downsample,
            }
        } else {
            Self {
                conv1: conv(device, [in_ch, width], 3, stride, 1, false),
                bn1: bn(device, width),
                conv2: conv(device, [width, width], 3, 1, 1, false),
                bn2: bn(device, width),
                conv3: None,
                bn3: None,
                downsample,
            }
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = match &self.downsample {
            Some(d) => norm(&d.bn, d.conv.forward(x.clone())),
            None => x.clone(),
        };
        let y = relu(norm(&self.bn1, self.conv1.forward(x)));
        let y = norm(&self.bn2, self.conv2.forward(y));
        let y = match &self.conv3 {
            Some(c3) => norm(&self.bn3, c3.forward(relu(y))),
            None => y,
        };
        relu(y + shortcut)
    }

    /// Folds each norm into the convolution before it (inference).
    fn fold(&mut self) {
        fold(&mut self.conv1, &mut self.bn1);
        fold(&mut self.conv2, &mut self.bn2);
        if let Some(c3) = &mut self.conv3 {
            fold(c3, &mut self.bn3);
        }
        if let Some(d) = &mut self.downsample {
            fold(&mut d.conv, &mut d.bn);
        }
    }
}

/// A ResNet trunk without its classifier.
#[derive(Module, Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: Norm,
    maxpool: MaxPool2d,
    layer1: Vec<ResBlock>,
    layer2: Vec<ResBlock>,
    layer3: Vec<ResBlock>,
    layer4: Vec<ResBlock>,
}

/// Channels of the five features (strides 2…32).
pub fn feature_channels(depth: usize) -> [usize; 5] {
    if depth >= 50 { [64, 256, 512, 1024, 2048] } else { [64, 64, 128, 256, 512] }
}

impl ResNet {
    /// ResNet-`depth`: 34 (basic blocks) or 50 (bottlenecks); both [3, 4, 6, 3] blocks.
    pub fn new(device: &Device, depth: usize, in_channels: usize) -> Self {
        let bottleneck = depth >= 50;
        let mut in_ch = 64;
        let mut layer = |width: usize, n: usize, stride: usize| -> Vec<ResBlock> {
            (0..n)
                .map(|i| {
                    let block = ResBlock::new(device, bottleneck, in_ch, width, if i == 0 { stride } else { 1 });
                    in_ch = if bottleneck { width * 4 } else { width };
                    block
                })
                .collect()
        };
        let (layer1, layer2, layer3, layer4) = (layer(64, 3, 1), layer(128, 4, 2), layer(256, 6, 2), layer(512, 3, 2));
        Self {
            conv1: burn::nn::conv::Conv2dConfig::new([in_channels, 64], [7, 7])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
                .with_bias(false)
                .init(device),
            bn1: bn(device, 64),
            maxpool: MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(),
            layer1,
            layer2,
            layer3,
            layer4,
        }
    }

    /// Features at strides 2 (after the stem), 4, 8, 16 and 32, as smp's ResNet encoder.
    pub fn features(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let stem = relu(norm(&self.bn1, self.conv1.forward(x)));
        let mut x = self.maxpool.forward(stem.clone());
        let mut out = vec![stem];
        for layer in [&self.layer1, &self.layer2, &self.layer3, &self.layer4] {
            for block in layer {
                x = block.forward(x);
            }
            out.push(x.clone());
        }
        out
    }

    /// Freezes the layers of the first `levels` features (0–5): the stem, then layer1…layer4
    /// ([`Module::freeze`]: untrained, norms on running statistics).
    pub fn freeze_levels(mut self, levels: usize) -> Self {
        if levels >= 1 {
            self.conv1 = self.conv1.freeze();
            self.bn1 = self.bn1.freeze();
        }
        for (level, layer) in [&mut self.layer1, &mut self.layer2, &mut self.layer3, &mut self.layer4].into_iter().enumerate() {
            if levels >= level + 2 {
                *layer = core::mem::take(layer).into_iter().map(Module::freeze).collect();
            }
        }
        self
    }

    /// Folds every norm into the convolution before it (inference).
    pub fn fold(&mut self) {
        fold(&mut self.conv1, &mut self.bn1);
        for block in self.layer1.iter_mut().chain(&mut self.layer2).chain(&mut self.layer3).chain(&mut self.layer4) {
            block.fold();
        }
    }
}

//! The seed's networks: an encoder (EfficientNet b0–b7, ResNet-34/50, or a tiny one for tests and
//! the demo) under a U-Net or FPN decoder and a 1-channel logit head at input resolution — the
//! structure and parameter names of segmentation_models_pytorch, built from one
//! [`SegmenterConfig`] that travels with the weights.

use super::blocks::{ConvBnRelu, conv, upsample_bilinear};
use super::decoders::{FpnDecoder, UnetDecoder};
use super::efficientnet::{self, EfficientNet};
use super::resnet::{self, ResNet};
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Which encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EncoderKind {
    /// EfficientNet-b0…b7 (timm), smp's `timm-efficientnet-bN`.
    #[serde(rename = "efficientnet")]
    EfficientNet(u8),
    /// EfficientNet-Lite0 (timm's `efficientnet_lite0`), smp's `timm-efficientnet-lite0`.
    #[serde(rename = "efficientnet-lite")]
    EfficientNetLite(u8),
    /// ResNet-34 or ResNet-50 (torchvision), smp's `resnet34` / `resnet50`.
    #[serde(rename = "resnet")]
    ResNet(u16),
    /// Five strided conv-BN-ReLU stages of the configured widths (tests, the demo model).
    #[serde(rename = "tiny")]
    Tiny,
}

impl std::str::FromStr for EncoderKind {
    type Err = super::Error;

    /// `efficientnet-b0`…`efficientnet-b7` (or `timm-efficientnet-bN`), `efficientnet-lite0`,
    /// `resnet34`, `resnet50`, `tiny`.
    fn from_str(s: &str) -> Result<Self, super::Error> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.strip_prefix("timm-").unwrap_or(&s);
        match s {
            "resnet34" => Ok(Self::ResNet(34)),
            "resnet50" => Ok(Self::ResNet(50)),
            "tiny" => Ok(Self::Tiny),
            "efficientnet-lite0" => Ok(Self::EfficientNetLite(0)),
            _ => match s.strip_prefix("efficientnet-b").and_then(|n| n.parse::<u8>().ok()) {
                Some(n) if n <= 7 => Ok(Self::EfficientNet(n)),
                _ => Err(super::Error::UnknownArch(format!(
                    "unknown encoder '{s}': expected efficientnet-b0…b7, efficientnet-lite0, resnet34, resnet50 or tiny"
                ))),
            },
        }
    }
}

impl std::fmt::Display for EncoderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EfficientNet(n) => write!(f, "efficientnet-b{n}"),
            Self::EfficientNetLite(n) => write!(f, "efficientnet-lite{n}"),
            Self::ResNet(d) => write!(f, "resnet{d}"),
            Self::Tiny => write!(f, "tiny"),
        }
    }
}

/// Which decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    /// U-Net: upsampling stages with skip connections.
    Unet,
    /// Feature pyramid network.
    Fpn,
}

/// Everything needed to rebuild a network exactly; serialised into the weights' manifest.
#[derive(Config, Debug, PartialEq)]
pub struct SegmenterConfig {
    /// The encoder.
    pub encoder: EncoderKind,
    /// The decoder.
    pub decoder: DecoderKind,
    /// U-Net decoder channels, deepest first (smp's default).
    #[config(default = "vec![256, 128, 64, 32, 16]")]
    pub decoder_channels: Vec<usize>,
    /// scSE attention in the U-Net decoder.
    #[config(default = false)]
    pub attention: bool,
    /// FPN pyramid channels.
    #[config(default = 256)]
    pub pyramid_channels: usize,
    /// FPN segmentation-branch channels.
    #[config(default = 128)]
    pub segmentation_channels: usize,
    /// Widths of the tiny encoder's five stages.
    #[config(default = "[8, 16, 24, 32, 48]")]
    pub tiny_widths: [usize; 5],
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Output channels (logits).
    #[config(default = 1)]
    pub classes: usize,
    /// EfficientNet stochastic depth (drop-path) rate in training, as smp sets it.
    #[config(default = 0.2)]
    pub drop_path_rate: f64,
    /// The side of the square input the network is run on (the seed: 1536 px windows resized to 512).
    #[config(default = 512)]
    pub input_size: usize,
}

/// Input sides must be multiples of this (five ×2 reductions).
pub const STRIDE: usize = 32;

/// Most channels any layer of a configured network may have: 4× the widest layer of the seed's
/// networks, and a bound on what a `model.json` can make the loader allocate (a 3×3 convolution of
/// this width is 38 MB).
pub const MAX_CHANNELS: usize = 1024;

/// The tiny encoder.
#[derive(Module, Debug)]
pub struct TinyEncoder {
    stages: Vec<ConvBnRelu>,
}

/// The encoder of a [`SegmentationModel`].
// One per model: the variants' size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Encoder {
    /// timm EfficientNet.
    EfficientNet(EfficientNet),
    /// torchvision ResNet.
    ResNet(ResNet),
    /// Tiny conv stages.
    Tiny(TinyEncoder),
}

/// The decoder of a [`SegmentationModel`].
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Decoder {
    /// smp U-Net decoder.
    Unet(UnetDecoder),
    /// smp FPN decoder.
    Fpn(FpnDecoder),
}

/// Encoder + decoder + logit head.
#[derive(Module, Debug)]
pub struct SegmentationModel {
    encoder: Encoder,
    decoder: Decoder,
    segmentation_head: Conv2d,
}

impl SegmenterConfig {
    /// A network from its short name: `unet-efficientnet-b0`, `unet-scse-efficientnet-b4`,
    /// `fpn-resnet34`, `unet-tiny`… (decoder, optional `scse`, encoder).
    pub fn from_arch(arch: &str) -> super::Result<Self> {
        use super::Error::UnknownArch;
        let arch = arch.trim().to_ascii_lowercase();
        let (decoder, rest) = arch
            .split_once('-')
            .ok_or_else(|| UnknownArch(format!("unknown architecture '{arch}': expected e.g. unet-efficientnet-b0 or fpn-resnet34")))?;
        let decoder = match decoder {
            "unet" => DecoderKind::Unet,
            "fpn" => DecoderKind::Fpn,
            other => return Err(UnknownArch(format!("unknown decoder '{other}' in '{arch}': expected unet or fpn"))),
        };
        let (attention, encoder) = match rest.strip_prefix("scse-") {
            Some(encoder) if decoder == DecoderKind::Unet => (true, encoder),
            _ => (false, rest),
        };
        Ok(Self::new(encoder.parse()?, decoder).with_attention(attention))
    }

    /// The short name [`SegmenterConfig::from_arch`] reads.
    pub fn arch(&self) -> String {
        let decoder = match self.decoder {
            DecoderKind::Unet => "unet",
            DecoderKind::Fpn => "fpn",
        };
        format!("{decoder}{}-{}", if self.attention { "-scse" } else { "" }, self.encoder)
    }

    /// The five feature channels (strides 2…32) of the configured encoder.
    pub fn feature_channels(&self) -> [usize; 5] {
        match (self.encoder, self.efficientnet()) {
            (_, Some(variant)) => efficientnet::feature_channels(variant),
            (EncoderKind::ResNet(d), _) => resnet::feature_channels(d as usize),
            _ => self.tiny_widths,
        }
    }

    /// The EfficientNet variant of the encoder, if it is one.
    pub fn efficientnet(&self) -> Option<efficientnet::Variant> {
        match self.encoder {
            EncoderKind::EfficientNet(n) => Some(efficientnet::Variant { scale: n as usize, lite: false }),
            EncoderKind::EfficientNetLite(n) => Some(efficientnet::Variant { scale: n as usize, lite: true }),
            _ => None,
        }
    }

    /// Rejects configurations that cannot be built or run here (a `model.json` is untrusted):
    /// channel counts of 0 or above [`MAX_CHANNELS`], a U-Net decoder without exactly five
    /// stages, inputs other than RGB, more than one output class, a drop-path rate outside 0..1.
    pub fn check(&self) -> super::Result<()> {
        let invalid = |text: String| Err(super::Error::Invalid(format!("model.json: {text}")));
        let widths = |name: &str, values: &[usize]| match values.iter().find(|&&c| c == 0 || c > MAX_CHANNELS) {
            Some(c) => invalid(format!("{name} has {c} channels; each layer needs 1 to {MAX_CHANNELS}")),
            None => Ok(()),
        };
        match self.encoder {
            EncoderKind::EfficientNet(n) if n > 7 => return invalid(format!("efficientnet-b{n} does not exist (b0…b7)")),
            EncoderKind::EfficientNetLite(n) if n > 0 => return invalid(format!("efficientnet-lite{n} is not built (only lite0)")),
            EncoderKind::ResNet(d) if d != 34 && d != 50 => return invalid(format!("resnet{d} is not built (resnet34, resnet50)")),
            _ => {}
        }
        if self.decoder_channels.len() != 5 {
            return invalid(format!("decoder_channels must have 5 stages, not {}", self.decoder_channels.len()));
        }
        widths("decoder_channels", &self.decoder_channels)?;
        widths("tiny_widths", &self.tiny_widths)?;
        widths("pyramid_channels", &[self.pyramid_channels])?;
        widths("segmentation_channels", &[self.segmentation_channels])?;
        if self.in_channels != 3 || self.classes != 1 {
            return invalid(format!(
                "the network must take 3 channels (RGB) and give 1 class, not {} → {}",
                self.in_channels, self.classes
            ));
        }
        if !(0.0..1.0).contains(&self.drop_path_rate) {
            return invalid(format!("drop_path_rate {} must be in 0..1", self.drop_path_rate));
        }
        Ok(())
    }

    /// Builds the network with freshly initialised weights (panics on what [`Self::check`] rejects).
    pub fn init(&self, device: &Device) -> SegmentationModel {
        let features = self.feature_channels();
        let encoder = match (self.encoder, self.efficientnet()) {
            (_, Some(variant)) => Encoder::EfficientNet(EfficientNet::new(device, variant, self.in_channels, self.drop_path_rate)),
            (EncoderKind::ResNet(d), _) => Encoder::ResNet(ResNet::new(device, d as usize, self.in_channels)),
            _ => {
                let mut in_ch = self.in_channels;
                let stages = self
                    .tiny_widths
                    .iter()
                    .map(|&w| {
                        let stage = ConvBnRelu::new(device, [in_ch, w], 3, 2);
                        in_ch = w;
                        stage
                    })
                    .collect();
                Encoder::Tiny(TinyEncoder { stages })
            }
        };
        let (decoder, head) = match self.decoder {
            DecoderKind::Unet => {
                let last = *self.decoder_channels.last().unwrap_or(&16);
                (
                    Decoder::Unet(UnetDecoder::new(device, features, &self.decoder_channels, self.attention)),
                    conv(device, [last, self.classes], 3, 1, 1, true),
                )
            }
            DecoderKind::Fpn => (
                Decoder::Fpn(FpnDecoder::new(device, features, self.pyramid_channels, self.segmentation_channels)),
                conv(device, [self.segmentation_channels, self.classes], 1, 1, 1, true),
            ),
        };
        SegmentationModel { encoder, decoder, segmentation_head: head }
    }
}

/// Puts every batch norm it maps on its running statistics (their training flag off), leaving
/// the scale and shift trainable.
struct NormsOnRunningStatistics;

impl burn::module::ModuleMapper for NormsOnRunningStatistics {
    fn map_flag(&mut self, flag: burn::module::Param<burn::module::Flag>) -> burn::module::Param<burn::module::Flag> {
        flag.with_value(false)
    }
}

impl SegmentationModel {
    /// Fine-tuning a pretrained encoder: freezes the layers of its first `levels` features (0–5:
    /// the stride-2 stem, then the stages ending at strides 4…32), which then neither train nor
    /// update their batch-norm statistics; with `norms`, every batch norm of the encoder normalises
    /// with its running statistics (a pretrained encoder's ImageNet ones) instead of the batch's,
    /// its scale and shift still trained. The decoder is untouched.
    pub fn freeze_encoder(mut self, levels: usize, norms: bool) -> Self {
        self.encoder = match self.encoder {
            Encoder::EfficientNet(e) => Encoder::EfficientNet(e.freeze_levels(levels)),
            Encoder::ResNet(r) => Encoder::ResNet(r.freeze_levels(levels)),
            Encoder::Tiny(mut t) => {
                for stage in t.stages.iter_mut().take(levels) {
                    *stage = stage.clone().freeze();
                }
                Encoder::Tiny(t)
            }
        };
        if norms {
            self.encoder = self.encoder.map(&mut NormsOnRunningStatistics);
        }
        self
    }

    /// The encoder's parameters, e.g. to give them their own learning rate.
    pub fn encoder_params(&self) -> burn::module::ParamGroup {
        burn::module::ParamGroup::ids_from_module(self.encoder.clone())
    }

    /// The network for inference: every batch norm folded into the convolution before it
    /// (`blocks::fold`), the same logits to float rounding at a fraction of the passes over the
    /// activations. Not for training or saving: its weights no longer match the weights file.
    pub fn folded(mut self) -> Self {
        match &mut self.encoder {
            Encoder::EfficientNet(e) => e.fold(),
            Encoder::ResNet(r) => r.fold(),
            Encoder::Tiny(t) => t.stages.iter_mut().for_each(ConvBnRelu::fold),
        }
        if let Decoder::Unet(d) = &mut self.decoder {
            d.fold();
        }
        self
    }

    /// Per-pixel logits.
    ///
    /// # Shapes
    /// - `images`: `[batch, in_channels, h, w]`, normalised, `h` and `w` multiples of [`STRIDE`].
    /// - returns: `[batch, classes, h, w]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let features = match &self.encoder {
            Encoder::EfficientNet(e) => e.features(images),
            Encoder::ResNet(r) => r.features(images),
            Encoder::Tiny(t) => {
                let mut x = images;
                let mut out = Vec::with_capacity(5);
                for stage in &t.stages {
                    x = stage.forward(x);
                    out.push(x.clone());
                }
                out
            }
        };
        match &self.decoder {
            Decoder::Unet(d) => self.segmentation_head.forward(d.forward(features)),
            // smp's FPN head: 1×1 conv, then ×4 bilinear with corners aligned (UpsamplingBilinear2d).
            Decoder::Fpn(d) => upsample_bilinear(self.segmentation_head.forward(d.forward(features)), 4, true),
        }
    }
}

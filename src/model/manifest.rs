//! The model folder's manifest, `model.json`: the network's [`SegmenterConfig`] plus everything
//! needed to run it as it was trained (window, scale, normalisation, threshold, TTA) and an honest
//! account of what it was trained on. `ftuscope export` writes it; `predict` and the web app read it.
//! A bare `SegmenterConfig` (as `ftuscope import` wrote before manifests existed) is still read,
//! with the seed's defaults for the rest.

use super::{Error, IMAGENET_MEAN, IMAGENET_STD, Normaliser, Result, SegmenterConfig};
use serde::{Deserialize, Serialize};

/// The format tag of manifests this version writes.
pub const MANIFEST_FORMAT: &str = "ftuscope-model/1";

/// How the weights in `model.bpk` are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    F32,
    /// Convolution weights as 16-bit floats (half the size; BatchNorm stays f32).
    F16,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        })
    }
}

/// Everything `model.json` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// Short name, e.g. "demo".
    pub name: String,
    /// The network.
    pub model: SegmenterConfig,
    /// Window side in level-0 pixels, resized to `model.input_size` (the seed: 1536 → 512), for
    /// a slide at the pixel size the model was trained at (see [`Manifest::input_pixel_size_um`]).
    pub window: u32,
    /// Overlap between windows at inference, level-0 pixels (same scale as `window`).
    pub overlap: u32,
    /// µm per *input* pixel the network expects (e.g. 2.0). With it every slide is resampled by its
    /// own pixel size, so that a 0.25, a 0.5 and a 1 µm/px scan reach the network at the same scale;
    /// a slide that records no pixel size is taken to be at [`Manifest::assumed_pixel_size_um`].
    /// `None` (older models): windows are `window` level-0 pixels whatever the slide's scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_pixel_size_um: Option<f64>,
    /// Window side in µm (`input_pixel_size_um` × `input_size`), written for readers of model.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_um: Option<f64>,
    /// Per-channel mean of the input normalisation (RGB in 0..1).
    pub mean: [f32; 3],
    /// Per-channel standard deviation of the input normalisation.
    pub std: [f32; 3],
    /// Stain normalisation: the L*a*b* statistics of the training tiles' tissue. When present,
    /// each slide's colours are matched to them before the network sees a window (Reinhard);
    /// `None`: colours as scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stain_reference: Option<super::LabStats>,
    /// Probability threshold.
    pub threshold: f32,
    /// Smallest object kept, level-0 pixels².
    pub min_area: f64,
    /// Largest object kept, level-0 pixels² (same scale as `min_area`); `None`: no upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_area: Option<f64>,
    /// Flip test-time augmentation views (1, 2, 4 or 8).
    pub tta: u8,
    /// Weight precision in model.bpk.
    pub precision: Precision,
    /// What the weights were trained on, in words (e.g. "synthetic tissue (ftuscope synth)").
    pub trained_on: String,
    /// Full-slide Dice on held-out slides, when measured.
    pub validation_dice: Option<f64>,
    /// How the validation Dice was measured.
    pub validation: String,
    /// What the model was not validated on and must not be used for (the model card's limits).
    #[serde(default)]
    pub limits: String,
    /// When the weights were exported (UTC, ISO 8601).
    pub date: String,
}

impl Manifest {
    /// Probability threshold unless a model says otherwise.
    pub const DEFAULT_THRESHOLD: f32 = 0.5;
    /// Smallest object kept unless a model says otherwise, level-0 pixels² (about a 45 px disc:
    /// far below any glomerulus at 0.25–1 µm/px).
    pub const DEFAULT_MIN_AREA: f64 = 2000.0;

    /// The overlap used with a window of `window` level-0 pixels unless one is given: a quarter.
    pub fn overlap_for(window: u32) -> u32 {
        window / 4
    }

    /// A manifest with the seed's defaults for `model`: windows 3× the input (1536 → 512), a
    /// quarter overlap, ImageNet normalisation, threshold 0.5, no TTA, f32.
    pub fn new(name: &str, model: SegmenterConfig) -> Self {
        let window = (model.input_size as u32) * 3;
        Self {
            format: MANIFEST_FORMAT.into(),
            name: name.into(),
            model,
            window,
            overlap: Self::overlap_for(window),
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            stain_reference: None,
            threshold: Self::DEFAULT_THRESHOLD,
            min_area: Self::DEFAULT_MIN_AREA,
            max_area: None,
            tta: 1,
            precision: Precision::F32,
            trained_on: "unknown".into(),
            validation_dice: None,
            validation: String::new(),
            limits: String::new(),
            date: String::new(),
            input_pixel_size_um: None,
            window_um: None,
        }
    }

    /// Sets the scale: the network sees `input_pixel_size_um` µm per input pixel, and `window` is
    /// the window in level-0 pixels of data at `level0_pixel_size_um`.
    pub fn with_pixel_size(mut self, input_pixel_size_um: Option<f64>) -> Self {
        self.input_pixel_size_um = input_pixel_size_um;
        self.window_um = input_pixel_size_um.map(|p| p * self.model.input_size as f64);
        self
    }

    /// The level-0 pixel size at which `window` level-0 pixels cover [`Manifest::window_um`]: what
    /// a slide without a recorded pixel size is assumed to be ("pixel size unknown — assuming …").
    pub fn assumed_pixel_size_um(&self) -> Option<f64> {
        self.input_pixel_size_um.map(|p| p * self.model.input_size as f64 / self.window as f64)
    }

    /// Level-0 pixels per input pixel on a slide of `pixel_size_um` µm/px (the file's or the user's).
    pub fn scale_for(&self, pixel_size_um: Option<f64>) -> f64 {
        match (self.input_pixel_size_um, pixel_size_um.filter(|p| p.is_finite() && *p > 0.0)) {
            (Some(input), Some(slide)) => input / slide,
            _ => self.scale(),
        }
    }

    /// Window side in level-0 pixels on a slide of `pixel_size_um` µm/px (at least 16).
    pub fn window_for(&self, pixel_size_um: Option<f64>) -> u32 {
        ((self.scale_for(pixel_size_um) * self.model.input_size as f64).round() as u32).clamp(16, 65_536)
    }

    /// Overlap in level-0 pixels on a slide of `pixel_size_um` µm/px (the manifest's, scaled).
    pub fn overlap_for_slide(&self, pixel_size_um: Option<f64>) -> u32 {
        let window = self.window_for(pixel_size_um);
        ((self.overlap as f64 * window as f64 / self.window as f64).round() as u32).min(window - 1)
    }

    /// Smallest object kept, level-0 pixels², on a slide of `pixel_size_um` µm/px (the manifest's, scaled).
    pub fn min_area_for(&self, pixel_size_um: Option<f64>) -> f64 {
        let ratio = self.window_for(pixel_size_um) as f64 / self.window as f64;
        self.min_area * ratio * ratio
    }

    /// Largest object kept, level-0 pixels², on a slide of `pixel_size_um` µm/px (scaled like
    /// [`Manifest::min_area_for`]); `None` when the model sets no upper bound.
    pub fn max_area_for(&self, pixel_size_um: Option<f64>) -> Option<f64> {
        let ratio = self.window_for(pixel_size_um) as f64 / self.window as f64;
        self.max_area.map(|max| max * ratio * ratio)
    }

    /// Parses `model.json`: a manifest, or a bare network config (imported weights).
    pub fn from_json(text: &str) -> Result<Self> {
        let manifest_error = |what: &str, e: serde_json::Error| Error::Manifest(format!("model.json {what}: {e}"));
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| manifest_error("is not JSON", e))?;
        let manifest = if value.get("format").is_some() {
            let manifest: Manifest = serde_json::from_value(value).map_err(|e| manifest_error("is not an ftuscope manifest", e))?;
            if !manifest.format.starts_with("ftuscope-model/") {
                return Err(Error::Manifest(format!("model.json has format '{}', expected {MANIFEST_FORMAT}", manifest.format)));
            }
            manifest
        } else {
            let model: SegmenterConfig =
                serde_json::from_value(value).map_err(|e| manifest_error("is neither a manifest nor a network config", e))?;
            let mut manifest = Self::new("imported", model);
            manifest.trained_on = "imported weights (see their source)".into();
            manifest
        };
        manifest.check()?;
        Ok(manifest)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Rejects settings no engine can run.
    pub fn check(&self) -> Result<()> {
        self.model.check()?;
        let invalid = |text: String| Err(Error::Invalid(format!("model.json: {text}")));
        let size = self.model.input_size;
        if size == 0 || !size.is_multiple_of(super::STRIDE) || size > 4096 {
            return invalid(format!("input_size {size} must be a positive multiple of {} up to 4096", super::STRIDE));
        }
        if self.window == 0 || self.overlap >= self.window || self.window > 65_536 {
            return invalid(format!("window {} must be positive, at most 65536 and larger than the overlap {}", self.window, self.overlap));
        }
        if let Some(p) = self.input_pixel_size_um
            && !(p.is_finite() && p > 0.0 && p <= 1000.0)
        {
            return invalid(format!("input_pixel_size_um {p} must be a positive number of µm up to 1000"));
        }
        if let (Some(p), Some(w)) = (self.input_pixel_size_um, self.window_um)
            && ((p * size as f64) - w).abs() > 0.01 * w.abs().max(1e-9)
        {
            return invalid(format!("window_um {w} differs from input_pixel_size_um {p} × input_size {size}"));
        }
        if !(self.min_area.is_finite() && self.min_area >= 0.0) {
            return invalid(format!("min_area {} must be a number of pixels² at least 0", self.min_area));
        }
        if let Some(max) = self.max_area
            && !(max.is_finite() && max > self.min_area)
        {
            return invalid(format!("max_area {max} must be a number of pixels² larger than min_area {}", self.min_area));
        }
        if ![1, 2, 4, 8].contains(&self.tta) {
            return invalid(format!("tta {} must be 1, 2, 4 or 8", self.tta));
        }
        if let Some(r) = &self.stain_reference
            && !(r.mean.iter().all(|m| m.is_finite()) && r.std.iter().all(|s| s.is_finite() && *s > 0.0))
        {
            return invalid(format!("stain_reference {r:?} needs finite means and positive standard deviations"));
        }
        if !(0.0..=1.0).contains(&self.threshold) || self.std.iter().any(|&s| s <= 0.0 || !s.is_finite()) {
            return invalid("threshold must be in 0..1 and std positive".into());
        }
        Ok(())
    }

    /// Level-0 pixels per model pixel.
    pub fn scale(&self) -> f64 {
        self.window as f64 / self.model.input_size as f64
    }

    /// The input normalisation the model was trained with.
    pub fn normaliser(&self) -> Normaliser {
        Normaliser::new().with_mean(self.mean).with_std(self.std)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_and_bare_configs_are_read() {
        let mut m = Manifest::new("demo", SegmenterConfig::from_arch("unet-tiny").unwrap().with_input_size(256));
        m.trained_on = "synthetic tissue".into();
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
        let bare = serde_json::to_string(&m.model).unwrap();
        let read = Manifest::from_json(&bare).unwrap();
        assert_eq!(read.model, m.model);
        assert_eq!(read.window, 768);
        let mut zero_width = m.clone();
        zero_width.model.tiny_widths[0] = 0;
        let mut four_stages = m.clone();
        four_stages.model.decoder_channels.pop();
        let mut huge = m.clone();
        huge.model.decoder_channels[0] = 1 << 20;
        let (zero_width, four_stages, huge) = (zero_width.to_json(), four_stages.to_json(), huge.to_json());
        for bad in [
            "",
            "[1]",
            "{\"format\":\"other/1\"}",
            &m.to_json().replace("\"tta\": 1", "\"tta\": 3"),
            &m.to_json().replace("\"f32\"", "\"f8\""),
            &zero_width,
            &four_stages,
            &huge,
        ] {
            assert!(Manifest::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_follow_each_slides_pixel_size() {
        // A model for 2 µm/px input at 256² (512 µm windows), trained at 1 µm/px: window 512 px there.
        let mut m = Manifest::new("real", SegmenterConfig::from_arch("unet-tiny").unwrap().with_input_size(256)).with_pixel_size(Some(2.0));
        (m.window, m.overlap, m.min_area) = (512, 128, 1000.0);
        assert_eq!((m.window_um, m.assumed_pixel_size_um()), (Some(512.0), Some(1.0)));
        assert_eq!(
            (m.window_for(Some(0.25)), m.window_for(Some(0.5)), m.window_for(Some(1.0)), m.window_for(Some(4.0))),
            (2048, 1024, 512, 128)
        );
        assert_eq!((m.window_for(None), m.overlap_for_slide(Some(0.5)), m.overlap_for_slide(None)), (512, 256, 128));
        assert_eq!((m.min_area_for(Some(0.5)), m.min_area_for(Some(2.0))), (4000.0, 250.0));
        assert_eq!((m.max_area_for(Some(0.5)), m.max_area_for(Some(2.0))), (None, None));
        m.max_area = Some(100_000.0);
        assert_eq!((m.max_area_for(Some(0.5)), m.max_area_for(Some(2.0))), (Some(400_000.0), Some(25_000.0)));
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
        // The upper bound must lie above the lower one.
        let inverted = m.to_json().replace("\"max_area\": 100000.0", "\"max_area\": 500.0");
        assert!(matches!(Manifest::from_json(&inverted), Err(Error::Invalid(e)) if e.contains("max_area")));
        // Older manifests (no pixel size): windows stay in pixels whatever the slide says.
        let old = Manifest::new("old", m.model.clone());
        assert_eq!((old.window_for(Some(0.25)), old.window_for(None), old.assumed_pixel_size_um()), (768, 768, None));
        // window_um must agree with input_pixel_size_um × input_size.
        let wrong = m.to_json().replace("\"window_um\": 512.0", "\"window_um\": 600.0");
        assert!(matches!(Manifest::from_json(&wrong), Err(Error::Invalid(e)) if e.contains("window_um")));
        assert!(Manifest::from_json(&m.to_json().replace("\"input_pixel_size_um\": 2.0", "\"input_pixel_size_um\": -2.0")).is_err());
    }
}

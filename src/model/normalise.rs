//! Input normalisation, written once as tensor ops and used identically by training, validation
//! and inference: 8-bit RGB windows → `(v/255 − mean) / std` per channel, channels first. The
//! statistics travel in the model's manifest, so a model is always fed as it was trained.

use burn::prelude::*;

/// ImageNet statistics (RGB, 0..1), as the seed's encoders were pre-trained with.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet standard deviations.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Per-channel input statistics.
#[derive(Config, Debug, PartialEq)]
pub struct Normaliser {
    /// Per-channel mean (RGB in 0..1).
    #[config(default = "IMAGENET_MEAN")]
    pub mean: [f32; 3],
    /// Per-channel standard deviation.
    #[config(default = "IMAGENET_STD")]
    pub std: [f32; 3],
}

impl Normaliser {
    /// The network input for `count` square RGB images of side `side`, stored one after another
    /// as interleaved bytes (`RgbImage::as_raw`), on `device`.
    ///
    /// # Shapes
    /// - `rgb`: `count · side · side · 3` bytes
    /// - returns: `[count, 3, side, side]`
    pub fn input(&self, rgb: &[u8], count: usize, side: usize, device: &Device) -> Tensor<4> {
        let values: Vec<f32> = rgb.iter().map(|&v| v as f32).collect();
        let pixels = Tensor::<4>::from_data(TensorData::new(values, [count, side, side, 3]), device).permute([0, 3, 1, 2]);
        let mean = Tensor::<4>::from_data(TensorData::new(self.mean.to_vec(), [1, 3, 1, 1]), device);
        let std = Tensor::<4>::from_data(TensorData::new(self.std.to_vec(), [1, 3, 1, 1]), device);
        (pixels / 255.0 - mean) / std
    }
}

/// Mean and standard deviation of L*, a*, b* over a slide's tissue pixels: the colour of its
/// stain, as stain normalisation (`crate::infer::StainNormaliser`) matches it to a reference.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabStats {
    /// Mean L*, a*, b*.
    pub mean: [f32; 3],
    /// Standard deviation of L*, a*, b*.
    pub std: [f32; 3],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_channels_first_and_normalised_per_channel() {
        let device = Device::flex();
        // Four 1×1 images: (255, 0, 51), (0, 255, 102) twice, (255, 0, 51).
        let rgb = [255, 0, 51, 0, 255, 102, 0, 255, 102, 255, 0, 51];
        let n = Normaliser::new().with_mean([0.5, 0.25, 0.0]).with_std([0.5, 0.25, 0.2]);
        let x = n.input(&rgb, 4, 1, &device);
        assert_eq!(x.dims(), [4, 3, 1, 1]);
        let v = x.into_data().try_to_vec::<f32>().unwrap();
        let want = [1.0, -1.0, 1.0, -1.0, 3.0, 2.0, -1.0, 3.0, 2.0, 1.0, -1.0, 1.0];
        for (g, w) in v.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{v:?}");
        }
        let grey = n.input(&[128; 2 * 2 * 3], 1, 2, &device).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(grey.len(), 12);
        assert!(grey[..4].iter().all(|&g| (g - (128.0 / 255.0 - 0.5) / 0.5).abs() < 1e-6));
    }
}

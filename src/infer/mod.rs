//! Turns pixels into probabilities with a network. [`Segmenter`] segments one image (tiling,
//! batching, asynchronous read-back — the only kind WebGPU allows); [`predict_slide`] runs a
//! whole slide: tissue plan, windows from the cheapest level, batches with flip TTA, blending,
//! progress and cancellation, and a [`Prediction`] with glomeruli, RLE, GeoJSON and an overview.

mod plan;
mod prediction;
mod wsi;

pub use plan::{Plan, PlanConfig, Window, saturation, tissue_mask};
pub use prediction::{Glomerulus, Prediction, Timings};
pub use wsi::{Blend, NetModel, Progress, SlideRun, TileModel, Update, WsiConfig, predict_slide, read_resized};

use crate::mask::ProbMask;
use crate::model::{self, TinyUNet, TinyUNetConfig};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use image::RgbImage;

/// ImageNet normalisation (RGB, 0..1), as the seed's encoders were trained with.
pub use crate::model::{MEAN, STD};

/// Errors while segmenting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings cannot work (e.g. a tile size the network cannot take).
    #[error("invalid segmentation settings: {0}")]
    Config(String),
    /// The compute backend failed (device lost, out of memory, shader rejected).
    #[error("the compute backend failed: {0}")]
    Backend(String),
    /// Reading the slide failed.
    #[error("{0}")]
    Slide(String),
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// How an image is cut and batched for the network.
#[derive(Config, Debug)]
pub struct SegmentConfig {
    /// Side of the square windows fed to the network, in pixels; a multiple of the network's stride.
    #[config(default = 256)]
    pub tile: usize,
    /// Windows per forward pass.
    #[config(default = 4)]
    pub batch: usize,
    /// Probability at and above which a pixel counts as glomerulus.
    #[config(default = 0.5)]
    pub threshold: f32,
}

/// A network on a device, ready to segment images.
#[derive(Debug)]
pub struct Segmenter {
    model: TinyUNet,
    device: Device,
    config: SegmentConfig,
}

impl Segmenter {
    /// The placeholder network with its fixed-seed (untrained) weights, on `device`.
    ///
    /// Every device — native CPU, CUDA or WebGPU — runs exactly the same numbers.
    pub fn placeholder(device: &Device, config: SegmentConfig) -> Result<Self, Error> {
        Self::new(model::placeholder(device), device, config)
    }

    /// Wraps a network already on `device`.
    pub fn new(model: TinyUNet, device: &Device, config: SegmentConfig) -> Result<Self, Error> {
        let stride = TinyUNetConfig::STRIDE;
        if config.tile == 0 || !config.tile.is_multiple_of(stride) || config.tile > 4096 {
            return Err(Error::Config(format!("tile {} must be a positive multiple of {stride} up to 4096", config.tile)));
        }
        if config.batch == 0 || config.batch > 64 {
            return Err(Error::Config(format!("batch {} must be within 1..=64", config.batch)));
        }
        Ok(Self { model, device: device.clone(), config })
    }

    /// The settings in use.
    pub fn config(&self) -> &SegmentConfig {
        &self.config
    }

    /// Segments `image`, returning a probability mask of the same size.
    ///
    /// The image is cut into `tile`×`tile` windows (the last row and column zero-padded), run
    /// `batch` at a time, and read back asynchronously.
    pub async fn segment(&self, image: &RgbImage) -> Result<ProbMask, Error> {
        let (width, height) = image.dimensions();
        let tile = self.config.tile as u32;
        let origins: Vec<(u32, u32)> =
            (0..height.div_ceil(tile)).flat_map(|ty| (0..width.div_ceil(tile)).map(move |tx| (tx * tile, ty * tile))).collect();
        let mut mask = ProbMask::zeros(width, height);
        for batch in origins.chunks(self.config.batch) {
            let probs = self.forward_batch(image, batch).await?;
            let area = (tile * tile) as usize;
            for (i, &(x, y)) in batch.iter().enumerate() {
                mask.paste(x, y, &probs[i * area..(i + 1) * area], tile as usize, tile, tile);
            }
        }
        Ok(mask)
    }

    /// Runs one batch of windows whose top-left corners are `origins`; returns their probabilities.
    async fn forward_batch(&self, image: &RgbImage, origins: &[(u32, u32)]) -> Result<Vec<f32>, Error> {
        let t = self.config.tile;
        let mut input = vec![0f32; origins.len() * 3 * t * t];
        for (i, &origin) in origins.iter().enumerate() {
            write_window(image, origin, t, &mut input[i * 3 * t * t..(i + 1) * 3 * t * t]);
        }
        let images = Tensor::<4>::from_data(TensorData::new(input, [origins.len(), 3, t, t]), &self.device);
        let probs = sigmoid(self.model.forward(images));
        let data = probs.into_data_async().await.map_err(|e| Error::Backend(e.to_string()))?;
        data.try_into_vec::<f32>().map_err(|e| Error::Backend(format!("{e:?}")))
    }
}

/// Writes the normalised `t`×`t` window at `origin` into `out` (channel-major, `3·t·t` values),
/// leaving zeros (the mean colour) where the window leaves the image.
fn write_window(image: &RgbImage, (x0, y0): (u32, u32), t: usize, out: &mut [f32]) {
    let (width, height) = image.dimensions();
    let w = (width - x0).min(t as u32);
    let h = (height - y0).min(t as u32);
    for dy in 0..h {
        for dx in 0..w {
            let px = image.get_pixel(x0 + dx, y0 + dy).0;
            let i = dy as usize * t + dx as usize;
            for c in 0..3 {
                out[c * t * t + i] = (px[c] as f32 / 255.0 - MEAN[c]) / STD[c];
            }
        }
    }
}

#[cfg(test)]
mod tests;

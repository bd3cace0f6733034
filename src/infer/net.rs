//! The network adapter: what the whole-slide engine asks of a model ([`TileModel`]: resized windows
//! in, probabilities out) and its implementation for a trained network on a device ([`NetModel`]:
//! the manifest's normalisation, flip TTA, asynchronous read-back — the only kind WebGPU allows).

use super::Error;
use super::plan::{Plan, Window};
use crate::model::{Manifest, Normaliser, SegmentationModel};
use crate::slide::source::MaybeSendSync;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use image::RgbImage;

/// Something that turns resized windows into probabilities: the network, or a test oracle.
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait TileModel: MaybeSendSync {
    /// Probabilities in 0..1 for each image (`plan.input_size`² pixels, row-major), in order.
    async fn predict(&self, plan: &Plan, windows: &[Window], images: &[RgbImage]) -> Result<Vec<Vec<f32>>, Error>;
}

/// A [`SegmentationModel`] on a device, fed as its manifest says, with optional flip TTA.
pub struct NetModel {
    model: SegmentationModel,
    device: Device,
    tta: u8,
    normaliser: Normaliser,
}

impl NetModel {
    /// Wraps a network already on `device` with its manifest's normalisation, its batch norms
    /// folded into its convolutions ([`SegmentationModel::folded`]); `tta` (1, 2, 4 or 8 views)
    /// overrides the manifest's when given.
    pub fn new(model: SegmentationModel, manifest: &Manifest, device: &Device, tta: Option<u8>) -> Result<Self, Error> {
        let tta = tta.unwrap_or(manifest.tta);
        if ![1, 2, 4, 8].contains(&tta) {
            return Err(Error::Config(format!("--tta {tta}: expected 1, 2, 4 or 8")));
        }
        Ok(Self { model: model.folded(), device: device.clone(), tta, normaliser: manifest.normaliser() })
    }

    /// The network's raw logits for `input`, `batch`×3×`size`² floats already normalised (no TTA,
    /// no sigmoid), read back asynchronously: the network alone, for benchmarks against other
    /// runtimes on the same weights and input.
    pub async fn logits(&self, input: Vec<f32>, batch: usize, size: usize) -> Result<Vec<f32>, Error> {
        if size == 0 || !size.is_multiple_of(crate::model::STRIDE) || input.len() != batch * 3 * size * size {
            return Err(Error::Config(format!(
                "{} floats for a {batch}×3×{size}×{size} input (the side a multiple of {})",
                input.len(),
                crate::model::STRIDE
            )));
        }
        let x = Tensor::<4>::from_data(TensorData::new(input, [batch, 3, size, size]), &self.device);
        self.model
            .forward(x)
            .into_data_async()
            .await
            .map_err(|e| Error::Backend(e.to_string()))?
            .try_into_vec()
            .map_err(|e| Error::Backend(format!("{e:?}")))
    }
}

/// The `k`-th of the 8 flip/transpose views (self-inverse for k < 4; k ≥ 4 transposes first).
fn view(x: Tensor<4>, k: u8, inverse: bool) -> Tensor<4> {
    let flip = |x: Tensor<4>| match k % 4 {
        1 => x.flip([3]),
        2 => x.flip([2]),
        3 => x.flip([2, 3]),
        _ => x,
    };
    match (k >= 4, inverse) {
        (false, _) => flip(x),
        (true, false) => flip(x.swap_dims(2, 3)),
        (true, true) => flip(x).swap_dims(2, 3),
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl TileModel for NetModel {
    async fn predict(&self, plan: &Plan, _windows: &[Window], images: &[RgbImage]) -> Result<Vec<Vec<f32>>, Error> {
        let s = plan.input_size as usize;
        if let Some(bad) = images.iter().find(|image| image.dimensions() != (s as u32, s as u32)) {
            return Err(Error::Config(format!("a window of {}×{} pixels for a {s}×{s} network", bad.width(), bad.height())));
        }
        let rgb: Vec<u8> = images.iter().flat_map(|image| image.as_raw().iter().copied()).collect();
        let x = self.normaliser.input(&rgb, images.len(), s, &self.device);
        let mut sum: Option<Tensor<4>> = None;
        for k in 0..self.tta {
            let p = view(sigmoid(self.model.forward(view(x.clone(), k, false))), k, true);
            sum = Some(match sum {
                Some(acc) => acc + p,
                None => p,
            });
        }
        let probs = sum.ok_or_else(|| Error::Config("no TTA view".into()))? / self.tta as f32;
        let data: Vec<f32> = probs
            .into_data_async()
            .await
            .map_err(|e| Error::Backend(e.to_string()))?
            .try_into_vec()
            .map_err(|e| Error::Backend(format!("{e:?}")))?;
        Ok(data.chunks(s * s).map(<[f32]>::to_vec).collect())
    }
}

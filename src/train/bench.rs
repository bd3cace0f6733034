//! `ftuscope bench train`: training throughput of a network on the chosen device — images/s at a
//! given input size and batch, with the loss of each step — on synthetic tiles rendered once into
//! memory (so the number measures the model, not data loading). The GPU check runs it on CUDA.

use super::{Error, LossConfig};
use crate::mask::{Polygon, rasterise};
use crate::model::{Normaliser, SegmenterConfig, seeded};
use crate::synth::{Scene, SynthConfig};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use std::time::Instant;

/// What `bench train` measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainBench {
    /// Network.
    pub arch: String,
    /// Input side.
    pub size: usize,
    /// Images per step.
    pub batch: usize,
    /// Steps timed (after one untimed warm-up step).
    pub steps: usize,
    /// Training images per second over the timed steps.
    pub images_per_s: f64,
    /// Seconds of the untimed first step (kernel compilation on GPUs).
    pub first_step_s: f64,
    /// Loss of every step, warm-up included.
    pub losses: Vec<f64>,
    /// Encoder feature levels frozen (fine-tuning; 0: none).
    pub frozen_levels: usize,
    /// Encoder batch norms on running statistics (fine-tuning).
    pub frozen_norms: bool,
}

/// Times `steps` AdamW steps of `model` (input `model.input_size`) on `device`, its encoder's
/// first `frozen_levels` feature levels frozen and, with `frozen_norms`, its batch norms on
/// running statistics, as `train` fine-tunes ([`crate::model::SegmentationModel::freeze_encoder`]).
pub fn bench_train(
    model: &SegmenterConfig,
    device: &Device,
    batch: usize,
    steps: usize,
    frozen_levels: usize,
    frozen_norms: bool,
) -> Result<TrainBench, Error> {
    let s = model.input_size;
    if s == 0 || !s.is_multiple_of(crate::model::STRIDE) || batch == 0 || steps == 0 {
        return Err(Error::Config(format!("size {s} must be a positive multiple of {}, batch and steps positive", crate::model::STRIDE)));
    }
    // Tiles: windows of 3·s level-0 pixels (the seed's 1536 → 512) around glomeruli of a synthetic slide.
    let scene = Scene::new(&SynthConfig::new(8000, 6000).with_seed(99));
    let window = 3 * s as u32;
    let centres: Vec<[f64; 2]> = scene
        .glomerulus_annotations()
        .iter()
        .filter_map(|a| a.polygons.first())
        .filter_map(|p| p.rings.first())
        .map(|r| {
            let n = r.len().max(1) as f64;
            [r.iter().map(|p| p[0]).sum::<f64>() / n, r.iter().map(|p| p[1]).sum::<f64>() / n]
        })
        .collect();
    let polygons: Vec<Polygon> = scene.glomerulus_annotations().into_iter().flat_map(|a| a.polygons).collect();
    let pool = batch.clamp(4, 16);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for k in 0..pool {
        let [cx, cy] = centres.get(k % centres.len().max(1)).copied().unwrap_or([4000.0, 3000.0]);
        let x0 = (cx as i64 - window as i64 / 2 + (k as i64 * 97) % 300).clamp(0, 8000 - window as i64) as u32;
        let y0 = (cy as i64 - window as i64 / 2).clamp(0, 6000 - window as i64) as u32;
        let image = scene.render_scaled(x0 / 3, y0 / 3, s as u32, s as u32, 3);
        let moved: Vec<Polygon> = polygons
            .iter()
            .map(|p| Polygon {
                rings: p.rings.iter().map(|r| r.iter().map(|q| [(q[0] - x0 as f64) / 3.0, (q[1] - y0 as f64) / 3.0]).collect()).collect(),
            })
            .collect();
        let mask = rasterise(&moved, s as u32, s as u32);
        let n = s * s;
        xs.push(image.into_raw());
        ys.push((0..n).map(|j| mask.get((j % s) as u32, (j / s) as u32) as u8 as f32).collect::<Vec<f32>>());
    }
    let train_device = device.clone().autodiff();
    let mut net = seeded(model.init(&train_device), 1).freeze_encoder(frozen_levels, frozen_norms);
    let mut optim = AdamWConfig::new().init();
    let loss_config = LossConfig::new();
    let mut losses = Vec::new();
    let (mut first_step_s, mut started) = (0.0, Instant::now());
    for step in 0..=steps {
        let t = Instant::now();
        let pick: Vec<usize> = (0..batch).map(|b| (step * batch + b) % pool).collect();
        let x: Vec<u8> = pick.iter().flat_map(|&i| xs[i].iter().copied()).collect();
        let y: Vec<f32> = pick.iter().flat_map(|&i| ys[i].iter().copied()).collect();
        let x = Normaliser::new().input(&x, batch, s, &train_device);
        let y = Tensor::<4>::from_data(TensorData::new(y, [batch, 1, s, s]), &train_device);
        let loss = loss_config.loss(net.forward(x), y);
        let value =
            loss.clone().detach().into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| Error::Backend(format!("{e:?}")))?[0];
        losses.push(value as f64);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-3, net, grads);
        if step == 0 {
            first_step_s = t.elapsed().as_secs_f64();
            started = Instant::now();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(TrainBench {
        arch: model.arch(),
        size: s,
        batch,
        steps,
        images_per_s: (steps * batch) as f64 / seconds.max(1e-9),
        first_step_s,
        losses,
        frozen_levels,
        frozen_norms,
    })
}

//! Segmentation losses on logits: BCE (optionally with a positive-class weight), soft Dice, focal
//! and Lovász hinge, and any weighted sum of them, as the config chooses (the seed: BCE + Dice).

use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

/// A weighted sum of losses. Weights of 0 switch a term off.
#[derive(Config, Debug, PartialEq)]
pub struct LossConfig {
    /// Binary cross-entropy.
    #[config(default = 1.0)]
    pub bce: f64,
    /// Weight of positive pixels in the BCE (1 = plain BCE; >1 = weighted BCE).
    #[config(default = 1.0)]
    pub pos_weight: f64,
    /// Soft Dice loss (1 − Dice over the batch, smoothed by 1).
    #[config(default = 1.0)]
    pub dice: f64,
    /// Focal loss.
    #[config(default = 0.0)]
    pub focal: f64,
    /// Focal loss γ.
    #[config(default = 2.0)]
    pub focal_gamma: f64,
    /// Lovász hinge (per image, averaged).
    #[config(default = 0.0)]
    pub lovasz: f64,
}

impl LossConfig {
    /// The loss of `logits` against `targets` (both `[batch, 1, h, w]`, targets 0/1): a scalar.
    pub fn loss(&self, logits: Tensor<4>, targets: Tensor<4>) -> Tensor<1> {
        let device = logits.device();
        let mut total = Tensor::<1>::zeros([1], &device);
        if self.bce > 0.0 {
            total = total + bce(logits.clone(), targets.clone(), self.pos_weight).mul_scalar(self.bce);
        }
        if self.dice > 0.0 {
            total = total + dice_loss(logits.clone(), targets.clone()).mul_scalar(self.dice);
        }
        if self.focal > 0.0 {
            total = total + focal(logits.clone(), targets.clone(), self.focal_gamma).mul_scalar(self.focal);
        }
        if self.lovasz > 0.0 {
            total = total + lovasz_hinge(logits, targets).mul_scalar(self.lovasz);
        }
        total
    }
}

/// Per-pixel BCE with logits, numerically stable: max(x, 0) − x·y + ln(1 + e^−|x|).
fn bce_map(logits: Tensor<4>, targets: Tensor<4>) -> Tensor<4> {
    relu(logits.clone()) - logits.clone() * targets + logits.abs().neg().exp().log1p()
}

/// Mean BCE; positives weighted by `pos_weight`.
pub fn bce(logits: Tensor<4>, targets: Tensor<4>, pos_weight: f64) -> Tensor<1> {
    let map = bce_map(logits, targets.clone());
    if pos_weight == 1.0 {
        return map.mean();
    }
    let weights = targets.mul_scalar(pos_weight - 1.0).add_scalar(1.0);
    (map * weights.clone()).sum() / weights.sum()
}

/// 1 − soft Dice over the whole batch (smp's DiceLoss, smooth 1).
pub fn dice_loss(logits: Tensor<4>, targets: Tensor<4>) -> Tensor<1> {
    let p = sigmoid(logits);
    let inter = (p.clone() * targets.clone()).sum();
    let denom = p.sum() + targets.sum();
    (inter.mul_scalar(2.0).add_scalar(1.0) / denom.add_scalar(1.0)).neg().add_scalar(1.0)
}

/// Focal loss: BCE × (1 − p_t)^γ, averaged.
pub fn focal(logits: Tensor<4>, targets: Tensor<4>, gamma: f64) -> Tensor<1> {
    let p = sigmoid(logits.clone());
    let pt = p.clone() * targets.clone() + (p.neg().add_scalar(1.0)) * (targets.clone().neg().add_scalar(1.0));
    let modulating = pt.neg().add_scalar(1.0).clamp_min(0.0).powf_scalar(gamma);
    (bce_map(logits, targets) * modulating).mean()
}

/// Lovász hinge (Berman et al.), per image, averaged: errors 1 − x·s sorted in decreasing order,
/// dotted with the gradient of the Lovász extension of the Jaccard loss.
pub fn lovasz_hinge(logits: Tensor<4>, targets: Tensor<4>) -> Tensor<1> {
    let [b, _, h, w] = logits.dims();
    let n = h * w;
    let logits = logits.reshape([b, n]);
    let targets = targets.reshape([b, n]);
    let signs = targets.clone().mul_scalar(2.0).sub_scalar(1.0);
    let errors = (logits * signs).neg().add_scalar(1.0);
    let (_, order) = errors.clone().detach().sort_descending_with_indices(1);
    let sorted = errors.gather(1, order.clone());
    let truth = targets.detach().gather(1, order);
    let positives = truth.clone().sum_dim(1);
    let intersection = positives.clone() - truth.clone().cumsum(1);
    let union = positives + truth.neg().add_scalar(1.0).cumsum(1);
    let jaccard = (intersection / union).neg().add_scalar(1.0);
    let grad = if n > 1 {
        let first = jaccard.clone().slice([0..b, 0..1]);
        let diff = jaccard.clone().slice([0..b, 1..n]) - jaccard.slice([0..b, 0..n - 1]);
        Tensor::cat(vec![first, diff], 1)
    } else {
        jaccard
    };
    (relu(sorted) * grad.detach()).sum_dim(1).mean()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(values: &[f32], device: &Device) -> Tensor<4> {
        Tensor::<4>::from_data(TensorData::new(values.to_vec(), [1, 1, 1, values.len()]), device)
    }

    fn scalar(x: Tensor<1>) -> f64 {
        x.into_data().try_to_vec::<f32>().unwrap()[0] as f64
    }

    #[test]
    fn losses_match_hand_computed_values() {
        let d = Device::flex();
        let (x, y) = (t(&[2.0, -1.0, 0.0, 3.0], &d), t(&[1.0, 0.0, 1.0, 0.0], &d));
        let p = |v: f64| 1.0 / (1.0 + (-v).exp());
        let bce_want = [(-(p(2.0)).ln()), (-(1.0 - p(-1.0)).ln()), (-(p(0.0)).ln()), (-(1.0 - p(3.0)).ln())];
        let mean = bce_want.iter().sum::<f64>() / 4.0;
        assert!((scalar(bce(x.clone(), y.clone(), 1.0)) - mean).abs() < 1e-5);
        let weighted = (2.0 * bce_want[0] + bce_want[1] + 2.0 * bce_want[2] + bce_want[3]) / 6.0;
        assert!((scalar(bce(x.clone(), y.clone(), 2.0)) - weighted).abs() < 1e-5);
        let ps = [p(2.0), p(-1.0), p(0.0), p(3.0)];
        let dice_want = 1.0 - (2.0 * (ps[0] + ps[2]) + 1.0) / (ps.iter().sum::<f64>() + 2.0 + 1.0);
        assert!((scalar(dice_loss(x.clone(), y.clone())) - dice_want).abs() < 1e-5);
        let pt = [ps[0], 1.0 - ps[1], ps[2], 1.0 - ps[3]];
        let focal_want = (0..4).map(|i| bce_want[i] * (1.0 - pt[i]).powi(2)).sum::<f64>() / 4.0;
        assert!((scalar(focal(x.clone(), y.clone(), 2.0)) - focal_want).abs() < 1e-5);
        // Lovász hinge on a perfect, confident prediction is 0; on a wrong one positive.
        assert!(scalar(lovasz_hinge(t(&[5.0, -5.0], &d), t(&[1.0, 0.0], &d))).abs() < 1e-6);
        // By hand: x=[2,-1,0,3], signs [1,-1,1,-1]: errors [-1,0,1,4];
        // sorted e=[4,1,0,-1] with truth [0,1,0,1]; gts=2; jaccard=[1-2/3, 1-1/3, 1-1/4, 1-0/4]=
        // [1/3, 2/3, 3/4, 1]; grad=[1/3, 1/3, 1/12, 1/4]; loss = 4/3 + 1/3 = 5/3.
        assert!((scalar(lovasz_hinge(x.clone(), y.clone())) - 5.0 / 3.0).abs() < 1e-5);
        let sum = LossConfig::new().with_bce(0.5).with_dice(2.0).loss(x, y);
        assert!((scalar(sum) - (0.5 * mean + 2.0 * dice_want)).abs() < 1e-5);
    }
}

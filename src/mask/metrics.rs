//! The competition metric: Dice per image, averaged over images.

use super::BinaryMask;

/// Dice coefficient 2|A∩B| / (|A|+|B|) of two masks of the same size; two empty masks score 1, as
/// in the competition.
pub fn dice(truth: &BinaryMask, prediction: &BinaryMask) -> f64 {
    let total = truth.count() + prediction.count();
    if total == 0 {
        return 1.0;
    }
    2.0 * truth.intersection_count(prediction) as f64 / total as f64
}

/// The competition's score: the mean of per-image Dice (1 for no images at all).
pub fn mean_dice<'a>(pairs: impl IntoIterator<Item = (&'a BinaryMask, &'a BinaryMask)>) -> f64 {
    let (sum, n) = pairs.into_iter().fold((0.0, 0usize), |(s, n), (t, p)| (s + dice(t, p), n + 1));
    if n == 0 { 1.0 } else { sum / n as f64 }
}

/// Dice of two competition RLEs, computed on their runs (no mask, no image size needed): exactly
/// the pixel Dice of the decoded masks. Two empty encodings score 1.
pub fn dice_rle(truth: &str, prediction: &str) -> Result<f64, super::Error> {
    let (a, b) = (super::rle::rle_runs(truth)?, super::rle::rle_runs(prediction)?);
    let size = |runs: &[(u64, u64)]| runs.iter().map(|(s, e)| e - s).sum::<u64>();
    let total = size(&a) + size(&b);
    if total == 0 {
        return Ok(1.0);
    }
    let (mut i, mut j, mut both) = (0, 0, 0u64);
    while i < a.len() && j < b.len() {
        let (s, e) = (a[i].0.max(b[j].0), a[i].1.min(b[j].1));
        if s < e {
            both += e - s;
        }
        if a[i].1 < b[j].1 { i += 1 } else { j += 1 }
    }
    Ok(2.0 * both as f64 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_on_runs_equals_dice_on_masks() {
        let (t, p) = ("1 3 10 5", "2 3 12 10");
        let (mt, mp) = (super::super::rle_decode(t, 5, 5).unwrap(), super::super::rle_decode(p, 5, 5).unwrap());
        assert!((dice_rle(t, p).unwrap() - dice(&mt, &mp)).abs() < 1e-12);
        assert_eq!(dice_rle("", "").unwrap(), 1.0);
        assert_eq!(dice_rle("1 4", "").unwrap(), 0.0);
        assert!(dice_rle("5 2 1 1", "").is_err());
    }

    fn mask(w: u32, h: u32, on: &[(u32, u32)]) -> BinaryMask {
        let mut m = BinaryMask::new(w, h);
        on.iter().for_each(|&(x, y)| m.set(x, y, true));
        m
    }

    #[test]
    fn dice_matches_the_definition() {
        let a = mask(4, 4, &[(0, 0), (1, 0), (2, 0)]);
        let b = mask(4, 4, &[(1, 0), (2, 0), (3, 0), (3, 3)]);
        assert!((dice(&a, &b) - 4.0 / 7.0).abs() < 1e-12);
        assert_eq!(dice(&a, &a), 1.0);
        assert_eq!(dice(&a, &BinaryMask::new(4, 4)), 0.0);
    }

    #[test]
    fn empty_versus_empty_is_one_and_the_mean_is_per_image() {
        let empty = BinaryMask::new(3, 3);
        let full = mask(3, 3, &[(1, 1)]);
        assert_eq!(dice(&empty, &empty), 1.0);
        assert_eq!(mean_dice([(&empty, &empty), (&full, &empty)]), 0.5);
    }
}

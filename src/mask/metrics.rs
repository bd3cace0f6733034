//! The competition metric (Dice per image, averaged over images), pooled Dice, and what clinicians
//! count: objects found and missed, a glomerulus counting as found when a predicted object overlaps
//! it with IoU ≥ [`IOU_MATCH`].

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
    let (both, na, nb) = overlap(&a, &b);
    if na + nb == 0 {
        return Ok(1.0);
    }
    Ok(2.0 * both as f64 / (na + nb) as f64)
}

/// Pixels in both, in `a` and in `b`, of two sorted lists of half-open runs.
fn overlap(a: &[(u64, u64)], b: &[(u64, u64)]) -> (u64, u64, u64) {
    let size = |runs: &[(u64, u64)]| runs.iter().map(|(s, e)| e - s).sum::<u64>();
    let (mut i, mut j, mut both) = (0, 0, 0u64);
    while i < a.len() && j < b.len() {
        let (s, e) = (a[i].0.max(b[j].0), a[i].1.min(b[j].1));
        if s < e {
            both += e - s;
        }
        if a[i].1 < b[j].1 { i += 1 } else { j += 1 }
    }
    (both, size(a), size(b))
}

/// One object (or mask) as sorted, 0-based, half-open runs of pixel indices in the competition's
/// column-major order.
pub type Runs = Vec<(u64, u64)>;

/// IoU at or above which a predicted object finds a true one (the usual instance-matching rule:
/// above 0.5 at most one prediction can match each object).
pub const IOU_MATCH: f64 = 0.5;

/// Pixel and object counts of one image, or summed over many ([`Scores::add`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    /// Pixels both true and predicted.
    pub intersection: u64,
    /// True pixels.
    pub truth_pixels: u64,
    /// Predicted pixels.
    pub predicted_pixels: u64,
    /// True objects (glomeruli).
    pub truth_objects: usize,
    /// Predicted objects.
    pub predicted_objects: usize,
    /// True objects matched by a predicted one at IoU ≥ [`IOU_MATCH`] (each prediction used once).
    pub matched: usize,
}

impl Scores {
    /// Pixel Dice of these counts (1 when nothing is true and nothing predicted).
    pub fn dice(&self) -> f64 {
        let total = self.truth_pixels + self.predicted_pixels;
        if total == 0 { 1.0 } else { 2.0 * self.intersection as f64 / total as f64 }
    }

    /// Object recall: true objects found (1 when there are none).
    pub fn recall(&self) -> f64 {
        if self.truth_objects == 0 { 1.0 } else { self.matched as f64 / self.truth_objects as f64 }
    }

    /// Object precision: predictions that found a true object (1 when nothing is predicted).
    pub fn precision(&self) -> f64 {
        if self.predicted_objects == 0 { 1.0 } else { self.matched as f64 / self.predicted_objects as f64 }
    }

    /// Pooled counts of two sets of images.
    pub fn add(&mut self, other: &Scores) {
        self.intersection += other.intersection;
        self.truth_pixels += other.truth_pixels;
        self.predicted_pixels += other.predicted_pixels;
        self.truth_objects += other.truth_objects;
        self.predicted_objects += other.predicted_objects;
        self.matched += other.matched;
    }
}

/// Scores of one image: `truth` and `prediction` are its column-major RLEs (the union masks, for
/// pixel counts), `truth_objects` and `predicted_objects` the objects as sorted 0-based half-open
/// runs of the same pixel order (see [`rle_objects`]). Matching is greedy by IoU, best first.
pub fn score_objects(
    truth: &[(u64, u64)],
    prediction: &[(u64, u64)],
    truth_objects: &[Vec<(u64, u64)>],
    predicted_objects: &[Vec<(u64, u64)>],
) -> Scores {
    let (intersection, truth_pixels, predicted_pixels) = overlap(truth, prediction);
    let span = |o: &Runs| (o.first().map_or(0, |r| r.0), o.last().map_or(0, |r| r.1));
    let spans: Vec<(u64, u64)> = predicted_objects.iter().map(span).collect();
    let mut pairs = Vec::new();
    for (t, object) in truth_objects.iter().enumerate() {
        let (lo, hi) = span(object);
        for (p, other) in predicted_objects.iter().enumerate() {
            if spans[p].1 <= lo || spans[p].0 >= hi {
                continue;
            }
            let (both, a, b) = overlap(object, other);
            let iou = both as f64 / (a + b - both).max(1) as f64;
            if iou >= IOU_MATCH {
                pairs.push((iou, t, p));
            }
        }
    }
    pairs.sort_by(|x, y| y.0.total_cmp(&x.0));
    let (mut used_t, mut used_p) = (vec![false; truth_objects.len()], vec![false; predicted_objects.len()]);
    let mut matched = 0;
    for (_, t, p) in pairs {
        if !used_t[t] && !used_p[p] {
            (used_t[t], used_p[p], matched) = (true, true, matched + 1);
        }
    }
    Scores {
        intersection,
        truth_pixels,
        predicted_pixels,
        truth_objects: truth_objects.len(),
        predicted_objects: predicted_objects.len(),
        matched,
    }
}

/// Scores of a predicted Kaggle RLE against a true one on a `width`×`height` image; the true
/// objects are `truth_objects` when given (outlines keep touching glomeruli apart), else the
/// true mask's connected components; predicted objects are the prediction's components.
pub fn score_rle(truth: &str, truth_objects: Option<&[Runs]>, prediction: &str, width: u32, height: u32) -> Result<Scores, super::Error> {
    let (t, p) = (super::rle::rle_runs(truth)?, super::rle::rle_runs(prediction)?);
    let derived;
    let truth_objects = match truth_objects {
        Some(o) => o,
        None => {
            derived = rle_objects(&t, width, height);
            &derived
        }
    };
    Ok(score_objects(&t, &p, truth_objects, &rle_objects(&p, width, height)))
}

/// The 8-connected objects of a column-major mask given as sorted 0-based half-open `runs` over a
/// `width`×`height` image, each as its own runs (connectivity does not care that columns play the
/// part of rows).
pub fn rle_objects(runs: &[(u64, u64)], width: u32, height: u32) -> Vec<Runs> {
    let h = height as u64;
    let mut next = 0;
    let components = super::components_of_rows(height, width, |column, out| {
        let (lo, hi) = (column as u64 * h, (column as u64 + 1) * h);
        while next < runs.len() && runs[next].1 <= lo {
            next += 1;
        }
        let mut k = next;
        while k < runs.len() && runs[k].0 < hi {
            let (s, e) = (runs[k].0.max(lo), runs[k].1.min(hi));
            if s < e {
                out.push(((s - lo) as u32, (e - lo) as u32));
            }
            k += 1;
        }
    });
    let mut objects = vec![Vec::new(); components.objects.len()];
    for run in &components.runs {
        let base = run.y as u64 * h;
        objects[run.label as usize - 1].push((base + run.x0 as u64, base + run.x1 as u64));
    }
    for o in &mut objects {
        o.sort_unstable();
    }
    objects
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

#[cfg(test)]
mod object_tests {
    use super::*;
    use crate::mask::{BinaryMask, rle_encode, rle_runs};

    fn runs_of(mask: &BinaryMask) -> Vec<(u64, u64)> {
        rle_runs(&rle_encode(mask)).unwrap()
    }

    #[test]
    fn objects_are_found_and_matched_at_iou_one_half() {
        let (w, h) = (40u32, 30u32);
        let square = |x0: u32, y0: u32, side: u32| {
            let mut m = BinaryMask::new(w, h);
            for y in y0..y0 + side {
                for x in x0..x0 + side {
                    m.set(x, y, true);
                }
            }
            m
        };
        let (a, b, c) = (square(2, 2, 10), square(20, 5, 8), square(30, 20, 6));
        let mut truth = BinaryMask::new(w, h);
        let mut predicted = BinaryMask::new(w, h);
        for (x, y) in (0..w).flat_map(|x| (0..h).map(move |y| (x, y))) {
            truth.set(x, y, a.get(x, y) || b.get(x, y));
        }
        // Prediction: a exactly, b shifted by 4 columns (IoU 4·8/(12·8) = 1/3 < 0.5), and c (a false positive).
        let b_shifted = square(24, 5, 8);
        for (x, y) in (0..w).flat_map(|x| (0..h).map(move |y| (x, y))) {
            predicted.set(x, y, a.get(x, y) || b_shifted.get(x, y) || c.get(x, y));
        }
        let (tr, pr) = (runs_of(&truth), runs_of(&predicted));
        let (to, po) = (rle_objects(&tr, w, h), rle_objects(&pr, w, h));
        assert_eq!((to.len(), po.len()), (2, 3));
        assert_eq!(to.iter().map(|o| o.iter().map(|r| r.1 - r.0).sum::<u64>()).collect::<Vec<_>>(), [100, 64]);
        let s = score_objects(&tr, &pr, &to, &po);
        assert_eq!((s.truth_objects, s.predicted_objects, s.matched), (2, 3, 1));
        assert!((s.recall() - 0.5).abs() < 1e-12 && (s.precision() - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.dice() - dice(&truth, &predicted)).abs() < 1e-12);
        let mut pooled = s;
        pooled.add(&s);
        assert_eq!((pooled.matched, pooled.truth_pixels), (2, 328));
        // A prediction covering two true objects matches at most one.
        let merged = score_objects(&tr, &tr, &to, std::slice::from_ref(&tr));
        assert_eq!(merged.matched, 1);
    }
}

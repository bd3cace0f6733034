//! Review: a model's result is a draft. Where it and an annotation disagree — a prediction with no
//! annotated counterpart (missed by the annotators?), an annotation the model did not find, a pair
//! that overlaps with IoU < 0.5 — is an [`Item`] to decide; without annotations every prediction is
//! one to confirm. [`Decision`]s (accept, reject, a corrected outline, an added object) turn both
//! lists into the reviewed set ([`Review::apply`]), which is exported as QuPath GeoJSON with a class
//! per object ([`reviewed_annotations`]) and counted. The app and `ftuscope review` call the same code.

use super::{Annotation, IOU_MATCH, Polygon, rasterise};
use serde::{Deserialize, Serialize};

/// A predicted object: its outline (level-0 pixels) and the model's confidence in it (the mean
/// probability inside it, 0–1), when known.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicted {
    /// Outline.
    pub outline: Polygon,
    /// Mean probability inside the object.
    pub confidence: Option<f64>,
}

/// The measurement under which predicted GeoJSON carries each glomerulus's confidence (the mean
/// probability inside it): what `ftuscope predict` and the app write.
pub const CONFIDENCE: &str = "Mean probability";

impl Predicted {
    /// The glomeruli of `annotations` (classes naming a glomerulus, or none), one per polygon, with
    /// the [`CONFIDENCE`] measurement when the file has it: a prediction as written by `predict`,
    /// or any outlines.
    pub fn from_annotations(annotations: &[Annotation]) -> Vec<Predicted> {
        annotations
            .iter()
            .filter(|a| a.is_glomerulus())
            .flat_map(|a| {
                let confidence = a.measurements.iter().find(|(name, _)| name == CONFIDENCE).map(|m| m.1);
                a.polygons.iter().map(move |p| Predicted { outline: p.clone(), confidence })
            })
            .collect()
    }
}

/// What kind of disagreement an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// A prediction with no annotated counterpart: a glomerulus the annotators missed, or a false one.
    Unannotated,
    /// An annotation the model did not find.
    NotFound,
    /// A prediction and an annotation that overlap, with IoU below 0.5: one outline is off.
    Overlap,
    /// No annotations: a prediction to confirm.
    Confirm,
}

/// One thing to decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The kind of disagreement.
    pub kind: ItemKind,
    /// Index of the prediction involved.
    pub prediction: Option<usize>,
    /// Index of the annotation involved.
    pub annotation: Option<usize>,
    /// IoU of the pair (0 when only one side is involved).
    pub iou: f64,
    /// The model's confidence in the prediction.
    pub confidence: Option<f64>,
    /// Area in level-0 pixels² (the prediction's, else the annotation's).
    pub area_px: f64,
    /// Bounding box of everything involved: x, y, width, height.
    pub bbox: [f64; 4],
}

/// How many of each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Prediction–annotation pairs with IoU ≥ 0.5: nothing to decide.
    pub agreed: usize,
    /// Predictions with no annotated counterpart.
    pub unannotated: usize,
    /// Annotations the model did not find.
    pub not_found: usize,
    /// Overlapping pairs with IoU < 0.5.
    pub overlap: usize,
    /// Predictions to confirm (no annotations).
    pub confirm: usize,
}

/// The disagreements between predictions and annotations, in review order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// Items to decide: disagreements by the model's confidence (most confident first), then size
    /// (largest first); without annotations, predictions to confirm, least confident first.
    pub items: Vec<Item>,
    /// Pairs that agree: (prediction, annotation, IoU).
    pub agreed: Vec<(usize, usize, f64)>,
    /// Counts per kind.
    pub counts: Counts,
}

/// A reviewer's decision on an item (by its index in [`Review::items`]), or an added object.
/// Accepting or rejecting is about the item's claim: for a prediction (unannotated, to confirm)
/// "this is a glomerulus"; for an annotation the model did not find, the same of the annotation;
/// for an overlapping pair, "the model's outline is the right one" (reject keeps the annotation's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    /// The item's claim holds.
    Accept {
        /// Item index.
        item: usize,
    },
    /// The item's claim does not hold.
    Reject {
        /// Item index.
        item: usize,
    },
    /// The object is a glomerulus with this outline (level-0 `[x, y]`, exterior ring).
    Edit {
        /// Item index.
        item: usize,
        /// The corrected outline.
        outline: Vec<[f64; 2]>,
    },
    /// A glomerulus neither the model nor the annotation had.
    Add {
        /// Its outline.
        outline: Vec<[f64; 2]>,
    },
}

/// What a reviewed object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A glomerulus: both agreed, or a reviewer accepted or corrected it.
    Confirmed,
    /// A glomerulus a reviewer drew.
    Added,
    /// Not a glomerulus, by a reviewer's decision.
    Rejected,
    /// An item nobody has decided yet.
    Unreviewed,
}

impl Status {
    /// The QuPath class it is exported with. Only confirmed and added objects carry "Glomerulus",
    /// so that a reviewed file used as training truth (`ftuscope train`, which counts classes
    /// containing "glomerul") holds only what a person confirmed.
    pub fn class(self) -> &'static str {
        match self {
            Status::Confirmed => "Glomerulus",
            Status::Added => "Glomerulus (added)",
            Status::Rejected => "Rejected",
            Status::Unreviewed => "Unreviewed",
        }
    }
}

/// One object of the reviewed set.
#[derive(Debug, Clone, PartialEq)]
pub struct Reviewed {
    /// Outline.
    pub outline: Polygon,
    /// What it is.
    pub status: Status,
}

/// Errors in decisions.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReviewError {
    /// A decision names an item that is not in the review.
    #[error("decision {index}: item {item} is not in the review of {items} items")]
    UnknownItem {
        /// Which decision (0-based).
        index: usize,
        /// The item it names.
        item: usize,
        /// How many items there are.
        items: usize,
    },
    /// An outline with fewer than three points or a non-finite coordinate.
    #[error("decision {0}: an outline needs at least three finite points")]
    BadOutline(usize),
}

/// Longest side of the grid two outlines are compared on: larger objects are compared at a coarser
/// scale (IoU is a ratio, so a 512-cell grid resolves it to well under 1%).
const GRID: f64 = 512.0;

fn bbox(p: &Polygon) -> [f64; 4] {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for &[x, y] in p.rings.iter().flatten() {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    if x0 > x1 { [0.0; 4] } else { [x0, y0, x1 - x0, y1 - y0] }
}

fn union_box(a: [f64; 4], b: [f64; 4]) -> [f64; 4] {
    let (x0, y0) = (a[0].min(b[0]), a[1].min(b[1]));
    let (x1, y1) = ((a[0] + a[2]).max(b[0] + b[2]), (a[1] + a[3]).max(b[1] + b[3]));
    [x0, y0, x1 - x0, y1 - y0]
}

fn boxes_meet(a: [f64; 4], b: [f64; 4]) -> bool {
    a[0] <= b[0] + b[2] && b[0] <= a[0] + a[2] && a[1] <= b[1] + b[3] && b[1] <= a[1] + a[3]
}

/// Intersection over union of two outlines, by rasterising both on a grid over their joint box.
pub fn outline_iou(a: &Polygon, b: &Polygon) -> f64 {
    let (ba, bb) = (bbox(a), bbox(b));
    if !boxes_meet(ba, bb) {
        return 0.0;
    }
    let u = union_box(ba, bb);
    let scale = (u[2].max(u[3]) / GRID).max(1.0);
    let (w, h) = ((u[2] / scale).ceil() as u32 + 1, (u[3] / scale).ceil() as u32 + 1);
    let local = |p: &Polygon| Polygon {
        rings: p.rings.iter().map(|r| r.iter().map(|&[x, y]| [(x - u[0]) / scale, (y - u[1]) / scale]).collect()).collect(),
    };
    let (ma, mb) = (rasterise(&[local(a)], w, h), rasterise(&[local(b)], w, h));
    let (mut both, mut either) = (0u64, 0u64);
    for y in 0..h {
        for x in 0..w {
            let (p, q) = (ma.get(x, y), mb.get(x, y));
            both += (p && q) as u64;
            either += (p || q) as u64;
        }
    }
    if either == 0 { 0.0 } else { both as f64 / either as f64 }
}

/// Matches `predictions` with `annotations` and lists the disagreements. Pairs are matched
/// greedily, highest IoU first: at IoU ≥ 0.5 they agree; then pairs that still overlap become
/// [`ItemKind::Overlap`] items; what is left over is unannotated (or, with no annotations at all,
/// to confirm) or not found.
pub fn review(predictions: &[Predicted], annotations: &[Polygon]) -> Review {
    let (pboxes, aboxes): (Vec<_>, Vec<_>) =
        (predictions.iter().map(|p| bbox(&p.outline)).collect(), annotations.iter().map(bbox).collect());
    let mut pairs = Vec::new();
    for (i, p) in predictions.iter().enumerate() {
        for (j, a) in annotations.iter().enumerate() {
            if boxes_meet(pboxes[i], aboxes[j]) {
                let iou = outline_iou(&p.outline, a);
                if iou > 0.0 {
                    pairs.push((iou, i, j));
                }
            }
        }
    }
    pairs.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let (mut used_p, mut used_a) = (vec![false; predictions.len()], vec![false; annotations.len()]);
    let (mut agreed, mut items, mut counts) = (Vec::new(), Vec::new(), Counts::default());
    for &(iou, i, j) in &pairs {
        if !used_p[i] && !used_a[j] {
            (used_p[i], used_a[j]) = (true, true);
            if iou >= IOU_MATCH {
                agreed.push((i, j, iou));
                counts.agreed += 1;
            } else {
                items.push(Item {
                    kind: ItemKind::Overlap,
                    prediction: Some(i),
                    annotation: Some(j),
                    iou,
                    confidence: predictions[i].confidence,
                    area_px: predictions[i].outline.area(),
                    bbox: union_box(pboxes[i], aboxes[j]),
                });
                counts.overlap += 1;
            }
        }
    }
    let confirm = annotations.is_empty();
    for (i, p) in predictions.iter().enumerate().filter(|(i, _)| !used_p[*i]) {
        let kind = if confirm { ItemKind::Confirm } else { ItemKind::Unannotated };
        *(if confirm { &mut counts.confirm } else { &mut counts.unannotated }) += 1;
        items.push(Item {
            kind,
            prediction: Some(i),
            annotation: None,
            iou: 0.0,
            confidence: p.confidence,
            area_px: p.outline.area(),
            bbox: pboxes[i],
        });
    }
    for (j, a) in annotations.iter().enumerate().filter(|(j, _)| !used_a[*j]) {
        counts.not_found += 1;
        items.push(Item {
            kind: ItemKind::NotFound,
            prediction: None,
            annotation: Some(j),
            iou: 0.0,
            confidence: None,
            area_px: a.area(),
            bbox: aboxes[j],
        });
    }
    // Disagreements: most confident first (a confident prediction nobody annotated is the likeliest
    // missed glomerulus), then largest; those without a confidence after. To confirm: least
    // confident first (the likeliest false ones).
    let key = |it: &Item| if confirm { it.confidence.unwrap_or(0.0) } else { -it.confidence.unwrap_or(-1.0) };
    items.sort_by(|a, b| key(a).total_cmp(&key(b)).then(b.area_px.total_cmp(&a.area_px)));
    Review { items, agreed, counts }
}

fn outline_of(index: usize, points: &[[f64; 2]]) -> Result<Polygon, ReviewError> {
    if points.len() < 3 || points.iter().flatten().any(|v| !v.is_finite()) {
        return Err(ReviewError::BadOutline(index));
    }
    Ok(Polygon::new(points.to_vec()))
}

impl Review {
    /// The reviewed set after `decisions` (later decisions on the same item replace earlier ones,
    /// so an undo is a decision log cut short): agreed pairs are confirmed with the annotation's
    /// outline; each item becomes what its last decision says, or stays unreviewed; added objects
    /// are added. Predictions and annotations are those the review was made of.
    pub fn apply(&self, predictions: &[Predicted], annotations: &[Polygon], decisions: &[Decision]) -> Result<Vec<Reviewed>, ReviewError> {
        let mut last: Vec<Option<&Decision>> = vec![None; self.items.len()];
        let mut added = Vec::new();
        for (index, d) in decisions.iter().enumerate() {
            let item = match d {
                Decision::Accept { item } | Decision::Reject { item } => *item,
                Decision::Edit { item, outline } => {
                    outline_of(index, outline)?;
                    *item
                }
                Decision::Add { outline } => {
                    added.push(Reviewed { outline: outline_of(index, outline)?, status: Status::Added });
                    continue;
                }
            };
            let slot = last.get_mut(item).ok_or(ReviewError::UnknownItem { index, item, items: self.items.len() })?;
            *slot = Some(d);
        }
        let pred = |i: Option<usize>| i.and_then(|i| predictions.get(i)).map(|p| p.outline.clone());
        let ann = |j: Option<usize>| j.and_then(|j| annotations.get(j)).cloned();
        let mut out: Vec<Reviewed> = self
            .agreed
            .iter()
            .filter_map(|&(_, j, _)| ann(Some(j)).map(|outline| Reviewed { outline, status: Status::Confirmed }))
            .collect();
        for (item, decision) in self.items.iter().zip(last) {
            // The outline the item's claim is about, and the one kept when it is rejected.
            let (claimed, otherwise) = match item.kind {
                ItemKind::Overlap => (pred(item.prediction), ann(item.annotation).map(|o| (o, Status::Confirmed))),
                ItemKind::Unannotated | ItemKind::Confirm => (pred(item.prediction), pred(item.prediction).map(|o| (o, Status::Rejected))),
                ItemKind::NotFound => (ann(item.annotation), ann(item.annotation).map(|o| (o, Status::Rejected))),
            };
            let reviewed = match decision {
                Some(Decision::Accept { .. }) => claimed.map(|outline| Reviewed { outline, status: Status::Confirmed }),
                Some(Decision::Reject { .. }) => otherwise.map(|(outline, status)| Reviewed { outline, status }),
                Some(Decision::Edit { outline, .. }) => {
                    Some(Reviewed { outline: Polygon::new(outline.clone()), status: Status::Confirmed })
                }
                _ => ann(item.annotation).or(claimed).map(|outline| Reviewed { outline, status: Status::Unreviewed }),
            };
            out.extend(reviewed);
        }
        out.extend(added);
        Ok(out)
    }
}

/// Counts of a reviewed set per status: (confirmed, added, rejected, unreviewed).
pub fn status_counts(reviewed: &[Reviewed]) -> [usize; 4] {
    let n = |s: Status| reviewed.iter().filter(|r| r.status == s).count();
    [n(Status::Confirmed), n(Status::Added), n(Status::Rejected), n(Status::Unreviewed)]
}

/// The reviewed set as QuPath annotations, one per object, classed by its [`Status`]; rejected
/// objects only with `rejected` (kept as their own class), unreviewed ones only with `unreviewed`.
/// Areas go in as measurements (µm² with a pixel size).
pub fn reviewed_annotations(reviewed: &[Reviewed], rejected: bool, unreviewed: bool, pixel_size_um: Option<f64>) -> Vec<Annotation> {
    reviewed
        .iter()
        .filter(|r| match r.status {
            Status::Rejected => rejected,
            Status::Unreviewed => unreviewed,
            _ => true,
        })
        .map(|r| {
            let area = r.outline.area();
            let mut measurements = vec![("Area px^2".to_string(), area)];
            if let Some(um) = pixel_size_um {
                measurements.push(("Area µm^2".to_string(), area * um * um));
            }
            Annotation { polygons: vec![r.outline.clone()], classification: r.status.class().into(), locked: false, measurements }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x: f64, y: f64, side: f64) -> Polygon {
        Polygon::new(vec![[x, y], [x + side, y], [x + side, y + side], [x, y + side]])
    }

    fn predicted(x: f64, y: f64, side: f64, confidence: f64) -> Predicted {
        Predicted { outline: square(x, y, side), confidence: Some(confidence) }
    }

    #[test]
    fn iou_of_outlines() {
        assert!((outline_iou(&square(0.0, 0.0, 100.0), &square(0.0, 0.0, 100.0)) - 1.0).abs() < 1e-9);
        // Half overlapping squares: 50·100 / (2·100² − 50·100) = 1/3.
        assert!((outline_iou(&square(0.0, 0.0, 100.0), &square(50.0, 0.0, 100.0)) - 1.0 / 3.0).abs() < 0.02);
        assert_eq!(outline_iou(&square(0.0, 0.0, 10.0), &square(500.0, 500.0, 10.0)), 0.0);
        // Large outlines are compared on a coarser grid, to the same ratio.
        assert!((outline_iou(&square(0.0, 0.0, 5000.0), &square(2500.0, 0.0, 5000.0)) - 1.0 / 3.0).abs() < 0.02);
    }

    /// Two agreeing pairs, one loose pair, a confident and an unsure unannotated prediction, and an
    /// annotation nobody predicted.
    fn scene() -> (Vec<Predicted>, Vec<Polygon>) {
        let predictions = vec![
            predicted(0.0, 0.0, 100.0, 0.9),     // agrees with annotation 0
            predicted(1000.0, 0.0, 100.0, 0.8),  // agrees with annotation 1
            predicted(2000.0, 0.0, 100.0, 0.7),  // overlaps annotation 2 at IoU 1/3
            predicted(3000.0, 0.0, 100.0, 0.95), // unannotated, confident
            predicted(4000.0, 0.0, 60.0, 0.55),  // unannotated, unsure
        ];
        let annotations = vec![square(5.0, 5.0, 100.0), square(1000.0, 2.0, 98.0), square(2050.0, 0.0, 100.0), square(6000.0, 0.0, 120.0)];
        (predictions, annotations)
    }

    #[test]
    fn disagreements_are_listed_by_kind_and_sorted_by_confidence_then_size() {
        let (predictions, annotations) = scene();
        let r = review(&predictions, &annotations);
        assert_eq!(r.counts, Counts { agreed: 2, unannotated: 2, not_found: 1, overlap: 1, confirm: 0 });
        let kinds: Vec<(ItemKind, Option<usize>, Option<usize>)> = r.items.iter().map(|i| (i.kind, i.prediction, i.annotation)).collect();
        assert_eq!(
            kinds,
            [
                (ItemKind::Unannotated, Some(3), None),
                (ItemKind::Overlap, Some(2), Some(2)),
                (ItemKind::Unannotated, Some(4), None),
                (ItemKind::NotFound, None, Some(3)),
            ]
        );
        assert!((r.items[1].iou - 1.0 / 3.0).abs() < 0.02);
        assert_eq!(r.items[1].bbox, [2000.0, 0.0, 150.0, 100.0]);
        // Without annotations: every prediction to confirm, least confident first.
        let alone = review(&predictions, &[]);
        assert_eq!(alone.counts.confirm, 5);
        let order: Vec<usize> = alone.items.iter().map(|i| i.prediction.unwrap()).collect();
        assert_eq!(order, [4, 2, 1, 0, 3]);
    }

    #[test]
    fn decisions_make_the_reviewed_set_and_the_last_one_counts() {
        let (predictions, annotations) = scene();
        let r = review(&predictions, &annotations);
        let none = r.apply(&predictions, &annotations, &[]).unwrap();
        assert_eq!(status_counts(&none), [2, 0, 0, 4]);
        let decisions = vec![
            Decision::Accept { item: 0 }, // the confident unannotated one is a glomerulus
            Decision::Reject { item: 1 }, // the annotation's outline is right
            Decision::Accept { item: 2 },
            Decision::Reject { item: 2 }, // …changed mind: the unsure one is not
            Decision::Edit { item: 3, outline: vec![[6000.0, 0.0], [6100.0, 0.0], [6100.0, 100.0]] },
            Decision::Add { outline: vec![[7000.0, 0.0], [7100.0, 0.0], [7100.0, 100.0], [7000.0, 100.0]] },
        ];
        let done = r.apply(&predictions, &annotations, &decisions).unwrap();
        assert_eq!(status_counts(&done), [5, 1, 1, 0]);
        assert!(done.contains(&Reviewed { outline: annotations[2].clone(), status: Status::Confirmed }));
        assert!(done.contains(&Reviewed { outline: predictions[3].outline.clone(), status: Status::Confirmed }));
        assert!(done.contains(&Reviewed { outline: predictions[4].outline.clone(), status: Status::Rejected }));
        // Undo = the log without its last entries.
        assert_eq!(status_counts(&r.apply(&predictions, &annotations, &decisions[..3]).unwrap()), [5, 0, 0, 1]);
        // Exported: rejected as its own class only when asked, never as a glomerulus.
        let kept = reviewed_annotations(&done, false, false, Some(0.5));
        assert_eq!(kept.len(), 6);
        assert!(kept.iter().all(|a| a.classification.to_lowercase().contains("glomerul")));
        let all = reviewed_annotations(&done, true, true, None);
        assert_eq!(all.iter().filter(|a| a.classification == "Rejected").count(), 1);
        assert!((kept[0].measurements[1].1 - kept[0].measurements[0].1 * 0.25).abs() < 1e-9);
        // Bad decisions are errors.
        assert_eq!(
            r.apply(&predictions, &annotations, &[Decision::Accept { item: 9 }]),
            Err(ReviewError::UnknownItem { index: 0, item: 9, items: 4 })
        );
        assert_eq!(
            r.apply(&predictions, &annotations, &[Decision::Add { outline: vec![[0.0, 0.0], [1.0, f64::NAN]] }]),
            Err(ReviewError::BadOutline(0))
        );
    }
}

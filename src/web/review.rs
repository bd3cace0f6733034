//! Review for the page: the disagreements between a segmentation and imported annotations
//! ([`crate::mask::review`]), decisions applied to them, and the reviewed set exported — the same
//! code as `ftuscope review`.

use super::{js_error, to_js};
use crate::mask::{
    Decision, Polygon, Predicted, Review, Status, read_outlines, review, reviewed_annotations, rle_encode_polygons, write_annotations,
};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

/// A review of a prediction (GeoJSON as the segmentation exports it, with confidences) against
/// annotations (GeoJSON or LabelMe; none: every prediction is an item to confirm).
#[wasm_bindgen]
pub struct WebReview {
    predictions: Vec<Predicted>,
    annotations: Vec<Polygon>,
    review: Review,
}

/// One object of the reviewed set as the page draws it.
#[derive(Serialize)]
struct ObjectOut {
    /// Exterior ring, `[[x, y], …]` level-0 pixels.
    outline: Vec<[f64; 2]>,
    status: Status,
}

/// What `apply` gives back.
#[derive(Serialize)]
struct Applied {
    objects: Vec<ObjectOut>,
    /// [confirmed, added, rejected, unreviewed]
    counts: [usize; 4],
}

/// Export options.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExportOptions {
    #[serde(default)]
    rejected: bool,
    #[serde(default)]
    unreviewed: bool,
    pixel_size_um: Option<f64>,
}

fn parse_decisions(value: JsValue) -> Result<Vec<Decision>, JsError> {
    serde_wasm_bindgen::from_value(value).map_err(|e| js_error(format!("not a list of review decisions: {e}")))
}

#[wasm_bindgen]
impl WebReview {
    /// Matches `prediction` (GeoJSON text) with `annotations` (text, or null/undefined).
    #[wasm_bindgen(constructor)]
    pub fn new(prediction: &str, annotations: Option<String>) -> Result<WebReview, JsError> {
        let predictions = Predicted::from_annotations(&read_outlines(prediction).map_err(js_error)?);
        let annotations = match annotations {
            Some(text) => Predicted::from_annotations(&read_outlines(&text).map_err(js_error)?).into_iter().map(|p| p.outline).collect(),
            None => Vec::new(),
        };
        let review = review(&predictions, &annotations);
        Ok(WebReview { predictions, annotations, review })
    }

    /// `{items: [{kind, prediction, annotation, iou, confidence, area_px, bbox}], agreed, counts}`.
    #[wasm_bindgen(getter)]
    pub fn review(&self) -> Result<JsValue, JsError> {
        to_js(&self.review)
    }

    /// The predictions' outlines (exterior rings, level-0 `[[x, y], …]`), by the index items use.
    #[wasm_bindgen(getter, js_name = predictionOutlines)]
    pub fn prediction_outlines(&self) -> Result<JsValue, JsError> {
        to_js(&self.predictions.iter().map(|p| p.outline.rings.first().cloned().unwrap_or_default()).collect::<Vec<_>>())
    }

    /// The annotations' outlines, by the index items use.
    #[wasm_bindgen(getter, js_name = annotationOutlines)]
    pub fn annotation_outlines(&self) -> Result<JsValue, JsError> {
        to_js(&self.annotations.iter().map(|p| p.rings.first().cloned().unwrap_or_default()).collect::<Vec<_>>())
    }

    /// The reviewed set after `decisions` (`[{action: "accept"|"reject"|"edit"|"add", item, outline}]`,
    /// later ones on the same item win): `{objects: [{outline, status}], counts: [confirmed, added,
    /// rejected, unreviewed]}`. Rejects unknown items and bad outlines.
    pub fn apply(&self, decisions: JsValue) -> Result<JsValue, JsError> {
        let reviewed = self.review.apply(&self.predictions, &self.annotations, &parse_decisions(decisions)?).map_err(js_error)?;
        let counts = crate::mask::status_counts(&reviewed);
        let objects = reviewed
            .into_iter()
            .map(|r| ObjectOut { outline: r.outline.rings.into_iter().next().unwrap_or_default(), status: r.status })
            .collect();
        to_js(&Applied { objects, counts })
    }

    /// The reviewed set as QuPath GeoJSON; `options`: `{rejected, unreviewed, pixel_size_um}`.
    pub fn geojson(&self, decisions: JsValue, options: JsValue) -> Result<String, JsError> {
        let reviewed = self.review.apply(&self.predictions, &self.annotations, &parse_decisions(decisions)?).map_err(js_error)?;
        let o: ExportOptions = if options.is_undefined() || options.is_null() {
            ExportOptions::default()
        } else {
            serde_wasm_bindgen::from_value(options).map_err(js_error)?
        };
        Ok(write_annotations(&reviewed_annotations(&reviewed, o.rejected, o.unreviewed, o.pixel_size_um), true))
    }

    /// The confirmed and added glomeruli as the Kaggle RLE of a `width`×`height` slide.
    pub fn rle(&self, decisions: JsValue, width: u32, height: u32) -> Result<String, JsError> {
        let reviewed = self.review.apply(&self.predictions, &self.annotations, &parse_decisions(decisions)?).map_err(js_error)?;
        let kept: Vec<Polygon> =
            reviewed.into_iter().filter(|r| matches!(r.status, Status::Confirmed | Status::Added)).map(|r| r.outline).collect();
        Ok(rle_encode_polygons(&kept, width, height))
    }
}

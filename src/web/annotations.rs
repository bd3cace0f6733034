//! Imported annotations for the page (GeoJSON or LabelMe JSON), read by the crate's parsers
//! ([`crate::mask::read_outlines`]): their outlines for drawing, and the competition's Dice
//! between them and a prediction.

use super::{js_error, to_js};
use crate::mask::{Annotation, Polygon, dice_rle, read_outlines, rle_encode_polygons};
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// One annotated object as the page draws it.
#[derive(Serialize)]
struct AnnotationOut {
    /// QuPath class name ("glomerulus", "Cortex", …; empty when the file has none).
    classification: String,
    /// Each polygon as its rings (exterior first, then holes), each ring `[[x, y], …]` in level-0 pixels.
    polygons: Vec<Vec<Vec<[f64; 2]>>>,
}

/// Parses annotations — LabelMe JSON, or GeoJSON (a FeatureCollection, a Feature or a HuBMAP/QuPath
/// list of Features with Polygon or MultiPolygon geometry) — into `[{classification, polygons: [[[[x, y], …], …], …]}]`:
/// per feature, its polygons, each a list of rings (exterior first). Anything else — not JSON, a
/// bare geometry, a point, a ring of fewer than 3 points — rejects with one readable line.
#[wasm_bindgen(js_name = parseAnnotations)]
pub fn parse_annotations(text: &str) -> Result<JsValue, JsError> {
    let annotations = read_outlines(text).map_err(js_error)?;
    let out: Vec<AnnotationOut> = annotations
        .into_iter()
        .map(|Annotation { polygons, classification, .. }| AnnotationOut {
            classification,
            polygons: polygons.into_iter().map(|Polygon { rings }| rings).collect(),
        })
        .collect();
    to_js(&out)
}

/// Dice between two sets of annotations (GeoJSON text, as [`parse_annotations`] reads it),
/// rasterised at full resolution over a `width`×`height` slide the way the competition scores
/// masks — streamed as RLE from the polygons, never a full-resolution mask.
#[wasm_bindgen(js_name = diceOfAnnotations)]
pub fn dice_of_annotations(a: &str, b: &str, width: u32, height: u32) -> Result<f64, JsError> {
    let polygons = |text: &str| -> Result<Vec<Polygon>, JsError> {
        Ok(read_outlines(text).map_err(js_error)?.into_iter().flat_map(|x| x.polygons).collect())
    };
    let (pa, pb) = (polygons(a)?, polygons(b)?);
    dice_rle(&rle_encode_polygons(&pa, width, height), &rle_encode_polygons(&pb, width, height)).map_err(js_error)
}

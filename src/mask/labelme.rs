//! LabelMe annotations, the JSON the LabelMe tool writes beside an image: `shapes` with a `label`,
//! a `shape_type` (polygon, rectangle) and `points` in image pixels, and the image's size. Real
//! annotated tiles come this way (e.g. the HuBMAP kidney tiles of the CNS team).

use super::{Annotation, Error, Polygon};
use serde::Deserialize;

/// What a LabelMe file says about its image.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelMe {
    /// The image's width, when recorded.
    pub width: Option<u32>,
    /// The image's height, when recorded.
    pub height: Option<u32>,
    /// One annotation per shape, its `label` as the classification; rings closed as GeoJSON's.
    pub annotations: Vec<Annotation>,
}

#[derive(Deserialize)]
struct File {
    shapes: Vec<Shape>,
    #[serde(rename = "imageWidth")]
    image_width: Option<u32>,
    #[serde(rename = "imageHeight")]
    image_height: Option<u32>,
}

#[derive(Deserialize)]
struct Shape {
    label: String,
    points: Vec<[f64; 2]>,
    /// LabelMe writes it always; older files without it hold polygons.
    shape_type: Option<String>,
}

/// Reads annotations written by either tool: a LabelMe file (a JSON object with `shapes`) or
/// GeoJSON (anything [`super::read_annotations`] reads). What the app's "Compare with annotations"
/// and annotated image folders accept.
pub fn read_outlines(json: &str) -> Result<Vec<Annotation>, Error> {
    let labelme = serde_json::from_str::<serde_json::Value>(json).is_ok_and(|v| v.get("shapes").is_some());
    if labelme { Ok(read_labelme(json)?.annotations) } else { super::read_annotations(json) }
}

/// Reads a LabelMe file. Shapes other than polygons and rectangles (points, lines, circles) are
/// refused, as are polygons with fewer than 3 points or non-finite coordinates.
pub fn read_labelme(json: &str) -> Result<LabelMe, Error> {
    let file: File = serde_json::from_str(json).map_err(|e| Error::LabelMe(e.to_string()))?;
    let annotations = file.shapes.iter().enumerate().map(|(i, shape)| annotation(i, shape)).collect::<Result<Vec<_>, _>>()?;
    Ok(LabelMe { width: file.image_width, height: file.image_height, annotations })
}

fn annotation(feature: usize, shape: &Shape) -> Result<Annotation, Error> {
    let invalid = |reason: String| Error::Polygon { feature, reason };
    if let Some(bad) = shape.points.iter().find(|p| !p[0].is_finite() || !p[1].is_finite()) {
        return Err(invalid(format!("bad position {bad:?}")));
    }
    let mut ring = match shape.shape_type.as_deref().unwrap_or("polygon") {
        "polygon" if shape.points.len() >= 3 => shape.points.clone(),
        "polygon" => return Err(invalid(format!("a polygon with {} points, need at least 3", shape.points.len()))),
        "rectangle" => match shape.points[..] {
            [[x0, y0], [x1, y1]] if x0 != x1 && y0 != y1 => vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
            _ => return Err(invalid("a rectangle needs two opposite corners".into())),
        },
        other => return Err(Error::Shape(other.to_string())),
    };
    ring.push(ring[0]);
    Ok(Annotation {
        polygons: vec![Polygon { rings: vec![ring] }],
        classification: shape.label.clone(),
        locked: false,
        measurements: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_polygons_and_rectangles_with_the_image_size() {
        let text = r#"{"version": "4.5.5", "shapes": [
            {"label": "Glomeruli", "points": [[0, 0], [10, 0], [10, 10], [0, 10]], "shape_type": "polygon", "flags": {}},
            {"label": "Glomeruli", "points": [[20, 20], [30, 25]], "shape_type": "rectangle"}
        ], "imagePath": "1.jpg", "imageData": null, "imageHeight": 1200, "imageWidth": 1600}"#;
        let file = read_labelme(text).unwrap();
        assert_eq!((file.width, file.height), (Some(1600), Some(1200)));
        assert_eq!(file.annotations.len(), 2);
        assert_eq!(file.annotations[0].classification, "Glomeruli");
        assert_eq!(file.annotations[0].polygons[0].area(), 100.0);
        assert_eq!(file.annotations[1].polygons[0].area(), 50.0);
        assert_eq!(file.annotations[0].polygons[0].rings[0].len(), 5, "rings are closed");
    }

    #[test]
    fn bad_files_are_typed_errors() {
        assert!(matches!(read_labelme("{not json"), Err(Error::LabelMe(_))));
        assert!(matches!(read_labelme(r#"{"type": "FeatureCollection", "features": []}"#), Err(Error::LabelMe(_))));
        let two = r#"{"shapes": [{"label": "g", "points": [[0, 0], [1, 1]], "shape_type": "polygon"}]}"#;
        assert!(matches!(read_labelme(two), Err(Error::Polygon { feature: 0, .. })));
        let circle = r#"{"shapes": [{"label": "g", "points": [[0, 0], [1, 1]], "shape_type": "circle"}]}"#;
        assert_eq!(read_labelme(circle), Err(Error::Shape("circle".into())));
        let flat = r#"{"shapes": [{"label": "g", "points": [[0, 0], [5, 0]], "shape_type": "rectangle"}]}"#;
        assert!(matches!(read_labelme(flat), Err(Error::Polygon { .. })));
    }

    /// Reads every LabelMe file of a real kidney tile folder (1600×1200 tiles, all labelled
    /// `Glomeruli`): (files, glomeruli).
    fn read_real_kidney(dir: &std::path::Path) -> (usize, usize) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let (mut files, mut glomeruli) = (0, 0);
        for path in entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")) {
            let file = read_labelme(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!((file.width, file.height), (Some(1600), Some(1200)), "{}", path.display());
            assert!(file.annotations.iter().all(|a| a.classification == "Glomeruli"));
            files += 1;
            glomeruli += file.annotations.len();
        }
        (files, glomeruli)
    }

    /// The real kidney tiles committed in tests/data/real-kidney: 32 glomeruli in 4 files.
    #[test]
    fn reads_the_committed_real_kidney_annotations() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real-kidney");
        assert_eq!(read_real_kidney(&dir), (4, 32));
    }

    /// All 110 real kidney tiles, where `FTUSCOPE_DATA` names a folder holding them (real-kidney/):
    /// 455 glomeruli. Skipped, saying so, without it.
    #[test]
    fn reads_all_real_kidney_annotations_when_the_data_is_there() {
        let Some(root) = std::env::var_os("FTUSCOPE_DATA").filter(|d| !d.is_empty()) else {
            use std::io::Write;
            let why =
                "skipped reads_all_real_kidney_annotations: FTUSCOPE_DATA is not set (a folder with real-kidney/, the 110 HuBMAP tiles)\n";
            let _ = std::io::stderr().write_all(why.as_bytes());
            return;
        };
        assert_eq!(read_real_kidney(&std::path::Path::new(&root).join("real-kidney")), (110, 455));
    }
}

//! QuPath-style GeoJSON annotations, as the HuBMAP `<id>.json` and `<id>-anatomical-structure.json`
//! files had them: a list (or FeatureCollection) of Features with Polygon/MultiPolygon geometry in
//! level-0 `[x, y]` pixels, `properties.classification.name` and `isLocked`.

use super::{Error, Polygon};
use geojson::{Feature, FeatureCollection, GeoJson, Geometry, GeometryValue, JsonObject, JsonValue};

/// One annotated object: a glomerulus, or an anatomical region such as "Cortex".
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    /// The object's outline(s): several for a MultiPolygon.
    pub polygons: Vec<Polygon>,
    /// QuPath class name, e.g. "glomerulus", "Cortex", "Medulla".
    pub classification: String,
    /// QuPath's lock flag.
    pub locked: bool,
    /// QuPath measurements (`[{"name", "value"}]`), e.g. ("Area µm^2", 31415.9).
    pub measurements: Vec<(String, f64)>,
}

impl Annotation {
    /// Whether it is a glomerulus: its class names one (contains "glomerul", any case) or it has
    /// none. Other classes (Cortex, Medulla, a review's "Rejected") are not.
    pub fn is_glomerulus(&self) -> bool {
        self.classification.trim().is_empty() || self.classification.to_ascii_lowercase().contains("glomerul")
    }
}

/// Reads annotations from a JSON list of Features, a FeatureCollection or a single Feature.
pub fn read_annotations(json: &str) -> Result<Vec<Annotation>, Error> {
    let features = if json.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<Feature>>(json).map_err(|e| Error::GeoJson(e.to_string()))?
    } else {
        match json.parse::<GeoJson>().map_err(|e| Error::GeoJson(e.to_string()))? {
            GeoJson::FeatureCollection(collection) => collection.features,
            GeoJson::Feature(feature) => vec![feature],
            GeoJson::Geometry(_) => return Err(Error::GeoJson("a bare geometry, expected Features".into())),
        }
    };
    features.iter().enumerate().map(|(i, f)| annotation(i, f)).collect()
}

fn annotation(index: usize, feature: &Feature) -> Result<Annotation, Error> {
    let geometry = feature.geometry.as_ref().ok_or_else(|| Error::Polygon { feature: index, reason: "no geometry".into() })?;
    let polygons = match &geometry.value {
        GeometryValue::Polygon { coordinates } => vec![polygon(index, coordinates)?],
        GeometryValue::MultiPolygon { coordinates } => coordinates.iter().map(|p| polygon(index, p)).collect::<Result<_, _>>()?,
        other => return Err(Error::Geometry(other.type_name().to_string())),
    };
    let properties = feature.properties.as_ref();
    let classification = properties
        .and_then(|p| p.get("classification"))
        .and_then(|c| c.get("name"))
        .and_then(JsonValue::as_str)
        .unwrap_or_default()
        .to_string();
    let locked = properties.and_then(|p| p.get("isLocked")).and_then(JsonValue::as_bool).unwrap_or(false);
    let measurements = properties
        .and_then(|p| p.get("measurements"))
        .and_then(JsonValue::as_array)
        .map(|list| list.iter().filter_map(|m| Some((m.get("name")?.as_str()?.to_string(), m.get("value")?.as_f64()?))).collect())
        .unwrap_or_default();
    Ok(Annotation { polygons, classification, locked, measurements })
}

fn polygon(feature: usize, rings: &[Vec<geojson::Position>]) -> Result<Polygon, Error> {
    let invalid = |reason: String| Error::Polygon { feature, reason };
    if rings.is_empty() {
        return Err(invalid("a polygon without rings".into()));
    }
    let rings = rings
        .iter()
        .map(|ring| {
            let points = ring
                .iter()
                .map(|p| match p.as_slice() {
                    [x, y, ..] if x.is_finite() && y.is_finite() => Ok([*x, *y]),
                    other => Err(invalid(format!("bad position {other:?}"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let distinct = points.iter().take(points.len().saturating_sub(1)).count();
            if distinct < 3 {
                return Err(invalid(format!("a ring with {} points, need at least 3", points.len())));
            }
            Ok(points)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Polygon { rings })
}

/// Writes annotations as QuPath does: a JSON list of Features (`collection = false`, the HuBMAP
/// files' layout) or a FeatureCollection. Rings are written closed.
pub fn write_annotations(annotations: &[Annotation], collection: bool) -> String {
    let features: Vec<Feature> = annotations.iter().map(feature).collect();
    let json = if collection { serde_json::to_string(&FeatureCollection::new(features)) } else { serde_json::to_string(&features) };
    // Serialising plain numbers and strings cannot fail.
    json.unwrap_or_default()
}

fn feature(annotation: &Annotation) -> Feature {
    let ring = |points: &Vec<[f64; 2]>| {
        let mut ring: Vec<geojson::Position> = points.iter().map(|&p| p.into()).collect();
        if points.first() != points.last()
            && let Some(&first) = points.first()
        {
            ring.push(first.into());
        }
        ring
    };
    let polygon = |p: &Polygon| p.rings.iter().map(ring).collect::<Vec<_>>();
    let value = match annotation.polygons.as_slice() {
        [one] => GeometryValue::Polygon { coordinates: polygon(one) },
        many => GeometryValue::MultiPolygon { coordinates: many.iter().map(polygon).collect() },
    };
    let mut properties = JsonObject::new();
    properties.insert("objectType".into(), "annotation".into());
    properties.insert("classification".into(), serde_json::json!({ "name": annotation.classification }));
    properties.insert("isLocked".into(), annotation.locked.into());
    if !annotation.measurements.is_empty() {
        let list: Vec<JsonValue> =
            annotation.measurements.iter().map(|(name, value)| serde_json::json!({ "name": name, "value": value })).collect();
        properties.insert("measurements".into(), list.into());
    }
    Feature {
        geometry: Some(Geometry::new(value)),
        id: Some(geojson::feature::Id::String("PathAnnotationObject".into())),
        properties: Some(properties),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a HuBMAP `<id>.json` entry.
    const HUBMAP: &str = r#"[{"type":"Feature","id":"PathAnnotationObject",
        "geometry":{"type":"Polygon","coordinates":[[[10,10],[20,10],[20,30],[10,30],[10,10]]]},
        "properties":{"classification":{"name":"glomerulus","colorRGB":-3140401},"isLocked":true,"measurements":[]}}]"#;

    #[test]
    fn reads_the_hubmap_list_layout() {
        let a = read_annotations(HUBMAP).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].classification, "glomerulus");
        assert!(a[0].locked);
        assert_eq!(a[0].polygons[0].area(), 200.0);
    }

    #[test]
    fn round_trips_as_list_and_as_feature_collection() {
        let original = read_annotations(HUBMAP).unwrap();
        let mut cortex = original[0].clone();
        cortex.classification = "Cortex".into();
        cortex.polygons.push(Polygon::new(vec![[0.0, 0.0], [5.0, 0.0], [5.0, 5.0]]));
        let all = vec![original[0].clone(), cortex];
        for collection in [false, true] {
            let json = write_annotations(&all, collection);
            assert_eq!(json.trim_start().starts_with('['), !collection);
            let back = read_annotations(&json).unwrap();
            assert_eq!(back.len(), 2);
            assert_eq!(back[1].polygons.len(), 2, "MultiPolygon kept");
            assert_eq!(back[1].classification, "Cortex");
            assert_eq!(back[0].polygons[0].area(), 200.0);
        }
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert!(matches!(read_annotations("{not json"), Err(Error::GeoJson(_))));
        let point = r#"[{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"properties":{}}]"#;
        assert_eq!(read_annotations(point), Err(Error::Geometry("Point".into())));
        let tiny = r#"[{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[1,2],[3,4],[1,2]]]},"properties":{}}]"#;
        assert!(matches!(read_annotations(tiny), Err(Error::Polygon { feature: 0, .. })));
    }
}

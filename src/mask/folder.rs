//! Annotated image folders: images (PNG, JPEG, TIFF) each with its glomeruli as LabelMe JSON
//! (`<name>.json` with `shapes`), QuPath/HuBMAP GeoJSON (`<name>.json` or `<name>.geojson`) or a
//! mask image (`<name>_mask.png`, `<name>.mask.png`, `masks/<name>.png`, or `../masks/<name>.png`
//! beside a folder named `images`; non-zero = glomerulus).
//! What users have besides the Kaggle layout: exported tiles, microscope snapshots, LabelMe work.
//!
//! Annotations whose class names a glomerulus (contains "glomerul", any case) or has no class count;
//! others (Cortex, Medulla…) are left out. An image whose annotation file holds no glomerulus is a
//! negative: tissue without glomeruli. An image without any annotation file is an error, not a
//! silent negative.

use super::{Annotation, Error, Polygon, read_outlines};
use std::path::{Path, PathBuf};

/// Image extensions read as images (not as masks).
const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "tif", "tiff"];

/// Where an image's truth comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Truth {
    /// Outlines: one entry per glomerulus.
    Outlines(Vec<Annotation>),
    /// A mask image, non-zero = glomerulus.
    Mask(PathBuf),
}

/// One image of a folder and its truth.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledImage {
    /// The file name without its extension.
    pub id: String,
    /// The image file.
    pub image: PathBuf,
    /// The annotation or mask file.
    pub truth_file: PathBuf,
    /// Its glomeruli.
    pub truth: Truth,
}

impl LabelledImage {
    /// The glomeruli as objects of a `width`×`height` image: each as sorted 0-based half-open runs
    /// in the competition's column-major order, and their union as a Kaggle RLE.
    pub fn objects(&self, width: u32, height: u32) -> Result<(String, Vec<super::Runs>), Error> {
        let at = |e: Error| Error::Folder(format!("{}: {e}", self.truth_file.display()));
        match &self.truth {
            Truth::Outlines(annotations) => {
                let all: Vec<Polygon> = annotations.iter().flat_map(|a| a.polygons.iter().cloned()).collect();
                let union = super::rle_encode_polygons(&all, width, height);
                let objects = annotations
                    .iter()
                    .map(|a| super::rle_runs(&super::rle_encode_polygons(&a.polygons, width, height)))
                    .filter(|r| r.as_ref().map_or(true, |r| !r.is_empty()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(at)?;
                Ok((union, objects))
            }
            Truth::Mask(path) => {
                let mask = read_mask(path, width, height)?;
                let union = super::rle_encode(&mask);
                let runs = super::rle_runs(&union).map_err(at)?;
                Ok((union.clone(), super::rle_objects(&runs, width, height)))
            }
        }
    }
}

/// Reads a mask image (any PNG/JPEG/TIFF-free format the `image` crate reads here: PNG, JPEG) of
/// exactly `width`×`height`; any non-zero channel counts.
fn read_mask(path: &Path, width: u32, height: u32) -> Result<super::BinaryMask, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Folder(format!("{}: {e}", path.display())))?;
    let image = crate::slide::decode_image(&bytes).map_err(|e| Error::Folder(format!("{}: {e}", path.display())))?;
    if image.dimensions() != (width, height) {
        return Err(Error::Folder(format!(
            "{}: the mask is {}×{} but its image is {width}×{height}",
            path.display(),
            image.width(),
            image.height()
        )));
    }
    let mut mask = super::BinaryMask::new(width, height);
    for (x, y, p) in image.enumerate_pixels() {
        if p.0.iter().any(|&v| v > 0) {
            mask.set(x, y, true);
        }
    }
    Ok(mask)
}

/// Natural order key: runs of digits compare as numbers, so "9" < "10" < "100".
pub fn natural_key(s: &str) -> Vec<(u8, u64, String)> {
    let mut key = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        let mut part = String::new();
        let digits = c.is_ascii_digit();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() != digits {
                break;
            }
            part.push(c);
            chars.next();
        }
        if digits {
            key.push((0, part.parse().unwrap_or(u64::MAX), String::new()));
        } else {
            key.push((1, 0, part));
        }
    }
    key
}

/// Groups of fold `fold` of `folds` (validation) and the rest (training): the groups in natural
/// order (numbers as numbers), cut into `folds` contiguous blocks, so neighbouring tiles — which
/// may come from one slide — stay on one side.
pub fn fold_split(groups: &[String], folds: usize, fold: usize) -> (Vec<String>, Vec<String>) {
    let mut sorted = groups.to_vec();
    sorted.sort_by_cached_key(|g| natural_key(g));
    sorted.dedup();
    if folds < 2 {
        return (sorted, Vec::new());
    }
    let n = sorted.len();
    let (lo, hi) = (fold * n / folds, (fold + 1) * n / folds);
    let valid = sorted[lo..hi].to_vec();
    let train = sorted[..lo].iter().chain(&sorted[hi..]).cloned().collect();
    (train, valid)
}

/// The labelled images of folder `dir`, in natural order of their names.
pub fn read_folder(dir: &Path) -> Result<Vec<LabelledImage>, Error> {
    list_images(dir)?.into_iter().map(|(id, image)| labelled(dir, id, image)).collect()
}

/// The images of folder `dir` (PNG, JPEG or TIFF; not mask PNGs) as (id, path), in natural order
/// of their names; an error when there are none.
pub fn list_images(dir: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    let folder_error = |e: &dyn std::fmt::Display| Error::Folder(format!("{}: {e}", dir.display()));
    let mut images = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| folder_error(&e))? {
        let path = entry.map_err(|e| folder_error(&e))?.path();
        let (Some(stem), Some(ext)) = (path.file_stem().and_then(|s| s.to_str()), path.extension().and_then(|s| s.to_str())) else {
            continue;
        };
        if !path.is_file() || !IMAGE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()) {
            continue;
        }
        if stem.ends_with("_mask") || stem.ends_with(".mask") {
            continue;
        }
        images.push((stem.to_string(), path));
    }
    if images.is_empty() {
        return Err(folder_error(&"no images (PNG, JPEG or TIFF) in the folder"));
    }
    images.sort_by_cached_key(|(id, _)| natural_key(id));
    Ok(images)
}

fn labelled(dir: &Path, id: String, image: PathBuf) -> Result<LabelledImage, Error> {
    let candidates = [format!("{id}.json"), format!("{id}.geojson")];
    for name in candidates {
        let path = dir.join(&name);
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Folder(format!("{}: {e}", path.display())))?;
        let annotations = read_outlines(&text).map_err(|e| Error::Folder(format!("{}: {e}", path.display())))?;
        let annotations = annotations.into_iter().filter(Annotation::is_glomerulus).collect();
        return Ok(LabelledImage { id, image, truth_file: path, truth: Truth::Outlines(annotations) });
    }
    // `images/N.png` beside `masks/N.png` (a common Kaggle layout) as well as masks in the folder.
    let sibling = (dir.file_name().is_some_and(|n| n == "images")).then(|| dir.with_file_name("masks").join(format!("{id}.png")));
    let candidates = [dir.join(format!("{id}_mask.png")), dir.join(format!("{id}.mask.png")), dir.join("masks").join(format!("{id}.png"))];
    for path in candidates.into_iter().chain(sibling) {
        if path.is_file() {
            return Ok(LabelledImage { id, image, truth_file: path.clone(), truth: Truth::Mask(path) });
        }
    }
    Err(Error::Folder(format!(
        "{}: no annotations for this image (expected {id}.json (LabelMe or GeoJSON), {id}.geojson, {id}_mask.png, {id}.mask.png, masks/{id}.png or, for a folder named images, ../masks/{id}.png)",
        image.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    fn png(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
        let image = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)));
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn each_annotation_format_gives_the_same_glomeruli_and_bad_folders_get_typed_errors() {
        let dir = std::env::temp_dir().join(format!("ftuscope-folder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("masks")).unwrap();
        let image = png(40, 30, |_, _| [200, 150, 200]);
        // The same two squares, (4..14)×(5..15) and (20..30)×(10..20), four ways.
        let labelme = r#"{"shapes": [
            {"label": "Glomeruli", "shape_type": "rectangle", "points": [[4, 5], [14, 15]]},
            {"label": "Glomeruli", "shape_type": "polygon", "points": [[20, 10], [30, 10], [30, 20], [20, 20]]}],
            "imageWidth": 40, "imageHeight": 30}"#;
        let geojson = r#"{"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"classification": {"name": "glomerulus"}},
             "geometry": {"type": "Polygon", "coordinates": [[[4, 5], [14, 5], [14, 15], [4, 15], [4, 5]]]}},
            {"type": "Feature", "properties": {"classification": {"name": "Glomerulus"}},
             "geometry": {"type": "Polygon", "coordinates": [[[20, 10], [30, 10], [30, 20], [20, 20], [20, 10]]]}},
            {"type": "Feature", "properties": {"classification": {"name": "Cortex"}},
             "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [40, 0], [40, 30], [0, 30], [0, 0]]]}}]}"#;
        let inside = |x: u32, y: u32| (4..14).contains(&x) && (5..15).contains(&y) || (20..30).contains(&x) && (10..20).contains(&y);
        let mask = png(40, 30, |x, y| if inside(x, y) { [255, 255, 255] } else { [0, 0, 0] });
        for (id, ext) in [("a", "png"), ("b", "png"), ("c", "png"), ("10", "png"), ("9", "png")] {
            write(&dir, &format!("{id}.{ext}"), &image);
        }
        write(&dir, "a.json", labelme.as_bytes());
        write(&dir, "b.geojson", geojson.as_bytes());
        write(&dir, "c_mask.png", &mask);
        std::fs::write(dir.join("masks/10.png"), &mask).unwrap();
        write(&dir, "9.json", br#"{"shapes": [], "imageWidth": 40, "imageHeight": 30}"#);
        let images = read_folder(&dir).unwrap();
        assert_eq!(images.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["9", "10", "a", "b", "c"]);
        let (want, _) = images[2].objects(40, 30).unwrap();
        for image in &images[1..] {
            let (union, objects) = image.objects(40, 30).unwrap();
            assert_eq!(union, want, "{}", image.id);
            assert_eq!(objects.len(), 2, "{}", image.id);
            assert_eq!(objects.iter().map(|o| o.iter().map(|r| r.1 - r.0).sum::<u64>()).sum::<u64>(), 200);
        }
        let (empty, none) = images[0].objects(40, 30).unwrap();
        assert!(empty.is_empty() && none.is_empty(), "an empty LabelMe file is a negative");
        // A mask of the wrong size, a broken JSON file, an image without truth, an empty folder.
        assert!(matches!(images[4].objects(41, 30), Err(Error::Folder(m)) if m.contains("40×30")));
        write(&dir, "b.geojson", b"{\"type\": \"Feature\"");
        assert!(matches!(read_folder(&dir), Err(Error::Folder(m)) if m.contains("b.geojson")));
        write(&dir, "b.geojson", geojson.as_bytes());
        write(&dir, "d.jpg", &image);
        assert!(matches!(read_folder(&dir), Err(Error::Folder(m)) if m.contains("no annotations") && m.contains("d.jpg")));
        let empty = dir.join("masks");
        std::fs::remove_file(empty.join("10.png")).unwrap();
        assert!(matches!(read_folder(&empty), Err(Error::Folder(m)) if m.contains("no images")));
        // `images/N.png` beside `masks/N.png` (red on black, as other labs ship them).
        let kaggle = dir.join("kaggle");
        std::fs::create_dir_all(kaggle.join("images")).unwrap();
        std::fs::create_dir_all(kaggle.join("masks")).unwrap();
        write(&kaggle.join("images"), "7.png", &image);
        write(&kaggle.join("masks"), "7.png", &png(40, 30, |x, y| if inside(x, y) { [255, 0, 0] } else { [0, 0, 0] }));
        let images = read_folder(&kaggle.join("images")).unwrap();
        assert_eq!(images[0].objects(40, 30).unwrap().0, want);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn folds_are_contiguous_blocks_that_partition_the_groups() {
        let ids: Vec<String> = ["d", "a", "c", "b", "e"].iter().map(|s| s.to_string()).collect();
        let mut seen = Vec::new();
        for f in 0..3 {
            let (train, valid) = fold_split(&ids, 3, f);
            assert_eq!(train.len() + valid.len(), 5);
            assert!(valid.iter().all(|v| !train.contains(v)));
            seen.extend(valid);
        }
        seen.sort();
        assert_eq!(seen, ["a", "b", "c", "d", "e"]);
        assert!(fold_split(&ids, 1, 0).1.is_empty());
        // Blocks in natural order: neighbours stay together.
        let numbers: Vec<String> = [2, 16, 17, 9, 100, 30, 31, 40].iter().map(|n| n.to_string()).collect();
        assert_eq!(fold_split(&numbers, 4, 0).1, ["2", "9"]);
        assert_eq!(fold_split(&numbers, 4, 3).1, ["40", "100"]);
        assert_eq!(fold_split(&numbers, 4, 1).0, ["2", "9", "30", "31", "40", "100"]);
    }

    #[test]
    fn natural_order_compares_numbers_as_numbers() {
        let mut ids = vec!["10", "9", "100", "a2", "a10", "b"];
        ids.sort_by_key(|s| natural_key(s));
        assert_eq!(ids, ["9", "10", "100", "a2", "a10", "b"]);
    }
}

//! Training data: datasets in the Kaggle HuBMAP layout (`train.csv` with `id,encoding`,
//! `train/<id>.tiff`, optional `train/<id>-anatomical-structure.json`), local or behind an http(s)
//! URL, or annotated image folders ([`crate::mask::read_folder`]: LabelMe, GeoJSON or mask PNGs),
//! each with its pixel size and weight; cut into model-scale tiles once (windows sized by each
//! slide's pixel size) and cached on disk; the tissue filter; K-fold splits in contiguous blocks
//! of each dataset's groups; and the sampler that mixes datasets by weight, oversamples glomeruli
//! and cortex and can drop tiles the model already gets right.

use super::Error;
use crate::infer::{PlanConfig, plan_slide, saturation};
use crate::mask::{Annotation, read_annotations, rle_runs};
use crate::rng::SplitMix64;
use crate::slide::source::open_native;
use crate::slide::{Slide, SlideOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub use crate::mask::DatasetConfig;

/// One training slide (or image).
#[derive(Debug, Clone)]
pub struct SlideEntry {
    /// Kaggle id or image name (file name without extension), prefixed by the dataset's index
    /// when a run has several datasets.
    pub id: String,
    /// Path or URL of the slide or image.
    pub location: String,
    /// Its mask: column-major, 1-indexed RLE (as in train.csv).
    pub rle: String,
    /// Anatomical regions (Cortex, Medulla…), when the dataset has them.
    pub anatomy: Vec<Annotation>,
    /// Which dataset of the run it belongs to.
    pub dataset: usize,
    /// What the K-fold split keeps together (a `groups.csv` `id,group` row, else the id).
    pub group: String,
    /// µm per pixel: the dataset's, else the file's (resolved by [`resolve_pixel_sizes`]).
    pub pixel_size_um: Option<f64>,
    /// The glomeruli as objects (0-based column-major runs), for object-level scores; empty:
    /// taken from the RLE's connected components.
    pub objects: Vec<crate::mask::Runs>,
}

/// Reads a text file of the dataset: `Ok(None)` when it does not exist.
async fn read_text(root: &str, relative: &str) -> Result<Option<String>, Error> {
    let location = join(root, relative);
    if location.starts_with("http://") || location.starts_with("https://") {
        let source = match open_native(&location).await {
            Ok(source) => source,
            Err(e) if matches!(e.kind(), crate::slide::Error::Http { status: 404 }) => return Ok(None),
            Err(e) => return Err(Error::Data(format!("{location}: {e}"))),
        };
        let bytes = source.read_range(0..source.len()).await.map_err(|e| Error::Data(format!("{location}: {e}")))?;
        return String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| Error::Data(format!("{location} is not UTF-8 text")));
    }
    match std::fs::read_to_string(&location) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Data(format!("{location}: {e}"))),
    }
}

fn join(root: &str, relative: &str) -> String {
    format!("{}/{relative}", root.trim_end_matches('/'))
}

/// The slides and images of every dataset, in order; ids are prefixed with `<index>-` when there
/// are several datasets.
pub async fn read_datasets(datasets: &[DatasetConfig]) -> Result<Vec<SlideEntry>, Error> {
    if datasets.is_empty() {
        return Err(Error::Data("no dataset given".into()));
    }
    let mut all = Vec::new();
    for (k, dataset) in datasets.iter().enumerate() {
        let mut entries = if dataset.negative { read_negatives(&dataset.location)? } else { read_dataset(&dataset.location).await? };
        for e in &mut entries {
            e.dataset = k;
            e.pixel_size_um = dataset.pixel_size_um;
            if datasets.len() > 1 {
                e.id = format!("{k}-{}", e.id);
            }
        }
        all.extend(entries);
    }
    Ok(all)
}

/// The entries of one dataset: the Kaggle layout when `train.csv` is there, else an annotated
/// image folder (local only).
pub async fn read_dataset(root: &str) -> Result<Vec<SlideEntry>, Error> {
    let remote = root.starts_with("http://") || root.starts_with("https://");
    if !remote && Path::new(root).is_dir() && !Path::new(root).join("train.csv").is_file() {
        return read_image_folder(root).await;
    }
    read_kaggle(root).await
}

/// A local folder of images without glomeruli ([`DatasetConfig::negative`]): each image its own
/// group, its mask empty.
fn read_negatives(root: &str) -> Result<Vec<SlideEntry>, Error> {
    if root.starts_with("http://") || root.starts_with("https://") {
        return Err(Error::Data(format!("{root}: negatives are read from a local folder of images")));
    }
    let images = crate::mask::list_images(Path::new(root)).map_err(|e| Error::Data(e.to_string()))?;
    Ok(images
        .into_iter()
        .map(|(id, path)| SlideEntry {
            group: id.clone(),
            id,
            location: path.display().to_string(),
            rle: String::new(),
            anatomy: Vec::new(),
            dataset: 0,
            pixel_size_um: None,
            objects: Vec::new(),
        })
        .collect())
}

/// An annotated image folder ([`crate::mask::read_folder`]); `groups.csv` (`id,group`), when
/// present, says which images the K-fold split must keep together.
async fn read_image_folder(root: &str) -> Result<Vec<SlideEntry>, Error> {
    let images = crate::mask::read_folder(Path::new(root)).map_err(|e| Error::Data(e.to_string()))?;
    let mut groups = std::collections::HashMap::new();
    if let Some(text) = read_text(root, "groups.csv").await? {
        for (n, line) in text.lines().enumerate().filter(|(n, l)| !(l.trim().is_empty() || *n == 0 && l.starts_with("id,"))) {
            let (id, group) = line.split_once(',').ok_or_else(|| Error::Data(format!("groups.csv line {}: expected id,group", n + 1)))?;
            groups.insert(id.trim().to_string(), group.trim().to_string());
        }
    }
    let mut entries = Vec::with_capacity(images.len());
    for image in images {
        let location = image.image.display().to_string();
        let (width, height) = image_size(&location).await?;
        let (rle, objects) = image.objects(width, height).map_err(|e| Error::Data(e.to_string()))?;
        let group = groups.get(&image.id).cloned().unwrap_or_else(|| image.id.clone());
        entries.push(SlideEntry { id: image.id, location, rle, anatomy: Vec::new(), dataset: 0, group, pixel_size_um: None, objects });
    }
    Ok(entries)
}

/// An image's size: from the header for PNG/JPEG, else by opening it as a slide.
async fn image_size(location: &str) -> Result<(u32, u32), Error> {
    if let Ok(size) = image::image_dimensions(location) {
        return Ok(size);
    }
    let slide = Slide::open_location(location, SlideOptions::one_pass()).await.map_err(|e| Error::Data(format!("{location}: {e}")))?;
    Ok(slide.dimensions())
}

/// Fills in each entry's pixel size from its file where the dataset gives none (a header read).
pub async fn resolve_pixel_sizes(entries: &mut [SlideEntry]) -> Result<(), Error> {
    for entry in entries.iter_mut().filter(|e| e.pixel_size_um.is_none()) {
        let slide = Slide::open_location(&entry.location, SlideOptions::one_pass())
            .await
            .map_err(|e| Error::Data(format!("{}: {e}", entry.location)))?;
        entry.pixel_size_um = slide.pixel_size_um();
    }
    Ok(())
}

/// The slides of a Kaggle-layout dataset at `root` (a folder or an http(s) URL), in train.csv's order.
async fn read_kaggle(root: &str) -> Result<Vec<SlideEntry>, Error> {
    let csv = read_text(root, "train.csv").await?.ok_or_else(|| {
        Error::Data(format!("{} not found (expected the Kaggle layout: train.csv, train/<id>.tiff)", join(root, "train.csv")))
    })?;
    let mut entries = Vec::new();
    for (n, line) in csv.lines().enumerate() {
        if line.trim().is_empty() || (n == 0 && line.starts_with("id,")) {
            continue;
        }
        let (id, rle) = line.split_once(',').ok_or_else(|| Error::Data(format!("train.csv line {}: expected id,encoding", n + 1)))?;
        let (id, rle) = (id.trim().to_string(), rle.trim().trim_matches('"').to_string());
        rle_runs(&rle).map_err(|e| Error::Data(format!("train.csv, {id}: {e}")))?;
        let anatomy = match read_text(root, &format!("train/{id}-anatomical-structure.json")).await? {
            Some(text) => read_annotations(&text).map_err(|e| Error::Data(format!("{id}-anatomical-structure.json: {e}")))?,
            None => Vec::new(),
        };
        let location = join(root, &format!("train/{id}.tiff"));
        entries.push(SlideEntry { location, group: id.clone(), id, rle, anatomy, dataset: 0, pixel_size_um: None, objects: Vec::new() });
    }
    if entries.is_empty() {
        return Err(Error::Data(format!("{} lists no slides", join(root, "train.csv"))));
    }
    Ok(entries)
}

/// How slides are cut into training tiles.
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct TileConfig {
    /// Window side in level-0 pixels (the seed: 1536), when no input pixel size is set.
    #[config(default = 1536)]
    pub window: u32,
    /// µm per network input pixel (e.g. 2.0): windows then cover `size` × this many µm on every
    /// slide, whatever its pixel size, and `window` is ignored.
    #[config(default = "None")]
    pub input_pixel_size_um: Option<f64>,
    /// Network input side each window is resized to (the seed: 512).
    #[config(default = 512)]
    pub size: u32,
    /// Overlap between neighbouring windows, level-0 pixels (input pixels with an input pixel size).
    #[config(default = 0)]
    pub overlap: u32,
    /// HSV saturation (0–255) above which a pixel counts as tissue (3rd place: 40).
    #[config(default = 40)]
    pub saturation: u8,
    /// Tiles with less tissue than this fraction and no glomerulus are dropped.
    #[config(default = 0.05)]
    pub min_tissue: f64,
}

impl TileConfig {
    /// The window side in level-0 pixels on a slide of `pixel_size_um` µm/px.
    pub fn window_for(&self, pixel_size_um: Option<f64>) -> Result<u32, String> {
        match (self.input_pixel_size_um, pixel_size_um) {
            (None, _) => Ok(self.window),
            (Some(input), Some(slide)) if slide.is_finite() && slide > 0.0 => {
                Ok(((input * self.size as f64 / slide).round() as u32).max(16))
            }
            (Some(_), _) => Err("the pixel size is unknown: give the dataset's (--data DIR,pixel-size=UM)".into()),
        }
    }

    /// The overlap in level-0 pixels for a window of `window` (scaled like the window).
    pub fn overlap_for(&self, window: u32) -> u32 {
        match self.input_pixel_size_um {
            None => self.overlap,
            Some(_) => ((self.overlap as f64 * window as f64 / self.size as f64).round() as u32).min(window - 1),
        }
    }
}

/// What is known about one tile.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TileMeta {
    /// Slide id.
    pub slide: String,
    /// Level-0 position of the window.
    pub x: i64,
    /// Level-0 position of the window.
    pub y: i64,
    /// Fraction of the tile that is glomerulus.
    pub glomerulus: f32,
    /// Fraction of the tile that is tissue (saturation above the threshold).
    pub tissue: f32,
    /// Whether the tile's centre is in the cortex (`None`: no anatomy for this slide).
    pub cortex: Option<bool>,
    /// The window's side in level-0 pixels.
    #[serde(default)]
    pub window: u32,
    /// Which dataset of the run (set when the tiles are loaded, not cached).
    #[serde(skip)]
    pub dataset: usize,
}

/// Tiles of one or more slides, pixels in memory: RGB (`size`²×3 each) and masks (`size`², 0/1).
#[derive(Debug, Clone, Default)]
pub struct Tiles {
    /// Tile side.
    pub size: u32,
    /// One entry per tile.
    pub meta: Vec<TileMeta>,
    /// RGB bytes, tile after tile.
    pub rgb: Vec<u8>,
    /// Mask bytes (0 or 1), tile after tile.
    pub mask: Vec<u8>,
}

impl Tiles {
    /// Number of tiles.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Tile `i`'s RGB bytes.
    pub fn rgb(&self, i: usize) -> &[u8] {
        let n = (self.size * self.size * 3) as usize;
        &self.rgb[i * n..(i + 1) * n]
    }

    /// Tile `i`'s mask bytes.
    pub fn mask(&self, i: usize) -> &[u8] {
        let n = (self.size * self.size) as usize;
        &self.mask[i * n..(i + 1) * n]
    }

    /// Appends `other` (same size).
    pub fn extend(&mut self, other: Tiles) {
        if self.meta.is_empty() {
            self.size = other.size;
        }
        self.meta.extend(other.meta);
        self.rgb.extend(other.rgb);
        self.mask.extend(other.mask);
    }
}

const MAGIC: &[u8; 8] = b"FTUTILE1";

/// The cache file of one slide's tiles: named by the slide and everything that shapes the tiles.
fn cache_path(dir: &Path, entry: &SlideEntry, config: &TileConfig) -> PathBuf {
    let mut h = crate::rng::mix(entry.rle.len() as u64);
    let scale = format!("{config:?}{:?}", entry.pixel_size_um);
    for b in entry.location.bytes().chain(entry.rle.bytes().take(4096)).chain(entry.rle.bytes().rev().take(4096)).chain(scale.bytes()) {
        h = crate::rng::mix(h ^ b as u64);
    }
    let name: String = entry.id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    dir.join(format!("{name}-to{}-{h:016x}.tiles", config.size))
}

/// The tiles of one slide: from the cache when present, else extracted (with `progress(done, total)`)
/// and cached (written to a temporary file and renamed, so an interrupted run never leaves half a file).
pub async fn slide_tiles(
    entry: &SlideEntry,
    config: &TileConfig,
    cache: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Tiles, Error> {
    let path = cache_path(cache, entry, config);
    if let Ok(tiles) = read_cache(&path, config.size) {
        return Ok(tiles);
    }
    let tiles = extract(entry, config, progress).await?;
    std::fs::create_dir_all(cache).map_err(|e| Error::Io(format!("{}: {e}", cache.display())))?;
    write_cache(&path, &tiles).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    Ok(tiles)
}

fn write_cache(path: &Path, tiles: &Tiles) -> std::io::Result<()> {
    let tmp = path.with_extension("partial");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let meta = serde_json::to_vec(&tiles.meta)?;
    f.write_all(MAGIC)?;
    f.write_all(&(meta.len() as u64).to_le_bytes())?;
    f.write_all(&meta)?;
    f.write_all(&tiles.rgb)?;
    f.write_all(&tiles.mask)?;
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(tmp, path)
}

fn read_cache(path: &Path, size: u32) -> std::io::Result<Tiles> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a tile cache");
    let mut f = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut head = [0u8; 16];
    f.read_exact(&mut head)?;
    if &head[..8] != MAGIC {
        return Err(bad());
    }
    let n = u64::from_le_bytes(head[8..].try_into().map_err(|_| bad())?) as usize;
    if n > 1 << 30 {
        return Err(bad());
    }
    let mut meta = vec![0u8; n];
    f.read_exact(&mut meta)?;
    let meta: Vec<TileMeta> = serde_json::from_slice(&meta).map_err(|_| bad())?;
    let px = (size * size) as usize;
    let mut rgb = vec![0u8; meta.len() * px * 3];
    let mut mask = vec![0u8; meta.len() * px];
    f.read_exact(&mut rgb)?;
    f.read_exact(&mut mask)?;
    Ok(Tiles { size, meta, rgb, mask })
}

/// Cuts one slide into tiles: windows on a grid over the tissue of a low-resolution view, each read
/// and resized exactly as inference does, its mask cut from the RLE runs (never a full-resolution
/// mask of the slide) and box-averaged to the tile; tiles with too little tissue and no glomerulus
/// are dropped.
pub async fn extract(entry: &SlideEntry, config: &TileConfig, progress: &mut dyn FnMut(usize, usize)) -> Result<Tiles, Error> {
    let slide_error = |e: crate::slide::Error| Error::Data(format!("{}: {e}", entry.location));
    let slide = Slide::open_location(&entry.location, SlideOptions::one_pass()).await.map_err(slide_error)?;
    let (width, height) = slide.dimensions();
    let runs = rle_runs(&entry.rle).map_err(|e| Error::Data(format!("{}: {e}", entry.id)))?;
    if let Some(&(_, end)) = runs.last()
        && end > width as u64 * height as u64
    {
        return Err(Error::Data(format!("{}: the RLE runs past the {width}×{height} slide", entry.id)));
    }
    let window =
        config.window_for(entry.pixel_size_um.or(slide.pixel_size_um())).map_err(|e| Error::Data(format!("{}: {e}", entry.location)))?;
    let plan_config = PlanConfig::new().with_window(window).with_input_size(config.size).with_overlap(config.overlap_for(window));
    let plan = plan_slide(&slide, &plan_config).await.map_err(|e| Error::Data(format!("{}: {e}", entry.location)))?;
    let cortex: Vec<&Annotation> = entry.anatomy.iter().filter(|a| a.classification.to_ascii_lowercase().contains("cortex")).collect();
    let px = (config.size * config.size) as usize;
    let mut tiles = Tiles { size: config.size, ..Tiles::default() };
    for (i, w) in plan.windows.iter().enumerate() {
        progress(i, plan.windows.len());
        let side = window as f64;
        let image = slide.read_scaled(w.x as f64, w.y as f64, side, side, config.size, config.size).await.map_err(slide_error)?;
        let mask = window_mask(&runs, width, height, w.x, w.y, window, config.size);
        let tissue = image.pixels().filter(|p| saturation(p.0) > config.saturation).count() as f32 / px as f32;
        let glomerulus = mask.iter().map(|&m| m as u32).sum::<u32>() as f32 / px as f32;
        if (tissue as f64) < config.min_tissue && glomerulus == 0.0 {
            continue;
        }
        let (cx, cy) = ((w.x + window as i64 / 2) as f64, (w.y + window as i64 / 2) as f64);
        let in_cortex = (!entry.anatomy.is_empty()).then(|| cortex.iter().any(|a| a.polygons.iter().any(|p| p.contains(cx, cy))));
        tiles.meta.push(TileMeta {
            slide: entry.id.clone(),
            x: w.x,
            y: w.y,
            glomerulus,
            tissue,
            cortex: in_cortex,
            window,
            dataset: entry.dataset,
        });
        tiles.rgb.extend_from_slice(image.as_raw());
        tiles.mask.extend_from_slice(&mask);
    }
    progress(plan.windows.len(), plan.windows.len());
    debug_assert_eq!(tiles.mask.len(), tiles.len() * px);
    Ok(tiles)
}

/// The mask of the `window`² level-0 square at (`x0`, `y0`) at `size`², from column-major runs
/// (0-based, half-open, sorted): each output pixel is 1 when at least half its box is covered.
pub fn window_mask(runs: &[(u64, u64)], width: u32, height: u32, x0: i64, y0: i64, window: u32, size: u32) -> Vec<u8> {
    let scale = window as f64 / size as f64;
    let mut coverage = vec![0u32; (size * size) as usize];
    let mut area = vec![0u32; (size * size) as usize];
    let (h, w) = (height as i64, width as i64);
    let (ya, yb) = (y0.max(0), (y0 + window as i64).min(h));
    let out_index = |v: i64, origin: i64| (((v - origin) as f64 / scale) as usize).min(size as usize - 1);
    let rows: Vec<usize> = (0..window as i64).map(|j| out_index(y0 + j, y0)).collect();
    for x in x0.max(0)..(x0 + window as i64).min(w) {
        let i = out_index(x, x0);
        for y in ya..yb {
            area[rows[(y - y0) as usize] * size as usize + i] += 1;
        }
        if ya >= yb {
            continue;
        }
        let (lo, hi) = ((x * h + ya) as u64, (x * h + yb) as u64);
        let mut k = runs.partition_point(|&(_, end)| end <= lo);
        while k < runs.len() && runs[k].0 < hi {
            let (s, e) = (runs[k].0.max(lo), runs[k].1.min(hi));
            for idx in s..e {
                let y = (idx - x as u64 * h as u64) as i64;
                coverage[rows[(y - y0) as usize] * size as usize + i] += 1;
            }
            k += 1;
        }
    }
    coverage.iter().zip(&area).map(|(&c, &a)| (a > 0 && 2 * c >= a) as u8).collect()
}

/// Which entries are held out: each dataset's groups split by [`fold_split`] on their own.
pub fn held_out(entries: &[SlideEntry], folds: usize, fold: usize) -> Vec<bool> {
    let mut valid = vec![false; entries.len()];
    let datasets = entries.iter().map(|e| e.dataset).max().map_or(0, |d| d + 1);
    for d in 0..datasets {
        let groups: Vec<String> = entries.iter().filter(|e| e.dataset == d).map(|e| e.group.clone()).collect();
        let (_, held) = crate::mask::fold_split(&groups, folds, fold);
        for (i, e) in entries.iter().enumerate() {
            if e.dataset == d && held.contains(&e.group) {
                valid[i] = true;
            }
        }
    }
    valid
}

/// How tiles are drawn each epoch.
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Weight of tiles containing glomerulus relative to tiles without.
    #[config(default = 3.0)]
    pub glomerulus_weight: f64,
    /// Weight of cortex tiles relative to medulla tiles (slides with anatomy only).
    #[config(default = 2.0)]
    pub cortex_weight: f64,
    /// Tiles drawn per epoch (`None`: as many as there are tiles).
    #[config(default = "None")]
    pub samples_per_epoch: Option<usize>,
    /// The seed's filter: from this epoch on, tiles the model predicted perfectly in their last
    /// visit are no longer drawn (`None`: never).
    #[config(default = "None")]
    pub drop_perfect_after: Option<usize>,
    /// Tile Dice counted as perfect (tiles with no glomerulus: nothing predicted).
    #[config(default = 0.99)]
    pub perfect_dice: f64,
}

/// The tiles of one epoch: weighted draws with replacement, deterministic in `seed`; tiles flagged
/// in `dropped` are skipped. With several datasets, dataset `d` gets `dataset_weights[d]` / Σ of
/// the draws (the tile weights apply within each dataset).
pub fn epoch_order(tiles: &Tiles, config: &SamplerConfig, dropped: &[bool], seed: u64, dataset_weights: &[f64]) -> Vec<usize> {
    let mut weights: Vec<f64> = tiles
        .meta
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if dropped.get(i).copied().unwrap_or(false) {
                return 0.0;
            }
            let g = if m.glomerulus > 0.0 { config.glomerulus_weight } else { 1.0 };
            let c = match m.cortex {
                Some(true) => config.cortex_weight,
                _ => 1.0,
            };
            g * c
        })
        .collect();
    if dataset_weights.len() > 1 {
        let mut sums = vec![0.0; dataset_weights.len()];
        for (m, w) in tiles.meta.iter().zip(&weights) {
            if let Some(s) = sums.get_mut(m.dataset) {
                *s += w;
            }
        }
        for (m, w) in tiles.meta.iter().zip(weights.iter_mut()) {
            let (share, sum) = (dataset_weights.get(m.dataset).copied().unwrap_or(0.0), sums.get(m.dataset).copied().unwrap_or(0.0));
            *w = if sum > 0.0 { *w * share / sum } else { 0.0 };
        }
    }
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return Vec::new();
    }
    let n = config.samples_per_epoch.unwrap_or(tiles.len());
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in &weights {
        acc += w;
        cumulative.push(acc);
    }
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let r = rng.unit() * total;
            cumulative.partition_point(|&c| c <= r).min(weights.len() - 1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::{BinaryMask, rle_encode};

    #[test]
    fn window_masks_follow_the_rle_at_scale() {
        let (w, h) = (40u32, 30u32);
        let mut full = BinaryMask::new(w, h);
        for y in 10..20 {
            for x in 8..24 {
                full.set(x, y, true);
            }
        }
        let runs = rle_runs(&rle_encode(&full)).unwrap();
        // Identity scale: the window equals the mask, zero outside the slide.
        let m = window_mask(&runs, w, h, 4, 6, 24, 24);
        for j in 0..24 {
            for i in 0..24 {
                let (x, y) = (4 + i as i64, 6 + j as i64);
                let want = x < w as i64 && y < h as i64 && full.get(x as u32, y as u32);
                assert_eq!(m[j * 24 + i] == 1, want, "({x},{y})");
            }
        }
        // ×2 reduction: a 2×2 box is in when at least half covered.
        let m = window_mask(&runs, w, h, 0, 0, 40, 20);
        assert_eq!(m.iter().map(|&v| v as u32).sum::<u32>(), 8 * 5);
        assert_eq!(m[5 * 20 + 4], 1);
        assert_eq!(m[4 * 20 + 4], 0);
    }

    #[test]
    fn datasets_are_mixed_by_weight_and_held_out_in_blocks_of_their_own() {
        let meta =
            |d: usize, g: f32| TileMeta { slide: "s".into(), x: 0, y: 0, glomerulus: g, tissue: 1.0, cortex: None, window: 1, dataset: d };
        // Dataset 0: three tiles; dataset 1: one tile. Weights 1:3 → dataset 1 gets 3/4 of the draws.
        let tiles =
            Tiles { size: 1, meta: vec![meta(0, 0.0), meta(0, 0.5), meta(0, 0.0), meta(1, 0.0)], rgb: vec![0; 12], mask: vec![0; 4] };
        let config = SamplerConfig::new().with_samples_per_epoch(Some(8000));
        let order = epoch_order(&tiles, &config, &[], 3, &[1.0, 3.0]);
        let share = order.iter().filter(|&&i| i == 3).count() as f64 / 8000.0;
        assert!((share - 0.75).abs() < 0.03, "{share}");
        // Within dataset 0 the glomerulus weight still applies (3 : 1 : 1).
        let within = order.iter().filter(|&&i| i == 1).count() as f64 / order.iter().filter(|&&i| i < 3).count() as f64;
        assert!((within - 0.6).abs() < 0.05, "{within}");
        let entry = |d: usize, id: &str| SlideEntry {
            id: id.into(),
            location: String::new(),
            rle: String::new(),
            anatomy: Vec::new(),
            dataset: d,
            group: id.into(),
            pixel_size_um: None,
            objects: Vec::new(),
        };
        let entries: Vec<SlideEntry> = ["1", "2", "10", "11", "20", "21", "30", "31"]
            .iter()
            .map(|id| entry(0, id))
            .chain(["a", "b"].iter().map(|id| entry(1, id)))
            .collect();
        let held = held_out(&entries, 4, 1);
        let ids: Vec<&str> = entries.iter().zip(&held).filter(|(_, h)| **h).map(|(e, _)| e.id.as_str()).collect();
        assert_eq!(ids, ["10", "11", "a"], "each dataset split on its own, in contiguous natural-order blocks");
        assert_eq!(held_out(&entries, 4, 3).iter().filter(|h| **h).count(), 3);
    }

    /// An image folder reads as a dataset: truth as RLE at the image's size, objects kept apart, and
    /// `groups.csv` deciding what the folds keep together.
    #[test]
    fn image_folders_read_with_their_groups() {
        let dir = std::env::temp_dir().join(format!("ftuscope-groups-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let image = image::RgbImage::from_pixel(20, 10, image::Rgb([200, 120, 200]));
        let labelme = r#"{"shapes": [{"label": "glomerulus", "shape_type": "rectangle", "points": [[2, 2], [6, 6]]},
            {"label": "glomerulus", "shape_type": "rectangle", "points": [[5, 2], [9, 6]]}]}"#;
        for id in ["a1", "a2", "b1"] {
            image.save(dir.join(format!("{id}.png"))).unwrap();
            std::fs::write(dir.join(format!("{id}.json")), labelme).unwrap();
        }
        std::fs::write(dir.join("groups.csv"), "id,group\na1,slideA\na2,slideA\nb1,slideB\n").unwrap();
        let entries = futures_lite::future::block_on(read_dataset(dir.to_str().unwrap())).unwrap();
        assert_eq!(
            entries.iter().map(|e| (e.id.as_str(), e.group.as_str())).collect::<Vec<_>>(),
            [("a1", "slideA"), ("a2", "slideA"), ("b1", "slideB")]
        );
        // Two overlapping outlines: one union in the RLE (4×4 + 4×4 − 1×4 overlap), two objects.
        assert_eq!(crate::mask::rle_runs(&entries[0].rle).unwrap().iter().map(|(s, e)| e - s).sum::<u64>(), 28);
        assert_eq!(entries[0].objects.len(), 2);
        let held = held_out(&entries, 2, 0);
        assert_eq!(held, [true, true, false], "a slide's images stay in one fold");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A folder of images without annotations is a clean error as a labelled dataset and, marked
    /// `negative`, a dataset of empty masks, each image its own group.
    #[test]
    fn negative_folders_read_without_annotations() {
        let dir = tempfile::tempdir().unwrap();
        let image = image::RgbaImage::from_pixel(20, 10, image::Rgba([230, 150, 180, 255]));
        for id in ["fat", "stroma"] {
            image.save(dir.path().join(format!("{id}.png"))).unwrap();
        }
        let root = dir.path().to_str().unwrap().to_string();
        let err = futures_lite::future::block_on(read_datasets(&[DatasetConfig::new(root.clone())])).unwrap_err();
        assert!(err.to_string().contains("no annotations"), "{err}");
        let spec = DatasetConfig::parse(&format!("{root},negative,weight=2")).unwrap();
        assert!(spec.negative && spec.weight == 2.0);
        let entries = futures_lite::future::block_on(read_datasets(&[spec])).unwrap();
        assert_eq!(
            entries.iter().map(|e| (e.id.as_str(), e.group.as_str(), e.rle.as_str())).collect::<Vec<_>>(),
            [("fat", "fat", ""), ("stroma", "stroma", "")]
        );
        assert!(read_negatives("https://example.org/negatives").is_err());
    }

    #[test]
    fn dataset_specs_parse_and_bad_ones_say_why() {
        let d = DatasetConfig::parse("data/real-kidney,pixel-size=1,weight=3").unwrap();
        assert_eq!((d.location.as_str(), d.pixel_size_um, d.weight), ("data/real-kidney", Some(1.0), 3.0));
        assert_eq!(DatasetConfig::parse("https://x.org/d").unwrap().weight, 1.0);
        for bad in ["", ",weight=1", "d,weight=0", "d,weight=x", "d,colour=1", "d,pixel-size"] {
            assert!(DatasetConfig::parse(bad).is_err(), "{bad}");
        }
        let window = TileConfig::new().with_size(256).with_input_pixel_size_um(Some(2.0));
        assert_eq!(window.window_for(Some(0.5)), Ok(1024));
        assert_eq!(window.window_for(Some(1.0)), Ok(512));
        assert!(window.window_for(None).is_err());
        assert_eq!(TileConfig::new().window_for(None), Ok(1536));
    }

    #[test]
    fn the_sampler_oversamples_glomeruli_and_skips_dropped_tiles() {
        let meta = |g: f32| TileMeta { slide: "s".into(), x: 0, y: 0, glomerulus: g, tissue: 1.0, cortex: None, window: 1, dataset: 0 };
        let tiles = Tiles { size: 1, meta: vec![meta(0.0), meta(0.3), meta(0.0), meta(0.0)], rgb: vec![0; 12], mask: vec![0; 4] };
        let config = SamplerConfig::new().with_glomerulus_weight(5.0).with_samples_per_epoch(Some(8000));
        let order = epoch_order(&tiles, &config, &[], 1, &[]);
        let share = order.iter().filter(|&&i| i == 1).count() as f64 / 8000.0;
        assert!((share - 5.0 / 8.0).abs() < 0.03, "{share}");
        assert_eq!(order, epoch_order(&tiles, &config, &[], 1, &[]));
        let order = epoch_order(&tiles, &config, &[false, true, false, false], 1, &[]);
        assert!(!order.contains(&1) && order.len() == 8000);
        assert!(epoch_order(&tiles, &config, &[true; 4], 1, &[]).is_empty());
    }
}

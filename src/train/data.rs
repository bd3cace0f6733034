//! Training data: the Kaggle HuBMAP layout (`train.csv` with `id,encoding`, `train/<id>.tiff`,
//! optional `train/<id>-anatomical-structure.json`), local or behind an http(s) URL, cut into
//! model-scale tiles once and cached on disk; the tissue filter; K-fold splits by slide; and the
//! sampler that oversamples glomeruli and cortex and can drop tiles the model already gets right.

use super::Error;
use crate::infer::{PlanConfig, plan_slide, saturation};
use crate::mask::{Annotation, read_annotations, rle_runs};
use crate::rng::SplitMix64;
use crate::slide::source::open_native;
use crate::slide::{Slide, SlideOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// One training slide.
#[derive(Debug, Clone)]
pub struct SlideEntry {
    /// Kaggle id (file name without extension).
    pub id: String,
    /// Path or URL of the TIFF.
    pub location: String,
    /// Its mask: column-major, 1-indexed RLE (as in train.csv).
    pub rle: String,
    /// Anatomical regions (Cortex, Medulla…), when the dataset has them.
    pub anatomy: Vec<Annotation>,
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

/// The slides of a Kaggle-layout dataset at `root` (a folder or an http(s) URL), in train.csv's order.
pub async fn read_dataset(root: &str) -> Result<Vec<SlideEntry>, Error> {
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
        entries.push(SlideEntry { location: join(root, &format!("train/{id}.tiff")), id, rle, anatomy });
    }
    if entries.is_empty() {
        return Err(Error::Data(format!("{} lists no slides", join(root, "train.csv"))));
    }
    Ok(entries)
}

/// How slides are cut into training tiles.
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct TileConfig {
    /// Window side in level-0 pixels (the seed: 1536).
    #[config(default = 1536)]
    pub window: u32,
    /// Network input side each window is resized to (the seed: 512).
    #[config(default = 512)]
    pub size: u32,
    /// Overlap between neighbouring windows, level-0 pixels.
    #[config(default = 0)]
    pub overlap: u32,
    /// HSV saturation (0–255) above which a pixel counts as tissue (3rd place: 40).
    #[config(default = 40)]
    pub saturation: u8,
    /// Tiles with less tissue than this fraction and no glomerulus are dropped.
    #[config(default = 0.05)]
    pub min_tissue: f64,
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
    for b in entry.location.bytes().chain(entry.rle.bytes().take(4096)).chain(format!("{config:?}").bytes()) {
        h = crate::rng::mix(h ^ b as u64);
    }
    dir.join(format!("{}-{}to{}-{h:016x}.tiles", entry.id, config.window, config.size))
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
    let plan_config = PlanConfig::new().with_window(config.window).with_input_size(config.size).with_overlap(config.overlap);
    let plan = plan_slide(&slide, &plan_config).await.map_err(|e| Error::Data(format!("{}: {e}", entry.location)))?;
    let cortex: Vec<&Annotation> = entry.anatomy.iter().filter(|a| a.classification.to_ascii_lowercase().contains("cortex")).collect();
    let px = (config.size * config.size) as usize;
    let mut tiles = Tiles { size: config.size, ..Tiles::default() };
    for (i, w) in plan.windows.iter().enumerate() {
        progress(i, plan.windows.len());
        let window = config.window as f64;
        let image = slide.read_scaled(w.x as f64, w.y as f64, window, window, config.size, config.size).await.map_err(slide_error)?;
        let mask = window_mask(&runs, width, height, w.x, w.y, config.window, config.size);
        let tissue = image.pixels().filter(|p| saturation(p.0) > config.saturation).count() as f32 / px as f32;
        let glomerulus = mask.iter().map(|&m| m as u32).sum::<u32>() as f32 / px as f32;
        if (tissue as f64) < config.min_tissue && glomerulus == 0.0 {
            continue;
        }
        let (cx, cy) = ((w.x + config.window as i64 / 2) as f64, (w.y + config.window as i64 / 2) as f64);
        let in_cortex = (!entry.anatomy.is_empty()).then(|| cortex.iter().any(|a| a.polygons.iter().any(|p| p.contains(cx, cy))));
        tiles.meta.push(TileMeta { slide: entry.id.clone(), x: w.x, y: w.y, glomerulus, tissue, cortex: in_cortex });
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

/// Slide ids of fold `fold` of `folds` (validation), by position in the sorted id list.
pub fn fold_split(ids: &[String], folds: usize, fold: usize) -> (Vec<String>, Vec<String>) {
    let mut sorted = ids.to_vec();
    sorted.sort();
    if folds < 2 {
        return (sorted, Vec::new());
    }
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (i, id) in sorted.into_iter().enumerate() {
        if i % folds == fold % folds { valid.push(id) } else { train.push(id) }
    }
    (train, valid)
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
/// in `dropped` are skipped.
pub fn epoch_order(tiles: &Tiles, config: &SamplerConfig, dropped: &[bool], seed: u64) -> Vec<usize> {
    let weights: Vec<f64> = tiles
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
    fn folds_partition_the_slides() {
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
    }

    #[test]
    fn the_sampler_oversamples_glomeruli_and_skips_dropped_tiles() {
        let meta = |g: f32| TileMeta { slide: "s".into(), x: 0, y: 0, glomerulus: g, tissue: 1.0, cortex: None };
        let tiles = Tiles { size: 1, meta: vec![meta(0.0), meta(0.3), meta(0.0), meta(0.0)], rgb: vec![0; 12], mask: vec![0; 4] };
        let config = SamplerConfig::new().with_glomerulus_weight(5.0).with_samples_per_epoch(Some(8000));
        let order = epoch_order(&tiles, &config, &[], 1);
        let share = order.iter().filter(|&&i| i == 1).count() as f64 / 8000.0;
        assert!((share - 5.0 / 8.0).abs() < 0.03, "{share}");
        assert_eq!(order, epoch_order(&tiles, &config, &[], 1));
        let order = epoch_order(&tiles, &config, &[false, true, false, false], 1);
        assert!(!order.contains(&1) && order.len() == 8000);
        assert!(epoch_order(&tiles, &config, &[true; 4], 1).is_empty());
    }
}

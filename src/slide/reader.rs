//! [`Slide`]: a TIFF opened from any byte source, read region by region.

use super::cache::{Key, TileCache};
use super::decode::{Part, decode_chunk};
use super::layout::{AssociatedImage, Layout, Level, SlideFormat, read_layout};
use super::source::{ByteSource, Bytes};
use super::sparse::Blocks;
use super::{Error, Result};
use burn::config::Config;
use image::RgbImage;
use serde::Serialize;
use std::ops::Range;
use std::sync::{Arc, RwLock};

/// Largest region side one call may ask for (a 16384² RGB region is 768 MiB).
pub const MAX_REGION_SIDE: u32 = 16_384;
/// The glass: what lies outside the image, and in chunks the file leaves out.
pub const BACKGROUND: image::Rgb<u8> = image::Rgb([255, 255, 255]);

/// How a slide is read.
#[derive(Config, Debug)]
pub struct SlideOptions {
    /// Decoded-tile cache size in bytes.
    #[config(default = 268435456)]
    pub cache_bytes: u64,
    /// Memory for the overview levels built for a flat slide, in bytes.
    #[config(default = 67108864)]
    pub overview_bytes: u64,
    /// µm per level-0 pixel, overriding what the file says (or saying it for files that do not,
    /// such as PNG/JPEG images): `--pixel-size` natively, the app's pixel-size field.
    #[config(default = "None")]
    pub pixel_size_um: Option<f64>,
}

impl SlideOptions {
    /// For one pass over a slide in raster order (inference, training's tile extraction): the
    /// windows reuse only a band of tiles (their overlap), and 64 MiB keeps a 30000-px-wide band of
    /// 512² JPEG tiles.
    pub fn one_pass() -> Self {
        Self::new().with_cache_bytes(64 << 20)
    }
}

/// A whole-slide image, streamed: only the tiles a region needs are fetched and decoded.
pub struct Slide {
    source: Arc<dyn ByteSource>,
    blocks: Arc<Blocks>,
    pub(super) layout: Layout,
    /// Overview levels built in memory for slides without small levels (flat TIFFs).
    pub(super) overviews: RwLock<Vec<(Level, Arc<RgbImage>)>>,
    cache: TileCache,
    pub(super) options: SlideOptions,
    /// The file's length: the source's, or for a PNG/JPEG the original file's (its pixels are held
    /// as an in-memory TIFF).
    pub(super) file_len: u64,
    /// The pixel-size override's f64 bits (0: none), settable through a shared reference.
    pixel_size_override: std::sync::atomic::AtomicU64,
}

/// One level as `info` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct LevelInfo {
    /// Size, scale and tiling.
    #[serde(flatten)]
    pub level: Level,
    /// Compression of its tiles ("JPEG", "LZW", …; "memory" for overview levels).
    pub compression: String,
    /// Tiles or strips.
    pub tiled: bool,
    /// Whether samples are stored plane by plane.
    pub planar: bool,
    /// Bits per sample in the file.
    pub bits: u16,
    /// Samples per pixel in the file (all planes together).
    pub samples: u16,
}

/// What `ftuscope info` prints.
#[derive(Debug, Clone, Serialize)]
pub struct SlideInfo {
    /// Path or URL.
    pub source: String,
    /// File length in bytes.
    pub bytes: u64,
    /// SVS, OME-TIFF, HuBMAP planes, a vendor's TIFF variant, plain TIFF, PNG or JPEG.
    pub format: SlideFormat,
    /// The format's name as a person says it ("Aperio SVS", "Philips TIFF", …).
    pub vendor: &'static str,
    /// What is shown differently from the file (one channel of a fluorescence image, say).
    pub notice: Option<String>,
    /// BigTIFF (64-bit offsets) or classic.
    pub bigtiff: bool,
    /// "little" or "big".
    pub byte_order: &'static str,
    /// Pages (IFDs) in the file, SubIFDs included.
    pub pages: usize,
    /// µm per level-0 pixel, when the file says.
    pub pixel_size_um: Option<f64>,
    /// Pyramid levels, largest first.
    pub levels: Vec<LevelInfo>,
    /// Label, macro, thumbnail…
    pub associated: Vec<AssociatedImage>,
}

impl Slide {
    /// Opens a slide with default options: reads the header and every IFD (through a read-ahead
    /// cache), nothing else.
    pub async fn open(source: Arc<dyn ByteSource>) -> Result<Self> {
        Self::open_with(source, SlideOptions::new()).await
    }

    /// Opens a slide with these options.
    ///
    /// PNG and JPEG images are recognised by their signature, decoded whole (within
    /// [`super::MAX_IMAGE_SIDE`]) and held as a one-level slide, so every path that reads slides
    /// reads plain images too.
    pub async fn open_with(source: Arc<dyn ByteSource>, options: SlideOptions) -> Result<Self> {
        // One read of the first bytes tells the kinds apart.
        let head = source.read_range(0..super::vendor::HEAD.min(source.len())).await.map_err(|e| e.at(source.name()))?;
        if let Some(foreign) = super::vendor::recognise(&head, source.name()) {
            return Err(foreign.error().at(source.name()));
        }
        if let Some(format) = super::picture::sniff(&head) {
            return Self::open_picture(source, options, format).await;
        }
        if super::dicom::is_dicom(&head) {
            let name = source.name().to_string();
            return Self::open_dicom(vec![source], &name, options).await;
        }
        Self::open_tiff(source, options).await
    }

    /// Opens a DICOM whole-slide series from its files (one per level, plus label, overview and
    /// thumbnail; other files are left out), read as one slide named `name` (the folder, say).
    pub async fn open_dicom(files: Vec<Arc<dyn ByteSource>>, name: &str, options: SlideOptions) -> Result<Self> {
        let (source, layout) = super::dicom::read_series(files, name).await.map_err(|e| e.at(name))?;
        Ok(Self::from_layout(source, layout, options))
    }

    /// Opens a TIFF (no signature sniffing).
    pub(super) async fn open_tiff(source: Arc<dyn ByteSource>, options: SlideOptions) -> Result<Self> {
        let blocks = Arc::new(Blocks::default());
        let name = source.name().to_string();
        let layout = read_layout(source.as_ref(), &blocks).await.map_err(|e| e.at(&name))?;
        let mut slide = Self::from_layout(source, layout, options);
        slide.blocks = blocks;
        Ok(slide)
    }

    fn from_layout(source: Arc<dyn ByteSource>, layout: Layout, options: SlideOptions) -> Self {
        let cache = TileCache::new(options.cache_bytes);
        let pixel_size_override = std::sync::atomic::AtomicU64::new(options.pixel_size_um.unwrap_or(0.0).to_bits());
        let file_len = source.len();
        let blocks = Arc::new(Blocks::default());
        Self { source, blocks, layout, overviews: RwLock::new(Vec::new()), cache, options, file_len, pixel_size_override }
    }

    /// Opens a file path or an http(s) URL (natively; the browser opens Blobs and URLs through its
    /// own sources).
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn open_location(location: &str, options: SlideOptions) -> Result<Self> {
        let path = std::path::Path::new(location);
        if path.is_dir() {
            return Self::open_folder(path, options).await;
        }
        Self::open_with(super::source::open_native(location).await?, options).await
    }

    /// Opens a folder of DICOM files (a DICOM WSI series: one file per level) natively.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn open_folder(dir: &std::path::Path, options: SlideOptions) -> Result<Self> {
        let name = dir.display().to_string();
        let listing = std::fs::read_dir(dir).map_err(|e| Error::Io(e.to_string()).at(&name))?;
        let mut paths: Vec<std::path::PathBuf> = listing.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
        paths.sort();
        if paths.len() > super::dicom::MAX_FILES {
            return Err(Error::Limit(format!("{} files in one folder", paths.len())).at(&name));
        }
        let files = paths
            .iter()
            .map(|p| super::source::FileSource::open(p).map(|f| Arc::new(f) as Arc<dyn ByteSource>))
            .collect::<Result<Vec<_>>>()?;
        Self::open_dicom(files, &name, options).await
    }

    /// Pyramid levels, largest first: the file's, then overviews built by [`Slide::build_overviews`].
    pub fn levels(&self) -> Vec<Level> {
        let mut levels = self.layout.levels.clone();
        if let Ok(overviews) = self.overviews.read() {
            levels.extend(overviews.iter().map(|(l, _)| l.clone()));
        }
        levels
    }

    /// Level 0's size.
    pub fn dimensions(&self) -> (u32, u32) {
        (self.layout.levels[0].width, self.layout.levels[0].height)
    }

    /// µm per level-0 pixel, from the resolution tags, SVS MPP or OME metadata.
    /// or the override in [`SlideOptions::pixel_size_um`] (which wins).
    pub fn pixel_size_um(&self) -> Option<f64> {
        let set = f64::from_bits(self.pixel_size_override.load(std::sync::atomic::Ordering::Relaxed));
        Some(set).filter(|p| p.is_finite() && *p > 0.0).or(self.layout.pixel_size_um)
    }

    /// Sets (or with `None` clears) the pixel-size override: what a user types when the file
    /// records none or records it wrongly. Non-positive or non-finite values clear it.
    pub fn set_pixel_size_um(&self, pixel_size_um: Option<f64>) {
        let bits = pixel_size_um.filter(|p| p.is_finite() && *p > 0.0).unwrap_or(0.0).to_bits();
        self.pixel_size_override.store(bits, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the file itself records a pixel size (an override does not count).
    pub fn file_pixel_size_um(&self) -> Option<f64> {
        self.layout.pixel_size_um
    }

    /// The kind of TIFF.
    pub fn format(&self) -> SlideFormat {
        self.layout.format
    }

    /// What the reader shows differently from the file, if anything (see [`SlideInfo::notice`]).
    pub fn notice(&self) -> Option<&str> {
        self.layout.notice.as_deref()
    }

    /// Label, macro and thumbnail images stored beside the pyramid.
    pub fn associated(&self) -> &[AssociatedImage] {
        &self.layout.associated
    }

    /// The path or URL.
    pub fn name(&self) -> &str {
        self.source.name()
    }

    /// Bytes of decoded tiles in the cache now.
    pub fn cached_bytes(&self) -> u64 {
        self.cache.bytes()
    }

    /// A summary for `ftuscope info` and the web app.
    pub fn info(&self) -> SlideInfo {
        let file_levels = self.layout.levels.iter().map(|l| {
            let p = &self.layout.pages[l.pages[0]];
            let picture = match self.layout.format {
                SlideFormat::Png => Some("PNG (decoded whole)"),
                SlideFormat::Jpeg => Some("JPEG (decoded whole)"),
                _ => None,
            };
            LevelInfo {
                level: l.clone(),
                compression: picture.map_or_else(|| p.compression_name(), String::from),
                tiled: p.tiled,
                planar: p.planar || l.pages.len() == 3,
                bits: p.bits,
                samples: p.samples * l.pages.len() as u16,
            }
        });
        let overviews: Vec<LevelInfo> = self
            .overviews
            .read()
            .map(|o| {
                o.iter()
                    .map(|(l, _)| LevelInfo {
                        level: l.clone(),
                        compression: "memory".into(),
                        tiled: true,
                        planar: false,
                        bits: 8,
                        samples: 3,
                    })
                    .collect()
            })
            .unwrap_or_default();
        SlideInfo {
            source: self.source.name().to_string(),
            bytes: self.file_len,
            format: self.layout.format,
            vendor: super::vendor::describe(self.layout.format),
            notice: self.layout.notice.clone(),
            bigtiff: self.layout.big,
            byte_order: if self.layout.little_endian { "little" } else { "big" },
            pages: self.layout.pages.len(),
            pixel_size_um: self.pixel_size_um(),
            levels: file_levels.chain(overviews).collect(),
            associated: self.layout.associated.clone(),
        }
    }

    /// The `w`×`h` region at (`x`, `y`) of `level`, in that level's pixels, as RGB. Parts outside
    /// the image are background (white), never an error.
    pub async fn read_region(&self, level: usize, x: i64, y: i64, w: u32, h: u32) -> Result<RgbImage> {
        self.read_region_cached(level, x, y, w, h, true).await
    }

    /// [`Slide::read_region`], optionally leaving the tile cache as it was (for one-off passes
    /// over a whole level, which would only evict what the viewer uses).
    pub(super) async fn read_region_cached(&self, level: usize, x: i64, y: i64, w: u32, h: u32, keep: bool) -> Result<RgbImage> {
        if w == 0 || h == 0 || w > MAX_REGION_SIDE || h > MAX_REGION_SIDE {
            return Err(Error::Limit(format!("a region must be 1–{MAX_REGION_SIDE} px on a side, not {w}×{h}")));
        }
        let file_levels = self.layout.levels.len();
        if level >= file_levels {
            let overview = self.overviews.read().ok().and_then(|o| o.get(level - file_levels).map(|(_, image)| image.clone()));
            let image = overview.ok_or_else(|| Error::NotFound(format!("level {level}")))?;
            let mut out = RgbImage::from_pixel(w, h, BACKGROUND);
            // The region starts at (x, y) of the overview: the overview sits at (−x, −y) in it.
            blit(&mut out, &image, -x, -y);
            return Ok(out);
        }
        let pages = self.layout.levels[level].pages.clone();
        self.read_pages(&pages, level, x, y, w, h, keep).await.map_err(|e| e.at(self.source.name()))
    }

    /// A whole associated image (label, macro, thumbnail) by name.
    pub async fn associated_image(&self, name: &str) -> Result<RgbImage> {
        let found =
            self.layout.associated.iter().find(|a| a.name == name).ok_or_else(|| Error::NotFound(format!("associated image '{name}'")))?;
        let (w, h) = (found.width, found.height);
        if w > MAX_REGION_SIDE || h > MAX_REGION_SIDE {
            return Err(Error::Limit(format!("associated image {w}×{h}")));
        }
        self.read_pages(&[found.page], usize::MAX - found.page, 0, 0, w, h, true).await.map_err(|e| e.at(self.source.name()))
    }

    /// The whole slide scaled to fit `max_side`, from the smallest level that is at least that
    /// large (overviews included: call [`Slide::build_overviews`] first on a flat slide).
    pub async fn thumbnail(&self, max_side: u32) -> Result<RgbImage> {
        let max_side = max_side.clamp(1, MAX_REGION_SIDE);
        let levels = self.levels();
        let pick = levels.iter().rposition(|l| l.width.max(l.height) >= max_side).unwrap_or(levels.len() - 1);
        let level = &levels[pick];
        if level.width > MAX_REGION_SIDE || level.height > MAX_REGION_SIDE {
            return Err(Error::Limit(format!(
                "the smallest level is {}×{}: build overview levels first (Slide::build_overviews)",
                level.width, level.height
            )));
        }
        let image = self.read_region(pick, 0, 0, level.width, level.height).await?;
        let scale = max_side as f64 / level.width.max(level.height) as f64;
        if scale >= 1.0 {
            return Ok(image);
        }
        let (tw, th) = (((level.width as f64 * scale).round() as u32).max(1), ((level.height as f64 * scale).round() as u32).max(1));
        Ok(image::imageops::resize(&image, tw, th, image::imageops::FilterType::Triangle))
    }

    /// The level a read at `downsample` level-0 pixels per output pixel comes from: the one with
    /// the largest downsample not above it (the cheapest that still has the detail), overviews
    /// included. Returns its index and downsample.
    pub fn level_for(&self, downsample: f64) -> (usize, f64) {
        self.levels()
            .iter()
            .enumerate()
            .filter(|(_, l)| l.downsample <= downsample * 1.000_001)
            .map(|(i, l)| (i, l.downsample))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 1.0))
    }

    /// The level-0 rectangle (`x`, `y`, `w`, `h`) as read from [`Slide::level_for`] the scale of
    /// an `out_w`×`out_h` output, at that level's resolution (resize it with [`resize`]).
    /// [`Slide::read_scaled`] in two steps, for callers that time them apart.
    pub async fn read_for_scale(&self, x: f64, y: f64, w: f64, h: f64, out_w: u32, out_h: u32) -> Result<RgbImage> {
        if !(w > 0.0 && h > 0.0 && out_w > 0 && out_h > 0 && x.is_finite() && y.is_finite()) {
            return Err(Error::Limit(format!("a scaled read needs a positive rectangle and output size, not {w}×{h} → {out_w}×{out_h}")));
        }
        let (index, d) = self.level_for((w / out_w as f64).min(h / out_h as f64));
        let side = |v: f64| ((v / d).round() as u32).clamp(1, MAX_REGION_SIDE);
        self.read_region(index, (x / d).round() as i64, (y / d).round() as i64, side(w), side(h)).await
    }

    /// The level-0 rectangle (`x`, `y`, `w`, `h`) scaled to `out_w`×`out_h`: read from the
    /// cheapest level with enough detail, then resized. What the viewer asks for per tile, and how
    /// inference and training read every window, so the network always sees pixels prepared
    /// the same way.
    pub async fn read_scaled(&self, x: f64, y: f64, w: f64, h: f64, out_w: u32, out_h: u32) -> Result<RgbImage> {
        Ok(resize(self.read_for_scale(x, y, w, h, out_w, out_h).await?, out_w, out_h))
    }

    /// Reads a region of the image stored in `pages` (one page, or three planes), through the cache.
    #[allow(clippy::too_many_arguments)]
    async fn read_pages(&self, pages: &[usize], cache_id: usize, x: i64, y: i64, w: u32, h: u32, keep: bool) -> Result<RgbImage> {
        let p0 = &self.layout.pages[pages[0]];
        let (cols, rows) = p0.grid();
        let (cw, ch) = (p0.chunk_width as i64, p0.chunk_height as i64);
        let mut out = RgbImage::from_pixel(w, h, BACKGROUND);
        let (x1, y1) = ((x + w as i64).min(p0.width as i64), (y + h as i64).min(p0.height as i64));
        let (x0, y0) = (x.max(0), y.max(0));
        if x0 >= x1 || y0 >= y1 {
            return Ok(out);
        }
        let chunks: Vec<(u32, u32)> = ((y0 / ch) as u32..=((y1 - 1) / ch) as u32)
            .flat_map(|r| ((x0 / cw) as u32..=((x1 - 1) / cw) as u32).map(move |c| (c, r)))
            .collect();
        let mut tiles: Vec<Option<Arc<RgbImage>>> = chunks.iter().map(|&(c, r)| self.cache.get((cache_id, r * cols + c))).collect();
        // Fetch what is missing, in as few requests as neighbours allow.
        let missing: Vec<usize> = (0..chunks.len()).filter(|&i| tiles[i].is_none()).collect();
        let mut wanted: Vec<Vec<(usize, u32, Range<u64>)>> = Vec::new();
        for &i in &missing {
            let (c, r) = chunks[i];
            wanted.push(self.parts_of(pages, r * cols + c, cols * rows)?);
        }
        let ranges: Vec<Range<u64>> = wanted.iter().flatten().map(|(_, _, r)| r.clone()).collect();
        let mut fetched = self.source.read_ranges(&ranges).await?.into_iter();
        let jobs: Vec<Job> = missing
            .iter()
            .zip(&wanted)
            .map(|(&i, parts)| (i, parts.iter().map(|(page, index, _)| (*page, *index, fetched.next().unwrap_or_default())).collect()))
            .collect();
        let len = self.source.len();
        let decoded = par_map(jobs, |(i, parts)| {
            let (c, r) = chunks[i];
            let dw = (p0.width - c * p0.chunk_width).min(p0.chunk_width);
            let dh = (p0.height - r * p0.chunk_height).min(p0.chunk_height);
            if parts.iter().any(|(_, _, b)| b.is_empty()) {
                // A chunk the file leaves out (offset or count 0) is background.
                return (i, Ok(RgbImage::from_pixel(dw, dh, BACKGROUND)));
            }
            let parts: Vec<Part<'_>> =
                parts.into_iter().map(|(page, index, bytes)| Part { page: &self.layout.pages[page], index, bytes }).collect();
            let tile = decode_chunk(&self.blocks, len, &parts, dw, dh).map_err(|e| Error::InTile { col: c, row: r, error: Box::new(e) });
            (i, tile)
        });
        for (i, tile) in decoded {
            let tile = Arc::new(tile?);
            let (c, r) = chunks[i];
            if keep {
                self.cache.put((cache_id, r * cols + c) as Key, tile.clone());
            }
            tiles[i] = Some(tile);
        }
        for (&(c, r), tile) in chunks.iter().zip(&tiles) {
            if let Some(tile) = tile {
                blit(&mut out, tile, c as i64 * cw - x, r as i64 * ch - y);
            }
        }
        Ok(out)
    }

    /// The pages, chunk indices and byte ranges making up chunk `index`.
    fn parts_of(&self, pages: &[usize], index: u32, per_plane: u32) -> Result<Vec<(usize, u32, Range<u64>)>> {
        let page = &self.layout.pages[pages[0]];
        let parts: Vec<(usize, u32)> = if pages.len() > 1 {
            pages.iter().map(|&p| (p, index)).collect()
        } else if page.planar {
            (0..page.samples.min(3) as u32).map(|s| (pages[0], index + s * per_plane)).collect()
        } else {
            vec![(pages[0], index)]
        };
        parts
            .into_iter()
            .map(|(p, i)| {
                let page = &self.layout.pages[p];
                let (offset, count) = match (page.offsets.get(i as usize), page.counts.get(i as usize)) {
                    (Some(&o), Some(&n)) => (o, n),
                    _ => (0, 0),
                };
                let end = offset.checked_add(count).filter(|&e| e <= self.source.len());
                match end {
                    Some(end) if count > 0 && offset > 0 => Ok((p, i, offset..end)),
                    Some(_) => Ok((p, i, 0..0)),
                    None => Err(Error::Truncated { start: offset, end: offset.saturating_add(count), len: self.source.len() }),
                }
            })
            .collect()
    }
}

/// A chunk to decode: its position in the region's list and its parts (page, chunk index, bytes).
type Job = (usize, Vec<(usize, u32, Bytes)>);

/// Copies `tile` into `out` with its top-left corner at (`x`, `y`) of `out`, clipped.
pub(super) fn blit(out: &mut RgbImage, tile: &RgbImage, x: i64, y: i64) {
    let (ow, oh) = (out.width() as i64, out.height() as i64);
    let (tw, th) = (tile.width() as i64, tile.height() as i64);
    let (sx, sy) = ((-x).max(0), (-y).max(0));
    let (ex, ey) = (tw.min(ow - x), th.min(oh - y));
    if sx >= ex || sy >= ey {
        return;
    }
    let n = ((ex - sx) * 3) as usize;
    for ty in sy..ey {
        let src = ((ty * tw + sx) * 3) as usize;
        let dst = (((ty + y) * ow + sx + x) * 3) as usize;
        out.as_mut()[dst..dst + n].copy_from_slice(&tile.as_raw()[src..src + n]);
    }
}

/// Decodes on all cores natively.
#[cfg(not(target_arch = "wasm32"))]
fn par_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    items.into_par_iter().map(f).collect()
}

/// Decodes in turn in the browser (the page's worker is the parallelism).
#[cfg(target_arch = "wasm32")]
fn par_map<T, R>(items: Vec<T>, f: impl Fn(T) -> R) -> Vec<R> {
    items.into_iter().map(f).collect()
}

/// `image` resized to `width`×`height` with a triangle (bilinear) filter; returned as it is when
/// it has that size already.
pub fn resize(image: RgbImage, width: u32, height: u32) -> RgbImage {
    if image.dimensions() == (width, height) {
        return image;
    }
    image::imageops::resize(&image, width, height, image::imageops::FilterType::Triangle)
}

//! DICOM whole-slide images (VL Whole Slide Microscopy Image, one file per pyramid level, plus
//! label/overview/thumbnail files): the files become one byte space ([`ConcatSource`]) and each
//! instance one [`Page`] whose tiles are its frames, so levels, regions, the tile cache and the
//! decoders are the TIFF reader's. TILED_FULL and TILED_SPARSE; JPEG baseline, JPEG 2000 and
//! uncompressed transfer syntaxes; frames located by the Extended or Basic Offset Table, or one
//! pass over the item headers when the file has neither.

mod parse;

use super::layout::{AssociatedImage, Layout, Level, MAX_CHUNK_BYTES, MAX_SIDE, Page, SlideFormat};
use super::source::{ByteSource, ConcatSource};
use super::{Error, Result};
use parse::{Found, PixelData, Stop};
use std::collections::BTreeMap;
use std::sync::Arc;

/// VL Whole Slide Microscopy Image Storage.
pub const WSI_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.77.1.6";
/// First prefix read for the attributes; doubled until Pixel Data is reached.
const FIRST_PREFIX: u64 = 256 << 10;
/// Largest prefix read for the attributes (per-frame groups of a sparse level grow with frames).
const MAX_PREFIX: u64 = 64 << 20;
/// Most files taken from one folder or one drop.
pub const MAX_FILES: usize = 4096;
/// Most frames per instance.
const MAX_FRAMES: u64 = 4 << 20;

/// Whether `head` starts like a DICOM file (128-byte preamble, then "DICM").
pub fn is_dicom(head: &[u8]) -> bool {
    head.get(128..132) == Some(b"DICM")
}

/// What one file holds, as the reader needs it.
#[derive(Debug, Default)]
struct Instance {
    file: usize,
    sop_class: String,
    series: String,
    flavour: String,
    transfer_syntax: String,
    samples: u16,
    photometric: String,
    planar: bool,
    frames: u64,
    rows: u32,
    columns: u32,
    bits: u16,
    total_columns: u32,
    total_rows: u32,
    spacing_mm: Option<(f64, f64)>,
    sparse: bool,
    focal_planes: u64,
    concatenated: bool,
    positions: BTreeMap<usize, (i64, i64)>,
    extended_offsets: Vec<u64>,
    extended_lengths: Vec<u64>,
    pixel: Option<PixelData>,
}

impl Instance {
    fn visit(&mut self, f: Found<'_>) {
        let top = f.path.is_empty();
        let value = f.value;
        match f.tag {
            parse::SOP_CLASS if top => self.sop_class = parse::text(value),
            parse::SERIES_UID if top => self.series = parse::text(value),
            parse::IMAGE_TYPE if top => self.flavour = parse::text(value).split('\\').nth(2).unwrap_or("").to_string(),
            parse::SAMPLES if top => self.samples = parse::unsigned(value).unwrap_or(0) as u16,
            parse::PHOTOMETRIC if top => self.photometric = parse::text(value),
            parse::PLANAR if top => self.planar = parse::unsigned(value) == Some(1),
            parse::FRAMES if top => self.frames = parse::text(value).parse().unwrap_or(0),
            parse::ROWS if top => self.rows = parse::unsigned(value).unwrap_or(0) as u32,
            parse::COLUMNS if top => self.columns = parse::unsigned(value).unwrap_or(0) as u32,
            parse::BITS_ALLOCATED if top => self.bits = parse::unsigned(value).unwrap_or(0) as u16,
            parse::TOTAL_COLUMNS if top => self.total_columns = parse::unsigned(value).unwrap_or(0) as u32,
            parse::TOTAL_ROWS if top => self.total_rows = parse::unsigned(value).unwrap_or(0) as u32,
            parse::FOCAL_PLANES if top => self.focal_planes = parse::unsigned(value).unwrap_or(1),
            parse::DIMENSION_ORGANIZATION if top => self.sparse = parse::text(value).contains("TILED_SPARSE"),
            parse::CONCATENATION_OFFSET if top => self.concatenated = true,
            parse::EXTENDED_OFFSETS if top => self.extended_offsets = u64s(value),
            parse::EXTENDED_LENGTHS if top => self.extended_lengths = u64s(value),
            parse::PIXEL_SPACING if f.path.first().is_some_and(|p| p.0 == parse::SHARED_GROUPS) || top => {
                let text = parse::text(value);
                let mut v = text.split('\\').filter_map(|s| s.trim().parse::<f64>().ok());
                if let (Some(row), Some(column)) = (v.next(), v.next()) {
                    self.spacing_mm = Some((row, column));
                }
            }
            parse::COLUMN_POSITION | parse::ROW_POSITION => {
                if let Some(&(parse::PER_FRAME_GROUPS, frame)) = f.path.first()
                    && let Some(v) = parse::signed(value)
                {
                    let p = self.positions.entry(frame).or_insert((0, 0));
                    if f.tag == parse::COLUMN_POSITION {
                        p.0 = v;
                    } else {
                        p.1 = v;
                    }
                }
            }
            _ => {}
        }
    }
}

fn u64s(value: &[u8]) -> Vec<u64> {
    value.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect()
}

/// Reads the attributes of one file (growing the prefix until Pixel Data); `None` for a file
/// that is not DICOM.
async fn read_instance(source: &dyn ByteSource, file: usize) -> Result<Option<Instance>> {
    let mut want = FIRST_PREFIX.min(source.len());
    loop {
        let bytes = source.read_range(0..want).await?;
        if !is_dicom(&bytes) {
            return Ok(None);
        }
        let mut instance = Instance { file, focal_planes: 1, ..Instance::default() };
        match parse::walk(&bytes, &mut |f| instance.visit(f)) {
            Ok((syntax, pixel)) => {
                instance.transfer_syntax = syntax;
                instance.pixel = Some(pixel);
                return Ok(Some(instance));
            }
            Err(Stop::Bad(e)) => return Err(e),
            Err(Stop::NeedMore) if want >= source.len() => {
                return Err(Error::Truncated { start: want, end: want + 1, len: source.len() });
            }
            Err(Stop::NeedMore) if want >= MAX_PREFIX => {
                return Err(Error::Limit(format!("DICOM attributes larger than {} MiB", MAX_PREFIX >> 20)));
            }
            Err(Stop::NeedMore) => want = (want * 4).min(source.len()).min(MAX_PREFIX),
        }
    }
}

/// How the frames are coded, as the tile decoders name it: (TIFF compression, photometric, raw).
fn codec(instance: &Instance) -> Result<(u16, u16, bool)> {
    let photometric = match instance.photometric.as_str() {
        "RGB" | "YBR_ICT" | "YBR_RCT" => 2,
        "YBR_FULL" | "YBR_FULL_422" => 6,
        "MONOCHROME2" | "MONOCHROME1" => 1,
        other => return Err(Error::Unsupported(format!("DICOM photometric interpretation {other}"))),
    };
    let ts = instance.transfer_syntax.as_str();
    let (compression, raw) = match ts {
        "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" => (1, true),
        "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51" => (7, false),
        "1.2.840.10008.1.2.4.90"
        | "1.2.840.10008.1.2.4.91"
        | "1.2.840.10008.1.2.4.201"
        | "1.2.840.10008.1.2.4.202"
        | "1.2.840.10008.1.2.4.203" => (super::jpeg2000::TIFF_JPEG2000, false),
        other => return Err(Error::Unsupported(format!("DICOM transfer syntax {other}"))),
    };
    Ok((compression, photometric, raw))
}

/// Frame `i`'s bytes as (offset, length) in the file, for every frame.
async fn frames(source: &dyn ByteSource, instance: &Instance) -> Result<Vec<(u64, u64)>> {
    let pixel = instance.pixel.ok_or_else(|| Error::Format("DICOM: no Pixel Data".into()))?;
    let n = instance.frames.max(1);
    if n > MAX_FRAMES {
        return Err(Error::Limit(format!("{n} frames in one DICOM file")));
    }
    if let Some(length) = pixel.length {
        // Native: frames back to back.
        let frame = instance.rows as u64 * instance.columns as u64 * instance.samples as u64 * (instance.bits as u64 / 8).max(1);
        if frame * n > length as u64 {
            return Err(Error::Format(format!("DICOM: Pixel Data holds {length} bytes, {n} frames need {}", frame * n)));
        }
        return Ok((0..n).map(|i| (pixel.offset + i * frame, frame)).collect());
    }
    let header = |bytes: &[u8]| -> Option<(u32, u64)> {
        let b = bytes.get(..8)?;
        let tag = (u16::from_le_bytes([b[0], b[1]]) as u32) << 16 | u16::from_le_bytes([b[2], b[3]]) as u32;
        Some((tag, u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as u64))
    };
    let end = source.len();
    let read8 = |at: u64| async move {
        if at + 8 > end {
            return Err(Error::Truncated { start: at, end: at + 8, len: end });
        }
        source.read_range(at..at + 8).await
    };
    let (tag, bot_len) = header(&read8(pixel.offset).await?).ok_or_else(|| Error::Format("DICOM: short item".into()))?;
    if tag != 0xFFFE_E000 {
        return Err(Error::Format("DICOM: encapsulated Pixel Data does not start with an item".into()));
    }
    let first = pixel.offset + 8 + bot_len;
    if instance.extended_offsets.len() as u64 == n && instance.extended_lengths.len() as u64 == n {
        return Ok(instance.extended_offsets.iter().zip(&instance.extended_lengths).map(|(&o, &l)| (first + o + 8, l)).collect());
    }
    let mut out = Vec::with_capacity(n as usize);
    if bot_len == 4 * n {
        let table = source.read_range(pixel.offset + 8..first).await?;
        let starts: Vec<u64> = table.chunks_exact(4).map(|c| first + u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64).collect();
        for (i, &start) in starts.iter().enumerate() {
            let next = match starts.get(i + 1) {
                Some(&next) => next,
                None => {
                    let (_, length) = header(&read8(start).await?).ok_or_else(|| Error::Format("DICOM: short item".into()))?;
                    start + 8 + length
                }
            };
            if next < start + 8 {
                return Err(Error::Format("DICOM: the Basic Offset Table is not increasing".into()));
            }
            out.push((start + 8, next - start - 8));
        }
        return Ok(out);
    }
    // No table: one pass over the item headers, read in 1 MiB blocks.
    let mut at = first;
    let mut block: (u64, super::Bytes) = (0, super::Bytes::new());
    while (out.len() as u64) < n {
        if at + 8 > end {
            return Err(Error::Truncated { start: at, end: at + 8, len: end });
        }
        if at < block.0 || at + 8 > block.0 + block.1.len() as u64 {
            let stop = (at + (1 << 20)).min(end);
            block = (at, source.read_range(at..stop).await?);
        }
        let from = (at - block.0) as usize;
        let (tag, length) = header(&block.1[from..]).ok_or_else(|| Error::Format("DICOM: short item".into()))?;
        if tag != 0xFFFE_E000 {
            return Err(Error::Format(format!("DICOM: {} items for {n} frames", out.len())));
        }
        out.push((at + 8, length));
        at += 8 + length;
    }
    Ok(out)
}

/// One instance as a page: its tile grid filled from its frames.
async fn page(source: &dyn ByteSource, base: u64, instance: &Instance) -> Result<Page> {
    let (compression, photometric, raw) = codec(instance)?;
    if instance.bits != 8 {
        return Err(Error::Unsupported(format!("DICOM with {}-bit samples", instance.bits)));
    }
    if instance.concatenated {
        return Err(Error::Unsupported("DICOM concatenations (one level split across files)".into()));
    }
    let (width, height) =
        if instance.total_columns > 0 { (instance.total_columns, instance.total_rows) } else { (instance.columns, instance.rows) };
    if width == 0 || height == 0 || instance.columns == 0 || instance.rows == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(Error::Format(format!("DICOM: a {width}×{height} image of {}×{} frames", instance.columns, instance.rows)));
    }
    if instance.columns as u64 * instance.rows as u64 * 4 > MAX_CHUNK_BYTES {
        return Err(Error::Limit(format!("{}×{} DICOM frames", instance.columns, instance.rows)));
    }
    let frames = frames(source, instance).await?;
    let (across, down) = (width.div_ceil(instance.columns) as u64, height.div_ceil(instance.rows) as u64);
    let tiles = (across * down) as usize;
    let mut offsets = vec![0u64; tiles];
    let mut counts = vec![0u64; tiles];
    let len = source.len();
    let mut place = |tile: usize, (offset, count): (u64, u64)| -> Result<()> {
        if offset + count > len {
            return Err(Error::Truncated { start: offset, end: offset + count, len });
        }
        if tile < tiles && counts[tile] == 0 {
            offsets[tile] = base + offset;
            counts[tile] = count;
        }
        Ok(())
    };
    if instance.sparse {
        for (i, frame) in frames.iter().enumerate() {
            let Some(&(column, row)) = instance.positions.get(&i) else { continue };
            if column < 1 || row < 1 {
                continue;
            }
            let tile = ((row as u64 - 1) / instance.rows as u64) * across + (column as u64 - 1) / instance.columns as u64;
            place(tile as usize, *frame)?;
        }
    } else {
        // TILED_FULL: row by row, the first focal plane and optical path first.
        for (tile, frame) in frames.iter().take(tiles).enumerate() {
            place(tile, *frame)?;
        }
    }
    Ok(Page {
        ptr: 0,
        width,
        height,
        chunk_width: instance.columns,
        chunk_height: instance.rows,
        tiled: true,
        compression,
        photometric,
        samples: instance.samples,
        bits: 8,
        planar: false,
        description: String::new(),
        offsets,
        counts,
        jpeg_tables: None,
        pixel_size_um: instance.spacing_mm.map(|(_, column)| column * 1000.0).filter(|v| *v > 0.0 && *v <= 100.0),
        sub_ifds: Vec::new(),
        ndpi: false,
        iscan: false,
        raw: raw.then_some(instance.planar),
    })
}

/// Opens a DICOM whole-slide series from its files (in any order; other files are left out):
/// the series with the largest image is shown, its VOLUME instances as levels and its LABEL,
/// OVERVIEW and THUMBNAIL instances as associated images.
pub async fn read_series(files: Vec<Arc<dyn ByteSource>>, name: &str) -> Result<(Arc<dyn ByteSource>, Layout)> {
    let mut instances = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for (k, file) in files.iter().enumerate() {
        let Some(instance) = read_instance(file.as_ref(), k).await.map_err(|e| e.at(file.name()))? else {
            continue;
        };
        if instance.sop_class == WSI_SOP_CLASS {
            instances.push(instance);
        } else {
            skipped.push(format!("{} (SOP class {})", file.name(), instance.sop_class));
        }
    }
    if instances.is_empty() {
        return Err(Error::NotFound(match skipped.first() {
            Some(first) => format!("DICOM whole-slide image: the DICOM files are other kinds, e.g. {first}"),
            None => "DICOM whole-slide image (no file starts with a DICOM preamble)".into(),
        }));
    }
    // The series with the largest VOLUME.
    let area = |i: &Instance| if i.flavour == "VOLUME" { i.total_columns as u64 * i.total_rows as u64 } else { 0 };
    let series = instances.iter().max_by_key(|i| area(i)).map(|i| i.series.clone()).unwrap_or_default();
    let series_count = instances.iter().map(|i| i.series.as_str()).collect::<std::collections::BTreeSet<_>>().len();
    instances.retain(|i| i.series == series);
    let concat = ConcatSource::new(files.clone(), name);
    let mut pages = Vec::new();
    let mut kinds = Vec::new();
    for instance in &instances {
        let file = &files[instance.file];
        let page = page(file.as_ref(), concat.base(instance.file), instance).await.map_err(|e| e.at(file.name()))?;
        pages.push(page);
        kinds.push(instance.flavour.clone());
    }
    let mut volumes: Vec<usize> = (0..pages.len()).filter(|&i| kinds[i] == "VOLUME").collect();
    volumes.sort_by_key(|&i| std::cmp::Reverse(pages[i].width as u64 * pages[i].height as u64));
    volumes.dedup_by(|a, b| pages[*a].width == pages[*b].width && pages[*a].height == pages[*b].height);
    let Some(&base) = volumes.first() else {
        return Err(Error::NoImage);
    };
    let levels = volumes
        .iter()
        .map(|&i| Level {
            width: pages[i].width,
            height: pages[i].height,
            downsample: pages[base].width as f64 / pages[i].width as f64,
            tile_width: pages[i].chunk_width,
            tile_height: pages[i].chunk_height,
            is_virtual: false,
            pages: vec![i],
        })
        .collect();
    let associated = (0..pages.len())
        .filter_map(|i| {
            let name = match kinds[i].as_str() {
                "LABEL" => "label",
                "OVERVIEW" => "macro",
                "THUMBNAIL" => "thumbnail",
                _ => return None,
            };
            Some(AssociatedImage { name: name.into(), width: pages[i].width, height: pages[i].height, page: i })
        })
        .collect();
    let mut notes = Vec::new();
    if series_count > 1 {
        notes.push(format!("the files hold {series_count} DICOM series; the one with the largest image is shown"));
    }
    if instances.iter().any(|i| i.focal_planes > 1) {
        notes.push("several focal planes: the first is shown".to_string());
    }
    let pixel_size_um = pages[base].pixel_size_um;
    // On wasm the files are single-threaded Blob sources (not Send); the reader shares every
    // source through `Arc<dyn ByteSource>` on both targets.
    #[allow(clippy::arc_with_non_send_sync)]
    let source: Arc<dyn ByteSource> = Arc::new(concat);
    Ok((
        source,
        Layout {
            big: false,
            little_endian: true,
            format: SlideFormat::Dicom,
            pages,
            levels,
            associated,
            pixel_size_um,
            notice: (!notes.is_empty()).then(|| notes.join("; ")),
        },
    ))
}

//! A slide's structure: every page (IFD) of the main chain and of SubIFDs, read with the `tiff`
//! crate, then sorted into pyramid levels and associated images (label, macro, thumbnail).

use super::source::ByteSource;
use super::sparse::{Blocks, SparseReader};
use super::{Error, Result};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;
use tiff::decoder::{ChunkType, Decoder};
use tiff::tags::{IfdPointer, Tag};

/// Most pages followed in one file (an IFD loop or a hostile chain stops here).
pub const MAX_PAGES: usize = 4096;
/// Largest level side accepted.
pub const MAX_SIDE: u32 = 1 << 20;
/// Largest decoded chunk (tile or strip) accepted, in bytes.
pub const MAX_CHUNK_BYTES: u64 = 64 << 20;

/// What kind of TIFF this is, as far as levels are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SlideFormat {
    /// Aperio SVS (ImageDescription starts with "Aperio").
    Svs,
    /// OME-TIFF (OME-XML in the first ImageDescription).
    OmeTiff,
    /// Three single-channel pages that form one RGB image (the HuBMAP layout).
    HubmapPlanes,
    /// Any other TIFF.
    Tiff,
    /// Philips TIFF export (XML ImageDescription with `DPUfsImport`; sparse tiles at offset 0).
    Philips,
    /// Ventana BIF (XMP with `iScan`).
    VentanaBif,
    /// Leica SCN (XML ImageDescription in the `scn` namespace).
    LeicaScn,
    /// DICOM whole-slide image series (one file per level).
    Dicom,
    /// A PNG image, decoded whole and held as a one-level slide.
    Png,
    /// A JPEG image, decoded whole and held as a one-level slide.
    Jpeg,
}

/// One page (IFD) as the reader needs it.
#[derive(Debug, Clone)]
pub struct Page {
    pub ptr: u64,
    pub width: u32,
    pub height: u32,
    pub chunk_width: u32,
    pub chunk_height: u32,
    pub tiled: bool,
    pub compression: u16,
    pub photometric: u16,
    pub samples: u16,
    pub bits: u16,
    pub planar: bool,
    pub description: String,
    pub offsets: Vec<u64>,
    pub counts: Vec<u64>,
    pub jpeg_tables: Option<Arc<Vec<u8>>>,
    pub pixel_size_um: Option<f64>,
    pub sub_ifds: Vec<u64>,
    /// Hamamatsu's private NDPI tag (65420) is present.
    pub ndpi: bool,
    /// The XMP packet (tag 700) names Ventana's iScan.
    pub iscan: bool,
    /// Uncompressed DICOM frames (`Some(planar)`): samples as stored, no TIFF structure to decode.
    pub raw: Option<bool>,
}

impl Page {
    /// Chunks across and down.
    pub fn grid(&self) -> (u32, u32) {
        (self.width.div_ceil(self.chunk_width), self.height.div_ceil(self.chunk_height))
    }

    /// Name of the compression, for `info`.
    pub fn compression_name(&self) -> String {
        match self.compression {
            1 => "none".into(),
            5 => "LZW".into(),
            6 | 7 => "JPEG".into(),
            8 | 32946 => "Deflate".into(),
            32773 => "PackBits".into(),
            34712 | 33003 | 33005 => "JPEG 2000".into(),
            50000 => "Zstd".into(),
            50001 => "WebP".into(),
            other => format!("compression {other}"),
        }
    }
}

/// A pyramid level: its size, its scale against level 0, and how it is tiled.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Level-0 pixels per pixel of this level (horizontal).
    pub downsample: f64,
    /// Tile (or strip) width.
    pub tile_width: u32,
    /// Tile (or strip) height.
    pub tile_height: u32,
    /// Built by ftuscope from level 0 (a flat slide's overview), not stored in the file.
    #[serde(rename = "virtual")]
    pub is_virtual: bool,
    /// Pages holding it: one, or three single-channel planes (R, G, B).
    #[serde(skip)]
    pub(crate) pages: Vec<usize>,
}

/// A non-pyramid image in the file: label, macro, thumbnail.
#[derive(Debug, Clone, Serialize)]
pub struct AssociatedImage {
    /// "label", "macro", "thumbnail" or "page N".
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    #[serde(skip)]
    pub(crate) page: usize,
}

/// Everything learnt from the file's IFDs.
pub struct Layout {
    pub big: bool,
    pub little_endian: bool,
    pub format: SlideFormat,
    pub pages: Vec<Page>,
    pub levels: Vec<Level>,
    pub associated: Vec<AssociatedImage>,
    pub pixel_size_um: Option<f64>,
    /// What the reader shows differently from the file (e.g. one channel of a fluorescence image).
    pub notice: Option<String>,
}

/// Reads the header and all pages, fetching metadata through `blocks`.
pub async fn read_layout(source: &dyn ByteSource, blocks: &Arc<Blocks>) -> Result<Layout> {
    let head = source.read_range(0..16.min(source.len())).await?;
    let (little_endian, big) = match head.get(..4) {
        Some(b"II*\0") => (true, false),
        Some(b"MM\0*") => (false, false),
        Some(b"II+\0") => (true, true),
        Some(b"MM\0+") => (false, true),
        _ => return Err(Error::NotTiff),
    };
    // The main chain: walk it one IFD at a time (each step may fetch), refusing loops.
    let first = blocks
        .with_fetched(source, |r| {
            let mut d = Decoder::new(r)?;
            Ok(d.ifd_pointer().map(|p| p.0))
        })
        .await?
        .ok_or(Error::NoImage)?;
    let mut pages = Vec::new();
    let mut seen = HashSet::new();
    let mut next = Some(first);
    let mut queue_sub = Vec::new();
    // Pages the `tiff` crate cannot interpret: if no page is left, the first one's reason is the error.
    let mut skipped: Vec<Error> = Vec::new();
    while let Some(ptr) = next {
        if !seen.insert(ptr) {
            return Err(Error::Format(format!("IFD loop at offset {ptr}")));
        }
        if pages.len() >= MAX_PAGES {
            return Err(Error::Limit(format!("more than {MAX_PAGES} pages")));
        }
        let (page, following) = read_page(source, blocks, ptr).await?;
        next = following;
        match page {
            Ok(page) => {
                queue_sub.push(pages.len());
                pages.push(page);
            }
            Err(e) => skipped.push(e),
        }
    }
    // SubIFDs (OME-TIFF pyramids), one level deep.
    let main_count = pages.len();
    for i in queue_sub {
        for &ptr in &pages[i].sub_ifds.clone() {
            if seen.insert(ptr)
                && pages.len() < MAX_PAGES
                && let (Ok(page), _) = read_page(source, blocks, ptr).await?
            {
                pages.push(page);
            }
        }
    }
    if pages.is_empty() {
        return Err(skipped.into_iter().next().unwrap_or(Error::NoImage));
    }
    if pages[0].ndpi {
        return Err(super::vendor::NDPI.error());
    }
    let description = pages[0].description.clone();
    let format = if description.starts_with("Aperio") {
        SlideFormat::Svs
    } else if description.contains("<OME") {
        SlideFormat::OmeTiff
    } else if description.starts_with("<?xml") && description.contains("DPUfsImport") {
        SlideFormat::Philips
    } else if description.contains("leica-microsystems.com/scn") {
        SlideFormat::LeicaScn
    } else if pages[0].iscan {
        SlideFormat::VentanaBif
    } else if planes_at(&pages, 0) {
        SlideFormat::HubmapPlanes
    } else {
        SlideFormat::Tiff
    };
    let channels = if format == SlideFormat::OmeTiff { ome_channels(&description) } else { Channels::Rgb };
    let (levels, associated) = arrange(&pages, main_count, format, channels);
    if levels.is_empty() {
        return Err(Error::NoImage);
    }
    let base = &pages[levels[0].pages[0]];
    let pixel_size_um =
        svs_mpp(&description).or_else(|| ome_pixel_size(&description)).or_else(|| philips_pixel_size(&description)).or(base.pixel_size_um);
    let notice = match (channels, format) {
        (Channels::Many { count, fluorescence, bits }, _) if levels[0].pages.len() == 1 => Some(format!(
            "{} image with {count} channels ({bits}-bit): showing channel 1 of {count} in grey; the model expects brightfield RGB (PAS, H&E)",
            if fluorescence { "a fluorescence" } else { "a multi-channel" }
        )),
        (_, SlideFormat::VentanaBif) => {
            Some("Ventana BIF: the scanner's tile overlaps are not applied, so tile seams may be off by a few pixels".into())
        }
        (_, SlideFormat::LeicaScn) => {
            Some("Leica SCN: the largest image and its reductions are shown; other images in the file are listed as associated".into())
        }
        _ => None,
    };
    Ok(Layout { big, little_endian, format, pages, levels, associated, pixel_size_um, notice })
}

/// How an OME-TIFF stores colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channels {
    /// RGB samples in each page (or not OME).
    Rgb,
    /// Three 8-bit brightfield channels, one page (and one SubIFD pyramid) each.
    RgbPages,
    /// Other channel layouts: fluorescence, more than three channels, deeper samples.
    Many { count: u32, fluorescence: bool, bits: u32 },
}

/// Reads the first `<Pixels>` element of OME-XML: SizeC, Type and each Channel's SamplesPerPixel
/// and fluorescence attributes.
fn ome_channels(xml: &str) -> Channels {
    let Some(start) = xml.find("<Pixels ") else { return Channels::Rgb };
    let end = xml[start..].find("</Pixels>").map_or(xml.len(), |e| start + e);
    let pixels = &xml[start..end];
    let head = &pixels[..pixels.find('>').unwrap_or(pixels.len())];
    let count: u32 = xml_attr(head, "SizeC").and_then(|v| v.parse().ok()).unwrap_or(1);
    let bits = match xml_attr(head, "Type") {
        Some("uint8" | "int8") | None => 8,
        Some("uint16" | "int16") => 16,
        Some(_) => 32,
    };
    let first_channel = pixels.find("<Channel").map(|c| &pixels[c..]);
    let samples: u32 = first_channel
        .and_then(|c| xml_attr(&c[..c.find('>').unwrap_or(c.len())], "SamplesPerPixel"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let fluorescence = ["EmissionWavelength", "ExcitationWavelength", "Fluor=", "\"Epifluorescence\"", "\"Fluorescence\""]
        .iter()
        .any(|k| pixels.contains(k));
    match (count, samples) {
        (1, _) | (_, 3..) => Channels::Rgb,
        (3, _) if bits == 8 && !fluorescence => Channels::RgbPages,
        _ => Channels::Many { count, fluorescence, bits },
    }
}

/// Philips: the first `DICOM_PIXEL_SPACING` attribute (the base level's), in mm.
fn philips_pixel_size(description: &str) -> Option<f64> {
    if !description.contains("DPUfsImport") {
        return None;
    }
    let at = description.find("\"DICOM_PIXEL_SPACING\"")?;
    let rest = &description[at..];
    let value = &rest[rest.find('>')? + 1..];
    let value = value.trim_start_matches(|c: char| c == '"' || c == ' ' || c == '&' || c.is_ascii_alphabetic() || c == ';');
    let number: String = value.chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == 'e' || *c == '-').collect();
    let mm: f64 = number.parse().ok()?;
    Some(mm * 1000.0).filter(|v| *v > 0.0 && *v <= 100.0)
}

/// One page's facts and the next IFD in its chain. A page the `tiff` crate cannot interpret (an
/// exotic label, say) is skipped rather than failing the slide; a broken chain is an error.
async fn read_page(source: &dyn ByteSource, blocks: &Arc<Blocks>, ptr: u64) -> Result<(Result<Page>, Option<u64>)> {
    let next = blocks
        .with_fetched(source, |r| {
            let mut d = Decoder::new(r)?;
            Ok(d.read_directory(IfdPointer(ptr))?.next().map(|p| p.0))
        })
        .await?;
    let page = blocks.with_fetched(source, |r| page_facts(r, ptr)).await;
    match page {
        Ok(page) if page.width > MAX_SIDE || page.height > MAX_SIDE => {
            Err(Error::Limit(format!("a {}×{} page (the limit is {MAX_SIDE} px a side)", page.width, page.height)))
        }
        Ok(page) => Ok((Ok(page), next)),
        Err(Error::Truncated { start, end, len }) => Err(Error::Truncated { start, end, len }),
        Err(Error::Limit(why)) => Err(Error::Limit(why)),
        Err(other) => Ok((Err(other), next)),
    }
}

fn page_facts(r: SparseReader, ptr: u64) -> std::result::Result<Page, tiff::TiffError> {
    let mut d = Decoder::new(r)?.with_limits(decoder_limits());
    d.seek_to_directory(IfdPointer(ptr))?;
    let (width, height) = d.dimensions()?;
    let tiled = d.get_chunk_type() == ChunkType::Tile;
    let (chunk_width, chunk_height) = d.chunk_dimensions();
    let unsigned = |d: &mut Decoder<SparseReader>, tag: Tag, default: u64| -> std::result::Result<u64, tiff::TiffError> {
        Ok(d.find_tag_unsigned::<u64>(tag)?.unwrap_or(default))
    };
    let compression = unsigned(&mut d, Tag::Compression, 1)? as u16;
    let photometric = unsigned(&mut d, Tag::PhotometricInterpretation, 1)? as u16;
    let samples = unsigned(&mut d, Tag::SamplesPerPixel, 1)? as u16;
    let bits = d.find_tag_unsigned_vec::<u16>(Tag::BitsPerSample)?.and_then(|v| v.first().copied()).unwrap_or(1);
    let planar = unsigned(&mut d, Tag::PlanarConfiguration, 1)? == 2;
    let description = match d.find_tag(Tag::ImageDescription)? {
        Some(v) => v.into_string().unwrap_or_default(),
        None => String::new(),
    };
    let (offsets_tag, counts_tag) = if tiled { (Tag::TileOffsets, Tag::TileByteCounts) } else { (Tag::StripOffsets, Tag::StripByteCounts) };
    let offsets = d.find_tag_unsigned_vec::<u64>(offsets_tag)?.unwrap_or_default();
    let counts = d.find_tag_unsigned_vec::<u64>(counts_tag)?.unwrap_or_default();
    let jpeg_tables = match d.find_tag(Tag::JPEGTables)? {
        Some(v) => Some(Arc::new(v.into_u8_vec()?)),
        None => None,
    };
    let pixel_size_um = resolution_um(&mut d)?;
    let sub_ifds = match d.find_tag(Tag::SubIfd)? {
        Some(v) => v.into_u64_vec().unwrap_or_default(),
        None => Vec::new(),
    };
    let ndpi = d.find_tag(Tag::Unknown(65420))?.is_some();
    let iscan = match d.find_tag(Tag::Unknown(700))? {
        Some(v) => v.into_u8_vec().map(|x| x.windows(5).any(|w| w == b"iScan")).unwrap_or(false),
        None => false,
    };
    Ok(Page {
        ptr,
        width,
        height,
        chunk_width,
        chunk_height,
        tiled,
        compression,
        photometric,
        samples,
        bits,
        planar,
        description,
        offsets,
        counts,
        jpeg_tables,
        pixel_size_um,
        sub_ifds,
        ndpi,
        iscan,
        raw: None,
    })
}

/// Limits handed to the `tiff` crate: tag arrays and chunks of bounded size.
pub fn decoder_limits() -> tiff::decoder::Limits {
    let mut limits = tiff::decoder::Limits::default();
    limits.decoding_buffer_size = MAX_CHUNK_BYTES as usize;
    limits.intermediate_buffer_size = MAX_CHUNK_BYTES as usize;
    limits.ifd_value_size = 64 << 20;
    limits
}

/// µm per pixel from XResolution + ResolutionUnit, when plausible for a microscope (0.01–100 µm).
fn resolution_um(d: &mut Decoder<SparseReader>) -> std::result::Result<Option<f64>, tiff::TiffError> {
    let Some(x) = d.find_tag(Tag::XResolution)? else { return Ok(None) };
    let Ok([n, den]) = <[u32; 2]>::try_from(x.into_u32_vec().unwrap_or_default()) else { return Ok(None) };
    if n == 0 || den == 0 {
        return Ok(None);
    }
    let per_unit = n as f64 / den as f64;
    let unit_um = match d.find_tag_unsigned::<u16>(Tag::ResolutionUnit)?.unwrap_or(2) {
        2 => 25_400.0,
        3 => 10_000.0,
        _ => return Ok(None),
    };
    let um = unit_um / per_unit;
    Ok((0.01..=100.0).contains(&um).then_some(um))
}

/// Aperio: `... |MPP = 0.4990|...`.
fn svs_mpp(description: &str) -> Option<f64> {
    let at = description.find("MPP = ")? + "MPP = ".len();
    let value: String = description[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    value.parse().ok().filter(|v: &f64| *v > 0.0 && *v <= 100.0)
}

/// OME-XML: `PhysicalSizeX="0.25"` with an optional `PhysicalSizeXUnit` (µm by default).
fn ome_pixel_size(description: &str) -> Option<f64> {
    if !description.contains("<OME") {
        return None;
    }
    let value: f64 = xml_attr(description, "PhysicalSizeX")?.parse().ok()?;
    let scale = match xml_attr(description, "PhysicalSizeXUnit") {
        None | Some("µm") | Some("um") | Some("\u{3bc}m") => 1.0,
        Some("nm") => 1e-3,
        Some("mm") => 1e3,
        Some(_) => return None,
    };
    Some(value * scale).filter(|v| *v > 0.0 && *v <= 100.0)
}

/// The first `NAME="…"` attribute value in `text` that follows whitespace (so `SizeX` does not
/// match inside `PhysicalSizeX`).
fn xml_attr<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let (at, _) = text.match_indices(&key).find(|(i, _)| text[..*i].ends_with(char::is_whitespace))?;
    let value = &text[at + key.len()..];
    Some(&value[..value.find('"')?])
}

/// Whether pages `i`, `i+1`, `i+2` are single-channel planes of one image.
fn planes_at(pages: &[Page], i: usize) -> bool {
    let Some(three) = pages.get(i..i + 3) else { return false };
    three.iter().all(|p| p.samples == 1 && p.width == three[0].width && p.height == three[0].height)
}

/// Sorts pages into levels (largest first) and associated images.
fn arrange(pages: &[Page], main_count: usize, format: SlideFormat, channels: Channels) -> (Vec<Level>, Vec<AssociatedImage>) {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut i = 0;
    while i < main_count {
        let rgb_pages = channels == Channels::RgbPages && i == 0;
        if (format == SlideFormat::HubmapPlanes || rgb_pages) && planes_at(pages, i) {
            groups.push(vec![i, i + 1, i + 2]);
            i += 3;
        } else {
            groups.push(vec![i]);
            i += 1;
        }
    }
    let base = groups.iter().copied_max_by_area(pages);
    let Some(base) = base else { return (Vec::new(), Vec::new()) };
    let b = &pages[base[0]];
    let level = |group: &[usize]| {
        let p = &pages[group[0]];
        Level {
            width: p.width,
            height: p.height,
            downsample: b.width as f64 / p.width as f64,
            tile_width: p.chunk_width,
            tile_height: p.chunk_height,
            is_virtual: false,
            pages: group.to_vec(),
        }
    };
    let mut levels = vec![level(&base)];
    let mut associated = Vec::new();
    // SubIFDs of the base page(s) are its pyramid (OME-TIFF): level k is the k-th SubIFD of each
    // of the base's pages (one page, or one per channel).
    let subs: Vec<Vec<usize>> = base
        .iter()
        .map(|&p| pages[p].sub_ifds.iter().filter_map(|ptr| (main_count..pages.len()).find(|&j| pages[j].ptr == *ptr)).collect())
        .collect();
    for k in 0..subs.iter().map(Vec::len).min().unwrap_or(0) {
        let group: Vec<usize> = subs.iter().map(|s| s[k]).collect();
        if group.iter().all(|&j| pages[j].samples == pages[group[0]].samples) {
            levels.push(level(&group));
        }
    }
    let multichannel = matches!(channels, Channels::Many { .. });
    for group in &groups {
        if *group == base {
            continue;
        }
        let p = &pages[group[0]];
        // The other channels (or planes) of a multi-channel image are not associated images.
        if multichannel && p.width == b.width && p.height == b.height && p.samples == b.samples {
            continue;
        }
        let same_aspect = ((b.width as f64 / p.width as f64) / (b.height as f64 / p.height as f64) - 1.0).abs() < 0.02;
        let smaller = p.width < b.width && p.height < b.height;
        // A stripped page after a tiled base is a thumbnail (SVS), not a level.
        let tiled_like_base = p.tiled == b.tiled;
        let named = named_associated(&p.description);
        if same_aspect && smaller && tiled_like_base && named.is_none() {
            levels.push(level(group));
        } else {
            let name = named.unwrap_or_else(|| {
                if format == SlideFormat::Svs && group[0] == 1 { "thumbnail".into() } else { format!("page {}", group[0]) }
            });
            associated.push(AssociatedImage { name, width: p.width, height: p.height, page: group[0] });
        }
    }
    levels.sort_by_key(|l| std::cmp::Reverse(l.width));
    levels.dedup_by(|a, b| a.width == b.width && a.height == b.height);
    (levels, associated)
}

/// "label" / "macro" / … from a description line that starts with it (SVS: the second line).
fn named_associated(description: &str) -> Option<String> {
    description.lines().take(3).find_map(|line| {
        let line = line.trim_start().to_ascii_lowercase();
        ["label", "macro", "thumbnail", "overview"].into_iter().find(|n| line.starts_with(n)).map(str::to_string)
    })
}

trait MaxByArea {
    fn copied_max_by_area(self, pages: &[Page]) -> Option<Vec<usize>>;
}

impl<'a, I: Iterator<Item = &'a Vec<usize>>> MaxByArea for I {
    /// The group with the largest page; the first one on ties.
    fn copied_max_by_area(self, pages: &[Page]) -> Option<Vec<usize>> {
        let mut best: Option<(u64, Vec<usize>)> = None;
        for g in self {
            let p = &pages[g[0]];
            let area = p.width as u64 * p.height as u64;
            if best.as_ref().is_none_or(|(a, _)| area > *a) {
                best = Some((area, g.clone()));
            }
        }
        best.map(|(_, g)| g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_sizes_come_from_svs_and_ome_descriptions() {
        assert_eq!(
            svs_mpp("Aperio Image Library v10.0.50\n2220x2967 [0,100 2220x2967] (240x240) JPEG/RGB Q=70|AppMag = 20|MPP = 0.4990|X"),
            Some(0.499)
        );
        assert_eq!(ome_pixel_size(r#"<OME><Image><Pixels PhysicalSizeX="250" PhysicalSizeXUnit="nm"/></Image></OME>"#), Some(0.25));
        assert_eq!(ome_pixel_size(r#"<OME><Pixels PhysicalSizeX="0.5"/></OME>"#), Some(0.5));
        assert_eq!(ome_pixel_size("no xml"), None);
        assert_eq!(xml_attr("<Pixels\n\tPhysicalSizeX=\"2\" SizeX=\"7\"", "SizeX"), Some("7"));
        let philips = r#"<?xml version="1.0" encoding="UTF-8" ?><DataObject ObjectType="DPUfsImport"><Attribute Name="DICOM_PIXEL_SPACING" Group="0x0028" Element="0x0030" PMSVR="IDoubleArray">&quot;0.000226891&quot; &quot;0.000226907&quot;</Attribute></DataObject>"#;
        assert!((philips_pixel_size(philips).unwrap() - 0.226891).abs() < 1e-9);
        assert_eq!(philips_pixel_size("<?xml?><DataObject/>"), None);
    }

    #[test]
    fn ome_channel_layouts_are_told_apart() {
        let pixels =
            |attrs: &str, channels: &str| format!(r#"<OME><Image><Pixels ID="Pixels:0" {attrs}>{channels}</Pixels></Image></OME>"#);
        let rgb3 = r#"<Channel ID="C:0" SamplesPerPixel="1" Name="R"/><Channel ID="C:1" SamplesPerPixel="1"/><Channel ID="C:2" SamplesPerPixel="1"/>"#;
        assert_eq!(ome_channels(&pixels(r#"SizeC="3" Type="uint8""#, rgb3)), Channels::RgbPages);
        assert_eq!(ome_channels(&pixels(r#"SizeC="3" Type="uint8""#, r#"<Channel ID="C:0" SamplesPerPixel="3"/>"#)), Channels::Rgb);
        assert_eq!(ome_channels(&pixels(r#"SizeC="1" Type="uint8""#, "")), Channels::Rgb);
        assert_eq!(ome_channels(&pixels(r#"SizeC="3" Type="uint16""#, rgb3)), Channels::Many { count: 3, fluorescence: false, bits: 16 });
        let fluo = r#"<Channel ID="C:0" SamplesPerPixel="1" EmissionWavelength="461"/>"#;
        assert_eq!(ome_channels(&pixels(r#"SizeC="3" Type="uint8""#, fluo)), Channels::Many { count: 3, fluorescence: true, bits: 8 });
        assert_eq!(ome_channels(&pixels(r#"SizeC="5" Type="uint16""#, "")), Channels::Many { count: 5, fluorescence: false, bits: 16 });
    }
}

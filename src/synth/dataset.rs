//! Writing synthetic slides in the Kaggle HuBMAP layout: `train/<id>.tiff`, `train.csv`
//! (`id,encoding`), `train/<id>.json`, `train/<id>-anatomical-structure.json` and
//! `HuBMAP-20-dataset_information.csv`.

use super::{Scene, SynthConfig};
use crate::mask::{rle_encode_polygons, write_annotations};
use crate::rng::mix;
use crate::slide::{PageSpec, TiffWriter, TileCompression};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// How a synthetic data set is written.
#[derive(Debug, Clone)]
pub struct DatasetOptions {
    /// Number of slides.
    pub count: u32,
    /// Slide width and height in pixels.
    pub size: (u32, u32),
    /// Base seed; slide `i` uses a seed derived from it.
    pub seed: u64,
    /// Tile side in pixels.
    pub tile: u32,
    /// Tile compression.
    pub compression: TileCompression,
    /// Add reduced-resolution pages (÷2, ÷4, … down to one tile).
    pub pyramid: bool,
    /// Write BigTIFF.
    pub bigtiff: bool,
    /// Write level 0 as three single-channel pages (R, G, B), as some HuBMAP files were.
    pub hubmap_planes: bool,
    /// Fraction of glomeruli left unannotated.
    pub unannotated_fraction: f64,
    /// Tissue piece size relative to the default ([`super::SynthConfig::tissue_scale`]).
    pub tissue_scale: f64,
}

impl Default for DatasetOptions {
    /// What `ftuscope synth` writes without options: one flat 6000×4000 JPEG (q90) TIFF, 512 px
    /// tiles, seed 1, every glomerulus annotated.
    fn default() -> Self {
        Self {
            count: 1,
            size: (6000, 4000),
            seed: 1,
            tile: 512,
            compression: TileCompression::Jpeg(90),
            pyramid: false,
            bigtiff: false,
            hubmap_planes: false,
            unannotated_fraction: 0.0,
            tissue_scale: 1.0,
        }
    }
}

/// What was written for one slide.
#[derive(Debug, Clone)]
pub struct SlideSummary {
    /// The Kaggle-style id (nine hex digits).
    pub id: String,
    /// Glomeruli drawn.
    pub glomeruli: usize,
    /// Glomeruli annotated.
    pub annotated: usize,
}

/// Writes the data set into `dir`, calling `progress(slide, of)` after each slide.
pub fn write_dataset(dir: &Path, options: &DatasetOptions, mut progress: impl FnMut(u32, u32)) -> io::Result<Vec<SlideSummary>> {
    fs::create_dir_all(dir.join("train"))?;
    let mut csv = BufWriter::new(File::create(dir.join("train.csv"))?);
    writeln!(csv, "id,encoding")?;
    let mut info = BufWriter::new(File::create(dir.join("HuBMAP-20-dataset_information.csv"))?);
    writeln!(
        info,
        "image_file,width_pixels,height_pixels,anatomical_structures_segmention_file,glomerulus_segmentation_file,glomeruli,annotated_glomeruli,seed"
    )?;
    let mut summaries = Vec::new();
    for i in 0..options.count {
        let seed = mix(options.seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
        let id = format!("{:09x}", seed & 0xF_FFFF_FFFF);
        let (w, h) = options.size;
        let config = SynthConfig::new(w, h)
            .with_seed(seed)
            .with_unannotated_fraction(options.unannotated_fraction)
            .with_tissue_scale(options.tissue_scale);
        let scene = Scene::new(&config);
        write_slide(&dir.join("train").join(format!("{id}.tiff")), &scene, options)?;
        let glomeruli = scene.glomerulus_annotations();
        let polygons: Vec<_> = glomeruli.iter().flat_map(|a| a.polygons.clone()).collect();
        writeln!(csv, "{id},{}", rle_encode_polygons(&polygons, w, h))?;
        fs::write(dir.join("train").join(format!("{id}.json")), write_annotations(&glomeruli, false))?;
        fs::write(
            dir.join("train").join(format!("{id}-anatomical-structure.json")),
            write_annotations(&scene.anatomy_annotations(), false),
        )?;
        writeln!(
            info,
            "{id}.tiff,{w},{h},{id}-anatomical-structure.json,{id}.json,{},{},{seed}",
            scene.glomeruli().len(),
            glomeruli.len()
        )?;
        summaries.push(SlideSummary { id, glomeruli: scene.glomeruli().len(), annotated: glomeruli.len() });
        progress(i + 1, options.count);
    }
    csv.flush()?;
    info.flush()?;
    Ok(summaries)
}

fn write_slide(path: &Path, scene: &Scene, options: &DatasetOptions) -> io::Result<()> {
    let partial = path.with_extension("tiff.partial");
    let mut writer = TiffWriter::new(BufWriter::new(File::create(&partial)?), options.bigtiff)?;
    let t = options.tile;
    let description = format!("ftuscope synthetic kidney slide (not real tissue); 0.5 um/px; seed {}", scene.seed);
    let mut page = |level: u32, channel: Option<usize>, reduced: bool| -> io::Result<()> {
        let downsample = 1u32 << level;
        let (w, h) = (scene.width().div_ceil(downsample), scene.height().div_ceil(downsample));
        let spec = PageSpec {
            width: w,
            height: h,
            tile: t,
            compression: options.compression,
            reduced,
            channel,
            description: (level == 0 && channel.is_none_or(|c| c == 0)).then(|| description.clone()),
            pixel_size_um: Some(super::PIXEL_SIZE_UM * f64::from(downsample)),
        };
        writer.write_page(&spec, |c, r| {
            let (x, y) = (c * t, r * t);
            scene.render_scaled(x, y, t.min(w - x), t.min(h - y), downsample)
        })
    };
    if options.hubmap_planes {
        for channel in 0..3 {
            page(0, Some(channel), false)?;
        }
    } else {
        page(0, None, false)?;
    }
    if options.pyramid {
        let mut level = 1;
        while scene.width().max(scene.height()) >> (level - 1) > t {
            page(level, None, true)?;
            level += 1;
        }
    }
    writer.finish()?.flush()?;
    fs::rename(partial, path)
}

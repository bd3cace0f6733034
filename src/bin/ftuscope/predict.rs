//! `ftuscope predict` (whole slides → Kaggle CSV, GeoJSON, per-object stats, overview) and
//! `ftuscope eval` (the competition's Dice from two CSVs).

use crate::args::Shard;
use anyhow::{Context, anyhow};
use burn::module::Module;
use ftuscope::backend::{DeviceChoice, select_device};
use ftuscope::infer::{Blend, NetModel, Prediction, WsiConfig, predict_slide};
use ftuscope::mask::{dice_rle, overlay, write_annotations};
use ftuscope::model::{Manifest, SegmentationModel, SegmenterConfig, UNTRAINED_SEED, folder, seeded};
use ftuscope::slide::{Slide, SlideOptions};
use futures_lite::future::block_on;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// Options of `ftuscope predict`.
pub struct PredictArgs {
    pub slides: Vec<String>,
    pub model: String,
    pub out: PathBuf,
    pub device: DeviceChoice,
    pub batch: usize,
    pub tta: Option<u8>,
    pub shard: Shard,
    pub threshold: Option<f32>,
    pub min_area: Option<f64>,
    pub max_area: Option<f64>,
    pub blend: Blend,
    pub window: Option<u32>,
    pub overlap: Option<u32>,
    pub pixel_size: Option<f64>,
    pub stain_reference: Option<String>,
    /// Batches in flight (0: [`window_threads`]).
    pub threads: usize,
}

/// A slide's id: its file name without the TIFF/SVS/PNG/JPEG extensions (Kaggle's `id`).
fn slide_id(path_or_url: &str) -> String {
    let name = path_or_url.rsplit(['/', '\\']).next().unwrap_or(path_or_url);
    let name = name.split(['?', '#']).next().unwrap_or(name);
    let lower = name.to_ascii_lowercase();
    for ext in [".ome.tiff", ".ome.tif", ".tiff", ".tif", ".svs", ".png", ".jpeg", ".jpg"] {
        if lower.ends_with(ext) {
            return name[..name.len() - ext.len()].to_string();
        }
    }
    name.to_string()
}

pub fn predict(args: PredictArgs) -> anyhow::Result<()> {
    let shard = args.shard;
    let (device, info) = select_device(args.device)?;
    let (net, mut manifest) = load_model(&args.model, &device, args.tta)?;
    if let Some(spec) = &args.stain_reference {
        manifest.stain_reference = stain_reference(spec, &manifest)?;
    }
    let label = match args.model.strip_prefix("untrained:") {
        Some(arch) => format!("{arch} with UNTRAINED seeded weights (pipeline check, not a detector)"),
        None => format!("{} '{}' from {} (trained on {})", manifest.model.arch(), manifest.name, args.model, manifest.trained_on),
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let mine = shard.select(&args.slides);
    eprintln!("model: {label}; device: {} [{}]; shard {shard}: {} of {} slides", info.backend, info.adapter, mine.len(), args.slides.len());
    let csv_name = if shard.count > 1 { format!("submission-{}-of-{}.csv", shard.index, shard.count) } else { "submission.csv".into() };
    let mut rows = Vec::new();
    let mut failed = 0;
    for slide_path in &mine {
        let id = slide_id(slide_path);
        match predict_one(slide_path, &id, &net, &manifest, &args) {
            Ok(rle) => rows.push((id, rle)),
            Err(e) => {
                failed += 1;
                eprintln!("error: {id}: {e:#}");
            }
        }
    }
    let csv_path = args.out.join(&csv_name);
    let tmp = csv_path.with_extension("csv.partial");
    let mut csv = std::io::BufWriter::new(std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?);
    writeln!(csv, "id,predicted")?;
    for (id, rle) in &rows {
        writeln!(csv, "{id},{rle}")?;
    }
    csv.flush()?;
    drop(csv);
    std::fs::rename(&tmp, &csv_path)?;
    println!("{} slides → {}", rows.len(), csv_path.display());
    if failed > 0 {
        return Err(anyhow!("{failed} of {} slides failed (the others are written)", mine.len()));
    }
    Ok(())
}

fn predict_one(slide_path: &str, id: &str, net: &NetModel, manifest: &Manifest, args: &PredictArgs) -> anyhow::Result<String> {
    let slide = block_on(Slide::open_location(slide_path, SlideOptions::one_pass().with_pixel_size_um(args.pixel_size)))?;
    let wsi = &wsi_config(manifest, &slide, args.window, args.overlap)
        .with_batch(args.batch)
        .with_threads(if args.threads > 0 { args.threads } else { window_threads(args.device) })
        .with_blend(args.blend)
        .with_threshold(args.threshold.unwrap_or(manifest.threshold));
    let mut wsi = wsi.clone();
    if let Some(area) = args.min_area {
        wsi.min_area = area;
    }
    if args.max_area.is_some() {
        wsi.max_area = args.max_area;
    }
    let wsi = &wsi;
    let out = args.out.as_path();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} windows {msg} ETA {eta}")
            .map_err(|e| anyhow!(e))?
            .progress_chars("=> "),
    );
    bar.set_prefix(id.to_string());
    let prediction = block_on(predict_slide(&slide, net, wsi, &AtomicBool::new(false), &mut |p, _| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        bar.set_message(format!("{:.2}/s", p.windows_per_s));
    }))?;
    bar.finish_and_clear();
    let glomeruli = prediction.glomeruli(wsi.objects());
    let annotations = Prediction::annotations(&glomeruli);
    std::fs::write(out.join(format!("{id}.geojson")), write_annotations(&annotations, true))?;
    let stats = serde_json::json!({
        "id": id,
        "width": prediction.width,
        "height": prediction.height,
        "pixel_size_um": prediction.pixel_size_um,
        "windows": prediction.plan.windows.len(),
        "tissue_fraction": prediction.plan.tissue_fraction,
        "count": glomeruli.len(),
        "glomeruli": glomeruli,
        "timings_s": prediction.timings,
    });
    std::fs::write(out.join(format!("{id}.glomeruli.json")), serde_json::to_string_pretty(&stats)?)?;
    prediction.overview(2048).save(out.join(format!("{id}.mask.png")))?;
    let rle = prediction.rle(wsi.objects());
    println!(
        "{id}: {} glomeruli, {} windows in {:.1} s (read {:.1}, resize {:.1}, model {:.1}, blend {:.1})",
        glomeruli.len(),
        prediction.plan.windows.len(),
        prediction.timings.total_s,
        prediction.timings.read_s,
        prediction.timings.resize_s,
        prediction.timings.model_s,
        prediction.timings.blend_s
    );
    Ok(rle)
}

/// Options of `ftuscope segment`.
pub struct SegmentArgs {
    pub image: PathBuf,
    pub model: String,
    pub out: PathBuf,
    pub overlay: Option<PathBuf>,
    pub device: DeviceChoice,
    pub batch: usize,
    pub tta: Option<u8>,
    pub threshold: Option<f32>,
    pub pixel_size: Option<f64>,
}

/// `ftuscope segment`: one image (PNG, JPEG, or a TIFF small enough to hold whole) through the
/// whole-slide engine.
pub fn segment(args: SegmentArgs) -> anyhow::Result<()> {
    let path = args.image.display().to_string();
    if !args.image.is_file() {
        return Err(anyhow!("cannot read image: no such file: {path}"));
    }
    let slide = block_on(Slide::open_location(&path, SlideOptions::one_pass().with_pixel_size_um(args.pixel_size)))?;
    let (width, height) = slide.dimensions();
    let image = block_on(slide.read_region(0, 0, 0, width, height))?;
    let (device, info) = select_device(args.device)?;
    let (net, manifest) = load_model(&args.model, &device, args.tta)?;
    let threshold = args.threshold.unwrap_or(manifest.threshold);
    let wsi = wsi_config(&manifest, &slide, None, None)
        .with_batch(args.batch)
        .with_threads(window_threads(args.device))
        .with_threshold(threshold);
    let started = std::time::Instant::now();
    let prediction = block_on(predict_slide(&slide, &net, &wsi, &AtomicBool::new(false), &mut |_, _| {}))?;
    let glomeruli = prediction.glomeruli(wsi.objects());
    let probabilities = prediction.probability_image(image.width(), image.height());
    let seconds = started.elapsed().as_secs_f64();
    crate::output::save_png(&args.out, |p| probabilities.save_with_format(p, image::ImageFormat::Png))?;
    if let Some(path) = &args.overlay {
        let tinted = overlay(&image, &probabilities, threshold, 0.45);
        crate::output::save_png(path, |p| tinted.save_with_format(p, image::ImageFormat::Png))?;
    }
    println!(
        "segmented {path} ({}×{}) with {} '{}' on {} [{}] in {seconds:.2} s: {} glomeruli (p ≥ {threshold}, {} windows) → {}",
        image.width(),
        image.height(),
        manifest.model.arch(),
        manifest.name,
        info.backend,
        info.adapter,
        glomeruli.len(),
        prediction.plan.windows.len(),
        args.out.display()
    );
    Ok(())
}

/// `ftuscope bench infer`: one slide through the engine, outputs computed but not written.
pub fn bench_infer(slide_path: &str, model: &str, device: DeviceChoice, batch: usize, threads: &[usize]) -> anyhow::Result<()> {
    let (device, _) = select_device(device)?;
    let (net, manifest) = load_model(model, &device, Some(1))?;
    let config = &manifest.model;
    let slide = block_on(Slide::open_location(slide_path, SlideOptions::one_pass()))?;
    let mut runs = Vec::new();
    let mut first_rate = None;
    for &n in if threads.is_empty() { &[1][..] } else { threads } {
        let wsi = wsi_config(&manifest, &slide, None, None).with_batch(batch).with_threads(n.max(1));
        let prediction = block_on(predict_slide(&slide, &net, &wsi, &AtomicBool::new(false), &mut |_, _| {}))?;
        let started = std::time::Instant::now();
        let count = prediction.glomeruli(wsi.objects()).len();
        let rle = prediction.rle(wsi.objects());
        let post_s = started.elapsed().as_secs_f64();
        let rate = prediction.plan.windows.len() as f64 / prediction.timings.total_s.max(1e-9);
        let base = *first_rate.get_or_insert(rate);
        runs.push(serde_json::json!({
            "threads": n.max(1),
            "size": [prediction.width, prediction.height],
            "tissue_fraction": prediction.plan.tissue_fraction,
            "windows": prediction.plan.windows.len(),
            "grid_windows": prediction.plan.grid.0 * prediction.plan.grid.1,
            "glomeruli": count,
            "rle_bytes": rle.len(),
            "timings_s": prediction.timings,
            "post_s": post_s,
            "windows_per_s": rate,
            "speed_up": rate / base,
        }));
    }
    let report = serde_json::json!({
        "slide": slide_path,
        "model": config.arch(),
        "batch": batch,
        "cores": rayon::current_num_threads(),
        "runs": runs,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Batches in flight by default: on the CPU one per core, at most 4 (each holds a batch's
/// activations: ~110 MiB more peak RSS per batch of 4 windows of the accurate model, 256² input).
/// `ftuscope bench infer` measured 1.32–1.38× with 2 on 2 cores (more than the cores: no better).
/// On a GPU, one: the device is one queue.
pub fn window_threads(device: DeviceChoice) -> usize {
    match device {
        DeviceChoice::Cpu => rayon::current_num_threads().clamp(1, 4),
        _ => 1,
    }
}

/// The whole-slide settings a model's manifest asks for on `slide` (at its pixel size, or the
/// model's assumed one, said on stderr), with optional overrides.
pub fn wsi_config(manifest: &Manifest, slide: &Slide, window: Option<u32>, overlap: Option<u32>) -> WsiConfig {
    if let (None, Some(assumed)) = (slide.pixel_size_um(), manifest.assumed_pixel_size_um()) {
        eprintln!(
            "{}: pixel size unknown — assuming {assumed} µm/px (the model's training data); give --pixel-size if it differs",
            slide.name()
        );
    }
    let mut wsi = WsiConfig::for_model(manifest, slide.pixel_size_um());
    if let Some(window) = window {
        wsi.plan.window = window;
        wsi.plan.overlap = Manifest::overlap_for(window);
    }
    if let Some(overlap) = overlap {
        wsi.plan.overlap = overlap;
    }
    wsi
}

/// `--stain-reference`: `none`, or `DIR[,pixel-size=UM]`: the colours of the tissue in DIR's
/// images, measured as a segmentation measures a slide's ([`ftuscope::infer::slide_colours`]).
pub fn stain_reference(spec: &str, manifest: &Manifest) -> anyhow::Result<Option<ftuscope::model::LabStats>> {
    use ftuscope::infer::{LabAccumulator, slide_colours};
    if spec.trim() == "none" {
        return Ok(None);
    }
    // The `--data` syntax: LOCATION[,pixel-size=UM].
    let reference = ftuscope::mask::DatasetConfig::parse(spec).map_err(|e| anyhow!("--stain-reference {e}"))?;
    let dir = reference.location.as_str();
    let mut acc = LabAccumulator::default();
    for (_, path) in ftuscope::mask::list_images(std::path::Path::new(dir))? {
        let options = SlideOptions::one_pass().with_pixel_size_um(reference.pixel_size_um);
        let slide = block_on(Slide::open_location(&path.display().to_string(), options))?;
        block_on(slide_colours(&slide, &WsiConfig::for_model(manifest, slide.pixel_size_um()), &mut acc))?;
    }
    let stats = acc.stats().ok_or_else(|| anyhow!("--stain-reference {dir}: too little tissue in its images to measure colours"))?;
    eprintln!("stain reference from {dir}: L*a*b* mean {:.1?}, sd {:.1?} ({} tissue pixels)", stats.mean, stats.std, acc.count());
    Ok(Some(stats))
}

/// A model folder, or `untrained:ARCH` (seeded weights with the seed's defaults), on `device`;
/// `tta` overrides the manifest's.
pub fn load_model(model: &str, device: &burn::prelude::Device, tta: Option<u8>) -> anyhow::Result<(NetModel, Manifest)> {
    let (net, manifest) = load_network(model, device)?;
    let net = NetModel::new(net, &manifest, device, tta)?;
    Ok((net, manifest))
}

/// The network of a model folder, or of `untrained:ARCH` (seeded weights), on `device`.
fn load_network(model: &str, device: &burn::prelude::Device) -> anyhow::Result<(SegmentationModel, Manifest)> {
    Ok(match model.strip_prefix("untrained:") {
        Some(arch) => {
            let manifest = Manifest::new("untrained", SegmenterConfig::from_arch(arch).map_err(|e| anyhow!(e))?);
            (seeded(manifest.model.init(&burn::prelude::Device::flex()), UNTRAINED_SEED).to_device(device), manifest)
        }
        None => folder::load(Path::new(model), device)?,
    })
}

/// Options of `ftuscope bench forward`.
pub struct ForwardBench {
    pub model: String,
    pub weights: Option<PathBuf>,
    pub size: usize,
    pub batch: usize,
    pub runs: usize,
    pub input: Option<PathBuf>,
    pub logits: Option<PathBuf>,
    pub device: DeviceChoice,
}

/// `ftuscope bench forward`: the network alone on a `batch`×3×`size`² input (seeded normal
/// values, or `input`'s little-endian f32s), as the engine runs it (batch norms folded) and as
/// stored (unfolded): first-run and median warm milliseconds per pass and per window, and the
/// largest |Δlogit| between the two; `weights` loads a PyTorch/safetensors state dict first, and
/// `logits` receives the folded run's logits (f32 LE), so other runtimes can be compared on the
/// same weights and input. Prints JSON.
pub fn bench_forward(args: ForwardBench) -> anyhow::Result<()> {
    use burn::prelude::{Tensor, TensorData};
    let (device, name) = select_device(args.device)?;
    let (mut net, manifest) = load_network(&args.model, &device)?;
    if let Some(weights) = &args.weights {
        let report = ftuscope::model::import::import(&mut net, &manifest.model, weights, ftuscope::model::import::WeightsKind::Full)
            .map_err(|e| anyhow!("{e}: {}", weights.display()))?;
        if !report.missing.is_empty() {
            return Err(anyhow!("{} tensors of the network are not in {}", report.missing.len(), weights.display()));
        }
    }
    let shape = [args.batch, 3, args.size, args.size];
    let count: usize = shape.iter().product();
    let values: Vec<f32> = match &args.input {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            if bytes.len() != count * 4 {
                return Err(anyhow!("{} holds {} bytes; {shape:?} f32 needs {}", path.display(), bytes.len(), count * 4));
            }
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        }
        None => {
            let mut rng = ftuscope::rng::SplitMix64::new(UNTRAINED_SEED);
            (0..count).map(|_| rng.signed_f32() * 1.7).collect()
        }
    };
    let input = Tensor::<4>::from_data(TensorData::new(values, shape), &device);
    let time = |net: &SegmentationModel| -> anyhow::Result<(f64, f64, Vec<f32>)> {
        let run = || -> anyhow::Result<(f64, Vec<f32>)> {
            let started = std::time::Instant::now();
            let out = net.forward(input.clone()).into_data().try_to_vec::<f32>().map_err(|e| anyhow!("{e:?}"))?;
            Ok((started.elapsed().as_secs_f64() * 1e3, out))
        };
        let (first, out) = run()?;
        let mut warm = (0..args.runs.max(1)).map(|_| run().map(|r| r.0)).collect::<anyhow::Result<Vec<f64>>>()?;
        warm.sort_by(f64::total_cmp);
        Ok((first, warm[warm.len() / 2], out))
    };
    let (plain_first, plain_warm, plain) = time(&net)?;
    let folded = net.folded();
    let (first, warm, logits) = time(&folded)?;
    let diff = plain.iter().zip(&logits).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    if let Some(path) = &args.logits {
        let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let per = |ms: f64| ms / args.batch as f64;
    let report = serde_json::json!({
        "model": args.model,
        "arch": manifest.model.arch(),
        "device": name,
        "threads": rayon::current_num_threads(),
        "input": shape,
        "folded": {"first_ms": first, "warm_ms": warm, "warm_ms_per_window": per(warm)},
        "unfolded": {"first_ms": plain_first, "warm_ms": plain_warm, "warm_ms_per_window": per(plain_warm)},
        "max_abs_diff_folded_vs_unfolded": diff,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Reads `id,encoding` rows (a header line starting with `id,` is skipped).
fn read_csv(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || (n == 0 && line.starts_with("id,")) {
            continue;
        }
        let (id, rle) = line.split_once(',').ok_or_else(|| anyhow!("line {}: expected id,encoding: {}", n + 1, path.display()))?;
        rows.insert(id.trim().to_string(), rle.trim().trim_matches('"').to_string());
    }
    Ok(rows)
}

/// `ftuscope eval`: per-image Dice of the predictions against the truth, and their mean, as the
/// competition computed it (a missing prediction is an empty mask; empty vs empty scores 1).
pub fn eval(truth: &Path, pred: &Path) -> anyhow::Result<()> {
    let (truth_rows, pred_rows) = (read_csv(truth)?, read_csv(pred)?);
    let mut sum = 0.0;
    println!("id,dice");
    for (id, t) in &truth_rows {
        let p = pred_rows.get(id).map(String::as_str).unwrap_or("");
        let d = dice_rle(t, p).map_err(|e| anyhow!("{id}: {e}"))?;
        sum += d;
        println!("{id},{d:.6}");
    }
    for id in pred_rows.keys().filter(|id| !truth_rows.contains_key(*id)) {
        eprintln!("warning: {id} is predicted but has no truth (ignored)");
    }
    let mean = if truth_rows.is_empty() { 1.0 } else { sum / truth_rows.len() as f64 };
    println!("mean,{mean:.6}");
    Ok(())
}

/// Options of `ftuscope eval` on an annotated image folder.
pub struct EvalFolderArgs {
    pub truth: PathBuf,
    pub model: String,
    pub fold: Option<Shard>,
    pub pixel_size: Option<f64>,
    pub device: DeviceChoice,
    pub batch: usize,
    pub tta: Option<u8>,
    pub out: Option<PathBuf>,
    pub stain_reference: Option<String>,
}

/// `ftuscope eval --truth FOLDER --model M`: runs the model on the folder's images (or fold I of N,
/// contiguous blocks as training holds out) and prints per-image and pooled scores: pooled Dice,
/// mean per-image Dice, and glomeruli found at IoU ≥ 0.5 (recall, precision).
pub fn eval_folder(args: EvalFolderArgs) -> anyhow::Result<()> {
    use ftuscope::mask::{Scores, fold_split, read_folder, score_rle};
    let images = read_folder(&args.truth)?;
    let selected: Vec<_> = match args.fold {
        Some(Shard { index, count }) => {
            let ids: Vec<String> = images.iter().map(|i| i.id.clone()).collect();
            let (_, held) = fold_split(&ids, count, index);
            images.into_iter().filter(|i| held.contains(&i.id)).collect()
        }
        None => images,
    };
    let (device, info) = select_device(args.device)?;
    let (net, mut manifest) = load_model(&args.model, &device, args.tta)?;
    if let Some(spec) = &args.stain_reference {
        manifest.stain_reference = stain_reference(spec, &manifest)?;
    }
    eprintln!(
        "model: {} '{}' (trained on {}); device: {} [{}]; {} images",
        manifest.model.arch(),
        manifest.name,
        manifest.trained_on,
        info.backend,
        info.adapter,
        selected.len()
    );
    let mut csv = String::from("id,dice,truth,predicted,matched,recall,precision\n");
    let (mut pooled, mut dice_sum) = (Scores::default(), 0.0);
    println!("id,dice,truth,predicted,matched");
    for image in &selected {
        let location = image.image.display().to_string();
        let slide = block_on(Slide::open_location(&location, SlideOptions::one_pass().with_pixel_size_um(args.pixel_size)))?;
        let wsi = wsi_config(&manifest, &slide, None, None).with_batch(args.batch).with_threads(window_threads(args.device));
        let prediction = block_on(predict_slide(&slide, &net, &wsi, &AtomicBool::new(false), &mut |_, _| {}))?;
        let (width, height) = slide.dimensions();
        let (truth, objects) = image.objects(width, height)?;
        let scores = score_rle(&truth, Some(&objects), &prediction.rle(wsi.objects()), width, height)?;
        pooled.add(&scores);
        dice_sum += scores.dice();
        println!("{},{:.6},{},{},{}", image.id, scores.dice(), scores.truth_objects, scores.predicted_objects, scores.matched);
        csv.push_str(&csv_row(&image.id, &scores));
    }
    let mean = if selected.is_empty() { 1.0 } else { dice_sum / selected.len() as f64 };
    csv.push_str(&csv_row("pooled", &pooled));
    if let Some(out) = &args.out {
        std::fs::write(out, csv).with_context(|| format!("cannot write {}", out.display()))?;
    }
    println!(
        "pooled Dice {:.4}, mean per-image Dice {mean:.4}, glomeruli: {} true, {} predicted, {} found at IoU ≥ 0.5 (recall {:.3}, precision {:.3})",
        pooled.dice(),
        pooled.truth_objects,
        pooled.predicted_objects,
        pooled.matched,
        pooled.recall(),
        pooled.precision()
    );
    Ok(())
}

/// One row of `eval --out`: `id,dice,truth,predicted,matched,recall,precision`.
fn csv_row(id: &str, s: &ftuscope::mask::Scores) -> String {
    format!("{id},{:.6},{},{},{},{:.4},{:.4}\n", s.dice(), s.truth_objects, s.predicted_objects, s.matched, s.recall(), s.precision())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_drop_tiff_extensions_and_urls() {
        assert_eq!(slide_id("/data/train/aaa2a0.tiff"), "aaa2a0");
        assert_eq!(slide_id("https://x.org/s/b.ome.tif?sig=1"), "b");
        assert_eq!(slide_id("CMU-1.svs"), "CMU-1");
    }
}

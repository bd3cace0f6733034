//! `ftuscope review`: the disagreements between a prediction and annotations as a review list, and
//! a decisions file applied to them natively — the same code as the app's review panel.

use anyhow::{Context, anyhow};
use ftuscope::mask::{
    Annotation, Decision, Polygon, Predicted, Status, read_outlines, review, reviewed_annotations, rle_encode_polygons, status_counts,
    write_annotations,
};
use std::path::PathBuf;

/// Options of `ftuscope review`.
pub struct ReviewArgs {
    pub pred: PathBuf,
    pub truth: Option<PathBuf>,
    pub out: PathBuf,
    pub decisions: Option<PathBuf>,
    pub size: Option<(u32, u32)>,
    pub rejected: bool,
    pub unreviewed: bool,
    pub pixel_size: Option<f64>,
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<Annotation>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    read_outlines(&text).map_err(|e| anyhow!("{e}: {}", path.display()))
}

/// Writes `review.json` (counts and items), and with decisions `reviewed.geojson` (and
/// `reviewed.csv`, the Kaggle RLE row, with `--size`); prints the counts.
pub fn run(args: ReviewArgs) -> anyhow::Result<()> {
    let predictions = Predicted::from_annotations(&read(&args.pred)?);
    let annotations: Vec<Polygon> = match &args.truth {
        Some(path) => Predicted::from_annotations(&read(path)?).into_iter().map(|p| p.outline).collect(),
        None => Vec::new(),
    };
    let r = review(&predictions, &annotations);
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let path = args.out.join("review.json");
    std::fs::write(&path, serde_json::to_string_pretty(&r)?).with_context(|| format!("cannot write {}", path.display()))?;
    let c = r.counts;
    println!(
        "{} predicted, {} annotated: {} agree (IoU ≥ 0.5); to review: {} unannotated, {} not found, {} overlapping (IoU < 0.5), {} to confirm → {}",
        predictions.len(),
        annotations.len(),
        c.agreed,
        c.unannotated,
        c.not_found,
        c.overlap,
        c.confirm,
        path.display()
    );
    let Some(decisions_path) = &args.decisions else { return Ok(()) };
    let text = std::fs::read_to_string(decisions_path).with_context(|| format!("cannot read {}", decisions_path.display()))?;
    // A list of decisions, or the app's saved review ({"decisions": [...]}).
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| anyhow!("{e}: {}", decisions_path.display()))?;
    let list = value.get("decisions").cloned().unwrap_or(value);
    let decisions: Vec<Decision> =
        serde_json::from_value(list).map_err(|e| anyhow!("not a list of review decisions ({e}): {}", decisions_path.display()))?;
    let reviewed = r.apply(&predictions, &annotations, &decisions).map_err(|e| anyhow!("{e}: {}", decisions_path.display()))?;
    let geojson = args.out.join("reviewed.geojson");
    std::fs::write(&geojson, write_annotations(&reviewed_annotations(&reviewed, args.rejected, args.unreviewed, args.pixel_size), true))
        .with_context(|| format!("cannot write {}", geojson.display()))?;
    let [confirmed, added, rejected, unreviewed] = status_counts(&reviewed);
    println!("reviewed: {confirmed} confirmed, {added} added, {rejected} rejected, {unreviewed} unreviewed → {}", geojson.display());
    if let Some((width, height)) = args.size {
        let kept: Vec<Polygon> =
            reviewed.iter().filter(|o| matches!(o.status, Status::Confirmed | Status::Added)).map(|o| o.outline.clone()).collect();
        let id = args.pred.file_stem().and_then(|s| s.to_str()).unwrap_or("slide").trim_end_matches(".geojson");
        let csv = args.out.join("reviewed.csv");
        std::fs::write(&csv, format!("id,encoding\n{id},{}\n", rle_encode_polygons(&kept, width, height)))
            .with_context(|| format!("cannot write {}", csv.display()))?;
        println!("RLE of the {} glomeruli → {}", kept.len(), csv.display());
    }
    Ok(())
}

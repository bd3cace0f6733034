//! Whole-slide inference checked without any learning: an oracle model that answers each window
//! with the ground truth of that window runs through the whole engine (tissue plan, window reading
//! and resizing, batching, blending, thresholding, full-resolution RLE) on a synthetic slide; the
//! result must match `train.csv` with Dice ≥ 0.995.

use ftuscope::infer::{
    Blend, Error, ObjectFilter, Plan, PlanConfig, SlideRun, TileModel, Timings, Window, WindowJob, WsiConfig, predict_slide,
};
use ftuscope::mask::{Polygon, dice_rle, rasterise, read_annotations};
use ftuscope::slide::source::FileSource;
use ftuscope::slide::{Slide, TileCompression};
use ftuscope::synth::{DatasetOptions, write_dataset};
use futures_lite::future::block_on;
use image::RgbImage;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Returns the truth of each window, rasterised at model scale.
struct Oracle {
    polygons: Vec<Polygon>,
}

#[async_trait::async_trait]
impl TileModel for Oracle {
    async fn predict(&self, plan: &Plan, windows: &[Window], _images: &[RgbImage]) -> Result<Vec<Vec<f32>>, Error> {
        Ok(windows
            .iter()
            .map(|w| {
                let local: Vec<Polygon> = self
                    .polygons
                    .iter()
                    .map(|p| Polygon {
                        rings: p
                            .rings
                            .iter()
                            .map(|r| r.iter().map(|&[x, y]| [(x - w.x as f64) / plan.scale, (y - w.y as f64) / plan.scale]).collect())
                            .collect(),
                    })
                    .collect();
                let m = rasterise(&local, plan.input_size, plan.input_size);
                (0..plan.input_size)
                    .flat_map(|y| (0..plan.input_size).map(move |x| (x, y)))
                    .map(|(x, y)| if m.get(x, y) { 1.0 } else { 0.0 })
                    .collect()
            })
            .collect())
    }
}

/// A synthetic slide written into `dir`, opened: the slide, its glomeruli and its RLE truth.
fn synthetic(dir: &Path) -> (Slide, Vec<Polygon>, String) {
    let options = DatasetOptions { size: (6000, 4000), seed: 7, compression: TileCompression::Jpeg(85), ..DatasetOptions::default() };
    let id = write_dataset(dir, &options, |_, _| {}).unwrap()[0].id.clone();
    let json = std::fs::read_to_string(dir.join("train").join(format!("{id}.json"))).unwrap();
    let polygons = read_annotations(&json).unwrap().into_iter().flat_map(|a| a.polygons).collect();
    let csv = std::fs::read_to_string(dir.join("train.csv")).unwrap();
    let truth = csv.lines().find_map(|l| l.strip_prefix(&format!("{id},"))).unwrap().to_string();
    let source = Arc::new(FileSource::open(&dir.join("train").join(format!("{id}.tiff"))).unwrap());
    (block_on(Slide::open(source)).unwrap(), polygons, truth)
}

#[test]
fn an_oracle_through_the_whole_engine_reproduces_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let (slide, polygons, truth) = synthetic(dir.path());
    assert!(!polygons.is_empty());
    let oracle = Oracle { polygons };
    for blend in [Blend::Centre, Blend::Ramp] {
        let config = WsiConfig::new().with_blend(blend).with_min_area(0.0);
        let mut reports = 0;
        let prediction = block_on(predict_slide(&slide, &oracle, &config, &AtomicBool::new(false), &mut |p, updates| {
            reports += 1;
            assert!(p.done <= p.total && !updates.is_empty());
        }))
        .unwrap();
        assert!(reports > 0);
        assert!(prediction.plan.windows.len() < (prediction.plan.grid.0 * prediction.plan.grid.1) as usize, "glass windows are skipped");
        let rle = prediction.rle(ObjectFilter::new(0.5, 0.0));
        let dice = dice_rle(&truth, &rle).unwrap();
        println!("{blend:?}: Dice {dice:.5} over {} windows", prediction.plan.windows.len());
        assert!(dice >= 0.995, "{blend:?}: Dice {dice}");
        let all = prediction.glomeruli(ObjectFilter::new(0.5, 0.0));
        let (found, truth_count) = (all.len(), oracle.polygons.len());
        assert!(found.abs_diff(truth_count) <= truth_count / 10 + 1, "{found} objects for {truth_count} glomeruli");
        // Area bounds: an upper bound just under the largest object drops it (from the list and
        // the mask), and nothing else; a lower bound above it drops everything.
        let largest = all.iter().map(|g| g.area_px).fold(0.0, f64::max);
        let bounded = ObjectFilter::new(0.5, 0.0).with_max_area(Some(largest * 0.999));
        let kept = prediction.glomeruli(bounded);
        assert_eq!(kept.len(), found - all.iter().filter(|g| g.area_px >= largest * 0.999).count());
        assert!(kept.iter().all(|g| g.area_px < largest * 0.999));
        assert!(dice_rle(&rle, &prediction.rle(bounded)).unwrap() < 1.0, "the dropped object leaves the mask");
        assert!(prediction.glomeruli(ObjectFilter::new(0.5, largest * 1.001)).is_empty());
    }
}

#[test]
fn a_cancelled_run_stops_between_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (slide, polygons, _) = synthetic(dir.path());
    let cancel = AtomicBool::new(false);
    let config = WsiConfig::new().with_batch(1).with_plan(PlanConfig::new());
    let mut batches = 0;
    let result = block_on(predict_slide(&slide, &Oracle { polygons }, &config, &cancel, &mut |_, _| {
        batches += 1;
        if batches == 2 {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }));
    assert!(matches!(result, Err(Error::Cancelled)));
    assert_eq!(batches, 2);
}

/// The oracle until its `calls`-th forward pass, then the error a lost GPU gives.
struct LostAfter {
    oracle: Oracle,
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl TileModel for LostAfter {
    async fn predict(&self, plan: &Plan, windows: &[Window], images: &[RgbImage]) -> Result<Vec<Vec<f32>>, Error> {
        if self.calls.fetch_sub(1, std::sync::atomic::Ordering::Relaxed) == 0 {
            return Err(Error::Backend("the device was lost (Destroyed)".into()));
        }
        self.oracle.predict(plan, windows, images).await
    }
}

#[test]
fn a_run_whose_device_is_lost_continues_on_another_and_keeps_what_was_done() {
    let dir = tempfile::tempdir().unwrap();
    let (slide, polygons, _) = synthetic(dir.path());
    let config = WsiConfig::new().with_batch(3).with_min_area(0.0);
    let oracle = Oracle { polygons: polygons.clone() };
    let whole = block_on(predict_slide(&slide, &oracle, &config, &AtomicBool::new(false), &mut |_, _| {})).unwrap();

    let mut run = block_on(SlideRun::start(&slide, &config)).unwrap();
    let total = run.total();
    assert!(total > 8, "{total} windows");
    let lost = LostAfter { oracle: Oracle { polygons }, calls: 2.into() };
    let mut seen = Vec::new();
    let err = block_on(run.run(&slide, &lost, 3, &AtomicBool::new(false), &mut |p, _| seen.push(p.done))).unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err}");
    assert_eq!(run.done(), 6, "two batches of three were blended before the loss");
    // The same windows on "the CPU", one at a time: the run carries on from window 6, not from 0.
    block_on(run.run(&slide, &oracle, 1, &AtomicBool::new(false), &mut |p, _| seen.push(p.done))).unwrap();
    assert_eq!(seen[..3], [3, 6, 7]);
    assert_eq!(*seen.last().unwrap(), total);
    let resumed = run.finish(&slide);
    assert!(
        resumed.rle(ObjectFilter::new(0.5, 0.0)) == whole.rle(ObjectFilter::new(0.5, 0.0)),
        "the resumed run gives the uninterrupted run's mask"
    );
}

/// Answers each window with its own pixels' green channel as probabilities: real-valued and
/// different in every window, so that overlapping windows blended in another order would round
/// differently.
struct Greens;

#[async_trait::async_trait]
impl TileModel for Greens {
    async fn predict(&self, _plan: &Plan, _windows: &[Window], images: &[RgbImage]) -> Result<Vec<Vec<f32>>, Error> {
        Ok(images.iter().map(|im| im.pixels().map(|p| p.0[1] as f32 / 255.0 * 0.731).collect()).collect())
    }
}

#[test]
fn windows_computed_elsewhere_in_any_order_blend_to_the_same_canvas_as_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (slide, _, _) = synthetic(dir.path());
    let config = WsiConfig::new().with_batch(2).with_blend(Blend::Ramp);
    let whole = block_on(predict_slide(&slide, &Greens, &config, &AtomicBool::new(false), &mut |_, _| {})).unwrap();

    // A pool: the job goes out as JSON (as to a browser worker), windows come back last first, in
    // uneven chunks, one of them twice (a worker thought lost that answered after all).
    let mut run = block_on(SlideRun::start(&slide, &config)).unwrap();
    let total = run.total();
    assert!(total > 8, "{total} windows");
    assert_eq!(run.remaining(), (0..total).collect::<Vec<_>>());
    let job: WindowJob = serde_json::from_str(&serde_json::to_string(run.job()).unwrap()).unwrap();
    assert_eq!(&job, run.job());
    let order: Vec<usize> = (0..total).rev().collect();
    let mut dones = Vec::new();
    for chunk in order.chunks(3) {
        let mut timings = Timings::default();
        let probs = block_on(job.run(&slide, &Greens, chunk, &mut timings)).unwrap();
        assert!(timings.read_s > 0.0);
        let (progress, fresh) = run.add(chunk, probs, &timings).unwrap();
        assert_eq!(fresh.len(), chunk.len());
        dones.push(progress.done);
    }
    assert_eq!(*dones.last().unwrap(), total);
    assert!(run.remaining().is_empty());
    let again = block_on(job.run(&slide, &Greens, &[0], &mut Timings::default())).unwrap();
    let (progress, fresh) = run.add(&[0], again, &Timings::default()).unwrap();
    assert!(fresh.is_empty() && progress.done == total, "a window done twice counts once");
    // Wrong answers are typed errors, not panics.
    assert!(run.add(&[total], vec![vec![0.0; 512 * 512]], &Timings::default()).is_err());
    assert!(run.add(&[1], vec![vec![0.0; 7]], &Timings::default()).is_err());
    assert!(block_on(job.run(&slide, &Greens, &[total], &mut Timings::default())).is_err());
    let pooled = run.finish(&slide);
    assert!(pooled.canvas == whole.canvas, "the canvas is the same to the bit whatever the order");
    assert!(whole.canvas.iter().any(|&v| v > 0 && v < 255), "the canvas has real-valued probabilities");

    // Natively, batches on 3 threads at once: the same canvas, progress up to every window.
    let mut seen = Vec::new();
    let threaded =
        block_on(predict_slide(&slide, &Greens, &config.clone().with_threads(3), &AtomicBool::new(false), &mut |p, _| seen.push(p.done)))
            .unwrap();
    assert!(threaded.canvas == whole.canvas, "threads do not change the canvas");
    assert_eq!(seen.len(), total.div_ceil(2));
    assert_eq!(*seen.last().unwrap(), total);
    // A cancel stops the threads between batches.
    let cancel = AtomicBool::new(false);
    let result = block_on(predict_slide(&slide, &Greens, &config.clone().with_threads(2), &cancel, &mut |p, _| {
        if p.done >= 2 {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }));
    assert!(matches!(result, Err(Error::Cancelled)), "{:?}", result.err());
}

/// Measures the colours of the windows it is given (and answers background).
struct ColourMeter {
    seen: std::sync::Mutex<ftuscope::infer::LabAccumulator>,
}

#[async_trait::async_trait]
impl TileModel for ColourMeter {
    async fn predict(&self, plan: &Plan, windows: &[Window], images: &[RgbImage]) -> Result<Vec<Vec<f32>>, Error> {
        let mut seen = self.seen.lock().unwrap();
        images.iter().for_each(|image| seen.add(image));
        Ok(windows.iter().map(|_| vec![0.0; (plan.input_size * plan.input_size) as usize]).collect())
    }
}

/// Stain normalisation in the engine: with a reference, the network receives windows whose tissue
/// has (about) the reference's L*a*b* statistics, whatever the slide's own; without, the slide's.
#[test]
fn with_a_stain_reference_the_network_sees_the_reference_colours() {
    use ftuscope::infer::{LabAccumulator, slide_colours};
    use ftuscope::model::LabStats;
    let dir = tempfile::tempdir().unwrap();
    let (slide, _, _) = synthetic(dir.path());
    let seen = |config: &WsiConfig| {
        let meter = ColourMeter { seen: std::sync::Mutex::new(LabAccumulator::default()) };
        block_on(predict_slide(&slide, &meter, config, &AtomicBool::new(false), &mut |_, _| {})).unwrap();
        meter.seen.into_inner().unwrap().stats().unwrap()
    };
    let mut own = LabAccumulator::default();
    block_on(slide_colours(&slide, &WsiConfig::new(), &mut own)).unwrap();
    let own = own.stats().unwrap();
    let plain = seen(&WsiConfig::new());
    // A bluer, paler, lower-contrast lab.
    let reference = LabStats { mean: [own.mean[0] + 8.0, own.mean[1] - 10.0, own.mean[2] - 12.0], std: own.std.map(|s| s * 0.7) };
    let normalised = seen(&WsiConfig::new().with_stain_reference(Some(reference)));
    println!("slide {own:?}\nas scanned {plain:?}\nnormalised {normalised:?}\nreference {reference:?}");
    for c in 0..3 {
        assert!((plain.mean[c] - own.mean[c]).abs() < 3.0, "without a reference the colours stay: {plain:?} vs {own:?}");
        assert!((normalised.mean[c] - reference.mean[c]).abs() < 3.0, "channel {c}: {normalised:?} vs {reference:?}");
        assert!(
            (normalised.std[c] - reference.std[c]).abs() < 0.25 * reference.std[c] + 1.0,
            "channel {c}: {normalised:?} vs {reference:?}"
        );
    }
}

//! Whole-slide segmentation for the page (or a worker), the one way the page segments: a model
//! folder as `ftuscope export` writes it (`model.bpk` bytes + `model.json` text) loaded onto WebGPU
//! or the CPU fallback ([`WebModel`]), run by a [`SegmentRun`] over a slide or a region of it with
//! typed progress events (per-window updates for a growing overlay), a cancel handle checked between
//! batches, and a [`WebPrediction`] at the end.

use super::device::{GpuErrorLog, init_device};
use super::slides::WebSlide;
use super::{from_js, js_error, js_value, to_js};
use crate::backend::{BackendInfo, DeviceChoice};
use crate::infer::{Glomerulus, NetModel, ObjectFilter, Prediction, Progress, SlideRun, Timings, Update, WindowJob, WsiConfig};
use crate::mask::{threshold_level, write_annotations};
use crate::model::{Manifest, folder};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasm_bindgen::prelude::*;

/// A trained network on the page's device.
#[wasm_bindgen]
pub struct WebModel {
    net: Rc<NetModel>,
    manifest: Manifest,
    device: burn::prelude::Device,
    info: BackendInfo,
    errors: Option<GpuErrorLog>,
}

impl WebModel {
    /// A network already on `device` (a fine-tuned one), with what its device is.
    pub(super) fn from_parts(
        model: crate::model::SegmentationModel,
        manifest: Manifest,
        device: &burn::prelude::Device,
        info: BackendInfo,
        errors: Option<GpuErrorLog>,
    ) -> Result<WebModel, JsError> {
        let net = NetModel::new(model, &manifest, device, None).map_err(js_error)?;
        Ok(WebModel { net: Rc::new(net), manifest, device: device.clone(), info, errors })
    }

    /// The device, its description and its error log: a fine-tuning runs where the model runs.
    pub(super) fn device(&self) -> (&burn::prelude::Device, &BackendInfo, &Option<GpuErrorLog>) {
        (&self.device, &self.info, &self.errors)
    }

    /// The manifest.
    pub(super) fn manifest_ref(&self) -> &Manifest {
        &self.manifest
    }

    /// The network as it runs.
    pub(super) fn net(&self) -> Rc<NetModel> {
        self.net.clone()
    }
}

#[wasm_bindgen]
impl WebModel {
    /// Loads `model.bpk` (bytes) and `model.json` (text) onto `backend`: "auto" (WebGPU, else the
    /// CPU with a notice), "webgpu" or "cpu". Wrong, truncated or mismatched files reject with a
    /// readable message.
    pub async fn load(bpk: Vec<u8>, manifest: String, backend: String) -> Result<WebModel, JsError> {
        super::start();
        let (device, info, errors) = init_device(&backend).await.map_err(js_error)?;
        let (model, manifest) = folder::load_bytes(&bpk, &manifest, &device).map_err(js_error)?;
        let net = NetModel::new(model, &manifest, &device, None).map_err(js_error)?;
        Ok(WebModel { net: Rc::new(net), manifest, device, info, errors })
    }

    /// The network's raw logits (a `Float32Array`) for `input`, `batch`×3×`size`² floats already
    /// normalised: the network alone, as `make bench-peers` times it beside other runtimes.
    pub fn logits(&self, input: Vec<f32>, batch: u32, size: u32) -> js_sys::Promise {
        let net = self.net.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let logits = net.logits(input, batch as usize, size as usize).await.map_err(js_value)?;
            Ok(js_sys::Float32Array::from(logits.as_slice()).into())
        })
    }

    /// The manifest (`name`, `trained_on`, `validation_dice`, `window`, …) as a plain object.
    #[wasm_bindgen(getter)]
    pub fn manifest(&self) -> Result<JsValue, JsError> {
        to_js(&self.manifest)
    }

    /// `{device, backend, adapter, notice}`: what runs the network, for people to read.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> Result<JsValue, JsError> {
        to_js(&self.info)
    }

    /// Whether the network runs on the GPU (WebGPU), not on the CPU fallback.
    #[wasm_bindgen(getter, js_name = isGpu)]
    pub fn is_gpu(&self) -> bool {
        self.info.device == DeviceChoice::Wgpu
    }

    /// The manifest's threshold on the 0–255 scale of the progress updates' `probs`: a byte at or
    /// above it is foreground (`round(threshold·255)`, as the finished prediction thresholds).
    #[wasm_bindgen(getter, js_name = thresholdLevel)]
    pub fn threshold_level(&self) -> u8 {
        threshold_level(self.manifest.threshold)
    }
}

/// Stops a running segmentation between batches.
#[wasm_bindgen]
#[derive(Clone, Default)]
pub struct Cancel(Rc<AtomicBool>);

#[wasm_bindgen]
impl Cancel {
    /// A handle not yet cancelled.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks the run to stop; it rejects with "cancelled" after the current batch.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A finished segmentation: numbers and glomeruli at once, the heavier exports on demand.
#[wasm_bindgen]
pub struct WebPrediction {
    prediction: Prediction,
    glomeruli: Vec<Glomerulus>,
    objects: ObjectFilter,
}

#[derive(serde::Serialize)]
struct Summary<'a> {
    width: u32,
    height: u32,
    pixel_size_um: Option<f64>,
    windows: usize,
    tissue_fraction: f64,
    count: usize,
    glomeruli: Vec<GlomerulusOut<'a>>,
    timings: &'a crate::infer::Timings,
}

#[derive(serde::Serialize)]
struct GlomerulusOut<'a> {
    #[serde(flatten)]
    glomerulus: &'a Glomerulus,
    /// Outline, level-0 pixels, `[[x, y], …]`.
    outline: Vec<[f64; 2]>,
}

#[wasm_bindgen]
impl WebPrediction {
    /// `{width, height, pixel_size_um, windows, tissue_fraction, count, glomeruli: [{id, area_px,
    /// area_um2, centroid, bbox, outline}], timings}`.
    #[wasm_bindgen(getter)]
    pub fn summary(&self) -> Result<JsValue, JsError> {
        let p = &self.prediction;
        let glomeruli = self
            .glomeruli
            .iter()
            .map(|g| GlomerulusOut {
                glomerulus: g,
                outline: g.outline.as_ref().and_then(|o| o.rings.first().cloned()).unwrap_or_default(),
            })
            .collect();
        to_js(&Summary {
            width: p.width,
            height: p.height,
            pixel_size_um: p.pixel_size_um,
            windows: p.plan.windows.len(),
            tissue_fraction: p.plan.tissue_fraction,
            count: self.glomeruli.len(),
            glomeruli,
            timings: &p.timings,
        })
    }

    /// QuPath GeoJSON FeatureCollection, one "Glomerulus" polygon each, with area measurements.
    pub fn geojson(&self) -> String {
        write_annotations(&Prediction::annotations(&self.glomeruli), true)
    }

    /// The Kaggle RLE of the full-resolution mask (column-major, 1-indexed `start length` pairs).
    pub fn rle(&self) -> String {
        self.prediction.rle(self.objects)
    }

    /// The probability canvas as a grey PNG, longest side at most `max_side`.
    #[wasm_bindgen(js_name = maskPng)]
    pub fn mask_png(&self, max_side: u32) -> Result<Vec<u8>, JsError> {
        let mut png = Vec::new();
        self.prediction
            .overview(max_side.max(1))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(js_error)?;
        Ok(png)
    }
}

/// A whole-slide segmentation, the one way the page segments, which keeps what it has computed when
/// its device fails: `SegmentRun.start(slide, model, {region})` plans it, `resume(model, progress,
/// cancel)` runs the windows not yet done (rejecting on cancellation, a slide error or a GPU
/// error, with the windows before the failing batch kept), and may be called again with another
/// model — the same weights loaded on the CPU after the GPU was lost — which continues where the
/// first stopped; `finish()` gives the [`WebPrediction`].
#[wasm_bindgen]
pub struct SegmentRun {
    slide: Rc<crate::slide::Slide>,
    wsi: WsiConfig,
    /// Empty while `resume` runs (a second `resume` at the same time is refused) and once finished.
    run: Rc<RefCell<Option<SlideRun>>>,
}

#[wasm_bindgen]
impl SegmentRun {
    /// Plans a run of `model`'s settings over `slide`; `options` (optional) is `{region: [x, y, w,
    /// h]}` in level-0 pixels to run only the windows meeting that rectangle ("segment this view").
    /// Resolves to a `SegmentRun`; rejects on unknown options, an empty region or slide errors.
    pub fn start(slide: &WebSlide, model: &WebModel, options: JsValue) -> js_sys::Promise {
        let (slide, manifest) = (slide.shared(), model.manifest.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let wsi = config_for(&manifest, slide.pixel_size_um(), run_options(options)?)?;
            let run = SlideRun::start(&slide, &wsi).await.map_err(js_value)?;
            Ok(SegmentRun { slide, wsi, run: Rc::new(RefCell::new(Some(run))) }.into())
        })
    }

    /// Windows done so far.
    #[wasm_bindgen(getter)]
    pub fn done(&self) -> u32 {
        self.run.borrow().as_ref().map_or(0, |r| r.done() as u32)
    }

    /// Windows planned.
    #[wasm_bindgen(getter)]
    pub fn total(&self) -> u32 {
        self.run.borrow().as_ref().map_or(0, |r| r.total() as u32)
    }

    /// Runs the remaining windows with `model`, calling `progress` after every batch with
    /// `{done, total, windows_per_s, eta_s, updates: [{x, y, window, size, probs}]}` (`probs`: a
    /// `Uint8Array` of `size`² probabilities 0–255, row-major, of the `window`² level-0 square at
    /// `x`, `y`; compare with [`WebModel::threshold_level`]). Resolves when all windows are done;
    /// rejects with "cancelled" once `cancel` is cancelled, or with the slide's or the GPU's error.
    pub fn resume(&self, model: &WebModel, progress: Option<js_sys::Function>, cancel: &Cancel) -> js_sys::Promise {
        let (slide, cell, wsi) = (self.slide.clone(), self.run.clone(), self.wsi.clone());
        let (net, errors, batch, cancel) = (model.net.clone(), model.errors.clone(), batch_for(model.is_gpu()), cancel.0.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let mut run = cell.borrow_mut().take().ok_or_else(|| js_value("this segmentation is running or finished"))?;
            let mut report = reporter(progress, &wsi);
            let result = run.run(&slide, net.as_ref(), batch, cancel.as_ref(), &mut report).await;
            *cell.borrow_mut() = Some(run);
            gpu_errors(&errors)?;
            result.map_err(js_value)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The windows not done yet (indices into the plan, in order): what a pool of workers is
    /// dealt. Empty while `resume` runs.
    pub fn remaining(&self) -> Vec<u32> {
        self.run.borrow().as_ref().map_or_else(Vec::new, |r| r.remaining().into_iter().map(|i| i as u32).collect())
    }

    /// The run's windows as JSON, for a [`WindowRunner`] in another worker: the plan and the stain
    /// map measured on this slide. The windows-per-second of `add`'s progress counts from here.
    pub fn job(&self) -> Result<String, JsError> {
        let mut cell = self.run.borrow_mut();
        let run = cell.as_mut().ok_or_else(|| js_error("this segmentation is running or finished"))?;
        serde_json::to_string(run.job()).map_err(js_error)
    }

    /// Blends windows a [`WindowRunner`] computed: `indices` and their probabilities (`probs`:
    /// `size`² floats per index, concatenated, as `WindowRunner.run` gives them), `timings` its
    /// `{read_s, resize_s, model_s}`. Windows may come in any order and from any worker; one
    /// already done is ignored. Returns the progress event `resume` would have sent for them.
    pub fn add(&self, indices: Vec<u32>, probs: Vec<f32>, timings: JsValue) -> Result<JsValue, JsError> {
        let mut cell = self.run.borrow_mut();
        let run = cell.as_mut().ok_or_else(|| js_error("this segmentation is running or finished"))?;
        let timings: Timings = from_js(&timings).unwrap_or_default();
        let side = (self.wsi.plan.input_size as usize).pow(2);
        if probs.len() != indices.len() * side {
            return Err(js_error(format!("{} values for {} windows of {side}", probs.len(), indices.len())));
        }
        let indices: Vec<usize> = indices.into_iter().map(|i| i as usize).collect();
        let (progress, fresh) = run.add(&indices, probs.chunks(side).map(<[f32]>::to_vec).collect(), &timings).map_err(js_error)?;
        let updates: Vec<Update<'_>> = fresh.iter().map(|(w, q)| Update { window: *w, probs: q }).collect();
        progress_event(&progress, &updates, &self.wsi)
    }

    /// The prediction from the windows done (normally all of them); the run is then used up.
    pub fn finish(&self) -> Result<WebPrediction, JsError> {
        let run = self.run.borrow_mut().take().ok_or_else(|| js_error("this segmentation is running or finished"))?;
        Ok(predicted(run.finish(&self.slide), &self.wsi))
    }
}

/// One worker of a pool: computes windows of a [`SegmentRun`] planned in another worker (its
/// `job()`), on this worker's slide (opened from the same source) and model. The windows come out
/// as the planning worker would have computed them.
#[wasm_bindgen]
pub struct WindowRunner {
    slide: Rc<crate::slide::Slide>,
    job: Rc<WindowJob>,
}

#[wasm_bindgen]
impl WindowRunner {
    /// A runner of `job` (JSON from `SegmentRun.job()`) over `slide`; rejects a job that is not one.
    #[wasm_bindgen(constructor)]
    pub fn new(slide: &WebSlide, job: &str) -> Result<WindowRunner, JsError> {
        let job: WindowJob = serde_json::from_str(job).map_err(|e| js_error(format!("not a segmentation job: {e}")))?;
        Ok(WindowRunner { slide: slide.shared(), job: Rc::new(job) })
    }

    /// Reads, prepares and runs windows `indices` with `model` in one forward pass; resolves to
    /// `{probs: Float32Array, timings: {read_s, resize_s, model_s}}` (`size`² floats per window,
    /// concatenated) for `SegmentRun.add`; rejects with the slide's or the model's error.
    pub fn run(&self, model: &WebModel, indices: Vec<u32>) -> js_sys::Promise {
        let (slide, job, net) = (self.slide.clone(), self.job.clone(), model.net.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let indices: Vec<usize> = indices.into_iter().map(|i| i as usize).collect();
            let mut timings = Timings::default();
            let probs = job.run(&slide, net.as_ref(), &indices, &mut timings).await.map_err(js_value)?;
            let out = js_sys::Object::new();
            let flat: Vec<f32> = probs.concat();
            js_sys::Reflect::set(&out, &"probs".into(), &js_sys::Float32Array::from(flat.as_slice()).into())?;
            js_sys::Reflect::set(&out, &"timings".into(), &to_js(&timings)?)?;
            Ok(out.into())
        })
    }
}

/// What `SegmentRun.start` takes from JS.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunOptions {
    /// `[x, y, width, height]`, level-0 pixels: only windows meeting it run.
    region: Option<[f64; 4]>,
}

/// Reads `SegmentRun.start`'s options (`undefined` and `null` mean none). They pass through a JSON
/// value because serde-wasm-bindgen reads only a struct's own fields: a misspelt option would
/// otherwise be ignored, and "segment this view" would silently segment the whole slide.
fn run_options(options: JsValue) -> Result<RunOptions, JsValue> {
    let invalid =
        |e: &dyn std::fmt::Display| js_value(format!("SegmentRun.start: options must be {{region?: [x, y, width, height]}}: {e}"));
    let value: Option<serde_json::Value> = serde_wasm_bindgen::from_value(options).map_err(|e| invalid(&e))?;
    value.map_or(Ok(RunOptions::default()), |v| serde_json::from_value(v).map_err(|e| invalid(&e)))
}

/// The manifest's settings at the slide's pixel size (its file's, or the one the page set with
/// `WebSlide.setPixelSize`), limited to the options' region when given.
fn config_for(manifest: &Manifest, pixel_size_um: Option<f64>, options: RunOptions) -> Result<WsiConfig, JsValue> {
    let mut wsi = WsiConfig::for_model(manifest, pixel_size_um);
    if let Some([x, y, w, h]) = options.region {
        if !(w > 0.0 && h > 0.0) || [x, y, w, h].iter().any(|v| !v.is_finite()) {
            return Err(js_value("region must have a positive size"));
        }
        let clamp = |v: f64| v.max(0.0).min(u32::MAX as f64) as u32;
        wsi.plan.region = Some([clamp(x), clamp(y), clamp(w).max(1), clamp(h).max(1)]);
    }
    Ok(wsi)
}

/// Windows per forward pass: 4 on WebGPU; on the CPU fallback tensors live in wasm memory, and
/// one window at a time keeps it small.
fn batch_for(gpu: bool) -> usize {
    if gpu { 4 } else { 1 }
}

/// WebGPU errors raised outside any call during the run, as one rejection.
fn gpu_errors(errors: &Option<GpuErrorLog>) -> Result<(), JsValue> {
    match errors.as_ref().map(GpuErrorLog::take).filter(|e| !e.is_empty()) {
        Some(errors) => Err(js_value(format!("WebGPU reported {} error(s): {}", errors.len(), errors.join(" | ")))),
        None => Ok(()),
    }
}

fn predicted(prediction: Prediction, wsi: &WsiConfig) -> WebPrediction {
    let objects = wsi.objects();
    let glomeruli = prediction.glomeruli(objects);
    WebPrediction { prediction, glomeruli, objects }
}

/// What `progress` receives after every batch: the engine's [`Progress`] (done, total,
/// windows_per_s, eta_s) and this batch's windows.
#[derive(Serialize)]
struct ProgressEvent<'a> {
    #[serde(flatten)]
    progress: &'a Progress,
    /// The windows of this batch.
    updates: Vec<WindowUpdate<'a>>,
}

/// One window's probabilities, for the growing overlay.
#[derive(Serialize)]
struct WindowUpdate<'a> {
    /// Left edge, level-0 pixels.
    x: i64,
    /// Top edge, level-0 pixels.
    y: i64,
    /// Side of the level-0 square it covers.
    window: u32,
    /// Side of `probs`: the network's input size.
    size: u32,
    /// `size`² probabilities 0–255, row-major: a `Uint8Array` in JS (set by [`progress_event`]).
    #[serde(skip)]
    probs: &'a [u8],
}

/// The event for `progress` and for `SegmentRun.add`'s answer: the numbers through [`to_js`], each
/// window's probabilities as a `Uint8Array` (one copy, no JSON).
fn progress_event(progress: &Progress, updates: &[Update<'_>], wsi: &WsiConfig) -> Result<JsValue, JsError> {
    let (window, size) = (wsi.plan.window, wsi.plan.input_size);
    let event = ProgressEvent {
        progress,
        updates: updates.iter().map(|u| WindowUpdate { x: u.window.x, y: u.window.y, window, size, probs: u.probs }).collect(),
    };
    let value = to_js(&event)?;
    let js = |e: JsValue| js_error(format!("progress event: {e:?}"));
    let list = js_sys::Reflect::get(&value, &"updates".into()).map_err(js)?;
    for (i, u) in event.updates.iter().enumerate() {
        let item = js_sys::Reflect::get_u32(&list, i as u32).map_err(js)?;
        js_sys::Reflect::set(&item, &"probs".into(), &js_sys::Uint8Array::from(u.probs).into()).map_err(js)?;
    }
    Ok(value)
}

/// Forwards progress to a JS callback as a [`ProgressEvent`].
fn reporter(progress: Option<js_sys::Function>, wsi: &WsiConfig) -> impl FnMut(&Progress, &[Update<'_>]) {
    let wsi = wsi.clone();
    move |p, updates| {
        let Some(f) = &progress else { return };
        match progress_event(p, updates, &wsi) {
            Ok(event) => {
                let _ = f.call1(&JsValue::NULL, &event);
            }
            Err(e) => web_sys::console::warn_2(&"progress event not sent:".into(), &e.into()),
        }
    }
}

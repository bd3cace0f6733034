//! Fine-tuning in the page ("Improve the model on this slide", issue #30): the decoder of the
//! loaded model trains on windows around the slide's reviewed glomeruli, its rejected objects and
//! random tissue ([`crate::tune`]), on the model's own device (WebGPU or the CPU), one step per
//! call so that the page shows progress and can stop; the tuned model segments like any other
//! and exports as a model folder. Nothing leaves the page.

use super::device::GpuErrorLog;
use super::segment::WebModel;
use super::slides::WebSlide;
use super::{js_error, js_value};
use crate::backend::BackendInfo;
use crate::infer::{NetModel, SlideRun, WsiConfig};
use crate::mask::Polygon;
use crate::model::{Manifest, folder};
use crate::tune::{FineTune, TuneConfig, agreement, tune_windows, tuned_manifest};
use burn::prelude::Device;
use serde::Deserialize;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// What `WebTune.start` takes besides the slide and model.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TuneOptions {
    /// Outlines (`[[x, y], …]`, level 0) of the glomeruli to learn.
    positives: Vec<Vec<[f64; 2]>>,
    /// Outlines of objects that are not glomeruli.
    #[serde(default)]
    negatives: Vec<Vec<[f64; 2]>>,
    steps: Option<usize>,
    batch: Option<usize>,
    lr: Option<f64>,
    seed: Option<u64>,
}

/// A fine-tuning in progress.
#[wasm_bindgen]
pub struct WebTune {
    /// Empty while a step runs.
    tune: Rc<RefCell<Option<FineTune>>>,
    manifest: Manifest,
    device: Device,
    info: BackendInfo,
    errors: Option<GpuErrorLog>,
    steps: usize,
    /// The model before tuning, to compare with.
    original: Rc<NetModel>,
    /// Its manifest (the tuned one's says "tuned").
    original_manifest: Manifest,
    slide: Rc<crate::slide::Slide>,
}

#[wasm_bindgen]
impl WebTune {
    /// Prepares a fine-tuning of `model` (its weights as `model.bpk` bytes, unfolded: the loaded
    /// network runs with its batch norms folded) on `slide`: `options` is `{positives, negatives?,
    /// steps?, batch?, lr?, seed?}`. Reads the windows (the slide planned as a run of this model
    /// would be, stain map included). Rejects without positives or with settings that cannot work.
    pub fn start(slide: &WebSlide, model: &WebModel, bpk: Vec<u8>, options: JsValue) -> js_sys::Promise {
        let slide = slide.shared();
        let original = model.net();
        let (device, info, errors) = model.device();
        let (device, info, errors, manifest) = (device.clone(), info.clone(), errors.clone(), model.manifest_ref().clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let o: TuneOptions = serde_wasm_bindgen::from_value(options).map_err(|e| {
                js_value(format!("WebTune.start: options must be {{positives, negatives?, steps?, batch?, lr?, seed?}}: {e}"))
            })?;
            let polygons = |rings: Vec<Vec<[f64; 2]>>| rings.into_iter().filter(|r| r.len() >= 3).map(Polygon::new).collect::<Vec<_>>();
            let (positives, negatives) = (polygons(o.positives), polygons(o.negatives));
            if positives.is_empty() {
                return Err(js_value("nothing to learn from: accept, correct or draw glomeruli first"));
            }
            let defaults = TuneConfig::new();
            let config = TuneConfig::new()
                .with_steps(o.steps.unwrap_or(defaults.steps))
                .with_batch(o.batch.unwrap_or(defaults.batch))
                .with_lr(o.lr.unwrap_or(defaults.lr))
                .with_seed(o.seed.unwrap_or(defaults.seed));
            let weights = folder::load_weights(&bpk, &manifest, &device).map_err(js_value)?;
            let mut run = SlideRun::start(&slide, &WsiConfig::for_model(&manifest, slide.pixel_size_um())).await.map_err(js_value)?;
            let job = run.job().clone();
            let windows = tune_windows(&slide, &job, &positives, &negatives, &config).await.map_err(js_value)?;
            let steps = config.steps;
            let tuned = tuned_manifest(&manifest, positives.len(), negatives.len(), slide.name(), steps);
            let tune = FineTune::new(weights, manifest.normaliser(), &device, windows, config).map_err(js_value)?;
            Ok(WebTune {
                tune: Rc::new(RefCell::new(Some(tune))),
                manifest: tuned,
                device,
                info,
                errors,
                steps,
                original,
                original_manifest: manifest,
                slide,
            }
            .into())
        })
    }

    /// One optimiser step; resolves to its loss. Rejects when a step is running, all are done, or
    /// the device failed (its errors named).
    pub fn step(&self) -> js_sys::Promise {
        let (cell, errors) = (self.tune.clone(), self.errors.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let mut tune = cell.borrow_mut().take().ok_or_else(|| js_value("a fine-tuning step is running"))?;
            let result = if tune.done() { Err(js_value("every step is done")) } else { tune.step().await.map_err(js_value) };
            *cell.borrow_mut() = Some(tune);
            if let Some(errors) = errors.as_ref().map(GpuErrorLog::take).filter(|e| !e.is_empty()) {
                return Err(js_value(format!("WebGPU reported {} error(s): {}", errors.len(), errors.join(" | "))));
            }
            Ok(JsValue::from(result?))
        })
    }

    /// Steps planned.
    #[wasm_bindgen(getter)]
    pub fn steps(&self) -> u32 {
        self.steps as u32
    }

    /// Steps done.
    #[wasm_bindgen(getter, js_name = stepsDone)]
    pub fn steps_done(&self) -> u32 {
        self.tune.borrow().as_ref().map_or(0, |t| t.steps_done() as u32)
    }

    /// Windows trained on.
    #[wasm_bindgen(getter)]
    pub fn windows(&self) -> u32 {
        self.tune.borrow().as_ref().map_or(0, |t| t.window_count() as u32)
    }

    /// Every step's loss so far.
    #[wasm_bindgen(getter)]
    pub fn losses(&self) -> Vec<f32> {
        self.tune.borrow().as_ref().map_or_else(Vec::new, |t| t.losses.clone())
    }

    /// The tuned model (as it is now), to segment with.
    pub fn model(&self) -> Result<WebModel, JsError> {
        let tune = self.tune.borrow();
        let tune = tune.as_ref().ok_or_else(|| js_error("a fine-tuning step is running"))?;
        WebModel::from_parts(tune.model(), self.manifest.clone(), &self.device, self.info.clone(), self.errors.clone())
    }

    /// How the original and the tuned model agree with `reviewed` (outlines `[[x, y], …]`) over
    /// their box: resolves to `{original: {reviewed, predicted, found}, tuned: {…}}`.
    pub fn compare(&self, reviewed: JsValue) -> js_sys::Promise {
        let tuned = self.tune.borrow().as_ref().map(FineTune::model);
        let (slide, original, device) = (self.slide.clone(), self.original.clone(), self.device.clone());
        let (manifest, tuned_manifest) = (self.original_manifest.clone(), self.manifest.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let tuned = tuned.ok_or_else(|| js_value("a fine-tuning step is running"))?;
            let rings: Vec<Vec<[f64; 2]>> =
                serde_wasm_bindgen::from_value(reviewed).map_err(|e| js_value(format!("compare: outlines expected: {e}")))?;
            let reviewed: Vec<Polygon> = rings.into_iter().filter(|r| r.len() >= 3).map(Polygon::new).collect();
            let wsi = WsiConfig::for_model(&manifest, slide.pixel_size_um());
            let before = agreement(&slide, original.as_ref(), &wsi, &reviewed).await.map_err(js_value)?;
            let tuned = NetModel::new(tuned, &tuned_manifest, &device, None).map_err(js_value)?;
            let after = agreement(&slide, &tuned, &wsi, &reviewed).await.map_err(js_value)?;
            #[derive(serde::Serialize)]
            struct Both {
                original: crate::tune::Agreement,
                tuned: crate::tune::Agreement,
            }
            Ok(super::to_js(&Both { original: before, tuned: after })?)
        })
    }

    /// The tuned model's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.manifest.name.clone()
    }

    /// The tuned model folder: resolves to `{bpk: Uint8Array, json: string}` (`model.bpk`, f32,
    /// and `model.json`); the weights are read back asynchronously (WebGPU allows nothing else).
    pub fn export(&self) -> js_sys::Promise {
        let model = self.tune.borrow().as_ref().map(FineTune::model);
        let manifest = self.manifest.to_json();
        wasm_bindgen_futures::future_to_promise(async move {
            let model = model.ok_or_else(|| js_value("a fine-tuning step is running"))?;
            let cpu = folder::to_cpu(&model).await.map_err(js_value)?;
            let bpk = folder::weights_bytes(&cpu).map_err(js_value)?;
            let out = js_sys::Object::new();
            js_sys::Reflect::set(&out, &"bpk".into(), &js_sys::Uint8Array::from(bpk.as_slice()).into())?;
            js_sys::Reflect::set(&out, &"json".into(), &manifest.into())?;
            Ok(out.into())
        })
    }
}

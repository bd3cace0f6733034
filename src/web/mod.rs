//! The wasm facade: what the page (or a Web Worker) calls — [`Engine`] (a network on single
//! images), [`WebSlide`] (a streamed slide), [`WebModel`] + [`segment_slide`] (a trained model over
//! a whole slide or a region, with progress and [`Cancel`]) — whose methods take and return plain
//! values; everything else stays in Rust.

mod device;
mod segment;
mod slides;

use crate::backend::BackendInfo;
use crate::infer::{SegmentConfig, Segmenter};
use crate::mask::ProbMask;
use crate::slide;
use image::RgbImage;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

pub use device::{GpuErrorLog, init_device};
pub use segment::{Cancel, SegmentRun, WebModel, WebPrediction, dice_of_annotations, segment_slide};
pub use slides::WebSlide;

/// Sets up readable Rust panics, and warnings and errors logged by Rust code (burn and cubecl log
/// GPU problems through `log`), in the browser console. Runs once when the module loads.
/// Engines call it too, for hosts (test runners) that skip the start function. Idempotent.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    if log::set_logger(&ConsoleLog).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

/// Forwards `log` records at warning level and above to `console.warn` / `console.error`.
struct ConsoleLog;

impl log::Log for ConsoleLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = JsValue::from_str(&format!("[{}] {}", record.target(), record.args()));
        match record.level() {
            log::Level::Error => web_sys::console::error_1(&text),
            _ => web_sys::console::warn_1(&text),
        }
    }

    fn flush(&self) {}
}

/// A network on a device (WebGPU, or the CPU fallback), ready to segment images.
#[wasm_bindgen]
pub struct Engine {
    inner: Rc<Inner>,
}

struct Inner {
    segmenter: Segmenter,
    info: BackendInfo,
    gpu_errors: Option<GpuErrorLog>,
}

#[wasm_bindgen]
impl Engine {
    /// Starts an engine. `backend` is `"auto"` (WebGPU when the browser offers it, else the CPU with
    /// a notice), `"webgpu"` (fail if unavailable) or `"cpu"`; `tile` is the window side in pixels.
    pub async fn create(backend: String, tile: u32) -> Result<Engine, JsError> {
        Self::start(&backend, tile).await.map_err(js_error)
    }

    /// Which backend and adapter run the network, and any notice (e.g. why the CPU is used):
    /// `{device, backend, adapter, notice}`.
    #[wasm_bindgen(getter)]
    pub fn info(&self) -> Result<JsValue, JsError> {
        serde_wasm_bindgen::to_value(&self.inner.info).map_err(js_error)
    }

    /// Decodes PNG/JPEG `bytes` and segments the image. Resolves to a [`Segmentation`].
    #[wasm_bindgen(js_name = segmentImage)]
    pub fn segment_image_js(&self, bytes: Vec<u8>) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let image = slide::decode_image(&bytes).map_err(js_value)?;
            inner.segment(image).await.map(JsValue::from).map_err(js_value)
        })
    }

    /// Segments a canvas's RGBA pixels. Resolves to a [`Segmentation`].
    #[wasm_bindgen(js_name = segmentRgba)]
    pub fn segment_rgba_js(&self, rgba: Vec<u8>, width: u32, height: u32) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let image = slide::rgb_from_rgba(&rgba, width, height).map_err(js_value)?;
            inner.segment(image).await.map(JsValue::from).map_err(js_value)
        })
    }
}

impl Engine {
    /// Starts an engine (the Rust-side entry of [`Engine::create`]).
    pub async fn start(backend: &str, tile: u32) -> Result<Engine, String> {
        start();
        let (device, info, gpu_errors) = init_device(backend).await?;
        let config = SegmentConfig::new().with_tile(tile as usize);
        let segmenter = Segmenter::placeholder(&device, config).map_err(|e| e.to_string())?;
        Ok(Engine { inner: Rc::new(Inner { segmenter, info, gpu_errors }) })
    }

    /// Segments an RGB image (the Rust-side entry, used by the browser tests).
    pub async fn segment(&self, image: RgbImage) -> Result<Segmentation, String> {
        self.inner.segment(image).await
    }

    /// What ran the network.
    pub fn backend_info(&self) -> &BackendInfo {
        &self.inner.info
    }
}

impl Inner {
    async fn segment(&self, image: RgbImage) -> Result<Segmentation, String> {
        let started = js_sys::Date::now();
        let result = self.segmenter.segment(&image).await;
        // A WebGPU validation error does not fail the call that caused it: it arrives through the
        // device's error handler. Any such error makes the result untrustworthy.
        if let Some(errors) = self.gpu_errors.as_ref().map(GpuErrorLog::take).filter(|e| !e.is_empty()) {
            return Err(format!("WebGPU reported {} error(s): {}", errors.len(), errors.join(" | ")));
        }
        let mask = result.map_err(|e| e.to_string())?;
        let threshold = self.segmenter.config().threshold;
        Ok(Segmentation {
            overlay: mask.overlay(&image, threshold, 0.45).into_raw(),
            positive_fraction: mask.positive_fraction(threshold),
            millis: js_sys::Date::now() - started,
            mask,
        })
    }
}

/// The result of one segmentation: the mask, an overlay ready for a canvas, and a few numbers.
#[wasm_bindgen]
pub struct Segmentation {
    mask: ProbMask,
    overlay: Vec<u8>,
    positive_fraction: f32,
    millis: f64,
}

#[wasm_bindgen]
impl Segmentation {
    /// Width in pixels.
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> u32 {
        self.mask.width()
    }

    /// Height in pixels.
    #[wasm_bindgen(getter)]
    pub fn height(&self) -> u32 {
        self.mask.height()
    }

    /// The image with the mask overlaid, RGBA row-major (for `new ImageData(...)`).
    #[wasm_bindgen(getter)]
    pub fn overlay(&self) -> Vec<u8> {
        self.overlay.clone()
    }

    /// Per-pixel probabilities, row-major.
    #[wasm_bindgen(getter)]
    pub fn probabilities(&self) -> Vec<f32> {
        self.mask.data().to_vec()
    }

    /// Fraction of pixels above the threshold.
    #[wasm_bindgen(getter, js_name = positiveFraction)]
    pub fn positive_fraction(&self) -> f32 {
        self.positive_fraction
    }

    /// Wall time of the segmentation in milliseconds.
    #[wasm_bindgen(getter)]
    pub fn millis(&self) -> f64 {
        self.millis
    }
}

impl Segmentation {
    /// The probability mask.
    pub fn mask(&self) -> &ProbMask {
        &self.mask
    }
}

fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn js_value(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

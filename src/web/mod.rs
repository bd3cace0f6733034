//! The wasm facade: what the page (or a Web Worker) calls — [`WebSlide`] (a streamed slide),
//! [`WebModel`] (a trained model on WebGPU or the CPU), [`SegmentRun`] (the one way to segment: a
//! whole slide or a region, with progress, [`Cancel`] and a [`WebPrediction`] at the end), and
//! [`parse_annotations`] / [`dice_of_annotations`] for imported GeoJSON — whose methods take and
//! return plain values, typed arrays or serde values; everything else stays in Rust.

mod annotations;
mod device;
mod review;
mod segment;
mod slides;
mod tune;

use wasm_bindgen::prelude::*;

pub use annotations::{dice_of_annotations, parse_annotations};
pub use device::{GpuErrorLog, init_device};
pub use review::WebReview;
pub use segment::{Cancel, SegmentRun, WebModel, WebPrediction, WindowRunner};
pub use slides::WebSlide;
pub use tune::WebTune;

/// Sets up readable Rust panics, and warnings and errors logged by Rust code (burn and cubecl log
/// GPU problems through `log`), in the browser console. Runs once when the module loads.
/// [`WebModel::load`] calls it too, for hosts (test runners) that skip the start function. Idempotent.
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

fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn js_value(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// A serde value as a plain JS value, through JSON: objects, `null` for `None` and for non-finite
/// numbers. serde-wasm-bindgen's serializer builds the value call by call across the wasm boundary:
/// 320 ms for a 3.5 KB segmentation summary and ~10 ms per progress event in the dev build, against
/// ~1 ms for `JSON.parse` (issue #29: it was the engine's serial tail in the CPU pool).
fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsError> {
    let json = serde_json::to_string(value).map_err(js_error)?;
    js_sys::JSON::parse(&json).map_err(|e| js_error(format!("{e:?}")))
}

/// A plain JS value (JSON-compatible) as a serde value, through JSON: the other direction of
/// [`to_js`], for values on a hot path (serde-wasm-bindgen's deserializer, like its serializer,
/// crosses the wasm boundary per field).
fn from_js<T: serde::de::DeserializeOwned>(value: &JsValue) -> Result<T, JsError> {
    let json = js_sys::JSON::stringify(value).map_err(|e| js_error(format!("{e:?}")))?;
    serde_json::from_str(&String::from(json)).map_err(js_error)
}

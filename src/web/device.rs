//! The browser's one asynchronous device start-up: WebGPU when the browser offers it, the CPU
//! backend otherwise. WebGPU is started once per page and shared by every [`WebModel`](super::WebModel).

use crate::backend::{BackendInfo, DeviceChoice};
use burn::prelude::Device;
use burn::tensor::wgpu::{WgpuBackend, WgpuInitError, wgpu};
use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use wasm_bindgen::{JsCast, JsValue};

/// WebGPU errors raised outside any call (validation, out-of-memory), collected so that
/// [`SegmentRun::resume`](super::SegmentRun::resume) turns them into a failed run instead of a
/// panic in an event handler. One log per page, shared like the device.
#[derive(Clone, Debug, Default)]
pub struct GpuErrorLog(Arc<Mutex<Vec<String>>>);

impl GpuErrorLog {
    /// Records an error: the device's uncaptured-error handler calls it (and tests, to stand in
    /// for a validation error the test browser would not raise on its own).
    pub fn push(&self, error: String) {
        if let Ok(mut errors) = self.0.lock() {
            errors.push(error);
        }
    }

    /// Removes and returns the errors collected so far.
    pub fn take(&self) -> Vec<String> {
        self.0.lock().map(|mut e| std::mem::take(&mut *e)).unwrap_or_default()
    }
}

thread_local! {
    /// The page's WebGPU device once started (burn allows one `init_async` per page).
    static WEBGPU: RefCell<Option<(Device, BackendInfo, GpuErrorLog)>> = const { RefCell::new(None) };
}

/// Starts the device named by `backend` (`auto`, `webgpu` or `cpu`).
///
/// `auto` falls back to the CPU, with a notice in the returned [`BackendInfo`], when the browser has
/// no `navigator.gpu` or no adapter; `webgpu` returns the reason as an error instead.
pub async fn init_device(backend: &str) -> Result<(Device, BackendInfo, Option<GpuErrorLog>), String> {
    let strict = match backend {
        "auto" => false,
        "cpu" => return Ok((Device::flex(), BackendInfo::cpu(None), None)),
        other => match other.parse::<DeviceChoice>().map_err(|e| e.to_string())? {
            DeviceChoice::Wgpu => true,
            DeviceChoice::Cpu => return Ok((Device::flex(), BackendInfo::cpu(None), None)),
            DeviceChoice::Cuda => return Err("CUDA is not available in a browser".into()),
        },
    };
    if let Some(started) = WEBGPU.with(|w| w.borrow().clone()) {
        return Ok((started.0, started.1, Some(started.2)));
    }
    match start_webgpu().await {
        Ok(started) => {
            WEBGPU.with(|w| *w.borrow_mut() = Some(started.clone()));
            Ok((started.0, started.1, Some(started.2)))
        }
        Err(reason) if !strict => Ok((
            Device::flex(),
            BackendInfo::cpu(Some(format!(
                "WebGPU unavailable ({reason}); running on the CPU instead (slower than a GPU on large images)"
            ))),
            None,
        )),
        Err(reason) => Err(format!("WebGPU unavailable: {reason}")),
    }
}

async fn start_webgpu() -> Result<(Device, BackendInfo, GpuErrorLog), String> {
    if !has_navigator_gpu() {
        return Err("this browser has no navigator.gpu".into());
    }
    let (device, setup) = Device::wgpu_options().graphics_api(WgpuBackend::WebGpu).init_with_setup_async().await.map_err(|e| match e {
        WgpuInitError::AdapterUnavailable { .. } => "the browser offers no WebGPU adapter".to_string(),
        other => other.to_string(),
    })?;
    // Replace cubecl's handler, which panics on any uncaptured error: in wasm a panic in an event
    // handler leaves the module unsound. Errors are collected and fail the run instead.
    let log = GpuErrorLog::default();
    let sink = log.clone();
    setup.device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| sink.push(error.to_string())));
    // wgpu reports no adapter name on WebGPU; the browser's GPUAdapterInfo has what it exposes.
    let adapter = browser_adapter_info().await.unwrap_or_else(|| "WebGPU adapter (the browser does not name it)".into());
    let info = BackendInfo { device: DeviceChoice::Wgpu, backend: "wgpu/webgpu".into(), adapter, notice: None };
    Ok((device, info, log))
}

/// `vendor / architecture / device / description` of the browser's default adapter, as far as the
/// browser reveals them (e.g. "google / swiftshader / … / SwiftShader Device (Subzero)").
async fn browser_adapter_info() -> Option<String> {
    let get = |target: &JsValue, key: &str| js_sys::Reflect::get(target, &JsValue::from_str(key)).ok();
    let gpu = get(&get(&js_sys::global(), "navigator")?, "gpu")?;
    let request: js_sys::Function = get(&gpu, "requestAdapter")?.dyn_into().ok()?;
    let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    if adapter.is_null() || adapter.is_undefined() {
        return None;
    }
    let info = get(&adapter, "info")?;
    let parts: Vec<String> = ["vendor", "architecture", "device", "description"]
        .iter()
        .filter_map(|key| get(&info, key)?.as_string())
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" / "))
}

fn has_navigator_gpu() -> bool {
    let global = js_sys::global();
    js_sys::Reflect::get(&global, &JsValue::from_str("navigator"))
        .and_then(|nav| js_sys::Reflect::get(&nav, &JsValue::from_str("gpu")))
        .map(|gpu| !gpu.is_undefined() && !gpu.is_null())
        .unwrap_or(false)
}

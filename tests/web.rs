//! Browser tests (headless Chromium, WebGPU on SwiftShader here): the placeholder network must run
//! on WebGPU and on the CPU backend inside the page, agree between them and with the native build,
//! and leave no error, panic or WebGPU validation message behind.
#![cfg(target_arch = "wasm32")]

use burn::prelude::*;
use ftuscope::model::{DecoderKind, EncoderKind, SegmenterConfig, seeded};
use ftuscope::slide::test_pattern;
use ftuscope::slide::{MemorySource, Slide};
use ftuscope::web::{Engine, WebSlide};
use std::sync::Arc;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The fingerprint `src/infer/tests.rs` checks natively (placeholder network, 64×64 pattern, tile
/// 64): mean probability, and the probabilities at pixels (10, 10) and (40, 45).
const PLACEHOLDER_FINGERPRINT_64: [f32; 3] = [0.513_692_6, 0.513_601, 0.500_958_3];

/// Records console errors, uncaught exceptions and unhandled rejections from the moment it is
/// installed: a Rust panic (console_error_panic_hook) or a failing GPU callback shows up here even
/// when the awaited call itself returns normally.
struct ErrorTrap;

impl ErrorTrap {
    fn install() -> Self {
        let body = r#"
            if (!globalThis.__ftuscopeErrors) {
                const errors = globalThis.__ftuscopeErrors = [];
                const original = console.error;
                console.error = function (...args) { errors.push(args.map(String).join(' ')); return original.apply(this, args); };
                globalThis.addEventListener('error', (e) => errors.push('uncaught: ' + e.message));
                globalThis.addEventListener('unhandledrejection', (e) => errors.push('unhandled rejection: ' + e.reason));
            }
            globalThis.__ftuscopeErrors.length = 0;
        "#;
        js_sys::Function::new_no_args(body).call0(&wasm_bindgen::JsValue::NULL).expect("trap installs");
        ErrorTrap
    }

    fn assert_clean(&self) {
        let errors = js_sys::Reflect::get(&js_sys::global(), &"__ftuscopeErrors".into()).expect("trap installed");
        let errors: Vec<String> = js_sys::Array::from(&errors).iter().filter_map(|e| e.as_string()).collect();
        assert!(errors.is_empty(), "errors in the page: {errors:#?}");
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn fingerprint(p: &[f32]) -> [f32; 3] {
    [p.iter().sum::<f32>() / p.len() as f32, p[10 * 64 + 10], p[45 * 64 + 40]]
}

#[wasm_bindgen_test]
async fn cpu_backend_in_the_browser_matches_the_native_build() {
    let trap = ErrorTrap::install();
    let engine = Engine::start("cpu", 64).await.expect("the CPU engine starts");
    let result = engine.segment(test_pattern(64, 64)).await.expect("segmentation succeeds");
    let got = fingerprint(result.mask().data());
    console_log!("CPU (flex) in the browser: fingerprint {got:?} (native: {PLACEHOLDER_FINGERPRINT_64:?})");
    for (g, want) in got.iter().zip(PLACEHOLDER_FINGERPRINT_64) {
        assert!((g - want).abs() < 1e-5, "browser CPU {got:?} != native {PLACEHOLDER_FINGERPRINT_64:?}");
    }
    trap.assert_clean();
}

#[wasm_bindgen_test]
async fn webgpu_matches_the_cpu_backend() {
    let trap = ErrorTrap::install();
    let gpu = Engine::start("webgpu", 64).await.expect("WebGPU starts in the test browser");
    let info = gpu.backend_info();
    console_log!("WebGPU adapter: {} (backend {})", info.adapter, info.backend);
    assert_eq!(info.backend, "wgpu/webgpu");
    assert!(!info.adapter.contains("does not name it"), "the adapter is named: {}", info.adapter);
    let cpu = Engine::start("cpu", 64).await.expect("the CPU engine starts");

    let image = test_pattern(128, 64);
    let on_gpu = gpu.segment(image.clone()).await.expect("WebGPU segmentation succeeds without GPU errors");
    let on_cpu = cpu.segment(image.clone()).await.expect("CPU segmentation succeeds");
    let diff = max_abs_diff(on_gpu.mask().data(), on_cpu.mask().data());
    console_log!("WebGPU vs CPU: max |Δp| = {diff:.2e}; first run {:.0} ms (shader compilation included)", on_gpu.millis());
    assert!(diff <= 1e-3, "WebGPU and CPU disagree by {diff}");

    // A second run reuses the compiled pipelines and must give the same answer.
    let again = gpu.segment(image).await.expect("second WebGPU run");
    console_log!("WebGPU second run {:.0} ms", again.millis());
    assert!(max_abs_diff(again.mask().data(), on_gpu.mask().data()) <= 1e-6);
    trap.assert_clean();
}

#[wasm_bindgen_test]
async fn auto_prefers_webgpu_and_bad_input_is_an_error_not_a_panic() {
    let trap = ErrorTrap::install();
    let engine = Engine::start("auto", 64).await.expect("auto starts");
    assert_eq!(engine.backend_info().backend, "wgpu/webgpu", "auto picks WebGPU when it is there");
    assert!(engine.backend_info().notice.is_none());
    assert!(Engine::start("tpu", 64).await.is_err());
    assert!(Engine::start("cpu", 30).await.is_err(), "tile 30 is not a multiple of 4");
    trap.assert_clean();
}

/// tests/slide.rs checks the same numbers natively: mean R, G, B of level 0's (10, 20, 200×150).
const CROP_MEAN: [f64; 3] = [167.471_433, 120.423_933, 155.451_367];
const CROP: &[u8] = include_bytes!("data/cmu-300x200.tif");

#[wasm_bindgen_test]
async fn slides_stream_from_a_blob_and_from_fetch_with_the_same_pixels_as_natively() {
    let trap = ErrorTrap::install();
    let memory = Slide::open(Arc::new(MemorySource::new(CROP.to_vec(), "memory"))).await.unwrap();
    let expected = memory.read_region(0, 10, 20, 200, 150).await.unwrap();
    let mean: Vec<f64> = (0..3).map(|c| expected.pixels().map(|p| p.0[c] as f64).sum::<f64>() / (200.0 * 150.0)).collect();
    for c in 0..3 {
        // JPEG decoding may round differently with and without SIMD: within half a level on average.
        assert!((mean[c] - CROP_MEAN[c]).abs() < 0.5, "{mean:?} vs native {CROP_MEAN:?}");
    }
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(CROP));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap();
    let from_blob = WebSlide::open_source(blob.clone().into()).await.unwrap();
    assert_eq!(from_blob.slide().levels().len(), 4);
    assert!(from_blob.slide().read_region(0, 10, 20, 200, 150).await.unwrap() == expected, "Blob");
    let url = web_sys::Url::create_object_url_with_blob(&blob).unwrap();
    let from_fetch = WebSlide::open_source(url.clone().into()).await.unwrap();
    assert!(from_fetch.slide().read_region(0, 10, 20, 200, 150).await.unwrap() == expected, "fetch");
    let thumb = from_fetch.slide().thumbnail(64).await.unwrap();
    assert_eq!(thumb.width(), 64);
    let missing = WebSlide::open_source(format!("{url}-gone").into()).await.err().unwrap();
    assert!(missing.contains("-gone"), "{missing}");
    let not_tiff = WebSlide::open_source(
        web_sys::Blob::new_with_u8_array_sequence(&js_sys::Array::of1(&js_sys::Uint8Array::from(&b"GIF89a"[..]))).unwrap().into(),
    )
    .await
    .err()
    .unwrap();
    assert!(not_tiff.contains("not a TIFF"), "{not_tiff}");
    trap.assert_clean();
}

/// `make test-wasm` runs tests/server/range-server.mjs here (CORS, Range, misbehaving modes).
const RANGE_SERVER: &str = "http://127.0.0.1:8788";

#[wasm_bindgen_test]
async fn slides_stream_from_an_http_server_with_range_and_errors_are_readable() {
    let trap = ErrorTrap::install();
    let memory = Slide::open(Arc::new(MemorySource::new(CROP.to_vec(), "memory"))).await.unwrap();
    let expected = memory.read_region(1, 0, 0, 150, 100).await.unwrap();
    for mode in ["range", "norange", "flaky"] {
        let url = format!("{RANGE_SERVER}/{mode}/cmu-300x200.tif");
        let slide = WebSlide::open_source(url.clone().into()).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(slide.slide().read_region(1, 0, 0, 150, 100).await.unwrap() == expected, "{url}");
    }
    for (path, words) in
        [("status/404", "HTTP 404"), ("status/403", "HTTP 403"), ("status/500", "HTTP 500"), ("range/missing.tif", "HTTP 404")]
    {
        let url = format!("{RANGE_SERVER}/{path}");
        let err = WebSlide::open_source(url.clone().into()).await.err().unwrap();
        assert!(err.contains(words) && err.ends_with(&url), "{err}");
    }
    trap.assert_clean();
}

/// Tells the range server how `/switch/…` behaves from now on (none, wrongrange, drop, slow).
async fn set_server(mode: &str) {
    use wasm_bindgen::JsCast;
    let fetch: js_sys::Function = js_sys::Reflect::get(&js_sys::global(), &"fetch".into()).unwrap().dyn_into().unwrap();
    let promise: js_sys::Promise =
        fetch.call1(&js_sys::global(), &format!("{RANGE_SERVER}/set/{mode}").into()).unwrap().dyn_into().unwrap();
    let response: web_sys::Response = wasm_bindgen_futures::JsFuture::from(promise).await.unwrap().dyn_into().unwrap();
    assert_eq!(response.status(), 200);
}

/// The browser transport against a misbehaving server, after the slide opened: a shifted
/// Content-Range, a connection cut mid-body and a server that stops answering are each a readable
/// error on every read (nothing corrupt is cached: the same region reads correctly once the server
/// behaves), a stalled request is aborted after the policy's timeout, and a redirect is followed.
#[wasm_bindgen_test]
async fn hostile_servers_are_readable_errors_and_never_a_corrupt_tile() {
    use ftuscope::slide::source::{FetchSource, RetryPolicy};
    let trap = ErrorTrap::install();
    const SYNTH: &[u8] = include_bytes!("data/synth-3072x2048.tif");
    let memory = Slide::open(Arc::new(MemorySource::new(SYNTH.to_vec(), "memory"))).await.unwrap();
    let expected = memory.read_region(0, 1000, 900, 300, 200).await.unwrap();
    set_server("none").await;
    let redirected = WebSlide::open_source(format!("{RANGE_SERVER}/redirect/synth-3072x2048.tif").into()).await.unwrap();
    assert!(redirected.slide().read_region(0, 1000, 900, 300, 200).await.unwrap() == expected, "redirect");
    let url = format!("{RANGE_SERVER}/switch/synth-3072x2048.tif");
    let policy = RetryPolicy { retries: 1, backoff_ms: 10, timeout_s: 1 };
    for (mode, words) in [("wrongrange", "Content-Range"), ("drop", ""), ("slow", "timed out")] {
        set_server("none").await;
        let slide = Slide::open(Arc::new(FetchSource::open(&url, policy).await.unwrap())).await.unwrap();
        set_server(mode).await;
        for attempt in 0..2 {
            let started = js_sys::Date::now();
            let err =
                slide.read_region(0, 1000, 900, 300, 200).await.err().unwrap_or_else(|| panic!("{mode}: a read succeeded")).to_string();
            let seconds = (js_sys::Date::now() - started) / 1000.0;
            console_log!("{mode}, read {attempt}: error after {seconds:.1} s: {err}");
            assert!(err.contains(words) && err.contains(&url), "{mode}: {err}");
            if mode == "slow" {
                // Two attempts (one retry) of one second each, plus the backoff.
                assert!((1.9..6.0).contains(&seconds), "{seconds} s");
            }
        }
        set_server("none").await;
        assert!(
            slide.read_region(0, 1000, 900, 300, 200).await.unwrap() == expected,
            "{mode}: the server behaves again and the pixels are right"
        );
    }
    trap.assert_clean();
}

#[wasm_bindgen_test]
async fn the_tiny_segmentation_model_runs_on_webgpu_and_matches_the_cpu() {
    let trap = ErrorTrap::install();
    // The tiny encoder under the smp U-Net decoder: batch norm, SiLU-free conv stages, nearest
    // upsampling, concatenation — the operations of the real networks, at test size.
    let config = SegmenterConfig::new(EncoderKind::Tiny, DecoderKind::Unet).with_decoder_channels(vec![32, 24, 16, 8, 8]);
    let cpu_model = seeded(config.init(&Device::flex()), 5);
    let (device, info, errors) = ftuscope::web::init_device("webgpu").await.expect("WebGPU starts");
    assert_eq!(info.backend, "wgpu/webgpu");
    // Built again rather than cloned: burn's BatchNorm running statistics are shared between clones,
    // so moving a clone to the GPU would move the CPU model's statistics too.
    let gpu_model = seeded(config.init(&Device::flex()), 5).to_device(&device);
    let values: Vec<f32> = (0..3 * 64 * 64).map(|i| ((i * 37 % 101) as f32) / 101.0 - 0.5).collect();
    let input = |d: &Device| Tensor::<4>::from_data(TensorData::new(values.clone(), [1, 3, 64, 64]), d);
    let on_cpu: Vec<f32> = cpu_model.forward(input(&Device::flex())).into_data_async().await.unwrap().try_into_vec().unwrap();
    let on_gpu: Vec<f32> = gpu_model.forward(input(&device)).into_data_async().await.unwrap().try_into_vec().unwrap();
    assert_eq!(on_gpu.len(), 64 * 64);
    let diff = max_abs_diff(&on_gpu, &on_cpu);
    console_log!("tiny U-Net, WebGPU vs CPU: max |Δlogit| = {diff:e}");
    assert!(diff < 1e-3, "{diff}");
    assert!(on_cpu.iter().any(|v| (v - on_cpu[0]).abs() > 1e-3), "the logits vary (a degenerate network proves nothing)");
    if let Some(errors) = errors {
        assert!(errors.take().is_empty(), "no WebGPU errors");
    }
    trap.assert_clean();
}

#[wasm_bindgen_test]
async fn the_whole_slide_engine_runs_in_the_browser_on_webgpu_within_its_memory_budget() {
    use ftuscope::infer::{NetModel, PlanConfig, WsiConfig, predict_slide};
    use wasm_bindgen::JsCast;
    let trap = ErrorTrap::install();
    let slide = Slide::open(Arc::new(MemorySource::new(CROP.to_vec(), "crop.tif"))).await.unwrap();
    let (device, _, errors) = ftuscope::web::init_device("webgpu").await.expect("WebGPU starts");
    let config = SegmenterConfig::new(EncoderKind::Tiny, DecoderKind::Unet).with_decoder_channels(vec![32, 24, 16, 8, 8]);
    let net = NetModel::new(seeded(config.init(&Device::flex()), 5).to_device(&device), &device, 2).unwrap();
    // 256 px windows at model size 128 over the 300×200 crop: a few windows, all on tissue.
    let wsi = WsiConfig::new().with_plan(PlanConfig::new().with_window(256).with_overlap(64).with_model_size(128)).with_min_area(0.0);
    let mut updates = 0;
    let prediction = predict_slide(&slide, &net, &wsi, &std::sync::atomic::AtomicBool::new(false), &mut |p, u| {
        updates += u.len();
        assert!(p.done <= p.total);
    })
    .await
    .expect("the engine runs in wasm");
    assert_eq!(updates, prediction.plan.windows.len());
    assert!(!prediction.plan.windows.is_empty());
    assert_eq!((prediction.width, prediction.height), (300, 200));
    let _ = prediction.rle(0.5, 0.0);
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().dyn_into().unwrap();
    let bytes = memory.buffer().dyn_into::<js_sys::ArrayBuffer>().unwrap().byte_length() as f64;
    console_log!("whole-slide engine in wasm: {} windows, wasm memory {:.0} MiB", prediction.plan.windows.len(), bytes / 1048576.0);
    assert!(bytes <= 512.0 * 1048576.0, "wasm memory {bytes} bytes");
    if let Some(errors) = errors {
        assert!(errors.take().is_empty(), "no WebGPU errors");
    }
    trap.assert_clean();
}

/// Benchmarks, not part of `make test` (`make bench-wasm-memory` serves the slide and runs each in
/// its own page, since wasm memory never shrinks): the whole-slide engine over a region of the
/// synthetic 30000×37000 slide streamed from a Range server, overviews built in one pass first,
/// the untrained tiny U-Net at 512 (1536 px windows). Prints the wasm memory high-water mark and
/// asserts the 512 MiB budget. On WebGPU the tensors live on the GPU; on the CPU fallback they
/// live in wasm memory, which is why the app runs the CPU fallback one window at a time.
async fn bench_wasm_memory(webgpu: bool, batch: usize) {
    use ftuscope::infer::{NetModel, PlanConfig, WsiConfig, predict_slide};
    use ftuscope::slide::SlideOptions;
    use ftuscope::slide::source::{FetchSource, RetryPolicy};
    use wasm_bindgen::JsCast;
    let mib = || {
        let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().dyn_into().unwrap();
        memory.buffer().dyn_into::<js_sys::ArrayBuffer>().unwrap().byte_length() as f64 / 1048576.0
    };
    let started = js_sys::Date::now();
    let source = FetchSource::open("http://127.0.0.1:8789/range/big.tiff", RetryPolicy::default())
        .await
        .expect("make bench-wasm-memory serves the slide");
    let slide = Slide::open_with(Arc::new(source), SlideOptions::new().with_cache_bytes(64 << 20)).await.unwrap();
    slide.build_overviews(&mut |_, _| {}).await.unwrap();
    console_log!(
        "overviews of {:?} in {:.1} s, wasm memory {:.0} MiB",
        slide.dimensions(),
        (js_sys::Date::now() - started) / 1000.0,
        mib()
    );
    let device = if webgpu { ftuscope::web::init_device("webgpu").await.expect("WebGPU starts").0 } else { Device::flex() };
    let config = SegmenterConfig::new(EncoderKind::Tiny, DecoderKind::Unet);
    let net = NetModel::new(seeded(config.init(&Device::flex()), 42).to_device(&device), &device, 1).unwrap();
    let wsi = WsiConfig::new().with_plan(PlanConfig::new().with_region(Some([9000, 14000, 4608, 3072]))).with_batch(batch);
    let started = js_sys::Date::now();
    let prediction = predict_slide(&slide, &net, &wsi, &std::sync::atomic::AtomicBool::new(false), &mut |p, _| {
        console_log!("{}/{} windows, {:.2}/s, wasm memory {:.0} MiB", p.done, p.total, p.tiles_per_s, mib());
    })
    .await
    .unwrap();
    let rle = prediction.rle(0.5, 2000.0);
    let peak = mib();
    console_log!(
        "engine in wasm ({}, batch {batch}): {} windows of {}×{} in {:.1} s, RLE {} bytes; wasm memory high-water mark {peak:.0} MiB",
        if webgpu { "WebGPU" } else { "CPU backend" },
        prediction.plan.windows.len(),
        prediction.width,
        prediction.height,
        (js_sys::Date::now() - started) / 1000.0,
        rle.len()
    );
    assert!(peak <= 512.0, "wasm memory {peak:.0} MiB > 512 MiB");
}

#[wasm_bindgen_test]
#[ignore]
async fn bench_wasm_memory_webgpu() {
    bench_wasm_memory(true, 4).await;
}

#[wasm_bindgen_test]
#[ignore]
async fn bench_wasm_memory_cpu() {
    bench_wasm_memory(false, 1).await;
}

/// The trained demo model (www/models/demo) runs over a synthetic slide in the page through the
/// whole-slide API the app uses — on the CPU fallback and on WebGPU — finds its glomeruli (Dice
/// against the slide's truth), streams per-window updates, exports GeoJSON, RLE and a mask PNG,
/// stops when cancelled, and rejects wrong weights with a readable error.
#[wasm_bindgen_test]
async fn a_trained_model_segments_a_slide_in_the_browser() {
    use ftuscope::mask::dice_rle;
    use ftuscope::web::{Cancel, WebModel, segment_slide};
    use wasm_bindgen::JsCast;
    use wasm_bindgen::JsValue;
    const BPK: &[u8] = include_bytes!("../www/models/demo/model.bpk");
    const JSON: &str = include_str!("../www/models/demo/model.json");
    const SLIDE: &[u8] = include_bytes!("data/synth-3072x2048.tif");
    const TRUTH: &str = include_str!("data/synth-3072x2048.rle");
    let trap = ErrorTrap::install();
    let bad = WebModel::load(b"not a model".to_vec(), JSON.into(), "cpu".into()).await;
    assert!(bad.is_err(), "garbage weights must be rejected");
    let blob = web_sys::Blob::new_with_u8_array_sequence(&js_sys::Array::of1(&js_sys::Uint8Array::from(SLIDE))).unwrap();
    let slide = WebSlide::open(blob.into()).await.unwrap();
    let mut counts = Vec::new();
    for backend in ["cpu", "webgpu"] {
        let model = WebModel::load(BPK.to_vec(), JSON.into(), backend.into()).await.unwrap();
        let updates = std::rc::Rc::new(std::cell::Cell::new(0u32));
        let seen = updates.clone();
        let progress = wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let list: js_sys::Array = js_sys::Reflect::get(&event, &"updates".into()).unwrap().dyn_into().unwrap();
            seen.set(seen.get() + list.length());
        });
        let promise =
            segment_slide(&slide, &model, None, Some(progress.as_ref().unchecked_ref::<js_sys::Function>().clone()), &Cancel::new());
        let result = wasm_bindgen_futures::JsFuture::from(promise).await.expect("segmentation runs");
        let prediction: ftuscope::web::WebPrediction =
            wasm_bindgen::convert::TryFromJsValue::try_from_js_value(result).ok().expect("a WebPrediction");
        let summary = prediction.summary().unwrap();
        let count = js_sys::Reflect::get(&summary, &"count".into()).unwrap().as_f64().unwrap() as usize;
        let windows = js_sys::Reflect::get(&summary, &"windows".into()).unwrap().as_f64().unwrap() as u32;
        let dice = dice_rle(TRUTH.trim(), &prediction.rle()).unwrap();
        console_log!(
            "demo model in the browser ({backend}): {count} glomeruli, Dice {dice:.4}, {windows} windows, {} updates",
            updates.get()
        );
        assert_eq!(updates.get(), windows, "one update per window");
        assert!(dice >= 0.85, "{backend}: Dice {dice}");
        let geojson = prediction.geojson();
        assert_eq!(geojson.matches("\"Glomerulus\"").count(), count, "{geojson}");
        assert!(prediction.mask_png(256).unwrap().starts_with(b"\x89PNG"));
        counts.push(count);
        // Cancelled before it starts: rejects, nothing else breaks.
        let cancel = Cancel::new();
        cancel.cancel();
        let cancelled =
            wasm_bindgen_futures::JsFuture::from(segment_slide(&slide, &model, Some(vec![0.0, 0.0, 1024.0, 1024.0]), None, &cancel)).await;
        assert!(cancelled.is_err(), "a cancelled run must reject");
    }
    assert_eq!(counts[0], counts[1], "CPU and WebGPU find the same glomeruli");
    trap.assert_clean();
}

/// Whole-slide segmentation cancelled part-way and restarted again and again leaks nothing: the
/// wasm memory high-water mark after ten cancelled runs and a full one is what one full run needed.
#[wasm_bindgen_test]
async fn cancelling_and_restarting_segmentation_does_not_leak() {
    use ftuscope::web::{Cancel, WebModel, segment_slide};
    use wasm_bindgen::JsCast;
    const BPK: &[u8] = include_bytes!("../www/models/demo/model.bpk");
    const JSON: &str = include_str!("../www/models/demo/model.json");
    const SLIDE: &[u8] = include_bytes!("data/synth-3072x2048.tif");
    let trap = ErrorTrap::install();
    let mib = || {
        let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().dyn_into().unwrap();
        memory.buffer().dyn_into::<js_sys::ArrayBuffer>().unwrap().byte_length() as f64 / 1048576.0
    };
    let blob = web_sys::Blob::new_with_u8_array_sequence(&js_sys::Array::of1(&js_sys::Uint8Array::from(SLIDE))).unwrap();
    let slide = WebSlide::open(blob.into()).await.unwrap();
    let model = WebModel::load(BPK.to_vec(), JSON.into(), "cpu".into()).await.unwrap();
    let full = || async {
        wasm_bindgen_futures::JsFuture::from(segment_slide(&slide, &model, None, None, &Cancel::new())).await.expect("a full run")
    };
    drop(full().await);
    drop(full().await);
    let after_full = mib();
    for round in 0..10 {
        let cancel = Cancel::new();
        let stopper = cancel.clone();
        let seen = std::rc::Rc::new(std::cell::Cell::new(0));
        let count = seen.clone();
        let progress = wasm_bindgen::closure::Closure::<dyn FnMut(wasm_bindgen::JsValue)>::new(move |_| {
            count.set(count.get() + 1);
            if count.get() == 1 + round % 3 {
                stopper.cancel();
            }
        });
        let result = wasm_bindgen_futures::JsFuture::from(segment_slide(
            &slide,
            &model,
            None,
            Some(progress.as_ref().unchecked_ref::<js_sys::Function>().clone()),
            &cancel,
        ))
        .await;
        assert!(result.is_err(), "round {round}: the run was cancelled after {} batches", seen.get());
    }
    drop(full().await);
    let after = mib();
    console_log!("wasm memory after two full runs {after_full:.0} MiB; after ten cancelled runs and another full one {after:.0} MiB");
    assert!(after <= after_full + 16.0, "memory grew from {after_full:.0} to {after:.0} MiB");
    trap.assert_clean();
}

//! Browser tests (headless Chromium, WebGPU on SwiftShader here): slides stream from a Blob, from
//! `fetch` and from misbehaving HTTP servers with the native pixels; the trained demo model runs
//! over whole slides through `SegmentRun` — the app's one way to segment — on WebGPU and on the CPU
//! backend inside the page, agreeing between them and with the native build, with typed progress
//! events, cancellation, GPU errors failing the run, and wasm memory within budget; imported
//! annotations are read by the crate's GeoJSON reader; and no error, panic or WebGPU validation
//! message is left behind.
#![cfg(target_arch = "wasm32")]

use burn::prelude::*;
use ftuscope::model::{DecoderKind, EncoderKind, SegmenterConfig, seeded};
use ftuscope::slide::{MemorySource, Slide};
use ftuscope::web::{Cancel, SegmentRun, WebModel, WebPrediction, WebSlide};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The committed demo model (www/models/fast), as the app loads it.
const BPK: &[u8] = include_bytes!("../www/models/fast/model.bpk");
const MANIFEST: &str = include_str!("../www/models/fast/model.json");
/// A synthetic 3072×2048 slide with 4 glomeruli, and its truth as the competition's RLE.
const SYNTH: &[u8] = include_bytes!("data/synth-3072x2048.tif");
const TRUTH: &str = include_str!("data/synth-3072x2048.rle");

/// What the native build finds with the demo model on the CPU over `SYNTH` (`ftuscope predict
/// tests/data/synth-3072x2048.tif --model www/models/fast --device cpu`, batch 1 or 4 alike, then
/// `ftuscope eval` against the truth): glomeruli, and the competition's Dice.
const NATIVE_DEMO_ON_SYNTH: (usize, f64) = (4, 0.982_918);

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
        js_sys::Function::new_no_args(body).call0(&JsValue::NULL).expect("trap installs");
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

fn get(target: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(target, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// The message of a rejection or a thrown `JsError`.
fn message(error: JsValue) -> String {
    match error.dyn_ref::<js_sys::Error>() {
        Some(e) => String::from(e.message()),
        None => error.as_string().unwrap_or_else(|| format!("{error:?}")),
    }
}

fn wasm_memory_mib() -> f64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().dyn_into().unwrap();
    memory.buffer().dyn_into::<js_sys::ArrayBuffer>().unwrap().byte_length() as f64 / 1048576.0
}

/// A slide opened from a Blob, as the app opens a dropped file.
async fn blob_slide(bytes: &[u8]) -> WebSlide {
    let blob = web_sys::Blob::new_with_u8_array_sequence(&js_sys::Array::of1(&js_sys::Uint8Array::from(bytes))).unwrap();
    WebSlide::open(blob.into()).await.unwrap_or_else(|e| panic!("{}", message(e.into())))
}

async fn demo_model(backend: &str) -> WebModel {
    bundled_model(BPK, MANIFEST, backend).await
}

/// A bundled model's weights and manifest, loaded as the app loads them, on `backend`.
async fn bundled_model(bpk: &[u8], manifest: &str, backend: &str) -> WebModel {
    WebModel::load(bpk.to_vec(), manifest.into(), backend.into()).await.unwrap_or_else(|e| panic!("{backend}: {}", message(e.into())))
}

/// `SegmentRun.start(slide, model, options)` as the worker calls it; `options` is JSON text.
async fn start_run(slide: &WebSlide, model: &WebModel, options: &str) -> Result<SegmentRun, String> {
    let options = js_sys::JSON::parse(options).expect("options are JSON");
    let run = JsFuture::from(SegmentRun::start(slide, model, options)).await.map_err(message)?;
    wasm_bindgen::convert::TryFromJsValue::try_from_js_value(run).map_err(|_| "start did not resolve to a SegmentRun".to_string())
}

/// `run.resume(model, progress, cancel)`.
async fn resume(run: &SegmentRun, model: &WebModel, progress: Option<&Progress>, cancel: &Cancel) -> Result<(), String> {
    let progress = progress.map(|p| p.closure.as_ref().unchecked_ref::<js_sys::Function>().clone());
    JsFuture::from(run.resume(model, progress, cancel)).await.map(drop).map_err(message)
}

/// start → resume → finish: what the worker does when the GPU stays.
async fn segment(
    slide: &WebSlide,
    model: &WebModel,
    options: &str,
    progress: Option<&Progress>,
    cancel: &Cancel,
) -> Result<WebPrediction, String> {
    let run = start_run(slide, model, options).await?;
    resume(&run, model, progress, cancel).await?;
    run.finish().map_err(|e| message(e.into()))
}

/// What the progress events of a run carried, checked against their documented shape: `{done,
/// total, windows_per_s, eta_s, updates: [{x, y, window, size, probs: Uint8Array}]}`.
#[derive(Default)]
struct Seen {
    events: u32,
    updates: u32,
    /// Each window's probability bytes, by its level-0 position.
    windows: BTreeMap<(i64, i64), Vec<u8>>,
    /// Shape violations (a panic inside a JS callback would be swallowed by the caller).
    problems: Vec<String>,
}

/// A progress callback that records into `seen`; `then(events so far)` runs after each event.
struct Progress {
    seen: Rc<RefCell<Seen>>,
    closure: Closure<dyn FnMut(JsValue)>,
}

impl Progress {
    fn new(expected_window: u32, expected_size: u32, mut then: impl FnMut(u32) + 'static) -> Self {
        let seen = Rc::new(RefCell::new(Seen::default()));
        let sink = seen.clone();
        let closure = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let events = {
                let mut s = sink.borrow_mut();
                s.events += 1;
                let number = |key: &str| get(&event, key).as_f64();
                match (number("done"), number("total"), number("windows_per_s"), number("eta_s")) {
                    (Some(done), Some(total), Some(rate), Some(_)) if done <= total && rate >= 0.0 => {}
                    other => {
                        let event = s.events;
                        s.problems.push(format!("event {event}: done/total/windows_per_s/eta_s {other:?}"))
                    }
                }
                let updates = get(&event, "updates").dyn_into::<js_sys::Array>().map(|a| a.to_vec()).unwrap_or_default();
                for u in updates {
                    s.updates += 1;
                    let (x, y) = (get(&u, "x").as_f64().unwrap_or(f64::NAN), get(&u, "y").as_f64().unwrap_or(f64::NAN));
                    let (window, size) = (get(&u, "window").as_f64(), get(&u, "size").as_f64());
                    match get(&u, "probs").dyn_into::<js_sys::Uint8Array>() {
                        Ok(probs) if window == Some(expected_window as f64) && size == Some(expected_size as f64) => {
                            if probs.length() != expected_size * expected_size {
                                s.problems.push(format!("window at {x}, {y}: {} probabilities", probs.length()));
                            }
                            s.windows.insert((x as i64, y as i64), probs.to_vec());
                        }
                        _ => s.problems.push(format!("update at {x}, {y}: window {window:?}, size {size:?}, probs not a Uint8Array")),
                    }
                }
                s.events
            };
            then(events);
        });
        Progress { seen, closure }
    }

    /// A recorder for the demo model's windows on a 0.5 µm/px slide (1024 level-0 px at 256 model px).
    fn demo() -> Self {
        Self::demo_at(0.5)
    }

    /// A recorder for the demo model's windows on a slide of `pixel_size_um` µm/px (resampled to its 2 µm/px).
    fn demo_at(pixel_size_um: f64) -> Self {
        let manifest = ftuscope::model::Manifest::from_json(MANIFEST).expect("the demo manifest");
        Self::new(manifest.window_for(Some(pixel_size_um)), manifest.model.input_size as u32, |_| {})
    }
}

/// The largest difference between the bytes of windows present in both runs, and how many there were.
fn max_byte_diff(a: &BTreeMap<(i64, i64), Vec<u8>>, b: &BTreeMap<(i64, i64), Vec<u8>>) -> (u8, usize) {
    let shared: Vec<_> = a.keys().filter(|k| b.contains_key(k)).collect();
    let diff = shared.iter().flat_map(|k| a[k].iter().zip(&b[k]).map(|(x, y)| x.abs_diff(*y))).max().unwrap_or(0);
    (diff, shared.len())
}

fn summary_number(prediction: &WebPrediction, key: &str) -> f64 {
    get(&prediction.summary().unwrap(), key).as_f64().unwrap_or_else(|| panic!("summary.{key}"))
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

/// Peak signal-to-noise ratio in dB of two images of the same size (as tests/common/mod.rs natively).
fn psnr(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let mse = a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / a.as_raw().len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-12)).log10()
}

/// A fixture: its name, its bytes, and OpenSlide 4's decoding of each of its two levels (PNG).
type Fixture = (&'static str, &'static [u8], [&'static [u8]; 2]);

/// Aperio JPEG 2000 SVS fixtures (both codes).
const APERIO_J2K: [Fixture; 2] = [
    (
        "33003",
        include_bytes!("data/aperio-j2k-33003.svs"),
        [include_bytes!("data/aperio-j2k-33003.openslide-0.png"), include_bytes!("data/aperio-j2k-33003.openslide-1.png")],
    ),
    (
        "33005",
        include_bytes!("data/aperio-j2k-33005.svs"),
        [include_bytes!("data/aperio-j2k-33005.openslide-0.png"), include_bytes!("data/aperio-j2k-33005.openslide-1.png")],
    ),
];

/// tests/data/ome-rgb-pages.ome.tif (three channel pages, SubIFD pyramids; tifffile) and tifffile's
/// decoding of its two levels.
const OME_PAGES: (&[u8], [&[u8]; 2]) = (
    include_bytes!("data/ome-rgb-pages.ome.tif"),
    [include_bytes!("data/ome-rgb-pages.tifffile-0.png"), include_bytes!("data/ome-rgb-pages.tifffile-1.png")],
);

#[wasm_bindgen_test]
async fn aperio_jpeg2000_reads_in_the_browser_as_openslide_and_foreign_formats_are_named() {
    let trap = ErrorTrap::install();
    for (code, svs, peers) in APERIO_J2K {
        let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(svs));
        let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap();
        let slide = WebSlide::open_source(blob.into()).await.unwrap();
        let levels = slide.slide().levels();
        assert_eq!(levels.len(), 2, "{code}");
        for (level, png) in peers.iter().enumerate() {
            let theirs = image::load_from_memory(png).unwrap().to_rgb8();
            let l = &levels[level];
            let ours = slide.slide().read_region(level, 0, 0, l.width, l.height).await.unwrap();
            let db = psnr(&ours, &theirs);
            web_sys::console::log_1(&format!("Aperio {code} level {level}: {db:.1} dB against OpenSlide").into());
            assert!(db >= 40.0, "{code} level {level}: {db:.1} dB");
        }
    }
    // Decode speed in this browser (no cache: a fresh slide each time), for the README.
    let (_, svs, _) = APERIO_J2K[1];
    let started = js_sys::Date::now();
    let rounds = 5;
    for _ in 0..rounds {
        let slide = Slide::open(Arc::new(MemorySource::new(svs.to_vec(), "speed.svs"))).await.unwrap();
        slide.read_region(0, 0, 0, 360, 240).await.unwrap();
    }
    let seconds = (js_sys::Date::now() - started) / 1000.0;
    let mb = (rounds * 360 * 240 * 3) as f64 / 1e6;
    web_sys::console::log_1(
        &format!("JPEG 2000 (33005) in wasm: {:.1} decoded MB/s ({rounds} × 360×240 in {seconds:.2} s)", mb / seconds).into(),
    );
    // An OME-TIFF whose three channels are three pages, each with a SubIFD level: RGB at both
    // levels, equal to tifffile's reading.
    let ome = Slide::open(Arc::new(MemorySource::new(OME_PAGES.0.to_vec(), "ome"))).await.unwrap();
    for (level, png) in OME_PAGES.1.iter().enumerate() {
        let theirs = image::load_from_memory(png).unwrap().to_rgb8();
        let (w, h) = theirs.dimensions();
        assert!(ome.read_region(level, 0, 0, w, h).await.unwrap() == theirs, "OME level {level} differs from tifffile's");
    }
    let err = Slide::open(Arc::new(MemorySource::new(b"ZISRAWFILE\0\0\0\0\0\0".to_vec(), "slide.czi"))).await.err().unwrap();
    assert!(err.to_string().starts_with("Zeiss CZI is not read by ftuscope"), "{err}");
    trap.assert_clean();
}

/// A two-level DICOM WSI series (wsidicomizer, JPEG baseline) and OpenSlide 4's decoding of each level.
const DICOM_FILES: [(&str, &[u8]); 2] =
    [("level-0.dcm", include_bytes!("data/dicom-crop/level-0.dcm")), ("level-1.dcm", include_bytes!("data/dicom-crop/level-1.dcm"))];
const DICOM_PEERS: [&[u8]; 2] = [include_bytes!("data/dicom-crop.openslide-0.png"), include_bytes!("data/dicom-crop.openslide-1.png")];

#[wasm_bindgen_test]
async fn a_dicom_series_picked_as_several_files_reads_as_openslide() {
    let trap = ErrorTrap::install();
    // As the picker and a dropped folder hand them over: Files, in no particular order.
    let files = js_sys::Array::new();
    for (name, bytes) in DICOM_FILES.iter().rev() {
        let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(*bytes));
        files.push(&web_sys::File::new_with_u8_array_sequence(&parts, name).unwrap());
    }
    let slide = WebSlide::open_source(files.into()).await.unwrap();
    let info = slide.slide().info();
    assert_eq!((info.vendor, info.levels.len()), ("DICOM WSI", 2));
    for (level, png) in DICOM_PEERS.iter().enumerate() {
        let theirs = image::load_from_memory(png).unwrap().to_rgb8();
        let l = &info.levels[level].level;
        let ours = slide.slide().read_region(level, 0, 0, l.width, l.height).await.unwrap();
        let db = psnr(&ours, &theirs);
        web_sys::console::log_1(&format!("DICOM level {level}: {db:.1} dB against OpenSlide").into());
        assert!(db >= 40.0, "level {level}: {db:.1} dB");
    }
    // Files that hold no DICOM: a readable error.
    let files = js_sys::Array::new();
    for name in ["a.txt", "b.txt"] {
        let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(&b"not a slide"[..]));
        files.push(&web_sys::File::new_with_u8_array_sequence(&parts, name).unwrap());
    }
    let err = WebSlide::open_source(files.into()).await.err().unwrap();
    assert!(err.contains("DICOM"), "{err}");
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

/// The whole-slide path the app uses (`SegmentRun`, demo model, WebGPU) over the real-tissue crop:
/// one progress update per planned window, a prediction of the slide's size, an RLE, no GPU error
/// and wasm memory within its budget.
#[wasm_bindgen_test]
async fn the_whole_slide_engine_runs_in_the_browser_on_webgpu_within_its_memory_budget() {
    let trap = ErrorTrap::install();
    let slide = blob_slide(CROP).await;
    let model = demo_model("webgpu").await;
    assert!(model.is_gpu());
    // The crop records 0.499 µm/px: its windows are 1026 px, resampled to the model's 2 µm/px.
    let progress = Progress::demo_at(0.499_000_002_046_679_7);
    let prediction = segment(&slide, &model, "{}", Some(&progress), &Cancel::new()).await.expect("the engine runs in wasm on WebGPU");
    let seen = std::mem::take(&mut *progress.seen.borrow_mut());
    assert!(seen.problems.is_empty(), "{:#?}", seen.problems);
    let windows = summary_number(&prediction, "windows") as u32;
    assert_eq!(seen.updates, windows, "one update per window");
    assert!(windows > 0, "the crop is tissue: windows are planned");
    assert_eq!((summary_number(&prediction, "width"), summary_number(&prediction, "height")), (300.0, 200.0));
    let _ = prediction.rle();
    let mib = wasm_memory_mib();
    console_log!("whole-slide engine in wasm: {windows} windows, wasm memory {mib:.0} MiB");
    assert!(mib <= 512.0, "wasm memory {mib:.0} MiB");
    let (_, _, errors) = ftuscope::web::init_device("webgpu").await.expect("WebGPU started");
    assert!(errors.expect("WebGPU has an error log").take().is_empty(), "no WebGPU errors");
    trap.assert_clean();
}

/// "auto" picks WebGPU when the browser has it, with a named adapter and no notice; unknown
/// backends, wrong manifests and wrong run options are readable errors, not panics.
#[wasm_bindgen_test]
async fn auto_prefers_webgpu_and_bad_input_is_an_error_not_a_panic() {
    let trap = ErrorTrap::install();
    let model = demo_model("auto").await;
    let info = model.backend().unwrap();
    let (backend, adapter) = (get(&info, "backend").as_string().unwrap(), get(&info, "adapter").as_string().unwrap());
    console_log!("WebGPU adapter: {adapter} (backend {backend})");
    assert_eq!(backend, "wgpu/webgpu", "auto picks WebGPU when it is there");
    assert!(model.is_gpu());
    assert!(!adapter.contains("does not name it"), "the adapter is named: {adapter}");
    assert!(get(&info, "notice").is_null(), "no notice");
    assert_eq!(model.threshold_level(), 128, "the demo manifest's threshold 0.5 on the 0–255 scale");
    assert!(!demo_model("cpu").await.is_gpu());

    let load = |bpk: &[u8], manifest: String, backend: &str| WebModel::load(bpk.to_vec(), manifest, backend.into());
    let err = message(load(BPK, MANIFEST.into(), "tpu").await.err().expect("an unknown backend fails").into());
    assert!(err.contains("tpu"), "{err}");
    let odd = MANIFEST.replace("\"input_size\": 256", "\"input_size\": 250");
    assert_ne!(odd, MANIFEST);
    let err = message(load(BPK, odd, "cpu").await.err().expect("input size 250 is no multiple of the stride").into());
    assert!(err.contains("input_size 250"), "{err}");

    let slide = blob_slide(CROP).await;
    for (options, words) in [
        (r#"{"regoin": [0, 0, 10, 10]}"#, "regoin"),
        (r#"{"region": [0, 0, 10]}"#, "length 3"),
        (r#"{"region": [0, 0, 0, 10]}"#, "positive size"),
        (r#""view""#, "options"),
    ] {
        let err = start_run(&slide, &model, options).await.err().unwrap_or_else(|| panic!("{options} must be refused"));
        console_log!("options {options}: {err}");
        assert!(err.contains(words), "{options}: {err}");
    }
    // A run is used up by finish(); resuming it then is refused.
    let run = start_run(&slide, &model, r#"{"region": null}"#).await.unwrap();
    assert!(run.total() > 0 && run.done() == 0);
    drop(run.finish().unwrap());
    let err = resume(&run, &model, None, &Cancel::new()).await.expect_err("a finished run cannot resume");
    assert!(err.contains("finished"), "{err}");
    trap.assert_clean();
}

/// A WebGPU error raised during a run (validation, out of memory: they arrive through the device's
/// error handler, not as a failed call) fails that `resume` with the GPU's message; the log is then
/// drained and the run can go on. The error is pushed into the page's log, as the handler does: a
/// correct network raises none in the test browser.
#[wasm_bindgen_test]
async fn a_webgpu_error_during_a_run_fails_it() {
    let trap = ErrorTrap::install();
    let slide = blob_slide(CROP).await;
    let model = demo_model("webgpu").await;
    let run = start_run(&slide, &model, "{}").await.unwrap();
    let (_, _, errors) = ftuscope::web::init_device("webgpu").await.expect("WebGPU started");
    let errors = errors.expect("WebGPU has an error log");
    errors.push("Validation Error: Invalid ShaderModule (raised by the test)".into());
    let err = resume(&run, &model, None, &Cancel::new()).await.expect_err("a GPU error fails the run");
    console_log!("resume after a WebGPU error: {err}");
    assert!(err.contains("WebGPU reported 1 error(s)") && err.contains("Invalid ShaderModule"), "{err}");
    assert!(errors.take().is_empty(), "the log is drained");
    resume(&run, &model, None, &Cancel::new()).await.expect("nothing left to fail");
    assert_eq!(run.done(), run.total());
    assert!(run.finish().is_ok());
    // The CPU backend has no WebGPU log: the same error does not touch a CPU run.
    errors.push("Validation Error: raised by the test".into());
    segment(&slide, &demo_model("cpu").await, "{}", None, &Cancel::new()).await.expect("a CPU run ignores WebGPU's log");
    errors.take();
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
    use ftuscope::model::{Manifest, UNTRAINED_SEED};
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
    let slide = Slide::open_with(Arc::new(source), SlideOptions::one_pass()).await.unwrap();
    slide.build_overviews(&mut |_, _| {}).await.unwrap();
    console_log!(
        "overviews of {:?} in {:.1} s, wasm memory {:.0} MiB",
        slide.dimensions(),
        (js_sys::Date::now() - started) / 1000.0,
        mib()
    );
    let device = if webgpu { ftuscope::web::init_device("webgpu").await.expect("WebGPU starts").0 } else { Device::flex() };
    let config = SegmenterConfig::new(EncoderKind::Tiny, DecoderKind::Unet);
    let manifest = Manifest::new("untrained", config.clone());
    let net = NetModel::new(seeded(config.init(&Device::flex()), UNTRAINED_SEED).to_device(&device), &manifest, &device, None).unwrap();
    let wsi = WsiConfig::new().with_plan(PlanConfig::new().with_region(Some([9000, 14000, 4608, 3072]))).with_batch(batch);
    let started = js_sys::Date::now();
    let prediction = predict_slide(&slide, &net, &wsi, &std::sync::atomic::AtomicBool::new(false), &mut |p, _| {
        console_log!("{}/{} windows, {:.2}/s, wasm memory {:.0} MiB", p.done, p.total, p.windows_per_s, mib());
    })
    .await
    .unwrap();
    let rle = prediction.rle(wsi.objects());
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

/// A real PAS kidney crop as a JPEG (no pixel size recorded; ≈1 µm/px), never seen in training.
const REAL: &[u8] = include_bytes!("data/real-kidney-306-crop.jpg");
/// What the native build finds with each bundled model on `REAL` at 1 µm/px on the CPU (`ftuscope
/// predict tests/data/real-kidney-306-crop.jpg --model www/models/MODEL --pixel-size 1`): glomeruli,
/// and the prediction as the competition's RLE (submission.csv). The accurate model normalises the
/// crop's stain to its training tiles' first, in the page as natively.
const NATIVE_FAST_ON_REAL: (usize, &str) = (3, include_str!("data/real-kidney-306-crop.native.rle"));
const NATIVE_ACCURATE_ON_REAL: (usize, &str) = (2, include_str!("data/real-kidney-306-crop.accurate.rle"));
/// The bundled accurate model (www/models/accurate: U-Net-EfficientNet-Lite0, f16 weights).
const ACCURATE_BPK: &[u8] = include_bytes!("../www/models/accurate/model.bpk");
const ACCURATE_MANIFEST: &str = include_str!("../www/models/accurate/model.json");

/// A JPEG opens as a slide in the page (read from a Blob, decoded in wasm), takes the pixel size the
/// user gives, and each bundled model finds in it — on the CPU fallback and on WebGPU — what the
/// native build finds.
#[wasm_bindgen_test]
async fn a_real_kidney_jpeg_segments_in_the_browser_as_natively() {
    let trap = ErrorTrap::install();
    let slide = blob_slide(REAL).await;
    let info = slide.info().unwrap();
    assert_eq!(get(&info, "format").as_string().as_deref(), Some("Jpeg"));
    assert!(get(&info, "pixel_size_um").is_null() || get(&info, "pixel_size_um").is_undefined(), "a JPEG records no pixel size");
    slide.set_pixel_size(Some(1.0));
    assert_eq!(get(&slide.info().unwrap(), "pixel_size_um").as_f64(), Some(1.0));
    let models = [("fast", BPK, MANIFEST, NATIVE_FAST_ON_REAL), ("accurate", ACCURATE_BPK, ACCURATE_MANIFEST, NATIVE_ACCURATE_ON_REAL)];
    for (name, bpk, manifest, (native_count, native_rle)) in models {
        for backend in ["cpu", "webgpu"] {
            let model = bundled_model(bpk, manifest, backend).await;
            let started = js_sys::Date::now();
            let prediction = segment(&slide, &model, "null", None, &Cancel::new()).await.expect("segmentation runs");
            let count = summary_number(&prediction, "count") as usize;
            let agreement = ftuscope::mask::dice_rle(native_rle.trim(), &prediction.rle()).unwrap();
            console_log!(
                "real kidney crop in the browser ({name} model, {backend}): {count} glomeruli (native {native_count}), Dice with the native prediction {agreement:.4}, {} windows, {:.0} ms",
                summary_number(&prediction, "windows"),
                js_sys::Date::now() - started
            );
            assert_eq!(summary_number(&prediction, "pixel_size_um"), 1.0);
            assert_eq!(count, native_count, "{name} on {backend}");
            assert!(agreement >= 0.98, "{name} on {backend}: Dice with the native prediction {agreement:.4}");
        }
    }
    trap.assert_clean();
}

/// The trained demo model (www/models/fast) runs over a synthetic slide in the page through the
/// whole-slide API the app uses (`SegmentRun`) — on the CPU fallback and on WebGPU — finds its
/// glomeruli (Dice against the slide's truth), streams typed per-window updates, exports GeoJSON,
/// RLE and a mask PNG, stops when cancelled, and rejects wrong weights with a readable error. The
/// two backends give the same probabilities, WebGPU gives them again on a second run, and the CPU
/// in the browser finds what the native build finds.
#[wasm_bindgen_test]
async fn a_trained_model_segments_a_slide_in_the_browser() {
    let trap = ErrorTrap::install();
    let bad = WebModel::load(b"not a model".to_vec(), MANIFEST.into(), "cpu".into()).await;
    assert!(bad.is_err(), "garbage weights must be rejected");
    let slide = blob_slide(SYNTH).await;
    let mut results = Vec::new();
    for backend in ["cpu", "webgpu"] {
        let model = demo_model(backend).await;
        assert_eq!(model.is_gpu(), backend == "webgpu");
        let progress = Progress::demo();
        let started = js_sys::Date::now();
        let prediction = segment(&slide, &model, r#"{"region": null}"#, Some(&progress), &Cancel::new()).await.expect("segmentation runs");
        let millis = js_sys::Date::now() - started;
        let count = summary_number(&prediction, "count") as usize;
        let windows = summary_number(&prediction, "windows") as u32;
        let dice = ftuscope::mask::dice_rle(TRUTH.trim(), &prediction.rle()).unwrap();
        let seen = std::mem::take(&mut *progress.seen.borrow_mut());
        console_log!(
            "demo model in the browser ({backend}): {count} glomeruli, Dice {dice:.4}, {windows} windows, {} updates in {} events, {millis:.0} ms",
            seen.updates,
            seen.events
        );
        assert!(seen.problems.is_empty(), "{:#?}", seen.problems);
        assert_eq!(seen.updates, windows, "one update per window");
        assert_eq!(seen.windows.len() as u32, windows, "each window once");
        assert!(dice >= 0.85, "{backend}: Dice {dice}");
        let geojson = prediction.geojson();
        assert_eq!(geojson.matches("\"Glomerulus\"").count(), count, "{geojson}");
        assert!(prediction.mask_png(256).unwrap().starts_with(b"\x89PNG"));
        // Cancelled before it starts: rejects, nothing else breaks.
        let cancel = Cancel::new();
        cancel.cancel();
        match segment(&slide, &model, r#"{"region": [0, 0, 1024, 1024]}"#, None, &cancel).await {
            Err(e) => assert!(e.contains("cancelled"), "{e}"),
            Ok(_) => panic!("a cancelled run must reject"),
        }
        if backend == "webgpu" {
            // A second run (compiled pipelines reused) over the windows meeting a corner gives them again.
            let again = Progress::demo();
            let started = js_sys::Date::now();
            segment(&slide, &model, r#"{"region": [0, 0, 1024, 1024]}"#, Some(&again), &Cancel::new()).await.expect("second WebGPU run");
            let again = std::mem::take(&mut *again.seen.borrow_mut());
            let (diff, shared) = max_byte_diff(&seen.windows, &again.windows);
            console_log!("WebGPU second run: {shared} windows in {:.0} ms, max |Δp| = {diff}/255", js_sys::Date::now() - started);
            assert!(shared > 0 && shared == again.windows.len(), "the corner's windows are the first run's");
            assert!(diff <= 1, "a second WebGPU run differs by {diff}/255");
        }
        results.push((count, dice, seen.windows));
    }
    let ((cpu_count, cpu_dice, cpu_windows), (gpu_count, _, gpu_windows)) = (&results[0], &results[1]);
    assert_eq!(cpu_count, gpu_count, "CPU and WebGPU find the same glomeruli");
    let (diff, shared) = max_byte_diff(cpu_windows, gpu_windows);
    console_log!("WebGPU vs CPU over {shared} windows: max |Δp| = {diff}/255");
    assert_eq!(shared, cpu_windows.len(), "both backends ran the same windows");
    assert!(diff <= 1, "WebGPU and CPU disagree by {diff}/255 (one rounding step allowed)");
    let (native_count, native_dice) = NATIVE_DEMO_ON_SYNTH;
    console_log!("CPU in the browser: {cpu_count} glomeruli, Dice {cpu_dice:.4} (native: {native_count}, {native_dice:.4})");
    assert_eq!(*cpu_count, native_count, "the browser's CPU backend finds what the native build finds");
    assert!((cpu_dice - native_dice).abs() < 2e-3, "Dice {cpu_dice} in the browser, {native_dice} natively");
    trap.assert_clean();
}

/// Whole-slide segmentation cancelled part-way and restarted again and again leaks nothing: the
/// wasm memory high-water mark after ten cancelled runs and a full one is what one full run needed.
#[wasm_bindgen_test]
async fn cancelling_and_restarting_segmentation_does_not_leak() {
    let trap = ErrorTrap::install();
    let slide = blob_slide(SYNTH).await;
    let model = demo_model("cpu").await;
    let full = || async { segment(&slide, &model, "{}", None, &Cancel::new()).await.expect("a full run") };
    drop(full().await);
    drop(full().await);
    let after_full = wasm_memory_mib();
    for round in 0..10 {
        let cancel = Cancel::new();
        let stopper = cancel.clone();
        let progress = Progress::new(1024, 256, move |events| {
            if events == 1 + round % 3 {
                stopper.cancel();
            }
        });
        let result = segment(&slide, &model, "{}", Some(&progress), &cancel).await;
        let events = progress.seen.borrow().events;
        assert!(result.as_ref().is_err_and(|e| e.contains("cancelled")), "round {round}: the run was cancelled after {events} batches");
    }
    drop(full().await);
    let after = wasm_memory_mib();
    console_log!("wasm memory after two full runs {after_full:.0} MiB; after ten cancelled runs and another full one {after:.0} MiB");
    assert!(after <= after_full + 16.0, "memory grew from {after_full:.0} to {after:.0} MiB");
    trap.assert_clean();
}

/// Imported annotations are read by the crate's one GeoJSON reader (`parseAnnotations`, what the
/// app draws) — a HuBMAP list of Polygons, a FeatureCollection with a MultiPolygon and a hole — and
/// anything else is one readable line; the Dice of a set with itself is 1.
#[wasm_bindgen_test]
fn annotations_are_read_by_the_crates_geojson_reader() {
    use ftuscope::web::{dice_of_annotations, parse_annotations};
    let trap = ErrorTrap::install();
    let square = "[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]";
    let hole = "[[2, 2], [4, 2], [4, 4], [2, 2]]";
    let list = format!(
        r#"[{{"type": "Feature", "geometry": {{"type": "Polygon", "coordinates": [{square}]}},
             "properties": {{"classification": {{"name": "glomerulus"}}}}}}]"#
    );
    let collection = format!(
        r#"{{"type": "FeatureCollection", "features": [{{"type": "Feature", "properties": {{}},
             "geometry": {{"type": "MultiPolygon", "coordinates": [[{square}, {hole}], [[[20, 20], [30, 20], [30, 30], [20, 20]]]]}}}}]}}"#
    );
    let parsed = parse_annotations(&list).unwrap_or_else(|e| panic!("{}", message(e.into())));
    let first = js_sys::Array::from(&parsed).get(0);
    assert_eq!(get(&first, "classification").as_string().as_deref(), Some("glomerulus"));
    let polygons = js_sys::Array::from(&get(&first, "polygons"));
    let ring = js_sys::Array::from(&js_sys::Array::from(&polygons.get(0)).get(0));
    assert_eq!((polygons.length(), ring.length()), (1, 5));
    let corner = js_sys::Array::from(&ring.get(2));
    assert_eq!((corner.get(0).as_f64(), corner.get(1).as_f64()), (Some(10.0), Some(10.0)));

    let parsed = js_sys::Array::from(&parse_annotations(&collection).unwrap_or_else(|e| panic!("{}", message(e.into()))));
    assert_eq!(parsed.length(), 1);
    assert_eq!(get(&parsed.get(0), "classification").as_string().as_deref(), Some(""), "no class: empty");
    let polygons = js_sys::Array::from(&get(&parsed.get(0), "polygons"));
    let rings: Vec<u32> = polygons.iter().map(|p| js_sys::Array::from(&p).length()).collect();
    assert_eq!(rings, [2, 1], "the MultiPolygon's two polygons, the first with its hole");

    for (text, words) in [
        ("not JSON", "invalid GeoJSON"),
        (r#"{"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [1, 2]}}"#, "Point"),
        (r#"[{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}}]"#, "feature 0"),
    ] {
        let err = message(parse_annotations(text).err().unwrap_or_else(|| panic!("{text} must be refused")).into());
        console_log!("annotations {text:.40}…: {err}");
        assert!(err.contains(words) && !err.contains('\n'), "{err}");
    }
    let dice = dice_of_annotations(&list, &list, 64, 64).unwrap_or_else(|e| panic!("{}", message(e.into())));
    assert!((dice - 1.0).abs() < 1e-12, "{dice}");
    trap.assert_clean();
}

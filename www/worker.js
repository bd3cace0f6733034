// The wasm module in a Web Worker: the page sends {id, op, args}, gets {id, ok, value|error}, and
// progress events {event, ...}. The page runs several of these — one decodes viewer tiles, one runs
// the network (the engine), and on the CPU path a pool of helpers that compute windows the engine
// plans and blends — so panning stays smooth while a slide is segmented (on the CPU a forward pass
// blocks its worker) and every core works. Slide pixels never leave this machine.
// Rust panics report their whole stack (console_error_panic_hook reads Error().stack).
Error.stackTraceLimit = 64;
import init, { WebSlide, WebModel, Cancel, SegmentRun, WindowRunner, WebReview, WebTune, diceOfAnnotations, parseAnnotations } from '../pkg/ftuscope.js';

// The WebGPU devices this worker asked for (wgpu requests one through requestDevice), watched so
// that a lost GPU (driver reset, device removed, tab in the background too long) is noticed: the
// running segmentation then continues on the CPU, keeping the windows already computed.
const gpuDevices = [];
let gpuLost = null;
if (self.GPUAdapter) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    gpuDevices.push(device);
    device.lost.then((info) => { gpuLost = [info.reason, info.message?.replace(/\.$/, '')].filter(Boolean).join(': ') || 'lost'; });
    return device;
  };
}

/** Whether the GPU is lost (waiting a moment: a failed read-back can come before the lost event). */
async function lostGpu() {
  if (!gpuLost && gpuDevices.length) {
    await Promise.race([Promise.any(gpuDevices.map((d) => d.lost)), new Promise((r) => setTimeout(r, 1000))]);
  }
  return gpuLost;
}

// The page sends the compiled module first (compiled once for both workers), or its URL.
let ready = null;
let slide = null;
let model = null;
let modelFiles = null; // {bpk, json}: reloaded on the CPU if the GPU is lost
let prediction = null;
let cancel = null;
let poolRun = null; // the engine's SegmentRun while a pool computes its windows
let runner = null; // this worker's WindowRunner of the pool's current job
let review = null; // the WebReview of the page's review panel
let tuning = null; // the WebTune of "Improve the model on this slide"
let tuneCancelled = false;

/** What the page keeps of a loaded model. */
function described(m) {
  return { manifest: m.manifest, backend: m.backend, thresholdLevel: m.thresholdLevel };
}

async function loadOnCpu(reason) {
  const loaded = await WebModel.load(modelFiles.bpk, modelFiles.json, 'cpu');
  model?.free();
  model = loaded;
  const notice = `The GPU was lost (${reason}); running on the CPU from now on (slower). Reload the page to use the GPU again.`;
  return { ...described(model), backend: { ...model.backend, notice } };
}

const ops = {
  async open({ source }) {
    // The open slide stays usable until the new one has opened.
    const next = await WebSlide.open(source);
    prediction?.free();
    prediction = null;
    slide?.free();
    slide = next;
    return slide.info;
  },
  // The user's (or the model's assumed) pixel size for a slide whose file records none or a wrong one.
  pixelSize({ um }) {
    if (!slide) throw new Error('open a slide first');
    slide.setPixelSize(um ?? undefined);
    return slide.info.pixel_size_um ?? null;
  },
  // Builds the overview levels of a flat slide (one pass) and hands them to the page, which passes
  // them on to the other worker (adoptOverviews): the pass is made once.
  async overviews() {
    await slide.buildOverviews((done, total) => postMessage({ event: 'overviews', done, total }));
    const levels = slide.overviews();
    return [levels, levels.map((l) => l.rgb.buffer)];
  },
  adoptOverviews({ levels }) {
    if (!slide) throw new Error('open a slide first');
    return slide.adoptOverviews(levels);
  },
  async tile({ x, y, w, h, outW, outH }) {
    const rgba = await slide.readScaled(x, y, w, h, outW, outH);
    const bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(rgba.buffer), outW, outH));
    return [bitmap, [bitmap]];
  },
  async loadModel({ bpk, json, backend }) {
    const files = { bpk: new Uint8Array(bpk), json };
    // A lost device cannot be started again in this worker: stay on the CPU (with a notice unless
    // the CPU is what was asked for).
    if (gpuLost && backend !== 'cpu') {
      modelFiles = files;
      return loadOnCpu(gpuLost);
    }
    const loaded = await WebModel.load(files.bpk, json, backend);
    model?.free();
    model = loaded;
    modelFiles = files;
    return described(model);
  },
  async segment({ region, runId }) {
    if (!slide) throw new Error('open a slide first');
    if (!model) throw new Error('load a model first');
    cancel = new Cancel();
    // {done, total, windows_per_s, eta_s, updates: [{x, y, window, size, probs: Uint8Array}]}
    const onProgress = (p) => postMessage({ event: 'progress', runId, ...p }, p.updates.map((u) => u.probs.buffer));
    const run = await SegmentRun.start(slide, model, { region });
    try {
      for (;;) {
        try {
          await run.resume(model, onProgress, cancel);
          break;
        } catch (err) {
          // Only a run on the GPU falls back, once; any other failure is the run's error.
          const lost = model.isGpu && await lostGpu();
          if (!lost) throw err;
          const loaded = await loadOnCpu(lost);
          postMessage({ event: 'fallback', runId, ...loaded, done: run.done, total: run.total });
        }
      }
      prediction?.free();
      prediction = run.finish();
    } finally {
      run.free();
    }
    return prediction.summary;
  },
  cancel() {
    cancel?.cancel();
    return true;
  },
  // ---- the pool (CPU path): the engine plans and blends, every worker (the engine too) runs windows.
  // Plans a run over the slide (or region): {total, remaining: [window index], job: JSON}.
  async plan({ region }) {
    if (!slide) throw new Error('open a slide first');
    if (!model) throw new Error('load a model first');
    poolRun?.free();
    poolRun = null;
    poolRun = await SegmentRun.start(slide, model, { region });
    return { total: poolRun.total, remaining: poolRun.remaining(), job: poolRun.job() };
  },
  // Takes the pool's job: this worker's windows are read from its own copy of the slide.
  prepare({ job }) {
    if (!slide) throw new Error('open a slide first');
    runner?.free();
    runner = new WindowRunner(slide, job);
    return true;
  },
  // Computes windows of the job: {probs: Float32Array (size² per window), timings}.
  async windows({ indices }) {
    if (!runner) throw new Error('no segmentation job prepared');
    if (!model) throw new Error('load a model first');
    const out = await runner.run(model, Uint32Array.from(indices));
    return [out, [out.probs.buffer]];
  },
  // Blends windows computed by any worker; answers the progress event (with this batch's windows).
  blend({ indices, probs, timings }) {
    if (!poolRun) throw new Error('no segmentation planned');
    const p = poolRun.add(Uint32Array.from(indices), probs, timings);
    return [p, p.updates.map((u) => u.probs.buffer)];
  },
  finish() {
    if (!poolRun) throw new Error('no segmentation planned');
    const run = poolRun;
    poolRun = null;
    try {
      const next = run.finish();
      prediction?.free();
      prediction = next;
    } finally {
      run.free();
    }
    return prediction.summary;
  },
  discard() {
    poolRun?.free();
    poolRun = null;
    runner?.free();
    runner = null;
    return true;
  },
  // This worker's wasm memory in bytes (the pool's memory report).
  memory() {
    return wasmMemory?.buffer.byteLength ?? 0;
  },
  // Destroys this worker's GPU devices, as a driver reset would: how the end-to-end test loses
  // the GPU in the middle of a run.
  loseGpu() {
    for (const device of gpuDevices) device.destroy();
    return gpuDevices.length;
  },
  async export({ kind }) {
    if (!prediction) throw new Error('nothing segmented yet');
    if (kind === 'geojson') return prediction.geojson();
    if (kind === 'rle') return prediction.rle();
    if (kind === 'png') {
      const png = prediction.maskPng(4096);
      return [png, [png.buffer]];
    }
    throw new Error(`unknown export ${kind}`);
  },
  // ---- review: a prediction (GeoJSON) against annotations (or none), and decisions on its items.
  reviewStart({ prediction, annotations }) {
    const next = new WebReview(prediction, annotations ?? undefined);
    review?.free();
    review = next;
    return { ...review.review, predictionOutlines: review.predictionOutlines, annotationOutlines: review.annotationOutlines };
  },
  reviewApply({ decisions }) {
    if (!review) throw new Error('nothing to review');
    return review.apply(decisions);
  },
  reviewExport({ decisions, kind, options, width, height }) {
    if (!review) throw new Error('nothing to review');
    if (kind === 'geojson') return review.geojson(decisions, options);
    if (kind === 'rle') return review.rle(decisions, width, height);
    throw new Error(`unknown export ${kind}`);
  },
  // ---- fine-tuning the loaded model's decoder on the reviewed objects, on its device, step by step.
  async tuneStart({ positives, negatives, steps, lr, runId }) {
    if (!slide) throw new Error('open a slide first');
    if (!model) throw new Error('load a model first');
    tuning?.free();
    tuning = null;
    tuneCancelled = false;
    tuning = await WebTune.start(slide, model, modelFiles.bpk, { positives, negatives, steps, lr });
    postMessage({ event: 'tune', runId, step: 0, steps: tuning.steps, windows: tuning.windows });
    for (let i = 0; i < tuning.steps; i++) {
      // A macrotask between steps lets a cancel message in.
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (tuneCancelled) throw new Error('cancelled');
      const loss = await tuning.step();
      postMessage({ event: 'tune', runId, step: i + 1, steps: tuning.steps, loss });
    }
    return { losses: Array.from(tuning.losses), windows: tuning.windows, name: tuning.name };
  },
  tuneCancel() {
    tuneCancelled = true;
    return true;
  },
  // The tuned model folder {bpk, json}, for the page to load (as "your model") or download.
  async tuneExport() {
    if (!tuning) throw new Error('nothing fine-tuned');
    const out = await tuning.export();
    return [{ bpk: out.bpk, json: out.json }, [out.bpk.buffer]];
  },
  // How the original and the tuned model find the reviewed glomeruli (each run over their box).
  async tuneCompare({ reviewed }) {
    if (!tuning) throw new Error('nothing fine-tuned');
    return tuning.compare(reviewed);
  },
  tuneDiscard() {
    tuning?.free();
    tuning = null;
    return true;
  },
  // GeoJSON annotations → [{classification, polygons: [[ring, …holes], …]}], by the crate's parser.
  annotations({ text }) {
    return parseAnnotations(text);
  },
  async compare({ annotations }) {
    if (!prediction) throw new Error('nothing segmented yet');
    const info = slide.info;
    return diceOfAnnotations(prediction.geojson(), annotations, info.levels[0].width, info.levels[0].height);
  },
};

let wasmMemory = null;
const start = (module) => init(module ? { module_or_path: module } : undefined).then((exports) => { wasmMemory = exports.memory; });

self.onmessage = async ({ data }) => {
  if ('wasm' in data) {
    ready = start(data.wasm);
    return;
  }
  const { id, op, args } = data;
  try {
    await (ready ??= start());
    const handler = ops[op];
    if (!handler) throw new Error(`unknown operation ${op}`);
    const out = await handler(args ?? {});
    const [value, transfer] = Array.isArray(out) && out.length === 2 && Array.isArray(out[1]) ? out : [out, []];
    postMessage({ id, ok: true, value }, transfer);
  } catch (err) {
    postMessage({ id, ok: false, error: String(err?.message ?? err) });
  }
};

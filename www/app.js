// The page: DOM wiring, the OpenSeadragon viewer and the overlay. Slide reading, tile decoding and
// segmentation run in the wasm module inside workers (www/worker.js): one serves viewer tiles, one
// (the engine) runs the network, so panning stays smooth during a run; on the CPU path a pool of
// helpers computes windows beside the engine, which plans and blends them.
/* global OpenSeadragon */

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
/** The bundled models (README, "Models"): `fast`, a small U-Net trained from scratch, and `accurate`,
 * U-Net-EfficientNet-Lite0 from an ImageNet-pretrained encoder, with stain normalisation. */
const MODELS = { fast: 'www/models/fast/', accurate: 'www/models/accurate/' };
const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|software|fallback|basic render/i;
const TILE = 512;

// The wasm module is fetched and compiled once, here, and handed to both workers (a compiled
// WebAssembly.Module is shared with a worker, not fetched or compiled again). Where streaming
// compilation is refused (a host sending the wrong Content-Type), each worker fetches it itself.
const WASM_URL = new URL('../pkg/ftuscope_bg.wasm', import.meta.url);
const wasm = WebAssembly.compileStreaming(fetch(WASM_URL)).catch(() => WASM_URL.href);

/** A worker speaking {id, op, args} → {id, ok, value|error}, plus events; its first message is the
 * wasm module (or its URL) to start with. */
class Rpc {
  constructor(onEvent) {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.started = wasm.then((module) => this.worker.postMessage({ wasm: module }));
    this.next = 1;
    this.pending = new Map();
    this.worker.onmessage = ({ data }) => {
      if (data.event) return onEvent?.(data);
      const p = this.pending.get(data.id);
      this.pending.delete(data.id);
      if (data.ok) p?.resolve(data.value); else p?.reject(new Error(data.error));
    };
    this.worker.onerror = (e) => { for (const p of this.pending.values()) p.reject(new Error(e.message || 'worker failed')); this.pending.clear(); };
  }
  /** Stops the worker at once; calls in flight reject with `reason`. */
  terminate(reason) {
    this.dead = true;
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new Error(reason));
    this.pending.clear();
  }
  async call(op, args = {}, transfer = []) {
    await this.started;
    if (this.dead) throw new Error('worker stopped');
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }
}

const state = {
  slide: null, // {name, info}
  viewer: null,
  model: null, // {manifest, backend, thresholdLevel, choice, key}
  running: null, // run id
  windows: [], // {x, y, window, bitmap} probability tiles of the current run
  glomeruli: [],
  annotations: [], // imported polygons (each a list of rings), image coordinates
  runId: 0,
};

const tiles = new Rpc();
const engine = new Rpc((e) => {
  if (e.event === 'progress' && e.runId === state.running) onProgress(e);
  if (e.event === 'fallback') onFallback(e);
  if (e.event === 'tune' && e.runId === state.tuning?.runId) onTuneEvent(e);
});

/** The GPU was lost during a run: the worker continues it on the CPU, keeping the windows done. */
function onFallback({ manifest, backend, thresholdLevel, done, total }) {
  if (state.model) state.model = { ...state.model, manifest, backend, thresholdLevel };
  state.fallback = { done, total };
  showModel({ manifest, backend });
  $('progress-text').textContent = `${done}/${total} windows kept · continuing on the CPU…`;
}

function setState(kind, text) {
  document.body.dataset.state = kind;
  $('status').textContent = text;
}

function notice(text) {
  $('notice').hidden = !text;
  $('notice').textContent = text ?? '';
}

function fill(dl, rows) {
  $(dl).replaceChildren(...rows.filter(([, v]) => v !== undefined && v !== null && v !== '').flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    return [dt, dd];
  }));
}

const fmt = (n, d = 0) => Number(n).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

// ---- opening slides -------------------------------------------------------------------------

async function openSlide(source, name) {
  setState('opening', `Opening ${name}…`);
  cancelRun();
  try {
    const [info] = await Promise.all([tiles.call('open', { source }), engine.call('open', { source })]);
    clearResults();
    state.annotations = [];
    state.annotationsText = null;
    // `source` and `gen`: the pool's helpers open the same slide (once per slide).
    state.slide = { name, info, id: slideId(name), pixelSource: info.pixel_size_um ? 'file' : 'unknown', source, gen: ++pool.slides };
    const l0 = info.levels[0];
    if (!info.pixel_size_um) {
      // No pixel size in the file (PNG/JPEG, many TIFFs): assume the model's, and say so.
      const assumed = assumedPixelSize(await modelManifest());
      if (assumed) await setPixelSize(assumed, 'assumed');
    }
    renderSlideInfo();
    // Flat slides get overview levels (one pass) so that zoomed-out views are cheap.
    if (info.levels.length === 1 && Math.max(l0.width, l0.height) > 4 * TILE) {
      setState('opening', `Building overviews of ${name}…`);
      const levels = await tiles.call('overviews');
      // The segmentation worker takes the same levels instead of making its own pass.
      await engine.call('adoptOverviews', { levels }, levels.map((l) => l.rgb.buffer));
      state.slide.info = info;
      state.slide.overviews = true;
    }
    showViewer(l0.width, l0.height);
    $('drop-hint').hidden = true;
    // A review of this slide saved before (a reload, or the slide opened again) is taken up.
    const saved = await reviewStore('readonly', (s) => s.get(reviewKey())).catch(() => null);
    if (saved) {
      if (saved.annotations) {
        state.annotations = (await tiles.call('annotations', { text: saved.annotations })).flatMap((a) => a.polygons);
        state.annotationsText = saved.annotations;
      }
      await startReview(saved.prediction, saved.annotations ?? null, saved);
    }
    $('segment-view').disabled = false;
    $('segment-slide').disabled = false;
    setState('ready', `${name}: ${fmt(l0.width)} × ${fmt(l0.height)} px. Pan and zoom, then Segment view or Segment slide.`);
  } catch (err) {
    // Reader errors already end with the location; the slide that was open stays open.
    const message = err.message.endsWith(`: ${name}`) ? err.message.slice(0, -name.length - 2) : err.message;
    setState('error', `Cannot open ${name}: ${message}`);
  }
}

function slideId(name) {
  const base = name.split(/[?#]/)[0].split('/').pop();
  return base.replace(/\.(ome\.)?(tiff?|svs|btf|png|jpe?g)$/i, '') || 'slide';
}

/** The model that Segment will use: loaded, or the chosen one's manifest (a bundled one's, or the user's). */
async function modelManifest(key = $('model-choice').value) {
  if (state.model?.key === key) return state.model.manifest;
  if (key === 'user') { try { return JSON.parse(state.userModel.json); } catch { return null; } }
  try {
    const r = await cachedFetch(`${MODELS[key]}model.json`);
    return r.ok ? await r.json() : null;
  } catch { return null; }
}

/** Windows per second this browser measured for a model on a backend (its last complete run). */
function speedKey(key, backend) { return `ftuscope-speed:${key}:${backend}`; }
function storage() { try { return window.localStorage; } catch { return null; } }

/** The default model: `accurate` (it generalises: other labs' stains, no glomeruli in non-kidney
 * tissue) on a hardware GPU and on the CPU path, where it runs at about half `fast`'s windows/s; `fast`
 * where WebGPU is a software adapter (SwiftShader, llvmpipe), on which `accurate` is ~6× slower than
 * `fast`. A choice the user made (or `?model=`) wins and is remembered. */
async function defaultModel() {
  const chosen = params.get('model') ?? storage()?.getItem('ftuscope-model');
  if (Object.hasOwn(MODELS, chosen ?? '')) return chosen;
  if ($('backend').value === 'cpu') return 'accurate';
  try {
    const adapter = await navigator.gpu?.requestAdapter();
    const info = adapter?.info ?? {};
    const text = [info.vendor, info.architecture, info.device, info.description].join(' ');
    return adapter && (adapter.isFallbackAdapter || SOFTWARE_ADAPTER.test(text)) ? 'fast' : 'accurate';
  } catch { return 'accurate'; }
}

/** The chosen model's card: what it was validated on, and the speed measured here. */
async function showCard() {
  const key = $('model-choice').value;
  const m = await modelManifest(key);
  if (key !== $('model-choice').value) return;
  const speeds = ['flex', 'wgpu'].map((b) => [b, Number(storage()?.getItem(speedKey(key, b)))]).filter(([, v]) => v > 0)
    .map(([b, v]) => `${fmt(v, 2)} windows/s on ${b === 'flex' ? 'the CPU' : 'WebGPU'}`);
  $('model-card').textContent = !m ? 'manifest unavailable'
    : `${m.validation || 'not validated'} Speed in this browser: ${speeds.length ? speeds.join(', ') : 'not measured yet (segment to measure)'}.`;
}

async function chooseModel(key, remember) {
  $('model-choice').value = key;
  if (remember && Object.hasOwn(MODELS, key)) storage()?.setItem('ftuscope-model', key);
  await showCard();
  await followAssumption(await modelManifest(key));
}

/** A slide without a pixel size is assumed to have the model's training data's: it follows the model. */
async function followAssumption(manifest) {
  const assumed = assumedPixelSize(manifest);
  if (state.slide?.pixelSource === 'assumed' && assumed) { await setPixelSize(assumed, 'assumed'); renderSlideInfo(); }
}

/** The µm/px a model assumes for a slide that records none: its window in µm over its window in px. */
const assumedPixelSize = (m) => (m?.input_pixel_size_um ? (m.input_pixel_size_um * m.model.input_size) / m.window : null);

/** Sets the slide's pixel size in both workers; segmentation, areas and the scale bar follow it. */
async function setPixelSize(um, source) {
  await Promise.all([tiles.call('pixelSize', { um }), engine.call('pixelSize', { um })]);
  state.slide.info.pixel_size_um = um;
  state.slide.pixelSource = um ? source : 'unknown';
  drawScaleBar();
}

function renderSlideInfo() {
  const { name, info, pixelSource } = state.slide;
  const l0 = info.levels[0];
  fill('slide-info', [
    ['name', name], ['size', `${fmt(l0.width)} × ${fmt(l0.height)} px`], ['format', info.vendor ?? info.format],
    ['levels', info.levels.length],
    ...(info.notice ? [['notice', info.notice]] : []),
    ['file', `${info.bytes >= 1e6 ? `${fmt(info.bytes / 1e6, 1)} MB` : `${fmt(info.bytes / 1e3, 1)} kB`}${info.bigtiff ? ', BigTIFF' : ''}`],
  ]);
  // The pixel size, editable: the file's, the user's, or assumed from the model.
  const dt = document.createElement('dt'); dt.textContent = 'pixel size';
  const dd = document.createElement('dd');
  const input = Object.assign(document.createElement('input'), { type: 'number', id: 'pixel-size', min: '0.01', max: '1000', step: 'any', size: 6 });
  input.value = info.pixel_size_um ? String(+info.pixel_size_um.toFixed(4)) : '';
  input.setAttribute('aria-label', 'pixel size in µm per pixel');
  const note = document.createElement('span');
  note.id = 'pixel-size-note';
  note.textContent = {
    file: ' µm/px (from the file)',
    user: ' µm/px (set by you)',
    assumed: ` µm/px — pixel size unknown — assuming ${+info.pixel_size_um.toFixed(3)} µm/px (the model's training data); correct it if you know it`,
    unknown: ' µm/px — pixel size unknown: areas in px²',
  }[pixelSource];
  input.addEventListener('change', async () => {
    const v = Number(input.value);
    if (!(v > 0 && v <= 1000)) { input.value = state.slide.info.pixel_size_um ?? ''; return; }
    await setPixelSize(v, 'user');
    renderSlideInfo();
    if (state.glomeruli.length || $('count').textContent !== '–') {
      clearResults();
      setState('ready', `Pixel size set to ${v} µm/px: segment again (the windows are resampled to the model's scale).`);
    }
  });
  dd.append(input, note);
  $('slide-info').append(dt, dd);
}

function showViewer(width, height) {
  state.viewer?.destroy();
  if (state.tileError) notice('');
  state.tileError = null;
  const source = new OpenSeadragon.TileSource({ width, height, tileSize: TILE, tileOverlap: 0 });
  const maxLevel = source.maxLevel;
  source.getTileUrl = (level, x, y) => `ftuscope:${state.slide.id}/${level}/${x}/${y}`;
  source.getTilePostData = (level, x, y) => ({ level, x, y });
  source.downloadTileStart = (job) => {
    const { level, x, y } = job.postData;
    const scale = Math.pow(2, level - maxLevel);
    const size0 = TILE / scale;
    const x0 = x * size0, y0 = y * size0;
    const w0 = Math.min(size0, width - x0), h0 = Math.min(size0, height - y0);
    const outW = Math.max(1, Math.ceil(w0 * scale)), outH = Math.max(1, Math.ceil(h0 * scale));
    tiles.call('tile', { x: x0, y: y0, w: w0, h: h0, outW, outH })
      .then((bitmap) => job.finish(bitmap, null, 'imageBitmap'))
      .catch((err) => {
        job.fail(err.message);
        // Once per slide: the rest of the slide stays viewable.
        if (!state.tileError) {
          state.tileError = err.message;
          notice(`Some tiles of this slide cannot be read: ${err.message}`);
        }
      });
  };
  source.downloadTileAbort = () => {};
  state.viewer = OpenSeadragon({
    element: $('viewer'),
    tileSources: source,
    prefixUrl: 'www/vendor/openseadragon/images/',
    showNavigator: true,
    navigatorPosition: 'TOP_RIGHT',
    loadTilesWithAjax: false,
    maxZoomPixelRatio: 2,
    animationTime: 0.6,
    gestureSettingsTouch: { pinchRotate: false },
    imageLoaderLimit: 4,
  });
  for (const ev of ['update-viewport', 'resize', 'open']) state.viewer.addHandler(ev, () => { drawOverlay(); drawScaleBar(); });
  state.viewer.addHandler('canvas-click', (e) => { if (!e.quick) return; });
  new OpenSeadragon.MouseTracker({ element: $('viewer'), moveHandler: (e) => hover(e.position) }).setTracking(true);
}

function item() { return state.viewer?.world.getItemAt(0); }

// ---- model ------------------------------------------------------------------------------------

async function cachedFetch(url) {
  if (!('caches' in self)) return fetch(url);
  const cache = await caches.open('ftuscope-models-v1');
  let response = await cache.match(url);
  if (!response) {
    response = await fetch(url);
    if (response.ok) await cache.put(url, response.clone());
  }
  return response;
}

async function ensureModel() {
  const backend = $('backend').value;
  const key = $('model-choice').value;
  if (state.model && state.model.choice === backend && state.model.key === key) return state.model;
  let bpk, json;
  if (key === 'user') {
    ({ bpk, json } = state.userModel);
  } else {
    setState('running', `Loading the ${key} model…`);
    const [b, j] = await Promise.all([cachedFetch(`${MODELS[key]}model.bpk`), cachedFetch(`${MODELS[key]}model.json`)]);
    if (!b.ok || !j.ok) throw new Error(`${key} model: HTTP ${b.ok ? j.status : b.status}`);
    bpk = await b.arrayBuffer();
    json = await j.text();
  }
  setState('running', backend === 'cpu' ? 'Starting the CPU backend…' : 'Starting WebGPU…');
  const loaded = await engine.call('loadModel', { bpk, json, backend });
  // The files stay here for the pool's helpers (`gen`: loaded into each once).
  state.model = { ...loaded, choice: backend, key, files: { bpk, json }, gen: ++pool.models };
  showModel(loaded);
  return state.model;
}

function showModel({ manifest, backend }) {
  const software = SOFTWARE_ADAPTER.test(backend.adapter ?? '');
  const scale = manifest.input_pixel_size_um
    ? `${fmt(manifest.window_um ?? manifest.input_pixel_size_um * manifest.model.input_size)} µm → ${manifest.model.input_size} px (${fmt(manifest.input_pixel_size_um, 2)} µm/px, resampled per slide)`
    : `${manifest.window} px → ${manifest.model.input_size}`;
  fill('model-info', [
    ['model', `${manifest.name} (${manifest.model.encoder}/${manifest.model.decoder})`],
    ['trained on', manifest.trained_on],
    ['validation', manifest.validation || (manifest.validation_dice != null ? `Dice ${fmt(manifest.validation_dice, 3)}` : 'not measured')],
    ['limits', manifest.limits],
    ['window', scale],
    ['backend', backend.backend], ['adapter', backend.adapter],
  ]);
  const short = manifest.trained_on.length > 70 ? `${manifest.trained_on.slice(0, 67)}…` : manifest.trained_on;
  $('model-badge').textContent = `${manifest.name} model · trained on ${short} · research use, not for diagnosis`;
  $('model-badge').title = [manifest.trained_on, manifest.limits].filter(Boolean).join('\n');
  notice(backend.notice ?? (software ? `WebGPU runs on a software adapter (${backend.adapter}): expect it to be slow.` : ''));
}

async function loadUserModel(files) {
  const bpkFile = [...files].find((f) => f.name.endsWith('.bpk'));
  const jsonFile = [...files].find((f) => f.name.endsWith('.json'));
  if (!bpkFile || !jsonFile) return setState('error', 'Load model…: pick both model.bpk and model.json from an exported model folder.');
  // A file that does not load leaves the choice and any model loaded before as they were.
  const before = { choice: $('model-choice').value, userModel: state.userModel };
  try {
    state.userModel = { bpk: await bpkFile.arrayBuffer(), json: await jsonFile.text() };
    $('model-user').disabled = false;
    $('model-choice').value = 'user';
    state.model = null; // new weights under the same key
    await ensureModel();
    await showCard();
    await followAssumption(state.model.manifest);
    setState('ready', `Loaded ${bpkFile.name} + ${jsonFile.name}.`);
  } catch (err) {
    ({ userModel: state.userModel } = before);
    $('model-choice').value = before.choice;
    $('model-user').disabled = !state.userModel;
    state.model = null;
    showCard();
    setState('error', `Cannot load that model: ${err.message}`);
  }
}

// ---- segmentation -------------------------------------------------------------------------------

async function segment(whole) {
  if (!state.slide || state.running) return;
  const runId = ++state.runId;
  try {
    await ensureModel();
    let region = null;
    if (!whole) {
      const r = item().viewportToImageRectangle(state.viewer.viewport.getBounds(true));
      const { width, height } = state.slide.info.levels[0];
      const x = Math.max(0, r.x), y = Math.max(0, r.y);
      region = [x, y, Math.min(width, r.x + r.width) - x, Math.min(height, r.y + r.height) - y];
      if (region[2] <= 0 || region[3] <= 0) throw new Error('the view shows no part of the slide');
    }
    clearResults();
    state.progress = { done: 0, total: 0 };
    state.fallback = null;
    state.running = runId;
    busy(true);
    setState('running', whole ? 'Segmenting the whole slide…' : 'Segmenting the view…');
    // The CPU path runs a pool of workers; WebGPU is one device, driven by the engine alone.
    const summary = state.model.backend.backend === 'flex' ? await runPool(region, runId) : await engine.call('segment', { region, runId });
    if (state.running !== runId) return;
    state.lastWhole = whole;
    showResults(summary, whole);
  } catch (err) {
    if (/cancel/i.test(err.message)) setState('ready', 'Cancelled. The slide stays open; results so far are discarded.');
    else setState('error', `Segmentation failed: ${err.message}`);
  } finally {
    if (state.running === runId) state.running = null;
    busy(false);
  }
}

function busy(on) {
  $('cancel').disabled = !on;
  $('segment-view').disabled = on || !state.slide;
  $('segment-slide').disabled = on || !state.slide;
  $('progress-row').hidden = !on;
  if (on) { $('progress').value = 0; $('progress-text').textContent = 'starting…'; }
}

function cancelRun() {
  if (!state.running) return;
  pool.cancelled = true;
  engine.call('cancel').catch(() => {});
}

// ---- the CPU pool ------------------------------------------------------------------------------

/** Workers on the CPU path: the engine and up to MAX_WORKERS − 1 helpers, each with its own wasm
 * instance (the module compiled once), the slide opened from the same source and the same model. The
 * engine plans the windows and blends them (the crate's SegmentRun: the same canvas whatever the
 * order); this page deals the windows out one at a time and gives a failed helper's back to the others.
 * N: the cores less one (the page and the tile worker), at most MAX_WORKERS: each worker's wasm memory
 * reaches ~200 MiB with the accurate model on a big slide, the engine's ~270 MiB (README, "The CPU
 * pool's memory"); a setting in the model panel. */
const MAX_WORKERS = 4;
const pool = { helpers: [], cancelled: false, inFlight: 0, slides: 0, models: 0, times: {} };
const cores = () => Math.max(1, Math.floor(navigator.hardwareConcurrency) || 1);
const maxWorkers = () => Math.min(MAX_WORKERS, cores());
const defaultWorkers = () => Math.min(maxWorkers(), Math.max(1, cores() - 1));

function workerCount() {
  const n = Math.round(Number($('workers').value));
  return Number.isFinite(n) && n >= 1 ? Math.min(n, maxWorkers()) : defaultWorkers();
}

function setupWorkers() {
  const chosen = Number(params.get('workers') ?? storage()?.getItem('ftuscope-workers'));
  $('workers').max = String(maxWorkers());
  $('workers').value = String(chosen >= 1 ? Math.min(Math.round(chosen), maxWorkers()) : defaultWorkers());
  $('workers-note').textContent = `of ${cores()} cores`;
}

/** Starts or stops helpers to make `n` workers with the engine, and gives each the slide and model. */
async function prepareHelpers(n) {
  pool.helpers = pool.helpers.filter((h) => !h.rpc.dead);
  for (const h of pool.helpers.splice(Math.max(0, n - 1))) h.rpc.terminate('no longer needed');
  while (pool.helpers.length < n - 1) pool.helpers.push({ rpc: new Rpc(), slide: 0, model: 0 });
  const { slide, model } = state;
  const ready = await Promise.allSettled(pool.helpers.map(async (h) => {
    if (h.slide !== slide.gen) {
      await h.rpc.call('open', { source: slide.source });
      if (slide.overviews) {
        const levels = await tiles.call('overviews'); // a copy of the tile worker's levels
        await h.rpc.call('adoptOverviews', { levels }, levels.map((l) => l.rgb.buffer));
      }
      h.slide = slide.gen;
    }
    if (h.model !== model.gen) {
      await h.rpc.call('loadModel', { ...model.files, backend: 'cpu' });
      h.model = model.gen;
    }
  }));
  ready.forEach((r, i) => { if (r.status === 'rejected') lose(pool.helpers[i], r.reason); });
}

/** A helper failed: it is stopped, reported, and left out (a fresh one starts with the next run). */
function lose(helper, err) {
  if (!helper.rpc.dead) helper.rpc.terminate('stopped after an error');
  notice(`A segmentation worker stopped (${err.message}); its windows went to the other workers.`);
}

/** One segmentation on the CPU pool: resolves to the engine's summary, rejects with "cancelled" or
 * the engine's error. A helper that fails (an error, or stopped) has its window redone by another. */
async function runPool(region, runId) {
  pool.cancelled = false;
  const t0 = performance.now();
  const mark = (k) => { pool.times[k] = Math.round(performance.now() - t0); };
  pool.times = {};
  const [planned] = await Promise.all([engine.call('plan', { region }), prepareHelpers(workerCount())]);
  mark('planned');
  const engineWorker = { rpc: engine };
  const workers = [engineWorker, ...pool.helpers.filter((h) => !h.rpc.dead)];
  const taken = await Promise.allSettled(workers.map((w) => w.rpc.call('prepare', { job: planned.job })));
  if (taken[0].status === 'rejected') throw taken[0].reason;
  taken.forEach((r, i) => { if (r.status === 'rejected') lose(workers[i], r.reason); });
  state.workers = workers.filter((w) => !w.rpc.dead).length;
  mark('prepared');
  const queue = [...planned.remaining];
  let failure = null;
  // Blends are queued on the engine without waiting: a helper takes its next window at once.
  const blends = [];
  const work = async (w) => {
    while (queue.length && !pool.cancelled && !failure && !w.rpc.dead) {
      const indices = queue.splice(0, 1);
      pool.inFlight++;
      try {
        const out = await w.rpc.call('windows', { indices });
        blends.push(engine.call('blend', { indices, probs: out.probs, timings: out.timings }, [out.probs.buffer])
          .then((p) => { if (state.running === runId) onProgress(p); }, (err) => { failure ??= err; }));
      } catch (err) {
        if (w === engineWorker) failure ??= err; // the engine failed: the run fails, as a single worker's would
        else { queue.unshift(...indices); lose(w, err); }
      } finally {
        pool.inFlight--;
      }
    }
  };
  // Windows given back by a failed helper after the others had stopped go round again.
  while (queue.length && !pool.cancelled && !failure) await Promise.all(workers.filter((w) => !w.rpc.dead).map(work));
  mark('computed');
  await Promise.all(blends);
  mark('blended');
  if (failure || pool.cancelled) {
    await engine.call('discard').catch(() => {});
    throw failure ?? new Error('cancelled');
  }
  const summary = await engine.call('finish');
  mark('finished');
  return summary;
}

/** A run's progress: the bar and its line at once; the overlay of the windows that arrived is drawn
 * once per frame, not once per window (on the CPU pool each window answers a progress event, and a
 * redraw per window took the page's share of the cores from the workers). */
const arrivals = { updates: [], frame: 0 };
function onProgress(p) {
  state.progress = { done: p.done, total: p.total };
  $('progress').value = p.total ? p.done / p.total : 1;
  const eta = Number.isFinite(p.eta_s) ? `${fmt(p.eta_s)} s left` : '';
  $('progress-text').textContent = `${p.done}/${p.total} windows · ${fmt(p.windows_per_s, 2)}/s · ${eta}`;
  arrivals.updates.push(...p.updates);
  if (arrivals.frame) return;
  // The queue holds the current run's windows only (a new run's clearResults empties it).
  const draw = () => { arrivals.frame = 0; drawArrivals(state.running); };
  // A hidden page gets no animation frames: a timer then, so the queue does not grow for a whole slide.
  arrivals.frame = document.hidden ? setTimeout(draw, 250) : requestAnimationFrame(draw);
}

/** The queued windows as overlay tiles (probabilities at or above the model's threshold), then one
 * redraw; dropped if the run ended or another began meanwhile. */
async function drawArrivals(runId) {
  const updates = arrivals.updates.splice(0);
  const [r, g, b] = colour();
  const level = state.model.thresholdLevel; // the manifest's threshold on the 0–255 scale of probs
  const windows = await Promise.all(updates.map(async (u) => {
    const rgba = new Uint8ClampedArray(u.size * u.size * 4);
    for (let i = 0; i < u.probs.length; i++) {
      if (u.probs[i] >= level) { rgba[4 * i] = r; rgba[4 * i + 1] = g; rgba[4 * i + 2] = b; rgba[4 * i + 3] = 255; }
    }
    return { x: u.x, y: u.y, window: u.window, bitmap: await createImageBitmap(new ImageData(rgba, u.size, u.size)) };
  }));
  if (!runId || state.running !== runId) return;
  state.windows.push(...windows);
  drawOverlay();
}

function showResults(summary, whole) {
  state.windows = [];
  arrivals.updates.length = 0;
  state.timings = summary.timings;
  state.glomeruli = summary.glomeruli;
  const um = summary.pixel_size_um;
  $('count').textContent = `(${summary.count})`;
  const total = summary.glomeruli.reduce((s, g) => s + (g.area_um2 ?? 0), 0);
  const where = `${summary.windows} window${summary.windows === 1 ? '' : 's'}, ${fmt(summary.timings.total_s, 1)} s`;
  $('summary').textContent = summary.count === 0
    ? `No glomerulus found (${where}). The model was trained on ${state.model.manifest.trained_on}; other stains, species or scales may need another model.`
    : `${summary.count} ${summary.count === 1 ? 'glomerulus' : 'glomeruli'} in ${where}` +
      (um ? ` · mean area ${fmt(total / summary.count)} µm²` : ' · pixel size unknown: areas in px²');
  $('results').replaceChildren(...summary.glomeruli.map((g) => {
    const li = document.createElement('li');
    li.textContent = g.area_um2 != null ? `${fmt(g.area_um2)} µm²` : `${fmt(g.area_px)} px²`;
    li.title = 'zoom to this glomerulus';
    li.addEventListener('click', () => zoomTo(g));
    return li;
  }));
  for (const id of ['export-geojson', 'export-csv', 'export-png']) $(id).disabled = false;
  if (state.model.key !== 'user' && summary.windows > 0 && summary.timings.total_s > 0) {
    storage()?.setItem(speedKey(state.model.key, state.model.backend.backend), String(summary.windows / summary.timings.total_s));
    showCard();
  }
  if (state.annotationsText) compareWith(state.annotationsText);
  engine.call('export', { kind: 'geojson' }).then((prediction) => startReview(prediction, state.annotationsText ?? null))
    .catch((err) => notice(`Review unavailable: ${err.message}`));
  const on = state.model.backend.backend === 'flex' ? `the CPU, ${state.workers} worker${state.workers === 1 ? '' : 's'}` : state.model.backend.backend;
  setState('done', `${summary.count} ${summary.count === 1 ? 'glomerulus' : 'glomeruli'} found${whole ? '' : ' in the view'} (${fmt(summary.timings.total_s, 1)} s on ${on}).`);
  drawOverlay();
}

function clearResults() {
  if (state.review?.editing) stopEditing(false);
  state.review = null;
  $('review-panel').hidden = true;
  state.windows = [];
  arrivals.updates.length = 0;
  state.glomeruli = [];
  $('count').textContent = '–';
  $('summary').textContent = '';
  $('results').replaceChildren();
  $('compare').textContent = '';
  for (const id of ['export-geojson', 'export-csv', 'export-png']) $(id).disabled = true;
  drawOverlay();
}

function zoomTo(g) {
  const [x, y, w, h] = g.bbox;
  const pad = Math.max(w, h);
  state.viewer.viewport.fitBounds(item().imageToViewportRectangle(x - pad, y - pad, w + 2 * pad, h + 2 * pad));
}

// ---- overlay ---------------------------------------------------------------------------------------

function colour() {
  const hex = $('colour').value;
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

function drawOverlay() {
  const canvas = $('overlay');
  const dpr = window.devicePixelRatio || 1;
  const { clientWidth: w, clientHeight: h } = canvas;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const it = item();
  if (!it) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const toScreen = (x, y) => it.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
  const opacity = Number($('opacity').value);
  const hex = $('colour').value;
  // Windows of a running segmentation: probabilities at or above the model's threshold, as they arrive.
  ctx.globalAlpha = opacity;
  ctx.imageSmoothingEnabled = true;
  for (const win of state.windows) {
    const a = toScreen(win.x, win.y), b = toScreen(win.x + win.window, win.y + win.window);
    ctx.drawImage(win.bitmap, a.x, a.y, b.x - a.x, b.y - a.y);
  }
  ctx.globalAlpha = 1;
  const path = (ring) => {
    ctx.beginPath();
    ring.forEach(([x, y], i) => { const p = toScreen(x, y); if (i) ctx.lineTo(p.x, p.y); else ctx.moveTo(p.x, p.y); });
    ctx.closePath();
  };
  for (const g of state.review ? [] : state.glomeruli) {
    if (!g.outline.length) continue;
    path(g.outline);
    if ($('show-fill').checked) { ctx.globalAlpha = opacity; ctx.fillStyle = hex; ctx.fill(); ctx.globalAlpha = 1; }
    if ($('show-outline').checked) { ctx.strokeStyle = hex; ctx.lineWidth = 2; ctx.stroke(); }
  }
  ctx.setLineDash([6, 4]);
  ctx.strokeStyle = '#ffd400';
  ctx.lineWidth = 2;
  for (const ring of state.annotations.flat()) { path(ring); ctx.stroke(); }
  ctx.setLineDash([]);
  if (state.review) drawReview(ctx, path);
}

function drawScaleBar() {
  const um = state.slide?.info.pixel_size_um;
  const it = item();
  if (!um || !it) { $('scalebar').hidden = true; return; }
  const screenPerImage = it.viewportToImageZoom(state.viewer.viewport.getZoom(true)) * 1; // screen px per image px
  const umPerScreen = um / screenPerImage;
  const target = 120 * umPerScreen;
  const nice = [1, 2, 5].flatMap((m) => [-1, 0, 1, 2, 3, 4, 5].map((e) => m * 10 ** e)).sort((a, b) => a - b);
  const length = nice.reduce((best, v) => (v <= target ? v : best), nice[0]);
  $('scalebar').hidden = false;
  $('scalebar-bar').style.width = `${length / umPerScreen}px`;
  $('scalebar-text').textContent = length >= 1000 ? `${length / 1000} mm` : `${length} µm`;
}

function hover(position) {
  const it = item();
  const tip = $('tooltip');
  if (!it || !state.glomeruli.length) { tip.hidden = true; return; }
  const p = it.viewerElementToImageCoordinates(position);
  const g = state.glomeruli.find((g) => p.x >= g.bbox[0] && p.y >= g.bbox[1] && p.x <= g.bbox[0] + g.bbox[2] && p.y <= g.bbox[1] + g.bbox[3] && inside(g.outline, p.x, p.y));
  if (!g) { tip.hidden = true; return; }
  tip.hidden = false;
  tip.style.left = `${position.x + 12}px`;
  tip.style.top = `${position.y + 12}px`;
  tip.textContent = g.area_um2 != null ? `glomerulus ${g.id}: ${fmt(g.area_um2)} µm²` : `glomerulus ${g.id}: ${fmt(g.area_px)} px²`;
}

function inside(ring, x, y) {
  let c = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i], [xj, yj] = ring[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) c = !c;
  }
  return c;
}

// ---- export / import ---------------------------------------------------------------------------------

function download(data, name, type) {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function exportAs(kind) {
  try {
    const id = state.slide.id;
    if (kind === 'geojson') download(await engine.call('export', { kind }), `${id}.geojson`, 'application/geo+json');
    if (kind === 'csv') download(`id,predicted\n${id},${await engine.call('export', { kind: 'rle' })}\n`, `${id}-submission.csv`, 'text/csv');
    if (kind === 'png') download(await engine.call('export', { kind }), `${id}-mask.png`, 'image/png');
  } catch (err) {
    setState('error', `Export failed: ${err.message}`);
  }
}

async function importAnnotations(name, text) {
  try {
    // Parsed in Rust (the viewer worker), by the same reader the Dice below uses (GeoJSON or LabelMe).
    const annotations = await tiles.call('annotations', { text });
    state.annotations = annotations.flatMap((a) => a.polygons);
    state.annotationsText = text;
    drawOverlay();
    if (state.glomeruli.length || state.windows.length || $('count').textContent !== '–') {
      await compareWith(text);
      if (state.review) await startReview(state.review.prediction, text);
    } else {
      $('compare').textContent = `${state.annotations.length} annotated polygons shown (dashed); segment to compare.`;
    }
  } catch (err) {
    setState('error', `Cannot read ${name}: ${err.message}`);
  }
}

async function compareWith(text) {
  const dice = await engine.call('compare', { annotations: text });
  $('compare').textContent = `${state.annotations.length} annotated polygons (dashed) · Dice with the prediction: ${fmt(dice, 4)}` +
    (state.lastWhole ? '' : ' (only the view was segmented: annotations outside it count as missed)');
}

// ---- review ------------------------------------------------------------------------------------------

/** The review of the last segmentation (against the imported annotations, or alone): its items from
 * the crate (`WebReview`, in the engine worker), the decisions taken (a log: undo drops the last), the
 * reviewed set they give, and the item in view. Saved in IndexedDB per slide, so a reload loses nothing. */
const KIND = { unannotated: 'not annotated', not_found: 'not found by the model', overlap: 'outlines differ', confirm: 'to confirm' };
const STATUS_COLOUR = { confirmed: null, added: '#00b7ff', rejected: '#ff3b30', unreviewed: '#ffd400' };

function reviewKey() {
  const l0 = state.slide.info.levels[0];
  return `${state.slide.name}|${l0.width}x${l0.height}`;
}

function reviewStore(mode, op) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open('ftuscope', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('reviews');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const tx = open.result.transaction('reviews', mode);
      const request = op(tx.objectStore('reviews'));
      tx.oncomplete = () => { open.result.close(); resolve(request.result); };
      tx.onerror = () => { open.result.close(); reject(tx.error); };
    };
  });
}

/** Starts a review of `prediction` (GeoJSON text) against `annotations` (text or null), taking up
 * the decisions saved for this slide when they were made on the same prediction and annotations. */
async function startReview(prediction, annotations, restored = null) {
  const r = await engine.call('reviewStart', { prediction, annotations });
  const saved = restored ?? await reviewStore('readonly', (s) => s.get(reviewKey())).catch(() => null);
  const same = saved && saved.prediction === prediction && (saved.annotations ?? null) === (annotations ?? null);
  state.review = { ...r, prediction, annotations, decisions: same ? saved.decisions : [], index: same ? saved.index ?? 0 : 0, editing: null };
  $('review-panel').hidden = false;
  await applyReview(false);
  if (same && saved.decisions.length) setState('ready', `Review restored: ${saved.decisions.length} decision${saved.decisions.length === 1 ? '' : 's'} kept from before.`);
}

/** Applies the decisions (in the engine), saves them, and redraws the list and the overlay. */
async function applyReview(save = true) {
  const rv = state.review;
  const out = await engine.call('reviewApply', { decisions: rv.decisions });
  rv.objects = out.objects;
  rv.statusCounts = out.counts;
  rv.applied = rv.decisions.length; // what the objects and counts shown reflect (tests wait on it)
  if (save) {
    const { prediction, annotations, decisions, index } = rv;
    await reviewStore('readwrite', (s) => s.put({ prediction, annotations, decisions, index, saved: Date.now() }, reviewKey())).catch((e) => notice(`Review not saved in this browser: ${e.message}`));
  }
  renderReview();
  drawOverlay();
}

/** The last decision on each item. */
function decided() {
  const last = new Map();
  for (const d of state.review.decisions) if (d.item != null) last.set(d.item, d.action);
  return last;
}

function renderReview() {
  const rv = state.review;
  const c = rv.counts;
  const last = decided();
  const [confirmed, added, rejected, unreviewed] = rv.statusCounts;
  $('review-progress').textContent = rv.items.length ? `(${last.size}/${rv.items.length} decided)` : '';
  const kinds = [['unannotated', c.unannotated], ['not_found', c.not_found], ['overlap', c.overlap], ['confirm', c.confirm]]
    .filter(([, n]) => n).map(([k, n]) => `${n} ${KIND[k]}`).join(', ');
  $('review-counts').textContent = (rv.items.length ? `To review: ${kinds}.` : 'Nothing to review.') +
    (c.agreed ? ` ${c.agreed} agree with the annotations.` : '') +
    ` Reviewed set: ${confirmed} confirmed, ${added} added, ${rejected} rejected, ${unreviewed} unreviewed.`;
  $('review-items').replaceChildren(...rv.items.map((it, i) => {
    const li = document.createElement('li');
    const conf = it.confidence != null ? ` · p ${fmt(it.confidence, 2)}` : '';
    const iou = it.kind === 'overlap' ? ` · IoU ${fmt(it.iou, 2)}` : '';
    const d = last.get(i);
    li.textContent = `${KIND[it.kind]}${conf}${iou} · ${fmt(it.area_px)} px²${d ? ` — ${d === 'edit' ? 'edited' : `${d}ed`}` : ''}`;
    li.classList.toggle('current', i === rv.index);
    li.classList.toggle('decided', Boolean(d));
    li.addEventListener('click', () => goToItem(i));
    return li;
  }));
  $('review-items').children[rv.index]?.scrollIntoView({ block: 'nearest' });
  for (const id of ['review-accept', 'review-reject', 'review-edit']) $(id).disabled = !rv.items.length;
  $('review-undo').disabled = !rv.decisions.length;
}

function goToItem(i) {
  const rv = state.review;
  if (!rv?.items.length) return;
  rv.index = (i + rv.items.length) % rv.items.length;
  const [x, y, w, h] = rv.items[rv.index].bbox;
  const pad = Math.max(w, h) * 0.75;
  state.viewer?.viewport.fitBounds(item().imageToViewportRectangle(x - pad, y - pad, w + 2 * pad, h + 2 * pad));
  renderReview();
  drawOverlay();
}

/** Records a decision on the current item and moves to the next item not yet decided. */
async function decide(action, extra = {}) {
  const rv = state.review;
  if (!rv?.items.length) return;
  rv.decisions.push({ action, item: rv.index, ...extra });
  await applyReview();
  const last = decided();
  const next = rv.items.findIndex((_, i) => i > rv.index && !last.has(i));
  goToItem(next >= 0 ? next : rv.index);
}

async function undoDecision() {
  const rv = state.review;
  if (!rv?.decisions.length) return;
  const d = rv.decisions.pop();
  if (d.item != null) rv.index = d.item;
  await applyReview();
  goToItem(rv.index);
}

/** The outline an edit of the current item starts from: the annotation's for a missed one, else the model's. */
function itemOutline(it) {
  return (it.kind === 'not_found' ? state.review.annotationOutlines[it.annotation] : state.review.predictionOutlines[it.prediction]) ?? [];
}

/** Edit mode: the current item's outline (E) or a new one (D) on the overlay; the viewer's mouse is off. */
function startEditing(draw) {
  const rv = state.review;
  if (!rv || rv.editing || (!draw && !rv.items.length)) return;
  const points = draw ? [] : itemOutline(rv.items[rv.index]).map(([x, y]) => [x, y]);
  if (!draw && points.length > 1 && points[0][0] === points.at(-1)[0] && points[0][1] === points.at(-1)[1]) points.pop();
  rv.editing = { draw, points, drag: -1 };
  $('overlay').classList.add('editing');
  state.viewer.setMouseNavEnabled(false);
  setState('ready', draw ? 'Drawing: click to add vertices, Enter to save, Esc to cancel.'
    : 'Editing: drag a vertex, click an edge to add one, double-click a vertex to delete it; Enter saves, Esc cancels.');
  drawOverlay();
}

async function stopEditing(save) {
  const rv = state.review;
  const editing = rv?.editing;
  if (!editing) return;
  rv.editing = null;
  $('overlay').classList.remove('editing');
  state.viewer.setMouseNavEnabled(true);
  if (save && editing.points.length >= 3) {
    const outline = editing.points.map(([x, y]) => [Math.round(x * 10) / 10, Math.round(y * 10) / 10]);
    if (editing.draw) { rv.decisions.push({ action: 'add', outline }); await applyReview(); } else await decide('edit', { outline });
    setState('ready', editing.draw ? 'Added a glomerulus.' : 'Outline saved.');
  } else {
    setState('ready', save ? 'An outline needs at least three vertices: nothing saved.' : 'Edit cancelled.');
  }
  drawOverlay();
}

/** Image coordinates of a mouse event on the overlay. */
function imagePoint(e) {
  const r = $('overlay').getBoundingClientRect();
  const p = item().viewerElementToImageCoordinates(new OpenSeadragon.Point(e.clientX - r.left, e.clientY - r.top));
  return [p.x, p.y];
}

/** The vertex within 8 screen pixels of `e`, or −1. */
function vertexAt(e) {
  const r = $('overlay').getBoundingClientRect();
  const points = state.review.editing.points;
  let best = -1, bestD = 64;
  points.forEach(([x, y], i) => {
    const s = item().imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
    const d = (s.x - (e.clientX - r.left)) ** 2 + (s.y - (e.clientY - r.top)) ** 2;
    if (d <= bestD) { best = i; bestD = d; }
  });
  return best;
}

function onEditMouse(e) {
  const editing = state.review?.editing;
  if (!editing) return;
  e.preventDefault();
  const p = imagePoint(e);
  if (e.type === 'mousedown') {
    const v = vertexAt(e);
    if (v >= 0) { editing.drag = v; return; }
    if (editing.draw || editing.points.length < 2) { editing.points.push(p); drawOverlay(); return; }
    // Insert on the nearest edge.
    let best = 0, bestD = Infinity;
    editing.points.forEach((a, i) => {
      const b = editing.points[(i + 1) % editing.points.length];
      const [dx, dy] = [b[0] - a[0], b[1] - a[1]];
      const t = Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / (dx * dx + dy * dy || 1)));
      const d = (a[0] + t * dx - p[0]) ** 2 + (a[1] + t * dy - p[1]) ** 2;
      if (d < bestD) { best = i; bestD = d; }
    });
    editing.points.splice(best + 1, 0, p);
    editing.drag = best + 1;
  } else if (e.type === 'mousemove' && editing.drag >= 0) {
    editing.points[editing.drag] = p;
  } else if (e.type === 'mouseup') {
    editing.drag = -1;
  } else if (e.type === 'dblclick') {
    const v = vertexAt(e);
    if (v >= 0 && editing.points.length > 3) editing.points.splice(v, 1);
  }
  drawOverlay();
}

/** Draws the reviewed set (by status), the current item's box and an outline being edited. */
function drawReview(ctx, path) {
  const rv = state.review;
  const hex = $('colour').value;
  for (const o of rv.objects ?? []) {
    if (!o.outline.length) continue;
    path(o.outline);
    const colour = STATUS_COLOUR[o.status] ?? hex;
    if (o.status === 'rejected') ctx.setLineDash([4, 4]);
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.stroke();
    if (o.status === 'confirmed' && $('show-fill').checked) { ctx.globalAlpha = Number($('opacity').value); ctx.fillStyle = colour; ctx.fill(); ctx.globalAlpha = 1; }
    ctx.setLineDash([]);
  }
  const it = rv.items[rv.index];
  const toScreen = (x, y) => item().imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
  if (it && !rv.editing) {
    const [x, y, w, h] = it.bbox;
    const a = toScreen(x, y), b = toScreen(x + w, y + h);
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 1.5;
    ctx.strokeRect(a.x - 6, a.y - 6, b.x - a.x + 12, b.y - a.y + 12);
  }
  if (rv.editing) {
    const pts = rv.editing.points;
    if (pts.length) {
      path(pts);
      ctx.strokeStyle = '#00b7ff';
      ctx.lineWidth = 2;
      ctx.stroke();
      ctx.fillStyle = '#fff';
      for (const [x, y] of pts) { const s = toScreen(x, y); ctx.fillRect(s.x - 4, s.y - 4, 8, 8); ctx.strokeRect(s.x - 4, s.y - 4, 8, 8); }
    }
  }
}

async function exportReviewed(kind) {
  const rv = state.review;
  if (!rv) return;
  try {
    const id = state.slide.id;
    if (kind === 'geojson') {
      const text = await engine.call('reviewExport', { decisions: rv.decisions, kind, options: { rejected: $('export-rejected').checked, pixel_size_um: state.slide.info.pixel_size_um ?? null } });
      download(text, `${id}-reviewed.geojson`, 'application/geo+json');
    } else {
      const { width, height } = state.slide.info.levels[0];
      const rle = await engine.call('reviewExport', { decisions: rv.decisions, kind: 'rle', width, height });
      download(`id,predicted\n${id},${rle}\n`, `${id}-reviewed.csv`, 'text/csv');
    }
  } catch (err) {
    setState('error', `Export failed: ${err.message}`);
  }
}

// ---- fine-tuning on the reviewed objects -------------------------------------------------------------

/** "Improve the model on this slide": the loaded model's decoder trains in the engine worker on the
 * reviewed set (confirmed, corrected and added glomeruli; rejected objects as negatives), step by step,
 * on its device; progress, a loss curve and Cancel here. The result can be used (loaded as "your
 * model", on every worker), exported as a model folder, or discarded. */
async function startTuning() {
  const rv = state.review;
  if (!rv || state.running || state.tuning) return;
  const objects = rv.objects ?? [];
  const positives = objects.filter((o) => o.status === 'confirmed' || o.status === 'added').map((o) => o.outline);
  const negatives = objects.filter((o) => o.status === 'rejected').map((o) => o.outline);
  if (!positives.length) return setState('error', 'Nothing to learn from yet: accept, correct or draw glomeruli first.');
  const steps = Math.min(500, Math.max(1, Math.round(Number($('tune-steps').value)) || 40));
  state.tuning = { runId: ++state.runId, losses: [] };
  tuneBusy(true);
  setState('running', `Preparing the fine-tuning: ${positives.length} glomeruli, ${negatives.length} rejected…`);
  try {
    await ensureModel();
    const out = await engine.call('tuneStart', { positives, negatives, steps, runId: state.tuning.runId });
    state.tuned = out;
    $('tune-done').hidden = false;
    setState('done', `Fine-tuned on ${positives.length} glomeruli and ${negatives.length} rejected objects of this slide ` +
      `(${out.windows} windows, ${steps} steps): loss ${fmt(out.losses[0], 3)} → ${fmt(out.losses.at(-1), 3)}. Use, export or discard it.`);
  } catch (err) {
    if (/cancel/i.test(err.message)) setState('ready', 'Fine-tuning cancelled; the model is as it was.');
    else setState('error', `Fine-tuning failed: ${err.message}`);
  } finally {
    state.tuning = null;
    tuneBusy(false);
  }
}

function tuneBusy(on) {
  $('tune-start').disabled = on;
  $('tune-cancel').disabled = !on;
  $('segment-view').disabled = on || !state.slide;
  $('segment-slide').disabled = on || !state.slide;
  $('tune-row').hidden = !on;
  if (on) { $('tune-progress').value = 0; $('tune-text').textContent = 'reading windows…'; $('tune-done').hidden = true; }
}

function onTuneEvent(e) {
  $('tune-progress').value = e.steps ? e.step / e.steps : 0;
  if (e.loss == null) { $('tune-text').textContent = `${e.windows} windows read; training…`; return; }
  state.tuning.losses.push(e.loss);
  $('tune-text').textContent = `step ${e.step}/${e.steps} · loss ${fmt(e.loss, 3)}`;
  drawCurve(state.tuning.losses);
}

/** The loss per step, scaled to the canvas. */
function drawCurve(losses) {
  const canvas = $('tune-curve');
  canvas.hidden = false;
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const max = Math.max(...losses, 1e-6);
  ctx.strokeStyle = '#0a6';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  losses.forEach((l, i) => {
    const x = (i / Math.max(1, losses.length - 1)) * (canvas.width - 4) + 2;
    const y = canvas.height - 2 - (l / max) * (canvas.height - 4);
    if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
  });
  ctx.stroke();
}

/** Runs the original and the tuned model over the reviewed objects' box and says how many of them each finds. */
async function compareTuned() {
  const reviewed = (state.review?.objects ?? []).filter((o) => o.status === 'confirmed' || o.status === 'added').map((o) => o.outline);
  $('tune-compare').disabled = true;
  $('tune-result').textContent = 'Running both models over the reviewed objects…';
  try {
    const { original, tuned } = await engine.call('tuneCompare', { reviewed });
    const say = (a) => `finds ${a.found} of ${a.reviewed} reviewed glomeruli (${a.predicted} predicted there)`;
    $('tune-result').textContent = `Original model ${say(original)}; tuned model ${say(tuned)}. (The tuned model learnt from these objects: this checks the fit, not other slides.)`;
    state.tuneComparison = { original, tuned };
  } catch (err) {
    $('tune-result').textContent = `Comparison failed: ${err.message}`;
  } finally {
    $('tune-compare').disabled = false;
  }
}

async function useTuned() {
  try {
    const { bpk, json } = await engine.call('tuneExport');
    state.userModel = { bpk, json };
    $('model-user').disabled = false;
    $('model-choice').value = 'user';
    state.model = null; // new weights under the same key
    await ensureModel();
    await showCard();
    setState('ready', `Using the tuned model (${state.tuned?.name ?? 'tuned'}) as "your model": Segment to see what it finds; choose another model to go back.`);
  } catch (err) {
    setState('error', `Cannot use the tuned model: ${err.message}`);
  }
}

async function exportTuned() {
  try {
    const { bpk, json } = await engine.call('tuneExport');
    download(bpk, 'model.bpk', 'application/octet-stream');
    download(json, 'model.json', 'application/json');
  } catch (err) {
    setState('error', `Export failed: ${err.message}`);
  }
}

async function discardTuned() {
  await engine.call('tuneDiscard').catch(() => {});
  state.tuned = null;
  $('tune-done').hidden = true;
  $('tune-curve').hidden = true;
  $('tune-result').textContent = '';
  setState('ready', 'The tuned model is discarded.');
}

/** Keys of the review (not while typing in a field): N/P, A, R, E, D, Z or Ctrl+Z, Enter, Esc. */
function onReviewKey(e) {
  if (!state.review || e.target.closest?.('input, select, textarea')) return;
  const key = e.key.toLowerCase();
  const editing = state.review.editing;
  const act = {
    enter: () => stopEditing(true), escape: () => stopEditing(false),
    ...(editing ? {} : {
      n: () => goToItem(state.review.index + 1), p: () => goToItem(state.review.index - 1),
      a: () => decide('accept'), r: () => decide('reject'), e: () => startEditing(false), d: () => startEditing(true), z: () => undoDecision(),
    }),
  }[key];
  if (!act || (e.ctrlKey && key !== 'z') || e.altKey || e.metaKey) return;
  e.preventDefault();
  e.stopPropagation();
  act();
}

// ---- wiring -------------------------------------------------------------------------------------------

/** One file opens as a slide; several (a DICOM WSI series: one file per level) open together. */
function openFiles(files, folder) {
  if (files.length === 1) openSlide(files[0], files[0].name);
  else if (files.length > 1) openSlide(files, folder ?? `${files.length} files`);
}
$('file').addEventListener('change', (e) => openFiles([...e.target.files]));
$('url-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const url = $('url').value.trim();
  if (!url) return;
  history.replaceState(null, '', `?url=${encodeURIComponent(url)}`);
  openSlide(url, url);
});
$('demo').addEventListener('change', async (e) => {
  const path = e.target.value;
  const outlines = e.target.selectedOptions[0]?.dataset.annotations;
  e.target.value = '';
  if (!path) return;
  await openSlide(new URL(path, location.href).href, path.split('/').pop());
  // A demo with its expert outlines: shown dashed, and compared with each segmentation.
  if (outlines && state.slide?.name === path.split('/').pop()) {
    const r = await fetch(outlines);
    if (r.ok) await importAnnotations(outlines, await r.text());
  }
});
$('model-files').addEventListener('change', (e) => loadUserModel(e.target.files));
$('backend').addEventListener('change', () => { state.model = null; });
$('model-choice').addEventListener('change', (e) => chooseModel(e.target.value, true));
$('workers').addEventListener('change', () => { $('workers').value = String(workerCount()); storage()?.setItem('ftuscope-workers', $('workers').value); });
$('segment-view').addEventListener('click', () => segment(false));
$('segment-slide').addEventListener('click', () => segment(true));
$('cancel').addEventListener('click', cancelRun);
$('review-prev').addEventListener('click', () => goToItem(state.review.index - 1));
$('review-next').addEventListener('click', () => goToItem(state.review.index + 1));
$('review-accept').addEventListener('click', () => decide('accept'));
$('review-reject').addEventListener('click', () => decide('reject'));
$('review-edit').addEventListener('click', () => startEditing(false));
$('review-draw').addEventListener('click', () => startEditing(true));
$('review-undo').addEventListener('click', undoDecision);
$('export-reviewed').addEventListener('click', () => exportReviewed('geojson'));
$('tune-start').addEventListener('click', startTuning);
$('tune-cancel').addEventListener('click', () => engine.call('tuneCancel').catch(() => {}));
$('tune-use').addEventListener('click', useTuned);
$('tune-compare').addEventListener('click', compareTuned);
$('tune-export').addEventListener('click', exportTuned);
$('tune-discard').addEventListener('click', discardTuned);
$('export-reviewed-csv').addEventListener('click', () => exportReviewed('csv'));
for (const ev of ['mousedown', 'mousemove', 'mouseup', 'dblclick']) $('overlay').addEventListener(ev, onEditMouse);
document.addEventListener('keydown', onReviewKey, true);
$('export-geojson').addEventListener('click', () => exportAs('geojson'));
$('export-csv').addEventListener('click', () => exportAs('csv'));
$('export-png').addEventListener('click', () => exportAs('png'));
$('annotations').addEventListener('change', async (e) => { const f = e.target.files[0]; if (f) importAnnotations(f.name, await f.text()); });
for (const id of ['show-fill', 'show-outline', 'opacity', 'colour']) $(id).addEventListener('input', drawOverlay);
window.addEventListener('resize', drawOverlay);
for (const ev of ['dragenter', 'dragover']) document.addEventListener(ev, (e) => { e.preventDefault(); document.body.classList.add('dragging'); });
for (const ev of ['dragleave', 'drop']) document.addEventListener(ev, (e) => { e.preventDefault(); document.body.classList.remove('dragging'); });
/** The files of a dropped folder (one level deep: a DICOM series' folder). */
async function folderFiles(entry) {
  const reader = entry.createReader();
  const entries = [];
  for (let batch; (batch = await new Promise((ok, fail) => reader.readEntries(ok, fail))).length;) entries.push(...batch);
  return Promise.all(entries.filter((e) => e.isFile).map((e) => new Promise((ok, fail) => e.file(ok, fail))));
}
document.addEventListener('drop', async (e) => {
  const entry = e.dataTransfer?.items?.[0]?.webkitGetAsEntry?.();
  if (entry?.isDirectory) openFiles(await folderFiles(entry), entry.name);
  else openFiles([...(e.dataTransfer?.files ?? [])]);
});

setState('ready', 'Open a slide (file, URL or demo). Nothing is uploaded.');
if (params.get('backend')) $('backend').value = params.get('backend');
setupWorkers();
defaultModel().then((key) => chooseModel(key, false));
if (params.get('url')) { $('url').value = params.get('url'); openSlide(params.get('url'), params.get('url')); }
// For tests and the console: lose the GPU, stop a pool helper as a crash would, count busy workers.
window.ftuscope = {
  state,
  pool,
  loseGpu: () => engine.call('loseGpu'),
  killWorker: (i) => pool.helpers[i]?.rpc.terminate('killed'),
  exportText: (kind) => engine.call('export', { kind }),
  // wasm memory in bytes: {workers: [engine, helpers…], tiles}.
  memory: async () => ({
    workers: await Promise.all([engine, ...pool.helpers.filter((h) => !h.rpc.dead).map((h) => h.rpc)].map((r) => r.call('memory'))),
    tiles: await tiles.call('memory'),
  }),
};

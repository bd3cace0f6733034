// The wasm module in a Web Worker: the page sends {id, op, args}, gets {id, ok, value|error}, and
// progress events {event, ...}. The page runs two of these — one decodes viewer tiles, one runs
// the network — so panning stays smooth while a slide is segmented (on the CPU fallback a forward
// pass blocks its worker). Slide pixels never leave this machine.
import init, { WebSlide, WebModel, Cancel, segmentSlide, diceOfAnnotations } from '../pkg/ftuscope.js';

const ready = init();
let slide = null;
let model = null;
let prediction = null;
let cancel = null;

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
  async overviews() {
    return slide.buildOverviews((done, total) => postMessage({ event: 'overviews', done, total }));
  },
  async tile({ x, y, w, h, outW, outH }) {
    const rgba = await slide.readScaled(x, y, w, h, outW, outH);
    const bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(rgba.buffer), outW, outH));
    return [bitmap, [bitmap]];
  },
  async loadModel({ bpk, json, backend }) {
    const loaded = await WebModel.load(new Uint8Array(bpk), json, backend);
    model?.free();
    model = loaded;
    return { manifest: model.manifest, backend: model.backend };
  },
  async segment({ region, runId }) {
    if (!slide) throw new Error('open a slide first');
    if (!model) throw new Error('load a model first');
    cancel = new Cancel();
    const onProgress = (p) => {
      const updates = p.updates.map((u) => ({ x: u.x, y: u.y, window: u.window, size: u.size, probs: u.probs }));
      postMessage({ event: 'progress', runId, done: p.done, total: p.total, tilesPerS: p.tiles_per_s, etaS: p.eta_s, updates },
        updates.map((u) => u.probs.buffer));
    };
    const result = await segmentSlide(slide, model, region ?? undefined, onProgress, cancel);
    prediction?.free();
    prediction = result;
    return prediction.summary;
  },
  cancel() {
    cancel?.cancel();
    return true;
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
  async compare({ annotations }) {
    if (!prediction) throw new Error('nothing segmented yet');
    const info = slide.info;
    return diceOfAnnotations(prediction.geojson(), annotations, info.levels[0].width, info.levels[0].height);
  },
};

self.onmessage = async ({ data: { id, op, args } }) => {
  try {
    await ready;
    const handler = ops[op];
    if (!handler) throw new Error(`unknown operation ${op}`);
    const out = await handler(args ?? {});
    const [value, transfer] = Array.isArray(out) && out.length === 2 && Array.isArray(out[1]) ? out : [out, []];
    postMessage({ id, ok: true, value }, transfer);
  } catch (err) {
    postMessage({ id, ok: false, error: String(err?.message ?? err) });
  }
};

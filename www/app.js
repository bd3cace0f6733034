// Thin DOM wiring: all decoding, inference and overlay work happens in the wasm module.
import init, { Engine } from '../pkg/ftuscope.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const tile = Number(params.get('tile') || 256);
let engine = null;
let engineBackend = null;
let imageBytes = null;

function setState(state, text) {
  document.body.dataset.state = state;
  $('status').textContent = text;
}

function showInfo(info) {
  const rows = [['backend', info.backend], ['adapter', info.adapter], ['device', info.device]];
  $('backend-info').replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v; dd.id = `info-${k}`;
    return [dt, dd];
  }));
  $('notice').hidden = !info.notice;
  $('notice').textContent = info.notice ?? '';
}

async function getEngine() {
  const backend = $('backend').value;
  if (!engine || engineBackend !== backend) {
    setState('starting', `Starting ${backend} backend…`);
    engine?.free();
    engine = await Engine.create(backend, tile);
    engineBackend = backend;
    showInfo(engine.info);
  }
  return engine;
}

async function showImage(bytes) {
  imageBytes = bytes;
  const bitmap = await createImageBitmap(new Blob([bytes]));
  const canvas = $('view');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext('2d').drawImage(bitmap, 0, 0);
  $('segment').disabled = false;
  setState('ready', `Image ${bitmap.width}×${bitmap.height} loaded. Press Segment.`);
}

async function segment() {
  $('segment').disabled = true;
  try {
    const e = await getEngine();
    setState('running', 'Segmenting… (the first run compiles GPU shaders and can take a while)');
    const result = await e.segmentImage(imageBytes);
    const canvas = $('view');
    canvas.width = result.width;
    canvas.height = result.height;
    const pixels = new ImageData(new Uint8ClampedArray(result.overlay), result.width, result.height);
    canvas.getContext('2d').putImageData(pixels, 0, 0);
    setState('done', `${(100 * result.positiveFraction).toFixed(1)}% of pixels above threshold · ` +
      `${result.millis.toFixed(0)} ms on ${e.info.backend}`);
    result.free();
  } catch (err) {
    setState('error', `Segmentation failed: ${err?.message ?? err}`);
  } finally {
    $('segment').disabled = false;
  }
}

$('segment').addEventListener('click', segment);
$('file').addEventListener('change', async (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  try {
    await showImage(new Uint8Array(await file.arrayBuffer()));
  } catch (err) {
    setState('error', `Cannot open ${file.name}: ${err?.message ?? err}`);
  }
});

try {
  await init();
  const response = await fetch('assets/ihc.png');
  if (!response.ok) throw new Error(`bundled image: HTTP ${response.status}`);
  await showImage(new Uint8Array(await response.arrayBuffer()));
} catch (err) {
  setState('error', `Start-up failed: ${err?.message ?? err}`);
}

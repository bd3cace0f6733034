// The app as a user meets it, in headless Chromium (`make bench-app`; not a test): bytes on the wire
// for a first and a repeat visit until the first tile of the synthetic demo slide is on screen, and
// the time of Segment view on the CPU path and on WebGPU (SwiftShader here: a CPU) over the view the
// end-to-end test segments. The app and the slide come from two servers (tests/server/range-server.mjs,
// which counts the bytes it writes: headers and bodies), so the app's bytes and the slide's are told
// apart; the slide is streamed with Range requests and never cached (the reader asks for no-store).
// Usage: node tests/bench/app.mjs [--runs N]. Prints Markdown tables.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { start } from '../server/range-server.mjs';
import { demoView, segmentView } from './view.mjs';

const root = resolve(import.meta.dirname, '..', '..');
const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 2;
const args = ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--enable-features=Vulkan',
  '--use-vulkan=swiftshader', '--use-angle=swiftshader', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SLIDE = 'www/demo/synthetic-kidney.tiff';
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;

const app = await start({ root });
const slides = await start({ root });

/** Loads the app with the demo slide by URL; resolves when its first tile is loaded. */
async function visit(page, backend) {
  const a0 = app.bytes(), s0 = slides.bytes(), t0 = Date.now();
  const url = `${app.url}/?backend=${backend}&url=${encodeURIComponent(`${slides.url}/range/${SLIDE}`)}`;
  await page.goto(url);
  await page.waitForFunction(() => new Promise((ok) => {
    const attach = () => {
      const item = window.ftuscope?.state.viewer?.world.getItemAt(0);
      if (item) item.getFullyLoaded() ? ok(true) : window.ftuscope.state.viewer.addOnceHandler('tile-loaded', () => ok(true));
      else setTimeout(attach, 5);
    };
    attach();
  }), null, { timeout: 120_000 });
  const visited = { app: app.bytes() - a0, slide: slides.bytes() - s0, ms: Date.now() - t0 };
  await page.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: 120_000 });
  return visited;
}

try {
  const rings = JSON.parse(await readFile(join(root, 'www/demo/synthetic-kidney.json'), 'utf8')).map((f) => f.geometry.coordinates[0]);
  const wasm = (await readFile(join(root, 'pkg/ftuscope_bg.wasm'))).length;
  console.log(`wasm module: ${mb(wasm)} raw\n`);
  console.log('| visit (app server: page, JS, wasm, OpenSeadragon; slide server: the demo slide by URL) | app bytes | slide bytes | load → first tile |');
  console.log('|---|---|---|---|');
  const segments = [];
  for (let run = 0; run < runs; run++) {
    // A browser profile of its own per run, as a user's: its HTTP cache lives on disk (an
    // incognito context keeps only small responses, in memory, so the wasm module would never be
    // kept), empty at the first visit.
    const profile = await mkdtemp(join(tmpdir(), 'ftuscope-bench-'));
    const context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args,
      viewport: { width: 1280, height: 860 } });
    try {
      const page = await context.newPage();
      page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
      const first = await visit(page, 'cpu');
      const repeat = await visit(page, 'cpu');
      console.log(`| first visit (fresh browser cache), run ${run + 1} | ${mb(first.app)} | ${kb(first.slide)} | ${first.ms} ms |`);
      console.log(`| repeat visit (same browser), run ${run + 1} | ${kb(repeat.app)} | ${kb(repeat.slide)} | ${repeat.ms} ms |`);
      segments.push({ run, ...(await segmentView(page, demoView(rings))) });
      await visit(page, 'auto');
      segments.push({ run, ...(await segmentView(page, demoView(rings))) });
    } finally {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    }
  }
  console.log('\n| Segment view (the end-to-end test\'s view) | backend | windows | seconds | windows/s | glomeruli |');
  console.log('|---|---|---|---|---|---|');
  for (const s of segments) {
    console.log(`| run ${s.run + 1} | ${s.backend} | ${s.windows} | ${s.seconds.toFixed(1)} | ${(s.windows / s.seconds).toFixed(2)} | ${s.glomeruli} |`);
  }
} finally {
  app.close();
  slides.close();
}

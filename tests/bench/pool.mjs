// The CPU pool as users meet it, in headless Chromium (`make bench-peers` and `make bench-wasm-memory`;
// not a test). (1) Segment view over the end-to-end test's view of the synthetic demo slide (the
// 22-window view of `make bench-app`) on the CPU path with 1 and N workers, per bundled model: the
// first run (helpers start: wasm instance, slide, model) and a second (helpers ready). (2) With
// `--memory URL-PATH`: Segment view of a 6000×6000 region of a big slide with 4 workers and the
// accurate model, then each worker's wasm memory (its high-water mark: wasm memory never shrinks).
// Usage: node tests/bench/pool.mjs [--workers N] [--models fast,accurate|none] [--memory target/bench/wasm/big.tiff]
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { start } from '../server/range-server.mjs';
import { demoView, segmentView } from './view.mjs';

const root = resolve(import.meta.dirname, '..', '..');
const arg = (name, fallback) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : fallback);
const workers = Number(arg('--workers', 2));
const models = arg('--models', 'fast,accurate').split(',').filter((m) => m && m !== 'none');
const memorySlide = arg('--memory', null);
const args = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SLIDE = 'www/demo/synthetic-kidney.tiff';
const mib = (n) => `${(n / 2 ** 20).toFixed(0)} MiB`;

/** Opens the app on the CPU path with `model`, `n` workers and `slide`; `cores` fakes navigator.hardwareConcurrency. */
async function open(browser, app, { model, n, slide, cores }) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  if (cores) await page.addInitScript((c) => Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => c }), cores);
  await page.goto(`${app.url}/?backend=cpu&model=${model}&workers=${n}&url=${encodeURIComponent(`${app.url}/${slide}`)}`);
  await page.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: 300_000 });
  return page;
}

const app = await start({ root });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
try {
  const rings = JSON.parse(await readFile(join(root, 'www/demo/synthetic-kidney.json'), 'utf8')).map((f) => f.geometry.coordinates[0]);
  const view = demoView(rings);
  const cores = await (await browser.newPage()).evaluate(() => navigator.hardwareConcurrency);
  if (models.length) console.log(`\n| Segment view, CPU path (${cores} cores) | workers | windows | first run s | second run s | windows/s (second) | speed-up (second) | glomeruli |`);
  if (models.length) console.log('|---|---|---|---|---|---|---|---|');
  for (const model of models) {
    let base = null;
    for (const n of [1, workers]) {
      const page = await open(browser, app, { model, n, slide: SLIDE });
      const first = await segmentView(page, view);
      const second = await segmentView(page, view);
      base ??= second.seconds;
      const t = second.timings;
      console.error(`${model} ×${n}: ${Object.entries(t).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}; page ms ${JSON.stringify(second.marks)}`);
      console.log(`| ${model} | ${n} | ${second.windows} | ${first.seconds.toFixed(1)} | ${second.seconds.toFixed(1)} | ${(second.windows / second.seconds).toFixed(2)} | ${(base / second.seconds).toFixed(2)}× | ${second.glomeruli} |`);
      await page.close();
    }
  }
  if (memorySlide) {
    // 4 workers whatever this machine has: what a 5-core desktop would run by default.
    const page = await open(browser, app, { model: 'accurate', n: 4, slide: memorySlide, cores: 5 });
    const { width, height } = await page.evaluate(() => window.ftuscope.state.slide.info.levels[0]);
    const run = await segmentView(page, [Math.round(width / 2) - 3000, Math.round(height / 2) - 3000, 6000, 6000]);
    const { workers: bytes, tiles } = await page.evaluate(() => window.ftuscope.memory());
    console.log(`\n| wasm memory, ${width}×${height} slide, Segment view of 6000×6000 (${run.windows} windows, ${run.seconds.toFixed(0)} s), accurate, ${bytes.length} workers | bytes |`);
    console.log('|---|---|');
    bytes.forEach((b, i) => console.log(`| ${i === 0 ? 'engine (plans, blends, runs windows)' : `helper ${i}`} | ${mib(b)} |`));
    const total = bytes.reduce((a, b) => a + b, 0);
    console.log(`| **segmentation workers, total** | **${mib(total)}** |`);
    console.log(`| tile worker (viewer tiles, overviews) | ${mib(tiles)} |`);
    console.log(`| all wasm memory of the page | ${mib(total + tiles)} |`);
    await page.close();
  }
} finally {
  await browser.close();
  app.close();
}

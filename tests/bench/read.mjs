// Browser read benchmark: ftuscope's wasm reader vs geotiff.js 3.x in headless Chromium, same slide,
// same regions, from a Blob and from a URL. Usage: node tests/bench/read.mjs SLIDE (a path under the
// repository root). Prints a Markdown table.
import { spawn } from 'node:child_process';
import { relative, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const root = resolve(import.meta.dirname, '..', '..');
const slide = relative(root, resolve(process.argv[2] ?? 'tests/data/cmu-300x200.tif'));
const port = 8789;
const server = spawn('node', [resolve(root, 'tests/server/range-server.mjs'), String(port), root], { stdio: 'inherit' });
await new Promise((ok) => setTimeout(ok, 500));
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.error(`[browser ${m.type()}] ${m.text()}`));
  await page.goto(`http://127.0.0.1:${port}/range/tests/bench/read.html`);
  await page.waitForFunction(() => window.ready === true);
  const results = await page.evaluate((url) => window.bench(url), `/range/${slide}`);
  console.log(`| reader (source) | seconds | decoded MB/s |\n|---|---|---|`);
  for (const [name, r] of Object.entries(results)) {
    console.log(`| ${name} | ${r.seconds.toFixed(2)} | ${(r.bytes / 1e6 / r.seconds).toFixed(1)} |`);
  }
  for (const source of ['blob', 'url']) {
    const ratio = results[`geotiff.js (${source})`].seconds / results[`ftuscope (${source})`].seconds;
    console.log(`ftuscope vs geotiff.js from a ${source}: ${ratio.toFixed(2)}×`);
  }
} finally {
  await browser.close();
  server.kill();
}

// End-to-end: serve the app, open it in headless Chromium (WebGPU on SwiftShader), press Segment on
// the bundled image and check that the overlay changed the canvas. Any page error, console error or
// WebGPU message fails the test. A screenshot is written to target/e2e/app.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile, mkdir } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const root = resolve(import.meta.dirname, '..', '..');
const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.wasm': 'application/wasm', '.png': 'image/png', '.json': 'application/json' };

function serve() {
  const requests = [];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    requests.push(path);
    const file = normalize(join(root, path === '/' ? 'index.html' : path));
    if (!file.startsWith(root)) { res.writeHead(403).end(); return; }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ server, requests })));
}

export const chromiumArgs = ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader',
  '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=swiftshader', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const canvasPixels = (page) => page.evaluate(() => {
  const c = document.getElementById('view');
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
});

/** Serves the app, opens it in Chromium with `args`, and hands the page to `check`. */
async function withApp(args, check) {
  const { server, requests } = await serve();
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
  try {
    await check(await browser.newPage({ viewport: { width: 900, height: 900 } }), server.address().port, requests);
  } finally {
    await browser.close();
    server.close();
  }
}

/** Collects page errors, console errors and any console line about WebGPU problems. */
function watchConsole(page) {
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    const text = m.text();
    console.log(`[browser ${m.type()}] ${text}`);
    if (m.type() === 'error' || /webgpu|wgsl|validation|unreachable|panicked/i.test(text)) problems.push(`console ${m.type()}: ${text}`);
  });
  return problems;
}

/** Presses Segment and waits for the result; returns the status line. */
async function segment(page) {
  await page.click('#segment');
  await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 540_000 });
  const status = await page.textContent('#status');
  console.log(`status: ${status}`);
  assert.equal(await page.getAttribute('body', 'data-state'), 'done', status);
  return status;
}

async function waitReady(page, port) {
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForSelector('body[data-state="ready"], body[data-state="error"]', { timeout: 120_000 });
  assert.equal(await page.getAttribute('body', 'data-state'), 'ready', await page.textContent('#status'));
}

function changedFraction(before, after) {
  assert.equal(after.length, before.length);
  let changed = 0;
  for (let i = 0; i < after.length; i += 4) {
    if (after[i] !== before[i] || after[i + 1] !== before[i + 1] || after[i + 2] !== before[i + 2]) changed++;
  }
  return changed / (after.length / 4);
}

test('the app segments the bundled image on WebGPU and draws the overlay', { timeout: 600_000 }, async () => {
  await withApp(chromiumArgs, async (page, port, requests) => {
    const problems = watchConsole(page);
    await waitReady(page, port);
    const before = await canvasPixels(page);
    await segment(page);

    const backend = await page.textContent('#info-backend');
    const adapter = await page.textContent('#info-adapter');
    console.log(`backend: ${backend}; adapter: ${adapter}`);
    assert.equal(backend, 'wgpu/webgpu');
    assert.ok(await page.isHidden('#notice'), 'no CPU-fallback notice when WebGPU works');

    const fraction = changedFraction(before, await canvasPixels(page));
    console.log(`overlay changed ${(100 * fraction).toFixed(1)}% of canvas pixels`);
    assert.ok(fraction > 0.01, `only ${(100 * fraction).toFixed(2)}% of pixels changed`);

    await mkdir(join(root, 'target', 'e2e'), { recursive: true });
    await page.screenshot({ path: join(root, 'target', 'e2e', 'app.png'), fullPage: true });

    const foreign = requests.filter((p) => !/^\/(index\.html|www\/|pkg\/|assets\/|favicon\.ico|$)/.test(p));
    assert.deepEqual(foreign, [], 'the page requests only its own files');
    assert.deepEqual(problems, []);
  });
});

test('without WebGPU the app falls back to the CPU and says so', { timeout: 600_000 }, async () => {
  // Without --enable-unsafe-webgpu, this Chromium offers no WebGPU adapter.
  const noWebGpu = chromiumArgs.filter((a) => a !== '--enable-unsafe-webgpu');
  await withApp(noWebGpu, async (page, port) => {
    const problems = watchConsole(page);
    await waitReady(page, port);
    const before = await canvasPixels(page);
    await segment(page);
    assert.equal(await page.textContent('#info-backend'), 'flex');
    assert.ok(await page.isVisible('#notice'), 'the CPU-fallback notice is shown');
    const notice = await page.textContent('#notice');
    console.log(`notice: ${notice}`);
    assert.match(notice, /WebGPU unavailable.*CPU/);
    assert.ok(changedFraction(before, await canvasPixels(page)) > 0.01, 'the overlay is drawn on the CPU too');
    await mkdir(join(root, 'target', 'e2e'), { recursive: true });
    await page.screenshot({ path: join(root, 'target', 'e2e', 'app-cpu-fallback.png'), fullPage: true });
    assert.deepEqual(problems, []);
  });
});

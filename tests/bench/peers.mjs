// Peer benchmark, browser half (`make bench-peers`, after .ci/bench_peers.py wrote target/peers): in
// headless Chromium (WebGPU on SwiftShader here, a CPU adapter), ftuscope's wasm module on its CPU
// path and on WebGPU beside onnxruntime-web on its `wasm` (SIMD, threads: the page is served
// cross-origin isolated) and `webgpu` execution providers — the same networks, weights and inputs.
// On the CPU path also ftuscope's pool as the app runs it (one worker per core, each its own wasm
// instance, passes at the same time: throughput). Prints ms per window (first pass / median of warm
// passes; the pool: wall time over all its passes), the ratios, and max |Δlogit| against PyTorch.
// Usage: node tests/bench/peers.mjs [--runs N] [--nets fast,accurate,unet-efficientnet-b0]
//   [--sizes 256,512] [--batches 1,4] [--backends cpu,webgpu] [--workers N].
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { start } from '../server/range-server.mjs';

const root = resolve(import.meta.dirname, '..', '..');
const option = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const runs = Number(option('runs', '2'));
const nets = option('nets', 'fast,accurate,unet-efficientnet-b0').split(',');
const sizes = option('sizes', '256,512').split(',').map(Number);
const batches = option('batches', '1,4').split(',').map(Number);
const backends = option('backends', 'cpu,webgpu').split(',');
const args = ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--enable-features=Vulkan',
  '--use-vulkan=swiftshader', '--use-angle=swiftshader', '--disable-quic', '--no-first-run'];

const server = await start({ root, isolate: true });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
try {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error(`[browser] ${m.text()}`); });
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(`${server.url}/tests/bench/peers.html`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 300_000 });
  const isolated = await page.evaluate(() => window.peers.isolated);
  const workers = Number(option('workers', String(await page.evaluate(() => window.peers.cores))));
  const ms = (r, b) => `${(r.first / b).toFixed(0)} / ${(r.warm / b).toFixed(0)}`;
  // Each row is printed as soon as it is measured: a run cut short still leaves its table.
  console.log(`\nHeadless Chromium ${browser.version()}, ${isolated ? 'cross-origin isolated' : 'NOT isolated'}; ms per window, first pass / median of ${runs} warm passes; max |Δlogit| against PyTorch.\n`);
  console.log('| network | input | batch | path | ftuscope | onnxruntime-web 1.30 | ort / ftuscope (warm) | max \\|Δ\\| ftuscope, ort |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const net of nets) {
    for (const backend of backends) {
      for (const size of sizes) {
        for (const batch of batches) {
          const ep = backend === 'cpu' ? 'wasm' : 'webgpu';
          const ours = await page.evaluate(([n, b, s, k, r]) => window.peers.ftuscope(n, b, s, k, r), [net, backend, size, batch, runs]);
          const theirs = await page.evaluate(([n, e, s, k, r]) => window.peers.onnx(n, e, s, k, r), [net, ep, size, batch, runs]);
          console.error(JSON.stringify({ net, backend, size, batch, ours, theirs }));
          const path = backend === 'cpu' ? `CPU: ftuscope ${ours.backend} 1 thread vs ort wasm ${theirs.threads} threads` : `WebGPU (${ours.adapter || 'adapter'})`;
          console.log(`| ${net} | ${size}² | ${batch} | ${path} | ${ms(ours, batch)} | ${ms(theirs, batch)} | ${(theirs.warm / ours.warm).toFixed(2)} | ${ours.diff.toExponential(1)}, ${theirs.diff.toExponential(1)} |`);
          if (backend === 'cpu' && workers > 1) {
            const pooled = await page.evaluate(([n, s, k, r, w]) => window.peers.pool(n, s, k, r, w), [net, size, batch, runs, workers]);
            console.error(JSON.stringify({ net, size, batch, pooled }));
            console.log(`| ${net} | ${size}² | ${batch} | CPU: ftuscope pool of ${workers} workers vs ort wasm ${theirs.threads} threads | ${ms(pooled, batch)} | ${ms(theirs, batch)} | **${(theirs.warm / pooled.warm).toFixed(2)}** | ${pooled.diff.toExponential(1)}, ${theirs.diff.toExponential(1)} |`);
          }
        }
      }
    }
  }
} finally {
  await browser.close();
  server.close();
}

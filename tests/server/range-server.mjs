// The one HTTP server of the tests and of `make demo`: serves files from one folder with Range
// support and CORS (any origin, Content-Range exposed), plus misbehaving modes chosen by the first
// path segment:
//   /range/F    honours Range (206 + Content-Range)
//   /norange/F  ignores Range (200 + whole body)
//   /flaky/F    answers 503 to every other request, starting with the first
//   /error500/F answers 500 to the server's first two /error500 requests, then as /range/F
//   /status/N   answers status N
//   /redirect/F answers 302 to /range/F
//   /switch/F   behaves as /range/F until /set/MODE turns on one hostile MODE for it (until /set/none):
//               wrongrange (206 with Content-Range and bytes shifted by one), drop (the connection is
//               cut half-way through the body), slow (never answers)
//   /count/P    how many requests /P got so far (a decimal number; /count and /set are not counted)
//   /F          any other path: the file F with Range (`make demo` serves the app this way)
// Caching, as a static host for the app should do it: every file carries a validator (ETag from its
// size and modification time, plus Last-Modified) and `Cache-Control: no-cache`, so a browser keeps
// what it fetched and asks again with If-None-Match, answered 304 without a body while the file is
// unchanged (a repeat visit moves headers only). Text (JS, CSS, HTML, JSON, SVG) and wasm go out
// gzip-compressed to a browser that takes it and asks for the whole file: a `NAME.gz` written beside
// the file (`make web` does it for the wasm module) or, for files up to 8 MiB, compressed here once
// per file version. Ranges are always raw bytes.
// Usage: node tests/server/range-server.mjs PORT FOLDER (PORT 0 picks a free port); the first line
// on stdout starts with the server's URL. Node code can `start({ port, root })` it in-process; the
// returned `bytes()` counts every byte the server has written to its sockets (headers and bodies).
import { createServer } from 'node:http';
import { open, readFile, stat as statOf } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { gzipSync } from 'node:zlib';

const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.json': 'application/json',
  '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml', '.tif': 'image/tiff', '.tiff': 'image/tiff' };
const compressible = new Set(['.js', '.mjs', '.html', '.json', '.css', '.svg', '.wasm']);
const GZIP_HERE_MAX = 8 << 20;
const modes = new Set(['range', 'norange', 'flaky', 'error500', 'status', 'redirect', 'switch', 'set', 'count']);

const cors = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'Range',
  'Access-Control-Expose-Headers': 'Content-Range, Content-Length',
};

/** Serves `root` on 127.0.0.1:`port` (0: a free port); resolves to `{ url, close, bytes }` once
 * listening. Each server keeps its own counters and hostile mode, so several can run in one process.
 * `isolate` adds COOP/COEP to every answer, making its pages cross-origin isolated (shared memory and
 * wasm threads, as onnxruntime-web's threaded backend needs in tests/bench/peers.mjs). */
export function start({ port = 0, root, isolate = false }) {
  const isolation = isolate ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
  let flaky = 0;
  let errors500 = 0;
  let hostile = 'none';
  const counts = new Map();
  // Compressed copies made here: path → {etag, body}, replaced when the file changes.
  const gzipped = new Map();
  const sockets = new Set();
  let closedBytes = 0;
  const server = createServer(async (req, res) => {
    if (isolate) for (const [k, v] of Object.entries(isolation)) res.setHeader(k, v);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors).end();
      return;
    }
    const pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const parts = pathname.split('/').slice(1);
    // A first segment naming a mode picks it; any other path is a file served with Range (the app).
    const [mode, ...rest] = modes.has(parts[0]) ? parts : ['range', ...parts];
    if (rest.join('/') === '' && !modes.has(parts[0])) rest.push('index.html');
    const text = (body) => res.writeHead(200, { ...cors, 'Content-Type': 'text/plain' }).end(String(body));
    if (mode === 'count') return text(counts.get(`/${rest.join('/')}`) ?? 0);
    if (mode === 'set') return text((hostile = rest[0] || 'none'));
    counts.set(pathname, (counts.get(pathname) ?? 0) + 1);
    if (mode === 'status') {
      res.writeHead(Number(rest[0]) || 500, cors).end();
      return;
    }
    if (mode === 'redirect') {
      res.writeHead(302, { ...cors, Location: `/range/${rest.join('/')}` }).end();
      return;
    }
    const misbehave = mode === 'switch' ? hostile : 'none';
    if (misbehave === 'slow') {
      // Never answer; let go of the socket after a minute so the server does not pile them up.
      setTimeout(() => res.destroy(), 60_000).unref();
      return;
    }
    if ((mode === 'flaky' && flaky++ % 2 === 0) || (mode === 'error500' && errors500++ < 2)) {
      res.writeHead(mode === 'flaky' ? 503 : 500, cors).end();
      return;
    }
    const name = normalize(rest.join('/')).replace(/^(\.\.[/\\])+/, '');
    const path = join(root, name);
    // Positioned reads of the requested bytes only, so multi-GB slides are served without loading them.
    let file, stat;
    try {
      file = await open(path);
      stat = await file.stat();
      if (!stat.isFile()) throw new Error('not a file');
    } catch {
      await file?.close();
      res.writeHead(404, cors).end();
      return;
    }
    const size = stat.size;
    const version = `${size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}`;
    const validators = { ETag: `"${version}"`, 'Last-Modified': stat.mtime.toUTCString(), 'Cache-Control': 'no-cache' };
    const read = async (start, end) => {
      const buffer = Buffer.alloc(end - start + 1);
      await file.read(buffer, 0, buffer.length, start);
      return buffer;
    };
    try {
      const type = { 'Content-Type': types[extname(name)] || 'application/octet-stream' };
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range || '');
      if (range && mode !== 'norange') {
        const start = Number(range[1]);
        const end = Math.min(range[2] ? Number(range[2]) : size - 1, size - 1);
        if (start >= size) {
          res.writeHead(416, { ...cors, 'Content-Range': `bytes */${size}` }).end();
          return;
        }
        if (misbehave === 'wrongrange' && end + 1 < size) {
          res.writeHead(206, { ...cors, ...type, 'Content-Range': `bytes ${start + 1}-${end + 1}/${size}`, 'Content-Length': end - start + 1 });
          res.end(await read(start + 1, end + 1));
          return;
        }
        res.writeHead(206, { ...cors, ...type, ...validators, 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': end - start + 1 });
        if (misbehave === 'drop') {
          const body = await read(start, end);
          res.write(body.subarray(0, body.length >> 1), () => res.destroy());
          return;
        }
        res.end(await read(start, end));
        return;
      }
      const ranges = mode === 'norange' ? {} : { 'Accept-Ranges': 'bytes' };
      const gzip = /\bgzip\b/.test(req.headers['accept-encoding'] || '') && compressible.has(extname(name))
        ? await compressed(path, stat, version, read) : null;
      const etag = gzip ? `"${version}-gz"` : validators.ETag;
      const headers = { ...cors, ...type, ...ranges, ...validators, ETag: etag, ...(compressible.has(extname(name)) ? { Vary: 'Accept-Encoding' } : {}) };
      if ((req.headers['if-none-match'] || '').split(/\s*,\s*/).some((t) => t.replace(/^W\//, '') === etag)) {
        res.writeHead(304, headers).end();
        return;
      }
      if (gzip) {
        res.writeHead(200, { ...headers, 'Content-Encoding': 'gzip', 'Content-Length': gzip.length }).end(gzip);
        return;
      }
      res.writeHead(200, { ...headers, 'Content-Length': size }).end(size > 0 ? await read(0, size - 1) : undefined);
    } finally {
      await file.close();
    }
  });
  /** The gzip body of a file: its `.gz` sibling when that is not older than the file, else
   * compressed here (files up to 8 MiB); either is kept in memory until the file or the sibling
   * changes, so a body is read or compressed once. Null when neither applies. */
  async function compressed(path, stat, version, read) {
    const gz = await statOf(`${path}.gz`).catch(() => null);
    const sibling = Boolean(gz?.isFile() && gz.mtimeMs >= stat.mtimeMs);
    const key = sibling ? `${version}/${gz.size}-${gz.mtimeMs}` : version;
    const kept = gzipped.get(path);
    if (kept?.key === key) return kept.body;
    if (!sibling && (stat.size === 0 || stat.size > GZIP_HERE_MAX)) return null;
    const body = sibling ? await readFile(`${path}.gz`) : gzipSync(await read(0, stat.size - 1), { level: 9 });
    gzipped.set(path, { key, body });
    return body;
  }
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => {
      closedBytes += socket.bytesWritten;
      sockets.delete(socket);
    });
  });
  const bytes = () => closedBytes + [...sockets].reduce((n, s) => n + s.bytesWritten, 0);
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const close = () => {
        server.closeAllConnections();
        server.close();
      };
      ok({ url: `http://127.0.0.1:${server.address().port}`, close, bytes });
    });
  });
}

if (process.argv[1] === import.meta.filename) {
  const [port = '8788', root = 'tests/data'] = process.argv.slice(2);
  const { url } = await start({ port: Number(port), root });
  console.log(`${url}/ serving ${root}`);
}

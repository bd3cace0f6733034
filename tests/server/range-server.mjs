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
// Usage: node tests/server/range-server.mjs PORT FOLDER (PORT 0 picks a free port); the first line
// on stdout starts with the server's URL. Node code can `start({ port, root })` it in-process.
import { createServer } from 'node:http';
import { open } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';

const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.json': 'application/json',
  '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml', '.tif': 'image/tiff', '.tiff': 'image/tiff' };
const modes = new Set(['range', 'norange', 'flaky', 'error500', 'status', 'redirect', 'switch', 'set', 'count']);

const cors = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'Range',
  'Access-Control-Expose-Headers': 'Content-Range, Content-Length',
};

/** Serves `root` on 127.0.0.1:`port` (0: a free port); resolves to `{ url, close }` once listening.
 * Each server keeps its own counters and hostile mode, so several can run in one process. */
export function start({ port = 0, root }) {
  let flaky = 0;
  let errors500 = 0;
  let hostile = 'none';
  const counts = new Map();
  const server = createServer(async (req, res) => {
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
    // The app's big files go out pre-compressed (`make web` writes .gz beside them) when the browser
    // takes gzip and asks for the whole file.
    let path = join(root, name);
    let encoding = {};
    if (!req.headers.range && /\bgzip\b/.test(req.headers['accept-encoding'] || '') && /\.(wasm|js)$/.test(name)) {
      try {
        await (await open(`${path}.gz`)).close();
        path = `${path}.gz`;
        encoding = { 'Content-Encoding': 'gzip', Vary: 'Accept-Encoding' };
      } catch { /* no compressed copy */ }
    }
    // Positioned reads of the requested bytes only, so multi-GB slides are served without loading them.
    let file, size;
    try {
      file = await open(path);
      size = (await file.stat()).size;
    } catch {
      await file?.close();
      res.writeHead(404, cors).end();
      return;
    }
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
        res.writeHead(206, { ...cors, ...type, 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': end - start + 1 });
        if (misbehave === 'drop') {
          const body = await read(start, end);
          res.write(body.subarray(0, body.length >> 1), () => res.destroy());
          return;
        }
        res.end(await read(start, end));
        return;
      }
      const ranges = mode === 'norange' ? {} : { 'Accept-Ranges': 'bytes' };
      res.writeHead(200, { ...cors, ...type, ...ranges, ...encoding, 'Content-Length': size }).end(size > 0 ? await read(0, size - 1) : undefined);
    } finally {
      await file.close();
    }
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const close = () => {
        server.closeAllConnections();
        server.close();
      };
      ok({ url: `http://127.0.0.1:${server.address().port}`, close });
    });
  });
}

if (process.argv[1] === import.meta.filename) {
  const [port = '8788', root = 'tests/data'] = process.argv.slice(2);
  const { url } = await start({ port: Number(port), root });
  console.log(`${url}/ serving ${root}`);
}

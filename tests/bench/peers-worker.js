// One worker of the ftuscope pool in the peer benchmark (tests/bench/peers.html): its own wasm instance
// and model on the CPU path, timing the network alone as the page asks.
import init, { WebModel } from '/pkg/ftuscope.js';

const ready = init();
let model = null;

self.onmessage = async ({ data }) => {
  try {
    await ready;
    if (data.op === 'load') {
      model?.free();
      model = await WebModel.load(new Uint8Array(data.bpk), data.json, 'cpu');
      postMessage({ ok: true });
    } else if (data.op === 'run') {
      let out = null;
      for (let i = 0; i < data.passes; i++) out = await model.logits(data.input, data.batch, data.size);
      postMessage({ ok: true, out: data.keep ? out : null });
    }
  } catch (err) {
    postMessage({ ok: false, error: String(err?.message ?? err) });
  }
};

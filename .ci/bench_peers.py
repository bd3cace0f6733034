"""Peer benchmark, native half (`make bench-peers`): the same networks with the same weights and the same
input in ftuscope (burn flex, CPU), PyTorch (CPU) and onnxruntime (CPU), each on this machine's cores.

For each network — the bundled models' architectures (`fast`: the tiny U-Net read from its model.json;
`accurate`: U-Net-EfficientNet-Lite0) and U-Net EfficientNet-b0 — a PyTorch twin gets seeded random weights (BatchNorm affine parameters randomised and
running statistics measured on random batches, as .ci/parity.py does), is saved as safetensors and
imported into an ftuscope model folder (`ftuscope import --like` / `--arch`), and exported to ONNX.
Weight values do not change the time; one set of weights for all runtimes lets the outputs be checked
against each other (max |Δlogit| against PyTorch). For 256² and 512² inputs, batch 1 and 4: the first
pass and the median of the warm passes, in ms per window, and the ratios.

The browser half (tests/bench/peers.mjs) reads the model folders, ONNX files, inputs and PyTorch logits
written here. Usage: bench_peers.py FTUSCOPE MODELS_DIR (holding fast/ and accurate/) OUT_DIR [RUNS]."""
import json, os, subprocess, sys, time

import numpy as np
import torch
from torch import nn
import segmentation_models_pytorch as smp
from safetensors.torch import save_file
import onnxruntime as ort

ftuscope, models_dir, out = sys.argv[1:4]
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
threads = os.cpu_count() or 1
torch.set_num_threads(threads)
SIZES, BATCHES = (256, 512), (1, 4)


class ConvBnRelu(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class TinyEncoder(nn.Module):
    """ftuscope's tiny encoder: 3×3 stride-2 conv → BatchNorm → ReLU stages (src/model/net.rs)."""

    def __init__(self, widths):
        super().__init__()
        chans = [3] + list(widths)
        self.stages = nn.ModuleList(ConvBnRelu(a, b) for a, b in zip(chans, chans[1:]))

    def forward(self, x):
        features = [x]
        for stage in self.stages:
            features.append(stage(features[-1]))
        return features


class TinyUnet(nn.Module):
    """The demo model's network in PyTorch: the tiny encoder under smp's U-Net decoder and head."""

    def __init__(self, widths, decoder_channels):
        super().__init__()
        self.encoder = TinyEncoder(widths)
        self.decoder = smp.decoders.unet.decoder.UnetDecoder(
            encoder_channels=[3] + list(widths), decoder_channels=list(decoder_channels), n_blocks=5)
        self.segmentation_head = smp.base.SegmentationHead(decoder_channels[-1], 1, kernel_size=3)

    def forward(self, x):
        return self.segmentation_head(self.decoder(self.encoder(x)))


def randomised(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.2 - 0.1)
                m.reset_running_stats()
                m.momentum = None
        model.train()
        for _ in range(3):
            model(torch.randn(2, 3, 128, 128, generator=g))
    return model.eval()


def timed(run, x):
    """(first-pass ms, median warm ms, output) of `run(x)`."""
    t = time.perf_counter()
    y = run(x)
    first = (time.perf_counter() - t) * 1e3
    warm = []
    for _ in range(runs):
        t = time.perf_counter()
        run(x)
        warm.append((time.perf_counter() - t) * 1e3)
    return first, sorted(warm)[len(warm) // 2], y


def lite0():
    """smp's U-Net on timm's tf_efficientnet_lite0, with the TensorFlow batch-norm epsilon of the encoder
    (1e-3, as ftuscope's: .ci/parity.py)."""
    model = smp.Unet("timm-tf_efficientnet_lite0", encoder_weights=None, classes=1)
    for m in model.encoder.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 1e-3
    return model


fast_dir = os.path.join(models_dir, "fast")
fast = json.load(open(os.path.join(fast_dir, "model.json")))["model"]
NETWORKS = [
    ("fast", lambda: TinyUnet(fast["tiny_widths"], fast["decoder_channels"]), ["--like", fast_dir]),
    # --arch, not --like: the bundled manifest stores f16 weights, which would move the logits by ~0.6.
    ("accurate", lite0, ["--arch", "unet-efficientnet-lite0"]),
    ("unet-efficientnet-b0", lambda: smp.Unet("timm-efficientnet-b0", encoder_weights=None, classes=1), ["--arch", "unet-efficientnet-b0"]),
]

rows = []
for name, build, how in NETWORKS:
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(0)
    model = randomised(build(), 1)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(d, "weights.safetensors"))
    subprocess.run([ftuscope, "import", "--from", os.path.join(d, "weights.safetensors"), *how, "--out", os.path.join(d, "model")],
                   check=True, stdout=subprocess.DEVNULL)
    onnx_path = os.path.join(d, "model.onnx")
    torch.onnx.export(model, (torch.zeros(1, 3, 256, 256),), onnx_path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch", 2: "h", 3: "w"}, "logits": {0: "batch", 2: "h", 3: "w"}},
                      opset_version=17, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    for size in SIZES:
        for batch in BATCHES:
            x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(size + batch))
            stem = os.path.join(d, f"{size}-{batch}")
            x.numpy().astype("<f4").tofile(stem + ".input.bin")
            with torch.no_grad():
                t_first, t_warm, y = timed(model, x)
            y = y.numpy()
            y.astype("<f4").tofile(stem + ".torch.bin")
            o_first, o_warm, yo = timed(lambda v: session.run(None, {"input": v})[0], x.numpy())
            report = json.loads(subprocess.run(
                [ftuscope, "bench", "forward", "--model", os.path.join(d, "model"), "--size", str(size), "--batch", str(batch),
                 "--runs", str(runs), "--input", stem + ".input.bin", "--logits", stem + ".ftuscope.bin"],
                check=True, capture_output=True, text=True).stdout)
            yf = np.fromfile(stem + ".ftuscope.bin", dtype="<f4").reshape(y.shape)
            row = {
                "network": name, "size": size, "batch": batch,
                "ftuscope_first": report["folded"]["first_ms"] / batch, "ftuscope_warm": report["folded"]["warm_ms"] / batch,
                "ftuscope_unfolded_warm": report["unfolded"]["warm_ms"] / batch,
                "torch_first": t_first / batch, "torch_warm": t_warm / batch,
                "ort_first": o_first / batch, "ort_warm": o_warm / batch,
                "diff_ftuscope": float(np.abs(yf - y).max()), "diff_ort": float(np.abs(yo - y).max()),
                "logit_abs_max": float(np.abs(y).max()),
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)

json.dump(rows, open(os.path.join(out, "native.json"), "w"), indent=1)
print(f"\nNative CPU, {threads} threads each (ftuscope {os.path.basename(ftuscope)}: burn flex, batch norms folded; "
      f"PyTorch {torch.__version__}; onnxruntime {ort.__version__} CPU EP). ms per window, first pass / median of {runs} warm passes.\n")
print("| network | input | batch | ftuscope (unfolded warm) | PyTorch | onnxruntime | PyTorch / ftuscope | onnxruntime / ftuscope | max \\|Δlogit\\| ftuscope, onnxruntime vs PyTorch (max \\|logit\\|) |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['network']} | {r['size']}² | {r['batch']} | {r['ftuscope_first']:.0f} / {r['ftuscope_warm']:.0f} ({r['ftuscope_unfolded_warm']:.0f}) "
          f"| {r['torch_first']:.0f} / {r['torch_warm']:.0f} | {r['ort_first']:.0f} / {r['ort_warm']:.0f} "
          f"| {r['torch_warm'] / r['ftuscope_warm']:.2f} | {r['ort_warm'] / r['ftuscope_warm']:.2f} "
          f"| {r['diff_ftuscope']:.1e}, {r['diff_ort']:.1e} ({r['logit_abs_max']:.1f}) |")

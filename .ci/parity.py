"""Parity fixtures: builds segmentation_models_pytorch networks with random weights (BatchNorm and
GroupNorm affine parameters randomised, BatchNorm running statistics measured on random batches), runs a fixed input, and writes
weights (safetensors, and one .pth), input, logits and facts for tests/parity.rs. Also times PyTorch
CPU forward passes at 512×512 for the speed comparison. Usage: [PARITY_ONLY=name,…] parity.py OUT_DIR."""
import json, os, sys, time

import torch
import segmentation_models_pytorch as smp
from safetensors.torch import save_file

out = sys.argv[1]
torch.set_num_threads(os.cpu_count() or 1)
MODELS = [
    ("unet-efficientnet-b0", smp.Unet, "timm-efficientnet-b0", "efficientnet-b0", "unet", {}),
    ("unet-efficientnet-b4", smp.Unet, "timm-efficientnet-b4", "efficientnet-b4", "unet", {}),
    ("fpn-efficientnet-b0", smp.FPN, "timm-efficientnet-b0", "efficientnet-b0", "fpn", {}),
    ("unet-resnet34", smp.Unet, "resnet34", "resnet34", "unet", {}),
    ("unet-scse-efficientnet-b0", smp.Unet, "timm-efficientnet-b0", "efficientnet-b0", "unet", {"decoder_attention_type": "scse"}),
    ("fpn-resnet50", smp.FPN, "resnet50", "resnet50", "fpn", {}),
    ("unet-efficientnet-lite0", smp.Unet, "timm-tf_efficientnet_lite0", "efficientnet-lite0", "unet", {}),
]
# EfficientNet-Lite's batch norms keep the TensorFlow epsilon of the weights it is trained from (1e-3, as
# timm's tf_efficientnet_lite0 and ftuscope's encoder); smp builds them with PyTorch's default.
BN_EPS = {"unet-efficientnet-lite0": 1e-3}

# PARITY_ONLY=name[,name…] writes only those fixtures (the others already written stay).
ONLY = [n for n in os.environ.get("PARITY_ONLY", "").split(",") if n]
for name, cls, smp_encoder, encoder, decoder, extra in MODELS:
    if ONLY and name not in ONLY:
        continue
    torch.manual_seed(0)
    model = cls(smp_encoder, encoder_weights=None, classes=1, **extra)
    if name in BN_EPS:
        for m in model.encoder.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eps = BN_EPS[name]
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.2 - 0.1)
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        # Running statistics from data (cumulative average over a few batches), so activations stay
        # of order one through deep residual stacks, as in a trained network.
        model.train()
        for _ in range(3):
            model(torch.randn(2, 3, 128, 128, generator=g))
    model.eval()
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y32 = model(x)
        # The reference: the same network in float64, so the comparison measures ftuscope's f32 error
        # rather than the sum of two f32 errors.
        y = model.double()(x.double()).float()
        model.float()
        # FLOPs of one 512×512 forward pass (multiply and add counted separately, as torch does).
        from torch.utils.flop_counter import FlopCounterMode
        counter = FlopCounterMode(display=False)
        with counter:
            model(torch.zeros(1, 3, 512, 512))
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(d, "weights.safetensors"))
    if name == "unet-efficientnet-b0":
        torch.save(state, os.path.join(d, "weights.pth"))
    x.numpy().astype("<f4").tofile(os.path.join(d, "input.bin"))
    y.numpy().astype("<f4").tofile(os.path.join(d, "logits.bin"))
    facts = {
        "encoder": encoder,
        "decoder": decoder,
        "attention": bool(extra),
        "input": list(x.shape),
        "params": sum(p.numel() for p in model.parameters()),
        "logit_abs_max": float(y.abs().max()),
        "torch_f32_diff": float((y32 - y).abs().max()),
        "gflops_512": counter.get_total_flops() / 1e9,
    }
    if name in ("unet-efficientnet-b0",):
        big = torch.randn(1, 3, 512, 512)
        with torch.no_grad():
            model(big)
            times = []
            for _ in range(5):
                t = time.perf_counter()
                model(big)
                times.append(time.perf_counter() - t)
        facts["torch_ms_512"] = sorted(times)[len(times) // 2] * 1000
        facts["torch_threads"] = torch.get_num_threads()
    with open(os.path.join(d, "facts.json"), "w") as f:
        json.dump(facts, f)
    print(name, facts)

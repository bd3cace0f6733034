"""PyTorch side of `make gpu-check`: U-Net with an EfficientNet-b0 encoder (smp when installed,
else the same decoder built here on timm's features), trained with AMP for a fixed number of
steps; prints images/s and the loss curve as JSON, for the ratio with ftuscope's CUDA run."""
import argparse, json, time
import torch, torch.nn as nn, torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--size", type=int, default=512)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--steps", type=int, default=30)
p.add_argument("--amp", type=int, default=1)
a = p.parse_args()

def build():
    try:
        import segmentation_models_pytorch as smp
        return smp.Unet("timm-efficientnet-b0", encoder_weights=None, classes=1), "smp"
    except Exception:
        import timm
        enc = timm.create_model("efficientnet_b0", features_only=True, pretrained=False)
        chans = enc.feature_info.channels()  # strides 2..32

        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
                                 nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

        class Unet(nn.Module):
            def __init__(s):
                super().__init__()
                s.enc = enc
                dec = [256, 128, 64, 32, 16]
                skips = list(reversed(chans[:-1])) + [0]
                ins = [chans[-1]] + dec[:-1]
                s.blocks = nn.ModuleList(block(i + k, o) for i, k, o in zip(ins, skips, dec))
                s.head = nn.Conv2d(16, 1, 3, padding=1)

            def forward(s, x):
                f = s.enc(x)
                y, skips = f[-1], list(reversed(f[:-1]))
                for i, b in enumerate(s.blocks):
                    y = F.interpolate(y, scale_factor=2, mode="nearest")
                    if i < len(skips):
                        y = torch.cat([y, skips[i]], 1)
                    y = b(y)
                return s.head(y)
        return Unet(), "timm features + smp-style U-Net decoder"

model, kind = build()
model = model.cuda().train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
scaler = torch.amp.GradScaler("cuda", enabled=bool(a.amp))
g = torch.Generator().manual_seed(0)
x = torch.randn(16, 3, a.size, a.size, generator=g).cuda()
yy, xx = torch.meshgrid(torch.arange(a.size), torch.arange(a.size), indexing="ij")
y = torch.stack([(((xx - a.size * (0.3 + 0.03 * i)) ** 2 + (yy - a.size / 2) ** 2) < (a.size / 6) ** 2).float() for i in range(16)])[:, None].cuda()
losses, t0, first = [], None, 0.0
for step in range(a.steps + 1):
    s = time.time()
    idx = [(step * a.batch + b) % 16 for b in range(a.batch)]
    with torch.autocast("cuda", dtype=torch.float16, enabled=bool(a.amp)):
        logits = model(x[idx])
        pr = torch.sigmoid(logits.float())
        t = y[idx]
        loss = F.binary_cross_entropy_with_logits(logits.float(), t) + 1 - (2 * (pr * t).sum() + 1) / (pr.sum() + t.sum() + 1)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    losses.append(round(loss.item(), 5))
    if step == 0:
        torch.cuda.synchronize(); first = time.time() - s; t0 = time.time()
torch.cuda.synchronize()
secs = time.time() - t0
print(json.dumps({"framework": f"pytorch {torch.__version__} ({kind}), AMP={bool(a.amp)}", "device": torch.cuda.get_device_name(0),
                  "size": a.size, "batch": a.batch, "steps": a.steps, "images_per_s": a.steps * a.batch / secs,
                  "first_step_s": first, "losses": losses}, indent=1))

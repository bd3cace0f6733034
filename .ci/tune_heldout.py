"""Fine-tuning measured on truth held back (issue #30; `make tune-heldout`): an image or slide with its
glomerulus outlines is split at half its width. The outlines of the left half are the "reviewed" set
(as the app exports it: class Glomerulus); the model's decoder is fine-tuned on them (`ftuscope tune`);
the right half, cut out as an image with its own outlines, is scored before and after (`ftuscope
eval`: pooled Dice, object recall and precision). Nothing of the right half is seen in tuning.

Usage: tune_heldout.py FTUSCOPE MODEL_DIR IMAGE TRUTH_JSON PIXEL_SIZE OUT_DIR [STEPS]. Prints one
Markdown row. Standard library only."""
import json, os, subprocess, sys

ftuscope, model, image, truth, pixel, out = sys.argv[1:7]
steps = sys.argv[7] if len(sys.argv) > 7 else "40"
os.makedirs(out, exist_ok=True)


def run(*args):
    done = subprocess.run([ftuscope, *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"ftuscope {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


info = json.loads(run("info", image))
width, height = info["levels"][0]["width"], info["levels"][0]["height"]
text = json.load(open(truth))
if isinstance(text, dict) and "shapes" in text:  # LabelMe
    rings = [s["points"] for s in text["shapes"]]
else:
    features = text["features"] if isinstance(text, dict) else text
    rings = []
    for f in features:
        g = f["geometry"]
        polys = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
        rings += [p[0] for p in polys]
half = width // 2
centre_x = lambda r: sum(p[0] for p in r) / len(r)
left = [r for r in rings if centre_x(r) < half]
right = [[[x - half, y] for x, y in r] for r in rings if centre_x(r) >= half]
feature = lambda r: {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [r + [r[0]]]},
                     "properties": {"objectType": "annotation", "classification": {"name": "Glomerulus"}}}
reviewed = os.path.join(out, "reviewed-left.geojson")
json.dump({"type": "FeatureCollection", "features": [feature(r) for r in left]}, open(reviewed, "w"))
held = os.path.join(out, "heldout")
os.makedirs(held, exist_ok=True)
run("region", image, "--rect", f"{half},0,{width - half},{height}", "--out", os.path.join(held, "right.png"))
json.dump({"type": "FeatureCollection", "features": [feature(r) for r in right]}, open(os.path.join(held, "right.json"), "w"))


def score(m):
    last = run("eval", "--truth", held, "--model", m, "--pixel-size", pixel).strip().splitlines()[-1]
    return last


before = score(model)
tuned = os.path.join(out, "tuned")
log = run("tune", image, "--model", model, "--reviewed", reviewed, "--out", tuned, "--steps", steps, "--pixel-size", pixel)
losses = [float(l.rsplit(" ", 1)[1]) for l in log.splitlines() if l.startswith("step ")]
after = score(tuned)
print(f"| {os.path.basename(image)} | {os.path.basename(model.rstrip('/'))} | {len(left)} left / {len(right)} right | {steps} | "
      f"{losses[0]:.3f} → {losses[-1]:.3f} | {before} | {after} |")

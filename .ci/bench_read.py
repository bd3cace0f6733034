"""Decoded MB/s reading a whole slide level: ftuscope (1 thread, all threads) beside libvips and
tifffile on the same file in the same run. Usage: bench_read.py FTUSCOPE SLIDE [LEVEL]."""
import json, os, subprocess, sys, time

ftuscope, slide = sys.argv[1], sys.argv[2]
level = int(sys.argv[3]) if len(sys.argv) > 3 else 0
cores = os.cpu_count() or 1


def timed(cmd, env=None):
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, **(env or {})})
    return time.perf_counter() - start, out.stdout


info = json.loads(subprocess.run([ftuscope, "info", slide], check=True, capture_output=True, text=True).stdout)
lv = info["levels"][level]
mb = lv["width"] * lv["height"] * 3 / 1e6
rows = []
for threads in [1, cores]:
    best = None
    for _ in range(2):
        _, out = timed([ftuscope, "bench", "read", slide, "--level", str(level), "--threads", str(threads)])
        r = json.loads(out)
        best = r if best is None or r["seconds"] < best["seconds"] else best
    rows.append((f"ftuscope ({threads} thread{'s' if threads > 1 else ''})", best["seconds"]))
for threads in [1, cores]:
    # `vips avg` decodes every pixel of the page through libtiff + libjpeg/zlib.
    best = min(timed(["vips", "avg", f"{slide}[page={level}]"], {"VIPS_CONCURRENCY": str(threads)})[0] for _ in range(2))
    rows.append((f"libvips ({threads} thread{'s' if threads > 1 else ''})", best))
code = (
    "import tifffile,sys,time;t=time.perf_counter();"
    "a=tifffile.imread(sys.argv[1],level=int(sys.argv[2]),maxworkers=int(sys.argv[3]));"
    "print(time.perf_counter()-t)"
)
for threads in [1, cores]:
    try:
        best = min(float(timed([sys.executable, "-c", code, slide, str(level), str(threads)])[1]) for _ in range(2))
        rows.append((f"tifffile ({threads} thread{'s' if threads > 1 else ''})", best))
    except subprocess.CalledProcessError as e:
        rows.append((f"tifffile ({threads}): failed: {e.stderr.strip().splitlines()[-1]}", None))

print(f"{slide} level {level}: {lv['width']}x{lv['height']} {lv['compression']} tiles {lv['tile_width']}x{lv['tile_height']}, {mb:.0f} MB decoded")
vips1 = dict(rows).get("libvips (1 thread)")
vipsn = dict(rows).get(f"libvips ({cores} threads)")
print("| reader | seconds | MB/s | vs libvips (same threads) |")
print("|---|---|---|---|")
for name, s in rows:
    if s is None:
        print(f"| {name} | – | – | – |")
        continue
    ref = vips1 if "(1 thread)" in name else vipsn
    print(f"| {name} | {s:.2f} | {mb / s:.0f} | {ref / s:.2f}× |")

"""JPEG 2000 tile decoding, decoded MB/s: ftuscope (hayro-jpeg2000; 1 thread, all threads) beside
OpenSlide 4 (libopenjp2; 1 thread, all threads) on the same Aperio SVS files in the same run.
Usage: bench_jpeg2000.py FTUSCOPE SVS DIR — writes DIR/aperio-{33003,33005}-full.svs from the whole
level 0 of SVS (tests/peers/slides.py's encoder: OpenJPEG via imagecodecs, 240² tiles)."""
import json, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'tests', 'peers'))
import numpy as np
import openslide
import slides

ftuscope, svs, out = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)
cores = os.cpu_count() or 1
src = openslide.OpenSlide(svs)
w, h = src.level_dimensions[0]
img = np.asarray(src.read_region((0, 0), 0, (w, h)).convert('RGB'))


def openslide_read(path, threads):
    s = openslide.OpenSlide(path)
    s.set_cache(openslide.OpenSlideCache(0)) if hasattr(openslide, 'OpenSlideCache') else None
    lw, lh = s.level_dimensions[0]
    regions = [(x, y, min(1024, lw - x), min(1024, lh - y)) for y in range(0, lh, 1024) for x in range(0, lw, 1024)]
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda r: s.read_region((r[0], r[1]), 0, (r[2], r[3])), regions))
    return time.perf_counter() - start


print(f"| file | reader | seconds | decoded MB/s | vs OpenSlide (same threads) |")
print("|---|---|---|---|---|")
for code in (33003, 33005):
    path = os.path.join(out, f'aperio-{code}-full.svs')
    if not os.path.exists(path):
        slides.aperio(path, img, code)
    mb = w * h * 3 / 1e6
    rows = []
    for threads in [1, cores]:
        best = min(json.loads(subprocess.run([ftuscope, 'bench', 'read', path, '--threads', str(threads)], check=True,
                                             capture_output=True, text=True).stdout)['seconds'] for _ in range(3))
        rows.append((f'ftuscope ({threads} thr)', threads, best))
    for threads in [1, cores]:
        rows.append((f'OpenSlide {openslide.__library_version__} ({threads} thr)', threads, min(openslide_read(path, threads) for _ in range(3))))
    ref = {t: s for n, t, s in rows if n.startswith('OpenSlide')}
    for name, threads, s in rows:
        print(f"| {code} {w}x{h} | {name} | {s:.3f} | {mb / s:.1f} | {ref[threads] / s:.2f}× |")

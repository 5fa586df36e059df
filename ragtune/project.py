"""The project's own settings file, for what run config cannot reach: runs that sensors and
automation start carry no run config, so their asset settings (quota, budget) come from here, as do
the price table and whether the sensors start running.

RAGTUNE_CONFIG names the file; without it, ragtune.yaml in the working directory if there is one.

    sensors: running            # or stopped (e.g. a paid endpoint without a budget)
    llm:                        # the generator, as RAGTUNE_LLM_* would say it (those variables win over the file)
      backend: llamacpp
      model: qwen2.5-coder-1.5b # a local model's short name or a GGUF path; for an endpoint, its model name
    judge:                      # the evaluation judge (and preference pairs' comparisons), as RAGTUNE_JUDGE_*;
      model: qwen2.5-coder-1.5b #   grounded_judge: (qa_judged, RAGTUNE_GROUNDED_JUDGE_*) and reference: (RAGTUNE_REFERENCE_*)
                                #   take the same keys; a role left out is the generator
    base_model:                 # the model LoRA tunes: model (a transformers folder or hub id) or gguf (a path or a
      gguf: smollm2             #   local model's short name), as RAGTUNE_BASE_MODEL / RAGTUNE_BASE_GGUF
    prices:                     # USD per million tokens, per model name at the endpoint
      gpt-4o-mini: {input_per_million: 0.15, output_per_million: 0.60, cached_input_per_million: 0.075}
    assets:                     # defaults of each asset's run config
      qa_candidates: {quota: 40, budget_usd: 5.0}
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

DEFAULT_FILE = "ragtune.yaml"
# Each LLM role's section and the prefix of its variables; the keys of a section are LLM_FIELDS.
ROLE_PREFIXES = {"llm": "RAGTUNE_LLM_", "judge": "RAGTUNE_JUDGE_", "grounded_judge": "RAGTUNE_GROUNDED_JUDGE_", "reference": "RAGTUNE_REFERENCE_"}
LLM_FIELDS = ("backend", "model", "base_url", "json_mode")
LLM_KEYS = {key: f"RAGTUNE_LLM_{key.upper()}" for key in LLM_FIELDS}
BASE_MODEL_KEYS = {"model": "RAGTUNE_BASE_MODEL", "gguf": "RAGTUNE_BASE_GGUF"}
SECTIONS = ("sensors", "prices", "assets", *ROLE_PREFIXES, "base_model")
SENSOR_STATES = ("running", "stopped")


class ProjectConfigError(ValueError):
    pass


def project_file(environ: Mapping[str, str] | None = None) -> Path | None:
    environ = os.environ if environ is None else environ
    if environ.get("RAGTUNE_CONFIG"):
        path = Path(environ["RAGTUNE_CONFIG"])
        if not path.is_file():
            raise ProjectConfigError(f"RAGTUNE_CONFIG={path} is not a file")
        return path
    return Path(DEFAULT_FILE) if Path(DEFAULT_FILE).is_file() else None


@lru_cache(maxsize=8)
def _load(path: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ProjectConfigError(f"{path}: not valid YAML ({where}{getattr(error, 'problem', None) or error}); fix or remove the file") from None
    if not isinstance(data, dict):
        raise ProjectConfigError(f"{path}: expected a mapping with sensors / prices / assets")
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise ProjectConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}; use {', '.join(SECTIONS)}")
    for role, prefix in ROLE_PREFIXES.items():
        section = data.get(role) or {}
        if not isinstance(section, dict) or set(section) - set(LLM_FIELDS):
            raise ProjectConfigError(f"{path}: {role} takes {', '.join(LLM_FIELDS)} (the API key stays in ${prefix}API_KEY)")
    base = data.get("base_model") or {}
    if not isinstance(base, dict) or set(base) - set(BASE_MODEL_KEYS):
        raise ProjectConfigError(f"{path}: base_model takes {' or '.join(BASE_MODEL_KEYS)}")
    if data.get("sensors", "running") not in SENSOR_STATES:
        raise ProjectConfigError(f"{path}: sensors must be running or stopped, not {data['sensors']!r}")
    return data


def project_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    path = project_file(environ)
    return _load(str(path.resolve())) if path else {}


def asset_defaults(asset: str) -> dict[str, Any]:
    return dict((project_config().get("assets") or {}).get(asset) or {})


def llm_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment as the model resources read it: the project file's `llm:`, `judge:`,
    `grounded_judge:`, `reference:` and `base_model:` as RAGTUNE_* values, under the real environment's
    own (a variable set for one run wins over the file)."""
    environ = os.environ if environ is None else environ
    config = project_config(environ)
    from_file = {f"{prefix}{key.upper()}": str(value) for role, prefix in ROLE_PREFIXES.items()
                 for key, value in (config.get(role) or {}).items() if value is not None}
    from_file |= {BASE_MODEL_KEYS[key]: str(value) for key, value in (config.get("base_model") or {}).items() if value is not None}
    return {**from_file, **environ}


def prices() -> dict[str, dict[str, float]]:
    return dict(project_config().get("prices") or {})


def sensors_running(environ: Mapping[str, str] | None = None) -> bool:
    """On unless the project file or RAGTUNE_SENSORS says stopped."""
    environ = os.environ if environ is None else environ
    state = environ.get("RAGTUNE_SENSORS") or project_config(environ).get("sensors", "running")
    if state not in SENSOR_STATES:
        raise ProjectConfigError(f"RAGTUNE_SENSORS must be running or stopped, not {state!r}")
    return state == "running"

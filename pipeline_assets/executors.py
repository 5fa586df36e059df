"""Which Dagster executor runs a run's steps, picked by the deployment through RAGTUNE_EXECUTOR so
one code location serves a laptop and a cluster: Dagster's default (steps as processes on the run's
machine), `celery` (steps queued to dagster-celery workers on other machines) or `k8s` (one
Kubernetes Job per step, dagster-k8s). The Celery settings come from the same YAML file the
workers are started with (`dagster-celery worker start -y FILE`), so both sides agree on the broker."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import dagster as dg
import yaml

EXECUTORS = ("default", "in_process", "celery", "k8s")


def celery_config(path: str | Path) -> dict[str, Any]:
    """The executor config of a dagster-celery worker file (`execution: config: {broker, backend, ...}`)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"RAGTUNE_CELERY_CONFIG={file}: no such file; point it at the YAML the Celery workers were started with")
    parsed = yaml.safe_load(file.read_text()) or {}
    config = (parsed.get("execution") or {}).get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{file}: expected 'execution: config:' with the broker and backend, as `dagster-celery worker start -y` reads it")
    return config


def executor_from_env(environ: Mapping[str, str] = os.environ) -> Optional[dg.ExecutorDefinition]:
    """None keeps Dagster's default (multiprocess, or in-process for a single step)."""
    name = environ.get("RAGTUNE_EXECUTOR", "default")
    if name == "default":
        return None
    if name == "in_process":
        return dg.in_process_executor
    if name == "celery":
        from dagster_celery import celery_executor

        path = environ.get("RAGTUNE_CELERY_CONFIG")
        return celery_executor.configured(celery_config(path), name="celery") if path else celery_executor
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    raise ValueError(f"RAGTUNE_EXECUTOR={name!r} is not an executor ragtune knows; pick one of {', '.join(EXECUTORS)}")

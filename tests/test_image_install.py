"""The Docker image has what its assets need: the image's own pip install command (read from
docker/Dockerfile) run into a fresh virtual environment, then every module of the product imported
there and every third-party package the product imports anywhere (at the top of a module or inside
a function, as the DPO step imports trl) found. A package that only the dev extra brings, as trl did,
fails here. vLLM is the one exception: the image sends generation to a vLLM server (the gpu extra
is for a GPU host). Takes about 2-3 minutes with pip's cache warm."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import tracked_copy

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ragtune", "pipeline_assets", "resources")
NOT_IN_IMAGE = {"vllm"}  # the gpu extra: the image talks to the vllm service instead
PORTABLE_WHEELS = Path(os.environ.get("RAGTUNE_WHEELS", Path.home() / ".cache" / "ragtune" / "wheels" / "portable"))


def image_install_target() -> str:
    """The requirement the Dockerfile installs, e.g. ".[scale]"."""
    text = (ROOT / "docker" / "Dockerfile").read_text()
    found = re.search(r"pip install [^\n]*?-e\s+'?(\.(?:\[[^\]]*\])?)'?", text)
    if not found:
        raise AssertionError("docker/Dockerfile has no `pip install ... -e '.[extras]'` line")
    return found.group(1)


def imported_packages() -> set[str]:
    """Top-level names of every third-party package the product's code imports, anywhere in a module."""
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in PACKAGES and n != "__future__"}


PROBE = """
import importlib, importlib.util, json, pkgutil, sys
packages, wanted = sys.argv[1].split(","), sys.argv[2].split(",")
failed = {}
for name in packages:
    module = importlib.import_module(name)
    for info in pkgutil.walk_packages(module.__path__, name + "."):
        try:
            importlib.import_module(info.name)
        except Exception as error:
            failed[info.name] = f"{type(error).__name__}: {error}"
missing = sorted(n for n in wanted if importlib.util.find_spec(n) is None)
print(json.dumps({"failed": failed, "missing": missing}))
"""


def package_index_reachable() -> bool:
    """Whether pip's index (PIP_INDEX_URL, else PyPI) answers."""
    url = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/")
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10)
        return True
    except (OSError, ValueError):
        return False


@pytest.mark.slow
def test_the_image_install_command_gives_every_asset_what_it_imports(tmp_path):
    if not package_index_reachable():
        pytest.skip("needs the package index (pip installs the image's dependencies, as `make install` does); none is reachable")
    source = tracked_copy(tmp_path / "app")  # what the image's COPY sees
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    links = ["--find-links", str(PORTABLE_WHEELS)] if PORTABLE_WHEELS.is_dir() else []  # make's portable llama.cpp build
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", *links, "-e", f"{source}{image_install_target()[1:]}"],
                             capture_output=True, text=True, env={**os.environ, "CMAKE_ARGS": "-DGGML_NATIVE=OFF"})
    assert install.returncode == 0, install.stderr[-3000:]
    wanted = sorted(imported_packages() - NOT_IN_IMAGE)
    assert {"trl", "dagster", "torch", "peft"} <= set(wanted)
    probe = subprocess.run([str(python), "-c", PROBE, ",".join(PACKAGES), ",".join(wanted)], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "HF_HUB_OFFLINE": "1", "DAGSTER_HOME": str(tmp_path / "home")})
    assert probe.returncode == 0, probe.stderr[-3000:]
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result == {"failed": {}, "missing": []}, result

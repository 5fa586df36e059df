"""The wheel holds the whole product: built from the checkout, installed into a fresh virtual environment
that cannot see the checkout, every module imports from the installed files and `ragtune --help` runs.
A hand-written package list once left ragtune/ingest, index, generate, curate, train, evaluate and review
out of the wheel while editable installs hid it. The fresh environment borrows the project venv's
third-party packages through a path entry (no download), never the checkout or its editable hook."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from tests.conftest import tracked_copy

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ragtune", "pipeline_assets", "resources")

PROBE = """
import importlib, json, pkgutil, sys
from importlib import resources
failed, files = {}, {}
for name in sys.argv[1].split(","):
    module = importlib.import_module(name)
    files[name] = module.__file__
    for info in pkgutil.walk_packages(module.__path__, name + "."):
        try:
            importlib.import_module(info.name)
        except Exception as error:
            failed[info.name] = f"{type(error).__name__}: {error}"
prompts = sorted(p.name for p in resources.files("ragtune.prompts").joinpath("en").iterdir())
print(json.dumps({"failed": failed, "files": files, "prompts": prompts}))
"""


def test_the_wheel_installs_and_imports_every_module_without_the_checkout(tmp_path):
    source = tracked_copy(tmp_path / "source")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("ragtune-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {str(p.relative_to(source)) for package in PACKAGES for p in (source / package).rglob("*.py")}
    assert sources == {n for n in names if n.endswith(".py")}  # every module of the checkout, and only those
    assert "ragtune/evaluate/judge_agreement.json" in names and "ragtune/prompts/en/answer_first.txt" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    fresh_site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     capture_output=True, text=True, check=True).stdout.strip())
    # The project venv's packages on a path line: a path added so is searched, but its own .pth files (the
    # checkout's editable hook among them) are not run.
    (fresh_site / "borrowed.pth").write_text("\n".join(dict.fromkeys([sysconfig.get_paths()["purelib"], *site.getsitepackages()])) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1", "DAGSTER_HOME": str(tmp_path / "home")}
    probe = subprocess.run([str(python), "-c", PROBE, ",".join(PACKAGES)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert probe.returncode == 0, probe.stderr[-3000:]
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}
    assert all(Path(path).is_relative_to(fresh_site) for path in result["files"].values()), result["files"]
    assert "answer_first.txt" in result["prompts"]
    cli = subprocess.run([str(venv / "bin" / "ragtune"), "--help"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "usage: ragtune" in cli.stdout

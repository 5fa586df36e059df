"""Dagster on PostgreSQL for real: Debian's PostgreSQL server started by the test (a throwaway
cluster), docker/dagster.postgres.yaml as the instance config, chapter partitions materialized,
and runs, event logs and partitions still there after the webserver is restarted."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tests.conftest import ROOT
from tests.servers import dagster_ui, free_port, graphql

pytestmark = pytest.mark.slow
PG_BIN = next((p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True) if (p / "initdb").exists()), None)
KEYS = ["anxiety-disorders", "obsessive-compulsive-and-related-disorders"]


def _as_postgres(*command: str) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@pytest.fixture(scope="module")
def postgres():
    if PG_BIN is None:
        pytest.skip("needs Debian's PostgreSQL server (.ci/run installs it with apt-get)")
    folder = Path(tempfile.mkdtemp(prefix="ragtune-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = free_port()
    subprocess.run(_as_postgres(str(PG_BIN / "initdb"), "-D", str(folder / "db"), "-U", "dagster", "--auth=trust", "-E", "UTF8"),
                   check=True, capture_output=True)
    server = subprocess.Popen(
        _as_postgres(str(PG_BIN / "postgres"), "-D", str(folder / "db"), "-p", str(port), "-h", "127.0.0.1", "-k", str(folder)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(_as_postgres(str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)), capture_output=True).returncode:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not start")
            time.sleep(0.5)
        subprocess.run(_as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "dagster", "dagster"), check=True)
        yield {"DAGSTER_PG_USER": "dagster", "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_HOST": "127.0.0.1",
               "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_PORT": str(port)}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def _webserver_view(home: Path, env: dict[str, str]) -> dict:
    """Start dagster-webserver on the instance, read runs, partitions and materializations, stop it."""
    with dagster_ui(home, env) as port:
        runs = graphql(port, "{ runsOrError { ... on Runs { results { runId status jobName } } } }")["runsOrError"]["results"]
        node = graphql(port, '{ assetNodeOrError(assetKey: {path: ["chapters"]}) { ... on AssetNode { partitionKeys '
                              'assetMaterializations { partition runId } } } }')["assetNodeOrError"]
        return {"runs": sorted((r["runId"], r["status"], r["jobName"]) for r in runs), "partitions": sorted(node["partitionKeys"]),
                "materialized": sorted((m["partition"], m["runId"]) for m in node["assetMaterializations"])}


def test_postgres_config_matches_the_default_apart_from_storage():
    default = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    variant = yaml.safe_load((ROOT / "docker" / "dagster.postgres.yaml").read_text())
    assert set(variant.pop("storage")) == {"postgres"}
    assert variant == default


def test_partitions_materialize_on_postgres_and_survive_a_webserver_restart(postgres, tmp_path, two_chapter_pdf, monkeypatch):
    from pipeline_assets.definitions import build_defs
    from resources import DataDirResource

    for name, value in postgres.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "docker" / "dagster.postgres.yaml", home / "dagster.yaml")
    defs = build_defs({"storage": DataDirResource(data_dir=str(tmp_path / "data"))})
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        ingest = defs.resolve_job_def("ingest_documents")
        ingest.execute_in_process(instance=instance, run_config={"ops": {"parsed_documents": {"config": {"paths": [str(two_chapter_pdf)]}}}})
        prepare = defs.resolve_job_def("prepare_chapter")
        for key in KEYS:
            assert prepare.execute_in_process(instance=instance, partition_key=key).success
    assert not list(home.rglob("*.db"))  # nothing went to SQLite

    first = _webserver_view(home, postgres)
    assert len(first["runs"]) == 3 and all(status == "SUCCESS" for _, status, _ in first["runs"])
    assert first["partitions"] == KEYS and [p for p, _ in first["materialized"]] == KEYS
    assert _webserver_view(home, postgres) == first  # a restarted webserver sees the same runs, events and partitions

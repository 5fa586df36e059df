"""Scale-out on existing engines. Celery for real: a Redis server (Debian's) and a dagster-celery
worker run the pipeline's first stages from docker/celery/celery.yaml. Kubernetes as far as it
can run here: docker/k8s/dagster.k8s.yaml's K8sRunLauncher launches runs against a Kubernetes API
on localhost that records the Job manifests it is sent (no cluster can run on the test machine)."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipeline_assets.executors import celery_config, executor_from_env
from tests.conftest import ROOT
from tests.servers import free_port

DAGSTER = str(Path(sys.executable).parent / "dagster")
CELERY_FILE = ROOT / "docker" / "celery" / "celery.yaml"
K8S_FILE = ROOT / "docker" / "k8s" / "dagster.k8s.yaml"


def test_the_executor_comes_from_the_environment(tmp_path):
    assert executor_from_env({}) is None  # Dagster's default: steps as processes beside the run
    assert executor_from_env({"RAGTUNE_EXECUTOR": "k8s"}).name == "k8s"
    celery = executor_from_env({"RAGTUNE_EXECUTOR": "celery", "RAGTUNE_CELERY_CONFIG": str(CELERY_FILE)})
    assert celery.name == "celery"
    assert celery_config(CELERY_FILE)["broker"] == {"env": "RAGTUNE_CELERY_BROKER"}
    with pytest.raises(FileNotFoundError, match="RAGTUNE_CELERY_CONFIG=.*no such file"):
        executor_from_env({"RAGTUNE_EXECUTOR": "celery", "RAGTUNE_CELERY_CONFIG": str(tmp_path / "missing.yaml")})
    (tmp_path / "flat.yaml").write_text("broker: redis://x\n")
    with pytest.raises(ValueError, match="expected 'execution: config:'"):
        celery_config(tmp_path / "flat.yaml")
    with pytest.raises(ValueError, match="pick one of default, in_process, celery, k8s"):
        executor_from_env({"RAGTUNE_EXECUTOR": "ray"})


def test_the_k8s_step_executor_takes_per_step_pod_settings(monkeypatch):
    from pipeline_assets.definitions import build_defs

    monkeypatch.setenv("RAGTUNE_EXECUTOR", "k8s")
    job = build_defs().resolve_job_def("generate_chapter_qa")
    assert job.executor_def.name == "k8s"
    config = {"execution": {"config": {"job_namespace": "ragtune", "max_concurrent": 4,
                                       "step_k8s_config": {"container_config": {"resources": {"requests": {"cpu": "1"}}}}}}}
    assert dg.validate_run_config(job, config)
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, {"execution": {"config": {"max_concurrent": "many"}}})


@pytest.fixture
def redis_url(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("needs Debian's Redis server (.ci/run installs it with apt-get)")
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, start_new_session=True)
    import redis

    client, deadline = redis.Redis(port=port), time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.2)
    yield f"redis://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=20)


@pytest.mark.slow
def test_celery_workers_run_every_step_of_the_first_stages(redis_url, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "RAGTUNE_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1",
           "RAGTUNE_EXECUTOR": "celery", "RAGTUNE_CELERY_CONFIG": str(CELERY_FILE), "PYTHONPATH": str(ROOT),
           "RAGTUNE_CELERY_BROKER": f"{redis_url}/0", "RAGTUNE_CELERY_BACKEND": f"{redis_url}/1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # the worker CLI starts `celery`
    log = tmp_path / "worker.log"
    worker = subprocess.Popen([str(Path(sys.executable).parent / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                               "-y", str(CELERY_FILE), "-n", "ragtune-test"], cwd=ROOT, env=env, stdout=log.open("w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "ready." not in log.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        for job, tags in (("ingest_documents", {}), ("prepare_chapter", {"dagster/partition": "anxiety-disorders"})):
            done = subprocess.run([DAGSTER, "job", "execute", "-m", "pipeline_assets.definitions", "-j", job, "--tags", json.dumps(tags)],
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-3000:]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = {run.job_name: run for run in instance.get_runs()}
        assert {name: run.status for name, run in runs.items()} == {
            "ingest_documents": dg.DagsterRunStatus.SUCCESS, "prepare_chapter": dg.DagsterRunStatus.SUCCESS}
        for name, steps in (("ingest_documents", {"parsed_documents", "parsed_documents_every_document_parsed"}),
                            ("prepare_chapter", {"chapters", "chapter_chunks"})):
            records = instance.all_logs(runs[name].run_id)
            in_worker = {r.step_key for r in records if r.dagster_event and "in celery worker" in (r.dagster_event.message or "")}
            assert in_worker == steps  # every step ran in the Celery worker, none beside the run
            launched_by = {r.dagster_event.pid for r in records if r.dagster_event and r.dagster_event.event_type_value == "RUN_START"}
            ran_in = {r.dagster_event.pid for r in records if r.dagster_event and r.dagster_event.event_type_value == "STEP_SUCCESS"}
            assert ran_in and not ran_in & launched_by
        materialized = instance.get_latest_materialization_event(dg.AssetKey("chapter_chunks"))
        assert materialized.dagster_event.partition == "anxiety-disorders"
    assert (tmp_path / "data" / "chunks" / "anxiety-disorders.jsonl").stat().st_size > 0


class _KubernetesAPI(http.server.ThreadingHTTPServer):
    """The one call K8sRunLauncher makes to launch a run, POST .../namespaces/{ns}/jobs, answered as
    the Kubernetes API does (201 with the created Job); the manifests are kept for the test."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _KubernetesHandler)
        self.jobs: list[tuple[str, dict, str]] = []  # (namespace, manifest, Authorization header)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _KubernetesHandler(http.server.BaseHTTPRequestHandler):
    server: _KubernetesAPI

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if parts[:3] == ["apis", "batch", "v1"] and parts[3] == "namespaces" and parts[5] == "jobs":
            self.server.jobs.append((parts[4], body, self.headers.get("Authorization", "")))
            body["metadata"].update(namespace=parts[4], uid="0f0e0d0c", creationTimestamp="2026-11-24T00:00:00Z")
            status, payload = 201, body
        else:
            status, payload = 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.mark.slow
def test_k8s_run_launcher_sends_one_job_per_run_with_the_image_secrets_data_volume_and_gpu(tmp_path):
    api = _KubernetesAPI()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "local",
        "clusters": [{"name": "local", "cluster": {"server": f"http://127.0.0.1:{api.server_address[1]}"}}],
        "users": [{"name": "ragtune", "user": {"token": "cluster-token"}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "ragtune"}}],
    }))
    config = yaml.safe_load(K8S_FILE.read_text())
    default = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert {k: v for k, v in config.items() if k not in ("storage", "run_launcher")} == default  # same limits and retries
    assert config["run_launcher"]["class"] == "K8sRunLauncher" and set(config.pop("storage")) == {"postgres"}
    # launched at once here; in the cluster the daemon dequeues them and hands them to the same launcher
    config["run_coordinator"] = {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"}
    config["run_launcher"]["config"].update(load_incluster_config=False, kubeconfig_file=str(kubeconfig))
    home = Path(tempfile.mkdtemp(dir=tmp_path))
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "DAGSTER_HOME": str(home), "HF_HUB_OFFLINE": "1", "RAGTUNE_IMAGE": "registry.example/ragtune:0.4"}
    for job in ("train_and_judge", "ingest_documents"):
        done = subprocess.run([DAGSTER, "job", "launch", "-m", "pipeline_assets.definitions", "-j", job], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    api.shutdown()

    assert [(namespace, auth) for namespace, _, auth in api.jobs] == [("ragtune", "Bearer cluster-token")] * 2
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = {run.run_id: run for run in instance.get_runs()}
    pods = {}
    for _, manifest, _ in api.jobs:
        run_id = manifest["metadata"]["labels"]["dagster/run-id"]
        pods[runs[run_id].job_name] = (manifest["spec"]["template"]["spec"], run_id)
    for job, (pod, run_id) in pods.items():
        (container,) = pod["containers"]
        assert container["image"] == "registry.example/ragtune:0.4" and pod["serviceAccountName"] == "ragtune"
        assert container["args"][:3] == ["dagster", "api", "execute_run"] and run_id in container["args"][3]
        env_vars = {e["name"]: e for e in container["env"]}
        assert env_vars["RAGTUNE_DATA_DIR"]["value"] == "/data" and env_vars["DAGSTER_HOME"]["value"] == "/opt/dagster/home"
        password = env_vars["DAGSTER_PG_PASSWORD"]  # from the cluster's secret, never written into the manifest
        assert "value" not in password and password["valueFrom"]["secretKeyRef"]["name"] == "ragtune-postgresql-secret"
        assert {s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s} == {"ragtune-llm"}
        assert [m["mountPath"] for m in container["volumeMounts"]] == ["/data"]
        assert pod["volumes"] == [{"name": "ragtune-data", "persistentVolumeClaim": {"claimName": "ragtune-data"}}]
        assert container["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}
    assert pods["train_and_judge"][0]["containers"][0]["resources"]["limits"] == {"memory": "16Gi", "nvidia.com/gpu": "1"}
    assert "nvidia.com/gpu" not in pods["ingest_documents"][0]["containers"][0]["resources"]["limits"]


def _env_refs(node) -> set[str]:
    """Every {env: NAME} a Dagster YAML file reads."""
    if isinstance(node, dict):
        return ({node["env"]} if set(node) == {"env"} else set()).union(*(_env_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node))
    return set()


def test_compose_services_agree_with_the_files_and_settings_they_name():
    """No Docker engine runs on the test machine; this keeps docker-compose.yml in step with the
    files it mounts and the settings the code reads."""
    compose = yaml.safe_load((ROOT / "docker" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "grobid", "vllm", "user-code", "webserver", "daemon", "redis", "celery-worker"}
    env = services["daemon"]["environment"]
    assert all(services[name]["environment"] == env for name in ("user-code", "webserver", "celery-worker"))
    assert _env_refs(yaml.safe_load((ROOT / "docker" / "dagster.postgres.yaml").read_text())) <= set(env)
    assert _env_refs(celery_config(CELERY_FILE)) <= set(env)
    (location,) = yaml.safe_load((ROOT / "docker" / "workspace.docker.yaml").read_text())["load_from"]
    assert location["grpc_server"]["host"] in services
    assert f"-p {location['grpc_server']['port']}" in services["user-code"]["command"]
    for service in services.values():
        for word in f"{service.get('command', '')} {' '.join(map(str, (service.get('environment') or {}).values()))}".split():
            if word.startswith("/opt/dagster/app/"):
                assert (ROOT / word.removeprefix("/opt/dagster/app/")).exists(), word
    assert env["RAGTUNE_LLM_BASE_URL"] == "http://vllm:8000/v1" and "--enable-lora" in services["vllm"]["command"]
    assert env["GROBID_URL"].startswith("http://grobid:") and env["DAGSTER_PG_HOST"] == "postgres"
    assert executor_from_env({**env, "RAGTUNE_EXECUTOR": "celery", "RAGTUNE_CELERY_CONFIG": str(CELERY_FILE)}).name == "celery"
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "docker/dagster.postgres.yaml" in dockerfile and ".[scale]" in dockerfile


def test_docker_compose_accepts_the_file():
    """Debian's docker-compose (1.29, no engine needed for `config`) validates the file against the
    Compose specification and resolves it: every key known, every build context this checkout."""
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("needs Debian's docker-compose package to validate docker/docker-compose.yml (.ci/run installs it)")
    command = [compose, "-p", "ragtune", "-f", str(ROOT / "docker" / "docker-compose.yml"), "--profile", "celery", "config"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=120, env={"PATH": os.environ["PATH"]})
    assert refused.returncode != 0 and "DAGSTER_PG_PASSWORD" in refused.stderr  # no default database password
    done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ["PATH"], "DAGSTER_PG_PASSWORD": "from-the-environment"})
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert {name for name, service in services.items() if service.get("profiles") == ["celery"]} == {"redis", "celery-worker"}
    built = [service["build"] for service in services.values() if "build" in service]
    assert len(built) == 4 and all(Path(b["context"]) == ROOT and (ROOT / b["dockerfile"]).is_file() for b in built)


def test_compose_publishes_ports_on_this_machine_only_and_takes_the_database_password_from_the_environment():
    """GROBID, vLLM and the Dagster UI have no authentication: published on 127.0.0.1 only. The
    PostgreSQL password has no default; compose refuses to start without DAGSTER_PG_PASSWORD."""
    text = (ROOT / "docker" / "docker-compose.yml").read_text()
    services = yaml.safe_load(text)["services"]
    published = [(name, port) for name, service in services.items() for port in service.get("ports", [])]
    assert {name for name, _ in published} >= {"grobid", "vllm", "webserver"}
    assert all(str(port).startswith("127.0.0.1:") for _, port in published), published
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${DAGSTER_PG_PASSWORD:?")
    assert ":-dagster" not in text and "password: dagster" not in text.lower()

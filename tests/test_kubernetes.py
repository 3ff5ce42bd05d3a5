"""The Kubernetes manifests (deploy/kubernetes), checked without a cluster: each overlay renders
with ``kubectl kustomize``, every object validates offline against the Kubernetes schemas
(kubernetes-validate, strict: unknown fields are errors), KEDA's objects against a schema written
from KEDA's CRD, references resolve, and every command is a real ``hpo`` command. The KEDA
queries run on a real PostgreSQL database holding studies in every state, and the claimable count
must equal what workers can really still claim."""

from __future__ import annotations

import configparser
import functools
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from sqlalchemy import text, update

from hpo_service.api.routes import ops
from hpo_service.config import Settings
from hpo_service.scheduling import claims
from hpo_service.store.db import get_engine, migrate, session_scope
from hpo_service.store.models import StudyRecord, TrialRun, utcnow
from hpo_service.store.studies import StudyInfo, create_study, transition
from tests.conftest import REPO_ROOT, make_settings
from tests.test_docker import parse_hpo_command
from tests.test_runs import tiny_spec

KUBE = REPO_ROOT / "deploy" / "kubernetes"
OVERLAYS = ("cpu", "gpu")
KUBERNETES_VERSION = "1.32"
KEDA_KINDS = ("ScaledObject", "TriggerAuthentication")

# KEDA's kinds have no schema in kubernetes-validate: ours, from KEDA's CRD, lives beside them.
KEDA_SCHEMAS = yaml.safe_load((KUBE / "components" / "keda" / "schema.yaml").read_text())


@functools.cache
def rendered(overlay: str) -> str:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is needed to render the kustomize overlays")
    out = subprocess.run(
        ["kubectl", "kustomize", str(KUBE / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def render(overlay: str) -> list[dict[str, Any]]:
    """The overlay's objects, parsed afresh (a test may change them)."""
    return [doc for doc in yaml.safe_load_all(rendered(overlay)) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return find(objects, kind, name)["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def env_secret_keys(container: dict[str, Any]) -> dict[str, str]:
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]["key"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


# --- rendering and validation -------------------------------------------------------------------


def test_every_object_validates_offline(objects: list[dict[str, Any]]) -> None:
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        ["Namespace", "Secret", "ConfigMap", "ConfigMap", "PersistentVolumeClaim", "Job"]
        + ["Deployment"] * 3
        + ["Service"] * 2
        + list(KEDA_KINDS)
    )
    for obj in objects:
        assert obj["metadata"].get("namespace", "hpo") == "hpo", obj["metadata"]
        if obj["kind"] in KEDA_KINDS:
            jsonschema.validate(obj, KEDA_SCHEMAS[obj["kind"]])
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_validation_would_catch_a_typo() -> None:
    deployment = find(render("cpu"), "Deployment", "hpo-api")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="livenesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    scaled = find(render("cpu"), "ScaledObject", "hpo-worker")
    scaled["spec"]["maxReplicas"] = 3
    with pytest.raises(jsonschema.ValidationError, match="maxReplicas"):
        jsonschema.validate(scaled, KEDA_SCHEMAS["ScaledObject"])


def test_references_resolve(objects: list[dict[str, Any]]) -> None:
    secret = find(objects, "Secret", "hpo-secrets")["stringData"]
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for kind, name in (
        ("Deployment", "hpo-api"),
        ("Deployment", "hpo-worker"),
        ("Job", "hpo-migrate"),
        ("Deployment", "pgbouncer"),
    ):
        spec = pod(objects, kind, name)
        for container in spec["containers"]:
            assert set(env_secret_keys(container).values()) <= set(secret)
            for source in container.get("envFrom", []):
                assert ("ConfigMap", source["configMapRef"]["name"]) in names
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                assert {i["key"] for i in volume["secret"]["items"]} <= set(secret)
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in names
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert ("PersistentVolumeClaim", claim) in names
    for ref in find(objects, "TriggerAuthentication", "hpo-postgres")["spec"]["secretTargetRef"]:
        assert ref["name"] == "hpo-secrets" and ref["key"] in secret


# --- what the service needs ---------------------------------------------------------------------


def test_every_hpo_command_is_real_and_the_image_is_dockers(objects: list[dict[str, Any]]) -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker" / "compose.yml").read_text())
    built = {compose["x-hpo"]["image"], compose["services"]["worker-gpu"]["image"]}
    for kind, name in (
        ("Deployment", "hpo-api"),
        ("Deployment", "hpo-worker"),
        ("Job", "hpo-migrate"),
    ):
        container = pod(objects, kind, name)["containers"][0]
        assert container["image"] in built
        parse_hpo_command(container["args"])  # a usage error if not a real command


def test_api_probes_and_service(objects: list[dict[str, Any]]) -> None:
    container = pod(objects, "Deployment", "hpo-api")["containers"][0]
    port = container["ports"][0]
    assert (port["name"], port["containerPort"]) == ("http", 8000)
    assert container["args"][-2:] == ["--port", "8000"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"/healthz", "/readyz"} <= {route.path for route in ops.router.routes}  # type: ignore[attr-defined]
    service = find(objects, "Service", "hpo-api")["spec"]
    assert service["ports"][0]["targetPort"] == "http"
    assert (
        service["selector"]
        == find(objects, "Deployment", "hpo-api")["spec"]["selector"]["matchLabels"]
    )
    assert env_secret_keys(container) == {
        "HPO_DATABASE_URL": "database-url",
        "HPO_API_TOKEN": "api-token",
    }


def test_migrate_goes_direct_the_rest_through_pgbouncer(objects: list[dict[str, Any]]) -> None:
    secret = find(objects, "Secret", "hpo-secrets")["stringData"]
    migrate_env = env_secret_keys(pod(objects, "Job", "hpo-migrate")["containers"][0])
    worker_env = env_secret_keys(pod(objects, "Deployment", "hpo-worker")["containers"][0])
    assert migrate_env == {"HPO_DATABASE_URL": "database-url-direct"}
    assert worker_env == {"HPO_DATABASE_URL": "database-url"}
    assert find(objects, "ConfigMap", "hpo-config")["data"]["HPO_DB_POOLER"] == "pgbouncer"
    for kind, name in (("Deployment", "hpo-api"), ("Deployment", "hpo-worker")):
        sources = pod(objects, kind, name)["containers"][0]["envFrom"]
        assert {"configMapRef": {"name": "hpo-config"}} in sources
    assert "envFrom" not in pod(objects, "Job", "hpo-migrate")["containers"][0]
    service = find(objects, "Service", "pgbouncer")
    assert (
        f"@{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/"
        in secret["database-url"]
    )
    assert ":6432" not in secret["database-url-direct"]
    bouncer = pod(objects, "Deployment", "pgbouncer")
    ini = configparser.ConfigParser()
    config = next(o for o in objects if o["metadata"]["name"].startswith("pgbouncer-config"))
    ini.read_string(config["data"]["pgbouncer.ini"])
    assert ini["pgbouncer"]["pool_mode"] == "transaction"
    assert (
        int(ini["pgbouncer"]["listen_port"])
        == bouncer["containers"][0]["ports"][0]["containerPort"]
    )
    mounts = {m["name"]: m["mountPath"] for m in bouncer["containers"][0]["volumeMounts"]}
    assert bouncer["containers"][0]["args"] == [f"{mounts['config']}/pgbouncer.ini"]
    assert ini["pgbouncer"]["auth_file"] == f"{mounts['auth']}/userlist.txt"


def test_workers_stop_gracefully_and_keda_owns_their_count(objects: list[dict[str, Any]]) -> None:
    deployment = find(objects, "Deployment", "hpo-worker")
    assert "replicas" not in deployment["spec"]
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 300
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    scaled = find(objects, "ScaledObject", "hpo-worker")["spec"]
    assert scaled["scaleTargetRef"]["name"] == "hpo-worker"
    names = [t["name"] for t in scaled["triggers"]]
    assert names == ["claimable", "in_flight"]
    assert scaled["advanced"]["scalingModifiers"]["formula"] == "claimable + in_flight"
    assert {t["authenticationRef"]["name"] for t in scaled["triggers"]} == {"hpo-postgres"}
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "x"},
    }
    hpa["spec"] = {
        "scaleTargetRef": {"kind": "Deployment", "name": "hpo-worker"},
        "maxReplicas": scaled["maxReplicaCount"],
        "behavior": scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"],
    }
    kubernetes_validate.validate(hpa, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaling_target_is_the_trials_one_pod_trains(overlay: str) -> None:
    objects = render(overlay)
    container = pod(objects, "Deployment", "hpo-worker")["containers"][0]
    options = parse_hpo_command(container["args"]).params
    target = find(objects, "ScaledObject", "hpo-worker")["spec"]["advanced"]["scalingModifiers"]
    limits = container["resources"]["limits"]
    if overlay == "gpu":
        assert options["device"] == "cuda" and container["image"] == "hpo-service:cuda"
        assert int(target["target"]) == options["per_gpu"] * limits["nvidia.com/gpu"]
    else:
        assert options["device"] == "cpu" and "nvidia.com/gpu" not in limits
        assert int(target["target"]) == options["processes"]


# --- the KEDA queries on a real database ---------------------------------------------------------


def keda_queries() -> dict[str, str]:
    scaled = find(render("cpu"), "ScaledObject", "hpo-worker")
    return {t["name"]: t["metadata"]["query"] for t in scaled["spec"]["triggers"]}


def study(settings: Settings, name: str, statuses: list[str], **budget: Any) -> StudyInfo:
    """A running study whose runs, claimed one by one as a worker would, end in ``statuses``."""
    info = create_study(settings, tiny_spec(name, **budget), start=True)
    for status in statuses:
        with session_scope(get_engine(settings)) as session:
            claimed = claims.claim_unit(session, info.id, "w", info.spec)
            assert claimed is not None, (name, status)
            if status == "reaping":  # a reaper's takeover: still in flight, still counted
                session.execute(
                    update(TrialRun).where(TrialRun.id == claimed.run_id).values(status=status)
                )
            elif status != "running":  # closed as a worker closes it (keeps the counters)
                count_failed = info.spec.budget.count_failed
                claims.finish(session, claimed.run_id, "w", status, count_failed=count_failed)
    return info


def claim_all(settings: Settings, info: StudyInfo) -> int:
    claimed = 0
    with session_scope(get_engine(settings)) as session:
        while claims.claim_unit(session, info.id, "w", info.spec) is not None:
            claimed += 1
    return claimed


# name, how its runs end (claimed one by one, as workers would), budget, state, still claimable
KEDA_CASES: list[tuple[str, str, dict[str, Any], str, int]] = [
    ("mixed", "complete complete pruned running reaping failed requeued crashed",
     {"n_trials": 12}, "running", 7),
    ("counted", "failed failed complete", {"n_trials": 6, "count_failed": True}, "running", 3),
    ("capped", "failed failed", {"n_trials": 2}, "running", 0),  # failures alone cap it
    ("spent", "complete complete running", {"n_trials": 3}, "running", 0),
    ("late", "complete", {"n_trials": 5, "timeout_s": 60}, "running", 0),  # started 1 h ago
    ("in-time", "", {"n_trials": 4, "timeout_s": 3600}, "running", 4),
    ("paused", "running", {"n_trials": 5}, "pause", 0),
    ("stopped", "", {"n_trials": 5}, "stop", 0),
]  # fmt: skip


@pytest.mark.postgres
def test_keda_queries_count_exactly_what_workers_can_claim(pg_url: str, tmp_path: Path) -> None:
    settings = make_settings(pg_url, tmp_path)
    migrate(settings)
    engine = get_engine(settings)
    infos = {}
    for name, statuses, budget, action, _ in KEDA_CASES:
        infos[name] = study(settings, name, statuses.split(), **budget)
        if action != "running":
            transition(engine, name, action)
    create_study(settings, tiny_spec("created", n_trials=5), start=False)
    with session_scope(engine) as session:
        an_hour_ago = utcnow() - timedelta(hours=1)
        session.execute(
            update(StudyRecord).where(StudyRecord.name == "late").values(started_at=an_hour_ago)
        )
    queries = keda_queries()

    def value(name: str) -> int:
        with engine.connect() as conn:
            return int(conn.execute(text(queries[name])).scalar_one())

    assert (value("claimable"), value("in_flight")) == (14, 4)  # 4: running or reaping runs
    claimed = {name: claim_all(settings, info) for name, info in infos.items()}
    assert claimed == {case[0]: case[-1] for case in KEDA_CASES}
    assert (value("claimable"), value("in_flight")) == (0, 4 + 14)

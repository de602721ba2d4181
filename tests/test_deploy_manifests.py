"""The rendered k8s stack: overlays build, validate strictly and run unprivileged; make and compose agree."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import render

# The Kubernetes version the manifests are validated against: the k3s image of deploy/k3d/cluster.yaml.
KUBERNETES_VERSION = "1.34.0"
K3S_IMAGE = "rancher/k3s:v1.34.1-k3s1"
OVERLAYS = ("local", "prod")
COMBINATIONS = {
    "defaults": {},
    "all-on-highlight": {"session_replay": "highlight", "highlight_project_id": "ve6y97ge"},
    "no-web": {"include_web": False},
}
APP_WORKLOADS = {"api", "web"}
STACK_WORKLOADS = {"otel-collector", "tempo", "loki", "prometheus", "grafana"}


def require(tool: str) -> str:
    """The tool's path; a missing tool fails the test loudly (CI must install it, see .ci/run)."""
    path = shutil.which(tool) or shutil.which(tool, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail(f"{tool} is not installed: .ci/run installs it (kubectl, kubernetes-validate)")
    return path


def kustomize(project: Path, overlay: str) -> list[dict]:
    """The objects `kubectl kustomize` builds from deploy/k8s/overlays/<overlay>."""
    completed = subprocess.run(
        [require("kubectl"), "kustomize", str(project / "deploy" / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return [doc for doc in yaml.safe_load_all(completed.stdout) if doc]


@pytest.fixture(scope="module", params=list(COMBINATIONS), ids=list(COMBINATIONS))
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp(request.param), **COMBINATIONS[request.param])


@pytest.fixture(scope="module")
def built(project: Path) -> dict[str, list[dict]]:
    return {overlay: kustomize(project, overlay) for overlay in OVERLAYS}


def workloads(objects: list[dict]) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "Deployment"}


def test_every_overlay_passes_strict_kubernetes_validation(project, built, tmp_path):
    """It validates every built object with kubernetes-validate --strict for the stated k8s version."""
    for overlay, objects in built.items():
        manifest = tmp_path / f"{overlay}.yaml"
        manifest.write_text(yaml.safe_dump_all(objects), encoding="utf-8")
        completed = subprocess.run(
            [require("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(manifest)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_local_overlay_runs_the_app_and_the_whole_stack_in_one_namespace(project, built):
    """It deploys the app and collector, Tempo, Loki, Prometheus and Grafana into the slug's namespace."""
    objects = built["local"]
    expected = STACK_WORKLOADS | ({"api"} if not (project / "web").exists() else APP_WORKLOADS)
    assert set(workloads(objects)) == expected
    namespaced = [obj for obj in objects if obj["kind"] != "Namespace"]
    assert {obj["metadata"].get("namespace") for obj in namespaced} == {project.name}


def test_the_prod_overlay_keeps_the_app_and_collector_and_reads_credentials_from_a_secret(project, built):
    """It drops the single-binary backends and points the collector at a Secret, not at committed values."""
    deployments = workloads(built["prod"])
    assert set(deployments) == {"otel-collector"} | (APP_WORKLOADS & set(workloads(built["local"])))
    collector = deployments["otel-collector"]["spec"]["template"]["spec"]["containers"][0]
    assert collector["envFrom"] == [{"secretRef": {"name": "grafana-cloud-otlp"}}]
    assert all(not image.startswith(project.name) for image in images(built["prod"]))


def images(objects: list[dict]) -> list[str]:
    return [
        c["image"]
        for obj in workloads(objects).values()
        for c in obj["spec"]["template"]["spec"]["containers"]
    ]


def test_every_image_is_pinned_and_the_app_images_are_the_ones_make_dev_imports(project, built):
    """It pins every third-party image to a version and deploys the app images with make dev's tag."""
    local = images(built["local"])
    assert all(":" in image and not image.endswith(":latest") for image in local)
    app = sorted(image for image in local if image.startswith(project.name))
    makefile = (project / "deploy" / "k3d.mk").read_text(encoding="utf-8")
    assert re.search(r"^IMAGE_TAG \?= dev$", makefile, re.MULTILINE)
    expected = ["api", "web"] if (project / "web").exists() else ["api"]
    assert app == [f"{project.name}-{name}:dev" for name in expected]


def test_every_container_runs_unprivileged_with_limits_and_probes(built):
    """It runs each container non-root, read-only, without privilege escalation, with limits and probes."""
    for overlay, objects in built.items():
        for name, deployment in workloads(objects).items():
            pod = deployment["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True, (overlay, name)
            assert pod["automountServiceAccountToken"] is False, (overlay, name)
            for container in pod["containers"]:
                security = container["securityContext"]
                assert security["readOnlyRootFilesystem"] is True, (overlay, name)
                assert security["allowPrivilegeEscalation"] is False, (overlay, name)
                assert security["capabilities"]["drop"] == ["ALL"], (overlay, name)
                assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
                assert container["readinessProbe"] and container["livenessProbe"], (overlay, name)


def test_the_api_probes_healthz_and_both_apps_send_otlp_http_to_the_collector_service(project, built):
    """It probes /healthz on 8000 and gives each app its own service name and the collector's :4318."""
    deployments = workloads(built["local"])
    api = deployments["api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["ports"] == [{"name": "http", "containerPort": 8000}]
    names = {}
    for name in APP_WORKLOADS & set(deployments):
        env = {
            e["name"]: e.get("value")
            for e in deployments[name]["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
        names[name] = env["OTEL_SERVICE_NAME"]
    assert names["api"] == f"{project.name}-api"
    if "web" in names:
        assert names["web"] == f"{project.name}-web"


def test_the_grafana_password_comes_from_a_secret_that_no_committed_file_holds(project, built):
    """It reads the admin login from the Secret grafana-admin; the rendered project holds no password."""
    grafana = workloads(built["local"])["grafana"]["spec"]["template"]["spec"]["containers"][0]
    assert {"secretRef": {"name": "grafana-admin"}} in grafana["envFrom"]
    assert not any(obj["kind"] == "Secret" for obj in built["local"])
    assert (project / "deploy" / ".gitignore").read_text(encoding="utf-8").splitlines()[-1] == "/.secrets/"
    assert not (project / "deploy" / ".secrets").exists()
    texts = [path.read_text(errors="ignore") for path in project.rglob("*") if path.is_file()]
    assert not any(re.search(r"GF_SECURITY_ADMIN_PASSWORD=[A-Za-z0-9]{6,}", text) for text in texts)
    assert not any("admin/admin" in text for text in texts)


def test_make_dev_dry_run_builds_imports_applies_waits_and_prints_urls_in_order(project, tmp_path):
    """It plans cluster, builds, import, apply, Secrets, wait and URLs (make -n: no docker here)."""
    env = {**os.environ, "CEREBE_API_KEY": ""}
    completed = subprocess.run(
        ["make", "--no-print-directory", "-n", "-f", "deploy/k3d.mk", "k3d-dev"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    plan = completed.stdout
    steps = [
        "k3d cluster get " + project.name,
        f"docker build --tag {project.name}-api:dev backend",
        f"k3d image import --cluster {project.name} {project.name}-api:dev",
        f"kubectl --context k3d-{project.name} apply --kustomize deploy/k8s/overlays/local",
        "create secret generic grafana-admin --from-env-file=deploy/.secrets/grafana-admin.env",
        "wait --for=condition=Available deployment --all",
        "urls",
    ]
    positions = [plan.find(step) for step in steps]
    assert -1 not in positions, [step for step, at in zip(steps, positions, strict=True) if at == -1]
    assert positions == sorted(positions)
    assert (f"docker build --tag {project.name}-web:dev web" in plan) is (project / "web").exists()
    assert not (project / "deploy" / ".secrets").exists()


def test_make_grafana_secret_writes_a_private_random_password_once(project, tmp_path):
    """It writes a 0600 env file with a 36-hex-digit password and keeps it on the next run."""
    copy = tmp_path / "p"
    shutil.copytree(project / "deploy", copy / "deploy")
    run = ["make", "--no-print-directory", "-f", "deploy/k3d.mk", "grafana-secret"]

    subprocess.run(run, cwd=copy, check=True, capture_output=True)
    secret = copy / "deploy" / ".secrets" / "grafana-admin.env"
    first = secret.read_text(encoding="utf-8")
    subprocess.run(run, cwd=copy, check=True, capture_output=True)

    assert re.fullmatch(r"GF_SECURITY_ADMIN_USER=admin\nGF_SECURITY_ADMIN_PASSWORD=[0-9a-f]{36}\n", first)
    assert secret.stat().st_mode & 0o077 == 0
    assert secret.read_text(encoding="utf-8") == first


def test_the_k3d_cluster_pins_k3s_and_maps_the_ports_the_readme_and_make_print(project):
    """It pins the k3s image and maps localhost 3001 (Grafana), 8000 (API), 4318 and 3000 (web, if any)."""
    cluster = yaml.safe_load((project / "deploy" / "k3d" / "cluster.yaml").read_text(encoding="utf-8"))
    assert cluster["apiVersion"] == "k3d.io/v1alpha5" and cluster["metadata"]["name"] == project.name
    assert cluster["image"] == K3S_IMAGE
    host_ports = {mapping["port"].split(":")[1] for mapping in cluster["ports"]}
    assert host_ports == {"3001", "8000", "4318"} | ({"3000"} if (project / "web").exists() else set())
    makefile = (project / "deploy" / "k3d.mk").read_text(encoding="utf-8")
    assert (
        "GRAFANA_URL ?= http://localhost:3001" in makefile and "API_URL ?= http://localhost:8000" in makefile
    )


def test_every_published_port_binds_loopback_only(project):
    """Compose and k3d publish the collector, API, Grafana and web on 127.0.0.1, never on all interfaces."""
    compose = yaml.safe_load((project / "docker-compose.yaml").read_text(encoding="utf-8"))
    published = {
        name: [str(port) for port in service.get("ports", [])]
        for name, service in compose["services"].items()
    }
    assert published["otel-collector"] == ["127.0.0.1:4317:4317", "127.0.0.1:4318:4318"]
    assert published["api"] == ["127.0.0.1:8000:8000"]
    assert published["grafana"] == ["127.0.0.1:3001:3000"]
    assert published.get("web", []) == (["127.0.0.1:3000:3000"] if (project / "web").exists() else [])
    for ports in published.values():
        for port in ports:
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), port
    cluster = yaml.safe_load((project / "deploy" / "k3d" / "cluster.yaml").read_text(encoding="utf-8"))
    mappings = [mapping["port"] for mapping in cluster["ports"]]
    assert mappings and all(re.fullmatch(r"127\.0\.0\.1:\d+:\d+", port) for port in mappings), mappings


def test_compose_mounts_the_same_config_files_the_k8s_stack_generates_from(project):
    """It mounts every deploy/config file that kustomize turns into a ConfigMap (one source of truth)."""
    compose = yaml.safe_load((project / "docker-compose.yaml").read_text(encoding="utf-8"))
    generators = yaml.safe_load(
        (project / "deploy" / "config" / "kustomization.yaml").read_text(encoding="utf-8")
    )
    sources = {
        volume.split(":")[0].removeprefix("./")
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
    } | {path for service in compose["services"].values() for path in service.get("env_file", [])}
    for generator in generators["configMapGenerator"]:
        for name in generator.get("files", []) + generator.get("envs", []):
            path = f"deploy/config/{name}"
            assert path in sources or str(Path(path).parent) in sources, path
    assert set(compose["services"]) >= STACK_WORKLOADS | {"api"}
    assert ("web" in compose["services"]) is (project / "web").exists()


def test_the_dockerfiles_build_in_stages_and_run_unprivileged(project):
    """It builds each app image in stages and switches to a non-root user for the runtime stage."""
    dockerfiles = [project / "backend" / "Dockerfile"] + (
        [project / "web" / "Dockerfile"] * (project / "web").exists()
    )
    for dockerfile in dockerfiles:
        text = dockerfile.read_text(encoding="utf-8")
        stages = re.findall(r"^FROM ", text, re.MULTILINE)
        assert len(stages) >= 2, dockerfile
        last_stage = text.rsplit("\nFROM ", 1)[1]
        assert re.search(r"^USER (10001:10001|node)$", last_stage, re.MULTILINE), dockerfile
        ignore = (dockerfile.parent / ".dockerignore").read_text(encoding="utf-8").splitlines()
        assert ".env" in ignore, dockerfile


def test_compose_trusts_exactly_the_web_container_as_the_apis_proxy(tmp_path_factory):
    """With the web app, the API trusts X-Forwarded-For from the web container's fixed address
    only; without it, nobody (the backend's loopback default)."""
    for include_web in (True, False):
        project = render(tmp_path_factory.mktemp(f"compose-web-{include_web}"), include_web=include_web)
        compose = yaml.safe_load((project / "docker-compose.yaml").read_text(encoding="utf-8"))
        api = compose["services"]["api"]["environment"]
        if not include_web:
            assert "FORWARDED_ALLOW_IPS" not in api and "networks" not in compose
            continue
        web = compose["services"]["web"]["networks"]["default"]["ipv4_address"]
        subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
        assert api["FORWARDED_ALLOW_IPS"] == web
        assert ipaddress.ip_address(web) in ipaddress.ip_network(subnet)

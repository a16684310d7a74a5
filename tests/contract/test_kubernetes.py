"""deploy/kubernetes: the rendered kustomize output of base and production, decoded and checked."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest

from shared import marketplaces
from tests.contract.support import DEPLOY, IMAGE_ONLY_ENV, SERVICES, load_yaml_all, run, settings_env_names, tool
from tools import contracts

KUSTOMIZE = DEPLOY / "kubernetes"
OVERLAYS = {"base": KUSTOMIZE / "base", "production": KUSTOMIZE / "overlays" / "production"}
NAMESPACED_EXEMPT = {"Namespace"}


def kustomize_command() -> list[str] | None:
    standalone = tool("kustomize")
    if standalone:
        return [standalone, "build"]
    kubectl = tool("kubectl")
    return [kubectl, "kustomize"] if kubectl else None


@functools.cache
def rendered(overlay: str) -> str:
    command = kustomize_command()
    if command is None:
        pytest.fail("neither kustomize nor kubectl installed (scripts/install-contract-tools)")
    result = run([*command, str(OVERLAYS[overlay])])
    assert result.returncode == 0, result.stderr
    return result.stdout


@functools.cache
def resources(overlay: str) -> list[dict[str, Any]]:
    return load_yaml_all(rendered(overlay))


def by_kind(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources(overlay) if r["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def generator_files() -> set[Path]:
    """Files a configMapGenerator packs (the marketplaces file): data, not manifests."""
    files = set()
    for kustomization in KUSTOMIZE.rglob("kustomization.yaml"):
        for generator in load_yaml_all(kustomization.read_text())[0].get("configMapGenerator", []):
            files |= {(kustomization.parent / name.rpartition("=")[2]).resolve() for name in generator.get("files", [])}
    return files


def test_every_manifest_file_parses():
    """Without a kustomize binary this is what can be checked: each file is YAML with identity."""
    data = generator_files()
    for path in sorted(KUSTOMIZE.rglob("*.yaml")):
        if path.resolve() in data:
            continue
        for document in load_yaml_all(path.read_text()):
            assert document.get("apiVersion") and document.get("kind"), path
            if document["kind"] != "Kustomization":
                assert document.get("metadata", {}).get("name"), path


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_strict_decoding_into_the_kubernetes_api_types(overlay):
    """k8scheck decodes every built-in object into k8s.io/api types, refusing unknown fields."""
    checker = tool("k8scheck")
    if checker is None:
        pytest.fail("k8scheck not built (scripts/install-contract-tools)")
    result = run([checker], stdin=rendered(overlay))
    assert result.returncode == 0, result.stdout + result.stderr
    checked = [line for line in result.stdout.splitlines() if line.startswith("OK ")]
    assert len(checked) >= 4 * len(SERVICES)


def test_strict_decoding_catches_a_misspelt_field():
    checker = tool("k8scheck")
    if checker is None:
        pytest.fail("k8scheck not built (scripts/install-contract-tools)")
    broken = rendered("base").replace("readinessProbe:", "readinesProbe:", 1)
    assert run([checker], stdin=broken).returncode == 1


@pytest.mark.parametrize("overlay", list(OVERLAYS))
@pytest.mark.parametrize("service", SERVICES)
def test_deployment_is_safe_to_run_and_replicate(overlay, service):
    deployment = by_kind(overlay, "Deployment")[service]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    main = container(deployment)
    assert spec["replicas"] >= 2, "several replicas: consumers compete, relays and jobs lease"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    port = contracts.settings_class(service).model_fields["port"].default
    assert main["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(main["resources"][kind]), f"{service}: resource {kind}"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 1000
    assert main["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["automountServiceAccountToken"] is False
    image = main["image"]
    assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), "a pinned image tag"


@pytest.mark.parametrize("overlay", list(OVERLAYS))
@pytest.mark.parametrize("service", SERVICES)
def test_service_pdb_and_hpa_point_at_the_deployment(overlay, service):
    deployment = by_kind(overlay, "Deployment")[service]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    svc = by_kind(overlay, "Service")[service]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= {p["name"] for p in container(deployment)["ports"]}
    pdb = by_kind(overlay, "PodDisruptionBudget")[service]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable")
    hpa = by_kind(overlay, "HorizontalPodAutoscaler")[service]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    assert 2 <= hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]


@pytest.mark.parametrize("overlay", list(OVERLAYS))
@pytest.mark.parametrize("service", SERVICES)
def test_configuration_references_exist_and_are_settings(overlay, service):
    configmaps = by_kind(overlay, "ConfigMap")
    main = container(by_kind(overlay, "Deployment")[service])
    known = settings_env_names(service) | IMAGE_ONLY_ENV
    secret_refs = []
    for source in main["envFrom"]:
        if "configMapRef" in source:
            data = configmaps[source["configMapRef"]["name"]]["data"]  # KeyError: dangling reference
            assert set(data) <= known, f"{service}: {sorted(set(data) - known)} are not settings"
            if "SERVICE" in data:
                assert data["SERVICE"] == service and int(data["PORT"]) == main["ports"][0]["containerPort"]
        else:
            secret_refs.append(source["secretRef"]["name"])
    assert secret_refs == [f"{service}-secrets"], "secrets come from the service's own Secret"
    for variable in main.get("env", []):
        assert variable["name"] in known, variable["name"]


@pytest.mark.parametrize("overlay", list(OVERLAYS))
@pytest.mark.parametrize("service", SERVICES)
def test_cursor_secret_comes_from_the_services_secret(overlay, service):
    """Its own key, named with a secretKeyRef (the pod does not start without it): not one derived
    from JWT_SECRET, whose rotation would otherwise invalidate every outstanding cursor."""
    main = container(by_kind(overlay, "Deployment")[service])
    env = {v["name"]: v for v in main.get("env", [])}
    reference = env["CURSOR_SECRET"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": f"{service}-secrets", "key": "CURSOR_SECRET"}
    for configmap in by_kind(overlay, "ConfigMap").values():
        assert "CURSOR_SECRET" not in configmap.get("data", {}), configmap["metadata"]["name"]


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_stripe_webhook_secret_comes_from_the_services_secret(overlay):
    """Named with a secretKeyRef (the pod does not start without it), never in a ConfigMap: the
    settings' development default would let anyone forge Stripe's chargeback events."""
    main = container(by_kind(overlay, "Deployment")["disputes"])
    env = {v["name"]: v for v in main.get("env", [])}
    reference = env["STRIPE_WEBHOOK_SECRET"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "disputes-secrets", "key": "STRIPE_WEBHOOK_SECRET"}
    for configmap in by_kind(overlay, "ConfigMap").values():
        assert "STRIPE_WEBHOOK_SECRET" not in configmap.get("data", {}), configmap["metadata"]["name"]


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_every_service_reads_the_same_valid_marketplaces_file(overlay, tmp_path):
    """One ConfigMap, mounted read-only into every service where MARKETPLACES_FILE points, holding a
    file the services accept (a bad one would stop every pod at start-up)."""
    configmaps = by_kind(overlay, "ConfigMap")
    [platform] = [c for name, c in configmaps.items() if name.startswith("platform-config")]
    target = Path(platform["data"]["MARKETPLACES_FILE"])
    mounted = set()
    for service in SERVICES:
        deployment = by_kind(overlay, "Deployment")[service]
        mount = next(m for m in container(deployment)["volumeMounts"] if m["mountPath"] == str(target.parent))
        assert mount.get("readOnly") is True, service
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        mounted.add(volumes[mount["name"]]["configMap"]["name"])
    assert len(mounted) == 1, f"every service must mount the same marketplaces ConfigMap, not {sorted(mounted)}"
    [name] = mounted
    path = tmp_path / target.name
    path.write_text(configmaps[name]["data"][target.name])
    assert {"US", "GB", "DE", "JP", "CN"} <= set(marketplaces.load(path))


def test_production_overlay_namespaces_everything_and_wires_the_clusters():
    everything = resources("production")
    for resource in everything:
        if resource["kind"] not in NAMESPACED_EXEMPT:
            assert resource["metadata"].get("namespace") == "returns-platform", resource["metadata"]["name"]
    rabbit = by_kind("production", "RabbitmqCluster")["rabbitmq"]
    assert rabbit["spec"]["replicas"] >= 3
    mongo = by_kind("production", "MongoDBCommunity")["mongodb"]
    assert mongo["spec"]["members"] >= 3 and mongo["spec"]["type"] == "ReplicaSet"
    users = {user["name"]: user for user in mongo["spec"]["users"]}
    for service in SERVICES:
        settings = contracts.contract_settings(service)
        assert [role["db"] for role in users[service]["roles"]] == [settings.database_name], (
            "each service's user may use its own database only"
        )
        env = {v["name"]: v for v in container(by_kind("production", "Deployment")[service]).get("env", [])}
        reference = env["MONGODB_URL"]["valueFrom"]["secretKeyRef"]
        assert reference["name"] == users[service]["connectionStringSecretName"]


def test_base_is_reused_not_copied():
    production = (OVERLAYS["production"] / "kustomization.yaml").read_text()
    assert "../../base" in production
    assert not list(Path(OVERLAYS["production"]).glob("deployment*.yaml"))


def _strict(schema: Any) -> Any:
    """A CRD's structural schema with unknown fields refused (as the API server's strict field
    validation does), except where it preserves unknown fields on purpose."""
    if isinstance(schema, dict):
        out = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def test_mongodb_resource_matches_the_operators_crd():
    import jsonschema

    from tests.contract.support import SCHEMAS, load_yaml

    crd = load_yaml(SCHEMAS / "mongodbcommunity.mongodb.com_mongodbcommunity.yaml")
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = _strict(version["schema"]["openAPIV3Schema"])
    resource = by_kind("production", "MongoDBCommunity")["mongodb"]
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(resource)
    ]
    assert not errors, "\n".join(errors)
    misspelt = copy.deepcopy(resource)
    misspelt["spec"]["member"] = misspelt["spec"].pop("members")
    assert list(jsonschema.Draft7Validator(schema).iter_errors(misspelt)), "strict schema must refuse unknown fields"

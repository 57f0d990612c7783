"""The Kubernetes gateway (portal.kube) against the sandbox cluster, over real HTTP.

No database: the cluster is a small dataclass with the attributes of the Cluster model.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from portal import kube
from portal.sandbox import SandboxCluster

TOKEN = "sandbox-token-123"


@dataclass
class FakeCluster:
    server: str = ""
    token: str = ""
    mode: str = "server"
    ca_data: str = ""
    insecure: bool = False
    kubeconfig_path: str = ""
    kubeconfig: str = ""
    context: str = ""
    name: str = "sandbox"

    def get_token(self):
        return self.token

    def get_kubeconfig(self):
        return self.kubeconfig


@pytest.fixture(scope="module")
def sandbox():
    with SandboxCluster(port=0, token=TOKEN) as running:
        yield running


@pytest.fixture
def cluster(sandbox):
    sandbox.reset()
    return FakeCluster(server=sandbox.url, token=TOKEN)


@pytest.fixture
def ns(cluster):
    kube.ensure_namespace(cluster, "shop", {"gantry.io/environment": "staging"})
    return "shop"


def deployment(name="web", namespace="shop", image="nginx:1.27", replicas=2, labels=None):
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]},
            },
        },
    }


def service(name="web", namespace="shop", selector=None):
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": selector or {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


def wait_for_rollout(cluster, namespace, name, timeout=3.0):
    """Poll until the rollout is done or has failed; return the last status."""
    deadline = time.monotonic() + timeout
    while True:
        status = kube.deployment_status(cluster, namespace, name)
        if status["done"] or status["failure"] or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def post_json(url, payload):
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


# --- namespaces and cluster checks ----------------------------------------------------------


def test_check_cluster_reports_version_and_namespace_count(cluster, ns):
    assert kube.check_cluster(cluster) == {"git_version": "v1.30.0", "namespaces": 1}


def test_ensure_namespace_creates_and_is_idempotent(cluster):
    created = kube.ensure_namespace(cluster, "team-a", {"gantry.io/tier": "dev"})
    again = kube.ensure_namespace(cluster, "team-a", {"gantry.io/tier": "prod"})

    assert again["metadata"]["uid"] == created["metadata"]["uid"]
    assert again["metadata"]["labels"]["gantry.io/tier"] == "prod"
    fetched = kube.get(cluster, "v1", "Namespace", "", "team-a")
    assert fetched["status"]["phase"] == "Active"
    assert [n["metadata"]["name"] for n in kube.list_objects(cluster, "v1", "Namespace", "")] == ["team-a"]
    assert kube.list_objects(cluster, "v1", "Namespace", "", "gantry.io/tier=dev") == []


def test_delete_namespace_deletes_its_objects(cluster, ns):
    kube.apply(cluster, deployment())

    assert kube.delete_namespace(cluster, ns) is True
    assert kube.get(cluster, "v1", "Namespace", "", ns) is None
    kube.ensure_namespace(cluster, ns, {})
    assert kube.get(cluster, "apps/v1", "Deployment", ns, "web") is None
    assert kube.delete_namespace(cluster, "never-existed") is False


def test_creating_in_a_missing_namespace_is_not_found(cluster):
    with pytest.raises(kube.KubeError) as caught:
        kube.apply(cluster, deployment(namespace="ghost"))
    assert caught.value.status == 404
    assert 'namespaces "ghost" not found' in str(caught.value)


# --- server-side apply ----------------------------------------------------------------------


def test_apply_creates_then_updates_a_deployment(cluster, ns):
    created = kube.apply(cluster, deployment(image="nginx:1.27"))
    assert created["metadata"]["generation"] == 1
    assert [(e["manager"], e["operation"]) for e in created["metadata"]["managedFields"]] == [("gantry", "Apply")]

    updated = kube.apply(cluster, deployment(image="nginx:1.28"))
    unchanged = kube.apply(cluster, deployment(image="nginx:1.28"))

    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert updated["metadata"]["generation"] == 2
    assert unchanged["metadata"]["generation"] == 2
    assert updated["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


def test_apply_drops_fields_left_out_of_the_manifest(cluster, ns):
    manifest = deployment()
    manifest["metadata"]["labels"]["release"] = "r1"
    kube.apply(cluster, manifest)

    kube.apply(cluster, deployment())

    assert "release" not in kube.get(cluster, "apps/v1", "Deployment", ns, "web")["metadata"]["labels"]


def test_dry_run_apply_returns_the_object_without_storing_it(cluster, ns):
    result = kube.apply(cluster, deployment(), dry_run=True)

    assert result["metadata"]["name"] == "web"
    assert result["spec"]["replicas"] == 2
    assert kube.get(cluster, "apps/v1", "Deployment", ns, "web") is None


def test_apply_of_an_invalid_deployment_is_refused(cluster, ns):
    manifest = deployment()
    del manifest["spec"]["selector"]

    with pytest.raises(kube.KubeError) as caught:
        kube.apply(cluster, manifest)
    assert caught.value.status == 422
    assert "invalid" in str(caught.value) and "spec.selector" in str(caught.value)


def test_apply_of_an_unknown_kind_says_so(cluster):
    with pytest.raises(kube.KubeError, match="does not manage Widget objects"):
        kube.apply(cluster, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


def test_label_selectors_filter_lists(cluster, ns):
    for name, labels in [("a", {"tier": "web", "release": "r1"}), ("b", {"tier": "db"}), ("c", {"tier": "cache", "release": "r2"})]:
        kube.apply(cluster, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels}, "data": {"k": "v"}})

    def names(selector):
        return [o["metadata"]["name"] for o in kube.list_objects(cluster, "v1", "ConfigMap", ns, selector)]

    assert names("") == ["a", "b", "c"]
    assert names("tier=web") == ["a"]
    assert names("tier!=web") == ["b", "c"]
    assert names("release") == ["a", "c"]
    assert names("!release") == ["b"]
    assert names("tier in (web,db)") == ["a", "b"]
    assert names("tier notin (web,db),release") == ["c"]
    assert kube.list_objects(cluster, "v1", "ConfigMap", ns, "tier=web")[0]["kind"] == "ConfigMap"


# --- rollouts -------------------------------------------------------------------------------


def test_rollout_becomes_ready(cluster, ns):
    kube.apply(cluster, deployment(replicas=3))

    status = wait_for_rollout(cluster, ns, "web")

    assert status["done"] is True
    assert status["failure"] is None
    assert (status["desired"], status["updated"], status["ready"], status["available"]) == (3, 3, 3, 3)
    assert status["observed_generation"] == status["generation"] == 1
    assert status["progressing_reason"] == "NewReplicaSetAvailable"


def test_rollout_is_not_done_right_after_a_change(cluster, ns):
    kube.apply(cluster, deployment())

    status = kube.deployment_status(cluster, ns, "web")

    assert status["done"] is False
    assert status["failure"] is None


def test_failed_rollout_reports_deadline_exceeded(sandbox, cluster, ns):
    answer = post_json(f"{sandbox.url}/sandbox/faults", {"deployment": "web-*", "fault": "fail_rollout"})
    assert answer["faults"] == {"web-*": "fail_rollout"}
    kube.apply(cluster, deployment(name="web-green"))

    status = wait_for_rollout(cluster, ns, "web-green")

    assert status["done"] is False
    assert status["progressing_reason"] == "ProgressDeadlineExceeded"
    assert status["failure"].startswith("rollout deadline exceeded")


def test_image_pull_failure_is_reported_from_the_pods(sandbox, cluster, ns):
    sandbox.set_fault("web", "image_pull")
    kube.apply(cluster, deployment(image="registry.example/web:missing"))

    status = wait_for_rollout(cluster, ns, "web")

    assert status["ready"] == 0
    assert status["failure"].startswith("image pull error:")
    assert "registry.example/web:missing" in status["failure"]


def test_clearing_a_fault_lets_the_rollout_finish(sandbox, cluster, ns):
    sandbox.set_fault("web", "never_ready")
    kube.apply(cluster, deployment())
    time.sleep(0.3)  # longer than the sandbox's rollout delay: a healthy rollout would be done by now
    assert kube.deployment_status(cluster, ns, "web")["done"] is False

    sandbox.set_fault("web", "clear")

    assert wait_for_rollout(cluster, ns, "web")["done"] is True


def test_exceeding_a_quota_is_forbidden(cluster, ns):
    kube.apply(cluster, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "limits", "namespace": ns},
                         "spec": {"hard": {"count/deployments.apps": "1", "pods": "4"}}})
    kube.apply(cluster, deployment(name="web", replicas=2))

    with pytest.raises(kube.KubeError) as too_many:
        kube.apply(cluster, deployment(name="api"))
    with pytest.raises(kube.KubeError) as too_big:
        kube.apply(cluster, deployment(name="web", replicas=5))

    assert too_many.value.status == 403
    assert "exceeded quota: limits" in str(too_many.value) and "count/deployments.apps=1" in str(too_many.value)
    assert too_big.value.status == 403 and "pods=4" in str(too_big.value)
    quota = kube.get(cluster, "v1", "ResourceQuota", ns, "limits")
    assert quota["status"]["used"] == {"count/deployments.apps": "1", "pods": "2"}


# --- services and probes --------------------------------------------------------------------


def test_merge_patch_switches_the_service_selector(cluster, ns):
    kube.apply(cluster, service(selector={"app": "web", "color": "blue"}))

    patched = kube.patch_merge(cluster, "v1", "Service", ns, "web", {"spec": {"selector": {"color": "green"}}})

    assert patched["spec"]["selector"] == {"app": "web", "color": "green"}
    assert kube.get(cluster, "v1", "Service", ns, "web")["spec"]["selector"]["color"] == "green"


def test_probe_through_the_service_proxy(sandbox, cluster, ns):
    kube.apply(cluster, deployment(name="web-blue", labels={"app": "web", "color": "blue"}))
    kube.apply(cluster, service(selector={"app": "web", "color": "blue"}))
    assert wait_for_rollout(cluster, ns, "web-blue")["done"]

    ok, detail = kube.probe_service(cluster, ns, "web", 80, "/healthz")

    assert ok is True
    assert detail.startswith("HTTP 200") and '"ok"' in detail


def test_probe_fails_without_ready_endpoints(cluster, ns):
    kube.apply(cluster, service(selector={"app": "web", "color": "green"}))

    ok, detail = kube.probe_service(cluster, ns, "web", "http", "/healthz")

    assert ok is False
    assert detail.startswith("HTTP 503") and "no endpoints available" in detail


def test_probe_fails_for_a_deployment_faulted_with_fail_probe(sandbox, cluster, ns):
    sandbox.set_fault("web-green", "fail_probe")
    kube.apply(cluster, deployment(name="web-green", labels={"app": "web", "color": "green"}))
    kube.apply(cluster, service(selector={"app": "web", "color": "green"}))
    assert wait_for_rollout(cluster, ns, "web-green")["done"]

    ok, detail = kube.probe_service(cluster, ns, "web", 80, "/healthz")

    assert ok is False
    assert detail.startswith("HTTP 503")


# --- credentials, reachability, kubeconfig ----------------------------------------------------


def test_wrong_token_gives_the_credentials_sentence(sandbox):
    with pytest.raises(kube.KubeError) as caught:
        kube.check_cluster(FakeCluster(server=sandbox.url, token="wrong"))

    assert caught.value.status == 401
    assert str(caught.value) == (
        "the cluster rejected Gantry's credentials (401 Unauthorized); update the cluster's token or kubeconfig"
    )


def test_unreachable_cluster_gives_the_connection_sentence():
    with SandboxCluster() as stopped:
        url = stopped.url  # a port that was free a moment ago and is closed now

    with pytest.raises(kube.KubeError) as caught:
        kube.check_cluster(FakeCluster(server=url, token=TOKEN))

    assert caught.value.status is None
    assert str(caught.value).startswith(f"cannot reach the cluster at {url}: connection refused")
    assert "check the server address and that the cluster is running" in str(caught.value)


def kubeconfig_text(url, token, current="sandbox"):
    return yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": {"server": url}}],
        "users": [{"name": "gantry", "user": {"token": token}}, {"name": "stranger", "user": {"token": "nope"}}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "gantry"}},
                     {"name": "locked-out", "context": {"cluster": "sandbox", "user": "stranger"}}],
        "current-context": current,
    })


def test_kubeconfig_text_mode_connects_with_its_context(sandbox, cluster, ns):
    text = kubeconfig_text(sandbox.url, TOKEN)
    by_kubeconfig = FakeCluster(mode="kubeconfig", kubeconfig=text)
    locked_out = FakeCluster(mode="kubeconfig", kubeconfig=text, context="locked-out")

    assert kube.check_cluster(by_kubeconfig)["namespaces"] == 1
    assert kube.validate_kubeconfig(text) == ["sandbox", "locked-out"]
    with pytest.raises(kube.KubeError) as caught:
        kube.check_cluster(locked_out)
    assert caught.value.status == 401


def test_kubeconfig_path_mode(sandbox, cluster, tmp_path):
    path = tmp_path / "config"
    path.write_text(kubeconfig_text(sandbox.url, TOKEN))

    assert kube.check_cluster(FakeCluster(mode="kubeconfig_path", kubeconfig_path=str(path)))["git_version"] == "v1.30.0"
    with pytest.raises(kube.KubeError, match="cannot read the kubeconfig file"):
        kube.check_cluster(FakeCluster(mode="kubeconfig_path", kubeconfig_path=str(tmp_path / "missing")))


def test_parse_kubeconfig_refuses_text_that_is_not_yaml():
    with pytest.raises(ValueError, match="not valid YAML"):
        kube.parse_kubeconfig("clusters: [unclosed")


def test_parse_kubeconfig_refuses_a_file_without_contexts():
    with pytest.raises(ValueError, match="no contexts"):
        kube.parse_kubeconfig("apiVersion: v1\nkind: Config\nclusters: [{name: a, cluster: {server: 'https://x'}}]\nusers: [{name: u, user: {}}]\n")


def test_parse_kubeconfig_refuses_an_unknown_context():
    with pytest.raises(ValueError, match="no context named 'prod'; its contexts are: sandbox, locked-out"):
        kube.parse_kubeconfig(kubeconfig_text("http://127.0.0.1:1", "t"), context="prod")


def test_kubeconfig_mode_with_an_unknown_context_is_a_config_error():
    broken = FakeCluster(mode="kubeconfig", kubeconfig=kubeconfig_text("http://127.0.0.1:1", "t"), context="prod")

    with pytest.raises(kube.KubeError) as caught:
        kube.check_cluster(broken)
    assert caught.value.reason == "ConfigError" and "no context named 'prod'" in str(caught.value)


# --- the official client, unchanged, against the sandbox ------------------------------------------


def test_the_official_typed_clients_work_against_the_sandbox(cluster, ns):
    api = kube.api_client_for(cluster)
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    networking, autoscaling = k8s.NetworkingV1Api(api), k8s.AutoscalingV2Api(api)

    apps.create_namespaced_deployment(ns, deployment())
    with pytest.raises(ApiException) as exists:
        apps.create_namespaced_deployment(ns, deployment())
    core.create_namespaced_service(ns, service(selector={"app": "web", "color": "blue"}))
    core.patch_namespaced_service("web", ns, {"spec": {"selector": {"color": "green"}}})  # strategic merge patch
    core.patch_namespaced_service("web", ns, [{"op": "replace", "path": "/spec/selector/app", "value": "shop"}])
    networking.create_namespaced_network_policy(ns, {"metadata": {"name": "deny-all"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    networking.create_namespaced_ingress(ns, {"metadata": {"name": "web"}, "spec": {"rules": [{"host": "shop.example"}]}})
    autoscaling.create_namespaced_horizontal_pod_autoscaler(ns, {
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5},
    })
    config_map = core.create_namespaced_config_map(ns, {"metadata": {"name": "settings"}, "data": {"a": "1"}})
    core.patch_namespaced_config_map("settings", ns, {"data": {"b": "2"}})
    config_map.data = {"a": "stale"}
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("settings", ns, config_map)

    assert exists.value.status == 409 and json.loads(exists.value.body)["reason"] == "AlreadyExists"
    assert stale.value.status == 409 and json.loads(stale.value.body)["reason"] == "Conflict"
    assert core.read_namespaced_service("web", ns).spec.selector == {"app": "shop", "color": "green"}
    assert [d.metadata.name for d in apps.list_deployment_for_all_namespaces().items] == ["web"]
    assert networking.read_namespaced_network_policy("deny-all", ns).spec.policy_types == ["Ingress"]
    assert networking.list_namespaced_ingress(ns).items[0].spec.rules[0].host == "shop.example"
    assert autoscaling.read_namespaced_horizontal_pod_autoscaler("web", ns).spec.max_replicas == 5
    assert apps.read_namespaced_deployment_scale("web", ns).spec.replicas == 2


def test_sandbox_state_and_reset_endpoints(sandbox, cluster, ns):
    kube.apply(cluster, deployment())

    with urllib.request.urlopen(f"{sandbox.url}/sandbox/state", timeout=5) as response:
        state = json.loads(response.read())
    post_json(f"{sandbox.url}/sandbox/reset", {})

    assert [d["metadata"]["name"] for d in state["objects"]["deployments.apps"]] == ["web"]
    assert kube.get(cluster, "v1", "Namespace", "", ns) is None

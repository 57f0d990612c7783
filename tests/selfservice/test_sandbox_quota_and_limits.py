"""The sandbox charges pods to ResourceQuotas and defaults them from LimitRanges, as an API server does.
Everything goes over HTTP through portal.kube."""
import pytest

from portal import kube
from portal.quantity import format_bytes, format_cpu, parse


class Target:
    """The attributes portal.kube needs of a cluster."""

    def __init__(self, url):
        self.mode, self.server, self.ca_data, self.insecure, self.name = "server", url, "", False, "sandbox"
        self.kubeconfig_path, self.context = "", ""

    def get_token(self):
        return ""


@pytest.fixture
def target(sandbox):
    target = Target(sandbox.url)
    kube.ensure_namespace(target, "team-a", {})
    return target


def deployment(name, replicas=1, resources=None):
    container = {"name": name, "image": "registry.example.com/app:1"}
    if resources is not None:
        container["resources"] = resources
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "team-a"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}}


QUOTA = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "team-a"},
         "spec": {"hard": {"requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "2Gi"}}}
LIMITS = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l", "namespace": "team-a"},
          "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "512Mi"},
                               "defaultRequest": {"cpu": "250m", "memory": "256Mi"},
                               "max": {"cpu": "1", "memory": "1Gi"}, "min": {"cpu": "100m", "memory": "128Mi"}}]}}


def test_quantities_read_and_print_like_the_api():
    assert parse("250m") * 4 == 1
    assert format_cpu(parse("250m") * 3) == "750m"
    assert format_bytes(parse("256Mi") * 4) == "1Gi"


def test_quota_status_counts_requests_and_limits_of_running_pods(target):
    kube.apply(target, QUOTA)
    kube.apply(target, deployment("web", replicas=2, resources={"requests": {"cpu": "250m", "memory": "256Mi"},
                                                                "limits": {"cpu": "500m", "memory": "512Mi"}}))
    status = kube.get(target, "v1", "ResourceQuota", "team-a", "q")["status"]
    assert status["hard"]["requests.cpu"] == "1"
    assert status["used"] == {"requests.cpu": "500m", "requests.memory": "512Mi", "limits.cpu": "1",
                              "limits.memory": "1Gi"}


def test_a_deployment_past_the_quota_is_refused_in_the_api_servers_words(target):
    kube.apply(target, QUOTA)
    with pytest.raises(kube.KubeError) as refused:
        kube.apply(target, deployment("big", replicas=3, resources={"requests": {"cpu": "500m", "memory": "256Mi"},
                                                                    "limits": {"cpu": "500m", "memory": "256Mi"}}))
    assert refused.value.status == 403
    assert "exceeded quota: q" in str(refused.value)
    assert "requests.cpu=1500m" in str(refused.value)
    assert "raise the quota or ask for fewer resources" in str(refused.value)


def test_without_a_limit_range_a_quota_needs_every_container_to_say_what_it_uses(target):
    kube.apply(target, QUOTA)
    with pytest.raises(kube.KubeError) as refused:
        kube.apply(target, deployment("bare"))
    assert "failed quota: q: must specify" in str(refused.value)
    assert "requests.cpu" in str(refused.value)


def test_a_limit_range_fills_in_missing_resources_and_the_quota_counts_them(target):
    kube.apply(target, QUOTA)
    kube.apply(target, LIMITS)
    kube.apply(target, deployment("bare", replicas=2))
    used = kube.get(target, "v1", "ResourceQuota", "team-a", "q")["status"]["used"]
    assert used["requests.cpu"] == "500m" and used["limits.memory"] == "1Gi"
    pods = kube.list_objects(target, "v1", "Pod", "team-a", "app=bare")
    assert pods and pods[0]["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}}
    live = kube.get(target, "apps/v1", "Deployment", "team-a", "bare")
    assert "resources" not in live["spec"]["template"]["spec"]["containers"][0]  # the object stays as applied


def test_a_container_above_the_limit_range_maximum_is_refused(target):
    kube.apply(target, LIMITS)
    with pytest.raises(kube.KubeError) as refused:
        kube.apply(target, deployment("huge", resources={"limits": {"cpu": "2", "memory": "512Mi"}}))
    assert "maximum cpu usage per Container is 1, but limit is 2" in str(refused.value)


def test_network_policies_and_role_bindings_are_stored(target):
    kube.apply(target, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": {"name": "deny", "namespace": "team-a"}, "spec": {"podSelector": {}}})
    kube.apply(target, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                        "metadata": {"name": "team", "namespace": "team-a"},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                        "subjects": [{"kind": "Group", "name": "shop", "apiGroup": "rbac.authorization.k8s.io"}]})
    policy = kube.get(target, "networking.k8s.io/v1", "NetworkPolicy", "team-a", "deny")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    binding = kube.get(target, "rbac.authorization.k8s.io/v1", "RoleBinding", "team-a", "team")
    assert binding["subjects"][0]["name"] == "shop"


def test_the_sandbox_can_be_told_to_refuse_writes_of_a_resource(sandbox, target):
    sandbox.refuse_writes("resourcequotas", "quotas are managed by the platform team")
    with pytest.raises(kube.KubeError) as refused:
        kube.apply(target, QUOTA)
    assert refused.value.status == 403 and "quotas are managed by the platform team" in str(refused.value)
    sandbox.refuse_writes("resourcequotas", None)
    kube.apply(target, QUOTA)

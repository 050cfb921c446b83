"""scripts/validate_k8s.py: what lint-deploy relies on to fail."""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from .conftest import ROOT

spec = importlib.util.spec_from_file_location("validate_k8s", ROOT / "scripts" / "validate_k8s.py")
assert spec is not None and spec.loader is not None
validate_k8s = importlib.util.module_from_spec(spec)
spec.loader.exec_module(validate_k8s)

GOOD_POD = {
    "automountServiceAccountToken": False,
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "c",
            "image": "i",
            "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            "resources": {"requests": {"cpu": "10m"}, "limits": {"memory": "64Mi"}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 80}},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": 80}},
        }
    ],
}


def deployment(**spec) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": GOOD_POD}} | spec,
    }


def run(tmp_path, *objects) -> int:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    return validate_k8s.main([str(path)])


def test_a_good_deployment_passes(tmp_path):
    assert run(tmp_path, deployment(replicas=2)) == 0


def test_a_schema_error_fails_for_each_version(tmp_path, capsys):
    assert run(tmp_path, deployment(replicas="two")) == 1
    out = capsys.readouterr().out
    assert "1.30: spec/replicas" in out and f"{validate_k8s.kubernetes_validate.utils.latest_version()[:4]}" in out


def test_an_unknown_kind_fails_but_allowed_crds_pass(tmp_path):
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert run(tmp_path, widget) == 1
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "m"}, "spec": {}}
    assert run(tmp_path, monitor) == 0


@pytest.mark.parametrize(
    "breakage",
    [
        lambda p: p["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
        lambda p: p["containers"][0]["securityContext"].update(capabilities={"drop": []}),
        lambda p: p.update(automountServiceAccountToken=True),
        lambda p: p["containers"][0].pop("readinessProbe"),
        lambda p: p["containers"][0]["resources"].pop("limits"),
    ],
)
def test_policy_violations_fail(tmp_path, breakage):
    import copy

    bad = deployment(replicas=1)
    bad["spec"]["template"]["spec"] = copy.deepcopy(GOOD_POD)
    breakage(bad["spec"]["template"]["spec"])
    assert run(tmp_path, bad) == 1


def test_replicas_under_an_hpa_fail(tmp_path):
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "d"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}, "maxReplicas": 3},
    }
    assert run(tmp_path, deployment(replicas=2), hpa) == 1
    assert run(tmp_path, deployment(), hpa) == 0


def job(pod: dict) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {"template": {"spec": pod | {"restartPolicy": "Never"}}},
    }


def test_a_job_is_held_to_the_pod_policy_but_needs_no_probes(tmp_path):
    import copy

    pod: dict = copy.deepcopy(GOOD_POD)
    container = pod["containers"][0]
    for probe in ("livenessProbe", "readinessProbe"):
        container.pop(probe)
    assert run(tmp_path, job(pod)) == 0
    container["securityContext"]["readOnlyRootFilesystem"] = False
    assert run(tmp_path, job(pod)) == 1

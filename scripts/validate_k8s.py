"""Validate Kubernetes manifests offline: schemas of several Kubernetes versions, plus policy.

    python scripts/validate_k8s.py [--kubernetes-version 1.30 --kubernetes-version latest] FILE...

Each object (multi-document YAML; `-` reads stdin) is checked against the strict JSON schemas
that kubernetes-validate bundles, for every version asked for ("latest" is the newest it
has).  A kind with no schema fails, unless it is one of ALLOWED_CRDS.  Then Redfile's
policy: hardened pods (Jobs' too), probes, resources, no mutable label in a StatefulSet's selector or
volumeClaimTemplates, no replicas under an HPA.  Exit status 1 when anything fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

# CRDs whose schemas are not in the Kubernetes release: (apiVersion, kind).
ALLOWED_CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
MUTABLE_LABELS = ("app.kubernetes.io/version", "helm.sh/chart")
WORKLOADS = ("Deployment", "StatefulSet", "Job", "Pod")
# Workloads whose containers run to completion: no liveness or readiness probe.
RUN_TO_COMPLETION = ("Job", "Pod")


def load(paths: list[str]) -> list[tuple[str, dict]]:
    objects = []
    for path in paths:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            if doc.get("kind") == "List":
                objects += [(path, item) for item in doc.get("items", [])]
            else:
                objects.append((path, doc))
    return objects


def name(obj: dict) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def schema_problems(obj: dict, versions: list[str]) -> list[str]:
    if (obj.get("apiVersion"), obj.get("kind")) in ALLOWED_CRDS:
        return []
    problems = []
    for version in versions:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except SchemaNotFoundError:
            problems.append(f"{version}: no schema for {obj.get('apiVersion')} {obj.get('kind')} (and not an allowed CRD)")
        except ValidationError as exc:
            where = "/".join(str(p) for p in exc.path) or "(top)"
            problems.append(f"{version}: {where}: {exc.message}")
    return problems


def pod_spec(obj: dict) -> dict:
    if obj["kind"] == "Pod":
        return obj.get("spec", {})
    return obj.get("spec", {}).get("template", {}).get("spec", {})


def policy_problems(obj: dict, hpa_targets: set[str]) -> list[str]:
    kind = obj.get("kind")
    problems = []
    if kind in WORKLOADS:
        spec = pod_spec(obj)
        pod_sc = spec.get("securityContext", {})
        if spec.get("automountServiceAccountToken") is not False:
            problems.append("automountServiceAccountToken must be false")
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            sc = c.get("securityContext", {})
            where = f"container {c.get('name')}"
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem must be true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation must be false")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities must drop ALL")
            if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
                problems.append(f"{where}: runAsNonRoot must be true")
            seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}
            if seccomp.get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile must be RuntimeDefault")
            resources = c.get("resources", {})
            if "memory" not in resources.get("limits", {}) or not resources.get("requests"):
                problems.append(f"{where}: needs resource requests and a memory limit")
        if kind not in RUN_TO_COMPLETION:
            for c in spec.get("containers", []):
                for probe in ("livenessProbe", "readinessProbe"):
                    if probe not in c:
                        problems.append(f"container {c.get('name')}: {probe} missing")
    if kind == "StatefulSet":
        selector = obj["spec"]["selector"].get("matchLabels", {})
        for label in MUTABLE_LABELS:
            if label in selector:
                problems.append(f"selector holds the mutable label {label}")
            for vct in obj["spec"].get("volumeClaimTemplates", []):
                if label in vct.get("metadata", {}).get("labels", {}):
                    problems.append(f"volumeClaimTemplate {vct['metadata'].get('name')} holds the mutable label {label}")
    if kind == "Deployment":
        selector = obj["spec"]["selector"].get("matchLabels", {})
        for label in MUTABLE_LABELS:
            if label in selector:
                problems.append(f"selector holds the mutable label {label}")
        if obj["metadata"]["name"] in hpa_targets and "replicas" in obj["spec"]:
            problems.append("spec.replicas is set although an HPA scales this Deployment")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--kubernetes-version", action="append", dest="versions")
    parser.add_argument("--no-policy", action="store_true", help="schemas only")
    args = parser.parse_args(argv)
    latest = kubernetes_validate.utils.latest_version().rsplit(".", 1)[0]
    versions = [latest if v == "latest" else v for v in (args.versions or ["1.30", "latest"])]

    objects = load(args.files)
    if not objects:
        print(f"validate_k8s: no objects in {' '.join(args.files)}", file=sys.stderr)
        return 1
    hpa_targets = {o["spec"]["scaleTargetRef"]["name"] for _, o in objects if o.get("kind") == "HorizontalPodAutoscaler"}
    failed = 0
    for path, obj in objects:
        problems = schema_problems(obj, versions)
        if not args.no_policy:
            problems += [f"policy: {p}" for p in policy_problems(obj, hpa_targets)]
        for problem in problems:
            print(f"FAIL {path}: {name(obj)}: {problem}")
        failed += bool(problems)
    print(f"validate_k8s: {len(objects)} objects, {failed} failed (Kubernetes {', '.join(versions)}; {', '.join(args.files)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

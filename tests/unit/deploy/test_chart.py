"""The Helm chart, rendered by the real helm: the properties the issue asks for, one by one."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from .conftest import CHART, ROOT, SERVICES, acl_users, find

DEFAULT = ["-f", str(CHART / "ci" / "default-values.yaml")]
PRODUCTION = ["-f", str(CHART / "ci" / "production-values.yaml")]
MUTABLE = ("app.kubernetes.io/version", "helm.sh/chart")


def test_secrets_are_required_not_generated(render):
    done = render(check=False)
    assert done.returncode != 0
    assert "is required" in done.stderr
    # With the values given, two renders are identical: nothing random is ever made up.
    first = subprocess.run([str(ROOT / ".tools/bin/helm"), "template", "r", str(CHART), *DEFAULT], capture_output=True, text=True)
    second = subprocess.run([str(ROOT / ".tools/bin/helm"), "template", "r", str(CHART), *DEFAULT], capture_output=True, text=True)
    assert first.returncode == 0 and first.stdout == second.stdout


def test_existing_secrets_replace_the_chart_secrets(render):
    objects = render(*PRODUCTION)
    assert find(objects, "Secret") == []
    auth = find(objects, "Deployment", "redfile-auth")[0]["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in auth["env"] if "valueFrom" in e}
    assert refs["APP_SECRET_KEY"] == "redfile-app"
    assert refs["REDIS_PASSWORD"] == "redfile-redis"


def test_changing_a_secret_or_config_rolls_the_pods(render):
    def annotations(*extra):
        objects = render(*DEFAULT, *extra)
        return {
            o["metadata"]["name"]: o["spec"]["template"]["metadata"]["annotations"]
            for o in objects
            if o["kind"] in ("Deployment", "StatefulSet")
        }

    base = annotations()
    rotated = annotations("--set-string", "secrets.userTokenKeys=k2:" + "n" * 40 + "\\,k1:" + "o" * 40)
    for svc in SERVICES:
        assert base[f"redfile-{svc}"]["checksum/secret"] != rotated[f"redfile-{svc}"]["checksum/secret"]
    assert base["redfile-redis"] == rotated["redfile-redis"]  # Redis does not read the app secrets
    config = annotations("--set", "config.logLevel=DEBUG")
    assert base["redfile-files"]["checksum/config"] != config["redfile-files"]["checksum/config"]
    redis_pw = annotations("--set", "redis.auth.passwords.files=another-password")
    assert base["redfile-redis"]["checksum/secret"] != redis_pw["redfile-redis"]["checksum/secret"]
    assert base["redfile-files"]["checksum/redis-secret"] != redis_pw["redfile-files"]["checksum/redis-secret"]


def test_redis_statefulset_selector_and_claims_have_no_mutable_labels(render):
    sts = find(render(*DEFAULT), "StatefulSet", "redfile-redis")[0]
    assert not set(sts["spec"]["selector"]["matchLabels"]) & set(MUTABLE)
    claims = sts["spec"]["volumeClaimTemplates"]
    assert [c["metadata"]["name"] for c in claims] == ["data"]
    assert not set(claims[0]["metadata"].get("labels", {})) & set(MUTABLE)
    assert sts["spec"]["serviceName"] == "redfile-redis-headless"
    headless = find(render(*DEFAULT), "Service", "redfile-redis-headless")[0]
    assert headless["spec"]["clusterIP"] == "None"


def test_redis_runs_with_aof_and_the_acl_file_and_tolerates_a_long_load(render):
    objects = render(*DEFAULT)
    spec = find(objects, "StatefulSet", "redfile-redis")[0]["spec"]["template"]["spec"]
    redis = spec["containers"][0]
    assert redis["command"][:4] == ["redis-server", "/etc/redfile/redis/redis.conf", "--aclfile", "/run/redis-acl/users.acl"]
    startup = redis["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 3600
    assert "alive" in redis["livenessProbe"]["exec"]["command"]
    config = find(objects, "ConfigMap", "redfile-redis")[0]["data"]
    assert "appendonly yes" in config["redis.conf"]
    assert config["users.acl"].strip() == (CHART / "files/redis/users.acl").read_text().strip()
    secret = find(objects, "Secret", "redfile-redis")[0]
    assert set(secret["data"]) == {u for u, rules in acl_users().items() if rules[0] == "on"}


def test_services_are_hardened(render):
    objects = render(*DEFAULT)
    for svc in SERVICES:
        pod = find(objects, "Deployment", f"redfile-{svc}")[0]["spec"]["template"]["spec"]
        c = pod["containers"][0]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        assert {m["mountPath"] for m in c["volumeMounts"]} == {"/tmp", "/var/lib/redfile/metrics"}
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        # liveness from the gunicorn master's port, which never waits on Redis or request threads (issue 18)
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert c["readinessProbe"]["httpGet"]["port"] == "http"
        # a hung Redis fails readiness (out of the Service) long before liveness could restart anything
        assert c["livenessProbe"]["timeoutSeconds"] >= 1 and c["readinessProbe"]["timeoutSeconds"] >= 3
        env = {e["name"]: e for e in c["env"]}
        assert env["REDIS_USERNAME"]["value"] == f"redfile-{svc}"
        assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == f"redfile-{svc}"
        sa = find(objects, "ServiceAccount", f"redfile-{svc}")[0]
        assert sa["automountServiceAccountToken"] is False


def test_hpa_leaves_replicas_out(render):
    objects = render(*PRODUCTION)
    for svc in SERVICES:
        assert "replicas" not in find(objects, "Deployment", f"redfile-{svc}")[0]["spec"]
        assert find(objects, "HorizontalPodAutoscaler", f"redfile-{svc}")
    assert find(render(*DEFAULT), "Deployment", "redfile-files")[0]["spec"]["replicas"] == 2


def test_only_the_services_reach_redis(render):
    policy = find(render(*DEFAULT), "NetworkPolicy", "redfile-redis")[0]
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    assert peer["podSelector"]["matchExpressions"][0]["values"] == ["auth", "files", "admin"]
    assert "namespaceSelector" not in peer


def test_the_ingress_routes_like_the_gateway_and_never_exposes_internal(render):
    objects = render(*DEFAULT)
    (ingress,) = find(objects, "Ingress")
    paths = {p["path"]: p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert paths == {"/auth": "redfile-auth", "/admin": "redfile-admin", "/internal": "redfile-internal-blocked", "/": "redfile-files"}
    blocked = find(objects, "Service", "redfile-internal-blocked")[0]
    assert "selector" not in blocked["spec"]


def test_monitoring_objects_are_behind_flags(render):
    kinds = {o["kind"] for o in render(*DEFAULT)}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    objects = render(*PRODUCTION)
    (monitor,) = find(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True  # the rules group by the app's `service`
    # The rules and the dashboard are the operations files, as they are.
    (rule,) = find(objects, "PrometheusRule")
    source = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    assert rule["spec"] == source
    dashboard = find(objects, "ConfigMap", "redfile-dashboard")[0]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["redfile.json"]) == json.loads((CHART / "files" / "grafana-dashboard.json").read_text())


def test_external_redis_replaces_the_statefulset(render):
    objects = render("-f", str(CHART / "ci" / "external-redis-values.yaml"))
    assert not find(objects, "StatefulSet")
    config = find(objects, "ConfigMap", "redfile")[0]["data"]
    assert config["REDIS_URL"] == "rediss://redis.example.net:6380/0"
    done = render(*DEFAULT, "--set", "redis.enabled=false", "--set", "externalRedis.url=redis://u:p@h:6379/0", check=False)
    assert done.returncode != 0  # credentials never go in the URL


def test_values_schema_rejects_unknown_keys_and_bad_values(render):
    assert render(*DEFAULT, "--set", "auth.replicas=3", check=False).returncode != 0
    assert render(*DEFAULT, "--set", "redis.persistence.size=lots", check=False).returncode != 0


def test_helm_test_pod_logs_in_and_uploads(render):
    objects = render(*DEFAULT)
    pod = find(objects, "Pod", "redfile-test")[0]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = find(objects, "ConfigMap", "redfile-test")[0]["data"]["smoke.py"]
    assert "/upload_chunk" in script and "/auth/login" in script


@pytest.mark.parametrize("values", sorted(p.name for p in (CHART / "ci").glob("*-values.yaml")))
def test_every_ci_values_file_renders(render, values):
    assert render("-f", str(CHART / "ci" / values))


def test_share_links_are_built_on_the_public_url(render):
    """PUBLIC_URL: config.publicUrl, else the first ingress host (https when its TLS entry names it)."""

    def public_url(*extra):
        return find(render(*extra), "ConfigMap", "redfile")[0]["data"]["PUBLIC_URL"]

    assert public_url(*DEFAULT) == "http://redfile.local"
    assert public_url(*PRODUCTION) == "https://files.example.com"
    assert public_url(*DEFAULT, "--set", "config.publicUrl=https://share.example.org/redfile") == "https://share.example.org/redfile"
    assert public_url(*DEFAULT, "--set", "ingress.enabled=false") == ""  # then the proxy's X-Forwarded-Host, if trusted
    refused = render(*DEFAULT, "--set", "config.publicUrl=ftp://x", check=False)
    assert refused.returncode != 0 and "publicUrl" in refused.stderr

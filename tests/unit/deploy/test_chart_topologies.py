"""The chart's Redis topologies (redis.mode), rendered by the real helm: what each values file of ci/ sets up."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import CHART, REDIS_FILES, SERVICES, find

CI = CHART / "ci"
HEADLESS = "redfile-redis-headless"
# (REDIS_MODE the services get, whether the chart runs Redis) per values file of ci/
MODES = {
    "default-values.yaml": ("standalone", "standalone"),
    "minimal-values.yaml": ("standalone", "external"),
    "production-values.yaml": ("standalone", "standalone"),
    "external-redis-values.yaml": ("standalone", "external"),
    "sentinel-values.yaml": ("sentinel", "sentinel"),
    "cluster-values.yaml": ("cluster", "cluster"),
    "external-sentinel-values.yaml": ("sentinel", "external"),
    "external-cluster-values.yaml": ("cluster", "external"),
}
APPS = {"auth", "files", "admin"}
# Who may reach which Redis port, per topology the chart runs: {port: components allowed}.
REDIS_PEERS = {
    "standalone": {6379: APPS},
    "sentinel": {6379: APPS | {"redis"}, 26379: APPS | {"redis"}},
    "cluster": {6379: APPS | {"redis", "redis-bootstrap"}, 16379: {"redis"}},
}


def values(name: str) -> list[str]:
    return ["-f", str(CI / name)]


def app_env(objects: list[dict], svc: str) -> dict[str, dict]:
    """A service's environment: its ConfigMap (envFrom) and its own variables (value or valueFrom)."""
    container = find(objects, "Deployment", f"redfile-{svc}")[0]["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, dict] = {}
    for source in container.get("envFrom", []):
        config = find(objects, "ConfigMap", source["configMapRef"]["name"])[0]["data"]
        env |= {k: {"value": v} for k, v in config.items()}
    return env | {e["name"]: e for e in container["env"]}


def test_every_topology_has_a_ci_values_file():
    assert sorted(p.name for p in CI.glob("*-values.yaml")) == sorted(MODES)


@pytest.mark.parametrize("name", sorted(MODES))
def test_every_service_gets_the_redis_mode_of_its_values_file(render, name):
    objects = render(*values(name))
    mode, run = MODES[name]
    for svc in SERVICES:
        env = app_env(objects, svc)
        assert env["REDIS_MODE"]["value"] == mode, svc
        assert ("REDIS_SENTINELS" in env) == (mode == "sentinel")
        assert ("REDIS_SENTINEL_MASTER" in env) == (mode == "sentinel")
        assert env["REDIS_WAIT_REPLICAS"]["value"].isdigit()
    assert bool(find(objects, "StatefulSet", "redfile-redis")) == (run != "external")


def test_bundled_cluster_runs_cluster_nodes_with_hostnames_and_nodes_conf_on_the_volume(render):
    objects = render(*values("cluster-values.yaml"))
    sts = find(objects, "StatefulSet", "redfile-redis")[0]
    assert sts["spec"]["replicas"] == 3 * (1 + 1)  # primaries x (1 + replicas per primary), from the values
    assert sts["spec"]["podManagementPolicy"] == "Parallel"  # every node up before the bootstrap
    redis = sts["spec"]["template"]["spec"]["containers"][0]
    args = " ".join(redis["command"] + redis.get("args", []))
    for option in (
        "--cluster-enabled yes",
        "--cluster-config-file /data/nodes.conf",
        "--cluster-port 16379",
        "--cluster-preferred-endpoint-type hostname",
        f"--cluster-announce-hostname $(POD_NAME).{HEADLESS}.$(POD_NAMESPACE).svc",
    ):
        assert option in args
    assert {p["containerPort"] for p in redis["ports"]} == {6379, 16379}
    assert {"name": "data", "mountPath": "/data"} in redis["volumeMounts"]
    headless = find(objects, "Service", HEADLESS)[0]
    assert {p["port"] for p in headless["spec"]["ports"]} == {6379, 16379}
    env = app_env(objects, "files")
    assert env["REDIS_URL"]["value"] == "redis://redfile-redis:6379/0"
    assert env["REDIS_WAIT_REPLICAS"]["value"] == "1"
    (job,) = find(objects, "Job")
    assert set(job["metadata"]["annotations"]["helm.sh/hook"].split(",")) == {"post-install", "post-upgrade"}
    job_env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert job_env["REDIS_CLUSTER_REPLICAS"] == "1"
    assert job_env["REDIS_CLUSTER_NODES"].split() == [f"redfile-redis-{i}.{HEADLESS}.default.svc:6379" for i in range(6)]


def test_bundled_sentinel_runs_a_sentinel_beside_each_redis(render):
    objects = render(*values("sentinel-values.yaml"))
    sts = find(objects, "StatefulSet", "redfile-redis")[0]
    spec = sts["spec"]["template"]["spec"]
    assert sts["spec"]["replicas"] == 3
    containers = {c["name"]: c for c in spec["containers"]}
    assert set(containers) == {"redis", "sentinel"}
    assert {p["containerPort"] for p in containers["sentinel"]["ports"]} == {26379}
    assert "sentinel" in containers["sentinel"]["readinessProbe"]["exec"]["command"]
    env = app_env(objects, "auth")
    pods = [f"redfile-redis-{i}.{HEADLESS}.default.svc:26379" for i in range(3)]
    assert env["REDIS_SENTINELS"]["value"].split(",") == pods
    assert env["REDIS_SENTINEL_MASTER"]["value"] == "redfile"
    assert env["REDIS_SENTINEL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "redfile-redis", "key": "sentinel"}
    secret = find(objects, "Secret", "redfile-redis")[0]
    assert "sentinel" in secret["data"]


@pytest.mark.parametrize("name", ["default-values.yaml", "sentinel-values.yaml", "cluster-values.yaml"])
def test_the_acl_users_and_a_budget_apply_to_every_bundled_node(render, name):
    objects = render(*values(name))
    sts = find(objects, "StatefulSet", "redfile-redis")[0]
    spec = sts["spec"]["template"]["spec"]
    assert spec["initContainers"][0]["name"] == "render-acl"
    redis = next(c for c in spec["containers"] if c["name"] == "redis")
    assert "--aclfile" in redis["command"] + redis.get("args", [])
    config = find(objects, "ConfigMap", "redfile-redis")[0]["data"]
    assert config["users.acl"].strip() == (REDIS_FILES / "users.acl").read_text().strip()
    (pdb,) = find(objects, "PodDisruptionBudget", "redfile-redis")
    assert pdb["spec"]["selector"] == sts["spec"]["selector"]
    for c in spec["containers"]:
        assert c["livenessProbe"] and c["readinessProbe"]


def _port_numbers(objects: list[dict]) -> dict[str, int]:
    names: dict[str, int] = {}
    for o in objects:
        if o["kind"] in ("StatefulSet", "Deployment"):
            for c in o["spec"]["template"]["spec"]["containers"]:
                names |= {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    return names


@pytest.mark.parametrize("name", sorted(MODES))
def test_network_policies_open_exactly_the_redis_ports_of_each_topology(render, name):
    objects = render(*values(name))
    run = MODES[name][1]
    ports = _port_numbers(objects)
    policies = find(objects, "NetworkPolicy", "redfile-redis")
    if run == "external":
        assert policies == []
        return
    (policy,) = policies
    opened: dict[int, set[str]] = {}
    for rule in policy["spec"]["ingress"]:
        for port in rule["ports"]:
            number = ports.get(port["port"], port["port"])
            for peer in rule["from"]:
                assert set(peer) == {"podSelector"}  # no namespace, no IP block
                selector = peer["podSelector"]
                components = set(selector.get("matchLabels", {}).get("app.kubernetes.io/component", "").split()) - {""}
                for expression in selector.get("matchExpressions", []):
                    components |= set(expression["values"])
                opened.setdefault(number, set()).update(components)
    assert opened == REDIS_PEERS[run]
    # and nothing else in the chart opens a Redis port
    for other in find(objects, "NetworkPolicy"):
        if other["metadata"]["name"] != "redfile-redis":
            for rule in other["spec"]["ingress"]:
                assert not {ports.get(p["port"], p["port"]) for p in rule["ports"]} & {6379, 16379, 26379}


def test_redis_enabled_false_is_the_older_spelling_of_external(render):
    old = render(*values("external-redis-values.yaml"))
    new = render(*values("external-redis-values.yaml"), "--set", "redis.enabled=true", "--set", "redis.mode=external")
    assert old == new


def test_contradictions_are_refused(render):
    def refused(*args: str, name: str = "default-values.yaml") -> subprocess.CompletedProcess:
        done = render(*values(name), *args, check=False)
        assert done.returncode != 0, args
        return done

    assert "redis.mode" in refused("--set", "redis.enabled=false", "--set", "redis.mode=cluster").stderr
    refused("--set", "redis.mode=replicated")  # the schema
    assert "waitReplicas" in refused("--set", "redis.waitReplicas=1").stderr  # standalone has no replica
    assert "waitReplicas" in refused("--set", "redis.waitReplicas=2", name="cluster-values.yaml").stderr
    assert "sentinels" in refused("--set", "externalRedis.sentinels=null", name="external-sentinel-values.yaml").stderr
    refused("--set", "redis.cluster.primaries=2", name="cluster-values.yaml")  # a cluster needs 3 primaries

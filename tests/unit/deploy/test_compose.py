"""docker-compose.yml: valid against the Compose Specification, wired to the chart's Redis files and to the tested nginx template."""

from __future__ import annotations

import copy
import json
import re
from importlib import resources

import jsonschema
import pytest
import yaml

from .conftest import ROOT, acl_users

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    path = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    return json.loads(path.read_text())


def test_valid_against_the_compose_spec(compose_schema):
    jsonschema.validate(COMPOSE, compose_schema)


def test_the_schema_check_would_catch_a_mistake(compose_schema):
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["redis"]["healthcheck"]["intervall"] = "5s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, compose_schema)


def test_redis_uses_the_chart_files_and_a_secret_per_enabled_user():
    redis = COMPOSE["services"]["redis"]
    assert "./helm/redfile/files/redis:/etc/redfile/redis:ro" in redis["volumes"]
    enabled = {u for u, rules in acl_users().items() if rules[0] == "on"}
    assert set(redis["secrets"]) == enabled == set(COMPOSE["secrets"])
    command = " ".join(redis["command"])
    assert "render-acl.sh /etc/redfile/redis/users.acl /run/secrets" in command
    assert "--aclfile /run/redis-acl/users.acl" in command


@pytest.mark.parametrize("service", ["auth", "files", "admin"])
def test_each_service_connects_as_its_own_user(service):
    env = COMPOSE["services"][service]["environment"]
    assert env["SERVICE_NAME"] == service
    assert env["REDIS_USERNAME"] == f"redfile-{service}"
    assert env["REDIS_PASSWORD"] == f"${{REDIS_{service.upper()}_PASSWORD:?run scripts/compose-env.sh > .env first}}"
    assert COMPOSE["secrets"][f"redfile-{service}"]["environment"] == f"REDIS_{service.upper()}_PASSWORD"
    assert COMPOSE["services"][service]["read_only"] is True
    assert COMPOSE["services"][service]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_only_the_front_door_publishes_a_port():
    published = {name for name, svc in COMPOSE["services"].items() if svc.get("ports")}
    assert published == {"nginx"}
    assert COMPOSE["services"]["nginx"]["ports"] == [
        f"${{REDFILE_PORT:-8080}}:{COMPOSE['services']['nginx']['environment']['REDFILE_LISTEN']}"
    ]


def test_the_front_door_is_the_official_nginx_image_pinned_by_version_and_digest():
    assert re.fullmatch(r"nginx:\d+\.\d+\.\d+-alpine@sha256:[0-9a-f]{64}", COMPOSE["services"]["nginx"]["image"])


def test_the_front_door_renders_the_template_the_e2e_tests_run():
    nginx = COMPOSE["services"]["nginx"]
    assert "./deploy/nginx/redfile.conf.template:/etc/nginx/templates/redfile.conf.template:ro" in nginx["volumes"]
    env = nginx["environment"]
    names = set(re.findall(r"\$\{(REDFILE_[A-Z_]+)\}", (ROOT / "deploy" / "nginx" / "redfile.conf.template").read_text()))
    assert names == {k for k in env if k.startswith("REDFILE_")}
    # the entrypoint substitutes only the names the filter matches: all of the template's, none of nginx's own
    pattern = re.compile(env["NGINX_ENVSUBST_FILTER"])
    assert all(pattern.search(name) for name in names)
    assert not any(pattern.search(name) for name in ("host", "http_host", "request_id", "remote_addr", "HOSTNAME", "PATH"))
    for service in ("auth", "files", "admin"):
        assert env[f"REDFILE_{service.upper()}_UPSTREAM"] == f"{service}:{COMPOSE['services'][service]['environment']['PORT']}"
        assert nginx["depends_on"][service]["condition"] == "service_healthy"
    # read-only root: what nginx writes (rendered config, temp files, pid) is on tmpfs
    assert nginx["read_only"] is True and {"/etc/nginx/conf.d", "/var/cache/nginx", "/run"} <= set(nginx["tmpfs"])


def test_no_container_runs_development_code():
    for name, svc in COMPOSE["services"].items():
        assert svc.get("environment", {}).get("SERVICE_NAME") in (None, "auth", "files", "admin"), name
    assert "redfile_dev" not in (ROOT / "docker-compose.yml").read_text()
    serve = (ROOT / "deploy" / "docker" / "redfile-serve").read_text()
    assert "redfile_dev" not in serve and "gateway" not in serve

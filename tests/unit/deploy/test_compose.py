"""docker-compose.yml: valid against the Compose Specification, and wired to the chart's Redis files."""

from __future__ import annotations

import copy
import json
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


def test_only_the_gateway_publishes_a_port():
    published = {name for name, svc in COMPOSE["services"].items() if svc.get("ports")}
    assert published == {"gateway"}

"""Start-up bootstrap of the first admin through the app factory."""

from __future__ import annotations

import threading

import pytest

from redfile_auth.accounts.bootstrap import BootstrapError
from redfile_auth.domain import AuthDomain
from redfile_common.app import domain_of, redfile
from redfile_dev.testing import auth_header, service_token

from .conftest import ADMIN_PASSWORD


def test_create_app_twice_is_idempotent(make_app, redis_client):
    first = make_app()
    created = redis_client.hget("auth:user:{admin}", "created_at")
    version = redis_client.get("rf:tokstate:{admin}")
    make_app(admin_password="a-different-password")
    assert redis_client.hget("auth:user:{admin}", "created_at") == created
    assert redis_client.get("rf:tokstate:{admin}") == version  # existing sessions survive a restart
    client = first.test_client()
    assert client.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).status_code == 200
    assert redis_client.zrange("auth:users", 0, -1) == [b"admin"]


def test_outside_development_without_admin_password_refuses_to_start(make_app, redis_client):
    with pytest.raises(BootstrapError, match="ADMIN_PASSWORD"):
        make_app(admin_password=None)
    assert not redis_client.exists("auth:user:{admin}")
    make_app()  # creates it
    make_app(admin_password=None)  # now it exists: starts fine


def test_development_generates_a_password_printed_once(make_app, capsys):
    app = make_app(redfile_env="development", admin_password=None)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "generated password" in line]
    assert len(lines) == 1
    password = lines[0].rsplit(": ", 1)[1]
    client = app.test_client()
    assert client.post("/auth/login", json={"username": "admin", "password": password}).status_code == 200
    make_app(redfile_env="development", admin_password=None)
    assert "generated password" not in capsys.readouterr().err


def test_concurrent_workers_create_the_admin_exactly_once(make_app, redis_client):
    app = make_app(admin_users="root", admin_password=ADMIN_PASSWORD)
    redis_client.delete("auth:user:{root}")
    redis_client.zrem("auth:users", "root")
    domain = domain_of(AuthDomain, app)
    results, barrier = [], threading.Barrier(6)

    def worker():
        barrier.wait()
        results.append(domain.bootstrap())

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    assert redis_client.zrange("auth:users", 0, -1) == [b"root"]


def test_other_listed_admins_are_promoted_at_start(make_app):
    app = make_app()
    client = app.test_client()
    svc = auth_header(service_token(redfile(app).settings, "admin", "auth"))
    client.post("/internal/users", json={"username": "carol", "password": "password-123"}, headers=svc)
    make_app(admin_users="admin,carol")
    assert client.get("/internal/users/carol", headers=svc).json["role"] == "admin"

"""A private real Redis loaded with Redfile's ACL file, exactly as compose and the chart load it.

The ACL source is helm/redfile/files/redis/users.acl, rendered by the same render-acl.sh the
Redis container runs, with fresh random passwords (one file per user, as a mounted Secret).
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redfile_dev.redis_server import RedisProcess

ROOT = Path(__file__).resolve().parents[3]
REDIS_FILES = ROOT / "helm" / "redfile" / "files" / "redis"
USERS = ("redfile-auth", "redfile-files", "redfile-admin", "redfile-probe", "redfile-ops")


def render_acl(template: Path, password_dir: Path, output: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(REDIS_FILES / "render-acl.sh"), str(template), str(password_dir), str(output)],
        capture_output=True,
        text=True,
        timeout=30,
    )


@dataclass
class AclRedis:
    server: RedisProcess
    passwords: dict[str, str]
    password_dir: Path
    acl_file: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def client(self, user: str | None, password: str | None = None, **kwargs) -> redis.Redis:
        # No retries: a refused AUTH is an answer here, not a reason to try again.
        kwargs = {"socket_timeout": 5, "retry": Retry(NoBackoff(), 0), **kwargs}
        if user is None:
            return redis.Redis(port=self.port, **kwargs)
        return redis.Redis(port=self.port, username=user, password=self.passwords[user] if password is None else password, **kwargs)


@pytest.fixture(scope="session")
def acl_redis(tmp_path_factory) -> Iterator[AclRedis]:
    root = tmp_path_factory.mktemp("acl-redis")
    password_dir = root / "passwords"
    password_dir.mkdir()
    passwords = {}
    for user in USERS:
        passwords[user] = secrets.token_urlsafe(32)
        (password_dir / user).write_text(passwords[user])
    acl_file = root / "users.acl"
    done = render_acl(REDIS_FILES / "users.acl", password_dir, acl_file)
    assert done.returncode == 0, done.stderr
    server = RedisProcess(root / "data", appendonly=True, extra_args=["--aclfile", str(acl_file)]).start()
    yield AclRedis(server, passwords, password_dir, acl_file)
    server.stop()


@pytest.fixture
def ops(acl_redis) -> Iterator[redis.Redis]:
    """The operators' user: a clean data set and ACL log before each test."""
    client = acl_redis.client("redfile-ops")
    client.flushall()
    client.acl_log_reset()
    yield client
    client.close()


@pytest.fixture
def as_user(acl_redis):
    clients = []

    def make(user: str) -> redis.Redis:
        client = acl_redis.client(user)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()

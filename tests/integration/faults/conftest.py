"""Fixtures of the fault tests: private Redis servers a test may stop, restart, freeze or fill."""

from __future__ import annotations

import os
import signal

import pytest

from redfile_dev.redis_server import RedisProcess


@pytest.fixture
def own_redis(tmp_path):
    """``start(name="redis", **RedisProcess kwargs) -> RedisProcess``: a Redis of the test's own, killed after it.

    Never the session's shared server: these tests stop, restart, freeze and fill theirs.
    """
    started: list[RedisProcess] = []

    def start(name: str = "redis", **kwargs) -> RedisProcess:
        server = RedisProcess(tmp_path / name, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc is not None and server.proc.poll() is None:
            os.kill(server.proc.pid, signal.SIGCONT)  # in case a test left it frozen
        server.kill()

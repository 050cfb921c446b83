import redis

from redfile_dev.redis_server import RedisProcess, find_redis_binary


def test_the_bundled_valkey_server_runs_when_redis_server_is_missing(tmp_path):
    binary = find_redis_binary(prefer_path=False)
    assert binary.endswith("valkey-server")
    server = RedisProcess(tmp_path, binary=binary).start()
    try:
        client = redis.Redis.from_url(server.url)
        client.set("k", b"v")
        assert client.get("k") == b"v"
        assert client.config_get("appendonly")["appendonly"] == "yes"
    finally:
        server.stop()


def test_data_survives_a_restart(tmp_path):
    server = RedisProcess(tmp_path).start()
    port = server.port
    redis.Redis.from_url(server.url).set("kept", b"1")
    server.stop()
    again = RedisProcess(tmp_path, port=port).start()
    try:
        assert redis.Redis.from_url(again.url).get("kept") == b"1"
    finally:
        again.stop()

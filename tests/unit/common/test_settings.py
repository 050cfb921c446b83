import pytest

from redfile_common.settings import DEV_USER_TOKEN_KEYS, ServiceSettings, SettingsError, load_settings, parse_keyring

STRONG = "k" * 40


def prod(**kw):
    base = {
        "redfile_env": "production",
        "app_secret_key": "p" * 40,
        "user_token_keys": f"u1:{'u' * 40}",
        "service_token_keys": f"s1:{'s' * 40}",
    }
    base.update(kw)
    return load_settings(ServiceSettings, base)


def test_production_requires_every_secret(monkeypatch):
    for var in ("APP_SECRET_KEY", "USER_TOKEN_KEYS", "SERVICE_TOKEN_KEYS", "REDFILE_ENV"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SettingsError) as err:
        load_settings(ServiceSettings)
    text = str(err.value)
    assert "APP_SECRET_KEY" in text and "USER_TOKEN_KEYS" in text and "SERVICE_TOKEN_KEYS" in text


@pytest.mark.parametrize("secret", ["change-me-" + "x" * 30, "short", "y" * 20 + "placeholder" + "y" * 10])
def test_placeholder_or_short_secrets_are_refused(secret):
    with pytest.raises(SettingsError):
        prod(app_secret_key=secret)
    with pytest.raises(SettingsError):
        prod(user_token_keys=f"k:{secret}")


def test_secret_values_never_appear_in_the_error():
    secret = "short-but-secret"
    with pytest.raises(SettingsError) as err:
        prod(service_token_keys=f"k:{secret}")
    assert secret not in str(err.value)


def test_user_and_service_keyrings_must_differ():
    with pytest.raises(SettingsError, match="must not share"):
        prod(user_token_keys=f"a:{STRONG}", service_token_keys=f"b:{STRONG}")


def test_development_fills_public_dev_keys():
    s = load_settings(ServiceSettings, {"redfile_env": "development"})
    assert s.user_token_keys == DEV_USER_TOKEN_KEYS
    # the same values are refused outside development
    with pytest.raises(SettingsError):
        prod(user_token_keys=DEV_USER_TOKEN_KEYS)


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://example:6390/2")
    monkeypatch.setenv("ADMIN_USERS", "alice, bob")
    s = prod()
    assert s.redis_url == "redis://example:6390/2"
    assert s.admin_users == ["alice", "bob"]


def test_keyring_parsing_first_signs():
    ring = parse_keyring(f"new:{STRONG}, old:{'o' * 40}", "X")
    assert [k.kid for k in ring] == ["new", "old"]
    with pytest.raises(SettingsError):
        parse_keyring("nokid", "X")
    with pytest.raises(SettingsError):
        parse_keyring(f"a:{STRONG},a:{STRONG}", "X")


def test_service_token_ttl_capped_at_60():
    with pytest.raises(SettingsError):
        prod(service_token_ttl=61)


def test_redis_client_packs_large_values_without_hiredis_and_has_bounded_timeouts():
    from redis.connection import Connection, HiredisRespSerializer, PythonRespSerializer

    from redfile_common.redis_client import HybridPacker
    from redfile_common.redis_topology import make_redis

    s = load_settings(ServiceSettings, {"redfile_env": "development", "redis_url": "redis://127.0.0.1:1/0", "redis_socket_timeout": 3})
    client = make_redis(s)
    conn = client.connection_pool.make_connection()
    assert isinstance(conn, Connection)
    packer = conn._command_packer
    assert isinstance(packer, HybridPacker)
    assert isinstance(packer.python, PythonRespSerializer) and isinstance(packer.hiredis, HiredisRespSerializer)
    assert conn.socket_timeout == 3 and conn.socket_connect_timeout == s.redis_connect_timeout
    assert client.connection_pool.max_connections == s.redis_max_connections


def test_redis_topology_settings_are_read_and_checked():
    s = prod(redis_mode="sentinel", redis_sentinels="10.0.0.1:26379, sentinel-1.redis:26379", redis_sentinel_master="main")
    assert s.redis_sentinels == ["10.0.0.1:26379", "sentinel-1.redis:26379"] and s.redis_sentinel_master == "main"
    assert prod().redis_mode == "standalone" and prod().redis_wait_replicas == 0
    with pytest.raises(SettingsError, match="REDIS_SENTINELS"):
        prod(redis_mode="sentinel")
    for bad in ("10.0.0.1", "host:port", ":26379", "h:70000"):
        with pytest.raises(ValueError, match="host:port"):
            prod(redis_mode="sentinel", redis_sentinels=bad)
    with pytest.raises(ValueError):
        prod(redis_mode="replicated")
    with pytest.raises(ValueError):
        prod(redis_wait_replicas=-1)


def test_the_sentinel_client_asks_the_sentinels_and_keeps_the_budgeted_connections():
    from redis.sentinel import SentinelConnectionPool

    from redfile_common.redis_topology import make_redis

    s = load_settings(
        ServiceSettings,
        {"redfile_env": "development", "redis_mode": "sentinel", "redis_sentinels": "127.0.0.1:1", "redis_wait_replicas": 1},
    )
    client = make_redis(s)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "redfile"
    assert pool.connection_class.__name__.startswith("HybridPacker") and getattr(client, "wait_replicas", 0) == 1


def test_a_cluster_url_with_a_database_other_than_0_is_refused():
    from redfile_common.redis_topology import make_redis

    s = load_settings(ServiceSettings, {"redfile_env": "development", "redis_mode": "cluster", "redis_url": "redis://127.0.0.1:1/3"})
    with pytest.raises(ValueError, match="database 0"):
        make_redis(s)

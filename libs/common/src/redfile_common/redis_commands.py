"""What the client needs to know of Redis's commands: which are safe to send again, and which key a write names."""

from __future__ import annotations

from .product_metrics import command_label

# Commands whose repetition changes nothing: reads, and the connection's own handshake.
SAFE_TO_REPEAT = frozenset(
    [
        "GET",
        "MGET",
        "GETRANGE",
        "STRLEN",
        "EXISTS",
        "TYPE",
        "TTL",
        "PTTL",
        "EXPIRETIME",
        "PEXPIRETIME",
        "HGET",
        "HMGET",
        "HGETALL",
        "HEXISTS",
        "HLEN",
        "HKEYS",
        "HVALS",
        "HSTRLEN",
        "HSCAN",
        "HRANDFIELD",
        "SMEMBERS",
        "SISMEMBER",
        "SMISMEMBER",
        "SCARD",
        "SSCAN",
        "SRANDMEMBER",
        "ZSCORE",
        "ZMSCORE",
        "ZCARD",
        "ZCOUNT",
        "ZRANK",
        "ZREVRANK",
        "ZRANGE",
        "ZREVRANGE",
        "ZRANGEBYSCORE",
        "ZREVRANGEBYSCORE",
        "ZRANGEBYLEX",
        "ZSCAN",
        "LRANGE",
        "LLEN",
        "LINDEX",
        "XRANGE",
        "XREVRANGE",
        "XLEN",
        "XINFO",
        "SCAN",
        "KEYS",
        "DBSIZE",
        "PING",
        "ECHO",
        "INFO",
        "TIME",
        "MEMORY",
        "OBJECT",
        "EVALSHA_RO",
        "EVAL_RO",
        "FCALL_RO",
        "HELLO",
        "AUTH",
        "SELECT",
    ]
)
# Commands that name no key where a write names its first one (args[1]): nothing to confirm by slot.
KEYLESS = frozenset(["MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SCRIPT", "CLIENT", "WAIT", "PUBLISH", "FLUSHALL", "FLUSHDB"])
SCRIPTS = frozenset(["EVALSHA", "EVAL", "FCALL"])


def written_key(args: tuple):
    """The first key a command writes (a script's first key), or None for a read or a command with no key."""
    label = command_label(args)
    if label in SAFE_TO_REPEAT or label in KEYLESS:
        return None
    if label in SCRIPTS:
        return args[3] if len(args) > 3 and int(args[2]) > 0 else None
    return args[1] if len(args) > 1 and isinstance(args[1], (str, bytes)) else None

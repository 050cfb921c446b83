"""The Redis client's command packer: hiredis for small commands, pure Python for large values, the same bytes either way."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis._parsers.encoders import Encoder
from redis.connection import HiredisRespSerializer, PythonRespSerializer
from redis.exceptions import DataError

from redfile_common.redis_client import LARGE_VALUE, HybridPacker


class Spy:
    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0

    def pack(self, *args):
        self.calls += 1
        return self.inner.pack(*args)


def packers():
    python = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)
    return python, HiredisRespSerializer(), HybridPacker(Spy(python), Spy(HiredisRespSerializer()))


arguments = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=200),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(arguments, max_size=30))
def test_small_commands_pack_to_the_same_bytes_with_hiredis(args):
    python, hiredis, hybrid = packers()
    command = ("EVALSHA", *args)
    assert b"".join(hybrid.pack(*command)) == b"".join(python.pack(*command)) == b"".join(hiredis.pack(*command))
    assert hybrid.hiredis.calls == 1 and hybrid.python.calls == 0


@pytest.mark.parametrize("value", [b"x" * (LARGE_VALUE + 1), bytearray(LARGE_VALUE + 1), memoryview(b"y" * (4 * LARGE_VALUE))])
def test_a_large_value_goes_through_the_python_packer_uncopied(value):
    python, _, hybrid = packers()
    packed = hybrid.pack("SET", "files:{x}:c:0", value, "EX", 60)
    assert hybrid.python.calls == 1 and hybrid.hiredis.calls == 0
    assert any(piece is value for piece in packed)  # its own buffer, not a copy
    assert b"".join(bytes(p) for p in packed) == b"".join(bytes(p) for p in python.pack("SET", "files:{x}:c:0", value, "EX", 60))


def test_a_value_at_the_limit_is_small():
    _, _, hybrid = packers()
    hybrid.pack("SET", "k", b"z" * LARGE_VALUE)
    assert hybrid.hiredis.calls == 1


@pytest.mark.parametrize("bad", [None, True, object()])
def test_values_redis_cannot_take_are_refused_either_way(bad):
    _, _, hybrid = packers()
    with pytest.raises(DataError):
        hybrid.pack("SET", "k", bad)

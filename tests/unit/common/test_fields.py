"""The shared schema fields: a JSON integer is what JSON Schema calls one (1106.0 included)."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from redfile_common.fields import JsonInteger


@pytest.mark.parametrize(("sent", "read"), [(0, 0), (1106, 1106), (1106.0, 1106), (-3.0, -3), (2**53 - 1, 2**53 - 1)])
def test_integers_and_integral_numbers_are_integers(sent, read):
    value = JsonInteger().deserialize(sent)
    assert value == read and type(value) is int


@pytest.mark.parametrize("sent", [1106.5, 0.1, "12", "1106.0", True, False, float("inf"), float("nan"), None, [1], {"a": 1}])
def test_anything_else_is_refused(sent):
    with pytest.raises(ValidationError):
        JsonInteger().deserialize(sent)

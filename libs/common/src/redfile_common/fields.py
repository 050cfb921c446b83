"""Schema fields shared by the services' apiflask schemas."""

from __future__ import annotations

from apiflask.fields import Boolean


class StrictBoolean(Boolean):
    """A JSON ``true``/``false`` only: ``"yes"``, ``1`` or ``"false"`` are refused, not guessed at."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value

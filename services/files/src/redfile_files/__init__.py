"""Redfile files service."""

__all__ = ["create_app"]


def __getattr__(name: str):
    # The app (Flask and the rest) is imported when first asked for, so the operator
    # commands of this package (redfile-rekey) start without loading it.
    if name == "create_app":
        from redfile_files.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

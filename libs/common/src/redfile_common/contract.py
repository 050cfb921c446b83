"""What every service's OpenAPI documents say beyond what apiflask writes by itself.

* A request body is ``required`` when its schema refuses an empty one: found by
  loading ``{}`` with the operation's own input schema, so the document follows
  the validator.  A schema that refuses ``{}`` for want of any field (no field
  required, a schema-level rule such as "give at least one of") also gets
  ``minProperties: 1``.
* A 204 or 304 answer documents no content (it has no body).
* A ``{username}`` in a path is documented with the account rules (``fields.USERNAME_PATTERN``),
  unless the service documented it otherwise.
* The ``/internal/...`` operations (service tokens only, never routed by the
  gateway or the ingress) are not in the public document
  (``/<service>/openapi.json``) but in an internal one of their own, served at
  ``/internal/openapi.json``.
"""

from __future__ import annotations

import copy
import re

from apiflask import APIFlask, Schema
from flask import Flask, jsonify

from .fields import USERNAME_MAX, USERNAME_MIN, USERNAME_PATTERN

INTERNAL_PREFIX = "/internal/"
INTERNAL_SPEC_PATH = "/internal/openapi.json"
_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _input_schemas(app: Flask):
    """(path, method, schema instance) of every operation with an ``@input`` JSON body."""
    for rule in app.url_map.iter_rules():
        spec = getattr(app.view_functions.get(rule.endpoint), "_spec", None) or {}
        body = spec.get("body")
        if not isinstance(body, Schema):
            continue
        path = _VARIABLE.sub(r"{\1}", rule.rule)
        for method in rule.methods or ():
            yield path, method.lower(), body


def _resolve(spec: dict, schema: dict) -> dict:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        return spec.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], schema)
    return schema


def require_bodies(app: Flask, spec: dict) -> dict:
    for path, method, schema in _input_schemas(app):
        body = spec.get("paths", {}).get(path, {}).get(method, {}).get("requestBody")
        if not body or "required" in body:
            continue
        errors = schema.validate({})
        if not errors:
            continue
        body["required"] = True
        for media in body.get("content", {}).values():
            target = _resolve(spec, media.get("schema", {}))
            if not target.get("required"):
                target["minProperties"] = 1
    return spec


def path_usernames(spec: dict) -> dict:
    rules = {"type": "string", "minLength": USERNAME_MIN, "maxLength": USERNAME_MAX, "pattern": USERNAME_PATTERN}
    for ops in spec.get("paths", {}).values():
        for op in (ops, *ops.values()):
            for param in op.get("parameters", ()) if isinstance(op, dict) else ():
                if param.get("in") == "path" and param.get("name") == "username" and "pattern" not in param.get("schema", {}):
                    param["schema"] = {**param.get("schema", {}), **rules}
    return spec


def no_body_answers(spec: dict) -> dict:
    for ops in spec.get("paths", {}).values():
        for op in ops.values():
            for status in ("204", "304"):
                answer = (op.get("responses") or {}).get(status) if isinstance(op, dict) else None
                if answer is not None:
                    answer.pop("content", None)
    return spec


def split_internal(app: Flask, spec: dict) -> dict:
    """The public document, without ``/internal/...``; the internal one is kept for its own route."""
    paths = spec.get("paths", {})
    internal = copy.deepcopy({**spec, "paths": {p: ops for p, ops in paths.items() if p.startswith(INTERNAL_PREFIX)}})
    internal["info"] = {**internal.get("info", {}), "title": f"{internal.get('info', {}).get('title', '')} (internal)".strip()}
    app.extensions["redfile_internal_spec"] = internal
    return {**spec, "paths": {p: ops for p, ops in paths.items() if not p.startswith(INTERNAL_PREFIX)}}


def internal_spec(app: APIFlask) -> dict:
    app.spec  # noqa: B018 - generating the public document (once, then cached) stores the internal one
    return app.extensions["redfile_internal_spec"]


def init_contract(app: APIFlask) -> None:
    """After the service registered its routes and its own spec processors: the last word on the document."""
    from .error_handlers import chain_spec_processor

    chain_spec_processor(app, lambda spec: split_internal(app, path_usernames(no_body_answers(require_bodies(app, spec)))))

    @app.get(INTERNAL_SPEC_PATH)
    @app.doc(hide=True)  # not an operation of either document
    def internal_openapi():
        return jsonify(internal_spec(app))

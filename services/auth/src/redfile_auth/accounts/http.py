"""The ``/internal/...`` routes (service tokens addressed to auth): user accounts and their count.

Each route validates with a schema, makes one domain call and serialises the result; the
docstring's line is the operation's summary in the OpenAPI document.
"""

from __future__ import annotations

from apiflask import APIBlueprint

from redfile_auth.accounts.schemas import AuthStats, PageQuery, User, UserCreateIn, UserPage, UserPatchIn
from redfile_auth.domain import AuthDomain
from redfile_common.app import domain_of
from redfile_common.security import service_required

internal = APIBlueprint("internal", __name__, url_prefix="/internal", tag="Users (internal)")


def domain() -> AuthDomain:
    return domain_of(AuthDomain)


@internal.post("/users")
@internal.doc(security="ServiceToken", responses=[401, 409, 422])
@internal.output(User, status_code=201)
@service_required
@internal.input(UserCreateIn, arg_name="body")
def create_user(body):
    """Create a user."""
    return domain().users.create_new(body["username"], body["password"], body["role"]).public()


@internal.get("/users")
@internal.doc(security="ServiceToken", responses=[400, 401, 422])
@internal.output(UserPage)
@service_required
@internal.input(PageQuery, location="query", arg_name="query")
def list_users(query):
    """List users by username, a page at a time."""
    records, next_cursor = domain().users.page(query["limit"], query.get("cursor"))
    return {"items": [r.public() for r in records], "next_cursor": next_cursor}


@internal.get("/users/<username>")
@internal.doc(security="ServiceToken", responses=[401, 404])
@internal.output(User)
@service_required
def get_user(username):
    """One user."""
    return domain().users.get(username).public()


@internal.patch("/users/<username>")
@internal.doc(security="ServiceToken", responses=[401, 404, 409, 422])
@internal.output(User)
@service_required
@internal.input(UserPatchIn, arg_name="body")
def update_user(username, body):
    """Change a user's role, active flag or password; ends all of the user's sessions."""
    return domain().users.update(username, **body).public()


@internal.get("/stats")
@internal.doc(security="ServiceToken", responses=[401])
@internal.output(AuthStats)
@service_required
def stats():
    """How many accounts there are (for GET /admin/stats)."""
    return domain().stats()


@internal.delete("/users/<username>")
@internal.doc(security="ServiceToken", responses=[401, 404])
@internal.output({}, status_code=204)
@service_required
def delete_user(username):
    """Delete a user and end all of the user's sessions."""
    domain().users.delete(username)
    return ""

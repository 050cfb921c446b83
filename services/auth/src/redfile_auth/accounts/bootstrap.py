"""The first admin, made at start-up (idempotent; safe with several workers at once).

* The first name of ADMIN_USERS is created as an admin if it does not exist,
  with ADMIN_PASSWORD.  Without ADMIN_PASSWORD a password is generated in
  development (and printed once, on stderr, by the one worker that created
  the user); anywhere else the service refuses to start.  An existing user is
  never given a new password here.
* Every other ADMIN_USERS name that exists is made an admin.

Creation is atomic in storage, so of several workers racing here exactly one
creates the user and the others find it.
"""

from __future__ import annotations

import secrets
import sys

import structlog

from redfile_auth.accounts.service import Users
from redfile_auth.validation import normalise_username, username_problem
from redfile_common.audit import NullAuditLog

log = structlog.get_logger("redfile.auth")


class BootstrapError(RuntimeError):
    """The service cannot start: its first admin cannot be made."""


def bootstrap_admins(users: Users, admin_users: list[str], admin_password: str | None, *, development: bool, audit=None) -> bool:
    """Make sure the configured admins exist; True if this call created the first one.

    Creating or promoting an admin here is audited with ``actor="system"``.
    """
    audit = audit or NullAuditLog()
    names = [normalise_username(n) for n in admin_users]
    for name in names:
        problem = username_problem(name)
        if problem:
            raise BootstrapError(f"ADMIN_USERS: {name!r} is not a valid username: {problem}")
    if not names:
        return False
    first, created = names[0], False
    if users.find(first) is None:
        password = admin_password
        if password is None:
            if not development:
                raise BootstrapError(
                    f"admin user {first!r} does not exist yet and ADMIN_PASSWORD is not set: set ADMIN_PASSWORD for the first start"
                )
            password = secrets.token_urlsafe(16)
        _, created = users.create(first, password, "admin")
        if created:
            origin = "ADMIN_PASSWORD" if admin_password else "generated"
            log.warning("bootstrap_admin_created", username=first, origin=origin)
            audit.record("user.created", actor="system", user=first, target=first, role="admin", origin=origin)
            if admin_password is None:
                # Printed, not logged: the log masks password fields, and this is shown once only.
                print(f"redfile-auth: created admin {first!r} with generated password: {password}", file=sys.stderr, flush=True)
    for name in names:
        found = users.find(name)
        if found is not None and found.role != "admin" and users.promote(name):
            log.warning("bootstrap_admin_promoted", username=name)
            audit.record("role.changed", actor="system", user=name, target=name, role="admin", origin="ADMIN_USERS")
    return created

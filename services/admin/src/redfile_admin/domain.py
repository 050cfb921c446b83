"""The admin domain: what its routes call, assembled from the shared Redfile context (no Flask here)."""

from __future__ import annotations

from dataclasses import dataclass

from redfile_admin.audit import AdminAudit
from redfile_admin.reports import AdminReports
from redfile_admin.service import AdminActions
from redfile_admin.upstream import AuthUsers, FilesCatalogue
from redfile_common.app import Redfile
from redfile_common.audit import AuditReader


@dataclass(frozen=True)
class AdminDomain:
    actions: AdminActions
    reports: AdminReports


def build_domain(rf: Redfile) -> AdminDomain:
    """Admin actions and reports over auth's and files' internal APIs, audited in the shared trail."""
    users, files = AuthUsers(rf.services), FilesCatalogue(rf.services)
    return AdminDomain(
        actions=AdminActions(users, files, audit=AdminAudit(rf.audit), service_timeout=rf.settings.service_timeout),
        reports=AdminReports(users, files, redis_info=rf.redis_info, reader=AuditReader(rf.redis)),
    )

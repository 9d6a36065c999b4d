"""Who holds the admin role: the one rule AdminService's authorization asks.

- A bearer JWT whose configured claim has the configured value (BYTEREVIEW_ADMIN_CLAIM,
  `claim=value`): the claim equals the value, or is a list holding it. A dotted claim name
  reaches nested claims (Keycloak's `realm_access.roles=bytereview-admin`).
- A principal whose subject is listed in BYTEREVIEW_ADMIN_SUBJECTS (`issuer|sub`).
- In dev mode only, the dev token's user: on one machine the operator is the developer.
- Never an API key, whoever owns it: keys automate one user's own work, and a leaked key must
  not read every tenant's jobs. Never a worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bytereview.core.auth import DEV_SUBJECT, Principal, PrincipalKind
from bytereview.core.settings import Settings


@dataclass(frozen=True, slots=True)
class AdminRole:
    claim: str = ""
    value: str = ""
    subjects: frozenset[str] = frozenset()
    dev_user: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> AdminRole:
        claim, _, value = settings.admin_claim.partition("=")
        return cls(
            claim=claim.strip(),
            value=value.strip(),
            subjects=frozenset(s.strip() for s in settings.admin_subjects if s.strip()),
            dev_user=settings.is_dev,
        )

    def grants(self, principal: Principal) -> bool:
        if principal.kind is not PrincipalKind.USER or principal.user_id:
            return False  # a worker, or an API key (its principal carries the user id)
        if self.dev_user and principal.subject == DEV_SUBJECT and not principal.claims:
            return True
        if principal.subject in self.subjects:
            return True
        return bool(self.claim) and _claim_holds(principal.claims, self.claim, self.value)


def _claim_holds(claims: Mapping[str, Any], path: str, value: str) -> bool:
    found: Any = claims
    for part in path.split("."):
        if not isinstance(found, Mapping) or part not in found:
            return False
        found = found[part]
    if isinstance(found, list | tuple):
        return value in [str(v) for v in found]
    if isinstance(found, str):
        # Some providers put space-separated roles or scopes in one string.
        return value == found or value in found.split()
    return str(found).lower() == value.lower() if isinstance(found, bool) else False

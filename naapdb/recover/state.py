"""What a stack's state holds, read from `pulumi stack export --show-secrets`:
which URNs it knows, the admin connection its postgresql provider was given
(the credentials `pulumi up` itself uses), and which roles its access
resources name. The export carries the admin's password: it is parsed in
memory and never printed or written."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from naapdb import urns
from naapdb.recover.errors import RecoverError

# How the state marks a secret (Pulumi's `resource.SecretSig`).
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"
# The grantee pulumi-postgresql takes for PUBLIC: no role.
PUBLIC_GRANTEE = "public"
# The postgresql provider's inputs, and the libpq keyword each one is.
PROVIDER_CONNINFO = {
    "host": "host",
    "port": "port",
    "database": "dbname",
    "username": "user",
    "password": "password",
    "sslmode": "sslmode",
    "sslrootcert": "sslrootcert",
    "connectTimeout": "connect_timeout",
}


@dataclass(frozen=True)
class StackState:
    """The resources of the stack's last saved deployment, by URN (those
    pending deletion left out)."""

    resources: Mapping[str, Mapping[str, Any]]

    @classmethod
    def from_export(cls, text: str) -> StackState:
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            raise RecoverError(
                "`pulumi stack export` printed no JSON; run it yourself to see why"
            ) from None
        found = (document.get("deployment") or {}).get("resources") or []
        return cls({str(r["urn"]): r for r in found if not r.get("delete")})

    def __contains__(self, urn: object) -> bool:
        return urn in self.resources

    def admin_conninfo(self, provider_urn: str) -> str:
        """A libpq connection string from the admin provider's inputs;
        the provider must be in the state."""
        from psycopg.conninfo import make_conninfo

        inputs = self.resources[provider_urn].get("inputs") or {}
        parameters = {
            keyword: str(revealed(inputs[key]))
            for key, keyword in PROVIDER_CONNINFO.items()
            if inputs.get(key) not in (None, "")
        }
        return make_conninfo("", **parameters)

    def role_references(self) -> dict[str, frozenset[str]]:
        """URN -> the roles an access resource of the state names: a Role its
        own name, a grant or default privilege its grantee and owner."""
        keys = {
            urns.ROLE_TYPE: ("name",),
            urns.GRANT_TYPE: ("role",),
            urns.DEFAULT_PRIVILEGES_TYPE: ("role", "owner"),
        }
        references: dict[str, frozenset[str]] = {}
        for urn, resource in self.resources.items():
            fields = keys.get(str(resource.get("type")))
            if not fields:
                continue
            values = resource.get("outputs") or resource.get("inputs") or {}
            named = {str(values[k]) for k in fields if values.get(k)} - {PUBLIC_GRANTEE}
            if named:
                references[urn] = frozenset(named)
        return references


def revealed(value: Any) -> Any:
    """A value of the export as it is: a secret's plaintext, JSON-decoded."""
    if isinstance(value, dict) and value.get(SECRET_SIGNATURE):
        if "plaintext" not in value:
            raise RecoverError(
                "the stack export holds encrypted secrets: it must be read with --show-secrets"
            )
        return json.loads(value["plaintext"])
    return value

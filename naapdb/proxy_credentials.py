"""The login secrets RDS Proxy authenticates with (`components/proxy.py`),
and how the rotation keeps them current.

RDS Proxy reads one Secrets Manager secret per database user and only its
AWSCURRENT version. An identity's own secret (`naap-db/<stack>/<identity>`)
names one login at a time and changes it at every rotation, so a proxy
reading it would forget the login clients used until then: every client
still holding the previous login (valid for one more rotation by design)
would be refused by the proxy ("no credentials for the role") while the
server itself still accepts it. So the proxy reads one secret per *login*,
`naap-db/<stack>/proxy/<login>` (`{"username", "password"}`), both logins
of an alternating identity, and the rotation's setSecret writes the
rotated login's new password into its login secret right after the
server has it. The login clients use now is never touched, so both logins
keep working through the proxy across a rotation, as they do directly.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

# Set by the stack on the rotation Lambda when a proxy reads login secrets.
PROXY_SECRETS_VARIABLE = "NAAPDB_PROXY_SECRET_PREFIX"


def secret_prefix(stack: str) -> str:
    """Every login secret of a stack starts with this (`naap-db/prod/proxy/`)."""
    return f"naap-db/{stack}/proxy/"


def document(login: str, password: str) -> str:
    """A login secret's value, in the form RDS Proxy reads."""
    return json.dumps({"username": login, "password": password})


def sync_login_secret(
    client: Any, prefix: str | None, login: str, password: str, token: str
) -> bool:
    """Write `login`'s new password into its login secret (once per
    rotation token: a repeated setSecret writes nothing new). False when
    the stack has no proxy (`prefix` unset)."""
    if not prefix:
        return False
    client.put_secret_value(
        SecretId=prefix + login, ClientRequestToken=token, SecretString=document(login, password)
    )
    return True


def follow_rotation(
    client: Any, login: str, password: str, token: str, environ: Mapping[str, str] | None = None
) -> None:
    """The rotation's setSecret, once the server has `login`'s new password:
    the proxy's login secret follows, when the stack has a proxy (the
    Lambda's `NAAPDB_PROXY_SECRET_PREFIX`)."""
    prefix = (os.environ if environ is None else environ).get(PROXY_SECRETS_VARIABLE)
    if sync_login_secret(client, prefix, login, password, token):
        log.info("setSecret: the proxy's login secret of %s follows", login)

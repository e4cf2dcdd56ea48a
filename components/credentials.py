"""Generated passwords for every login role of the plan, the connection URLs
built from them, and, under alternating rotation, the Secrets Manager secrets
that hold each identity's current login.

Each password's `keepers` hold its rotation epoch (`naap-db:credentials.epoch`
for all roles, `naap-db:credentials.epochs.<role>` for one), so bumping an
epoch and running `pulumi up` replaces that password and nothing else.
Under alternating rotation Pulumi only sets the first password of each
identity, its `_a` login's (the one its secret starts on): `_b` is created
LOGIN without a password, so nobody can log in as it until the first
rotation's setSecret gives it one. An idle login stays unusable until it is
needed, and an identity costs one RandomPassword. Afterwards the rotation
Lambda owns both passwords (`components/rotation.py`).

The schema push logins (`<schema>_migrator`) get no RandomPassword each:
their passwords derive from one generated push key (`naapdb.pushkey`),
which the push hook receives as a secret, whatever the rotation."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

import pulumi
import pulumi_random as random

from components.rotation import IdentitySecrets
from components.server import DatabaseServer
from naapdb import pushkey
from naapdb.plan import SCHEMA_MIGRATOR, Rotation
from naapdb.settings import StackSettings

# Letters and digits only: safe unescaped in a URL, a libpq key=value string
# and a shell, and 40 of them still carry over 230 bits.
PASSWORD_SPECIAL = False


class Credentials(pulumi.ComponentResource):
    """One `RandomPassword` per identity's first login, and the URLs clients use."""

    passwords: dict[str, pulumi.Output[str]]
    """Login role -> its generated password (secret): every login under single
    rotation, each identity's `_a` under alternating rotation."""
    connection_urls: pulumi.Output[dict[str, str]]
    """Login role -> `postgresql://` URL with host, port, database and sslmode
    (secret), for the logins of `passwords`."""
    secret_arns: dict[str, pulumi.Output[str]]
    """Identity -> ARN of its Secrets Manager secret (alternating rotation only)."""
    push_key: pulumi.Output[str]
    """The key the schema push logins' passwords derive from (secret)."""
    push_passwords: dict[str, pulumi.Output[str]]
    """Schema push login -> its derived password (secret)."""

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        server: DatabaseServer,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("naap:database:Credentials", name, None, opts)
        credentials = settings.credentials
        self.passwords = {}
        for role in settings.plan.first_logins:
            password = random.RandomPassword(
                f"{name}-{role.name}",
                length=credentials.password_length,
                special=PASSWORD_SPECIAL,
                keepers=credentials.keepers(role.name, role.identity),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.passwords[role.name] = pulumi.Output.secret(password.result)
        key = random.RandomPassword(
            f"{name}-push-key",
            length=credentials.password_length,
            special=PASSWORD_SPECIAL,
            keepers={"role": pushkey.PUSH_KEY_OUTPUT, "epoch": str(credentials.epoch)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.push_key = pulumi.Output.secret(key.result)
        self.push_passwords = {
            role.name: _derived(self.push_key, role.name, credentials.epoch_of(role.name))
            for role in settings.plan.roles
            if role.purpose == SCHEMA_MIGRATOR
        }
        self.connection_urls = pulumi.Output.secret(
            pulumi.Output.all(server.host, server.port, server.database, self.passwords).apply(
                lambda args: connection_urls(
                    args[0], args[1], args[2], server.sslmode, args[3], server.client_sslrootcert
                )
            )
        )
        self.secret_arns = {}
        if credentials.rotation is Rotation.ALTERNATING:
            if server.master_secret_arn is None:
                raise pulumi.RunError(
                    "naap-db:credentials.rotation: alternating rotation is done by a Lambda "
                    "with the RDS-managed master secret, so it needs naap-db:server.kind rds; "
                    "use rotation: single with this server"
                )
            secrets = IdentitySecrets(
                f"{name}-secrets",
                settings,
                server,
                self.passwords,
                pulumi.ResourceOptions(parent=self),
            )
            self.secret_arns = secrets.arns
        self.register_outputs(
            {
                "roles": sorted(self.passwords),
                "connection_urls": self.connection_urls,
                "secret_arns": self.secret_arns,
            }
        )


def _derived(key: pulumi.Output[str], login: str, epoch: int) -> pulumi.Output[str]:
    """A schema push login's password (secret), derived from the push key."""
    return pulumi.Output.secret(
        key.apply(lambda value: pushkey.login_password(value, login, epoch))
    )


def connection_url(
    role: str,
    password: str,
    host: str,
    port: int,
    database: str,
    sslmode: str,
    sslrootcert: str | None = None,
) -> str:
    """`postgresql://role:password@host:port/database?sslmode=...`, every part
    quoted, plus `&sslrootcert=...` (the CA bundle clients verify RDS with)."""
    netloc_host = f"[{host}]" if ":" in host else host
    ca = f"&sslrootcert={quote(sslrootcert, safe='/')}" if sslrootcert else ""
    return (
        f"postgresql://{quote(role, safe='')}:{quote(password, safe='')}@{netloc_host}:{int(port)}"
        f"/{quote(database, safe='')}?sslmode={quote(sslmode, safe='')}{ca}"
    )


def connection_urls(
    host: str,
    port: int,
    database: str,
    sslmode: str,
    passwords: Mapping[str, str],
    sslrootcert: str | None = None,
) -> dict[str, str]:
    """One URL per login role."""
    return {
        role: connection_url(role, password, host, port, database, sslmode, sslrootcert)
        for role, password in passwords.items()
    }

"""An alternating identity's secret in Secrets Manager (the RDS secret
format plus `sslmode`), read strictly, and the identity/login names it must
match: what `naapdb.rotate`'s steps trust before they touch a login.

Split from `naapdb.rotate`; both go into the rotation Lambda's zip.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from naapdb import names, trust

ENGINE = "postgres"
DEFAULT_SSLMODE = trust.SSLMODE
APPLICATION_NAME = "naap-db-rotation"
SECRET_FIELDS = ("engine", "host", "port", "dbname", "username", "password", "masterarn")


class RotationError(RuntimeError):
    """A rotation step failed; the message is redacted and safe to print."""


@dataclass(frozen=True)
class DbSecret:
    """One identity's secret: where the database is and which login to use."""

    host: str
    port: int
    dbname: str
    username: str
    password: str = field(repr=False)
    masterarn: str
    engine: str = ENGINE
    sslmode: str = DEFAULT_SSLMODE

    @classmethod
    def parse(cls, text: str, what: str) -> DbSecret:
        """Read a secret string; a missing field names itself, never a value."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError:
            raise RotationError(f"{what} is not JSON in the RDS secret format") from None
        if not isinstance(raw, Mapping):
            raise RotationError(f"{what} is not a JSON object in the RDS secret format")
        missing = [key for key in SECRET_FIELDS if raw.get(key) in (None, "")]
        if missing:
            raise RotationError(f"{what} lacks {', '.join(missing)}")
        sslmode = raw.get("sslmode")
        if sslmode not in (None, "", trust.SSLMODE):
            # A writer of this one secret must not lower the TLS of the
            # connections that carry its logins and the master login.
            raise RotationError(
                f"{what}: sslmode is {str(sslmode)!r}, but the rotation connects only with "
                f"{trust.SSLMODE} (channel binding, the RDS CA bundle); set it back to "
                f"{trust.SSLMODE}"
            )
        return cls(
            host=str(raw["host"]),
            port=int(raw["port"]),
            dbname=str(raw["dbname"]),
            username=str(raw["username"]),
            password=str(raw["password"]),
            masterarn=str(raw["masterarn"]),
            engine=str(raw["engine"]),
            sslmode=str(raw.get("sslmode") or DEFAULT_SSLMODE),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "engine": self.engine,
                "host": self.host,
                "port": self.port,
                "dbname": self.dbname,
                "username": self.username,
                "password": self.password,
                "masterarn": self.masterarn,
                "sslmode": self.sslmode,
            }
        )

    def conninfo(self, user: str | None = None, password: str | None = None) -> str:
        """A libpq connection string to this secret's database."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=str(self.port),
            dbname=self.dbname,
            user=user or self.username,
            password=self.password if password is None else password,
            connect_timeout="10",
            application_name=APPLICATION_NAME,
            **trust.connection_options(),
        )


def identity_of(login: str) -> str:
    """The identity an alternating login carries (`naap_app_b` -> `naap_app`)."""
    for suffix in names.ALTERNATE_SUFFIXES:
        if login.endswith(suffix) and len(login) > len(suffix):
            return login[: -len(suffix)]
    raise RotationError(
        f"username {login!r} is not an alternating login (ending "
        f"{' or '.join(names.ALTERNATE_SUFFIXES)}); this secret cannot be rotated this way"
    )


def identity_of_secret(name: str) -> str:
    """The identity a secret is for, from its name (`naap-db/<stack>/<identity>`)."""
    return name.rstrip("/").rpartition("/")[2]


def check_login_of(identity: str, secret: DbSecret, what: str) -> None:
    """A secret's login must be one of its own identity's two logins: a writer
    of one secret must not make the rotation set another identity's login."""
    logins = names.alternate_logins(identity)
    if secret.username not in logins:
        raise RotationError(
            f"{what} names the login {secret.username}, but the secret is {identity}'s, "
            f"whose logins are {' and '.join(logins)}; refusing to rotate another identity's login"
        )


def other_login(login: str) -> str:
    """The login of the same identity that is not `login` (`_a` <-> `_b`)."""
    identity = identity_of(login)
    first, second = names.alternate_logins(identity)
    return second if login == first else first

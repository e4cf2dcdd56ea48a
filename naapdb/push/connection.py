"""The push's connection: the migrator's URL from `DATABASE_URL` or, under
alternating rotation, from the Secrets Manager secret that always holds
its current login; never from argv, never printed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from naapdb import names, pushkey
from naapdb.connection import DATABASE_URL, ConnectionError_, one_line

if TYPE_CHECKING:
    import psycopg

SECRET_ID_VARIABLE = "NAAPDB_DATABASE_SECRET_ID"

# ---------------------------------------------------------------- the connection


MIGRATOR_URL = "export the migrator's connection string (never pass it on the command line)"


def resolve_database_url(
    environ: Mapping[str, str] | None = None, missing: str = MIGRATOR_URL
) -> str:
    """The migrator's connection string: from the Secrets Manager secret named
    by `NAAPDB_DATABASE_SECRET_ID` (its AWSCURRENT version, RDS secret format),
    which stays right after an alternating rotation, else `DATABASE_URL`.
    `missing` ends the message when neither is set: which login will do."""
    environ = os.environ if environ is None else environ
    secret_id = environ.get(SECRET_ID_VARIABLE, "").strip()
    if secret_id:
        return url_from_secret(_fetch_secret(secret_id))
    value = environ.get(DATABASE_URL, "").strip()
    if not value:
        raise ConnectionError_(f"neither {DATABASE_URL} nor {SECRET_ID_VARIABLE} is set; {missing}")
    return value


def _fetch_secret(secret_id: str) -> str:
    import boto3
    import botocore.exceptions

    try:
        client = boto3.client("secretsmanager")
        response = client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise ConnectionError_(
            f"cannot read the secret {SECRET_ID_VARIABLE} names: {one_line(error)}"
        ) from None
    text = response.get("SecretString")
    if not isinstance(text, str):
        raise ConnectionError_(f"the secret {SECRET_ID_VARIABLE} names has no SecretString")
    return text


def url_from_secret(secret_text: str) -> str:
    """A `postgresql://` URL from an RDS-format secret (host, port, dbname,
    username, password): always `verify-full` against the trusted RDS CA
    bundle (`naapdb.server_tls`), whatever `sslmode` the secret says, since
    whoever may write the secret must not lower it (only RDS keeps such secrets)."""
    from naapdb.server_tls import rds_root_certificate

    try:
        secret = json.loads(secret_text)
    except json.JSONDecodeError:
        raise ConnectionError_(
            f"the secret {SECRET_ID_VARIABLE} names is not JSON in the RDS secret format"
        ) from None
    if not isinstance(secret, Mapping):
        raise ConnectionError_(f"the secret {SECRET_ID_VARIABLE} names is not a JSON object")
    for key in ("host", "username", "password"):
        if not secret.get(key):
            raise ConnectionError_(f"the secret {SECRET_ID_VARIABLE} names has no `{key}`")
    user = quote(str(secret["username"]), safe="")
    password = quote(str(secret["password"]), safe="")
    host = str(secret["host"])
    try:
        port = int(secret.get("port") or 5432)
    except (TypeError, ValueError):
        raise ConnectionError_(f"the secret {SECRET_ID_VARIABLE} names has a bad `port`") from None
    dbname = quote(str(secret.get("dbname") or names.DATABASE), safe="")
    query = f"sslmode=verify-full&sslrootcert={quote(rds_root_certificate(), safe='/')}"
    return f"postgresql://{user}:{password}@{host}:{port}/{dbname}?{query}"


def schema_connector(
    url: str, key: str, epoch_of: Callable[[str], int]
) -> Callable[[str], psycopg.Connection[Any]]:
    """Opens a schema's push login's connection: `url`'s server and options,
    the login `<schema>_migrator` and its password derived from the push key
    (`naapdb.pushkey`) and the login's epoch."""
    from psycopg.conninfo import make_conninfo

    from naapdb.connection import connect

    def connect_schema(schema: str) -> psycopg.Connection[Any]:
        login = names.schema_migrator(schema)
        password = pushkey.login_password(key, login, epoch_of(login))
        return connect(make_conninfo(url, user=login, password=password), autocommit=True)

    return connect_schema

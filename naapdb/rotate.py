"""Password rotation of an alternating identity through Secrets Manager's four
steps, for the rotation Lambda (`lambda_handler`) and for ops
(`python -m naapdb rotate --secret-id ID`, `rotate_now`).

Under `credentials.rotation: alternating` each identity `naap_x` is NOLOGIN
and two logins, `naap_x_a` and `naap_x_b`, carry it. Its secret (the RDS
secret format plus `sslmode`) holds the login clients use now (AWSCURRENT).
A rotation gives the *other* login a new password and only then makes it
current, so the password clients hold is never the one being changed:

- createSecret: AWSPENDING = the other login with a new password
  (`get_random_password`, letters and digits only: URL- and libpq-safe);
- setSecret: refuse a version naming another server, port, database or
  master secret than the trusted ones (`naapdb.trust`: no confused deputy),
  a login that is not one of the two of the identity the secret's name
  names, a password shorter than a generated one, or an `sslmode` other
  than `verify-full` (every connection is verify-full with channel binding),
  log in with the current login (SCRAM only, so the server proves it knows
  that login), then `ALTER ROLE other PASSWORD ...` as the master user (its
  credentials from the secret `masterarn` names), sending a SCRAM verifier
  computed here (`naapdb.scram`), so the password itself never reaches the
  server or its log. The
  other login may never have had a password: `pulumi up` creates `_b`
  without one (it cannot log in until it is needed), so the first rotation
  of an identity is what gives `_b` its first password;
- testSecret: connect as AWSPENDING and check it is that login, a member of
  its identity, with USAGE on a schema;
- finishSecret: move AWSCURRENT to the pending version (Secrets Manager
  moves AWSPREVIOUS to the version clients used so far, still valid).

Every step is idempotent: run twice, it finds its work done and changes
nothing. No log line carries a password (everything goes through
`naapdb.connection.redact` with the secrets in play).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from naapdb import proxy_credentials, scram, trust
from naapdb.connection import ConnectionError_, connect, one_line, redact
from naapdb.rotation_secret import (
    DbSecret,
    RotationError,
    check_login_of,
    identity_of_secret,
    other_login,
)

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# The generated passwords' length; a pending password put in by hand must be
# at least as long.
PASSWORD_LENGTH = 40
# Secrets Manager for the Lambda in a VPC: an interface endpoint's URL if set.
ENDPOINT_VARIABLE = "SECRETS_MANAGER_ENDPOINT"


def _safe(text: str, *secrets: str) -> str:
    """`text` without any password it may quote, in any form."""
    text = redact(text)
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


# --- Secrets Manager -------------------------------------------------------


def _get(client: Any, secret_id: str, stage: str, version: str | None = None) -> DbSecret:
    kwargs: dict[str, Any] = {"SecretId": secret_id, "VersionStage": stage}
    if version is not None:
        kwargs["VersionId"] = version
    value = client.get_secret_value(**kwargs)
    return DbSecret.parse(value["SecretString"], f"{stage} of {secret_id}")


def _pending_or_none(client: Any, secret_id: str, token: str) -> DbSecret | None:
    try:
        return _get(client, secret_id, PENDING, token)
    except client.exceptions.ResourceNotFoundException:
        return None


def _versions(client: Any, secret_id: str) -> dict[str, list[str]]:
    described = client.describe_secret(SecretId=secret_id)
    return dict(described.get("VersionIdsToStages") or {})


def _identity(client: Any, secret_id: str) -> str:
    """The identity the secret is for, from the name Secrets Manager keeps
    (the id may be an ARN), so what the secret says cannot change it."""
    described = client.describe_secret(SecretId=secret_id)
    return identity_of_secret(str(described.get("Name") or secret_id))


def _version_with(versions: Mapping[str, list[str]], stage: str) -> str | None:
    return next((version for version, stages in versions.items() if stage in stages), None)


def _master_document(client: Any, master_arn: str) -> dict[str, Any]:
    """The master secret's JSON (RDS manages it: it holds `username` and
    `password`; other masters may also say `host`, `port`, `dbname`)."""
    value = client.get_secret_value(SecretId=master_arn, VersionStage=CURRENT)
    try:
        raw = json.loads(value["SecretString"])
    except (json.JSONDecodeError, KeyError, TypeError):
        raw = None
    if not isinstance(raw, dict) or not raw.get("username") or not raw.get("password"):
        raise RotationError(f"the master secret {master_arn} has no username and password")
    return raw


def _master(client: Any, secret: DbSecret) -> tuple[str, str]:
    """The master user's name and password, from the secret `masterarn` names."""
    raw = _master_document(client, secret.masterarn)
    return str(raw["username"]), str(raw["password"])


def _check_trusted(client: Any, secret_id: str, *secrets: tuple[str, DbSecret]) -> None:
    """Refuse before any connection when a secret names a server, port,
    database or master secret other than the trusted ones (`naapdb.trust`):
    a writer of this one secret must not steer the master login elsewhere."""
    try:
        for what, secret in secrets:
            trust.check_master_arn(f"{secret_id}: {what}", secret.masterarn)
        endpoint = trust.trusted_endpoint(
            _master_document(client, secrets[0][1].masterarn), secrets[0][1].masterarn
        )
        for what, secret in secrets:
            if secret.masterarn != secrets[0][1].masterarn:
                raise trust.UntrustedEndpoint(
                    f"{what} names another master secret than {secrets[0][0]}"
                )
            trust.check_endpoint(
                endpoint, f"{secret_id}: {what}", secret.host, secret.port, secret.dbname
            )
    except trust.UntrustedEndpoint as error:
        raise RotationError(str(error)) from None


# --- PostgreSQL --------------------------------------------------------------


@contextmanager
def _session(
    secret: DbSecret, user: str | None = None, password: str | None = None
) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the secret's database; failures are redacted."""
    try:
        conninfo = secret.conninfo(user, password)
    except trust.UntrustedEndpoint as error:
        raise RotationError(str(error)) from None
    try:
        connection = connect(conninfo, autocommit=True)
    except ConnectionError_ as error:
        raise RotationError(_safe(str(error), secret.password, password or "")) from None
    try:
        yield connection
    finally:
        connection.close()


def _can_log_in(secret: DbSecret) -> bool:
    try:
        with _session(secret) as connection:
            connection.execute("SELECT 1")
        return True
    except RotationError:
        return False


# --- the four steps ------------------------------------------------------------


def create_secret(client: Any, secret_id: str, token: str) -> None:
    """AWSPENDING = the other login with a new password (once per token)."""
    current = _get(client, secret_id, CURRENT)
    check_login_of(_identity(client, secret_id), current, f"{secret_id}: the current version")
    if _pending_or_none(client, secret_id, token) is not None:
        log.info("createSecret: %s already has a pending version %s", secret_id, token)
        return
    password = client.get_random_password(
        PasswordLength=PASSWORD_LENGTH, ExcludePunctuation=True, IncludeSpace=False
    )["RandomPassword"]
    pending = replace(current, username=other_login(current.username), password=password)
    client.put_secret_value(
        SecretId=secret_id,
        ClientRequestToken=token,
        SecretString=pending.to_json(),
        VersionStages=[PENDING],
    )
    log.info("createSecret: %s pending version %s is %s", secret_id, token, pending.username)


def set_secret(client: Any, secret_id: str, token: str) -> None:
    """Give the pending login its password, as the master user (also when it
    has none yet: `_b` before the identity's first rotation)."""
    from psycopg import sql

    current = _get(client, secret_id, CURRENT)
    pending = _get(client, secret_id, PENDING, token)
    identity = _identity(client, secret_id)
    check_login_of(identity, current, f"{secret_id}: the current version")
    check_login_of(identity, pending, f"{secret_id}: the pending version")
    _check_pending(current, pending, secret_id)
    _check_trusted(
        client, secret_id, ("the current version", current), ("the pending version", pending)
    )
    # Idempotency: done if the pending password works already. A login with
    # no password at all (`_b` never rotated) fails this like a wrong one.
    if _can_log_in(pending):
        log.info("setSecret: %s already logs in with the pending password", pending.username)
        proxy_credentials.follow_rotation(client, pending.username, pending.password, token)
        return
    # The current login first (AWS's templates do the same): SCRAM is mutual,
    # so only a server holding that login's verifier gets this far, and only
    # then is the master password offered to it.
    _require_current_login(current, secret_id)
    master_user, master_password = _master(client, pending)
    if master_user == pending.username:
        raise RotationError(f"{secret_id}: refusing to rotate the master user {master_user}")
    secrets = (pending.password, master_password)
    try:
        with _session(pending, master_user, master_password) as connection:
            # A SCRAM verifier computed here: the password never reaches
            # the server, nor its log.
            verifier = scram.verifier(pending.password, pending.username)
            connection.execute(
                sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                    sql.Identifier(pending.username), sql.Literal(verifier)
                )
            )
    except RotationError as error:
        raise RotationError(f"setSecret: {error}") from None
    except Exception as error:  # any driver error, redacted
        raise RotationError(f"setSecret: {_safe(one_line(error), *secrets)}") from None
    log.info("setSecret: %s has its new password", pending.username)
    proxy_credentials.follow_rotation(client, pending.username, pending.password, token)


def _require_current_login(current: DbSecret, secret_id: str) -> None:
    """The current login must log in where the secret points, or the master
    credentials are not used there."""
    try:
        with _session(current) as connection:
            connection.execute("SELECT 1")
    except RotationError as error:
        raise RotationError(
            f"setSecret: {secret_id}: the current login {current.username} cannot log in at "
            f"{current.host}:{current.port}, so the master login is not used there: {error}"
        ) from None


def _check_pending(current: DbSecret, pending: DbSecret, secret_id: str) -> None:
    """Only ever change the idle login of the same identity on the same server."""
    if pending.username != other_login(current.username):
        raise RotationError(
            f"{secret_id}: the pending login {pending.username} is not the other login of "
            f"{current.username}"
        )
    if len(pending.password) < PASSWORD_LENGTH:
        # The generated ones have this length; a shorter one was put in by hand.
        raise RotationError(
            f"{secret_id}: the pending version's password has {len(pending.password)} "
            f"characters, fewer than the {PASSWORD_LENGTH} of a generated one; refusing it"
        )
    for name in ("host", "port", "dbname"):
        if getattr(pending, name) != getattr(current, name):
            raise RotationError(
                f"{secret_id}: the pending version names {name} {getattr(pending, name)!r}, "
                f"the current one {getattr(current, name)!r}; refusing to rotate"
            )


def probe_secret(client: Any, secret_id: str, token: str) -> None:
    """Log in as AWSPENDING and check it reaches its identity's schemas."""
    pending = _get(client, secret_id, PENDING, token)
    identity = _identity(client, secret_id)
    check_login_of(identity, pending, f"{secret_id}: the pending version")
    _check_trusted(client, secret_id, ("the pending version", pending))
    try:
        with _session(pending) as connection:
            row = connection.execute(
                "SELECT current_user::text, pg_has_role(current_user, %s, 'MEMBER'),"
                " EXISTS (SELECT 1 FROM pg_namespace n"
                "         WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"
                "           AND has_schema_privilege(n.oid, 'USAGE'))",
                (identity,),
            ).fetchone()
    except RotationError as error:
        raise RotationError(f"testSecret: {error}") from None
    except Exception as error:  # e.g. the identity role is missing
        raise RotationError(f"testSecret: {_safe(one_line(error), pending.password)}") from None
    assert row is not None
    user, member, reaches_schema = row
    if user != pending.username:
        raise RotationError(f"testSecret: logged in as {user}, not {pending.username}")
    if not member:
        raise RotationError(f"testSecret: {user} is not a member of {identity}")
    if not reaches_schema:
        raise RotationError(f"testSecret: {user} has USAGE on no schema")
    log.info("testSecret: %s logs in and reaches its schemas", user)


def finish_secret(client: Any, secret_id: str, token: str) -> None:
    """Make the pending version current (AWSPREVIOUS follows the old one)."""
    current_version = _version_with(_versions(client, secret_id), CURRENT)
    if current_version == token:
        log.info("finishSecret: version %s of %s is already current", token, secret_id)
        return
    client.update_secret_version_stage(
        SecretId=secret_id,
        VersionStage=CURRENT,
        MoveToVersionId=token,
        RemoveFromVersionId=current_version,
    )
    log.info("finishSecret: version %s of %s is now current", token, secret_id)


Step = Callable[[Any, str, str], None]
STEP_FUNCTIONS: dict[str, Step] = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": probe_secret,
    "finishSecret": finish_secret,
}


def run_step(client: Any, secret_id: str, token: str, step: str) -> None:
    """One step for one version (`token`), after checking the version is the
    one being rotated; a version that is already current needs nothing."""
    function = STEP_FUNCTIONS.get(step)
    if function is None:
        raise RotationError(f"unknown rotation step {step!r}; expected one of {', '.join(STEPS)}")
    stages = _versions(client, secret_id).get(token)
    if stages is not None and CURRENT in stages:
        log.info("%s: version %s of %s is already current", step, token, secret_id)
        return
    # The service creates the version (AWSPENDING, no value) before
    # createSecret; `rotate_now` lets createSecret create it.
    if (stages is None and step != "createSecret") or (
        stages is not None and PENDING not in stages
    ):
        raise RotationError(f"{step}: version {token} of {secret_id} is not pending rotation")
    function(client, secret_id, token)


# --- entry points ------------------------------------------------------------


@dataclass(frozen=True)
class RotationResult:
    """What a completed rotation left current (no password)."""

    secret_id: str
    version: str
    username: str
    previous_username: str


def rotate_now(client: Any, secret_id: str, token: str | None = None) -> RotationResult:
    """Run the four steps in order, as Secrets Manager would. On failure the
    pending label is taken back (AWSCURRENT never moved), so the next
    rotation, by this command or by the Lambda, starts clean."""
    token = token or str(uuid.uuid4())
    previous = _get(client, secret_id, CURRENT)
    try:
        for step in STEPS:
            run_step(client, secret_id, token, step)
    except Exception:
        _drop_pending(client, secret_id, token)
        raise
    _drop_pending(client, secret_id, token)
    current = _get(client, secret_id, CURRENT)
    return RotationResult(secret_id, token, current.username, previous.username)


def _drop_pending(client: Any, secret_id: str, token: str) -> None:
    try:
        if PENDING in _versions(client, secret_id).get(token, []):
            client.update_secret_version_stage(
                SecretId=secret_id, VersionStage=PENDING, RemoveFromVersionId=token
            )
    except Exception as error:  # best effort: the rotation's own error matters
        log.warning("could not remove %s from version %s: %s", PENDING, token, redact(str(error)))


def secrets_client(region: str | None = None) -> Any:
    """A Secrets Manager client; `SECRETS_MANAGER_ENDPOINT` names a VPC endpoint."""
    import boto3

    return boto3.client(
        "secretsmanager",
        region_name=region,
        endpoint_url=os.environ.get(ENDPOINT_VARIABLE) or None,
    )


def handle(client: Any, event: Mapping[str, Any]) -> None:
    """One invocation by Secrets Manager: `{SecretId, ClientRequestToken, Step}`."""
    try:
        secret_id, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    except KeyError as missing:
        raise RotationError(f"the rotation event lacks {missing}") from None
    described = client.describe_secret(SecretId=secret_id)
    if not described.get("RotationEnabled"):
        raise RotationError(f"{secret_id} does not have rotation enabled")
    run_step(client, secret_id, token, step)


def quiet_aws_logs() -> None:
    """INFO for this module, WARNING for the AWS SDK, whose DEBUG log dumps
    response bodies (secret values included)."""
    logging.getLogger().setLevel(logging.INFO)
    for noisy in ("boto3", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def lambda_handler(event: Mapping[str, Any], context: Any) -> None:
    """The rotation Lambda's entry point (`naapdb.rotate.lambda_handler`)."""
    quiet_aws_logs()
    try:
        handle(secrets_client(), event)
    except RotationError as error:
        log.error("%s", error)
        raise

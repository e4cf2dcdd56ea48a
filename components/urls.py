"""The connection strings the stack hands out, by who should use which
server: application logins through the pooler (when there is one), the
push and anything else that must keep its session direct to the server,
and the readers (`naapdb.replicas`) on a read replica.

`Credentials.connection_urls` are the direct URLs; these functions derive
the others from the same passwords, so every URL of one login carries the
same password and only the address and TLS settings differ. Every result
is secret: it holds passwords."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components.credentials import connection_url
from naapdb.pooler import pools
from naapdb.replicas import read_logins, replica_of
from naapdb.settings import StackSettings


def client_urls(
    settings: StackSettings,
    direct: pulumi.Output[dict[str, str]],
    passwords: Mapping[str, pulumi.Output[str]],
    database: pulumi.Output[str],
    pooler_host: pulumi.Output[str],
    pooler_port: pulumi.Output[int],
    sslmode: str,
    sslrootcert: str | None,
) -> pulumi.Output[dict[str, str]]:
    """Login -> the URL its clients use: the pooler's for a pooled login,
    the direct one for every other (`naapdb.pooler.is_pooled`)."""
    pooled = {pool.login for pool in pools(settings.plan)}

    def build(values: list) -> dict[str, str]:  # type: ignore[type-arg]
        direct_urls, host, port, dbname, known = values
        return {
            login: (
                connection_url(login, known[login], host, port, dbname, sslmode, sslrootcert)
                if login in pooled
                else url
            )
            for login, url in direct_urls.items()
        }

    combined = pulumi.Output.all(direct, pooler_host, pooler_port, database, dict(passwords))
    return pulumi.Output.secret(combined.apply(build))


def read_urls(
    settings: StackSettings,
    passwords: Mapping[str, pulumi.Output[str]],
    endpoints: Sequence[pulumi.Output[str]],
    port: pulumi.Output[int],
    database: pulumi.Output[str],
    sslmode: str,
    sslrootcert: str | None,
) -> pulumi.Output[dict[str, str]]:
    """Reader login -> a URL on one of the replicas, the readers spread over
    them in catalogue order."""
    logins = read_logins(settings.plan, settings.catalog)

    def build(values: list) -> dict[str, str]:  # type: ignore[type-arg]
        hosts, replica_port, dbname, known = values
        return {
            login: connection_url(
                login,
                known[login],
                hosts[replica_of(position, len(hosts))],
                replica_port,
                dbname,
                sslmode,
                sslrootcert,
            )
            for position, login in enumerate(logins)
            if login in known
        }

    combined = pulumi.Output.all(
        pulumi.Output.all(*endpoints),
        port,
        database,
        {login: passwords[login] for login in logins if login in passwords},
    )
    return pulumi.Output.secret(combined.apply(build))

"""`RdsProxy`: Amazon RDS Proxy in front of the prod instance (`naap-db:pooler`
kind `rds`).

- One Secrets Manager secret per pooled login (`naapdb.proxy_credentials`
  says why per login, not per identity), first holding the password Pulumi
  generated (`_a`), or none yet (`_b`, which nobody can log in as until its
  first rotation). Under alternating rotation the rotation owns their
  values afterwards, as it owns the identity secrets'.
- An IAM role RDS assumes, allowed to read those secrets and nothing else
  (by name: `naap-db/<stack>/proxy/*` of this account and region).
- The proxy itself: PostgreSQL, TLS required, SCRAM from clients, in the
  instance's subnets; its own security group admits 5432 from the networks
  allowed to reach the instance, and it is a member of the client group
  (whose only egress is 5432 to the instance). The client group may reach
  the proxy too.
- Its default target group, whose `max_connections_percent` is the pools'
  share of the server's max_connections (`naapdb.pooler.PoolerBudget`), and
  the instance as its target.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import pulumi
import pulumi_aws as aws

from components.rds import assumed_by, aws_scope, clients_may_reach, security_group
from components.server import DatabaseServer, physical_name, stack_tags
from naapdb import proxy_credentials
from naapdb.plan import Rotation
from naapdb.pooler import RdsPooler, pools
from naapdb.settings import RdsServer, StackSettings

ENGINE_FAMILY = "POSTGRESQL"
CLIENT_AUTH = "POSTGRES_SCRAM_SHA_256"


class RdsProxy(pulumi.ComponentResource):
    """The proxy, its login secrets, its role and its network."""

    endpoint: pulumi.Output[str]
    secret_prefix: str
    secret_arns: dict[str, pulumi.Output[str]]
    """Pooled login -> the ARN of the secret the proxy reads for it."""

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        server: DatabaseServer,
        passwords: Mapping[str, pulumi.Output[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("naap:database:RdsProxy", name, None, opts)
        pooler, server_settings = settings.pooler, settings.server
        budget = settings.pooler_budget
        assert isinstance(pooler, RdsPooler) and isinstance(server_settings, RdsServer)
        assert budget is not None and server.instance is not None
        assert server.client_security_group_id is not None
        tags = stack_tags(settings.stack)
        base = physical_name(settings.stack)
        protected = pulumi.ResourceOptions(parent=self, protect=settings.production)
        self.secret_prefix = proxy_credentials.secret_prefix(settings.stack)
        self.secret_arns = self._login_secrets(name, settings, passwords, tags, protected)

        scope = aws_scope(self)
        role = aws.iam.Role(
            f"{name}-role",
            description=f"naap-db {settings.stack}: RDS Proxy reads the login secrets",
            assume_role_policy=scope.account.apply(
                lambda account: assumed_by("rds.amazonaws.com", account)
            ),
            tags=tags,
            opts=protected,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-secrets",
            role=role.id,
            policy=scope.secrets(self.secret_prefix + "*").apply(proxy_policy),
            opts=protected,
        )
        clients = server.client_security_group_id
        group = security_group(
            f"{name}-sg",
            f"{base}-proxy-",
            f"naap-db {settings.stack}: RDS Proxy, PostgreSQL from allowed networks",
            server_settings,
            clients,
            tags,
            protected,
        )
        clients_may_reach(
            f"{name}-clients-to-proxy", clients, group.id, "RDS Proxy", tags, protected
        )
        proxy = aws.rds.Proxy(
            f"{name}",
            name=f"{base}-proxy",
            engine_family=ENGINE_FAMILY,
            require_tls=True,
            role_arn=role.arn,
            vpc_subnet_ids=list(server_settings.subnet_ids),
            # Its own group admits clients; the client group lets it reach the instance.
            vpc_security_group_ids=[group.id, clients],
            idle_client_timeout=pooler.idle_client_timeout,
            debug_logging=False,
            auths=[
                aws.rds.ProxyAuthArgs(
                    auth_scheme="SECRETS",
                    client_password_auth_type=CLIENT_AUTH,
                    iam_auth="DISABLED",
                    secret_arn=arn,
                    description=f"naap-db login {login}",
                )
                for login, arn in self.secret_arns.items()
            ],
            tags=tags,
            # The role must be able to read the secrets before the proxy uses them.
            opts=pulumi.ResourceOptions(
                parent=self, protect=settings.production, depends_on=[policy]
            ),
        )
        targets = aws.rds.ProxyDefaultTargetGroup(
            f"{name}-targets",
            db_proxy_name=proxy.name,
            connection_pool_config=aws.rds.ProxyDefaultTargetGroupConnectionPoolConfigArgs(
                max_connections_percent=budget.proxy_max_connections_percent,
                connection_borrow_timeout=pooler.connection_borrow_timeout,
            ),
            opts=protected,
        )
        aws.rds.ProxyTarget(
            f"{name}-target",
            db_proxy_name=proxy.name,
            target_group_name=targets.name,
            db_instance_identifier=server.instance.identifier,
            opts=protected,
        )
        self.endpoint = proxy.endpoint
        self.register_outputs({"endpoint": self.endpoint, "secret_arns": self.secret_arns})

    def _login_secrets(
        self,
        name: str,
        settings: StackSettings,
        passwords: Mapping[str, pulumi.Output[str]],
        tags: dict[str, str],
        protected: pulumi.ResourceOptions,
    ) -> dict[str, pulumi.Output[str]]:
        """One secret per pooled login, holding its first password (or none)."""
        rotated = settings.credentials.rotation is Rotation.ALTERNATING
        # Under alternating rotation the rotation writes new values.
        version_opts = pulumi.ResourceOptions.merge(
            protected, pulumi.ResourceOptions(ignore_changes=["secret_string"] if rotated else [])
        )
        arns: dict[str, pulumi.Output[str]] = {}
        for pool in pools(settings.plan):
            login = pool.login
            secret = aws.secretsmanager.Secret(
                f"{name}-{login}",
                name=self.secret_prefix + login,
                description=f"naap-db {settings.stack}: {login}'s credentials for RDS Proxy",
                tags=tags,
                opts=protected,
            )
            # No password yet (`_b`): the proxy cannot log in as it, nor can anyone.
            password = passwords.get(login, pulumi.Output.from_input(""))
            value: pulumi.Output[str] = pulumi.Output.secret(password.apply(_document_of(login)))
            aws.secretsmanager.SecretVersion(
                f"{name}-{login}", secret_id=secret.id, secret_string=value, opts=version_opts
            )
            arns[login] = secret.arn
        return arns


def _document_of(login: str) -> Callable[[str], str]:
    def document(password: str) -> str:
        return proxy_credentials.document(login, password)

    return document


def proxy_policy(secrets_pattern: str) -> str:
    """The proxy role's inline policy: read the login secrets, nothing else
    (they are encrypted with Secrets Manager's own key, which needs no grant)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadTheLoginSecrets",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue"],
                    "Resource": secrets_pattern,
                }
            ],
        }
    )

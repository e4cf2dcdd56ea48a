"""Generated passwords for every login role of the plan.

Each password's `keepers` hold its rotation epoch (`naap-db:credentials.epoch`
for all roles, `naap-db:credentials.epochs.<role>` for one), so bumping an
epoch and running `pulumi up` replaces that password and nothing else."""

from __future__ import annotations

import pulumi
import pulumi_random as random

from naapdb.settings import StackSettings

# Letters and digits only: safe unescaped in a URL, a libpq key=value string
# and a shell, and 40 of them still carry over 230 bits.
PASSWORD_SPECIAL = False


class Credentials(pulumi.ComponentResource):
    """One `RandomPassword` per login role."""

    passwords: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, settings: StackSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("naap:database:Credentials", name, None, opts)
        credentials = settings.credentials
        self.passwords = {}
        for role in settings.plan.login_roles:
            password = random.RandomPassword(
                f"{name}-{role.name}",
                length=credentials.password_length,
                special=PASSWORD_SPECIAL,
                keepers={
                    "role": role.name,
                    "epoch": str(credentials.epoch),
                    "role_epoch": str(credentials.epoch_of(role.name)),
                },
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.passwords[role.name] = pulumi.Output.secret(password.result)
        self.register_outputs({"roles": sorted(self.passwords)})

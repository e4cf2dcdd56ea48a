"""The naap-db policy pack (`pulumi preview --policy-pack policy`). The CLI runs
`__main__.py` directly; this file only lets the tests import `policy.policies`."""

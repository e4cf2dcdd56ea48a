"""The Pulumi layer: one ComponentResource per concern. The only place
`pulumi.Config` is read is `components.settings`."""

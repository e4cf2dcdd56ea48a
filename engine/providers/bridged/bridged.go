// Package bridged holds the ProviderInfo of the two bridged plugins, shared by
// the tfgen programs that generate their Pulumi package schema at build time
// (pulumi-tfgen-postgresql, pulumi-tfgen-random) and the plugins that embed it
// (pulumi-resource-postgresql, pulumi-resource-random), as Pulumi's own
// provider repositories share provider/resources.go.
package bridged

import (
	"strings"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/terraform-providers/terraform-provider-postgresql/postgresql"
	"github.com/terraform-providers/terraform-provider-random/shim"
)

// PostgreSQL is the upstream Terraform provider (cyrilgdn's, the one
// pulumi-postgresql bridges) with pulumi-postgresql's tokens, config defaults
// (`sslmode` from PGSSLMODE, `connect_timeout` 180) and Grant's
// deleteBeforeReplace.
func PostgreSQL(version string) tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:           shimv2.NewProvider(postgresql.Provider()),
		Name:        "postgresql",
		Version:     version,
		GitHubOrg:   "cyrilgdn",
		Repository:  "https://github.com/pulumi/pulumi-postgresql",
		DisplayName: "PostgreSQL",
		Config: map[string]*tfbridge.SchemaInfo{
			"sslmode":         {Default: &tfbridge.DefaultInfo{EnvVars: []string{"PGSSLMODE"}}},
			"connect_timeout": {Default: &tfbridge.DefaultInfo{EnvVars: []string{"PGCONNECT_TIMEOUT"}, Value: 180}},
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			"postgresql_grant": {Tok: "postgresql:index/grant:Grant", DeleteBeforeReplace: true},
		},
	}
	info.MustComputeTokens(tokens.SingleModule("postgresql_", "index", tokens.MakeStandard("postgresql")))
	return info
}

// Random is the upstream Terraform provider (the one pulumi-random bridges)
// through the plugin-framework bridge, with pulumi-random's tokens.
// `metadata` is the bridge-metadata.json tfgen wrote ("{}" before the first
// generation).
func Random(version string, metadata []byte) tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:            pftfbridge.ShimProvider(shim.NewProvider()),
		Name:         "random",
		Version:      version,
		GitHubOrg:    "hashicorp",
		Repository:   "https://github.com/pulumi/pulumi-random",
		DisplayName:  "random",
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
	}
	info.MustComputeTokens(tokens.SingleModule("random_", "index", randomToken))
	return info
}

// randomToken keeps the `random` prefix, as pulumi-random does: random_password
// is random:index/randomPassword:RandomPassword.
func randomToken(module, name string) (string, error) {
	camel := "Random"
	for _, word := range strings.Split(name, "_") {
		camel += strings.ToUpper(word[:1]) + word[1:]
	}
	return "random:" + module + "/" + strings.ToLower(camel[:1]) + camel[1:] + ":" + camel, nil
}

// Command pulumi-resource-postgresql is the PostgreSQL resource plugin of the
// integration suite: the upstream Terraform provider (cyrilgdn's, the one
// pulumi-postgresql bridges) served through pulumi-terraform-bridge, with the
// tokens pulumi-postgresql's Python SDK uses. pulumi-postgresql's own provider
// module is not served by the Go proxy here (docs/engine.md).
package main

import (
	"github.com/terraform-providers/terraform-provider-postgresql/postgresql"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
)

// Version is the pulumi_postgresql Python SDK's plugin version (set by the build).
var Version = "3.18.2"

func main() {
	info := tfbridge.ProviderInfo{
		P:       shimv2.NewProvider(postgresql.Provider()),
		Name:    "postgresql",
		Version: Version,
		Config: map[string]*tfbridge.SchemaInfo{
			"sslmode":         {Default: &tfbridge.DefaultInfo{EnvVars: []string{"PGSSLMODE"}}},
			"connect_timeout": {Default: &tfbridge.DefaultInfo{EnvVars: []string{"PGCONNECT_TIMEOUT"}, Value: 180}},
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			"postgresql_grant": {Tok: "postgresql:index/grant:Grant", DeleteBeforeReplace: true},
		},
	}
	info.MustComputeTokens(tokens.SingleModule("postgresql_", "index", tokens.MakeStandard("postgresql")))
	tfbridge.Main("postgresql", Version, info, packageSchema("postgresql", Version))
}

func packageSchema(name, version string) []byte {
	return []byte(`{"name":"` + name + `","version":"` + version + `"}`)
}

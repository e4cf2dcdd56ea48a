// Command pulumi-resource-postgresql is the PostgreSQL resource plugin of the
// integration suite: the upstream Terraform provider (cyrilgdn's, the one
// pulumi-postgresql bridges) served through pulumi-terraform-bridge, with the
// tokens pulumi-postgresql's Python SDK uses and the package schema
// pulumi-tfgen-postgresql generated at build time. pulumi-postgresql's own
// provider module is not served by the Go proxy here (docs/engine.md).
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"

	"github.com/naap/naap-db/engine/providers/bridged"
)

// Version is the pulumi_postgresql Python SDK's plugin version (set by the build).
var Version = "3.18.2"

// The schema scripts/build-engine.sh generates before this build.
//
//go:embed schema-embed.json
var schema []byte

func main() {
	tfbridge.Main("postgresql", Version, bridged.PostgreSQL(Version), schema)
}

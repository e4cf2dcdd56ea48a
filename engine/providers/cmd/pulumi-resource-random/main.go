// Command pulumi-resource-random is the random resource plugin of the
// integration suite: the upstream Terraform provider (the one pulumi-random
// bridges) served through pulumi-terraform-bridge's plugin-framework bridge,
// with pulumi-random's tokens and the package schema and bridge metadata
// pulumi-tfgen-random generated at build time. pulumi-random's own provider
// module is not served by the Go proxy here (docs/engine.md).
package main

import (
	"context"
	_ "embed"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"

	"github.com/naap/naap-db/engine/providers/bridged"
)

// Version is the pulumi_random Python SDK's plugin version (set by the build).
var Version = "4.21.4"

// What scripts/build-engine.sh generates before this build.
var (
	//go:embed schema-embed.json
	schema []byte
	//go:embed bridge-metadata.json
	metadata []byte
)

func main() {
	info := bridged.Random(Version, metadata)
	pftfbridge.Main(context.Background(), "random", info, pftfbridge.ProviderMetadata{PackageSchema: schema})
}

// Command pulumi-tfgen-postgresql generates the postgresql plugin's Pulumi
// package schema with the bridge's own tfgen, as pulumi-postgresql's build
// does: `pulumi-tfgen-postgresql schema --out DIR` (scripts/build-engine.sh).
package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"

	"github.com/naap/naap-db/engine/providers/bridged"
)

// Version is the pulumi_postgresql Python SDK's plugin version (set by the build).
var Version = "3.18.2"

func main() {
	tfgen.Main("postgresql", Version, bridged.PostgreSQL(Version))
}

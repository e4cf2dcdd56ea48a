// Command pulumi-tfgen-random generates the random plugin's Pulumi package
// schema and bridge metadata with the bridge's own plugin-framework tfgen, as
// pulumi-random's build does: `pulumi-tfgen-random schema --out DIR`
// (scripts/build-engine.sh).
package main

import (
	pftfgen "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"

	"github.com/naap/naap-db/engine/providers/bridged"
)

// Version is the pulumi_random Python SDK's plugin version (set by the build).
var Version = "4.21.4"

func main() {
	pftfgen.Main("random", bridged.Random(Version, []byte("{}")))
}

// Command pulumi-resource-random is the random resource plugin of the
// integration suite: the upstream Terraform provider (the one pulumi-random
// bridges) served through pulumi-terraform-bridge's plugin-framework bridge,
// with pulumi-random's tokens. pulumi-random's own provider module is not
// served by the Go proxy here (docs/engine.md).
package main

import (
	"context"
	"strings"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	"github.com/terraform-providers/terraform-provider-random/shim"
)

// Version is the pulumi_random Python SDK's plugin version (set by the build).
var Version = "4.21.4"

func main() {
	info := tfbridge.ProviderInfo{
		P:       pftfbridge.ShimProvider(shim.NewProvider()),
		Name:    "random",
		Version: Version,
		// The plugin-framework bridge keeps its bookkeeping here; a new
		// provider starts with none.
		MetadataInfo: tfbridge.NewProviderMetadata([]byte("{}")),
	}
	info.MustComputeTokens(tokens.SingleModule("random_", "index", token))
	schema := []byte(`{"name":"random","version":"` + Version + `"}`)
	pftfbridge.Main(context.Background(), "random", info, pftfbridge.ProviderMetadata{PackageSchema: schema})
}

// token keeps the `random` prefix, as pulumi-random does: random_password is
// random:index/randomPassword:RandomPassword.
func token(module, name string) (string, error) {
	camel := "Random"
	for _, word := range strings.Split(name, "_") {
		camel += strings.ToUpper(word[:1]) + word[1:]
	}
	return "random:" + module + "/" + strings.ToLower(camel[:1]) + camel[1:] + ":" + camel, nil
}

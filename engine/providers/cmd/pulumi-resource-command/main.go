// Command pulumi-resource-command is the command plugin of the integration
// suite: `command:local:Command` built on pulumi-go-provider. pulumi-command's
// own provider module is not served by the Go proxy here (docs/engine.md).
package main

import (
	"context"
	"fmt"
	"os"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/naap/naap-db/engine/providers/command/local"
)

// Version is the pulumi_command Python SDK's plugin version (set by the build).
var Version = "1.2.1"

func main() {
	provider, err := infer.NewProviderBuilder().
		WithResources(infer.Resource(local.Command{})).
		Build()
	if err == nil {
		err = p.RunProvider(context.Background(), "command", Version, provider)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

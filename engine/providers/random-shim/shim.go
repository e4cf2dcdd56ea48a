// Package shim exposes the random provider's constructor, which upstream keeps
// in an internal package: Go lets a module whose path lies inside
// terraform-provider-random import it.
package shim

import (
	"github.com/hashicorp/terraform-plugin-framework/provider"

	upstream "github.com/terraform-providers/terraform-provider-random/internal/provider"
)

// NewProvider returns the upstream random provider.
func NewProvider() provider.Provider {
	return upstream.New()
}

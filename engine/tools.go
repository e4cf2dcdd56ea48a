//go:build tools

// Package engine pins the Go programs naap-db's integration suite runs; the
// build script compiles them, nothing imports this file.
package engine

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)

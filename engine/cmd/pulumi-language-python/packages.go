package main

// The Pulumi packages a program needs, as Pulumi's host finds them
// (GetRequiredPackages, listPulumiPackageInfos, packageDependencyFromPluginJSON
// and determinePluginVersion in its main.go): every package installed in the
// venv that ships a pulumi-plugin.json, or is named pulumi-*, is one resource
// plugin at the version that file names. The venv is created first when it
// is missing, as `pulumi up` and `pulumi preview` promise.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"regexp"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
)

// Packages known to have no plugin (Pulumi's packagesWithoutPlugins).
var packagesWithoutPlugins = map[string]bool{"pulumi-policy": true, "pulumi-esc-sdk": true}

// pluginJSONPaths is Pulumi's pulumiPluginJSONPathsScript: each named
// distribution's pulumi-plugin.json, or "" when it ships none.
const pluginJSONPaths = `import importlib.metadata, importlib.util, os, sys, json
result = {}
for pkg_name in sys.argv[1:]:
	try:
		dist = importlib.metadata.distribution(pkg_name)
		module = dist.metadata['Name'].replace('-', '_')
		spec = importlib.util.find_spec(module)
		locs = list(spec.submodule_search_locations or []) if spec else []
		found = [p for l in locs for p in [os.path.join(str(l), 'pulumi-plugin.json')] if os.path.isfile(p)]
		result[pkg_name] = found[0] if found else ''
	except Exception:
		result[pkg_name] = ''
print(json.dumps(result))`

func (h *host) GetRequiredPackages(
	ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	tc, _, err := resolve(req.Info, false)
	if err != nil {
		return nil, err
	}
	stdout, stderr, err := h.engineWriters(ctx)
	if err != nil {
		return nil, err
	}
	if err := tc.EnsureVenv(ctx, req.Info.ProgramDirectory, false, true, stdout, stderr); err != nil {
		return nil, err
	}
	installed, err := tc.ListPackages(ctx, true)
	if err != nil {
		return nil, err
	}
	paths, err := pluginJSONFiles(ctx, tc, installed)
	if err != nil {
		return nil, err
	}
	packages := []*pulumirpc.PackageDependency{}
	for _, pkg := range installed {
		if packagesWithoutPlugins[pkg.Name] {
			continue
		}
		var manifest *plugin.PulumiPluginJSON
		if path := paths[pkg.Name]; path != "" {
			data, err := os.ReadFile(path)
			if err == nil {
				manifest = &plugin.PulumiPluginJSON{}
				if err := json.Unmarshal(data, manifest); err != nil {
					return nil, fmt.Errorf("failed to parse pulumi-plugin.json for %s: %w", pkg.Name, err)
				}
			}
		}
		if manifest == nil && !strings.HasPrefix(pkg.Name, "pulumi-") {
			continue
		}
		if dependency := packageDependency(pkg, manifest); dependency != nil {
			packages = append(packages, dependency)
		}
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: packages}, nil
}

// pluginJSONFiles maps each package to its pulumi-plugin.json ("" for none).
func pluginJSONFiles(
	ctx context.Context, tc toolchain.Toolchain, packages []plugin.DependencyInfo,
) (map[string]string, error) {
	paths := map[string]string{}
	if len(packages) == 0 {
		return paths, nil
	}
	args := []string{"-c", pluginJSONPaths}
	for _, pkg := range packages {
		args = append(args, pkg.Name)
	}
	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return paths, nil
	}
	out, err := cmd.Output()
	if err != nil {
		return paths, nil
	}
	if err := json.Unmarshal(out, &paths); err != nil {
		return nil, fmt.Errorf("failed to parse pulumi-plugin.json paths: %w", err)
	}
	return paths, nil
}

// packageDependency is the plugin a package stands for: nil when its
// pulumi-plugin.json says `resource: false`, or when its version cannot be
// translated into a plugin version.
func packageDependency(pkg plugin.DependencyInfo, manifest *plugin.PulumiPluginJSON) *pulumirpc.PackageDependency {
	var name, version, server string
	var parameterization, extension *pulumirpc.PackageParameterization
	if manifest != nil {
		if !manifest.Resource {
			return nil
		}
		name, version, server = manifest.Name, manifest.Version, manifest.Server
		parameterization = toParameterization(manifest.Parameterization)
		extension = toParameterization(manifest.ExtensionParameterization)
	}
	if name == "" {
		name = strings.TrimPrefix(pkg.Name, "pulumi-")
	}
	if version == "" {
		var ok bool
		if version, ok = pluginVersion(pkg.Version); !ok {
			return nil
		}
	}
	if !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	return &pulumirpc.PackageDependency{
		Name: name, Version: version, Kind: "resource", Server: server,
		Parameterization: parameterization, Extension: extension,
	}
}

func toParameterization(p *plugin.PulumiParameterizationJSON) *pulumirpc.PackageParameterization {
	if p == nil {
		return nil
	}
	return &pulumirpc.PackageParameterization{Name: p.Name, Version: p.Version, Value: p.Value}
}

// PEP 440's N(.N)*[{a|b|rc}N][.postN][.devN], the subset Pulumi's
// determinePluginVersion translates.
var pep440 = regexp.MustCompile(`^(\d+(?:\.\d+)*)(?:(a|b|rc)(\d*))?(?:\.post(\d*))?(?:\.dev(\d*))?$`)

// pluginVersion translates a package version into its plugin's semver:
// 1.0 -> 1.0.0, 1.2.3a4 -> 1.2.3-alpha.4, 1.2.3rc4 -> 1.2.3-rc.4,
// 1.2.3.post4 -> 1.2.3+post4, 1.2.3.post4.dev5 -> 1.2.3+post4dev5.
func pluginVersion(packageVersion string) (string, bool) {
	match := pep440.FindStringSubmatch(packageVersion)
	if match == nil {
		return "", false
	}
	segments := strings.Split(match[1], ".")
	for len(segments) < 3 {
		segments = append(segments, "0")
	}
	version := strings.Join(segments, ".")
	if match[2] != "" {
		version += "-" + map[string]string{"a": "alpha", "b": "beta", "rc": "rc"}[match[2]] + "." + match[3]
	}
	build := ""
	if strings.Contains(packageVersion, ".post") {
		build += "post" + match[4]
	}
	if strings.Contains(packageVersion, ".dev") {
		build += "dev" + match[5]
	}
	if build != "" {
		version += "+" + build
	}
	return version, true
}

// engineWriters log the venv's creation to the engine, as ephemeral messages
// of one stream (Pulumi's createEngineWriters).
func (h *host) engineWriters(ctx context.Context) (*logWriter, *logWriter, error) {
	conn, err := grpc.NewClient(h.engine,
		grpc.WithTransportCredentials(insecure.NewCredentials()), rpcutil.GrpcChannelOptions())
	if err != nil {
		return nil, nil, fmt.Errorf("language host could not make connection to engine: %w", err)
	}
	engine := pulumirpc.NewEngineClient(conn)
	stream := rand.Int31() //nolint:gosec // a stream id, not a secret
	return &logWriter{ctx, engine, stream, pulumirpc.LogSeverity_INFO},
		&logWriter{ctx, engine, stream, pulumirpc.LogSeverity_ERROR}, nil
}

type logWriter struct {
	ctx      context.Context
	engine   pulumirpc.EngineClient
	stream   int32
	severity pulumirpc.LogSeverity
}

func (w *logWriter) Write(p []byte) (int, error) {
	_, err := w.engine.Log(w.ctx, &pulumirpc.LogRequest{
		Message: strings.ToValidUTF8(string(p), "\uFFFD"), Ephemeral: true,
		StreamId: w.stream, Severity: w.severity,
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

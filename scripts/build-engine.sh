#!/usr/bin/env bash
# Builds the real Pulumi engine the integration suite runs, from the Go module
# pinned in engine/ (go.mod/go.sum are the record): the `pulumi` CLI, the
# Python language host with its executor script, and the resource plugins an
# `external`-server stack uses (postgresql, random, command), each stamped
# with the version its Python SDK declares in pulumi-plugin.json and installed
# with `pulumi plugin install --file` into the engine's own PULUMI_HOME, so the
# engine never downloads a plugin and the user's ~/.pulumi is left alone.
#
# Cached and idempotent: Go's module and build caches, and the output in
# $NAAPDB_ENGINE_DIR (default ~/.cache/naap-db/engine); a run whose inputs
# match the last one's stamp builds nothing. The last line printed is the
# directory to put first on PATH. docs/engine.md tells where each piece comes
# from and why.
#
# Usage: bash scripts/build-engine.sh [PYTHON]   (PYTHON: the interpreter whose
# installed pulumi_* SDKs set the plugin versions; default venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${1:-venv/bin/python}
engine_dir=${NAAPDB_ENGINE_DIR:-$HOME/.cache/naap-db/engine}
bin="$engine_dir/bin"
export PULUMI_HOME="$engine_dir/home"
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true

command -v go >/dev/null || { echo "error: go is not on PATH; install Go 1.26+ to build the engine" >&2; exit 2; }
[ -x "$python" ] || { echo "error: $python not found; run 'bash scripts/test.sh --co -q' first to create the venv" >&2; exit 2; }

plugin_version() {
  "$python" -c 'import json, sys; from importlib import resources
print(json.loads(resources.files("pulumi_" + sys.argv[1]).joinpath("pulumi-plugin.json").read_text())["version"])' "$1"
}
declare -A versions=()
for plugin in postgresql random command; do versions[$plugin]=$(plugin_version "$plugin"); done
cli_version=$(sed -n 's#^\s*github.com/pulumi/pulumi/pkg/v3 \(v[0-9.]*\)$#\1#p' engine/go.mod)

stamp=$( { go version; echo "$cli_version ${versions[*]}"; cat engine/go.mod engine/go.sum;
           find engine -name '*.go' -o -name 'go.*' | sort | xargs cat; } | sha256sum | cut -d' ' -f1)
if [ -f "$engine_dir/stamp" ] && [ "$(cat "$engine_dir/stamp")" = "$stamp" ] && [ -x "$bin/pulumi" ]; then
  echo "engine up to date in $engine_dir (pulumi $cli_version; postgresql ${versions[postgresql]}, random ${versions[random]}, command ${versions[command]})"
  echo "$bin"
  exit 0
fi

mkdir -p "$bin" "$PULUMI_HOME"
cd engine
echo "building pulumi $cli_version and pulumi-language-python into $bin"
go build -trimpath -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$cli_version" \
  -o "$bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
go build -trimpath -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$cli_version" \
  -o "$bin/pulumi-language-python" ./cmd/pulumi-language-python
# The executor script ships in the sdk/v3 module; the host runs it from its own directory.
sdk_dir=$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$bin/pulumi-language-python-exec"
cd providers
for plugin in postgresql random command; do
  version=${versions[$plugin]}
  echo "building pulumi-resource-$plugin $version"
  go build -trimpath -ldflags "-X main.Version=$version" -o "$engine_dir/plugins/pulumi-resource-$plugin" \
    "./cmd/pulumi-resource-$plugin"
  "$bin/pulumi" plugin rm resource "$plugin" --all --yes >/dev/null 2>&1 || true
  "$bin/pulumi" plugin install resource "$plugin" "$version" --file "$engine_dir/plugins/pulumi-resource-$plugin" >/dev/null
done
cd "$root"
echo "$stamp" > "$engine_dir/stamp"
echo "engine built in $engine_dir ($(du -sh "$engine_dir" | cut -f1)); PULUMI_HOME=$PULUMI_HOME"
echo "$bin"

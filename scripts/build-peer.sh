#!/usr/bin/env bash
# Builds the peer that bench/peer measures Pulumi against: the OpenTofu CLI
# and cyrilgdn/terraform-provider-postgresql (the same provider code the
# bridged pulumi-postgresql plugin runs) as a Terraform provider binary, both
# from their Go modules at the pinned versions below, each inside its own
# module (so its own go.mod, go.sum and replaces decide every dependency).
# The provider is laid out as a filesystem mirror that the CLI config file
# written beside it points at, so `tofu init` installs it with no registry.
#
# Cached and idempotent: Go's module and build caches, and the output in
# $NAAPDB_PEER_DIR (default ~/.cache/naap-db/peer); a run whose inputs match
# the last one's stamp builds nothing. The last line printed is the directory.
# docs/bench.md says how bench/peer uses it.
#
# Usage: bash scripts/build-peer.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The pins: module version and the go.sum hash (h1:) the checksum database gave it.
TOFU_MODULE=github.com/opentofu/opentofu
TOFU_VERSION=v1.10.7
TOFU_SUM=h1:8alUSELAsxZ4X5NdYCKN8lclBAzV1KwaZnuuM88yt1Y=
PROVIDER_MODULE=github.com/cyrilgdn/terraform-provider-postgresql
PROVIDER_VERSION=v1.27.0
PROVIDER_SUM=h1:8syK3HUpUoZmScfcUHYO7e8PrASpPIYt3bWLpONo0cQ=
# Where `tofu init` looks the provider up: the address the HCL's
# required_providers names (registry.opentofu.org/cyrilgdn/postgresql).
PROVIDER_ADDRESS=registry.opentofu.org/cyrilgdn/postgresql

peer_dir=${NAAPDB_PEER_DIR:-$HOME/.cache/naap-db/peer}
command -v go >/dev/null || { echo "error: go is not on PATH; install Go 1.24+ to build the peer" >&2; exit 2; }

stamp=$( { go version; echo "$TOFU_VERSION $TOFU_SUM $PROVIDER_VERSION $PROVIDER_SUM"; cat "$0"; } | sha256sum | cut -d' ' -f1)
if [ -f "$peer_dir/stamp" ] && [ "$(cat "$peer_dir/stamp")" = "$stamp" ] && [ -x "$peer_dir/bin/tofu" ]; then
  echo "peer up to date in $peer_dir (opentofu $TOFU_VERSION, terraform-provider-postgresql $PROVIDER_VERSION)"
  echo "$peer_dir"
  exit 0
fi

# The module's source, checked against its pin; prints the directory.
module_dir() {
  local module=$1 version=$2 sum=$3 json dir got
  json=$(cd / && GOFLAGS=-mod=mod go mod download -json "$module@$version")
  dir=$(printf '%s' "$json" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  got=$(printf '%s' "$json" | sed -n 's/^\s*"Sum": "\(.*\)",$/\1/p')
  if [ "$got" != "$sum" ]; then
    echo "error: $module@$version has sum $got, pinned $sum" >&2
    exit 1
  fi
  printf '%s' "$dir"
}

mkdir -p "$peer_dir/bin"
tofu_src=$(module_dir "$TOFU_MODULE" "$TOFU_VERSION" "$TOFU_SUM")
echo "building tofu $TOFU_VERSION into $peer_dir/bin"
(cd "$tofu_src" && go build -trimpath -ldflags "-X github.com/opentofu/opentofu/version.dev=no" \
  -o "$peer_dir/bin/tofu" ./cmd/tofu)

provider_src=$(module_dir "$PROVIDER_MODULE" "$PROVIDER_VERSION" "$PROVIDER_SUM")
plain=${PROVIDER_VERSION#v}
mirror="$peer_dir/mirror/$PROVIDER_ADDRESS/$plain/$(go env GOOS)_$(go env GOARCH)"
rm -rf "$peer_dir/mirror"
mkdir -p "$mirror"
echo "building terraform-provider-postgresql $PROVIDER_VERSION into $mirror"
(cd "$provider_src" && go build -trimpath -o "$mirror/terraform-provider-postgresql_$PROVIDER_VERSION" .)

# The CLI config: the mirror, nothing from the network.
cat > "$peer_dir/tofurc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$peer_dir/mirror"
    include = ["$PROVIDER_ADDRESS"]
  }
  direct {
    exclude = ["$PROVIDER_ADDRESS"]
  }
}
EOF
echo "$stamp" > "$peer_dir/stamp"
echo "peer built in $peer_dir ($(du -sh "$peer_dir" | cut -f1)); TF_CLI_CONFIG_FILE=$peer_dir/tofurc"
echo "$peer_dir"

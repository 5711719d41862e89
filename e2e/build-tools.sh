#!/usr/bin/env bash
# build-tools.sh builds the tools the end-to-end tests run, unless they are
# already cached, and prints the Collector binary's path on stdout (build
# logs go to stderr). The tests run it themselves on demand (collector.Binary);
# run it by hand to build ahead of time.
#
# The Collector is built by the Collector builder from collector/builder.yaml
# into ${NEXUS_TOOLS_DIR:-$HOME/.cache/nexus-tools}/otelcol-<first 12 hex
# digits of the manifest's SHA-256>/otelcol, outside the repository. A lock
# file serializes concurrent builds (two test packages, or a test and this
# script) and the finished directory is renamed into place in one step, so a
# reader never sees a half-built binary. The first build takes 2 to 4
# minutes on 2 cores.
set -euo pipefail

builder=go.opentelemetry.io/collector/cmd/builder@v0.161.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/collector/builder.yaml"
tools="${NEXUS_TOOLS_DIR:-$HOME/.cache/nexus-tools}"
hash="$(sha256sum "$manifest" | cut -c1-12)"
dir="$tools/otelcol-$hash"
bin="$dir/otelcol"

if [[ -x $bin ]]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$tools"
exec 9>"$dir.lock"
flock 9
if [[ -x $bin ]]; then # built by another process while this one waited
	echo "$bin"
	exit 0
fi

work="$(mktemp -d "$tools/.otelcol-$hash.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "build-tools.sh: building the Collector from $manifest (2 to 4 minutes on 2 cores)" >&2
start=$SECONDS
# --output-path is deprecated in favour of dist.output_path, which would tie
# the manifest (and so its hash) to one machine's cache directory.
go run "$builder" --config "$manifest" --output-path "$work/src" >&2
mkdir "$work/out"
mv "$work/src/otelcol" "$work/out/otelcol"
cp "$manifest" "$work/out/builder.yaml"
rm -rf "$dir" # a leftover without a binary; the lock is held
mv -T "$work/out" "$dir"
echo "build-tools.sh: built $bin in $((SECONDS - start))s" >&2
echo "$bin"

#!/usr/bin/env bash
# build-tools.sh builds or installs the tools the end-to-end tests run,
# unless they are already there:
#
#   build-tools.sh             all three; prints the Collector binary's path
#   build-tools.sh collector   the Collector; prints its path
#   build-tools.sh jaeger      Jaeger v2; prints its path
#   build-tools.sh prometheus  Prometheus (and promtool); prints its path
#
# Paths go to stdout, progress and logs to stderr. The tests run it
# themselves on demand (collector.Binary, jaeger.Binary,
# collector.PrometheusBinary); ../scripts/test runs it before the end-to-end
# tests, and it can be run by hand to prepare a machine ahead of time.
#
# Builds go to ${NEXUS_TOOLS_DIR:-$HOME/.cache/nexus-tools}, outside the
# repository, each in <name>-<first 12 hex digits of the SHA-256 of what it
# is built from>/<name>: editing that input means a new build, an unchanged
# one is reused. A lock file per build serializes concurrent builds (two test
# packages, or a test and this script) and the finished directory is renamed
# into place in one step, so a reader never sees a half-built binary.
#
# The Collector is built by the Collector builder from collector/builder.yaml
# (otelcol-<hash>/otelcol): 2 to 4 minutes on 2 cores the first time.
#
# Jaeger is github.com/jaegertracing/jaeger/cmd/jaeger, a tool of the module
# in jaeger/tools (its go.mod and go.sum are the hash's input), built with go
# build (jaeger-<hash>/jaeger). A plain "go install ...@version" is refused
# because Jaeger's go.mod has replace directives. The first build is long
# (see README.md for the measured time).
#
# Prometheus is the one on PATH; if there is none, Debian's prometheus
# package is installed (apt-get, as root; a few seconds), under a lock file
# too. Its service is not started: the tests start their own Prometheus on
# loopback. Not root, or no apt-get: the script fails and says what to
# install; the tests then fail too (a missing real component is never a
# reason to skip).
set -euo pipefail

builder=go.opentelemetry.io/collector/cmd/builder@v0.161.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="${NEXUS_TOOLS_DIR:-$HOME/.cache/nexus-tools}"

# cached_build NAME HASH BUILD prints the path of $tools/NAME-HASH/NAME,
# first running the function BUILD WORK to build it, unless it is there.
# BUILD leaves the binary in WORK/out/NAME (and anything else worth keeping
# beside it in WORK/out), which then becomes $tools/NAME-HASH in one rename,
# under a lock that serializes concurrent builds of the same thing.
cached_build() {
	local name=$1 hash=$2 build=$3
	local dir="$tools/$name-$hash" start
	local bin="$dir/$name"

	if [[ -x $bin ]]; then
		echo "$bin"
		return 0
	fi

	mkdir -p "$tools"
	exec 9>"$dir.lock"
	flock 9
	if [[ -x $bin ]]; then # built by another process while this one waited
		exec 9>&-
		echo "$bin"
		return 0
	fi

	work="$(mktemp -d "$tools/.$name-$hash.XXXXXX")"
	trap 'rm -rf "$work"' EXIT
	start=$SECONDS
	mkdir "$work/out"
	"$build" "$work"
	rm -rf "$dir" # a leftover without a binary; the lock is held
	mv -T "$work/out" "$dir"
	rm -rf "$work"
	trap - EXIT
	exec 9>&-
	echo "build-tools.sh: built $bin in $((SECONDS - start))s" >&2
	echo "$bin"
}

# build_collector builds the Collector unless cached and prints its path.
build_collector() {
	cached_build otelcol "$(sha256sum "$here/collector/builder.yaml" | cut -c1-12)" collector_into
}

# collector_into WORK builds the Collector of collector/builder.yaml into
# WORK/out.
collector_into() {
	local manifest="$here/collector/builder.yaml"
	echo "build-tools.sh: building the Collector from $manifest (2 to 4 minutes on 2 cores)" >&2
	# --output-path is deprecated in favour of dist.output_path, which would tie
	# the manifest (and so its hash) to one machine's cache directory.
	# The builder generates the sources and resolves their modules; the
	# compile is ours, as Jaeger's below: no optimization and no debug
	# information, a third less CPU for a Collector that tests only need
	# to run.
	go run "$builder" --config "$manifest" --output-path "$1/src" --skip-compilation >&2
	go -C "$1/src" build -buildvcs=false -gcflags='all=-N -l -dwarf=false' -ldflags='-s -w' -o "$1/out/otelcol" . >&2
	cp "$manifest" "$1/out/builder.yaml"
}

# build_jaeger builds Jaeger v2 from the tools module in jaeger/tools unless
# cached and prints its path.
build_jaeger() {
	local mod="$here/jaeger/tools"
	cached_build jaeger "$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-12)" jaeger_into
}

# jaeger_into WORK builds Jaeger from the tools module into WORK/out.
jaeger_into() {
	local mod="$here/jaeger/tools"
	echo "build-tools.sh: building Jaeger from $mod (several minutes the first time)" >&2
	# A plain "go install ...@v1.76.0" is refused (Jaeger's go.mod has replace
	# directives); built as a tool of a module of its own, it is an ordinary
	# build. -buildvcs=false: the binary must not depend on this clone's state.
	# -gcflags='all=-N -l' (no optimization, no inlining) takes a third less
	# CPU to compile (measured from an empty build cache: 694 CPU-seconds
	# against 1,024); a Jaeger for tests does not need the speed. Nor does it
	# need debug information: -dwarf=false and -ldflags='-s -w' save the
	# compiler and the linker writing it.
	go -C "$mod" build -buildvcs=false -gcflags='all=-N -l -dwarf=false' -ldflags='-s -w' -o "$1/out/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger >&2
	cp "$mod/go.mod" "$mod/go.sum" "$1/out/"
}

# install_prometheus installs Debian's prometheus package unless prometheus and
# promtool are on PATH, and prints the path of prometheus.
install_prometheus() {
	if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
		command -v prometheus
		return 0
	fi
	if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
		echo "build-tools.sh: prometheus and promtool are not on PATH, and Debian's package can only be installed as root with apt-get:" >&2
		echo "build-tools.sh: run 'apt-get install --no-install-recommends prometheus' as root, or put prometheus and promtool (2.x or 3.x) on PATH" >&2
		return 1
	fi
	local start policy=/usr/sbin/policy-rc.d added_policy=
	mkdir -p "$tools"
	exec 8>"$tools/prometheus.lock"
	flock 8
	if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
		echo "build-tools.sh: installing Debian's prometheus package" >&2
		start=$SECONDS
		# Keep the package's service from starting (on a machine with an init
		# system it would listen on :9090): policy-rc.d's 101 refuses it.
		if [[ ! -e $policy ]]; then
			printf '#!/bin/sh\nexit 101\n' >"$policy"
			chmod 755 "$policy"
			added_policy=1
		fi
		local ok=
		if DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >&2; then
			ok=1
		else # an empty or stale package list: refresh it once
			echo "build-tools.sh: apt-get install failed; running apt-get update and trying again" >&2
			if apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >&2; then
				ok=1
			fi
		fi
		[[ -n $added_policy ]] && rm -f "$policy"
		if [[ -z $ok ]]; then
			exec 8>&-
			echo "build-tools.sh: could not install Debian's prometheus package (apt-get's output is above)" >&2
			return 1
		fi
		echo "build-tools.sh: installed prometheus in $((SECONDS - start))s" >&2
	fi
	exec 8>&-
	if ! command -v promtool >/dev/null; then
		echo "build-tools.sh: the prometheus package installed no promtool" >&2
		return 1
	fi
	command -v prometheus
}

case "${1:-all}" in
collector) build_collector ;;
jaeger) build_jaeger ;;
prometheus) install_prometheus ;;
all)
	install_prometheus >/dev/null
	build_jaeger >/dev/null
	build_collector
	;;
*)
	echo "usage: build-tools.sh [collector|jaeger|prometheus]" >&2
	exit 2
	;;
esac

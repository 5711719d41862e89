#!/usr/bin/env bash
# install-postgres.sh makes sure the PostgreSQL server binaries that the
# store/postgres tests run are on this machine, and prints the directory that
# holds them (the one with initdb and postgres).
#
# It looks, in order, at $NEXUS_PG_BIN, at Debian's /usr/lib/postgresql/*/bin
# (the highest version), and at PATH. When none has them, it installs
# Debian's postgresql package (apt-get, as root; under a minute) without
# starting its service: the tests run their own servers on loopback, in
# temporary directories (internal/pgtest). Not root, or no apt-get: it fails
# and says what to install. The tests run it themselves when they find no
# server; scripts/test runs it up front so that a fresh CI machine gets the
# package before the tests start.
set -euo pipefail

# find_bin prints the first directory holding initdb and postgres.
find_bin() {
	local d
	if [[ -n ${NEXUS_PG_BIN:-} ]]; then
		if [[ -x $NEXUS_PG_BIN/initdb && -x $NEXUS_PG_BIN/postgres ]]; then
			echo "$NEXUS_PG_BIN"
			return 0
		fi
		echo "install-postgres.sh: NEXUS_PG_BIN=$NEXUS_PG_BIN holds no initdb and postgres" >&2
		return 2
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -rn); do
		if [[ -x $d/initdb && -x $d/postgres ]]; then
			echo "$d"
			return 0
		fi
	done
	if command -v initdb >/dev/null && command -v postgres >/dev/null; then
		dirname "$(command -v postgres)"
		return 0
	fi
	return 1
}

rc=0
find_bin || rc=$?
if [[ $rc == 0 ]]; then
	exit 0
elif [[ $rc == 2 ]]; then
	exit 1
fi

if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
	echo "install-postgres.sh: no PostgreSQL server binaries (initdb, postgres) found, and Debian's package can only be installed as root with apt-get:" >&2
	echo "install-postgres.sh: run 'apt-get install --no-install-recommends postgresql' as root, or set NEXUS_PG_BIN to a directory holding initdb and postgres (14 or later)" >&2
	exit 1
fi

lockdir="${NEXUS_TOOLS_DIR:-$HOME/.cache/nexus-tools}"
mkdir -p "$lockdir"
exec 8>"$lockdir/postgresql.lock"
flock 8
if find_bin 2>/dev/null; then # installed by another process while this one waited
	exit 0
fi

echo "install-postgres.sh: installing Debian's postgresql package" >&2
start=$SECONDS
# Keep the package's service from starting (on a machine with an init system
# it would take port 5432): policy-rc.d's 101 refuses it.
policy=/usr/sbin/policy-rc.d added_policy=
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	added_policy=1
fi
ok=
if DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >&2; then
	ok=1
else # an empty or stale package list: refresh it once
	echo "install-postgres.sh: apt-get install failed; running apt-get update and trying again" >&2
	if apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >&2; then
		ok=1
	fi
fi
[[ -n $added_policy ]] && rm -f "$policy"
if [[ -z $ok ]]; then
	echo "install-postgres.sh: could not install Debian's postgresql package (apt-get's output is above)" >&2
	exit 1
fi
echo "install-postgres.sh: installed postgresql in $((SECONDS - start))s" >&2
find_bin

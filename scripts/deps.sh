#!/usr/bin/env bash
# make deps: install the Debian packages of scripts/deps.txt that are missing (as root), or say in one line which
# are missing and that their tests will skip (otherwise). Modes: --missing prints the missing ones, one a line.
set -euo pipefail
list=${CUISINE_DB_DEPS_FILE:-"$(dirname "$0")/deps.txt"}
[ -r "$list" ] || { echo "deps: cannot read the package list $list" >&2; exit 2; }
mapfile -t packages < <(sed -e 's/#.*//' "$list" | awk 'NF { print $1 }')

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

if ! command -v dpkg-query >/dev/null; then
  [ "${1:-}" = --missing ] && printf '%s\n' "${packages[@]}" && exit 0
  echo "deps: not a Debian system: install ${packages[*]} yourself (tests that need them will skip)"
  exit 0
fi
missing=()
for package in "${packages[@]}"; do
  installed "$package" || missing+=("$package")
done
if [ "${1:-}" = --missing ]; then
  [ ${#missing[@]} -eq 0 ] || printf '%s\n' "${missing[@]}"
  exit 0
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} Debian packages of scripts/deps.txt are installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing ${missing[*]} (run 'sudo make deps' to install them); their tests will skip"
  exit 0
fi
started=$SECONDS
export DEBIAN_FRONTEND=noninteractive
apt_log=$(mktemp)
trap 'rm -f "$apt_log"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$apt_log" 2>&1; then
  cat "$apt_log" >&2
  echo "deps: apt-get could not install ${missing[*]} (its messages are above)" >&2
  exit 1
fi
echo "deps: installed ${missing[*]} in $((SECONDS - started)) s"

#!/usr/bin/env bash
# make deps (and the dbmate compatibility tests, when it is missing): install the real dbmate, the peer tool
# cuisine-db's migrations must agree with, from npm into the cache outside the repository (never into the repo).
# Prints the program's path on stdout; without npm it says so in one line on stderr and exits 0 (the tests skip).
set -euo pipefail
version=2.36.0
if [ -n "${CUISINE_DB_CACHE:-}" ]; then cache=$CUISINE_DB_CACHE
elif [ "$(id -u)" = 0 ]; then cache=/var/cache/cuisine-db
else cache=${XDG_CACHE_HOME:-$HOME/.cache}/cuisine-db
fi
folder=$cache/dbmate/$version
program=$folder/node_modules/.bin/dbmate
if [ -x "$program" ] && "$program" --version >/dev/null 2>&1; then
  echo "$program"
  exit 0
fi
if ! command -v node >/dev/null; then
  echo "deps: node is missing (Debian's nodejs): dbmate $version is not installed; its tests will skip" >&2
  exit 0
fi
if ! command -v npm >/dev/null; then
  # Debian ships npm apart from nodejs (NodeSource's nodejs includes it): named so, not as a listed package.
  echo "deps: npm is missing (Debian: apt-get install npm): dbmate $version is not installed; its tests will skip" >&2
  exit 0
fi
mkdir -p "$folder"
# One installer at a time: test workers may ask together.
exec 9>"$folder/.lock"
flock 9
if ! [ -x "$program" ]; then
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  # The npm package carries the binary for each platform as an optional dependency.
  if ! npm install --prefix "$folder" --no-audit --no-fund --no-save --loglevel=error "dbmate@$version" >"$log" 2>&1; then
    cat "$log" >&2
    echo "deps: npm could not install dbmate $version (its messages are above)" >&2
    exit 1
  fi
  echo "deps: installed dbmate $version into $folder" >&2
fi
"$program" --version >/dev/null
echo "$program"

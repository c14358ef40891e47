#!/usr/bin/env bash
# Lays out, under DIR, exactly the files the Docker image's runtime stage adds on top of
# node:20-bookworm-slim:
#
#   DIR/app/package.json, package-lock.json   (dist/config.js reads the version from package.json)
#   DIR/app/dist/                              compiled broker and the dashboard's static files
#   DIR/app/node_modules/                      production dependencies only
#   DIR/var/lib/leveret/                       the data directory (the image's VOLUME)
#
# The Dockerfile's build stage runs this script and its runtime stage copies DIR to /, and
# test/image-layout.test.ts runs it too and starts the broker from DIR as an unprivileged
# user: the two cannot drift apart.
#
# The checkout is never modified (its node_modules may be a symlink, or in use by the tests):
# the build happens in a scratch copy of the files the build reads. npm uses its cache first
# (--prefer-offline), so a machine whose cache `npm ci` has filled needs no network.
#
# Usage: scripts/build-image-root.sh DIR      (DIR must be empty or absent)
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
out=$1
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  echo "$0: $out is not empty" >&2
  exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/leveret-image-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

npm_flags=(--prefer-offline --no-audit --no-fund --no-update-notifier --loglevel=warn)

# 1. Compile in the scratch copy: every file `npm run build` reads, nothing else.
mkdir -p "$work/build/scripts"
cp "$src/package.json" "$src/package-lock.json" "$src/tsconfig.json" "$work/build/"
cp -R "$src/src" "$work/build/src"
cp "$src/scripts/copy-dashboard.mjs" "$work/build/scripts/"
(cd "$work/build" && npm ci "${npm_flags[@]}" && npm run build --silent)

# 2. The application: a production-only install from the same lock file, then the build output.
app="$out/app"
mkdir -p "$app"
cp "$src/package.json" "$src/package-lock.json" "$app/"
(cd "$app" && npm ci --omit=dev --ignore-scripts "${npm_flags[@]}")
cp -R "$work/build/dist" "$app/dist"
# The source maps point into src/, which the image does not ship: they would only cost space.
find "$app/dist" -name '*.js.map' -delete

# The application is read-only to the broker's user (root owns it, umask 022 makes it
# world-readable), so a compromised broker cannot rewrite its own code.
chmod -R u=rwX,go=rX "$app"

# 3. The data directory. Its owner is set where the user exists (the Dockerfile's runtime
# stage, or the caller), because DIR's /etc/passwd is not the image's.
mkdir -p "$out/var/lib/leveret"
chmod 0750 "$out/var/lib/leveret"

echo "image root laid out in $out ($(du -sh "$out" | cut -f1))"

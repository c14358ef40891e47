#!/usr/bin/env bash
# Makes a local stand-in for the official node:20-bookworm-slim image, for machines with no
# Docker daemon and no access to a container registry (see docs/docker.md). It is built from
#   - a minimal Debian bookworm (debootstrap --variant=minbase, from the host's Debian mirror),
#   - this machine's Node.js: the `node` binary and its global npm, laid out as the official
#     image has them (/usr/local/bin/node, /usr/local/lib/node_modules/npm),
#   - this machine's CA bundle, so that npm inside a build trusts what the host trusts,
# and stored in buildah's local image store under TAG (default node:20-bookworm-slim, with the
# docker.io/library/ prefix so that `FROM node:20-bookworm-slim` finds it without pulling).
#
# Needs root and the Debian packages buildah and debootstrap:
#   apt-get install -y buildah debootstrap
#   scripts/build-base-image.sh                  # then: buildah bud --isolation chroot -t leveret:dev .
#
# Usage: scripts/build-base-image.sh [TAG]
set -euo pipefail

tag=${1:-node:20-bookworm-slim}
case $tag in
  */*) ;;
  *) tag="docker.io/library/$tag" ;;
esac
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ "$(id -u)" != 0 ]; then
  echo "$0: needs root (debootstrap, buildah)" >&2
  exit 1
fi
for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { echo "$0: $tool missing (apt-get install -y buildah debootstrap)" >&2; exit 1; }
done

node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(npm root -g)/npm
node_version=$("$node_bin" --version)
case $node_version in
  v20.*) ;;
  *) echo "$0: this machine's node is $node_version, not Node 20" >&2; exit 1 ;;
esac
[ -f "$npm_dir/bin/npm-cli.js" ] || { echo "$0: no npm at $npm_dir" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/var/tmp}/leveret-base.XXXXXX")
ctr=
cleanup() {
  if [ -n "$ctr" ]; then buildah rm "$ctr" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
root="$work/rootfs"

echo "== debootstrap bookworm (minbase) into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2
  exit 1
}

echo "== node $node_version and npm $("$node_bin" "$npm_dir/bin/npm-cli.js" --version)"
install -D -m 0755 "$node_bin" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
# The official image runs node as `node`, a system user with uid 1000; so does this one.
chroot "$root" groupadd --gid 1000 node
chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

echo "== CA bundle"
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
# npm's global config for a /usr/local prefix; node's TLS reads NODE_EXTRA_CA_CERTS (set below).
mkdir -p "$root/usr/local/etc"
printf 'cafile=/etc/ssl/certs/ca-certificates.crt\n' >"$root/usr/local/etc/npmrc"

echo "== trim (as the slim images do)"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
  "$root"/usr/share/info/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old

echo "== commit $tag"
ctr=$(buildah from scratch)
mnt=$(buildah mount "$ctr")
cp -a "$root/." "$mnt/"
buildah umount "$ctr" >/dev/null
buildah config \
  --env NODE_VERSION="${node_version#v}" \
  --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --cmd '["node"]' \
  --os linux --arch "$(dpkg --print-architecture)" \
  "$ctr"
buildah commit --rm "$ctr" "$tag" >/dev/null
ctr=
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$tag"

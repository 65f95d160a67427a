#!/bin/sh
# Fetches a real Linux kernel for the bzImage tests: the current Debian cloud kernel
# (linux-image-*-cloud-amd64), downloaded with `apt-get download` and unpacked without installing
# it, into .cache/debian-kernel/. Prints the path of its vmlinuz on stdout; quiet and offline when
# the kernel is already there. Messages go to stderr; exits non-zero if it cannot get one.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/debian-kernel"
vmlinuz="$cache/vmlinuz"
if [ -f "$vmlinuz" ]; then
  echo "$vmlinuz"
  exit 0
fi

say() { echo "fetch-debian-kernel: $*" >&2; }
for tool in apt-get apt-cache dpkg-deb tar; do
  command -v "$tool" >/dev/null 2>&1 || { say "needs $tool (a Debian or Ubuntu system)"; exit 1; }
done

# The meta-package depends on the current versioned image, e.g. linux-image-6.1.0-56-cloud-amd64.
resolve() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}
update() {
  say "running apt-get update"
  apt-get update -qq >/dev/null 2>&1 || say "apt-get update failed (not root, or no network?)"
}

mkdir -p "$cache"
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
log="$work/log"

package=$(resolve)
[ -n "$package" ] || { update; package=$(resolve); }
[ -n "$package" ] || { say "apt cannot find linux-image-cloud-amd64"; exit 1; }

download() { (cd "$work" && apt-get download -q "$package") >"$log" 2>&1; }
say "downloading $package"
if ! download; then
  # Stale package lists name a version the mirror no longer has.
  update
  package=$(resolve)
  download || { cat "$log" >&2; say "could not download $package"; exit 1; }
fi

# Only boot/ is unpacked: the package's ~100 MB of modules are of no use to a VMM.
deb=$(ls "$work"/*.deb)
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" ./boot
image=$(ls "$work"/boot/vmlinuz-*)
version=${image##*/vmlinuz-}
mv "$image" "$cache/vmlinuz-$version"
mv "$work/boot/config-$version" "$cache/config-$version"
ln -sf "vmlinuz-$version" "$work/vmlinuz"
mv "$work/vmlinuz" "$vmlinuz"   # last, so an interrupted fetch leaves no vmlinuz behind
say "got $package"
echo "$vmlinuz"

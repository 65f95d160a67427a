#!/bin/sh
# Fills .cache/busybox-static/ with Debian's busybox-static, fetched with `apt-get download` and
# unpacked without installing it, for the initramfs and the container rootfs. Quiet when it is
# already there; prints the path of the busybox binary on stdout.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/busybox-static"
busybox="$cache/bin/busybox"

say() { echo "busybox-static: $*" >&2; }

if [ ! -f "$busybox" ]; then
  command -v apt-get >/dev/null 2>&1 || { say "needs apt-get to fetch busybox-static (or put a static busybox at $busybox)"; exit 1; }
  mkdir -p "$(dirname "$cache")"
  work=$(mktemp -d "$cache.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  say "downloading busybox-static"
  if ! (cd "$work" && apt-get download -q busybox-static) >"$work/log" 2>&1; then
    # Stale package lists name a version the mirror no longer has.
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$work" && apt-get download -q busybox-static) >"$work/log" 2>&1 || {
      cat "$work/log" >&2; say "could not download busybox-static"; exit 1; }
  fi
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/root"
  rm -rf "$cache"
  mv "$work/root" "$cache"
  rm -rf "$work"
  trap - EXIT
fi
echo "$busybox"

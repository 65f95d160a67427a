#!/bin/sh
# Builds guests/build/initramfs.cpio.gz: a busybox initramfs whose /init (guests/initramfs/init)
# mounts proc, sys and devtmpfs and runs a shell on the console. busybox comes from Debian's
# busybox-static, which scripts/fetch-busybox-static.sh unpacks into .cache/busybox-static/, so
# nothing is installed on this machine except, if missing, cpio. Quiet when up to date; prints the
# path of the archive on stdout.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/guests/build/initramfs.cpio.gz"
cache="$root/.cache/busybox-static"
busybox="$cache/bin/busybox"

say() { echo "initramfs: $*" >&2; }

if [ -f "$out" ] && [ -f "$busybox" ] && [ "$out" -nt "$here/init" ] && [ "$out" -nt "$here/build.sh" ]; then
  echo "$out"
  exit 0
fi

if ! command -v cpio >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "needs cpio; please install it (apt-get install cpio)"
    exit 1
  fi
  say "installing cpio from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cpio >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cpio >/dev/null
  }
fi

sh "$root/scripts/fetch-busybox-static.sh" >/dev/null

staging=$(mktemp -d)
trap 'rm -rf "$staging" "$staging.cpio" "$staging.nodes"' EXIT
cd "$staging"
mkdir -p bin sbin usr/bin usr/sbin dev proc sys root tmp
cp "$busybox" bin/busybox
cp "$here/init" init
chmod 755 init bin/busybox
# One symlink per applet (sh, mount, setsid, cttyhack, poweroff, ...), as `busybox --install -s`
# would make them, but at build time: the host can run the static x86-64 busybox too.
for applet in $("$busybox" --list-full); do
  [ -e "$applet" ] || ln -s /bin/busybox "$applet"
done

# The kernel opens /dev/console for /init before anything is mounted, so the archive needs that
# node. Making it with mknod needs root; a hand-written newc entry does not. It goes in a second
# archive after the first (the kernel unpacks concatenated archives in order), once dev/ exists.
newc() { # name mode rdevmajor rdevminor
  namesize=$((${#1} + 1))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    0 "$2" 0 0 1 0 0 0 0 "$3" "$4" "$namesize" 0
  printf '%s\0' "$1"
  pad=$(( (4 - (110 + namesize) % 4) % 4 ))
  [ "$pad" -eq 0 ] || head -c "$pad" /dev/zero
}
{
  newc dev/console $((0020600)) 5 1
  newc TRAILER!!! 0 0 0
} > "$staging.nodes"

mkdir -p "$(dirname "$out")"
# Fixed times, owners and order: the same inputs give the same archive, byte for byte.
find . -exec touch -h -d @0 {} +
find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible > "$staging.cpio"
cat "$staging.cpio" "$staging.nodes" | gzip -9 -n > "$out.tmp"
mv "$out.tmp" "$out"
say "built $out ($(wc -c < "$out") bytes)"
echo "$out"

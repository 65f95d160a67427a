#!/bin/sh
# Builds the L1 initramfs of the nested Linux test (see run.mjs): on a machine without VMX/SVM,
# QEMU's software CPU emulates AMD SVM, and an L1 Linux booted from this archive loads kvm_amd
# and runs tsvmm, which boots Linux as its L2 guest. The archive holds busybox, the L1 kernel's
# KVM and tun modules, node with this built tsvmm tree, QEMU (the reference VMM in the same L1),
# util-linux `script` (a pty for the console-escape test), and the L2 kernel and initramfs.
# The L1 and L2 kernels are the same Debian cloud kernel (scripts/fetch-debian-kernel.sh); its
# modules come from the same package, downloaded with apt-get and cached in .cache/.
#
# usage: build.sh OUT_DIR     prints the archive's path on stdout; messages go to stderr.
# environment: L1_SCRIPT, a script the `script` scenario runs in L1 (as /l1/script.sh);
#              L1_FILES, space-separated SRC:DEST pairs copied into L1 (an executable ELF with
#              the shared libraries it loads).
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/scripts/linux-l2"
out=${1:?usage: build.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
say() { echo "linux-l2 build: $*" >&2; }
fail() { say "$*"; exit 1; }

[ -f "$root/dist/index.js" ] && [ -f "$root/build/Release/tsvmm.node" ] || fail "tsvmm is not built in $root (run npm install)"
[ "$root/build/Release/tsvmm.node" -nt "$root/native/tsvmm.c" ] \
  || fail "the native addon is older than native/tsvmm.c: run npm install (or npx node-gyp rebuild)"
for tool in cpio qemu-system-x86_64 apt-get dpkg-deb ldd script; do
  command -v "$tool" >/dev/null 2>&1 || fail "needs $tool (scripts/ensure-test-deps.sh installs it)"
done

vmlinuz=$(sh "$root/scripts/fetch-debian-kernel.sh")
l2initrd=$(sh "$root/guests/initramfs/build.sh")
version=$(readlink "$vmlinuz"); version=${version#vmlinuz-}
busybox="$root/.cache/busybox-static/bin/busybox"

# --- the kernel's modules: KVM and tun for L1, virtio for L2 ------------------------------------
mods="$root/.cache/debian-kernel/modules-$version"
L1_MODULES="virt/lib/irqbypass.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko drivers/net/tun.ko"
# In load order: each after what it depends on.
L2_MODULES="drivers/virtio/virtio.ko drivers/virtio/virtio_ring.ko drivers/virtio/virtio_mmio.ko
  drivers/block/virtio_blk.ko net/core/failover.ko drivers/net/net_failover.ko drivers/net/virtio_net.ko
  drivers/char/hw_random/virtio-rng.ko drivers/char/virtio_console.ko"
if [ ! -f "$mods/.done" ]; then
  work=$(mktemp -d "$root/.cache/debian-kernel/.modules.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  say "downloading linux-image-$version for its modules"
  (cd "$work" && apt-get download -q "linux-image-$version") >"$work/log" 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 || true; (cd "$work" && apt-get download -q "linux-image-$version") >"$work/log" 2>&1; } \
    || { cat "$work/log" >&2; fail "cannot download linux-image-$version (its modules are needed)"; }
  dpkg-deb -x "$work"/*.deb "$work/x"
  cmp -s "$work/x/boot/vmlinuz-$version" "$vmlinuz" || fail "linux-image-$version's vmlinuz differs from $vmlinuz"
  rm -rf "$mods"; mkdir -p "$mods/l1" "$mods/l2"
  for f in $L1_MODULES; do cp "$work/x/lib/modules/$version/kernel/$f" "$mods/l1/"; done
  for f in $L2_MODULES; do cp "$work/x/lib/modules/$version/kernel/$f" "$mods/l2/"; basename "$f" .ko >> "$mods/l2/order"; done
  touch "$mods/.done"
  rm -rf "$work"; trap - EXIT
fi

newc_cpio() { (cd "$1" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0); }
# /dev/console as a hand-written newc entry (no mknod, as guests/initramfs/build.sh does it).
newc() { # name mode rdevmajor rdevminor
  namesize=$((${#1} + 1))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' 0 "$2" 0 0 1 0 0 0 0 "$3" "$4" "$namesize" 0
  printf '%s\0' "$1"
  pad=$(( (4 - (110 + namesize) % 4) % 4 )); [ "$pad" -eq 0 ] || head -c "$pad" /dev/zero
}

# --- L2: the project's initramfs, plus (for the device scenarios) the virtio modules ----------------
staging="$out/staging"
rm -rf "$staging"; mkdir -p "$staging/l2dev/etc" "$staging/l2dev/lib/modules"
cp "$mods/l2/"*.ko "$mods/l2/order" "$staging/l2dev/lib/modules/"
cp "$here/l2-rc.local" "$staging/l2dev/etc/rc.local"; chmod 755 "$staging/l2dev/etc/rc.local"

# --- L1 root ---------------------------------------------------------------------------------------
r="$staging/l1"
mkdir -p "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/dev" "$r/proc" "$r/sys" "$r/tmp" "$r/run" "$r/root" \
  "$r/lib/modules/l1" "$r/l2" "$r/tsvmm"
cp "$busybox" "$r/bin/busybox"
for applet in $("$busybox" --list-full); do [ -e "$r/$applet" ] || ln -s /bin/busybox "$r/$applet"; done
cp "$mods/l1/"*.ko "$r/lib/modules/l1/"
with_libs() { # a host program and the shared libraries it loads, at the same paths
  cp -L "$1" "$r/usr/bin/"
  for lib in $(ldd "$1" | grep -o '/[^ ]*'); do mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib"; done
}
with_libs "$(command -v node)"
with_libs "$(command -v script)"
with_libs "$(command -v qemu-system-x86_64)"
mkdir -p "$r/usr/share/qemu" "$r/usr/share/seabios"
cp -L /usr/share/seabios/bios-256k.bin "$r/usr/share/seabios/"
for f in linuxboot_dma.bin linuxboot.bin kvmvapic.bin; do cp -L "/usr/share/qemu/$f" "$r/usr/share/qemu/"; done
# What `tsvmm` needs at run time, and the scenario runner.
( cd "$root"
  cp -r package.json bin dist "$r/tsvmm/"
  mkdir -p "$r/tsvmm/build/Release" "$r/tsvmm/node_modules" "$r/tsvmm/scripts/linux-l2"
  cp build/Release/tsvmm.node "$r/tsvmm/build/Release/"
  cp "$here/l1-run.mjs" "$r/tsvmm/scripts/linux-l2/"
  for d in $(npm ls --omit=dev --parseable --all 2>/dev/null | grep /node_modules/); do
    rel=${d#"$root"/}; mkdir -p "$r/tsvmm/$(dirname "$rel")"; cp -r "$d" "$r/tsvmm/$rel"
  done )
# The container scenario: the helper and the busybox root of the container tests.
if [ -x "$root/build/Release/container-init" ]; then
  cp "$root/build/Release/container-init" "$r/tsvmm/build/Release/"
  rootfs=$(sh "$root/scripts/build-busybox-rootfs.sh")/rootfs
  mkdir -p "$r/containers"; cp -a "$rootfs" "$r/containers/rootfs"
fi
cp "$vmlinuz" "$r/l2/vmlinuz"
cp "$l2initrd" "$r/l2/initramfs.cpio.gz"
{ cat "$l2initrd"; newc_cpio "$staging/l2dev" | gzip -1; } > "$r/l2/initramfs-devices.cpio.gz"
cp "$here/l1-init.sh" "$r/init"; chmod 755 "$r/init"
if [ -n "${L1_SCRIPT:-}" ]; then mkdir -p "$r/l1"; cp "$L1_SCRIPT" "$r/l1/script.sh"; fi
for pair in ${L1_FILES:-}; do
  src=${pair%%:*}; dest=${pair#*:}
  [ -e "$src" ] || fail "L1_FILES: $src does not exist"
  mkdir -p "$r$(dirname "$dest")"; cp -rL "$src" "$r$dest"
  if [ -f "$src" ] && [ -x "$src" ] && head -c 4 "$src" | grep -q ELF; then
    for lib in $(ldd "$src" 2>/dev/null | grep -o '/[^ ]*'); do mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib"; done
  fi
done

archive="$out/l1-initramfs.cpio"
{ newc_cpio "$r"; newc dev/console $((0020600)) 5 1; newc 'TRAILER!!!' 0 0 0; } > "$archive.tmp"
mv "$archive.tmp" "$archive"
rm -rf "$staging"
say "L1 initramfs $archive ($(du -m "$archive" | cut -f1) MiB), kernel $version"
echo "$archive"
echo "$vmlinuz"

#!/bin/sh
# Installs what the test suite needs from Debian and the machine may lack: tmux, which the
# terminal tests use to drive tsvmm on a real pseudo-terminal, iasl (acpica-tools), which
# checks our ACPI tables as an independent decoder, QEMU, which runs the nested Linux test
# (scripts/linux-l2) and replays tsvmm's Linux boot state under its software CPU, cpio for the
# initramfs archives, and util-linux's script (a pseudo-terminal inside the nested L1);
# containerd, runc, docker.io and podman, the engines (and the reference runtime) tsvmm-runc is
# tested and measured with; chromium, in which the tests lay out the HTML report of `tsvmm
# compare` and measure its labels. Quiet when all is present.
#
# usage: ensure-test-deps.sh [COMMAND:PACKAGE ...]   (default: all of the above)
# Without arguments (npm's pretest) a machine where nothing can be installed is not an error:
# the tests that need what is missing skip. With arguments, what is missing is an error.
set -eu
required=1
[ $# -gt 0 ] || { required=0; set -- tmux:tmux iasl:acpica-tools qemu-system-x86_64:qemu-system-x86 cpio:cpio script:bsdutils containerd:containerd runc:runc dockerd:docker.io podman:podman chromium:chromium; }
missing=""
for pair in "$@"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing="$missing ${pair#*:}"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "tsvmm: please install:$missing" >&2
  exit $required
fi
echo "tsvmm: installing$missing from Debian" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 || {
  apt-get update -q >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
}

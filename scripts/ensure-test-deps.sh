#!/bin/sh
# Installs what the test suite needs from Debian and the machine may lack: tmux, which the
# terminal tests use to drive tsvmm on a real pseudo-terminal, iasl (acpica-tools), which
# checks our ACPI tables as an independent decoder, and QEMU, which replays tsvmm's Linux boot
# state under its software CPU where KVM cannot run Linux. Quiet when all is present.
set -eu
missing=""
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
command -v iasl >/dev/null 2>&1 || missing="$missing acpica-tools"
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "tsvmm tests: please install:$missing (the tests that need them will skip)" >&2
  exit 0
fi
echo "tsvmm tests: installing$missing from Debian" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 || {
  apt-get update -q >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
}

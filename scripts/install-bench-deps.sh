#!/usr/bin/env bash
# Installs what bench/run.mjs compares tsvmm against and that the machine may lack:
# Debian's qemu-system-x86 (for qemu-system-x86_64). Idempotent: does nothing when QEMU is there.
# Needs root (apt-get); without it, says so and exits non-zero, and the bench skips QEMU.
set -euo pipefail

if command -v qemu-system-x86_64 >/dev/null 2>&1; then
  echo "install-bench-deps: qemu-system-x86_64 is already installed ($(command -v qemu-system-x86_64))"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-bench-deps: qemu-system-x86_64 is missing and there is no apt-get here; install QEMU by hand" >&2
  exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
    echo "install-bench-deps: qemu-system-x86_64 is missing and installing it needs root" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
install() {
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
}

echo "install-bench-deps: installing qemu-system-x86 with apt-get (for qemu-system-x86_64)"
if ! install; then
  echo "install-bench-deps: install failed; running apt-get update and trying again"
  "${SUDO[@]}" apt-get update -qq >/dev/null
  install
fi
echo "install-bench-deps: installed $(qemu-system-x86_64 --version | head -n 1)"

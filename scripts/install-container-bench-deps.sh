#!/bin/sh
# Installs what bench/container.mjs compares tsvmm's containers against, if the machine lacks
# it: Debian's runc (the reference OCI runtime, which runs the same bundle). Does nothing when
# runc is there. Needs root for apt-get; without it, says so and exits non-zero.
set -eu

if command -v runc >/dev/null 2>&1; then
  echo "install-container-bench-deps: runc is already installed ($(command -v runc))" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-container-bench-deps: runc is missing and there is no apt-get here; install runc by hand" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-container-bench-deps: runc is missing and installing it needs root" >&2
  exit 1
fi
echo "install-container-bench-deps: installing runc with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends runc >/dev/null 2>&1 || {
  # Stale package lists name a version the mirror no longer has.
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends runc >/dev/null
}
echo "install-container-bench-deps: installed $(runc --version | head -n 1)" >&2

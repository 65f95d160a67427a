#!/bin/sh
# Installs what the test suite needs from Debian and the machine may lack: tmux, which the
# terminal tests use to drive tsvmm on a real pseudo-terminal. Quiet when all is present.
set -eu
missing=""
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "tsvmm tests: please install:$missing (the terminal tests will skip without it)" >&2
  exit 0
fi
echo "tsvmm tests: installing$missing from Debian" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null 2>&1 || {
  apt-get update -q >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null
}

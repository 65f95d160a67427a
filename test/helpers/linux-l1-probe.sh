#!/bin/sh
# Run inside the nested test's L1 (scripts/linux-l2/run.mjs --l1-script): shows that a test can
# use L1 as a Linux machine of its own, here with a cgroup v2 hierarchy and a node process in a
# child cgroup, as container tests would.
set -eu
mkdir -p /sys/fs/cgroup
mount -t cgroup2 none /sys/fs/cgroup
echo "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "+pids +memory" > /sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/probe
echo 16 > /sys/fs/cgroup/probe/pids.max
sh -c 'echo $$ > /sys/fs/cgroup/probe/cgroup.procs; exec node -e "console.log(\"node in\", require(\"fs\").readFileSync(\"/proc/self/cgroup\", \"utf8\").trim())"'
echo "kvm: $(ls -l /dev/kvm | cut -c1)"

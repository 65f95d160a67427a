#!/bin/sh
# /init of the L1 guest of the nested Linux test (scripts/linux-l2/run.mjs boots it under QEMU
# TCG with AMD SVM): mounts, loads kvm_amd, then runs the scenarios named by l1.scenarios= on
# the kernel command line with scripts/linux-l2/l1-run.mjs. Structured events go to ttyS1 (a
# file on the host), the whole console to ttyS0. With l1.scenarios=shell, tsvmm boots L2 on
# this console for a person to use, and L1 powers off when it ends.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/net /run /tmp
mount -t tmpfs tmpfs /run
mount -t tmpfs -o size=1G tmpfs /tmp
mount -t devpts devpts /dev/pts
ip link set lo up

arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | tail -1; }
event() { echo "{\"event\":\"$1\",\"message\":\"$2\"}" > /dev/ttyS1 2>/dev/null; } # ttyS1 is only wired for scenarios
stty -F /dev/ttyS1 raw -echo 2>/dev/null

echo "linux-l2: L1 up: Linux $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs"
for m in irqbypass kvm kvm-amd tun; do
  insmod "/lib/modules/l1/$m.ko" || echo "linux-l2: insmod $m failed"
done
if [ ! -c /dev/kvm ]; then
  svm=$(grep -c -w svm /proc/cpuinfo)
  event l1-error "L1 has no /dev/kvm: kvm_amd did not load (CPUs with svm: $svm); see the console log"
  dmesg | grep -i -E 'kvm|svm' | tail -20
  poweroff -f
fi

scenarios=$(arg l1.scenarios)
cd /tsvmm
if [ "$scenarios" = shell ]; then
  echo "linux-l2: booting Linux on tsvmm (L2); Ctrl-A X quits, then L1 powers off"
  setsid cttyhack node bin/tsvmm.js run --kernel /l2/vmlinuz --initrd /l2/initramfs-devices.cpio.gz --mem 256M \
    --cmdline "console=ttyS0 reboot=k panic=1 $(arg l1.l2append | tr , ' ')" --rng
else
  L2_BENCH_ROUNDS=$(arg l1.bench_rounds) L1_SCRIPT_TIMEOUT_S=$(arg l1.script_timeout) \
    node scripts/linux-l2/l1-run.mjs "$scenarios" || event l1-error "the scenario runner failed (exit $?)"
fi
event l1-done ""
poweroff -f

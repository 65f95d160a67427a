#!/bin/sh
# Builds .cache/busybox-bundle/: an OCI runtime bundle (config.json + rootfs/) around Debian's
# static busybox, for the container tests and bench/container.mjs. The same bundle runs under
# `tsvmm container run --bundle` and `runc run --bundle`. busybox comes from
# scripts/fetch-busybox-static.sh (.cache/busybox-static/, shared with the initramfs).
# Quiet when up to date; prints the bundle's path on stdout.
#
# config.json is what `runc spec` (runc 1.1) writes, except: no terminal (the process gets our
# stdio), `sh` as the command, the hostname "busybox".
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache="$root/.cache/busybox-static"
busybox="$cache/bin/busybox"
bundle="$root/.cache/busybox-bundle"
stamp="$bundle/.built"

say() { echo "busybox-rootfs: $*" >&2; }

if [ -f "$stamp" ] && [ -f "$busybox" ] && [ "$stamp" -nt "$here/build-busybox-rootfs.sh" ]; then
  echo "$bundle"
  exit 0
fi

sh "$here/fetch-busybox-static.sh" >/dev/null

# Built beside the old bundle and swapped in at the end, so a half-built one is never used.
staging=$(mktemp -d "$root/.cache/busybox-bundle.XXXXXX")
trap 'rm -rf "$staging"' EXIT
rootfs="$staging/rootfs"
mkdir -p "$rootfs"
cd "$rootfs"
mkdir -p bin sbin usr/bin usr/sbin dev proc sys etc root tmp var/tmp
chmod 1777 tmp var/tmp
chmod 700 root
cp "$busybox" bin/busybox
chmod 755 bin/busybox
# One symlink per applet, as `busybox --install -s` would make them inside the image.
for applet in $("$busybox" --list-full); do
  [ -e "$applet" ] || ln -s /bin/busybox "$applet"
done
cat > etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat > etc/group <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo busybox > etc/hostname
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' > etc/hosts

cat > "$staging/config.json" <<'EOF'
{
	"ociVersion": "1.0.2-dev",
	"process": {
		"terminal": false,
		"user": { "uid": 0, "gid": 0 },
		"args": [ "sh" ],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
			"effective": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
			"permitted": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
			"ambient": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ]
		},
		"rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
		"noNewPrivileges": true
	},
	"root": { "path": "rootfs", "readonly": true },
	"hostname": "busybox",
	"mounts": [
		{ "destination": "/proc", "type": "proc", "source": "proc" },
		{ "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
		{ "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": [ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" ] },
		{ "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": [ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" ] },
		{ "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": [ "nosuid", "noexec", "nodev" ] },
		{ "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [ "nosuid", "noexec", "nodev", "ro" ] },
		{ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": [ "nosuid", "noexec", "nodev", "relatime", "ro" ] }
	],
	"linux": {
		"resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
		"namespaces": [ { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" } ],
		"maskedPaths": [
			"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
			"/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
		],
		"readonlyPaths": [ "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" ]
	}
}
EOF

cd "$root"
rm -rf "$bundle"
mv "$staging" "$bundle"
trap - EXIT
touch "$stamp"
say "built $bundle ($(ls "$bundle/rootfs/bin" | wc -l) entries in /bin)"
echo "$bundle"

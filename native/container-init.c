// container-init: carries out one container plan that tsvmm wrote (src/container/plan.ts) and
// then becomes the container's supervisor. Every decision (which namespaces, which mounts with
// which flags, which devices, which capabilities, which cgroups) was taken in TypeScript; this
// program only performs the steps in the order given, reports what happened, and passes the
// workload's exit status through.
//
// The conversation with tsvmm happens on fd 3, a socket: tsvmm sends the plan as one frame whose
// layout is defined once in src/container/plan-layout.ts (helper-wire.h is generated from it);
// we answer with JSON lines: {"pid":N} once the init process exists (in its namespaces and
// cgroups, not yet running anything), {"running":true} once it has exec'd the command, or
// {"error":{...}} if a step failed, and finally {"exit":{"code":N}} or {"exit":{"signal":N}}.
// With "waitForHost", we wait after {"pid":N} for a "go" frame, so that tsvmm can wire the
// network namespace before the workload starts.
//
// The init process is cloned straight into its new namespaces and waits on a pipe until we
// have put it in its cgroups, so the workload never runs outside its limits. Its setup errors
// come back on a close-on-exec pipe: end-of-file there means execve succeeded.
//
// The init always starts a session of its own (setsid), so no terminal of the caller is its
// controlling terminal. With "terminal" in the plan it opens a pty from the container's own
// /dev/pts, makes the slave its controlling terminal and stdio, and hands the master to us over
// a socket (SCM_RIGHTS), as runc does; we relay it to our stdin and stdout, which are pipes from
// tsvmm, and set its window size when tsvmm sends a resize frame on fd 3.

#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/keyctl.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <poll.h>
#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>

#define CHANNEL_FD 3
#define PLAN_LIMIT (4 << 20)
#define STACK_SIZE (256 * 1024)

// ------------------------------------------------------------------------------------------
// Reporting to tsvmm

static void channel_write(const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(CHANNEL_FD, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return; // tsvmm went away; the exit status still tells
    s += w;
    n -= (size_t)w;
  }
}

// Appends `s` as a JSON string literal to `out` (at most `cap` bytes, always terminated).
static void json_quote(char *out, size_t cap, const char *s) {
  size_t o = strlen(out);
  if (o + 2 >= cap) return;
  out[o++] = '"';
  for (const unsigned char *p = (const unsigned char *)s; *p && o + 8 < cap; p++) {
    if (*p == '"' || *p == '\\') {
      out[o++] = '\\';
      out[o++] = (char)*p;
    } else if (*p < 0x20) {
      o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
    } else {
      out[o++] = (char)*p;
    }
  }
  out[o++] = '"';
  out[o] = 0;
}

static void report_error(const char *step, int err, const char *message) {
  char line[4096] = "{\"error\":{\"step\":";
  json_quote(line, sizeof line - 64, step);
  strcat(line, ",\"message\":");
  json_quote(line, sizeof line - 64, message);
  size_t n = strlen(line);
  snprintf(line + n, sizeof line - n, ",\"errno\":%d}}\n", err);
  channel_write(line, strlen(line));
}

// A failure in this process, before the workload runs: say so and end.
static void __attribute__((noreturn, format(printf, 3, 4))) parent_fail(const char *step, int err, const char *fmt, ...) {
  char message[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  if (err) {
    size_t n = strlen(message);
    snprintf(message + n, sizeof message - n, ": %s", strerror(err));
  }
  report_error(step, err, message);
  _exit(125);
}

// ------------------------------------------------------------------------------------------
// The plan: its structs and decoders are generated from src/container/plan-layout.ts.

#include "helper-wire.h"

static rlim_t rlim_value(long long v) { return v < 0 ? RLIM_INFINITY : (rlim_t)v; }

// One frame from `fd` (header and body), of `kind`; NULL (errno set) if the channel ended or
// sent something else.
static unsigned char *read_frame(int fd, uint32_t kind, size_t *length) {
  unsigned char header[HELPER_WIRE_HEADER];
  size_t got = 0;
  while (got < sizeof header) {
    ssize_t r = read(fd, header + got, sizeof header - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) { errno = r == 0 ? EPIPE : errno; return NULL; }
    got += (size_t)r;
  }
  long body = wire_frame_body(header, kind);
  if (body < 0 || body > PLAN_LIMIT) { errno = EPROTO; return NULL; }
  unsigned char *frame = malloc(sizeof header + (size_t)body);
  if (!frame) return NULL;
  memcpy(frame, header, sizeof header);
  got = 0;
  while (got < (size_t)body) {
    ssize_t r = read(fd, frame + sizeof header + got, (size_t)body - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) { errno = r == 0 ? EPIPE : errno; free(frame); return NULL; }
    got += (size_t)r;
  }
  *length = sizeof header + (size_t)body;
  return frame;
}

// ------------------------------------------------------------------------------------------
// The init process: set up the container from inside its namespaces, then exec the workload

static int err_fd = -1;

// A failed step: tell the supervisor (errno, then the message) and end. A negative errno is
// reported without its strerror text, for messages that already say what went wrong.
static void __attribute__((noreturn, format(printf, 2, 3))) fail(int err, const char *fmt, ...) {
  char message[2048];
  int n = snprintf(message, sizeof message, "%d\t", err < 0 ? -err : err);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message + n, sizeof message - (size_t)n, fmt, ap);
  va_end(ap);
  if (err > 0) {
    size_t len = strlen(message);
    snprintf(message + len, sizeof message - len, ": %s", strerror(err));
  }
  if (write(err_fd, message, strlen(message)) < 0) { /* the supervisor is gone; nothing to tell */ }
  _exit(125);
}

// Opens `path` below the container's root the way the kernel would resolve it there:
// absolute symlinks and ".." stop at the root, so a hostile image cannot point a mount
// at the host's files.
static int open_in_root(int rootfd, const char *path, int flags) {
  struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_IN_ROOT };
  return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

// mkdir -p inside the root; returns an O_PATH handle of the directory. Each prefix is looked
// up again through open_in_root, so a symlink on the way is followed inside the root.
static int mkdir_in_root(int rootfd, const char *path) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) { errno = ENAMETOOLONG; return -1; }
  int dir = open_in_root(rootfd, "/", O_PATH | O_DIRECTORY);
  if (dir < 0) return -1;
  char *p = buf;
  for (;;) {
    while (*p == '/') p++;
    if (!*p) return dir;
    char *end = strchr(p, '/');
    if (end) *end = 0;
    int next = open_in_root(rootfd, buf, O_PATH | O_DIRECTORY);
    if (next < 0 && errno == ENOENT) {
      if (mkdirat(dir, p, 0755) < 0 && errno != EEXIST) { close(dir); return -1; }
      next = open_in_root(rootfd, buf, O_PATH | O_DIRECTORY);
    }
    close(dir);
    if (next < 0) return -1;
    dir = next;
    if (!end) return dir;
    *end = '/';
    p = end + 1;
  }
}

// Creates the mount point `path` (a directory, or an empty file for a file bind mount) and
// returns an O_PATH handle of it.
static int make_mountpoint(int rootfd, const char *path, int is_file) {
  if (!is_file) return mkdir_in_root(rootfd, path);
  int fd = open_in_root(rootfd, path, O_PATH);
  if (fd >= 0 || errno != ENOENT) return fd;
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s", path);
  char *slash = strrchr(parent, '/');
  if (!slash || !slash[1]) { errno = EINVAL; return -1; }
  *slash = 0;
  int dir = mkdir_in_root(rootfd, parent[0] ? parent : "/");
  if (dir < 0) return -1;
  int f = openat(dir, slash + 1, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
  close(dir);
  if (f < 0) return -1;
  close(f);
  return open_in_root(rootfd, path, O_PATH);
}

static void fd_path(char *buf, size_t cap, int fd) { snprintf(buf, cap, "/proc/self/fd/%d", fd); }

static void do_mount(int rootfd, const mount_step *m) {
  int fd = make_mountpoint(rootfd, m->target, m->is_file);
  if (fd < 0) fail(errno, "mount point %s", m->target);
  char target[64];
  fd_path(target, sizeof target, fd);
  if (mount(m->source, target, m->type[0] ? m->type : NULL, m->flags, m->data[0] ? m->data : NULL) < 0) {
    fail(errno, "mount %s on %s (%s)", m->source, m->target, m->type[0] ? m->type : "bind");
  }
  close(fd);
  if (!m->remount_flags && !m->n_propagation) return;
  // The handle still names the directory under the new mount; look the path up again.
  fd = open_in_root(rootfd, m->target, O_PATH);
  if (fd < 0) fail(errno, "reopen %s after mounting", m->target);
  fd_path(target, sizeof target, fd);
  if (m->remount_flags && mount(NULL, target, NULL, m->remount_flags, NULL) < 0) {
    fail(errno, "remount %s with its options", m->target);
  }
  for (size_t i = 0; i < m->n_propagation; i++) {
    if (mount(NULL, target, NULL, m->propagation[i], NULL) < 0) fail(errno, "set propagation of %s", m->target);
  }
  close(fd);
}

static void make_device(int rootfd, const device_node *d) {
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s", d->path);
  char *slash = strrchr(parent, '/');
  if (!slash || !slash[1]) fail(EINVAL, "device path %s", d->path);
  *slash = 0;
  int dir = mkdir_in_root(rootfd, parent[0] ? parent : "/");
  if (dir < 0) fail(errno, "directory for %s", d->path);
  if (mknodat(dir, slash + 1, (mode_t)d->mode, makedev(d->major, d->minor)) < 0 && errno != EEXIST) {
    fail(errno, "mknod %s", d->path);
  }
  // mknod obeys the umask; the plan's mode is what the container must see.
  if (fchmodat(dir, slash + 1, (mode_t)d->mode & 07777, 0) < 0) fail(errno, "chmod %s", d->path);
  if (fchownat(dir, slash + 1, (uid_t)d->uid, (gid_t)d->gid, AT_SYMLINK_NOFOLLOW) < 0) fail(errno, "chown %s", d->path);
  close(dir);
}

static void bind_device(int rootfd, const device_node *d) {
  struct stat st;
  if (stat(d->path, &st) < 0) fail(errno, "the host's %s, to bind into a user namespace's /dev", d->path);
  if ((st.st_mode & S_IFMT) != (d->mode & S_IFMT) || major(st.st_rdev) != d->major || minor(st.st_rdev) != d->minor) {
    fail(-EINVAL, "the host's %s is not device %lld:%lld", d->path, d->major, d->minor);
  }
  mount_step bind = { .source = d->path, .target = d->path, .type = "", .data = "", .flags = MS_BIND, .is_file = 1 };
  do_mount(rootfd, &bind);
}

static void make_symlink(int rootfd, const char *target, const char *path) {
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s", path);
  char *slash = strrchr(parent, '/');
  if (!slash || !slash[1]) fail(EINVAL, "symlink path %s", path);
  *slash = 0;
  int dir = mkdir_in_root(rootfd, parent[0] ? parent : "/");
  if (dir < 0) fail(errno, "directory for %s", path);
  if (symlinkat(target, dir, slash + 1) < 0 && errno != EEXIST) fail(errno, "symlink %s -> %s", path, target);
  close(dir);
}

// The flags a bind remount must repeat, or the kernel refuses to change the others.
static unsigned long kept_flags(const char *path) {
  struct statvfs st;
  if (statvfs(path, &st) < 0) return 0;
  return st.f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
}

static void remount_readonly(const char *path) {
  if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags(path), NULL) < 0) {
    fail(errno, "remount %s read-only", path);
  }
}

static void readonly_path(const char *path) {
  if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
    if (errno == ENOENT) return;
    fail(errno, "bind %s to make it read-only", path);
  }
  remount_readonly(path);
}

static void mask_path(const char *path) {
  struct stat st;
  if (lstat(path, &st) < 0) {
    if (errno == ENOENT) return;
    fail(errno, "mask %s", path);
  }
  if (S_ISDIR(st.st_mode)) {
    // An empty read-only tmpfs: one block and one inode is all it needs.
    if (mount("tmpfs", path, "tmpfs", MS_RDONLY, "nr_blocks=1,nr_inodes=1") < 0 &&
        mount("tmpfs", path, "tmpfs", MS_RDONLY, "nr_blocks=1,nr_inodes=2") < 0) {
      fail(errno, "mask directory %s", path);
    }
  } else if (mount("/dev/null", path, NULL, MS_BIND, NULL) < 0) {
    fail(errno, "mask %s", path);
  }
}

static void pivot_into(int rootfd, const char *rootfs) {
  int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0) fail(errno, "open the old root");
  if (fchdir(rootfd) < 0) fail(errno, "chdir %s", rootfs);
  // pivot_root(".", ".") stacks the old root on top of the new one, so no directory for it is
  // needed in the image; unmounting "." then drops the host's whole tree.
  if (syscall(SYS_pivot_root, ".", ".") < 0) fail(errno, "pivot_root to %s", rootfs);
  if (fchdir(oldroot) < 0) fail(errno, "chdir to the old root");
  // Slave, so that our unmount cannot propagate back to the host.
  if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) fail(errno, "make the old root a slave");
  if (umount2(".", MNT_DETACH) < 0) fail(errno, "unmount the old root");
  if (chdir("/") < 0) fail(errno, "chdir /");
  close(oldroot);
}

// Makes `rootfs`'s parent mount private: pivot_root refuses a shared parent, and a bind of the
// root under a shared parent would show up on the host.
static void privatize_parent(const char *rootfs) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s", rootfs);
  for (;;) {
    if (mount(NULL, path, NULL, MS_PRIVATE, NULL) == 0) return;
    if (errno != EINVAL || !strcmp(path, "/")) fail(errno, "make the mount holding %s private", rootfs);
    char *slash = strrchr(path, '/');
    if (slash == path) path[1] = 0;
    else *slash = 0;
  }
}

static int write_all(int fd, const char *p, size_t n);

// Every descriptor past stdio closes on the next exec (close_range where the kernel has it).
static void close_on_exec_from_3(void) {
  if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
    for (int fd = 3; fd < 4096; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
}

// The createContainer hooks, run by the init in the container's namespaces before pivot_root
// (the runtime spec's rule; runc's init does the same): each with `state` on its stdin, its
// output kept for the error, killed after its timeout. The first failure fails the create.
static void run_create_container_hooks(const init_plan *plan, const char *state) {
  for (size_t i = 0; i < plan->n_create_container_hooks; i++) {
    const hook_step *h = &plan->create_container_hooks[i];
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) fail(errno, "pipe for createContainer hook #%zu", i);
    pid_t pid = fork();
    if (pid < 0) fail(errno, "fork createContainer hook #%zu", i);
    if (pid == 0) {
      if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0) _exit(126);
      // A hook runs in the container's namespaces with the host's privileges: it gets its stdio
      // and nothing of ours or of whoever started us (a shim's descriptors left inheritable).
      close_on_exec_from_3();
      signal(SIGPIPE, SIG_DFL);
      execve(h->path, h->args, h->env);
      dprintf(2, "%s", strerror(errno));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    // A hook need not read its state; its stdin closing under us is no error.
    signal(SIGPIPE, SIG_IGN);
    if (write_all(in[1], state, strlen(state)) < 0 && errno != EPIPE) fail(errno, "write the state to createContainer hook #%zu", i);
    close(in[1]);
    signal(SIGPIPE, SIG_DFL);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) fail(errno, "pidfd_open of createContainer hook #%zu", i);
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    char output[400];
    size_t got = 0;
    int timed_out = 0, out_open = 1;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
      int wait_ms = -1;
      if (h->timeout_seconds > 0) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        // The bundle's timeout may be any positive integer: kept from overflowing here and in poll's int.
        long long limit_ms = h->timeout_seconds > LLONG_MAX / 1000 ? LLONG_MAX : h->timeout_seconds * 1000;
        long long left = limit_ms - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left <= 0) { timed_out = 1; kill(pid, SIGKILL); break; }
        wait_ms = left > INT_MAX ? INT_MAX : (int)left;
      }
      struct pollfd p[2] = { { .fd = pidfd, .events = POLLIN }, { .fd = out_open ? out[0] : -1, .events = POLLIN } };
      if (poll(p, 2, wait_ms) < 0 && errno != EINTR) break;
      // Read what it wrote (also once it has ended), keeping the last bytes: what a failing
      // program says last says most.
      for (char buf[512];;) {
        ssize_t n = out_open ? read(out[0], buf, sizeof buf) : -1;
        if (n == 0) out_open = 0;
        if (n <= 0) break;
        for (ssize_t k = 0; k < n; k++) {
          if (got == sizeof output - 1) { memmove(output, output + 1, got - 1); got--; }
          output[got++] = buf[k];
        }
      }
      if (p[0].revents & POLLIN) break; // it has ended
    }
    close(out[0]);
    close(pidfd);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    output[got] = 0;
    for (char *c = output; *c; c++) if (*c == '\n') *c = ' ';
    while (got && output[got - 1] == ' ') output[--got] = 0;
    const char *said = output[0] ? ": " : "";
    if (timed_out) fail(-ETIME, "error running createContainer hook #%zu (%s) did not finish within %lld s and was killed", i, h->path, h->timeout_seconds);
    if (WIFSIGNALED(status)) fail(-EINTR, "error running createContainer hook #%zu (%s) was killed by signal %d%s%s", i, h->path, WTERMSIG(status), said, output);
    if (WEXITSTATUS(status) == 127 && got) fail(-ENOENT, "error running createContainer hook #%zu (%s) could not run: %s", i, h->path, output);
    if (WEXITSTATUS(status) != 0) fail(-EINVAL, "error running createContainer hook #%zu (%s) exited with status %d%s%s", i, h->path, WEXITSTATUS(status), said, output);
  }
}

static void setup_rootfs(const init_plan *plan, const char *hook_state) {
  if (mount(NULL, "/", NULL, (unsigned long)plan->root_propagation, NULL) < 0) fail(errno, "set the propagation of /");
  for (size_t i = 0; i < plan->n_prepare; i++) {
    const mount_step *m = &plan->prepare[i];
    if (mount(m->source, m->target, m->type, (unsigned long)m->flags, m->data[0] ? m->data : NULL) < 0) {
      fail(errno, "mount %s on %s", m->type, m->target);
    }
  }
  privatize_parent(plan->rootfs);
  if (mount(plan->rootfs, plan->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) fail(errno, "bind the root %s", plan->rootfs);
  int rootfd = open(plan->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) fail(errno, "open the root %s", plan->rootfs);

  for (size_t i = 0; i < plan->n_mounts; i++) do_mount(rootfd, &plan->mounts[i]);
  for (size_t i = 0; i < plan->n_devices; i++) {
    // In a user namespace mknod is refused: the host's node is bound there instead, as runc does.
    if (plan->has_id_maps) bind_device(rootfd, &plan->devices[i]);
    else make_device(rootfd, &plan->devices[i]);
  }
  for (size_t i = 0; i < plan->n_symlinks; i++) make_symlink(rootfd, plan->symlinks[i].target, plan->symlinks[i].path);

  run_create_container_hooks(plan, hook_state);
  pivot_into(rootfd, plan->rootfs);
  close(rootfd);

  for (size_t i = 0; plan->readonly_after[i]; i++) remount_readonly(plan->readonly_after[i]);
  if (plan->root_remount_flags &&
      mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | (unsigned long)plan->root_remount_flags | kept_flags("/"), NULL) < 0) {
    fail(errno, "remount the root with its final options");
  }
}

// mkdir -p, inside the container once it is its root.
static void make_cwd(const char *cwd) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", cwd) >= (int)sizeof buf) fail(ENAMETOOLONG, "working directory");
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0755) < 0 && errno != EEXIST) fail(errno, "create the working directory %s", buf);
    *p = '/';
  }
  if (mkdir(buf, 0755) < 0 && errno != EEXIST) fail(errno, "create the working directory %s", cwd);
  if (chdir(cwd) < 0) fail(errno, "chdir to the working directory %s", cwd);
}

static int cap_last(void) {
  int last = CAP_LAST_CAP;
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
  if (f) {
    if (fscanf(f, "%d", &last) != 1) last = CAP_LAST_CAP;
    fclose(f);
  }
  return last;
}

static void set_capabilities(const process_plan *plan, int last_cap) {
  const capability_sets *caps = &plan->capabilities;
  uid_t uid = (uid_t)plan->user.uid;
  gid_t gid = (gid_t)plan->user.gid;
  // The bounding set first: dropping from it needs CAP_SETPCAP, which may go below.
  for (int cap = 0; cap <= last_cap; cap++) {
    if ((uint64_t)caps->bounding & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) fail(errno, "drop capability %d from the bounding set", cap);
  }
  size_t n_groups = plan->user.n_additional_gids;
  if (uid != 0 || gid != 0 || n_groups) {
    gid_t *groups = calloc(n_groups ? n_groups : 1, sizeof *groups);
    if (!groups) fail(ENOMEM, "groups");
    for (size_t i = 0; i < n_groups; i++) groups[i] = (gid_t)plan->user.additional_gids[i];
    // Changing uid clears the capability sets unless we ask to keep them.
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) fail(errno, "keep capabilities across the uid change");
    if (setgroups(n_groups, groups) < 0) fail(errno, "setgroups");
    if (setresgid(gid, gid, gid) < 0) fail(errno, "setgid %u", gid);
    if (setresuid(uid, uid, uid) < 0) fail(errno, "setuid %u", uid);
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) fail(errno, "reset keepcaps");
  }
  struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
  struct __user_cap_data_struct data[2] = {
    { .effective = (uint32_t)caps->effective, .permitted = (uint32_t)caps->permitted, .inheritable = (uint32_t)caps->inheritable },
    { .effective = (uint32_t)((uint64_t)caps->effective >> 32), .permitted = (uint32_t)((uint64_t)caps->permitted >> 32), .inheritable = (uint32_t)((uint64_t)caps->inheritable >> 32) },
  };
  if (syscall(SYS_capset, &header, data) < 0) fail(errno, "set capabilities");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) fail(errno, "clear ambient capabilities");
  for (int cap = 0; cap <= last_cap; cap++) {
    if (!((uint64_t)caps->ambient & (1ULL << cap))) continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) fail(errno, "raise ambient capability %d", cap);
  }
}

// runc brings up lo in every network namespace it makes; without it even 127.0.0.1 is
// unreachable.
static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail(errno, "socket for lo");
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail(errno, "read the flags of lo");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail(errno, "bring lo up");
  close(s);
}

// HOME as runc sets it when the environment has none: the user's entry in the container's
// /etc/passwd, else "/". Parsed by hand: getpwuid would load NSS modules from the container.
static void set_home(process_plan *plan) {
  for (char **e = plan->env; *e; e++) {
    if (!strncmp(*e, "HOME=", 5)) return;
  }
  static char home[PATH_MAX + 6];
  snprintf(home, sizeof home, "HOME=/");
  int fd = open("/etc/passwd", O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    static char text[1 << 20];
    ssize_t n, got = 0;
    while (got < (ssize_t)sizeof text - 1 && (n = read(fd, text + got, sizeof text - 1 - (size_t)got)) > 0) got += n;
    text[got] = 0;
    // name:password:uid:gid:gecos:home:shell
    for (char *line = text, *next; line && *line; line = next) {
      next = strchr(line, '\n');
      if (next) *next++ = 0;
      char *field[7] = {0};
      int k = 0;
      for (char *p = line; k < 7; k++) {
        field[k] = p;
        p = strchr(p, ':');
        if (!p) { k++; break; }
        *p++ = 0;
      }
      if (k < 6 || !field[2][0]) continue;
      char *end;
      unsigned long uid = strtoul(field[2], &end, 10);
      if (*end || (long long)uid != plan->user.uid || field[5][0] != '/') continue;
      snprintf(home, sizeof home, "HOME=%s", field[5]);
      break;
    }
  }
  if (fd >= 0) close(fd);
  size_t n = 0;
  while (plan->env[n]) n++;
  char **env = calloc(n + 2, sizeof *env);
  if (!env) fail(ENOMEM, "environment");
  memcpy(env, plan->env, n * sizeof *env);
  env[n] = home;
  plan->env = env;
}

// Sends (or receives) one file descriptor over a unix socket.
static int send_fd(int sock, int fd) {
  char byte = 0;
  struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  return n == 1 ? 0 : -1;
}

static int recv_fd(int sock) {
  char byte;
  struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  if (n != 1) return -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

// A pty from the container's own devpts (so /dev/pts inside shows it), its master sent to the
// supervisor; returns the slave, which becomes the controlling terminal and stdio.
static int open_terminal(const process_plan *plan, int sock) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) fail(errno, "open /dev/ptmx in the container for its terminal (it needs /dev/pts)");
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) fail(errno, "unlock the terminal");
  struct winsize ws = { .ws_row = (unsigned short)plan->terminal.rows, .ws_col = (unsigned short)plan->terminal.cols };
  if (ioctl(master, TIOCSWINSZ, &ws) < 0) fail(errno, "set the terminal size");
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (slave < 0) fail(errno, "open the terminal's slave");
  if (send_fd(sock, master) < 0) fail(errno, "hand the terminal to the supervisor");
  close(master);
  close(sock);
  return slave;
}

// The pty's slave as our controlling terminal and stdio (we lead a session of our own by now).
static void become_terminal(int slave) {
  if (ioctl(slave, TIOCSCTTY, 0) < 0) fail(errno, "make the pty the controlling terminal");
  for (int fd = 0; fd < 3; fd++) {
    if (dup2(slave, fd) < 0) fail(errno, "dup2 the terminal to %d", fd);
  }
  if (slave > 2) close(slave);
}

// execvp's search, but in the container's PATH rather than ours; done before the init reports
// that it is ready, so that `create` (not `start`) says when the command is not there, as runc does.
static const char *find_executable(const process_plan *plan) {
  static char candidate[PATH_MAX];
  const char *file = plan->args[0];
  struct stat st;
  if (strchr(file, '/')) {
    if (stat(file, &st) < 0) fail(errno == ENOENT ? -ENOENT : errno, "exec %s%s", file, errno == ENOENT ? ": no such file in the container" : "");
    return file;
  }
  const char *search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (char **e = plan->env; *e; e++) {
    if (!strncmp(*e, "PATH=", 5)) search = *e + 5;
  }
  int saved = ENOENT;
  for (const char *p = search;; p++) {
    const char *colon = strchrnul(p, ':');
    int dirlen = (int)(colon - p);
    snprintf(candidate, sizeof candidate, "%.*s%s%s", dirlen, p, dirlen ? "/" : "", file);
    if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode)) {
      if (st.st_mode & 0111) return candidate;
      saved = EACCES; // keep looking, but remember why this one would fail
    }
    if (!*colon) break;
    p = colon;
  }
  if (saved == ENOENT) fail(-ENOENT, "exec %s: not found in the container's PATH (%s)", file, search);
  fail(saved, "exec %s", file);
}

static void exec_workload(const process_plan *plan, const char *path) {
  execve(path, plan->args, plan->env);
  fail(errno, "exec %s", plan->args[0]);
}

// ------------------------------------------------------------------------------------------
// The runc process model (bin/tsvmm-runc): namespaces joined by path, sysctls, seccomp through
// the host's libseccomp, a pty handed to the engine's console socket, and an init that waits on
// exec.fifo until `start` opens its other end.

static int write_file(const char *path, const char *value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = strlen(value);
  ssize_t w = write(fd, value, len);
  int err = errno;
  close(fd);
  if (w != (ssize_t)len) {
    errno = w < 0 ? err : EIO;
    return -1;
  }
  return 0;
}

// libseccomp, loaded from the host before the root changes (dlopen: a build needs no -dev package).
struct scmp_arg_cmp { unsigned int arg; int op; uint64_t datum_a, datum_b; };
static struct {
  void *(*init)(uint32_t);
  int (*arch_add)(void *, uint32_t);
  int (*attr_set)(void *, int, uint32_t);
  int (*resolve_name)(const char *);
  int (*rule_add_array)(void *, uint32_t, int, unsigned int, const struct scmp_arg_cmp *);
  int (*load)(void *);
} scmp;
#define SCMP_FLTATR_CTL_NNP 3

static void load_libseccomp(void) {
  void *lib = dlopen("libseccomp.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!lib) parent_fail("seccomp", 0, "the container has a seccomp profile, and libseccomp.so.2 cannot be loaded (Debian: apt-get install libseccomp2): %s", dlerror());
  *(void **)&scmp.init = dlsym(lib, "seccomp_init");
  *(void **)&scmp.arch_add = dlsym(lib, "seccomp_arch_add");
  *(void **)&scmp.attr_set = dlsym(lib, "seccomp_attr_set");
  *(void **)&scmp.resolve_name = dlsym(lib, "seccomp_syscall_resolve_name");
  *(void **)&scmp.rule_add_array = dlsym(lib, "seccomp_rule_add_array");
  *(void **)&scmp.load = dlsym(lib, "seccomp_load");
  if (!scmp.init || !scmp.arch_add || !scmp.attr_set || !scmp.resolve_name || !scmp.rule_add_array || !scmp.load) {
    parent_fail("seccomp", 0, "libseccomp.so.2 lacks a function tsvmm needs");
  }
}

// The filter of the plan (src/container/seccomp.ts); syscalls this libseccomp does not know
// are skipped, as runc skips them.
static void apply_seccomp(const seccomp_plan *s) {
  uint32_t def = (uint32_t)s->default_action;
  void *ctx = scmp.init(def);
  if (!ctx) fail(EINVAL, "seccomp_init");
  // no_new_privs is the plan's business, not libseccomp's.
  if (scmp.attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0) fail(EINVAL, "seccomp: leave no_new_privs alone");
  for (size_t i = 0; i < s->n_architectures; i++) {
    int r = scmp.arch_add(ctx, (uint32_t)s->architectures[i]);
    if (r < 0 && r != -EEXIST) fail(-r, "seccomp: add architecture %#llx", s->architectures[i]);
  }
  for (size_t i = 0; i < s->n_rules; i++) {
    const seccomp_rule *rule = &s->rules[i];
    uint32_t action = (uint32_t)rule->action;
    if (action == def) continue; // libseccomp refuses a rule that changes nothing
    struct scmp_arg_cmp cmp[6];
    size_t n = 0;
    int repeated = 0;
    for (size_t k = 0; k < rule->n_args && n < 6; k++, n++) {
      const seccomp_arg *a = &rule->args[k];
      cmp[n] = (struct scmp_arg_cmp){ (unsigned)a->index, (int)a->op, (uint64_t)a->value, (uint64_t)a->value_two };
      for (size_t m = 0; m < n; m++) repeated |= cmp[m].arg == cmp[n].arg;
    }
    for (size_t k = 0; k < rule->n_names; k++) {
      int nr = scmp.resolve_name(rule->names[k]);
      if (nr == -1) continue; // __NR_SCMP_ERROR: unknown here
      // libseccomp takes one comparison per argument in a rule; runc adds one rule per comparison then.
      int r = 0;
      if (repeated) {
        for (size_t m = 0; m < n && r >= 0; m++) r = scmp.rule_add_array(ctx, action, nr, 1, &cmp[m]);
      } else {
        r = scmp.rule_add_array(ctx, action, nr, (unsigned)n, cmp);
      }
      if (r < 0 && nr >= 0) fail(-r, "seccomp: rule for %s", rule->names[k]);
    }
  }
  int r = scmp.load(ctx);
  if (r < 0) fail(-r, "seccomp: load the filter");
}

static int connect_socket(const char *path) {
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof addr.sun_path) { errno = ENAMETOOLONG; return -1; }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

static void set_rlimits(const process_plan *plan) {
  for (size_t i = 0; i < plan->n_rlimits; i++) {
    const rlimit_step *l = &plan->rlimits[i];
    struct rlimit rl = { rlim_value(l->soft), rlim_value(l->hard) };
    if (setrlimit((int)l->resource, &rl) < 0) fail(errno, "setrlimit %lld", l->resource);
  }
}

// runc's --preserve-fds: our fds 4.. (after the channel, 3) become the process's 3..; dup2 leaves
// them open across exec, where everything else of ours is close-on-exec by now.
static void preserve_fds(const process_plan *plan) {
  for (long long i = 0; i < plan->preserve_fds; i++) {
    if (dup2((int)(4 + i), (int)(3 + i)) < 0) fail(errno, "--preserve-fds: fd %lld", 4 + i);
  }
}

// Blocks until `start` opens exec.fifo for reading (runc's create/start split), then says so.
static void wait_for_start(int fifo_fd) {
  char path[64];
  fd_path(path, sizeof path, fifo_fd);
  int fd;
  do fd = open(path, O_WRONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
  if (fd < 0) fail(errno, "open exec.fifo to wait for start");
  if (write(fd, "0", 1) != 1) fail(errno, "write exec.fifo");
  close(fd);
  close(fifo_fd);
}

// The namespaces to join, opened while their host paths are still there; fds[i] for joins[i].
static int *open_joins(const process_plan *plan) {
  int *fds = calloc(plan->n_join_namespaces ? plan->n_join_namespaces : 1, sizeof *fds);
  if (!fds) parent_fail("namespace", ENOMEM, "joining namespaces");
  for (size_t i = 0; i < plan->n_join_namespaces; i++) {
    fds[i] = open(plan->join_namespaces[i].path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) parent_fail("namespace", errno, "open the namespace %s", plan->join_namespaces[i].path);
  }
  return fds;
}

// Enters the namespaces of the plan whose flag is in `which` (setns; order as the plan gives it).
static void enter_joins(const process_plan *plan, const int *fds, int which, int in_parent) {
  for (size_t i = 0; i < plan->n_join_namespaces; i++) {
    const ns_join *j = &plan->join_namespaces[i];
    if (!(j->flag & which)) continue;
    if (setns(fds[i], (int)j->flag) < 0) {
      if (in_parent) parent_fail("namespace", errno, "join the namespace %s", j->path);
      fail(errno, "join the namespace %s", j->path);
    }
  }
}

typedef struct {
  init_plan *plan;
  const int *join_fds;
  int go_fd, go_write_fd, err_fd, err_read_fd, tty_fd, tty_parent_fd;
  int ready_fd, ready_read_fd, fifo_fd;
} child_args;

static int child_main(void *arg) {
  child_args *ca = arg;
  init_plan *plan = ca->plan;
  process_plan *proc = &plan->process;
  err_fd = ca->err_fd;
  // Only the supervisor may hold these ends, or our read below would never see it die.
  close(ca->go_write_fd);
  close(ca->err_read_fd);
  if (ca->tty_parent_fd >= 0) close(ca->tty_parent_fd);
  if (ca->ready_read_fd >= 0) close(ca->ready_read_fd);
  // The channel is the supervisor's; an init that outlives it (create) must not hold it open.
  close(CHANNEL_FD);
  // If the supervisor dies, so does the container (and with it, as pid 1, everything in it).
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  char go;
  ssize_t n;
  do n = read(ca->go_fd, &go, 1); while (n < 0 && errno == EINTR);
  if (n != 1) _exit(125); // the supervisor gave up before letting us start
  // With createContainer hooks, the state they read follows the byte, up to end-of-file.
  char *hook_state = NULL;
  if (plan->n_create_container_hooks) {
    size_t cap = 4096, len = 0;
    hook_state = malloc(cap);
    for (ssize_t r = 1; hook_state && r != 0;) {
      if (len + 1 == cap) hook_state = realloc(hook_state, cap *= 2);
      if (!hook_state) break;
      r = read(ca->go_fd, hook_state + len, cap - 1 - len);
      if (r < 0 && errno != EINTR) _exit(125);
      if (r > 0) len += (size_t)r;
    }
    if (!hook_state) _exit(125);
    hook_state[len] = 0;
  }
  close(ca->go_fd);
  // The namespaces we join rather than make (the pid one was entered by the supervisor).
  enter_joins(proc, ca->join_fds, ~(CLONE_NEWPID | CLONE_NEWUSER), 0);
  if (plan->has_id_maps) {
    // Root of the new user namespace, as mapped by the supervisor.
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) fail(errno, "become root of the user namespace");
  }
  // A session of our own: whatever terminal the caller has is no controlling terminal of ours,
  // so TIOCSTI and the terminal's signals cannot reach across.
  if (setsid() < 0) fail(errno, "setsid");

  // Now inside its cgroups: a cgroup namespace made here is rooted at the container's cgroup.
  if (plan->unshare_flags && unshare((int)plan->unshare_flags) < 0) fail(errno, "unshare");
  // A session keyring of our own, not the host's.
  if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 && errno != ENOSYS) fail(errno, "join a new session keyring");
  set_rlimits(proc);
  int last_cap = cap_last();

  if (plan->loopback_up) loopback_up();
  setup_rootfs(plan, hook_state);
  if (plan->hostname && sethostname(plan->hostname, strlen(plan->hostname)) < 0) fail(errno, "sethostname %s", plan->hostname);
  if (plan->domainname && setdomainname(plan->domainname, strlen(plan->domainname)) < 0) fail(errno, "setdomainname %s", plan->domainname);
  for (size_t i = 0; i < plan->n_sysctl; i++) {
    const sysctl_step *k = &plan->sysctl[i];
    if (write_file(k->path, k->value) < 0) fail(errno, "sysctl %s = %s", k->path, k->value);
  }
  for (size_t i = 0; plan->readonly_paths[i]; i++) readonly_path(plan->readonly_paths[i]);
  for (size_t i = 0; plan->masked_paths[i]; i++) mask_path(plan->masked_paths[i]);
  make_cwd(proc->cwd);
  if (plan->set_home) set_home(proc);
  if (proc->has_terminal) become_terminal(open_terminal(proc, ca->tty_fd));
  umask((mode_t)proc->umask);
  // Without no_new_privs only a process with CAP_SYS_ADMIN may load a filter: before the drop.
  if (proc->has_seccomp && !proc->no_new_privileges) apply_seccomp(&proc->seccomp);
  if (proc->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail(errno, "set no_new_privs");
  set_capabilities(proc, last_cap);
  const char *executable = find_executable(proc);

  // Nothing of ours may leak into the workload; the error pipe closes on exec by itself.
  close_on_exec_from_3();
  if (ca->fifo_fd >= 0) {
    // Ready: the supervisor may go (create returns), and we live on without it.
    if (plan->runtime.detach) prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
    if (write(ca->ready_fd, "R", 1) != 1) _exit(125);
    close(ca->ready_fd);
    wait_for_start(ca->fifo_fd);
  }
  // As late as can be, so that the filter need allow nothing of ours.
  preserve_fds(proc);
  if (proc->has_seccomp && proc->no_new_privileges) apply_seccomp(&proc->seccomp);
  exec_workload(proc, executable);
  return 125;
}

// ------------------------------------------------------------------------------------------
// The supervisor

static volatile pid_t child_pid;

static void forward_signal(int sig) {
  if (child_pid > 0) kill(child_pid, sig);
}

// ------------------------------------------------------------------------------------------
// The terminal relay: our stdin → the pty master → our stdout, resize requests from fd 3,
// until the init ends.

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

// The frames from tsvmm on fd 3 while the workload runs (resize requests) at the start of
// `buf`; returns how many bytes they took. Anything else on the channel is dropped whole.
static size_t channel_commands(int master, const unsigned char *buf, size_t len) {
  size_t used = 0;
  while (len - used >= HELPER_WIRE_HEADER) {
    long body = wire_frame_body(buf + used, WIRE_RESIZE_COMMAND);
    if (body < 0) return len;
    size_t whole = HELPER_WIRE_HEADER + (size_t)body;
    if (len - used < whole) break;
    resize_command c;
    if (read_resize_command(buf + used, whole, &c) == 0 && c.rows >= 1 && c.rows <= 65535 && c.cols >= 1 && c.cols <= 65535) {
      struct winsize ws = { .ws_row = (unsigned short)c.rows, .ws_col = (unsigned short)c.cols };
      ioctl(master, TIOCSWINSZ, &ws); // the kernel sends SIGWINCH to the foreground group
    }
    used += whole;
  }
  return used;
}

static void relay_terminal(int master, pid_t pid) {
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) parent_fail("terminal", errno, "pidfd_open");
  fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
  // Input waits here while the pty's input queue is full, so that we keep reading its output
  // (a container that writes without reading would otherwise stall us both).
  static char in[4096], out[16384];
  static unsigned char cmd[4096];
  size_t in_len = 0, in_off = 0, cmd_len = 0;
  int stdin_open = 1, master_open = 1, channel_open = 1;
  for (;;) {
    struct pollfd p[4] = {
      { .fd = pidfd, .events = POLLIN },
      { .fd = master_open ? master : -1, .events = (short)(POLLIN | (in_len ? POLLOUT : 0)) },
      { .fd = stdin_open && !in_len ? STDIN_FILENO : -1, .events = POLLIN },
      { .fd = channel_open ? CHANNEL_FD : -1, .events = POLLIN },
    };
    if (poll(p, 4, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(master, out, sizeof out);
      if (n > 0) {
        if (write_all(STDOUT_FILENO, out, (size_t)n) < 0) { /* nobody listens; keep draining */ }
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        master_open = 0; // EIO: every slave is closed
      }
    }
    if (in_len && (p[1].revents & POLLOUT)) {
      ssize_t n = write(master, in + in_off, in_len);
      if (n > 0) { in_off += (size_t)n; in_len -= (size_t)n; }
      else if (n < 0 && errno != EAGAIN && errno != EINTR) in_len = 0;
    }
    if (p[2].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(STDIN_FILENO, in, sizeof in);
      if (n > 0) {
        in_off = 0;
        in_len = (size_t)n;
      } else if (n == 0 || errno != EINTR) {
        // End of input: what a terminal sends for it (Ctrl-D), so that the workload reads EOF.
        stdin_open = 0;
        struct termios t;
        if (tcgetattr(master, &t) == 0 && (t.c_lflag & ICANON)) {
          in[0] = (char)t.c_cc[VEOF];
          in_off = 0;
          in_len = 1;
        }
      }
    }
    if (p[3].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(CHANNEL_FD, cmd + cmd_len, sizeof cmd - cmd_len);
      if (n <= 0 && !(n < 0 && errno == EINTR)) {
        channel_open = 0;
      } else if (n > 0) {
        cmd_len += (size_t)n;
        size_t used = channel_commands(master, cmd, cmd_len);
        cmd_len -= used;
        memmove(cmd, cmd + used, cmd_len);
        if (cmd_len == sizeof cmd) cmd_len = 0; // no command is that long
      }
    }
    if (p[0].revents & POLLIN) {
      // The init has ended (and with it its pid namespace): pass on what it wrote last.
      ssize_t n;
      while (master_open && (n = read(master, out, sizeof out)) > 0) {
        if (write_all(STDOUT_FILENO, out, (size_t)n) < 0) break;
      }
      break;
    }
  }
  close(pidfd);
  close(master);
  close(STDIN_FILENO);
  close(STDOUT_FILENO);
}

// Waits until the process `pid` has exec'd its command (the close-on-exec error pipe ends
// empty) or reports why it could not, and ends.
static void await_exec(int errfd, pid_t pid) {
  char err[2048];
  ssize_t n, got = 0;
  while ((n = read(errfd, err + got, sizeof err - 1 - (size_t)got)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    got += n;
    if ((size_t)got >= sizeof err - 1) break;
  }
  close(errfd);
  if (got > 0) {
    err[got] = 0;
    char *tab = strchr(err, '\t');
    int status;
    waitpid(pid, &status, 0);
    report_error("setup", atoi(err), tab ? tab + 1 : err);
    _exit(125);
  }
}

// Waits for `pid` and passes its end on: a line on the channel, and as our own exit status.
static int report_exit(pid_t pid) {
  char msg[128];
  int status;
  pid_t w;
  do w = waitpid(pid, &status, 0); while (w < 0 && errno == EINTR);
  if (w < 0) parent_fail("wait", errno, "waiting for the container");
  if (WIFSIGNALED(status)) {
    snprintf(msg, sizeof msg, "{\"exit\":{\"signal\":%d}}\n", WTERMSIG(status));
    channel_write(msg, strlen(msg));
    return 128 + WTERMSIG(status);
  }
  snprintf(msg, sizeof msg, "{\"exit\":{\"code\":%d}}\n", WEXITSTATUS(status));
  channel_write(msg, strlen(msg));
  return WEXITSTATUS(status);
}

// `exec`: one more process in a running container (src/container/plan.ts ExecPlan). We join its
// cgroups and namespaces ourselves and fork, since a pid namespace takes only new children.
static int exec_main(exec_plan *xplan) {
  process_plan *plan = &xplan->process;
  const char *console_socket = xplan->console_socket;
  if (!plan->args[0]) parent_fail("plan", 0, "the plan has no command");

  // Everything named by a host path first: after the mount namespace, those paths are gone.
  int *join_fds = open_joins(plan);
  if (plan->has_seccomp) load_libseccomp();
  int console_fd = -1;
  if (plan->has_terminal) {
    if (!console_socket) parent_fail("console", 0, "a terminal needs --console-socket");
    console_fd = connect_socket(console_socket);
    if (console_fd < 0) parent_fail("console", errno, "connect to the console socket %s", console_socket);
  }
  char self[16];
  snprintf(self, sizeof self, "%d", getpid());
  for (char **p = xplan->cgroup_procs; *p; p++) {
    if (write_file(*p, self) < 0) parent_fail("cgroup", errno, "joining %s", *p);
  }
  if (plan->has_oom_score_adj) {
    char value[32];
    snprintf(value, sizeof value, "%lld", plan->oom_score_adj);
    if (write_file("/proc/self/oom_score_adj", value) < 0) parent_fail("oom_score_adj", errno, "write /proc/self/oom_score_adj");
  }
  enter_joins(plan, join_fds, ~0, 1);

  int errp[2];
  if (pipe2(errp, O_CLOEXEC) < 0) parent_fail("pipe", errno, "pipe");
  pid_t pid = fork();
  if (pid < 0) parent_fail("fork", errno, "fork into the container");
  if (pid == 0) {
    close(errp[0]);
    err_fd = errp[1];
    if (!xplan->detach) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (setsid() < 0) fail(errno, "setsid");
    // Joined into a user namespace, host root is nobody there: become its root (or the user
    // below), never stay the host's root unmapped.
    for (size_t i = 0; i < plan->n_join_namespaces; i++) {
      if (plan->join_namespaces[i].flag == CLONE_NEWUSER && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) fail(errno, "become root of the user namespace");
    }
    set_rlimits(plan);
    if (chdir(plan->cwd) < 0) fail(errno, "chdir to the working directory %s", plan->cwd);
    if (console_fd >= 0) become_terminal(open_terminal(plan, console_fd));
    umask((mode_t)plan->umask);
    if (plan->has_seccomp && !plan->no_new_privileges) apply_seccomp(&plan->seccomp);
    if (plan->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail(errno, "set no_new_privs");
    set_capabilities(plan, cap_last());
    const char *executable = find_executable(plan);
    close_on_exec_from_3();
    preserve_fds(plan);
    if (plan->has_seccomp && plan->no_new_privileges) apply_seccomp(&plan->seccomp);
    exec_workload(plan, executable);
  }
  close(errp[1]);
  if (console_fd >= 0) close(console_fd);
  child_pid = pid;
  char msg[64];
  snprintf(msg, sizeof msg, "{\"pid\":%d}\n", pid);
  channel_write(msg, strlen(msg));
  await_exec(errp[0], pid);
  channel_write("{\"running\":true}\n", 17);
  if (xplan->detach) return 0;
  struct sigaction sa = { .sa_handler = forward_signal };
  sigemptyset(&sa.sa_mask);
  int forwarded[] = { SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGINT, SIGQUIT };
  for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) sigaction(forwarded[i], &sa, NULL);
  close(STDIN_FILENO);
  close(STDOUT_FILENO);
  return report_exit(pid);
}

// ------------------------------------------------------------------------------------------
// tsvmm-runc's fast path. An engine's shim runs the runtime once per verb, and a Node start costs
// more than runc's whole verb, so bin/tsvmm-runc comes here first: `state` of a container,
// `start` of a created one, `kill` of a live one and `delete` of a stopped (or absent, with
// --force) one are done here from <root>/<id>/state (a runtime_state frame of
// src/container/plan-layout.ts), when no hook is due. Anything else, and every refusal, goes on
// to tsvmm-runc in Node (dist/bundle/runc.cjs), which holds the lifecycle's rules and words.
//
//   container-init --runc PACKAGE_ROOT [runc's arguments]

// The verb runc_fast found, if it got that far (Node's `create` takes a helper forked here).
static const char *runc_verb;

// Node's environment for tsvmm-runc. NODE_EXTRA_CA_CERTS makes every Node start read and parse
// that certificate file before any of our code runs (36 ms of a 62 ms `node -e 0` on this
// project's machines, where it is set system-wide); tsvmm-runc makes no TLS connection, and hooks
// and containers get the spec's environment, not ours.
static void runc_node_env(void) {
  unsetenv("NODE_EXTRA_CA_CERTS");
}

static void __attribute__((noreturn)) runc_node(const char *package, int argc, char **argv) {
  runc_node_env();
  char entry[PATH_MAX];
  snprintf(entry, sizeof entry, "%s/bin/tsvmm-runc-node.cjs", package);
  char **args = calloc((size_t)argc + 4, sizeof *args);
  if (!args) _exit(1);
  args[0] = "node";
  args[1] = entry;
  args[2] = (char *)(runc_verb ? runc_verb : ""); // names the code cache (bin/tsvmm-runc-node.cjs)
  for (int i = 0; i < argc; i++) args[i + 3] = argv[i];
  execvp("node", args);
  fprintf(stderr, "tsvmm-runc: cannot run node: %s\n", strerror(errno));
  _exit(1);
}

// A whole file of less than `limit` bytes, NUL-terminated; its length in *length, and if `st` is
// given, the file's fstat there.
static char *read_small_file(const char *path, size_t limit, size_t *length, struct stat *st) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  if (st && fstat(fd, st) < 0) { close(fd); return NULL; }
  char *buf = malloc(limit + 1);
  size_t got = 0;
  ssize_t n;
  while (buf && got < limit && (n = read(fd, buf + got, limit - got)) > 0) got += (size_t)n;
  close(fd);
  if (!buf || got == limit) { free(buf); return NULL; }
  buf[got] = 0;
  if (length) *length = got;
  return buf;
}

// A file or directory only this user (or root) can change.
static int owned_by_us(const struct stat *st) {
  return (st->st_uid == geteuid() || st->st_uid == 0) && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

// The init is alive and is still the process that create made (state.json's startTime).
static int runc_init_alive(long long pid, const char *start_time) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%lld/stat", pid);
  char *stat = read_small_file(path, 4096, NULL, NULL);
  if (!stat) return 0;
  char *p = strrchr(stat, ')');
  int alive = 0;
  if (p && p[1] == ' ') {
    char state = p[2];
    // Fields after the command: state is field 3, starttime field 22.
    char *field = p + 2;
    for (int i = 3; i < 22 && field; i++) {
      field = strchr(field, ' ');
      if (field) field++;
    }
    if (field) {
      size_t len = strcspn(field, " ");
      alive = state != 'Z' && state != 'X' && strlen(start_time) == len && !strncmp(field, start_time, len);
    }
  }
  free(stat);
  return alive;
}

// A cgroup of the container is frozen, as Runtime.status reads it (src/runtime/runtime.ts):
// cgroup v1's freezer.state other than THAWED, else cgroup v2's cgroup.freeze at 1.
static int runc_frozen(const runtime_state *state) {
  int v1 = 0, frozen = 0;
  char path[PATH_MAX + 32];
  for (size_t k = 0; k < state->n_cgroup_dirs && !v1; k++) {
    snprintf(path, sizeof path, "%s/freezer.state", state->cgroup_dirs[k]);
    char *text = read_small_file(path, 64, NULL, NULL);
    if (!text) continue;
    v1 = 1;
    frozen = strncmp(text, "THAWED", 6) != 0;
    free(text);
  }
  for (size_t k = 0; k < state->n_cgroup_dirs && !v1 && !frozen; k++) {
    snprintf(path, sizeof path, "%s/cgroup.freeze", state->cgroup_dirs[k]);
    char *text = read_small_file(path, 64, NULL, NULL);
    if (text) frozen = text[0] == '1';
    free(text);
  }
  return frozen;
}

// The runtime's root directory (--root), as runc_fast found it.
static const char *runc_root = "/run/tsvmm-runc";
// This process is the helper runc_prefork forked.
static int runc_forked;
// In the front end: the forked helper's socket and pid (-1: none).
static int runc_helper_fd = -1;
static pid_t runc_helper_pid = -1;

// `create` goes to Node, which reads the spec and builds the plan; the helper that carries the
// plan out is forked here meanwhile, instead of spawned by Node once the plan is made (a fork
// and exec of a Node process, which under load cost as much as the rest of create's own work).
// It waits on a socket, as on the channel Node would have given it, and Node finds the other end
// in TSVMM_RUNC_HELPER=FD:PID (src/runtime/helper.ts). Returns 1 in the helper, 0 in the front end
// (also when the fork could not be made: Node then spawns one as usual).
static int runc_prefork(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return 0;
  if (sv[0] <= STDERR_FILENO || sv[1] <= STDERR_FILENO) {
    // Our stdio is not all open: those numbers are the container's, not for a socket.
    close(sv[0]);
    close(sv[1]);
    return 0;
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(sv[0]);
    close(sv[1]);
    return 0;
  }
  if (pid == 0) {
    close(sv[0]);
    if (sv[1] != CHANNEL_FD && (dup2(sv[1], CHANNEL_FD) < 0 || close(sv[1]) < 0)) _exit(125);
    runc_forked = 1;
    return 1;
  }
  close(sv[1]);
  char value[64];
  snprintf(value, sizeof value, "%d:%d", sv[0], (int)pid);
  if (fcntl(sv[0], F_SETFD, 0) < 0 || setenv("TSVMM_RUNC_HELPER", value, 1) < 0) {
    // Without the socket Node cannot reach it: end it (it reads end-of-file) and let Node spawn one.
    close(sv[0]);
    waitpid(pid, NULL, 0);
    return 0;
  }
  runc_helper_fd = sv[0];
  runc_helper_pid = pid;
  return 0;
}

static int runc_fast(int argc, char **argv) {
  const char *root = runc_root;
  int i = 0;
  // Global options: those that change nothing here; any other (--debug, a log of a format we
  // would have to write) goes to Node.
  const char *log = NULL;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i] + (argv[i][1] == '-' ? 2 : 1);
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
    if (!value) return -1;
    if (len == 4 && !strncmp(a, "root", 4)) root = runc_root = value;
    else if (len == 3 && !strncmp(a, "log", 3)) log = value;
    else if (len == 10 && !strncmp(a, "log-format", 10)) { /* only errors are logged, and Node writes those */ }
    else if (len == 14 && !strncmp(a, "systemd-cgroup", 14) && !eq) continue;
    else return -1;
    if (!eq) i++;
  }
  (void)log;
  if (i >= argc) return -1;
  const char *verb = argv[i++];
  runc_verb = verb;
  int force = 0;
  if (!strcmp(verb, "delete") && i < argc && (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))) { force = 1; i++; }
  if (i >= argc || argv[i][0] == '-') return -1;
  const char *id = argv[i++];
  if (strchr(id, '/') || !strcmp(id, ".") || !strcmp(id, "..")) return -1;
  const char *signal_arg = NULL;
  if (!strcmp(verb, "kill") && i < argc) signal_arg = argv[i++];
  if (i != argc) return -1;

  char dir[PATH_MAX], file[PATH_MAX + 32];
  snprintf(dir, sizeof dir, "%s/%s", root, id);
  snprintf(file, sizeof file, "%s/state", dir);
  size_t length;
  struct stat file_st, dir_st;
  char *text = read_small_file(file, PLAN_LIMIT, &length, &file_st);
  if (!text) {
    // runc's delete --force of an unknown id: remove what a failed create may have left, succeed.
    if (!strcmp(verb, "delete") && force && errno == ENOENT) {
      if (rmdir(dir) < 0 && errno != ENOENT) return -1;
      return 0;
    }
    return -1;
  }
  // The state names a pid to signal and directories to remove: it counts only if nobody but us
  // (or root) could have written it or swapped it in. Anything else goes to Node, which refuses it
  // (src/runtime/state.ts, StateStore.load).
  if (!owned_by_us(&file_st) || stat(dir, &dir_st) < 0 || !owned_by_us(&dir_st)) return -1;
  runtime_state state = {0};
  if (read_runtime_state((const unsigned char *)text, length, &state) < 0) return -1;
  int alive = runc_init_alive(state.pid, state.start_time);
  char fifo[PATH_MAX + 32];
  snprintf(fifo, sizeof fifo, "%s/exec.fifo", dir);

  if (!strcmp(verb, "start")) {
    if (!alive || access(fifo, F_OK) < 0 || state.hooks.start_container || state.hooks.poststart) return -1;
    int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    // The init blocks opening the other end; once it has, it writes one byte and execs.
    for (int tries = 0;; tries++) {
      char byte;
      ssize_t n = read(fd, &byte, 1);
      if (n == 1) break;
      if (n < 0 && errno != EAGAIN) { close(fd); return -1; }
      if (!runc_init_alive(state.pid, state.start_time) || tries > 20000) {
        // A quick command may have taken its cue and ended between that read and this look.
        if (read(fd, &byte, 1) == 1) break;
        close(fd);
        return -1;
      }
      usleep(tries < 100 ? 1000 : 10000);
    }
    close(fd);
    unlink(fifo);
    return 0;
  }
  if (!strcmp(verb, "state")) {
    // Node wrote the OCI state of each status (ociState, src/runtime/state.ts); this picks one.
    const char *text = !alive ? state.oci.stopped : access(fifo, F_OK) == 0 ? state.oci.created
                     : runc_frozen(&state) ? state.oci.paused : state.oci.running;
    size_t len = strlen(text);
    if (!len) return -1;
    if (fwrite(text, 1, len, stdout) != len || fputc('\n', stdout) == EOF || fflush(stdout) != 0) return -1;
    return 0;
  }
  if (!strcmp(verb, "kill")) {
    int sig = SIGTERM;
    if (signal_arg) {
      char *end;
      long n = strtol(signal_arg, &end, 10);
      if (*end || n < 1 || n > 64) return -1; // names: Node knows them
      sig = (int)n;
    }
    if (!alive || state.pid <= 0 || state.pid > INT_MAX) return -1;
    // The start time is checked again once a pidfd holds the process, and the signal goes through
    // that pidfd: a pid freed and taken by another process between the check and kill(2) (runc's
    // window) cannot receive it.
    int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)state.pid, 0);
    if (pidfd < 0) return -1;
    int sent = runc_init_alive(state.pid, state.start_time) && syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0;
    close(pidfd);
    return sent ? 0 : -1;
  }
  if (!strcmp(verb, "delete")) {
    if (alive || state.hooks.poststop) return -1;
    for (size_t k = 0; k < state.n_cgroup_dirs; k++) {
      // The last processes of a stopped container may still be on their way out.
      int tries = 0;
      while (rmdir(state.cgroup_dirs[k]) < 0 && errno != ENOENT) {
        if (errno != EBUSY || ++tries > 200) return -1;
        usleep(1000);
      }
      // tsvmm's parent cgroup goes with its last container, as src/container/cgroups.ts removes it.
      char parent[PATH_MAX];
      snprintf(parent, sizeof parent, "%s", state.cgroup_dirs[k]);
      char *slash = strrchr(parent, '/');
      if (slash) {
        *slash = 0;
        const char *base = strrchr(parent, '/');
        if (base && !strcmp(base + 1, "tsvmm")) rmdir(parent);
      }
    }
    // The state directory holds files only (state, exec.fifo); state goes last.
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "state")) continue;
      if (unlinkat(dirfd(d), e->d_name, 0) < 0) { closedir(d); return -1; }
    }
    closedir(d);
    unlink(file);
    if (rmdir(dir) < 0 && errno != ENOENT) return -1;
    return 0;
  }
  return -1;
}

// ------------------------------------------------------------------------------------------
// Warm create. Node's start alone costs more than runc's whole `create`, so the Node half of
// `create` stays loaded between calls: a server per runtime root (src/runtime/warm-server.ts)
// listening on <root>/warm:create.sock (a name no container id can take). The front end sends
// it the request (argv, cwd, environment and, by SCM_RIGHTS, our fds 0-2 and the forked
// helper's socket) and exits with the status it answers; the helper stays our child, as on the
// cold path. Whatever goes wrong before the server has taken the request sends the create down
// the cold path (Node, as before), which then starts a server for the next one.
// TSVMM_RUNC_WARM=0 turns all this off.
//
// The exchange (lengths and numbers in host order; one machine):
//   front end → server  u32 length, then NUL-ended strings: WARM_MAGIC, build id, cwd, helper
//                       pid, argc, argv..., envc, env...; fds 0, 1, 2 and the helper's socket
//   server → front end  i32 WARM_ACCEPTED, or WARM_COLD (declined), or WARM_START (declined,
//                       and the server is leaving: start another)
//   front end → server  'G' (taken within the time we wait: the server may go on)
//   server → front end  i32 the exit status, or WARM_COLD (nothing done: run it cold)

#define WARM_MAGIC "tsvmm-runc-warm/1"
enum { WARM_COLD = -1, WARM_START = -2, WARM_ACCEPTED = -3 };
// How long the front end waits for the server to take a request before it runs the create cold.
#define WARM_ACCEPT_TIMEOUT_S 3

static int runc_warm_on(void) {
  const char *value = getenv("TSVMM_RUNC_WARM");
  return !value || strcmp(value, "0") != 0;
}

// What ties a server to this install: the Node bundle and this binary (path, inode, size, mtime).
// A server started by another build declines, and leaves.
static int runc_build_id(const char *package, char *out, size_t size) {
  char entry[PATH_MAX];
  snprintf(entry, sizeof entry, "%s/dist/bundle/runc.cjs", package);
  struct stat a, b;
  if (stat(entry, &a) < 0 || stat("/proc/self/exe", &b) < 0) return -1;
  snprintf(out, size, "%llu.%llu.%lld.%lld.%ld:%llu.%llu.%lld.%lld.%ld", (unsigned long long)a.st_dev, (unsigned long long)a.st_ino,
           (long long)a.st_size, (long long)a.st_mtim.tv_sec, a.st_mtim.tv_nsec, (unsigned long long)b.st_dev, (unsigned long long)b.st_ino,
           (long long)b.st_size, (long long)b.st_mtim.tv_sec, b.st_mtim.tv_nsec);
  return 0;
}

struct warm_buffer { char *data; size_t length, capacity; };

static int warm_put(struct warm_buffer *b, const char *text) {
  size_t n = strlen(text) + 1;
  if (b->length + n > b->capacity) {
    size_t capacity = (b->length + n) * 2;
    char *data = realloc(b->data, capacity);
    if (!data) return -1;
    b->data = data;
    b->capacity = capacity;
  }
  memcpy(b->data + b->length, text, n);
  b->length += n;
  return 0;
}

// Whether the server's socket names under `root` fit in sun_path: it first listens as
// .warm:create.sock.PID (src/runtime/warm-server.ts), the longer one.
static int warm_socket_fits(const char *root) {
  return strlen(root) + sizeof "/.warm:create.sock.4194304" <= sizeof ((struct sockaddr_un *)0)->sun_path;
}

static int warm_read_int(int fd, int32_t *value) {
  ssize_t n;
  do n = recv(fd, value, sizeof *value, MSG_WAITALL); while (n < 0 && errno == EINTR);
  return n == (ssize_t)sizeof *value ? 0 : -1;
}

// The create through the server: its exit status, or WARM_COLD / WARM_START when it goes to Node.
static int runc_warm_create(const char *build, int argc, char **argv) {
  struct stat st;
  // The root as the state checks want it: ours (or root's), writable by nobody else.
  if (stat(runc_root, &st) < 0) return errno == ENOENT ? WARM_START : WARM_COLD;
  if (!S_ISDIR(st.st_mode) || !owned_by_us(&st)) return WARM_COLD;
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  if (!warm_socket_fits(runc_root)) return WARM_COLD;
  snprintf(address.sun_path, sizeof address.sun_path, "%s/warm:create.sock", runc_root);
  if (lstat(address.sun_path, &st) < 0) return WARM_START;
  if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) return WARM_COLD;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return WARM_COLD;
  if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) {
    // A socket file nobody listens on: a server that died (or is leaving).
    int result = errno == ECONNREFUSED || errno == ENOENT ? WARM_START : WARM_COLD;
    close(fd);
    return result;
  }
  struct ucred cred;
  socklen_t cred_size = sizeof cred;
  struct timeval timeout = { .tv_sec = WARM_ACCEPT_TIMEOUT_S };
  int result = WARM_COLD;
  struct warm_buffer body = {0};
  char cwd[PATH_MAX], number[32];
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_size) < 0 || cred.uid != geteuid() || !getcwd(cwd, sizeof cwd)) goto out;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0) goto out;
  snprintf(number, sizeof number, "%d", (int)runc_helper_pid);
  int failed = warm_put(&body, WARM_MAGIC) | warm_put(&body, build) | warm_put(&body, cwd) | warm_put(&body, number);
  snprintf(number, sizeof number, "%d", argc);
  failed |= warm_put(&body, number);
  for (int i = 0; i < argc; i++) failed |= warm_put(&body, argv[i]);
  extern char **environ;
  int envc = 0;
  for (char **e = environ; *e; e++) envc += strncmp(*e, "TSVMM_RUNC_HELPER=", 18) != 0;
  snprintf(number, sizeof number, "%d", envc);
  failed |= warm_put(&body, number);
  for (char **e = environ; *e; e++) if (strncmp(*e, "TSVMM_RUNC_HELPER=", 18)) failed |= warm_put(&body, *e);
  if (failed || body.length > UINT32_MAX) goto out;
  uint32_t length = (uint32_t)body.length;
  int fds[4] = { STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, runc_helper_fd };
  char control[CMSG_SPACE(sizeof fds)];
  memset(control, 0, sizeof control);
  struct iovec iov[2] = { { &length, sizeof length }, { body.data, body.length } };
  struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = control, .msg_controllen = sizeof control };
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof fds);
  memcpy(CMSG_DATA(c), fds, sizeof fds);
  ssize_t sent;
  do sent = sendmsg(fd, &msg, MSG_NOSIGNAL); while (sent < 0 && errno == EINTR);
  if (sent != (ssize_t)(sizeof length + body.length)) goto out;
  int32_t answer;
  if (warm_read_int(fd, &answer) < 0) {
    // Closed without an answer: a server that is not working; one more may start (its lock keeps it one).
    result = errno == EAGAIN || errno == EWOULDBLOCK ? WARM_COLD : WARM_START;
    goto out;
  }
  if (answer != WARM_ACCEPTED) {
    result = answer == WARM_START ? WARM_START : WARM_COLD;
    goto out;
  }
  // Taken: from here the create is the server's (it waits for this byte, so a request we gave up
  // on above is never carried out beside the cold one).
  timeout.tv_sec = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0 || send(fd, "G", 1, MSG_NOSIGNAL) != 1) goto out;
  if (warm_read_int(fd, &answer) < 0) {
    fprintf(stderr, "tsvmm-runc: the create server (%s/warm:create.sock) ended during the create\n", runc_root);
    result = 1;
    goto out;
  }
  result = answer >= 0 && answer < 256 ? answer : answer == WARM_COLD ? WARM_COLD : 1;
out:
  free(body.data);
  close(fd);
  return result;
}

// Starts a create server for this root, for the creates after this one: a process of its own
// session, in /, holding none of our fds (an engine reads our stdout and stderr to their end, so
// nothing may keep them open), that waits for this process (which becomes the cold create) to
// end so as not to slow it, then runs Node as the server. Its lock (src/runtime/warm-server.ts)
// leaves one server per root.
static void runc_warm_start(const char *package, const char *build) {
  char root[2 * PATH_MAX + 2], entry[PATH_MAX];
  if (runc_root[0] == '/') snprintf(root, sizeof root, "%s", runc_root);
  else {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return;
    if ((size_t)snprintf(root, sizeof root, "%s/%s", cwd, runc_root) >= sizeof root) return;
  }
  // The server listens under the absolute root: a relative one that fits may not, made absolute.
  if (!warm_socket_fits(root)) return;
  snprintf(entry, sizeof entry, "%s/dist/bundle/runc.cjs", package);
  int self = (int)syscall(SYS_pidfd_open, getpid(), 0);
  if (self < 0) return;
  pid_t pid = fork();
  if (pid != 0) {
    close(self);
    return;
  }
  setsid();
  if (self != 3 && (dup2(self, 3) < 0)) _exit(1);
  if (syscall(SYS_close_range, 4, ~0U, 0) < 0) for (int fd = 4; fd < 1024; fd++) close(fd);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) _exit(1);
  close(null);
  if (chdir("/") < 0) _exit(1);
  struct pollfd p = { .fd = 3, .events = POLLIN };
  while (poll(&p, 1, 60000) < 0 && errno == EINTR) {}
  close(3);
  // A server that holds the root's lock by now (one a concurrent cold create started) makes ours
  // superfluous: no Node start for it to exit at the lock.
  char lock_path[sizeof root + 32];
  snprintf(lock_path, sizeof lock_path, "%s/warm:create.lock", root);
  int lock = open(lock_path, O_RDONLY | O_CLOEXEC);
  struct flock held = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  if (lock >= 0 && fcntl(lock, F_OFD_GETLK, &held) == 0 && held.l_type != F_UNLCK) _exit(0);
  if (lock >= 0) close(lock);
  unsetenv("TSVMM_RUNC_HELPER");
  runc_node_env();
  execlp("node", "node", entry, "--warm-server", root, build, (char *)NULL);
  _exit(127);
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "--runc")) {
    if (runc_fast(argc - 3, argv + 3) == 0) return 0;
    if (!runc_verb || strcmp(runc_verb, "create")) runc_node(argv[2], argc - 3, argv + 3);
    if (runc_prefork()) goto helper;
    char build[256];
    if (runc_helper_fd >= 0 && runc_warm_on() && runc_build_id(argv[2], build, sizeof build) == 0) {
      int result = runc_warm_create(build, argc - 3, argv + 3);
      if (result >= 0) return result;
      if (result == WARM_START) runc_warm_start(argv[2], build);
    }
    runc_node(argv[2], argc - 3, argv + 3);
  }
  // The helper forked for Node's create (or the server's): on as the helper, below.
helper:
  if (fcntl(CHANNEL_FD, F_SETFD, FD_CLOEXEC) < 0) {
    fprintf(stderr, "container-init: run by tsvmm only (fd 3 must be its channel)\n");
    return 125;
  }
  // If tsvmm dies, the container must not outlive it unsupervised.
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

  // The plan: an init's, or exec's (one more process in a running container).
  unsigned char header[HELPER_WIRE_HEADER];
  ssize_t peeked;
  do peeked = recv(CHANNEL_FD, header, sizeof header, MSG_PEEK | MSG_WAITALL); while (peeked < 0 && errno == EINTR);
  // The helper forked for tsvmm-runc's create and not used (the bundle was refused, or hooks
  // wanted a helper of Node's own): Node closed the socket, and nobody is left to tell.
  if (peeked == 0 && runc_forked) _exit(125);
  if (peeked != (ssize_t)sizeof header) parent_fail("plan", peeked < 0 ? errno : EPIPE, "reading the plan");
  if (wire_frame_body(header, WIRE_EXEC_PLAN) >= 0) {
    size_t length;
    unsigned char *frame = read_frame(CHANNEL_FD, WIRE_EXEC_PLAN, &length);
    exec_plan xplan = {0};
    if (!frame || read_exec_plan(frame, length, &xplan) < 0) parent_fail("plan", 0, "the exec plan is damaged (tsvmm and container-init do not match?)");
    return exec_main(&xplan);
  }
  size_t length;
  unsigned char *frame = read_frame(CHANNEL_FD, WIRE_INIT_PLAN, &length);
  if (!frame) parent_fail("plan", 0, "the plan is not one this container-init reads (tsvmm and container-init do not match: run `npm install`)");
  // Zeroed, as every decoded frame here: a decoder leaves an absent optional part (the terminal,
  // seccomp, the runtime plan) and everything after a damaged field untouched.
  init_plan plan = {0};
  if (read_init_plan(frame, length, &plan) < 0) parent_fail("plan", 0, "the plan is damaged");
  if (!plan.process.args[0]) parent_fail("plan", 0, "the plan has no command");
  if (getppid() != (pid_t)plan.supervisor) _exit(125);

  // What must be opened on the host's side before the init changes its root.
  int *join_fds = open_joins(&plan.process);
  if (plan.process.has_seccomp) load_libseccomp();
  int fifo_fd = -1, ready[2] = { -1, -1 };
  const char *console_socket = plan.has_runtime ? plan.runtime.console_socket : NULL;
  if (plan.has_runtime && plan.runtime.fifo[0]) {
    // Writable by anyone, as runc's: the init may have become another user by the time it opens it.
    const char *fifo = plan.runtime.fifo;
    if (mkfifo(fifo, 0622) < 0 || chmod(fifo, 0622) < 0) parent_fail("fifo", errno, "mkfifo %s", fifo);
    fifo_fd = open(fifo, O_PATH | O_CLOEXEC);
    if (fifo_fd < 0) parent_fail("fifo", errno, "open %s", fifo);
    if (pipe2(ready, O_CLOEXEC) < 0) parent_fail("pipe", errno, "pipe");
  }
  int go[2], errp[2], tty[2] = { -1, -1 };
  if (pipe2(go, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) parent_fail("pipe", errno, "pipe");
  if (plan.process.has_terminal && console_socket) {
    // The engine's console socket takes the pty's master (runc's --console-socket), not us.
    tty[1] = connect_socket(console_socket);
    if (tty[1] < 0) parent_fail("console", errno, "connect to the console socket %s", console_socket);
  } else if (plan.process.has_terminal && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tty) < 0) {
    parent_fail("pipe", errno, "socketpair for the terminal");
  }
  // A pid namespace is entered for our children only: the init is born in it.
  enter_joins(&plan.process, join_fds, CLONE_NEWPID, 1);
  char *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) parent_fail("clone", errno, "allocating the init's stack");
  child_args ca = { .plan = &plan, .join_fds = join_fds, .go_fd = go[0], .go_write_fd = go[1], .err_fd = errp[1], .err_read_fd = errp[0], .tty_fd = tty[1], .tty_parent_fd = tty[0],
                    .ready_fd = ready[1], .ready_read_fd = ready[0], .fifo_fd = fifo_fd };
  pid_t pid = clone(child_main, stack + STACK_SIZE, (int)plan.clone_flags | SIGCHLD, &ca);
  if (pid < 0) parent_fail("clone", errno, "creating the namespaces");
  child_pid = pid;
  close(go[0]);
  close(errp[1]);
  if (tty[1] >= 0) close(tty[1]);
  if (ready[1] >= 0) close(ready[1]);
  if (fifo_fd >= 0) close(fifo_fd);
  for (size_t i = 0; i < plan.process.n_join_namespaces; i++) close(join_fds[i]);

  char proc_file[64];
  if (plan.has_id_maps) {
    snprintf(proc_file, sizeof proc_file, "/proc/%d/uid_map", pid);
    if (write_file(proc_file, plan.id_maps.uid) < 0) { int err = errno; kill(pid, SIGKILL); parent_fail("user namespace", err, "write %s", proc_file); }
    snprintf(proc_file, sizeof proc_file, "/proc/%d/gid_map", pid);
    if (write_file(proc_file, plan.id_maps.gid) < 0) { int err = errno; kill(pid, SIGKILL); parent_fail("user namespace", err, "write %s", proc_file); }
  }
  if (plan.process.has_oom_score_adj) {
    char value[32];
    snprintf(proc_file, sizeof proc_file, "/proc/%d/oom_score_adj", pid);
    snprintf(value, sizeof value, "%lld", plan.process.oom_score_adj);
    if (write_file(proc_file, value) < 0) { int err = errno; kill(pid, SIGKILL); parent_fail("oom_score_adj", err, "write %s", proc_file); }
  }

  for (char **p = plan.cgroup_procs; *p; p++) {
    int fd = open(*p, O_WRONLY | O_CLOEXEC);
    char num[32];
    int len = snprintf(num, sizeof num, "%d", pid);
    if (fd < 0 || write(fd, num, (size_t)len) != len) {
      int err = errno;
      kill(pid, SIGKILL);
      parent_fail("cgroup", err, "joining %s", *p);
    }
    close(fd);
  }

  char msg[128];
  snprintf(msg, sizeof msg, "{\"pid\":%d}\n", pid);
  channel_write(msg, strlen(msg));
  const char *hook_state = NULL;
  if (plan.wait_for_host) {
    size_t go_length;
    go_command go_frame = {0};
    unsigned char *answer = read_frame(CHANNEL_FD, WIRE_GO_COMMAND, &go_length);
    if (!answer || read_go_command(answer, go_length, &go_frame) < 0) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      _exit(125);
    }
    if (plan.n_create_container_hooks) hook_state = go_frame.state;
  }

  // Signals sent to us are meant for the workload. SIGINT and SIGQUIT are not forwarded: a
  // terminal sends them to the whole foreground group, the container's processes included.
  struct sigaction sa = { .sa_handler = forward_signal };
  sigemptyset(&sa.sa_mask);
  int forwarded[] = { SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 };
  for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) sigaction(forwarded[i], &sa, NULL);
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);

  // Our stdout is a pipe to tsvmm: if it goes away, writing must fail, not kill us.
  signal(SIGPIPE, SIG_IGN);

  if (write(go[1], "1", 1) != 1) parent_fail("start", errno, "releasing the init process");
  if (hook_state && write_all(go[1], hook_state, strlen(hook_state)) < 0) parent_fail("start", errno, "passing the state to the createContainer hooks");
  close(go[1]);
  // End-of-file instead of a pty: the init failed before making one (its error follows).
  int master = tty[0] >= 0 ? recv_fd(tty[0]) : -1;
  if (tty[0] >= 0) close(tty[0]);

  if (ready[0] >= 0) {
    // The runc model: the init has set everything up and waits on exec.fifo for `start`.
    char byte;
    ssize_t r;
    do r = read(ready[0], &byte, 1); while (r < 0 && errno == EINTR);
    close(ready[0]);
    if (r == 1) {
      channel_write("{\"ready\":true}\n", 15);
      if (plan.runtime.detach) _exit(0);
    }
    // End-of-file: it failed, and the error pipe says why.
  }
  await_exec(errp[0], pid);
  channel_write("{\"running\":true}\n", 17);
  if (master >= 0) {
    relay_terminal(master, pid);
  } else {
    // The workload holds the stdio now; our copies would only keep pipes open.
    close(STDIN_FILENO);
    close(STDOUT_FILENO);
  }

  return report_exit(pid);
}

// tsvmm's only native code: thin wrappers over the system calls a VMM needs that Node does not
// offer (ioctl, mmap, eventfd, per-thread signals). No policy lives here: every function does
// one system call and reports failure as a negative errno, which the TypeScript layer turns into
// typed errors that name the operation. Raw addresses cross into JS as BigInts; the TypeScript
// layer owns their lifetime.

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <linux/futex.h>
#include <linux/kvm.h>
#include <stddef.h>

#include <node_api.h>
#include <uv.h>

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) return throw_last_error(env);                                           \
  } while (0)

static napi_value throw_last_error(napi_env env) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    napi_throw_type_error(env, NULL, info && info->error_message ? info->error_message : "N-API call failed");
  }
  return NULL;
}

static napi_value make_int(napi_env env, int64_t v) {
  napi_value out;
  if (napi_create_int64(env, v, &out) != napi_ok) return throw_last_error(env);
  return out;
}

static napi_value make_result(napi_env env, long rc) { return make_int(env, rc < 0 ? -errno : rc); }

static bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  if (argc < want) {
    napi_throw_type_error(env, NULL, "too few arguments");
    return false;
  }
  return true;
}

// Like get_args, for functions whose last arguments are optional: at least `min` of at most `max`.
static bool get_some_args(napi_env env, napi_callback_info info, size_t min, size_t max, napi_value *argv, size_t *argc) {
  *argc = max;
  if (napi_get_cb_info(env, info, argc, argv, NULL, NULL) != napi_ok) return false;
  if (*argc < min) {
    napi_throw_type_error(env, NULL, "too few arguments");
    return false;
  }
  return true;
}

static bool get_i64(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok) return false;
  if (type == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_int64(env, v, out, &lossless) == napi_ok;
  }
  if (type == napi_number) return napi_get_value_int64(env, v, out) == napi_ok;
  napi_throw_type_error(env, NULL, "expected a number or a bigint");
  return false;
}

static bool get_u64(napi_env env, napi_value v, uint64_t *out) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok) return false;
  if (type == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_uint64(env, v, out, &lossless) == napi_ok;
  }
  int64_t i;
  if (!get_i64(env, v, &i)) return false;
  *out = (uint64_t)i;
  return true;
}

// The bytes of a TypedArray, DataView or Buffer, for system calls that take a pointer.
static bool get_bytes(napi_env env, napi_value v, void **data, size_t *len) {
  bool is_typed = false, is_view = false;
  napi_is_typedarray(env, v, &is_typed);
  if (is_typed) {
    napi_typedarray_type type;
    size_t count, offset;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &count, data, &ab, &offset) != napi_ok) return false;
    napi_value bytes_value;
    uint32_t bytes = 0;
    if (napi_get_named_property(env, v, "byteLength", &bytes_value) != napi_ok) return false;
    if (napi_get_value_uint32(env, bytes_value, &bytes) != napi_ok) return false;
    *len = bytes;
    return true;
  }
  napi_is_dataview(env, v, &is_view);
  if (is_view) {
    napi_value ab;
    size_t offset;
    return napi_get_dataview_info(env, v, len, data, &ab, &offset) == napi_ok;
  }
  napi_throw_type_error(env, NULL, "expected a TypedArray or DataView");
  return false;
}

// The three arguments of an ioctl wrapper (fd, request, arg): the first two read, the third left
// to the wrapper, which takes different kinds of it.
static bool get_ioctl_args(napi_env env, napi_callback_info info, napi_value argv[3], int32_t *fd, uint32_t *request) {
  if (!get_args(env, info, 3, argv)) return false;
  if (napi_get_value_int32(env, argv[0], fd) == napi_ok && napi_get_value_uint32(env, argv[1], request) == napi_ok) return true;
  throw_last_error(env);
  return false;
}

// open(path: string, flags: number): fd | -errno
static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  char path[4096];
  size_t len;
  int32_t flags;
  CHECK(napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len));
  CHECK(napi_get_value_int32(env, argv[1], &flags));
  return make_result(env, open(path, flags | O_CLOEXEC));
}

// close(fd): 0 | -errno
static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  return make_result(env, close(fd));
}

// For the addon's own threads: signals are for the threads that run JS.
static void block_signals(void) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
}

static void *close_thread(void *arg) {
  block_signals();
  close((int)(intptr_t)arg);
  return NULL;
}

// A system call without glibc's wrapper, which would write errno, a variable of the thread that
// called clone(): a closer (below) shares this process's memory and its TLS, and must write
// nothing of it but its stack.
static long raw_syscall4(long number, long a, long b, long c, long d) {
  long ret;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return ret;
}

// A closer (closeInBackground) is two processes sharing this one's memory (CLONE_VM: cloning copies
// nothing, and the kernel's teardown finds the VM's address space), with all signals blocked
// (inherited from the caller).
// - The first is cloned with CLONE_VFORK, so the caller waits while it drops every descriptor of
//   its copy of the table but the VM's (close_range): once the caller goes on, nothing of its
//   files (locks, pipe ends, sockets) is held elsewhere. It clones the second and ends; the caller
//   reaps it at once.
// - The second inherits only the VM's descriptor. It is cloned with CLONE_PARENT, so it is this
//   process's child too, with the first's exit signal, none: Node never hears of it, and it is
//   reaped here when its slot is taken again, whatever this system's init does with orphans (if
//   this process ends first, it goes to init like any orphan). It waits until the caller has
//   closed its own copy (a futex word), so that its close is the last one, the one that runs the
//   teardown, then ends; the kernel clears its slot's busy word (CLONE_CHILD_CLEARTID) when it no
//   longer uses its stack.
#define CLOSER_STACK (64 * 1024)
#define CLOSERS 8

static struct {
  char *stack;           // two halves: the first closer's, then the second's
  int fd;                // the descriptor it closes
  volatile pid_t busy;   // nonzero until the second closer no longer runs on its half
  pid_t second;          // the second closer, until reaped
  volatile int released; // the caller has closed its copy (a futex word)
} closers[CLOSERS];
static pthread_mutex_t closers_lock = PTHREAD_MUTEX_INITIALIZER;

static int second_closer(void *arg) {
  long slot = (long)(intptr_t)arg;
  volatile int *released = &closers[slot].released;
  // The caller releases it microseconds after the clone. At most a second: a caller killed in
  // between never will, and its copy is closed then anyway (so this close is still the last).
  struct timespec tick = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
  for (int waits = 0; waits < 10 && __atomic_load_n(released, __ATOMIC_ACQUIRE) == 0; waits++) {
    raw_syscall4(SYS_futex, (long)released, FUTEX_WAIT_PRIVATE, 0, (long)&tick);
  }
  raw_syscall4(SYS_close, closers[slot].fd, 0, 0, 0);
  return 0;
}

static int first_closer(void *arg) {
  long slot = (long)(intptr_t)arg;
  long fd = closers[slot].fd;
  long below = fd > 0 ? raw_syscall4(SYS_close_range, 0, fd - 1, 0, 0) : 0;
  long above = raw_syscall4(SYS_close_range, fd + 1, ~0U, 0, 0);
  // Holding anything but the VM's descriptor, a second closer would keep it open for the whole
  // teardown: none then, and the caller's close is the last one.
  if (below != 0 || above != 0) return 0;
  // glibc's clone() writes errno only when it fails; the caller is suspended until this ends.
  pid_t second = clone(second_closer, closers[slot].stack + CLOSER_STACK, CLONE_VM | CLONE_PARENT | CLONE_CHILD_CLEARTID,
                       (void *)(intptr_t)slot, NULL, NULL, (pid_t *)&closers[slot].busy);
  closers[slot].second = second > 0 ? second : 0;
  return 0;
}

// Whether close_range works here (Linux 5.9; a seccomp filter may refuse it): asked once.
static bool close_range_works(void) {
  static int works = -1;
  if (works < 0) works = syscall(SYS_close_range, INT_MAX, INT_MAX, 0) == 0;
  return works;
}

// Reaps every second closer that has ended; then a free slot (its stack mapped), or -1.
static int closer_slot_locked(void) {
  int slot = -1;
  for (int i = 0; i < CLOSERS; i++) {
    if (__atomic_load_n(&closers[i].busy, __ATOMIC_ACQUIRE) != 0) continue;
    if (closers[i].second > 0) {
      int status;
      // __WCLONE: a child whose exit signal is not SIGCHLD, as no child libuv waits for is.
      if (waitpid(closers[i].second, &status, WNOHANG | __WCLONE) == 0) continue; // not quite ended yet
      closers[i].second = 0;
    }
    if (slot < 0) slot = i;
  }
  if (slot >= 0 && !closers[slot].stack) {
    void *stack = mmap(NULL, 2 * CLOSER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -1;
    closers[slot].stack = stack;
  }
  return slot;
}

// closeInBackground(fd): 0 | -errno. For a descriptor whose last close makes the kernel do long
// work: a VM's, whose teardown takes 1-30 ms here (nested KVM), mostly waiting for RCU grace
// periods. A thread would not do: a process ends only when all its threads have, so its exit
// would wait for the teardown. A closer (above) takes the close over; this process closes its own
// copy and goes on, and may end before the teardown is done. Without a closer (more than CLOSERS
// at once, no close_range, or clone() refused), a detached thread closes it.
static napi_value js_close_in_background(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  pthread_mutex_lock(&closers_lock);
  int slot = close_range_works() ? closer_slot_locked() : -1;
  pid_t second = 0;
  if (slot >= 0) {
    closers[slot].fd = fd;
    closers[slot].released = 0;
    closers[slot].second = 0;
    closers[slot].busy = 1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pid_t first = clone(first_closer, closers[slot].stack + 2 * CLOSER_STACK, CLONE_VM | CLONE_VFORK, (void *)(intptr_t)slot);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (first > 0) {
      int status;
      // It has ended (CLONE_VFORK); a signal may still cut the wait short.
      while (waitpid(first, &status, __WCLONE) < 0 && errno == EINTR) continue;
    }
    second = closers[slot].second;
    if (second <= 0) closers[slot].busy = 0;
  }
  pthread_mutex_unlock(&closers_lock);
  if (second > 0) {
    napi_value result = make_result(env, close(fd));
    // Now the closer's copy is the last one: its close runs the teardown.
    __atomic_store_n(&closers[slot].released, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &closers[slot].released, FUTEX_WAKE_PRIVATE, 1);
    return result;
  }
  pthread_t thread;
  if (pthread_create(&thread, NULL, close_thread, (void *)(intptr_t)fd) != 0) return make_result(env, close(fd));
  pthread_detach(thread);
  return make_int(env, 0);
}

// A system call that mostly waits, run on a thread of its own (ioctlStart, ioctlJoin).
struct background_ioctl {
  pthread_t thread;
  int fd; // a duplicate: the caller may close its own meanwhile, and the number be reused
  unsigned long request;
  long result; // the ioctl's, or -errno
  bool joined;
  unsigned char arg[256];
};

static void *background_ioctl_thread(void *p) {
  struct background_ioctl *job = p;
  block_signals();
  long rc = ioctl(job->fd, job->request, job->arg);
  job->result = rc < 0 ? -errno : rc;
  close(job->fd);
  return NULL;
}

static void background_ioctl_join(struct background_ioctl *job) {
  if (!job->joined) pthread_join(job->thread, NULL);
  job->joined = true;
}

// A handle dropped without a join: the thread still uses the job until it ends.
static void background_ioctl_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  background_ioctl_join(data);
  free(data);
}

// ioctlStart(fd, request, view): a handle for ioctlJoin | -errno. ioctl(fd, request, copy of the
// view's bytes, at most 256) on a thread of its own, for an ioctl that only reads its argument
// and spends its time waiting: KVM_SET_USER_MEMORY_REGION waits for an SRCU grace period (~5 ms
// here, 0.2 ms of it CPU), which the caller can spend building the rest of its VM.
static napi_value js_ioctl_start(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  uint32_t request;
  if (!get_ioctl_args(env, info, argv, &fd, &request)) return NULL;
  void *data;
  size_t len;
  if (!get_bytes(env, argv[2], &data, &len)) return NULL;
  struct background_ioctl *job = calloc(1, sizeof *job);
  if (!job) return make_int(env, -ENOMEM);
  if (len > sizeof job->arg) {
    free(job);
    return make_int(env, -EINVAL);
  }
  memcpy(job->arg, data, len);
  job->request = request;
  job->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (job->fd < 0) {
    free(job);
    return make_int(env, -errno);
  }
  int err = pthread_create(&job->thread, NULL, background_ioctl_thread, job);
  if (err != 0) {
    close(job->fd);
    free(job);
    return make_int(env, -err);
  }
  napi_value handle;
  if (napi_create_external(env, job, background_ioctl_finalize, NULL, &handle) != napi_ok) {
    background_ioctl_join(job);
    free(job);
    return throw_last_error(env);
  }
  return handle;
}

// ioctlJoin(handle): the ioctl's result | -errno, once it is done (-EINVAL for a second join).
static napi_value js_ioctl_join(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  struct background_ioctl *job;
  CHECK(napi_get_value_external(env, argv[0], (void **)&job));
  if (job->joined) return make_int(env, -EINVAL);
  background_ioctl_join(job);
  return make_int(env, job->result);
}

// ioctl(fd, request, arg): result | -errno. arg is an integer (number or bigint) or the bytes of
// a TypedArray/DataView, passed by pointer. (KVM_RUN, once per guest exit, has its own way in:
// bindKvmRun, kvm-run.cc.)
static napi_value js_ioctl(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  uint32_t request;
  if (!get_ioctl_args(env, info, argv, &fd, &request)) return NULL;
  napi_valuetype type;
  CHECK(napi_typeof(env, argv[2], &type));
  unsigned long arg;
  if (type == napi_number || type == napi_bigint) {
    uint64_t v;
    if (!get_u64(env, argv[2], &v)) return NULL;
    arg = (unsigned long)v;
  } else {
    void *data;
    size_t len;
    if (!get_bytes(env, argv[2], &data, &len)) return NULL;
    arg = (unsigned long)data;
  }
  return make_result(env, ioctl(fd, request, arg));
}

// mmap(length, prot, flags, fd, offset, address?): address as bigint | -errno as number.
// `address` is the placement for MAP_FIXED (mapping a file over part of an existing mapping).
static napi_value js_mmap(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[6];
  if (!get_some_args(env, info, 5, 6, argv, &argc)) return NULL;
  uint64_t hint = 0;
  if (argc >= 6 && !get_u64(env, argv[5], &hint)) return NULL;
  uint64_t length;
  int32_t prot, flags, fd;
  int64_t offset;
  if (!get_u64(env, argv[0], &length)) return NULL;
  CHECK(napi_get_value_int32(env, argv[1], &prot));
  CHECK(napi_get_value_int32(env, argv[2], &flags));
  CHECK(napi_get_value_int32(env, argv[3], &fd));
  if (!get_i64(env, argv[4], &offset)) return NULL;
  void *p = mmap((void *)(uintptr_t)hint, length, prot, flags, fd, offset);
  if (p == MAP_FAILED) return make_int(env, -errno);
  napi_value out;
  CHECK(napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)p, &out));
  return out;
}

// munmap(address, length): 0 | -errno
static napi_value js_munmap(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  uint64_t addr, length;
  if (!get_u64(env, argv[0], &addr) || !get_u64(env, argv[1], &length)) return NULL;
  return make_result(env, munmap((void *)(uintptr_t)addr, length));
}

// madvise(address, length, advice): 0 | -errno
static napi_value js_madvise(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  uint64_t addr, length;
  int32_t advice;
  if (!get_u64(env, argv[0], &addr) || !get_u64(env, argv[1], &length)) return NULL;
  CHECK(napi_get_value_int32(env, argv[2], &advice));
  return make_result(env, madvise((void *)(uintptr_t)addr, length, advice));
}

napi_value tsvmm_untracked_array_buffer(void *data, size_t length); // untracked-buffer.cc
napi_value tsvmm_bind_kvm_run(int32_t fd);                             // kvm-run.cc

// bindKvmRun(fd): a function that calls ioctl(fd, KVM_RUN, 0) and returns its result or -errno;
// -EBADF for a negative fd. See kvm-run.cc.
static napi_value js_bind_kvm_run(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  if (fd < 0) return make_int(env, -EBADF);
  return tsvmm_bind_kvm_run(fd);
}

// arrayBuffer(address, length): an ArrayBuffer over memory mapped with mmap(), without a copy.
// Nothing is freed when it is collected: the mapping belongs to whoever called mmap(), and
// several threads may wrap the same mapping. V8 does not count its bytes as its own memory
// (untracked-buffer.cc says why).
static napi_value js_array_buffer(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  uint64_t addr, length;
  if (!get_u64(env, argv[0], &addr) || !get_u64(env, argv[1], &length)) return NULL;
  return tsvmm_untracked_array_buffer((void *)(uintptr_t)addr, length);
}

// addressOf(view): the address of a TypedArray's or DataView's first byte, for structures
// that carry pointers (e.g. the dirty-log bitmap).
static napi_value js_address_of(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  void *data;
  size_t len;
  if (!get_bytes(env, argv[0], &data, &len)) return NULL;
  napi_value out;
  CHECK(napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)data, &out));
  return out;
}

// eventfd(initval, flags): fd | -errno
static napi_value js_eventfd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  uint32_t initval;
  int32_t flags;
  CHECK(napi_get_value_uint32(env, argv[0], &initval));
  CHECK(napi_get_value_int32(env, argv[1], &flags));
  return make_result(env, eventfd(initval, flags | EFD_CLOEXEC));
}

// epollCreate(): epoll fd | -errno
static napi_value js_epoll_create(napi_env env, napi_callback_info info) {
  (void)info;
  return make_result(env, epoll_create1(EPOLL_CLOEXEC));
}

// epollCtl(epfd, op, fd, events, data): 0 | -errno. `data` is a 32-bit tag returned by epollWait.
static napi_value js_epoll_ctl(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int32_t epfd, op, fd;
  uint32_t events, data;
  CHECK(napi_get_value_int32(env, argv[0], &epfd));
  CHECK(napi_get_value_int32(env, argv[1], &op));
  CHECK(napi_get_value_int32(env, argv[2], &fd));
  CHECK(napi_get_value_uint32(env, argv[3], &events));
  CHECK(napi_get_value_uint32(env, argv[4], &data));
  struct epoll_event ev = {.events = events, .data.u64 = data};
  return make_result(env, epoll_ctl(epfd, op, fd, &ev));
}

// epollWait(epfd, out: Uint32Array, timeoutMs): count | -errno. Fills out[2i] = events and
// out[2i+1] = the tag of each ready fd; at most out.length / 2 of them. Blocks the calling thread.
static napi_value js_epoll_wait(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int32_t epfd, timeout;
  void *data;
  size_t len;
  CHECK(napi_get_value_int32(env, argv[0], &epfd));
  if (!get_bytes(env, argv[1], &data, &len)) return NULL;
  CHECK(napi_get_value_int32(env, argv[2], &timeout));
  struct epoll_event events[64];
  int max = (int)(len / 8);
  if (max > 64) max = 64;
  if (max < 1) {
    napi_throw_range_error(env, NULL, "epollWait needs room for at least one event");
    return NULL;
  }
  int n = epoll_wait(epfd, events, max, timeout);
  if (n < 0) return make_int(env, -errno);
  uint32_t *out = data;
  for (int i = 0; i < n; i++) {
    out[2 * i] = events[i].events;
    out[2 * i + 1] = (uint32_t)events[i].data.u64;
  }
  return make_int(env, n);
}

// threadSelf(): the calling thread's pthread_t, so another thread can signal it.
static napi_value js_thread_self(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  CHECK(napi_create_bigint_uint64(env, (uint64_t)pthread_self(), &out));
  return out;
}

// threadKill(thread, signal): 0 | -errno
static napi_value js_thread_kill(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  uint64_t thread;
  int32_t sig;
  if (!get_u64(env, argv[0], &thread)) return NULL;
  CHECK(napi_get_value_int32(env, argv[1], &sig));
  int rc = pthread_kill((pthread_t)thread, sig);
  return make_int(env, -rc);
}

// ofdLock(fd, test, type, start, length): an open-file-description lock on a byte range
// (fcntl F_OFD_SETLK, or F_OFD_GETLK when test is true). Set: 0 | -errno (EAGAIN: held by
// another). Test: the type of a lock that would conflict with `type`, F_UNLCK if none, | -errno.
static napi_value js_ofd_lock(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int32_t fd, type;
  bool test;
  int64_t start, length;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_bool(env, argv[1], &test));
  CHECK(napi_get_value_int32(env, argv[2], &type));
  if (!get_i64(env, argv[3], &start) || !get_i64(env, argv[4], &length)) return NULL;
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = (short)type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = length;
  if (fcntl(fd, test ? F_OFD_GETLK : F_OFD_SETLK, &fl) < 0) return make_int(env, -errno);
  return make_int(env, test ? fl.l_type : 0);
}

// recvFds(fd, buffer, fds): recvmsg(MSG_DONTWAIT | MSG_CMSG_CLOEXEC) into `buffer`, the fds
// that came with it (SCM_RIGHTS) into `fds` (the rest of it -1): bytes read | -errno. More fds
// than `fds` holds: those are closed, and -EMSGSIZE.
static napi_value js_recv_fds(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int32_t fd;
  void *data, *fds_data;
  size_t len, fds_len;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  if (!get_bytes(env, argv[1], &data, &len) || !get_bytes(env, argv[2], &fds_data, &fds_len)) return NULL;
  int *fds = fds_data;
  size_t max = fds_len / sizeof(int);
  for (size_t i = 0; i < max; i++) fds[i] = -1;
  char control[CMSG_SPACE(sizeof(int) * 64)];
  struct iovec iov = { .iov_base = data, .iov_len = len };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
  ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return make_int(env, -errno);
  int overflow = (msg.msg_flags & MSG_CTRUNC) != 0;
  size_t got = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int *in = (int *)CMSG_DATA(c);
    for (size_t i = 0; i < count; i++) {
      if (got < max) fds[got++] = in[i];
      else { close(in[i]); overflow = 1; }
    }
  }
  if (overflow) {
    for (size_t i = 0; i < got; i++) { close(fds[i]); fds[i] = -1; }
    return make_int(env, -EMSGSIZE);
  }
  return make_int(env, n);
}

// peerCredentials(fd, out: Int32Array(3)): getsockopt(SO_PEERCRED): out = [pid, uid, gid]; 0 | -errno.
static napi_value js_peer_credentials(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t fd;
  void *data;
  size_t len;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  if (!get_bytes(env, argv[1], &data, &len)) return NULL;
  if (len < 3 * sizeof(int32_t)) {
    napi_throw_range_error(env, NULL, "peerCredentials needs room for 3 numbers");
    return NULL;
  }
  struct ucred cred;
  socklen_t size = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &size) < 0) return make_int(env, -errno);
  int32_t *out = data;
  out[0] = cred.pid;
  out[1] = (int32_t)cred.uid;
  out[2] = (int32_t)cred.gid;
  return make_int(env, 0);
}

static void empty_handler(int sig) { (void)sig; }

// installEmptySignalHandler(signal): 0 | -errno. A handler that does nothing, installed without
// SA_RESTART, makes a blocking system call in the signalled thread return EINTR: that is how a
// vCPU thread is kicked out of KVM_RUN.
static napi_value js_install_empty_signal_handler(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int32_t sig;
  CHECK(napi_get_value_int32(env, argv[0], &sig));
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = empty_handler;
  sigemptyset(&sa.sa_mask);
  return make_result(env, sigaction(sig, &sa, NULL));
}


// The event-loop watch: for a vCPU whose KVM_RUN loop runs on the main thread, in slices between
// turns of the event loop (src/vmm/main-thread-vcpu.ts). While a slice runs, a helper thread (plain
// C, no JS) waits for what would make the event loop's next turn do something: an fd in libuv's
// epoll set ready (I/O, a worker's message, a signal, a thread-pool completion), the earliest timer
// due, or console output written by the slice and not yet flushed. Then it kicks the vCPU as
// src/vmm/kick.ts does (immediate_exit, then the kick signal), so that the slice ends and the loop
// turns. One watch per process, for the main thread's loop.

static struct {
  pthread_mutex_t lock;
  pthread_cond_t armed_cond;
  bool started;
  bool armed;
  bool in_wait; //         the helper is in epoll_wait (and must be woken to see a new arming)
  uint64_t generation; //  bumped at every arming and disarming
  uv_loop_t *loop;
  int epfd; //             libuv's epoll fd and `wake`
  int wake; //             an eventfd: "look at the arming again"
  pthread_t target;
  struct kvm_run *run;
  const int32_t *ring; //  a ByteRing's header (head, tail), or NULL
  int timeout_ms; //       until the earliest timer, -1 for none
  int signal;
} watch = {.lock = PTHREAD_MUTEX_INITIALIZER, .armed_cond = PTHREAD_COND_INITIALIZER, .epfd = -1, .wake = -1};

/** How often the helper looks at the console ring: output waits at most this long for a newline. */
#define WATCH_RING_POLL_MS 10

static void *watch_thread(void *arg) {
  (void)arg;
  block_signals();
  pthread_mutex_lock(&watch.lock);
  for (;;) {
    while (!watch.armed) pthread_cond_wait(&watch.armed_cond, &watch.lock);
    uint64_t generation = watch.generation;
    int left = watch.timeout_ms;
    const int32_t *ring = watch.ring;
    bool kick = false;
    while (!kick) {
      int wait = left;
      if (ring && (wait < 0 || wait > WATCH_RING_POLL_MS)) wait = WATCH_RING_POLL_MS;
      watch.in_wait = true;
      pthread_mutex_unlock(&watch.lock);
      struct epoll_event events[2];
      int n = epoll_wait(watch.epfd, events, 2, wait);
      bool loop_ready = false;
      for (int i = 0; i < n; i++) {
        if (events[i].data.fd == watch.wake) {
          uint64_t count;
          ssize_t r = read(watch.wake, &count, sizeof count);
          (void)r;
        } else {
          loop_ready = true;
        }
      }
      pthread_mutex_lock(&watch.lock);
      watch.in_wait = false;
      if (!watch.armed || watch.generation != generation) break; // disarmed or armed anew
      if (n < 0) continue; //                                       EINTR
      if (left >= 0) left = left > wait ? left - wait : 0; //       approximate: wakes are rare
      bool output = ring && __atomic_load_n(&ring[0], __ATOMIC_ACQUIRE) != __atomic_load_n(&ring[1], __ATOMIC_ACQUIRE);
      kick = loop_ready || left == 0 || output;
    }
    if (kick) {
      watch.armed = false;
      __atomic_store_n(&watch.run->immediate_exit, 1, __ATOMIC_SEQ_CST);
      pthread_kill(watch.target, watch.signal);
    }
  }
  return NULL;
}

// What uv_backend_timeout() would say if the setImmediate that runs the slice were not pending
// (it is, while the slice runs, and makes that say 0): 0 if handles are closing, callbacks
// deferred or fds waiting to be added to the epoll set (libuv adds them at its next poll: until
// then their readiness would go unseen), else the time until the earliest timer, -1 if there is
// none. libuv 1.x keeps its timers in a heap whose root is the earliest.
static int loop_timeout(uv_loop_t *loop) {
  if (loop->closing_handles != NULL || loop->pending_queue.next != &loop->pending_queue ||
      loop->watcher_queue.next != &loop->watcher_queue) {
    return 0;
  }
  if (loop->timer_heap.min == NULL) return -1;
  const uv_timer_t *first = (const uv_timer_t *)((const char *)loop->timer_heap.min - offsetof(uv_timer_t, heap_node));
  uv_update_time(loop);
  uint64_t due = uv_timer_get_due_in(first);
  return due > INT_MAX ? INT_MAX : (int)due;
}

// A watch that could not start closes what it opened: the next arming tries again from nothing.
static int watch_start_failed(int err) {
  if (watch.epfd >= 0) close(watch.epfd);
  if (watch.wake >= 0) close(watch.wake);
  watch.epfd = watch.wake = -1;
  return -err;
}

static int watch_start(uv_loop_t *loop) {
  watch.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (watch.epfd < 0) return watch_start_failed(errno);
  watch.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (watch.wake < 0) return watch_start_failed(errno);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = uv_backend_fd(loop)};
  if (epoll_ctl(watch.epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) return watch_start_failed(errno);
  ev.data.fd = watch.wake;
  if (epoll_ctl(watch.epfd, EPOLL_CTL_ADD, watch.wake, &ev) < 0) return watch_start_failed(errno);
  pthread_t thread;
  int rc = pthread_create(&thread, NULL, watch_thread, NULL);
  if (rc != 0) return watch_start_failed(rc);
  pthread_detach(thread);
  watch.loop = loop;
  watch.started = true;
  return 0;
}

static void watch_wake_locked(void) {
  if (!watch.in_wait) return;
  uint64_t one = 1;
  ssize_t r = write(watch.wake, &one, sizeof one);
  (void)r;
}

// loopWatchArm(kvmRunAddress, signal, ring?): 0 | -errno. Arms the watch for the calling thread
// (which must run the event loop the watch was first armed on) before it enters a slice of
// KVM_RUNs; `ring` is the Int32Array head/tail of a console ring to flush when not empty.
static napi_value js_loop_watch_arm(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[3];
  if (!get_some_args(env, info, 2, 3, argv, &argc)) return NULL;
  uint64_t run;
  int32_t sig;
  if (!get_u64(env, argv[0], &run)) return NULL;
  CHECK(napi_get_value_int32(env, argv[1], &sig));
  void *ring = NULL;
  size_t ring_len = 0;
  if (argc >= 3) {
    napi_valuetype type;
    CHECK(napi_typeof(env, argv[2], &type));
    if (type != napi_undefined && !get_bytes(env, argv[2], &ring, &ring_len)) return NULL;
    if (ring && ring_len < 8) {
      napi_throw_range_error(env, NULL, "the ring header needs head and tail");
      return NULL;
    }
  }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  pthread_mutex_lock(&watch.lock);
  int rc = 0;
  if (!watch.started) rc = watch_start(loop);
  else if (watch.loop != loop) rc = -EBUSY;
  if (rc == 0) {
    watch.target = pthread_self();
    watch.run = (struct kvm_run *)(uintptr_t)run;
    watch.ring = ring;
    watch.signal = sig;
    watch.timeout_ms = loop_timeout(loop);
    watch.armed = true;
    watch.generation++;
    watch_wake_locked();
    pthread_cond_signal(&watch.armed_cond);
  }
  pthread_mutex_unlock(&watch.lock);
  return make_int(env, rc);
}

// loopWatchKicked(): whether the watch has kicked since it was armed (the event loop has work),
// as opposed to a KVM_RUN interrupted by another signal or by a kick of the thread's own.
static napi_value js_loop_watch_kicked(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_mutex_lock(&watch.lock);
  bool kicked = watch.started && !watch.armed;
  pthread_mutex_unlock(&watch.lock);
  napi_value out;
  CHECK(napi_get_boolean(env, kicked, &out));
  return out;
}

// loopWatchDisarm(): after a slice; a kick not yet sent will not be.
static napi_value js_loop_watch_disarm(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_mutex_lock(&watch.lock);
  if (watch.armed) {
    watch.armed = false;
    watch.generation++;
    watch_wake_locked();
  }
  pthread_mutex_unlock(&watch.lock);
  return make_int(env, 0);
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback fn;
  } functions[] = {
      {"open", js_open},
      {"close", js_close},
      {"closeInBackground", js_close_in_background},
      {"ioctl", js_ioctl},
      {"bindKvmRun", js_bind_kvm_run},
      {"ioctlStart", js_ioctl_start},
      {"ioctlJoin", js_ioctl_join},
      {"mmap", js_mmap},
      {"munmap", js_munmap},
      {"madvise", js_madvise},
      {"arrayBuffer", js_array_buffer},
      {"addressOf", js_address_of},
      {"eventfd", js_eventfd},
      {"epollCreate", js_epoll_create},
      {"epollCtl", js_epoll_ctl},
      {"epollWait", js_epoll_wait},
      {"threadSelf", js_thread_self},
      {"threadKill", js_thread_kill},
      {"installEmptySignalHandler", js_install_empty_signal_handler},
      {"ofdLock", js_ofd_lock},
      {"recvFds", js_recv_fds},
      {"peerCredentials", js_peer_credentials},
      {"loopWatchArm", js_loop_watch_arm},
      {"loopWatchKicked", js_loop_watch_kicked},
      {"loopWatchDisarm", js_loop_watch_disarm},
  };
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].fn, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, functions[i].name, fn) != napi_ok) {
      return NULL;
    }
  }
  return exports;
}

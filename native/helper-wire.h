// Generated from src/container/plan-layout.ts by scripts/helper-wire.mjs (npm run build): do not edit.
// The structs and decoders of what TypeScript hands to container-init (src/container/wire.ts).

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HELPER_WIRE_HASH 0xb6f77447u
#define HELPER_WIRE_HEADER 16

enum helper_wire_kind {
  WIRE_INIT_PLAN = 0,
  WIRE_EXEC_PLAN = 1,
  WIRE_GO_COMMAND = 2,
  WIRE_RESIZE_COMMAND = 3,
  WIRE_RUNTIME_STATE = 4,
};

typedef struct {
  char *source;
  char *target;
  char *type;
  long long flags;
  char *data;
  long long remount_flags;
  int is_file;
  long long *propagation;
  size_t n_propagation;
} mount_step;

typedef struct {
  char *path;
  long long mode;
  long long major;
  long long minor;
  long long uid;
  long long gid;
} device_node;

typedef struct {
  char *target;
  char *path;
} symlink_step;

typedef struct {
  char *uid;
  char *gid;
} id_maps;

typedef struct {
  char *path;
  char *value;
} sysctl_step;

typedef struct {
  char *fifo;
  char *console_socket; // NULL: absent
  int detach;
} runtime_plan;

typedef struct {
  char *path;
  char * *args;
  size_t n_args;
  char * *env;
  size_t n_env;
  long long timeout_seconds;
} hook_step;

typedef struct {
  long long resource;
  long long soft;
  long long hard;
} rlimit_step;

typedef struct {
  long long uid;
  long long gid;
  long long *additional_gids;
  size_t n_additional_gids;
} user_ids;

typedef struct {
  long long bounding;
  long long effective;
  long long permitted;
  long long inheritable;
  long long ambient;
} capability_sets;

typedef struct {
  long long rows;
  long long cols;
} terminal_size;

typedef struct {
  long long flag;
  char *path;
} ns_join;

typedef struct {
  long long index;
  long long op;
  long long value;
  long long value_two;
} seccomp_arg;

typedef struct {
  char * *names;
  size_t n_names;
  long long action;
  seccomp_arg *args;
  size_t n_args;
} seccomp_rule;

typedef struct {
  long long default_action;
  long long *architectures;
  size_t n_architectures;
  seccomp_rule *rules;
  size_t n_rules;
} seccomp_plan;

typedef struct {
  rlimit_step *rlimits;
  size_t n_rlimits;
  char *cwd;
  long long umask;
  int no_new_privileges;
  user_ids user;
  capability_sets capabilities;
  char * *args;
  size_t n_args;
  char * *env;
  size_t n_env;
  int has_terminal;
  terminal_size terminal;
  ns_join *join_namespaces;
  size_t n_join_namespaces;
  int has_oom_score_adj;
  long long oom_score_adj;
  int has_seccomp;
  seccomp_plan seccomp;
  long long preserve_fds;
} process_plan;

typedef struct {
  long long supervisor;
  long long clone_flags;
  long long unshare_flags;
  char * *cgroup_procs;
  size_t n_cgroup_procs;
  int wait_for_host;
  long long root_propagation;
  char *rootfs;
  mount_step *prepare;
  size_t n_prepare;
  mount_step *mounts;
  size_t n_mounts;
  device_node *devices;
  size_t n_devices;
  symlink_step *symlinks;
  size_t n_symlinks;
  int loopback_up;
  int set_home;
  char * *readonly_after;
  size_t n_readonly_after;
  long long root_remount_flags;
  char *hostname; // NULL: absent
  char *domainname; // NULL: absent
  char * *readonly_paths;
  size_t n_readonly_paths;
  char * *masked_paths;
  size_t n_masked_paths;
  int has_id_maps;
  id_maps id_maps;
  sysctl_step *sysctl;
  size_t n_sysctl;
  int has_runtime;
  runtime_plan runtime;
  hook_step *create_container_hooks;
  size_t n_create_container_hooks;
  process_plan process;
} init_plan;

typedef struct {
  char * *cgroup_procs;
  size_t n_cgroup_procs;
  char *console_socket; // NULL: absent
  int detach;
  process_plan process;
} exec_plan;

typedef struct {
  char *state;
} go_command;

typedef struct {
  long long rows;
  long long cols;
} resize_command;

typedef struct {
  int start_container;
  int poststart;
  int poststop;
} hooks_due;

typedef struct {
  char *created;
  char *running;
  char *paused;
  char *stopped;
} oci_states;

typedef struct {
  long long pid;
  char *start_time;
  char * *cgroup_dirs;
  size_t n_cgroup_dirs;
  hooks_due hooks;
  oci_states oci;
  char *record;
} runtime_state;

// Decoding: a reader over one frame's body; any overrun clears ok, and every value read after
// it is zero or NULL. Memory is never freed: the helper reads a few frames and then execs or ends.
typedef struct {
  const unsigned char *p, *end;
  int ok;
} wire_reader;

static int wire_take(wire_reader *r, size_t n) {
  if (!r->ok || (size_t)(r->end - r->p) < n) {
    r->ok = 0;
    return 0;
  }
  return 1;
}

static void *wire_alloc(wire_reader *r, size_t n) {
  void *m = calloc(n ? n : 1, 1);
  if (!m) r->ok = 0;
  return m;
}

static uint32_t wire_u32(wire_reader *r) {
  if (!wire_take(r, 4)) return 0;
  uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
  r->p += 4;
  return v;
}

static long long wire_int(wire_reader *r) {
  if (!wire_take(r, 8)) return 0;
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | r->p[i];
  r->p += 8;
  return (long long)v;
}

static int wire_bool(wire_reader *r) {
  if (!wire_take(r, 1)) return 0;
  return *r->p++ != 0;
}

static char *wire_str(wire_reader *r) {
  uint32_t n = wire_u32(r);
  if (!wire_take(r, n)) return NULL;
  char *s = wire_alloc(r, (size_t)n + 1);
  if (!s) return NULL;
  memcpy(s, r->p, n);
  r->p += n;
  return s;
}

// A list's length; each item takes at least a byte, so a count past the frame's end is damage.
static size_t wire_count(wire_reader *r) {
  uint32_t n = wire_u32(r);
  if (n > (size_t)(r->end - r->p)) {
    r->ok = 0;
    return 0;
  }
  return n;
}

// The body length of a frame whose 16-byte header is `h`, or -1 if it is not a frame of
// this build (magic, layout hash) or not of `kind`.
static long wire_frame_body(const unsigned char *h, uint32_t kind) {
  wire_reader r = { h, h + 16, 1 };
  if (memcmp(h, "TSVW", 4) != 0) return -1;
  r.p += 4;
  if (wire_u32(&r) != HELPER_WIRE_HASH || wire_u32(&r) != kind) return -1;
  return (long)wire_u32(&r);
}

static void decode_mount_step(wire_reader *r, mount_step *out) {
  out->source = wire_str(r);
  out->target = wire_str(r);
  out->type = wire_str(r);
  out->flags = wire_int(r);
  out->data = wire_str(r);
  out->remount_flags = wire_int(r);
  out->is_file = wire_bool(r);
  out->n_propagation = wire_count(r);
  out->propagation = wire_alloc(r, (out->n_propagation) * sizeof *out->propagation);
  for (size_t i = 0; r->ok && i < out->n_propagation; i++) {
    out->propagation[i] = wire_int(r);
  }
}

static void decode_device_node(wire_reader *r, device_node *out) {
  out->path = wire_str(r);
  out->mode = wire_int(r);
  out->major = wire_int(r);
  out->minor = wire_int(r);
  out->uid = wire_int(r);
  out->gid = wire_int(r);
}

static void decode_symlink_step(wire_reader *r, symlink_step *out) {
  out->target = wire_str(r);
  out->path = wire_str(r);
}

static void decode_id_maps(wire_reader *r, id_maps *out) {
  out->uid = wire_str(r);
  out->gid = wire_str(r);
}

static void decode_sysctl_step(wire_reader *r, sysctl_step *out) {
  out->path = wire_str(r);
  out->value = wire_str(r);
}

static void decode_runtime_plan(wire_reader *r, runtime_plan *out) {
  out->fifo = wire_str(r);
  out->console_socket = wire_bool(r) ? wire_str(r) : NULL;
  out->detach = wire_bool(r);
}

static void decode_hook_step(wire_reader *r, hook_step *out) {
  out->path = wire_str(r);
  out->n_args = wire_count(r);
  out->args = wire_alloc(r, (out->n_args + 1) * sizeof *out->args);
  for (size_t i = 0; r->ok && i < out->n_args; i++) {
    out->args[i] = wire_str(r);
  }
  out->n_env = wire_count(r);
  out->env = wire_alloc(r, (out->n_env + 1) * sizeof *out->env);
  for (size_t i = 0; r->ok && i < out->n_env; i++) {
    out->env[i] = wire_str(r);
  }
  out->timeout_seconds = wire_int(r);
}

static void decode_rlimit_step(wire_reader *r, rlimit_step *out) {
  out->resource = wire_int(r);
  out->soft = wire_int(r);
  out->hard = wire_int(r);
}

static void decode_user_ids(wire_reader *r, user_ids *out) {
  out->uid = wire_int(r);
  out->gid = wire_int(r);
  out->n_additional_gids = wire_count(r);
  out->additional_gids = wire_alloc(r, (out->n_additional_gids) * sizeof *out->additional_gids);
  for (size_t i = 0; r->ok && i < out->n_additional_gids; i++) {
    out->additional_gids[i] = wire_int(r);
  }
}

static void decode_capability_sets(wire_reader *r, capability_sets *out) {
  out->bounding = wire_int(r);
  out->effective = wire_int(r);
  out->permitted = wire_int(r);
  out->inheritable = wire_int(r);
  out->ambient = wire_int(r);
}

static void decode_terminal_size(wire_reader *r, terminal_size *out) {
  out->rows = wire_int(r);
  out->cols = wire_int(r);
}

static void decode_ns_join(wire_reader *r, ns_join *out) {
  out->flag = wire_int(r);
  out->path = wire_str(r);
}

static void decode_seccomp_arg(wire_reader *r, seccomp_arg *out) {
  out->index = wire_int(r);
  out->op = wire_int(r);
  out->value = wire_int(r);
  out->value_two = wire_int(r);
}

static void decode_seccomp_rule(wire_reader *r, seccomp_rule *out) {
  out->n_names = wire_count(r);
  out->names = wire_alloc(r, (out->n_names + 1) * sizeof *out->names);
  for (size_t i = 0; r->ok && i < out->n_names; i++) {
    out->names[i] = wire_str(r);
  }
  out->action = wire_int(r);
  out->n_args = wire_count(r);
  out->args = wire_alloc(r, (out->n_args) * sizeof *out->args);
  for (size_t i = 0; r->ok && i < out->n_args; i++) {
    decode_seccomp_arg(r, &out->args[i]);
  }
}

static void decode_seccomp_plan(wire_reader *r, seccomp_plan *out) {
  out->default_action = wire_int(r);
  out->n_architectures = wire_count(r);
  out->architectures = wire_alloc(r, (out->n_architectures) * sizeof *out->architectures);
  for (size_t i = 0; r->ok && i < out->n_architectures; i++) {
    out->architectures[i] = wire_int(r);
  }
  out->n_rules = wire_count(r);
  out->rules = wire_alloc(r, (out->n_rules) * sizeof *out->rules);
  for (size_t i = 0; r->ok && i < out->n_rules; i++) {
    decode_seccomp_rule(r, &out->rules[i]);
  }
}

static void decode_process_plan(wire_reader *r, process_plan *out) {
  out->n_rlimits = wire_count(r);
  out->rlimits = wire_alloc(r, (out->n_rlimits) * sizeof *out->rlimits);
  for (size_t i = 0; r->ok && i < out->n_rlimits; i++) {
    decode_rlimit_step(r, &out->rlimits[i]);
  }
  out->cwd = wire_str(r);
  out->umask = wire_int(r);
  out->no_new_privileges = wire_bool(r);
  decode_user_ids(r, &out->user);
  decode_capability_sets(r, &out->capabilities);
  out->n_args = wire_count(r);
  out->args = wire_alloc(r, (out->n_args + 1) * sizeof *out->args);
  for (size_t i = 0; r->ok && i < out->n_args; i++) {
    out->args[i] = wire_str(r);
  }
  out->n_env = wire_count(r);
  out->env = wire_alloc(r, (out->n_env + 1) * sizeof *out->env);
  for (size_t i = 0; r->ok && i < out->n_env; i++) {
    out->env[i] = wire_str(r);
  }
  out->has_terminal = wire_bool(r);
  if (out->has_terminal) {
    decode_terminal_size(r, &out->terminal);
  }
  out->n_join_namespaces = wire_count(r);
  out->join_namespaces = wire_alloc(r, (out->n_join_namespaces) * sizeof *out->join_namespaces);
  for (size_t i = 0; r->ok && i < out->n_join_namespaces; i++) {
    decode_ns_join(r, &out->join_namespaces[i]);
  }
  out->has_oom_score_adj = wire_bool(r);
  if (out->has_oom_score_adj) {
    out->oom_score_adj = wire_int(r);
  }
  out->has_seccomp = wire_bool(r);
  if (out->has_seccomp) {
    decode_seccomp_plan(r, &out->seccomp);
  }
  out->preserve_fds = wire_int(r);
}

static void decode_init_plan(wire_reader *r, init_plan *out) {
  out->supervisor = wire_int(r);
  out->clone_flags = wire_int(r);
  out->unshare_flags = wire_int(r);
  out->n_cgroup_procs = wire_count(r);
  out->cgroup_procs = wire_alloc(r, (out->n_cgroup_procs + 1) * sizeof *out->cgroup_procs);
  for (size_t i = 0; r->ok && i < out->n_cgroup_procs; i++) {
    out->cgroup_procs[i] = wire_str(r);
  }
  out->wait_for_host = wire_bool(r);
  out->root_propagation = wire_int(r);
  out->rootfs = wire_str(r);
  out->n_prepare = wire_count(r);
  out->prepare = wire_alloc(r, (out->n_prepare) * sizeof *out->prepare);
  for (size_t i = 0; r->ok && i < out->n_prepare; i++) {
    decode_mount_step(r, &out->prepare[i]);
  }
  out->n_mounts = wire_count(r);
  out->mounts = wire_alloc(r, (out->n_mounts) * sizeof *out->mounts);
  for (size_t i = 0; r->ok && i < out->n_mounts; i++) {
    decode_mount_step(r, &out->mounts[i]);
  }
  out->n_devices = wire_count(r);
  out->devices = wire_alloc(r, (out->n_devices) * sizeof *out->devices);
  for (size_t i = 0; r->ok && i < out->n_devices; i++) {
    decode_device_node(r, &out->devices[i]);
  }
  out->n_symlinks = wire_count(r);
  out->symlinks = wire_alloc(r, (out->n_symlinks) * sizeof *out->symlinks);
  for (size_t i = 0; r->ok && i < out->n_symlinks; i++) {
    decode_symlink_step(r, &out->symlinks[i]);
  }
  out->loopback_up = wire_bool(r);
  out->set_home = wire_bool(r);
  out->n_readonly_after = wire_count(r);
  out->readonly_after = wire_alloc(r, (out->n_readonly_after + 1) * sizeof *out->readonly_after);
  for (size_t i = 0; r->ok && i < out->n_readonly_after; i++) {
    out->readonly_after[i] = wire_str(r);
  }
  out->root_remount_flags = wire_int(r);
  out->hostname = wire_bool(r) ? wire_str(r) : NULL;
  out->domainname = wire_bool(r) ? wire_str(r) : NULL;
  out->n_readonly_paths = wire_count(r);
  out->readonly_paths = wire_alloc(r, (out->n_readonly_paths + 1) * sizeof *out->readonly_paths);
  for (size_t i = 0; r->ok && i < out->n_readonly_paths; i++) {
    out->readonly_paths[i] = wire_str(r);
  }
  out->n_masked_paths = wire_count(r);
  out->masked_paths = wire_alloc(r, (out->n_masked_paths + 1) * sizeof *out->masked_paths);
  for (size_t i = 0; r->ok && i < out->n_masked_paths; i++) {
    out->masked_paths[i] = wire_str(r);
  }
  out->has_id_maps = wire_bool(r);
  if (out->has_id_maps) {
    decode_id_maps(r, &out->id_maps);
  }
  out->n_sysctl = wire_count(r);
  out->sysctl = wire_alloc(r, (out->n_sysctl) * sizeof *out->sysctl);
  for (size_t i = 0; r->ok && i < out->n_sysctl; i++) {
    decode_sysctl_step(r, &out->sysctl[i]);
  }
  out->has_runtime = wire_bool(r);
  if (out->has_runtime) {
    decode_runtime_plan(r, &out->runtime);
  }
  out->n_create_container_hooks = wire_count(r);
  out->create_container_hooks = wire_alloc(r, (out->n_create_container_hooks) * sizeof *out->create_container_hooks);
  for (size_t i = 0; r->ok && i < out->n_create_container_hooks; i++) {
    decode_hook_step(r, &out->create_container_hooks[i]);
  }
  decode_process_plan(r, &out->process);
}

static void decode_exec_plan(wire_reader *r, exec_plan *out) {
  out->n_cgroup_procs = wire_count(r);
  out->cgroup_procs = wire_alloc(r, (out->n_cgroup_procs + 1) * sizeof *out->cgroup_procs);
  for (size_t i = 0; r->ok && i < out->n_cgroup_procs; i++) {
    out->cgroup_procs[i] = wire_str(r);
  }
  out->console_socket = wire_bool(r) ? wire_str(r) : NULL;
  out->detach = wire_bool(r);
  decode_process_plan(r, &out->process);
}

static void decode_go_command(wire_reader *r, go_command *out) {
  out->state = wire_str(r);
}

static void decode_resize_command(wire_reader *r, resize_command *out) {
  out->rows = wire_int(r);
  out->cols = wire_int(r);
}

static void decode_hooks_due(wire_reader *r, hooks_due *out) {
  out->start_container = wire_bool(r);
  out->poststart = wire_bool(r);
  out->poststop = wire_bool(r);
}

static void decode_oci_states(wire_reader *r, oci_states *out) {
  out->created = wire_str(r);
  out->running = wire_str(r);
  out->paused = wire_str(r);
  out->stopped = wire_str(r);
}

static void decode_runtime_state(wire_reader *r, runtime_state *out) {
  out->pid = wire_int(r);
  out->start_time = wire_str(r);
  out->n_cgroup_dirs = wire_count(r);
  out->cgroup_dirs = wire_alloc(r, (out->n_cgroup_dirs + 1) * sizeof *out->cgroup_dirs);
  for (size_t i = 0; r->ok && i < out->n_cgroup_dirs; i++) {
    out->cgroup_dirs[i] = wire_str(r);
  }
  decode_hooks_due(r, &out->hooks);
  decode_oci_states(r, &out->oci);
  out->record = wire_str(r);
}

// A whole init_plan frame (header and body); 0, or -1 if it is not one or is damaged.
static __attribute__((unused)) int read_init_plan(const unsigned char *frame, size_t length, init_plan *out) {
  if (length < HELPER_WIRE_HEADER || wire_frame_body(frame, WIRE_INIT_PLAN) != (long)(length - HELPER_WIRE_HEADER)) return -1;
  wire_reader r = { frame + HELPER_WIRE_HEADER, frame + length, 1 };
  decode_init_plan(&r, out);
  return r.ok && r.p == r.end ? 0 : -1;
}

// A whole exec_plan frame (header and body); 0, or -1 if it is not one or is damaged.
static __attribute__((unused)) int read_exec_plan(const unsigned char *frame, size_t length, exec_plan *out) {
  if (length < HELPER_WIRE_HEADER || wire_frame_body(frame, WIRE_EXEC_PLAN) != (long)(length - HELPER_WIRE_HEADER)) return -1;
  wire_reader r = { frame + HELPER_WIRE_HEADER, frame + length, 1 };
  decode_exec_plan(&r, out);
  return r.ok && r.p == r.end ? 0 : -1;
}

// A whole go_command frame (header and body); 0, or -1 if it is not one or is damaged.
static __attribute__((unused)) int read_go_command(const unsigned char *frame, size_t length, go_command *out) {
  if (length < HELPER_WIRE_HEADER || wire_frame_body(frame, WIRE_GO_COMMAND) != (long)(length - HELPER_WIRE_HEADER)) return -1;
  wire_reader r = { frame + HELPER_WIRE_HEADER, frame + length, 1 };
  decode_go_command(&r, out);
  return r.ok && r.p == r.end ? 0 : -1;
}

// A whole resize_command frame (header and body); 0, or -1 if it is not one or is damaged.
static __attribute__((unused)) int read_resize_command(const unsigned char *frame, size_t length, resize_command *out) {
  if (length < HELPER_WIRE_HEADER || wire_frame_body(frame, WIRE_RESIZE_COMMAND) != (long)(length - HELPER_WIRE_HEADER)) return -1;
  wire_reader r = { frame + HELPER_WIRE_HEADER, frame + length, 1 };
  decode_resize_command(&r, out);
  return r.ok && r.p == r.end ? 0 : -1;
}

// A whole runtime_state frame (header and body); 0, or -1 if it is not one or is damaged.
static __attribute__((unused)) int read_runtime_state(const unsigned char *frame, size_t length, runtime_state *out) {
  if (length < HELPER_WIRE_HEADER || wire_frame_body(frame, WIRE_RUNTIME_STATE) != (long)(length - HELPER_WIRE_HEADER)) return -1;
  wire_reader r = { frame + HELPER_WIRE_HEADER, frame + length, 1 };
  decode_runtime_state(&r, out);
  return r.ok && r.p == r.end ? 0 : -1;
}

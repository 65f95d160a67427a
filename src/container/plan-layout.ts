// Everything TypeScript hands to the C helper (native/container-init.c), defined once: the plans
// on fd 3 (a container's init, one more process by `exec`), the commands that follow them ("go",
// a resize), and the state of a tsvmm-runc container that the helper's fast path reads from
// <root>/<id>/state. The TypeScript types below are inferred from these layouts; the C structs
// and decoders in native/helper-wire.h are generated from them (scripts/helper-wire.mjs, checked
// by test/unit/helper-wire.test.ts). Change a field here and both sides change.

import { bool, decodeFrame, encodeFrame, int, list, opt, str, struct, type Value } from './wire.js';

export const MountStepLayout = struct('mount_step', {
  source: str,
  /** Inside the container (for `mounts`) or on the host (for `prepare`). */
  target: str,
  /** "" for a bind mount. */
  type: str,
  flags: int,
  data: str,
  /** If not 0, a second mount(2) with these flags on the new mount (bind mounts take their options that way). */
  remountFlags: int,
  /** The mount point is a file (a file bind mount), not a directory. */
  isFile: bool,
  propagation: list(int),
});

const TerminalLayout = struct('terminal_size', { rows: int, cols: int });

const NamespaceJoinLayout = struct('ns_join', { flag: int, path: str });

export const SeccompLayout = struct('seccomp_plan', {
  defaultAction: int,
  architectures: list(int),
  rules: list(struct('seccomp_rule', {
    names: list(str),
    action: int,
    args: list(struct('seccomp_arg', { index: int, op: int, value: int, valueTwo: int })),
  })),
});

/** What an init and an exec'd process both are: user, capabilities, limits, terminal, command. */
const ProcessLayout = struct('process_plan', {
  rlimits: list(struct('rlimit_step', { resource: int, soft: int, hard: int })),
  cwd: str,
  umask: int,
  noNewPrivileges: bool,
  user: struct('user_ids', { uid: int, gid: int, additionalGids: list(int) }),
  /** Bit masks (capabilities go up to bit 40). */
  capabilities: struct('capability_sets', { bounding: int, effective: int, permitted: int, inheritable: int, ambient: int }),
  args: list(str),
  env: list(str),
  /** A pty of this size: its controlling terminal and stdio (0×0: the engine sizes it). */
  terminal: opt(TerminalLayout),
  /**
   * Existing namespaces to enter (setns) instead of making new ones: for an init the pid one
   * before the clone and the others in the init; for exec the container's, user first.
   */
  joinNamespaces: list(NamespaceJoinLayout),
  oomScoreAdj: opt(int),
  seccomp: opt(SeccompLayout),
  /** runc's --preserve-fds: the helper's fds 4.. (after its channel) become the process's fds 3... */
  preserveFds: int,
});

/** How an OCI runtime's init behaves: set up, wait on exec.fifo until `start`, then exec. */
export const RuntimePlanLayout = struct('runtime_plan', {
  /** The exec.fifo, made by the helper; the init blocks opening it for writing until `start` reads it. "" = no waiting (`run`). */
  fifo: str,
  /** A unix socket the engine listens on; the pty master goes there (process.terminal). */
  consoleSocket: opt(str),
  /** The helper exits once the init waits (create); otherwise it stays and reports the exit (run). */
  detach: bool,
});

/** A container's init: the helper clones it into new namespaces, sets it up and execs the workload. */
export const InitPlanLayout = struct('init_plan', {
  /** Our pid: a helper whose parent is another ends at once. */
  supervisor: int,
  cloneFlags: int,
  /** Namespaces made by the init process itself once it is in its cgroups (cgroup). */
  unshareFlags: int,
  cgroupProcs: list(str),
  /** The host has work to do (the network, hooks) between the init's birth and its start: wait for "go". */
  waitForHost: bool,
  rootPropagation: int,
  /** The directory that becomes "/" (for layers, overlayfs's merged directory). */
  rootfs: str,
  /** Host-side mounts made in the new mount namespace before the root is bound: the overlay. */
  prepare: list(MountStepLayout),
  mounts: list(MountStepLayout),
  devices: list(struct('device_node', { path: str, mode: int, major: int, minor: int, uid: int, gid: int })),
  symlinks: list(struct('symlink_step', { target: str, path: str })),
  /** Bring lo up (in a network namespace of its own). */
  loopbackUp: bool,
  /** Set HOME from the container's /etc/passwd (else "/"), as runc does when the environment has none. */
  setHome: bool,
  readonlyAfter: list(str),
  rootRemountFlags: int,
  hostname: opt(str),
  domainname: opt(str),
  readonlyPaths: list(str),
  maskedPaths: list(str),
  /** uid_map and gid_map contents, written by the helper for a new user namespace before the init goes on. */
  idMaps: opt(struct('id_maps', { uid: str, gid: str })),
  /** Written inside the container once /proc is mounted: /proc/sys/… path → value. */
  sysctl: list(struct('sysctl_step', { path: str, value: str })),
  /** The runc process model (bin/tsvmm-runc); absent for tsvmm's own containers. */
  runtime: opt(RuntimePlanLayout),
  /**
   * The spec's createContainer hooks, run by the init in the container's namespaces once its
   * mounts are made and before pivot_root (so the host's files are still there), as the runtime
   * spec asks; their state comes with "go".
   */
  createContainerHooks: list(struct('hook_step', { path: str, args: list(str), env: list(str), timeoutSeconds: int })),
  process: ProcessLayout,
});

/** One more process in a running container (`exec`, a startContainer hook). */
export const ExecPlanLayout = struct('exec_plan', {
  cgroupProcs: list(str),
  consoleSocket: opt(str),
  detach: bool,
  process: ProcessLayout,
});

/** After {"pid":N} of a plan with waitForHost: the host is done, the init may go on; `state` is the createContainer hooks' stdin. */
export const GoLayout = struct('go_command', { state: str });

/** While a workload with a pty runs: its new size. */
export const ResizeLayout = struct('resize_command', { rows: int, cols: int });

/** <root>/<id>/state of tsvmm-runc: what its C fast path needs, and tsvmm-runc's whole record as JSON. */
export const RuntimeStateLayout = struct('runtime_state', {
  /** The init's host pid. */
  pid: int,
  /** Field 22 of /proc/PID/stat when it was made: tells our init from a later process with its pid. */
  startTime: str,
  /** The cgroup directories made (removed by delete). */
  cgroupDirs: list(str),
  /** Whether hooks of these kinds are due: the fast path leaves those verbs to Node. */
  hooks: struct('hooks_due', { startContainer: bool, poststart: bool, poststop: bool }),
  /** What `state` prints in each status (ociStateText of src/runtime/state.ts): the fast path picks one. */
  oci: struct('oci_states', { created: str, running: str, paused: str, stopped: str }),
  /** The ContainerRecord of src/runtime/state.ts, as JSON. */
  record: str,
});

/** The kinds of frame, numbered by their place here. */
export const HELPER_MESSAGES = [InitPlanLayout, ExecPlanLayout, GoLayout, ResizeLayout, RuntimeStateLayout] as const;

export type MountStep = Value<typeof MountStepLayout>;
export type SeccompPlan = Value<typeof SeccompLayout>;
export type ProcessPlan = Value<typeof ProcessLayout>;
export type RuntimePlan = Value<typeof RuntimePlanLayout>;
export type InitPlan = Value<typeof InitPlanLayout>;
export type ExecPlan = Value<typeof ExecPlanLayout>;

/** A frame for the helper (or the state file) of one of HELPER_MESSAGES. */
export function helperFrame<L extends (typeof HELPER_MESSAGES)[number]>(layout: L, value: Value<L>): Buffer {
  return encodeFrame(HELPER_MESSAGES, layout, value);
}

export function readHelperFrame<L extends (typeof HELPER_MESSAGES)[number]>(layout: L, frame: Buffer): Value<L> {
  return decodeFrame(HELPER_MESSAGES, layout, frame) as Value<L>;
}

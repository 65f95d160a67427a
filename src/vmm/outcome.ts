// How a VM run ends, as the vCPU thread reports it and the API and CLI present it.

import type { VcpuDump } from './diagnostics.js';

export type ShutdownReason =
  /** The guest pulsed the i8042 reset line (how a PC guest reboots or powers off). */
  | 'i8042-reset'
  /** The guest wrote S5 (soft off) to the ACPI PM1a control register: `poweroff`. */
  | 'acpi-poweroff'
  /** The guest wrote the ACPI reset register: `reboot`. */
  | 'acpi-reset'
  /** KVM_EXIT_SHUTDOWN: the guest triple-faulted. */
  | 'triple-fault'
  /** KVM_EXIT_SYSTEM_EVENT (PSCI/ACPI style shutdown, reset or crash). */
  | 'system-shutdown'
  | 'system-reset'
  | 'system-crash';

export type VmOutcome =
  /** `vcpus`: every vCPU's state when the guest crashed (a triple fault or a reported crash). */
  | { kind: 'shutdown'; reason: ShutdownReason; vcpus?: VcpuDump[] }
  /** Stopped by the host: the user, a script or the dashboard. */
  | { kind: 'stopped' }
  /** `vcpus`: every vCPU's state when KVM could not go on (emulation failure, internal error, ...). */
  | { kind: 'error'; code: VmErrorCode; message: string; diagnostics?: string; vcpus?: VcpuDump[] };

/** An outcome that is a crash of the guest or of KVM: worth every vCPU's state in the report. */
export function isCrash(outcome: VmOutcome): boolean {
  if (outcome.kind === 'shutdown') return outcome.reason === 'triple-fault' || outcome.reason === 'system-crash';
  return outcome.kind === 'error' && outcome.code !== 'SNAPSHOT_CHANGED' && outcome.code !== 'VMM_ERROR';
}

export type VmErrorCode =
  | 'EMULATION_FAILURE'
  | 'INTERNAL_ERROR'
  | 'FAIL_ENTRY'
  | 'UNHANDLED_EXIT'
  | 'VMM_ERROR'
  /** The snapshot file a restored VM's memory is mapped from was truncated or rewritten under it. */
  | 'SNAPSHOT_CHANGED';

export function describeOutcome(outcome: VmOutcome): string {
  switch (outcome.kind) {
    case 'shutdown':
      return {
        'i8042-reset': 'guest shut down (reset through the i8042 controller)',
        'acpi-poweroff': 'guest powered off (ACPI S5)',
        'acpi-reset': 'guest reset (ACPI reset register)',
        'triple-fault': 'guest reset (triple fault)',
        'system-shutdown': 'guest powered off',
        'system-reset': 'guest reset',
        'system-crash': 'guest reported a crash',
      }[outcome.reason];
    case 'stopped':
      return 'stopped';
    case 'error':
      return outcome.message;
  }
}

// Guest RAM beyond what one ArrayBuffer holds (4 GiB): `run --mem 8G` boots, and the guest is
// told of all of it, in one memory map entry above 4 GiB.

import { totalmem } from 'node:os';
import { describe, expect, it } from 'vitest';
import { kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';
import { tsvmm } from '../helpers/cli.js';

const GiB = 1024 ** 3;
const tooSmall = totalmem() < 8 * GiB ? `this host has ${Math.floor(totalmem() / GiB)} GiB of RAM, less than the 8 GiB asked for` : undefined;

describe.skipIf(kvmMissingReason ?? tooSmall)('more than 4 GiB of guest RAM', () => {
  it('run --mem 8G boots and the guest sees 5 GiB above the PCI hole', () => {
    const r = tsvmm(['run', '--kernel', TEST_ELF, '--cmdline', 'mode=info', '--mem', '8G']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('memmap: addr=0x100000000 size=0x140000000 type=0x1');
  });
});

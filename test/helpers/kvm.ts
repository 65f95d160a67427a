// Integration tests need the real /dev/kvm; where it is missing they skip and say why.

import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export const kvmMissingReason: string | undefined = (() => {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return undefined;
  } catch (error) {
    return `/dev/kvm is not usable here (${(error as NodeJS.ErrnoException).code}): KVM integration tests skipped`;
  }
})();

if (kvmMissingReason) console.warn(kvmMissingReason);

export const GUESTS = path.resolve('guests/build');
export const TEST_ELF = path.join(GUESTS, 'test.elf');
export const HELLO_ELF = path.join(GUESTS, 'hello.elf');
export const ELF64_ELF = path.join(GUESTS, 'elf64.elf');

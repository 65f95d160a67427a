// Replays the boot state tsvmm builds under QEMU's TCG, which emulates the CPU in software. These
// machines cannot run Linux under KVM (see PLATFORM.md), but TCG can: so a real kernel checks
// tsvmm's boot-protocol set-up (what the loader put in memory and the boot CPU's entry state)
// where no VMX/SVM is available.
//
// The replay is a PVH ELF for `qemu -kernel`: its segments are every non-zero page tsvmm wrote
// from 1 MiB up, a copy of low memory (0x500 up to the EBDA: boot GDT, page tables, zero page,
// command line), and a small stub. SeaBIOS and QEMU's PVH option ROM use low memory while they
// run, so the stub first restores tsvmm's copy, then loads tsvmm's GDT, IDT, CR3, CR4, EFER and
// CR0 exactly as KVM would be given them, and jumps to the entry with tsvmm's registers.

import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { GuestMemory } from '../../src/memory/guest-memory.js';
import { bootRegs, bootSregs, type BootCpuState } from '../../src/arch/x86/boot-cpu.js';
import { kvm_sregs } from '../../src/kvm/structs.js';
import { EBDA_START, HIGH_MEMORY_START, PAGE_SIZE } from '../../src/arch/x86/layout.js';

const LOW_START = 0x500; // below: the real-mode IVT and BIOS data area, which tsvmm leaves alone
const STUB = HIGH_MEMORY_START;
const STAGE = STUB + PAGE_SIZE;
const MSR_EFER = 0xc0000080;
const EFER_LME = 0x100n; // LMA is the CPU's to set

export function qemuMissingReason(): string | undefined {
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'qemu-system-x86_64 is not installed (scripts/install-bench-deps.sh installs it): TCG replay skipped';
  }
}

/** Writes the replay ELF into `dir` and returns its path. */
export function writeReplayElf(memory: GuestMemory, cpu: BootCpuState, dir: string): string {
  const sregs = bootSregs(memory, kvm_sregs.zero(), cpu.mode);
  const regs = bootRegs(cpu);
  if (cpu.mode !== 'long64') throw new Error('the TCG replay handles 64-bit entry only');
  const stageEnd = STAGE + (EBDA_START - LOW_START);
  if (!memory.slice(STUB, stageEnd - STUB).every((b) => b === 0)) throw new Error('tsvmm wrote where the replay stub goes');

  const asm = `
.code32
.globl start
start:
  cli
  cld
  mov $${STAGE}, %esi
  mov $${LOW_START}, %edi
  mov $${EBDA_START - LOW_START}, %ecx
  rep movsb
  lgdt gdtr
  lidt idtr
  mov $${sregs.cr4}, %eax
  mov %eax, %cr4
  mov $${sregs.cr3}, %eax
  mov %eax, %cr3
  mov $${MSR_EFER}, %ecx
  mov $${sregs.efer & EFER_LME}, %eax
  xor %edx, %edx
  wrmsr
  mov $${sregs.cr0}, %eax
  mov %eax, %cr0
  ljmp $${sregs.cs.selector}, $long
.code64
long:
  mov $${sregs.ds.selector}, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov %ax, %fs
  mov %ax, %gs
  mov $${regs.rsp}, %rsp
  mov $${regs.rbp}, %rbp
  mov $${regs.rsi}, %rsi
  mov $${regs.rbx}, %rbx
  xor %eax, %eax
  mov %eax, %ecx
  mov %eax, %edx
  mov %eax, %edi
  push $${regs.rflags}
  popf
  mov $${regs.rip}, %rax
  jmp *%rax
gdtr: .word ${sregs.gdt.limit}
  .long ${sregs.gdt.base}
idtr: .word ${sregs.idt.limit}
  .long ${sregs.idt.base}
`;
  const file = (name: string) => path.join(dir, name);
  writeFileSync(file('stub.S'), asm);
  execFileSync('as', ['--64', '-o', file('stub.o'), file('stub.S')]);
  // ld reads -Ttext as hexadecimal.
  execFileSync('ld', ['-m', 'elf_x86_64', `-Ttext=0x${STUB.toString(16)}`, '--oformat=binary', '-e', 'start', '-o', file('stub.bin'), file('stub.o')]);

  const segments = [
    { paddr: STUB, data: readFileSync(file('stub.bin')) },
    { paddr: STAGE, data: memory.read(LOW_START, EBDA_START - LOW_START) },
    ...nonZeroRuns(memory, HIGH_MEMORY_START),
  ];
  writeFileSync(file('replay.elf'), pvhElf(STUB, segments));
  return file('replay.elf');
}

/** Runs of non-zero pages from `from` up: what tsvmm wrote (fresh QEMU RAM reads as zero). */
function nonZeroRuns(memory: GuestMemory, from: number): { paddr: number; data: Uint8Array }[] {
  const runs: { paddr: number; data: Uint8Array }[] = [];
  const zero = Buffer.alloc(PAGE_SIZE);
  for (const region of memory.regions) {
    let runStart = -1;
    const end = region.start + region.size;
    for (let at = Math.max(from, region.start); at <= end; at += PAGE_SIZE) {
      const used = at < end && !zero.equals(memory.slice(at, PAGE_SIZE));
      if (used && runStart < 0) runStart = at;
      if (!used && runStart >= 0) {
        runs.push({ paddr: runStart, data: memory.slice(runStart, at - runStart) });
        runStart = -1;
      }
    }
  }
  return runs;
}

/** An ELF64 with a PVH note whose descriptor is 8 bytes, as QEMU 7.2 reads it. */
function pvhElf(entry: number, segments: { paddr: number; data: Uint8Array }[]): Uint8Array {
  const phnum = segments.length + 1;
  const note = new Uint8Array(24);
  const nv = new DataView(note.buffer);
  nv.setUint32(0, 4, true); // namesz: "Xen\0"
  nv.setUint32(4, 8, true); // descsz
  nv.setUint32(8, 18, true); // XEN_ELFNOTE_PHYS32_ENTRY
  note.set(Buffer.from('Xen\0'), 12);
  nv.setBigUint64(16, BigInt(entry), true);
  let offset = 64 + 56 * phnum;
  const noteOffset = offset;
  offset += note.length;
  const placed = segments.map((s) => {
    const at = offset;
    offset += s.data.length;
    return { ...s, offset: at };
  });
  const image = new Uint8Array(offset);
  const v = new DataView(image.buffer);
  image.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 62, true); // EM_X86_64
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(entry), true);
  v.setBigUint64(32, 64n, true);
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, phnum, true);
  let ph = 64;
  const header = (type: number, fileOffset: number, paddr: number, size: number) => {
    v.setUint32(ph, type, true);
    v.setUint32(ph + 4, 7, true); // RWX
    v.setBigUint64(ph + 8, BigInt(fileOffset), true);
    v.setBigUint64(ph + 16, BigInt(paddr), true);
    v.setBigUint64(ph + 24, BigInt(paddr), true);
    v.setBigUint64(ph + 32, BigInt(size), true);
    v.setBigUint64(ph + 40, BigInt(size), true);
    v.setBigUint64(ph + 48, 1n, true); // p_align: QEMU's loader divides by it
    ph += 56;
  };
  header(4, noteOffset, 0, note.length);
  image.set(note, noteOffset);
  for (const s of placed) {
    header(1, s.offset, s.paddr, s.data.length);
    image.set(s.data, s.offset);
  }
  return image;
}

/** A QEMU process with its serial console on stdio. */
export class QemuConsole {
  output = '';
  readonly exited: Promise<number | null>;
  readonly #process: ChildProcessWithoutNullStreams;

  constructor(elf: string, memoryBytes: number) {
    // Twice tsvmm's RAM, so QEMU's own ACPI tables and SeaBIOS's high data sit above the RAM our
    // e820 map hands the kernel.
    this.#process = spawn('qemu-system-x86_64', [
      '-accel', 'tcg', '-m', `${(2 * memoryBytes) / 2 ** 20}M`, '-nodefaults', '-display', 'none',
      '-serial', 'stdio', '-no-reboot', '-kernel', elf,
    ]);
    this.#process.stdout.on('data', (chunk: Buffer) => { this.output += chunk.toString('latin1'); });
    this.#process.stderr.on('data', (chunk: Buffer) => { this.output += chunk.toString('latin1'); });
    this.exited = new Promise((resolve) => this.#process.on('exit', (code) => resolve(code)));
  }

  write(text: string): void {
    this.#process.stdin.write(text);
  }

  async waitFor(pattern: string | RegExp, timeoutMs: number): Promise<void> {
    const matches = () => (typeof pattern === 'string' ? this.output.includes(pattern) : pattern.test(this.output));
    const deadline = Date.now() + timeoutMs;
    while (!matches()) {
      if (Date.now() > deadline || this.#process.exitCode !== null) {
        throw new Error(`QEMU console never showed ${String(pattern)}; it ends with:\n${this.output.slice(-3000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  kill(): void {
    if (this.#process.exitCode === null) this.#process.kill();
  }
}

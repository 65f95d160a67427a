/* GDT layout, shared by the assembly and the C code. */
#ifndef GUESTS_SELECTORS_H
#define GUESTS_SELECTORS_H

#define KERNEL_CS 0x08 /* 64-bit code, DPL 0 */
#define KERNEL_DS 0x10 /* flat data, DPL 0 (also used in 32-bit mode during the PVH entry) */
#define USER_DS   0x1b /* flat data, DPL 3, RPL 3 */
#define USER_CS   0x23 /* 64-bit code, DPL 3, RPL 3 */
#define TSS_SEL   0x28 /* 64-bit TSS: a 16-byte descriptor, entries 5 and 6 */
#define GDT_ENTRIES 7

/*
 * Exceptions, the 8259's vectors 0x20-0x2f, the local APIC's spurious vector, and 0x40-0x4f for
 * interrupts from the local APIC and the IOAPIC (smp.elf).
 */
#define IDT_ENTRIES 0x50
#define APIC_SPURIOUS_VECTOR 0x3f

#endif

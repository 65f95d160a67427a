/*
 * Local APIC (xAPIC through MMIO, or x2APIC through MSRs if the firmware/VMM left it on), IOAPIC,
 * the legacy 8259 pair (only to silence it) and the TSC's frequency.
 */
#ifndef GUESTS_APIC_H
#define GUESTS_APIC_H

#include <stdbool.h>
#include <stdint.h>

/* Local APIC registers (xAPIC MMIO offsets; x2APIC MSR = 0x800 + offset / 16). */
#define LAPIC_ID	0x020
#define LAPIC_VERSION	0x030
#define LAPIC_EOI	0x0b0
#define LAPIC_SVR	0x0f0
#define LAPIC_ESR	0x280
#define LAPIC_ICR_LOW	0x300
#define LAPIC_ICR_HIGH	0x310
#define LAPIC_LVT_TIMER	0x320
#define LAPIC_LVT_LINT0	0x350
#define LAPIC_LVT_LINT1	0x360
#define LAPIC_LVT_ERROR	0x370
#define LAPIC_TIMER_INITIAL 0x380
#define LAPIC_TIMER_CURRENT 0x390
#define LAPIC_TIMER_DIVIDE  0x3e0

#define LAPIC_SVR_ENABLE	0x100
#define LVT_MASKED		0x10000
#define LVT_TIMER_PERIODIC	0x20000
#define TIMER_DIVIDE_16		0x3

#define ICR_INIT		0x00000500
#define ICR_STARTUP		0x00000600
#define ICR_FIXED		0x00000000
#define ICR_DELIVERY_PENDING	0x00001000
#define ICR_LEVEL_ASSERT	0x00004000
#define ICR_LEVEL_TRIGGER	0x00008000

/*
 * Finds the local APIC (CPUID), turns on its global enable if it is off, and remembers whether
 * it is in x2APIC mode. Call on the boot CPU first; false if there is no local APIC.
 */
bool lapic_init(void);
/* Switches the boot CPU's local APIC to x2APIC mode; false if CPUID says there is none. */
bool lapic_enter_x2apic(void);
/* On an AP: the boot CPU's mode (an AP comes out of INIT in whatever mode it was in). */
void lapic_init_ap(void);
bool lapic_x2apic(void);
uint64_t lapic_base(void);
uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t value);
/* This CPU's APIC id (8 bits in xAPIC mode, 32 in x2APIC mode). */
uint32_t lapic_id(void);
/* Software-enables this CPU's local APIC with APIC_SPURIOUS_VECTOR. */
void lapic_enable(void);
static inline void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }
/* Sends an IPI; false if the xAPIC still shows it pending after about `timeout_tsc` TSC ticks. */
bool lapic_send_ipi(uint32_t apic_id, uint32_t icr_low, uint64_t timeout_tsc);

/* IOAPIC at `base` (identity-mapped MMIO). */
uint32_t ioapic_read(uint32_t base, uint32_t reg);
void ioapic_write(uint32_t base, uint32_t reg, uint32_t value);
/* Number of redirection entries, or 0 if nothing plausible answers at `base`. */
unsigned ioapic_pins(uint32_t base);
void ioapic_mask_all(uint32_t base);
/* Fixed delivery of `vector` to `apic_id` (physical destination); MPS flags as in the MADT. */
void ioapic_route(uint32_t base, unsigned pin, uint8_t vector, uint32_t apic_id, uint16_t mps_flags);
void ioapic_mask(uint32_t base, unsigned pin);

/* Reprograms the 8259 pair to vectors 0x20-0x2f and masks every line. */
void pic_disable(void);

/*
 * The TSC's rate in kHz and where it came from: CPUID leaf 0x40000010 (hypervisor), KVM's
 * pvclock, CPUID leaves 0x15/0x16, a 10 ms count of PIT channel 2, or (failing all) a guess.
 */
uint64_t tsc_khz_detect(const char **source);

#endif

/*
 * Finding the CPUs and interrupt controllers in the ACPI tables: RSDP → XSDT (or RSDT) → MADT.
 * Only what a small kernel needs to start its CPUs and route ISA interrupts through the IOAPIC.
 */
#ifndef GUESTS_ACPI_H
#define GUESTS_ACPI_H

#include <stdbool.h>
#include <stdint.h>

#include "pvh-abi.h"

#define ACPI_MAX_CPUS 64
#define ACPI_MAX_IOAPICS 8
#define ACPI_MAX_OVERRIDES 16

/* MPS INTI flags of an interrupt source override. */
#define MPS_POLARITY_MASK  0x3
#define MPS_POLARITY_LOW   0x3
#define MPS_TRIGGER_MASK   0xc
#define MPS_TRIGGER_LEVEL  0xc

struct acpi_ioapic {
	uint8_t id;
	uint32_t address;
	uint32_t gsi_base;
};

struct acpi_override {
	uint8_t bus, irq;
	uint32_t gsi;
	uint16_t flags;
};

struct acpi_madt_info {
	uint64_t rsdp;			/* where the RSDP was found */
	bool rsdp_from_start_info;	/* at hvm_start_info.rsdp_paddr (else by scanning) */
	uint64_t madt;			/* and the MADT */
	uint64_t lapic_address;
	unsigned cpus;			/* enabled local APICs (type 0 and 9), duplicates dropped */
	unsigned cpus_ignored;		/* enabled ones past ACPI_MAX_CPUS */
	uint32_t apic_ids[ACPI_MAX_CPUS];
	unsigned ioapics;
	struct acpi_ioapic ioapic[ACPI_MAX_IOAPICS];
	unsigned overrides;
	struct acpi_override override[ACPI_MAX_OVERRIDES];
};

enum acpi_status {
	ACPI_OK,
	ACPI_NO_RSDP,		/* no RSDP: no ACPI at all */
	ACPI_BAD_TABLES,	/* an RSDP, but something on the way to the MADT is wrong: see *why */
};

struct acpi_rsdp_info {
	uint64_t rsdp;		/* where the RSDP was found, 0 if nowhere */
	bool from_start_info;	/* at hvm_start_info.rsdp_paddr (else by scanning) */
};

/*
 * The ACPI table with this 4-letter signature (its header, checksum checked), found through the
 * RSDP (see acpi_read_madt) and the XSDT or RSDT; NULL with *why set if there is none. `info`,
 * if not NULL, says where the RSDP was.
 */
const void *acpi_find_table(const struct hvm_start_info *si, const char *signature,
			    struct acpi_rsdp_info *info, const char **why);

/*
 * Looks for the RSDP at si->rsdp_paddr (if si is a valid start_info and the field is set), else
 * by scanning 0xE0000-0xFFFFF, and parses the MADT. Tables must lie below 4 GiB (identity map).
 */
enum acpi_status acpi_read_madt(const struct hvm_start_info *si, struct acpi_madt_info *out,
				const char **why);

/* The GSI and MPS flags of ISA IRQ `irq`: its override if the MADT has one, else the same GSI. */
uint32_t acpi_isa_irq_gsi(const struct acpi_madt_info *m, uint8_t irq, uint16_t *flags);

#endif

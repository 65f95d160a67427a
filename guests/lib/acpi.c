/* RSDP, XSDT/RSDT and MADT parsing. Small tables, so the byte loops at CPL 0 stay short. */
#include "acpi.h"
#include "lib.h"

struct rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt;
	/* revision 2 and later */
	uint32_t length;
	uint64_t xsdt;
	uint8_t extended_checksum;
	uint8_t reserved[3];
} PACKED;

struct sdt_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} PACKED;

#define MADT_LOCAL_APIC		0
#define MADT_IO_APIC		1
#define MADT_OVERRIDE		2
#define MADT_LAPIC_ADDRESS	5
#define MADT_LOCAL_X2APIC	9
#define MADT_ENABLED		1

/* Longest table we are prepared to checksum: an MADT for ACPI_MAX_CPUS CPUs is far below this. */
#define MAX_TABLE_LENGTH 0x10000

static uint8_t sum_bytes(const void *p, uint32_t n)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (n--)
		sum += *b++;
	return sum;
}

static bool rsdp_valid(const struct rsdp *r)
{
	if (memcmp(r->signature, "RSD PTR ", 8) || sum_bytes(r, 20))
		return false;
	return r->revision < 2 || (r->length >= sizeof(*r) && r->length <= 4096 &&
				   !sum_bytes(r, r->length));
}

static const struct rsdp *find_rsdp(const struct hvm_start_info *si, bool *from_start_info)
{
	if (si && si->magic == HVM_START_MAGIC && si->rsdp_paddr && si->rsdp_paddr < 0x100000000ull) {
		const struct rsdp *r = (const struct rsdp *)si->rsdp_paddr;
		if (rsdp_valid(r)) {
			*from_start_info = true;
			return r;
		}
	}
	/* Compare 8 bytes at a time: 8192 candidates, a few instructions each. */
	const uint64_t sig = 0x2052545020445352ull; /* "RSD PTR " */
	for (uint64_t a = 0xe0000; a < 0x100000; a += 16)
		if (*(const volatile uint64_t *)a == sig && rsdp_valid((const struct rsdp *)a))
			return (const struct rsdp *)a;
	return NULL;
}

static const struct sdt_header *table_at(uint64_t addr, const char *signature)
{
	if (!addr || addr >= 0x100000000ull - MAX_TABLE_LENGTH)
		return NULL;
	const struct sdt_header *h = (const struct sdt_header *)addr;
	if (signature && memcmp(h->signature, signature, 4))
		return NULL;
	if (h->length < sizeof(*h) || h->length > MAX_TABLE_LENGTH || sum_bytes(h, h->length))
		return NULL;
	return h;
}

static void add_cpu(struct acpi_madt_info *m, uint32_t apic_id)
{
	for (unsigned i = 0; i < m->cpus; i++)
		if (m->apic_ids[i] == apic_id)
			return;
	if (m->cpus < ACPI_MAX_CPUS)
		m->apic_ids[m->cpus++] = apic_id;
	else
		m->cpus_ignored++;
}

static void parse_madt(const struct sdt_header *h, struct acpi_madt_info *m)
{
	const uint8_t *p = (const uint8_t *)h, *end = p + h->length;

	m->madt = (uint64_t)h;
	m->lapic_address = *(const uint32_t *)(p + 36);
	for (p += 44; p + 2 <= end && p[1] >= 2 && p + p[1] <= end; p += p[1]) {
		switch (p[0]) {
		case MADT_LOCAL_APIC:
			if (p[1] >= 8 && (*(const uint32_t *)(p + 4) & MADT_ENABLED))
				add_cpu(m, p[3]);
			break;
		case MADT_LOCAL_X2APIC:
			if (p[1] >= 16 && (*(const uint32_t *)(p + 8) & MADT_ENABLED))
				add_cpu(m, *(const uint32_t *)(p + 4));
			break;
		case MADT_IO_APIC:
			if (p[1] >= 12 && m->ioapics < ACPI_MAX_IOAPICS) {
				struct acpi_ioapic *io = &m->ioapic[m->ioapics++];
				io->id = p[2];
				io->address = *(const uint32_t *)(p + 4);
				io->gsi_base = *(const uint32_t *)(p + 8);
			}
			break;
		case MADT_OVERRIDE:
			if (p[1] >= 10 && m->overrides < ACPI_MAX_OVERRIDES) {
				struct acpi_override *o = &m->override[m->overrides++];
				o->bus = p[2];
				o->irq = p[3];
				o->gsi = *(const uint32_t *)(p + 4);
				o->flags = *(const uint16_t *)(p + 8);
			}
			break;
		case MADT_LAPIC_ADDRESS:
			if (p[1] >= 12)
				m->lapic_address = *(const uint64_t *)(p + 4);
			break;
		}
	}
}

const void *acpi_find_table(const struct hvm_start_info *si, const char *signature,
			    struct acpi_rsdp_info *info, const char **why)
{
	bool from_start_info = false;
	const struct rsdp *r = find_rsdp(si, &from_start_info);
	if (info) {
		info->rsdp = (uint64_t)r;
		info->from_start_info = from_start_info;
	}
	if (!r) {
		*why = "no RSDP";
		return NULL;
	}

	/* The XSDT where there is one (revision 2+), else the RSDT: 8- or 4-byte entries. */
	const struct sdt_header *root = NULL;
	unsigned entry_size = 8;
	if (r->revision >= 2 && r->xsdt)
		root = table_at(r->xsdt, "XSDT");
	if (!root) {
		root = table_at(r->rsdt, "RSDT");
		entry_size = 4;
	}
	if (!root) {
		*why = "no valid XSDT or RSDT";
		return NULL;
	}
	const uint8_t *e = (const uint8_t *)(root + 1), *end = (const uint8_t *)root + root->length;
	for (; e + entry_size <= end; e += entry_size) {
		uint64_t addr = entry_size == 8 ? *(const uint64_t *)e : *(const uint32_t *)e;
		const struct sdt_header *h = (const struct sdt_header *)addr;
		if (!addr || addr >= 0x100000000ull - MAX_TABLE_LENGTH || memcmp(h->signature, signature, 4))
			continue;
		if (!table_at(addr, signature)) {
			*why = "checksum or length is wrong";
			return NULL;
		}
		return h;
	}
	*why = "no such table";
	return NULL;
}

enum acpi_status acpi_read_madt(const struct hvm_start_info *si, struct acpi_madt_info *m,
				const char **why)
{
	struct acpi_rsdp_info rsdp;
	memset(m, 0, sizeof(*m));
	const struct sdt_header *h = acpi_find_table(si, "APIC", &rsdp, why);
	m->rsdp = rsdp.rsdp;
	m->rsdp_from_start_info = rsdp.from_start_info;
	if (!h)
		return rsdp.rsdp ? ACPI_BAD_TABLES : ACPI_NO_RSDP;
	parse_madt(h, m);
	return ACPI_OK;
}

uint32_t acpi_isa_irq_gsi(const struct acpi_madt_info *m, uint8_t irq, uint16_t *flags)
{
	for (unsigned i = 0; i < m->overrides; i++)
		if (m->override[i].bus == 0 && m->override[i].irq == irq) {
			*flags = m->override[i].flags;
			return m->override[i].gsi;
		}
	*flags = 0;
	return irq;
}

/* Local APIC, IOAPIC, 8259 and TSC rate. See apic.h. */
#include "acpi.h"
#include "apic.h"
#include "lib.h"
#include "x86.h"

#define MSR_APIC_BASE		0x1b
#define APIC_BASE_X2APIC	(1u << 10)
#define APIC_BASE_ENABLE	(1u << 11)
#define X2APIC_MSR(reg)		(0x800 + ((reg) >> 4))

static bool x2apic;
static volatile uint32_t *lapic_mmio = (volatile uint32_t *)0xfee00000;

bool lapic_init(void)
{
	if (!(x86_cpuid(1, 0).edx & (1 << 9)))
		return false;
	uint64_t base = x86_rdmsr(MSR_APIC_BASE);
	if (!(base & APIC_BASE_ENABLE)) {
		base |= APIC_BASE_ENABLE;
		x86_wrmsr(MSR_APIC_BASE, base);
	}
	x2apic = base & APIC_BASE_X2APIC;
	lapic_mmio = (volatile uint32_t *)(base & 0xffffff000ull);
	return true;
}

bool lapic_enter_x2apic(void)
{
	if (!(x86_cpuid(1, 0).ecx & (1u << 21)))
		return false;
	x86_wrmsr(MSR_APIC_BASE, x86_rdmsr(MSR_APIC_BASE) | APIC_BASE_ENABLE | APIC_BASE_X2APIC);
	x2apic = true;
	return true;
}

void lapic_init_ap(void)
{
	uint64_t base = x86_rdmsr(MSR_APIC_BASE);
	uint64_t want = base | APIC_BASE_ENABLE | (x2apic ? APIC_BASE_X2APIC : 0);

	/* xAPIC → x2APIC is one write; x2APIC → xAPIC would need a trip through disabled. */
	if (want != base)
		x86_wrmsr(MSR_APIC_BASE, want);
}

bool lapic_x2apic(void) { return x2apic; }
uint64_t lapic_base(void) { return (uint64_t)lapic_mmio; }

uint32_t lapic_read(uint32_t reg)
{
	return x2apic ? (uint32_t)x86_rdmsr(X2APIC_MSR(reg)) : lapic_mmio[reg / 4];
}

void lapic_write(uint32_t reg, uint32_t value)
{
	if (x2apic)
		x86_wrmsr(X2APIC_MSR(reg), value);
	else
		lapic_mmio[reg / 4] = value;
}

uint32_t lapic_id(void)
{
	uint32_t id = lapic_read(LAPIC_ID);
	return x2apic ? id : id >> 24;
}

void lapic_enable(void)
{
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | APIC_SPURIOUS_VECTOR);
}

bool lapic_send_ipi(uint32_t apic_id, uint32_t icr_low, uint64_t timeout_tsc)
{
	if (x2apic) {
		x86_wrmsr(X2APIC_MSR(LAPIC_ICR_LOW), (uint64_t)apic_id << 32 | icr_low);
		return true;
	}
	lapic_mmio[LAPIC_ICR_HIGH / 4] = apic_id << 24;
	lapic_mmio[LAPIC_ICR_LOW / 4] = icr_low;
	uint64_t start = x86_rdtsc();
	while (lapic_mmio[LAPIC_ICR_LOW / 4] & ICR_DELIVERY_PENDING)
		if (x86_rdtsc() - start > timeout_tsc)
			return false;
	return true;
}

/* ---- IOAPIC ---- */

#define IOAPIC_VERSION 0x01
#define IOAPIC_REDIR(pin) (0x10 + 2 * (pin))
#define REDIR_MASKED (1u << 16)
#define REDIR_LEVEL (1u << 15)
#define REDIR_ACTIVE_LOW (1u << 13)

uint32_t ioapic_read(uint32_t base, uint32_t reg)
{
	volatile uint32_t *io = (volatile uint32_t *)(uint64_t)base;
	io[0] = reg;
	return io[4];
}

void ioapic_write(uint32_t base, uint32_t reg, uint32_t value)
{
	volatile uint32_t *io = (volatile uint32_t *)(uint64_t)base;
	io[0] = reg;
	io[4] = value;
}

unsigned ioapic_pins(uint32_t base)
{
	uint32_t v = ioapic_read(base, IOAPIC_VERSION);
	if (v == 0xffffffff || v == 0)
		return 0;
	return (v >> 16 & 0xff) + 1;
}

void ioapic_mask_all(uint32_t base)
{
	unsigned pins = ioapic_pins(base);
	for (unsigned pin = 0; pin < pins; pin++)
		ioapic_mask(base, pin);
}

void ioapic_mask(uint32_t base, unsigned pin)
{
	ioapic_write(base, IOAPIC_REDIR(pin), REDIR_MASKED);
}

void ioapic_route(uint32_t base, unsigned pin, uint8_t vector, uint32_t apic_id, uint16_t mps_flags)
{
	uint32_t low = vector; /* fixed delivery, physical destination, unmasked */

	/* "Conforming" (0) means the bus's default, which for ISA is edge-triggered, active high. */
	if ((mps_flags & MPS_POLARITY_MASK) == MPS_POLARITY_LOW)
		low |= REDIR_ACTIVE_LOW;
	if ((mps_flags & MPS_TRIGGER_MASK) == MPS_TRIGGER_LEVEL)
		low |= REDIR_LEVEL;
	ioapic_write(base, IOAPIC_REDIR(pin), REDIR_MASKED);
	ioapic_write(base, IOAPIC_REDIR(pin) + 1, apic_id << 24);
	ioapic_write(base, IOAPIC_REDIR(pin), low);
}

/* ---- 8259 ---- */

void pic_disable(void)
{
	outb(0x20, 0x11); /* ICW1: edge, cascade, ICW4 follows (also clears pending edges) */
	outb(0xa0, 0x11);
	outb(0x21, 0x20); /* ICW2: vectors 0x20-0x2f, clear of the exceptions */
	outb(0xa1, 0x28);
	outb(0x21, 1 << 2); /* ICW3 */
	outb(0xa1, 2);
	outb(0x21, 0x01); /* ICW4: 8086 mode */
	outb(0xa1, 0x01);
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

/* ---- TSC rate ---- */

struct pvclock {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad[2];
} PACKED;

#define KVM_FEATURE_CLOCKSOURCE	 (1u << 0)
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)
#define MSR_KVM_SYSTEM_TIME	 0x12
#define MSR_KVM_SYSTEM_TIME_NEW	 0x4b564d01

static uint64_t kvmclock_khz(uint32_t hv_base)
{
	static struct pvclock clock __attribute__((aligned(64)));
	struct cpuid_regs sig = x86_cpuid(hv_base, 0);

	if (sig.ebx != 0x4b4d564b || sig.ecx != 0x564b4d56 || sig.edx != 0x4d) /* "KVMKVMKVM\0\0\0" */
		return 0;
	if (sig.eax < hv_base + 1)
		return 0;
	uint32_t features = x86_cpuid(hv_base + 1, 0).eax;
	uint32_t msr = features & KVM_FEATURE_CLOCKSOURCE2 ? MSR_KVM_SYSTEM_TIME_NEW :
		       features & KVM_FEATURE_CLOCKSOURCE ? MSR_KVM_SYSTEM_TIME : 0;
	if (!msr)
		return 0;
	clock.version = 0;
	x86_wrmsr(msr, (uint64_t)&clock | 1);
	uint32_t mul = 0, version;
	int8_t shift = 0;
	for (int tries = 0; tries < 100; tries++) {
		version = *(volatile uint32_t *)&clock.version;
		if (version & 1 || !version)
			continue;
		__asm__ volatile("" : : : "memory");
		mul = *(volatile uint32_t *)&clock.tsc_to_system_mul;
		shift = *(volatile int8_t *)&clock.tsc_shift;
		__asm__ volatile("" : : : "memory");
		if (*(volatile uint32_t *)&clock.version == version)
			break;
		mul = 0;
	}
	x86_wrmsr(msr, 0);
	if (!mul)
		return 0;
	/* ns = (tsc << shift) * mul >> 32, so kHz = 10^6 * 2^32 / mul >> shift. */
	uint64_t khz = (1000000ull << 32) / mul;
	return shift < 0 ? khz << -shift : khz >> shift;
}

/* Counts TSC ticks while PIT channel 2 counts down 10 ms (its output shows in port 0x61 bit 5). */
static uint64_t pit_calibrated_khz(void)
{
	const uint16_t count = 11932; /* 1193182 Hz / 100 */
	uint8_t port61 = inb(0x61);

	if (port61 == 0xff)
		return 0;
	outb(0x61, (port61 & ~0x02) | 0x01); /* gate high, speaker off */
	outb(0x43, 0xb0);		      /* channel 2, lobyte/hibyte, mode 0 */
	outb(0x42, count & 0xff);
	outb(0x42, count >> 8);
	uint64_t start = x86_rdtsc();
	/* Each inb is an exit of several µs; 200000 of them is more than a second anywhere. */
	for (unsigned i = 0; i < 200000; i++)
		if (inb(0x61) & 0x20) {
			uint64_t ticks = x86_rdtsc() - start;
			outb(0x61, port61);
			return ticks / 10;
		}
	outb(0x61, port61);
	return 0;
}

uint64_t tsc_khz_detect(const char **source)
{
	uint64_t khz;
	bool hypervisor = x86_cpuid(1, 0).ecx & (1u << 31);

	if (hypervisor) {
		uint32_t max = x86_cpuid(0x40000000, 0).eax;
		if (max >= 0x40000010 && max < 0x40010000 && (khz = x86_cpuid(0x40000010, 0).eax)) {
			*source = "cpuid-0x40000010";
			return khz;
		}
		/* KVM's leaves sit at 0x40000000, or at 0x40000100 when Hyper-V's come first. */
		if ((khz = kvmclock_khz(0x40000000)) || (khz = kvmclock_khz(0x40000100))) {
			*source = "kvmclock";
			return khz;
		}
	}
	uint32_t max_basic = x86_cpuid(0, 0).eax;
	if (max_basic >= 0x15) {
		struct cpuid_regs r = x86_cpuid(0x15, 0);
		if (r.eax && r.ebx && r.ecx) {
			*source = "cpuid-0x15";
			return (uint64_t)r.ecx * r.ebx / r.eax / 1000;
		}
	}
	if (max_basic >= 0x16 && (khz = x86_cpuid(0x16, 0).eax & 0xffff)) {
		*source = "cpuid-0x16";
		return khz * 1000;
	}
	if ((khz = pit_calibrated_khz()) > 1000) {
		*source = "pit";
		return khz;
	}
	*source = "guess";
	return 2000000;
}

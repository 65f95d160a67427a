/*
 * kvm-exit-loop: the floor for tsvmm's benchmarks. A minimal KVM VMM in plain C that boots the
 * same PVH ELF guests tsvmm boots (guests/build/test.elf) and handles their port I/O with the
 * least work possible: KVM_RUN, read kvm_run, act, KVM_RUN again. No libraries, no threads, no
 * device models beyond what the guest's console and shutdown need.
 *
 *   kvm-exit-loop KERNEL.elf [CMDLINE]
 *
 * The VM is set up as tsvmm sets it up (src/vmm/builder.ts): 256 MiB of RAM at 0, in-kernel
 * irqchip and PIT, TSS and identity-map pages at the same addresses, CPUID from
 * KVM_GET_SUPPORTED_CPUID, and the PVH entry: 32-bit protected mode, paging off, flat segments,
 * ebx = the address of struct hvm_start_info.
 *
 * Port I/O: COM1 THR (0x3f8) writes go to stdout unbuffered, COM1 LSR (0x3fd) reads 0x60
 * (transmitter empty), a write of 0xfe to port 0x64 (i8042 reset) ends the run with status 0;
 * other reads return 0xff and other writes are dropped. KVM_EXIT_SHUTDOWN (a triple fault) also
 * ends with 0. Any other exit prints a message on stderr and ends with status 1.
 *
 * Build: gcc -O2 -o kvm-exit-loop kvm-exit-loop.c
 */
#define _GNU_SOURCE
#include <elf.h>
#include "../../guests/lib/pvh-abi.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/kvm.h>

#define RAM_SIZE (256ul << 20)
#define GDT_ADDR 0x500
#define START_INFO_ADDR 0x6000
#define MEMMAP_ADDR 0x6100
#define STACK_ADDR 0x8ff0
#define CMDLINE_ADDR 0x20000
#define CMDLINE_MAX 0x10000
#define EBDA_START 0x9fc00
#define HIGH_MEMORY 0x100000
#define KVM_TSS_ADDR 0xfeffd000
#define KVM_IDENTITY_MAP_ADDR 0xfeffc000ull

#define XEN_ELFNOTE_PHYS32_ENTRY 18

#define COM1_THR 0x3f8
#define COM1_LSR 0x3fd
#define I8042_COMMAND 0x64
#define I8042_RESET 0xfe

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("kvm-exit-loop: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int xioctl(int fd, unsigned long request, unsigned long arg, const char *name)
{
	int rc = ioctl(fd, request, arg);

	if (rc < 0)
		die("%s: %s", name, strerror(errno));
	return rc;
}
#define IOCTL(fd, req, arg) xioctl((fd), (req), (unsigned long)(arg), #req)

static uint8_t *read_file(const char *path, size_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0)
		die("%s: %s", path, strerror(errno));
	uint8_t *buf = malloc(st.st_size ? st.st_size : 1);
	size_t done = 0;
	while (buf && done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, st.st_size - done);
		if (n <= 0)
			die("%s: short read", path);
		done += n;
	}
	close(fd);
	*size = st.st_size;
	return buf;
}

/* Loads PT_LOAD segments at their physical addresses; returns the PVH 32-bit entry point. */
static uint32_t load_pvh_elf(uint8_t *ram, const uint8_t *img, size_t size, const char *path)
{
	const Elf64_Ehdr *eh = (const void *)img;
	uint64_t entry = 0;
	int have_entry = 0;

	if (size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64)
		die("%s: not an ELF64 file", path);
	if (eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > size)
		die("%s: program headers out of file", path);
	for (int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const void *)(img + eh->e_phoff + i * sizeof(Elf64_Phdr));
		if (ph->p_offset + ph->p_filesz > size)
			die("%s: segment %d out of file", path, i);
		if (ph->p_type == PT_LOAD) {
			if (ph->p_paddr + ph->p_memsz > RAM_SIZE || ph->p_filesz > ph->p_memsz)
				die("%s: segment %d does not fit in RAM", path, i);
			memcpy(ram + ph->p_paddr, img + ph->p_offset, ph->p_filesz);
			memset(ram + ph->p_paddr + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
		} else if (ph->p_type == PT_NOTE) {
			/* Notes: namesz, descsz, type, name (4-aligned), desc (4-aligned). */
			const uint8_t *p = img + ph->p_offset, *end = p + ph->p_filesz;
			while (p + 12 <= end) {
				const Elf64_Nhdr *nh = (const void *)p;
				const uint8_t *name = p + 12;
				const uint8_t *desc = name + ((nh->n_namesz + 3) & ~3u);
				const uint8_t *next = desc + ((nh->n_descsz + 3) & ~3u);
				if (next > end)
					break;
				if (nh->n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh->n_namesz == 4 &&
				    !memcmp(name, "Xen", 4) && nh->n_descsz >= 4) {
					uint32_t e32;
					memcpy(&e32, desc, 4);
					entry = e32;
					have_entry = 1;
				}
				p = next;
			}
		}
	}
	if (!have_entry)
		die("%s: no PVH entry note (Xen note type %d)", path, XEN_ELFNOTE_PHYS32_ENTRY);
	return (uint32_t)entry;
}

static void write_start_info(uint8_t *ram, const char *cmdline)
{
	size_t len = strlen(cmdline);
	if (len >= CMDLINE_MAX)
		die("command line too long");
	memcpy(ram + CMDLINE_ADDR, cmdline, len + 1);

	struct hvm_memmap_table_entry map[] = {
		{ 0, EBDA_START, 1, 0 },                        /* RAM */
		{ EBDA_START, HIGH_MEMORY - EBDA_START, 2, 0 }, /* reserved: EBDA, VGA, BIOS */
		{ HIGH_MEMORY, RAM_SIZE - HIGH_MEMORY, 1, 0 },  /* RAM */
	};
	memcpy(ram + MEMMAP_ADDR, map, sizeof map);

	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = CMDLINE_ADDR,
		.memmap_paddr = MEMMAP_ADDR,
		.memmap_entries = sizeof map / sizeof map[0],
	};
	memcpy(ram + START_INFO_ADDR, &si, sizeof si);
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
}

static void setup_cpuid(int kvm, int vcpu)
{
	int n = 256;
	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof *c + n * sizeof c->entries[0]);
		c->nent = n;
		if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			IOCTL(vcpu, KVM_SET_CPUID2, c);
			free(c);
			return;
		}
		if (errno != E2BIG)
			die("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		free(c);
		n *= 2;
	}
}

static void setup_boot_cpu(int vcpu, uint8_t *ram, uint32_t entry)
{
	/* Null, 32-bit flat code (0x08), flat data (0x10): as tsvmm's boot GDT. */
	static const uint64_t gdt[] = { 0, 0x00cf9b000000ffffull, 0x00cf93000000ffffull };
	memcpy(ram + GDT_ADDR, gdt, sizeof gdt);

	struct kvm_sregs sregs;
	IOCTL(vcpu, KVM_GET_SREGS, &sregs);
	sregs.gdt.base = GDT_ADDR;
	sregs.gdt.limit = sizeof gdt - 1;
	sregs.cs = flat_segment(0x08, 0xb);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = flat_segment(0x10, 0x3);
	sregs.cr0 = (sregs.cr0 | 1 /* PE */) & ~(1ull << 31 /* PG */);
	sregs.cr4 = 0;
	sregs.efer = 0;
	IOCTL(vcpu, KVM_SET_SREGS, &sregs);

	struct kvm_regs regs = { 0 };
	regs.rip = entry;
	regs.rflags = 2;
	regs.rbx = START_INFO_ADDR;
	regs.rsp = regs.rbp = STACK_ADDR;
	IOCTL(vcpu, KVM_SET_REGS, &regs);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s KERNEL.elf [CMDLINE]\n", argv[0]);
		return 2;
	}
	const char *cmdline = argc > 2 ? argv[2] : "";

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm: %s", strerror(errno));
	int vm = IOCTL(kvm, KVM_CREATE_VM, 0);
	uint64_t identity_map = KVM_IDENTITY_MAP_ADDR;
	IOCTL(vm, KVM_SET_IDENTITY_MAP_ADDR, &identity_map);
	IOCTL(vm, KVM_SET_TSS_ADDR, KVM_TSS_ADDR);
	IOCTL(vm, KVM_CREATE_IRQCHIP, 0);
	struct kvm_pit_config pit = { .flags = 0 };
	IOCTL(vm, KVM_CREATE_PIT2, &pit);

	uint8_t *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		die("mmap guest RAM: %s", strerror(errno));
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = RAM_SIZE, .userspace_addr = (uint64_t)(uintptr_t)ram,
	};
	IOCTL(vm, KVM_SET_USER_MEMORY_REGION, &region);

	size_t size;
	uint8_t *img = read_file(argv[1], &size);
	uint32_t entry = load_pvh_elf(ram, img, size, argv[1]);
	free(img);
	write_start_info(ram, cmdline);

	int vcpu = IOCTL(vm, KVM_CREATE_VCPU, 0);
	int run_size = IOCTL(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run: %s", strerror(errno));
	setup_cpuid(kvm, vcpu);
	setup_boot_cpu(vcpu, ram, entry);

	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN: %s", strerror(errno));
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			uint8_t *data = (uint8_t *)run + run->io.data_offset;
			for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
				uint16_t port = run->io.port;
				if (run->io.direction == KVM_EXIT_IO_OUT) {
					if (port == COM1_THR) {
						if (write(STDOUT_FILENO, data, 1) < 0 && errno != EAGAIN)
							die("write stdout: %s", strerror(errno));
					} else if (port == I8042_COMMAND && data[0] == I8042_RESET) {
						return 0;
					}
				} else {
					memset(data, port == COM1_LSR ? 0x60 : 0xff, run->io.size);
				}
			}
			break;
		}
		case KVM_EXIT_SHUTDOWN:
			return 0;
		case KVM_EXIT_INTERNAL_ERROR:
			die("KVM_EXIT_INTERNAL_ERROR, suberror %u", run->internal.suberror);
		default:
			die("unhandled exit reason %u", run->exit_reason);
		}
	}
}

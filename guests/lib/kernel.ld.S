/*
 * Every guest is linked at 1 MiB, identity-mapped: virtual = physical, so each PT_LOAD's p_paddr
 * is where the VMM must load it. .bss is the tail of the last PT_LOAD (p_memsz > p_filesz) and
 * must be zeroed by the loader, as the ELF spec says.
 *
 * Run through cpp: with PVH defined, the Xen note gets its PT_NOTE; without (elf64.elf) there is
 * no note and no empty PT_NOTE either.
 */
OUTPUT_FORMAT("elf64-x86-64")
OUTPUT_ARCH(i386:x86-64)

PHDRS
{
	text   PT_LOAD FLAGS(5);	/* R X */
	rodata PT_LOAD FLAGS(4);	/* R */
	data   PT_LOAD FLAGS(6);	/* R W */
#ifdef PVH
	note   PT_NOTE FLAGS(4);
#endif
}

SECTIONS
{
	. = 0x100000;
	.text : {
		*(.text.entry)
		*(.text .text.*)
	} :text

	. = ALIGN(4096);
	.rodata : {
		*(.rodata .rodata.*)
	} :rodata
#ifdef PVH
	.note.Xen : {
		*(.note.Xen)
	} :rodata :note
#endif

	. = ALIGN(4096);
	.data : {
		*(.data.pagetables)
		*(.data .data.*)
	} :data
	.bss : {
		*(.bss .bss.*)
		*(COMMON)
	} :data

	/DISCARD/ : {
		*(.comment)
		*(.note.GNU-stack)
		*(.note.gnu.*)
		*(.eh_frame .eh_frame_hdr)
	}
}

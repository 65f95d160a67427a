/*
 * The guests' tiny kernel library: serial console, printing, strings, command-line parsing,
 * CPU set-up (GDT, TSS, IDT), the CPL-3 round trip and shutdown.
 *
 * Everything here runs at CPL 0 unless it says otherwise. On the target platform every CPL-0
 * instruction is emulated (~280 ns each), so the code favours few instructions over elegance.
 */
#ifndef GUESTS_LIB_H
#define GUESTS_LIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "selectors.h"

#define NORETURN __attribute__((noreturn))
#define PACKED   __attribute__((packed))

/* ---- port I/O and a few privileged instructions ---- */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline void cli(void) { __asm__ volatile("cli" : : : "memory"); }
static inline void sti(void) { __asm__ volatile("sti" : : : "memory"); }
static inline unsigned current_cpl(void)
{
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

/* ---- console (16550 UART at COM1, polled output) ---- */

#define COM1 0x3f8

/* crlf: send "\r\n" for "\n" (for people at a raw terminal); test guests send a bare "\n". */
void console_init(bool crlf);
void console_putc(char c);
void console_write(const char *s, size_t n);
void console_puts(const char *s);
/* %s %.*s %c %d %u %x with l/ll/z modifiers and %%; no field widths. */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kvprintf(const char *fmt, va_list ap);

/* ---- strings and the command line ---- */

size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int memcmp(const void *a, const void *b, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
/* true if s[0..n) equals the NUL-terminated word */
bool str_equal(const char *s, size_t n, const char *word);
/* Value of "key=value" in a space-separated command line, or NULL; *len gets its length. */
const char *cmdline_get(const char *cmdline, const char *key, size_t *len);
/* Decimal, or hexadecimal with a 0x prefix; false if s[0..n) is not a number or overflows. */
bool parse_u64(const char *s, size_t n, uint64_t *out);
/*
 * The number given as key=N on the command line, or `fallback` without one. A value that is not
 * a number ends the guest with "WHO: bad KEY \"VALUE\"" rather than being guessed at.
 */
uint64_t cmdline_u64(const char *cmdline, const char *who, const char *key, uint64_t fallback);

/* ---- CPU set-up, traps, CPL 3 ---- */

/* Loads the GDT, TSS and IDT; exceptions then print a line and shut down. */
void cpu_init(void);
/* On another CPU once cpu_init has run: loads the same GDT and IDT (no TSS: it never runs CPL 3). */
void cpu_init_ap(void);
/* IRQ line 0-15 of the 8259 pair (vectors 0x20-0x2f); the handler sends the EOI itself. */
void irq_set_handler(unsigned irq, void (*handler)(void));
/* Any vector from 0x30 up (not the spurious one); the handler acknowledges the interrupt itself. */
void vector_set_handler(unsigned vector, void (*handler)(void));
/*
 * Runs fn(arg) at CPL 3 on its own stack and returns what it returns. fn gets back to CPL 0 by
 * executing int3 (done for it when it returns), so it must not do I/O or anything privileged.
 * Interrupts stay off while it runs.
 */
uint64_t run_user(uint64_t (*fn)(void *), void *arg);
/* CS the CPU saw when the last run_user function came back (its int3's frame). */
extern uint64_t user_cs;

/* Powers off: i8042 reset, and if the VMM ignores that, a triple fault. */
NORETURN void shutdown(void);
/* Loads an empty IDT and executes ud2: #UD cannot be delivered, nor #GP, nor #DF. */
NORETURN void triple_fault(void);

#endif

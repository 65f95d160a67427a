/* Polled output on the COM1 16550, and a small printf. */
#include "lib.h"

#define LSR 5
#define LSR_THRE 0x20

static bool console_crlf;

void console_init(bool crlf)
{
	console_crlf = crlf;
}

static void uart_tx(char c)
{
	while (!(inb(COM1 + LSR) & LSR_THRE))
		;
	outb(COM1, c);
}

void console_putc(char c)
{
	if (c == '\n' && console_crlf)
		uart_tx('\r');
	uart_tx(c);
}

void console_write(const char *s, size_t n)
{
	while (n--)
		console_putc(*s++);
}

void console_puts(const char *s)
{
	while (*s)
		console_putc(*s++);
}

/* `v` in `base`, zero-padded to at least `width` digits. */
static void put_unsigned(uint64_t v, unsigned base, int width)
{
	char buf[24];
	int i = 0;

	do {
		buf[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (i < width && i < (int)sizeof(buf))
		buf[i++] = '0';
	while (i)
		console_putc(buf[--i]);
}

void kvprintf(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			console_putc(*fmt);
			continue;
		}
		fmt++;
		int width = 0; /* only zero padding ("%02u") is supported */
		if (*fmt == '0')
			while (*fmt >= '0' && *fmt <= '9')
				width = width * 10 + (*fmt++ - '0');
		int precision = -1;
		if (fmt[0] == '.' && fmt[1] == '*') {
			precision = va_arg(ap, int);
			fmt += 2;
		}
		int longs = 0;
		while (*fmt == 'l' || *fmt == 'z') {
			longs += *fmt == 'z' ? 2 : 1;
			fmt++;
		}
		uint64_t u;
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (precision >= 0)
				console_write(s, precision);
			else
				console_puts(s);
			break;
		}
		case 'c':
			console_putc((char)va_arg(ap, int));
			break;
		case 'd': {
			int64_t d = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
			if (d < 0)
				console_putc('-');
			put_unsigned(d < 0 ? -(uint64_t)d : (uint64_t)d, 10, width);
			break;
		}
		case 'u':
		case 'x':
			u = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			put_unsigned(u, *fmt == 'u' ? 10 : 16, width);
			break;
		case '%':
			console_putc('%');
			break;
		case '\0':
			return;
		default:
			console_putc('%');
			console_putc(*fmt);
		}
	}
}

void kprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
}

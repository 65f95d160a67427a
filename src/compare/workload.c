/*
 * The native and container side of `tsvmm compare`: the same work the test guests do in the VM,
 * as a small static program (gcc -static, so it runs in the busybox rootfs too). Built by the
 * harness (src/compare/workload.ts). Every line goes out with one write(2), unbuffered, so the
 * harness can timestamp it as it arrives.
 *
 *   compare-work hello                        prints "work: hello" and exits (start latency)
 *   compare-work lcg N                        "work: lcg start", N steps of the LCG test.elf runs at
 *                                             CPL 3 (mode=cpl3), "work: lcg done result=0x... ns=T"
 *   compare-work syscalls N                   "work: syscalls start", N getppid(2) system calls,
 *                                             "work: syscalls done N ns=T"
 *   compare-work stream FILE read|write SIZE REQ
 *                                             "work: stream start", SIZE bytes from offset 0 in
 *                                             pread/pwrite of REQ bytes, "work: stream done SIZE ns=T"
 *
 * T is the pass's own time in nanoseconds (CLOCK_MONOTONIC, read right around the loop).
 *   compare-work hold                         "work: holding", then sleeps until SIGTERM (exit 0)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line || write(STDOUT_FILENO, line, (size_t)n) != n)
		exit(1);
}

/* CLOCK_MONOTONIC in ns: each pass is also timed here, so that its figure does not include the
 * latency of a pipe and the harness's event loop (~0.1-1 ms, as much as a short pass takes). */
static unsigned long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static unsigned long long number(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || end == s) {
		fprintf(stderr, "compare-work: bad number \"%s\"\n", s);
		exit(2);
	}
	return v;
}

/* The loop of guests/test.c (lcg_loop): Knuth's MMIX constants, one dependent multiply-add a step. */
static uint64_t lcg(uint64_t n)
{
	uint64_t x = 0;
	for (uint64_t i = 0; i < n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		__asm__("" : "+r"(x));
	}
	return x;
}

static int stream(const char *file, const char *dir, unsigned long long size, unsigned long long req)
{
	int writing = !strcmp(dir, "write");
	if (!writing && strcmp(dir, "read")) {
		fprintf(stderr, "compare-work: stream: read or write, not \"%s\"\n", dir);
		return 2;
	}
	if (!req || size % req) {
		fprintf(stderr, "compare-work: stream: SIZE must be a multiple of REQ (> 0)\n");
		return 2;
	}
	int fd = open(file, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "compare-work: %s: %s\n", file, strerror(errno));
		return 1;
	}
	char *buf;
	if (posix_memalign((void **)&buf, 4096, req)) {
		fprintf(stderr, "compare-work: cannot allocate %llu bytes\n", req);
		return 1;
	}
	memset(buf, 0x5a, req);
	say("work: stream start\n");
	unsigned long long t0 = now_ns();
	for (unsigned long long off = 0; off < size; off += req) {
		ssize_t n = writing ? pwrite(fd, buf, req, (off_t)off) : pread(fd, buf, req, (off_t)off);
		if (n != (ssize_t)req) {
			fprintf(stderr, "compare-work: %s at %llu: %s\n", dir, off, n < 0 ? strerror(errno) : "short");
			return 1;
		}
	}
	unsigned long long t1 = now_ns();
	say("work: stream done %llu ns=%llu\n", size, t1 - t0);
	close(fd);
	return 0;
}

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "hello") && argc == 2) {
		say("work: hello\n");
		return 0;
	}
	if (!strcmp(mode, "lcg") && argc == 3) {
		uint64_t n = number(argv[2]);
		say("work: lcg start\n");
		unsigned long long t0 = now_ns();
		uint64_t x = lcg(n);
		unsigned long long t1 = now_ns();
		say("work: lcg done result=0x%llx ns=%llu\n", (unsigned long long)x, t1 - t0);
		return 0;
	}
	if (!strcmp(mode, "syscalls") && argc == 3) {
		unsigned long long n = number(argv[2]);
		say("work: syscalls start\n");
		unsigned long long t0 = now_ns();
		for (unsigned long long i = 0; i < n; i++)
			syscall(SYS_getppid);
		unsigned long long t1 = now_ns();
		say("work: syscalls done %llu ns=%llu\n", n, t1 - t0);
		return 0;
	}
	if (!strcmp(mode, "stream") && argc == 6)
		return stream(argv[2], argv[3], number(argv[4]), number(argv[5]));
	if (!strcmp(mode, "hold") && argc == 2) {
		signal(SIGTERM, on_term);
		say("work: holding\n");
		for (;;)
			pause();
	}
	fprintf(stderr, "usage: compare-work hello | lcg N | syscalls N | stream FILE read|write SIZE REQ | hold\n");
	return 2;
}

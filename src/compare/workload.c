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
 *   compare-work udp-send ADDR PORT SIZE MS   "knock"s at ADDR:PORT until it answers, "work: udp
 *                                             send start", SIZE-byte UDP datagrams to ADDR:PORT as
 *                                             fast as send(2) takes them for MS ms, then END_MARKS
 *                                             "end"s, "work: udp sent packets=N bytes=B ns=T"
 *   compare-work udp-recv ADDR PORT SIZE      binds ADDR:PORT (0: any free port), "work: udp
 *                                             listening port=P", answers knocks with "ready",
 *                                             counts SIZE-byte datagrams until an "end" or IDLE_MS
 *                                             without any, "work: udp received packets=N bytes=B
 *                                             ns=T", T from the first datagram to the last (a
 *                                             receiver's time: what the guest driver, mode=net
 *                                             op=stream, reports too)
 *
 * The knock is there so that the stream starts on a path that works both ways: a first ARP
 * request lost while a container or tap has just come up otherwise leaves the stream queued
 * behind a neighbour entry that resolves only after the retry a second later.
 *
 * T is the pass's own time in nanoseconds (CLOCK_MONOTONIC, read right around the loop).
 *   compare-work hold                         "work: holding", then sleeps until SIGTERM (exit 0)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

/* ---- UDP streams (the network figures) ---- */

#define END_MARKS	5
#define KNOCKS		50	/* 200 ms apart */
#define IDLE_MS		300
#define FIRST_WAIT_S	30
#define RCVBUF		(4 << 20)

static int udp_socket(const char *addr, unsigned long long port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (port > 65535 || inet_pton(AF_INET, addr, &sa->sin_addr) != 1) {
		fprintf(stderr, "compare-work: bad address %s:%llu\n", addr, port);
		exit(2);
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		fprintf(stderr, "compare-work: socket: %s\n", strerror(errno));
		exit(1);
	}
	return fd;
}

static void check_size(unsigned long long size)
{
	if (size < 16 || size > 65507) {
		fprintf(stderr, "compare-work: SIZE is 16 to 65507 bytes\n");
		exit(2);
	}
}

static int udp_send(const char *addr, unsigned long long port, unsigned long long size, unsigned long long ms)
{
	struct sockaddr_in sa;
	check_size(size);
	int fd = udp_socket(addr, port, &sa);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "compare-work: connect %s:%llu: %s\n", addr, port, strerror(errno));
		return 1;
	}
	char *buf = calloc(1, size); /* zeros, as the guest's (guests/virtio.c) */
	if (!buf)
		return 1;
	struct timeval wait = { 0, 200000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
	for (int i = 0;; i++) {
		char answer[8];
		(void)!send(fd, "knock", 5, 0);
		if (recv(fd, answer, sizeof answer, 0) > 0)
			break;
		if (i == KNOCKS) {
			fprintf(stderr, "compare-work: no answer from %s:%llu\n", addr, port);
			return 1;
		}
	}
	unsigned long long packets = 0, t0, t1, until;
	say("work: udp send start\n");
	t0 = now_ns();
	until = t0 + ms * 1000000ull;
	for (t1 = t0; t1 < until; t1 = now_ns()) {
		/* The clock is read once per 16 datagrams: a send takes a few microseconds. */
		for (int i = 0; i < 16; i++) {
			ssize_t n = send(fd, buf, size, 0);
			if (n == (ssize_t)size)
				packets++;
			else if (n < 0 && errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED && errno != EINTR) {
				fprintf(stderr, "compare-work: send: %s\n", strerror(errno));
				return 1;
			}
		}
	}
	/* The end: short datagrams, a few in case one is lost, after the last full one. */
	for (int i = 0; i < END_MARKS; i++) {
		usleep(2000);
		(void)!send(fd, "end", 3, 0);
	}
	say("work: udp sent packets=%llu bytes=%llu ns=%llu\n", packets, packets * size, t1 - t0);
	return 0;
}

static int udp_recv(const char *addr, unsigned long long port, unsigned long long size)
{
	struct sockaddr_in sa;
	check_size(size);
	int fd = udp_socket(addr, port, &sa);
	int rcvbuf = RCVBUF;
	/* A big buffer so that the socket, not the path, is seldom what drops (FORCE: past rmem_max, as root). */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	socklen_t len = sizeof sa;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		fprintf(stderr, "compare-work: bind %s:%llu: %s\n", addr, port, strerror(errno));
		return 1;
	}
	char *buf = malloc(size + 1);
	if (!buf)
		return 1;
	struct timeval wait = { FIRST_WAIT_S, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
	say("work: udp listening port=%u\n", ntohs(sa.sin_port));
	unsigned long long packets = 0, first = 0, last = 0;
	for (;;) {
		struct sockaddr_in from;
		socklen_t from_len = sizeof from;
		ssize_t n = recvfrom(fd, buf, size + 1, 0, (struct sockaddr *)&from, &from_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && packets)
			break; /* idle: the end marks were lost */
		if (n < 0) {
			fprintf(stderr, "compare-work: recv: %s\n", errno == EAGAIN ? "nothing arrived" : strerror(errno));
			return 1;
		}
		if (n != (ssize_t)size) {
			if (n == 5 && !memcmp(buf, "knock", 5) && !packets)
				(void)!sendto(fd, "ready", 5, 0, (struct sockaddr *)&from, from_len);
			else if (n == 3 && !memcmp(buf, "end", 3) && packets)
				break;
			continue; /* a late knock, or an earlier sender's end */
		}
		last = now_ns();
		if (!packets++) {
			first = last;
			wait = (struct timeval){ IDLE_MS / 1000, IDLE_MS % 1000 * 1000 };
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
		}
	}
	say("work: udp received packets=%llu bytes=%llu ns=%llu\n", packets, packets * size, last - first);
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
	if (!strcmp(mode, "udp-send") && argc == 6)
		return udp_send(argv[2], number(argv[3]), number(argv[4]), number(argv[5]));
	if (!strcmp(mode, "udp-recv") && argc == 5)
		return udp_recv(argv[2], number(argv[3]), number(argv[4]));
	if (!strcmp(mode, "hold") && argc == 2) {
		signal(SIGTERM, on_term);
		say("work: holding\n");
		for (;;)
			pause();
	}
	fprintf(stderr, "usage: compare-work hello | lcg N | syscalls N | stream FILE read|write SIZE REQ\n"
		"       | udp-send ADDR PORT SIZE MS | udp-recv ADDR PORT SIZE | hold\n");
	return 2;
}

/*
 * The host side of bench/virtio-blk.mjs: reads or writes a file sequentially from offset 0 with
 * pread/pwrite of REQ bytes each, through the page cache (no O_DIRECT, no fsync), as a program on
 * the host would, and prints the two lines the guest prints around the same work:
 *
 *   blk-stream FILE read|write SIZE REQ
 *   host: stream start          right before the first request
 *   host: stream done SIZE      after the last one
 *
 * One buffer of REQ bytes, touched before the start line. Exits 1 with a message on stderr if a
 * request fails or comes up short.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void say(const char *line)
{
	size_t n = strlen(line);
	if (write(STDOUT_FILENO, line, n) != (ssize_t)n)
		exit(1);
}

int main(int argc, char **argv)
{
	if (argc != 5 || (strcmp(argv[2], "read") && strcmp(argv[2], "write"))) {
		fprintf(stderr, "usage: blk-stream FILE read|write SIZE REQ\n");
		return 2;
	}
	int writing = !strcmp(argv[2], "write");
	char *end;
	unsigned long long size = strtoull(argv[3], &end, 0);
	unsigned long long req = *end ? 0 : strtoull(argv[4], &end, 0);
	if (*end || !req || size % req) {
		fprintf(stderr, "blk-stream: SIZE must be a multiple of REQ (> 0)\n");
		return 2;
	}
	int fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "blk-stream: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	void *buf;
	if (posix_memalign(&buf, 4096, req)) {
		fprintf(stderr, "blk-stream: cannot allocate %llu bytes\n", req);
		return 1;
	}
	memset(buf, 0, req);

	say("host: stream start\n");
	for (unsigned long long off = 0; off < size; off += req) {
		ssize_t n = writing ? pwrite(fd, buf, req, off) : pread(fd, buf, req, off);
		if (n != (ssize_t)req) {
			fprintf(stderr, "blk-stream: %s at %llu: %s\n", argv[2], off,
				n < 0 ? strerror(errno) : "short transfer");
			return 1;
		}
	}
	char line[64];
	snprintf(line, sizeof(line), "host: stream done %llu\n", size);
	say(line);
	return 0;
}

/*
 * cmp-mmap: map a file of the mount and compare every byte with the
 * original, so the page-fault path (not only read()) is checked.
 *
 *   cmp-mmap MOUNTED ORIGINAL
 *
 * Touches the mapping out of order (last page, first page, then the rest)
 * to get faults that readahead did not predict. Exit 0 when identical,
 * 1 on a difference or error (with the first differing offset).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMP_CHUNK (1024 * 1024)

/* Compare map[off, off+len) with the original fd; 0 or -errno/-EILSEQ. */
static int cmp_range(const unsigned char *map, int ofd, off_t off, size_t len,
		     unsigned char *buf)
{
	while (len > 0) {
		size_t n = len < CMP_CHUNK ? len : CMP_CHUNK;
		ssize_t r = pread(ofd, buf, n, off);

		if (r < 0)
			return -errno;
		if ((size_t)r != n)
			return -EIO;
		if (memcmp(map + off, buf, n) != 0) {
			size_t i = 0;

			while (map[off + i] == buf[i])
				i++;
			fprintf(stderr, "cmp-mmap: differ at offset %jd\n",
				(intmax_t)(off + i));
			return -EILSEQ;
		}
		off += n;
		len -= n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct stat ms, os;
	unsigned char *map, *buf;
	long pg = sysconf(_SC_PAGESIZE);
	int mfd, ofd, ret;

	if (argc != 3) {
		fprintf(stderr, "usage: cmp-mmap MOUNTED ORIGINAL\n");
		return 2;
	}
	mfd = open(argv[1], O_RDONLY);
	ofd = open(argv[2], O_RDONLY);
	if (mfd < 0 || ofd < 0 || fstat(mfd, &ms) || fstat(ofd, &os)) {
		perror("cmp-mmap: open");
		return 1;
	}
	if (ms.st_size != os.st_size) {
		fprintf(stderr, "cmp-mmap: size %jd, want %jd\n",
			(intmax_t)ms.st_size, (intmax_t)os.st_size);
		return 1;
	}
	if (ms.st_size == 0)
		return 0;
	map = mmap(NULL, ms.st_size, PROT_READ, MAP_PRIVATE, mfd, 0);
	buf = malloc(CMP_CHUNK);
	if (map == MAP_FAILED || !buf) {
		perror("cmp-mmap: mmap");
		return 1;
	}
	ret = 0;
	if (ms.st_size > 2 * pg) {
		off_t last = (ms.st_size - 1) / pg * pg;

		ret = cmp_range(map, ofd, last, ms.st_size - last, buf);
		if (!ret)
			ret = cmp_range(map, ofd, 0, pg, buf);
	}
	if (!ret)
		ret = cmp_range(map, ofd, 0, ms.st_size, buf);
	if (ret && ret != -EILSEQ)
		fprintf(stderr, "cmp-mmap: %s\n", strerror(-ret));
	munmap(map, ms.st_size);
	free(buf);
	return ret ? 1 : 0;
}

/*
 * Test driver for libcofault and the preload shim: maps files with
 * cofault_mmap2() or with plain mmap() (which the shim intercepts when
 * preloaded) and checks every byte against pread(). One mode per argv[1]:
 *
 *   lib FILE          cofault_mmap2: prints "how=NAME probe=ERRNAME", checks
 *                     that failures set the errno mmap(2) sets
 *   read FILE         mmap() the whole file, compare, print "ok SIZE FNV"
 *   errno FILE        mmap() failures give the kernel's errno, successes keep
 *                     errno; prints "ok errno"
 *   closefds FILE     the library survives its device fd being closed and
 *                     the number reused behind its back
 *   mremap FILE       a one-page cofault_mmap2() mapping grown by mremap()
 *                     to the whole file reads right
 *   fork FILE N       map, start mapping threads, fork N children that read
 *                     through the inherited mapping and map the file anew
 *   threads FILE N    N threads each map, check and unmap the file in a loop
 *
 * Exit status 0 when every check held; messages on stderr otherwise.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cofault.h>

static const char *check_file;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "preload-check: %s:%d: ", __func__,    \
				__LINE__);                                     \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, "\n");                                 \
			exit(1);                                               \
		}                                                              \
	} while (0)

static uint64_t check_fnv(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int check_open(struct stat *st)
{
	int fd = open(check_file, O_RDONLY | O_CLOEXEC);

	CHECK(fd >= 0, "open %s: %s", check_file, strerror(errno));
	CHECK(fstat(fd, st) == 0 && st->st_size > 0, "%s: empty", check_file);
	return fd;
}

/*
 * The mapping must hold exactly what pread() returns. Each chunk is read
 * through the mapping first: pread() would fill the page cache, and then
 * the fault would be served by fault-around without reaching the module,
 * which the guest tests count on.
 */
static void check_same(int fd, const unsigned char *map, off_t off, size_t len)
{
	unsigned char buf[65536], mapped[65536];
	size_t done = 0, want;
	ssize_t n;

	while (done < len) {
		want = len - done < sizeof(buf) ? len - done : sizeof(buf);
		memcpy(mapped, map + done, want);
		n = pread(fd, buf, want, off + (off_t)done);
		CHECK(n == (ssize_t)want, "pread at %lld: %s",
		      (long long)(off + done),
		      n < 0 ? strerror(errno) : "short read");
		CHECK(memcmp(buf, mapped, want) == 0,
		      "mapping differs from pread in [%lld, %lld)",
		      (long long)(off + done), (long long)(off + done + want));
		done += want;
	}
}

/* The kernel's own answer, bypassing every mmap wrapper. */
static int check_sys_errno(void *addr, size_t len, int prot, int flags, int fd,
			   off_t off)
{
	long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);

	if (r == -1)
		return errno;
	munmap((void *)r, len);
	return 0;
}

static const char *check_errname(int err)
{
	const char *s = strerrorname_np(err);

	return err == 0 ? "0" : s ? s : "?";
}

static int check_mode_lib(void)
{
	struct stat st;
	int fd = check_open(&st), how, dirfd, err;
	size_t len = (size_t)st.st_size;
	unsigned char *p;

	errno = EDOM;
	p = cofault_mmap2(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0, &how);
	CHECK(p != MAP_FAILED, "cofault_mmap2: %s", strerror(errno));
	CHECK(errno == EDOM, "errno changed on success: %d", errno);
	CHECK(how == COFAULT_HOW_DEVICE || how == COFAULT_HOW_MMAP, "how=%d",
	      how);
	check_same(fd, p, 0, len);
	CHECK(munmap(p, len) == 0, "munmap: %s", strerror(errno));
	err = cofault_probe(fd);
	printf("how=%s probe=%s\n", cofault_how_name(how), check_errname(-err));
	/* The device path and the probe must agree. */
	CHECK((how == COFAULT_HOW_DEVICE) == (err == 0), "how %s but probe %d",
	      cofault_how_name(how), err);

	/* Nor is an executable mapping: the module's mmap-time security
	 * checks would see its own file. Plain mmap, or its refusal. */
	p = cofault_mmap2(NULL, len, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0,
			  &how);
	CHECK(p == MAP_FAILED ? how == COFAULT_HOW_NONE
			      : how == COFAULT_HOW_MMAP,
	      "PROT_EXEC: how=%s", cofault_how_name(how));
	if (p != MAP_FAILED)
		munmap(p, len);

	/* Anonymous memory is never the device's. */
	p = cofault_mmap2(NULL, 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &how);
	CHECK(p != MAP_FAILED && how == COFAULT_HOW_MMAP, "anonymous: how=%d",
	      how);
	p[0] = 1;
	munmap(p, 4096);

	/* Failures: MAP_FAILED, how=none, errno as mmap(2) sets it. */
	p = cofault_mmap2(NULL, 4096, PROT_READ, MAP_PRIVATE, -1, 0, &how);
	CHECK(p == MAP_FAILED && errno == EBADF && how == COFAULT_HOW_NONE,
	      "fd -1: errno %d how %d", errno, how);
	p = cofault_mmap2(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 1, &how);
	CHECK(p == MAP_FAILED && errno == EINVAL, "offset 1: errno %d", errno);
	p = cofault_mmap2(NULL, 0, PROT_READ, MAP_PRIVATE, fd, 0, &how);
	CHECK(p == MAP_FAILED && errno == EINVAL, "length 0: errno %d", errno);
	p = cofault_mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p == MAP_FAILED && errno == EACCES, "shared write: errno %d",
	      errno);
	dirfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(cofault_probe(dirfd) == -EINVAL, "probe of a directory");
	p = cofault_mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, dirfd, 0);
	CHECK(p == MAP_FAILED && errno == ENODEV, "directory: errno %d", errno);
	close(dirfd);
	CHECK(cofault_probe(1000000) == -EBADF, "probe of a bad fd");
	printf("device=%s\n", check_errname(-cofault_probe(-1)));
	close(fd);
	return 0;
}

/* The descriptor this process has open on /dev/cofault, or -1. */
static int check_find_device_fd(void)
{
	char path[64], target[64];
	ssize_t n;
	int fd;

	for (fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (!strcmp(target, "/dev/cofault"))
			return fd;
	}
	return -1;
}

/*
 * A program closes the library's device descriptor behind its back and the
 * number is reused for another file: the library must notice, leave that
 * file alone and open the device again. Before that, with stdin closed,
 * the device must not take fd 0: a program expects the lowest free number
 * for its own next open (a daemon reopening /dev/null on 0 to 2).
 */
static int check_mode_closefds(void)
{
	struct stat st;
	int fd = check_open(&st), how1, how2, dev, other;
	size_t len = (size_t)st.st_size;
	unsigned char *p;

	close(0);
	p = cofault_mmap2(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0, &how1);
	CHECK(p != MAP_FAILED, "cofault_mmap2: %s", strerror(errno));
	munmap(p, len);
	dev = check_find_device_fd();
	CHECK(dev != 0, "the device took fd 0");
	CHECK(fcntl(0, F_GETFD) < 0, "fd 0 is open after the mapping");
	if (dev >= 0) {
		close(dev);
		other = open("/dev/null", O_RDONLY | O_CLOEXEC);
		CHECK(other >= 0, "open /dev/null");
		if (other != dev) {
			CHECK(dup2(other, dev) == dev, "dup2");
			close(other);
		}
	}
	p = cofault_mmap2(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0, &how2);
	CHECK(p != MAP_FAILED, "cofault_mmap2 again: %s", strerror(errno));
	check_same(fd, p, 0, len);
	munmap(p, len);
	CHECK(how1 == how2, "first %s, then %s", cofault_how_name(how1),
	      cofault_how_name(how2));
	if (dev >= 0)
		CHECK(fcntl(dev, F_GETFD) >= 0,
		      "the descriptor that replaced the device was closed");
	printf("ok closefds how=%s device_fd_replaced=%d\n",
	       cofault_how_name(how2), dev >= 0);
	close(fd);
	return 0;
}

/*
 * mremap() of a mapping cofault_mmap2() made: grown (and probably moved)
 * from one page to the whole file, it must read right everywhere.
 */
static int check_mode_mremap(void)
{
	struct stat st;
	int fd = check_open(&st), how;
	size_t len = (size_t)st.st_size, page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *p, *q;

	p = cofault_mmap2(NULL, page, PROT_READ, MAP_PRIVATE, fd, 0, &how);
	CHECK(p != MAP_FAILED, "cofault_mmap2: %s", strerror(errno));
	check_same(fd, p, 0, len < page ? len : page);
	q = mremap(p, page, len, MREMAP_MAYMOVE);
	CHECK(q != MAP_FAILED, "mremap: %s", strerror(errno));
	check_same(fd, q, 0, len);
	munmap(q, len);
	printf("ok mremap how=%s\n", cofault_how_name(how));
	close(fd);
	return 0;
}

static int check_mode_read(void)
{
	struct stat st;
	int fd = check_open(&st);
	size_t len = (size_t)st.st_size;
	unsigned char *p;

	p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	check_same(fd, p, 0, len);
	printf("ok %zu %016" PRIx64 "\n", len, check_fnv(p, len));
	munmap(p, len);
	close(fd);
	return 0;
}

/* mmap(args) must fail exactly as the system call does. */
static void check_errno_case(const char *what, void *addr, size_t len, int prot,
			     int flags, int fd, off_t off)
{
	int want = check_sys_errno(addr, len, prot, flags, fd, off);
	void *p;

	CHECK(want != 0, "%s: the kernel accepted it", what);
	errno = 0;
	p = mmap(addr, len, prot, flags, fd, off);
	CHECK(p == MAP_FAILED && errno == want, "%s: errno %s, want %s", what,
	      check_errname(errno), check_errname(want));
}

static int check_mode_errno(void)
{
	struct stat st;
	int fd = check_open(&st), dirfd, closed;
	void *p;

	/* Success leaves errno alone, for the device path and the plain one. */
	errno = EDOM;
	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(p != MAP_FAILED && errno == EDOM, "success changed errno to %d",
	      errno);
	munmap(p, 4096);
	errno = EDOM;
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED && errno == EDOM, "shared: errno %d", errno);
	munmap(p, 4096);

	dirfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	closed = dup(fd);
	close(closed);
	check_errno_case("fd -1", NULL, 4096, PROT_READ, MAP_PRIVATE, -1, 0);
	check_errno_case("closed fd", NULL, 4096, PROT_READ, MAP_PRIVATE,
			 closed, 0);
	check_errno_case("offset 1", NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 1);
	check_errno_case("length 0", NULL, 0, PROT_READ, MAP_PRIVATE, fd, 0);
	check_errno_case("shared writable on O_RDONLY", NULL, 4096,
			 PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	check_errno_case("directory", NULL, 4096, PROT_READ, MAP_PRIVATE, dirfd,
			 0);
	check_errno_case("no MAP_PRIVATE/SHARED", NULL, 4096, PROT_READ, 0, fd,
			 0);
	check_errno_case("unaligned MAP_FIXED", (void *)4097, 4096, PROT_READ,
			 MAP_PRIVATE | MAP_FIXED, fd, 0);
	close(dirfd);
	close(fd);
	printf("ok errno\n");
	return 0;
}

struct check_loop {
	size_t len;
	int rounds;
};

/* Rounds of len bytes that read about budget bytes, 2 to 200. */
static int check_rounds(size_t len, size_t budget)
{
	size_t r = budget / len;

	return r < 2 ? 2 : r > 200 ? 200 : (int)r;
}

/* Map, verify, unmap, again: concurrent first uses race in the shim. */
static void *check_loop_thread(void *arg)
{
	const struct check_loop *l = arg;
	struct stat st;
	int fd = check_open(&st), i;
	unsigned char *p;

	for (i = 0; i < l->rounds; i++) {
		p = mmap(NULL, l->len, PROT_READ, MAP_PRIVATE, fd, 0);
		CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
		check_same(fd, p, 0, l->len);
		munmap(p, l->len);
	}
	close(fd);
	return NULL;
}

static int check_mode_threads(int n)
{
	struct check_loop l;
	pthread_t t[64];
	struct stat st;
	int fd = check_open(&st), i;

	close(fd);
	CHECK(n > 0 && n <= 64, "1..64 threads");
	l.len = (size_t)st.st_size;
	l.rounds = check_rounds(l.len, (64u << 20) / (unsigned int)n);
	for (i = 0; i < n; i++)
		CHECK(pthread_create(&t[i], NULL, check_loop_thread, &l) == 0,
		      "pthread_create");
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	printf("ok threads %d\n", n);
	return 0;
}

static int check_mode_fork(int n)
{
	struct check_loop l;
	struct stat st;
	int fd = check_open(&st), i, status, failed = 0;
	size_t len = (size_t)st.st_size, part;
	unsigned char *p;
	pthread_t t[2];
	pid_t pid;

	CHECK(n > 0 && n <= 64, "1..64 children");
	l.len = len;
	l.rounds = check_rounds(len, 32u << 20);
	p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	/* Threads mapping while we fork: nothing may be caught held. */
	for (i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, check_loop_thread, &l) == 0,
		      "pthread_create");
	part = (len + (size_t)n - 1) / (size_t)n;
	for (i = 0; i < n; i++) {
		pid = fork();
		CHECK(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			size_t off = part * (size_t)i, sz;
			unsigned char *q;

			if (off < len) {
				sz = len - off < part ? len - off : part;
				check_same(fd, p + off, (off_t)off, sz);
			}
			/* The shim, and the device fd, in the child. */
			q = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
			CHECK(q != MAP_FAILED, "child mmap: %s",
			      strerror(errno));
			check_same(fd, q, 0, len);
			_exit(0);
		}
	}
	for (i = 0; i < n; i++) {
		CHECK(wait(&status) > 0, "wait: %s", strerror(errno));
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK(failed == 0, "%d of %d children failed", failed, n);
	check_same(fd, p, 0, len);
	munmap(p, len);
	close(fd);
	printf("ok fork %d\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: preload-check "
				"lib|read|errno|closefds|mremap|fork|threads "
				"FILE [N]\n");
		return 2;
	}
	check_file = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "lib"))
		return check_mode_lib();
	if (!strcmp(argv[1], "closefds"))
		return check_mode_closefds();
	if (!strcmp(argv[1], "mremap"))
		return check_mode_mremap();
	if (!strcmp(argv[1], "read"))
		return check_mode_read();
	if (!strcmp(argv[1], "errno"))
		return check_mode_errno();
	if (!strcmp(argv[1], "fork"))
		return check_mode_fork(argc > 3 ? atoi(argv[3]) : 4);
	if (!strcmp(argv[1], "threads"))
		return check_mode_threads(argc > 3 ? atoi(argv[3]) : 8);
	fprintf(stderr, "preload-check: unknown mode %s\n", argv[1]);
	return 2;
}

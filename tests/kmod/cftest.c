/*
 * cftest: the guest-side probe of the kernel-module tests. Each subcommand
 * maps a file either through /dev/cofault ("cofault") or directly ("plain"),
 * does one thing to the mapping and prints one "key=value ..." line that
 * tests/kmod/guest.sh turns into a check result. Exit 0 when the data was
 * right, 1 when not, 2 on usage or setup errors.
 *
 * Files made by "gen" hold a pattern derived from the offset, so any page can
 * be verified without a second copy of the file.
 */
#define _GNU_SOURCE /* O_PATH */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <linux/cofault.h>

#define PAGE 4096UL

static uint64_t pattern_word(uint64_t off)
{
	return (off / 8) * 0x9E3779B97F4A7C15ULL + 0x0123456789ABCDEFULL;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "cftest: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Open /dev/cofault and negotiate; exits on failure. */
static int dev_open(void)
{
	struct cofault_api api = {.api = COFAULT_API,
				  .features = COFAULT_FEATURES_ALL};
	int dev = open(COFAULT_DEVICE, O_RDWR | O_CLOEXEC);

	if (dev < 0)
		die(COFAULT_DEVICE);
	if (ioctl(dev, COFAULT_IOC_API, &api) < 0)
		die("COFAULT_IOC_API");
	return dev;
}

/* mmap @len bytes of @path: through the device if @cofault, else plainly. */
static void *map_file(bool cofault, const char *path, size_t len, int prot,
		      int flags)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int mfd = fd;
	void *p;

	if (fd < 0)
		die(path);
	if (cofault) {
		int dev = dev_open();
		struct cofault_map m = {.fd = fd, .flags = COFAULT_MAP_CLOEXEC};

		if (ioctl(dev, COFAULT_IOC_MAP, &m) < 0)
			die("COFAULT_IOC_MAP");
		mfd = m.map_fd;
		close(dev);
	}
	p = mmap(NULL, len, prot, flags, mfd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	if (mfd != fd)
		close(mfd);
	close(fd);
	return p;
}

static size_t file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		die(path);
	return st.st_size;
}

static bool parse_mode(const char *s)
{
	if (!strcmp(s, "cofault"))
		return true;
	if (!strcmp(s, "plain"))
		return false;
	fprintf(stderr, "cftest: mode must be cofault or plain\n");
	exit(2);
}

/* Verify the pattern over [off, off + len) of a mapping of the whole file. */
static bool check_range(const unsigned char *base, uint64_t off, size_t len)
{
	uint64_t o;

	for (o = off & ~7ULL; o + 8 <= off + len; o += 8) {
		uint64_t w;

		memcpy(&w, base + o, 8);
		if (w != pattern_word(o)) {
			fprintf(stderr, "cftest: mismatch at %" PRIu64 "\n", o);
			return false;
		}
	}
	return true;
}

/* gen FILE SIZE: write the pattern. */
static int cmd_gen(char **av)
{
	size_t size = strtoull(av[1], NULL, 0), off;
	static uint64_t buf[1 << 16];
	FILE *f = fopen(av[0], "w");

	if (!f)
		die(av[0]);
	for (off = 0; off < size; off += sizeof(buf)) {
		size_t n = size - off < sizeof(buf) ? size - off : sizeof(buf);
		size_t i;

		for (i = 0; i < sizeof(buf) / 8; i++)
			buf[i] = pattern_word(off + i * 8);
		if (fwrite(buf, 1, n, f) != n)
			die("write");
	}
	if (fclose(f))
		die("close");
	return 0;
}

/* cat MODE FILE: copy the whole mapping to stdout. */
static int cmd_cat(char **av)
{
	bool cofault = parse_mode(av[0]);
	size_t size = file_size(av[1]), done = 0;
	unsigned char *p;

	if (size == 0) {
		/* Nothing to map, but the device must still accept the file. */
		if (cofault) {
			int fd = open(av[1], O_RDONLY), dev = dev_open();
			struct cofault_map m = {.fd = fd};

			if (ioctl(dev, COFAULT_IOC_MAP, &m) < 0)
				die("COFAULT_IOC_MAP");
		}
		return 0;
	}
	p = map_file(cofault, av[1], size, PROT_READ, MAP_SHARED);
	while (done < size) {
		ssize_t n = write(1, p + done, size - done);

		if (n <= 0)
			die("write");
		done += n;
	}
	return 0;
}

struct thr {
	const unsigned char *base;
	size_t pages;
	unsigned int n, seed;
	atomic_bool *bad;
};

static void *thr_run(void *arg)
{
	struct thr *t = arg;
	unsigned int i;

	for (i = 0; i < t->n; i++) {
		size_t pg = rand_r(&t->seed) % t->pages;

		if (!check_range(t->base, pg * PAGE, PAGE))
			atomic_store(t->bad, true);
	}
	return NULL;
}

/* threads MODE FILE NTHREADS PAGES_PER_THREAD: random pages, all verified. */
static int cmd_threads(char **av)
{
	bool cofault = parse_mode(av[0]);
	size_t size = file_size(av[1]);
	unsigned int n = atoi(av[2]), per = atoi(av[3]), i;
	const unsigned char *p =
		map_file(cofault, av[1], size, PROT_READ, MAP_SHARED);
	pthread_t tid[64];
	struct thr t[64];
	atomic_bool bad = false;
	double t0 = now_ms();

	if (n > 64)
		n = 64;
	for (i = 0; i < n; i++) {
		t[i] = (struct thr){.base = p,
				    .pages = size / PAGE,
				    .n = per,
				    .seed = 1234 + i,
				    .bad = &bad};
		pthread_create(&tid[i], NULL, thr_run, &t[i]);
	}
	for (i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	printf("threads=%u pages=%u ms=%.0f ok=%d\n", n, n * per, now_ms() - t0,
	       !bad);
	return bad;
}

/* private MODE FILE: a MAP_PRIVATE write changes only the private copy. */
static int cmd_private(char **av)
{
	bool cofault = parse_mode(av[0]);
	size_t size = file_size(av[1]);
	unsigned char *p = map_file(cofault, av[1], size,
				    PROT_READ | PROT_WRITE, MAP_PRIVATE);
	const unsigned char *q =
		map_file(cofault, av[1], size, PROT_READ, MAP_SHARED);
	unsigned char page[PAGE];
	int fd = open(av[1], O_RDONLY);
	bool ok = check_range(p, 0, PAGE);

	memset(p + 100, 0xAB, 64);
	ok = ok && p[100] == 0xAB && p[163] == 0xAB;
	ok = ok && check_range(q, 0, PAGE);
	if (pread(fd, page, PAGE, 0) != (ssize_t)PAGE)
		die("pread");
	ok = ok && check_range(page, 0, PAGE);
	printf("private ok=%d\n", ok);
	return !ok;
}

static volatile double alarm_at;

static void on_alarm(int sig)
{
	(void)sig;
	alarm_at = now_ms();
}

/*
 * sigalrm MODE FILE OFFSET: arm a 200 ms SIGALRM, touch an unfetched page;
 * report how late the handler ran and how long the touch took.
 */
static int cmd_sigalrm(char **av)
{
	bool cofault = parse_mode(av[0]);
	size_t size = file_size(av[1]);
	uint64_t off = strtoull(av[2], NULL, 0) & ~(PAGE - 1);
	const unsigned char *p =
		map_file(cofault, av[1], size, PROT_READ, MAP_SHARED);
	struct sigaction sa = {.sa_handler = on_alarm};
	struct itimerval it = {.it_value = {0, 200000}};
	volatile uint64_t w;
	double t0, t1;
	bool ok;

	sigaction(SIGALRM, &sa, NULL);
	t0 = now_ms();
	setitimer(ITIMER_REAL, &it, NULL);
	w = *(const volatile uint64_t *)(p + off);
	t1 = now_ms();
	ok = w == pattern_word(off) && check_range(p, off, PAGE);
	printf("late_ms=%.1f touch_ms=%.0f handler=%d ok=%d\n",
	       alarm_at ? alarm_at - t0 - 200 : -1, t1 - t0, alarm_at != 0, ok);
	return !ok;
}

struct lock_arg {
	const unsigned char *p;
	uint64_t off;
	atomic_bool done;
	bool ok;
};

static void *lock_toucher(void *arg)
{
	struct lock_arg *a = arg;

	a->ok = check_range(a->p, a->off, PAGE);
	atomic_store(&a->done, true);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * lock MODE FILE OFFSET: thread A touches an unfetched page; meanwhile
 * this thread times mmap, mprotect and munmap calls. Reports the slowest.
 */
static int cmd_lock(char **av)
{
	bool cofault = parse_mode(av[0]);
	size_t size = file_size(av[1]);
	struct lock_arg a = {.off = strtoull(av[2], NULL, 0) & ~(PAGE - 1)};
	double t0, worst = 0, ta, lat[300];
	unsigned int ops = 0;
	pthread_t tid;

	a.p = map_file(cofault, av[1], size, PROT_READ, MAP_SHARED);
	ta = now_ms();
	pthread_create(&tid, NULL, lock_toucher, &a);
	usleep(300000); /* let A get into its fault */
	while (!atomic_load(&a.done) && ops < 300) {
		void *q;
		double d;

		t0 = now_ms();
		q = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			 0);
		lat[ops++] = d = now_ms() - t0;
		worst = d > worst ? d : worst;
		t0 = now_ms();
		mprotect(q, PAGE, PROT_READ | PROT_WRITE);
		lat[ops++] = d = now_ms() - t0;
		worst = d > worst ? d : worst;
		t0 = now_ms();
		munmap(q, PAGE);
		lat[ops++] = d = now_ms() - t0;
		worst = d > worst ? d : worst;
		usleep(10000);
	}
	pthread_join(tid, NULL);
	qsort(lat, ops, sizeof(lat[0]), cmp_double);
	printf("max_ms=%.1f p50_ms=%.2f ops=%u touch_ms=%.0f ok=%d\n", worst,
	       ops ? lat[ops / 2] : 0, ops, now_ms() - ta, a.ok);
	return !a.ok;
}

/* touch MODE FILE OFFSET: one access, verified (SIGBUS kills us). */
static int cmd_touch(char **av)
{
	bool cofault = parse_mode(av[0]);
	size_t size = file_size(av[1]);
	uint64_t off = strtoull(av[2], NULL, 0) & ~(PAGE - 1);
	const unsigned char *p =
		map_file(cofault, av[1], size, PROT_READ, MAP_SHARED);
	double t0;
	bool ok;

	/* The daemon-death and kill checks wait for this line: a process
	 * still starting up (seconds under TCG) has not faulted yet. */
	fprintf(stderr, "touching\n");
	t0 = now_ms();
	ok = check_range(p, off, PAGE);
	printf("touch_ms=%.0f ok=%d\n", now_ms() - t0, ok);
	return !ok;
}

static void *flood_toucher(void *arg)
{
	const volatile unsigned char *p = arg;

	(void)*p;
	return NULL;
}

/*
 * flood MODE FILE NTHREADS: NTHREADS threads each touch the first page of
 * their own 64 KiB of the file (a window of the module's each). Says
 * "flooding" on stderr once all are started and "done" once all touched,
 * then waits to be killed.
 */
static int cmd_flood(char **av)
{
	bool cofault = parse_mode(av[0]);
	size_t size = file_size(av[1]);
	unsigned int n = atoi(av[2]), i;
	const unsigned char *p =
		map_file(cofault, av[1], size, PROT_READ, MAP_SHARED);
	pthread_t *tid = calloc(n, sizeof(*tid));
	pthread_attr_t attr;

	if (!tid || (size_t)n * 65536 > size) {
		fprintf(stderr, "cftest: flood: %u windows do not fit\n", n);
		return 2;
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (i = 0; i < n; i++)
		if (pthread_create(&tid[i], &attr, flood_toucher,
				   (void *)(p + (size_t)i * 65536)))
			die("pthread_create");
	fprintf(stderr, "flooding\n");
	for (i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	fprintf(stderr, "done\n");
	for (;;)
		pause();
	return 0;
}

/* Verify @len bytes at @buf against the pattern at file offset @off. */
static bool check_buf(const unsigned char *buf, uint64_t off, size_t len)
{
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, buf + i, 8);
		if (w != pattern_word(off + i))
			return false;
	}
	return true;
}

/*
 * kernel MODE FILE OFFSET: pages first reached by the kernel rather than by
 * user code: copy_from_user() in a pipe write (a kernel-mode fault, which
 * may retry but not be interrupted by a plain signal) and /proc/self/mem
 * (get_user_pages without FAULT_FLAG_ALLOW_RETRY: the lock-held path).
 */
static int cmd_kernel(char **av)
{
	bool cofault = parse_mode(av[0]);
	size_t size = file_size(av[1]);
	uint64_t off = strtoull(av[2], NULL, 0) & ~(PAGE - 1);
	uint64_t off2 = off + (1 << 20);
	const unsigned char *p =
		map_file(cofault, av[1], size, PROT_READ, MAP_SHARED);
	unsigned char buf[PAGE];
	bool pipe_ok, mem_ok;
	int pfd[2], mem;

	if (pipe(pfd) < 0)
		die("pipe");
	pipe_ok = write(pfd[1], p + off, PAGE) == (ssize_t)PAGE &&
		  read(pfd[0], buf, PAGE) == (ssize_t)PAGE &&
		  check_buf(buf, off, PAGE);
	mem = open("/proc/self/mem", O_RDONLY);
	if (mem < 0)
		die("/proc/self/mem");
	mem_ok = pread(mem, buf, PAGE, (off_t)(uintptr_t)(p + off2)) ==
			 (ssize_t)PAGE &&
		 check_buf(buf, off2, PAGE);
	printf("pipe_ok=%d mem_ok=%d ok=%d\n", pipe_ok, mem_ok,
	       pipe_ok && mem_ok);
	return !(pipe_ok && mem_ok);
}

/* hold MODE FILE: map, touch, say so, and wait to be killed. */
static int cmd_hold(char **av)
{
	bool cofault = parse_mode(av[0]);
	size_t size = file_size(av[1]);
	const volatile unsigned char *p =
		map_file(cofault, av[1], size, PROT_READ, MAP_SHARED);

	(void)p[0];
	printf("mapped\n");
	fflush(stdout);
	for (;;)
		pause();
	return 0;
}

static int expect_errno(const char *what, int ret, int want, bool *ok)
{
	if (ret == 0 || errno != want) {
		fprintf(stderr, "cftest: %s: got %d/%s, want %s\n", what, ret,
			ret ? strerror(errno) : "success", strerror(want));
		*ok = false;
	}
	return 0;
}

/*
 * abi FUSEFILE FUSEDIR OTHERFILE: the device's input validation and
 * refusals, each with its documented errno.
 */
static int cmd_abi(char **av)
{
	int dev = open(COFAULT_DEVICE, O_RDWR);
	int fd = open(av[0], O_RDONLY), dir = open(av[1], O_RDONLY);
	int other = open(av[2], O_RDONLY), path = open(av[0], O_PATH);
	struct cofault_api api = {.api = COFAULT_API};
	struct cofault_map m = {.fd = fd};
	struct cofault_stats st;
	bool ok = true;
	void *p;

	if (dev < 0 || fd < 0 || dir < 0 || other < 0 || path < 0)
		die("open");
	expect_errno("map before api", ioctl(dev, COFAULT_IOC_MAP, &m), EINVAL,
		     &ok);
	expect_errno("stats before api", ioctl(dev, COFAULT_IOC_STATS, &st),
		     EINVAL, &ok);
	api.reserved[3] = 1;
	expect_errno("api reserved", ioctl(dev, COFAULT_IOC_API, &api), EINVAL,
		     &ok);
	api = (struct cofault_api){.api = 99};
	expect_errno("api version", ioctl(dev, COFAULT_IOC_API, &api), EINVAL,
		     &ok);
	if (api.api != COFAULT_API)
		ok = false;
	api = (struct cofault_api){.api = COFAULT_API, .features = ~0ULL};
	if (ioctl(dev, COFAULT_IOC_API, &api) < 0 ||
	    api.features != COFAULT_FEATURES_ALL)
		ok = false;
	expect_errno("api twice", ioctl(dev, COFAULT_IOC_API, &api), EINVAL,
		     &ok);
	m = (struct cofault_map){.fd = fd, .flags = 1U << 7};
	expect_errno("map flags", ioctl(dev, COFAULT_IOC_MAP, &m), EINVAL, &ok);
	m = (struct cofault_map){.fd = fd, .pad = 1};
	expect_errno("map pad", ioctl(dev, COFAULT_IOC_MAP, &m), EINVAL, &ok);
	m = (struct cofault_map){.fd = fd, .reserved[5] = 1};
	expect_errno("map reserved", ioctl(dev, COFAULT_IOC_MAP, &m), EINVAL,
		     &ok);
	m = (struct cofault_map){.fd = 12345};
	expect_errno("map badfd", ioctl(dev, COFAULT_IOC_MAP, &m), EBADF, &ok);
	m = (struct cofault_map){.fd = path};
	expect_errno("map O_PATH", ioctl(dev, COFAULT_IOC_MAP, &m), EBADF, &ok);
	m = (struct cofault_map){.fd = dir};
	expect_errno("map dir", ioctl(dev, COFAULT_IOC_MAP, &m), EINVAL, &ok);
	m = (struct cofault_map){.fd = other};
	expect_errno("map not fuse", ioctl(dev, COFAULT_IOC_MAP, &m),
		     EOPNOTSUPP, &ok);
	expect_errno("bad ioctl", ioctl(dev, _IO(COFAULT_IOC_MAGIC, 0x7f)),
		     ENOTTY, &ok);
	m = (struct cofault_map){.fd = fd};
	if (ioctl(dev, COFAULT_IOC_MAP, &m) < 0) {
		ok = false;
	} else {
		p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
			 m.map_fd, 0);
		expect_errno("shared write", p == MAP_FAILED ? -1 : 0, EACCES,
			     &ok);
		p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, m.map_fd, 0);
		if (p == MAP_FAILED)
			ok = false;
		else
			expect_errno("mprotect write",
				     mprotect(p, PAGE, PROT_READ | PROT_WRITE),
				     EACCES, &ok);
		/* COFAULT_MAP_CLOEXEC was not asked for. */
		if (fcntl(m.map_fd, F_GETFD) & FD_CLOEXEC)
			ok = false;
	}
	if (ioctl(dev, COFAULT_IOC_STATS, &st) < 0)
		ok = false;
	printf("abi ok=%d\n", ok);
	return !ok;
}

static const char *err_name(int err)
{
	return err ? strerror(err) : "mapped";
}

/*
 * exec FUSEFILE NOEXEC: PROT_EXEC on the file, plainly and through the
 * device. The device refuses PROT_EXEC at mmap with EPERM everywhere (the
 * mmap-time security checks saw its anonymous file). On a noexec mount
 * (NOEXEC 1) an mprotect adding PROT_EXEC to a read-only mapping must fail
 * with EACCES, plainly and through the device, and the plain mmap with
 * EPERM. Elsewhere the plain mapping and mprotect must work; the device's
 * mprotect answer is printed (a kernel whose anonymous-inode file system
 * is itself noexec refuses it, which is no leak).
 */
static int cmd_exec(char **av)
{
	bool noexec = atoi(av[1]) != 0, ok;
	int fd = open(av[0], O_RDONLY), dev = dev_open();
	struct cofault_map m = {.fd = fd};
	int plain, co, mp_plain, mp_co;
	void *p;

	if (fd < 0)
		die(av[0]);
	if (ioctl(dev, COFAULT_IOC_MAP, &m) < 0)
		die("COFAULT_IOC_MAP");
	p = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	plain = p == MAP_FAILED ? errno : 0;
	if (p != MAP_FAILED)
		munmap(p, PAGE);
	p = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE, m.map_fd, 0);
	co = p == MAP_FAILED ? errno : 0;
	if (p != MAP_FAILED)
		munmap(p, PAGE);
	p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	mp_plain = mprotect(p, PAGE, PROT_READ | PROT_EXEC) ? errno : 0;
	munmap(p, PAGE);
	p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, m.map_fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	mp_co = mprotect(p, PAGE, PROT_READ | PROT_EXEC) ? errno : 0;
	munmap(p, PAGE);
	if (noexec)
		ok = plain == EPERM && co == EPERM && mp_plain == EACCES &&
		     mp_co == EACCES;
	else
		ok = !plain && !mp_plain && co == EPERM &&
		     (!mp_co || mp_co == EACCES);
	printf("exec noexec=%d plain=%s cofault=%s", noexec, err_name(plain),
	       err_name(co));
	printf(" mprotect-plain=%s mprotect-cofault=%s ok=%d\n",
	       err_name(mp_plain), err_name(mp_co), ok);
	return !ok;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int nargs;
		int (*fn)(char **);
	} cmds[] = {
		{"gen", 2, cmd_gen},	     {"cat", 2, cmd_cat},
		{"threads", 4, cmd_threads}, {"private", 2, cmd_private},
		{"sigalrm", 3, cmd_sigalrm}, {"lock", 3, cmd_lock},
		{"touch", 3, cmd_touch},     {"hold", 2, cmd_hold},
		{"abi", 3, cmd_abi},	     {"kernel", 3, cmd_kernel},
		{"exec", 2, cmd_exec},	     {"flood", 3, cmd_flood},
	};
	size_t i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; argc > 1 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name) && argc - 2 == cmds[i].nargs)
			return cmds[i].fn(argv + 2);
	fprintf(stderr, "usage: cftest gen|cat|threads|private|sigalrm|lock|"
			"touch|hold|abi|kernel|exec|flood ARGS...\n");
	return 2;
}

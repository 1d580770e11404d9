/*
 * `cofault prefetch PATH...`: warm the chunk cache for files or whole
 * trees of a cofault mount by reading them through the mount, several
 * files at once. Shows bytes, rate and ETA as a bar on a terminal and as
 * plain lines otherwise. The kernel's copies are dropped as it goes
 * (fadvise), so warming a dataset does not push everything else out of
 * the page cache.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/mono.h"
#include "fs/cmd.h"

#define PREFETCH_BUF (4u << 20)

static const char prefetch_usage_text[] =
	"usage: cofault prefetch [-j N] [-q] PATH...\n"
	"\n"
	"Read files, or every file under directories, of a cofault mount so\n"
	"that later reads come from the chunk cache. Links named here are\n"
	"followed, links inside directories are not.\n"
	"  -j, --jobs N   files read at once (4)\n"
	"  -q, --quiet    no progress output\n";

struct pf_file {
	char *path;
	uint64_t size;
};

/* Shared by the walker, the readers and the progress reporter. */
struct pf {
	pthread_mutex_t lock;
	struct pf_file *files; /* filled before the readers start */
	size_t nfiles, cap;
	size_t next; /* next file to read, under lock */
	uint64_t total; /* bytes of all files */
	uint64_t done; /* bytes read, under lock */
	unsigned int errors; /* under lock (the walker's: before any reader) */
	unsigned int running; /* reader threads not yet done, under lock */
	bool no_memory;	      /* the walker's: the file list could not grow */
};

static struct pf *pf_walk_target; /* nftw has no user pointer */

static int pf_add(const char *path, const struct stat *st, int type,
		  struct FTW *ftw)
{
	struct pf *p = pf_walk_target;

	if (type == FTW_DNR || type == FTW_NS) {
		fprintf(stderr, "cofault: %s: cannot %s: %s\n", path,
			type == FTW_DNR ? "read the directory" : "stat",
			strerror(errno ? errno : EACCES));
		p->errors++;
		return 0;
	}
	/* Links inside a tree are not followed (FTW_PHYS), as du does. */
	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	if (p->nfiles == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256;
		struct pf_file *nf = realloc(p->files, ncap * sizeof(*nf));

		if (!nf) {
			p->no_memory = true;
			return -1;
		}
		p->files = nf;
		p->cap = ncap;
	}
	p->files[p->nfiles].path = strdup(path);
	if (!p->files[p->nfiles].path)
		return -1;
	p->files[p->nfiles].size = (uint64_t)st->st_size;
	p->nfiles++;
	p->total += (uint64_t)st->st_size;
	return 0;
}

static void pf_reader_done(struct pf *p)
{
	pthread_mutex_lock(&p->lock);
	p->running--;
	pthread_mutex_unlock(&p->lock);
}

/* Called with p->running counting it; the caller's count ends here. */
static void *pf_reader(void *arg)
{
	struct pf *p = arg;
	char *buf = malloc(PREFETCH_BUF);

	if (!buf) {
		/* The others go on; files nobody read count at the end. */
		pf_reader_done(p);
		return NULL;
	}
	for (;;) {
		struct pf_file *f;
		off_t off = 0;
		ssize_t n;
		int fd;

		pthread_mutex_lock(&p->lock);
		if (p->next == p->nfiles) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		f = &p->files[p->next++];
		pthread_mutex_unlock(&p->lock);

		fd = open(f->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "cofault: %s: %s\n", f->path,
				strerror(errno));
			pthread_mutex_lock(&p->lock);
			p->errors++;
			pthread_mutex_unlock(&p->lock);
			continue;
		}
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		while ((n = pread(fd, buf, PREFETCH_BUF, off)) > 0) {
			posix_fadvise(fd, off, n, POSIX_FADV_DONTNEED);
			off += n;
			pthread_mutex_lock(&p->lock);
			p->done += (uint64_t)n;
			pthread_mutex_unlock(&p->lock);
		}
		if (n < 0) {
			fprintf(stderr, "cofault: %s: %s\n", f->path,
				strerror(errno));
			pthread_mutex_lock(&p->lock);
			p->errors++;
			pthread_mutex_unlock(&p->lock);
		}
		close(fd);
	}
	free(buf);
	pf_reader_done(p);
	return NULL;
}

static void pf_human(char *out, size_t n, double bytes)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	snprintf(out, n, "%.1f %s", bytes, unit[u]);
}

static void pf_report(struct pf *p, double t0, bool tty, bool last)
{
	char done[32], total[32], rate[32], eta[32] = "--";
	double dt = mono_s() - t0, r;
	uint64_t d;

	pthread_mutex_lock(&p->lock);
	d = p->done;
	pthread_mutex_unlock(&p->lock);
	r = dt > 0 ? (double)d / dt : 0;
	pf_human(done, sizeof(done), (double)d);
	pf_human(total, sizeof(total), (double)p->total);
	pf_human(rate, sizeof(rate), r);
	if (r > 0 && p->total > d)
		snprintf(eta, sizeof(eta), "%.0fs", (double)(p->total - d) / r);
	else if (p->total <= d)
		snprintf(eta, sizeof(eta), "0s");
	if (tty) {
		int width = 30, fill = p->total ? (int)(width * d / p->total) :
						  width, i;

		fputs("\r[", stderr);
		for (i = 0; i < width; i++)
			fputc(i < fill ? '#' : ' ', stderr);
		fprintf(stderr, "] %s / %s  %s/s  ETA %s   ", done, total, rate,
			eta);
		if (last)
			fputc('\n', stderr);
	} else {
		fprintf(stderr, "prefetch: %s of %s, %s/s, ETA %s\n", done,
			total, rate, eta);
	}
	fflush(stderr);
}

int fs_cmd_prefetch(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "jobs", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pf p = { .lock = PTHREAD_MUTEX_INITIALIZER };
	unsigned long long jobs = 4;
	bool quiet = false, tty = isatty(2);
	pthread_t th[64];
	unsigned int i, started = 0;
	double t0, last = 0;
	int c, rc = 1;
	size_t k;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "j:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			if (fs_parse_size(optarg, &jobs) || jobs < 1 || jobs > 64) {
				fprintf(stderr, "cofault: --jobs takes 1 to 64\n");
				return 2;
			}
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			fputs(prefetch_usage_text, stdout);
			return 0;
		default:
			fprintf(stderr, "cofault: unknown option %s\n",
				argv[optind - 1]);
			fputs(prefetch_usage_text, stderr);
			return 2;
		}
	}
	if (optind == argc) {
		fputs(prefetch_usage_text, stderr);
		return 2;
	}
	pf_walk_target = &p;
	for (; optind < argc; optind++) {
		const char *arg = argv[optind];
		char *real = NULL;
		struct stat st;
		int err;

		/*
		 * A link named on the command line is followed (du -H). An
		 * argument that cannot be walked (missing, a dangling link)
		 * is named and counted, and the others are still read: one
		 * typo must not cost a long list its warm-up.
		 */
		if (lstat(arg, &st) == 0 && S_ISLNK(st.st_mode)) {
			real = realpath(arg, NULL);
			if (!real) {
				fprintf(stderr, "cofault: %s: %s\n", arg,
					strerror(errno));
				p.errors++;
				continue;
			}
		}
		errno = 0;
		err = nftw(real ? real : arg, pf_add, 16, FTW_PHYS | FTW_MOUNT);
		if (err)
			err = p.no_memory ? ENOMEM : errno ? errno : EIO;
		free(real);
		if (err) {
			fprintf(stderr, "cofault: %s: %s\n", arg,
				strerror(err));
			if (p.no_memory)
				goto out;
			p.errors++;
		}
	}
	t0 = mono_s();
	for (i = 0; i < jobs && i < p.nfiles; i++) {
		pthread_mutex_lock(&p.lock);
		p.running++;
		pthread_mutex_unlock(&p.lock);
		if (pthread_create(&th[i], NULL, pf_reader, &p)) {
			pf_reader_done(&p);
			break;
		}
		started++;
	}
	if (started == 0 && p.nfiles) {
		p.running = 1;
		pf_reader(&p);
	} else {
		/* Report while the readers work: join polls, so check the
		 * byte count every 200 ms until the last reader is done,
		 * not only until the last file is started. */
		for (;;) {
			bool all;

			usleep(200 * 1000);
			pthread_mutex_lock(&p.lock);
			all = p.running == 0;
			pthread_mutex_unlock(&p.lock);
			if (!quiet && mono_s() - last >= (tty ? 0.2 : 5.0)) {
				pf_report(&p, t0, tty, false);
				last = mono_s();
			}
			if (all)
				break;
		}
	}
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (p.next < p.nfiles) {
		fprintf(stderr, "cofault: %zu files not read: %s\n",
			p.nfiles - p.next, strerror(ENOMEM));
		p.errors += (unsigned int)(p.nfiles - p.next);
	}
	if (!quiet)
		pf_report(&p, t0, tty, true);
	if (!quiet || p.errors)
		fprintf(stderr, "prefetch: %zu files, %u errors\n", p.nfiles,
			p.errors);
	rc = p.errors ? 1 : 0;
out:
	for (k = 0; k < p.nfiles; k++)
		free(p.files[k].path);
	free(p.files);
	return rc;
}

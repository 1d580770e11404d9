/*
 * `cofault mount` and `cofault unmount`: option parsing, mount point
 * checks, and daemonizing so that `cofault mount` returns only when the
 * mount serves (or has failed, with one line saying why).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/url.h"
#include "fs/cmd.h"
#include "fs/data.h"
#include "fs/fs.h"

static const char mount_usage_text[] =
	"usage: cofault mount URL MOUNTPOINT [options]\n"
	"\n"
	"Mount a remote directory or bucket read-only. URL is http(s)://HOST/DIR/\n"
	"(a directory served with index pages), http(s)://HOST/FILE (one file), or\n"
	"s3://BUCKET[/PREFIX/]. Returns once the mount serves, or fails with a\n"
	"one-line reason and nothing mounted.\n"
	"\n"
	"options:\n"
	"  -f, --foreground        stay in the foreground, log to stderr\n"
	"  -o OPT[,OPT...]         FUSE mount options (e.g. allow_other)\n"
	"  -d, --debug             log every request (implies -f unless --log-file)\n"
	"      --log-file FILE     log here instead of syslog when in the background\n"
	"      --ttl SECONDS       cache attributes and listings this long (60)\n"
	"      --negative-ttl SECONDS  cache missing names this long (5)\n"
	"      --timeout SECONDS   give up on an origin request after this, retries\n"
	"                          included; the read fails with EIO (30)\n"
	"      --connect-timeout SECONDS  per connection attempt (10)\n"
	"      --insecure          do not verify TLS certificates\n"
	"      --interruptible     synchronous reads that a signal interrupts with\n"
	"                          EINTR at once (default)\n"
	"      --async-read        kernel readahead in the background; signals wait\n"
	"                          for the origin\n"
	"      --chunk-size SIZE   unit of fetching and caching (1M)\n"
	"      --fetch-threads N   parallel origin requests (16)\n"
	"      --max-memory SIZE   bound on data held in memory (256M)\n"
	"      --fill-requests N   fetch a chunk whole for the cache once random\n"
	"                          reads made N requests in it (16 per MiB of\n"
	"                          chunk; 0: only once they add up to the chunk)\n"
	"      --readahead SIZE    kernel readahead window, when run as root (128K;\n"
	"                          512K or 1M read faster sequentially, and make\n"
	"                          every mmap fault read that much; 0: the kernel's)\n"
	"      --cache-dir DIR     persistent chunk cache ($XDG_CACHE_HOME/cofault,\n"
	"                          /var/cache/cofault for root)\n"
	"      --cache-size SIZE   bound on the chunk cache (10% of its file system)\n"
	"      --cache-min-free SIZE  keep this much free on the cache's file system\n"
	"                          (5% of it, at most 4G; 0 turns the floor off)\n"
	"      --no-cache          no persistent cache: memory only\n"
	"      --no-splice         copy cached chunks through memory instead of\n"
	"                          splicing them from the cache files\n"
	"S3:\n"
	"      --endpoint URL      S3-compatible endpoint (implies path-style)\n"
	"      --virtual-hosted    bucket.endpoint addressing with --endpoint\n"
	"      --region REGION     signing region\n"
	"      --profile NAME      profile of the shared AWS configuration files\n"
	"      --no-sign-request   anonymous access to public buckets\n"
	"      --requester-pays    accept requester-pays charges\n"
	"  -h, --help              this text\n";

static const char unmount_usage_text[] =
	"usage: cofault unmount [-l|--lazy] MOUNTPOINT\n"
	"\n"
	"Unmount a cofault mount; the daemon then exits. --lazy detaches it even\n"
	"while files are open.\n";

enum {
	OPT_LOG_FILE = 256,
	OPT_TTL,
	OPT_NEG_TTL,
	OPT_TIMEOUT,
	OPT_CONNECT_TIMEOUT,
	OPT_INSECURE,
	OPT_INTERRUPTIBLE,
	OPT_ASYNC_READ,
	OPT_CHUNK_SIZE,
	OPT_FETCH_THREADS,
	OPT_MAX_MEMORY,
	OPT_FILL_REQUESTS,
	OPT_READAHEAD,
	OPT_CACHE_DIR,
	OPT_CACHE_SIZE,
	OPT_CACHE_MIN_FREE,
	OPT_NO_CACHE,
	OPT_NO_SPLICE,
	OPT_ENDPOINT,
	OPT_VIRTUAL_HOSTED,
	OPT_REGION,
	OPT_PROFILE,
	OPT_NO_SIGN,
	OPT_REQUESTER_PAYS,
};

static const struct option mount_longopts[] = {
	{ "foreground", no_argument, NULL, 'f' },
	{ "debug", no_argument, NULL, 'd' },
	{ "help", no_argument, NULL, 'h' },
	{ "log-file", required_argument, NULL, OPT_LOG_FILE },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "negative-ttl", required_argument, NULL, OPT_NEG_TTL },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "interruptible", no_argument, NULL, OPT_INTERRUPTIBLE },
	{ "async-read", no_argument, NULL, OPT_ASYNC_READ },
	{ "chunk-size", required_argument, NULL, OPT_CHUNK_SIZE },
	{ "fetch-threads", required_argument, NULL, OPT_FETCH_THREADS },
	{ "max-memory", required_argument, NULL, OPT_MAX_MEMORY },
	{ "fill-requests", required_argument, NULL, OPT_FILL_REQUESTS },
	{ "readahead", required_argument, NULL, OPT_READAHEAD },
	{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
	{ "cache-size", required_argument, NULL, OPT_CACHE_SIZE },
	{ "cache-min-free", required_argument, NULL, OPT_CACHE_MIN_FREE },
	{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
	{ "no-splice", no_argument, NULL, OPT_NO_SPLICE },
	{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
	{ "virtual-hosted", no_argument, NULL, OPT_VIRTUAL_HOSTED },
	{ "region", required_argument, NULL, OPT_REGION },
	{ "profile", required_argument, NULL, OPT_PROFILE },
	{ "no-sign-request", no_argument, NULL, OPT_NO_SIGN },
	{ "requester-pays", no_argument, NULL, OPT_REQUESTER_PAYS },
	{ NULL, 0, NULL, 0 },
};

int fs_parse_size(const char *s, unsigned long long *out)
{
	char *end;
	unsigned long long v;
	unsigned int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end && end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
		return -EINVAL;
	if (shift && v > (~0ULL >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

char *fs_default_cache_dir(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char buf[PATH_MAX];

	if (geteuid() == 0 && !xdg)
		return strdup("/var/cache/cofault");
	if (xdg && xdg[0] == '/')
		snprintf(buf, sizeof(buf), "%s/cofault", xdg);
	else if (home && home[0] == '/')
		snprintf(buf, sizeof(buf), "%s/.cache/cofault", home);
	else
		return NULL;
	return strdup(buf);
}

static int parse_seconds(const char *opt, const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || v < 0 || v > 86400 * 365) {
		fprintf(stderr, "cofault: %s: '%s' is not a number of seconds\n",
			opt, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_size_opt(const char *opt, const char *s,
			  unsigned long long *out)
{
	if (fs_parse_size(s, out)) {
		fprintf(stderr, "cofault: %s: '%s' is not a size (e.g. 64K, 1M)\n",
			opt, s);
		return -EINVAL;
	}
	return 0;
}

/* Is path (already resolved) a mount point in our namespace? */
static bool mount_is_mounted(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX], dec[PATH_MAX];
		size_t i, j;

		/* "id parent major:minor root mountpoint ..." */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		/* mountinfo escapes space, tab, newline and backslash as
		 * \ooo octal. */
		for (i = 0, j = 0; mp[i] && j < sizeof(dec) - 1; j++) {
			if (mp[i] == '\\' && mp[i + 1] && mp[i + 2] &&
			    mp[i + 3]) {
				dec[j] = (char)((mp[i + 1] - '0') * 64 +
						(mp[i + 2] - '0') * 8 +
						(mp[i + 3] - '0'));
				i += 4;
			} else {
				dec[j] = mp[i++];
			}
		}
		dec[j] = '\0';
		found = !strcmp(dec, path);
	}
	fclose(f);
	return found;
}

static int mount_check_point(const char *mp, char *resolved)
{
	struct stat st;

	if (stat(mp, &st)) {
		if (errno == ENOTCONN)
			fprintf(stderr,
				"cofault: %s: a mount whose daemon is gone is still "
				"there; run 'cofault unmount %s' first\n",
				mp, mp);
		else if (errno == ENOENT)
			fprintf(stderr,
				"cofault: mount point %s does not exist\n", mp);
		else
			fprintf(stderr, "cofault: mount point %s: %s\n", mp,
				strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "cofault: mount point %s is not a directory\n",
			mp);
		return -1;
	}
	if (!realpath(mp, resolved)) {
		fprintf(stderr, "cofault: mount point %s: %s\n", mp,
			strerror(errno));
		return -1;
	}
	if (mount_is_mounted(resolved)) {
		fprintf(stderr,
			"cofault: %s is already a mount point; unmount it first\n",
			resolved);
		return -1;
	}
	return 0;
}

static void mount_detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

/* How the daemon tells `cofault mount` that it serves, or why not. */
struct mount_ready {
	int fd; /* write end of the pipe, -1 in the foreground */
	const char *url;
	bool done;
};

static void mount_ready_cb(void *arg, int err, const char *msg)
{
	struct mount_ready *r = arg;
	char line[600], shown[256];
	int n;

	if (r->done)
		return;
	r->done = true;
	/* Without credentials a URL may carry (user:secret@, a signed
	 * query). */
	url_shown(r->url, shown, sizeof(shown));
	if (err)
		n = snprintf(line, sizeof(line), "cannot mount %s: %s\n",
			     shown, msg ? msg : strerror(-err));
	else
		n = snprintf(line, sizeof(line), "OK\n");
	if (r->fd < 0) {
		if (err)
			fprintf(stderr, "cofault: %s", line);
		return;
	}
	if (write(r->fd, line, (size_t)n) < 0)
		return;
	if (!err) {
		close(r->fd);
		r->fd = -1;
		/* Serving: from now on nobody reads our terminal output. */
		mount_detach_stdio();
	}
}

/* Parent side of the daemon fork: wait for one status line. */
static int mount_wait_child(int fd, pid_t pid)
{
	char buf[700];
	size_t got = 0;
	ssize_t n;
	int status;

	while (got < sizeof(buf) - 1) {
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(buf, '\n', got))
			break;
	}
	buf[got] = '\0';
	close(fd);
	if (!strcmp(buf, "OK\n"))
		return 0;
	if (got)
		fprintf(stderr, "cofault: %s", buf);
	else
		fprintf(stderr, "cofault: the daemon exited before mounting\n");
	waitpid(pid, &status, 0);
	return 1;
}

int fs_cmd_mount(int argc, char **argv)
{
	struct fs_opts o = {
		.ttl = 60,
		.neg_ttl = 5,
		.interruptible = true,
		.splice = true,
		.chunk_size = 1024 * 1024,
		.fetch_threads = 16,
		.max_memory = 256ULL * 1024 * 1024,
		/* An mmap fault reads the whole window: see bench/README.md,
		 * "The readahead window". */
		.readahead = 128 * 1024,
		.cache_min_free = UINT64_MAX,
	};
	double timeout = 30, connect_timeout = 10;
	bool foreground = false, no_cache = false;
	const char *log_file = NULL;
	char *cache_dir = NULL;
	char **fuse_argv = NULL;
	int fuse_argc = 0, c, rc = 1, err;
	char resolved[PATH_MAX];
	struct mount_ready ready = { .fd = -1 };
	unsigned long long v;
	struct fs *fs = NULL;
	const char *url, *mp;
	int pfd[2];
	pid_t pid;

	fuse_argv = calloc((size_t)argc * 2 + 1, sizeof(*fuse_argv));
	if (!fuse_argv)
		return 1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "fdho:", mount_longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'f':
			foreground = true;
			break;
		case 'd':
			o.debug = true;
			break;
		case 'h':
			fputs(mount_usage_text, stdout);
			rc = 0;
			goto out;
		case 'o':
			fuse_argv[fuse_argc++] = "-o";
			fuse_argv[fuse_argc++] = optarg;
			break;
		case OPT_LOG_FILE:
			log_file = optarg;
			break;
		case OPT_TTL:
			if (parse_seconds("--ttl", optarg, &o.ttl))
				goto out_usage;
			break;
		case OPT_NEG_TTL:
			if (parse_seconds("--negative-ttl", optarg, &o.neg_ttl))
				goto out_usage;
			break;
		case OPT_TIMEOUT:
			if (parse_seconds("--timeout", optarg, &timeout) ||
			    timeout < 0.1)
				goto out_usage;
			break;
		case OPT_CONNECT_TIMEOUT:
			if (parse_seconds("--connect-timeout", optarg,
					  &connect_timeout) ||
			    connect_timeout < 0.1)
				goto out_usage;
			break;
		case OPT_INSECURE:
			o.store.insecure = true;
			break;
		case OPT_INTERRUPTIBLE:
			o.interruptible = true;
			break;
		case OPT_ASYNC_READ:
			o.interruptible = false;
			break;
		case OPT_CHUNK_SIZE:
			if (parse_size_opt("--chunk-size", optarg, &v))
				goto out_usage;
			if (v < 4096 || v > 64ULL << 20 || (v & (v - 1))) {
				fprintf(stderr, "cofault: --chunk-size must be a "
						"power of two from 4K to 64M\n");
				goto out_usage;
			}
			o.chunk_size = (uint32_t)v;
			break;
		case OPT_FETCH_THREADS:
			if (parse_size_opt("--fetch-threads", optarg, &v) ||
			    v < 1 || v > 256) {
				fprintf(stderr, "cofault: --fetch-threads takes "
						"1 to 256\n");
				goto out_usage;
			}
			o.fetch_threads = (unsigned int)v;
			break;
		case OPT_MAX_MEMORY:
			if (parse_size_opt("--max-memory", optarg, &v))
				goto out_usage;
			o.max_memory = v;
			break;
		case OPT_FILL_REQUESTS:
			if (parse_size_opt("--fill-requests", optarg, &v) ||
			    v > 65535) {
				fprintf(stderr, "cofault: --fill-requests takes "
						"0 to 65535\n");
				goto out_usage;
			}
			/* 0 here is "never by requests"; 0 in the data
			 * path is its default. */
			o.fill_requests = v ? (unsigned int)v :
					      DATA_FILL_NEVER;
			break;
		case OPT_READAHEAD:
			if (parse_size_opt("--readahead", optarg, &v))
				goto out_usage;
			if (v > 64ULL << 20) {
				fprintf(stderr, "cofault: --readahead is at most "
						"64M\n");
				goto out_usage;
			}
			o.readahead = (uint32_t)v;
			break;
		case OPT_CACHE_DIR:
			free(cache_dir);
			cache_dir = strdup(optarg);
			break;
		case OPT_CACHE_SIZE:
			if (parse_size_opt("--cache-size", optarg, &v))
				goto out_usage;
			o.cache_size = v;
			break;
		case OPT_CACHE_MIN_FREE:
			if (parse_size_opt("--cache-min-free", optarg, &v))
				goto out_usage;
			o.cache_min_free = v;
			break;
		case OPT_NO_CACHE:
			no_cache = true;
			break;
		case OPT_NO_SPLICE:
			o.splice = false;
			break;
		case OPT_ENDPOINT:
			o.store.endpoint = optarg;
			break;
		case OPT_VIRTUAL_HOSTED:
			o.store.virtual_hosted = true;
			break;
		case OPT_REGION:
			o.store.region = optarg;
			break;
		case OPT_PROFILE:
			o.store.profile = optarg;
			break;
		case OPT_NO_SIGN:
			o.store.no_sign_request = true;
			break;
		case OPT_REQUESTER_PAYS:
			o.store.requester_pays = true;
			break;
		default:
			if (optopt && optopt < 256)
				fprintf(stderr, "cofault: unknown option -%c\n",
					optopt);
			else
				fprintf(stderr, "cofault: unknown option %s\n",
					argv[optind - 1]);
			goto out_usage;
		}
	}
	/* getopt_long permutes: "URL MOUNTPOINT -f" and "-f URL MOUNTPOINT"
	 * both leave the two positionals at the end. */
	if (argc - optind != 2) {
		fprintf(stderr, "cofault: mount needs exactly a URL and a "
				"mount point\n");
		goto out_usage;
	}
	url = argv[optind];
	mp = argv[optind + 1];
	if (mount_check_point(mp, resolved))
		goto out;
	if (o.debug && !log_file)
		foreground = true;
	if (!no_cache) {
		if (!cache_dir)
			cache_dir = fs_default_cache_dir();
		if (!cache_dir) {
			fprintf(stderr, "cofault: no cache directory: set "
					"--cache-dir or HOME, or use --no-cache\n");
			goto out;
		}
		o.cache_dir = cache_dir;
	}
	o.store.url = url;
	o.store.timeout_ms = (unsigned int)(timeout * 1000);
	o.store.connect_timeout_ms = (unsigned int)(connect_timeout * 1000);
	o.store.max_connections = o.fetch_threads * 2;
	ready.url = url;
	log_open(LOG_TO_STDERR, NULL, o.debug);

	if (!foreground) {
		if (pipe2(pfd, O_CLOEXEC)) {
			perror("cofault: pipe");
			goto out;
		}
		pid = fork();
		if (pid < 0) {
			perror("cofault: fork");
			goto out;
		}
		if (pid > 0) {
			close(pfd[1]);
			rc = mount_wait_child(pfd[0], pid);
			goto out;
		}
		close(pfd[0]);
		ready.fd = pfd[1];
		setsid();
	}

	/* Before anything is mounted: reach the origin and list the root,
	 * so a wrong URL fails here with one line and nothing to clean up. */
	log_set_quiet(!o.debug);
	err = fs_new(&o, &fs);
	if (!err)
		err = fs_probe(fs);
	log_set_quiet(false);
	if (err) {
		const char *why = store_last_error();

		mount_ready_cb(&ready, err, why[0] ? why : NULL);
		goto out_child;
	}
	if (!foreground) {
		/* Detached: log to a file or syslog from here on. The last
		 * word to the parent comes from fs_run, once mounted. */
		if (log_file) {
			err = log_open(LOG_TO_FILE, log_file, o.debug);
			if (err) {
				char msg[300];

				snprintf(msg, sizeof(msg), "log file %s: %s",
					 log_file, strerror(-err));
				mount_ready_cb(&ready, err, msg);
				goto out_child;
			}
		} else {
			log_open(LOG_TO_SYSLOG, NULL, o.debug);
		}
		if (chdir("/"))
			log_warn("chdir /: %s", strerror(errno));
	} else if (log_file) {
		log_open(LOG_TO_FILE, log_file, o.debug);
	}
	err = fs_run(fs, resolved, fuse_argc, fuse_argv, mount_ready_cb,
		     &ready);
	rc = err ? 1 : 0;
out_child:
	fs_free(fs);
	if (!foreground) {
		if (ready.fd >= 0)
			close(ready.fd);
		log_close();
		free(cache_dir);
		free(fuse_argv);
		_exit(rc ? 1 : 0);
	}
	if (!rc && err)
		rc = 1;
out:
	free(cache_dir);
	free(fuse_argv);
	return rc;
out_usage:
	fputs(mount_usage_text, stderr);
	rc = 2;
	goto out;
}

int fs_cmd_unmount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "lazy", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool lazy = false;
	const char *mp;
	int c, status;
	pid_t pid;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "lh", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			lazy = true;
			break;
		case 'h':
			fputs(unmount_usage_text, stdout);
			return 0;
		default:
			fprintf(stderr, "cofault: unknown option %s\n",
				argv[optind - 1]);
			fputs(unmount_usage_text, stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		fputs(unmount_usage_text, stderr);
		return 2;
	}
	mp = argv[optind];
	if (geteuid() == 0) {
		if (umount2(mp, lazy ? MNT_DETACH : 0) == 0)
			return 0;
		fprintf(stderr, "cofault: cannot unmount %s: %s\n", mp,
			strerror(errno));
		return 1;
	}
	/* Unprivileged mounts are undone by the setuid helper. */
	pid = fork();
	if (pid < 0) {
		perror("cofault: fork");
		return 1;
	}
	if (pid == 0) {
		if (lazy)
			execlp("fusermount3", "fusermount3", "-u", "-z", "--",
			       mp, (char *)NULL);
		else
			execlp("fusermount3", "fusermount3", "-u", "--", mp,
			       (char *)NULL);
		fprintf(stderr, "cofault: cannot run fusermount3: %s\n",
			strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		return 1;
	return 0;
}

/*
 * The filesystem proper: FUSE low-level operations over an origin (store)
 * and the data path. fs_new builds the state, fs_probe checks the origin
 * before anything is mounted, fs_run mounts and serves until unmounted or
 * signalled.
 */
#ifndef FS_FS_H
#define FS_FS_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct fs_opts {
	struct store_opts store;
	double ttl; /* attribute and entry cache, seconds */
	double neg_ttl; /* negative lookups */
	bool interruptible; /* synchronous reads, FUSE_INTERRUPT honoured */
	bool splice; /* warm reads spliced from the cache files */
	uint32_t chunk_size;
	unsigned int fetch_threads;
	uint64_t max_memory;
	/* Small requests in one chunk after which it is fetched whole for
	 * the disk tier: data_opts.fill_requests (0: its default). */
	unsigned int fill_requests;
	uint32_t readahead; /* kernel readahead to ask for, bytes; 0: leave */
	const char *cache_dir; /* NULL: no persistent cache */
	uint64_t cache_size;
	uint64_t cache_min_free; /* UINT64_MAX: the cache's default */
	bool debug;
};

struct fs;

int fs_new(const struct fs_opts *o, struct fs **out);
/* Reach the origin and read the root; -errno with store_last_error(). */
int fs_probe(struct fs *fs);
/*
 * Mount on mountpoint with extra FUSE options (argv-style, "-o" pairs),
 * call ready(arg, 0) once the mount serves or ready(arg, -errno) when it
 * failed, and serve until unmounted or SIGTERM/SIGINT/SIGHUP.
 */
int fs_run(struct fs *fs, const char *mountpoint, int fuse_argc,
	   char **fuse_argv, void (*ready)(void *arg, int err, const char *msg),
	   void *arg);
void fs_free(struct fs *fs);

#endif

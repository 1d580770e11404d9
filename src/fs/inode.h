/*
 * The inode table of a mount: every name the origin has shown us, with a
 * stable inode number for the life of the mount, its attributes, and for
 * directories the listing and when it was taken. Remote trees are
 * read-only, so an inode is never freed while mounted: numbers are never
 * reused and forget only lowers the lookup count.
 */
#ifndef FS_INODE_H
#define FS_INODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fs/data.h"
#include "store/store.h"

struct fs_inode {
	uint64_t ino; /* immutable */
	uint64_t parent; /* immutable; the root is its own parent */
	char *name; /* immutable, decoded */
	char *path; /* immutable, relative to the mount root */
	bool is_dir; /* immutable */
	/* The rest is protected by fs_table.lock. */
	struct store_attr attr;
	bool attr_exact; /* the size is exact (not "1.2K" from a listing) */
	double attr_time; /* monotonic seconds when attr was fetched */
	/* The version is known: attr came from the object itself (HEAD) or
	 * from a listing that names versions (ETags). Opens need this. */
	bool attr_validated;
	bool gone; /* no longer in its directory's listing */
	uint64_t nlookup;
	struct data_obj *obj; /* current version, referenced; files only */
	uint64_t kernel_obj_id; /* version the kernel page cache holds */
	/* Directories */
	bool listed, listing; /* listing: a fetch is in progress */
	int list_err; /* last listing error, while !listed */
	double list_time;
	uint64_t *children; /* inode numbers, in listing order */
	size_t nchildren;
	/* Bumped whenever children changes (1 for the first listing); the
	 * kernel caches a listing between opens only while kernel_list_gen,
	 * the one it was given last (0: none), is still list_gen. */
	uint64_t list_gen, kernel_list_gen;
	struct fs_inode *hnext; /* (parent, name) hash chain */
};

struct fs_table {
	pthread_mutex_t lock;
	pthread_cond_t listed; /* a directory listing finished */
	struct fs_inode **inodes; /* index ino - 1 */
	size_t ninodes, cap;
	struct fs_inode **names; /* hash of (parent, name) */
	size_t nbuckets;
};

int fs_table_init(struct fs_table *t);
void fs_table_destroy(struct fs_table *t);

/* By number; NULL when unknown. Caller holds t->lock. */
struct fs_inode *fs_inode_get(struct fs_table *t, uint64_t ino);
/* Child by name, gone ones excluded. Caller holds t->lock. */
struct fs_inode *fs_inode_child(struct fs_table *t, uint64_t parent,
				const char *name);
/* Find or add the child (parent, name). Caller holds t->lock. */
int fs_inode_add(struct fs_table *t, struct fs_inode *parent,
		 const char *name, bool is_dir, struct fs_inode **out);

#endif

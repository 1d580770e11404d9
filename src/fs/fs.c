/*
 * FUSE low-level operations. Each handler answers its request exactly
 * once. Metadata lives in the inode table (fs_table.lock); data goes
 * through the data path; neither lock is held across network I/O.
 */
#include "config.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "common/log.h"
#include "common/mono.h"
#include "fs/data.h"
#include "fs/fs.h"
#include "fs/inode.h"
#include "fs/watch.h"

struct fs {
	struct fs_opts o;
	struct store *store;
	struct data *data;
	struct cache *disk;
	struct fs_table t;
	struct fuse_session *se; /* set before the first request */
	uid_t uid;
	gid_t gid;
	time_t mount_time;
	bool served; /* fs_run mounted it: counters are worth a line */
	unsigned int max_read; /* asked of the kernel by fs_run; 0: none */
	/* Invalidation threads (fs_inval_async) still running: they use se,
	 * so fs_run waits for none before it destroys the session. */
	pthread_mutex_t inval_lock;
	pthread_cond_t inval_done; /* inval_threads fell to 0 */
	unsigned int inval_threads; /* under inval_lock */
	int disk_err; /* the chunk cache could not open: reading without */
};

/*
 * Largest read when warm reads are spliced. libfuse splices a reply
 * through a pipe that must hold the data, the header and a few pages of
 * slack, and an unprivileged pipe holds at most 1 MiB
 * (/proc/sys/fs/pipe-max-size): a 1 MiB read would always fall back to a
 * copy. Half of that keeps every read zero-copy; the default readahead
 * window is as large, one request each.
 */
#define FS_SPLICE_MAX_READ (512 * 1024)

/* An open directory: the entries as they were at opendir, so offsets stay
 * meaningful however the listing changes meanwhile. */
struct fs_dirh {
	uint64_t *inos;
	size_t n;
};

static struct fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Errors the kernel should see from a read or lookup: the origin's
 * transport troubles all mean "I/O error" to a program. */
static int fs_errno(int err)
{
	switch (err) {
	case -ENOENT:
	case -EACCES:
	case -ENOMEM:
	case -EINTR:
	case -ENOTDIR:
	case -EISDIR:
	case -EROFS:
	case -EFBIG: /* an object of more chunks than the daemon counts */
		return -err;
	default:
		return EIO;
	}
}

struct fs_inval {
	struct fs *fs;
	uint64_t ino;
};

static void *fs_inval_thread(void *arg)
{
	struct fs_inval *iv = arg;
	int err;

	/* Own thread: the kernel may need to lock pages whose reads are
	 * waiting on this very daemon. */
	err = fuse_lowlevel_notify_inval_inode(iv->fs->se, iv->ino, 0, 0);
	if (err && err != -ENOENT)
		log_warn("invalidating inode %llu: %s",
			 (unsigned long long)iv->ino, strerror(-err));
	pthread_mutex_lock(&iv->fs->inval_lock);
	if (--iv->fs->inval_threads == 0)
		pthread_cond_broadcast(&iv->fs->inval_done);
	pthread_mutex_unlock(&iv->fs->inval_lock);
	free(iv);
	return NULL;
}

static void fs_inval_async(struct fs *fs, uint64_t ino)
{
	struct fs_inval *iv = malloc(sizeof(*iv));
	pthread_attr_t attr;
	pthread_t th;

	if (!iv || !fs->se) {
		free(iv);
		return;
	}
	iv->fs = fs;
	iv->ino = ino;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&fs->inval_lock);
	if (pthread_create(&th, &attr, fs_inval_thread, iv))
		free(iv);
	else
		fs->inval_threads++;
	pthread_mutex_unlock(&fs->inval_lock);
	pthread_attr_destroy(&attr);
}

/* Wait for the invalidation threads; the session must be unmounted (the
 * kernel then answers what they wait on at once). */
static void fs_inval_wait(struct fs *fs)
{
	pthread_mutex_lock(&fs->inval_lock);
	while (fs->inval_threads)
		pthread_cond_wait(&fs->inval_done, &fs->inval_lock);
	pthread_mutex_unlock(&fs->inval_lock);
}

/* Listings give mtimes to the minute at best (nginx's HTML). */
#define FS_LISTING_MTIME_SLACK 60

/*
 * New attributes for file n, from a listing (from_object false) or from
 * the object itself (a HEAD). A different size, mtime or validator is a
 * new version: the old one's data object is marked stale (handles still
 * open on it fail their reads from now on) and dropped, and the kernel's
 * cached pages of it invalidated. So "changed" must never be said of a
 * mere refinement. A listing is only believed about what it can know: it
 * cannot tell two versions of one size apart within a minute, nor does
 * it replace what a HEAD told us. Caller holds t.lock.
 */
static void fs_set_attr(struct fs *fs, struct fs_inode *n,
			const struct store_attr *a, bool exact,
			bool from_object)
{
	bool etags = a->etag[0] && n->attr.etag[0];
	char version[STORE_ETAG_MAX];
	bool changed;

	if (from_object && a->etag[0] && n->obj &&
	    data_obj_version(n->obj, version)) {
		/* The data object learnt its version from the origin's own
		 * answers (it was opened on a listing's attributes): that
		 * decides, not the listing's coarser mtime. */
		changed = strcmp(version, a->etag) ||
			  data_obj_size(n->obj) != a->size;
	} else if (from_object && !n->attr_validated) {
		/* A HEAD refining a listing's attributes: the listing could
		 * only show the mtime to the minute (and perhaps a rounded
		 * size), so only a difference it could have shown is a new
		 * version. Anything finer would fail the open handles of a
		 * file that did not change. */
		int64_t dt = a->mtime - n->attr.mtime;

		changed = (n->attr_exact && n->attr.size != a->size) ||
			  dt >= FS_LISTING_MTIME_SLACK ||
			  dt <= -FS_LISTING_MTIME_SLACK;
	} else if (from_object && etags) {
		/* Two validators: they decide, with the size, not mtimes that
		 * a listing and a HEAD may round differently. */
		changed = strcmp(a->etag, n->attr.etag) ||
			  n->attr.size != a->size;
	} else if (from_object || !n->attr_validated) {
		/* HEADs without two validators, or listings without any. A
		 * listing without a date (http.server's) says nothing of the
		 * mtime. */
		bool dated = from_object || a->mtime;

		changed = n->attr.size != a->size ||
			  (dated && n->attr.mtime != a->mtime);
		if (!from_object && !n->attr_exact && !exact)
			changed = changed && n->attr.size != a->size;
	} else {
		/* A listing after a HEAD. Without a date it can only show a
		 * new size: a missing date is no news, and taken for one it
		 * failed every open handle's reads at each re-listing. */
		int64_t dt = a->mtime ? n->attr.mtime - a->mtime : 0;

		changed = (exact && n->attr.size != a->size) ||
			  (etags && strcmp(a->etag, n->attr.etag)) ||
			  dt >= FS_LISTING_MTIME_SLACK ||
			  dt <= -FS_LISTING_MTIME_SLACK;
		if (!changed)
			return; /* keep the finer attributes of the HEAD */
	}
	if (n->obj && (changed || data_obj_stale(n->obj))) {
		/* Handles still open on the old version would otherwise put
		 * its bytes back into the page cache that new opens share. */
		if (changed)
			data_obj_set_stale(n->obj);
		data_obj_put(n->obj);
		n->obj = NULL;
		if (n->kernel_obj_id) {
			n->kernel_obj_id = 0;
			fs_inval_async(fs, n->ino);
		}
	}
	n->attr = *a;
	n->attr.is_dir = n->is_dir;
	n->attr_exact = exact;
	n->attr_validated = from_object || a->etag[0];
	n->attr_time = mono_s();
}

/*
 * Make sure directory dir has a listing younger than the TTL. Caller
 * holds t.lock; it is dropped while the origin is asked. Only one thread
 * lists a directory at a time; the others wait for its result. A failed
 * refresh keeps serving the previous listing.
 */
static int fs_dir_fresh(struct fs *fs, struct fs_inode *dir)
{
	struct store_dir sd = { 0 };
	uint64_t *kids;
	size_t i;
	int err;

	for (;;) {
		if (dir->listed && mono_s() - dir->list_time < fs->o.ttl)
			return 0;
		if (!dir->listing)
			break;
		pthread_cond_wait(&fs->t.listed, &fs->t.lock);
		if (!dir->listing && !dir->listed)
			return dir->list_err;
		if (!dir->listing)
			return 0;
	}
	dir->listing = true;
	pthread_mutex_unlock(&fs->t.lock);
	err = fs->store->ops->list(fs->store, dir->path, &sd);
	pthread_mutex_lock(&fs->t.lock);
	dir->listing = false;
	if (err) {
		dir->list_err = err;
		pthread_cond_broadcast(&fs->t.listed);
		store_dir_free(&sd);
		if (dir->listed) {
			log_warn("keeping the old listing of /%s: %s", dir->path,
				 strerror(-err));
			dir->list_time = mono_s();
			return 0;
		}
		return err;
	}
	kids = calloc(sd.n ? sd.n : 1, sizeof(*kids));
	if (!kids) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < dir->nchildren; i++) {
		struct fs_inode *c = fs_inode_get(&fs->t, dir->children[i]);

		if (c)
			c->gone = true;
	}
	for (i = 0; i < sd.n; i++) {
		struct store_dirent *e = &sd.ents[i];
		struct fs_inode *c;

		err = fs_inode_add(&fs->t, dir, e->name, e->attr.is_dir, &c);
		if (err) {
			free(kids);
			goto out;
		}
		if (!c->is_dir)
			fs_set_attr(fs, c, &e->attr, e->attr.size_exact,
				    false);
		else if (e->attr.mtime)
			c->attr.mtime = e->attr.mtime;
		kids[i] = c->ino;
	}
	if (!dir->listed || dir->nchildren != sd.n ||
	    memcmp(dir->children, kids, sd.n * sizeof(*kids)))
		dir->list_gen++;
	free(dir->children);
	dir->children = kids;
	dir->nchildren = sd.n;
	dir->listed = true;
	dir->list_time = mono_s();
	err = 0;
out:
	dir->list_err = err;
	pthread_cond_broadcast(&fs->t.listed);
	store_dir_free(&sd);
	return err;
}

/* Directory ino with a fresh listing in *dir. Caller holds t.lock. */
static int fs_dir_get(struct fs *fs, uint64_t ino, struct fs_inode **dir)
{
	struct fs_inode *d = fs_inode_get(&fs->t, ino);

	*dir = d;
	if (!d)
		return -ENOENT;
	if (!d->is_dir)
		return -ENOTDIR;
	return fs_dir_fresh(fs, d);
}

/*
 * Make sure file n has exact attributes younger than the TTL, asking the
 * origin (HEAD) when not; with need_version, also a known version (what
 * open needs, and what a listing may not give). Caller holds t.lock;
 * dropped during the call.
 */
static int fs_file_fresh(struct fs *fs, struct fs_inode *n, bool need_version)
{
	struct store_attr a;
	int err;

	if (n->is_dir)
		return 0;
	if (n->attr_exact && mono_s() - n->attr_time < fs->o.ttl &&
	    (!need_version || n->attr_validated))
		return 0;
	pthread_mutex_unlock(&fs->t.lock);
	err = fs->store->ops->stat(fs->store, n->path, &a);
	pthread_mutex_lock(&fs->t.lock);
	if (err == -ENOENT)
		n->gone = true;
	if (err)
		return err;
	if (a.is_dir)
		return -EIO; /* the name turned into a directory */
	fs_set_attr(fs, n, &a, true, true);
	return 0;
}

static void fs_fill_stat(struct fs *fs, const struct fs_inode *n,
			 struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	if (n->is_dir) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		st->st_size = 4096;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)n->attr.size;
		st->st_blocks = (blkcnt_t)((n->attr.size + 511) / 512);
	}
	/* A large block size makes cp, cat and friends read in large
	 * requests, which is what a remote origin wants. */
	st->st_blksize = (blksize_t)fs->o.chunk_size;
	st->st_mtim.tv_sec = n->ino == 1 ? fs->mount_time : n->attr.mtime;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

static void fs_fill_entry(struct fs *fs, const struct fs_inode *n,
			  struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = n->ino;
	e->generation = 1;
	fs_fill_stat(fs, n, &e->attr);
	/* An estimated size must not be cached: the next stat asks. */
	if (n->is_dir || n->attr_exact) {
		e->attr_timeout = fs->o.ttl;
		e->entry_timeout = fs->o.ttl;
	}
}

static void fs_op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	if (fs->o.interruptible) {
		/* With asynchronous reads the kernel reads ahead in the
		 * background and the reader sleeps on a page lock that only
		 * SIGKILL breaks; synchronous reads are sent as requests the
		 * reader waits on itself, so a signal becomes FUSE_INTERRUPT. */
		conn->want &= ~FUSE_CAP_ASYNC_READ;
	}
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* Without it libfuse copies held ranges through memory instead. */
	if (fs->o.splice && (conn->capable & FUSE_CAP_SPLICE_WRITE))
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	/* libfuse insists that this matches the mount option. */
	if (fs->max_read)
		conn->max_read = fs->max_read;
	conn->max_readahead = conn->max_readahead > 1024 * 1024 ?
				      1024 * 1024 :
				      conn->max_readahead;
	log_info("serving %s (%s reads)", fs->store->ops->describe(fs->store),
		 fs->o.interruptible ? "interruptible" : "asynchronous");
}

static void fs_do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = req_fs(req);
	struct fuse_entry_param e;
	struct fs_inode *dir, *n;
	int err;

	pthread_mutex_lock(&fs->t.lock);
	err = fs_dir_get(fs, parent, &dir);
	if (err)
		goto out_err;
	n = fs_inode_child(&fs->t, parent, name);
	if (!n) {
		/* Cached briefly: programs probe for many missing names. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs->o.neg_ttl;
		pthread_mutex_unlock(&fs->t.lock);
		fuse_reply_entry(req, &e);
		return;
	}
	err = fs_file_fresh(fs, n, false);
	if (err)
		goto out_err;
	n->nlookup++;
	fs_fill_entry(fs, n, &e);
	pthread_mutex_unlock(&fs->t.lock);
	fuse_reply_entry(req, &e);
	return;

out_err:
	pthread_mutex_unlock(&fs->t.lock);
	fuse_reply_err(req, fs_errno(err));
}

static void fs_forget_one(struct fs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs_inode *n = fs_inode_get(&fs->t, ino);

	if (n)
		n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
}

static void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs *fs = req_fs(req);

	pthread_mutex_lock(&fs->t.lock);
	fs_forget_one(fs, ino, nlookup);
	pthread_mutex_unlock(&fs->t.lock);
	fuse_reply_none(req);
}

static void fs_op_forget_multi(fuse_req_t req, size_t count,
			       struct fuse_forget_data *forgets)
{
	struct fs *fs = req_fs(req);
	size_t i;

	pthread_mutex_lock(&fs->t.lock);
	for (i = 0; i < count; i++)
		fs_forget_one(fs, forgets[i].ino, forgets[i].nlookup);
	pthread_mutex_unlock(&fs->t.lock);
	fuse_reply_none(req);
}

static void fs_do_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct fs_inode *n;
	struct stat st;
	double timeout;
	int err;

	pthread_mutex_lock(&fs->t.lock);
	n = fs_inode_get(&fs->t, ino);
	if (!n) {
		err = -ENOENT;
		goto out_err;
	}
	err = fs_file_fresh(fs, n, false);
	if (err)
		goto out_err;
	fs_fill_stat(fs, n, &st);
	timeout = fs->o.ttl;
	pthread_mutex_unlock(&fs->t.lock);
	fuse_reply_attr(req, &st, timeout);
	return;

out_err:
	pthread_mutex_unlock(&fs->t.lock);
	fuse_reply_err(req, fs_errno(err));
}

static void fs_do_opendir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct fs_dirh *h = NULL;
	struct fs_inode *dir;
	size_t i;
	int err;

	pthread_mutex_lock(&fs->t.lock);
	err = fs_dir_get(fs, ino, &dir);
	if (err)
		goto out_err;
	h = calloc(1, sizeof(*h));
	if (h)
		h->inos = calloc(dir->nchildren + 2, sizeof(*h->inos));
	if (!h || !h->inos) {
		err = -ENOMEM;
		goto out_err;
	}
	h->inos[0] = dir->ino;
	h->inos[1] = dir->parent;
	for (i = 0; i < dir->nchildren; i++)
		h->inos[i + 2] = dir->children[i];
	h->n = dir->nchildren + 2;
	/* The kernel's copy of the listing is dropped at this open unless
	 * it is the one h holds: the directory's mtime, which would tell
	 * the kernel otherwise, means nothing for most origins. */
	fi->keep_cache = dir->kernel_list_gen == dir->list_gen;
	dir->kernel_list_gen = dir->list_gen;
	pthread_mutex_unlock(&fs->t.lock);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->cache_readdir = 1;
	fuse_reply_open(req, fi);
	return;

out_err:
	pthread_mutex_unlock(&fs->t.lock);
	if (h)
		free(h->inos);
	free(h);
	fuse_reply_err(req, fs_errno(err));
}

static void fs_readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = req_fs(req);
	struct fs_dirh *h = (struct fs_dirh *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0, i;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&fs->t.lock);
	for (i = (size_t)off; i < h->n; i++) {
		struct fs_inode *n = fs_inode_get(&fs->t, h->inos[i]);
		const char *name = i == 0 ? "." : i == 1 ? ".." : n->name;
		struct fuse_entry_param e;
		size_t need;

		fs_fill_entry(fs, n, &e);
		if (plus)
			need = fuse_add_direntry_plus(req, buf + used,
						      size - used, name, &e,
						      (off_t)i + 1);
		else
			need = fuse_add_direntry(req, buf + used, size - used,
						 name, &e.attr, (off_t)i + 1);
		if (need > size - used)
			break;
		used += need;
		/* The kernel takes a lookup reference for every entry of a
		 * readdirplus answer except "." and "..". */
		if (plus && i >= 2)
			n->nlookup++;
	}
	pthread_mutex_unlock(&fs->t.lock);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	fs_watch_busy();
	fs_readdir_common(req, ino, size, off, fi, false);
	fs_watch_idle();
}

static void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, struct fuse_file_info *fi)
{
	fs_watch_busy();
	fs_readdir_common(req, ino, size, off, fi, true);
	fs_watch_idle();
}

static void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino,
			     struct fuse_file_info *fi)
{
	struct fs_dirh *h = (struct fs_dirh *)(uintptr_t)fi->fh;

	free(h->inos);
	free(h);
	fuse_reply_err(req, 0);
}

static void fs_do_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct data_obj *obj;
	struct fs_inode *n;
	bool need_version;
	int err;

	if ((fi->flags & O_ACCMODE) != O_RDONLY ||
	    (fi->flags & (O_TRUNC | O_CREAT))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	pthread_mutex_lock(&fs->t.lock);
	n = fs_inode_get(&fs->t, ino);
	if (!n || n->is_dir) {
		err = n ? -EISDIR : -ENOENT;
		goto out_err;
	}
	/* A file whose last read found a new version is looked at again
	 * before it is opened, so the new open sees the new version. */
	if (n->obj && data_obj_stale(n->obj))
		n->attr_exact = false;
	/*
	 * A version must be known before the first read to pick cached
	 * chunks without asking the origin for data, and to tell whether the
	 * data this mount holds is still current. A file this mount holds
	 * nothing of and the disk tier has never seen (the usual first open)
	 * needs none: the first read's answer names the version, and open
	 * costs no HEAD.
	 */
	need_version = n->obj || data_version_needed(fs->data, n->path);
	err = fs_file_fresh(fs, n, need_version);
	if (err)
		goto out_err;
	if (!n->obj) {
		err = data_obj_new(fs->data, n->path, n->attr.size,
				   n->attr.etag, n->attr.mtime, &n->obj);
		if (err)
			goto out_err;
	}
	obj = data_obj_get(n->obj);
	/* Keep the kernel's pages only when they are of this version. */
	fi->keep_cache = n->kernel_obj_id == data_obj_id(obj);
	n->kernel_obj_id = data_obj_id(obj);
	pthread_mutex_unlock(&fs->t.lock);
	fi->fh = (uint64_t)(uintptr_t)obj;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
	return;

out_err:
	pthread_mutex_unlock(&fs->t.lock);
	fuse_reply_err(req, fs_errno(err));
}

/*
 * Reply with a read some of whose bytes are held in the disk tier's files:
 * libfuse splices those through a pipe into /dev/fuse, so the cache file's
 * page cache is copied once, in the kernel, never through this process.
 * The holds keep the ranges verified and unchanged meanwhile.
 */
static void fs_reply_segments(fuse_req_t req, const struct data_read *r)
{
	struct fuse_bufvec *bv;
	int i;

	/* fuse_bufvec ends in a one-element array: room for niov. */
	bv = calloc(1, sizeof(*bv) + (size_t)(r->niov - 1) * sizeof(bv->buf[0]));
	if (!bv) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	bv->count = (size_t)r->niov;
	for (i = 0; i < r->niov; i++) {
		struct fuse_buf *b = &bv->buf[i];

		b->size = r->iov[i].iov_len;
		if (r->fd[i] < 0) {
			b->mem = r->iov[i].iov_base;
		} else {
			b->flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
			b->fd = r->fd[i];
			b->pos = (off_t)r->pos[i];
		}
	}
	fuse_reply_data(req, bv, 0);
	free(bv);
}

static void fs_read_interrupted(fuse_req_t req, void *arg)
{
	data_wait_interrupt(arg);
}

static void fs_do_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fs *fs = req_fs(req);
	struct data_obj *obj = (struct data_obj *)(uintptr_t)fi->fh;
	struct data_wait w;
	struct data_read r;
	int err;

	data_wait_init(&w, fs->data);
	if (fs->o.interruptible)
		fuse_req_interrupt_func(req, fs_read_interrupted, &w);
	err = data_read(fs->data, obj, (uint64_t)off, size, &w, &r);
	/* Unregister under libfuse's request lock: after this no interrupt
	 * callback can touch w. */
	if (fs->o.interruptible)
		fuse_req_interrupt_func(req, NULL, NULL);
	data_wait_fini(&w);
	if (err) {
		if (err == -ESTALE)
			log_warn("/%s changed on the origin while open; "
				 "reopen it to read the new version",
				 data_obj_path(obj));
		else if (err != -EINTR)
			log_debug("read ino %llu at %lld: %s",
				  (unsigned long long)ino, (long long)off,
				  strerror(-err));
		fuse_reply_err(req, fs_errno(err));
		return;
	}
	if (r.nfd)
		fs_reply_segments(req, &r);
	else if (r.niov)
		fuse_reply_iov(req, r.iov, r.niov);
	else
		fuse_reply_buf(req, NULL, 0);
	data_read_release(fs->data, &r);
}

static void fs_op_release(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	data_obj_put((struct data_obj *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = req_fs(req);
	struct statvfs sv;

	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = fs->o.chunk_size;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	pthread_mutex_lock(&fs->t.lock);
	sv.f_files = fs->t.ninodes;
	pthread_mutex_unlock(&fs->t.lock);
	sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
	fuse_reply_statfs(req, &sv);
}

/*
 * The requests that may wait on the origin run between fs_watch_busy and
 * fs_watch_idle, so that the watch notices a session ended by a connection
 * abort while they wait (watch.c). Each replies before it returns.
 */
static void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_watch_busy();
	fs_do_lookup(req, parent, name);
	fs_watch_idle();
}

static void fs_op_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	fs_watch_busy();
	fs_do_getattr(req, ino, fi);
	fs_watch_idle();
}

static void fs_op_opendir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	fs_watch_busy();
	fs_do_opendir(req, ino, fi);
	fs_watch_idle();
}

static void fs_op_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	fs_watch_busy();
	fs_do_open(req, ino, fi);
	fs_watch_idle();
}

static void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	fs_watch_busy();
	fs_do_read(req, ino, size, off, fi);
	fs_watch_idle();
}

static const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_op_init,
	.lookup = fs_op_lookup,
	.forget = fs_op_forget,
	.forget_multi = fs_op_forget_multi,
	.getattr = fs_op_getattr,
	.opendir = fs_op_opendir,
	.readdir = fs_op_readdir,
	.readdirplus = fs_op_readdirplus,
	.releasedir = fs_op_releasedir,
	.open = fs_op_open,
	.read = fs_op_read,
	.release = fs_op_release,
	.statfs = fs_op_statfs,
};

/* The persistent chunk cache, when a directory was given. */
static int fs_disk_open(struct fs *fs, struct cache **out)
{
	struct cache_opts co = {
		.dir = fs->o.cache_dir,
		.max_bytes = fs->o.cache_size,
		/* Unset (all ones): the cache's own default floor. */
		.min_free_bytes = fs->o.cache_min_free == UINT64_MAX ?
					  cache_default_min_free(fs->o.cache_dir) :
					  fs->o.cache_min_free,
		.chunk_size = fs->o.chunk_size,
		.reset_on_mismatch = true,
	};
	int err;

	*out = NULL;
	if (!fs->o.cache_dir)
		return 0;
	err = cache_open(&co, out);
	switch (err) {
	case 0:
		return 0;
	case -ENOSPC:
	case -EDQUOT:
	case -EIO:
	case -EROFS:
	case -EBUSY:
		/* A full or failing cache disk costs speed, not the mount
		 * (SQLite says "I/O error" when it cannot grow its shared
		 * memory file on a full disk), and so does an index another
		 * process holds locked past the busy timeout (a long "cache
		 * clear"). What the user must fix (a directory not private,
		 * another schema) still refuses. */
		fs->disk_err = err; /* logged by fs_run: quiet until then */
		*out = NULL;
		return 0;
	default:
		store_set_error("cannot open the chunk cache in %s: %s",
				fs->o.cache_dir, strerror(-err));
		return err;
	}
}

static void fs_disk_close(struct cache *c)
{
	if (c)
		cache_close(c);
}

int fs_new(const struct fs_opts *o, struct fs **out)
{
	struct data_opts dopts = { 0 };
	struct fs *fs;
	int err;

	*out = NULL;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	pthread_mutex_init(&fs->inval_lock, NULL);
	pthread_cond_init(&fs->inval_done, NULL);
	fs->o = *o;
	fs->uid = getuid();
	fs->gid = getgid();
	/* The root's time is the mount's: origins give none for it. */
	fs->mount_time = time(NULL);
	err = fs_table_init(&fs->t);
	if (err)
		goto out_free;
	err = store_open(&o->store, &fs->store);
	if (err) {
		if (err == -EINVAL && !store_last_error()[0])
			store_set_error("not a valid URL");
		else if (err == -EPROTONOSUPPORT)
			store_set_error("only http://, https:// and s3:// URLs "
					"can be mounted");
		goto out_table;
	}
	err = fs_disk_open(fs, &fs->disk);
	if (err)
		goto out_store;
	dopts.store = fs->store;
	dopts.disk = fs->disk;
	dopts.origin_id = o->store.url;
	dopts.chunk_size = o->chunk_size;
	dopts.fetch_threads = o->fetch_threads;
	dopts.max_memory = o->max_memory;
	dopts.fill_requests = o->fill_requests;
	dopts.error_holddown_ms = 1000;
	dopts.splice = o->splice;
	err = data_new(&dopts, &fs->data);
	if (err)
		goto out_disk;
	*out = fs;
	return 0;

out_disk:
	fs_disk_close(fs->disk);
out_store:
	store_close(fs->store);
out_table:
	fs_table_destroy(&fs->t);
out_free:
	pthread_cond_destroy(&fs->inval_done);
	pthread_mutex_destroy(&fs->inval_lock);
	free(fs);
	return err;
}

int fs_probe(struct fs *fs)
{
	struct fs_inode *root;
	int err;

	pthread_mutex_lock(&fs->t.lock);
	root = fs_inode_get(&fs->t, 1);
	err = fs_dir_fresh(fs, root);
	pthread_mutex_unlock(&fs->t.lock);
	return err;
}

void fs_free(struct fs *fs)
{
	struct data_stats st;

	if (!fs)
		return;
	if (fs->data && fs->served) {
		data_get_stats(fs->data, &st);
		log_info("origin reads %llu (%llu MiB, %llu partial, %llu across "
			 "two chunks), prefetched "
			 "%llu (window up to %llu chunks), chunks filled %llu "
			 "(%llu from memory), fill waits %llu (%llu stalled), "
			 "requests during fills %llu, "
			 "memory hits %llu, disk hits %llu, spliced reads %llu, "
			 "disk writes %llu (%llu buffered), errors %llu",
			 (unsigned long long)st.origin_reads,
			 (unsigned long long)(st.origin_bytes >> 20),
			 (unsigned long long)st.fragments,
			 (unsigned long long)st.pair_reads,
			 (unsigned long long)st.prefetched,
			 (unsigned long long)st.window_max,
			 (unsigned long long)st.fills,
			 (unsigned long long)st.fills_mem,
			 (unsigned long long)st.fill_waits,
			 (unsigned long long)st.fill_stalls,
			 (unsigned long long)st.fill_hedges,
			 (unsigned long long)st.mem_hits,
			 (unsigned long long)st.disk_hits,
			 (unsigned long long)st.spliced,
			 (unsigned long long)st.disk_writes,
			 (unsigned long long)st.disk_writes_buffered,
			 (unsigned long long)st.errors);
	}
	/* Fetch threads first: they use the store and the disk tier. */
	data_free(fs->data);
	fs_disk_close(fs->disk);
	store_close(fs->store);
	fs_table_destroy(&fs->t);
	pthread_cond_destroy(&fs->inval_done);
	pthread_mutex_destroy(&fs->inval_lock);
	free(fs);
}

struct fs_ready {
	struct fs *fs;
	const char *mountpoint;
	void (*ready)(void *arg, int err, const char *msg);
	void *arg;
	int answered; /* atomic: the stat of the mount point returned */
};

/*
 * FUSE caps a mount's readahead at 128 KiB when it starts; with
 * synchronous reads every readahead window is one round trip through the
 * daemon, so a larger window is most of the sequential throughput. The
 * bdi's sysfs knob (root only) takes effect after INIT, so set it then.
 */
static void fs_tune_readahead(struct fs *fs, const struct stat *st)
{
	char path[96], val[32];
	int fd, n;

	if (!fs->o.readahead)
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 major(st->st_dev), minor(st->st_dev));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		log_debug("readahead stays at the kernel's default: %s: %s",
			  path, strerror(errno));
		return;
	}
	n = snprintf(val, sizeof(val), "%u", fs->o.readahead / 1024);
	if (write(fd, val, (size_t)n) != n)
		log_debug("setting %s: %s", path, strerror(errno));
	close(fd);
}

/* Opens the readers' first connection (the store's warm op). */
static void *fs_warm_thread(void *arg)
{
	struct fs *fs = arg;

	fs->store->ops->warm(fs->store);
	return NULL;
}

/*
 * Runs beside the session loop: a stat of the mount point waits until
 * the kernel's INIT has been answered, so "ready" means the mount
 * serves, not merely that mount(2) returned.
 */
static void *fs_ready_thread(void *arg)
{
	struct fs_ready *r = arg;
	bool warming = false;
	pthread_t warm;
	struct stat st;
	int rc;

	rc = stat(r->mountpoint, &st);
	__atomic_store_n(&r->answered, 1, __ATOMIC_RELEASE);
	if (rc == 0) {
		fs_tune_readahead(r->fs, &st);
		r->ready(r->arg, 0, NULL);
		/* After the mount is reported ready, not before, and on a
		 * thread of its own: it holds up neither the mount nor the
		 * watch below (store_abort ends it). A read that comes first
		 * connects by itself, as without it. */
		warming = r->fs->store->ops->warm &&
			  !pthread_create(&warm, NULL, fs_warm_thread, r->fs);
		/*
		 * Then wait for the session's end (watch.c): the loop returns
		 * only once every request is answered, so readers waiting on
		 * the origin are answered now rather than after the origin
		 * timeout.
		 */
		fs_watch_wait(r->fs->se, st.st_dev);
		store_abort(r->fs->store);
		data_abort(r->fs->data);
		if (warming)
			pthread_join(warm, NULL);
	} else {
		char msg[128];
		int err = -errno;

		snprintf(msg, sizeof(msg), "the new mount does not answer: %s",
			 strerror(errno));
		r->ready(r->arg, err, msg);
		fuse_session_exit(r->fs->se);
	}
	return NULL;
}

int fs_run(struct fs *fs, const char *mountpoint, int fuse_argc,
	   char **fuse_argv, void (*ready)(void *arg, int err, const char *msg),
	   void *arg)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *lc = NULL;
	struct fs_ready rd;
	pthread_t rd_thread;
	char fsname[300];
	bool user_max_read = false;
	int err = -ENOMEM, i;

	if (fs->disk_err)
		log_warn("cannot open the chunk cache in %s: %s; reading "
			 "without it", fs->o.cache_dir, strerror(-fs->disk_err));
	/* fsname shows in mount(8) and df: the URL without credentials. */
	snprintf(fsname, sizeof(fsname), "-ofsname=%s,subtype=cofault,ro",
		 fs->store->ops->describe(fs->store));
	/* Commas would split the option list. */
	for (i = 9; fsname[i] && strncmp(fsname + i, ",subtype", 8); i++)
		if (fsname[i] == ',')
			fsname[i] = '_';
	if (fuse_opt_add_arg(&args, "cofault") ||
	    fuse_opt_add_arg(&args, fsname) ||
	    (fs->o.debug && fuse_opt_add_arg(&args, "-d")))
		goto out_args;
	for (i = 0; i < fuse_argc; i++) {
		const char *m = strstr(fuse_argv[i], "max_read=");

		if (fuse_opt_add_arg(&args, fuse_argv[i]))
			goto out_args;
		/* libfuse refuses the session at init unless conn->max_read
		 * says the same as the mount option: fs_init sets it. */
		if (m) {
			user_max_read = true;
			fs->max_read = (unsigned int)strtoul(m + 9, NULL, 10);
		}
	}
	if (fs->o.splice && fs->disk && !user_max_read) {
		char opt[32];

		snprintf(opt, sizeof(opt), "-omax_read=%u", FS_SPLICE_MAX_READ);
		if (fuse_opt_add_arg(&args, opt))
			goto out_args;
		fs->max_read = FS_SPLICE_MAX_READ;
	}
	fs->se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), fs);
	if (!fs->se) {
		err = -EINVAL;
		ready(arg, err, "invalid FUSE options");
		goto out_args;
	}
	if (fuse_set_signal_handlers(fs->se)) {
		err = -EIO;
		ready(arg, err, "cannot install signal handlers");
		goto out_session;
	}
	if (fuse_session_mount(fs->se, mountpoint)) {
		err = -EIO;
		ready(arg, err, "mounting failed (see the message above)");
		goto out_signals;
	}
	fs->served = true;
	lc = fuse_loop_cfg_create();
	if (!lc) {
		err = -ENOMEM;
		ready(arg, err, NULL);
		goto out_unmount;
	}
	err = fs_watch_init();
	if (err) {
		ready(arg, err, "cannot watch for signals");
		fuse_loop_cfg_destroy(lc);
		goto out_unmount;
	}
	rd.fs = fs;
	rd.mountpoint = mountpoint;
	rd.ready = ready;
	rd.arg = arg;
	rd.answered = 0;
	if (pthread_create(&rd_thread, NULL, fs_ready_thread, &rd)) {
		err = -EAGAIN;
		ready(arg, err, "cannot start a thread");
		fuse_loop_cfg_destroy(lc);
		goto out_watch;
	}
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_idle_threads(lc, 16);
	fuse_loop_cfg_set_max_threads(lc, 64);
	err = fuse_session_loop_mt(fs->se, lc);
	if (err > 0)
		err = 0; /* a signal ended the loop: a clean stop */
	fs_watch_end();
	/*
	 * A signal that came before the kernel's INIT was read (Ctrl-C
	 * right after the mount) ends the loop with INIT unanswered, and
	 * the ready thread's stat then waits for an answer that will never
	 * come; only the end of the connection returns it. Unmounting
	 * twice is harmless.
	 */
	if (!__atomic_load_n(&rd.answered, __ATOMIC_ACQUIRE))
		fuse_session_unmount(fs->se);
	pthread_join(rd_thread, NULL);
	fuse_loop_cfg_destroy(lc);
out_watch:
	fs_watch_fini();
out_unmount:
	fuse_session_unmount(fs->se);
	fs_inval_wait(fs);
out_signals:
	fuse_remove_signal_handlers(fs->se);
out_session:
	fuse_session_destroy(fs->se);
	fs->se = NULL;
out_args:
	fuse_opt_free_args(&args);
	return err;
}

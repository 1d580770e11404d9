// SPDX-License-Identifier: GPL-2.0
/*
 * cofault: a cooperative page-fault handler for mmap of FUSE files.
 *
 * /dev/cofault turns an fd of a regular FUSE file into a "mapping fd" whose
 * mmap() maps the FUSE file's own page cache with the vm_ops below. A fault
 * on a page the daemon has not delivered yet starts (or joins) one fetch per
 * page window, run by a worker, and then waits with the fault lock released
 * and, for user faults, interruptibly: signal handlers run promptly and other
 * threads' mmap/munmap/mprotect never wait for the network. The contract
 * followed here is documented in the project's fault-layer notes; the
 * kernel code it relies on is cited where it matters.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/hash.h>
#include <linux/hashtable.h>
#include <linux/jiffies.h>
#include <linux/kref.h>
#include <linux/ktime.h>
#include <linux/magic.h>
#include <linux/memcontrol.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pagemap.h>
#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include <linux/cofault.h>

#include "compat.h"

#define COFAULT_WINDOW_MAX 64 /* pages; bounds cofault_req.folios */

static unsigned int max_retries = 3;
module_param(max_retries, uint, 0644);
MODULE_PARM_DESC(max_retries, "fault attempts that drop the fault lock "
			      "before one waits with it held");

static unsigned int window_pages = 16;
module_param(window_pages, uint, 0644);
MODULE_PARM_DESC(window_pages,
		 "pages fetched per in-flight request (1-64, power of two)");

/*
 * Every fetch holds a worker until the daemon answers, and a daemon that
 * never answers keeps it. So one mount may have only this many in flight,
 * and all mounts together no more than the workqueue runs at once
 * (COFAULT_WQ_ACTIVE): no fetch ever queues behind another for a worker.
 * A miss past either bound is a plain fault (filemap_fault), which blocks
 * as a plain mmap of the file would but waits for nobody else's daemon.
 */
static unsigned int max_mount_fetches = 32;
module_param(max_mount_fetches, uint, 0644);
MODULE_PARM_DESC(max_mount_fetches,
		 "fetches in flight per FUSE mount; a miss past it is a plain "
		 "fault (0: every miss is)");

#define COFAULT_WQ_ACTIVE 256 /* cofault_wq's max_active */

static bool evict_before_retry;
module_param(evict_before_retry, bool, 0644);
MODULE_PARM_DESC(evict_before_retry, "testing only: drop the fetched window "
				     "before returning VM_FAULT_RETRY");

/*
 * Counters. Per CPU so that concurrent faults on different pages never share
 * a cache line here; summed when read (sysfs, COFAULT_IOC_STATS).
 */
enum cofault_stat {
	COFAULT_STAT_FAULTS,
	COFAULT_STAT_HITS,
	COFAULT_STAT_MISSES,
	COFAULT_STAT_RETRIES,
	COFAULT_STAT_INTERRUPTED,
	COFAULT_STAT_LOCK_HELD,
	COFAULT_STAT_SIGBUS,
	COFAULT_STAT_PLAIN,
	COFAULT_NR_STATS,
};

struct cofault_pcpu_stats {
	u64 count[COFAULT_NR_STATS];
	u64 wait_us_hist[COFAULT_HIST_BUCKETS];
};

static DEFINE_PER_CPU(struct cofault_pcpu_stats, cofault_pcpu);

static inline void cofault_count(enum cofault_stat s)
{
	this_cpu_inc(cofault_pcpu.count[s]);
}

/* Bucket i counts waits of [2^(i-1), 2^i) us, the last one all longer ones. */
static void cofault_count_wait(ktime_t start)
{
	s64 us = ktime_us_delta(ktime_get(), start);
	unsigned int b = us > 0 ? fls64(us) : 0;

	b = min_t(unsigned int, b, COFAULT_HIST_BUCKETS - 1);
	this_cpu_inc(cofault_pcpu.wait_us_hist[b]);
}

static void cofault_stats_sum(struct cofault_stats *out)
{
	int cpu, i;

	memset(out, 0, sizeof(*out));
	for_each_possible_cpu(cpu) {
		const struct cofault_pcpu_stats *s =
			per_cpu_ptr(&cofault_pcpu, cpu);

		out->faults += READ_ONCE(s->count[COFAULT_STAT_FAULTS]);
		out->hits += READ_ONCE(s->count[COFAULT_STAT_HITS]);
		out->misses += READ_ONCE(s->count[COFAULT_STAT_MISSES]);
		out->retries += READ_ONCE(s->count[COFAULT_STAT_RETRIES]);
		out->interrupted +=
			READ_ONCE(s->count[COFAULT_STAT_INTERRUPTED]);
		out->lock_held += READ_ONCE(s->count[COFAULT_STAT_LOCK_HELD]);
		out->sigbus += READ_ONCE(s->count[COFAULT_STAT_SIGBUS]);
		out->plain += READ_ONCE(s->count[COFAULT_STAT_PLAIN]);
		for (i = 0; i < COFAULT_HIST_BUCKETS; i++)
			out->wait_us_hist[i] += READ_ONCE(s->wait_us_hist[i]);
	}
}

/*
 * The fetches in flight on one superblock (one FUSE mount), for the bound
 * max_mount_fetches. Exists while @inflight is not zero.
 */
struct cofault_sb {
	struct hlist_node node; /* in cofault_sbs; cofault_reqs_lock */
	const struct super_block *sb; /* key; pinned by its fetches' files */
	unsigned int inflight; /* cofault_reqs_lock */
};

/*
 * One in-flight fetch of a window of pages of one file. Found through
 * cofault_reqs by (mapping, start) while in flight, so every fault on the
 * window joins it instead of starting another read.
 */
struct cofault_req {
	struct hlist_node node; /* in cofault_reqs until done; its lock */
	struct kref ref; /* the worker's plus one per waiter */
	struct address_space *mapping; /* key; kept alive by @file */
	pgoff_t start; /* key: first index of the window */
	unsigned int nr; /* pages in the window, clipped at EOF */
	struct file *file; /* counted; the worker reads through it */
	struct cofault_sb *csb; /* counts this fetch while it is hashed */
	/*
	 * Counted, may be NULL: the memory cgroup of the task whose fault
	 * started the fetch, charged for the pages the worker reads, as
	 * filemap_fault() would charge that task's. The worker itself would
	 * charge the root cgroup, and a container's limit would not hold.
	 */
	struct mem_cgroup *memcg;
	struct work_struct work;
	wait_queue_head_t wq; /* woken once, when @done is set */
	bool done; /* set by the worker, release/acquire */
	/* Written by the worker before @done, read-only afterwards: */
	int err; /* 0, or -errno of the read that stopped at @err_index */
	pgoff_t err_index; /* first index not read */
	unsigned int nr_folios;
	/* counted; lets a waiter holding the fault lock map the page even if
	 * memory pressure would otherwise reclaim it before the waiter runs */
	struct folio *folios[COFAULT_WINDOW_MAX];
};

static DEFINE_HASHTABLE(cofault_reqs, 8);
static DEFINE_HASHTABLE(cofault_sbs, 6);
/* Protects cofault_reqs, cofault_sbs and cofault_inflight. */
static DEFINE_SPINLOCK(cofault_reqs_lock);
static unsigned int cofault_inflight; /* fetches in cofault_reqs */
static struct workqueue_struct *cofault_wq;

static unsigned long cofault_req_key(struct address_space *mapping,
				     pgoff_t start)
{
	return hash_ptr(mapping, 32) ^ start;
}

static void cofault_req_release(struct kref *ref)
{
	struct cofault_req *req = container_of(ref, struct cofault_req, ref);
	unsigned int i;

	for (i = 0; i < req->nr_folios; i++)
		folio_put(req->folios[i]);
	mem_cgroup_put(req->memcg);
	fput(req->file);
	kfree(req);
	/*
	 * Last, so that the module stays while anything above runs; the
	 * return into this module after it is the same window every
	 * module_put() from module code has.
	 */
	module_put(THIS_MODULE);
}

static void cofault_req_put(struct cofault_req *req)
{
	kref_put(&req->ref, cofault_req_release);
}

static bool cofault_req_done(struct cofault_req *req)
{
	return smp_load_acquire(&req->done);
}

/* The error the fetch reports for @index, 0 if that page was read. */
static int cofault_req_error(struct cofault_req *req, pgoff_t index)
{
	return req->err && index >= req->err_index ? req->err : 0;
}

/*
 * Whether a failure of @req is a fault's own through @file. A fault joins
 * the fetch in flight for its window whichever open file of the inode
 * started it, but a read's error belongs to the handle it went through:
 * one the daemon has retired (its object changed) fails where a fresh one
 * reads. A fault through another file reads the page itself instead.
 */
static bool cofault_req_own(struct cofault_req *req, struct file *file)
{
	return req->file == file;
}

/* A new reference to the fetched folio holding @index, or NULL. */
static struct folio *cofault_req_folio(struct cofault_req *req, pgoff_t index)
{
	unsigned int i;

	for (i = 0; i < req->nr_folios; i++) {
		struct folio *folio = req->folios[i];

		if (index >= folio->index &&
		    index < folio->index + folio_nr_pages(folio)) {
			folio_get(folio);
			return folio;
		}
	}
	return NULL;
}

/*
 * The worker: read the window through the FUSE file, exactly as read() would,
 * so the daemon fetches while the faulting tasks are free to take signals.
 * It uses the opener's credentials so that FUSE sees the caller it would see
 * for a read() by that opener, not the kworker's root.
 */
static void cofault_req_work(struct work_struct *work)
{
	struct cofault_req *req = container_of(work, struct cofault_req, work);
	struct address_space *mapping = req->mapping;
	pgoff_t index = req->start, end = req->start + req->nr;
	struct file_ra_state ra;
	const struct cred *old_cred;
	struct mem_cgroup *old_memcg;
	int err = 0;

	old_cred = override_creds(req->file->f_cred);
	old_memcg = set_active_memcg(req->memcg);

	/*
	 * One asynchronous FUSE read for the whole window (fuse_readahead),
	 * then collect the pages; read_cache_folio() waits for each and reads
	 * synchronously whatever readahead skipped. A private ra state keeps
	 * the opener's sequential-read heuristics (file->f_ra) untouched.
	 */
	file_ra_state_init(&ra, mapping);
	page_cache_sync_readahead(mapping, &ra, req->file, req->start, req->nr);
	while (index < end) {
		struct folio *folio =
			read_cache_folio(mapping, index, NULL, req->file);

		if (IS_ERR(folio)) {
			err = PTR_ERR(folio);
			break;
		}
		req->folios[req->nr_folios++] = folio;
		index = folio->index + folio_nr_pages(folio);
	}

	set_active_memcg(old_memcg);
	revert_creds(old_cred);

	spin_lock(&cofault_reqs_lock);
	/* From here on a new fault on the window starts a new fetch. */
	hash_del(&req->node);
	cofault_inflight--;
	if (!--req->csb->inflight) {
		hash_del(&req->csb->node);
		kfree(req->csb);
	}
	req->csb = NULL;
	req->err = err;
	req->err_index = index;
	smp_store_release(&req->done, true);
	spin_unlock(&cofault_reqs_lock);

	wake_up_all(&req->wq);
	cofault_req_put(req);
}

static struct cofault_req *cofault_req_find(struct address_space *mapping,
					    pgoff_t start, unsigned long key)
{
	struct cofault_req *req;

	lockdep_assert_held(&cofault_reqs_lock);
	hash_for_each_possible(cofault_reqs, req, node, key)
		if (req->mapping == mapping && req->start == start)
			return req;
	return NULL;
}

static struct cofault_sb *cofault_sb_find(const struct super_block *sb)
{
	struct cofault_sb *csb;

	lockdep_assert_held(&cofault_reqs_lock);
	hash_for_each_possible(cofault_sbs, csb, node, (unsigned long)sb)
		if (csb->sb == sb)
			return csb;
	return NULL;
}

/*
 * Join the fetch in flight for the window [@start, @start + @nr) of @file or
 * start one. Returns a new reference (release with cofault_req_put()),
 * ERR_PTR(-EBUSY) when a new fetch would pass max_mount_fetches or
 * COFAULT_WQ_ACTIVE, or ERR_PTR(-ENOMEM). May sleep (allocation); takes no
 * lock across the sleep.
 */
static struct cofault_req *cofault_req_get(struct file *file, pgoff_t start,
					   unsigned int nr)
{
	struct address_space *mapping = file->f_mapping;
	const struct super_block *sb = file_inode(file)->i_sb;
	unsigned long key = cofault_req_key(mapping, start);
	struct cofault_req *req, *new = NULL;
	struct cofault_sb *csb, *new_csb = NULL;

	for (;;) {
		spin_lock(&cofault_reqs_lock);
		req = cofault_req_find(mapping, start, key);
		if (req) {
			kref_get(&req->ref);
			spin_unlock(&cofault_reqs_lock);
			kfree(new);
			kfree(new_csb);
			return req;
		}
		csb = cofault_sb_find(sb);
		if (cofault_inflight >= COFAULT_WQ_ACTIVE ||
		    (csb ? csb->inflight : 0) >= READ_ONCE(max_mount_fetches)) {
			spin_unlock(&cofault_reqs_lock);
			kfree(new);
			kfree(new_csb);
			return ERR_PTR(-EBUSY);
		}
		if (new && (csb || new_csb))
			break;
		spin_unlock(&cofault_reqs_lock);

		/* Accounted: the task whose fault asks pays for its fetch. */
		if (!new)
			new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
		if (!csb && !new_csb)
			new_csb = kzalloc(sizeof(*new_csb), GFP_KERNEL_ACCOUNT);
		if (!new || (!csb && !new_csb)) {
			kfree(new);
			kfree(new_csb);
			return ERR_PTR(-ENOMEM);
		}
	}

	/* cofault_reqs_lock held; nobody else has the window in flight. */
	if (!csb) {
		csb = new_csb;
		new_csb = NULL;
		csb->sb = sb;
		hash_add(cofault_sbs, &csb->node, (unsigned long)sb);
	}
	csb->inflight++;
	cofault_inflight++;
	kref_init(&new->ref); /* the caller's */
	kref_get(&new->ref); /* the worker's */
	new->mapping = mapping;
	new->start = start;
	new->nr = nr;
	new->file = get_file(file);
	new->csb = csb;
	/* The faulting task's (page cache has no mm to charge otherwise). */
	new->memcg = get_mem_cgroup_from_mm(current->mm);
	INIT_WORK(&new->work, cofault_req_work);
	init_waitqueue_head(&new->wq);
	/* The worker may outlive every mapping; keep its code loaded. */
	__module_get(THIS_MODULE);
	hash_add(cofault_reqs, &new->node, key);
	spin_unlock(&cofault_reqs_lock);
	kfree(new_csb);

	queue_work(cofault_wq, &new->work);
	return new;
}

/*
 * How many times the current fault of a task has returned VM_FAULT_RETRY,
 * and what the last fetch it waited for left it to do. The architecture code
 * keeps no count (x86 do_user_addr_fault loops for as long as RETRY comes
 * back), so the bound on retries has to live here. One record per task,
 * between a RETRY and the next attempt of the same fault.
 */
struct cofault_retry {
	struct hlist_node node; /* in cofault_retries; cofault_retries_lock */
	const struct task_struct *task; /* key; compared, never dereferenced */
	const struct address_space *mapping; /* compared only */
	pgoff_t index;
	unsigned int count;
	int err; /* the fetch failed for this task's file: SIGBUS */
	bool plain; /* it failed for another opener's file: a plain fault */
	unsigned long stamp; /* jiffies; records of tasks that died expire */
};

#define COFAULT_RETRY_EXPIRE (60 * HZ)

static DEFINE_HASHTABLE(cofault_retries, 6);
static DEFINE_SPINLOCK(cofault_retries_lock); /* protects cofault_retries */

/*
 * Remove the current task's record. If it is about the page being faulted,
 * copy it to *@count, *@err and *@plain; they are zero otherwise.
 */
static void cofault_retry_take(struct address_space *mapping, pgoff_t index,
			       unsigned int *count, int *err, bool *plain)
{
	struct cofault_retry *rec;

	*count = 0;
	*err = 0;
	*plain = false;
	spin_lock(&cofault_retries_lock);
	hash_for_each_possible(cofault_retries, rec, node,
			       (unsigned long)current) {
		if (rec->task == current) {
			hash_del(&rec->node);
			break;
		}
	}
	spin_unlock(&cofault_retries_lock);
	if (!rec)
		return;
	if (rec->mapping == mapping && rec->index == index) {
		*count = rec->count;
		*err = rec->err;
		*plain = rec->plain;
	}
	kfree(rec);
}

/* Store @rec (allocated by the caller) as the current task's record. */
static void cofault_retry_store(struct cofault_retry *rec,
				struct address_space *mapping, pgoff_t index,
				unsigned int count, int err, bool plain)
{
	unsigned long key = (unsigned long)current;
	struct cofault_retry *old;
	struct hlist_node *tmp;

	rec->task = current;
	rec->mapping = mapping;
	rec->index = index;
	rec->count = count;
	rec->err = err;
	rec->plain = plain;
	rec->stamp = jiffies;

	spin_lock(&cofault_retries_lock);
	hash_for_each_possible_safe(cofault_retries, old, tmp, node, key) {
		if (old->task == current ||
		    time_after(jiffies, old->stamp + COFAULT_RETRY_EXPIRE)) {
			hash_del(&old->node);
			kfree(old);
		}
	}
	hash_add(cofault_retries, &rec->node, key);
	spin_unlock(&cofault_retries_lock);
}

static void cofault_retry_free_all(void)
{
	struct cofault_retry *rec;
	struct hlist_node *tmp;
	int bkt;

	spin_lock(&cofault_retries_lock);
	hash_for_each_safe(cofault_retries, bkt, tmp, rec, node) {
		hash_del(&rec->node);
		kfree(rec);
	}
	spin_unlock(&cofault_retries_lock);
}

/*
 * Which signals may end a wait. x86 looks for signals only after a RETRY
 * (fault_signal_pending() in arch/x86/mm/fault.c) and lets a non-fatal one
 * end only a user-mode fault; a kernel-mode fault (copy_to_user into the
 * mapping) woken by one would come straight back, so it waits killable.
 */
static unsigned int cofault_wait_state(unsigned int flags)
{
	if ((flags & FAULT_FLAG_INTERRUPTIBLE) && (flags & FAULT_FLAG_USER))
		return TASK_INTERRUPTIBLE;
	return TASK_KILLABLE;
}

/*
 * Map @folio (a reference the caller passes in, consumed) at vmf->pgoff if
 * it still belongs to @mapping and is up to date. Returns VM_FAULT_LOCKED
 * with vmf->page set, VM_FAULT_SIGBUS past EOF, or 0 if the folio was
 * truncated or invalidated meanwhile.
 */
static vm_fault_t cofault_map_folio(struct vm_fault *vmf,
				    struct address_space *mapping,
				    struct folio *folio)
{
	pgoff_t max_idx;

	/*
	 * Uninterruptible, but only ever for an up-to-date folio of a
	 * read-only file: its lock is held briefly (reclaim, migration,
	 * invalidation), never across I/O.
	 */
	folio_lock(folio);
	if (folio->mapping != mapping || !folio_test_uptodate(folio)) {
		folio_unlock(folio);
		folio_put(folio);
		return 0;
	}
	/* As filemap_fault() does: the file may have shrunk meanwhile. */
	max_idx = DIV_ROUND_UP(i_size_read(mapping->host), PAGE_SIZE);
	if (vmf->pgoff >= max_idx) {
		folio_unlock(folio);
		folio_put(folio);
		cofault_count(COFAULT_STAT_SIGBUS);
		return VM_FAULT_SIGBUS;
	}
	vmf->page = folio_file_page(folio, vmf->pgoff);
	return VM_FAULT_LOCKED;
}

/* Map the page if it is cached and up to date; 0 if it is not. */
static vm_fault_t cofault_try_hit(struct vm_fault *vmf,
				  struct address_space *mapping)
{
	struct folio *folio = cofault_get_folio(mapping, vmf->pgoff);

	if (!folio)
		return 0;
	if (!folio_test_uptodate(folio)) {
		folio_put(folio);
		return 0;
	}
	return cofault_map_folio(vmf, mapping, folio);
}

/*
 * Start or join the fetch of the window holding vmf->pgoff. ERR_PTR(-ERANGE)
 * if the page is past the end of the file, which may have shrunk since the
 * caller looked: a window cut at the new end would not hold the page, and a
 * caller fetching again until it does would never stop.
 */
static struct cofault_req *cofault_fetch(struct vm_fault *vmf,
					 struct file *file)
{
	unsigned int win = clamp_t(unsigned int, window_pages, 1,
				   COFAULT_WINDOW_MAX);
	pgoff_t max_idx = DIV_ROUND_UP(i_size_read(file_inode(file)),
				       PAGE_SIZE);
	pgoff_t start;

	if (vmf->pgoff >= max_idx)
		return ERR_PTR(-ERANGE);
	win = rounddown_pow_of_two(win);
	start = round_down(vmf->pgoff, win);
	return cofault_req_get(file, start,
			       min_t(pgoff_t, win, max_idx - start));
}

/*
 * The fault as a plain mmap of the file takes it, through the VMA's own
 * file: what FUSE's own vm_ops do. It blocks while the daemon reads (the
 * fault lock dropped for the I/O where the flags allow, killable), but it
 * needs no worker and waits for no other opener's fetch.
 */
static vm_fault_t cofault_plain_fault(struct vm_fault *vmf)
{
	cofault_count(COFAULT_STAT_PLAIN);
	return filemap_fault(vmf);
}

/* What a fault answers when cofault_fetch() failed with @req. */
static vm_fault_t cofault_fetch_failed(struct vm_fault *vmf,
				       struct cofault_req *req)
{
	switch (PTR_ERR(req)) {
	case -ERANGE:
		cofault_count(COFAULT_STAT_SIGBUS);
		return VM_FAULT_SIGBUS;
	case -EBUSY:
		return cofault_plain_fault(vmf);
	default:
		return VM_FAULT_OOM;
	}
}

/*
 * Wait for @req (reference consumed) with the fault lock held, killable,
 * then map the page: what a fault that may not drop the lock does, and what
 * a fault past max_retries does so that a page evicted again and again
 * cannot livelock its task (filemap_fault's FAULT_FLAG_TRIED path does the
 * same).
 */
static vm_fault_t cofault_wait_locked(struct vm_fault *vmf, struct file *file,
				      struct cofault_req *req)
{
	struct address_space *mapping = file->f_mapping;
	struct folio *folio;
	vm_fault_t ret;
	ktime_t start;
	int err;

	cofault_count(COFAULT_STAT_LOCK_HELD);
	for (;;) {
		start = ktime_get();
		err = wait_event_killable(req->wq, cofault_req_done(req));
		cofault_count_wait(start);
		if (err) {
			cofault_req_put(req);
			cofault_count(COFAULT_STAT_INTERRUPTED);
			/*
			 * The task is dying. With ALLOW_RETRY the way out is
			 * RETRY, after which x86 notices the fatal signal;
			 * lock_folio_maybe_drop_mmap() in mm/filemap.c drops
			 * the lock for the same reason. Without it there is
			 * no way to ask for a retry: fail the access, which
			 * nobody will see.
			 */
			if ((vmf->flags & FAULT_FLAG_ALLOW_RETRY) &&
			    !(vmf->flags & FAULT_FLAG_RETRY_NOWAIT)) {
				cofault_release_fault_lock(vmf);
				return VM_FAULT_RETRY;
			}
			return VM_FAULT_SIGBUS;
		}
		err = cofault_req_error(req, vmf->pgoff);
		if (err) {
			bool own = cofault_req_own(req, file);

			cofault_req_put(req);
			if (!own)
				return cofault_plain_fault(vmf);
			cofault_count(COFAULT_STAT_SIGBUS);
			return VM_FAULT_SIGBUS;
		}
		folio = cofault_req_folio(req, vmf->pgoff);
		cofault_req_put(req);
		if (folio) {
			ret = cofault_map_folio(vmf, mapping, folio);
			if (ret)
				return ret | VM_FAULT_MAJOR;
		}
		/* Truncated or invalidated since the read: fetch again. */
		ret = cofault_try_hit(vmf, mapping);
		if (ret)
			return ret;
		req = cofault_fetch(vmf, file);
		if (IS_ERR(req))
			return cofault_fetch_failed(vmf, req);
	}
}

/*
 * Release the fault lock, wait for @req (reference consumed) and ask for a
 * retry. @count is how many retries this fault has had so far.
 */
static vm_fault_t cofault_wait_unlocked(struct vm_fault *vmf,
					struct file *file,
					struct cofault_req *req,
					unsigned int count)
{
	/* Copied before the lock goes: the VMA may be freed after it. */
	struct address_space *mapping = file->f_mapping;
	unsigned int state = cofault_wait_state(vmf->flags);
	bool own = cofault_req_own(req, file);
	pgoff_t index = vmf->pgoff;
	struct cofault_retry *rec;
	ktime_t start;
	int err;

	/*
	 * Allocated while the VMA is still ours: without the record the
	 * retry bound would be lost, so rather wait with the lock held.
	 */
	rec = kmalloc(sizeof(*rec), GFP_KERNEL_ACCOUNT);
	if (!rec)
		return cofault_wait_locked(vmf, file, req);

	/*
	 * @req pins req->file and so @mapping; nothing reached through the
	 * VMA is used after this (mm/internal.h maybe_unlock_mmap_for_io()
	 * pins vm_file for the same reason). From here the only valid
	 * returns are RETRY or COMPLETED.
	 */
	cofault_release_fault_lock(vmf);

	start = ktime_get();
	err = wait_event_state(req->wq, cofault_req_done(req), state);
	cofault_count_wait(start);

	if (err) {
		/*
		 * A signal: return so that it is delivered. The fetch goes
		 * on; the access after the handler finds the page or joins
		 * the same request. x86 does not retry after a signal, so
		 * the next attempt is a fresh fault and needs no record.
		 */
		cofault_count(COFAULT_STAT_INTERRUPTED);
		kfree(rec);
	} else {
		err = cofault_req_error(req, index);
		if (evict_before_retry)
			invalidate_inode_pages2_range(mapping, req->start,
						      req->start + req->nr - 1);
		cofault_retry_store(rec, mapping, index, count + 1,
				    own ? err : 0, err && !own);
	}
	cofault_count(COFAULT_STAT_RETRIES);
	cofault_req_put(req);
	/*
	 * MAJOR too: on 6.12 x86 marks the next attempt FAULT_FLAG_TRIED
	 * after a RETRY under the VMA lock only if VM_FAULT_MAJOR is set.
	 */
	return VM_FAULT_RETRY | VM_FAULT_MAJOR;
}

static vm_fault_t cofault_fault(struct vm_fault *vmf)
{
	struct file *file = vmf->vma->vm_file;
	struct address_space *mapping = file->f_mapping;
	unsigned int flags = vmf->flags;
	struct cofault_req *req;
	unsigned int count = 0;
	vm_fault_t ret;
	pgoff_t max_idx;
	bool plain = false;
	int err = 0;

	cofault_count(COFAULT_STAT_FAULTS);

	/* A record can only exist for a retried fault. */
	if (flags & FAULT_FLAG_TRIED)
		cofault_retry_take(mapping, vmf->pgoff, &count, &err, &plain);
	if (err) {
		/* The fetch this fault waited for failed (EIO, daemon gone). */
		cofault_count(COFAULT_STAT_SIGBUS);
		return VM_FAULT_SIGBUS;
	}
	/* It failed for another opener's file: read through our own. */
	if (plain)
		return cofault_plain_fault(vmf);

	max_idx = DIV_ROUND_UP(i_size_read(mapping->host), PAGE_SIZE);
	if (vmf->pgoff >= max_idx) {
		cofault_count(COFAULT_STAT_SIGBUS);
		return VM_FAULT_SIGBUS;
	}

	ret = cofault_try_hit(vmf, mapping);
	if (ret) {
		if (ret & VM_FAULT_LOCKED)
			cofault_count(COFAULT_STAT_HITS);
		return ret;
	}

	cofault_count(COFAULT_STAT_MISSES);
	req = cofault_fetch(vmf, file);
	if (IS_ERR(req))
		return cofault_fetch_failed(vmf, req);

	/* NOWAIT (only ever with ALLOW_RETRY): start the fetch, don't sleep. */
	if ((flags & FAULT_FLAG_ALLOW_RETRY) &&
	    (flags & FAULT_FLAG_RETRY_NOWAIT)) {
		cofault_req_put(req);
		return VM_FAULT_RETRY;
	}
	if (!(flags & FAULT_FLAG_ALLOW_RETRY) ||
	    count >= READ_ONCE(max_retries))
		return cofault_wait_locked(vmf, file, req);
	return cofault_wait_unlocked(vmf, file, req, count);
}

/* One module reference per VMA: rmmod must fail while any mapping lives. */
static void cofault_vm_open(struct vm_area_struct *vma)
{
	__module_get(THIS_MODULE);
}

static void cofault_vm_close(struct vm_area_struct *vma)
{
	module_put(THIS_MODULE);
}

static const struct vm_operations_struct cofault_vm_ops = {
	.open = cofault_vm_open,
	.close = cofault_vm_close,
	.fault = cofault_fault,
	/*
	 * Pages already cached are mapped without the page lock or a call
	 * into the module (fault-around); on 6.12 its presence is also what
	 * lets ->fault run under the per-VMA lock (vmf_can_call_fault()).
	 */
	.map_pages = filemap_map_pages,
};

/* path_noexec() of fs/exec.c. */
static bool cofault_noexec(const struct path *path)
{
	return (path->mnt->mnt_flags & MNT_NOEXEC) ||
	       (path->mnt->mnt_sb->s_iflags & SB_I_NOEXEC);
}

/* A mapping fd: private_data is the FUSE file, a counted reference. */
static int cofault_map_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct file *target = file->private_data;

	/*
	 * The mount is read-only. do_mmap() already refuses PROT_WRITE with
	 * MAP_SHARED on this O_RDONLY fd; clearing VM_MAYWRITE also stops a
	 * later mprotect() from adding it.
	 */
	if ((vma->vm_flags & (VM_SHARED | VM_WRITE)) == (VM_SHARED | VM_WRITE))
		return -EACCES;
	if (vma->vm_flags & VM_MAYSHARE)
		cofault_vm_flags_clear(vma, VM_MAYWRITE);
	/*
	 * No executable mapping at all: do_mmap() ran the security hooks
	 * (security_mmap_file(): AppArmor's "m", IMA's appraisal of code,
	 * SELinux's execute) on the anonymous file, before the FUSE file
	 * is put in below. A PROT_EXEC mapping made here would skip the
	 * policy a plain mmap of the file meets. libcofault maps those
	 * plainly. mprotect() adding PROT_EXEC later is checked against the
	 * VMA's file, the FUSE file, so it stays allowed where the mount's
	 * noexec (path_noexec(), not exported) does not forbid it.
	 */
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	if (cofault_noexec(&target->f_path))
		cofault_vm_flags_clear(vma, VM_MAYEXEC);

	/* The FUSE inode's own page cache, as dma-buf's mmap does. */
	vma_set_file(vma, target);
	vma->vm_ops = &cofault_vm_ops;
	__module_get(THIS_MODULE);
	return 0;
}

static int cofault_map_release(struct inode *inode, struct file *file)
{
	fput(file->private_data);
	return 0;
}

static const struct file_operations cofault_map_fops = {
	.owner = THIS_MODULE,
	.mmap = cofault_map_mmap,
	.release = cofault_map_release,
};

/* Per open of /dev/cofault. */
struct cofault_client {
	unsigned long state; /* COFAULT_CLIENT_* bits, atomic bitops */
	/* Granted; written once, by the caller that set API_CLAIMED,
	 * before API_DONE is set. */
	u64 features;
};

#define COFAULT_CLIENT_API_DONE 0
/* A handshake is answering or has answered: the next one is refused. */
#define COFAULT_CLIENT_API_CLAIMED 1

/* Whether @target may be mapped: 0 or a -errno the caller reports. */
static int cofault_check_target(struct file *target)
{
	struct inode *inode = file_inode(target);

	if (!S_ISREG(inode->i_mode))
		return -EINVAL;
	/* fuse and fuseblk both use FUSE_SUPER_MAGIC (fs/fuse/inode.c). */
	if (inode->i_sb->s_magic != FUSE_SUPER_MAGIC)
		return -EOPNOTSUPP;
	/* What mmap() itself would say for an fd not open for reading. */
	if (!(target->f_mode & FMODE_READ))
		return -EACCES;
	/*
	 * The worker reads through ->read_folio. A DAX file (virtiofs with
	 * dax) has none, and no page cache to share: its mmap maps the
	 * host's memory directly and never waits for the daemon anyway.
	 */
	if (IS_DAX(inode) || !target->f_mapping->a_ops->read_folio)
		return -EOPNOTSUPP;
	return 0;
}

static long cofault_ioc_api(struct cofault_client *client,
			    struct cofault_api __user *uarg)
{
	struct cofault_api api;

	if (copy_from_user(&api, uarg, sizeof(api)))
		return -EFAULT;
	if (memchr_inv(api.reserved, 0, sizeof(api.reserved)))
		return -EINVAL;
	if (api.api != COFAULT_API) {
		/* Tell the caller which version is served. */
		memset(&api, 0, sizeof(api));
		api.api = COFAULT_API;
		if (copy_to_user(uarg, &api, sizeof(api)))
			return -EFAULT;
		return -EINVAL;
	}
	api.features &= COFAULT_FEATURES_ALL;
	/*
	 * Like UFFDIO_API: negotiated once per open file. Claimed before
	 * anything is answered, so that of two racing calls one is refused
	 * before it writes features the other was granted.
	 */
	if (test_and_set_bit(COFAULT_CLIENT_API_CLAIMED, &client->state))
		return -EINVAL;
	if (copy_to_user(uarg, &api, sizeof(api))) {
		clear_bit(COFAULT_CLIENT_API_CLAIMED, &client->state);
		return -EFAULT;
	}
	client->features = api.features;
	smp_mb__before_atomic(); /* features before the bit, for readers */
	set_bit(COFAULT_CLIENT_API_DONE, &client->state);
	return 0;
}

/*
 * COFAULT_IOC_MAP. Errors: EINVAL unknown flags or non-zero pad/reserved;
 * EBADF fd not open (O_PATH included); EINVAL not a regular file;
 * EOPNOTSUPP not on a FUSE mount, or a DAX file; EACCES not open for reading;
 * EMFILE/ENOMEM.
 * On success map_fd is an O_RDONLY fd (O_CLOEXEC if asked) whose mmap maps
 * the FUSE file; MAP_SHARED with PROT_WRITE on it fails with EACCES.
 */
static long cofault_ioc_map(struct cofault_map __user *uarg)
{
	struct cofault_map map;
	struct file *target, *mfile;
	int fd, err;

	if (copy_from_user(&map, uarg, sizeof(map)))
		return -EFAULT;
	if ((map.flags & ~COFAULT_MAP_FLAGS_ALL) || map.pad ||
	    memchr_inv(map.reserved, 0, sizeof(map.reserved)))
		return -EINVAL;

	target = fget(map.fd);
	if (!target)
		return -EBADF;
	err = cofault_check_target(target);
	if (err)
		goto out_put_target;

	fd = get_unused_fd_flags(O_RDONLY | ((map.flags & COFAULT_MAP_CLOEXEC) ?
						     O_CLOEXEC :
						     0));
	if (fd < 0) {
		err = fd;
		goto out_put_target;
	}
	/* On success the mapping file owns the reference to @target. */
	mfile = anon_inode_getfile("[cofault]", &cofault_map_fops, target,
				   O_RDONLY);
	if (IS_ERR(mfile)) {
		err = PTR_ERR(mfile);
		goto out_put_fd;
	}
	/* Installed only once the caller can learn its number. */
	if (put_user(fd, &uarg->map_fd)) {
		fput(mfile);
		put_unused_fd(fd);
		return -EFAULT;
	}
	fd_install(fd, mfile);
	return 0;

out_put_fd:
	put_unused_fd(fd);
out_put_target:
	fput(target);
	return err;
}

static long cofault_ioc_stats(struct cofault_stats __user *uarg)
{
	struct cofault_stats st;

	cofault_stats_sum(&st);
	if (copy_to_user(uarg, &st, sizeof(st)))
		return -EFAULT;
	return 0;
}

static long cofault_dev_ioctl(struct file *file, unsigned int cmd,
			      unsigned long arg)
{
	struct cofault_client *client = file->private_data;
	void __user *uarg = (void __user *)arg;

	if (cmd == COFAULT_IOC_API)
		return cofault_ioc_api(client, uarg);
	/* Everything else only after the handshake. */
	if (!test_bit(COFAULT_CLIENT_API_DONE, &client->state))
		return -EINVAL;
	switch (cmd) {
	case COFAULT_IOC_MAP:
		return cofault_ioc_map(uarg);
	case COFAULT_IOC_STATS:
		return cofault_ioc_stats(uarg);
	default:
		return -ENOTTY;
	}
}

static int cofault_dev_open(struct inode *inode, struct file *file)
{
	struct cofault_client *client;

	client = kzalloc(sizeof(*client), GFP_KERNEL);
	if (!client)
		return -ENOMEM;
	file->private_data = client;
	return 0;
}

static int cofault_dev_release(struct inode *inode, struct file *file)
{
	kfree(file->private_data);
	return 0;
}

static const struct file_operations cofault_dev_fops = {
	.owner = THIS_MODULE,
	.open = cofault_dev_open,
	.release = cofault_dev_release,
	.unlocked_ioctl = cofault_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

/* sysfs: /sys/class/misc/cofault/{api_version,stats/...} */
static ssize_t api_version_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", COFAULT_API);
}
static DEVICE_ATTR_RO(api_version);

#define COFAULT_STAT_ATTR(name)                                            \
	static ssize_t name##_show(struct device *dev,                     \
				   struct device_attribute *attr, char *buf) \
	{                                                                  \
		struct cofault_stats st;                                   \
		cofault_stats_sum(&st);                                    \
		return sysfs_emit(buf, "%llu\n",                           \
				  (unsigned long long)st.name);            \
	}                                                                  \
	static DEVICE_ATTR_RO(name)

COFAULT_STAT_ATTR(faults);
COFAULT_STAT_ATTR(hits);
COFAULT_STAT_ATTR(misses);
COFAULT_STAT_ATTR(retries);
COFAULT_STAT_ATTR(interrupted);
COFAULT_STAT_ATTR(lock_held);
COFAULT_STAT_ATTR(sigbus);
COFAULT_STAT_ATTR(plain);

/* One line, COFAULT_HIST_BUCKETS counts, bucket i = waits < 2^i us. */
static ssize_t wait_us_hist_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	struct cofault_stats st;
	ssize_t n = 0;
	int i;

	cofault_stats_sum(&st);
	for (i = 0; i < COFAULT_HIST_BUCKETS; i++)
		n += sysfs_emit_at(buf, n, "%s%llu", i ? " " : "",
				   (unsigned long long)st.wait_us_hist[i]);
	n += sysfs_emit_at(buf, n, "\n");
	return n;
}
static DEVICE_ATTR_RO(wait_us_hist);

static struct attribute *cofault_top_attrs[] = {
	&dev_attr_api_version.attr,
	NULL,
};

static const struct attribute_group cofault_top_group = {
	.attrs = cofault_top_attrs,
};

static struct attribute *cofault_stats_attrs[] = {
	&dev_attr_faults.attr,	    &dev_attr_hits.attr,
	&dev_attr_misses.attr,	    &dev_attr_retries.attr,
	&dev_attr_interrupted.attr, &dev_attr_lock_held.attr,
	&dev_attr_sigbus.attr,	    &dev_attr_plain.attr,
	&dev_attr_wait_us_hist.attr,
	NULL,
};

static const struct attribute_group cofault_stats_group = {
	.name = "stats",
	.attrs = cofault_stats_attrs,
};

static const struct attribute_group *cofault_groups[] = {
	&cofault_top_group,
	&cofault_stats_group,
	NULL,
};

static struct miscdevice cofault_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "cofault",
	.fops = &cofault_dev_fops,
	.groups = cofault_groups,
	/* Harmless to everyone: it maps only files the caller can read. */
	.mode = 0666,
};

static int __init cofault_init(void)
{
	int err;

	/* Unbound: a worker blocks on the network, not on a CPU. */
	cofault_wq = alloc_workqueue("cofault", WQ_UNBOUND, COFAULT_WQ_ACTIVE);
	if (!cofault_wq)
		return -ENOMEM;
	err = misc_register(&cofault_dev);
	if (err)
		goto out_destroy_wq;
	pr_info("api %d loaded\n", COFAULT_API);
	return 0;

out_destroy_wq:
	destroy_workqueue(cofault_wq);
	return err;
}

static void __exit cofault_exit(void)
{
	misc_deregister(&cofault_dev);
	/* Every request holds a module reference: none is left here. */
	destroy_workqueue(cofault_wq);
	cofault_retry_free_all();
}

module_init(cofault_init);
module_exit(cofault_exit);

MODULE_DESCRIPTION("cooperative page faults for mmap of FUSE files");
MODULE_LICENSE("GPL");

/*
 * Page-sized buffers for the smallest fragments. A random reader keeps
 * one 4 KiB fragment per read in memory (until --max-memory evicts it);
 * from malloc each one grew the thread's arena by a page, an mprotect
 * and the allocator's slow path: about 6 us of the daemon's work on each
 * read (bench/README.md). Here a fresh buffer is the next page of a 2 MiB
 * mapping, faulted in with the pages after it (DATA_POOL_BATCH), and a
 * freed one is reused first.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fs/data-pool.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POOL_POISON(p) ASAN_POISON_MEMORY_REGION((p), DATA_POOL_PAGE)
#define POOL_UNPOISON(p) ASAN_UNPOISON_MEMORY_REGION((p), DATA_POOL_PAGE)
#define POOL_UNPOISON_MAP(m) ASAN_UNPOISON_MEMORY_REGION((m), DATA_POOL_MAP)
#else
#define POOL_POISON(p) ((void)(p))
#define POOL_UNPOISON(p) ((void)(p))
#define POOL_UNPOISON_MAP(m) ((void)(m))
#endif

/* One mapping: 512 buffers. */
#define DATA_POOL_MAP (2u * 1024 * 1024)
/*
 * Free buffers kept backed by memory. A burst of frees (eviction to make
 * room for a whole chunk drops 256 fragments) beyond this gives the
 * memory back, so the pool holds at most this much over what the data
 * path counts against --max-memory.
 */
#define DATA_POOL_KEEP 256u

/* Make room for one more pointer in *arr (*cap of them). 0 or -ENOMEM. */
static int pool_grow(void ***arr, size_t n, size_t *cap)
{
	size_t c = *cap ? *cap * 2 : 16;
	void **a;

	if (n < *cap)
		return 0;
	a = realloc(*arr, c * sizeof(*a));
	if (!a)
		return -ENOMEM;
	*arr = a;
	*cap = c;
	return 0;
}

/* A new mapping to hand buffers out from. 0 or -ENOMEM. */
static int pool_map(struct data_pool *p)
{
	void *m;

	if (pool_grow(&p->maps, p->nmaps, &p->maps_cap))
		return -ENOMEM;
	m = mmap(NULL, DATA_POOL_MAP, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	p->maps[p->nmaps++] = m;
	p->next = m;
	p->ready = m;
	p->end = (char *)m + DATA_POOL_MAP;
	return 0;
}

/* A DATA_POOL_PAGE buffer (its bytes undefined), or NULL when memory is
 * short. */
void *data_pool_take(struct data_pool *p)
{
	void *buf = p->free;

	if (buf) {
		POOL_UNPOISON(buf);
		p->free = *(void **)buf;
		p->nfree--;
		return buf;
	}
	if (p->nreleased) {
		buf = p->released[--p->nreleased];
		POOL_UNPOISON(buf);
		return buf;
	}
	if (p->next == p->end && pool_map(p))
		return NULL;
	if (p->next == p->ready) {
#ifdef MADV_POPULATE_WRITE
		/* Best effort: before Linux 5.14, or short of memory now,
		 * the pages fault in when touched, as they would anyway. */
		(void)madvise(p->next, DATA_POOL_BATCH, MADV_POPULATE_WRITE);
#endif
		p->ready += DATA_POOL_BATCH;
	}
	buf = p->next;
	p->next += DATA_POOL_PAGE;
	return buf;
}

/* Give back a buffer data_pool_take() returned. */
void data_pool_put(struct data_pool *p, void *buf)
{
	/* Past the bound the page goes back to the kernel, unless there is
	 * no room to remember it: then it stays, never lost. */
	if (p->nfree >= DATA_POOL_KEEP &&
	    !pool_grow(&p->released, p->nreleased, &p->released_cap)) {
		madvise(buf, DATA_POOL_PAGE, MADV_DONTNEED);
		POOL_POISON(buf);
		p->released[p->nreleased++] = buf;
		return;
	}
	*(void **)buf = p->free;
	POOL_POISON(buf);
	p->free = buf;
	p->nfree++;
}

/* Unmap every buffer, taken or not, and leave p empty. */
void data_pool_fini(struct data_pool *p)
{
	size_t i;

	for (i = 0; i < p->nmaps; i++) {
		/* ASan remembers poisoned addresses past munmap: a later
		 * mapping there must not inherit them. */
		POOL_UNPOISON_MAP(p->maps[i]);
		munmap(p->maps[i], DATA_POOL_MAP);
	}
	free(p->maps);
	free(p->released);
	memset(p, 0, sizeof(*p));
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The differences between the kernels cofault supports (6.1 and 6.12, the
 * Debian stable and backports series), kept in one place so cofault.c reads
 * as if written for a single kernel. Version tests use LINUX_VERSION_CODE:
 * FAULT_FLAG_VMA_LOCK is an enum value, so #ifdef cannot see it.
 */
#ifndef COFAULT_COMPAT_H
#define COFAULT_COMPAT_H

#include <linux/version.h>
#include <linux/mm.h>
#include <linux/pagemap.h>

/*
 * Release whichever lock the fault runs under. 6.4 added per-VMA locks and
 * 6.6 release_fault_lock() (include/linux/mm.h), which ends the VMA read lock
 * when FAULT_FLAG_VMA_LOCK is set and the mmap lock otherwise; before that a
 * fault always held mmap_lock for reading.
 */
static inline void cofault_release_fault_lock(struct vm_fault *vmf)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
	release_fault_lock(vmf);
#else
	mmap_read_unlock(vmf->vma->vm_mm);
#endif
}

/*
 * filemap_get_folio() returned NULL for "not cached" until 6.3 and
 * ERR_PTR(-ENOENT) from 6.3 on (66dabbb65d67); callers here want NULL.
 */
static inline struct folio *cofault_get_folio(struct address_space *mapping,
					      pgoff_t index)
{
	struct folio *folio = filemap_get_folio(mapping, index);

	return IS_ERR(folio) ? NULL : folio;
}

/* vm_flags became read-only in 6.3; writers go through vm_flags_clear(). */
static inline void cofault_vm_flags_clear(struct vm_area_struct *vma,
					  unsigned long flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_clear(vma, flags);
#else
	vma->vm_flags &= ~flags;
#endif
}

#endif /* COFAULT_COMPAT_H */

/*
 * struct store_dir: the growable array of entries that an origin's list
 * operation fills and the filesystem consumes. Shared by every origin and
 * by the listing parsers.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

int store_dir_add(struct store_dir *d, const char *name,
		  const struct store_attr *attr)
{
	struct store_dirent *e;
	char *copy;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;

		if (cap < d->cap || cap > SIZE_MAX / sizeof(*d->ents))
			return -ENOMEM;
		e = realloc(d->ents, cap * sizeof(*d->ents));
		if (!e)
			return -ENOMEM;
		d->ents = e;
		d->cap = cap;
	}
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	e = &d->ents[d->n++];
	e->name = copy;
	if (attr)
		e->attr = *attr;
	else
		memset(&e->attr, 0, sizeof(e->attr));
	return 0;
}

void store_dir_free(struct store_dir *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n; i++)
		free(d->ents[i].name);
	free(d->ents);
	d->ents = NULL;
	d->n = 0;
	d->cap = 0;
}

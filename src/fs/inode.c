/*
 * Inode table: a growable array indexed by inode number and a hash of
 * (parent, name) for lookups. All under one mutex: metadata operations
 * are cheap next to the network round trips they save.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/inode.h"

static size_t name_hash(const struct fs_table *t, uint64_t parent,
			const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ parent;

	while (*name) {
		h ^= (unsigned char)*name++;
		h *= 0x100000001b3ULL;
	}
	return (size_t)(h % t->nbuckets);
}

int fs_table_init(struct fs_table *t)
{
	struct fs_inode *root;

	memset(t, 0, sizeof(*t));
	t->nbuckets = 16381;
	t->names = calloc(t->nbuckets, sizeof(*t->names));
	t->cap = 1024;
	t->inodes = calloc(t->cap, sizeof(*t->inodes));
	root = calloc(1, sizeof(*root));
	if (!t->names || !t->inodes || !root)
		goto out_free;
	root->name = strdup("");
	root->path = strdup("");
	if (!root->name || !root->path)
		goto out_free;
	root->ino = 1;
	root->parent = 1;
	root->is_dir = true;
	root->attr.is_dir = true;
	root->attr_exact = true;
	root->nlookup = 1;
	t->inodes[0] = root;
	t->ninodes = 1;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->listed, NULL);
	return 0;

out_free:
	if (root) {
		free(root->name);
		free(root->path);
	}
	free(root);
	free(t->names);
	free(t->inodes);
	return -ENOMEM;
}

void fs_table_destroy(struct fs_table *t)
{
	size_t i;

	for (i = 0; i < t->ninodes; i++) {
		struct fs_inode *n = t->inodes[i];

		data_obj_put(n->obj);
		free(n->name);
		free(n->path);
		free(n->children);
		free(n);
	}
	free(t->inodes);
	free(t->names);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->listed);
}

struct fs_inode *fs_inode_get(struct fs_table *t, uint64_t ino)
{
	if (ino == 0 || ino > t->ninodes)
		return NULL;
	return t->inodes[ino - 1];
}

static struct fs_inode *fs_inode_find(struct fs_table *t, uint64_t parent,
				      const char *name)
{
	struct fs_inode *n = t->names[name_hash(t, parent, name)];

	while (n && !(n->parent == parent && !strcmp(n->name, name)))
		n = n->hnext;
	return n;
}

struct fs_inode *fs_inode_child(struct fs_table *t, uint64_t parent,
				const char *name)
{
	struct fs_inode *n = fs_inode_find(t, parent, name);

	return n && !n->gone ? n : NULL;
}

int fs_inode_add(struct fs_table *t, struct fs_inode *parent,
		 const char *name, bool is_dir, struct fs_inode **out)
{
	struct fs_inode *n = fs_inode_find(t, parent->ino, name);
	size_t b, plen;

	*out = NULL;
	if (n && n->is_dir == is_dir) {
		n->gone = false;
		*out = n;
		return 0;
	}
	if (n) {
		/* A file became a directory or the reverse: a new inode, so
		 * the kernel never sees one number change type. */
		struct fs_inode **pp =
			&t->names[name_hash(t, parent->ino, name)];

		while (*pp != n)
			pp = &(*pp)->hnext;
		*pp = n->hnext;
		n->hnext = NULL;
		n->gone = true;
	}
	if (t->ninodes == t->cap) {
		size_t ncap = t->cap * 2;
		struct fs_inode **ni = realloc(t->inodes, ncap * sizeof(*ni));

		if (!ni)
			return -ENOMEM;
		t->inodes = ni;
		t->cap = ncap;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	plen = strlen(parent->path);
	n->name = strdup(name);
	n->path = malloc(plen + strlen(name) + 2);
	if (!n->name || !n->path) {
		free(n->name);
		free(n->path);
		free(n);
		return -ENOMEM;
	}
	if (plen)
		sprintf(n->path, "%s/%s", parent->path, name);
	else
		strcpy(n->path, name);
	n->ino = t->ninodes + 1;
	n->parent = parent->ino;
	n->is_dir = is_dir;
	n->attr.is_dir = is_dir;
	t->inodes[t->ninodes++] = n;
	b = name_hash(t, parent->ino, name);
	n->hnext = t->names[b];
	t->names[b] = n;
	*out = n;
	return 0;
}

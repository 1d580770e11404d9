/*
 * Subcommands of the cofault program that live in src/fs.
 */
#ifndef FS_CMD_H
#define FS_CMD_H

int fs_cmd_mount(int argc, char **argv);
int fs_cmd_unmount(int argc, char **argv);
int fs_cmd_cache(int argc, char **argv);
int fs_cmd_prefetch(int argc, char **argv);

/* Parse "123", "64K", "1M", "2G" (powers of 1024); -EINVAL. */
int fs_parse_size(const char *s, unsigned long long *out);
/* The default chunk cache directory; a new string, NULL on ENOMEM. */
char *fs_default_cache_dir(void);

#endif

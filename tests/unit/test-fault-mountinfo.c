/*
 * Unit tests for src/fault/mountinfo.c: which mount-table lines make a
 * cofault mount, and the fixed-buffer reader (lines across reads, lines
 * longer than the buffer, end of stream).
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "fault/mountinfo.h"

/* A memfd holding text, positioned at its start. */
static int text_fd(const char *text)
{
	int fd = memfd_create("mountinfo", MFD_CLOEXEC);
	size_t len = strlen(text);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static int find(const char *text, dev_t dev)
{
	int fd = text_fd(text), r;

	r = fault_mountinfo_find(fd, dev);
	close(fd);
	return r;
}

#define ROOT "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
#define COFAULT                                                                \
	"40 22 0:52 / /mnt/data ro,nosuid,nodev,relatime shared:30 - "         \
	"fuse.cofault cofault ro,user_id=0,group_id=0\n"
#define SSHFS                                                                  \
	"41 22 0:53 / /mnt/ssh rw,nosuid,nodev,relatime - fuse.sshfs "         \
	"host:/ rw,user_id=0,group_id=0\n"

static void test_subtype(void **state)
{
	assert_int_equal(find(ROOT COFAULT SSHFS, makedev(0, 52)),
			 FAULT_MOUNT_COFAULT);
	assert_int_equal(find(ROOT COFAULT SSHFS, makedev(0, 53)),
			 FAULT_MOUNT_OTHER);
	assert_int_equal(find(ROOT COFAULT SSHFS, makedev(8, 1)),
			 FAULT_MOUNT_OTHER);
	assert_int_equal(find(ROOT COFAULT SSHFS, makedev(0, 99)),
			 FAULT_MOUNT_ABSENT);
	/* 0:5 must not match 0:52, nor 0:52 match 10:52. */
	assert_int_equal(find(COFAULT, makedev(0, 5)), FAULT_MOUNT_ABSENT);
	assert_int_equal(find(COFAULT, makedev(10, 52)), FAULT_MOUNT_ABSENT);
}

static void test_fsname_only(void **state)
{
	/* No subtype: type "fuse", the fsname as the source. */
	assert_int_equal(
		find("40 22 0:60 / /m ro - fuse cofault ro\n", makedev(0, 60)),
		FAULT_MOUNT_COFAULT);
	assert_int_equal(find("40 22 0:60 / /m ro - fuseblk cofault ro\n",
			      makedev(0, 60)),
			 FAULT_MOUNT_COFAULT);
	assert_int_equal(
		find("40 22 0:60 / /m ro - fuse other ro\n", makedev(0, 60)),
		FAULT_MOUNT_OTHER);
	/* The source alone does not make a non-FUSE mount cofault's. */
	assert_int_equal(
		find("40 22 0:60 / /m ro - tmpfs cofault ro\n", makedev(0, 60)),
		FAULT_MOUNT_OTHER);
}

static void test_optional_fields(void **state)
{
	/* Any number of optional fields before the "-". */
	assert_int_equal(
		find("40 22 0:61 / /m ro shared:1 master:2 propagate_from:3 "
		     "unbindable - fuse.cofault cofault ro\n",
		     makedev(0, 61)),
		FAULT_MOUNT_COFAULT);
	assert_int_equal(find("40 22 0:61 / /m ro - fuse.cofault cofault ro\n",
			      makedev(0, 61)),
			 FAULT_MOUNT_COFAULT);
	/* A mount point that looks like a separator is not one. */
	assert_int_equal(find("40 22 0:61 / - ro - fuse.cofault cofault ro\n",
			      makedev(0, 61)),
			 FAULT_MOUNT_COFAULT);
	/* Truncated: no type after the separator. */
	assert_int_equal(find("40 22 0:61 / /m ro -\n", makedev(0, 61)),
			 FAULT_MOUNT_OTHER);
	/* The first line of a device decides (bind mounts repeat it). */
	assert_int_equal(find(COFAULT COFAULT, makedev(0, 52)),
			 FAULT_MOUNT_COFAULT);
}

/* Many lines, so the wanted one crosses the 8 KiB buffer's boundaries. */
static void test_many_lines(void **state)
{
	size_t size = 400 * 128 + sizeof(COFAULT);
	char *text = malloc(size), *p = text;
	int i;

	assert_non_null(text);
	for (i = 0; i < 400; i++)
		p += sprintf(p, "%d 22 0:%d / /mnt/m%d rw - tmpfs tmpfs rw\n",
			     100 + i, 1000 + i, i);
	strcpy(p, COFAULT);
	for (i = 0; i < 400; i++)
		assert_int_equal(find(text, makedev(0, (unsigned)(1000 + i))),
				 FAULT_MOUNT_OTHER);
	assert_int_equal(find(text, makedev(0, 52)), FAULT_MOUNT_COFAULT);
	free(text);
}

/* A line longer than the buffer is skipped, and only that line. */
static void test_long_line(void **state)
{
	size_t opts = 20000;
	char *text = malloc(opts + 1024), *p = text;

	assert_non_null(text);
	p += sprintf(p, "40 22 0:70 / /long rw,");
	memset(p, 'x', opts);
	p += opts;
	p += sprintf(p, " - fuse.cofault cofault ro\n");
	strcpy(p, COFAULT);
	assert_int_equal(find(text, makedev(0, 70)), FAULT_MOUNT_ABSENT);
	assert_int_equal(find(text, makedev(0, 52)), FAULT_MOUNT_COFAULT);
	free(text);
}

static void test_read_error(void **state)
{
	int fds[2];

	/* A write-only descriptor: read() fails with EBADF. */
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(fault_mountinfo_find(fds[1], makedev(0, 52)), -EBADF);
	close(fds[0]);
	close(fds[1]);
	assert_int_equal(find("", makedev(0, 52)), FAULT_MOUNT_ABSENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subtype),
		cmocka_unit_test(test_fsname_only),
		cmocka_unit_test(test_optional_fields),
		cmocka_unit_test(test_many_lines),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_read_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * `cofault kmod status`: report on the kernel module from sysfs (is it
 * loaded, parameters) and from the device itself (API handshake, counters
 * via COFAULT_IOC_STATS), so what is printed is what a mapping would get.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/cofault.h>

#include "fault/fault.h"

#define KMOD_SYSFS "/sys/module/cofault"

/* The first line of a small sysfs file into buf, "?" if unreadable. */
static const char *kmod_read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	if (!f || !fgets(buf, (int)len, f)) {
		if (f)
			fclose(f);
		snprintf(buf, len, "?");
		return buf;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

static void kmod_print_param(const char *name)
{
	char path[128], val[64];

	snprintf(path, sizeof(path), KMOD_SYSFS "/parameters/%s", name);
	printf("  %-20s %s\n", name, kmod_read_line(path, val, sizeof(val)));
}

static int kmod_status(void)
{
	struct cofault_api api = {.api = COFAULT_API,
				  .features = COFAULT_FEATURES_ALL};
	struct cofault_stats st;
	int dev, i;

	if (access(KMOD_SYSFS, F_OK) != 0) {
		printf("cofault.ko: not loaded\n");
		return 1;
	}
	printf("cofault.ko: loaded\n");
	kmod_print_param("max_retries");
	kmod_print_param("window_pages");
	kmod_print_param("max_mount_fetches");

	dev = open(COFAULT_DEVICE, O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		printf("%s: %s\n", COFAULT_DEVICE, strerror(errno));
		return 1;
	}
	if (ioctl(dev, COFAULT_IOC_API, &api) < 0) {
		/* On a version mismatch the module says which one it serves. */
		printf("api: %s (module serves %" PRIu64 ", this tool %d)\n",
		       strerror(errno), (uint64_t)api.api, COFAULT_API);
		close(dev);
		return 1;
	}
	printf("api: %" PRIu64 ", features 0x%" PRIx64 "\n", (uint64_t)api.api,
	       (uint64_t)api.features);
	if (!(api.features & COFAULT_FEATURE_STATS) ||
	    ioctl(dev, COFAULT_IOC_STATS, &st) < 0) {
		printf("counters: unavailable\n");
		close(dev);
		return 1;
	}
	close(dev);

	printf("counters:\n");
	printf("  %-20s %" PRIu64 "\n", "faults", (uint64_t)st.faults);
	printf("  %-20s %" PRIu64 "\n", "hits", (uint64_t)st.hits);
	printf("  %-20s %" PRIu64 "\n", "misses", (uint64_t)st.misses);
	printf("  %-20s %" PRIu64 "\n", "retries", (uint64_t)st.retries);
	printf("  %-20s %" PRIu64 "\n", "interrupted",
	       (uint64_t)st.interrupted);
	printf("  %-20s %" PRIu64 "\n", "lock_held", (uint64_t)st.lock_held);
	printf("  %-20s %" PRIu64 "\n", "sigbus", (uint64_t)st.sigbus);
	printf("  %-20s %" PRIu64 "\n", "plain", (uint64_t)st.plain);
	printf("wait time histogram:\n");
	for (i = 0; i < COFAULT_HIST_BUCKETS; i++) {
		if (!st.wait_us_hist[i])
			continue;
		if (i == COFAULT_HIST_BUCKETS - 1)
			printf("  >= %-8llu us %12" PRIu64 "\n",
			       1ULL << (i - 1), (uint64_t)st.wait_us_hist[i]);
		else
			printf("  <  %-8llu us %12" PRIu64 "\n", 1ULL << i,
			       (uint64_t)st.wait_us_hist[i]);
	}
	return 0;
}

int fault_cmd_kmod(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "status") == 0)
		return kmod_status();
	fprintf(stderr, "usage: cofault kmod status\n");
	return 2;
}

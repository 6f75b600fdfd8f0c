// SPDX-License-Identifier: GPL-2.0
/*
 * Times n DRM_IOCTL_I915_GETPARAM(CHIPSET_ID) calls on an i915 render node and prints the
 * median and 90th percentile. Used by tools/vm/bench.sh for virtio_intel.ko.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <drm/drm.h>
#include <drm/i915_drm.h>

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const char *node = argc > 2 ? argv[2] : "/dev/dri/renderD128";
	int n = argc > 1 ? atoi(argv[1]) : 1000;
	double *us;
	int fd, v;

	if (n <= 0) {
		fprintf(stderr, "usage: %s <count> [render node]\n", argv[0]);
		return 2;
	}
	fd = open(node, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", node, strerror(errno));
		return 1;
	}
	us = calloc(n, sizeof(*us));
	if (!us)
		return 1;
	for (int i = 0; i < n; i++) {
		struct drm_i915_getparam gp = { .param = I915_PARAM_CHIPSET_ID, .value = &v };
		struct timespec a, b;

		clock_gettime(CLOCK_MONOTONIC, &a);
		if (ioctl(fd, DRM_IOCTL_I915_GETPARAM, &gp)) {
			fprintf(stderr, "GETPARAM: %s\n", strerror(errno));
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		us[i] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
	}
	qsort(us, n, sizeof(*us), cmp);
	printf("bench getparam-kernel: median %.1f us p90 %.1f us over %d ops\n",
	       us[(n - 1) / 2], us[(int)((n - 1) * 0.9)], n);
	free(us);
	close(fd);
	return 0;
}

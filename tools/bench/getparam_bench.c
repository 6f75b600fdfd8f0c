// SPDX-License-Identifier: GPL-2.0
/*
 * Times n ioctls of each kind on an i915 render node and prints medians and 90th
 * percentiles: GETPARAM(HAS_GPU_RESET), which the driver asks of the host every time;
 * GETPARAM(EU_TOTAL), which it serves from its cache after the first call; and
 * DRM_IOCTL_VERSION, a no-op for comparison. Then the aggregate throughput of 1 and 8
 * threads sharing one fd. Used by tools/vm/bench.sh for virtio_intel.ko.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <drm/drm.h>
#include <drm/i915_drm.h>

#include "bench.h"


/* One ioctl of the given kind; 0 on success. */
static int op(int fd, const char *kind)
{
	int v;

	if (!strcmp(kind, "version")) {
		struct drm_version ver = { 0 };

		return ioctl(fd, DRM_IOCTL_VERSION, &ver);
	} else {
		/* uncached: asked of the host every time; cached: served by the driver. */
		struct drm_i915_getparam gp = {
			.param = !strcmp(kind, "uncached") ? I915_PARAM_HAS_GPU_RESET : I915_PARAM_EU_TOTAL,
			.value = &v,
		};

		return ioctl(fd, DRM_IOCTL_I915_GETPARAM, &gp);
	}
}

/* Times n ops of one kind and prints the median and 90th percentile. */
static int latency(int fd, const char *kind, int n)
{
	double *us = calloc(n, sizeof(*us));

	if (!us)
		return 1;
	for (int i = 0; i < n; i++) {
		double a = bench_now_us();

		if (op(fd, kind)) {
			fprintf(stderr, "%s: %s\n", kind, strerror(errno));
			return 1;
		}
		us[i] = bench_now_us() - a;
	}
	qsort(us, n, sizeof(*us), bench_cmp);
	printf("bench getparam-%s: median %.1f us p90 %.1f us over %d ops\n", kind,
	       us[(n - 1) / 2], us[(int)((n - 1) * 0.9)], n);
	free(us);
	return 0;
}

struct worker {
	pthread_t t;
	int fd, n, failed;
	const char *kind;
};

static void *work(void *p)
{
	struct worker *w = p;

	for (int i = 0; i < w->n; i++)
		w->failed |= op(w->fd, w->kind) != 0;
	return NULL;
}

/* Aggregate throughput of `threads` threads sharing one fd, n ops each. */
static int throughput(int fd, const char *kind, int threads, int n)
{
	struct worker w[8];
	double a = bench_now_us(), t;

	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){ .fd = fd, .n = n, .kind = kind };
		if (pthread_create(&w[i].t, NULL, work, &w[i]))
			return 1;
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(w[i].t, NULL);
		if (w[i].failed)
			return 1;
	}
	t = bench_now_us() - a;
	printf("bench throughput-%s-%dt: %.0f ops/s\n", kind, threads, threads * n / (t / 1e6));
	return 0;
}

int main(int argc, char **argv)
{
	const char *node = argc > 2 ? argv[2] : "/dev/dri/renderD128";
	int n = argc > 1 ? atoi(argv[1]) : 1000;
	int fd;

	if (n <= 0) {
		fprintf(stderr, "usage: %s <count> [render node]\n", argv[0]);
		return 2;
	}
	fd = open(node, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", node, strerror(errno));
		return 1;
	}
	/* Warm-up: the file's host context is created and the cache filled outside the timing. */
	if (op(fd, "uncached") || op(fd, "cached"))
		return 1;
	if (latency(fd, "uncached", n) || latency(fd, "cached", n) || latency(fd, "version", n))
		return 1;
	for (int threads = 1; threads <= 8; threads *= 8)
		if (throughput(fd, "uncached", threads, n / 4) || throughput(fd, "cached", threads, n))
			return 1;
	close(fd);
	return 0;
}

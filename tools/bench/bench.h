/* SPDX-License-Identifier: GPL-2.0 */
/* Timing helpers shared by the benchmark programs. */
#ifndef VIRTIO_INTEL_BENCH_H
#define VIRTIO_INTEL_BENCH_H

#include <time.h>

/* qsort comparator of doubles, ascending. */
static inline int bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* CLOCK_MONOTONIC in microseconds. */
static inline double bench_now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

#endif

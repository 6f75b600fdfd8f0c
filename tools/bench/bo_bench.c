// SPDX-License-Identifier: GPL-2.0
/*
 * Times GEM objects on an i915 render node and prints medians and 90th percentiles:
 *  - "bo": n times GEM_CREATE(4 KiB) + GEM_MMAP_OFFSET + mmap + one write + munmap +
 *    GEM_CLOSE (the first write faults the object into the host-visible window);
 *  - "evict" (with a window size in MiB): maps twice as many 64 KiB objects as the window
 *    holds, then writes to them round-robin, so that every write evicts an older mapping
 *    and faults its own object back in; the time per write is the cost of one eviction
 *    plus one refault;
 *  - "exec": n EXECBUFFER2 of an empty batch (MI_BATCH_BUFFER_END) on the render engine,
 *    each waited for with GEM_WAIT: the time of the submit ioctl ("exec-submit") and until
 *    the wait returns ("exec-done", the host fence reaching the guest waiter), then n
 *    GEM_WAITs on the idle object ("wait-idle"). The batch is softpinned, as Mesa does,
 *    which virtio_intel sends without waiting for the host's answer;
 *  - "exec-waited": the same with the batch not softpinned, which virtio_intel sends
 *    waiting for the host's answer ("exec-submit-waited", "exec-done-waited");
 *  - "chain": n EXECBUFFER2 of empty batches that all write one object (each depends on the
 *    one before), waited for once at the end: submissions per second;
 *  - "fence-chain": n EXECBUFFER2_WR of empty batches alternating between the render and
 *    copy engines, each taking the previous one's out-fence as its in-fence (an explicit
 *    dependency the guest resolves), waited for once at the end: submissions per second.
 * Used by tools/vm/bench.sh for virtio_intel.ko.
 * usage: bo_bench bo <n> | bo_bench evict <window MiB> <laps> | bo_bench exec <n> |
 *        bo_bench exec-waited <n> | bo_bench chain <n> | bo_bench fence-chain <n>
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <drm/drm.h>
#include <drm/i915_drm.h>

#include "bench.h"


static void report(const char *name, double *us, int n)
{
	qsort(us, n, sizeof(*us), bench_cmp);
	printf("bench %s: median %.1f us p90 %.1f us over %d ops\n", name, us[n / 2],
	       us[(int)((n - 1) * 0.9)], n);
}

/* A new object of `size` bytes mapped (WB) into this process; NULL on failure. */
static volatile uint32_t *create_map(int fd, uint64_t size, uint32_t *handle)
{
	struct drm_i915_gem_create c = { .size = size };
	struct drm_i915_gem_mmap_offset m = { .flags = I915_MMAP_OFFSET_WB };
	void *p;

	if (ioctl(fd, DRM_IOCTL_I915_GEM_CREATE, &c))
		return NULL;
	m.handle = c.handle;
	if (ioctl(fd, DRM_IOCTL_I915_GEM_MMAP_OFFSET, &m))
		return NULL;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)m.offset);
	if (p == MAP_FAILED)
		return NULL;
	*handle = c.handle;
	return p;
}

static int close_bo(int fd, uint32_t handle)
{
	struct drm_gem_close c = { .handle = handle };

	return ioctl(fd, DRM_IOCTL_GEM_CLOSE, &c);
}

/* An empty batch in a new object; 0 on failure. */
static uint32_t empty_batch(int fd)
{
	const uint32_t bbe[2] = { 0xau << 23, 0 };
	struct drm_i915_gem_create c = { .size = 4096 };
	struct drm_i915_gem_pwrite w = { .size = sizeof(bbe), .data_ptr = (uintptr_t)bbe };

	if (ioctl(fd, DRM_IOCTL_I915_GEM_CREATE, &c))
		return 0;
	w.handle = c.handle;
	if (ioctl(fd, DRM_IOCTL_I915_GEM_PWRITE, &w))
		return 0;
	return c.handle;
}

/* EXEC_OBJECT_PINNED, or 0 for "exec-waited". */
static uint64_t pinned = EXEC_OBJECT_PINNED;

/* One execbuffer of `batch` (softpinned), with `target` written when non-zero. */
static int exec(int fd, uint32_t batch, uint32_t target)
{
	struct drm_i915_gem_exec_object2 obj[2] = {
		{ .handle = target, .offset = 0x400000, .flags = pinned | EXEC_OBJECT_WRITE },
		{ .handle = batch, .offset = 0x200000, .flags = pinned },
	};
	struct drm_i915_gem_execbuffer2 eb = {
		.buffers_ptr = (uintptr_t)(target ? obj : obj + 1),
		.buffer_count = target ? 2 : 1,
		.flags = I915_EXEC_RENDER | I915_EXEC_NO_RELOC,
	};

	return ioctl(fd, DRM_IOCTL_I915_GEM_EXECBUFFER2, &eb);
}

/* An empty batch on `ring` after sync file `in` (or none, -1); its out-fence in *out. */
static int exec_fenced(int fd, uint32_t batch, uint64_t ring, int in, int *out)
{
	struct drm_i915_gem_exec_object2 obj = {
		.handle = batch, .offset = 0x200000, .flags = EXEC_OBJECT_PINNED,
	};
	struct drm_i915_gem_execbuffer2 eb = {
		.buffers_ptr = (uintptr_t)&obj, .buffer_count = 1,
		.flags = ring | I915_EXEC_NO_RELOC | I915_EXEC_FENCE_OUT |
			 (in >= 0 ? I915_EXEC_FENCE_IN : 0),
		.rsvd2 = in >= 0 ? (uint32_t)in : 0,
	};

	if (ioctl(fd, DRM_IOCTL_I915_GEM_EXECBUFFER2_WR, &eb))
		return -1;
	*out = eb.rsvd2 >> 32;
	return 0;
}

static int wait_bo(int fd, uint32_t handle)
{
	struct drm_i915_gem_wait w = { .bo_handle = handle, .timeout_ns = -1 };

	return ioctl(fd, DRM_IOCTL_I915_GEM_WAIT, &w);
}

int main(int argc, char **argv)
{
	const char *node = getenv("VIRTIO_INTEL_NODE");
	int fd = open(node ? node : "/dev/dri/renderD128", O_RDWR | O_CLOEXEC);
	double *us;

	if (fd < 0 || argc < 3) {
		fprintf(stderr, "usage: bo_bench bo <n> | bo_bench evict <window MiB> <laps> | "
			"bo_bench exec <n> | bo_bench chain <n>\n");
		return 2;
	}
	if (!strcmp(argv[1], "bo")) {
		int n = atoi(argv[2]);

		us = calloc(n, sizeof(*us));
		for (int i = 0; us && i < n; i++) {
			double t = bench_now_us();
			volatile uint32_t *p;
			uint32_t h;

			p = create_map(fd, 4096, &h);
			if (!p) {
				perror("create+map");
				return 1;
			}
			p[0] = i;
			munmap((void *)p, 4096);
			if (close_bo(fd, h)) {
				perror("close");
				return 1;
			}
			us[i] = bench_now_us() - t;
		}
		report("bo", us, n);
		return 0;
	}
	if (!strcmp(argv[1], "evict") && argc == 4) {
		const uint64_t size = 64 << 10;
		int n = (int)(((uint64_t)atoi(argv[2]) << 20) * 2 / size), laps = atoi(argv[3]);
		volatile uint32_t **maps = calloc(n, sizeof(*maps));
		uint32_t *handles = calloc(n, sizeof(*handles));

		us = calloc((size_t)n * laps, sizeof(*us));
		if (!maps || !handles || !us)
			return 1;
		for (int i = 0; i < n; i++) {
			maps[i] = create_map(fd, size, &handles[i]);
			if (!maps[i]) {
				perror("create+map");
				return 1;
			}
			maps[i][0] = i;
		}
		for (int l = 0; l < laps; l++) {
			for (int i = 0; i < n; i++) {
				double t = bench_now_us();

				maps[i][1] = l;
				us[l * n + i] = bench_now_us() - t;
			}
		}
		for (int i = 0; i < n; i++) {
			if (maps[i][0] != (uint32_t)i) {
				fprintf(stderr, "object %d lost its contents\n", i);
				return 1;
			}
		}
		report("evict-refault", us, n * laps);
		return 0;
	}
	if (!strcmp(argv[1], "fence-chain")) {
		int n = atoi(argv[2]), prev = -1;
		uint32_t batch = empty_batch(fd);
		double t0 = bench_now_us();

		if (!batch || n < 1)
			return 1;
		for (int i = 0; i < n; i++) {
			int out = -1;

			if (exec_fenced(fd, batch, i % 2 ? I915_EXEC_BLT : I915_EXEC_RENDER, prev, &out)) {
				perror("execbuffer");
				return 1;
			}
			if (prev >= 0)
				close(prev);
			prev = out;
		}
		if (wait_bo(fd, batch)) {
			perror("wait");
			return 1;
		}
		printf("bench exec-fence-chain: %.0f submissions/s over %d ops\n",
		       n / ((bench_now_us() - t0) / 1e6), n);
		close(prev);
		return 0;
	}
	if (!strcmp(argv[1], "exec") || !strcmp(argv[1], "exec-waited") ||
	    !strcmp(argv[1], "chain")) {
		int waited = !strcmp(argv[1], "exec-waited");
		int n = atoi(argv[2]);
		uint32_t batch = empty_batch(fd), target = empty_batch(fd);
		double *done = calloc(n, sizeof(*done)), t0;

		us = calloc(n, sizeof(*us));
		if (!us || !done || !batch || !target || n < 1)
			return 1;
		if (waited)
			pinned = 0;
		if (!strcmp(argv[1], "chain")) {
			t0 = bench_now_us();
			for (int i = 0; i < n; i++) {
				if (exec(fd, batch, target)) {
					perror("execbuffer");
					return 1;
				}
			}
			if (wait_bo(fd, target)) {
				perror("wait");
				return 1;
			}
			printf("bench exec-chain: %.0f submissions/s over %d ops\n",
			       n / ((bench_now_us() - t0) / 1e6), n);
			return 0;
		}
		for (int i = 0; i < n; i++) {
			double t = bench_now_us();

			if (exec(fd, batch, 0)) {
				perror("execbuffer");
				return 1;
			}
			us[i] = bench_now_us() - t;
			if (wait_bo(fd, batch)) {
				perror("wait");
				return 1;
			}
			done[i] = bench_now_us() - t;
		}
		if (waited) {
			report("exec-submit-waited", us, n);
			report("exec-done-waited", done, n);
			return 0;
		}
		report("exec-submit", us, n);
		report("exec-done", done, n);
		for (int i = 0; i < n; i++) {
			double t = bench_now_us();

			if (wait_bo(fd, batch))
				return 1;
			us[i] = bench_now_us() - t;
		}
		report("wait-idle", us, n);
		return 0;
	}
	fprintf(stderr, "usage: bo_bench bo <n> | bo_bench evict <window MiB> <laps> | "
		"bo_bench exec <n> | bo_bench exec-waited <n> | bo_bench chain <n> | "
		"bo_bench fence-chain <n>\n");
	return 2;
}

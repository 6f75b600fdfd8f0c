// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_intel: the i915 uAPI of the render node, answered by the host.
 *
 * Runs in a guest with virtio_intel.ko bound. The expected PCI device id of the host GPU
 * comes from VIRTIO_INTEL_DEVICE_ID (default 0x9a49, the software host's TGL GT2).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/prctl.h>
#include <glob.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <time.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <drm/drm.h>
#include <drm/i915_drm.h>
#include <linux/sync_file.h>

#include "kselftest_harness.h"

static const char *render_node(void)
{
	const char *n = getenv("VIRTIO_INTEL_NODE");

	return n ? n : "/dev/dri/renderD128";
}

static int expected_devid(void)
{
	const char *s = getenv("VIRTIO_INTEL_DEVICE_ID");

	return s ? (int)strtol(s, NULL, 0) : 0x9a49;
}

static int getparam(int fd, int param, int *value)
{
	struct drm_i915_getparam gp = { .param = param, .value = value };

	return ioctl(fd, DRM_IOCTL_I915_GETPARAM, &gp) ? -errno : 0;
}

static int query_item(int fd, struct drm_i915_query_item *item)
{
	struct drm_i915_query q = {
		.num_items = 1,
		.items_ptr = (uintptr_t)item,
	};

	return ioctl(fd, DRM_IOCTL_I915_QUERY, &q) ? -errno : 0;
}

/* The driver's debugfs counters: /sys/kernel/debug/virtio_intel-<N>/live. */
static int live_path(char *out, size_t n)
{
	glob_t g;
	int r = -1;

	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);	/* EBUSY if mounted */
	if (glob("/sys/kernel/debug/virtio_intel-*/live", 0, NULL, &g) == 0) {
		if (g.gl_pathc == 1) {
			snprintf(out, n, "%s", g.gl_pathv[0]);
			r = 0;
		}
		globfree(&g);
	}
	return r;
}

/* Reads counter `key` (contexts, blobs, window_bytes, quarantined_bytes); -1 on error. */
static long live_counter(const char *key)
{
	char path[256], line[256];
	long v = -1;
	FILE *f;

	if (live_path(path, sizeof(path)))
		return -1;
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char k[64];
		long x;

		if (sscanf(line, "%63s %ld", k, &x) == 2 && !strcmp(k, key)) {
			v = x;
			break;
		}
	}
	fclose(f);
	return v;
}

/* Waits up to 10 s for every live counter to read 0 (teardown runs at close). */
static int live_counters_zero(long *ctx, long *blobs, long *bytes, long *quar)
{
	for (int i = 0; i < 100; i++) {
		*ctx = live_counter("contexts");
		*blobs = live_counter("blobs");
		*bytes = live_counter("window_bytes");
		*quar = live_counter("quarantined_bytes");
		if (!*ctx && !*blobs && !*bytes && !*quar && !live_counter("objects"))
			return 1;
		usleep(100 * 1000);
	}
	return 0;
}

/* The virtio device virtio_intel is bound to ("virtioN"), or "" if none. */
static void bound_device(char *dev, size_t n)
{
	DIR *d = opendir("/sys/bus/virtio/drivers/virtio_intel");
	struct dirent *e;

	dev[0] = 0;
	if (!d)
		return;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "virtio", 6))
			snprintf(dev, n, "%s", e->d_name);
	closedir(d);
}

/* Writes `val` to sysfs file `path`: 0 or -errno. */
static int write_sysfs(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		r = -errno;
	close(fd);
	return r;
}

/* The real path of DRM node `node`'s device (/sys/dev/char/M:m/device) in `out` (PATH_MAX
 * bytes): 0 or -1. */
static int node_device(const char *node, char *out)
{
	char path[64];
	struct stat st;

	if (stat(node, &st))
		return -1;
	snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/device", major(st.st_rdev), minor(st.st_rdev));
	return realpath(path, out) ? 0 : -1;
}

static int driver_attr(const char *attr, const char *dev)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/bus/virtio/drivers/virtio_intel/%s", attr);
	return write_sysfs(path, dev);
}
/* GEM_CREATE: the handle, or -errno; *size is updated as the kernel writes it back. */
static int gem_create(int fd, uint64_t *size, uint32_t *handle)
{
	struct drm_i915_gem_create c = { .size = *size };

	if (ioctl(fd, DRM_IOCTL_I915_GEM_CREATE, &c))
		return -errno;
	*size = c.size;
	*handle = c.handle;
	return 0;
}

static int gem_create_ext(int fd, uint64_t size, uint32_t flags, void *ext, uint32_t *handle)
{
	struct drm_i915_gem_create_ext c = {
		.size = size, .flags = flags, .extensions = (uintptr_t)ext,
	};

	if (ioctl(fd, DRM_IOCTL_I915_GEM_CREATE_EXT, &c))
		return -errno;
	*handle = c.handle;
	return 0;
}

static int gem_close(int fd, uint32_t handle)
{
	struct drm_gem_close c = { .handle = handle };

	return ioctl(fd, DRM_IOCTL_GEM_CLOSE, &c) ? -errno : 0;
}

static int mmap_offset(int fd, uint32_t handle, uint64_t flags, uint64_t *offset)
{
	struct drm_i915_gem_mmap_offset m = { .handle = handle, .flags = flags };

	if (ioctl(fd, DRM_IOCTL_I915_GEM_MMAP_OFFSET, &m))
		return -errno;
	*offset = m.offset;
	return 0;
}

/* Maps `size` bytes of object `handle` (WB), or MAP_FAILED. */
static void *gem_map(int fd, uint32_t handle, size_t size)
{
	uint64_t off = 0;

	if (mmap_offset(fd, handle, I915_MMAP_OFFSET_WB, &off))
		return MAP_FAILED;
	return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
}

static void on_signal(int sig)
{
	(void)sig;
}

/*
 * Sends SIGUSR1 to `pid` every `period_us` until it exits or `secs` pass; a child still
 * running then is killed. Returns whether it exited by itself, with its wait status.
 */
static int signal_storm(pid_t pid, useconds_t period_us, int secs, int *status)
{
	struct timespec t0, t;
	int exited;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		kill(pid, SIGUSR1);
		usleep(period_us);
		clock_gettime(CLOCK_MONOTONIC, &t);
		exited = waitpid(pid, status, WNOHANG) == pid;
	} while (!exited && t.tv_sec - t0.tv_sec < secs);
	if (!exited) {
		kill(pid, SIGKILL);
		waitpid(pid, status, 0);
	}
	return exited;
}

FIXTURE(node) {
	int fd;
};

FIXTURE_SETUP(node)
{
	self->fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(self->fd, 0) TH_LOG("open %s: %s", render_node(), strerror(errno));
}

FIXTURE_TEARDOWN(node)
{
	close(self->fd);
}

TEST_F(node, version_is_i915)
{
	char name[32] = { 0 };
	struct drm_version v = { .name = name, .name_len = sizeof(name) - 1 };

	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_VERSION, &v));
	EXPECT_STREQ("i915", name);
}

/* How many times /proc/iomem names the driver's reservation of the host-visible region. */
static int region_reservations(void)
{
	char line[256];
	int n = 0;
	FILE *f = fopen("/proc/iomem", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, " : virtio_intel-host-visible"))
			n++;
	fclose(f);
	return n;
}

/*
 * IGT's drm_open_driver() writes dri/<minor>/i915_gem_drop_caches before every test: it
 * reads back i915's DROP_ALL, takes masks as kstrtou64 does, and refuses anything else.
 */
TEST_F(node, drop_caches_debugfs)
{
	char buf[64] = { 0 }, big[300];
	glob_t g;
	int fd;

	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);	/* EBUSY if mounted */
	ASSERT_EQ(0, glob("/sys/kernel/debug/dri/*/i915_gem_drop_caches", 0, NULL, &g));
	fd = open(g.gl_pathv[0], O_RDWR);
	globfree(&g);
	ASSERT_GE(fd, 0);
	ASSERT_LT(0, read(fd, buf, sizeof(buf) - 1));
	EXPECT_STREQ("0x000003ff\n", buf);
	EXPECT_EQ(5, pwrite(fd, "0x3ff", 5, 0));
	EXPECT_EQ(2, pwrite(fd, "0\n", 2, 0));
	EXPECT_EQ(-1, pwrite(fd, "12z", 3, 0));
	EXPECT_EQ(EINVAL, errno);
	memset(big, '1', sizeof(big));
	EXPECT_EQ(-1, pwrite(fd, big, sizeof(big), 0));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

/* The bound driver reserves the host-visible region, once. */
TEST_F(node, host_visible_region_is_reserved)
{
	EXPECT_EQ(1, region_reservations());
}

TEST_F(node, chipset_id_matches_the_capset)
{
	int v = 0;

	ASSERT_EQ(0, getparam(self->fd, I915_PARAM_CHIPSET_ID, &v));
	EXPECT_EQ(expected_devid(), v);
}

TEST_F(node, unknown_param_is_einval)
{
	int v = 0;

	EXPECT_EQ(-EINVAL, getparam(self->fd, 9999, &v));
}

TEST_F(node, bad_user_pointer_is_efault)
{
	EXPECT_EQ(-EFAULT, getparam(self->fd, I915_PARAM_CHIPSET_ID, (int *)8));
	EXPECT_EQ(-EFAULT, ioctl(self->fd, DRM_IOCTL_I915_GETPARAM, (void *)8) ? -errno : 0);
}

TEST_F(node, query_length_protocol)
{
	uint32_t ids[] = { DRM_I915_QUERY_TOPOLOGY_INFO, DRM_I915_QUERY_ENGINE_INFO };

	for (unsigned int i = 0; i < 2; i++) {
		struct drm_i915_query_item item = { .query_id = ids[i] };
		char *buf;

		ASSERT_EQ(0, query_item(self->fd, &item));
		ASSERT_GT(item.length, 0) TH_LOG("query %u: length %d", ids[i], item.length);
		buf = calloc(1, item.length);
		ASSERT_NE(NULL, buf);
		item.data_ptr = (uintptr_t)buf;
		ASSERT_EQ(0, query_item(self->fd, &item));
		EXPECT_GT(item.length, 0);
		if (ids[i] == DRM_I915_QUERY_ENGINE_INFO) {
			struct drm_i915_query_engine_info *e = (void *)buf;

			EXPECT_GE(e->num_engines, 1);
			EXPECT_EQ(I915_ENGINE_CLASS_RENDER, e->engines[0].engine.engine_class);
		} else {
			struct drm_i915_query_topology_info *t = (void *)buf;

			EXPECT_GE(t->max_slices, 1);
		}
		/* A larger buffer than needed: the item's size is copied and reported. */
		{
			int need = item.length;
			char *big = calloc(1, 1 << 16);

			ASSERT_NE(NULL, big);
			item.length = 1 << 16;
			item.data_ptr = (uintptr_t)big;
			ASSERT_EQ(0, query_item(self->fd, &item));
			EXPECT_EQ(need, item.length);
			EXPECT_EQ(0, memcmp(big, buf, need));
			item.data_ptr = (uintptr_t)buf;
			free(big);
		}
		/* Too small a buffer: a per-item -EINVAL, the ioctl itself succeeds. */
		item.length = 4;
		ASSERT_EQ(0, query_item(self->fd, &item));
		EXPECT_EQ(-EINVAL, item.length);
		free(buf);
	}
}

TEST_F(node, query_errors)
{
	struct drm_i915_query_item item = { .query_id = 0x7777 };
	struct drm_i915_query q = { .num_items = 1, .flags = 1, .items_ptr = (uintptr_t)&item };

	ASSERT_EQ(0, query_item(self->fd, &item));
	EXPECT_EQ(-EINVAL, item.length);
	EXPECT_EQ(-EINVAL, ioctl(self->fd, DRM_IOCTL_I915_QUERY, &q) ? -errno : 0);

	/* A bad data pointer is a per-item -EFAULT. */
	item.query_id = DRM_I915_QUERY_TOPOLOGY_INFO;
	item.length = 0;
	ASSERT_EQ(0, query_item(self->fd, &item));
	ASSERT_GT(item.length, 0);
	item.data_ptr = 8;
	ASSERT_EQ(0, query_item(self->fd, &item));
	EXPECT_EQ(-EFAULT, item.length);

	/* Query id 0 fails the whole ioctl, as on i915. */
	item.query_id = 0;
	EXPECT_EQ(-EINVAL, query_item(self->fd, &item));
	q.flags = 0;
	q.items_ptr = 8;
	EXPECT_EQ(-EFAULT, ioctl(self->fd, DRM_IOCTL_I915_QUERY, &q) ? -errno : 0);
}

/* GETPARAM as i915_getparam.c: error precedence, exactly one int written, local answers. */
TEST_F(node, getparam_is_i915_exact)
{
	int buf[2];
	int v;

	/* Unknown params fail before the pointer is looked at; UMS params are ENODEV. */
	EXPECT_EQ(-EINVAL, getparam(self->fd, 9999, (int *)8));
	EXPECT_EQ(-EINVAL, getparam(self->fd, 0, (int *)8));
	EXPECT_EQ(-EINVAL, getparam(self->fd, -1, (int *)8));
	EXPECT_EQ(-ENODEV, getparam(self->fd, I915_PARAM_IRQ_ACTIVE, &v));
	EXPECT_EQ(-ENODEV, getparam(self->fd, I915_PARAM_HAS_EXEC_CONSTANTS, &v));

	/* Exactly 4 bytes are written. */
	memset(buf, 0xa5, sizeof(buf));
	ASSERT_EQ(0, getparam(self->fd, I915_PARAM_CHIPSET_ID, &buf[0]));
	EXPECT_EQ(expected_devid(), buf[0]);
	EXPECT_EQ((int)0xa5a5a5a5, buf[1]);

	/* The driver's own uAPI: GEM, MMAP_OFFSET, execbuffer and its fences, no PXP yet. */
	v = -1;
	ASSERT_EQ(0, getparam(self->fd, I915_PARAM_HAS_EXEC_SOFTPIN, &v));
	EXPECT_EQ(1, v);
	v = -1;
	ASSERT_EQ(0, getparam(self->fd, I915_PARAM_HAS_EXECBUF2, &v));
	EXPECT_EQ(1, v);
	v = -1;
	ASSERT_EQ(0, getparam(self->fd, I915_PARAM_HAS_EXEC_FENCE, &v));
	EXPECT_EQ(1, v);
	v = -1;
	ASSERT_EQ(0, getparam(self->fd, I915_PARAM_HAS_EXEC_TIMELINE_FENCES, &v));
	EXPECT_EQ(1, v);
	v = -1;
	ASSERT_EQ(0, getparam(self->fd, I915_PARAM_MMAP_GTT_VERSION, &v));
	EXPECT_EQ(4, v);
	v = -1;
	ASSERT_EQ(0, getparam(self->fd, I915_PARAM_HAS_GEM, &v));
	EXPECT_EQ(1, v);
	v = -1;
	ASSERT_EQ(0, getparam(self->fd, I915_PARAM_HAS_SCHEDULER, &v));
	EXPECT_EQ(0, v);
	EXPECT_EQ(-ENODEV, getparam(self->fd, I915_PARAM_PXP_STATUS, &v));
	/* i915 without GuC submission: success, with -EINVAL as the value. */
	ASSERT_EQ(0, getparam(self->fd, I915_PARAM_HAS_CONTEXT_FREQ_HINT, &v));
	EXPECT_EQ(-EINVAL, v);

	/* Hardware facts come from the host, cached answers stay the same. */
	for (int i = 0; i < 3; i++) {
		int eu = 0, freq = 0, iso = 0;

		ASSERT_EQ(0, getparam(self->fd, I915_PARAM_EU_TOTAL, &eu));
		EXPECT_GT(eu, 0);
		ASSERT_EQ(0, getparam(self->fd, I915_PARAM_CS_TIMESTAMP_FREQUENCY, &freq));
		EXPECT_GT(freq, 0);
		ASSERT_EQ(0, getparam(self->fd, I915_PARAM_HAS_CONTEXT_ISOLATION, &iso));
		EXPECT_NE(0, iso);
		/* A cached answer still checks the caller's pointer. */
		EXPECT_EQ(-EFAULT, getparam(self->fd, I915_PARAM_EU_TOTAL, (int *)8));
	}
	/* Uncached, forwarded every time. */
	EXPECT_EQ(0, getparam(self->fd, I915_PARAM_HAS_GPU_RESET, &v));
}

TEST_F(node, query_unknown_ids_are_per_item)
{
	struct drm_i915_query_item items[3] = {
		{ .query_id = 0x100000001ull },
		{ .query_id = 0x7777 },
		{ .query_id = DRM_I915_QUERY_ENGINE_INFO },
	};
	struct drm_i915_query q = { .num_items = 3, .items_ptr = (uintptr_t)items };

	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_QUERY, &q));
	EXPECT_EQ(-EINVAL, items[0].length);
	EXPECT_EQ(-EINVAL, items[1].length);
	EXPECT_GT(items[2].length, 0);
}

/* No cap on num_items: 200 ENGINE_INFO items are all answered. */
TEST_F(node, query_many_items)
{
	enum { N = 200 };
	struct drm_i915_query_item one = { .query_id = DRM_I915_QUERY_ENGINE_INFO };
	struct drm_i915_query_item *items = calloc(N, sizeof(*items));
	struct drm_i915_query q = { .num_items = N, .items_ptr = (uintptr_t)items };

	ASSERT_NE(NULL, items);
	ASSERT_EQ(0, query_item(self->fd, &one));
	ASSERT_GT(one.length, 0);
	for (int i = 0; i < N; i++)
		items[i].query_id = DRM_I915_QUERY_ENGINE_INFO;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_QUERY, &q));
	for (int i = 0; i < N; i++) {
		ASSERT_EQ(one.length, items[i].length) TH_LOG("item %d", i);
	}
	free(items);
}

/* An item that cannot be read fails the ioctl with EFAULT after earlier items were answered. */
TEST_F(node, query_unreadable_item_is_efault)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct drm_i915_query_item *first;
	struct drm_i915_query q = { .num_items = 0x7fffffff };

	ASSERT_NE(MAP_FAILED, m);
	ASSERT_EQ(0, mprotect(m + pg, pg, PROT_NONE));
	first = (void *)(m + pg - sizeof(*first));
	memset(first, 0, sizeof(*first));
	first->query_id = DRM_I915_QUERY_TOPOLOGY_INFO;
	q.items_ptr = (uintptr_t)first;
	EXPECT_EQ(-EFAULT, ioctl(self->fd, DRM_IOCTL_I915_QUERY, &q) ? -errno : 0);
	EXPECT_GT(first->length, 0);
	munmap(m, 2 * pg);
}

/* length is written back only when it changed: a read-only items array whose lengths are right works. */
TEST_F(node, query_read_only_items_unchanged)
{
	long pg = sysconf(_SC_PAGESIZE);
	struct drm_i915_query_item probe = { .query_id = DRM_I915_QUERY_ENGINE_INFO };
	struct drm_i915_query_item *ro;
	struct drm_i915_query q = { .num_items = 1 };
	char *buf;

	ASSERT_EQ(0, query_item(self->fd, &probe));
	ASSERT_GT(probe.length, 0);
	buf = calloc(1, probe.length);
	ASSERT_NE(NULL, buf);
	ro = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	*ro = probe;
	ro->data_ptr = (uintptr_t)buf;
	ASSERT_EQ(0, mprotect(ro, pg, PROT_READ));
	q.items_ptr = (uintptr_t)ro;
	EXPECT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_QUERY, &q) ? -errno : 0);
	EXPECT_GE(((struct drm_i915_query_engine_info *)buf)->num_engines, 1);
	/* The same array with a wrong length cannot be written back: EFAULT. */
	ASSERT_EQ(0, mprotect(ro, pg, PROT_READ | PROT_WRITE));
	ro->length = 0;
	ASSERT_EQ(0, mprotect(ro, pg, PROT_READ));
	EXPECT_EQ(-EFAULT, ioctl(self->fd, DRM_IOCTL_I915_QUERY, &q) ? -errno : 0);
	munmap(ro, pg);
	free(buf);
}

/* The must-be-zero header fields and item flags of each query, as i915_query.c. */
TEST_F(node, query_headers_and_flags)
{
	uint32_t ids[] = { DRM_I915_QUERY_ENGINE_INFO, DRM_I915_QUERY_MEMORY_REGIONS };

	for (unsigned int i = 0; i < 2; i++) {
		struct drm_i915_query_item item = { .query_id = ids[i] };
		uint32_t *hdr;
		int len;

		ASSERT_EQ(0, query_item(self->fd, &item));
		ASSERT_GT(item.length, 0) TH_LOG("query %u", ids[i]);
		len = item.length;
		hdr = calloc(1, len);
		ASSERT_NE(NULL, hdr);
		item.data_ptr = (uintptr_t)hdr;
		for (int w = 0; w < 4; w++) {
			memset(hdr, 0, len);
			hdr[w] = 1;	/* num_engines/num_regions, then rsvd[0..2] */
			item.length = len;
			ASSERT_EQ(0, query_item(self->fd, &item));
			EXPECT_EQ(-EINVAL, item.length) TH_LOG("query %u word %d", ids[i], w);
		}
		memset(hdr, 0, len);
		item.length = len;
		item.flags = 1;
		ASSERT_EQ(0, query_item(self->fd, &item));
		EXPECT_EQ(-EINVAL, item.length);
		item.flags = 0;
		/* A negative length is a large unsigned one to i915: the item is served. */
		item.length = -1;
		ASSERT_EQ(0, query_item(self->fd, &item));
		EXPECT_EQ(len, item.length);
		free(hdr);
	}
	{
		struct drm_i915_query_item item = { .query_id = DRM_I915_QUERY_TOPOLOGY_INFO, .flags = 1 };

		ASSERT_EQ(0, query_item(self->fd, &item));
		EXPECT_EQ(-EINVAL, item.length);
	}
	{
		/* No perf support: the defined flags are ENODEV, others EINVAL. */
		struct drm_i915_query_item item = { .query_id = DRM_I915_QUERY_PERF_CONFIG };

		ASSERT_EQ(0, query_item(self->fd, &item));
		EXPECT_EQ(-EINVAL, item.length);
		for (uint32_t f = DRM_I915_QUERY_PERF_CONFIG_LIST; f <= DRM_I915_QUERY_PERF_CONFIG_DATA_FOR_ID; f++) {
			item.flags = f;
			item.length = 0;
			ASSERT_EQ(0, query_item(self->fd, &item));
			EXPECT_EQ(-ENODEV, item.length);
		}
	}
}

static int query_regions(int fd, struct drm_i915_query_memory_regions **out)
{
	struct drm_i915_query_item item = { .query_id = DRM_I915_QUERY_MEMORY_REGIONS };

	if (query_item(fd, &item) || item.length <= 0)
		return -1;
	*out = calloc(1, item.length);
	item.data_ptr = (uintptr_t)*out;
	if (!*out || query_item(fd, &item) || item.length <= 0)
		return -1;
	return 0;
}

/*
 * Without CAP_PERFMON (and CAP_SYS_ADMIN) the unallocated sizes are the probed sizes; with
 * them (root here) they are the host's live values. On the software host's integrated part
 * the one region is system memory, whose unallocated size i915 always reports as the total
 * (IGT's query-regions-sanity-check asserts it), so both callers see the probed sizes.
 */
TEST_F(node, memory_regions_for_unprivileged_callers)
{
	struct drm_i915_query_memory_regions *live = NULL;
	pid_t pid;
	int status = 0;

	ASSERT_EQ(0, query_regions(self->fd, &live));
	ASSERT_GE(live->num_regions, 1);
	EXPECT_EQ(I915_MEMORY_CLASS_SYSTEM, live->regions[0].region.memory_class);
	EXPECT_EQ(live->regions[0].unallocated_size, live->regions[0].probed_size);
	free(live);
	pid = fork();

	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
		struct __user_cap_data_struct d[2];
		struct drm_i915_query_memory_regions *r = NULL;
		int ok = 1;

		if (syscall(SYS_capget, &h, d))
			_exit(2);
		d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
		d[CAP_TO_INDEX(CAP_PERFMON)].effective &= ~CAP_TO_MASK(CAP_PERFMON);
		if (syscall(SYS_capset, &h, d))
			_exit(3);
		if (query_regions(self->fd, &r) || r->num_regions < 1)
			_exit(4);
		for (unsigned int i = 0; i < r->num_regions; i++)
			ok &= r->regions[i].unallocated_size == r->regions[i].probed_size &&
			      r->regions[i].unallocated_cpu_visible_size ==
				      r->regions[i].probed_cpu_visible_size;
		_exit(ok ? 0 : 5);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

struct thread_arg {
	int fd;
	int failures;
};

static void *hammer(void *p)
{
	struct thread_arg *a = p;

	for (int k = 0; k < 200; k++) {
		struct drm_i915_query_item item = { .query_id = DRM_I915_QUERY_TOPOLOGY_INFO };
		int v = 0;

		if (getparam(a->fd, I915_PARAM_CHIPSET_ID, &v) || v != expected_devid())
			a->failures++;
		if (getparam(a->fd, I915_PARAM_HAS_GPU_RESET, &v))
			a->failures++;
		if (query_item(a->fd, &item) || item.length <= 0)
			a->failures++;
		/* As root (CAP_PERFMON), memory regions are asked of the host every time. */
		if (k % 4 == 0) {
			struct drm_i915_query_memory_regions *r = NULL;

			if (query_regions(a->fd, &r) || r->num_regions < 1)
				a->failures++;
			free(r);
		}
	}
	return NULL;
}

/* Runs hammer() on n (at most 8) threads sharing fd; reports each thread's failures. */
static void hammer_threads(struct __test_metadata *_metadata, int fd, int n)
{
	pthread_t t[8];
	struct thread_arg a[8];

	ASSERT_LE(n, 8);
	for (int i = 0; i < n; i++) {
		a[i] = (struct thread_arg){ .fd = fd };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, hammer, &a[i]));
	}
	for (int i = 0; i < n; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, a[i].failures) TH_LOG("thread %d", i);
	}
}

/* Mesa shares one fd between its threads. */
TEST_F(node, threads_share_one_fd)
{
	hammer_threads(_metadata, self->fd, 8);
}

/*
 * With fenced_ccmds=1 every uncached call is a SUBMIT_3D fenced on ring 0 whose DMA fence
 * the fence workqueue signals when the host answers: the counters must show that path
 * ran, and that every fence emitted was signalled. Skipped when the module runs unfenced.
 */
TEST_F(node, fenced_ccmds_signal_their_fences)
{
	enum { N = 4 };
	long emitted, signalled = -1, works;

	if (live_counter("fenced_ccmds") != 1)
		SKIP(return, "virtio_intel loaded without fenced_ccmds=1");
	emitted = live_counter("fences_emitted");
	works = live_counter("fence_works");
	ASSERT_GE(emitted, 0);
	hammer_threads(_metadata, self->fd, N);
	/* Each hammer round asks HAS_GPU_RESET of the host at least: 200 rounds a thread. */
	EXPECT_GE(live_counter("fences_emitted") - emitted, N * 200);
	EXPECT_GT(live_counter("fence_works"), works);
	/* Nothing is in flight any more: every fence was signalled. */
	for (int i = 0; i < 50; i++) {
		emitted = live_counter("fences_emitted");
		signalled = live_counter("fences_signalled");
		if (emitted == signalled)
			break;
		usleep(20 * 1000);
	}
	EXPECT_EQ(emitted, signalled);
}

/* The driver's view of the calling task, and host contexts named after the process. */
TEST_F(node, driver_sees_the_calling_task)
{
	char path[256], line[256], want[128], comm[17] = { 0 };
	int v = 0, found = 0;
	FILE *f;

	ASSERT_EQ(0, prctl(PR_SET_NAME, "vi-task-check"));
	ASSERT_EQ(0, prctl(PR_GET_NAME, comm));
	/* An uncached GETPARAM creates this file's host context. */
	ASSERT_EQ(0, getparam(self->fd, I915_PARAM_HAS_GPU_RESET, &v));
	ASSERT_EQ(0, live_path(path, sizeof(path)));
	snprintf(want, sizeof(want), "tgid %d pid %d comm %s", getpid(), (int)syscall(SYS_gettid), comm);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, want))
			found = 1;
	fclose(f);
	EXPECT_TRUE(found) TH_LOG("no host context line with \"%s\"", want);
}

/* Tests that need more than the harness's default 30 s under KASAN and TCG. */
FIXTURE(slow) {};
FIXTURE_SETUP(slow) {}
FIXTURE_TEARDOWN(slow) {}

/*
 * Signals land between queueing host commands and their answers: a child opens, queries
 * and closes in a loop while the parent signals it as fast as it can. Afterwards every
 * host object the driver counts must be released. (A slow test: 400 host contexts under
 * KASAN with fenced ccmds take over 20 s under TCG; the bound is for a hang.)
 */
TEST_F_TIMEOUT(slow, signal_storm_leaks_nothing, 150)
{
	long ctx, blobs, bytes, quar;
	int interrupted = 0, status = 0, pipefd[2], exited = 0;
	pid_t pid;

	struct sigaction sa = { .sa_handler = on_signal };

	ASSERT_EQ(0, pipe(pipefd));
	/* Installed before the fork, so no signal finds the child without it. */
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));	/* no SA_RESTART: ioctls see EINTR */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		int eintr = 0;

		close(pipefd[0]);
		for (int i = 0; i < 400; i++) {
			int fd = open(render_node(), O_RDWR | O_CLOEXEC), v;
			struct drm_i915_query_item item = { .query_id = DRM_I915_QUERY_ENGINE_INFO };

			if (fd < 0)
				continue;
			if (getparam(fd, I915_PARAM_HAS_GPU_RESET, &v) == -EINTR)
				eintr++;
			if (query_item(fd, &item) == -EINTR)
				eintr++;
			close(fd);
		}
		if (write(pipefd[1], &eintr, sizeof(eintr)) != sizeof(eintr))
			_exit(2);
		_exit(0);
	}
	close(pipefd[1]);
	exited = signal_storm(pid, 200, 120, &status);
	ASSERT_TRUE(exited) TH_LOG("the child did not finish in 120 s");
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ((ssize_t)sizeof(interrupted), read(pipefd[0], &interrupted, sizeof(interrupted)));
	close(pipefd[0]);
	TH_LOG("%d calls interrupted", interrupted);
	/* Otherwise no signal landed while a host command was in flight: nothing was tested. */
	EXPECT_GT(interrupted, 0);
	EXPECT_TRUE(live_counters_zero(&ctx, &blobs, &bytes, &quar))
		TH_LOG("live: contexts %ld blobs %ld window_bytes %ld quarantined %ld", ctx, blobs, bytes, quar);
}

/* A process killed with its file open still releases everything. */
TEST(killed_process_leaks_nothing)
{
	long ctx, blobs, bytes, quar;
	int status = 0;

	for (int round = 0; round < 20; round++) {
		int ready[2];
		char c;
		pid_t pid;

		ASSERT_EQ(0, pipe(ready));
		pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			int fd = open(render_node(), O_RDWR | O_CLOEXEC), v;

			/* The host context exists once the first uncached GETPARAM returned. */
			if (fd < 0 || getparam(fd, I915_PARAM_HAS_GPU_RESET, &v) ||
			    write(ready[1], "r", 1) != 1)
				_exit(1);
			for (;;)
				getparam(fd, I915_PARAM_HAS_GPU_RESET, &v);
		}
		close(ready[1]);
		ASSERT_EQ(1, read(ready[0], &c, 1)) TH_LOG("round %d: the child never got going", round);
		close(ready[0]);
		usleep(round * 2000);
		kill(pid, SIGKILL);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFSIGNALED(status));
	}
	EXPECT_TRUE(live_counters_zero(&ctx, &blobs, &bytes, &quar))
		TH_LOG("live: contexts %ld blobs %ld window_bytes %ld quarantined %ld", ctx, blobs, bytes, quar);
}

/* Virtio context ids are the lowest free ones: hundreds of open/close cycles do not grow them. */
TEST(context_ids_are_reused)
{
	char path[256], line[256], want[64];
	int fd, v, id = -1;
	FILE *f;

	for (int i = 0; i < 200; i++) {
		fd = open(render_node(), O_RDWR | O_CLOEXEC);
		ASSERT_GE(fd, 0);
		ASSERT_EQ(0, getparam(fd, I915_PARAM_HAS_GPU_RESET, &v));
		close(fd);
	}
	fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, getparam(fd, I915_PARAM_HAS_GPU_RESET, &v));
	ASSERT_EQ(0, live_path(path, sizeof(path)));
	snprintf(want, sizeof(want), " tgid %d ", getpid());
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, want))
			sscanf(line, "context %d", &id);
	fclose(f);
	close(fd);
	ASSERT_GT(id, 0) TH_LOG("no host context line for this process");
	EXPECT_LT(id, 16) TH_LOG("context id %d after 200 open/close cycles", id);
}

/* Syncobjs (served by the DRM core for this driver): what ANV and iris probe at start. */
TEST_F(node, syncobjs)
{
	struct drm_get_cap cap = { .capability = DRM_CAP_SYNCOBJ };
	struct drm_syncobj_create c = { .flags = DRM_SYNCOBJ_CREATE_SIGNALED };
	struct drm_syncobj_create u = { 0 };
	struct drm_syncobj_wait w = { 0 };
	struct drm_syncobj_destroy d = { 0 };
	uint64_t point = 0;
	struct drm_syncobj_timeline_array ta = { 0 };

	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_GET_CAP, &cap));
	EXPECT_EQ(1, cap.value);
	cap.capability = DRM_CAP_SYNCOBJ_TIMELINE;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_GET_CAP, &cap));
	EXPECT_EQ(1, cap.value);

	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_SYNCOBJ_CREATE, &c));
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_SYNCOBJ_CREATE, &u));
	/* A signalled syncobj: WAIT_ALL with timeout 0 succeeds. */
	w.handles = (uintptr_t)&c.handle;
	w.count_handles = 1;
	w.flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL;
	EXPECT_EQ(0, ioctl(self->fd, DRM_IOCTL_SYNCOBJ_WAIT, &w) ? -errno : 0);
	/* An empty one with WAIT_FOR_SUBMIT times out (iris's probe expects ETIME). */
	w.handles = (uintptr_t)&u.handle;
	w.flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
	EXPECT_EQ(-ETIME, ioctl(self->fd, DRM_IOCTL_SYNCOBJ_WAIT, &w) ? -errno : 0);
	/* Timeline: signal point 5, query it back. */
	point = 5;
	ta.handles = (uintptr_t)&u.handle;
	ta.points = (uintptr_t)&point;
	ta.count_handles = 1;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &ta));
	point = 0;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_SYNCOBJ_QUERY, &ta));
	EXPECT_EQ(5, point);
	d.handle = c.handle;
	EXPECT_EQ(0, ioctl(self->fd, DRM_IOCTL_SYNCOBJ_DESTROY, &d));
	d.handle = u.handle;
	EXPECT_EQ(0, ioctl(self->fd, DRM_IOCTL_SYNCOBJ_DESTROY, &d));
	EXPECT_EQ(-EINVAL, ioctl(self->fd, DRM_IOCTL_SYNCOBJ_DESTROY, &d) ? -errno : 0);
}

TEST(many_processes_query_at_once)
{
	enum { N = 8 };
	pid_t pids[N];

	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		ASSERT_GE(pids[i], 0);
		if (pids[i] == 0) {
			int fd = open(render_node(), O_RDWR | O_CLOEXEC);
			int v = 0, ok = fd >= 0;

			for (int k = 0; ok && k < 16; k++)
				ok = getparam(fd, I915_PARAM_CHIPSET_ID, &v) == 0 && v == expected_devid() &&
				     getparam(fd, I915_PARAM_HAS_GPU_RESET, &v) == 0;
			_exit(ok ? 0 : 1);
		}
	}
	for (int i = 0; i < N; i++) {
		int status = 0;

		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

/*
 * Run by test-driver.sh in a boot where the host rejects (VIRTIO_INTEL_FAULT=reject) or
 * drops the response of (=drop) the first ccmd: the call fails with -EIO instead of
 * hanging or returning garbage, and the file keeps working.
 */
TEST(host_fault_is_eio)
{
	const char *fault = getenv("VIRTIO_INTEL_FAULT");
	int fd, v = 0;

	if (!fault)
		SKIP(return, "set VIRTIO_INTEL_FAULT (the host must inject a fault)");
	fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	/* CHIPSET_ID comes from the capset; HAS_GPU_RESET is asked of the host every time. */
	EXPECT_EQ(-EIO, getparam(fd, I915_PARAM_HAS_GPU_RESET, &v)) TH_LOG("fault %s", fault);
	EXPECT_EQ(0, getparam(fd, I915_PARAM_HAS_GPU_RESET, &v));
	v = 0;
	EXPECT_EQ(0, getparam(fd, I915_PARAM_CHIPSET_ID, &v));
	EXPECT_EQ(expected_devid(), v);
	close(fd);
}

/*
 * Four processes open, ask and close in a loop while the device is unbound and rebound
 * every 300 ms. Calls may fail with the errors of a device that is going or gone, never
 * with anything else; the kernel must not splat (the runner checks KASAN/lockdep).
 */
TEST(hammer_while_rebinding)
{
	enum { PROCS = 4, CYCLES = 6 };
	char dev[256];
	pid_t pids[PROCS];

	bound_device(dev, sizeof(dev));
	ASSERT_NE(0, dev[0]) TH_LOG("no device bound to virtio_intel");
	for (int i = 0; i < PROCS; i++) {
		pids[i] = fork();
		ASSERT_GE(pids[i], 0);
		if (pids[i] == 0) {
			struct timespec t0, t;
			int bad = 0;

			clock_gettime(CLOCK_MONOTONIC, &t0);
			do {
				struct drm_i915_query_item item = { .query_id = DRM_I915_QUERY_TOPOLOGY_INFO };
				int fd = open(render_node(), O_RDWR | O_CLOEXEC), v, r[3];

				if (fd >= 0) {
					r[0] = getparam(fd, I915_PARAM_HAS_GPU_RESET, &v);
					r[1] = getparam(fd, I915_PARAM_EU_TOTAL, &v);
					r[2] = query_item(fd, &item);
					close(fd);
					/* The exit status is the first unexpected errno. */
					for (int k = 0; k < 3 && !bad; k++)
						if (r[k] && r[k] != -ENODEV && r[k] != -EIO)
							bad = -r[k];
				}
				clock_gettime(CLOCK_MONOTONIC, &t);
			} while (t.tv_sec - t0.tv_sec < 3 && !bad);
			_exit(bad);
		}
	}
	for (int c = 0; c < CYCLES; c++) {
		usleep(300 * 1000);
		EXPECT_EQ(0, driver_attr("unbind", dev));
		usleep(300 * 1000);
		EXPECT_EQ(0, driver_attr("bind", dev));
	}
	for (int i = 0; i < PROCS; i++) {
		int status = 0;

		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
			TH_LOG("process %d: %s %d", i, WIFEXITED(status) ? "errno" : "signal",
			       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	}
	/* Bound again and working. */
	{
		int fd = open(render_node(), O_RDWR | O_CLOEXEC), v = 0;

		ASSERT_GE(fd, 0);
		EXPECT_EQ(0, getparam(fd, I915_PARAM_HAS_GPU_RESET, &v));
		close(fd);
	}
}

/* Reads sysfs file `dir`/`name` into `out` without the trailing newline; 0 or -1. */
static int read_sysfs(const char *dir, const char *name, char *out, size_t n)
{
	char path[512];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	len = read(fd, out, n - 1);
	close(fd);
	if (len < 0)
		return -1;
	while (len > 0 && out[len - 1] == '\n')
		len--;
	out[len] = 0;
	return 0;
}

/*
 * What libdrm's drmGetDevice2() and Mesa's loader read: the card and render nodes share one
 * PCI parent, on the "pci" bus, with a drm/ directory, Intel's vendor id, the device id and
 * revision GETPARAM reports, a display class, PCI_SLOT_NAME with a 16-bit domain, bound to
 * this driver, and a config space whose first bytes agree.
 */
TEST(pci_identity)
{
	char render[PATH_MAX], card[512], link[PATH_MAX], v[256], slot[64], path[PATH_MAX + 32];
	unsigned int dom, bus, dev, fn;
	unsigned char cfg[64];
	int fd, devid = 0, rev = -1;
	DIR *d;
	struct dirent *e;

	ASSERT_EQ(0, node_device(render_node(), render));
	/* The primary node of the same DRM device. */
	card[0] = 0;
	snprintf(path, sizeof(path), "%s/drm", render);
	d = opendir(path);
	ASSERT_NE(NULL, d) TH_LOG("%s has no drm/ directory", render);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "card", 4))
			snprintf(card, sizeof(card), "/dev/dri/%s", e->d_name);
	closedir(d);
	ASSERT_NE(0, card[0]);
	ASSERT_EQ(0, node_device(card, link));
	EXPECT_STREQ(render, link);

	snprintf(path, sizeof(path), "%s/subsystem", render);
	ASSERT_NE(NULL, realpath(path, link));
	EXPECT_STREQ("/sys/bus/pci", link);
	snprintf(path, sizeof(path), "%s/driver", render);
	ASSERT_NE(NULL, realpath(path, link));
	EXPECT_STREQ("/sys/bus/pci/drivers/virtio_intel", link);

	fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, getparam(fd, I915_PARAM_CHIPSET_ID, &devid));
	ASSERT_EQ(0, getparam(fd, I915_PARAM_REVISION, &rev));
	close(fd);

	ASSERT_EQ(0, read_sysfs(render, "vendor", v, sizeof(v)));
	EXPECT_STREQ("0x8086", v);
	ASSERT_EQ(0, read_sysfs(render, "device", v, sizeof(v)));
	EXPECT_EQ(devid, (int)strtol(v, NULL, 16));
	ASSERT_EQ(0, read_sysfs(render, "revision", v, sizeof(v)));
	EXPECT_EQ(rev, (int)strtol(v, NULL, 16));
	ASSERT_EQ(0, read_sysfs(render, "class", v, sizeof(v)));
	EXPECT_EQ(0x03, strtol(v, NULL, 16) >> 16);
	ASSERT_EQ(0, read_sysfs(render, "subsystem_vendor", v, sizeof(v)));
	ASSERT_EQ(0, read_sysfs(render, "subsystem_device", v, sizeof(v)));

	/* libdrm parses "%04x:%02x:%02x.%1u" out of the uevent. */
	ASSERT_EQ(0, read_sysfs(render, "uevent", v, sizeof(v)));
	ASSERT_NE(NULL, strstr(v, "PCI_SLOT_NAME="));
	snprintf(slot, sizeof(slot), "%s", strstr(v, "PCI_SLOT_NAME=") + 14);
	*strchrnul(slot, '\n') = 0;
	EXPECT_EQ(4, sscanf(slot, "%04x:%02x:%02x.%1u", &dom, &bus, &dev, &fn)) TH_LOG("%s", slot);
	EXPECT_EQ(12, strlen(slot)) TH_LOG("%s: the domain must have 4 digits", slot);
	EXPECT_NE(0, dom) TH_LOG("domain 0 is the firmware's");
	EXPECT_NE(NULL, strrchr(render, '/'));
	EXPECT_STREQ(slot, strrchr(render, '/') + 1);

	/* The config space agrees, and has no BARs. */
	snprintf(path, sizeof(path), "%s/config", render);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(64, read(fd, cfg, sizeof(cfg)));
	close(fd);
	EXPECT_EQ(0x8086, cfg[0] | cfg[1] << 8);
	EXPECT_EQ(devid, cfg[2] | cfg[3] << 8);
	EXPECT_EQ(rev, cfg[8]);
	for (int i = 0x10; i < 0x28; i++)
		EXPECT_EQ(0, cfg[i]);
	snprintf(path, sizeof(path), "%s/resource0", render);
	EXPECT_NE(0, access(path, F_OK)) TH_LOG("the function has no BARs");
}

/*
 * Removing only the PCI function (its sysfs "remove") unregisters the DRM device: an open file
 * gets -ENODEV. A rescan finds the function again, with its driver_override (so i915 or xe
 * never bind it), but this driver does not bind it while the virtio device keeps the old
 * device's host objects; unbinding and binding the virtio device brings
 * back a working render node.
 */
TEST(pci_function_remove_and_rescan)
{
	char pci[PATH_MAX], path[PATH_MAX + 32], dev[64], slot[64];
	int fd, v = 0;

	bound_device(dev, sizeof(dev));
	ASSERT_NE(0, dev[0]);
	ASSERT_EQ(0, node_device(render_node(), pci));
	snprintf(slot, sizeof(slot), "%s", strrchr(pci, '/') + 1);

	fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, getparam(fd, I915_PARAM_HAS_GPU_RESET, &v));

	snprintf(path, sizeof(path), "%s/remove", pci);
	ASSERT_EQ(0, write_sysfs(path, "1"));
	EXPECT_EQ(-ENODEV, getparam(fd, I915_PARAM_CHIPSET_ID, &v));
	EXPECT_NE(0, access(pci, F_OK));
	close(fd);

	/* Found again, for this driver only (driver_override), not bound: no render node. */
	ASSERT_EQ(0, write_sysfs("/sys/bus/pci/rescan", "1"));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", slot);
	EXPECT_EQ(0, access(path, F_OK)) TH_LOG("rescan did not find %s", slot);
	{
		char ov[64] = "";

		EXPECT_EQ(0, read_sysfs(path, "driver_override", ov, sizeof(ov)));
		EXPECT_STREQ("virtio_intel", ov);
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", slot);
	EXPECT_NE(0, access(path, F_OK)) TH_LOG("%s bound again", slot);
	EXPECT_NE(0, access(render_node(), F_OK));

	ASSERT_EQ(0, driver_attr("unbind", dev));
	ASSERT_EQ(0, driver_attr("bind", dev));
	fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0) TH_LOG("render node did not come back after rebinding");
	EXPECT_EQ(0, getparam(fd, I915_PARAM_CHIPSET_ID, &v));
	EXPECT_EQ(expected_devid(), v);
	close(fd);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", slot);
	EXPECT_EQ(0, access(path, F_OK));
}

/*
 * The PCI core removing the virtio-pci function (its sysfs "remove", as hot-unplug does)
 * unbinds the driver under the PCI rescan lock, and a rescan probes it again under that
 * lock: both must complete (the synthetic bus is created and removed without taking it),
 * with an open file getting -ENODEV, and the render node must come back. Runs only with
 * VIRTIO_INTEL_DESTRUCTIVE=1, in a boot of its own with a small host-visible region: a
 * re-added function's 4 GiB BAR does not fit in the test VM's PCI window again.
 */
TEST(virtio_pci_remove_and_rescan)
{
	char dev[64], path[600], parent[512], sub[512];
	int fd, v = 0;

	if (!getenv("VIRTIO_INTEL_DESTRUCTIVE"))
		SKIP(return, "destructive: set VIRTIO_INTEL_DESTRUCTIVE=1");
	bound_device(dev, sizeof(dev));
	ASSERT_NE(0, dev[0]);
	snprintf(path, sizeof(path), "/sys/bus/virtio/devices/%s/..", dev);
	ASSERT_NE(NULL, realpath(path, parent));
	snprintf(path, sizeof(path), "%s/subsystem", parent);
	ASSERT_NE(NULL, realpath(path, sub));
	if (strcmp(sub, "/sys/bus/pci"))
		SKIP(return, "the virtio transport is not PCI");
	fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, getparam(fd, I915_PARAM_HAS_GPU_RESET, &v));

	/* Returns only if the driver's removal did not wait for the rescan lock. */
	snprintf(path, sizeof(path), "%s/remove", parent);
	ASSERT_EQ(0, write_sysfs(path, "1"));
	EXPECT_EQ(-ENODEV, getparam(fd, I915_PARAM_CHIPSET_ID, &v));
	EXPECT_NE(0, access(render_node(), F_OK));
	close(fd);
	/* Probes the driver again, under the rescan lock. */
	ASSERT_EQ(0, write_sysfs("/sys/bus/pci/rescan", "1"));
	EXPECT_EQ(0, access(parent, F_OK)) TH_LOG("the rescan did not find %s again", parent);
	for (int i = 0; i < 100 && access(render_node(), F_OK); i++)
		usleep(100 * 1000);
	fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0) TH_LOG("no render node after the rescan");
	EXPECT_EQ(0, getparam(fd, I915_PARAM_CHIPSET_ID, &v));
	EXPECT_EQ(expected_devid(), v);
	close(fd);
}

/* Unbinding the driver with a file open must be safe; the file then gets -ENODEV. */
TEST(unbind_with_open_file)
{
	const char *drv = "/sys/bus/virtio/drivers/virtio_intel";
	char dev[256] = { 0 }, path[512];
	int fd, ufd, v = 0;
	DIR *d;
	struct dirent *e;

	d = opendir(drv);
	ASSERT_NE(NULL, d);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "virtio", 6))
			snprintf(dev, sizeof(dev), "%s", e->d_name);
	closedir(d);
	ASSERT_NE(0, dev[0]) TH_LOG("no device bound to virtio_intel");

	fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, getparam(fd, I915_PARAM_CHIPSET_ID, &v));
	/* A host context, whose file is closed only after the device is gone. */
	ASSERT_EQ(0, getparam(fd, I915_PARAM_HAS_GPU_RESET, &v));

	snprintf(path, sizeof(path), "%s/unbind", drv);
	ufd = open(path, O_WRONLY);
	ASSERT_GE(ufd, 0);
	ASSERT_EQ((ssize_t)strlen(dev), write(ufd, dev, strlen(dev)));
	close(ufd);

	EXPECT_EQ(-ENODEV, getparam(fd, I915_PARAM_CHIPSET_ID, &v));
	EXPECT_EQ(-ENODEV, getparam(fd, I915_PARAM_HAS_GPU_RESET, &v));
	/* The reservation goes with the binding, even while a file is open. */
	EXPECT_EQ(0, region_reservations());
	close(fd);

	snprintf(path, sizeof(path), "%s/bind", drv);
	ufd = open(path, O_WRONLY);
	ASSERT_GE(ufd, 0);
	ASSERT_EQ((ssize_t)strlen(dev), write(ufd, dev, strlen(dev)));
	close(ufd);

	EXPECT_EQ(1, region_reservations());
	fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0) TH_LOG("render node did not come back after rebinding");
	v = 0;
	EXPECT_EQ(0, getparam(fd, I915_PARAM_CHIPSET_ID, &v));
	EXPECT_EQ(expected_devid(), v);
	close(fd);
}

/* Sizes round up to whole pages and are written back; the memory reads back what was written. */
TEST_F(node, gem_create_map_write_read)
{
	static const uint64_t asked[] = { 1, 4096, 4097, 65536 + 1, 1 << 20 };

	for (unsigned int i = 0; i < sizeof(asked) / sizeof(asked[0]); i++) {
		uint64_t size = asked[i];
		uint32_t h = 0;
		uint32_t *p;

		ASSERT_EQ(0, gem_create(self->fd, &size, &h));
		EXPECT_NE(0, h);
		EXPECT_EQ((asked[i] + 4095) & ~4095ull, size);
		p = gem_map(self->fd, h, size);
		ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
		for (size_t w = 0; w < size / 4; w += 1024)
			p[w] = 0xc0de0000 + w + i;
		ASSERT_EQ(0, munmap(p, size));
		/* A new mapping of the same object shows the same memory. */
		p = gem_map(self->fd, h, size);
		ASSERT_NE(MAP_FAILED, p);
		for (size_t w = 0; w < size / 4; w += 1024) {
			ASSERT_EQ(0xc0de0000 + w + i, p[w])
				TH_LOG("size %llu word %zu", (unsigned long long)size, w);
		}
		munmap(p, size);
		EXPECT_EQ(0, gem_close(self->fd, h));
	}
}

/* A mapping keeps the object alive past GEM_CLOSE and close(fd); munmap frees it all. */
TEST(gem_mapping_outlives_handle_and_file)
{
	long ctx, blobs, bytes, quar;
	uint64_t size = 8192;
	uint32_t h = 0;
	int fd = open(render_node(), O_RDWR | O_CLOEXEC);
	volatile uint32_t *p;

	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, gem_create(fd, &size, &h));
	p = gem_map(fd, h, size);
	ASSERT_NE(MAP_FAILED, (void *)p);
	p[0] = 0x1234;
	ASSERT_EQ(0, gem_close(fd, h));
	EXPECT_EQ(-EINVAL, gem_close(fd, h));
	close(fd);
	p[1] = 0x5678;	/* not yet faulted in: the fault still reaches the object */
	EXPECT_EQ(0x1234, p[0]);
	EXPECT_EQ(0x5678, p[1]);
	EXPECT_EQ(1, live_counter("objects"));
	munmap((void *)p, size);
	EXPECT_TRUE(live_counters_zero(&ctx, &blobs, &bytes, &quar))
		TH_LOG("live: contexts %ld blobs %ld window_bytes %ld quarantined %ld", ctx, blobs, bytes, quar);
}

/* A child forked after mmap shares the object's memory with its parent. */
TEST_F(node, gem_fork_after_mmap)
{
	uint64_t size = 4096;
	uint32_t h = 0;
	volatile uint32_t *p;
	int status;
	pid_t pid;

	ASSERT_EQ(0, gem_create(self->fd, &size, &h));
	p = gem_map(self->fd, h, size);
	ASSERT_NE(MAP_FAILED, (void *)p);
	p[0] = 1;
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		int ok = p[0] == 1;

		p[1] = 2;
		_exit(ok ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(2, p[1]);
	munmap((void *)p, size);
	gem_close(self->fd, h);
}

static int gem_rw(int fd, unsigned long req, uint32_t handle, uint64_t offset, uint64_t size,
		  void *data)
{
	struct drm_i915_gem_pwrite w = {
		.handle = handle, .offset = offset, .size = size, .data_ptr = (uintptr_t)data,
	};

	/* drm_i915_gem_pread has the same layout. */
	return ioctl(fd, req, &w) ? -errno : 0;
}

/* PWRITE/PREAD through the window, i915's error order, and THROTTLE with nothing to wait on. */
TEST_F(node, gem_pread_pwrite)
{
	uint64_t size = 3 * 4096;
	static char buf[5000], back[5000];
	struct drm_i915_gem_pwrite wrap = { .size = 16, .data_ptr = ~0ull - 7 };
	uint32_t h = 0;
	char *p;

	ASSERT_EQ(0, gem_create(self->fd, &size, &h));
	for (unsigned int i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 7 + 1);
	ASSERT_EQ(0, gem_rw(self->fd, DRM_IOCTL_I915_GEM_PWRITE, h, 4000, sizeof(buf), buf));
	ASSERT_EQ(0, gem_rw(self->fd, DRM_IOCTL_I915_GEM_PREAD, h, 4000, sizeof(back), back));
	EXPECT_EQ(0, memcmp(buf, back, sizeof(buf)));
	p = gem_map(self->fd, h, size);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, memcmp(p + 4000, buf, sizeof(buf)));
	EXPECT_EQ(0, p[0]);
	p[1] = 42;
	munmap(p, size);
	ASSERT_EQ(0, gem_rw(self->fd, DRM_IOCTL_I915_GEM_PREAD, h, 0, 2, back));
	EXPECT_EQ(42, back[1]);
	/* Size 0 first, then the user range, then the handle, then the object's bounds. */
	EXPECT_EQ(0, gem_rw(self->fd, DRM_IOCTL_I915_GEM_PWRITE, h + 1, 0, 0, buf));
	/* A user range that wraps the 64-bit address space. */
	wrap.handle = h + 1;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_PWRITE, &wrap));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-ENOENT, gem_rw(self->fd, DRM_IOCTL_I915_GEM_PWRITE, h + 1, 0, 16, buf));
	EXPECT_EQ(-EINVAL, gem_rw(self->fd, DRM_IOCTL_I915_GEM_PWRITE, h, size - 8, 16, buf));
	EXPECT_EQ(-EINVAL, gem_rw(self->fd, DRM_IOCTL_I915_GEM_PREAD, h, ~0ull, 16, buf));
	EXPECT_EQ(-EFAULT, gem_rw(self->fd, DRM_IOCTL_I915_GEM_PREAD, h, 0, 16, (void *)8));
	EXPECT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_THROTTLE, 0) ? -errno : 0);
	gem_close(self->fd, h);
}

/*
 * Twice as many mapped objects as the host-visible window holds (VIRTIO_INTEL_WINDOW_MB, the
 * window the VM was started with): older mappings are evicted and fault back in, and every
 * object keeps its own contents.
 */
TEST_F_TIMEOUT(node, gem_window_eviction, 600)
{
	enum { N = 2000 };
	const char *mb = getenv("VIRTIO_INTEL_WINDOW_MB");
	static uint32_t handles[N];
	long ev0;
	static volatile uint32_t *maps[N];
	uint64_t size;
	int fd = self->fd;

	if (!mb)
		SKIP(return, "set VIRTIO_INTEL_WINDOW_MB to the VM's host-visible window size");
	/* 2000 objects fill twice the window. */
	size = ((uint64_t)strtol(mb, NULL, 0) << 20) * 2 / N;
	size = (size + 4095) & ~4095ull;
	ev0 = live_counter("evictions");
	for (int i = 0; i < N; i++) {
		uint64_t s = size;

		ASSERT_EQ(0, gem_create(fd, &s, &handles[i])) TH_LOG("object %d", i);
		if (i % 10 == 0) {
			/* Every tenth through its dma-buf: evictions must zap those too. */
			struct drm_prime_handle exp = { .handle = handles[i], .flags = DRM_RDWR };

			ASSERT_EQ(0, ioctl(fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &exp));
			maps[i] = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, exp.fd, 0);
			close(exp.fd);
		} else {
			maps[i] = gem_map(fd, handles[i], size);
		}
		ASSERT_NE(MAP_FAILED, (void *)maps[i]) TH_LOG("object %d", i);
		maps[i][0] = 0x5eed0000 + i;
		maps[i][size / 4 - 1] = ~(0x5eed0000u + i);
	}
	for (int i = 0; i < N; i++) {
		ASSERT_EQ(0x5eed0000u + i, maps[i][0]) TH_LOG("object %d", i);
		ASSERT_EQ(~(0x5eed0000u + i), maps[i][size / 4 - 1]) TH_LOG("object %d", i);
	}
	TH_LOG("%ld evictions for %d objects of %llu KiB", live_counter("evictions") - ev0, N,
	       (unsigned long long)size >> 10);
	EXPECT_GT(live_counter("evictions") - ev0, N / 2);
	for (int i = 0; i < N; i++) {
		munmap((void *)maps[i], size);
		gem_close(fd, handles[i]);
	}
	/* The fixture's file keeps its host context until teardown: count the objects only. */
	EXPECT_EQ(0, live_counter("objects"));
	EXPECT_EQ(0, live_counter("quarantined_bytes"));
}

static jmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(bus_jmp, sig);
}

/* Whether writing *p raises SIGBUS. */
static int write_faults(volatile uint32_t *p, uint32_t v)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	int faulted = 0;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(bus_jmp, 1) == 0)
		*p = v;
	else
		faulted = 1;
	sigaction(SIGBUS, &old, NULL);
	return faulted;
}

/*
 * The host refuses a step of making or mapping an object (VIRTIO_INTEL_FAULT, with the
 * matching host fault injection: "create" = the first ccmd, "blob" = the first GEM blob,
 * "map" = the first map of a GEM blob). GEM_CREATE does not wait for the host (i915 gets
 * pages at the first use), so a refused creation fails every use of the handle instead: an
 * ioctl with EIO, a fault with SIGBUS. A refused map is one SIGBUS. The next object works,
 * and nothing leaks.
 */
TEST(gem_host_refuses)
{
	const char *fault = getenv("VIRTIO_INTEL_FAULT");
	long ctx, blobs, bytes, quar;
	uint64_t size = 8192;
	volatile uint32_t *p;
	uint32_t h = 0;
	int fd;

	if (!fault || (strcmp(fault, "create") && strcmp(fault, "blob") && strcmp(fault, "map")))
		SKIP(return, "set VIRTIO_INTEL_FAULT to create, blob or map (with the host fault)");
	fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	if (strcmp(fault, "map")) {
		struct drm_i915_gem_set_domain sd = { .read_domains = I915_GEM_DOMAIN_CPU };
		uint32_t v = 1;

		ASSERT_EQ(0, gem_create(fd, &size, &h)) TH_LOG("fault %s", fault);
		sd.handle = h;
		EXPECT_EQ(-EIO, ioctl(fd, DRM_IOCTL_I915_GEM_SET_DOMAIN, &sd) ? -errno : 0);
		EXPECT_EQ(-EIO, gem_rw(fd, DRM_IOCTL_I915_GEM_PWRITE, h, 0, sizeof(v), &v));
		p = gem_map(fd, h, size);
		ASSERT_NE(MAP_FAILED, (void *)p);
		EXPECT_EQ(1, write_faults(p, 7));
		EXPECT_EQ(1, write_faults(p, 8));
		munmap((void *)p, size);
		gem_close(fd, h);
		EXPECT_EQ(0, live_counter("objects"));
	}
	ASSERT_EQ(0, gem_create(fd, &size, &h));
	p = gem_map(fd, h, size);
	ASSERT_NE(MAP_FAILED, (void *)p);
	/* The refused map is a SIGBUS; the next access maps the object. */
	EXPECT_EQ(!strcmp(fault, "map"), write_faults(p, 7));
	EXPECT_EQ(0, write_faults(p, 8));
	EXPECT_EQ(8, p[0]);
	munmap((void *)p, size);
	gem_close(fd, h);
	close(fd);
	EXPECT_TRUE(live_counters_zero(&ctx, &blobs, &bytes, &quar))
		TH_LOG("live: contexts %ld blobs %ld window_bytes %ld quarantined %ld", ctx, blobs, bytes, quar);
}

/* 100,000 creates that fail in every way the guest checks leave nothing behind. */
/*
 * Tests with their own file that need more than the harness's default 30 s: on the debug
 * kernel (KASAN) under TCG, 100,000 refused ioctls take about that long.
 */

TEST_F_TIMEOUT(slow, gem_failing_creates_leak_nothing, 300)
{
	struct drm_i915_gem_memory_class_instance bogus = { 7, 7 };
	struct drm_i915_gem_create_ext_memory_regions regions = {
		.base.name = I915_GEM_CREATE_EXT_MEMORY_REGIONS,
		.num_regions = 1, .regions = (uintptr_t)&bogus,
	};
	long ctx, blobs, bytes, quar;
	int fd = open(render_node(), O_RDWR | O_CLOEXEC);
	uint32_t h;

	ASSERT_GE(fd, 0);
	for (int i = 0; i < 100000; i++) {
		uint64_t size = 0;
		int r;

		switch (i % 4) {
		case 0:
			r = gem_create(fd, &size, &h);
			break;
		case 1:
			r = gem_create_ext(fd, 4096, 2, NULL, &h);
			break;
		case 2:
			r = gem_create_ext(fd, 4096, 0, &regions, &h);
			break;
		default:
			r = gem_create_ext(fd, 4096, 0, (void *)8, &h);
			break;
		}
		ASSERT_NE(0, r) TH_LOG("create %d succeeded", i);
	}
	EXPECT_EQ(0, live_counter("objects"));
	close(fd);
	EXPECT_TRUE(live_counters_zero(&ctx, &blobs, &bytes, &quar))
		TH_LOG("live: contexts %ld blobs %ld window_bytes %ld quarantined %ld", ctx, blobs, bytes, quar);
}

/* PRIME: the same object in another process, through a dma-buf; self-import; bad fds. */
TEST_F(node, gem_prime_share)
{
	struct drm_prime_handle exp = { .flags = DRM_CLOEXEC | DRM_RDWR };
	struct drm_prime_handle imp = { 0 };
	uint64_t size = 8192;
	volatile uint32_t *p;
	int status, to_parent[2], to_child[2];
	uint32_t h = 0;
	pid_t pid;
	char c;

	ASSERT_EQ(0, gem_create(self->fd, &size, &h));
	p = gem_map(self->fd, h, size);
	ASSERT_NE(MAP_FAILED, (void *)p);
	p[0] = 0xabcd;
	exp.handle = h;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &exp));
	/* Importing into the exporting file gives the same handle back. */
	imp.fd = exp.fd;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp));
	EXPECT_EQ(h, imp.handle);
	ASSERT_EQ(0, pipe(to_parent));
	ASSERT_EQ(0, pipe(to_child));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		/* Another process and file: a handle of its own to the same memory. */
		int fd = open(render_node(), O_RDWR | O_CLOEXEC);
		struct drm_prime_handle in = { .fd = exp.fd };
		struct drm_i915_gem_set_domain sd = {
			.read_domains = I915_GEM_DOMAIN_CPU, .write_domain = I915_GEM_DOMAIN_CPU,
		};
		volatile uint32_t *q;

		if (fd < 0 || ioctl(fd, DRM_IOCTL_PRIME_FD_TO_HANDLE, &in))
			_exit(1);
		sd.handle = in.handle;
		if (ioctl(fd, DRM_IOCTL_I915_GEM_SET_DOMAIN, &sd))
			_exit(2);
		q = gem_map(fd, in.handle, 8192);
		if (q == MAP_FAILED || q[0] != 0xabcd)
			_exit(3);
		q[1] = 0x1234;
		/* The dma-buf itself maps too. */
		q = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, exp.fd, 0);
		if (q == MAP_FAILED || q[1] != 0x1234)
			_exit(4);
		q[2] = 0x5678;
		if (write(to_parent[1], "d", 1) != 1 || read(to_child[0], &c, 1) != 1)
			_exit(5);
		_exit(0);
	}
	if (read(to_parent[0], &c, 1) == 1) {
		EXPECT_EQ(0x1234, p[1]);
		EXPECT_EQ(0x5678, p[2]);
	}
	EXPECT_EQ(1, write(to_child[1], "p", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) TH_LOG("status %#x", status);
	close(to_parent[0]);
	close(to_parent[1]);
	close(to_child[0]);
	close(to_child[1]);
	/* The dma-buf keeps the object after GEM_CLOSE; importing it again makes a new handle. */
	munmap((void *)p, size);
	ASSERT_EQ(0, gem_close(self->fd, h));
	imp.handle = 0;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp));
	EXPECT_NE(0, imp.handle);
	p = gem_map(self->fd, imp.handle, size);
	ASSERT_NE(MAP_FAILED, (void *)p);
	EXPECT_EQ(0x5678, p[2]);
	munmap((void *)p, size);
	gem_close(self->fd, imp.handle);
	close(exp.fd);
	/* Not a dma-buf, and not a file at all. */
	imp.fd = self->fd;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp));
	EXPECT_EQ(EINVAL, errno);
	imp.fd = 999;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp));
	EXPECT_EQ(EBADF, errno);
}

/* MADVISE: DONTNEED purges an object not in the window at once, a mapped one only later. */
TEST_F(node, gem_madvise_purges)
{
	struct drm_i915_gem_madvise m = { .madv = I915_MADV_DONTNEED };
	uint64_t size = 4096, size2 = 4096;
	volatile uint32_t *p;
	uint32_t h = 0, h2 = 0, v = 1;

	ASSERT_EQ(0, gem_create(self->fd, &size, &h));
	m.handle = h;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_MADVISE, &m));
	EXPECT_EQ(0, m.retained);
	m.madv = I915_MADV_WILLNEED;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_MADVISE, &m));
	EXPECT_EQ(0, m.retained);
	EXPECT_EQ(-EFAULT, gem_rw(self->fd, DRM_IOCTL_I915_GEM_PWRITE, h, 0, 4, &v));
	p = gem_map(self->fd, h, size);
	ASSERT_NE(MAP_FAILED, (void *)p);
	EXPECT_EQ(1, write_faults(p, 1));
	munmap((void *)p, size);
	m.madv = 2;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_MADVISE, &m));
	EXPECT_EQ(EINVAL, errno);
	m.madv = I915_MADV_DONTNEED;
	m.handle = h + 100;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_MADVISE, &m));
	EXPECT_EQ(ENOENT, errno);
	gem_close(self->fd, h);

	ASSERT_EQ(0, gem_create(self->fd, &size2, &h2));
	p = gem_map(self->fd, h2, size2);
	ASSERT_NE(MAP_FAILED, (void *)p);
	p[0] = 99;
	m.handle = h2;
	m.madv = I915_MADV_DONTNEED;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_MADVISE, &m));
	EXPECT_EQ(1, m.retained);
	m.madv = I915_MADV_WILLNEED;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_MADVISE, &m));
	EXPECT_EQ(1, m.retained);
	EXPECT_EQ(99, p[0]);
	munmap((void *)p, size2);
	gem_close(self->fd, h2);
}

/* The legacy GEM_MMAP, tiling through the host, and the aperture. */
TEST_F(node, gem_legacy_mmap_tiling_aperture)
{
	struct drm_i915_gem_mmap lm = { .size = 8192 };
	struct drm_i915_gem_set_tiling st = { .tiling_mode = I915_TILING_X, .stride = 512 };
	struct drm_i915_gem_get_tiling gt = { 0 };
	struct drm_i915_gem_get_aperture ap = { 0 };
	struct drm_i915_gem_caching cache = { 0 };
	uint64_t size = 8192, off = 0;
	volatile uint32_t *p, *q;
	uint32_t h = 0;

	ASSERT_EQ(0, gem_create(self->fd, &size, &h));
	lm.handle = h;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_MMAP, &lm));
	p = (volatile uint32_t *)(uintptr_t)lm.addr_ptr;
	p[1024] = 0x77;
	ASSERT_EQ(0, mmap_offset(self->fd, h, I915_MMAP_OFFSET_WB, &off));
	q = mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd, (off_t)(off + 4096));
	ASSERT_NE(MAP_FAILED, (void *)q);
	EXPECT_EQ(0x77, q[0]);
	munmap((void *)q, 4096);
	munmap((void *)p, 8192);
	lm.flags = 2;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_MMAP, &lm));
	EXPECT_EQ(EINVAL, errno);
	lm.flags = 0;
	lm.offset = 4096;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_MMAP, &lm));
	EXPECT_EQ(EINVAL, errno);
	lm.offset = 100;
	lm.size = 100;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_MMAP, &lm));
	EXPECT_EQ(EINVAL, errno);
	lm.offset = 0;
	lm.handle = h + 100;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_MMAP, &lm));
	EXPECT_EQ(ENOENT, errno);

	st.handle = h;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_SET_TILING, &st));
	EXPECT_EQ(h, st.handle);
	gt.handle = h;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_GET_TILING, &gt));
	EXPECT_EQ(I915_TILING_X, gt.tiling_mode);
	EXPECT_EQ(h, gt.handle);
	st.handle = h + 100;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_SET_TILING, &st));
	EXPECT_EQ(ENOENT, errno);
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_GET_APERTURE, &ap));
	EXPECT_GT(ap.aper_size, 0);
	EXPECT_LE(ap.aper_available_size, ap.aper_size);

	/* Caching: the host's objects are LLC-cached on Tiger Lake, and stay so. */
	cache.handle = h;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_GET_CACHING, &cache));
	EXPECT_EQ(I915_CACHING_CACHED, cache.caching);
	EXPECT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_SET_CACHING, &cache));
	cache.caching = I915_CACHING_NONE;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_SET_CACHING, &cache));
	EXPECT_EQ(EOPNOTSUPP, errno);
	cache.caching = 7;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_SET_CACHING, &cache));
	EXPECT_EQ(EINVAL, errno);
	cache.caching = I915_CACHING_CACHED;
	cache.handle = h + 100;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_SET_CACHING, &cache));
	EXPECT_EQ(ENOENT, errno);
	gem_close(self->fd, h);
}

/* The `reset` module parameter, where IGT looks for it: the device's driver's module. */
TEST_F(node, reset_parameter_where_igt_looks)
{
	char path[256], buf[32];
	struct stat st;
	int pfd;

	ASSERT_EQ(0, fstat(self->fd, &st));
	snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/device/driver/module/parameters/reset",
		 major(st.st_rdev), minor(st.st_rdev));
	pfd = open(path, O_RDWR);
	ASSERT_GE(pfd, 0) TH_LOG("%s: %s", path, strerror(errno));
	ASSERT_EQ(2, write(pfd, "1\n", 2));
	ASSERT_EQ(0, lseek(pfd, 0, SEEK_SET));
	memset(buf, 0, sizeof(buf));
	ASSERT_LT(0, read(pfd, buf, sizeof(buf) - 1));
	EXPECT_EQ(0, strcmp(buf, "1\n"));
	EXPECT_EQ(-1, write(pfd, "x\n", 2));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, lseek(pfd, 0, SEEK_SET));
	ASSERT_EQ(2, write(pfd, "3\n", 2));
	close(pfd);

	/* The device's copy, where IGT's igt_params_set() looks first. */
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	snprintf(path, sizeof(path), "/sys/kernel/debug/dri/%u/i915_params/reset",
		 minor(st.st_rdev));
	pfd = open(path, O_RDWR);
	ASSERT_GE(pfd, 0) TH_LOG("%s: %s", path, strerror(errno));
	ASSERT_EQ(2, write(pfd, "1\n", 2));
	EXPECT_EQ(1, live_counter("reset"));
	ASSERT_EQ(0, lseek(pfd, 0, SEEK_SET));
	memset(buf, 0, sizeof(buf));
	ASSERT_LT(0, read(pfd, buf, sizeof(buf) - 1));
	EXPECT_EQ(0, strcmp(buf, "1\n"));
	ASSERT_EQ(0, lseek(pfd, 0, SEEK_SET));
	ASSERT_EQ(2, write(pfd, "3\n", 2));
	close(pfd);
}

static char userptr_page[8192] __attribute__((aligned(4096)));

/* i915's errors, in i915's order. */
TEST_F(node, gem_create_errors)
{
	struct drm_i915_gem_memory_class_instance smem = { I915_MEMORY_CLASS_SYSTEM, 0 };
	struct drm_i915_gem_memory_class_instance two[2] = { smem, smem };
	struct drm_i915_gem_memory_class_instance bogus = { 7, 7 };
	struct drm_i915_gem_create_ext_memory_regions regions = {
		.base.name = I915_GEM_CREATE_EXT_MEMORY_REGIONS,
		.num_regions = 1, .regions = (uintptr_t)&smem,
	};
	struct drm_i915_gem_create_ext_protected_content pxp = {
		.base.name = I915_GEM_CREATE_EXT_PROTECTED_CONTENT,
	};
	struct drm_i915_gem_create_ext_set_pat pat = { .base.name = I915_GEM_CREATE_EXT_SET_PAT };
	struct drm_i915_gem_userptr u = { 0 };
	uint64_t size = 0;
	uint32_t h = 0;

	EXPECT_EQ(-EINVAL, gem_create(self->fd, &size, &h));
	size = ~0ull;
	EXPECT_EQ(-EINVAL, gem_create(self->fd, &size, &h));
	size = ~0ull - 8191;
	EXPECT_EQ(-E2BIG, gem_create(self->fd, &size, &h));
	EXPECT_EQ(-EINVAL, gem_create_ext(self->fd, 4096, 2, NULL, &h));
	EXPECT_EQ(-EFAULT, gem_create_ext(self->fd, 4096, 0, (void *)8, &h));
	/* One system-memory placement: fine, but not with NEEDS_CPU_ACCESS. */
	ASSERT_EQ(0, gem_create_ext(self->fd, 4096, 0, &regions, &h));
	EXPECT_EQ(0, gem_close(self->fd, h));
	EXPECT_EQ(-EINVAL, gem_create_ext(self->fd, 4096,
		  I915_GEM_CREATE_EXT_FLAG_NEEDS_CPU_ACCESS, &regions, &h));
	regions.num_regions = 0;
	EXPECT_EQ(-EINVAL, gem_create_ext(self->fd, 4096, 0, &regions, &h));
	regions.num_regions = 2;
	regions.regions = (uintptr_t)two;
	EXPECT_EQ(-EINVAL, gem_create_ext(self->fd, 4096, 0, &regions, &h));	/* repeated */
	regions.num_regions = 1;
	regions.regions = (uintptr_t)&bogus;
	EXPECT_EQ(-EINVAL, gem_create_ext(self->fd, 4096, 0, &regions, &h));	/* unknown */
	regions.regions = 8;
	EXPECT_EQ(-EFAULT, gem_create_ext(self->fd, 4096, 0, &regions, &h));
	regions.regions = (uintptr_t)&smem;
	regions.pad = 1;
	EXPECT_EQ(-EINVAL, gem_create_ext(self->fd, 4096, 0, &regions, &h));
	regions.pad = 0;
	regions.base.flags = 1;
	EXPECT_EQ(-EINVAL, gem_create_ext(self->fd, 4096, 0, &regions, &h));
	regions.base.flags = 0;
	/* Two lists in one chain. */
	regions.base.next_extension = (uintptr_t)&regions;
	EXPECT_EQ(-EINVAL, gem_create_ext(self->fd, 4096, 0, &regions, &h));
	regions.base.next_extension = 0;
	EXPECT_EQ(-ENODEV, gem_create_ext(self->fd, 4096, 0, &pxp, &h));
	pxp.flags = 1;
	EXPECT_EQ(-EINVAL, gem_create_ext(self->fd, 4096, 0, &pxp, &h));
	EXPECT_EQ(-ENODEV, gem_create_ext(self->fd, 4096, 0, &pat, &h));
	pat.base.name = 99;
	EXPECT_EQ(-EINVAL, gem_create_ext(self->fd, 4096, 0, &pat, &h));

	/* USERPTR: i915's checks, then refused (the host GPU cannot use guest memory). */
	u.user_ptr = (uintptr_t)userptr_page;
	u.user_size = 4096;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_USERPTR, &u));
	EXPECT_EQ(ENODEV, errno);
	u.flags = 0x10;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_USERPTR, &u));
	EXPECT_EQ(EINVAL, errno);
	u.flags = 0;
	u.user_size = 100;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_USERPTR, &u));
	EXPECT_EQ(EINVAL, errno);
	u.user_size = 0;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_USERPTR, &u));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(node, gem_mmap_offset_errors)
{
	struct i915_user_extension ext = { .name = 0 };
	struct drm_i915_gem_mmap_offset m = { .flags = I915_MMAP_OFFSET_WB };
	uint64_t size = 4096, off = 0;
	uint32_t h = 0;
	int fd2;
	void *p;

	ASSERT_EQ(0, gem_create(self->fd, &size, &h));
	EXPECT_EQ(-ENOENT, mmap_offset(self->fd, h + 1, I915_MMAP_OFFSET_WB, &off));
	EXPECT_EQ(-ENOENT, mmap_offset(self->fd, h | 0x80000000u, I915_MMAP_OFFSET_WB, &off));
	EXPECT_EQ(-EINVAL, mmap_offset(self->fd, h, 5, &off));
	EXPECT_EQ(-EINVAL, mmap_offset(self->fd, h + 1, 5, &off));	/* flags before the handle */
	EXPECT_EQ(-ENODEV, mmap_offset(self->fd, h, I915_MMAP_OFFSET_FIXED, &off));
	EXPECT_EQ(-ENOENT, mmap_offset(self->fd, h + 1, I915_MMAP_OFFSET_FIXED, &off));
	m.handle = h;
	m.extensions = (uintptr_t)&ext;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_MMAP_OFFSET, &m));
	EXPECT_EQ(EINVAL, errno);
	m.extensions = 8;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_MMAP_OFFSET, &m));
	EXPECT_EQ(EFAULT, errno);
	/* The same object at every mode i915 takes here; only GTT and WB need no PAT. */
	EXPECT_EQ(0, mmap_offset(self->fd, h, I915_MMAP_OFFSET_GTT, &off));
	EXPECT_EQ(0, mmap_offset(self->fd, h, I915_MMAP_OFFSET_WB, &off));
	/* Another file cannot map this file's offset. */
	fd2 = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd2, 0);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd2, (off_t)off);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EACCES, errno);
	close(fd2);
	/* Beyond the object's end. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 8192, PROT_READ, MAP_SHARED, self->fd, (off_t)off));
	/* A private mapping could be written to (copy-on-write): no pages to copy. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, self->fd, (off_t)off));
	EXPECT_EQ(EINVAL, errno);
	gem_close(self->fd, h);
}

/* Objects created and mapped while signals land: nothing leaks, no mapping shows garbage. */
TEST(gem_signal_storm_leaks_nothing)
{
	long ctx, blobs, bytes, quar;
	struct sigaction sa = { .sa_handler = on_signal };
	int status = 0, exited = 0;
	pid_t pid;

	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		for (int i = 0; i < 200; i++) {
			int fd = open(render_node(), O_RDWR | O_CLOEXEC);
			uint64_t size = 4096 * (1 + i % 4);
			uint32_t h = 0;
			volatile uint32_t *p;

			if (fd < 0)
				continue;
			if (!gem_create(fd, &size, &h)) {
				p = gem_map(fd, h, size);
				if (p != MAP_FAILED) {
					p[0] = i;
					if (p[0] != (uint32_t)i)
						_exit(3);
					munmap((void *)p, size);
				}
				if (i % 2)
					gem_close(fd, h);
			}
			close(fd);
		}
		_exit(0);
	}
	exited = signal_storm(pid, 300, 60, &status);
	ASSERT_TRUE(exited);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) TH_LOG("status %#x", status);
	EXPECT_TRUE(live_counters_zero(&ctx, &blobs, &bytes, &quar))
		TH_LOG("live: contexts %ld blobs %ld window_bytes %ld quarantined %ld objects %ld", ctx, blobs, bytes, quar, live_counter("objects"));
}

/* ---- contexts, execbuffer, busy and wait ---------------------------------------------- */

#define MI_STORE_DWORD_IMM_GEN4	((0x20u << 23) | 2)
#define MI_SEMAPHORE_WAIT_POLL	((0x1cu << 23) | (1u << 15) | (4u << 12) | 2) /* SAD == SDD */
#define MI_BATCH_BUFFER_END	(0xau << 23)
/* Softpinned addresses; threads sharing a VM each add their own shift. */
static __thread uint64_t va_shift;
#define TARGET_VA		(0x100000ull + va_shift)
#define BATCH_VA		(0x200000ull + va_shift)

static int execbuf(int fd, struct drm_i915_gem_execbuffer2 *eb)
{
	return ioctl(fd, DRM_IOCTL_I915_GEM_EXECBUFFER2_WR, eb) ? -errno : 0;
}

static int gem_wait(int fd, uint32_t handle, int64_t *timeout_ns)
{
	struct drm_i915_gem_wait w = { .bo_handle = handle, .timeout_ns = *timeout_ns };
	int r = ioctl(fd, DRM_IOCTL_I915_GEM_WAIT, &w) ? -errno : 0;

	*timeout_ns = w.timeout_ns;
	return r;
}

static int gem_busy(int fd, uint32_t handle, uint32_t *busy)
{
	struct drm_i915_gem_busy b = { .handle = handle };

	if (ioctl(fd, DRM_IOCTL_I915_GEM_BUSY, &b))
		return -errno;
	*busy = b.busy;
	return 0;
}

static int pwrite_words(int fd, uint32_t handle, const uint32_t *w, size_t n)
{
	struct drm_i915_gem_pwrite p = {
		.handle = handle, .size = n * 4, .data_ptr = (uintptr_t)w,
	};

	return ioctl(fd, DRM_IOCTL_I915_GEM_PWRITE, &p) ? -errno : 0;
}

static uint32_t pread_word(int fd, uint32_t handle, uint64_t offset)
{
	uint32_t v = 0xffffffff;
	struct drm_i915_gem_pread p = {
		.handle = handle, .offset = offset, .size = 4, .data_ptr = (uintptr_t)&v,
	};

	return ioctl(fd, DRM_IOCTL_I915_GEM_PREAD, &p) ? 0xffffffff : v;
}

static int ctx_create(int fd, void *ext, uint32_t *id)
{
	struct drm_i915_gem_context_create_ext c = {
		.flags = ext ? I915_CONTEXT_CREATE_FLAGS_USE_EXTENSIONS : 0,
		.extensions = (uintptr_t)ext,
	};

	if (ioctl(fd, DRM_IOCTL_I915_GEM_CONTEXT_CREATE_EXT, &c))
		return -errno;
	*id = c.ctx_id;
	return 0;
}

static int ctx_destroy(int fd, uint32_t id)
{
	struct drm_i915_gem_context_destroy d = { .ctx_id = id };

	return ioctl(fd, DRM_IOCTL_I915_GEM_CONTEXT_DESTROY, &d) ? -errno : 0;
}

/*
 * A batch in `batch` that stores `value` at TARGET_VA + 64, both objects softpinned; with
 * `spin`, it first polls TARGET_VA until it reads 1.
 */
static int submit_store(int fd, uint32_t ctx, uint64_t ring, uint32_t target, uint32_t batch,
			uint32_t value, int spin)
{
	uint32_t b[16], n = 0;
	struct drm_i915_gem_exec_object2 obj[2] = {
		{ .handle = target, .offset = TARGET_VA,
		  .flags = EXEC_OBJECT_PINNED | EXEC_OBJECT_WRITE | EXEC_OBJECT_SUPPORTS_48B_ADDRESS },
		{ .handle = batch, .offset = BATCH_VA,
		  .flags = EXEC_OBJECT_PINNED | EXEC_OBJECT_SUPPORTS_48B_ADDRESS },
	};
	struct drm_i915_gem_execbuffer2 eb = {
		.buffers_ptr = (uintptr_t)obj, .buffer_count = 2, .flags = ring, .rsvd1 = ctx,
	};
	int r;

	if (spin) {
		b[n++] = MI_SEMAPHORE_WAIT_POLL;
		b[n++] = 1;
		b[n++] = (uint32_t)TARGET_VA;
		b[n++] = 0;
	}
	b[n++] = MI_STORE_DWORD_IMM_GEN4;
	b[n++] = (uint32_t)(TARGET_VA + 64);
	b[n++] = 0;
	b[n++] = value;
	b[n++] = MI_BATCH_BUFFER_END;
	b[n++] = 0;
	r = pwrite_words(fd, batch, b, n);
	return r ? r : execbuf(fd, &eb);
}

TEST_F(node, exec_store_dword)
{
	uint64_t size = 4096;
	uint32_t target = 0, batch = 0, busy = 1;
	int64_t t = -1;
	uint64_t rings[] = { I915_EXEC_DEFAULT, I915_EXEC_RENDER, I915_EXEC_BLT };

	ASSERT_EQ(0, gem_create(self->fd, &size, &target));
	ASSERT_EQ(0, gem_create(self->fd, &size, &batch));
	for (unsigned int i = 0; i < sizeof(rings) / sizeof(rings[0]); i++) {
		ASSERT_EQ(0, submit_store(self->fd, 0, rings[i], target, batch, 0xc0de0000 + i, 0));
		t = -1;
		ASSERT_EQ(0, gem_wait(self->fd, target, &t));
		EXPECT_EQ(-1, t);
		ASSERT_EQ(0, gem_busy(self->fd, target, &busy));
		EXPECT_EQ(0, busy);
		EXPECT_EQ(0xc0de0000 + i, pread_word(self->fd, target, 64));
	}
	gem_close(self->fd, batch);
	gem_close(self->fd, target);
}

TEST_F(node, exec_busy_and_wait_timeouts)
{
	uint64_t size = 4096;
	uint32_t target = 0, batch = 0, busy = 0;
	volatile uint32_t *p;
	struct drm_i915_gem_wait w = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	int64_t t;

	ASSERT_EQ(0, gem_create(self->fd, &size, &target));
	ASSERT_EQ(0, gem_create(self->fd, &size, &batch));
	p = gem_map(self->fd, target, size);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 0;
	ASSERT_EQ(0, submit_store(self->fd, 0, I915_EXEC_BLT, target, batch, 0x5a5a, 1));
	/* Spinning on the copy engine: written there, and the batch read there. */
	ASSERT_EQ(0, gem_busy(self->fd, target, &busy));
	EXPECT_EQ((1u << 17) | 2, busy);
	ASSERT_EQ(0, gem_busy(self->fd, batch, &busy));
	EXPECT_EQ(1u << 17, busy);
	t = 0;
	EXPECT_EQ(-ETIME, gem_wait(self->fd, target, &t));
	EXPECT_EQ(0, t);
	t = 20 * 1000 * 1000;
	EXPECT_EQ(-ETIME, gem_wait(self->fd, target, &t));
	EXPECT_EQ(0, t);
	w.bo_handle = target;
	w.flags = 1;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_WAIT, &w));
	EXPECT_EQ(EINVAL, errno);
	w.flags = 0;
	w.bo_handle = 0x7777;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_WAIT, &w));
	EXPECT_EQ(ENOENT, errno);
	/* THROTTLE waits for the spinner (older than 20 ms by now) until a signal. */
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ualarm(100 * 1000, 0);
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_THROTTLE));
	EXPECT_EQ(EINTR, errno);
	p[0] = 1;
	t = 10ll * 1000 * 1000 * 1000;
	ASSERT_EQ(0, gem_wait(self->fd, target, &t));
	EXPECT_GT(t, 0);
	EXPECT_LT(t, 10ll * 1000 * 1000 * 1000);
	EXPECT_EQ(0x5a5a, p[16]);
	ASSERT_EQ(0, gem_busy(self->fd, target, &busy));
	EXPECT_EQ(0, busy);
	EXPECT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_THROTTLE));
	munmap((void *)p, size);
	gem_close(self->fd, batch);
	gem_close(self->fd, target);
}

TEST_F(node, exec_errors_are_i915s)
{
	uint64_t size = 4096;
	uint32_t target = 0, batch = 0, bbe[2] = { MI_BATCH_BUFFER_END, 0 };
	struct drm_i915_gem_exec_object2 obj = { 0 };
	struct drm_i915_gem_execbuffer2 eb = { 0 };

	ASSERT_EQ(0, gem_create(self->fd, &size, &target));
	ASSERT_EQ(0, gem_create(self->fd, &size, &batch));
	ASSERT_EQ(0, pwrite_words(self->fd, batch, bbe, 2));
	obj.handle = batch;
	eb.buffers_ptr = (uintptr_t)&obj;
	eb.buffer_count = 1;
	ASSERT_EQ(0, execbuf(self->fd, &eb));

	eb.buffer_count = 0;
	EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
	/* A list larger than one ccmd carries fails cleanly (no allocator warning). */
	eb.buffer_count = 0x7fffffff;
	EXPECT_EQ(-ENOMEM, execbuf(self->fd, &eb));
	eb.buffer_count = 1;
	eb.flags = 1ull << 22;
	EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
	eb.flags = 0;
	eb.num_cliprects = 1;
	EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
	eb.num_cliprects = 0;
	eb.DR1 = 1;
	EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
	eb.DR1 = 0;
	eb.batch_start_offset = 4;
	EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
	eb.batch_start_offset = 0;
	eb.flags = I915_EXEC_SECURE;
	EXPECT_EQ(-ENODEV, execbuf(self->fd, &eb));
	eb.flags = 0;
	eb.buffers_ptr = 8;
	EXPECT_EQ(-EFAULT, execbuf(self->fd, &eb));
	eb.buffers_ptr = (uintptr_t)&obj;
	obj.handle = 0x7777;
	EXPECT_EQ(-ENOENT, execbuf(self->fd, &eb));
	obj.handle = batch;
	/* Checked by the host's i915: an unknown context, an engine it lacks, a batch outside
	 * its object, a batch that writes itself. */
	eb.rsvd1 = 0x7777;
	EXPECT_EQ(-ENOENT, execbuf(self->fd, &eb));
	eb.rsvd1 = 0;
	eb.flags = 5;
	EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
	eb.flags = 0;
	eb.batch_start_offset = 8192;
	EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
	eb.batch_start_offset = 0;
	obj.flags = EXEC_OBJECT_WRITE;
	EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
	obj.flags = 0;
	/* Fences, checked before the context: both in-fence kinds, an fd that is not a sync
	 * file, a syncobj array with extensions, extensions with cliprects, an unknown
	 * syncobj, waiting for an empty one, unknown fence flags. */
	eb.rsvd1 = 0x7777;
	eb.flags = I915_EXEC_FENCE_IN | I915_EXEC_FENCE_SUBMIT;
	EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
	eb.flags = I915_EXEC_FENCE_IN;
	eb.rsvd2 = self->fd;
	EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
	eb.rsvd2 = 0;
	{
		struct drm_i915_gem_exec_fence ef = { 0 };
		struct drm_syncobj_create sc = { 0 };

		ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_SYNCOBJ_CREATE, &sc));
		eb.flags = I915_EXEC_FENCE_ARRAY | I915_EXEC_USE_EXTENSIONS;
		EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
		eb.flags = I915_EXEC_USE_EXTENSIONS;
		eb.num_cliprects = 1;
		EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
		eb.flags = I915_EXEC_FENCE_ARRAY;
		eb.cliprects_ptr = (uintptr_t)&ef;
		ef.handle = sc.handle + 100;
		EXPECT_EQ(-ENOENT, execbuf(self->fd, &eb));
		ef.handle = sc.handle;
		ef.flags = I915_EXEC_FENCE_WAIT;
		EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
		ef.flags = 4;
		EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
		/* The out-fence fd of a refused execbuffer is not installed. */
		ef.flags = I915_EXEC_FENCE_SIGNAL;
		eb.flags = I915_EXEC_FENCE_ARRAY | I915_EXEC_FENCE_OUT;
		EXPECT_EQ(-ENOENT, execbuf(self->fd, &eb));
		EXPECT_EQ(0, eb.rsvd2 >> 32);
		eb.rsvd1 = 0;
		ASSERT_EQ(0, execbuf(self->fd, &eb));
		EXPECT_GT(eb.rsvd2 >> 32, 0);
		close(eb.rsvd2 >> 32);
		ef.flags = I915_EXEC_FENCE_WAIT;
		eb.flags = I915_EXEC_FENCE_ARRAY;
		ASSERT_EQ(0, execbuf(self->fd, &eb));
		eb.num_cliprects = 0;
		eb.cliprects_ptr = 0;
	}
	eb.rsvd1 = 0;
	eb.rsvd2 = 0;
	eb.flags = 0;
	ASSERT_EQ(0, execbuf(self->fd, &eb));
	gem_close(self->fd, batch);
	gem_close(self->fd, target);
}

TEST_F(node, contexts_and_vms)
{
	struct {
		struct drm_i915_gem_context_create_ext_setparam sp;
	} ext = { 0 };
	struct {
		uint64_t extensions;
		struct i915_engine_class_instance e[2];
	} engines = { 0, { { I915_ENGINE_CLASS_COPY, 0 }, { I915_ENGINE_CLASS_RENDER, 0 } } };
	struct drm_i915_gem_context_param gp = { 0 };
	struct drm_i915_gem_vm_control vm = { 0 };
	uint64_t size = 4096;
	uint32_t ctx = 0, ctx2 = 0, target = 0, batch = 0, busy = 0;
	struct drm_i915_gem_context_destroy d = { 0 };
	volatile uint32_t *p;
	int64_t t = -1;

	ASSERT_EQ(0, ctx_create(self->fd, NULL, &ctx));
	EXPECT_NE(0, ctx);
	EXPECT_EQ(-ENOENT, ctx_destroy(self->fd, 0));
	d.ctx_id = ctx;
	d.pad = 1;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_CONTEXT_DESTROY, &d));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, ctx_destroy(self->fd, ctx));
	EXPECT_EQ(-ENOENT, ctx_destroy(self->fd, ctx));

	/* An engine map: index 0 is the copy engine, 1 the render engine. */
	ext.sp.base.name = I915_CONTEXT_CREATE_EXT_SETPARAM;
	ext.sp.param.param = I915_CONTEXT_PARAM_ENGINES;
	ext.sp.param.size = sizeof(engines);
	ext.sp.param.value = (uintptr_t)&engines;
	ASSERT_EQ(0, ctx_create(self->fd, &ext, &ctx));
	/* i915 no longer reads engine maps back. */
	gp.ctx_id = ctx;
	gp.param = I915_CONTEXT_PARAM_ENGINES;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_CONTEXT_GETPARAM, &gp));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, gem_create(self->fd, &size, &target));
	ASSERT_EQ(0, gem_create(self->fd, &size, &batch));
	p = gem_map(self->fd, target, size);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 0;
	ASSERT_EQ(0, submit_store(self->fd, ctx, 1, target, batch, 0x77, 1));
	ASSERT_EQ(0, gem_busy(self->fd, target, &busy));
	EXPECT_EQ((1u << 16) | 1, busy); /* render: index 1 of the map */
	p[0] = 1;
	ASSERT_EQ(0, gem_wait(self->fd, target, &t));
	EXPECT_EQ(0x77, p[16]);
	munmap((void *)p, size);
	/* Index 2 is not in the map; the host's i915 says so. */
	EXPECT_EQ(-EINVAL, submit_store(self->fd, ctx, 2, target, batch, 0x78, 0));

	/* Bad setparam elements: ctx_id must be 0, sizes as i915 wants them. */
	ext.sp.param.ctx_id = 1;
	EXPECT_EQ(-EINVAL, ctx_create(self->fd, &ext, &ctx2));
	ext.sp.param.ctx_id = 0;
	ext.sp.param.size = 6;
	EXPECT_EQ(-EINVAL, ctx_create(self->fd, &ext, &ctx2));
	ext.sp.param.param = I915_CONTEXT_PARAM_BAN_PERIOD;
	ext.sp.param.size = 0;
	EXPECT_EQ(-EINVAL, ctx_create(self->fd, &ext, &ctx2));
	ext.sp.param.param = I915_CONTEXT_PARAM_RECOVERABLE;
	ext.sp.base.name = 1; /* the removed CLONE */
	EXPECT_EQ(-EINVAL, ctx_create(self->fd, &ext, &ctx2));
	ext.sp.base.name = 0;
	ext.sp.base.flags = 1;
	EXPECT_EQ(-EINVAL, ctx_create(self->fd, &ext, &ctx2));
	ext.sp.base.flags = 0;
	EXPECT_EQ(-EFAULT, ctx_create(self->fd, (void *)8, &ctx2));

	/* VMs: created and destroyed by the host; a context can take one. */
	EXPECT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_VM_CREATE, &vm));
	EXPECT_NE(0, vm.vm_id);
	ext.sp.param.param = I915_CONTEXT_PARAM_VM;
	ext.sp.param.value = vm.vm_id;
	ASSERT_EQ(0, ctx_create(self->fd, &ext, &ctx2));
	gp.ctx_id = ctx2;
	gp.param = I915_CONTEXT_PARAM_GTT_SIZE;
	gp.size = 0;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_CONTEXT_GETPARAM, &gp));
	EXPECT_GT(gp.value, 1ull << 32);
	EXPECT_EQ(0, ctx_destroy(self->fd, ctx2));
	vm.flags = 1;
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_VM_DESTROY, &vm));
	EXPECT_EQ(EINVAL, errno);
	vm.flags = 0;
	EXPECT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_VM_DESTROY, &vm));
	EXPECT_EQ(-1, ioctl(self->fd, DRM_IOCTL_I915_GEM_VM_DESTROY, &vm));
	EXPECT_EQ(ENOENT, errno);

	EXPECT_EQ(0, ctx_destroy(self->fd, ctx));
	gem_close(self->fd, batch);
	gem_close(self->fd, target);
}

struct submitter {
	int fd;
	int n;
	int index;
	int failed;
};

static void *submit_many(void *arg)
{
	struct submitter *s = arg;
	uint64_t size = 4096;
	uint32_t target = 0, batch = 0;
	int64_t t = -1;

	va_shift = (uint64_t)(s->index + 1) << 24;
	if (gem_create(s->fd, &size, &target) || gem_create(s->fd, &size, &batch)) {
		s->failed = 1;
		return NULL;
	}
	for (int i = 0; i < s->n; i++) {
		int r = submit_store(s->fd, 0, i % 2 ? I915_EXEC_BLT : I915_EXEC_RENDER, target,
				     batch, i, 0);

		if (r) {
			s->failed = r;
			break;
		}
	}
	if (gem_wait(s->fd, target, &t) || pread_word(s->fd, target, 64) != (uint32_t)(s->n - 1))
		s->failed = 2;
	gem_close(s->fd, batch);
	gem_close(s->fd, target);
	return NULL;
}

TEST_F(node, exec_from_eight_threads)
{
	pthread_t th[8];
	struct submitter s[8];

	/* One fd shared by 8 threads, then 8 fds. */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 8; i++) {
			s[i].fd = round ? open(render_node(), O_RDWR | O_CLOEXEC) : self->fd;
			s[i].n = 40;
			s[i].index = i;
			s[i].failed = 0;
			ASSERT_EQ(0, pthread_create(&th[i], NULL, submit_many, &s[i]));
		}
		for (int i = 0; i < 8; i++) {
			pthread_join(th[i], NULL);
			EXPECT_EQ(0, s[i].failed) TH_LOG("round %d thread %d: %d", round, i, s[i].failed);
			if (round)
				close(s[i].fd);
		}
	}
}

TEST(exec_signal_storm_leaks_nothing)
{
	long ctx, blobs, bytes, quar;
	struct sigaction sa = { .sa_handler = on_signal };
	int status = 0, exited = 0;
	pid_t pid;

	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		for (int i = 0; i < 40; i++) {
			int fd = open(render_node(), O_RDWR | O_CLOEXEC);
			uint64_t size = 4096;
			uint32_t target = 0, batch = 0, c = 0;
			int64_t w = -1;

			if (fd < 0)
				continue;
			if (gem_create(fd, &size, &target) || gem_create(fd, &size, &batch)) {
				close(fd);
				continue;
			}
			if (i % 3 == 0)
				ctx_create(fd, NULL, &c);
			for (int j = 0; j < 20; j++) {
				int r = submit_store(fd, c, j % 2 ? I915_EXEC_BLT : 0, target, batch, j, 0);

				/* Interrupted before anything was queued, or ran: nothing else. */
				if (r && r != -EINTR && r != -ERESTART && r != -EAGAIN)
					_exit(10 - r);
			}
			/* Restarted after each signal, as userspace does. */
			while (gem_wait(fd, target, &w) == -EINTR)
				w = -1;
			if (i % 2)
				gem_close(fd, target);
			close(fd);
		}
		_exit(0);
	}
	exited = signal_storm(pid, 300, 120, &status);
	ASSERT_TRUE(exited);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) TH_LOG("status %#x", status);
	EXPECT_TRUE(live_counters_zero(&ctx, &blobs, &bytes, &quar))
		TH_LOG("live: contexts %ld blobs %ld window_bytes %ld quarantined %ld objects %ld", ctx, blobs, bytes, quar, live_counter("objects"));
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

TEST_F_TIMEOUT(node, exec_failures_leak_nothing, 900)
{
	long ctx, blobs, bytes, quar;
	int fd = open(render_node(), O_RDWR | O_CLOEXEC), fds;
	uint64_t size = 4096;
	uint32_t batch = 0, bbe[2] = { MI_BATCH_BUFFER_END, 0 };
	struct drm_i915_gem_exec_object2 obj = { 0 };
	struct drm_i915_gem_execbuffer2 eb = { 0 };

	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, gem_create(fd, &size, &batch));
	ASSERT_EQ(0, pwrite_words(fd, batch, bbe, 2));
	obj.handle = batch;
	eb.buffers_ptr = (uintptr_t)&obj;
	eb.buffer_count = 1;
	ASSERT_EQ(0, execbuf(fd, &eb));
	fds = open_fds();
	/* 100,000 refused submits: one in ten by the context lookup (an unknown context), the
	 * rest by the guest's first checks (an unaligned batch). */
	for (int i = 0; i < 100000; i++) {
		int host = i % 10 == 0;

		eb.rsvd1 = host ? 0x7777 : 0;
		eb.batch_start_offset = host ? 0 : 4;
		/* Every other one with an out-fence, whose fd must not stay. */
		eb.flags = i % 2 ? I915_EXEC_FENCE_OUT : 0;
		ASSERT_EQ(host ? -ENOENT : -EINVAL, execbuf(fd, &eb)) TH_LOG("submit %d", i);
	}
	eb.flags = 0;
	EXPECT_EQ(fds, open_fds());
	eb.rsvd1 = 0;
	eb.batch_start_offset = 0;
	ASSERT_EQ(0, execbuf(fd, &eb));
	close(fd);
	EXPECT_TRUE(live_counters_zero(&ctx, &blobs, &bytes, &quar))
		TH_LOG("live: contexts %ld blobs %ld window_bytes %ld quarantined %ld", ctx, blobs, bytes, quar);
	/* Every fence created was signalled (those of refused submits with an error). */
	EXPECT_EQ(live_counter("fences_emitted"), live_counter("fences_signalled"));
}

/*
 * Unbinding with a batch in flight: its fence (seen through a dma-buf of the object it
 * writes) signals, and nothing of the file is left once the device is back.
 */
TEST(unbind_with_batches_in_flight)
{
	long ctx, blobs, bytes, quar;
	char dev[64];
	uint64_t size = 4096;
	uint32_t target = 0, batch = 0;
	struct drm_prime_handle ph = { 0 };
	struct pollfd pfd = { 0 };
	volatile uint32_t *p;
	int fd;

	bound_device(dev, sizeof(dev));
	ASSERT_NE(0, dev[0]);
	fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, gem_create(fd, &size, &target));
	ASSERT_EQ(0, gem_create(fd, &size, &batch));
	p = gem_map(fd, target, size);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 0;
	munmap((void *)p, size);
	ph.handle = target;
	ph.flags = DRM_CLOEXEC | DRM_RDWR;
	ASSERT_EQ(0, ioctl(fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &ph));
	ASSERT_EQ(0, submit_store(fd, 0, I915_EXEC_BLT, target, batch, 1, 1));
	pfd.fd = ph.fd;
	pfd.events = POLLIN;
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	ASSERT_EQ(0, driver_attr("unbind", dev));
	EXPECT_EQ(1, poll(&pfd, 1, 5000));
	close(ph.fd);
	close(fd);
	ASSERT_EQ(0, driver_attr("bind", dev));
	/* The new binding starts clean (the old one's counters went with it). */
	EXPECT_TRUE(live_counters_zero(&ctx, &blobs, &bytes, &quar))
		TH_LOG("live: contexts %ld blobs %ld window_bytes %ld quarantined %ld", ctx, blobs, bytes, quar);
}

/* The args, the exec list and the relocations in a mapping of one of the objects. */
TEST_F(node, exec_args_in_own_mapping)
{
	uint64_t size = 4096;
	uint32_t args_bo = 0, batch = 0;
	uint32_t b[8] = { MI_STORE_DWORD_IMM_GEN4, 0, 0, 0xfeed, MI_BATCH_BUFFER_END, 0 };
	struct drm_i915_gem_exec_object2 *obj;
	struct drm_i915_gem_relocation_entry *rel;
	struct drm_i915_gem_execbuffer2 *eb;
	int64_t t = -1;
	char *m;

	ASSERT_EQ(0, gem_create(self->fd, &size, &args_bo));
	ASSERT_EQ(0, gem_create(self->fd, &size, &batch));
	ASSERT_EQ(0, pwrite_words(self->fd, batch, b, 8));
	m = gem_map(self->fd, args_bo, size);
	ASSERT_NE(MAP_FAILED, m);
	obj = (void *)(m + 1024);
	rel = (void *)(m + 2048);
	eb = (void *)(m + 3072);
	memset(obj, 0, 2 * sizeof(*obj));
	memset(rel, 0, sizeof(*rel));
	memset(eb, 0, sizeof(*eb));
	/* Store into the args object itself, at byte 64, through a relocation (by handle). */
	obj[0].handle = args_bo;
	obj[0].flags = EXEC_OBJECT_WRITE;
	obj[1].handle = batch;
	obj[1].relocation_count = 1;
	obj[1].relocs_ptr = (uintptr_t)rel;
	rel->target_handle = args_bo;
	rel->delta = 64;
	rel->offset = 4;
	rel->read_domains = I915_GEM_DOMAIN_INSTRUCTION;
	rel->write_domain = I915_GEM_DOMAIN_INSTRUCTION;
	eb->buffers_ptr = (uintptr_t)obj;
	eb->buffer_count = 2;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GEM_EXECBUFFER2_WR, eb)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, gem_wait(self->fd, args_bo, &t));
	EXPECT_EQ(0xfeed, *(volatile uint32_t *)(m + 64));
	munmap(m, size);
	gem_close(self->fd, batch);
	gem_close(self->fd, args_bo);
}

/* sw_sync (debugfs): a timeline whose fences userspace signals. */
struct sw_sync_create_fence_data {
	uint32_t value;
	char name[32];
	int32_t fence;
};
#define SW_SYNC_IOC_CREATE_FENCE	_IOWR('W', 0, struct sw_sync_create_fence_data)
#define SW_SYNC_IOC_INC			_IOW('W', 1, uint32_t)

/* A timeline and a sync file of its point 1, unsignalled; -1 without sw_sync. */
static int sw_sync_fence(int *timeline)
{
	struct sw_sync_create_fence_data d = { .value = 1, .name = "kselftest" };

	*timeline = open("/sys/kernel/debug/sync/sw_sync", O_RDWR | O_CLOEXEC);
	if (*timeline < 0)
		return -1;
	if (ioctl(*timeline, SW_SYNC_IOC_CREATE_FENCE, &d)) {
		close(*timeline);
		return -1;
	}
	return d.fence;
}

/* Whether sync file `fd` signalled within `ms`; its status (1, or an error) in `status`. */
static int fence_signalled(int fd, int ms, int *status)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct sync_file_info info = { 0 };

	if (poll(&p, 1, ms) != 1)
		return 0;
	if (ioctl(fd, SYNC_IOC_FILE_INFO, &info))
		return 0;
	*status = info.status;
	return 1;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* submit_store() with an in-fence (or -1) and an out-fence, returned in *out. */
static int submit_store_fenced(int fd, uint32_t ctx, uint64_t ring, uint32_t target,
			       uint32_t batch, uint32_t value, int in, int *out)
{
	uint32_t b[8] = { MI_STORE_DWORD_IMM_GEN4, (uint32_t)(TARGET_VA + 64), 0, value,
			  MI_BATCH_BUFFER_END, 0 };
	struct drm_i915_gem_exec_object2 obj[2] = {
		{ .handle = target, .offset = TARGET_VA,
		  .flags = EXEC_OBJECT_PINNED | EXEC_OBJECT_WRITE | EXEC_OBJECT_SUPPORTS_48B_ADDRESS },
		{ .handle = batch, .offset = BATCH_VA,
		  .flags = EXEC_OBJECT_PINNED | EXEC_OBJECT_SUPPORTS_48B_ADDRESS },
	};
	struct drm_i915_gem_execbuffer2 eb = {
		.buffers_ptr = (uintptr_t)obj, .buffer_count = 2, .rsvd1 = ctx,
		.flags = ring | I915_EXEC_FENCE_OUT | (in >= 0 ? I915_EXEC_FENCE_IN : 0),
		.rsvd2 = in >= 0 ? (uint32_t)in : 0,
	};
	int r = pwrite_words(fd, batch, b, 6);

	if (r)
		return r;
	r = execbuf(fd, &eb);
	if (!r)
		*out = eb.rsvd2 >> 32;
	return r;
}

/*
 * An execbuffer whose in-fence has not signalled returns at once; it runs once the fence
 * signals, and a later execbuffer of its context and engine runs after it.
 */
TEST_F(node, exec_in_fence_waits_without_blocking)
{
	uint64_t size = 4096;
	uint32_t target = 0, b1 = 0, b2 = 0, busy = 0;
	int tl, in, out1 = -1, out2 = -1, st = 0, one = 1;
	int64_t t = -1;
	double t0;

	in = sw_sync_fence(&tl);
	if (in < 0)
		SKIP(return, "no sw_sync (CONFIG_SW_SYNC and debugfs)");
	ASSERT_EQ(0, gem_create(self->fd, &size, &target));
	ASSERT_EQ(0, gem_create(self->fd, &size, &b1));
	ASSERT_EQ(0, gem_create(self->fd, &size, &b2));
	t0 = now_s();
	ASSERT_EQ(0, submit_store_fenced(self->fd, 0, I915_EXEC_BLT, target, b1, 1, in, &out1));
	ASSERT_EQ(0, submit_store_fenced(self->fd, 0, I915_EXEC_BLT, target, b2, 2, -1, &out2));
	EXPECT_LT(now_s() - t0, 2.0);
	usleep(100 * 1000);
	EXPECT_EQ(0, fence_signalled(out1, 0, &st));
	EXPECT_EQ(0, fence_signalled(out2, 0, &st));
	ASSERT_EQ(0, gem_busy(self->fd, target, &busy));
	EXPECT_NE(0, busy);
	t = 0;
	EXPECT_EQ(-ETIME, gem_wait(self->fd, target, &t));
	ASSERT_EQ(0, ioctl(tl, SW_SYNC_IOC_INC, &one));
	t = -1;
	ASSERT_EQ(0, gem_wait(self->fd, target, &t));
	EXPECT_EQ(1, fence_signalled(out1, 5000, &st));
	EXPECT_EQ(1, st);
	EXPECT_EQ(1, fence_signalled(out2, 5000, &st));
	EXPECT_EQ(1, st);
	/* In submission order: the second store came last. */
	EXPECT_EQ(2, pread_word(self->fd, target, 64));
	close(out1);
	close(out2);
	close(in);
	close(tl);
	gem_close(self->fd, b1);
	gem_close(self->fd, b2);
	gem_close(self->fd, target);
}

/*
 * A process whose execbuffers wait for a fence that never signals: at most 1024 wait per
 * file and the next one blocks, interruptibly; SIGKILL ends the process, and its file's
 * waiting execbuffers, objects and host context all go.
 */
TEST(exec_waiting_is_bounded_and_killable)
{
	long ctx, blobs, bytes, quar;
	int p[2], status = 0, n = 0, tl, in;
	pid_t pid;

	in = sw_sync_fence(&tl);
	if (in < 0)
		SKIP(return, "no sw_sync (CONFIG_SW_SYNC and debugfs)");
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		int fd = open(render_node(), O_RDWR | O_CLOEXEC);
		uint64_t size = 4096;
		uint32_t target = 0, batch = 0;

		close(p[0]);
		if (fd < 0 || gem_create(fd, &size, &target) || gem_create(fd, &size, &batch))
			_exit(2);
		for (int i = 0; i < 1100; i++) {
			int out = -1;
			struct drm_i915_gem_exec_object2 obj[2] = {
				{ .handle = target, .offset = TARGET_VA,
				  .flags = EXEC_OBJECT_PINNED | EXEC_OBJECT_WRITE },
				{ .handle = batch, .offset = BATCH_VA, .flags = EXEC_OBJECT_PINNED },
			};
			struct drm_i915_gem_execbuffer2 eb = {
				.buffers_ptr = (uintptr_t)obj, .buffer_count = 2,
				.flags = I915_EXEC_BLT | I915_EXEC_FENCE_IN, .rsvd2 = in,
			};

			/* The batch is written once: writing it again would wait for it. */
			if (i == 0 && submit_store_fenced(fd, 0, I915_EXEC_BLT, target, batch, i, in, &out))
				_exit(3);
			if (i > 0 && execbuf(fd, &eb))
				_exit(4);
			if (out >= 0)
				close(out);
			if (write(p[1], "x", 1) != 1)
				_exit(5);
		}
		_exit(6);
	}
	close(p[1]);
	/* Wait until the child stops getting through. */
	for (;;) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		char c;

		if (poll(&pf, 1, 3000) != 1)
			break;
		if (read(p[0], &c, 1) != 1)
			break;
		n++;
	}
	EXPECT_EQ(1024, n);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) TH_LOG("status %#x", status);
	close(p[0]);
	close(in);
	close(tl);
	EXPECT_TRUE(live_counters_zero(&ctx, &blobs, &bytes, &quar))
		TH_LOG("live: contexts %ld blobs %ld window_bytes %ld quarantined %ld objects %ld", ctx, blobs, bytes, quar, live_counter("objects"));
}

/* Timeline syncobjs through the execbuffer extension: signal a point, wait for it. */
TEST_F(node, exec_timeline_syncobjs)
{
	uint64_t size = 4096, point = 3, got = 0;
	uint32_t batch = 0, bbe[2] = { MI_BATCH_BUFFER_END, 0 };
	struct drm_syncobj_create sc = { 0 };
	struct drm_i915_gem_exec_fence ef = { 0 };
	struct drm_i915_gem_execbuffer_ext_timeline_fences ext = {
		.base.name = DRM_I915_GEM_EXECBUFFER_EXT_TIMELINE_FENCES,
		.fence_count = 1, .handles_ptr = (uintptr_t)&ef, .values_ptr = (uintptr_t)&point,
	};
	struct drm_i915_gem_exec_object2 obj = { 0 };
	struct drm_i915_gem_execbuffer2 eb = {
		.buffers_ptr = (uintptr_t)&obj, .buffer_count = 1,
		.flags = I915_EXEC_USE_EXTENSIONS, .cliprects_ptr = (uintptr_t)&ext,
	};
	struct drm_syncobj_timeline_wait tw = { 0 };
	struct drm_syncobj_timeline_array q = { 0 };

	ASSERT_EQ(0, gem_create(self->fd, &size, &batch));
	ASSERT_EQ(0, pwrite_words(self->fd, batch, bbe, 2));
	obj.handle = batch;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_SYNCOBJ_CREATE, &sc));
	ef.handle = sc.handle;
	/* Waiting for a point the timeline does not have yet. */
	ef.flags = I915_EXEC_FENCE_WAIT;
	EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
	/* Waiting for and signalling one point. */
	ef.flags = I915_EXEC_FENCE_WAIT | I915_EXEC_FENCE_SIGNAL;
	EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
	ef.flags = I915_EXEC_FENCE_SIGNAL;
	ASSERT_EQ(0, execbuf(self->fd, &eb));
	tw.handles = (uintptr_t)&sc.handle;
	tw.points = (uintptr_t)&point;
	tw.count_handles = 1;
	tw.timeout_nsec = INT64_MAX;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &tw)) TH_LOG("%s", strerror(errno));
	q.handles = (uintptr_t)&sc.handle;
	q.points = (uintptr_t)&got;
	q.count_handles = 1;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_SYNCOBJ_QUERY, &q));
	EXPECT_EQ(3, got);
	/* Now point 2 (collected or not) and 3 can be waited for. */
	point = 2;
	ef.flags = I915_EXEC_FENCE_WAIT;
	ASSERT_EQ(0, execbuf(self->fd, &eb));
	/* An unknown extension. */
	ext.base.name = 1;
	EXPECT_EQ(-EINVAL, execbuf(self->fd, &eb));
	gem_close(self->fd, batch);
}

/*
 * Unbinding while an execbuffer waits for a fence: its out-fence signals with an error,
 * and the new binding starts clean.
 */
TEST(unbind_with_waiting_execbuffer)
{
	long ctx, blobs, bytes, quar;
	char dev[64];
	uint64_t size = 4096;
	uint32_t target = 0, batch = 0;
	int fd, tl, in, out = -1, st = 0;

	in = sw_sync_fence(&tl);
	if (in < 0)
		SKIP(return, "no sw_sync (CONFIG_SW_SYNC and debugfs)");
	bound_device(dev, sizeof(dev));
	ASSERT_NE(0, dev[0]);
	fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, gem_create(fd, &size, &target));
	ASSERT_EQ(0, gem_create(fd, &size, &batch));
	ASSERT_EQ(0, submit_store_fenced(fd, 0, I915_EXEC_BLT, target, batch, 7, in, &out));
	EXPECT_EQ(0, fence_signalled(out, 0, &st));
	ASSERT_EQ(0, driver_attr("unbind", dev));
	EXPECT_EQ(1, fence_signalled(out, 5000, &st));
	EXPECT_EQ(-ENODEV, st);
	close(out);
	close(fd);
	close(in);
	close(tl);
	ASSERT_EQ(0, driver_attr("bind", dev));
	EXPECT_TRUE(live_counters_zero(&ctx, &blobs, &bytes, &quar))
		TH_LOG("live: contexts %ld blobs %ld window_bytes %ld quarantined %ld", ctx, blobs, bytes, quar);
}

/*
 * A dependency that fails skips the batch, whose out-fence gets its error (sw_sync fails
 * the fences of a timeline closed unsignalled with -ENOENT); destroying a GEM context
 * cancels its waiting batches (-ECANCELED).
 */
TEST_F(node, exec_failed_dependency_skips_the_batch)
{
	uint64_t size = 4096;
	uint32_t target = 0, batch = 0, c = 0;
	uint32_t zero[2] = { 0, 0 };
	int tl, in, out = -1, st = 0;
	int64_t t = -1;

	in = sw_sync_fence(&tl);
	if (in < 0)
		SKIP(return, "no sw_sync (CONFIG_SW_SYNC and debugfs)");
	ASSERT_EQ(0, gem_create(self->fd, &size, &target));
	ASSERT_EQ(0, gem_create(self->fd, &size, &batch));
	ASSERT_EQ(0, pwrite_words(self->fd, target, zero, 2));
	ASSERT_EQ(0, submit_store_fenced(self->fd, 0, I915_EXEC_BLT, target, batch, 5, in, &out));
	EXPECT_EQ(0, fence_signalled(out, 0, &st));
	close(tl);
	EXPECT_EQ(1, fence_signalled(out, 5000, &st));
	EXPECT_EQ(-ENOENT, st);
	ASSERT_EQ(0, gem_wait(self->fd, target, &t));
	EXPECT_EQ(0, pread_word(self->fd, target, 64));
	close(out);
	close(in);

	in = sw_sync_fence(&tl);
	ASSERT_GE(in, 0);
	ASSERT_EQ(0, ctx_create(self->fd, NULL, &c));
	ASSERT_EQ(0, submit_store_fenced(self->fd, c, I915_EXEC_BLT, target, batch, 6, in, &out));
	ASSERT_EQ(0, ctx_destroy(self->fd, c));
	EXPECT_EQ(1, fence_signalled(out, 5000, &st));
	EXPECT_EQ(-ECANCELED, st);
	t = -1;
	ASSERT_EQ(0, gem_wait(self->fd, target, &t));
	EXPECT_EQ(0, pread_word(self->fd, target, 64));
	close(out);
	close(in);
	close(tl);
	gem_close(self->fd, batch);
	gem_close(self->fd, target);
}

/*
 * A submit fence of a batch that still waits in the same file: the second batch is sent
 * right after the first, not once it completes (the first polls for a value the second
 * writes, so waiting for its completion would hang).
 */
TEST_F(node, exec_submit_fence_runs_alongside)
{
	uint64_t size = 4096;
	uint32_t target = 0, b1 = 0, b2 = 0;
	uint32_t w[2] = { 0, 0 };
	int tl, in, out1 = -1, st = 0, one = 1;
	int64_t t = -1;
	uint32_t poll_batch[16], n = 0;
	uint32_t store[8] = { MI_STORE_DWORD_IMM_GEN4, (uint32_t)TARGET_VA, 0, 1,
			      MI_BATCH_BUFFER_END, 0 };
	struct drm_i915_gem_exec_object2 obj[2] = {
		{ .handle = 0, .offset = TARGET_VA,
		  .flags = EXEC_OBJECT_PINNED | EXEC_OBJECT_WRITE | EXEC_OBJECT_ASYNC },
		{ .handle = 0, .offset = BATCH_VA, .flags = EXEC_OBJECT_PINNED },
	};
	struct drm_i915_gem_execbuffer2 eb = {
		.buffers_ptr = (uintptr_t)obj, .buffer_count = 2,
	};

	in = sw_sync_fence(&tl);
	if (in < 0)
		SKIP(return, "no sw_sync (CONFIG_SW_SYNC and debugfs)");
	ASSERT_EQ(0, gem_create(self->fd, &size, &target));
	ASSERT_EQ(0, gem_create(self->fd, &size, &b1));
	ASSERT_EQ(0, gem_create(self->fd, &size, &b2));
	ASSERT_EQ(0, pwrite_words(self->fd, target, w, 2));
	/* b1 on the render engine: wait for TARGET_VA == 1, then store 2 at +64. */
	poll_batch[n++] = MI_SEMAPHORE_WAIT_POLL;
	poll_batch[n++] = 1;
	poll_batch[n++] = (uint32_t)TARGET_VA;
	poll_batch[n++] = 0;
	poll_batch[n++] = MI_STORE_DWORD_IMM_GEN4;
	poll_batch[n++] = (uint32_t)(TARGET_VA + 64);
	poll_batch[n++] = 0;
	poll_batch[n++] = 2;
	poll_batch[n++] = MI_BATCH_BUFFER_END;
	poll_batch[n++] = 0;
	ASSERT_EQ(0, pwrite_words(self->fd, b1, poll_batch, n));
	ASSERT_EQ(0, pwrite_words(self->fd, b2, store, 6));
	/* b1 waits for the sw_sync fence; b2, on the copy engine, has b1's submit fence. */
	obj[0].handle = target;
	obj[1].handle = b1;
	eb.flags = I915_EXEC_RENDER | I915_EXEC_FENCE_IN | I915_EXEC_FENCE_OUT;
	eb.rsvd2 = in;
	ASSERT_EQ(0, execbuf(self->fd, &eb));
	out1 = eb.rsvd2 >> 32;
	/* Its own address: b1 still holds BATCH_VA. */
	obj[1].handle = b2;
	obj[1].offset = BATCH_VA + 0x10000;
	eb.flags = I915_EXEC_BLT | I915_EXEC_FENCE_SUBMIT;
	eb.rsvd2 = out1;
	ASSERT_EQ(0, execbuf(self->fd, &eb));
	usleep(100 * 1000);
	EXPECT_EQ(0, fence_signalled(out1, 0, &st));
	ASSERT_EQ(0, ioctl(tl, SW_SYNC_IOC_INC, &one));
	EXPECT_EQ(1, fence_signalled(out1, 10000, &st));
	EXPECT_EQ(1, st);
	ASSERT_EQ(0, gem_wait(self->fd, target, &t));
	EXPECT_EQ(2, pread_word(self->fd, target, 64));
	close(out1);
	close(in);
	close(tl);
	gem_close(self->fd, b1);
	gem_close(self->fd, b2);
	gem_close(self->fd, target);
}

/* The "cardN" name of the primary node of the render node's DRM device, in out[16]. */
static int primary_name(char *out)
{
	char dev[PATH_MAX], path[PATH_MAX + 8];
	struct dirent *e;
	DIR *d;

	out[0] = 0;
	if (node_device(render_node(), dev))
		return -1;
	snprintf(path, sizeof(path), "%s/drm", dev);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "card", 4) && strlen(e->d_name) < 16)
			strcpy(out, e->d_name);
	closedir(d);
	return out[0] ? 0 : -1;
}

/* A socket receiving the kernel's uevents, or -1. */
static int uevent_socket(void)
{
	struct sockaddr_nl addr = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       NETLINK_KOBJECT_UEVENT);

	if (s >= 0 && bind(s, (struct sockaddr *)&addr, sizeof(addr))) {
		close(s);
		return -1;
	}
	return s;
}

/*
 * Whether a "change" uevent of DRM node dri/<name> carrying the variable `var` (such as
 * "ERROR=1") arrives on socket `s` within `ms` milliseconds.
 */
static bool uevent_seen(int s, const char *name, const char *var, int ms)
{
	char buf[8192], devname[32];
	struct pollfd p = { .fd = s, .events = POLLIN };

	snprintf(devname, sizeof(devname), "DEVNAME=dri/%s", name);
	while (poll(&p, 1, ms) > 0) {
		ssize_t n = recv(s, buf, sizeof(buf) - 1, 0);
		bool change = false, drm = false, dev = false, has = false;

		if (n <= 0)
			continue;
		buf[n] = 0;
		/* "action@devpath", then NUL-separated KEY=value strings. */
		for (char *v = buf; v < buf + n; v += strlen(v) + 1) {
			change |= !strcmp(v, "ACTION=change");
			drm |= !strcmp(v, "SUBSYSTEM=drm");
			dev |= !strcmp(v, devname);
			has |= !strcmp(v, var);
		}
		if (change && drm && dev && has)
			return true;
	}
	return false;
}

/*
 * A batch that hangs (it polls for a value nothing writes) is reset by the host's i915:
 * its out-fence signals with -EIO, the context's reset statistics count it, and the
 * primary node sends the ERROR=1 uevent IGT's hang detector listens for.
 */
TEST_F_TIMEOUT(node, exec_hang_fails_the_fence, 120)
{
	uint64_t size = 4096;
	uint32_t target = 0, batch = 0, c = 0, zero[2] = { 0, 0 };
	uint32_t b[8] = { MI_SEMAPHORE_WAIT_POLL, 1, (uint32_t)TARGET_VA, 0,
			  MI_BATCH_BUFFER_END, 0 };
	struct drm_i915_gem_exec_object2 obj[2] = {
		{ .offset = TARGET_VA, .flags = EXEC_OBJECT_PINNED },
		{ .offset = BATCH_VA, .flags = EXEC_OBJECT_PINNED },
	};
	struct drm_i915_gem_execbuffer2 eb = {
		.buffers_ptr = (uintptr_t)obj, .buffer_count = 2,
		.flags = I915_EXEC_BLT | I915_EXEC_FENCE_OUT,
	};
	struct drm_i915_reset_stats rs = { 0 };
	char card[16];
	int out, st = 0, ue;

	ASSERT_EQ(0, primary_name(card));
	ue = uevent_socket();
	ASSERT_GE(ue, 0) TH_LOG("uevent socket: %s", strerror(errno));
	ASSERT_EQ(0, gem_create(self->fd, &size, &target));
	ASSERT_EQ(0, gem_create(self->fd, &size, &batch));
	ASSERT_EQ(0, pwrite_words(self->fd, target, zero, 2));
	ASSERT_EQ(0, pwrite_words(self->fd, batch, b, 6));
	ASSERT_EQ(0, ctx_create(self->fd, NULL, &c));
	obj[0].handle = target;
	obj[1].handle = batch;
	eb.rsvd1 = c;
	ASSERT_EQ(0, execbuf(self->fd, &eb));
	out = eb.rsvd2 >> 32;
	EXPECT_EQ(0, fence_signalled(out, 500, &st));
	ASSERT_EQ(1, fence_signalled(out, 60000, &st));
	EXPECT_EQ(-EIO, st);
	rs.ctx_id = c;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GET_RESET_STATS, &rs));
	EXPECT_GE(rs.batch_active, 1);
	/* Sent before the fence signals; 5 s for the socket's reader under TCG. */
	EXPECT_TRUE(uevent_seen(ue, card, "ERROR=1", 5000)) TH_LOG("no ERROR=1 uevent from %s", card);
	close(ue);
	close(out);
	ctx_destroy(self->fd, c);
	gem_close(self->fd, batch);
	gem_close(self->fd, target);
}

/* Host round trips so far (debugfs dri/<N>/virtio_intel_commands), or -1. */
static long host_commands(void)
{
	long v = -1;
	glob_t g;
	FILE *f;

	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);	/* EBUSY if mounted */
	if (glob("/sys/kernel/debug/dri/*/virtio_intel_commands", 0, NULL, &g))
		return -1;
	/* The same file under each of the device's debugfs names (minor, PCI slot). */
	f = g.gl_pathc >= 1 ? fopen(g.gl_pathv[0], "r") : NULL;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	globfree(&g);
	return v;
}

/*
 * GET_RESET_STATS, which Mesa asks after every submission and wait, is answered without a
 * host round trip for an unprivileged caller while nothing of the context can have been
 * reset (no batch of it in flight for a second, none ever reset): zeros here, as the host
 * says to a privileged caller, which is always asked of the host.
 */
TEST_F(node, reset_stats_without_round_trips)
{
	uint64_t size = 4096;
	uint32_t target = 0, batch = 0, c = 0;
	struct drm_i915_reset_stats rs = { 0 };
	int64_t t = -1;
	int status = 0;
	long before;
	pid_t pid;

	ASSERT_EQ(0, gem_create(self->fd, &size, &target));
	ASSERT_EQ(0, gem_create(self->fd, &size, &batch));
	ASSERT_EQ(0, ctx_create(self->fd, NULL, &c));
	ASSERT_EQ(0, submit_store(self->fd, c, I915_EXEC_RENDER, target, batch, 7, 0));
	ASSERT_EQ(0, gem_wait(self->fd, target, &t));
	before = host_commands();
	ASSERT_GE(before, 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
		struct __user_cap_data_struct d[2];

		if (syscall(SYS_capget, &h, d))
			_exit(2);
		d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
		if (syscall(SYS_capset, &h, d))
			_exit(3);
		for (int i = 0; i < 10; i++) {
			struct drm_i915_reset_stats r = { .ctx_id = i % 2 ? c : 0 };

			if (ioctl(self->fd, DRM_IOCTL_I915_GET_RESET_STATS, &r))
				_exit(4);
			if (r.reset_count || r.batch_active || r.batch_pending)
				_exit(5);
		}
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) TH_LOG("status %#x", status);
	EXPECT_EQ(before, host_commands());
	rs.ctx_id = c;
	ASSERT_EQ(0, ioctl(self->fd, DRM_IOCTL_I915_GET_RESET_STATS, &rs));
	EXPECT_EQ(0, rs.batch_active);
	EXPECT_EQ(0, rs.batch_pending);
	EXPECT_LT(before, host_commands());
	ctx_destroy(self->fd, c);
	gem_close(self->fd, batch);
	gem_close(self->fd, target);
}

/*
 * The host refuses an execbuffer the guest validated (VIRTIO_INTEL_HOST_FAIL_EXEC=1: the
 * first one). It was sent without waiting for the host's answer, so the ioctl succeeds and
 * its out-fence fails with the host's errno (-ENOSPC here); the next execbuffer runs.
 */
TEST(exec_host_refuses)
{
	const char *fault = getenv("VIRTIO_INTEL_FAULT");
	uint64_t size = 4096;
	uint32_t batch = 0, b[2] = { MI_BATCH_BUFFER_END, 0 };
	struct drm_i915_gem_exec_object2 obj = {
		.offset = BATCH_VA, .flags = EXEC_OBJECT_PINNED | EXEC_OBJECT_SUPPORTS_48B_ADDRESS,
	};
	struct drm_i915_gem_execbuffer2 eb = {
		.buffers_ptr = (uintptr_t)&obj, .buffer_count = 1,
		.flags = I915_EXEC_RENDER | I915_EXEC_FENCE_OUT,
	};
	int fd, out, st = 0;

	if (!fault || strcmp(fault, "exec"))
		SKIP(return, "set VIRTIO_INTEL_FAULT=exec (with the host fault)");
	fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, gem_create(fd, &size, &batch));
	ASSERT_EQ(0, pwrite_words(fd, batch, b, 2));
	obj.handle = batch;
	ASSERT_EQ(0, execbuf(fd, &eb));
	out = eb.rsvd2 >> 32;
	ASSERT_EQ(1, fence_signalled(out, 10000, &st));
	EXPECT_EQ(-ENOSPC, st);
	close(out);
	EXPECT_EQ(1, live_counter("exec_unwaited"));
	EXPECT_EQ(1, live_counter("exec_refused"));
	eb.rsvd2 = 0;
	ASSERT_EQ(0, execbuf(fd, &eb));
	out = eb.rsvd2 >> 32;
	ASSERT_EQ(1, fence_signalled(out, 10000, &st));
	EXPECT_EQ(1, st);
	close(out);
	EXPECT_EQ(2, live_counter("exec_unwaited"));
	EXPECT_EQ(1, live_counter("exec_refused"));
	gem_close(fd, batch);
	close(fd);
}

TEST_HARNESS_MAIN

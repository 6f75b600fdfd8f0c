// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_intel: the i915 uAPI of the render node, answered by the host.
 *
 * Runs in a guest with virtio_intel.ko bound. The expected PCI device id of the host GPU
 * comes from VIRTIO_INTEL_DEVICE_ID (default 0x9a49, the software host's TGL GT2).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <drm/drm.h>
#include <drm/i915_drm.h>

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
				ok = getparam(fd, I915_PARAM_CHIPSET_ID, &v) == 0 && v == expected_devid();
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
	EXPECT_EQ(-EIO, getparam(fd, I915_PARAM_CHIPSET_ID, &v)) TH_LOG("fault %s", fault);
	v = 0;
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

	snprintf(path, sizeof(path), "%s/unbind", drv);
	ufd = open(path, O_WRONLY);
	ASSERT_GE(ufd, 0);
	ASSERT_EQ((ssize_t)strlen(dev), write(ufd, dev, strlen(dev)));
	close(ufd);

	EXPECT_EQ(-ENODEV, getparam(fd, I915_PARAM_CHIPSET_ID, &v));
	close(fd);

	snprintf(path, sizeof(path), "%s/bind", drv);
	ufd = open(path, O_WRONLY);
	ASSERT_GE(ufd, 0);
	ASSERT_EQ((ssize_t)strlen(dev), write(ufd, dev, strlen(dev)));
	close(ufd);

	fd = open(render_node(), O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0) TH_LOG("render node did not come back after rebinding");
	v = 0;
	EXPECT_EQ(0, getparam(fd, I915_PARAM_CHIPSET_ID, &v));
	EXPECT_EQ(expected_devid(), v);
	close(fd);
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0
/*
 * vk_smoke: checks that the Intel Vulkan device really runs work, with results the GPU
 * (here the software host's command streamer) writes and the CPU reads back:
 *
 *  1. a command buffer writes two timestamps (top and bottom of pipe), sets an event and
 *     copies the timestamps into a host-visible buffer (vkCmdCopyQueryPoolResults);
 *  2. it is submitted signalling a timeline semaphore to 1; a second, empty submission
 *     waits for 1 and signals 2 and a fence;
 *  3. the CPU waits for the timeline value 2 and for the fence, then checks: the event is
 *     set, the query results are available, non-zero and ordered, and the buffer holds
 *     the same values.
 *
 * Prints one "vk_smoke: ..." line per check and exits 0 only if every check passed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <vulkan/vulkan.h>

static int failures;

#define CHECK(cond, ...)                                                 \
	do {                                                             \
		int ok_ = !!(cond);                                      \
		printf("vk_smoke: %s: ", ok_ ? "ok" : "FAILED");         \
		printf(__VA_ARGS__);                                     \
		printf("\n");                                            \
		failures += !ok_;                                        \
	} while (0)

#define VK(call)                                                         \
	do {                                                             \
		VkResult r_ = (call);                                    \
		if (r_ != VK_SUCCESS) {                                  \
			printf("vk_smoke: FAILED: %s = %d\n", #call, r_); \
			return 1;                                        \
		}                                                        \
	} while (0)

int main(void)
{
	const VkApplicationInfo app = {
		.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
		.pApplicationName = "vk_smoke",
		.apiVersion = VK_API_VERSION_1_2,
	};
	const VkInstanceCreateInfo ici = {
		.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
		.pApplicationInfo = &app,
	};
	VkInstance inst;
	VkPhysicalDevice pds[8], pd = VK_NULL_HANDLE;
	VkPhysicalDeviceProperties props;
	uint32_t n = 8, qf = UINT32_MAX;

	VK(vkCreateInstance(&ici, NULL, &inst));
	VK(vkEnumeratePhysicalDevices(inst, &n, pds));
	for (uint32_t i = 0; i < n && pd == VK_NULL_HANDLE; i++) {
		vkGetPhysicalDeviceProperties(pds[i], &props);
		if (props.vendorID == 0x8086)
			pd = pds[i];
	}
	if (pd == VK_NULL_HANDLE) {
		printf("vk_smoke: FAILED: no Intel Vulkan device\n");
		return 1;
	}
	printf("vk_smoke: device %s (8086:%04x)\n", props.deviceName, props.deviceID);

	VkQueueFamilyProperties qfs[16];
	uint32_t nq = 16;

	vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, qfs);
	for (uint32_t i = 0; i < nq; i++)
		if ((qfs[i].queueFlags & VK_QUEUE_GRAPHICS_BIT) && qfs[i].timestampValidBits) {
			qf = i;
			break;
		}
	if (qf == UINT32_MAX) {
		printf("vk_smoke: FAILED: no graphics queue with timestamps\n");
		return 1;
	}

	const float prio = 1.0f;
	const VkDeviceQueueCreateInfo qci = {
		.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
		.queueFamilyIndex = qf,
		.queueCount = 1,
		.pQueuePriorities = &prio,
	};
	VkPhysicalDeviceVulkan12Features f12 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
		.timelineSemaphore = VK_TRUE,
		.hostQueryReset = VK_TRUE,
	};
	const VkDeviceCreateInfo dci = {
		.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
		.pNext = &f12,
		.queueCreateInfoCount = 1,
		.pQueueCreateInfos = &qci,
	};
	VkDevice dev;
	VkQueue q;

	VK(vkCreateDevice(pd, &dci, NULL, &dev));
	vkGetDeviceQueue(dev, qf, 0, &q);

	/* A host-visible buffer for the copied query results. */
	const VkBufferCreateInfo bci = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
		.size = 4 * sizeof(uint64_t),
		.usage = VK_BUFFER_USAGE_TRANSFER_DST_BIT,
	};
	VkBuffer buf;
	VkMemoryRequirements mr;
	VkPhysicalDeviceMemoryProperties mp;
	uint32_t mt = UINT32_MAX;

	VK(vkCreateBuffer(dev, &bci, NULL, &buf));
	vkGetBufferMemoryRequirements(dev, buf, &mr);
	vkGetPhysicalDeviceMemoryProperties(pd, &mp);
	for (uint32_t i = 0; i < mp.memoryTypeCount; i++) {
		VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
					     VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;

		if ((mr.memoryTypeBits & (1u << i)) &&
		    (mp.memoryTypes[i].propertyFlags & want) == want) {
			mt = i;
			break;
		}
	}
	if (mt == UINT32_MAX) {
		printf("vk_smoke: FAILED: no host-visible coherent memory\n");
		return 1;
	}
	const VkMemoryAllocateInfo mai = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
		.allocationSize = mr.size,
		.memoryTypeIndex = mt,
	};
	VkDeviceMemory mem;
	uint64_t *map;

	VK(vkAllocateMemory(dev, &mai, NULL, &mem));
	VK(vkBindBufferMemory(dev, buf, mem, 0));
	VK(vkMapMemory(dev, mem, 0, VK_WHOLE_SIZE, 0, (void **)&map));
	memset(map, 0, 4 * sizeof(uint64_t));

	const VkQueryPoolCreateInfo qpci = {
		.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
		.queryType = VK_QUERY_TYPE_TIMESTAMP,
		.queryCount = 2,
	};
	const VkEventCreateInfo eci = { .sType = VK_STRUCTURE_TYPE_EVENT_CREATE_INFO };
	const VkSemaphoreTypeCreateInfo stci = {
		.sType = VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO,
		.semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE,
	};
	const VkSemaphoreCreateInfo sci = {
		.sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO,
		.pNext = &stci,
	};
	const VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
	const VkCommandPoolCreateInfo cpci = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
		.queueFamilyIndex = qf,
	};
	VkQueryPool qp;
	VkEvent ev;
	VkSemaphore tl;
	VkFence fence;
	VkCommandPool pool;
	VkCommandBuffer cb;

	VK(vkCreateQueryPool(dev, &qpci, NULL, &qp));
	vkResetQueryPool(dev, qp, 0, 2);
	VK(vkCreateEvent(dev, &eci, NULL, &ev));
	VK(vkCreateSemaphore(dev, &sci, NULL, &tl));
	VK(vkCreateFence(dev, &fci, NULL, &fence));
	VK(vkCreateCommandPool(dev, &cpci, NULL, &pool));
	const VkCommandBufferAllocateInfo cbai = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
		.commandPool = pool,
		.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
		.commandBufferCount = 1,
	};
	const VkCommandBufferBeginInfo cbbi = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
		.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
	};

	VK(vkAllocateCommandBuffers(dev, &cbai, &cb));
	VK(vkBeginCommandBuffer(cb, &cbbi));
	vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, qp, 0);
	vkCmdSetEvent(cb, ev, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT);
	vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, qp, 1);
	vkCmdCopyQueryPoolResults(cb, qp, 0, 2, buf, 0, 2 * sizeof(uint64_t),
				  VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT |
				  VK_QUERY_RESULT_WITH_AVAILABILITY_BIT);
	VK(vkEndCommandBuffer(cb));

	const uint64_t one = 1, two = 2;
	const VkTimelineSemaphoreSubmitInfo ts1 = {
		.sType = VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO,
		.signalSemaphoreValueCount = 1,
		.pSignalSemaphoreValues = &one,
	};
	const VkSubmitInfo s1 = {
		.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
		.pNext = &ts1,
		.commandBufferCount = 1,
		.pCommandBuffers = &cb,
		.signalSemaphoreCount = 1,
		.pSignalSemaphores = &tl,
	};
	const VkPipelineStageFlags stage = VK_PIPELINE_STAGE_ALL_COMMANDS_BIT;
	const VkTimelineSemaphoreSubmitInfo ts2 = {
		.sType = VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO,
		.waitSemaphoreValueCount = 1,
		.pWaitSemaphoreValues = &one,
		.signalSemaphoreValueCount = 1,
		.pSignalSemaphoreValues = &two,
	};
	const VkSubmitInfo s2 = {
		.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
		.pNext = &ts2,
		.waitSemaphoreCount = 1,
		.pWaitSemaphores = &tl,
		.pWaitDstStageMask = &stage,
		.signalSemaphoreCount = 1,
		.pSignalSemaphores = &tl,
	};
	const VkSemaphoreWaitInfo swi = {
		.sType = VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO,
		.semaphoreCount = 1,
		.pSemaphores = &tl,
		.pValues = &two,
	};
	uint64_t value = 0, res[4] = { 0 };
	VkResult r;

	VK(vkQueueSubmit(q, 1, &s1, VK_NULL_HANDLE));
	VK(vkQueueSubmit(q, 1, &s2, fence));
	r = vkWaitSemaphores(dev, &swi, 20ull * 1000 * 1000 * 1000);
	CHECK(r == VK_SUCCESS, "timeline semaphore reached 2 (vkWaitSemaphores = %d)", r);
	VK(vkGetSemaphoreCounterValue(dev, tl, &value));
	CHECK(value == 2, "timeline value %" PRIu64, value);
	r = vkWaitForFences(dev, 1, &fence, VK_TRUE, 20ull * 1000 * 1000 * 1000);
	CHECK(r == VK_SUCCESS, "fence signalled (vkWaitForFences = %d)", r);
	r = vkGetEventStatus(dev, ev);
	CHECK(r == VK_EVENT_SET, "event set by the GPU (vkGetEventStatus = %d)", r);
	r = vkGetQueryPoolResults(dev, qp, 0, 2, sizeof(res), res, 2 * sizeof(uint64_t),
				  VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WITH_AVAILABILITY_BIT);
	CHECK(r == VK_SUCCESS && res[1] && res[3], "timestamps available (%d)", r);
	CHECK(res[0] && res[2] >= res[0], "timestamps written and ordered: %" PRIu64 " <= %" PRIu64,
	      res[0], res[2]);
	CHECK(!memcmp(map, res, sizeof(res)),
	      "the GPU copied them to the buffer: %" PRIu64 " %" PRIu64 " (avail %" PRIu64
	      " %" PRIu64 ")", map[0], map[2], map[1], map[3]);

	vkDestroyCommandPool(dev, pool, NULL);
	vkDestroyFence(dev, fence, NULL);
	vkDestroySemaphore(dev, tl, NULL);
	vkDestroyEvent(dev, ev, NULL);
	vkDestroyQueryPool(dev, qp, NULL);
	vkUnmapMemory(dev, mem);
	vkDestroyBuffer(dev, buf, NULL);
	vkFreeMemory(dev, mem, NULL);
	vkDestroyDevice(dev, NULL);
	vkDestroyInstance(inst, NULL);
	printf("vk_smoke: %s\n", failures ? "FAILED" : "passed");
	return failures ? 1 : 0;
}

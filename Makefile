# virtio-intel: entry points.  `make demo` and `make test` install everything
# they need (as root) on a fresh Debian 12 machine; see README.md.
SHELL := /bin/bash
VM := tools/vm

.PHONY: igt bench driver-test setup sid-tree host client host-test client-test demo test vm-smoke

setup:
	$(VM)/setup-host.sh

# The sid tree: QEMU 11.1 chroot + guest root (cached in /var/cache/virtio-intel).
sid-tree: setup
	$(VM)/mk-sid-tree.sh >/dev/null

# libvirglrenderer.so.1 replacement (tools/virtio-intel-host/target/release/).
host: setup
	$(VM)/cargo.sh host

# Static guest test program (tools/virtio-intel-client/target/release/).
client: setup
	$(VM)/cargo.sh client

host-test: setup
	$(VM)/cargo.sh host-test

client-test: setup
	$(VM)/cargo.sh client-test

# Boot a guest on the project's host library and run the client in it.
demo: sid-tree host client toolchain
	rm -rf build/demo-share && mkdir -p build/demo-share
	cp tools/virtio-intel-client/target/release/virtio-intel-client build/demo-share/
	$(VM)/run-guest.sh --renderer project --share build/demo-share \
		--logdir build/vm/demo --cmd "/mnt/host/virtio-intel-client $(CLIENT_ARGS)"
	$(KERNEL)/test-driver.sh
	$(VM)/mesa-smoke.sh

# Unit tests + the guest run; ends with "N passed, N failed".
test: sid-tree toolchain
	$(VM)/test.sh

# The rig alone, on Debian's virglrenderer (no project code needed).
vm-smoke: sid-tree
	$(VM)/run-guest.sh --renderer stock --logdir build/vm/smoke \
		--gpu virtio-gpu-gl-pci,blob=on,hostmem=1G \
		--cmd 'cat /sys/kernel/debug/dri/0/virtio-gpu-features; ls /dev/dri'

# --- Guest kernel (Rust-enabled Linux 7.3; demo and test build it too) ---------
# Toolchain: clang/lld/llvm 19, bindgen-cli, rust-src; source: Debian's
# linux-source-7.3 (pinned) + rust/ + patches/; build dir printed on stdout.
KERNEL := tools/kernel
.PHONY: toolchain kernel kernel-debug

toolchain:
	$(KERNEL)/setup-toolchain.sh

kernel: toolchain
	$(KERNEL)/build.sh

kernel-debug: toolchain
	$(KERNEL)/build.sh --debug

# IGT, unmodified, against the driver; fails on any result not in tools/igt/expectations.txt.
igt: sid-tree toolchain
	tools/igt/igt.sh

# Benchmarks (medians and ratios, not a test): GETPARAM, GEM objects and execbuffer, the
# driver against the seed design.
bench: sid-tree toolchain
	$(VM)/bench.sh

# The driver on the project kernel (and its KASAN/lockdep/kmemleak variant).
driver-test: sid-tree toolchain
	$(KERNEL)/test-driver.sh
	$(KERNEL)/test-driver.sh --debug

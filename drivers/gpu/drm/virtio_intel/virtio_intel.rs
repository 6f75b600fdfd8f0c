// SPDX-License-Identifier: GPL-2.0

//! virtio-intel: a virtio-gpu DRM native context for Intel, presented as an i915 GPU.
//!
//! The driver binds to a virtio-gpu device whose host serves capset 6 with
//! `context_type` 3 (virglrenderer's i915 backend) and translates the i915 uAPI into
//! virtio-intel context commands. Layers:
//!
//! - [`protocol`]: virtio-gpu control commands and the DRM capset, with their byte layout;
//! - [`transport`]: the control virtqueue and synchronous commands;
//! - [`ccmd`]: virtio-intel context commands;
//! - [`fence`]: fence events: host fences of fenced commands become DMA fences;
//! - [`context`]: a file's host context, response page and synchronous ccmds;
//! - [`shared`], [`hostmem`]: device state shared with files, host-visible window ranges;
//! - [`driver`]: probe, feature checks, capset discovery, the transport;
//! - [`identity`]: the synthetic PCI function with the host GPU's ids, and the `i915` DRM
//!   device on it;
//! - [`file`]: an open file and its host context;
//! - [`getparam`], [`query`], [`gem_create`], [`gem_domain`],
//!   [`gem_madvise`], [`gem_tiling`], [`mman`], [`gem_rw`]: the i915 ioctls, one module per
//!   family; [`uext`]: i915's extension chains;
//! - [`gem`]: GEM objects on host blobs, mapped through the host-visible window;
//! - [`cache`]: host answers that cannot change while the device is bound;
//! - [`debugfs`]: the i915 debugfs files IGT needs.

mod cache;
mod ccmd;
mod context;
mod debugfs;
mod driver;
mod exec_queue;
mod execbuf;
mod fence;
mod file;
mod gem;
mod gem_context;
mod gem_create;
mod gem_domain;
mod gem_madvise;
mod gem_rw;
mod gem_tiling;
mod gem_wait;
mod getparam;
mod hostmem;
mod identity;
mod mman;
mod protocol;
mod query;
mod shared;
mod transport;
mod uext;

use kernel::{
    driver::Registration,
    pci,
    pci::synthetic::Driver as _,
    prelude::*,
    virtio, //
};

/// The module: the virtio driver, and the PCI driver of the synthetic functions it creates.
#[pin_data]
struct VirtioIntelModule {
    /// Unregistered first: unbinding a virtio device removes its function.
    #[pin]
    _virtio: Registration<virtio::Adapter<driver::VirtioIntelDriver>>,
    #[pin]
    _pci: Registration<pci::Adapter<identity::IdentityDriver>>,
}

impl kernel::InPlaceModule for VirtioIntelModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // The PCI driver first, so that a virtio probe finds it for its function.
        try_pin_init!(Self {
            _pci <- Registration::new(identity::IdentityDriver::NAME, module),
            _virtio <- Registration::new(<Self as kernel::ModuleMetadata>::NAME, module),
        })
    }
}

module! {
    type: VirtioIntelModule,
    name: "virtio_intel",
    authors: ["virtio-intel developers"],
    description: "i915 uAPI over a virtio-gpu DRM native context",
    license: "GPL v2",
    params: {
        fenced_ccmds: bool {
            default: false,
            description: "Send each synchronous ccmd in a SUBMIT_3D fenced on ring 0, as Mesa does, instead of an unfenced one, whose answer already means processed (the default; under TCG the fenced round trip, which waits for the DMA fence signalled from the fence workqueue, takes about twice as long)",
        },
        unwaited_execbuf: bool {
            default: true,
            description: "Send an execbuffer the guest has fully checked (softpinned objects, no relocations, as Mesa submits) with its fence in one command, without waiting for the host's answer; a refusal then fails its fence. Off: every execbuffer waits for the host's answer, so that a refusal is the ioctl's errno (a round trip each)",
        },
        reset: u32 {
            default: 3,
            description: "i915's GPU reset policy (0: none, 1: full GPU reset, 2 or more: engine reset), where i915 tools (IGT) look for it and set it. Only recorded: the host's i915 resets its GPU by its own policy, and this driver has no reset of its own to apply it to",
            permissions: 0o600,
        },
    },
}

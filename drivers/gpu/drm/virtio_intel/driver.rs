// SPDX-License-Identifier: GPL-2.0

//! Probe: features, the DRM capset, and the host-visible memory region.

use kernel::{
    device::{
        Core,
        DeviceContext, //
    },
    drm::{
        self,
        gem,
        ioctl, //
    },
    pci::{
        self,
        synthetic, //
    },
    prelude::*,
    sync::Arc,
    uapi,
    virtio, //
};

use core::sync::atomic::AtomicBool;

use crate::{
    context::ResponsePages,
    file::File,
    gem::Bo,
    identity::{
        self,
        IdentityDriver, //
    },
    protocol::{
        GetCapset,
        GetCapsetInfo,
        I915Identity,
        CAPSET_DRM,
        CONFIG_BLOB_ALIGNMENT,
        CONFIG_NUM_CAPSETS,
        F_BLOB_ALIGNMENT,
        F_CONTEXT_INIT,
        F_RESOURCE_BLOB,
        F_VERSION_1,
        F_VIRGL,
        SHM_ID_HOST_VISIBLE, //
    },
    shared::{
        Shared,
        Stats, //
    },
    transport::ControlQueue,
};

/// The DRM device of this driver.
pub(crate) type I915Device<Ctx = drm::Normal> = drm::Device<VirtioIntelDriver, Ctx>;

/// What userspace sees in `DRM_IOCTL_VERSION`: an i915.
const INFO: drm::DriverInfo = drm::DriverInfo {
    major: 1,
    minor: 6,
    patchlevel: 0,
    name: c"i915",
    desc: c"Intel Graphics (virtio native context)",
};

/// `VIRTIO_ID_GPU`.
const VIRTIO_ID_GPU: u32 = 16;

/// The most capsets this driver looks at (Linux caps capset ids at 63).
const MAX_CAPSETS: u32 = 64;

// The modalias `virtio:d00000010v*`: udev loads the module for every virtio GPU, and probe
// binds only to one whose host serves the i915 native context.
kernel::virtio_device_table!(
    VIRTIO_INTEL_IDS,
    @none,
    [virtio::DeviceId::new(VIRTIO_ID_GPU)]
);

/// The virtio-intel driver.
pub(crate) struct VirtioIntelDriver;

/// What the virtio binding owns and lends the synthetic PCI function's driver
/// ([`crate::identity`]), which registers the DRM device: the transport and the device
/// state, for as long as the driver is bound to the virtio device.
///
/// Field order matters: the response pages are unmapped before the queue goes, and the
/// queue (dropping it resets the device, so the host forgets every object) before the
/// region's reservation is released.
pub(crate) struct Transport<'bound> {
    /// The kernel mappings of the host contexts' response pages.
    pub(crate) pages: ResponsePages<'bound>,
    /// The control queue.
    pub(crate) queue: ControlQueue<'bound>,
    /// The host-visible memory region, reserved.
    pub(crate) hostmem: virtio::ShmRegion<'bound>,
    /// The device state the files share.
    pub(crate) shared: Arc<Shared>,
    /// The virtio device's index (names the debugfs directory).
    pub(crate) index: u32,
    /// Set once a DRM device was registered on this transport: host objects of that
    /// device's files may outlive it, so there is never a second one (see
    /// [`crate::identity`]).
    pub(crate) claimed: AtomicBool,
}

/// What touches the device, for as long as the DRM device is registered: the DRM
/// registration data. Ioctls get it from the DRM core inside a registration guard, and a
/// file being closed enters one; unregistering unplugs the DRM device, which waits for
/// every guard, before this is dropped. It borrows the virtio binding's [`Transport`],
/// which outlives it.
pub(crate) struct Bound<'bound> {
    /// The kernel mappings of the host contexts' response pages.
    pub(crate) pages: &'bound ResponsePages<'bound>,
    /// The control queue.
    pub(crate) queue: &'bound ControlQueue<'bound>,
    /// The host-visible memory region, reserved.
    pub(crate) hostmem: &'bound virtio::ShmRegion<'bound>,
    /// The device's counters (for debugfs).
    pub(crate) stats: Arc<Stats>,
    /// The device state the files share.
    pub(crate) shared: Arc<Shared>,
}

impl<'bound> Bound<'bound> {
    /// The registration data of a DRM device on `t`.
    pub(crate) fn new(t: &'bound Transport<'bound>) -> Self {
        Self {
            pages: &t.pages,
            queue: &t.queue,
            hostmem: &t.hostmem,
            stats: t.shared.stats.clone(),
            shared: t.shared.clone(),
        }
    }
}

impl Drop for Bound<'_> {
    /// Runs once the DRM device was unplugged (no ioctl or work is inside it any more):
    /// execbuffers still waiting for their dependencies will never reach the host.
    fn drop(&mut self) {
        self.shared.cancel_waiting_execbuffers();
    }
}

/// Per-device state while the driver is bound to the virtio device: the synthetic PCI
/// function that presents it, which owns the [`Transport`] and lends it to the DRM
/// device registered on the function. Dropping it removes the function (unregistering
/// the DRM device) before the transport goes.
pub(crate) struct DeviceData<'bound> {
    _function: synthetic::Function<'bound, IdentityDriver>,
}

impl virtio::Driver for VirtioIntelDriver {
    type Data<'bound> = DeviceData<'bound>;

    const ID_TABLE: &'static [virtio::DeviceId] = &[
        virtio::DeviceId::new(VIRTIO_ID_GPU),
        virtio::DeviceId::terminator(),
    ];

    const FEATURES: &'static [u32] = &[F_VIRGL, F_RESOURCE_BLOB, F_CONTEXT_INIT, F_BLOB_ALIGNMENT];

    fn probe<'bound>(
        dev: &'bound virtio::Device<Core<'_>>,
    ) -> impl PinInit<DeviceData<'bound>, Error> + 'bound {
        DeviceData::probe(dev).inspect_err(|e| dev_err!(dev.as_ref(), "not binding: {:?}\n", e))
    }
}

#[vtable]
impl drm::Driver for VirtioIntelDriver {
    type Data = Arc<Shared>;
    type RegistrationData<'a> = Bound<'a>;
    type File = File;
    type Object = gem::Object<Bo>;
    type ParentDevice<Ctx: DeviceContext> = pci::Device<Ctx>;

    const INFO: drm::DriverInfo = INFO;
    const FEAT_RENDER: bool = true;
    const FEAT_SYNCOBJ: bool = true;
    const FEAT_SYNCOBJ_TIMELINE: bool = true;
    // No display, but an answering, empty KMS: ANV takes the primary node for
    // `VK_KHR_display` and fails the whole display query when `GETRESOURCES` fails, where
    // no connectors is what it handles (i915 without display drops `DRIVER_MODESET`).
    const FEAT_HEADLESS_MODESET: bool = true;
    const GEM_MMAP_AT_OFFSET: bool = true;
    const COMPAT_IOCTLS: &'static [drm::ioctl::CompatIoctl] = crate::getparam::COMPAT_IOCTLS;

    fn debugfs_files() -> &'static [drm::debugfs::DebugfsFile<Self>] {
        crate::debugfs::FILES
    }

    kernel::declare_drm_ioctls_sparse! {
        (0x06, I915_GETPARAM, drm::ioctl::IOWR::<uapi::drm_i915_getparam>(0x46),
            uapi::drm_i915_getparam, ioctl::RENDER_ALLOW, File::getparam),
        (0x17, I915_GEM_BUSY, drm::ioctl::IOWR::<uapi::drm_i915_gem_busy>(0x57),
            uapi::drm_i915_gem_busy, ioctl::RENDER_ALLOW, File::gem_busy),
        (0x18, I915_GEM_THROTTLE, drm::ioctl::IO(0x58),
            (), ioctl::RENDER_ALLOW, File::gem_throttle),
        (0x1b, I915_GEM_CREATE, drm::ioctl::IOWR::<uapi::drm_i915_gem_create>(0x5b),
            uapi::drm_i915_gem_create, ioctl::RENDER_ALLOW, File::gem_create),
        (0x1c, I915_GEM_PREAD, drm::ioctl::IOW::<uapi::drm_i915_gem_pread>(0x5c),
            uapi::drm_i915_gem_pread, ioctl::RENDER_ALLOW, File::gem_pread),
        (0x1d, I915_GEM_PWRITE, drm::ioctl::IOW::<uapi::drm_i915_gem_pwrite>(0x5d),
            uapi::drm_i915_gem_pwrite, ioctl::RENDER_ALLOW, File::gem_pwrite),
        (0x1e, I915_GEM_MMAP, drm::ioctl::IOWR::<uapi::drm_i915_gem_mmap>(0x5e),
            uapi::drm_i915_gem_mmap, ioctl::RENDER_ALLOW, File::gem_mmap),
        (0x1f, I915_GEM_SET_DOMAIN, drm::ioctl::IOW::<uapi::drm_i915_gem_set_domain>(0x5f),
            uapi::drm_i915_gem_set_domain, ioctl::RENDER_ALLOW, File::gem_set_domain),
        (0x20, I915_GEM_SW_FINISH, drm::ioctl::IOW::<uapi::drm_i915_gem_sw_finish>(0x60),
            uapi::drm_i915_gem_sw_finish, ioctl::RENDER_ALLOW, File::gem_sw_finish),
        (0x21, I915_GEM_SET_TILING, drm::ioctl::IOWR::<uapi::drm_i915_gem_set_tiling>(0x61),
            uapi::drm_i915_gem_set_tiling, ioctl::RENDER_ALLOW, File::gem_set_tiling),
        (0x22, I915_GEM_GET_TILING, drm::ioctl::IOWR::<uapi::drm_i915_gem_get_tiling>(0x62),
            uapi::drm_i915_gem_get_tiling, ioctl::RENDER_ALLOW, File::gem_get_tiling),
        (0x23, I915_GEM_GET_APERTURE, drm::ioctl::IOR::<uapi::drm_i915_gem_get_aperture>(0x63),
            uapi::drm_i915_gem_get_aperture, ioctl::RENDER_ALLOW, File::gem_get_aperture),
        (0x24, I915_GEM_MMAP_OFFSET, drm::ioctl::IOWR::<uapi::drm_i915_gem_mmap_offset>(0x64),
            uapi::drm_i915_gem_mmap_offset, ioctl::RENDER_ALLOW, File::gem_mmap_offset),
        (0x26, I915_GEM_MADVISE, drm::ioctl::IOWR::<uapi::drm_i915_gem_madvise>(0x66),
            uapi::drm_i915_gem_madvise, ioctl::RENDER_ALLOW, File::gem_madvise),
        (0x29, I915_GEM_EXECBUFFER2_WR,
            drm::ioctl::IOWR::<uapi::drm_i915_gem_execbuffer2>(0x69),
            uapi::drm_i915_gem_execbuffer2, ioctl::RENDER_ALLOW, File::gem_execbuffer2),
        (0x2c, I915_GEM_WAIT, drm::ioctl::IOWR::<uapi::drm_i915_gem_wait>(0x6c),
            uapi::drm_i915_gem_wait, ioctl::RENDER_ALLOW, File::gem_wait),
        (0x2d, I915_GEM_CONTEXT_CREATE_EXT,
            drm::ioctl::IOWR::<uapi::drm_i915_gem_context_create_ext>(0x6d),
            uapi::drm_i915_gem_context_create_ext, ioctl::RENDER_ALLOW, File::gem_context_create),
        (0x2e, I915_GEM_CONTEXT_DESTROY,
            drm::ioctl::IOW::<uapi::drm_i915_gem_context_destroy>(0x6e),
            uapi::drm_i915_gem_context_destroy, ioctl::RENDER_ALLOW, File::gem_context_destroy),
        (0x2f, I915_GEM_SET_CACHING, drm::ioctl::IOW::<uapi::drm_i915_gem_caching>(0x6f),
            uapi::drm_i915_gem_caching, ioctl::RENDER_ALLOW, File::gem_set_caching),
        (0x30, I915_GEM_GET_CACHING, drm::ioctl::IOWR::<uapi::drm_i915_gem_caching>(0x70),
            uapi::drm_i915_gem_caching, ioctl::RENDER_ALLOW, File::gem_get_caching),
        (0x31, I915_REG_READ, drm::ioctl::IOWR::<uapi::drm_i915_reg_read>(0x71),
            uapi::drm_i915_reg_read, ioctl::RENDER_ALLOW, File::reg_read),
        (0x32, I915_GET_RESET_STATS, drm::ioctl::IOWR::<uapi::drm_i915_reset_stats>(0x72),
            uapi::drm_i915_reset_stats, ioctl::RENDER_ALLOW, File::get_reset_stats),
        (0x33, I915_GEM_USERPTR, drm::ioctl::IOWR::<uapi::drm_i915_gem_userptr>(0x73),
            uapi::drm_i915_gem_userptr, ioctl::RENDER_ALLOW, File::gem_userptr),
        (0x34, I915_GEM_CONTEXT_GETPARAM,
            drm::ioctl::IOWR::<uapi::drm_i915_gem_context_param>(0x74),
            uapi::drm_i915_gem_context_param, ioctl::RENDER_ALLOW, File::gem_context_getparam),
        (0x35, I915_GEM_CONTEXT_SETPARAM,
            drm::ioctl::IOWR::<uapi::drm_i915_gem_context_param>(0x75),
            uapi::drm_i915_gem_context_param, ioctl::RENDER_ALLOW, File::gem_context_setparam),
        (0x39, I915_QUERY, drm::ioctl::IOWR::<uapi::drm_i915_query>(0x79),
            uapi::drm_i915_query, ioctl::RENDER_ALLOW, File::query),
        (0x3a, I915_GEM_VM_CREATE, drm::ioctl::IOWR::<uapi::drm_i915_gem_vm_control>(0x7a),
            uapi::drm_i915_gem_vm_control, ioctl::RENDER_ALLOW, File::gem_vm_create),
        (0x3b, I915_GEM_VM_DESTROY, drm::ioctl::IOW::<uapi::drm_i915_gem_vm_control>(0x7b),
            uapi::drm_i915_gem_vm_control, ioctl::RENDER_ALLOW, File::gem_vm_destroy),
        (0x3c, I915_GEM_CREATE_EXT, drm::ioctl::IOWR::<uapi::drm_i915_gem_create_ext>(0x7c),
            uapi::drm_i915_gem_create_ext, ioctl::RENDER_ALLOW, File::gem_create_ext),
    }
}

impl<'bound> DeviceData<'bound> {
    fn probe(dev: &'bound virtio::Device<Core<'_>>) -> Result<Self> {
        for (bit, name) in [
            (F_VERSION_1, "VERSION_1"),
            (F_VIRGL, "VIRGL"),
            (F_RESOURCE_BLOB, "RESOURCE_BLOB"),
            (F_CONTEXT_INIT, "CONTEXT_INIT"),
        ] {
            if !dev.has_feature(bit) {
                dev_info!(
                    dev.as_ref(),
                    "device lacks feature {}: no native context\n",
                    name
                );
                return Err(ENODEV);
            }
        }
        let hostmem = dev
            .shm_region(SHM_ID_HOST_VISIBLE, c"virtio_intel-host-visible")
            .map_err(|e| {
                if e == ENOENT {
                    dev_info!(
                        dev.as_ref(),
                        "no host-visible memory region: blobs cannot be mapped\n"
                    );
                    ENODEV
                } else {
                    dev_err!(
                        dev.as_ref(),
                        "cannot reserve the host-visible memory region: {:?}\n",
                        e
                    );
                    e
                }
            })?;
        let blob_alignment = if dev.has_feature(F_BLOB_ALIGNMENT) {
            u64::from(dev.config_read_le32(CONFIG_BLOB_ALIGNMENT)).max(4096)
        } else {
            4096
        };
        if !blob_alignment.is_power_of_two() {
            dev_err!(
                dev.as_ref(),
                "blob alignment {} is not a power of two\n",
                blob_alignment
            );
            return Err(EINVAL);
        }
        let num_capsets = dev.config_read_le32(CONFIG_NUM_CAPSETS).min(MAX_CAPSETS);

        let ctrl = ControlQueue::new(dev)?;
        dev.ready();

        let mut drm = None;
        for i in 0..num_capsets {
            let info = ctrl.call(&GetCapsetInfo::new(i))?;
            if info.id() == CAPSET_DRM {
                drm = Some(info);
            }
        }
        let Some(info) = drm else {
            dev_info!(
                dev.as_ref(),
                "host offers no DRM native context (capset 6)\n"
            );
            return Err(ENODEV);
        };
        if info.max_size() < 48 {
            dev_err!(
                dev.as_ref(),
                "DRM capset of {} bytes is too short\n",
                info.max_size()
            );
            return Err(EINVAL);
        }
        let caps = ctrl.call(&GetCapset::new(CAPSET_DRM, 0))?;
        let identity = I915Identity::from_capset(&caps.capset).inspect_err(|e| {
            if *e == ENODEV {
                dev_info!(dev.as_ref(), "DRM capset is not an i915 native context\n");
            }
        })?;
        dev_info!(
            dev.as_ref(),
            "i915 native context: host GPU 8086:{:04x} rev {:#x} at {:04x}:{:02x}:{:02x}.{}, i915 {}.{}.{}, \
             host-visible {:#x}+{:#x}, blob alignment {:#x}, capset v{}\n",
            identity.device_id,
            identity.revision,
            identity.domain,
            identity.bus,
            identity.dev,
            identity.func,
            identity.drm_version.0,
            identity.drm_version.1,
            identity.drm_version.2,
            hostmem.addr(),
            hostmem.len(),
            blob_alignment,
            info.max_version()
        );
        let header = identity::header(&identity);
        let at = identity::address(&identity, dev.index());
        let shared = Shared::new(identity, hostmem.len(), blob_alignment)?;
        let transport = Transport {
            pages: ResponsePages::new()?,
            queue: ctrl,
            hostmem,
            shared,
            index: dev.index(),
            claimed: AtomicBool::new(false),
        };
        // SAFETY: The function is stored in the driver data and dropped with it; it is
        // never leaked.
        let function = unsafe {
            synthetic::Function::<IdentityDriver>::new(
                dev.as_ref(),
                &header,
                at,
                Ok::<_, Error>(transport),
            )?
        };
        if !function.is_bound() {
            // Asynchronous probing, or the PCI driver refused it (and said why).
            dev_warn!(
                dev.as_ref(),
                "the i915 PCI function is not bound (yet): no DRM device until it is\n"
            );
        }
        Ok(Self {
            _function: function,
        })
    }
}

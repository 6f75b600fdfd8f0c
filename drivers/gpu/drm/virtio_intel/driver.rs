// SPDX-License-Identifier: GPL-2.0

//! Probe: features, the DRM capset, and the host-visible memory region.

use kernel::{
    device::Core,
    prelude::*,
    virtio, //
};

use crate::{
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
    transport::ControlQueue,
};

/// `VIRTIO_ID_GPU`.
const VIRTIO_ID_GPU: u32 = 16;

/// The most capsets this driver looks at (Linux caps capset ids at 63).
const MAX_CAPSETS: u32 = 64;

/// The virtio-intel driver.
pub(crate) struct VirtioIntelDriver;

/// Per-device state while the driver is bound.
pub(crate) struct DeviceData {
    _ctrl: ControlQueue,
    /// The host's i915, from capset 6.
    pub(crate) identity: I915Identity,
    /// The host-visible window (virtio shm region 1).
    pub(crate) hostmem: virtio::ShmRegion,
    /// Blob size and map offset alignment (1 page when the device does not say).
    pub(crate) blob_alignment: u64,
}

impl virtio::Driver for VirtioIntelDriver {
    type Data<'bound> = DeviceData;

    const ID_TABLE: &'static [virtio::DeviceId] =
        &[virtio::DeviceId::new(VIRTIO_ID_GPU), virtio::DeviceId::terminator()];

    const FEATURES: &'static [u32] = &[F_VIRGL, F_RESOURCE_BLOB, F_CONTEXT_INIT, F_BLOB_ALIGNMENT];

    fn probe<'bound>(dev: &'bound virtio::Device<Core<'_>>) -> impl PinInit<DeviceData, Error> + 'bound {
        DeviceData::probe(dev)
            .inspect_err(|e| dev_err!(dev.as_ref(), "not binding: {:?}\n", e))
    }
}

impl DeviceData {
    fn probe(dev: &virtio::Device<Core<'_>>) -> Result<Self> {
        for (bit, name) in [
            (F_VERSION_1, "VERSION_1"),
            (F_VIRGL, "VIRGL"),
            (F_RESOURCE_BLOB, "RESOURCE_BLOB"),
            (F_CONTEXT_INIT, "CONTEXT_INIT"),
        ] {
            if !dev.has_feature(bit) {
                dev_info!(dev.as_ref(), "device lacks feature {}: no native context\n", name);
                return Err(ENODEV);
            }
        }
        let hostmem = dev.shm_region(SHM_ID_HOST_VISIBLE).ok_or_else(|| {
            dev_info!(dev.as_ref(), "no host-visible memory region: blobs cannot be mapped\n");
            ENODEV
        })?;
        let blob_alignment = if dev.has_feature(F_BLOB_ALIGNMENT) {
            u64::from(dev.config_read_le32(CONFIG_BLOB_ALIGNMENT)).max(4096)
        } else {
            4096
        };
        if !blob_alignment.is_power_of_two() {
            dev_err!(dev.as_ref(), "blob alignment {} is not a power of two\n", blob_alignment);
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
            dev_info!(dev.as_ref(), "host offers no DRM native context (capset 6)\n");
            return Err(ENODEV);
        };
        if info.max_size() < 48 {
            dev_err!(dev.as_ref(), "DRM capset of {} bytes is too short\n", info.max_size());
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
            hostmem.addr,
            hostmem.len,
            blob_alignment,
            info.max_version()
        );
        Ok(Self { _ctrl: ctrl, identity, hostmem, blob_alignment })
    }
}

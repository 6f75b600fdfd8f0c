// SPDX-License-Identifier: GPL-2.0

//! The native identity: a synthetic PCI function with the host GPU's ids, which the DRM
//! device hangs off.
//!
//! libdrm (`drmGetDevice2`), Mesa's loader, iris, ANV and IGT find an Intel GPU by the PCI
//! device of a DRM node (`/sys/dev/char/226:N/device`): its sysfs `vendor`, `device`,
//! `revision` and `subsystem_*` files, and `PCI_SLOT_NAME` in its `uevent`, with a 16-bit
//! domain. A virtio device's parent is the virtio-pci function (1af4:1050), which they
//! skip. So probe creates, under the virtio device, a PCI root bus in an emulated domain
//! whose one function reports vendor 0x8086 with the device id and revision of the host
//! GPU from the capset, class 0x038000 (display controller, other: no VGA arbitration,
//! no legacy ROM fix-ups), subsystem 1af4:1100 (a virtual machine's board), no BARs and no
//! interrupt; its bus and device are those of the host GPU, and it is function 0.
//!
//! The function's `driver_override` names this driver's PCI driver, so i915 or xe never
//! bind it even when loaded. That driver registers the `i915` DRM device with the function
//! as parent, on the virtio binding's transport, which [`crate::driver::DeviceData`] lends
//! it and which outlives it: removing the function (at virtio unbind) unregisters the
//! DRM device first.
//!
//! Removing only the function (`remove` or `unbind` in its sysfs directory) unregisters
//! the DRM device; host objects of files still open on it stay until the virtio device is
//! unbound and reset, so the function does not bind again before that.

use core::sync::atomic::Ordering;

use kernel::{
    debugfs,
    device::Core,
    device_id::IdArray,
    drm,
    pci::{
        self,
        synthetic, //
    },
    prelude::*,
    str::CString,
    sync::Arc,
};

use crate::{
    driver::{
        Bound,
        Transport,
        VirtioIntelDriver, //
    },
    protocol::I915Identity,
    shared::{
        Shared,
        Stats, //
    },
};

/// `PCI_VENDOR_ID_INTEL`.
const VENDOR_INTEL: u16 = 0x8086;
/// Display controller, other (`PCI_CLASS_DISPLAY_OTHER << 8`).
const CLASS_DISPLAY_OTHER: u32 = 0x03_80_00;
/// The subsystem ids QEMU gives its own PCI devices: a virtual machine's board.
const SUBSYSTEM: (u16, u16) = (0x1af4, 0x1100);
/// Where the emulated domains of this driver start (one per virtio device); another free
/// 16-bit one is taken if it is in use. Far above the segments firmware uses.
const DOMAIN_BASE: u16 = 0x7000;

/// The function's configuration header.
pub(crate) fn header(id: &I915Identity) -> synthetic::Header {
    synthetic::Header {
        vendor: VENDOR_INTEL,
        device: id.device_id,
        revision: id.revision,
        class: CLASS_DISPLAY_OTHER,
        subsystem_vendor: SUBSYSTEM.0,
        subsystem_device: SUBSYSTEM.1,
    }
}

/// The function's address: the host GPU's bus and device (`00:02` for an integrated GPU),
/// function 0 (a function of its own needs no other), in an emulated domain. An
/// out-of-range host device number falls back to 2.
pub(crate) fn address(id: &I915Identity, index: u32) -> synthetic::Address {
    synthetic::Address {
        domain_hint: DOMAIN_BASE.wrapping_add((index & 0xfff) as u16),
        bus: id.bus,
        device: if id.dev < 32 { id.dev } else { 2 },
    }
}

/// No ids: the PCI driver binds only the functions whose `driver_override` names it.
static NO_IDS: IdArray<pci::DeviceId, (), 0> = IdArray::new([]);

/// The PCI driver of the synthetic function.
pub(crate) struct IdentityDriver;

impl pci::Driver for IdentityDriver {
    type IdInfo = ();
    type Data<'bound> = FunctionData<'bound>;

    const ID_TABLE: pci::IdTable<()> = &NO_IDS;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound ()>,
    ) -> impl PinInit<FunctionData<'bound>, Error> + 'bound {
        FunctionData::probe(pdev).inspect_err(|e| dev_err!(pdev.as_ref(), "not binding: {:?}\n", e))
    }
}

// SAFETY: `Transport` is covariant in its lifetime, which `shorten` shows.
unsafe impl synthetic::Driver for IdentityDriver {
    type Payload<'a> = Transport<'a>;

    const NAME: &'static CStr = c"virtio_intel";

    fn shorten<'a: 'b, 'b>(p: &'b Transport<'a>) -> &'b Transport<'b> {
        p
    }
}

/// What the PCI function's binding holds: the DRM device's registration.
pub(crate) struct FunctionData<'bound> {
    _reg: drm::Registration<'bound, VirtioIntelDriver>,
    /// The device state the files share.
    shared: Arc<Shared>,
    /// `/sys/kernel/debug/virtio_intel-<N>/live`: the counters of [`Stats`] and the task of
    /// each host context.
    _live: Pin<KBox<debugfs::File<Arc<Stats>>>>,
    _debugfs: debugfs::Dir,
}

impl Drop for FunctionData<'_> {
    /// Runs before the registration is dropped, which unplugs the DRM device and waits for
    /// every ioctl: one waiting for room in an execbuffer queue gives up first.
    fn drop(&mut self) {
        self.shared.unplugging();
    }
}

impl<'bound> FunctionData<'bound> {
    fn probe(pdev: &'bound pci::Device<Core<'_>>) -> Result<Self> {
        let t = synthetic::payload::<IdentityDriver>(pdev)?;
        if t.claimed.swap(true, Ordering::AcqRel) {
            dev_err!(
                pdev.as_ref(),
                "this virtio device already had a DRM device: unbind and bind it to start afresh\n"
            );
            return Err(EBUSY);
        }
        let shared = t.shared.clone();
        let register = || {
            let drm = drm::UnregisteredDevice::<VirtioIntelDriver>::new(
                pdev,
                Ok::<_, Error>(shared.clone()),
            )?;
            // SAFETY: The registration is stored in the driver data and dropped with it; it
            // is never leaked.
            unsafe { drm::Registration::new(pdev.as_ref(), drm, Bound::new(t), 0) }
        };
        // No file was opened if registering failed: a later bind may try again.
        let reg = register().inspect_err(|_| t.claimed.store(false, Ordering::Release))?;
        let name = CString::try_from_fmt(fmt!("virtio_intel-{}", t.index))?;
        let dir = debugfs::Dir::new(&name);
        let live = KBox::pin_init(
            dir.read_callback_file(c"live", shared.stats.clone(), &|s: &Arc<Stats>, f| {
                s.show(f)
            }),
            GFP_KERNEL,
        )?;
        Ok(Self {
            _reg: reg,
            shared,
            _live: live,
            _debugfs: dir,
        })
    }
}

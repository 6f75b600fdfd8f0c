// SPDX-License-Identifier: GPL-2.0

//! Virtio devices and drivers.
//!
//! C header: [`include/linux/virtio.h`](srctree/include/linux/virtio.h) and
//! [`include/linux/virtio_config.h`](srctree/include/linux/virtio_config.h).
//!
//! A virtio driver implements [`Driver`] and registers with [`module_virtio_driver!`](crate::module_virtio_driver).
//! The virtio core negotiates the features listed in [`Driver::FEATURES`] before
//! [`Driver::probe`] runs; the driver then sets up its virtqueues with
//! [`virtqueue::Virtqueues::new`], marks the device ready and uses it. Virtqueues and
//! shared memory regions carry the lifetime of the binding (`'bound`), so they cannot be
//! used after it ends. When the device is unbound, the adapter calls [`Driver::unbind`],
//! drops the driver's data (and with it the virtqueues) while the device still runs, and
//! then resets the device, as the virtio core requires.

pub mod shm;
pub mod virtqueue;

use crate::{
    bindings,
    device,
    driver,
    error::{
        from_result,
        to_result, //
    },
    prelude::*,
    types::Opaque,
    ThisModule, //
};
use core::{
    marker::PhantomData,
    mem::offset_of,
    ptr::{
        addr_of_mut,
        NonNull, //
    },
};

/// `VIRTIO_DEV_ANY_ID`: matches any vendor.
pub const DEV_ANY_ID: u32 = u32::MAX;

/// A virtio device id (`struct virtio_device_id`).
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct DeviceId(bindings::virtio_device_id);

impl DeviceId {
    /// Matches devices of type `device` (e.g. 16 for a GPU) from any vendor.
    pub const fn new(device: u32) -> Self {
        Self(bindings::virtio_device_id {
            device,
            vendor: DEV_ANY_ID,
        })
    }

    /// The all-zero entry that ends an id table.
    pub const fn terminator() -> Self {
        Self(bindings::virtio_device_id {
            device: 0,
            vendor: 0,
        })
    }

    const fn is_terminator(&self) -> bool {
        self.0.device == 0 && self.0.vendor == 0
    }
}

// SAFETY: `DeviceId` is a `repr(transparent)` wrapper of `bindings::virtio_device_id`.
unsafe impl crate::device_id::RawDeviceId for DeviceId {
    type RawType = bindings::virtio_device_id;
}

/// Declares the modalias table of a virtio driver (`MODULE_DEVICE_TABLE(virtio, ...)`), so
/// that udev loads the module when a matching device appears (`virtio:d<device>v<vendor>`).
///
/// # Examples
///
/// ```ignore
/// kernel::virtio_device_table!(MY_IDS, @none, [kernel::virtio::DeviceId::new(16)]);
/// ```
#[macro_export]
macro_rules! virtio_device_table {
    ($($tt:tt)*) => {
        $crate::module_device_table!("virtio", $crate::virtio::DeviceId, $($tt)*);
    };
}

/// A region of device memory exposed through a virtio shared memory capability, reserved
/// for the driver bound to the device (it shows in `/proc/iomem` under the driver's name).
///
/// Only [`Device::shm_region`] creates one, from a bound device, and it lives no longer
/// than that binding (`'bound`); so a [`shm::ShmMapping`] can only map memory a device
/// exposes to its bound driver, never an arbitrary physical range, and never after unbind.
/// Dropping the region releases the reservation.
///
/// # Invariants
///
/// `addr..addr + len` is a shared memory region the transport reported for a device that
/// is bound for `'bound`, with `len > 0`; `reservation` holds exactly that range.
pub struct ShmRegion<'bound> {
    addr: u64,
    len: u64,
    _reservation: crate::io::resource::Region,
    _bound: PhantomData<&'bound ()>,
}

impl ShmRegion<'_> {
    /// Guest physical address of the region.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the region is empty (never true; see the invariant).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The page frame number of the page at `offset` of the region, for a fault handler
    /// that maps it to userspace (see `mm::virt::VmFault::insert_pfn`, whose caller keeps
    /// the page valid until the mapping is zapped). `None` when `offset` is outside the
    /// region.
    pub fn pfn(&self, offset: u64) -> Option<usize> {
        if offset >= self.len {
            return None;
        }
        let phys = self.addr.checked_add(offset)?;
        usize::try_from(phys >> crate::page::PAGE_SHIFT).ok()
    }
}

/// Checks that an id table is non-empty and ends with its terminator.
const fn id_table_is_valid(ids: &[DeviceId]) -> bool {
    ids.len() >= 2 && ids[ids.len() - 1].is_terminator()
}

/// The virtio driver trait.
///
/// # Examples
///
/// ```ignore
/// struct MyDriver;
///
/// impl virtio::Driver for MyDriver {
///     type Data<'bound> = MyData;
///     const ID_TABLE: &'static [virtio::DeviceId] =
///         &[virtio::DeviceId::new(16), virtio::DeviceId::terminator()];
///     const FEATURES: &'static [u32] = &[0, 3, 4];
///
///     fn probe<'bound>(
///         dev: &'bound virtio::Device<device::Core<'_>>,
///     ) -> impl PinInit<MyData, Error> + 'bound {
///         MyData::new(dev)
///     }
/// }
/// ```
pub trait Driver {
    /// The driver's private data, owned by the device while the driver is bound.
    ///
    /// At unbind it is dropped before the device is reset, while the device may still use
    /// memory the driver gave it: memory the device may access must be freed only once the
    /// device stopped (as [`virtqueue::Virtqueues`] does, resetting it first).
    type Data<'bound>: Send + 'bound;

    /// Devices this driver binds to, ending with [`DeviceId::terminator`].
    const ID_TABLE: &'static [DeviceId];

    /// Feature bits the driver understands (`feature_table`); the core offers only
    /// these to the device.
    const FEATURES: &'static [u32];

    /// Binds the driver to `dev`. The features have been negotiated already.
    fn probe<'bound>(
        dev: &'bound Device<device::Core<'_>>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound;

    /// Called when the driver is unbound, with the device still running. Afterwards the
    /// adapter drops the driver's data (still before the reset, so that what the data owns,
    /// such as a DRM device waiting for its ioctls, can finish its work with the device) and
    /// then resets the device.
    fn unbind<'bound>(dev: &'bound Device<device::Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        let _ = (dev, this);
    }

    /// The device's configuration space changed.
    fn config_changed<'bound>(
        dev: &'bound Device<device::Core<'_>>,
        this: Pin<&Self::Data<'bound>>,
    ) {
        let _ = (dev, this);
    }
}

/// Glue between the virtio core and a [`Driver`].
pub struct Adapter<T: Driver>(T);

// SAFETY:
// - `bindings::virtio_driver` is a C type declared as `repr(C)`.
// - `T::Data` is the type of the driver's device private data.
// - `struct virtio_driver` embeds a `struct device_driver`.
// - `DEVICE_DRIVER_OFFSET` is the correct byte offset to the embedded `struct device_driver`.
unsafe impl<T: Driver> driver::DriverLayout for Adapter<T> {
    type DriverType = bindings::virtio_driver;
    type DriverData<'bound> = T::Data<'bound>;
    const DEVICE_DRIVER_OFFSET: usize = offset_of!(Self::DriverType, driver);
}

// SAFETY: A call to `unregister` for a given instance of `DriverType` is guaranteed to be valid if
// a preceding call to `register` has been successful.
unsafe impl<T: Driver> driver::RegistrationOps for Adapter<T> {
    unsafe fn register(
        vdrv: &Opaque<Self::DriverType>,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result {
        if !id_table_is_valid(T::ID_TABLE) {
            return Err(EINVAL);
        }
        let nfeatures = u32::try_from(T::FEATURES.len()).map_err(|_| EINVAL)?;
        // SAFETY: It's safe to set the fields of `struct virtio_driver` on initialization; the
        // id and feature tables are `'static`.
        unsafe {
            (*vdrv.get()).driver.name = name.as_char_ptr();
            (*vdrv.get()).id_table = T::ID_TABLE.as_ptr().cast();
            (*vdrv.get()).feature_table = T::FEATURES.as_ptr();
            (*vdrv.get()).feature_table_size = nfeatures;
            (*vdrv.get()).probe = Some(Self::probe_callback);
            (*vdrv.get()).remove = Some(Self::remove_callback);
            (*vdrv.get()).config_changed = Some(Self::config_changed_callback);
        }

        // SAFETY: `vdrv` is guaranteed to be a valid `DriverType`.
        to_result(unsafe { bindings::__register_virtio_driver(vdrv.get(), module.as_ptr()) })
    }

    unsafe fn unregister(vdrv: &Opaque<Self::DriverType>) {
        // SAFETY: `vdrv` is guaranteed to be a valid, registered `DriverType`.
        unsafe { bindings::unregister_virtio_driver(vdrv.get()) }
    }
}

impl<T: Driver> Adapter<T> {
    extern "C" fn probe_callback(vdev: *mut bindings::virtio_device) -> c_int {
        // SAFETY: The virtio core only ever calls the probe callback with a valid pointer to a
        // `struct virtio_device`.
        //
        // INVARIANT: `vdev` is valid for the duration of `probe_callback()`.
        let vdev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };

        from_result(|| {
            let data = T::probe(vdev);

            vdev.as_ref().set_drvdata(data)?;
            Ok(0)
        })
    }

    extern "C" fn remove_callback(vdev: *mut bindings::virtio_device) {
        // SAFETY: The virtio core only ever calls the remove callback with a valid pointer to a
        // `struct virtio_device`.
        //
        // INVARIANT: `vdev` is valid for the duration of `remove_callback()`.
        let dev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };

        // SAFETY: `remove_callback` is only ever called after a successful call to
        // `probe_callback`, hence it's guaranteed that `Device::set_drvdata()` has been called
        // and stored a `Pin<KBox<T::Data<'_>>>`.
        let data = unsafe { dev.as_ref().drvdata_borrow::<T::Data<'_>>() };

        T::unbind(dev, data);

        // The driver's data goes while the device still runs: what it owns may need the device
        // to finish (a DRM device, when unplugged, waits for the ioctls in flight, and those
        // wait for the device's answers), and what it owns on the device (virtqueues) stops the
        // device before its memory is freed. Nothing of the data is used after this.
        // SAFETY: `probe_callback` stored a `Pin<KBox<T::Data<'_>>>` (see above); `data` was
        // last used by `T::unbind`.
        drop(unsafe { dev.as_ref().drvdata_obtain::<T::Data<'_>>() });

        // The virtio core expects the device to be reset when `remove` returns. Resetting also
        // waits for running virtqueue callbacks.
        // SAFETY: `vdev` is a valid virtio device.
        unsafe { bindings::virtio_reset_device(vdev) };
    }

    extern "C" fn config_changed_callback(vdev: *mut bindings::virtio_device) {
        // SAFETY: The virtio core calls this with a valid device, only while a driver is bound.
        let dev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };
        // SAFETY: The driver is bound (see above), so its data was set in `probe_callback`.
        let data = unsafe { dev.as_ref().drvdata_borrow::<T::Data<'_>>() };
        T::config_changed(dev, data);
    }
}

/// Declares a kernel module that exposes a single virtio driver.
///
/// # Examples
///
/// ```ignore
/// kernel::module_virtio_driver! {
///     type: MyDriver,
///     name: "my_virtio_driver",
///     authors: ["Author"],
///     description: "My virtio driver",
///     license: "GPL v2",
/// }
/// ```
#[macro_export]
macro_rules! module_virtio_driver {
    ($($f:tt)*) => {
        $crate::module_driver!(<T>, $crate::virtio::Adapter<T>, { $($f)* });
    };
}

/// A virtio device (`struct virtio_device`).
///
/// # Invariants
///
/// A [`Device`] instance represents a valid `struct virtio_device` created by the virtio core.
#[repr(transparent)]
pub struct Device<Ctx: device::DeviceContext = device::Normal>(
    Opaque<bindings::virtio_device>,
    PhantomData<Ctx>,
);

impl<Ctx: device::DeviceContext> Device<Ctx> {
    pub(crate) fn as_raw(&self) -> *mut bindings::virtio_device {
        self.0.get()
    }

    /// The virtio device type (e.g. 16 for a GPU).
    pub fn device_id(&self) -> u32 {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`.
        unsafe { (*self.as_raw()).id.device }
    }

    /// The device's index on the virtio bus (`N` in its name `virtioN`).
    pub fn index(&self) -> u32 {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`;
        // the index is set before the device is registered and never changes.
        let i = unsafe { (*self.as_raw()).index };
        // CAST: `register_virtio_device` takes the index from `ida_alloc`, which never
        // returns a negative value for a registered device.
        i as u32
    }

    /// Whether feature bit `bit` was negotiated.
    pub fn has_feature(&self, bit: u32) -> bool {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`.
        unsafe { bindings::virtio_has_feature(self.as_raw(), bit) }
    }

    /// Reads `buf.len()` bytes of the configuration space at `offset`, with the generation
    /// check of the virtio core (a torn read is retried).
    pub fn config_read(&self, offset: u32, buf: &mut [u8]) {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes; the device is valid.
        unsafe {
            bindings::virtio_cread_bytes(self.as_raw(), offset, buf.as_mut_ptr().cast(), buf.len())
        }
    }

    /// Reads a little-endian `u32` field of the configuration space (virtio 1.0 devices are
    /// little-endian).
    pub fn config_read_le32(&self, offset: u32) -> u32 {
        let mut b = [0u8; 4];
        self.config_read(offset, &mut b);
        u32::from_le_bytes(b)
    }
}

impl Device<device::Bound> {
    /// Reserves the shared memory region `id` for the bound driver, as `name` in
    /// `/proc/iomem` (`request_mem_region()`), for as long as the binding lasts.
    ///
    /// # Errors
    ///
    /// `ENOENT` if the device has no such region (or an empty one), `EBUSY` if someone else
    /// reserved part of it, `ENOMEM`.
    pub fn shm_region<'bound>(&'bound self, id: u8, name: &CStr) -> Result<ShmRegion<'bound>> {
        use crate::io::resource::{Flags, Resource};

        let mut r = bindings::virtio_shm_region { addr: 0, len: 0 };
        // SAFETY: `r` is a valid out-parameter; the device is valid.
        let found = unsafe { bindings::virtio_get_shm_region(self.as_raw(), &mut r, id) };
        if !found || r.len == 0 {
            return Err(ENOENT);
        }
        let name = crate::str::CString::try_from(name)?;
        // SAFETY: `iomem_resource` is the root of the memory resource tree, a static that
        // lives forever; the resource code locks the tree itself, and this reference is
        // only used to request a region below it.
        let iomem = unsafe { Resource::from_raw(&raw mut bindings::iomem_resource) };
        let reservation = iomem
            .request_region(r.addr, r.len, name, Flags::IORESOURCE_MEM)
            .ok_or(EBUSY)?;
        // INVARIANT: The transport reported `r` for this bound device; it is reserved.
        Ok(ShmRegion {
            addr: r.addr,
            len: r.len,
            _reservation: reservation,
            _bound: PhantomData,
        })
    }

    /// The device that does DMA for this virtio device: its transport's device (for
    /// virtio-pci, the PCI function). A virtio device itself has no DMA ops.
    pub fn dma_device(&self) -> Option<&device::Device<device::Bound>> {
        let parent = self.as_ref().parent()?;
        // SAFETY: A bound virtio device keeps its transport (parent) device bound.
        Some(unsafe { parent.as_bound() })
    }
}

impl Device<device::Core<'_>> {
    /// Resets the device: it stops using every buffer and forgets its features' state.
    ///
    /// The adapter does this when the driver is unbound; a driver calls it itself only to
    /// recover a device. Running virtqueue callbacks are waited for.
    pub fn reset(&self) {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`.
        unsafe { bindings::virtio_reset_device(self.as_raw()) }
    }

    /// Marks the device ready (`DRIVER_OK`): the driver may use its virtqueues from now on.
    ///
    /// Call it in probe, after the virtqueues were set up and before the first buffer is
    /// queued. The virtio core calls it after a successful probe otherwise.
    pub fn ready(&self) {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`.
        unsafe { bindings::virtio_device_ready(self.as_raw()) }
    }
}

// SAFETY: `virtio::Device` is a transparent wrapper of `struct virtio_device`.
// The offset is guaranteed to point to a valid device field inside `virtio::Device`.
unsafe impl<Ctx: device::DeviceContext> device::AsBusDevice<Ctx> for Device<Ctx> {
    const OFFSET: usize = offset_of!(bindings::virtio_device, dev);
}

// SAFETY: `Device` is a transparent wrapper of a type that doesn't depend on `Device`'s generic
// argument.
kernel::impl_device_context_deref!(unsafe { Device });
kernel::impl_device_context_into_aref!(Device);

// SAFETY: Instances of `Device` are always reference-counted.
unsafe impl crate::sync::aref::AlwaysRefCounted for Device {
    fn inc_ref(&self) {
        // SAFETY: The existence of a shared reference guarantees that the refcount is non-zero.
        unsafe { bindings::get_device(self.as_ref().as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // CAST: `Self` a transparent wrapper of `bindings::virtio_device`.
        let vdev: *mut bindings::virtio_device = obj.cast().as_ptr();

        // SAFETY: By the type invariant of `Self`, `vdev` is a pointer to a valid
        // `struct virtio_device`.
        let dev = unsafe { addr_of_mut!((*vdev).dev) };

        // SAFETY: The safety requirements guarantee that the refcount is non-zero.
        unsafe { bindings::put_device(dev) }
    }
}

impl<Ctx: device::DeviceContext> AsRef<device::Device<Ctx>> for Device<Ctx> {
    fn as_ref(&self) -> &device::Device<Ctx> {
        // SAFETY: By the type invariant of `Self`, `self.as_raw()` is a pointer to a valid
        // `struct virtio_device`.
        let dev = unsafe { addr_of_mut!((*self.as_raw()).dev) };

        // SAFETY: `dev` points to a valid `struct device`.
        unsafe { device::Device::from_raw(dev) }
    }
}

// SAFETY: A `Device` is only a handle to a C device whose operations are thread-safe.
unsafe impl Send for Device {}

// SAFETY: `Device` can be shared among threads because all methods of `Device`
// (i.e. `Device<Normal>) are thread safe.
unsafe impl Sync for Device {}

#[kunit_tests(rust_virtio)]
mod tests {
    use super::*;

    #[test]
    fn id_tables_need_a_terminator() {
        assert!(id_table_is_valid(&[
            DeviceId::new(16),
            DeviceId::terminator()
        ]));
        assert!(!id_table_is_valid(&[DeviceId::new(16)]));
        assert!(!id_table_is_valid(&[DeviceId::terminator()]));
        assert!(!id_table_is_valid(&[
            DeviceId::terminator(),
            DeviceId::new(16)
        ]));
    }

    #[test]
    fn any_vendor() {
        let id = DeviceId::new(16);
        assert_eq!(id.0.vendor, DEV_ANY_ID);
        assert!(!id.is_terminator());
    }
}

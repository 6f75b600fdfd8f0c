// SPDX-License-Identifier: GPL-2.0

//! Synthetic PCI functions.
//!
//! A driver of a device that is not itself a PCI function (a virtio device, say) can
//! present it to userspace as one: [`Function::new`] creates a PCI root bus in an emulated
//! 16-bit domain, as `pci-hyperv` does, whose only function has a configuration space the
//! kernel serves from memory ([`EmulatedConfig`]): the identity of a [`Header`], no BARs, no
//! capabilities, no interrupt pin. The PCI core then gives the function everything a PCI
//! device has for userspace: its sysfs directory with `vendor`, `device`, `revision`,
//! `class`, `subsystem_*` and `config`, a `uevent` with `PCI_SLOT_NAME`, and `lspci`.
//!
//! The function binds only to the PCI driver named [`Driver::NAME`] (its `driver_override`
//! is set before any driver is matched to it, also when a PCI rescan adds it again after
//! it was removed), never to a driver its ids would match. That
//! driver's probe borrows, with [`payload`], what the creating binding lent the function
//! for as long as the function is bound: removing the bus unbinds the function before the
//! payload goes.
//!
//! x86 only: the root bus's `sysdata` is the architecture's (`struct pci_sysdata` here; a
//! `struct pci_config_window` on arm64 with ACPI, a `struct zpci_bus` on s390), and only
//! the x86 one is provided.
//!
//! C headers: [`include/linux/pci.h`](srctree/include/linux/pci.h),
//! [`arch/x86/include/asm/pci.h`](srctree/arch/x86/include/asm/pci.h).

use crate::{
    bindings, container_of,
    device::{self, Bound},
    error::to_result,
    pci,
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};
use core::{any::TypeId, marker::PhantomData, mem::size_of, ptr::NonNull};

/// The size in bytes of a conventional (not PCI Express) configuration space.
const CONFIG_SIZE: u32 = bindings::PCI_CFG_SPACE_SIZE;

/// Dwords of the type 0 header; the rest of the configuration space reads as zero.
const HEADER_DWORDS: usize = 16;

/// `PCI_COMMAND` bits a function without BARs or interrupts may implement: parity and
/// SERR# response, bus mastering and INTx disable. I/O and memory decode stay 0.
const COMMAND_WRITABLE: u32 = (bindings::PCI_COMMAND_MASTER
    | bindings::PCI_COMMAND_PARITY
    | bindings::PCI_COMMAND_SERR
    | bindings::PCI_COMMAND_INTX_DISABLE) as u32;

/// The identity of a synthetic function: what its type 0 header reports.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    /// `PCI_VENDOR_ID`.
    pub vendor: u16,
    /// `PCI_DEVICE_ID`.
    pub device: u16,
    /// `PCI_REVISION_ID`.
    pub revision: u8,
    /// `PCI_CLASS_PROG` and `PCI_CLASS_DEVICE`: class, subclass and programming interface
    /// (24 bits, e.g. `0x038000` for "display controller, other").
    pub class: u32,
    /// `PCI_SUBSYSTEM_VENDOR_ID`.
    pub subsystem_vendor: u16,
    /// `PCI_SUBSYSTEM_ID`.
    pub subsystem_device: u16,
}

/// The emulated configuration space of a synthetic function: 256 bytes, of which the
/// type 0 header (the first 64) is modelled and the rest reads as zero.
///
/// Read-only apart from the `PCI_COMMAND` bits in [`COMMAND_WRITABLE`], the cache line
/// size and latency timer (which firmware and the PCI core may program on any function)
/// and the interrupt line (a scratch byte for software). Writes elsewhere are ignored,
/// as hardware ignores writes to read-only registers; BAR sizing therefore reads zero,
/// so the function has no BARs. The status register reports no capability list.
///
/// Accesses are 1, 2 or 4 bytes, naturally aligned, inside the 256 bytes.
pub struct EmulatedConfig {
    dwords: [Atomic<u32>; HEADER_DWORDS],
}

impl EmulatedConfig {
    /// The configuration space of a function with identity `h`.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `h.class` has more than 24 bits.
    pub fn new(h: &Header) -> Result<Self> {
        if h.class > 0xff_ffff {
            return Err(EINVAL);
        }
        let mut v = [0u32; HEADER_DWORDS];
        v[0] = u32::from(h.vendor) | (u32::from(h.device) << 16);
        v[2] = u32::from(h.revision) | (h.class << 8);
        // v[3]: cache line size, latency timer, header type 0 (one function), no BIST.
        v[11] = u32::from(h.subsystem_vendor) | (u32::from(h.subsystem_device) << 16);
        Ok(Self {
            dwords: v.map(Atomic::new),
        })
    }

    /// The writable bits of header dword `i`.
    fn writable(i: usize) -> u32 {
        match i {
            1 => COMMAND_WRITABLE,
            // Cache line size and latency timer.
            3 => 0xffff,
            // Interrupt line; the pin stays 0.
            15 => 0xff,
            _ => 0,
        }
    }

    fn check(offset: u32, size: u32) -> Result<(usize, u32)> {
        if !matches!(size, 1 | 2 | 4) || offset % size != 0 || offset >= CONFIG_SIZE {
            return Err(EINVAL);
        }
        let mask = if size == 4 {
            u32::MAX
        } else {
            (1u32 << (size * 8)) - 1
        };
        Ok(((offset / 4) as usize, mask << ((offset % 4) * 8)))
    }

    /// Reads `size` bytes at `offset`, as the low bytes of the result.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a size other than 1, 2 or 4, an unaligned access, or an offset past the
    /// 256 bytes.
    pub fn read(&self, offset: u32, size: u32) -> Result<u32> {
        let (i, mask) = Self::check(offset, size)?;
        let dword = self.dwords.get(i).map_or(0, |d| d.load(Relaxed));
        Ok((dword & mask) >> ((offset % 4) * 8))
    }

    /// Writes the low `size` bytes of `value` at `offset`; only writable bits change.
    ///
    /// # Errors
    ///
    /// As [`EmulatedConfig::read`].
    pub fn write(&self, offset: u32, size: u32, value: u32) -> Result {
        let (i, mask) = Self::check(offset, size)?;
        let Some(d) = self.dwords.get(i) else {
            return Ok(());
        };
        let mask = mask & Self::writable(i);
        if mask == 0 {
            return Ok(());
        }
        let bits = (value << ((offset % 4) * 8)) & mask;
        // Config accesses need not be serialised (x86 takes no lock around them), so the
        // update is one atomic read-modify-write.
        let mut old = d.load(Relaxed);
        while let Err(now) = d.cmpxchg(old, (old & !mask) | bits, Relaxed) {
            old = now;
        }
        Ok(())
    }
}

/// A PCI driver for synthetic functions: the driver a [`Function`] binds to.
///
/// # Safety
///
/// [`Driver::Payload`] must be covariant in its lifetime: [`payload`] lends a payload
/// created for `'a` as one for the function's binding, which is shorter. Implement
/// [`Driver::shorten`] as `{ p }`, which compiles only for a covariant payload type.
///
/// # Examples
///
/// ```ignore
/// // SAFETY: `MyTransport` is covariant; `shorten` proves it.
/// unsafe impl synthetic::Driver for MyFunctionDriver {
///     type Payload<'a> = MyTransport<'a>;
///     const NAME: &'static CStr = c"my_driver";
///     fn shorten<'a: 'b, 'b>(p: &'b MyTransport<'a>) -> &'b MyTransport<'b> {
///         p
///     }
/// }
/// ```
pub unsafe trait Driver: pci::Driver + 'static {
    /// What the binding that creates a [`Function`] lends the function's driver.
    type Payload<'a>: Send + Sync + 'a;

    /// The name the driver is registered under: the functions' `driver_override`.
    const NAME: &'static CStr;

    /// Shows that [`Driver::Payload`] is covariant in its lifetime, so that a payload lent
    /// for `'a` may be used for any shorter `'b`: implement it as `{ p }`, which only
    /// compiles for a covariant type (see the trait's safety requirements).
    fn shorten<'a: 'b, 'b>(p: &'b Self::Payload<'a>) -> &'b Self::Payload<'b>;
}

/// What a synthetic root bus carries: the host bridge's private area, zeroed by
/// `pci_alloc_host_bridge()` and freed with the bridge, after its last user.
///
/// `bus->sysdata` points here; x86's `pci_domain_nr()` and friends read it as a
/// `struct pci_sysdata`, which therefore comes first.
#[repr(C)]
struct BusData {
    sysdata: bindings::pci_sysdata,
    config: EmulatedConfig,
    devfn: u32,
    busn: bindings::resource,
    /// The [`Driver`] whose payload this is.
    owner: TypeId,
    /// A `D::Payload<'_>` for the `D` of `owner`, valid while the bus exists.
    payload: *const core::ffi::c_void,
    /// `D::NAME`: every function added to the bus gets it as its `driver_override`.
    name: &'static CStr,
    /// Registered on the PCI bus type while the bus exists ([`BusData::device_added`]).
    nb: bindings::notifier_block,
}

impl BusData {
    /// PCI bus notifier: a function added to this bus (at creation, or by a later PCI
    /// rescan after it was removed) gets the `driver_override` of the bus's driver before
    /// any driver is matched to it, so no driver its ids match (i915, xe) ever binds it.
    ///
    /// # Safety
    ///
    /// Called by the driver core only, with `nb` the `nb` of a [`BusData`] and, for
    /// `BUS_NOTIFY_ADD_DEVICE`, `data` a device on the PCI bus.
    unsafe extern "C" fn device_added(
        nb: *mut bindings::notifier_block,
        action: c_ulong,
        data: *mut core::ffi::c_void,
    ) -> c_int {
        // CAST: The event numbers are small.
        if action != bindings::bus_notifier_event_BUS_NOTIFY_ADD_DEVICE as c_ulong {
            return bindings::NOTIFY_DONE as c_int;
        }
        // SAFETY: By the safety requirements `nb` is in a `BusData`.
        let d = unsafe { container_of!(nb, BusData, nb) };
        // SAFETY: By the safety requirements `data` is a device on the PCI bus, so in a
        // `struct pci_dev`.
        let pdev =
            unsafe { container_of!(data.cast::<bindings::device>(), bindings::pci_dev, dev) };
        // SAFETY: `pdev` is a valid PCI device being added; its bus is valid.
        if !core::ptr::eq(unsafe { (*(*pdev).bus).sysdata }.cast::<BusData>(), d) {
            return bindings::NOTIFY_DONE as c_int;
        }
        // SAFETY: `d` is valid while its notifier is registered.
        let name = unsafe { (*d).name }.to_bytes();
        // SAFETY: `pdev` is valid and not yet matched to a driver. A failure (no memory)
        // leaves the function without an override; the PCI core then matches it by id.
        let _ = unsafe {
            bindings::__device_set_driver_override(
                &raw mut (*pdev).dev,
                name.as_ptr().cast(),
                name.len(),
            )
        };
        bindings::NOTIFY_OK as c_int
    }
}

/// The configuration accessors of every synthetic root bus.
struct Ops;

impl Ops {
    /// # Safety
    ///
    /// `bus` is a root bus created by [`Function::new`].
    unsafe fn data<'a>(bus: *mut bindings::pci_bus) -> &'a BusData {
        // SAFETY: By the safety requirements `bus->sysdata` is the `BusData` of the bus's
        // host bridge, which outlives the bus.
        unsafe { &*(*bus).sysdata.cast::<BusData>() }
    }

    /// # Safety
    ///
    /// Called by the PCI core only, on a bus created by [`Function::new`], with `val` valid
    /// for writes.
    unsafe extern "C" fn read(
        bus: *mut bindings::pci_bus,
        devfn: u32,
        where_: c_int,
        size: c_int,
        val: *mut u32,
    ) -> c_int {
        // SAFETY: By the safety requirements.
        let d = unsafe { Ops::data(bus) };
        // SAFETY: By the safety requirements `bus` is valid.
        let here = unsafe { (*bus).number } == d.busn.start as u8 && devfn == d.devfn;
        let r = if here {
            d.config.read(where_ as u32, size as u32).ok()
        } else {
            None
        };
        // SAFETY: By the safety requirements `val` is valid for writes.
        unsafe { *val = r.unwrap_or(u32::MAX) };
        match (here, r) {
            (false, _) => bindings::PCIBIOS_DEVICE_NOT_FOUND as c_int,
            (true, None) => bindings::PCIBIOS_BAD_REGISTER_NUMBER as c_int,
            (true, Some(_)) => bindings::PCIBIOS_SUCCESSFUL as c_int,
        }
    }

    /// # Safety
    ///
    /// Called by the PCI core only, on a bus created by [`Function::new`].
    unsafe extern "C" fn write(
        bus: *mut bindings::pci_bus,
        devfn: u32,
        where_: c_int,
        size: c_int,
        val: u32,
    ) -> c_int {
        // SAFETY: By the safety requirements.
        let d = unsafe { Ops::data(bus) };
        // SAFETY: By the safety requirements `bus` is valid.
        if unsafe { (*bus).number } != d.busn.start as u8 || devfn != d.devfn {
            return bindings::PCIBIOS_DEVICE_NOT_FOUND as c_int;
        }
        match d.config.write(where_ as u32, size as u32, val) {
            Ok(()) => bindings::PCIBIOS_SUCCESSFUL as c_int,
            Err(_) => bindings::PCIBIOS_BAD_REGISTER_NUMBER as c_int,
        }
    }
}

/// The accessors of synthetic root buses; their address identifies such a bus.
static OPS: bindings::pci_ops = bindings::pci_ops {
    read: Some(Ops::read),
    write: Some(Ops::write),
    // SAFETY: All other members of `struct pci_ops` may be zero (absent).
    ..unsafe { core::mem::zeroed() }
};

/// Where a synthetic function sits: its root bus number and device; it is function 0 (the
/// PCI core finds no other function of a device without a function 0).
#[derive(Clone, Copy, Debug)]
pub struct Address {
    /// The preferred PCI domain; if it is in use, the next free one above it (up to
    /// 0xffff) is taken.
    pub domain_hint: u16,
    /// The root bus number.
    pub bus: u8,
    /// The device number (0 to 31).
    pub device: u8,
}

/// A synthetic PCI root bus with one function, for as long as the creating binding `'a`.
///
/// Dropping it removes the bus: the function is unbound and removed, and only then is
/// the payload dropped.
///
/// # Invariants
///
/// `bridge` is a host bridge this object holds a reference to, whose root bus `bus` was
/// scanned and not yet removed, with private data a [`BusData`] whose `payload` points
/// to `payload`, whose `owner` is `D` and whose notifier is registered on the PCI bus;
/// `pdev` is the function as first added, with a reference held (after a sysfs `remove`
/// it is no longer on the bus).
pub struct Function<'a, D: Driver> {
    bridge: NonNull<bindings::pci_host_bridge>,
    bus: NonNull<bindings::pci_bus>,
    pdev: NonNull<bindings::pci_dev>,
    payload: Pin<KBox<D::Payload<'a>>>,
    _parent: PhantomData<&'a device::Device<Bound>>,
}

// SAFETY: The bus and function are reference counted kernel objects that may be removed
// from any thread; the payload is `Send + Sync`.
unsafe impl<D: Driver> Send for Function<'_, D> {}
// SAFETY: `&Function` only gives out the payload (`Sync`) and `&pci::Device`.
unsafe impl<D: Driver> Sync for Function<'_, D> {}

impl<'a, D: Driver> Function<'a, D> {
    /// Creates a root bus under `parent` whose one function at `at` has the identity `h`,
    /// lends it `payload`, and adds the function; a registered `D` binds it before this
    /// returns unless probing is asynchronous ([`Function::is_bound`] tells).
    ///
    /// Neither this nor dropping the object takes `pci_lock_rescan_remove()`, because the
    /// parent's probe and removal may run under it (as for `vmd`, whose bus the PCI driver
    /// of the parent creates): a global PCI rescan (`/sys/bus/pci/rescan`) racing with the
    /// creation or removal is not excluded.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a bad header or address, `ENOSPC` when no 16-bit domain is free,
    /// `ENODEV` if the PCI core did not find the function, or the errors of allocation
    /// and of `pci_scan_root_bus_bridge()`.
    ///
    /// # Safety
    ///
    /// The caller must not `mem::forget()` the returned object or otherwise prevent its
    /// [`Drop`] from running: the function's driver may use the payload, which borrows for
    /// `'a`, until the bus is removed.
    pub unsafe fn new(
        parent: &'a device::Device<Bound>,
        h: &Header,
        at: Address,
        payload: impl PinInit<D::Payload<'a>, Error>,
    ) -> Result<Self> {
        if at.device > 31 {
            return Err(EINVAL);
        }
        let config = EmulatedConfig::new(h)?;
        let payload = KBox::pin_init(payload, GFP_KERNEL)?;

        // SAFETY: FFI call without preconditions.
        let bridge = unsafe { bindings::pci_alloc_host_bridge(size_of::<BusData>()) };
        let bridge = NonNull::new(bridge).ok_or(ENOMEM)?;
        let b = bridge.as_ptr();
        // From here on `pci_free_host_bridge()` releases the bridge, its private data and,
        // once `domain_nr` is set, the domain number.
        let free = move |e: Error| {
            // SAFETY: `b` was allocated above and not registered, or its registration failed.
            unsafe { bindings::pci_free_host_bridge(b) };
            e
        };

        // SAFETY: FFI call without preconditions.
        let domain = unsafe {
            bindings::pci_bus_find_emul_domain_nr(u32::from(at.domain_hint), 1, u32::from(u16::MAX))
        };
        if domain < 0 {
            return Err(free(Error::from_errno(domain)));
        }
        // SAFETY: `b` is a valid host bridge, private to this function.
        unsafe { (*b).domain_nr = domain };

        // SAFETY: `b` is valid; it was allocated with room for a `BusData` in its private
        // area (`pci_host_bridge_priv()`).
        let data = unsafe { (*b).private.as_mut_ptr() }.cast::<BusData>();
        let devfn = u32::from(at.device) << 3;
        // SAFETY: `data` is valid for writes, suitably aligned (the private area is cache
        // line aligned) and not yet shared.
        unsafe {
            data.write(BusData {
                sysdata: bindings::pci_sysdata {
                    domain,
                    node: bindings::NUMA_NO_NODE,
                    ..core::mem::zeroed()
                },
                config,
                devfn,
                busn: bindings::resource {
                    name: c"synthetic PCI bus".as_char_ptr(),
                    start: u64::from(at.bus),
                    end: u64::from(at.bus),
                    // CAST: `IORESOURCE_BUS` is a 32-bit flag; `c_ulong` is wider.
                    flags: bindings::IORESOURCE_BUS as c_ulong,
                    ..core::mem::zeroed()
                },
                owner: TypeId::of::<D>(),
                payload: core::ptr::from_ref(payload.as_ref().get_ref()).cast(),
                name: D::NAME,
                nb: bindings::notifier_block {
                    notifier_call: Some(BusData::device_added),
                    ..core::mem::zeroed()
                },
            })
        };
        // SAFETY: `data` lives as long as the bridge; the notifier is unregistered before
        // the bridge is released (in `Drop`, or below on failure).
        let r = to_result(unsafe {
            bindings::bus_register_notifier(&raw const bindings::pci_bus_type, &raw mut (*data).nb)
        });
        if let Err(e) = r {
            return Err(free(e));
        }
        let unregister = move || {
            // SAFETY: Registered above.
            unsafe {
                bindings::bus_unregister_notifier(
                    &raw const bindings::pci_bus_type,
                    &raw mut (*data).nb,
                )
            };
        };
        // SAFETY: `b` is valid and private to this function; `data` lives as long as the
        // bridge, and so does the bus resource the window list points to.
        unsafe {
            (*b).dev.parent = parent.as_raw();
            (*b).sysdata = data.cast();
            (*b).ops = core::ptr::from_ref(&OPS).cast_mut();
            (*b).busnr = at.bus.into();
            bindings::pci_add_resource(&raw mut (*b).windows, &raw mut (*data).busn);
        }

        // Not under `pci_lock_rescan_remove()`, as `vmd` creates its bus: the parent's probe
        // may itself run under that lock (a PCI rescan adding the parent's transport), and
        // it is not recursive.
        let (bus, pdev) = Self::scan_and_add(b, devfn).map_err(|e| {
            unregister();
            free(e)
        })?;
        // INVARIANT: The bus was scanned; `pdev` holds a reference; `data` points to the
        // payload, which lives in `Self`, and its notifier is registered.
        Ok(Self {
            bridge,
            bus,
            pdev,
            payload,
            _parent: PhantomData,
        })
    }

    /// Registers and scans the root bus of `b`, then adds its function `devfn` for `D`
    /// only. On failure the bus is gone again and `b` is left to be freed.
    ///
    /// The caller does not hold `pci_lock_rescan_remove()`; see [`Function::new`].
    fn scan_and_add(
        b: *mut bindings::pci_host_bridge,
        devfn: u32,
    ) -> Result<(NonNull<bindings::pci_bus>, NonNull<bindings::pci_dev>)> {
        // SAFETY: `b` is a fully set up host bridge.
        to_result(unsafe { bindings::pci_scan_root_bus_bridge(b) })?;
        // SAFETY: The scan succeeded, so `b->bus` is the root bus.
        let bus = unsafe { (*b).bus };
        let remove = || {
            // SAFETY: `bus` is the root bus scanned above, not yet removed.
            unsafe {
                bindings::pci_stop_root_bus(bus);
                bindings::pci_remove_root_bus(bus);
            }
        };
        let bus = NonNull::new(bus).ok_or(EINVAL)?;
        // SAFETY: `bus` is valid; the result holds a reference, or is null.
        let Some(pdev) = NonNull::new(unsafe { bindings::pci_get_slot(bus.as_ptr(), devfn) })
        else {
            remove();
            return Err(ENODEV);
        };
        let name = D::NAME.to_bytes();
        // SAFETY: `pdev` is valid; its devices were not yet added to the driver core's
        // matching (`pci_bus_add_devices()` below), so no driver can bind it concurrently.
        let r = to_result(unsafe {
            bindings::__device_set_driver_override(
                &raw mut (*pdev.as_ptr()).dev,
                name.as_ptr().cast(),
                name.len(),
            )
        });
        if let Err(e) = r {
            // SAFETY: `pdev` holds the reference taken by `pci_get_slot()`.
            unsafe { bindings::pci_dev_put(pdev.as_ptr()) };
            remove();
            return Err(e);
        }
        // SAFETY: `bus` is a scanned root bus.
        unsafe { bindings::pci_bus_add_devices(bus.as_ptr()) };
        Ok((bus, pdev))
    }

    /// The function.
    pub fn pci_dev(&self) -> &pci::Device {
        // SAFETY: By the type invariant `pdev` is valid while `self` holds its reference.
        unsafe { &*self.pdev.as_ptr().cast::<pci::Device>() }
    }

    /// Whether a driver is bound to the function (only `D` can be).
    pub fn is_bound(&self) -> bool {
        // SAFETY: By the type invariant `pdev` is valid.
        unsafe { bindings::device_is_bound(&raw mut (*self.pdev.as_ptr()).dev) }
    }

    /// The PCI domain of the bus.
    pub fn domain(&self) -> i32 {
        // SAFETY: By the type invariant `bridge` is valid.
        unsafe { (*self.bridge.as_ptr()).domain_nr }
    }

    /// What the function's driver is lent.
    pub fn payload(&self) -> &D::Payload<'a> {
        &self.payload
    }
}

impl<D: Driver> Drop for Function<'_, D> {
    /// Removes the bus, as `vmd` does: not under `pci_lock_rescan_remove()`, since the
    /// parent's removal may run under it (the PCI core removing the parent's transport).
    fn drop(&mut self) {
        // SAFETY: By the type invariant the bus was scanned and not yet removed. Stopping
        // and removing it unbinds and removes the function, so its driver stops using the
        // payload, which is dropped only after this function returns.
        unsafe { bindings::pci_stop_root_bus(self.bus.as_ptr()) };
        // SAFETY: As above; the bus was stopped.
        unsafe { bindings::pci_remove_root_bus(self.bus.as_ptr()) };
        // SAFETY: By the type invariant the bridge is valid, and its private data is a
        // `BusData` whose notifier `new` registered.
        unsafe {
            let data = (*self.bridge.as_ptr())
                .private
                .as_mut_ptr()
                .cast::<BusData>();
            bindings::bus_unregister_notifier(
                &raw const bindings::pci_bus_type,
                &raw mut (*data).nb,
            )
        };
        // SAFETY: By the type invariant this object holds a reference to the function.
        unsafe { bindings::pci_dev_put(self.pdev.as_ptr()) };
        // SAFETY: By the type invariant this object holds a reference to the bridge; the
        // last one frees it with its private data and domain number.
        unsafe { bindings::pci_free_host_bridge(self.bridge.as_ptr()) };
    }
}

/// What the binding that created the synthetic function `dev` lent its driver `D`, for
/// as long as `dev` is bound.
///
/// # Errors
///
/// `ENODEV` if `dev` is not a function of a [`Function`] created for `D`.
pub fn payload<'b, D: Driver>(
    dev: &'b pci::Device<device::Core<'_>>,
) -> Result<&'b D::Payload<'b>> {
    // SAFETY: `dev` is a valid PCI device, so its bus is valid.
    let bus = unsafe { (*dev.as_raw()).bus };
    // SAFETY: As above.
    if bus.is_null() || !core::ptr::eq(unsafe { (*bus).ops }, &OPS) {
        return Err(ENODEV);
    }
    // SAFETY: Only `Function::new` creates buses with `OPS`.
    let data = unsafe { Ops::data(bus) };
    if data.owner != TypeId::of::<D>() {
        return Err(ENODEV);
    }
    // SAFETY: `data.payload` is the `D::Payload<'a>` of the `Function` that owns the bus,
    // which drops it only after removing the bus, and removing the bus ends `dev`'s binding
    // (`'b`) first: so it is valid for `'b`, and `'a` outlives `'b`. `D::shorten` proves
    // the payload type covariant, so using it for the shorter `'b` is sound.
    Ok(unsafe { &*data.payload.cast::<D::Payload<'b>>() })
}

#[kunit_tests(rust_pci_synthetic)]
mod tests {
    use super::*;

    fn tgl() -> Result<EmulatedConfig> {
        EmulatedConfig::new(&Header {
            vendor: 0x8086,
            device: 0x9a49,
            revision: 1,
            class: 0x03_80_00,
            subsystem_vendor: 0x1af4,
            subsystem_device: 0x1100,
        })
    }

    #[test]
    fn header_reads_by_size() -> Result {
        let c = tgl()?;
        assert_eq!(c.read(0, 4)?, 0x9a49_8086);
        assert_eq!(c.read(0, 2)?, 0x8086);
        assert_eq!(c.read(2, 2)?, 0x9a49);
        assert_eq!(c.read(8, 1)?, 1);
        assert_eq!(c.read(9, 1)?, 0);
        assert_eq!(c.read(0xa, 2)?, 0x0380);
        assert_eq!(c.read(0xe, 1)?, 0);
        assert_eq!(c.read(0x2c, 4)?, 0x1100_1af4);
        // No capability list: status bit 4 clear, capability pointer 0.
        assert_eq!(c.read(6, 2)? & 0x10, 0);
        assert_eq!(c.read(0x34, 1)?, 0);
        // No interrupt pin; the rest of the space reads zero.
        assert_eq!(c.read(0x3d, 1)?, 0);
        assert_eq!(c.read(0x40, 4)?, 0);
        assert_eq!(c.read(0xfc, 4)?, 0);
        Ok(())
    }

    #[test]
    fn bad_accesses_are_refused() -> Result {
        let c = tgl()?;
        assert_eq!(c.read(1, 2), Err(EINVAL));
        assert_eq!(c.read(2, 4), Err(EINVAL));
        assert_eq!(c.read(0, 3), Err(EINVAL));
        assert_eq!(c.read(256, 1), Err(EINVAL));
        assert_eq!(c.write(0x103, 1, 0), Err(EINVAL));
        assert!(EmulatedConfig::new(&Header {
            vendor: 0,
            device: 0,
            revision: 0,
            class: 0x100_0000,
            subsystem_vendor: 0,
            subsystem_device: 0,
        })
        .is_err());
        Ok(())
    }

    #[test]
    fn only_writable_bits_change() -> Result {
        let c = tgl()?;
        // BAR sizing reads zero: no BARs.
        for bar in (0x10..=0x24).step_by(4) {
            c.write(bar, 4, u32::MAX)?;
            assert_eq!(c.read(bar, 4)?, 0);
        }
        c.write(0x30, 4, u32::MAX)?;
        assert_eq!(c.read(0x30, 4)?, 0);
        // Ids stay.
        c.write(0, 4, 0)?;
        assert_eq!(c.read(0, 4)?, 0x9a49_8086);
        // Command: no I/O or memory decode; master and INTx disable stick; status stays.
        c.write(4, 4, u32::MAX)?;
        assert_eq!(c.read(4, 2)?, 0x0544);
        assert_eq!(c.read(6, 2)?, 0);
        c.write(4, 2, 0)?;
        assert_eq!(c.read(4, 2)?, 0);
        // Cache line size, latency timer and interrupt line are scratch bytes; the header
        // type and the interrupt pin are not.
        c.write(0xc, 4, u32::MAX)?;
        assert_eq!(c.read(0xc, 4)?, 0xffff);
        c.write(0x3c, 2, 0xffff)?;
        assert_eq!(c.read(0x3c, 2)?, 0xff);
        Ok(())
    }
}

// SPDX-License-Identifier: GPL-2.0

//! GEM contexts and VMs: `DRM_IOCTL_I915_GEM_CONTEXT_CREATE(_EXT)`, `_DESTROY`,
//! `_GETPARAM`, `_SETPARAM`, `DRM_IOCTL_I915_GEM_VM_CREATE`, `_DESTROY`,
//! `DRM_IOCTL_I915_GET_RESET_STATS` and `DRM_IOCTL_I915_REG_READ`, with the semantics of
//! upstream `i915_gem_context.c`, `i915_gem_vm_create_ioctl()` and `i915_reg_read_ioctl()`.
//!
//! Contexts and VMs are the host i915's, created in the file's host context, so their ids
//! are per file as on i915 (context 0 is the file's default context). The guest parses and
//! checks what the host cannot see or carry: the `SETPARAM` extension chain of a create
//! (i915's walk, `ctx_id` zero, each parameter's size rules and capability checks against
//! the calling task), and the data behind pointers, sent inline. The host's i915 then
//! checks the rest (engines that exist, VM ids, persistence without engine reset, ...) and
//! its errno comes back as is.
//!
//! What the protocol cannot carry is refused with a documented errno rather than faked:
//! - engine maps with extensions (load balancing, bonds, parallel submission) and maps of
//!   more than 30 engines (the host takes at most 128 bytes inline): `ENODEV`;
//! - changing `BANNABLE` or `PERSISTENCE` of an existing context (the host forwards only
//!   `RECOVERABLE`, `PRIORITY` at the default value, and `VM` after creation): `ENODEV`;
//! - reading the `SSEU` of a context: `ENODEV` (its size is answered);
//! - `NO_ERROR_CAPTURE` is recorded and reported: the guest has no error capture for it to
//!   affect, and the host's is not reachable from the guest.

use core::mem::size_of;
use kernel::{
    capability::{
        capable,
        Capability, //
    },
    drm,
    prelude::*,
    uapi,
};
use zerocopy_derive::Immutable;

use crate::{
    ccmd::{
        simple,
        GemContextCreate,
        IoctlSimple, //
    },
    driver::{
        Bound,
        I915Device, //
    },
    execbuf::{
        class,
        legacy_class, //
    },
    file::{
        host_errno,
        File, //
    },
    uext::{
        self,
        read_user, //
    },
};

/// `I915_CONTEXT_PARAM_*`.
mod param {
    pub(super) const GTT_SIZE: u64 = 0x3;
    pub(super) const NO_ERROR_CAPTURE: u64 = 0x4;
    pub(super) const BANNABLE: u64 = 0x5;
    pub(super) const PRIORITY: u64 = 0x6;
    pub(super) const SSEU: u64 = 0x7;
    pub(super) const RECOVERABLE: u64 = 0x8;
    pub(super) const VM: u64 = 0x9;
    pub(super) const ENGINES: u64 = 0xa;
    pub(super) const PERSISTENCE: u64 = 0xb;
    pub(super) const PROTECTED_CONTENT: u64 = 0xd;
}

/// `I915_CONTEXT_CREATE_FLAGS_USE_EXTENSIONS`.
const CREATE_USE_EXTENSIONS: u32 = 1 << 0;
/// `I915_CONTEXT_CREATE_FLAGS_SINGLE_TIMELINE`.
const CREATE_SINGLE_TIMELINE: u32 = 1 << 1;
/// `I915_CONTEXT_CREATE_EXT_SETPARAM`.
const EXT_SETPARAM: u32 = 0;
/// Size of `struct drm_i915_gem_context_param_sseu`.
const SSEU_SIZE: u32 = 32;
/// Most bytes the host takes inline for one parameter.
const HOST_INLINE_MAX: u32 = 128;

/// `struct drm_i915_gem_context_param`.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct ContextParam {
    ctx_id: u32,
    size: u32,
    param: u64,
    value: u64,
}

/// `struct drm_i915_gem_context_create_ext_setparam`: the extension head, then the param.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct SetparamExt {
    next_extension: u64,
    name: u32,
    flags: u32,
    rsvd: [u32; 4],
    param: ContextParam,
}

/// `struct drm_i915_reset_stats` (also what the host takes).
#[repr(C)]
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable)]
pub(crate) struct ResetStats {
    ctx_id: u32,
    flags: u32,
    reset_count: u32,
    pub(crate) batch_active: u32,
    pub(crate) batch_pending: u32,
    pad: u32,
}

impl ResetStats {
    /// A query for GEM context `ctx_id` (little-endian, as the host takes it).
    pub(crate) fn query(ctx_id: u32) -> Self {
        Self {
            ctx_id: ctx_id.to_le(),
            ..Self::default()
        }
    }
}

/// `struct drm_i915_gem_vm_control`.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct VmControl {
    extensions: u64,
    flags: u32,
    vm_id: u32,
}

/// `struct drm_i915_reg_read`.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct RegRead {
    offset: u64,
    val: u64,
}

/// `struct drm_i915_gem_context_destroy`.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct ContextDestroy {
    ctx_id: u32,
    pad: u32,
}

kernel::static_assert!(size_of::<ContextParam>() == size_of::<uapi::drm_i915_gem_context_param>());
kernel::static_assert!(
    size_of::<SetparamExt>() == size_of::<uapi::drm_i915_gem_context_create_ext_setparam>()
);
kernel::static_assert!(size_of::<ResetStats>() == size_of::<uapi::drm_i915_reset_stats>());
kernel::static_assert!(size_of::<VmControl>() == size_of::<uapi::drm_i915_gem_vm_control>());
kernel::static_assert!(size_of::<RegRead>() == size_of::<uapi::drm_i915_reg_read>());
kernel::static_assert!(
    size_of::<ContextDestroy>() == size_of::<uapi::drm_i915_gem_context_destroy>()
);

/// What the guest knows of one GEM context of a file.
pub(crate) struct GemCtx {
    pub(crate) id: u32,
    /// The engine map as `(class, instance)` pairs; `None` for the legacy ring selectors.
    engines: Option<KVec<(u16, u16)>>,
    bannable: bool,
    persistent: bool,
    no_error_capture: bool,
    protected: bool,
}

impl GemCtx {
    /// A context with i915's defaults (the file's default context is one).
    pub(crate) fn new(id: u32) -> Self {
        Self {
            id,
            engines: None,
            bannable: true,
            persistent: true,
            no_error_capture: false,
            protected: false,
        }
    }

    /// The engine class that execbuffer ring selector `engine` names (`eb_select_engine()`).
    ///
    /// # Errors
    ///
    /// `EINVAL` for an index past the engine map or an empty slot of it, or a legacy
    /// selector i915 does not know; the host's i915 checks that the engine exists.
    pub(crate) fn engine_class(&self, engine: u64) -> Result<u16> {
        match &self.engines {
            None => legacy_class(engine),
            Some(map) => usize::try_from(engine)
                .ok()
                .and_then(|i| map.get(i))
                .map(|&(c, _)| c)
                .filter(|&c| c != class::INVALID)
                .ok_or(EINVAL),
        }
    }
}

/// A create's parameters, checked and serialised for the host.
struct CreateParams {
    ctx: GemCtx,
    wire: KVec<u8>,
}

impl CreateParams {
    /// Appends one setparam element with `data` inline (`size` = its length).
    fn push(&mut self, p: &ContextParam, data: &[u8]) -> Result {
        let size = u32::try_from(data.len()).map_err(|_| EINVAL)?;
        let el = SetparamExt {
            next_extension: 0,
            name: EXT_SETPARAM,
            flags: 0,
            rsvd: [0; 4],
            param: ContextParam {
                ctx_id: 0,
                size: size.to_le(),
                param: p.param.to_le(),
                value: if size == 0 { p.value.to_le() } else { 0 },
            },
        };
        self.wire.extend_from_slice(el.as_bytes(), GFP_KERNEL)?;
        self.wire.extend_from_slice(data, GFP_KERNEL)?;
        Ok(())
    }

    /// `set_proto_ctx_param()`: one parameter of a create.
    fn set(&mut self, p: &ContextParam) -> Result {
        match p.param {
            param::NO_ERROR_CAPTURE => {
                size_zero(p)?;
                self.ctx.no_error_capture = p.value != 0;
                self.push(p, &[])
            }
            param::BANNABLE => {
                size_zero(p)?;
                check_bannable(p.value)?;
                self.ctx.bannable = p.value != 0;
                self.push(p, &[])
            }
            param::RECOVERABLE => {
                size_zero(p)?;
                self.push(p, &[])
            }
            param::PRIORITY => check_priority(p),
            // SSEU can be set only on graphics version 11.
            param::SSEU if p.size < SSEU_SIZE => Err(EINVAL),
            param::SSEU => Err(ENODEV),
            param::VM => {
                size_zero(p)?;
                if p.value >> 32 != 0 {
                    return Err(ENOENT);
                }
                self.push(p, &[])
            }
            param::ENGINES => self.set_engines(p),
            param::PERSISTENCE => {
                size_zero(p)?;
                self.ctx.persistent = p.value != 0;
                self.push(p, &[])
            }
            param::PROTECTED_CONTENT => {
                self.ctx.protected = p.value != 0;
                self.push(p, &[])
            }
            _ => Err(EINVAL),
        }
    }

    /// `set_proto_ctx_engines()`: an engine map, `struct i915_context_param_engines`, once.
    fn set_engines(&mut self, p: &ContextParam) -> Result {
        if self.ctx.engines.is_some() {
            return Err(EINVAL);
        }
        const HEAD: u32 = 8;
        const ENGINE: u32 = 4;
        if p.size < HEAD || (p.size - HEAD) % ENGINE != 0 {
            return Err(EINVAL);
        }
        let count = ((p.size - HEAD) / ENGINE) as usize;
        if count > 64 {
            return Err(EINVAL);
        }
        let mut map = KVec::with_capacity(count, GFP_KERNEL)?;
        for n in 0..count {
            let ci: [u16; 2] = read_user(p.value, u64::from(HEAD) + (n as u64) * 4)?;
            map.push((ci[0], ci[1]), GFP_KERNEL)?;
        }
        let extensions: u64 = read_user(p.value, 0)?;
        // Load balancing, bonds and parallel submission name engines through pointers the
        // host does not rewrite: the chain is checked as i915 checks it, then refused.
        uext::walk(extensions, |name, _| match name {
            0..=2 => Err(ENODEV),
            _ => Err(EINVAL),
        })?;
        if p.size > HOST_INLINE_MAX {
            return Err(ENODEV);
        }
        let mut data = KVec::new();
        data.extend_from_slice(&0u64.to_le_bytes(), GFP_KERNEL)?;
        for &(c, i) in map.iter() {
            data.extend_from_slice(&c.to_le_bytes(), GFP_KERNEL)?;
            data.extend_from_slice(&i.to_le_bytes(), GFP_KERNEL)?;
        }
        self.ctx.engines = Some(map);
        self.push(p, &data)
    }
}

fn size_zero(p: &ContextParam) -> Result {
    if p.size != 0 {
        return Err(EINVAL);
    }
    Ok(())
}

/// Only `CAP_SYS_ADMIN` may make a context unbannable.
fn check_bannable(value: u64) -> Result {
    if value == 0 && !capable(Capability::SYS_ADMIN) {
        return Err(EPERM);
    }
    Ok(())
}

/// `validate_priority()` of an i915 without a priority scheduler (`I915_PARAM_HAS_SCHEDULER`
/// is 0 here): size 0, then `ENODEV`. The host takes only the default priority, and
/// compares it unsigned, so negative priorities would fail there too.
fn check_priority(p: &ContextParam) -> Result {
    size_zero(p)?;
    Err(ENODEV)
}

impl File {
    /// Runs context ioctl `cmd` on the host (`IOCTL_SIMPLE`) with `arg`. With `once`, the
    /// ioctl creates or destroys a host object: once queued, its answer is waited for
    /// without interruption, so a restarted ioctl cannot repeat it.
    fn ctx_simple<T>(&self, bound: &Bound<'_>, cmd: u32, arg: T, once: bool) -> Result<T>
    where
        T: FromBytes + IntoBytes + zerocopy::Immutable + Copy,
    {
        let c = IoctlSimple { cmd, arg };
        self.with_ctx(bound, |ctx| {
            if once {
                ctx.call_once(bound, &c)
            } else {
                ctx.call(bound, &c)
            }
        })?
        .map_err(host_errno)
    }

    /// The size of the device's GEM address spaces (the default context's `GTT_SIZE`, the
    /// same for every VM), asked of the host once per binding; `None` if it cannot tell.
    pub(crate) fn gtt_size(&self, bound: &Bound<'_>) -> Option<u64> {
        let cache = self.shared().cache.gtt_size();
        if let Some(v) = cache.copy() {
            return Some(v);
        }
        let arg = ContextParam {
            ctx_id: 0,
            size: 0,
            param: param::GTT_SIZE.to_le(),
            value: 0,
        };
        let v = u64::from_le(
            self.ctx_simple(bound, simple::CONTEXT_GETPARAM, arg, false)
                .ok()?
                .value,
        );
        cache.populate(v);
        Some(v)
    }

    /// Whether GEM context `id` exists (the default context 0 always does).
    fn has_gem_ctx(&self, id: u32) -> bool {
        id == 0 || self.gem_ctxs().lock().iter().any(|c| c.id == id)
    }

    /// Runs `f` on what the guest knows of GEM context `id`.
    fn with_gem_ctx<R>(&self, id: u32, f: impl FnOnce(&mut GemCtx) -> R) -> Result<R> {
        let mut g = self.gem_ctxs().lock();
        if let Some(c) = g.iter_mut().find(|c| c.id == id) {
            return Ok(f(c));
        }
        if id == 0 {
            let mut dflt = GemCtx::new(0);
            let r = f(&mut dflt);
            g.push(dflt, GFP_KERNEL)?;
            return Ok(r);
        }
        Err(ENOENT)
    }

    /// Whether GEM context `id` has an engine map (`I915_CONTEXT_PARAM_ENGINES`).
    pub(crate) fn has_engine_map(&self, id: u32) -> bool {
        self.with_gem_ctx(id, |c| c.engines.is_some())
            .unwrap_or(false)
    }

    /// The engine class execbuffer ring selector `engine` names on GEM context `id`.
    ///
    /// # Errors
    ///
    /// `ENOENT` for an unknown context, `EINVAL` for an engine it does not have.
    pub(crate) fn engine_class(&self, id: u32, engine: u64) -> Result<u16> {
        self.with_gem_ctx(id, |c| c.engine_class(engine))?
    }

    /// `DRM_IOCTL_I915_GEM_CONTEXT_CREATE` and `_CREATE_EXT` (one ioctl number; the legacy
    /// struct is the first 8 bytes of the extended one, the rest reads as zero).
    ///
    /// # Errors
    ///
    /// `EINVAL` for unknown flags, the chain's errors (see [`uext::walk`]), each
    /// parameter's (`EINVAL`, `EPERM`, `ENOENT`, `ENODEV`, `EFAULT`), then the host i915's
    /// errno, `ENOMEM`, and the transport's errors.
    pub(crate) fn gem_context_create(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_context_create_ext,
        file: &drm::File<File>,
    ) -> Result<u32> {
        if args.flags & !(CREATE_USE_EXTENSIONS | CREATE_SINGLE_TIMELINE) != 0 {
            return Err(EINVAL);
        }
        let mut params = CreateParams {
            ctx: GemCtx::new(0),
            wire: KVec::new(),
        };
        if args.flags & CREATE_USE_EXTENSIONS != 0 {
            uext::walk(args.extensions, |name, at| {
                if name != EXT_SETPARAM {
                    // `I915_CONTEXT_CREATE_EXT_CLONE` was removed; nothing else exists.
                    return Err(EINVAL);
                }
                let p: ContextParam = read_user(at, 32)?;
                if p.ctx_id != 0 {
                    return Err(EINVAL);
                }
                params.set(&p)
            })?;
        }
        // The host parses whatever follows the request when it gets the flag: only with
        // parameters.
        let mut flags = args.flags & CREATE_SINGLE_TIMELINE;
        if !params.wire.is_empty() {
            flags |= CREATE_USE_EXTENSIONS;
        }
        let this = file.inner();
        let mut ctx = params.ctx;
        let cmd = GemContextCreate {
            flags,
            params: params.wire,
        };
        let id = this
            .with_ctx(bound, |c| {
                let id = c.call_once(bound, &cmd)?;
                if let Ok(id) = id {
                    // A reused id starts with no guilty batches.
                    c.forget_resets(id);
                }
                Ok(id)
            })?
            .map_err(host_errno)?;
        ctx.id = id;
        let pushed = {
            let mut g = this.gem_ctxs().lock();
            g.retain(|c| c.id != id);
            g.push(ctx, GFP_KERNEL).is_ok()
        };
        if !pushed {
            // Without its record the context would be unusable: take it back.
            let arg = ContextDestroy {
                ctx_id: id.to_le(),
                pad: 0,
            };
            let _ = this.ctx_simple(bound, simple::CONTEXT_DESTROY, arg, true);
            return Err(ENOMEM);
        }
        args.ctx_id = id;
        Ok(0)
    }

    /// `DRM_IOCTL_I915_GEM_CONTEXT_DESTROY`.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a non-zero `pad`, `ENOENT` for the default or an unknown context, the
    /// host i915's errno, and the transport's errors.
    pub(crate) fn gem_context_destroy(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_context_destroy,
        file: &drm::File<File>,
    ) -> Result<u32> {
        if args.pad != 0 {
            return Err(EINVAL);
        }
        let this = file.inner();
        if args.ctx_id == 0 || !this.has_gem_ctx(args.ctx_id) {
            return Err(ENOENT);
        }
        // Its execbuffers still waiting for fences could not run once the host reuses the
        // id: they fail (`ECANCELED`) first. Those already sent run to completion.
        this.exec_queue().cancel_context(args.ctx_id);
        let arg = ContextDestroy {
            ctx_id: args.ctx_id.to_le(),
            pad: 0,
        };
        this.ctx_simple(bound, simple::CONTEXT_DESTROY, arg, true)?;
        this.gem_ctxs().lock().retain(|c| c.id != args.ctx_id);
        Ok(0)
    }

    /// `DRM_IOCTL_I915_GEM_CONTEXT_GETPARAM`.
    ///
    /// # Errors
    ///
    /// `ENOENT` for an unknown context, `EINVAL` for an unknown parameter or a short
    /// buffer, `EFAULT`, `ENODEV` for `SSEU` (see the module documentation), the host i915's
    /// errno, and the transport's errors.
    pub(crate) fn gem_context_getparam(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_context_param,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let this = file.inner();
        if !this.has_gem_ctx(args.ctx_id) {
            return Err(ENOENT);
        }
        match args.param {
            param::GTT_SIZE | param::PRIORITY | param::RECOVERABLE | param::VM => {
                let arg = ContextParam {
                    ctx_id: args.ctx_id.to_le(),
                    size: args.size.to_le(),
                    param: args.param.to_le(),
                    value: args.value.to_le(),
                };
                let out = this.ctx_simple(bound, simple::CONTEXT_GETPARAM, arg, false)?;
                args.size = u32::from_le(out.size);
                args.value = u64::from_le(out.value);
            }
            param::NO_ERROR_CAPTURE
            | param::BANNABLE
            | param::PERSISTENCE
            | param::PROTECTED_CONTENT => {
                let v = this.with_gem_ctx(args.ctx_id, |c| match args.param {
                    param::NO_ERROR_CAPTURE => c.no_error_capture,
                    param::BANNABLE => c.bannable,
                    param::PERSISTENCE => c.persistent,
                    _ => c.protected,
                })?;
                args.size = 0;
                args.value = u64::from(v);
            }
            param::SSEU => {
                if args.size == 0 {
                    args.size = SSEU_SIZE;
                    return Ok(0);
                }
                if args.size < SSEU_SIZE {
                    return Err(EINVAL);
                }
                return Err(ENODEV);
            }
            _ => return Err(EINVAL),
        }
        Ok(0)
    }

    /// `DRM_IOCTL_I915_GEM_CONTEXT_SETPARAM` (`ctx_setparam()`).
    ///
    /// # Errors
    ///
    /// `ENOENT` for an unknown context, `EINVAL` for a parameter that cannot change after
    /// creation or a bad size, `EPERM`, `ENODEV` (see the module documentation), the host
    /// i915's errno, and the transport's errors.
    pub(crate) fn gem_context_setparam(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_context_param,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let this = file.inner();
        if !this.has_gem_ctx(args.ctx_id) {
            return Err(ENOENT);
        }
        let p = ContextParam {
            ctx_id: args.ctx_id,
            size: args.size,
            param: args.param,
            value: args.value,
        };
        match p.param {
            param::NO_ERROR_CAPTURE => {
                size_zero(&p)?;
                this.with_gem_ctx(p.ctx_id, |c| c.no_error_capture = p.value != 0)?;
            }
            // The host cannot change these after creation: asking for the current value
            // succeeds, a change is refused.
            param::BANNABLE => {
                size_zero(&p)?;
                check_bannable(p.value)?;
                if this.with_gem_ctx(p.ctx_id, |c| c.bannable)? != (p.value != 0) {
                    return Err(ENODEV);
                }
            }
            param::PERSISTENCE => {
                size_zero(&p)?;
                if this.with_gem_ctx(p.ctx_id, |c| c.persistent)? != (p.value != 0) {
                    return Err(ENODEV);
                }
            }
            param::PRIORITY => check_priority(&p)?,
            // The host's i915 decides: a context not used yet takes a VM (i915 finishes
            // creating contexts at first use up to graphics version 12), a used one does not.
            param::RECOVERABLE | param::VM => {
                size_zero(&p)?;
                let arg = ContextParam {
                    ctx_id: p.ctx_id.to_le(),
                    size: 0,
                    param: p.param.to_le(),
                    value: p.value.to_le(),
                };
                this.ctx_simple(bound, simple::CONTEXT_SETPARAM, arg, false)?;
            }
            param::SSEU if p.size < SSEU_SIZE => return Err(EINVAL),
            param::SSEU => return Err(ENODEV),
            // BAN_PERIOD, NO_ZEROMAP, GTT_SIZE, ENGINES, RINGSIZE, PROTECTED_CONTENT (fixed
            // at creation, or gone) and unknown parameters.
            _ => return Err(EINVAL),
        }
        Ok(0)
    }

    /// `DRM_IOCTL_I915_GET_RESET_STATS`: the host's counts; the global reset count only for
    /// `CAP_SYS_ADMIN`, as i915.
    ///
    /// # Errors
    ///
    /// `EINVAL` for non-zero `flags` or `pad`, `ENOENT` for an unknown context, the host
    /// i915's errno, and the transport's errors.
    pub(crate) fn get_reset_stats(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_reset_stats,
        file: &drm::File<File>,
    ) -> Result<u32> {
        if args.flags != 0 || args.pad != 0 {
            return Err(EINVAL);
        }
        let this = file.inner();
        if !this.has_gem_ctx(args.ctx_id) {
            return Err(ENOENT);
        }
        // Mesa asks after every submission and wait: answered from what the guest knows
        // when it knows it (see `HostContext::known_reset_stats`). `reset_count`, for
        // privileged callers only, is the whole GPU's: always the host's.
        let privileged = capable(Capability::SYS_ADMIN);
        let host = this.host_ctx();
        if !privileged {
            // A file without a host context has run no batch: nothing was reset.
            let known = host
                .as_ref()
                .map_or(Some((0, 0)), |h| h.known_reset_stats(args.ctx_id));
            if let Some((active, pending)) = known {
                args.reset_count = 0;
                args.batch_active = active;
                args.batch_pending = pending;
                return Ok(0);
            }
        }
        let arg = ResetStats {
            ctx_id: args.ctx_id.to_le(),
            flags: 0,
            reset_count: 0,
            batch_active: 0,
            batch_pending: 0,
            pad: 0,
        };
        let out = this.ctx_simple(bound, simple::GET_RESET_STATS, arg, false)?;
        args.reset_count = if privileged {
            u32::from_le(out.reset_count)
        } else {
            0
        };
        args.batch_active = u32::from_le(out.batch_active);
        args.batch_pending = u32::from_le(out.batch_pending);
        if let Some(h) = this.host_ctx() {
            h.note_reset_stats(args.ctx_id, args.batch_active, args.batch_pending);
        }
        Ok(0)
    }

    /// `DRM_IOCTL_I915_GEM_VM_CREATE`.
    ///
    /// # Errors
    ///
    /// `EINVAL` for flags or any extension (i915 has none; `EFAULT` when the chain cannot
    /// be read), the host i915's errno, and the transport's errors.
    pub(crate) fn gem_vm_create(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_vm_control,
        file: &drm::File<File>,
    ) -> Result<u32> {
        if args.flags != 0 {
            return Err(EINVAL);
        }
        uext::walk(args.extensions, |_, _| Err(EINVAL))?;
        let arg = VmControl {
            extensions: 0,
            flags: 0,
            vm_id: 0,
        };
        let out = file
            .inner()
            .ctx_simple(bound, simple::VM_CREATE, arg, true)?;
        args.vm_id = u32::from_le(out.vm_id);
        Ok(0)
    }

    /// `DRM_IOCTL_I915_GEM_VM_DESTROY`.
    ///
    /// # Errors
    ///
    /// `EINVAL` for flags or extensions, `ENOENT` for id 0, the host i915's errno
    /// (`ENOENT` for an unknown VM), and the transport's errors.
    pub(crate) fn gem_vm_destroy(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_vm_control,
        file: &drm::File<File>,
    ) -> Result<u32> {
        if args.flags != 0 || args.extensions != 0 {
            return Err(EINVAL);
        }
        if args.vm_id == 0 {
            return Err(ENOENT);
        }
        let arg = VmControl {
            extensions: 0,
            flags: 0,
            vm_id: args.vm_id.to_le(),
        };
        file.inner()
            .ctx_simple(bound, simple::VM_DESTROY, arg, true)?;
        Ok(0)
    }

    /// `DRM_IOCTL_I915_REG_READ`: the host i915 reads the registers it allows (the render
    /// ring's timestamp).
    ///
    /// # Errors
    ///
    /// The host i915's errno (`EINVAL` for other registers), and the transport's errors.
    pub(crate) fn reg_read(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_reg_read,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let arg = RegRead {
            offset: args.offset.to_le(),
            val: 0,
        };
        let out = file
            .inner()
            .ctx_simple(bound, simple::REG_READ, arg, false)?;
        args.val = u64::from_le(out.val);
        Ok(0)
    }
}

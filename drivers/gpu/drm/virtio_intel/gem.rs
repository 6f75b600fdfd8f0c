// SPDX-License-Identifier: GPL-2.0

//! GEM objects. Host blobs come with the GEM issue; the DRM core needs the type now.

use kernel::{
    drm::gem,
    prelude::*, //
};

use crate::driver::VirtioIntelDriver;

/// Driver data of a GEM object.
#[pin_data]
pub(crate) struct Bo {}

impl gem::DriverObject for Bo {
    type Driver = VirtioIntelDriver;
    type Args = ();

    fn new(
        _dev: &kernel::drm::Device<VirtioIntelDriver>,
        _size: usize,
        _args: (),
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Bo {})
    }
}

// SPDX-License-Identifier: MIT
//! Gives the shared object the soname QEMU's module was linked against.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvirglrenderer.so.1");
}

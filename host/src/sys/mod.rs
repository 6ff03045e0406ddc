//! Every `unsafe` block of the host lives under this module, so it can be audited in one
//! place:
//!
//! * [`loader`]: opening plugin libraries through abi_stable, and importing the Arrow C
//!   streams their reads return;
//! * [`mmap`]: mapping a disk-cache entry and handing its Arrow IPC buffers to polars
//!   without copying them.
//!
//! Nothing unsafe-shaped (raw pointers, `R*`/`Ffi*` types, maps) leaves these modules.
#![allow(unsafe_code)]

pub(crate) mod loader;
pub(crate) mod mmap;

//! Every `unsafe` block of the host lives under this module, so it can be audited in one
//! place:
//!
//! * [`loader`]: opening plugin libraries through abi_stable, and importing the Arrow C
//!   streams their reads return;
//! * [`mmap`]: mapping a disk-cache entry and handing its Arrow IPC buffers to polars
//!   without copying them;
//! * [`shared`]: the cache's generations and tally, words mapped by every process.
//! * [`fuzz_stream`]: hand-made (and malformed) Arrow C streams for the fuzz targets.
//!
//! Nothing unsafe-shaped (raw pointers, `R*`/`Ffi*` types, maps) leaves these modules.
#![allow(unsafe_code)]

pub(crate) mod fuzz_stream;
pub(crate) mod loader;
pub(crate) mod mmap;
pub(crate) mod shared;

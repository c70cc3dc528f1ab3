//! The pure half of baton's early boot.
//!
//! Everything here runs on the host under `cargo test -p handoff`: it reads
//! no hardware and owns no memory. The kernel feeds it what Limine and the
//! CPU report and applies what it decides. Physical memory is reached only
//! through the traits of [`phys`], the one seam where the kernel vouches for
//! addresses.
//!
//! Virtual addresses are plain `u64` here: the `x86_64` crate's `VirtAddr`
//! only admits 4-level canonical addresses, and baton also builds 5-level
//! tables. Physical addresses and frames use the `x86_64` crate's types.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(all(feature = "sim", not(test)))]
extern crate std;

pub mod cmdline;
pub mod fault;
pub mod layout;
pub mod memmap;
pub mod mtrr;
pub mod paging;
pub mod phys;
pub mod plan;
pub mod revision;

/// The base page size.
pub const PAGE_SIZE: u64 = 4096;

//! The physical memory map: the firmware's and Limine's maps, validated and
//! merged into one normalised [`MemoryMap`].
//!
//! The kernel copies Limine's entries into an array of [`LimineEntry`] and,
//! on a UEFI boot, points [`EfiMemoryMap::parse`] at the EFI map's bytes.
//! Both maps are validated when parsed ([`LimineMap::parse`]); a map that
//! breaks its rules is refused with a [`MapError`] naming the map and the
//! entry. (The EFI map may be unsorted: then only [`build`] can tell whether
//! its descriptors overlap, and it refuses the map if they do.) [`build`]
//! merges the maps into a [`MemoryMap`] kept in a `static`, using a
//! [`Scratch`] kept in another:
//!
//! ```
//! use handoff::memmap::{self, LimineEntry, LimineMap, MemoryMap, Scratch};
//!
//! # let mut scratch = Box::new(Scratch::new());
//! # let mut map = Box::new(MemoryMap::new());
//! let entries = [LimineEntry { base: 0x1000, length: 0x9e000, ty: memmap::limine::USABLE }];
//! let limine = LimineMap::parse(&entries, 46)?;
//! memmap::build(None, &limine, &mut scratch, &mut map)?;
//! assert_eq!(map.ram_bytes(), 0x9e000);
//! # Ok::<(), memmap::MapError>(())
//! ```
//!
//! What each kind of memory means for baton lives in one place, [`policy`].

pub mod boot_services;
mod efi;
mod error;
pub mod limine;
mod map;
mod normalise;
pub mod policy;

#[cfg(test)]
mod tests;

/// Lays descriptors out as firmware does, for other modules' tests.
#[cfg(test)]
pub(crate) use efi::tests::encode as encode_efi;
pub use efi::{DESCRIPTOR_SIZE, EfiEntry, EfiMemoryMap, Iter, decode as decode_descriptor};
pub use error::{EntryInfo, MapError, Source};
pub use limine::{LimineEntry, LimineMap};
pub use map::{MemoryMap, RamRuns, Region};
pub use normalise::{Scratch, Summary, build, round_to_pages};
pub use policy::{Allocatable, InEfiWindow, Kind, Policy};

/// The most EFI descriptors baton accepts (OVMF has about 100, large
/// servers a few hundred).
pub const MAX_EFI_ENTRIES: usize = 2048;

/// The most Limine entries baton accepts.
pub const MAX_LIMINE_ENTRIES: usize = 2048;

/// The most regions the normalised map holds.
pub const MAX_REGIONS: usize = 2048;

/// The smallest MAXPHYADDR baton accepts. x86-64 CPUs report at least 36
/// bits; below 32 even the legacy 4 GiB would not fit.
pub const MIN_PHYS_BITS: u8 = 32;

/// The largest MAXPHYADDR the architecture allows.
pub const MAX_PHYS_BITS: u8 = 52;

/// The first physical address above what a CPU with `max_phys_bits` of
/// MAXPHYADDR can address: every map must end at or below it.
pub const fn phys_limit(max_phys_bits: u8) -> Result<u64, MapError> {
    if max_phys_bits < MIN_PHYS_BITS || max_phys_bits > MAX_PHYS_BITS {
        return Err(MapError::MaxPhysBits(max_phys_bits));
    }
    Ok(1 << max_phys_bits)
}

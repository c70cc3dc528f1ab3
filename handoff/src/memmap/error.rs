//! Why a memory map was refused, naming the map and the entry.

use core::fmt;

use super::{MAX_PHYS_BITS, MAX_REGIONS, MIN_PHYS_BITS};

/// Which memory map an entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The firmware's EFI memory map.
    Efi,
    /// Limine's memory map.
    Limine,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Efi => "EFI",
            Source::Limine => "Limine",
        })
    }
}

/// The entry an error is about, as the map gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryInfo {
    /// The map.
    pub map: Source,
    /// The entry's position in the map, from 0.
    pub index: usize,
    /// Its raw type (an EFI `MemoryType` or a Limine type).
    pub ty: u64,
    /// Its start address.
    pub start: u64,
    /// Its exclusive end, computed without overflow (it may exceed 64 bits).
    pub end: u128,
}

impl fmt::Display for EntryInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} memory map entry {} (type {}, {:#x}-{:#x})",
            self.map, self.index, self.ty, self.start, self.end
        )
    }
}

/// Why a memory map cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapError {
    /// MAXPHYADDR is outside what x86-64 allows.
    MaxPhysBits(u8),
    /// The EFI descriptor stride is smaller than a version-1 descriptor.
    DescSizeTooSmall(usize),
    /// The EFI descriptor stride is not a multiple of 8, so the 64-bit
    /// fields of later descriptors would be misaligned.
    DescSizeUnaligned(usize),
    /// The EFI descriptor version is not 1.
    UnsupportedVersion(u32),
    /// The EFI map's size is not a whole number of descriptors.
    Truncated {
        /// The map's size in bytes.
        len: usize,
        /// The descriptor stride.
        desc_size: usize,
    },
    /// A map has more entries than baton has room for.
    TooManyEntries {
        /// The map.
        map: Source,
        /// Its number of entries.
        count: usize,
        /// The most baton accepts.
        max: usize,
    },
    /// An entry covers no memory.
    ZeroLength(EntryInfo),
    /// An entry that must start (and end) on a page boundary does not.
    Misaligned(EntryInfo),
    /// An entry's end does not fit in 64 bits.
    Overflow(EntryInfo),
    /// An entry ends above what the CPU can address.
    BeyondMaxPhys {
        /// The entry.
        entry: EntryInfo,
        /// MAXPHYADDR, in bits.
        max_phys_bits: u8,
    },
    /// A Limine map entry starts below the one before it. Limine promises
    /// sorted entries; the EFI map need not be sorted, so this is never
    /// about an EFI descriptor.
    Unsorted {
        /// The entry.
        entry: EntryInfo,
        /// The index of the entry before it.
        previous: usize,
        /// Where that entry starts.
        previous_start: u64,
    },
    /// An entry overlaps an earlier one (in map order) where the map
    /// forbids it. For the EFI map, [`EfiMemoryMap::parse`] finds this
    /// while the map is sorted and [`build`] once it is not.
    ///
    /// [`EfiMemoryMap::parse`]: super::EfiMemoryMap::parse
    /// [`build`]: super::build
    Overlap {
        /// The entry.
        entry: EntryInfo,
        /// The earlier entry it overlaps.
        previous: usize,
        /// Where that entry ends.
        previous_end: u64,
    },
    /// The normalised map needs more than [`MAX_REGIONS`] regions.
    OutputFull {
        /// Where the region that did not fit starts.
        at: u64,
    },
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::MaxPhysBits(bits) => write!(
                f,
                "MAXPHYADDR of {bits} bits is outside {MIN_PHYS_BITS}..={MAX_PHYS_BITS}"
            ),
            MapError::DescSizeTooSmall(size) => write!(
                f,
                "EFI memory map descriptor size {size} is smaller than a descriptor (40 bytes)"
            ),
            MapError::DescSizeUnaligned(size) => write!(
                f,
                "EFI memory map descriptor size {size} is not a multiple of 8"
            ),
            MapError::UnsupportedVersion(v) => write!(
                f,
                "EFI memory map descriptor version {v} is not supported (baton reads version 1)"
            ),
            MapError::Truncated { len, desc_size } => write!(
                f,
                "EFI memory map of {len} bytes is not a whole number of {desc_size}-byte \
                 descriptors"
            ),
            MapError::TooManyEntries { map, count, max } => write!(
                f,
                "{map} memory map has {count} entries; at most {max} are supported"
            ),
            MapError::ZeroLength(e) => write!(f, "{e}: zero length"),
            MapError::Misaligned(e) => write!(f, "{e}: not aligned to 4 KiB"),
            MapError::Overflow(e) => write!(f, "{e}: end overflows 64 bits"),
            MapError::BeyondMaxPhys {
                entry,
                max_phys_bits,
            } => write!(
                f,
                "{entry}: ends beyond MAXPHYADDR {:#x} ({max_phys_bits} bits)",
                1u128 << max_phys_bits
            ),
            MapError::Unsorted {
                entry,
                previous,
                previous_start,
            } => write!(
                f,
                "{entry}: starts below entry {previous} (starts at {previous_start:#x})"
            ),
            MapError::Overlap {
                entry,
                previous,
                previous_end,
            } => write!(
                f,
                "{entry}: overlaps entry {previous} (ends at {previous_end:#x})"
            ),
            MapError::OutputFull { at } => write!(
                f,
                "normalised memory map is full ({MAX_REGIONS} regions) at {at:#x}"
            ),
        }
    }
}

impl core::error::Error for MapError {}

//! Limine's memory map, copied out of the memmap response and validated.
//!
//! The protocol promises that the entries are sorted by base, and that
//! usable and bootloader-reclaimable entries are page-aligned and overlap no
//! other entry. Other types may overlap each other or have unaligned edges:
//! that is legal, and [`build`](super::build) resolves it.

use super::error::{EntryInfo, MapError, Source};
use super::{MAX_LIMINE_ENTRIES, phys_limit};
use crate::PAGE_SIZE;

/// Free memory.
pub const USABLE: u64 = 0;
/// Reserved by the firmware.
pub const RESERVED: u64 = 1;
/// ACPI tables.
pub const ACPI_RECLAIMABLE: u64 = 2;
/// ACPI non-volatile storage.
pub const ACPI_NVS: u64 = 3;
/// Memory with detected errors.
pub const BAD_MEMORY: u64 = 4;
/// Limine's own memory: page tables, stack, responses.
pub const BOOTLOADER_RECLAIMABLE: u64 = 5;
/// The kernel image and modules.
pub const EXECUTABLE_AND_MODULES: u64 = 6;
/// A framebuffer.
pub const FRAMEBUFFER: u64 = 7;
/// Reserved, but mapped in the HHDM (base revision 5: EFI runtime regions).
pub const RESERVED_MAPPED: u64 = 8;

/// One entry of Limine's memory map, with Limine's layout
/// (`struct limine_memmap_entry`), so the kernel can copy entries verbatim.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LimineEntry {
    /// Physical start address.
    pub base: u64,
    /// Length in bytes.
    pub length: u64,
    /// One of the type constants of this module, or a newer one.
    pub ty: u64,
}

impl LimineEntry {
    /// An empty entry, for static arrays.
    pub const EMPTY: LimineEntry = LimineEntry {
        base: 0,
        length: 0,
        ty: 0,
    };

    /// The exclusive end, when it fits in 64 bits.
    pub const fn end(&self) -> Option<u64> {
        self.base.checked_add(self.length)
    }

    fn info(&self, index: usize) -> EntryInfo {
        EntryInfo {
            map: Source::Limine,
            index,
            ty: self.ty,
            start: self.base,
            end: self.base as u128 + self.length as u128,
        }
    }
}

/// A validated Limine memory map.
#[derive(Debug, Clone, Copy)]
pub struct LimineMap<'a> {
    entries: &'a [LimineEntry],
}

impl<'a> LimineMap<'a> {
    /// Validates `entries` against the protocol's promises and against
    /// MAXPHYADDR (`max_phys_bits`, from CPUID).
    pub fn parse(entries: &'a [LimineEntry], max_phys_bits: u8) -> Result<Self, MapError> {
        let limit = phys_limit(max_phys_bits)?;
        if entries.len() > MAX_LIMINE_ENTRIES {
            return Err(MapError::TooManyEntries {
                map: Source::Limine,
                count: entries.len(),
                max: MAX_LIMINE_ENTRIES,
            });
        }
        // Since the entries are sorted and the usable-class ones are disjoint,
        // one pass suffices: remember the furthest end reached by any entry
        // and by any usable-class entry, with the entry that reached it.
        let mut prev_start = 0;
        let mut furthest: Option<(usize, u64)> = None;
        let mut furthest_usable: Option<(usize, u64)> = None;
        for (index, e) in entries.iter().enumerate() {
            let info = e.info(index);
            let usable_class = matches!(e.ty, USABLE | BOOTLOADER_RECLAIMABLE);
            if e.length == 0 {
                return Err(MapError::ZeroLength(info));
            }
            if usable_class
                && (!e.base.is_multiple_of(PAGE_SIZE) || !e.length.is_multiple_of(PAGE_SIZE))
            {
                return Err(MapError::Misaligned(info));
            }
            let Some(end) = e.end() else {
                return Err(MapError::Overflow(info));
            };
            if end > limit {
                return Err(MapError::BeyondMaxPhys {
                    entry: info,
                    max_phys_bits,
                });
            }
            if index > 0 && e.base < prev_start {
                return Err(MapError::Unsorted {
                    entry: info,
                    previous: index - 1,
                    previous_start: prev_start,
                });
            }
            // A usable-class entry may overlap nothing before it; any entry
            // may not overlap a usable-class one before it.
            let clash = if usable_class {
                furthest
            } else {
                furthest_usable
            };
            if let Some((previous, previous_end)) = clash
                && e.base < previous_end
            {
                return Err(MapError::Overlap {
                    entry: info,
                    previous,
                    previous_end,
                });
            }
            prev_start = e.base;
            if furthest.is_none_or(|(_, f)| end > f) {
                furthest = Some((index, end));
            }
            if usable_class {
                furthest_usable = Some((index, end));
            }
        }
        Ok(Self { entries })
    }

    /// The entries, as Limine gave them.
    pub fn entries(&self) -> &'a [LimineEntry] {
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(base: u64, length: u64, ty: u64) -> LimineEntry {
        LimineEntry { base, length, ty }
    }

    fn err(entries: &[LimineEntry]) -> String {
        LimineMap::parse(entries, 46).unwrap_err().to_string()
    }

    #[test]
    fn layout_matches_limine() {
        assert_eq!(core::mem::size_of::<LimineEntry>(), 24);
        assert_eq!(core::mem::offset_of!(LimineEntry, base), 0);
        assert_eq!(core::mem::offset_of!(LimineEntry, length), 8);
        assert_eq!(core::mem::offset_of!(LimineEntry, ty), 16);
    }

    #[test]
    fn legal_overlaps_and_unaligned_edges_are_accepted() {
        let entries = [
            e(0x0, 0x9f000, USABLE),
            // Unaligned, and overlapping the next reserved entry: legal.
            e(0x9fc00, 0x400, RESERVED),
            e(0x9ff00, 0x60100, RESERVED),
            e(0x100000, 0x100000, BOOTLOADER_RECLAIMABLE),
            e(0x200000, 0x1000, ACPI_NVS),
            e(0x200800, 0x10, ACPI_RECLAIMABLE),
        ];
        let map = LimineMap::parse(&entries, 46).unwrap();
        assert_eq!(map.entries(), &entries);
        assert!(LimineMap::parse(&[], 46).unwrap().entries().is_empty());
    }

    #[test]
    fn zero_length() {
        assert_eq!(
            err(&[e(0x1000, 0x1000, USABLE), e(0x5000, 0, RESERVED)]),
            "Limine memory map entry 1 (type 1, 0x5000-0x5000): zero length"
        );
    }

    #[test]
    fn misaligned_usable_start_or_length() {
        assert_eq!(
            err(&[e(0x1800, 0x1000, USABLE)]),
            "Limine memory map entry 0 (type 0, 0x1800-0x2800): not aligned to 4 KiB"
        );
        assert_eq!(
            err(&[e(0x1000, 0x800, BOOTLOADER_RECLAIMABLE)]),
            "Limine memory map entry 0 (type 5, 0x1000-0x1800): not aligned to 4 KiB"
        );
    }

    #[test]
    fn overflow() {
        assert_eq!(
            err(&[e(0xffff_ffff_ffff_f000, 0x2000, RESERVED)]),
            "Limine memory map entry 0 (type 1, 0xfffffffffffff000-0x10000000000001000): \
             end overflows 64 bits"
        );
    }

    #[test]
    fn beyond_max_phys() {
        assert_eq!(
            err(&[e(0x3fff_ffff_f000, 0x2000, RESERVED)]),
            "Limine memory map entry 0 (type 1, 0x3ffffffff000-0x400000001000): \
             ends beyond MAXPHYADDR 0x400000000000 (46 bits)"
        );
        // One byte past it is not (unaligned types are checked unrounded).
        assert_eq!(
            err(&[e(0x3fff_ffff_f000, 0x1001, RESERVED)]),
            "Limine memory map entry 0 (type 1, 0x3ffffffff000-0x400000000001): \
             ends beyond MAXPHYADDR 0x400000000000 (46 bits)"
        );
        // Ending exactly at the limit is fine.
        LimineMap::parse(&[e(0x3fff_ffff_f000, 0x1000, USABLE)], 46).unwrap();
    }

    #[test]
    fn unsorted() {
        assert_eq!(
            err(&[e(0x2000, 0x1000, USABLE), e(0x1000, 0x10, RESERVED)]),
            "Limine memory map entry 1 (type 1, 0x1000-0x1010): starts below entry 0 \
             (starts at 0x2000)"
        );
    }

    #[test]
    fn usable_class_overlapping_anything() {
        // Usable after a reserved entry that reaches into it.
        assert_eq!(
            err(&[
                e(0x0, 0x1800, RESERVED),
                e(0x1000, 0x10, ACPI_NVS),
                e(0x1000, 0x1000, USABLE)
            ]),
            "Limine memory map entry 2 (type 0, 0x1000-0x2000): overlaps entry 0 \
             (ends at 0x1800)"
        );
        // Of two reserved entries that end together, the first is named.
        assert_eq!(
            err(&[
                e(0x0, 0x3000, RESERVED),
                e(0x1000, 0x2000, ACPI_NVS),
                e(0x2000, 0x1000, USABLE)
            ]),
            "Limine memory map entry 2 (type 0, 0x2000-0x3000): overlaps entry 0 \
             (ends at 0x3000)"
        );
        // A reserved entry reaching back into a usable one.
        assert_eq!(
            err(&[
                e(0x0, 0x2000, BOOTLOADER_RECLAIMABLE),
                e(0x1fff, 0x2, RESERVED)
            ]),
            "Limine memory map entry 1 (type 1, 0x1fff-0x2001): overlaps entry 0 \
             (ends at 0x2000)"
        );
    }

    #[test]
    fn too_many_entries() {
        let entries: Vec<_> = (0..MAX_LIMINE_ENTRIES as u64 + 1)
            .map(|i| e(i * 0x2000, 0x1000, USABLE))
            .collect();
        assert_eq!(
            err(&entries),
            "Limine memory map has 2049 entries; at most 2048 are supported"
        );
        LimineMap::parse(&entries[..MAX_LIMINE_ENTRIES], 46).unwrap();
    }
}

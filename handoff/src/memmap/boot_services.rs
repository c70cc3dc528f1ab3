//! The firmware's boot-services memory, whatever Limine calls it.
//!
//! The EFI map says which memory held EFI boot-services code and data. Up
//! to 9.2 Limine's own map called it usable; from 9.3 on it calls it
//! bootloader-reclaimable. The normalised map follows Limine (its claim
//! outranks the EFI type), so under a newer Limine that memory is freed
//! only once every CPU has left Limine's code, not right after
//! SetVirtualAddressMap. What stays with the EFI type whichever Limine
//! booted: the ranges SetVirtualAddressMap gets mapped one-to-one, for
//! firmware that still touches boot-services memory during the call
//! (Linux's `efi_map_region` quirk), found by [`ranges`]; and what
//! [`claims`] counts for the log.

use uefi_raw::table::boot::MemoryType;

use super::EfiMemoryMap;
use super::limine::{BOOTLOADER_RECLAIMABLE, LimineEntry, USABLE};

/// How much of the EFI map's boot-services memory Limine's map calls what.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Claims {
    /// Bytes the EFI map gives to boot services (without the runtime
    /// attribute).
    pub total: u64,
    /// Of those, bytes Limine calls bootloader-reclaimable.
    pub reclaimable: u64,
    /// Of those, bytes Limine calls usable.
    pub usable: u64,
}

/// Whether an EFI descriptor is boot-services memory the OS may reuse
/// (with the runtime attribute it is runtime memory instead). Read from
/// the firmware's type itself, not from baton's [`Kind`] for it: this is
/// what the kernel holds its policy to.
fn is_boot_services(e: &super::EfiEntry<'_>) -> bool {
    matches!(
        e.desc().ty,
        MemoryType::BOOT_SERVICES_CODE | MemoryType::BOOT_SERVICES_DATA
    ) && !e.is_runtime()
}

fn overlap(a: (u64, u64), b: (u64, u64)) -> u64 {
    a.1.min(b.1).saturating_sub(a.0.max(b.0))
}

/// Counts the EFI map's boot-services memory and what Limine's entries
/// (sorted and disjoint where they are usable or reclaimable, as its
/// protocol promises and [`LimineMap::parse`](super::LimineMap::parse)
/// checks) call it.
pub fn claims(efi: &EfiMemoryMap<'_>, limine: &[LimineEntry]) -> Claims {
    let mut c = Claims::default();
    for e in efi.iter().filter(is_boot_services) {
        let range = (e.start(), e.end());
        c.total += range.1 - range.0;
        for l in limine {
            let bytes = overlap(range, (l.base, l.base.saturating_add(l.length)));
            match l.ty {
                BOOTLOADER_RECLAIMABLE => c.reclaimable += bytes,
                USABLE => c.usable += bytes,
                _ => {}
            }
        }
    }
    c
}

/// More boot-services ranges than the caller has room for, even merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany;

/// Writes the EFI map's boot-services ranges into `out`, sorted, with
/// touching ranges merged (the map may be unsorted). Returns how many were
/// written.
pub fn ranges(efi: &EfiMemoryMap<'_>, out: &mut [(u64, u64)]) -> Result<usize, TooMany> {
    let mut n = 0;
    for e in efi.iter().filter(is_boot_services) {
        if n == out.len() {
            n = merge(&mut out[..n]);
            if n == out.len() {
                return Err(TooMany);
            }
        }
        out[n] = (e.start(), e.end());
        n += 1;
    }
    Ok(merge(&mut out[..n]))
}

/// Sorts `ranges` and merges touching ones to its front; returns how many
/// are left.
fn merge(ranges: &mut [(u64, u64)]) -> usize {
    ranges.sort_unstable();
    let mut n = 0;
    for i in 0..ranges.len() {
        let r = ranges[i];
        if n > 0 && ranges[n - 1].1 >= r.0 {
            ranges[n - 1].1 = ranges[n - 1].1.max(r.1);
        } else {
            ranges[n] = r;
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use uefi_raw::table::boot::{MemoryAttribute, MemoryDescriptor, MemoryType};

    use super::*;
    use crate::memmap::encode_efi;

    fn desc(ty: MemoryType, start: u64, pages: u64, att: MemoryAttribute) -> MemoryDescriptor {
        MemoryDescriptor {
            ty,
            phys_start: start,
            virt_start: 0,
            page_count: pages,
            att,
        }
    }

    fn bs(start: u64, pages: u64) -> MemoryDescriptor {
        desc(
            MemoryType::BOOT_SERVICES_DATA,
            start,
            pages,
            MemoryAttribute::WRITE_BACK,
        )
    }

    /// A map shaped like OVMF's (unsorted, code and data interleaved with
    /// loader memory, one boot-services descriptor with RUNTIME).
    fn map() -> Vec<u8> {
        encode_efi(
            &[
                bs(0x30_0000, 0x10),
                desc(
                    MemoryType::CONVENTIONAL,
                    0x10_0000,
                    0x100,
                    MemoryAttribute::WRITE_BACK,
                ),
                desc(
                    MemoryType::BOOT_SERVICES_CODE,
                    0x31_0000,
                    0x10,
                    MemoryAttribute::WRITE_BACK,
                ),
                desc(
                    MemoryType::LOADER_DATA,
                    0x32_0000,
                    0x10,
                    MemoryAttribute::WRITE_BACK,
                ),
                bs(0x33_0000, 0x20),
                desc(
                    MemoryType::BOOT_SERVICES_DATA,
                    0x35_0000,
                    0x10,
                    MemoryAttribute::WRITE_BACK | MemoryAttribute::RUNTIME,
                ),
                bs(0x0, 1),
            ],
            48,
        )
    }

    #[test]
    fn ranges_are_sorted_and_merged() {
        let bytes = map();
        let efi = EfiMemoryMap::parse(&bytes, 48, 1, 40).unwrap();
        let mut out = [(0, 0); 8];
        let n = ranges(&efi, &mut out).unwrap();
        // Data and code that touch merge; loader memory and the runtime
        // descriptor split; the unsorted page 0 comes first.
        assert_eq!(
            &out[..n],
            &[(0, 0x1000), (0x30_0000, 0x32_0000), (0x33_0000, 0x35_0000)]
        );
    }

    #[test]
    fn ranges_fit_when_merged() {
        let bytes = map();
        let efi = EfiMemoryMap::parse(&bytes, 48, 1, 40).unwrap();
        // Four descriptors, three merged ranges: three slots suffice.
        let mut three = [(0, 0); 3];
        assert_eq!(ranges(&efi, &mut three), Ok(3));
        assert_eq!(three[1], (0x30_0000, 0x32_0000));
        let mut two = [(0, 0); 2];
        assert_eq!(ranges(&efi, &mut two), Err(TooMany));
    }

    #[test]
    fn claims_follow_limine_9_3_and_8_2() {
        let bytes = map();
        let efi = EfiMemoryMap::parse(&bytes, 48, 1, 40).unwrap();
        let entry = |base, length, ty| LimineEntry { base, length, ty };
        // Limine 8.2: boot-services memory is usable in its map (and page 0
        // is not in it at all).
        let old = [
            entry(0x1000, 0x9f000, USABLE),
            entry(0x10_0000, 0x25_0000, USABLE),
        ];
        let c = claims(&efi, &old);
        assert_eq!(c.total, 0x1000 + 0x20000 + 0x20000);
        assert_eq!((c.usable, c.reclaimable), (0x40000, 0));
        // Limine 9.3 and later: the same memory is bootloader-reclaimable.
        let new = [
            entry(0, 0x1000, BOOTLOADER_RECLAIMABLE),
            entry(0x10_0000, 0x20_0000, USABLE),
            entry(0x30_0000, 0x5_0000, BOOTLOADER_RECLAIMABLE),
        ];
        let c = claims(&efi, &new);
        assert_eq!((c.usable, c.reclaimable), (0, c.total));
    }
}

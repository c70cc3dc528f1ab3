//! The firmware's EFI memory map, read from the bytes Limine hands over.
//!
//! Descriptors are `desc_size` bytes apart, which is larger than
//! `MemoryDescriptor` on real firmware (48 on OVMF, against 40): the stride
//! always comes from the map, never from `size_of`. Each descriptor is read
//! field by field, little-endian, so the bytes need no particular alignment.
//!
//! The descriptors must not overlap, but they may come in any order: the
//! UEFI specification does not require `GetMemoryMap` to sort them, and OVMF
//! does not once RAM extends above 4 GiB (it lists that RAM before the
//! reserved and MMIO ranges below 4 GiB). [`build`](super::build) sorts
//! everything anyway, so the order changes nothing in the result.
//!
//! While the map is sorted, [`EfiMemoryMap::parse`] finds overlaps by
//! comparing each descriptor with the one before it. Once a descriptor
//! starts below its predecessor that no longer works, and the check is left
//! to [`build`](super::build), whose sweep sees the descriptors in address
//! order: an overlapping map is refused either way, with the same error.

use uefi_raw::table::boot::{MemoryAttribute, MemoryDescriptor, MemoryType};

use super::error::{EntryInfo, MapError, Source};
use super::policy::Kind;
use super::{MAX_EFI_ENTRIES, phys_limit};
use crate::PAGE_SIZE;

/// The size of a version-1 descriptor, without the firmware's padding.
pub const DESCRIPTOR_SIZE: usize = 40;

/// A validated EFI memory map over the firmware's bytes.
#[derive(Debug, Clone, Copy)]
pub struct EfiMemoryMap<'a> {
    bytes: &'a [u8],
    desc_size: usize,
    sorted: bool,
}

/// One descriptor of an [`EfiMemoryMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EfiEntry<'a> {
    index: usize,
    desc: MemoryDescriptor,
    raw: &'a [u8],
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Decodes a descriptor from at least [`DESCRIPTOR_SIZE`] bytes.
pub fn decode(raw: &[u8]) -> MemoryDescriptor {
    MemoryDescriptor {
        ty: MemoryType(read_u32(raw, 0)),
        // Bytes 4 to 7 are padding.
        phys_start: read_u64(raw, 8),
        virt_start: read_u64(raw, 16),
        page_count: read_u64(raw, 24),
        att: MemoryAttribute::from_bits_retain(read_u64(raw, 32)),
    }
}

fn info(index: usize, d: &MemoryDescriptor) -> EntryInfo {
    EntryInfo {
        map: Source::Efi,
        index,
        ty: d.ty.0 as u64,
        start: d.phys_start,
        end: d.phys_start as u128 + d.page_count as u128 * PAGE_SIZE as u128,
    }
}

impl<'a> EfiMemoryMap<'a> {
    /// Validates the map in `bytes` (`memmap_size` bytes from the EFI memmap
    /// response) with the response's stride and version, against MAXPHYADDR
    /// (`max_phys_bits`, from CPUID).
    ///
    /// The descriptors may come in any order ([`is_sorted`](Self::is_sorted)
    /// says which). Overlapping descriptors are refused here while the map
    /// is sorted up to them, and by [`build`](super::build) otherwise.
    pub fn parse(
        bytes: &'a [u8],
        desc_size: usize,
        desc_version: u32,
        max_phys_bits: u8,
    ) -> Result<Self, MapError> {
        let limit = phys_limit(max_phys_bits)?;
        if desc_version != MemoryDescriptor::VERSION {
            return Err(MapError::UnsupportedVersion(desc_version));
        }
        if desc_size < DESCRIPTOR_SIZE {
            return Err(MapError::DescSizeTooSmall(desc_size));
        }
        if !desc_size.is_multiple_of(8) {
            return Err(MapError::DescSizeUnaligned(desc_size));
        }
        if !bytes.len().is_multiple_of(desc_size) {
            return Err(MapError::Truncated {
                len: bytes.len(),
                desc_size,
            });
        }
        let mut map = Self {
            bytes,
            desc_size,
            sorted: true,
        };
        if map.len() > MAX_EFI_ENTRIES {
            return Err(MapError::TooManyEntries {
                map: Source::Efi,
                count: map.len(),
                max: MAX_EFI_ENTRIES,
            });
        }
        let mut prev: Option<(u64, u64)> = None;
        for entry in map.iter() {
            let (index, d) = (entry.index, entry.desc);
            let info = info(index, &d);
            if d.page_count == 0 {
                return Err(MapError::ZeroLength(info));
            }
            if !d.phys_start.is_multiple_of(PAGE_SIZE) {
                return Err(MapError::Misaligned(info));
            }
            let Some(end) = d
                .page_count
                .checked_mul(PAGE_SIZE)
                .and_then(|len| d.phys_start.checked_add(len))
            else {
                return Err(MapError::Overflow(info));
            };
            if end > limit {
                return Err(MapError::BeyondMaxPhys {
                    entry: info,
                    max_phys_bits,
                });
            }
            if map.sorted
                && let Some((prev_start, prev_end)) = prev
            {
                if d.phys_start < prev_start {
                    // From here on overlaps are build's to find.
                    map.sorted = false;
                } else if d.phys_start < prev_end {
                    // Sorted and so far disjoint: only the previous entry
                    // can reach into this one.
                    return Err(MapError::Overlap {
                        entry: info,
                        previous: index - 1,
                        previous_end: prev_end,
                    });
                }
            }
            prev = Some((d.phys_start, end));
        }
        Ok(map)
    }

    /// Whether every descriptor starts at or above the one before it. When
    /// one does not, [`build`](super::build) checks that none overlap.
    pub fn is_sorted(&self) -> bool {
        self.sorted
    }

    /// The number of descriptors.
    pub fn len(&self) -> usize {
        self.bytes.len() / self.desc_size
    }

    /// Whether the map has no descriptors.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The stride between descriptors.
    pub fn desc_size(&self) -> usize {
        self.desc_size
    }

    /// The map's bytes, as the firmware wrote them.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Descriptor `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<EfiEntry<'a>> {
        let at = index.checked_mul(self.desc_size)?;
        let raw = self.bytes.get(at..at.checked_add(self.desc_size)?)?;
        Some(EfiEntry {
            index,
            desc: decode(raw),
            raw,
        })
    }

    /// The descriptors, in map order.
    pub fn iter(&self) -> Iter<'a> {
        Iter {
            map: *self,
            next: 0,
        }
    }
}

impl<'a> IntoIterator for &EfiMemoryMap<'a> {
    type Item = EfiEntry<'a>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The descriptors of an [`EfiMemoryMap`], in map order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    map: EfiMemoryMap<'a>,
    next: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = EfiEntry<'a>;

    fn next(&mut self) -> Option<EfiEntry<'a>> {
        let entry = self.map.get(self.next)?;
        self.next += 1;
        Some(entry)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.map.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> EfiEntry<'a> {
    /// The descriptor's position in the map, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The descriptor, decoded.
    pub fn desc(&self) -> &MemoryDescriptor {
        &self.desc
    }

    /// The descriptor's `desc_size` bytes, padding included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The physical start address.
    pub fn start(&self) -> u64 {
        self.desc.phys_start
    }

    /// The exclusive physical end address (no overflow: the map is validated).
    pub fn end(&self) -> u64 {
        self.desc.phys_start + self.desc.page_count * PAGE_SIZE
    }

    /// The descriptor, for an error message.
    pub(super) fn info(&self) -> EntryInfo {
        info(self.index, &self.desc)
    }

    /// baton's kind for the descriptor's type (and its specific-purpose
    /// attribute).
    pub fn kind(&self) -> Kind {
        Kind::from_efi_desc(self.desc.ty, self.desc.att)
    }

    /// Whether the runtime services need the range mapped.
    pub fn is_runtime(&self) -> bool {
        self.desc.att.contains(MemoryAttribute::RUNTIME)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `descs` laid out with stride `desc_size`, as firmware writes them:
    /// the padding after the type and after the descriptor holds junk, which
    /// the parser must ignore.
    pub(crate) fn encode(descs: &[MemoryDescriptor], desc_size: usize) -> Vec<u8> {
        let mut bytes = vec![0xa5; descs.len() * desc_size];
        for (d, raw) in descs.iter().zip(bytes.chunks_mut(desc_size)) {
            raw[0..4].copy_from_slice(&d.ty.0.to_le_bytes());
            raw[8..16].copy_from_slice(&d.phys_start.to_le_bytes());
            raw[16..24].copy_from_slice(&d.virt_start.to_le_bytes());
            raw[24..32].copy_from_slice(&d.page_count.to_le_bytes());
            raw[32..40].copy_from_slice(&d.att.bits().to_le_bytes());
        }
        bytes
    }

    pub(crate) fn desc(ty: MemoryType, start: u64, pages: u64, att: u64) -> MemoryDescriptor {
        MemoryDescriptor {
            ty,
            phys_start: start,
            virt_start: 0,
            page_count: pages,
            att: MemoryAttribute::from_bits_retain(att),
        }
    }

    fn err(descs: &[MemoryDescriptor]) -> String {
        EfiMemoryMap::parse(&encode(descs, 48), 48, 1, 46)
            .unwrap_err()
            .to_string()
    }

    const WB: u64 = 0xf; // UC | WC | WT | WB
    const RT: u64 = 1 << 63;

    #[test]
    fn reads_every_stride() {
        let descs = [
            desc(MemoryType::BOOT_SERVICES_CODE, 0, 1, WB),
            MemoryDescriptor {
                virt_start: 0xdead_b000,
                ..desc(MemoryType::RUNTIME_SERVICES_CODE, 0x1000, 0x9e, RT | WB)
            },
            desc(MemoryType::MMIO, 0xffc0_0000, 0x400, RT | 1),
        ];
        for desc_size in [40, 48, 64] {
            let bytes = encode(&descs, desc_size);
            let map = EfiMemoryMap::parse(&bytes, desc_size, 1, 46).unwrap();
            assert_eq!((map.len(), map.desc_size()), (3, desc_size));
            assert_eq!(map.iter().len(), 3);
            for (i, e) in map.iter().enumerate() {
                assert_eq!(e.index(), i);
                assert_eq!(*e.desc(), descs[i], "stride {desc_size}");
                assert_eq!(e.raw(), &bytes[i * desc_size..(i + 1) * desc_size]);
            }
            let rt = map.get(1).unwrap();
            assert_eq!((rt.start(), rt.end()), (0x1000, 0x9f000));
            assert_eq!(rt.kind(), Kind::RuntimeCode);
            assert!(rt.is_runtime() && map.get(2).unwrap().is_runtime());
            assert!(!map.get(0).unwrap().is_runtime());
            assert_eq!(map.get(3), None);
            assert_eq!(map.get(usize::MAX), None);
        }
    }

    #[test]
    fn empty_map_is_valid() {
        let map = EfiMemoryMap::parse(&[], 48, 1, 46).unwrap();
        assert!(map.is_empty() && map.iter().next().is_none());
    }

    #[test]
    fn header_errors() {
        let bytes = encode(&[desc(MemoryType::CONVENTIONAL, 0, 1, WB)], 48);
        let e = |size, version, bits| {
            EfiMemoryMap::parse(&bytes, size, version, bits)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            e(48, 2, 46),
            "EFI memory map descriptor version 2 is not supported (baton reads version 1)"
        );
        assert_eq!(
            e(32, 1, 46),
            "EFI memory map descriptor size 32 is smaller than a descriptor (40 bytes)"
        );
        assert_eq!(
            e(44, 1, 46),
            "EFI memory map descriptor size 44 is not a multiple of 8"
        );
        assert_eq!(
            e(40, 1, 46),
            "EFI memory map of 48 bytes is not a whole number of 40-byte descriptors"
        );
        assert_eq!(e(48, 1, 53), "MAXPHYADDR of 53 bits is outside 32..=52");
        assert_eq!(e(48, 1, 31), "MAXPHYADDR of 31 bits is outside 32..=52");
        EfiMemoryMap::parse(&bytes, 48, 1, 52).unwrap();
        EfiMemoryMap::parse(&bytes, 48, 1, 32).unwrap();
    }

    #[test]
    fn too_many_entries() {
        let descs: Vec<_> = (0..MAX_EFI_ENTRIES as u64 + 1)
            .map(|i| desc(MemoryType::CONVENTIONAL, i << 12, 1, WB))
            .collect();
        assert_eq!(
            err(&descs),
            "EFI memory map has 2049 entries; at most 2048 are supported"
        );
        let bytes = encode(&descs[..MAX_EFI_ENTRIES], 48);
        EfiMemoryMap::parse(&bytes, 48, 1, 46).unwrap();
    }

    #[test]
    fn zero_length() {
        assert_eq!(
            err(&[
                desc(MemoryType::CONVENTIONAL, 0, 1, WB),
                desc(MemoryType::BOOT_SERVICES_DATA, 0x1000, 0, WB)
            ]),
            "EFI memory map entry 1 (type 4, 0x1000-0x1000): zero length"
        );
    }

    #[test]
    fn misaligned() {
        assert_eq!(
            err(&[desc(MemoryType::CONVENTIONAL, 0x1800, 1, WB)]),
            "EFI memory map entry 0 (type 7, 0x1800-0x2800): not aligned to 4 KiB"
        );
    }

    #[test]
    fn overflow() {
        // The page count alone overflows, then start + length.
        assert_eq!(
            err(&[desc(MemoryType::CONVENTIONAL, 0, 1 << 52, WB)]),
            "EFI memory map entry 0 (type 7, 0x0-0x10000000000000000): end overflows 64 bits"
        );
        assert_eq!(
            err(&[desc(MemoryType::RESERVED, 0xffff_ffff_ffff_f000, 2, 0)]),
            "EFI memory map entry 0 (type 0, 0xfffffffffffff000-0x10000000000001000): \
             end overflows 64 bits"
        );
    }

    #[test]
    fn beyond_max_phys() {
        assert_eq!(
            err(&[desc(MemoryType::MMIO, 0x3fff_ffff_f000, 2, RT | 1)]),
            "EFI memory map entry 0 (type 11, 0x3ffffffff000-0x400000001000): \
             ends beyond MAXPHYADDR 0x400000000000 (46 bits)"
        );
    }

    /// Whether `descs` parse as a sorted map (they must parse).
    fn sorted(descs: &[MemoryDescriptor]) -> bool {
        EfiMemoryMap::parse(&encode(descs, 48), 48, 1, 46)
            .unwrap()
            .is_sorted()
    }

    #[test]
    fn unsorted_maps_are_accepted() {
        use MemoryType as T;
        // OVMF with RAM above 4 GiB lists that RAM before the ECAM: the boot
        // that used to fail ("entry 129 ... starts below entry 128").
        let descs = [
            desc(T::CONVENTIONAL, 0x10_0000, 0x100, WB),
            desc(T::CONVENTIONAL, 0x1_0000_0000, 0x18_0000, WB),
            desc(T::RESERVED, 0xb000_0000, 0x1_0000, 1),
            desc(T::MMIO, 0xffc0_0000, 0x400, RT | 1),
        ];
        let bytes = encode(&descs, 48);
        let map = EfiMemoryMap::parse(&bytes, 48, 1, 46).unwrap();
        assert!(!map.is_sorted());
        // Read in map order, as the firmware wrote it.
        let starts: Vec<_> = map.iter().map(|e| e.start()).collect();
        assert_eq!(starts, [0x10_0000, 0x1_0000_0000, 0xb000_0000, 0xffc0_0000]);

        let mut in_order = descs;
        in_order.sort_by_key(|d| d.phys_start);
        assert!(sorted(&in_order));
        // Touching descriptors are sorted; so are the trivial maps.
        assert!(sorted(&[
            desc(T::CONVENTIONAL, 0, 1, WB),
            desc(T::CONVENTIONAL, 0x1000, 1, WB)
        ]));
        assert!(sorted(&descs[1..2]));
        assert!(sorted(&[]));
        // Out of order by one page, at the very end.
        let mut last = in_order.to_vec();
        last.push(desc(T::CONVENTIONAL, 0xffbf_f000, 1, WB));
        assert!(!sorted(&last));
    }

    #[test]
    fn overlaps_in_a_sorted_map_are_refused_here() {
        use MemoryType as T;
        // Equal starts are sorted, and overlap.
        assert_eq!(
            err(&[
                desc(T::CONVENTIONAL, 0x1000, 2, WB),
                desc(T::LOADER_DATA, 0x1000, 1, WB)
            ]),
            "EFI memory map entry 1 (type 2, 0x1000-0x2000): overlaps entry 0 (ends at 0x3000)"
        );
        // An overlap before the first descriptor out of order is still
        // found here.
        assert_eq!(
            err(&[
                desc(T::CONVENTIONAL, 0x1000, 2, WB),
                desc(T::LOADER_DATA, 0x2000, 2, WB),
                desc(T::CONVENTIONAL, 0x0, 1, WB)
            ]),
            "EFI memory map entry 1 (type 2, 0x2000-0x4000): overlaps entry 0 (ends at 0x3000)"
        );
        // After it, neighbours say nothing: build finds the overlap.
        assert!(!sorted(&[
            desc(T::CONVENTIONAL, 0x1000, 2, WB),
            desc(T::CONVENTIONAL, 0x0, 1, WB),
            desc(T::LOADER_DATA, 0x2000, 2, WB),
        ]));
    }

    #[test]
    fn entry_rules_still_hold_once_the_map_is_unsorted() {
        use MemoryType as T;
        let unsorted = |bad: MemoryDescriptor| {
            err(&[
                desc(T::CONVENTIONAL, 0x10_0000, 0x100, WB),
                desc(T::CONVENTIONAL, 0x1000, 1, WB),
                bad,
            ])
        };
        assert_eq!(
            unsorted(desc(T::BOOT_SERVICES_DATA, 0x2000, 0, WB)),
            "EFI memory map entry 2 (type 4, 0x2000-0x2000): zero length"
        );
        assert_eq!(
            unsorted(desc(T::BOOT_SERVICES_DATA, 0x2800, 1, WB)),
            "EFI memory map entry 2 (type 4, 0x2800-0x3800): not aligned to 4 KiB"
        );
        assert_eq!(
            unsorted(desc(T::RESERVED, 0x3fff_ffff_f000, 2, 0)),
            "EFI memory map entry 2 (type 0, 0x3ffffffff000-0x400000001000): \
             ends beyond MAXPHYADDR 0x400000000000 (46 bits)"
        );
    }

    #[test]
    fn overlap() {
        let mut descs: Vec<_> = (0..12)
            .map(|i| desc(MemoryType::BOOT_SERVICES_DATA, i << 12, 1, WB))
            .collect();
        descs[11] = desc(MemoryType::BOOT_SERVICES_DATA, 0x10_0000, 0x80, WB);
        descs.push(desc(MemoryType::CONVENTIONAL, 0x10_0000, 0x100, WB));
        // The example from the issue, word for word.
        assert_eq!(
            err(&descs[..]),
            "EFI memory map entry 12 (type 7, 0x100000-0x200000): overlaps entry 11 \
             (ends at 0x180000)"
        );
    }
}

//! `inject=` damage to baton's copy of the boot data (test runs only), so
//! that the handoff's checks must catch it. Defects of the new tables and
//! of SetVirtualAddressMap are the shim's and the EFI module's to make.

use handoff::cmdline::Inject;
use handoff::memmap::limine::{ACPI_NVS, USABLE};
use handoff::memmap::{LimineEntry, decode_descriptor};
use log::warn;
use uefi_raw::table::boot::{MemoryAttribute, MemoryType};

use super::RawMaps;

/// Damages `raw` as `what` asks, if `what` is a defect of the boot data.
pub(super) fn damage(raw: &mut RawMaps, what: Inject) {
    match what {
        Inject::LowerHalf => {
            warn!("inject: the new tables will get a present lower-half entry")
        }
        Inject::SvamVersion | Inject::EfiFault | Inject::EfiNoMat if raw.efi_info.is_none() => {
            warn!("inject: {what:?} needs UEFI; nothing done")
        }
        Inject::SvamVersion => {
            warn!("inject: SetVirtualAddressMap will get a wrong descriptor version")
        }
        Inject::EfiFault => warn!("inject: the firmware will fault in its first runtime call"),
        Inject::EfiNoMat => warn!("inject: the memory attributes table will be ignored"),
        Inject::MtrrUc | Inject::MtrrWt => {
            warn!("inject: a variable MTRR will be set over part of RAM before the handoff")
        }
        Inject::EfiUcRam => uncached_ram(raw),
        Inject::Reserved256M if raw.efi_info.is_some() => {
            warn!("inject: {what:?} needs a BIOS boot (Limine's map only); nothing done")
        }
        Inject::Reserved256M => reserve_256m(raw),
        Inject::Overlap if raw.efi_info.is_none() => overlap_limine(raw),
        Inject::Overlap | Inject::Truncate | Inject::NoEfiMap | Inject::DescSize => {
            damage_efi(raw, what)
        }
    }
}

/// A BIOS boot's overlap: a usable Limine entry grows one page into the
/// entry after it.
fn overlap_limine(raw: &mut RawMaps) {
    let entries = &mut raw.limine[..raw.limine_len];
    let Some(k) = (0..entries.len().saturating_sub(1)).find(|&k| entries[k].ty == USABLE) else {
        return warn!("inject: no usable entry with a successor; nothing done");
    };
    // Page-aligned (usable entries must be), past the next start.
    let end = (entries[k + 1].base & !0xfff) + 0x1000;
    entries[k].length = end - entries[k].base;
    warn!(
        "inject: Limine entry {k} now reaches one page into entry {}",
        k + 1
    );
}

/// The defects of the EFI memory map.
fn damage_efi(raw: &mut RawMaps, what: Inject) {
    let Some(mut efi) = raw.efi_info else {
        return warn!("inject: {what:?} needs an EFI memory map; nothing done");
    };
    match what {
        Inject::Overlap => {
            let d = efi.desc_size;
            if efi.size < 2 * d {
                return warn!("inject: fewer than two EFI descriptors; nothing done");
            }
            let (first, second) = raw.efi.split_at_mut(d);
            // Descriptor 1 takes descriptor 0's start and length.
            second[8..16].copy_from_slice(&first[8..16]);
            second[24..32].copy_from_slice(&first[24..32]);
            warn!("inject: EFI descriptor 1 now duplicates descriptor 0");
        }
        Inject::Truncate => {
            efi.size -= efi.desc_size / 2;
            raw.efi_info = Some(efi);
            warn!("inject: EFI memory map cut to {} bytes", efi.size);
        }
        Inject::NoEfiMap => {
            raw.efi_info = None;
            warn!("inject: EFI memory map dropped");
        }
        Inject::DescSize => {
            efi.desc_size = 8;
            raw.efi_info = Some(efi);
            warn!("inject: EFI desc_size set to 8");
        }
        Inject::SvamVersion
        | Inject::LowerHalf
        | Inject::EfiFault
        | Inject::EfiNoMat
        | Inject::MtrrUc
        | Inject::MtrrWt
        | Inject::EfiUcRam
        | Inject::Reserved256M => {}
    }
}

/// The attribute bits of the cacheability types.
const CACHE_BITS: MemoryAttribute = MemoryAttribute::UNCACHEABLE
    .union(MemoryAttribute::WRITE_COMBINE)
    .union(MemoryAttribute::WRITE_THROUGH)
    .union(MemoryAttribute::WRITE_BACK)
    .union(MemoryAttribute::UNCACHABLE_EXPORTED);

/// The first conventional-memory descriptor of at least 4 MiB above the
/// first 16 MiB is made to allow uncached only, as firmware may describe
/// RAM it wants kept out of the caches.
fn uncached_ram(raw: &mut RawMaps) {
    let Some(efi) = raw.efi_info else {
        return warn!("inject: EfiUcRam needs an EFI memory map; nothing done");
    };
    let found = raw.efi[..efi.size]
        .chunks_exact_mut(efi.desc_size)
        .enumerate()
        .find(|(_, d)| {
            let d = decode_descriptor(d);
            d.ty == MemoryType::CONVENTIONAL && d.phys_start >= 16 << 20 && d.page_count >= 1024
        });
    let Some((i, raw)) = found else {
        return warn!("inject: no conventional descriptor of 4 MiB above 16 MiB; nothing done");
    };
    let d = decode_descriptor(raw);
    let (start, pages) = (d.phys_start, d.page_count);
    let attr = d.att.difference(CACHE_BITS) | MemoryAttribute::UNCACHEABLE;
    raw[32..40].copy_from_slice(&attr.bits().to_le_bytes());
    warn!(
        "inject: EFI descriptor {i} (conventional memory {start:#x}-{:#x}) now allows UC only",
        start + pages * 4096
    );
}

/// The first aligned 256 MiB of a usable Limine entry become ACPI NVS: the
/// entry splits in up to three.
fn reserve_256m(raw: &mut RawMaps) {
    const SIZE: u64 = 256 << 20;
    let entries = &raw.limine[..raw.limine_len];
    let found = entries.iter().enumerate().find_map(|(k, e)| {
        let start = e.base.next_multiple_of(SIZE);
        (e.ty == USABLE && start + SIZE <= e.base + e.length).then_some((k, start))
    });
    let Some((k, start)) = found else {
        return warn!("inject: no usable entry holds an aligned 256 MiB; nothing done");
    };
    if raw.limine_len + 2 > raw.limine.len() {
        return warn!("inject: no room for two more Limine entries; nothing done");
    }
    let e = raw.limine[k];
    let pieces = [
        LimineEntry {
            base: e.base,
            length: start - e.base,
            ty: USABLE,
        },
        LimineEntry {
            base: start,
            length: SIZE,
            ty: ACPI_NVS,
        },
        LimineEntry {
            base: start + SIZE,
            length: e.base + e.length - start - SIZE,
            ty: USABLE,
        },
    ];
    let pieces = pieces.iter().filter(|p| p.length > 0);
    let n = pieces.clone().count();
    raw.limine.copy_within(k + 1..raw.limine_len, k + n);
    for (slot, piece) in raw.limine[k..k + n].iter_mut().zip(pieces) {
        *slot = *piece;
    }
    raw.limine_len += n - 1;
    warn!("inject: the 256 MiB at {start:#x} (usable) are ACPI NVS in Limine's map now");
}

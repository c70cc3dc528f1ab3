//! Tests of the whole layer: whole maps in, whole normalised maps out.

use uefi_raw::table::boot::{MemoryAttribute, MemoryDescriptor, MemoryType};
use x86_64::PhysAddr;

use super::efi::tests::{desc, encode};
use super::limine::*;
use super::*;

/// UC | WC | WT | WB: what OVMF gives ordinary RAM.
const WB: u64 = 0xf;
/// Uncacheable only: what OVMF gives device ranges.
const UC: u64 = 0x1;
/// EFI_MEMORY_RUNTIME.
const RT: u64 = 1 << 63;

fn attr(bits: u64) -> Option<MemoryAttribute> {
    Some(MemoryAttribute::from_bits_retain(bits))
}

fn region(start: u64, end: u64, kind: Kind, attr: Option<MemoryAttribute>) -> Region {
    Region {
        start,
        end,
        kind,
        attr,
    }
}

fn entry(base: u64, length: u64, ty: u64) -> LimineEntry {
    LimineEntry { base, length, ty }
}

/// Builds from descriptors (encoded with stride 48) and Limine entries.
fn build_from(
    efi: Option<&[MemoryDescriptor]>,
    limine: &[LimineEntry],
) -> (Result<Summary, MapError>, Box<MemoryMap>) {
    let bytes = efi.map(|d| encode(d, 48));
    let efi = bytes
        .as_deref()
        .map(|b| EfiMemoryMap::parse(b, 48, 1, 46).unwrap());
    let limine = LimineMap::parse(limine, 46).unwrap();
    let mut scratch = Box::new(Scratch::new());
    let mut out = Box::new(MemoryMap::new());
    let summary = build(efi.as_ref(), &limine, &mut scratch, &mut out);
    (summary, out)
}

/// An OVMF (q35, 512 MiB) map as the firmware leaves it at ExitBootServices,
/// with Limine's allocations already rewritten as conventional memory.
fn ovmf_efi() -> Vec<MemoryDescriptor> {
    use MemoryType as T;
    vec![
        desc(T::BOOT_SERVICES_CODE, 0x0, 0x1, WB),
        desc(T::CONVENTIONAL, 0x1000, 0x9f, WB),
        desc(T::CONVENTIONAL, 0x10_0000, 0x700, WB),
        desc(T::ACPI_NON_VOLATILE, 0x80_0000, 0x8, WB),
        desc(T::CONVENTIONAL, 0x80_8000, 0x8, WB),
        desc(T::ACPI_NON_VOLATILE, 0x81_0000, 0xf0, WB),
        desc(T::BOOT_SERVICES_DATA, 0x90_0000, 0xf00, WB),
        // Holds the kernel and Limine's page tables, rewritten by Limine.
        desc(T::CONVENTIONAL, 0x180_0000, 0x1c800, WB),
        // Limine's own EFI image.
        desc(T::LOADER_CODE, 0x1e00_0000, 0x40, WB),
        desc(T::BOOT_SERVICES_DATA, 0x1e04_0000, 0xfc0, WB),
        desc(T::RUNTIME_SERVICES_DATA, 0x1f00_0000, 0x100, RT | WB),
        desc(T::RUNTIME_SERVICES_CODE, 0x1f10_0000, 0x80, RT | WB),
        desc(T::RESERVED, 0x1f18_0000, 0x80, WB),
        desc(T::ACPI_RECLAIM, 0x1f20_0000, 0x10, WB),
        desc(T::ACPI_NON_VOLATILE, 0x1f21_0000, 0xf0, WB),
        desc(T::BOOT_SERVICES_DATA, 0x1f30_0000, 0xd00, WB),
        // PCIe ECAM.
        desc(T::RESERVED, 0xb000_0000, 0x1_0000, UC),
        // QEMU's reserved pages below the flash.
        desc(T::RESERVED, 0xfeff_c000, 0x4, UC),
        // The pflash: runtime MMIO (variable services write it).
        desc(T::MMIO, 0xffc0_0000, 0x400, RT | UC),
    ]
}

/// Limine's map for the same machine.
fn ovmf_limine() -> Vec<LimineEntry> {
    vec![
        entry(0x0, 0xa_0000, USABLE),
        entry(0x10_0000, 0x70_0000, USABLE),
        entry(0x80_0000, 0x8000, ACPI_NVS),
        entry(0x80_8000, 0x8000, USABLE),
        entry(0x81_0000, 0xf_0000, ACPI_NVS),
        entry(0x90_0000, 0x170_0000, USABLE),
        entry(0x200_0000, 0x20_0000, EXECUTABLE_AND_MODULES),
        entry(0x220_0000, 0x1ae0_0000, USABLE),
        entry(0x1d00_0000, 0x104_0000, BOOTLOADER_RECLAIMABLE),
        entry(0x1e04_0000, 0xfc_0000, USABLE),
        // Limine marks the runtime regions reserved.
        entry(0x1f00_0000, 0x20_0000, RESERVED),
        entry(0x1f20_0000, 0x1_0000, ACPI_RECLAIMABLE),
        entry(0x1f21_0000, 0xf_0000, ACPI_NVS),
        entry(0x1f30_0000, 0xd0_0000, USABLE),
        // 800x600x32: not a whole number of pages.
        entry(0x8000_0000, 0x1d_4c00, FRAMEBUFFER),
        entry(0xb000_0000, 0x1000_0000, RESERVED),
        entry(0xfeff_c000, 0x4000, RESERVED),
        entry(0xffc0_0000, 0x40_0000, RESERVED),
    ]
}

#[test]
fn ovmf_map_merged_with_limine() {
    let (summary, map) = build_from(Some(&ovmf_efi()), &ovmf_limine());
    let expected = [
        // EFI boot-services code at page 0: Limine calls it usable, but it
        // stays out of the allocator until the EFI handoff.
        region(0x0, 0x1000, Kind::BootServices, attr(WB)),
        // Conventional memory below the legacy hole.
        region(0x1000, 0xa_0000, Kind::Usable, attr(WB)),
        // (0xa0000-0x100000 is a hole: neither map lists it.)
        region(0x10_0000, 0x80_0000, Kind::Usable, attr(WB)),
        // OVMF's ACPI NVS islands, with conventional memory between them.
        region(0x80_0000, 0x80_8000, Kind::AcpiNvs, attr(WB)),
        region(0x80_8000, 0x81_0000, Kind::Usable, attr(WB)),
        region(0x81_0000, 0x90_0000, Kind::AcpiNvs, attr(WB)),
        region(0x90_0000, 0x180_0000, Kind::BootServices, attr(WB)),
        // Conventional up to the kernel.
        region(0x180_0000, 0x200_0000, Kind::Usable, attr(WB)),
        // The kernel, from Limine's map, over conventional memory whose
        // attributes it takes.
        region(0x200_0000, 0x220_0000, Kind::Kernel, attr(WB)),
        region(0x220_0000, 0x1d00_0000, Kind::Usable, attr(WB)),
        // Limine's reclaimable memory spans conventional memory and its EFI
        // image (LOADER_CODE): same kind and attributes, so one region.
        region(
            0x1d00_0000,
            0x1e04_0000,
            Kind::BootloaderReclaimable,
            attr(WB),
        ),
        region(0x1e04_0000, 0x1f00_0000, Kind::BootServices, attr(WB)),
        // The runtime regions survive Limine's RESERVED entry, which is not
        // laid over the EFI map.
        region(0x1f00_0000, 0x1f10_0000, Kind::RuntimeData, attr(RT | WB)),
        region(0x1f10_0000, 0x1f18_0000, Kind::RuntimeCode, attr(RT | WB)),
        region(0x1f18_0000, 0x1f20_0000, Kind::Reserved, attr(WB)),
        region(0x1f20_0000, 0x1f21_0000, Kind::AcpiReclaimable, attr(WB)),
        region(0x1f21_0000, 0x1f30_0000, Kind::AcpiNvs, attr(WB)),
        region(0x1f30_0000, 0x2000_0000, Kind::BootServices, attr(WB)),
        // The framebuffer is only in Limine's map: no attributes, and its
        // partial last page rounded up.
        region(0x8000_0000, 0x801d_5000, Kind::Framebuffer, None),
        region(0xb000_0000, 0xc000_0000, Kind::Reserved, attr(UC)),
        region(0xfeff_c000, 0xff00_0000, Kind::Reserved, attr(UC)),
        // The flash: MMIO the runtime services use.
        region(0xffc0_0000, 0x1_0000_0000, Kind::Mmio, attr(RT | UC)),
    ];
    assert_eq!(map.regions(), &expected);
    let summary = summary.unwrap();
    assert_eq!(
        summary,
        Summary {
            efi_entries: 19,
            limine_entries: 3,
            regions: expected.len(),
            efi_sorted: true,
        }
    );
    assert_eq!(
        summary.to_string(),
        "19 EFI descriptors and 3 Limine entries -> 22 regions"
    );

    // The accessors over the same map.
    let runtime: Vec<_> = map.efi_runtime().map(|r| r.kind).collect();
    assert_eq!(runtime, [Kind::RuntimeData, Kind::RuntimeCode, Kind::Mmio]);
    let runs: Vec<_> = map.ram_runs().collect();
    assert_eq!(
        runs,
        [
            0x0..0xa_0000,
            // Broken by the reserved range after the runtime code.
            0x10_0000..0x1f18_0000,
            0x1f20_0000..0x2000_0000
        ]
    );
    assert_eq!(map.ram_end(), 0x2000_0000);
    // RAM in a range: none in the hole and the reserved range between the
    // runs; the first RAM address where a range reaches into a run.
    assert_eq!(map.first_ram_in(0xa_0000, 0x10_0000), None);
    assert_eq!(map.first_ram_in(0x1f18_0000, 0x1f20_0000), None);
    assert_eq!(
        map.first_ram_in(0x1f18_0000, 0x1f20_1000),
        Some(0x1f20_0000)
    );
    assert_eq!(map.first_ram_in(0x9_f000, 0x20_0000), Some(0x9_f000));
    assert_eq!(map.first_ram_in(0x2000_0000, 0x3000_0000), None);
    assert_eq!(map.bytes(Kind::Kernel), 0x20_0000);
    assert_eq!(map.bytes(Kind::BootloaderReclaimable), 0x104_0000);
    assert_eq!(map.bytes(Kind::AcpiNvs), 0x8000 + 0xf_0000 + 0xf_0000);
    assert_eq!(map.bytes(Kind::Bad), 0);
    assert_eq!(
        map.ram_bytes(),
        0xa_0000 + (0x1f18_0000 - 0x10_0000) + (0x2000_0000 - 0x1f20_0000)
    );
    let all: u64 = Kind::ALL.iter().map(|&k| map.bytes(k)).sum();
    assert_eq!(all, map.regions().iter().map(Region::size).sum::<u64>());
    let at = |a: u64| map.region_at(PhysAddr::new(a)).map(|r| r.kind);
    assert_eq!(at(0x0), Some(Kind::BootServices));
    assert_eq!(at(0xfff), Some(Kind::BootServices));
    assert_eq!(at(0x1000), Some(Kind::Usable));
    assert_eq!(at(0xa_0000), None);
    assert_eq!(at(0x201_2345), Some(Kind::Kernel));
    assert_eq!(at(0xffff_ffff), Some(Kind::Mmio));
    assert_eq!(at(0x1_0000_0000), None);
    assert!(map.regions()[21].is_efi_runtime() && !map.regions()[20].is_efi_runtime());
    assert!(!map.regions()[18].is_efi_runtime());
    assert!(
        map.to_string()
            .starts_with("0x000000000000-0x000000001000 BootServices attr 0xf\n")
    );
    assert!(
        map.to_string()
            .contains("0x0000ffc00000-0x000100000000 Mmio attr 0x8000000000000001\n")
    );
}

/// The OVMF map with 6 GiB more RAM above 4 GiB, in the order OVMF gives
/// it: that RAM comes right after the RAM below 4 GiB, before the ECAM and
/// the other reserved ranges it lies above. The UEFI specification allows
/// it; baton used to refuse it ("entry 129 (type 0, 0xb0000000-0xc0000000):
/// starts below entry 128 (starts at 0x100000000)").
fn ovmf_above_4g_efi() -> Vec<MemoryDescriptor> {
    use MemoryType as T;
    let mut descs = ovmf_efi();
    let ecam = descs
        .iter()
        .position(|d| d.phys_start == 0xb000_0000)
        .unwrap();
    let above_4g = [
        desc(T::CONVENTIONAL, 0x1_0000_0000, 0x17_f000, WB),
        // OVMF's allocations at the top of RAM.
        desc(T::BOOT_SERVICES_DATA, 0x2_7f00_0000, 0x1000, WB),
    ];
    descs.splice(ecam..ecam, above_4g);
    descs
}

#[test]
fn unsorted_ovmf_map_builds_like_the_sorted_one() {
    let mut limine = ovmf_limine();
    limine.push(entry(0x1_0000_0000, 0x1_8000_0000, USABLE));
    let efi = ovmf_above_4g_efi();
    let bytes = encode(&efi, 48);
    assert!(!EfiMemoryMap::parse(&bytes, 48, 1, 46).unwrap().is_sorted());
    let (summary, map) = build_from(Some(&efi), &limine);

    let mut sorted = efi.clone();
    sorted.sort_by_key(|d| d.phys_start);
    assert_ne!(sorted, efi);
    let (sorted_summary, sorted_map) = build_from(Some(&sorted), &limine);
    assert_eq!(map.regions(), sorted_map.regions());

    // And that is the 512 MiB map's regions with the new RAM after them.
    let (_, low) = build_from(Some(&ovmf_efi()), &ovmf_limine());
    let mut expected = low.regions().to_vec();
    expected.extend([
        region(0x1_0000_0000, 0x2_7f00_0000, Kind::Usable, attr(WB)),
        region(0x2_7f00_0000, 0x2_8000_0000, Kind::BootServices, attr(WB)),
    ]);
    assert_eq!(map.regions(), &expected);
    assert_eq!(map.ram_end(), 0x2_8000_0000);

    // Only the summary tells them apart.
    let (summary, sorted_summary) = (summary.unwrap(), sorted_summary.unwrap());
    assert_eq!(
        summary,
        Summary {
            efi_entries: 21,
            limine_entries: 3,
            regions: 24,
            efi_sorted: false,
        }
    );
    assert_eq!(
        sorted_summary,
        Summary {
            efi_sorted: true,
            ..summary
        }
    );
    assert_eq!(
        summary.to_string(),
        "21 EFI descriptors and 3 Limine entries -> 24 regions; the EFI map was not sorted"
    );
    assert_eq!(
        sorted_summary.to_string(),
        "21 EFI descriptors and 3 Limine entries -> 24 regions"
    );
}

/// A SeaBIOS (QEMU pc, 512 MiB) boot: Limine's map is all there is.
#[test]
fn seabios_map_alone() {
    let limine = [
        // e820 says usable up to 0x9fc00; Limine rounds it down.
        entry(0x0, 0x9_f000, USABLE),
        entry(0x9_fc00, 0x400, RESERVED),
        entry(0xf_0000, 0x1_0000, RESERVED),
        entry(0x10_0000, 0xf0_0000, USABLE),
        entry(0x100_0000, 0x20_0000, EXECUTABLE_AND_MODULES),
        entry(0x120_0000, 0x1ec0_0000, USABLE),
        entry(0x1fe0_0000, 0x1e_0000, BOOTLOADER_RECLAIMABLE),
        entry(0x1ffe_0000, 0x2_0000, RESERVED),
        entry(0xfd00_0000, 0x30_0000, FRAMEBUFFER),
        entry(0xfeff_c000, 0x4000, RESERVED),
        entry(0xfffc_0000, 0x4_0000, RESERVED),
    ];
    let (summary, map) = build_from(None, &limine);
    let expected = [
        // Conventional memory below the EBDA.
        region(0x0, 0x9_f000, Kind::Usable, None),
        // The EBDA (0x9fc00-0xa0000), rounded outward to its page.
        region(0x9_f000, 0xa_0000, Kind::Reserved, None),
        // The BIOS ROM.
        region(0xf_0000, 0x10_0000, Kind::Reserved, None),
        region(0x10_0000, 0x100_0000, Kind::Usable, None),
        // The kernel.
        region(0x100_0000, 0x120_0000, Kind::Kernel, None),
        region(0x120_0000, 0x1fe0_0000, Kind::Usable, None),
        // Limine's page tables and responses.
        region(0x1fe0_0000, 0x1ffe_0000, Kind::BootloaderReclaimable, None),
        // QEMU's reserved top of RAM (the ACPI tables live there).
        region(0x1ffe_0000, 0x2000_0000, Kind::Reserved, None),
        // The VBE framebuffer.
        region(0xfd00_0000, 0xfd30_0000, Kind::Framebuffer, None),
        region(0xfeff_c000, 0xff00_0000, Kind::Reserved, None),
        region(0xfffc_0000, 0x1_0000_0000, Kind::Reserved, None),
    ];
    assert_eq!(map.regions(), &expected);
    assert_eq!(
        summary.unwrap(),
        Summary {
            efi_entries: 0,
            limine_entries: 11,
            regions: 11,
            efi_sorted: true,
        }
    );
    assert_eq!(map.efi_runtime().count(), 0);
    assert_eq!(map.ram_end(), 0x1ffe_0000);
}

/// Non-usable Limine entries may overlap and have unaligned edges.
#[test]
fn unaligned_overlapping_limine_entries_are_rounded_outward() {
    let limine = [
        entry(0x0, 0x1000_0000, USABLE),
        entry(0x1000_0800, 0x2000, RESERVED),
        entry(0x1000_1000, 0x100, ACPI_NVS),
        entry(0x1000_2f00, 0x1110, BAD_MEMORY),
        entry(0x1000_5000, 0x1, ACPI_RECLAIMABLE),
        entry(0x1000_6000, 0x1000, USABLE),
        entry(0x1000_7010, 0x10, 99),
    ];
    let (_, map) = build_from(None, &limine);
    let expected = [
        region(0x0, 0x1000_0000, Kind::Usable, None),
        // 0x10000800-0x10002800 rounded out; it outranks the ACPI NVS bytes
        // inside it.
        region(0x1000_0000, 0x1000_2000, Kind::Reserved, None),
        // Bad memory (0x10002f00-0x10004010, rounded out) outranks the
        // reserved range's last page.
        region(0x1000_2000, 0x1000_5000, Kind::Bad, None),
        // One byte of ACPI tables takes its whole page.
        region(0x1000_5000, 0x1000_6000, Kind::AcpiReclaimable, None),
        region(0x1000_6000, 0x1000_7000, Kind::Usable, None),
        // An unknown type is reserved.
        region(0x1000_7000, 0x1000_8000, Kind::Reserved, None),
    ];
    assert_eq!(map.regions(), &expected);
}

#[test]
fn rounding() {
    // Usable-class kinds shrink to whole pages; a sub-page one vanishes.
    assert_eq!(round_to_pages(Kind::Usable, 0x1800, 0x2400), None);
    assert_eq!(round_to_pages(Kind::Usable, 0x1000, 0x1fff), None);
    assert_eq!(
        round_to_pages(Kind::Usable, 0x1800, 0x3400),
        Some((0x2000, 0x3000))
    );
    assert_eq!(
        round_to_pages(Kind::BootServices, 0x1001, 0x5000),
        Some((0x2000, 0x5000))
    );
    assert_eq!(
        round_to_pages(Kind::BootloaderReclaimable, 0x1000, 0x2000),
        Some((0x1000, 0x2000))
    );
    // Every other kind grows to whole pages.
    assert_eq!(
        round_to_pages(Kind::Reserved, 0x1800, 0x2400),
        Some((0x1000, 0x3000))
    );
    assert_eq!(
        round_to_pages(Kind::Kernel, 0x1000, 0x1001),
        Some((0x1000, 0x2000))
    );
    assert_eq!(
        round_to_pages(Kind::Mmio, 0x1000, 0x2000),
        Some((0x1000, 0x2000))
    );
}

#[test]
fn touching_descriptors_with_equal_attributes_merge() {
    use MemoryType as T;
    let efi = [
        desc(T::CONVENTIONAL, 0x0, 0x10, WB),
        desc(T::CONVENTIONAL, 0x1_0000, 0x10, WB),
        // Same kind, other attributes: a region of its own.
        desc(T::CONVENTIONAL, 0x2_0000, 0x10, WB | 0x4000),
        // Boot-services code and data: one kind.
        desc(T::BOOT_SERVICES_CODE, 0x3_0000, 0x10, WB),
        desc(T::BOOT_SERVICES_DATA, 0x4_0000, 0x10, WB),
        // After a hole: no merge across it.
        desc(T::BOOT_SERVICES_DATA, 0x6_0000, 0x10, WB),
    ];
    let (_, map) = build_from(Some(&efi), &[]);
    let expected = [
        // Two conventional descriptors, one region.
        region(0x0, 0x2_0000, Kind::Usable, attr(WB)),
        region(0x2_0000, 0x3_0000, Kind::Usable, attr(WB | 0x4000)),
        region(0x3_0000, 0x5_0000, Kind::BootServices, attr(WB)),
        region(0x6_0000, 0x7_0000, Kind::BootServices, attr(WB)),
    ];
    assert_eq!(map.regions(), &expected);
}

#[test]
fn uefi_boot_ignores_limine_usable_reserved_acpi_and_bad() {
    use MemoryType as T;
    let efi = [
        desc(T::CONVENTIONAL, 0x0, 0x10, WB),
        desc(T::RUNTIME_SERVICES_DATA, 0x1_0000, 0x10, RT | WB),
    ];
    let limine = [
        entry(0x0, 0x1000, USABLE),
        entry(0x1000, 0x1000, RESERVED),
        entry(0x2000, 0x1000, ACPI_RECLAIMABLE),
        entry(0x3000, 0x1000, ACPI_NVS),
        entry(0x4000, 0x1000, BAD_MEMORY),
        entry(0x1_0000, 0x1_0000, RESERVED_MAPPED),
        // Outside every EFI descriptor: still ignored.
        entry(0x10_0000, 0x1000, RESERVED),
    ];
    let (summary, map) = build_from(Some(&efi), &limine);
    let expected = [
        // Only the EFI map speaks here.
        region(0x0, 0x1_0000, Kind::Usable, attr(WB)),
        region(0x1_0000, 0x2_0000, Kind::RuntimeData, attr(RT | WB)),
    ];
    assert_eq!(map.regions(), &expected);
    assert_eq!(summary.unwrap().limine_entries, 0);
}

#[test]
fn overlay_takes_the_attributes_of_each_descriptor_it_covers() {
    use MemoryType as T;
    let efi = [
        desc(T::CONVENTIONAL, 0x0, 0x2, WB),
        desc(T::CONVENTIONAL, 0x2000, 0x2, WB | 0x4000),
        // An overlay can lose: runtime code outranks Limine's claim.
        desc(T::RUNTIME_SERVICES_CODE, 0x4000, 0x1, RT | WB),
    ];
    let limine = [entry(0x1000, 0x5000, BOOTLOADER_RECLAIMABLE)];
    let (_, map) = build_from(Some(&efi), &limine);
    let expected = [
        region(0x0, 0x1000, Kind::Usable, attr(WB)),
        // One Limine entry, two regions: the attributes change underneath.
        region(0x1000, 0x2000, Kind::BootloaderReclaimable, attr(WB)),
        region(
            0x2000,
            0x4000,
            Kind::BootloaderReclaimable,
            attr(WB | 0x4000),
        ),
        region(0x4000, 0x5000, Kind::RuntimeCode, attr(RT | WB)),
        // Past the EFI map: Limine's entry alone, without attributes.
        region(0x5000, 0x6000, Kind::BootloaderReclaimable, None),
    ];
    assert_eq!(map.regions(), &expected);
}

/// Limine 9.3 and later call the firmware's boot-services memory
/// bootloader-reclaimable: that claim outranks the EFI type, so the kernel
/// frees the memory with Limine's own (once every CPU has left Limine's
/// code, which is after SetVirtualAddressMap); boot-services memory Limine
/// calls usable (8.x) stays boot services.
#[test]
fn limine_reclaimable_claim_outranks_boot_services() {
    use MemoryType as T;
    let efi = [
        desc(T::BOOT_SERVICES_DATA, 0x0, 0x10, WB),
        desc(T::BOOT_SERVICES_CODE, 0x1_0000, 0x10, WB),
    ];
    let limine = [
        entry(0x0, 0x1_0000, USABLE),
        entry(0x1_0000, 0x1_0000, BOOTLOADER_RECLAIMABLE),
    ];
    let (_, map) = build_from(Some(&efi), &limine);
    let expected = [
        region(0x0, 0x1_0000, Kind::BootServices, attr(WB)),
        region(0x1_0000, 0x2_0000, Kind::BootloaderReclaimable, attr(WB)),
    ];
    assert_eq!(map.regions(), &expected);
}

/// Free memory with EFI_MEMORY_SP is soft reserved: not RAM for the
/// physmap, never allocatable, not in the EFI window; what Limine put in it
/// (the kernel, its own reclaimable memory) keeps its own kind, so that it
/// stays reachable.
#[test]
fn specific_purpose_memory_is_soft_reserved() {
    use MemoryType as T;
    const SP: u64 = 0x4_0000;
    let efi = [
        desc(T::CONVENTIONAL, 0x0, 0x10, WB),
        desc(T::CONVENTIONAL, 0x10000, 0x10, WB | SP),
        desc(T::BOOT_SERVICES_DATA, 0x20000, 0x10, WB | SP),
        // The hint means nothing on other types.
        desc(T::ACPI_RECLAIM, 0x30000, 0x10, WB | SP),
    ];
    let limine = [
        entry(0x14000, 0x1000, BOOTLOADER_RECLAIMABLE),
        entry(0x18000, 0x2000, EXECUTABLE_AND_MODULES),
    ];
    let (_, map) = build_from(Some(&efi), &limine);
    let expected = [
        region(0x0, 0x10000, Kind::Usable, attr(WB)),
        region(0x10000, 0x14000, Kind::SoftReserved, attr(WB | SP)),
        region(0x14000, 0x15000, Kind::BootloaderReclaimable, attr(WB | SP)),
        region(0x15000, 0x18000, Kind::SoftReserved, attr(WB | SP)),
        region(0x18000, 0x1a000, Kind::Kernel, attr(WB | SP)),
        region(0x1a000, 0x30000, Kind::SoftReserved, attr(WB | SP)),
        region(0x30000, 0x40000, Kind::AcpiReclaimable, attr(WB | SP)),
    ];
    assert_eq!(map.regions(), &expected);
    assert_eq!(map.bytes(Kind::SoftReserved), 0x1d000);
    // Only the RAM around it is in the physmap, Limine's pages included.
    let runs: Vec<_> = map.ram_runs().collect();
    assert_eq!(
        runs,
        [
            0x0..0x10000,
            0x14000..0x15000,
            0x18000..0x1a000,
            0x30000..0x40000
        ]
    );
    assert_eq!(map.efi_runtime().count(), 0);
}

/// Boot-services memory the firmware marked runtime stays with the
/// runtime: it is never released with the rest of boot-services memory.
#[test]
fn runtime_boot_services_memory_is_kept() {
    use MemoryType as T;
    let efi = [
        desc(T::BOOT_SERVICES_DATA, 0x0, 0x10, WB),
        desc(T::BOOT_SERVICES_DATA, 0x10000, 0x10, WB | RT),
        desc(T::BOOT_SERVICES_CODE, 0x20000, 0x10, WB | RT),
    ];
    let (_, map) = build_from(Some(&efi), &[]);
    let expected = [
        region(0x0, 0x10000, Kind::BootServices, attr(WB)),
        region(0x10000, 0x20000, Kind::RuntimeData, attr(WB | RT)),
        region(0x20000, 0x30000, Kind::RuntimeCode, attr(WB | RT)),
    ];
    assert_eq!(map.regions(), &expected);
    assert_eq!(map.efi_runtime().count(), 2);
}

/// Where the policy says [`InEfiWindow::Never`], the runtime attribute is not
/// honoured; elsewhere it decides, whatever the kind.
#[test]
fn the_runtime_attribute_decides_where_the_policy_lets_it() {
    for kind in Kind::ALL {
        let with = region(0, 0x1000, kind, attr(RT | UC));
        let without = region(0, 0x1000, kind, attr(UC));
        let bios = region(0, 0x1000, kind, None);
        let honoured = kind.policy().runtime == InEfiWindow::IfAttribute;
        assert_eq!(with.is_efi_runtime(), honoured, "{kind:?}");
        assert!(!without.is_efi_runtime() && !bios.is_efi_runtime());
    }
}

/// Touching descriptors in any order are not an overlap.
#[test]
fn unsorted_touching_descriptors_build() {
    use MemoryType as T;
    let efi = [
        desc(T::CONVENTIONAL, 0x2000, 1, WB),
        desc(T::CONVENTIONAL, 0x1000, 1, WB),
        desc(T::CONVENTIONAL, 0x3000, 1, WB),
        desc(T::BOOT_SERVICES_DATA, 0x0, 1, WB),
    ];
    let (summary, map) = build_from(Some(&efi), &[]);
    let summary = summary.unwrap();
    assert_eq!((summary.regions, summary.efi_sorted), (2, false));
    assert_eq!(
        summary.to_string(),
        "4 EFI descriptors and 0 Limine entries -> 2 regions; the EFI map was not sorted"
    );
    let expected = [
        region(0x0, 0x1000, Kind::BootServices, attr(WB)),
        region(0x1000, 0x4000, Kind::Usable, attr(WB)),
    ];
    assert_eq!(map.regions(), &expected);
}

/// Builds `descs` into a map that already holds a region, expecting an
/// error: returns it, after checking that nothing is left of the map.
fn build_err(descs: &[MemoryDescriptor], limine: &[LimineEntry]) -> MapError {
    let bytes = encode(descs, 48);
    let efi = EfiMemoryMap::parse(&bytes, 48, 1, 46).unwrap();
    assert!(!efi.is_sorted(), "the parser should have caught it");
    let mut scratch = Box::new(Scratch::new());
    let mut out = Box::new(MemoryMap::new());
    let old = [entry(0x0, 0x1000, USABLE)];
    build(
        None,
        &LimineMap::parse(&old, 46).unwrap(),
        &mut scratch,
        &mut out,
    )
    .unwrap();
    assert_eq!(out.regions().len(), 1);
    let limine = LimineMap::parse(limine, 46).unwrap();
    let err = build(Some(&efi), &limine, &mut scratch, &mut out).unwrap_err();
    assert!(out.regions().is_empty(), "no half-built map");
    err
}

/// In an unsorted map overlapping descriptors need not be neighbours, so
/// the parser cannot see them: build refuses them instead, with the error
/// the parser gives for a sorted map.
#[test]
fn unsorted_overlapping_descriptors_are_refused_by_build() {
    use MemoryType as T;
    let efi = [
        desc(T::CONVENTIONAL, 0x10_0000, 0x100, WB),
        // Out of order: from here on the parser cannot tell.
        desc(T::BOOT_SERVICES_CODE, 0x0, 0x10, WB),
        desc(T::BOOT_SERVICES_DATA, 0x30_0000, 0x10, WB),
        // Inside entry 0, two entries after it.
        desc(T::LOADER_DATA, 0x18_0000, 0x10, WB),
    ];
    let err = build_err(&efi, &ovmf_limine());
    assert_eq!(
        err,
        MapError::Overlap {
            entry: EntryInfo {
                map: Source::Efi,
                index: 3,
                ty: 2,
                start: 0x18_0000,
                end: 0x19_0000,
            },
            previous: 0,
            previous_end: 0x20_0000,
        }
    );
    assert_eq!(
        err.to_string(),
        "EFI memory map entry 3 (type 2, 0x180000-0x190000): overlaps entry 0 (ends at 0x200000)"
    );

    // The same descriptors sorted: the parser says the same of them.
    let mut sorted = efi;
    sorted.sort_by_key(|d| d.phys_start);
    assert_eq!(
        EfiMemoryMap::parse(&encode(&sorted, 48), 48, 1, 46)
            .unwrap_err()
            .to_string(),
        "EFI memory map entry 2 (type 2, 0x180000-0x190000): overlaps entry 1 (ends at 0x200000)"
    );

    // The error names the later entry in map order, even when it starts
    // first.
    let efi = [
        desc(T::CONVENTIONAL, 0x10_0000, 0x100, WB),
        desc(T::BOOT_SERVICES_CODE, 0x0, 0x10, WB),
        desc(T::LOADER_DATA, 0x8_0000, 0x100, WB),
    ];
    assert_eq!(
        build_err(&efi, &[]).to_string(),
        "EFI memory map entry 2 (type 2, 0x80000-0x180000): overlaps entry 0 (ends at 0x200000)"
    );

    // Many descriptors starting together, among many events: the error
    // names the first two in map order, whatever the sort makes of them.
    let mut efi = vec![desc(T::CONVENTIONAL, 0x1000_0000, 0x100, WB)];
    efi.extend((1..200).map(|i| desc(T::BOOT_SERVICES_DATA, 0x10_0000, i, WB)));
    let limine: Vec<_> = (0..200)
        .map(|i| entry(0x10_0000, 0x1000 * (200 - i), EXECUTABLE_AND_MODULES))
        .collect();
    assert_eq!(
        build_err(&efi, &limine).to_string(),
        "EFI memory map entry 2 (type 4, 0x100000-0x102000): overlaps entry 1 (ends at 0x101000)"
    );
}

#[test]
fn an_overlap_is_reported_even_where_the_output_fills_up_first() {
    use MemoryType as T;
    // The map that fills the output at descriptor 2046 below, but with the
    // last descriptor moved to the front and reaching back into 2046.
    let mut efi: Vec<_> = (0..MAX_EFI_ENTRIES as u64)
        .map(|i| desc(T::CONVENTIONAL, i * 0x4000, 4, WB | (i % 2) << 14))
        .collect();
    let mut last = efi.pop().unwrap();
    last.phys_start -= 0x1000;
    efi.insert(0, last);
    let limine = [entry(0x1000, 0x1000, BOOTLOADER_RECLAIMABLE)];
    assert_eq!(
        build_err(&efi, &limine).to_string(),
        "EFI memory map entry 2047 (type 7, 0x1ff8000-0x1ffc000): overlaps entry 0 \
         (ends at 0x1fff000)"
    );
}

/// The kernel keeps both in statics: `new` must stay `const`.
static EMPTY_MAP: MemoryMap = MemoryMap::new();
static SCRATCH: Scratch = Scratch::new();

#[test]
fn statics_start_empty() {
    assert!(EMPTY_MAP.regions().is_empty());
    assert_eq!(format!("{EMPTY_MAP:?}"), "[]");
    assert!(format!("{SCRATCH:?}").starts_with("Scratch { capacity: 8192"));
}

#[test]
fn empty_inputs_give_an_empty_map() {
    let (summary, map) = build_from(None, &[]);
    assert_eq!(summary.unwrap().regions, 0);
    assert!(map.regions().is_empty());
    assert_eq!((map.ram_bytes(), map.ram_end()), (0, 0));
    assert_eq!(map.ram_runs().next(), None);
    assert_eq!(map.region_at(PhysAddr::new(0)), None);
}

#[test]
fn output_full_is_an_error_not_a_truncation() {
    use MemoryType as T;
    // 2048 conventional descriptors whose attributes alternate: exactly
    // 2048 regions, which fit.
    let mut efi: Vec<_> = (0..MAX_EFI_ENTRIES as u64)
        .map(|i| desc(T::CONVENTIONAL, i * 0x4000, 4, WB | (i % 2) << 14))
        .collect();
    let (summary, map) = build_from(Some(&efi), &[]);
    assert_eq!(summary.unwrap().regions, MAX_REGIONS);
    assert_eq!(map.regions().len(), MAX_REGIONS);

    // Limine's page tables in the middle of the first one split it in three:
    // region 2048 (from descriptor 2046) no longer fits.
    let limine = [entry(0x1000, 0x1000, BOOTLOADER_RECLAIMABLE)];
    let (summary, map) = build_from(Some(&efi), &limine);
    let err = summary.unwrap_err();
    assert_eq!(err, MapError::OutputFull { at: 2046 * 0x4000 });
    assert_eq!(
        err.to_string(),
        "normalised memory map is full (2048 regions) at 0x1ff8000"
    );
    assert!(map.regions().is_empty(), "no half-built map");

    // Equal attributes merge everything into one region instead.
    for d in &mut efi {
        d.att = MemoryAttribute::from_bits_retain(WB);
    }
    let (summary, _) = build_from(Some(&efi), &[]);
    assert_eq!(summary.unwrap().regions, 1);
}

#[test]
fn each_build_starts_afresh() {
    let mut scratch = Box::new(Scratch::new());
    let mut out = Box::new(MemoryMap::new());
    let ok = [entry(0x0, 0x1000, USABLE)];
    build(
        None,
        &LimineMap::parse(&ok, 46).unwrap(),
        &mut scratch,
        &mut out,
    )
    .unwrap();
    assert_eq!(out.regions().len(), 1);
    // A second build starts from scratch.
    let other = [entry(0x5000, 0x1000, RESERVED)];
    build(
        None,
        &LimineMap::parse(&other, 46).unwrap(),
        &mut scratch,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        out.regions(),
        &[region(0x5000, 0x6000, Kind::Reserved, None)]
    );
}

#[test]
fn phys_limits() {
    assert_eq!(phys_limit(46), Ok(1 << 46));
    assert_eq!(phys_limit(52), Ok(1 << 52));
    assert_eq!(phys_limit(32), Ok(1 << 32));
    assert_eq!(phys_limit(31), Err(MapError::MaxPhysBits(31)));
    assert_eq!(phys_limit(53), Err(MapError::MaxPhysBits(53)));
    assert_eq!(phys_limit(64), Err(MapError::MaxPhysBits(64)));
    assert_eq!(
        LimineMap::parse(&[], 0).unwrap_err().to_string(),
        "MAXPHYADDR of 0 bits is outside 32..=52"
    );
}

mod props;

//! [`verify`] holds physmap leaves to the memory map itself: a plan that
//! stopped cutting RAM where its EFI attributes change cannot vouch for
//! itself. Each test corrupts a correct plan the way a broken
//! [`Plan::make`] would, builds the tables, and expects a typed error.

use uefi_raw::table::boot::{MemoryAttribute, MemoryDescriptor, MemoryType};
use x86_64::PhysAddr;

use super::*;
use crate::memmap::{self, EfiMemoryMap, LimineEntry, LimineMap, MemoryMap, Scratch, limine};
use crate::memtype::{MtrrRegisters, Mtrrs, Pat, VariableRangeMsrs};
use crate::paging::{Builder, PageSize, Walker};
use crate::sim::Sim;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const KERNEL_PHYS: u64 = 0x20_0000;
const PHYS_BITS: u8 = 48;
// MTRRCAP.WC, DEF_TYPE.E, PHYSMASK.V (Intel SDM vol. 3, 12.11).
const CAP_WC: u64 = 1 << 10;
const DEF_E: u64 = 1 << 11;
const MASK_VALID: u64 = 1 << 11;

const WB_ATTR: MemoryAttribute = MemoryAttribute::UNCACHEABLE
    .union(MemoryAttribute::WRITE_COMBINE)
    .union(MemoryAttribute::WRITE_THROUGH)
    .union(MemoryAttribute::WRITE_BACK);

/// MTRRs on, default write-back, no fixed ranges, the given variable
/// ranges `(base, size, type)`.
fn mtrrs(ranges: &[(u64, u64, MemType)]) -> Mtrrs {
    let mut regs = MtrrRegisters::new(
        8 | CAP_WC,
        DEF_E | u64::from(MemType::Wb.encoding()),
        PHYS_BITS,
    );
    let top = 1u64 << PHYS_BITS;
    for (n, &(base, size, ty)) in ranges.iter().enumerate() {
        regs.variable[n] = VariableRangeMsrs {
            base: base | u64::from(ty.encoding()),
            mask: ((top - 1) & !(size - 1)) | MASK_VALID,
        };
    }
    Mtrrs::new(&regs).unwrap()
}

/// A UEFI boot's map: conventional memory `(start, bytes, attributes)`
/// and the kernel in Limine's map.
fn efi_map(descs: &[(u64, u64, MemoryAttribute)]) -> Box<MemoryMap> {
    const DESC_SIZE: usize = 48;
    let mut bytes = vec![0u8; descs.len() * DESC_SIZE];
    for (chunk, &(start, len, attr)) in bytes.chunks_mut(DESC_SIZE).zip(descs) {
        let d = MemoryDescriptor {
            ty: MemoryType::CONVENTIONAL,
            phys_start: start,
            virt_start: 0,
            page_count: len / PAGE_SIZE,
            att: attr,
        };
        chunk[0..4].copy_from_slice(&d.ty.0.to_le_bytes());
        chunk[8..16].copy_from_slice(&d.phys_start.to_le_bytes());
        chunk[24..32].copy_from_slice(&d.page_count.to_le_bytes());
        chunk[32..40].copy_from_slice(&d.att.bits().to_le_bytes());
    }
    let efi = EfiMemoryMap::parse(&bytes, DESC_SIZE, 1, PHYS_BITS).unwrap();
    let entries = [LimineEntry {
        base: KERNEL_PHYS,
        length: MIB,
        ty: limine::EXECUTABLE_AND_MODULES,
    }];
    let limine = LimineMap::parse(&entries, PHYS_BITS).unwrap();
    let mut map = Box::new(MemoryMap::new());
    let mut scratch = Box::new(Scratch::new());
    memmap::build(Some(&efi), &limine, &mut scratch, &mut map).unwrap();
    map
}

/// Write-back RAM up to 1 GiB, 1 MiB the firmware allows only uncached at
/// 1 GiB, write-back RAM again up to 2 GiB.
fn map_with_uc_hole() -> Box<MemoryMap> {
    efi_map(&[
        (0x10_0000, GIB - 0x10_0000, WB_ATTR),
        (GIB, MIB, MemoryAttribute::UNCACHEABLE),
        (GIB + MIB, GIB - MIB, WB_ATTR),
    ])
}

fn inputs<'a>(
    map: &'a MemoryMap,
    mtrrs: &'a Mtrrs,
    cpu: CpuCaps,
    kernel: &'a KernelImage,
) -> Inputs<'a> {
    Inputs {
        map,
        layout: Layout::fixed(Levels::Four),
        mtrrs,
        pat: &Pat::BATON,
        cpu,
        kernel,
        framebuffer: None,
    }
}

fn cpu(gb_pages: bool) -> CpuCaps {
    CpuCaps {
        gb_pages,
        nx: true,
        global: true,
    }
}

/// Builds `plan` into simulated memory and verifies the tables.
fn build_and_verify(plan: &Plan, inputs: &Inputs<'_>) -> Result<Verified, VerifyError> {
    let base = 1u64 << 50;
    let mut sim = Sim::new(PhysAddr::new(base), PhysAddr::new(base + (1 << 40)));
    let mut builder = Builder::new(&mut sim.window, &mut sim.frames, Levels::Four).unwrap();
    for m in plan.mappings() {
        builder.map(m).unwrap();
    }
    let root = builder.root();
    let walker = Walker::new(&sim.window, root, Levels::Four);
    verify(plan, &walker, inputs)
}

/// The physmap mappings of `plan` that cover `phys`, by index.
fn physmap_index(plan: &Plan, phys: u64) -> usize {
    plan.mappings()
        .iter()
        .zip(plan.meta())
        .position(|(m, meta)| {
            meta.purpose == Purpose::Physmap
                && (m.phys.as_u64()..m.phys.as_u64() + m.len).contains(&phys)
        })
        .expect("a physmap mapping")
}

/// Merges mappings `first..=last` into `first`, as a make that did not
/// cut them would have planned them.
fn merge(plan: &mut Plan, first: usize, last: usize) {
    let end = plan.mappings[last].phys.as_u64() + plan.mappings[last].len;
    plan.mappings[first].len = end - plan.mappings[first].phys.as_u64();
    let removed = last - first;
    plan.mappings.copy_within(last + 1..plan.len, first + 1);
    plan.meta.copy_within(last + 1..plan.len, first + 1);
    plan.len -= removed;
}

#[test]
fn the_correct_plan_verifies() {
    let (map, mtrrs, kernel) = (
        map_with_uc_hole(),
        mtrrs(&[]),
        KernelImage::sample(KERNEL_PHYS),
    );
    for gb in [false, true] {
        let inputs = inputs(&map, &mtrrs, cpu(gb), &kernel);
        let mut plan = Box::new(Plan::new());
        plan.make(&inputs).unwrap();
        assert_eq!(plan.cost.attr_splits, 2);
        build_and_verify(&plan, &inputs).unwrap();
    }
}

#[test]
fn a_leaf_over_two_attribute_types_fails() {
    // A make that stopped cutting at EFI-attribute changes: the uncached
    // MiB and the RAM around it become one write-back mapping, whose
    // leaf at 1 GiB (2 MiB, or 1 GiB with pdpe1gb) covers both types. The
    // plan's own meta agrees with the leaf; only the map can tell.
    let (map, mtrrs, kernel) = (
        map_with_uc_hole(),
        mtrrs(&[]),
        KernelImage::sample(KERNEL_PHYS),
    );
    for (gb, size) in [(false, PageSize::Size2M), (true, PageSize::Size1G)] {
        let inputs = inputs(&map, &mtrrs, cpu(gb), &kernel);
        let mut plan = Box::new(Plan::new());
        plan.make(&inputs).unwrap();
        let (first, last) = (
            physmap_index(&plan, 0x10_0000),
            physmap_index(&plan, GIB + MIB),
        );
        assert_eq!(last, first + 2, "three physmap segments");
        merge(&mut plan, first, last);
        let pob = inputs.layout.page_offset_base();
        assert_eq!(
            build_and_verify(&plan, &inputs),
            Err(VerifyError::AttrNotUniform {
                virt: pob + GIB,
                size,
                at: GIB + MIB,
            }),
            "1G pages: {gb}"
        );
    }
}

#[test]
fn a_leaf_of_another_type_than_the_map_fails() {
    // A make that took the uncached MiB for write-back: its mapping and
    // meta agree with each other, not with the map.
    let (map, mtrrs, kernel) = (
        map_with_uc_hole(),
        mtrrs(&[]),
        KernelImage::sample(KERNEL_PHYS),
    );
    let inputs = inputs(&map, &mtrrs, cpu(false), &kernel);
    let mut plan = Box::new(Plan::new());
    plan.make(&inputs).unwrap();
    let (wb, uc) = (physmap_index(&plan, 0x10_0000), physmap_index(&plan, GIB));
    assert_eq!(plan.meta()[uc].pat_type, MemType::Uc);
    plan.mappings[uc].flags = plan.mappings[wb].flags;
    plan.meta[uc] = plan.meta[wb];
    let err = build_and_verify(&plan, &inputs).unwrap_err();
    assert_eq!(
        err,
        VerifyError::TypeMismatch {
            virt: inputs.layout.page_offset_base() + GIB,
            size: PageSize::Size4K,
            leaf: MemType::Wb,
            map: MemType::Uc,
        }
    );
    let text = std::format!("{err}");
    assert!(
        text.contains("selects WB") && text.contains("calls for UC"),
        "{text}"
    );
}

#[test]
fn a_leaf_over_an_mtrr_change_still_fails() {
    // One attribute type, but an uncached MTRR over the top half of the
    // second GiB: a plan that ignored it would map that GiB with one 1 GiB
    // page, which the MTRR check refuses whatever the plan's meta says.
    let map = efi_map(&[(0x10_0000, 2 * GIB - 0x10_0000, WB_ATTR)]);
    let (mtrrs, kernel) = (
        mtrrs(&[(GIB + GIB / 2, GIB / 2, MemType::Uc)]),
        KernelImage::sample(KERNEL_PHYS),
    );
    let inputs = inputs(&map, &mtrrs, cpu(true), &kernel);
    let mut plan = Box::new(Plan::new());
    plan.make(&inputs).unwrap();
    assert_eq!(plan.cost.mtrr_splits, 1);
    let (first, last) = (
        physmap_index(&plan, 0x10_0000),
        physmap_index(&plan, 2 * GIB - 1),
    );
    merge(&mut plan, first, last);
    assert_eq!(
        build_and_verify(&plan, &inputs),
        Err(VerifyError::NotUniform {
            virt: inputs.layout.page_offset_base() + GIB,
            size: PageSize::Size1G,
        })
    );
}

#[test]
fn a_leaf_over_a_hole_fails() {
    // A make that mapped across a hole in RAM: one mapping over the RAM
    // on both sides, whose leaf at 1 GiB (2 MiB, or 1 GiB with pdpe1gb)
    // covers 2 MiB that are no RAM at all.
    let map = efi_map(&[
        (0x10_0000, GIB - 0x10_0000, WB_ATTR),
        (GIB + 2 * MIB, GIB - 2 * MIB, WB_ATTR),
    ]);
    let (mtrrs, kernel) = (mtrrs(&[]), KernelImage::sample(KERNEL_PHYS));
    for (gb, size) in [(false, PageSize::Size2M), (true, PageSize::Size1G)] {
        let inputs = inputs(&map, &mtrrs, cpu(gb), &kernel);
        let mut plan = Box::new(Plan::new());
        plan.make(&inputs).unwrap();
        build_and_verify(&plan, &inputs).unwrap();
        let (first, last) = (
            physmap_index(&plan, 0x10_0000),
            physmap_index(&plan, GIB + 2 * MIB),
        );
        assert_eq!(last, first + 1, "two physmap segments");
        merge(&mut plan, first, last);
        assert_eq!(
            build_and_verify(&plan, &inputs),
            Err(VerifyError::NotUniform {
                virt: inputs.layout.page_offset_base() + GIB,
                size,
            })
        );
    }
}

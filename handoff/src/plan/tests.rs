//! The plan, built into simulated memory and walked back: every RAM byte
//! sits at `page_offset_base` plus its physical address, nothing else is in
//! the physmap, no large page covers a hole or a change of memory type, W^X
//! holds, and the tables take exactly the minimum number of frames.

use proptest::prelude::*;
use uefi_raw::table::boot::{MemoryAttribute, MemoryDescriptor, MemoryType};
use x86_64::PhysAddr;
use x86_64::structures::paging::{PageTableFlags, PhysFrame};

use super::*;
use crate::layout::Layout;
use crate::memmap::{self, EfiMemoryMap, LimineEntry, LimineMap, MemoryMap, Scratch, limine};
use crate::mtrr::{MtrrRegisters, Mtrrs, Pat, VariableRangeMsrs};
use crate::paging::{Builder, PageSize, Walker};
use crate::sim::Sim;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;
const KERNEL_VIRT: u64 = 0xffff_ffff_8000_0000;

// MTRR register bits (Intel SDM vol. 3, 12.11): MTRRCAP.FIX, MTRRCAP.WC,
// DEF_TYPE.E and .FE, PHYSMASK.V.
const CAP_FIX: u64 = 1 << 8;
const CAP_WC: u64 = 1 << 10;
const DEF_E: u64 = 1 << 11;
const DEF_FE: u64 = 1 << 10;
const MASK_VALID: u64 = 1 << 11;
const PHYS_BITS: u8 = 48;

fn kernel_at(phys: u64) -> KernelImage {
    let section = |name, start: u64, end: u64, perm| KernelSection {
        name,
        start: KERNEL_VIRT + start,
        end: KERNEL_VIRT + end,
        perm,
    };
    KernelImage {
        virt_base: KERNEL_VIRT,
        phys_base: PhysAddr::new(phys),
        sections: [
            section("text", 0, 0x2_0000, Perm::ReadExecute),
            section("rodata", 0x2_0000, 0x2_8000, Perm::ReadOnly),
            section("data", 0x2_8000, 0x3_0000, Perm::ReadWrite),
            // 0x30000: the boot stack's guard page, unmapped.
            section("bss", 0x3_1000, 0x10_0000, Perm::ReadWrite),
        ],
    }
}

const CPU_1G: CpuCaps = CpuCaps {
    gb_pages: true,
    nx: true,
    global: true,
};
const CPU_2M: CpuCaps = CpuCaps {
    gb_pages: false,
    nx: true,
    global: true,
};

fn fill(ty: MemType) -> u64 {
    u64::from_le_bytes([ty.encoding(); 8])
}

/// MTRRs enabled with default `default`, fixed ranges WB below 640 KiB and
/// UC above, and the given variable ranges `(base, size, type)`.
fn mtrrs(default: MemType, ranges: &[(u64, u64, MemType)]) -> Mtrrs {
    let mut regs = MtrrRegisters::new(
        8 | CAP_FIX | CAP_WC,
        DEF_E | DEF_FE | default.encoding() as u64,
        PHYS_BITS,
    );
    regs.fixed = [
        fill(MemType::Wb),
        fill(MemType::Wb),
        fill(MemType::Uc),
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    let top = 1u64 << PHYS_BITS;
    for (n, &(base, size, ty)) in ranges.iter().enumerate() {
        regs.variable[n] = VariableRangeMsrs {
            base: base | ty.encoding() as u64,
            mask: ((top - 1) & !(size - 1)) | MASK_VALID,
        };
    }
    Mtrrs::new(&regs).unwrap()
}

fn entry(base: u64, length: u64, ty: u64) -> LimineEntry {
    LimineEntry { base, length, ty }
}

/// A BIOS boot's map: Limine entries only.
fn bios_map(entries: &[LimineEntry]) -> Box<MemoryMap> {
    let limine = LimineMap::parse(entries, PHYS_BITS).unwrap();
    let mut map = Box::new(MemoryMap::new());
    let mut scratch = Box::new(Scratch::new());
    memmap::build(None, &limine, &mut scratch, &mut map).unwrap();
    map
}

/// A UEFI boot's map from descriptors `(type, start, pages, attributes)`.
fn efi_map(
    descs: &[(MemoryType, u64, u64, MemoryAttribute)],
    limine: &[LimineEntry],
) -> Box<MemoryMap> {
    const DESC_SIZE: usize = 48;
    let mut bytes = vec![0u8; descs.len() * DESC_SIZE];
    for (chunk, &(ty, start, pages, attr)) in bytes.chunks_mut(DESC_SIZE).zip(descs) {
        let d = MemoryDescriptor {
            ty,
            phys_start: start,
            virt_start: 0,
            page_count: pages,
            att: attr,
        };
        chunk[0..4].copy_from_slice(&d.ty.0.to_le_bytes());
        chunk[8..16].copy_from_slice(&d.phys_start.to_le_bytes());
        chunk[16..24].copy_from_slice(&d.virt_start.to_le_bytes());
        chunk[24..32].copy_from_slice(&d.page_count.to_le_bytes());
        chunk[32..40].copy_from_slice(&d.att.bits().to_le_bytes());
    }
    let efi = EfiMemoryMap::parse(&bytes, DESC_SIZE, 1, PHYS_BITS).unwrap();
    let limine = LimineMap::parse(limine, PHYS_BITS).unwrap();
    let mut map = Box::new(MemoryMap::new());
    let mut scratch = Box::new(Scratch::new());
    memmap::build(Some(&efi), &limine, &mut scratch, &mut map).unwrap();
    map
}

/// A plan built into simulated memory and checked in every way the module
/// promises. Returns the plan for further checks.
fn plan_build_verify(
    map: &MemoryMap,
    mtrrs: &Mtrrs,
    cpu: CpuCaps,
    levels: Levels,
    kernel_phys: u64,
) -> Box<Plan> {
    let layout = Layout::for_levels(levels);
    let kernel = kernel_at(kernel_phys);
    let inputs = Inputs {
        map,
        layout,
        mtrrs,
        pat: &Pat::BATON,
        cpu,
        kernel: &kernel,
    };
    let mut plan = Box::new(Plan::new());
    plan.make(&inputs).unwrap();

    // Simulated physical memory for the tables, far from the map's RAM (it
    // need not be RAM of the map: the fake checks every access itself).
    let base = 1u64 << 50;
    let mut sim = Sim::new(PhysAddr::new(base), PhysAddr::new(base + (1 << 40)));
    let mut builder = Builder::new(&mut sim.window, &mut sim.frames, levels).unwrap();
    for m in plan.mappings() {
        builder.map(m).unwrap();
    }
    let root: PhysFrame = builder.root();
    let allocated = builder.tables_allocated();
    let walker = Walker::new(&sim.window, root, levels);

    // Leaf by leaf against the plan; nothing else mapped.
    verify(&plan, &walker, &inputs).unwrap();
    // Exactly the minimum number of frames.
    assert_eq!(allocated, plan.minimum_tables());
    assert_eq!(walker.stats().tables, plan.minimum_tables());
    assert_eq!(plan.cost.tables, plan.minimum_tables());
    // W^X, where the CPU can express it.
    if cpu.nx {
        assert!(walker.check_wx(|r| panic!("{r}")).passed());
    }
    // The lower half is empty.
    assert!(
        walker
            .leaves_in(0, layout.lower_half_end())
            .all(|l| l.virt >= layout.lower_half_end())
    );

    // Every RAM byte is at page_offset_base + its address (its first and
    // last page; verify covered the rest), nothing else is in the physmap.
    let pob = layout.page_offset_base();
    let mut ram_below_limit = 0;
    let mut previous_end = 0;
    for r in map.regions() {
        let (first, last) = (r.start, r.end - PAGE_SIZE);
        if r.start >= layout.physmap_size() {
            continue;
        }
        if r.kind.is_ram() {
            ram_below_limit += r.end.min(layout.physmap_size()) - r.start;
            for p in [first, last.min(layout.physmap_size() - PAGE_SIZE)] {
                let t = walker.translate(pob + p).expect("RAM is in the physmap");
                assert_eq!(t.phys.as_u64(), p);
            }
        } else {
            for p in [first, last] {
                assert!(
                    walker.translate(pob + p).is_none(),
                    "{r:?} is in the physmap"
                );
            }
        }
        if r.start > previous_end {
            assert!(
                walker.translate(pob + previous_end).is_none(),
                "hole is mapped"
            );
        }
        previous_end = r.end;
    }
    assert_eq!(plan.physmap_bytes, ram_below_limit);
    plan
}

/// SeaBIOS on QEMU pc with 5 GiB: RAM below 640 KiB, 1 MiB to 3 GiB, and
/// 4 GiB to 6 GiB; the kernel and Limine's allocations inside it.
fn seabios_5g() -> Vec<LimineEntry> {
    vec![
        entry(0, 0x9f000, limine::USABLE),
        entry(0x9fc00, 0x400, limine::RESERVED),
        entry(0xf0000, 0x10000, limine::RESERVED),
        entry(0x10_0000, 0x100_0000, limine::USABLE),
        entry(0x110_0000, 0x10_0000, limine::EXECUTABLE_AND_MODULES),
        entry(0x120_0000, 0x40_0000, limine::BOOTLOADER_RECLAIMABLE),
        entry(0x160_0000, 0xbffe_0000 - 0x160_0000, limine::USABLE),
        entry(0xbffe_0000, 0x2_0000, limine::RESERVED),
        entry(0xfeff_c000, 0x4000, limine::RESERVED),
        entry(0xfffc_0000, 0x4_0000, limine::RESERVED),
        entry(4 * GIB, 2 * GIB, limine::USABLE),
    ]
}

fn seabios_mtrrs() -> Mtrrs {
    mtrrs(MemType::Wb, &[(0xc000_0000, GIB, MemType::Uc)])
}

#[test]
fn seabios_map_2m_pages() {
    let map = bios_map(&seabios_5g());
    let plan = plan_build_verify(&map, &seabios_mtrrs(), CPU_2M, Levels::Four, 0x110_0000);
    // No RAM under the UC range: nothing to cut.
    assert_eq!(plan.cost.mtrr_splits, 0);
    assert_eq!(plan.cost.attr_splits, 0);
    assert_eq!(plan.cost.leaves, plan.cost.ideal_leaves);
    // 0-0x9f000: 159 4K. 1M-2M: 256 4K; 2M-0xbfe00000: 1534 2M;
    // 0xbfe00000-0xbffe0000: 480 4K. 4G-6G: 1024 2M.
    let leaves = plan.cost.leaves;
    assert_eq!(leaves.size_4k, 159 + 256 + 480);
    assert_eq!(leaves.size_2m, 1534 + 1024);
    assert_eq!(leaves.size_1g, 0);
    assert_eq!(plan.max_page, PageSize::Size2M);
}

#[test]
fn seabios_map_1g_pages_5_level() {
    let map = bios_map(&seabios_5g());
    let plan = plan_build_verify(&map, &seabios_mtrrs(), CPU_1G, Levels::Five, 0x110_0000);
    // 4 GiB to 6 GiB in two 1 GiB pages; 1 GiB to 2 GiB too.
    assert_eq!(plan.cost.leaves.size_1g, 3);
    assert_eq!(plan.max_page, PageSize::Size1G);
}

#[test]
fn ram_under_a_uc_mtrr_is_cut_and_the_cost_counted() {
    let map = bios_map(&[
        entry(0, 0x10_0000, limine::RESERVED),
        entry(0x10_0000, 0x10_0000, limine::EXECUTABLE_AND_MODULES),
        entry(0x20_0000, 4 * GIB - 0x20_0000, limine::USABLE),
    ]);
    // A 2 MiB UC hole at 3 GiB + 2 MiB, inside RAM.
    let m = mtrrs(MemType::Wb, &[(3 * GIB + 2 * MIB, 2 * MIB, MemType::Uc)]);
    let plan = plan_build_verify(&map, &m, CPU_1G, Levels::Four, 0x10_0000);
    assert_eq!(plan.cost.mtrr_splits, 2);
    // Ideal: 1M-2M as 256 4K, 2M-1G as 511 2M, then three 1 GiB pages.
    assert_eq!(plan.cost.ideal_leaves.size_1g, 3);
    // Cut: 1G-3G in 1G pages; 3G-3G+2M, the hole, and 3G+4M-4G in 2M pages.
    assert_eq!(plan.cost.leaves.size_1g, 2);
    assert_eq!(plan.cost.leaves.size_2m, 511 + 1 + 1 + 510);
    assert!(plan.cost.tables.total() > plan.cost.ideal_tables.total());
    // The hole's segment is planned UC in effect, its neighbours WB.
    let physmap: Vec<_> = plan
        .meta()
        .iter()
        .zip(plan.mappings())
        .filter(|(meta, _)| meta.purpose == Purpose::Physmap)
        .map(|(meta, m)| (m.phys.as_u64(), m.len, meta.effective))
        .collect();
    assert_eq!(
        physmap,
        [
            (
                0x20_0000 - 0x10_0000,
                3 * GIB + 2 * MIB - 0x10_0000,
                MemType::Wb
            ),
            (3 * GIB + 2 * MIB, 2 * MIB, MemType::Uc),
            (3 * GIB + 4 * MIB, GIB - 4 * MIB, MemType::Wb),
        ]
    );
    let text = plan.cost.to_string();
    assert!(
        text.starts_with("2 MTRR and 0 EFI-attribute splits cost 511 extra leaves"),
        "{text}"
    );
}

#[test]
fn efi_attributes_choose_the_cache_type_and_cut() {
    let wb = MemoryAttribute::UNCACHEABLE
        | MemoryAttribute::WRITE_COMBINE
        | MemoryAttribute::WRITE_THROUGH
        | MemoryAttribute::WRITE_BACK;
    let map = efi_map(
        &[
            (MemoryType::CONVENTIONAL, 0, 0x9f, wb),
            (MemoryType::CONVENTIONAL, 0x10_0000, 0x3ff00, wb),
            // RAM the firmware allows only uncached, touching WB RAM.
            (
                MemoryType::CONVENTIONAL,
                GIB,
                0x200,
                MemoryAttribute::UNCACHEABLE,
            ),
            (MemoryType::CONVENTIONAL, GIB + 2 * MIB, 0x3fe00, wb),
        ],
        &[entry(0x20_0000, 0x10_0000, limine::EXECUTABLE_AND_MODULES)],
    );
    let plan = plan_build_verify(
        &map,
        &mtrrs(MemType::Wb, &[]),
        CPU_1G,
        Levels::Four,
        0x20_0000,
    );
    assert_eq!(plan.cost.attr_splits, 2);
    let uc = plan
        .meta()
        .iter()
        .zip(plan.mappings())
        .find(|(meta, _)| meta.pat_type == MemType::Uc)
        .expect("a UC mapping");
    assert_eq!((uc.1.phys.as_u64(), uc.1.len), (GIB, 2 * MIB));
    // BATON's UC is PAT entry 3: PWT and PCD, no PAT bit, so 2 MiB pages.
    assert!(
        uc.1.flags
            .contains(PageTableFlags::NO_CACHE | PageTableFlags::WRITE_THROUGH)
    );
    assert_eq!(uc.1.max_page, PageSize::Size1G);
}

#[test]
fn ram_beyond_the_physmap_is_left_out_and_counted() {
    // RAM up to 65 TiB: the 4-level physmap (64 TiB) holds all but 1 TiB.
    let map = bios_map(&[
        entry(0, 2 * MIB, limine::RESERVED),
        entry(2 * MIB, 2 * MIB, limine::EXECUTABLE_AND_MODULES),
        entry(4 * MIB, 65 * TIB - 4 * MIB, limine::USABLE),
    ]);
    let plan = plan_build_verify(
        &map,
        &mtrrs(MemType::Wb, &[]),
        CPU_1G,
        Levels::Four,
        2 * MIB,
    );
    assert_eq!(plan.unmapped_ram, TIB);
    assert_eq!(plan.physmap_bytes, 64 * TIB - 2 * MIB);
    assert_eq!(plan.cost.leaves.size_1g, 64 * 1024 - 1);
    // 5-level has room for all of it.
    let plan = plan_build_verify(
        &map,
        &mtrrs(MemType::Wb, &[]),
        CPU_1G,
        Levels::Five,
        2 * MIB,
    );
    assert_eq!(plan.unmapped_ram, 0);
}

#[test]
fn one_tib_in_2m_pages() {
    // The legacy hole below 2 MiB is not RAM (the fixed MTRRs make it UC).
    let map = bios_map(&[
        entry(0, 2 * MIB, limine::RESERVED),
        entry(2 * MIB, 2 * MIB, limine::EXECUTABLE_AND_MODULES),
        entry(4 * MIB, TIB - 4 * MIB, limine::USABLE),
    ]);
    let plan = plan_build_verify(
        &map,
        &mtrrs(MemType::Wb, &[]),
        CPU_2M,
        Levels::Four,
        2 * MIB,
    );
    assert_eq!(plan.cost.leaves.size_2m, TIB / (2 * MIB) - 1);
    // One PD per GiB, one PDPT per 512 GiB, plus the kernel's.
    assert_eq!(plan.minimum_tables().pd, 1024 + 1);
}

#[test]
fn kernel_sections_get_their_permissions() {
    let map = bios_map(&seabios_5g());
    let plan = plan_build_verify(&map, &seabios_mtrrs(), CPU_2M, Levels::Four, 0x110_0000);
    let kernel: Vec<_> = plan
        .meta()
        .iter()
        .zip(plan.mappings())
        .filter_map(|(meta, m)| match meta.purpose {
            Purpose::Kernel(perm) => Some((perm, m.virt, m.flags)),
            Purpose::Physmap | Purpose::EfiRuntime(_) => None,
        })
        .collect();
    let (w, nx, g) = (
        PageTableFlags::WRITABLE,
        PageTableFlags::NO_EXECUTE,
        PageTableFlags::GLOBAL,
    );
    assert_eq!(
        kernel,
        [
            (Perm::ReadExecute, KERNEL_VIRT, g),
            (Perm::ReadOnly, KERNEL_VIRT + 0x2_0000, g | nx),
            (Perm::ReadWrite, KERNEL_VIRT + 0x2_8000, g | nx | w),
            (Perm::ReadWrite, KERNEL_VIRT + 0x3_1000, g | nx | w),
        ]
    );
}

#[test]
fn without_nx_or_global_the_bits_stay_clear() {
    let map = bios_map(&seabios_5g());
    let cpu = CpuCaps {
        gb_pages: false,
        nx: false,
        global: false,
    };
    let plan = plan_build_verify(&map, &seabios_mtrrs(), cpu, Levels::Four, 0x110_0000);
    assert!(plan.mappings().iter().all(|m| {
        !m.flags
            .intersects(PageTableFlags::NO_EXECUTE | PageTableFlags::GLOBAL)
    }));
}

#[test]
fn plan_errors() {
    let layout = Layout::for_levels(Levels::Four);
    let m = mtrrs(MemType::Wb, &[]);
    let map = bios_map(&seabios_5g());
    let mut plan = Box::new(Plan::new());

    let mut kernel = kernel_at(0x110_0000);
    kernel.sections[1].start += 0x800;
    let inputs = Inputs {
        map: &map,
        layout,
        mtrrs: &m,
        pat: &Pat::BATON,
        cpu: CPU_2M,
        kernel: &kernel,
    };
    let err = plan.make(&inputs).unwrap_err();
    assert!(matches!(
        err,
        PlanError::BadKernelSection { name: "rodata", .. }
    ));
    assert!(
        err.to_string()
            .starts_with("kernel section rodata 0xffffffff80020800-")
    );

    let no_ram = bios_map(&[entry(0, 0x10_0000, limine::RESERVED)]);
    let kernel = kernel_at(0);
    let inputs = Inputs {
        map: &no_ram,
        kernel: &kernel,
        ..inputs
    };
    assert_eq!(plan.make(&inputs), Err(PlanError::NoRam));

    // A PAT without a UC entry cannot map uncached-only RAM.
    let uc_ram = efi_map(
        &[(
            MemoryType::CONVENTIONAL,
            0,
            0x100,
            MemoryAttribute::UNCACHEABLE,
        )],
        &[],
    );
    let all_wb = Pat::new([MemType::Wb; 8]);
    let inputs = Inputs {
        map: &uc_ram,
        pat: &all_wb,
        ..inputs
    };
    assert_eq!(plan.make(&inputs), Err(PlanError::NoPatEntry(MemType::Uc)));
}

#[test]
fn verify_catches_a_stray_and_a_missing_mapping() {
    let levels = Levels::Four;
    let layout = Layout::for_levels(levels);
    let map = bios_map(&seabios_5g());
    let m = seabios_mtrrs();
    let kernel = kernel_at(0x110_0000);
    let inputs = Inputs {
        map: &map,
        layout,
        mtrrs: &m,
        pat: &Pat::BATON,
        cpu: CPU_2M,
        kernel: &kernel,
    };
    let mut plan = Box::new(Plan::new());
    plan.make(&inputs).unwrap();
    let base = 1u64 << 50;
    let mut sim = Sim::new(PhysAddr::new(base), PhysAddr::new(base + GIB));
    let mut builder = Builder::new(&mut sim.window, &mut sim.frames, levels).unwrap();
    // Leave out the last mapping (kernel data)...
    for m in &plan.mappings()[..plan.mappings().len() - 1] {
        builder.map(m).unwrap();
    }
    let root = builder.root();
    let err = verify(&plan, &builder.walker(), &inputs).unwrap_err();
    assert!(
        matches!(err, VerifyError::Missing { mapped: 0, .. }),
        "{err}"
    );
    // ... and map an identity page in the lower half.
    let identity = Mapping {
        virt: 0x10_0000,
        phys: PhysAddr::new(0x10_0000),
        len: PAGE_SIZE,
        flags: PageTableFlags::WRITABLE,
        max_page: PageSize::Size4K,
    };
    builder.map(&identity).unwrap();
    let walker = Walker::new(&sim.window, root, levels);
    let err = verify(&plan, &walker, &inputs).unwrap_err();
    assert_eq!(
        err,
        VerifyError::Stray {
            virt: 0x10_0000,
            phys: PhysAddr::new(0x10_0000)
        }
    );
}

/// A random BIOS map: up to ~1500 entries of every Limine type spread up to
/// 64 TiB, with unaligned and overlapping non-usable entries, and at most
/// `ram_budget` bytes of RAM.
fn random_map() -> impl Strategy<Value = (Vec<LimineEntry>, u64)> {
    (1usize..1500, any::<u64>(), prop::bool::ANY).prop_map(|(n, seed, big)| {
        let mut rng = seed;
        let mut next = move || {
            // xorshift64*: deterministic per seed, shrinks with it.
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let ram_budget = if big { 4 * TIB } else { 32 * GIB };
        let types = [
            limine::USABLE,
            limine::USABLE,
            limine::USABLE,
            limine::RESERVED,
            limine::ACPI_RECLAIMABLE,
            limine::ACPI_NVS,
            limine::BAD_MEMORY,
            limine::BOOTLOADER_RECLAIMABLE,
            limine::EXECUTABLE_AND_MODULES,
            limine::FRAMEBUFFER,
        ];
        let mut entries = Vec::new();
        let mut at = 0u64;
        let mut ram = 0u64;
        let mut last_usable_end = 0u64;
        for _ in 0..n {
            // A gap: none, pages, or (rarely) a jump of up to a TiB.
            at += match next() % 8 {
                0..=3 => 0,
                4..=6 => (next() % 4096) * PAGE_SIZE,
                _ => (next() % TIB) & !(PAGE_SIZE - 1),
            };
            let ty = types[(next() % types.len() as u64) as usize];
            let usable = ty == limine::USABLE || ty == limine::BOOTLOADER_RECLAIMABLE;
            if usable {
                at = at.next_multiple_of(PAGE_SIZE);
            }
            let pages = match next() % 4 {
                0 => 1 + next() % 16,
                1 => 1 + next() % 4096,
                2 => 1 + next() % (1 << 20),
                _ => 1 + next() % (ram_budget / PAGE_SIZE / 4).max(1),
            };
            let mut len = pages * PAGE_SIZE;
            let mut base = at;
            if !usable && next() % 3 == 0 {
                // Unaligned edges, maybe reaching back over earlier
                // non-usable entries (but never into usable ones).
                base = (at - (next() % PAGE_SIZE).min(at)).max(last_usable_end);
                len = len - (next() % PAGE_SIZE) + (at - base);
            }
            if base + len > 60 * TIB {
                break;
            }
            let is_ram = matches!(
                ty,
                limine::USABLE
                    | limine::BOOTLOADER_RECLAIMABLE
                    | limine::EXECUTABLE_AND_MODULES
                    | limine::ACPI_RECLAIMABLE
                    | limine::ACPI_NVS
            );
            if is_ram && ram + len > ram_budget {
                continue;
            }
            if is_ram {
                ram += len;
            }
            entries.push(entry(base, len, ty));
            at = at.max(base + len);
            if usable {
                last_usable_end = at;
            }
        }
        entries.sort_by_key(|e| e.base);
        (entries, ram_budget)
    })
}

/// Random MTRRs: up to four naturally aligned variable ranges of any type
/// over a WB or UC default.
fn random_mtrrs() -> impl Strategy<Value = Mtrrs> {
    let range = (12u32..42, any::<u64>(), 0usize..5);
    (
        prop::collection::vec(range, 0..4),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(ranges, wb)| {
            let types = [
                MemType::Uc,
                MemType::Wc,
                MemType::Wt,
                MemType::Wp,
                MemType::Wb,
            ];
            let ranges: Vec<_> = ranges
                .into_iter()
                .map(|(shift, at, ty)| {
                    let size = 1u64 << shift;
                    ((at % (1 << 44)) & !(size - 1), size, types[ty])
                })
                .collect();
            mtrrs(if wb { MemType::Wb } else { MemType::Uc }, &ranges)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_maps_plan_build_and_verify(
        (entries, budget) in random_map(),
        mtrrs in random_mtrrs(),
        gb_pages in prop::bool::ANY,
        five in prop::bool::ANY,
    ) {
        let limine = LimineMap::parse(&entries, PHYS_BITS).unwrap();
        let mut map = Box::new(MemoryMap::new());
        let mut scratch = Box::new(Scratch::new());
        memmap::build(None, &limine, &mut scratch, &mut map).unwrap();
        prop_assume!(map.ram_bytes() > 0);
        // 2 MiB pages over TiBs of RAM would take minutes in a debug build.
        let gb_pages = gb_pages || budget > 64 * GIB;
        let cpu = CpuCaps { gb_pages, nx: true, global: true };
        let levels = if five { Levels::Five } else { Levels::Four };
        let kernel_phys = map
            .regions()
            .iter()
            .find(|r| r.kind == memmap::Kind::Kernel)
            .map_or(0x20_0000, |r| r.start);
        let plan = plan_build_verify(&map, &mtrrs, cpu, levels, kernel_phys);
        // Cutting never makes fewer leaves than the ideal.
        prop_assert!(plan.cost.leaves.total() >= plan.cost.ideal_leaves.total());
    }
}

//! parse ▸ plan ▸ build ▸ verify on the host, as a kernel would run them at
//! boot, with simulated physical memory (the `sim` feature) in place of a
//! direct map.
//!
//! The machine: 512 MiB of RAM behind UEFI firmware, as Limine would hand
//! it over. The firmware's map (raw EFI descriptors, 48 bytes apart as on
//! OVMF) gives the types and caching attributes, including runtime regions
//! and the flash; Limine's map adds what Limine itself used (the kernel, its own
//! allocations). A kernel of 2 MiB is loaded at 16 MiB and linked at
//! `0xffffffff80000000`.
//!
//! ```sh
//! cargo run -p handoff --features sim --example plan_and_build
//! cargo test -p handoff --examples     # runs it as a test as well
//! ```

use handoff::Levels;
use handoff::layout::Layout;
use handoff::memmap::{self, EfiMemoryMap, LimineEntry, LimineMap, MemoryMap, Scratch, limine};
use handoff::memtype::{Mtrrs, Pat};
use handoff::paging::{Builder, Walker};
use handoff::plan::{self, CpuCaps, Inputs, KernelImage, KernelSection, Perm, Plan};
use handoff::sim::Sim;
use uefi_raw::table::boot::{MemoryAttribute, MemoryType};
use x86_64::PhysAddr;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// MAXPHYADDR, from CPUID 0x80000008 on a real machine.
const PHYS_BITS: u8 = 48;
/// The firmware's descriptor stride (`desc_size`); OVMF's is 48, not the
/// 40 bytes of `EFI_MEMORY_DESCRIPTOR`.
const DESC_SIZE: usize = 48;
const KERNEL_PHYS: u64 = 16 * MIB;

/// One EFI memory descriptor in the firmware's layout: type, padding,
/// physical start, virtual start, page count, attributes, then the
/// stride's padding.
fn descriptor(ty: MemoryType, start: u64, len: u64, att: MemoryAttribute) -> [u8; DESC_SIZE] {
    let mut d = [0u8; DESC_SIZE];
    d[0..4].copy_from_slice(&ty.0.to_le_bytes());
    d[8..16].copy_from_slice(&start.to_le_bytes());
    d[24..32].copy_from_slice(&(len / 4096).to_le_bytes());
    d[32..40].copy_from_slice(&att.bits().to_le_bytes());
    d
}

/// The firmware's map, as the EFI memory-map response hands it over.
fn efi_map_bytes() -> Vec<u8> {
    let cacheable = MemoryAttribute::UNCACHEABLE
        | MemoryAttribute::WRITE_COMBINE
        | MemoryAttribute::WRITE_THROUGH
        | MemoryAttribute::WRITE_BACK;
    let runtime = cacheable | MemoryAttribute::RUNTIME;
    [
        descriptor(MemoryType::BOOT_SERVICES_DATA, 0, 4 * KIB, cacheable),
        descriptor(MemoryType::CONVENTIONAL, 4 * KIB, 636 * KIB, cacheable),
        descriptor(MemoryType::CONVENTIONAL, MIB, 495 * MIB, cacheable),
        descriptor(
            MemoryType::BOOT_SERVICES_CODE,
            496 * MIB,
            8 * MIB,
            cacheable,
        ),
        descriptor(MemoryType::RUNTIME_SERVICES_CODE, 504 * MIB, MIB, runtime),
        descriptor(MemoryType::RUNTIME_SERVICES_DATA, 505 * MIB, MIB, runtime),
        descriptor(MemoryType::ACPI_RECLAIM, 506 * MIB, 2 * MIB, cacheable),
        descriptor(MemoryType::ACPI_NON_VOLATILE, 508 * MIB, 4 * MIB, cacheable),
        // The firmware's flash, device memory the runtime services use.
        descriptor(
            MemoryType::MMIO,
            0xffc0_0000,
            4 * MIB,
            MemoryAttribute::UNCACHEABLE | MemoryAttribute::RUNTIME,
        ),
    ]
    .concat()
}

/// Limine's map: it shows its own allocations (here the kernel and 4 MiB
/// of bootloader-reclaimable memory) where the firmware's map still says
/// conventional memory.
fn limine_map() -> Vec<LimineEntry> {
    let entry = |base, length, ty| LimineEntry { base, length, ty };
    vec![
        entry(4 * KIB, 636 * KIB, limine::USABLE),
        entry(MIB, 15 * MIB, limine::USABLE),
        entry(KERNEL_PHYS, 2 * MIB, limine::EXECUTABLE_AND_MODULES),
        entry(18 * MIB, 474 * MIB, limine::USABLE),
        entry(492 * MIB, 4 * MIB, limine::BOOTLOADER_RECLAIMABLE),
        entry(496 * MIB, 8 * MIB, limine::USABLE),
        entry(504 * MIB, 2 * MIB, limine::RESERVED),
        entry(506 * MIB, 2 * MIB, limine::ACPI_RECLAIMABLE),
        entry(508 * MIB, 4 * MIB, limine::ACPI_NVS),
    ]
}

/// The kernel image: sections at their link addresses, as a kernel reads
/// them from its linker script's symbols. The page between data and bss
/// (the guard below the boot stack) is left out, so it stays unmapped.
fn kernel_image(layout: &Layout) -> KernelImage {
    let base = layout.kernel_image_start();
    let section = |name, start: u64, end: u64, perm| KernelSection {
        name,
        start: base + start,
        end: base + end,
        perm,
    };
    KernelImage {
        virt_base: base,
        phys_base: PhysAddr::new(KERNEL_PHYS),
        sections: [
            section("text", 0, MIB, Perm::ReadExecute),
            section("rodata", MIB, MIB + 512 * KIB, Perm::ReadOnly),
            section("data", MIB + 512 * KIB, MIB + 768 * KIB, Perm::ReadWrite),
            section("bss", MIB + 772 * KIB, 2 * MIB, Perm::ReadWrite),
        ],
    }
}

fn main() {
    let levels = Levels::Four;

    // 1. Parse: validate both maps and merge them into one normalised map.
    let efi_bytes = efi_map_bytes();
    let efi = EfiMemoryMap::parse(&efi_bytes, DESC_SIZE, 1, PHYS_BITS).expect("valid EFI map");
    let entries = limine_map();
    let limine = LimineMap::parse(&entries, PHYS_BITS).expect("valid Limine map");
    // The map and its scratch space are fixed-size (no allocator at boot):
    // large, so boxed here; a kernel keeps them in statics.
    let mut map = Box::new(MemoryMap::new());
    let mut scratch = Box::new(Scratch::new());
    let summary = memmap::build(Some(&efi), &limine, &mut scratch, &mut map).expect("maps merge");
    println!("memory map: {summary}");
    println!("RAM: {} MiB", map.ram_bytes() / MIB);

    // 2. Plan: the physmap, the kernel image, with the largest pages the
    // CPU has, cut wherever the effective memory type changes.
    let layout = Layout::fixed(levels);
    // A CPU without MTRRs; a kernel reads the MSRs into `MtrrRegisters`
    // and calls `Mtrrs::new`.
    let mtrrs = Mtrrs::absent(PHYS_BITS).expect("valid MAXPHYADDR");
    let kernel = kernel_image(layout);
    let inputs = Inputs {
        map: &map,
        layout,
        mtrrs: &mtrrs,
        // The PAT the kernel will load with the new tables.
        pat: &Pat::BATON,
        cpu: CpuCaps {
            gb_pages: true,
            nx: true,
            global: true,
        },
        kernel: &kernel,
        // No screen console here; a kernel passes Limine's framebuffer to
        // have a write-combining window for it planned in the fixmap.
        framebuffer: None,
    };
    let mut plan = Box::new(Plan::new());
    plan.make(&inputs).expect("plan");
    println!(
        "plan: {} mappings; physmap {} MiB; leaves {}; {} page-table frames",
        plan.mappings().len(),
        plan.physmap_bytes / MIB,
        plan.leaves(),
        plan.minimum_tables().total()
    );

    // 3. Build: write the tables into frames from a `FrameSource`, reached
    // through a `PhysWindow`. Here both are simulated memory at 32 MiB; a
    // kernel passes a direct map (Limine's HHDM) and frames from usable
    // memory.
    let mut sim = Sim::new(PhysAddr::new(32 * MIB), PhysAddr::new(33 * MIB));
    let mut builder = Builder::new(&mut sim.window, &mut sim.frames, levels).expect("root");
    for mapping in plan.mappings() {
        builder.map(mapping).expect("mapping");
    }
    let root = builder.root();
    println!(
        "built: {} page-table frames, root {:#x} (the value for CR3)",
        builder.tables_allocated().total(),
        root.start_address().as_u64()
    );
    assert_eq!(
        builder.tables_allocated().total(),
        plan.minimum_tables().total(),
        "the builder uses the minimum number of tables"
    );

    // 4. Verify, as a kernel does before and after loading CR3: every leaf
    // as planned and nothing else mapped; the physmap translates; no page
    // is writable and executable.
    let walker = Walker::new(&sim.window, root, levels);
    let verified = plan::verify(&plan, &walker, &inputs).expect("tables match the plan");
    println!(
        "verified: {} leaves, {} MiB mapped",
        verified.leaves.total(),
        verified.bytes / MIB
    );
    let phys = 100 * MIB + 0x123;
    let translated = walker
        .translate(layout.page_offset_base() + phys)
        .expect("RAM is in the physmap");
    assert_eq!(translated.phys.as_u64(), phys);
    for not_ram in [0xa_0000, 0xffc0_0000] {
        assert!(
            walker
                .translate(layout.page_offset_base() + not_ram)
                .is_none(),
            "the legacy video hole and the flash are not RAM: not in the physmap"
        );
    }
    assert!(walker.translate(0x1000).is_none(), "no identity map");
    let wx = walker.check_wx(|range| println!("W+X: {range}"));
    assert!(wx.passed(), "{wx}");
    println!("{wx}");
}

#[test]
fn runs() {
    main();
}

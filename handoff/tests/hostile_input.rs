//! Hostile input: the fuzz corpus replayed, and property tests of the same
//! invariants, on stable Rust without cargo-fuzz.
//!
//! Every file under `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`
//! goes through the check its fuzz target runs ([`common`], shared with
//! `fuzz/fuzz_targets/`). The regressions are inputs that once failed a
//! check. `make fuzz` grows the corpus; see docs/testing.md.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use handoff::memmap::LimineEntry;
use proptest::prelude::*;

use common::{Check, Desc, EFI_TYPES, LIMINE_TYPES, Maps, RT, Reached, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted (none if it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("a readable directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every file of `dir`, naming the file that fails.
fn replay(dir: &Path, check: Check) -> usize {
    let files = files(dir);
    for path in &files {
        let data = fs::read(path).expect("a readable corpus file");
        let outcome = std::panic::catch_unwind(|| check(&data));
        if let Err(panic) = outcome {
            eprintln!("failing input: {}", path.display());
            std::panic::resume_unwind(panic);
        }
    }
    files.len()
}

/// How far each seed must get: the realistic ones all the way.
fn expected(target: &str, name: &str) -> Reached {
    match (target, name) {
        (_, "seed-efi-2049-entries") => Reached::Refused,
        (_, "seed-ovmf-6g-overlapping") => Reached::Parsed,
        ("memmap" | "normalise", _) => Reached::Built,
        ("efi_runtime" | "pe", _) => Reached::Window,
        _ => Reached::Verified,
    }
}

#[test]
fn seeds_hold() {
    for (target, name, data) in common::seeds() {
        let check = TARGETS.iter().find(|t| t.0 == target).unwrap().1;
        let outcome = std::panic::catch_unwind(|| check(&data));
        match outcome {
            Ok(reached) => assert_eq!(reached, expected(target, &name), "{target}/{name}"),
            Err(panic) => {
                eprintln!("failing seed: {target}/{name}");
                std::panic::resume_unwind(panic);
            }
        }
    }
}

#[test]
fn corpus_replays() {
    let mut total = 0;
    for (target, check) in TARGETS {
        total += replay(&fuzz_dir().join("corpus").join(target), check);
    }
    // The corpus is part of the repository: an empty replay means a
    // wrong path, not a pass.
    assert!(total > 0, "no corpus under {}", fuzz_dir().display());
}

#[test]
fn regressions_replay() {
    for (target, check) in TARGETS {
        replay(&fuzz_dir().join("regressions").join(target), check);
    }
}

/// Writes the seeds into `fuzz/corpus/` (`cargo test -p handoff --test
/// hostile_input -- --ignored write_seeds`), after changing them or an
/// input format.
#[test]
#[ignore = "writes files into fuzz/corpus"]
fn write_seeds() {
    for (target, name, data) in common::seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), data).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Property tests: the same checks, over random bytes and random maps.

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // The regressions of these properties live in fuzz/regressions.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Random descriptors: mostly small, page-aligned and near each other,
/// sometimes anything at all.
fn desc() -> impl Strategy<Value = Desc> {
    let start = prop_oneof![
        8 => (0..1u64 << 22).prop_map(|page| page << 12),
        1 => any::<u64>(),
    ];
    let pages = prop_oneof![8 => 0..0x4000u64, 1 => any::<u64>()];
    let attr = prop_oneof![
        4 => prop::sample::select(vec![0xf, 0x1, 0x8, RT | 0xf, RT | 0x1, 0xf | 0x4000]),
        1 => any::<u64>(),
    ];
    let ty = prop_oneof![
        6 => prop::sample::select(EFI_TYPES.to_vec()),
        1 => any::<u32>(),
    ];
    (ty, start, pages, attr).prop_map(|(ty, start, pages, attr)| Desc {
        ty,
        start,
        pages,
        attr,
    })
}

fn limine_entry() -> impl Strategy<Value = LimineEntry> {
    let base = prop_oneof![
        8 => (0..1u64 << 22).prop_map(|page| page << 12),
        2 => 0..1u64 << 34,
        1 => any::<u64>(),
    ];
    let length = prop_oneof![
        8 => (1..0x4000u64).prop_map(|pages| pages << 12),
        2 => 0..1u64 << 26,
        1 => any::<u64>(),
    ];
    let ty = prop_oneof![
        8 => prop::sample::select(LIMINE_TYPES.to_vec()),
        1 => any::<u64>(),
    ];
    (base, length, ty).prop_map(|(base, length, ty)| LimineEntry { base, length, ty })
}

/// Random maps, made from descriptors laid end to end (so that they often
/// parse) or placed anywhere, sorted or not.
fn maps() -> impl Strategy<Value = Maps> {
    let efi = prop::option::weighted(
        0.8,
        (
            prop::collection::vec(desc(), 0..48),
            any::<bool>(),
            prop::sample::select(vec![40usize, 48, 56, 64, 48, 48]),
            prop::sample::select(vec![0u8, 0xa5, 0xff]),
        ),
    );
    (
        efi,
        prop::collection::vec(limine_entry(), 0..48),
        any::<bool>(),
        prop_oneof![8 => 32..=52u8, 1 => any::<u8>()],
    )
        .prop_map(|(efi, mut limine, sort, bits)| {
            let efi = efi.map(|(mut descs, chain, desc_size, pad)| {
                if chain {
                    // End to end, from wherever the first one starts.
                    let mut at = descs.first().map_or(0, |d| d.start);
                    for d in &mut descs {
                        d.start = at;
                        d.pages = d.pages % 0x1000 + 1;
                        at += d.pages << 12;
                    }
                }
                (common::encode_efi(&descs, desc_size, pad), desc_size, 1)
            });
            if sort {
                limine.sort_by_key(|e| e.base);
            }
            Maps { efi, limine, bits }
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_bytes_as_a_raw_map(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        common::check_memmap(&data);
    }

    #[test]
    fn any_bytes_as_compact_records(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        common::check_normalise(&data);
    }

    #[test]
    fn any_bytes_as_runtime_input(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        common::check_efi_runtime(&data);
    }

    #[test]
    fn random_structured_maps(maps in maps()) {
        common::check_maps(&maps);
    }

    #[test]
    fn random_structured_maps_as_raw_bytes(maps in maps()) {
        // The raw format carries any map: the same checks through the
        // decoder the fuzz target uses.
        common::check_memmap(&common::encode_raw(&maps));
    }
}

proptest! {
    // Each case may build page tables: fewer of them.
    #![proptest_config(config(64))]

    #[test]
    fn any_bytes_as_runtime_images(data in prop::collection::vec(any::<u8>(), 0..8192)) {
        common::check_pe(&data);
    }

    #[test]
    fn any_bytes_as_plan_input(data in prop::collection::vec(any::<u8>(), 0..512)) {
        common::check_plan(&data);
    }

    #[test]
    fn random_maps_planned(
        cpu in any::<u8>(),
        mtrrs in prop::collection::vec(any::<u8>(), 64),
        efi in prop::collection::vec((0..20u8, 0..64u32, 1..0x8000u32, any::<u8>()), 0..24),
        limine in prop::collection::vec((0..11u8, 0..64u32, 1..0x8000u32, 0..2u8), 0..24),
        uefi in any::<bool>(),
        shuffle in any::<bool>(),
    ) {
        // Compact records laid end to end with small gaps: maps that parse,
        // plan and build.
        let record = |(ty, gap, len, extra): (u8, u32, u32, u8)| common::Record {
            step: gap as i32,
            len,
            ty,
            extra,
        };
        let compact = common::Compact {
            flags: u8::from(uefi) | if shuffle { 2 } else { 0 },
            desc_size: 1,
            bits: 7,
            unit_shift: 0,
            efi: efi.into_iter().map(record).collect(),
            limine: limine.into_iter().map(record).collect(),
            seed: 1,
        };
        let mut data = vec![cpu, 0x10, 0, 0];
        data.extend(mtrrs);
        data.extend(compact.encode());
        common::check_plan(&data);
    }
}

/// Inputs that show the open bugs of [`common::OPEN_BUGS`], one file per
/// bug in `fuzz/known-bugs/<target>/`. Fails until they are fixed; then
/// move the files to `fuzz/regressions/` and drop the bug from the list.
#[test]
fn known_bugs_fixed() {
    let dir = fuzz_dir().join("known-bugs");
    let mut total = 0;
    for (target, check) in common::STRICT_TARGETS {
        total += replay(&dir.join(target), check);
    }
    assert_eq!(total, common::OPEN_BUGS.len(), "one input per open bug");
}

/// Open bug `efi-window-large-page-spans-mtrr-types`, spelled out: 4 MiB of
/// runtime data, write-back, with one 4 KiB UC MTRR range inside it. The
/// physmap cuts its pages there; the EFI window maps the region with 2 MiB
/// pages, one of which then covers both types.
#[test]
fn efi_window_large_pages_keep_one_memory_type() {
    use handoff::efi::{RuntimeRegions, Window};
    use handoff::layout::Layout;
    use handoff::memmap::{self, EfiMemoryMap, LimineMap, MemoryMap, Scratch, limine};
    use handoff::memtype::{MtrrRegisters, Mtrrs, PageKind, Pat, VariableRangeMsrs};
    use handoff::paging::{Builder, PageSize, Walker};
    use handoff::plan::{self, CpuCaps, Inputs, KernelImage, Plan};
    use handoff::sim::Sim;
    use handoff::{Levels, PAGE_SIZE};
    use x86_64::PhysAddr;

    const RT_DATA: u32 = 6;
    const CONVENTIONAL: u32 = 7;
    let descs = [
        Desc {
            ty: CONVENTIONAL,
            start: 0,
            pages: 0x7f000,
            attr: 0xf,
        },
        Desc {
            ty: RT_DATA,
            start: 0x7f00_0000,
            pages: 0x400,
            attr: RT | 0xf,
        },
    ];
    let bytes = common::encode_efi(&descs, 48, 0);
    let efi = EfiMemoryMap::parse(&bytes, 48, 1, 40).unwrap();
    let entries = [LimineEntry {
        base: 0x200_0000,
        length: 0x10_0000,
        ty: limine::EXECUTABLE_AND_MODULES,
    }];
    let limine = LimineMap::parse(&entries, 40).unwrap();
    let mut map = Box::new(MemoryMap::new());
    memmap::build(Some(&efi), &limine, &mut Box::new(Scratch::new()), &mut map).unwrap();

    // WB by default (fixed ranges too), UC for the 4 KiB at 0x7f10_0000.
    let mut regs = MtrrRegisters::new(0x501, 0xc06, 40);
    regs.fixed = [0x0606_0606_0606_0606; 11];
    regs.variable[0] = VariableRangeMsrs {
        base: 0x7f10_0000,
        mask: ((1 << 40) - 1) & !(PAGE_SIZE - 1) | 1 << 11,
    };
    let mtrrs = Mtrrs::new(&regs).unwrap();

    let layout = Layout::fixed(Levels::Four);
    let kernel = KernelImage::sample(0x200_0000);
    let cpu = CpuCaps {
        gb_pages: true,
        nx: true,
        global: true,
    };
    let inputs = Inputs {
        map: &map,
        layout,
        mtrrs: &mtrrs,
        pat: &Pat::BATON,
        cpu,
        kernel: &kernel,
        framebuffer: None,
    };
    let mut plan = Box::new(Plan::new());
    plan.make(&inputs).unwrap();
    let mut runtime = Box::new(RuntimeRegions::new());
    runtime.assign(&efi, layout).unwrap();
    let mut window = Box::new(Window::new());
    window
        .make(&runtime, None, &Pat::BATON, &mtrrs, true, true)
        .unwrap();
    plan.add_efi_window(&window).unwrap();

    let base = 1u64 << 50;
    let mut sim = Sim::new(PhysAddr::new(base), PhysAddr::new(base + (1 << 40)));
    let mut builder = Builder::new(&mut sim.window, &mut sim.frames, Levels::Four).unwrap();
    for m in plan.mappings() {
        builder.map(m).unwrap();
    }
    let root = builder.root();
    let walker = Walker::new(&sim.window, root, Levels::Four);
    // verify passes: it checks uniformity in the physmap only.
    plan::verify(&plan, &walker, &inputs).unwrap();
    for leaf in walker.leaves().filter(|l| l.size != PageSize::Size4K) {
        let pat_type = Pat::BATON.type_for_flags(leaf.flags, PageKind::Large);
        let start = leaf.phys.as_u64();
        assert!(
            handoff::memtype::uniform_effective(&mtrrs, start, start + leaf.size.bytes(), pat_type)
                .is_some(),
            "{:?} leaf at {:#x} -> {start:#x} covers a UC and a WB range",
            leaf.size,
            leaf.virt
        );
    }
}

/// Open bug `plan-ideal-tables-need-double-capacity`, spelled out: 2046
/// RAM runs (a map holds up to 2048 regions) need 2050 mappings, well
/// under `plan::MAX_MAPPINGS`, but `Plan::make` also lays the ideal
/// physmap out after the real one to count its tables, and runs out of
/// room.
#[test]
fn plans_hold_every_map_the_normaliser_makes() {
    use handoff::layout::Layout;
    use handoff::memmap::{self, LimineMap, MemoryMap, Scratch, limine};
    use handoff::memtype::{Mtrrs, Pat};
    use handoff::plan::{CpuCaps, Inputs, KernelImage, Plan};
    use handoff::{Levels, PAGE_SIZE};

    // One page of RAM every other page.
    let entries: Vec<_> = (0..2046)
        .map(|i| LimineEntry {
            base: (2 * i + 1) * PAGE_SIZE,
            length: PAGE_SIZE,
            ty: limine::USABLE,
        })
        .collect();
    let limine = LimineMap::parse(&entries, 40).unwrap();
    let mut map = Box::new(MemoryMap::new());
    memmap::build(None, &limine, &mut Box::new(Scratch::new()), &mut map).unwrap();
    assert_eq!(map.ram_runs().count(), 2046);

    let kernel = KernelImage::sample(0x200_0000);
    let inputs = Inputs {
        map: &map,
        layout: Layout::fixed(Levels::Four),
        mtrrs: &Mtrrs::absent(40).unwrap(),
        pat: &Pat::BATON,
        cpu: CpuCaps {
            gb_pages: false,
            nx: true,
            global: true,
        },
        kernel: &kernel,
        framebuffer: None,
    };
    let mut plan = Box::new(Plan::new());
    // 2046 physmap mappings and 4 kernel sections.
    plan.make(&inputs).unwrap();
    assert_eq!(plan.mappings().len(), 2050);
}

/// Open bug `attributes-table-length-saturates`, spelled out: an entry of
/// 2^52 pages at address 0 ends beyond 64 bits, yet the table parses, the
/// entry's length saturated to `u64::MAX`.
#[test]
fn attributes_table_refuses_lengths_that_overflow() {
    use handoff::efi::{AttributesTable, EfiError};

    let mut bytes = Vec::new();
    // Version 1, one entry, 48 bytes per entry.
    for word in [1u32, 1, 48, 0] {
        bytes.extend(word.to_le_bytes());
    }
    let entry = Desc {
        ty: 5,
        start: 0,
        pages: 1 << 52,
        attr: RT | common::RO,
    };
    bytes.extend(common::encode_efi(&[entry], 48, 0));
    assert!(matches!(
        AttributesTable::parse(&bytes),
        Err(EfiError::BadAttributesTable(_))
    ));
}

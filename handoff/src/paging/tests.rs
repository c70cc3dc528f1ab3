//! Host tests of the builder and the walker against the strict fake: the
//! walker checks every mapping against the built tables, and the frames
//! used always equal `minimum_tables`.

use std::collections::BTreeSet;

use proptest::prelude::*;
use x86_64::PhysAddr;
use x86_64::structures::paging::{PageTableFlags, PhysFrame};

use super::pages::entry_shift;
use super::ptdump::Event;
use super::*;
use crate::Levels;
use crate::layout::Layout;
use crate::phys::{FrameSource, PhysWindow};
use crate::sim::{Sim, SimWindow};

const K: u64 = 1 << 10;
const M: u64 = 1 << 20;
const G: u64 = 1 << 30;
const T: u64 = 1 << 40;

const W: PageTableFlags = PageTableFlags::WRITABLE;
const NX: PageTableFlags = PageTableFlags::NO_EXECUTE;
const GLB: PageTableFlags = PageTableFlags::GLOBAL;
const PWT: PageTableFlags = PageTableFlags::WRITE_THROUGH;
const PCD: PageTableFlags = PageTableFlags::NO_CACHE;
const PRESENT: PageTableFlags = PageTableFlags::PRESENT;
const HUGE: PageTableFlags = PageTableFlags::HUGE_PAGE;

/// Plenty of frames; the fake only stores the ones handed out.
fn sim() -> Sim {
    Sim::new(
        PhysAddr::new(0x100_0000),
        PhysAddr::new(0x100_0000 + (1 << 40)),
    )
}

fn mapping(virt: u64, phys: u64, len: u64, flags: PageTableFlags, max_page: PageSize) -> Mapping {
    Mapping {
        virt,
        phys: PhysAddr::new(phys),
        len,
        flags,
        max_page,
    }
}

/// Tables built into a fake, with the builder's own counts.
struct Built {
    sim: Sim,
    root: PhysFrame,
    levels: Levels,
    tables: TableCount,
    leaves: LeafCount,
}

impl Built {
    fn walker(&self) -> Walker<'_, SimWindow> {
        Walker::new(&self.sim.window, self.root, self.levels)
    }
}

fn build(levels: Levels, mappings: &[Mapping]) -> Built {
    let mut sim = sim();
    let mut builder = Builder::new(&mut sim.window, &mut sim.frames, levels).expect("a root");
    for m in mappings {
        builder
            .map(m)
            .unwrap_or_else(|err| panic!("failed to map {m:x?}: {err}"));
    }
    let (root, tables, leaves) = (
        builder.root(),
        builder.tables_allocated(),
        builder.leaves_written(),
    );
    Built {
        sim,
        root,
        levels,
        tables,
        leaves,
    }
}

/// The leaves the plan gives, in address order, as the walker reports them.
fn planned_leaves(mappings: &[Mapping]) -> Vec<Leaf> {
    let mut sorted = mappings.to_vec();
    sorted.sort_by_key(|m| m.virt);
    sorted
        .iter()
        .flat_map(|m| {
            let flags = m.flags | PRESENT;
            m.pages().map(move |(virt, phys, size)| Leaf {
                virt,
                phys,
                size,
                flags: if size == PageSize::Size4K {
                    flags
                } else {
                    flags | HUGE
                },
                level: size.level(),
            })
        })
        .collect()
}

/// The definition of `minimum_tables`: distinct parent prefixes of the
/// planned leaves, the root counting once.
fn distinct_prefixes(mappings: &[Mapping], levels: Levels) -> TableCount {
    let top = levels.count() as u8;
    let mut seen = BTreeSet::new();
    for leaf in planned_leaves(mappings) {
        for level in leaf.level..top {
            seen.insert((level, leaf.virt >> entry_shift(level + 1)));
        }
    }
    let mut count = TableCount::default();
    count.add(top, 1);
    for (level, _) in seen {
        count.add(level, 1);
    }
    count
}

/// Whether some mapping translates `va`.
fn mapped(mappings: &[Mapping], va: u64) -> Option<&Mapping> {
    mappings.iter().find(|m| m.contains(va))
}

/// Checks the built tables against the mappings: the exact leaves, the
/// table counts, sample translations, and the runs the dump walks.
fn verify(built: &Built, mappings: &[Mapping]) {
    let walker = built.walker();
    let planned = planned_leaves(mappings);

    // Nothing but the planned leaves, in order, with their flags.
    let leaves: Vec<Leaf> = walker.leaves().collect();
    assert_eq!(leaves, planned, "walked leaves differ from the plan");

    // The fewest tables, and the builder, the walker and the fake agree.
    let minimum = minimum_tables(mappings, built.levels);
    assert_eq!(minimum, distinct_prefixes(mappings, built.levels));
    assert_eq!(
        built.tables, minimum,
        "builder allocated more than the minimum"
    );
    let stats = walker.stats();
    assert_eq!(stats.tables, minimum);
    assert_eq!(built.sim.frames.allocated(), minimum.total());
    let mut by_size = LeafCount::default();
    for leaf in &planned {
        by_size.add(leaf.size, 1);
    }
    assert_eq!(stats.leaves, by_size);
    assert_eq!(built.leaves, by_size);

    // Samples: each mapping's first and last page and one in the middle
    // translate, at an odd offset; the pages around it only if another
    // mapping has them.
    for m in mappings {
        let middle = m.virt + ((m.len / 2) & !0xfff);
        for va in [m.virt, middle, m.virt + (m.len - 4 * K)] {
            let va = va + 0x123;
            let t = walker
                .translate(va)
                .unwrap_or_else(|| panic!("{va:#x} of {m:x?} is not mapped"));
            assert_eq!(t.phys.as_u64(), m.phys.as_u64() + (va - m.virt), "{va:#x}");
            let leaf = planned
                .iter()
                .find(|l| va.wrapping_sub(l.virt) < l.size.bytes());
            assert_eq!(Some(&t.leaf), leaf, "{va:#x}");
        }
        for va in [m.virt.wrapping_sub(1), m.virt.wrapping_add(m.len)] {
            if built.levels.is_canonical(va) {
                let expected =
                    mapped(mappings, va).map(|o| o.phys.as_u64() + va.wrapping_sub(o.virt));
                assert_eq!(
                    walker.translate(va).map(|t| t.phys.as_u64()),
                    expected,
                    "{va:#x}"
                );
            }
        }
    }

    // The dump walk: runs tile the whole address space, the present ones
    // add up to what is mapped, and W+X pages are the writable,
    // executable ones.
    let mut next = 0u64;
    let mut present = 0u64;
    let mut runs = 0;
    let walked = walker.runs::<()>(&[], |event| {
        if let Event::Run(run) = event {
            assert_eq!(run.start, next, "runs leave a gap");
            // Only a run over everything starts where it ends.
            assert!(run.start != run.end || runs == 0 && run.start == 0);
            next = run.end;
            runs += 1;
            if run.prot & PRESENT.bits() != 0 {
                present += run.end.wrapping_sub(run.start);
            }
        }
        Ok(())
    });
    assert_eq!(walked, Ok(()));
    assert_eq!(next, 0, "runs stop short of the top");
    assert!(runs > 0);
    assert_eq!(present, mappings.iter().map(|m| m.len).sum::<u64>());
    let wx: u64 = mappings
        .iter()
        .filter(|m| m.flags.contains(W) && !m.flags.contains(NX))
        .map(|m| m.len / (4 * K))
        .sum();
    assert_eq!(walker.check_wx(|_| {}).pages, wx);
}

/// Every page of every mapping translates to the right frame.
fn verify_every_page(built: &Built, mappings: &[Mapping]) {
    let walker = built.walker();
    for m in mappings {
        for offset in (0..m.len).step_by(4096) {
            let t = walker.translate(m.virt + offset).expect("mapped");
            assert_eq!(t.phys.as_u64(), m.phys.as_u64() + offset);
            assert_eq!(t.leaf.flags & !(PRESENT | HUGE), m.flags & !HUGE);
        }
    }
}

// ---------------------------------------------------------------------------
// Builder and walker.

#[test]
fn small_four_level_layout() {
    use PageSize::*;
    let mappings = [
        // Kernel text: a 2 MiB page, then 4 KiB pages to the end.
        mapping(0xffff_ffff_8000_0000, 0x20_0000, 2 * M + 8 * K, GLB, Size2M),
        // Data right after it, in the same page table.
        mapping(
            0xffff_ffff_8020_2000,
            0x50_0000,
            12 * K,
            W | NX | GLB,
            Size4K,
        ),
        // Physmap: 1 GiB pages where aligned, 2 MiB and 4 KiB at the edges.
        mapping(
            0xffff_8880_0000_0000,
            0,
            3 * G + 6 * M + 12 * K,
            W | NX | GLB,
            Size1G,
        ),
        // An uncached page and a write-combining one (PAT).
        mapping(
            0xffff_c900_0000_0000,
            0xfee0_0000,
            4 * K,
            W | NX | PCD | PWT,
            Size4K,
        ),
        mapping(
            0xffff_c900_0000_1000,
            0x8000_0000,
            8 * K,
            W | NX | PWT | PAT_4K,
            Size4K,
        ),
        // Physical address not 2 MiB-aligned: all 4 KiB.
        mapping(0x40_0000, 0x1000, 4 * M, W, Size1G),
    ];
    let built = build(Levels::Four, &mappings);
    verify(&built, &mappings);
    verify_every_page(&built, &mappings);
    let walker = built.walker();
    let stats = walker.stats();
    assert_eq!(
        stats.leaves,
        LeafCount {
            size_4k: 2 + 3 + 3 + 1 + 2 + 1024,
            size_2m: 1 + 3,
            size_1g: 3,
        }
    );
    assert_eq!(
        stats.leaves.bytes(),
        mappings.iter().map(|m| m.len).sum::<u64>()
    );
    let wc = walker.translate(0xffff_c900_0000_1000).unwrap().leaf;
    assert!(wc.pat() && wc.flags.contains(PWT));
    assert!(!walker.translate(0xffff_c900_0000_0000).unwrap().leaf.pat());
    // Intermediate entries: present and writable, never user, never NX.
    let root = built.sim.window.table(built.root);
    let used: Vec<_> = root.iter().filter(|e| !e.is_unused()).collect();
    assert_eq!(used.len(), 4);
    assert!(used.iter().all(|e| e.flags() == PRESENT | W));
}

#[test]
fn small_five_level_layout() {
    use PageSize::*;
    let mappings = [
        mapping(
            0xff11_0000_0000_0000,
            0,
            2 * G + 4 * K,
            W | NX | GLB,
            Size1G,
        ),
        mapping(0xffa0_0000_0000_0000, 0x1234_5000, 5 * M, W | NX, Size2M),
        mapping(0xffff_ffff_8000_0000, 0x20_0000, 4 * M, GLB, Size2M),
        // Lower half far above what 4-level paging reaches.
        mapping(0x00ff_ffff_ffe0_0000, 0x40_0000, 2 * M, W | NX, Size2M),
    ];
    let built = build(Levels::Five, &mappings);
    verify(&built, &mappings);
    verify_every_page(&built, &mappings);
    assert_eq!(built.tables.pml5, 1);
    assert_eq!(built.tables.pml4, 4);
}

#[test]
fn ranges_up_to_the_top_of_the_address_space() {
    for levels in [Levels::Four, Levels::Five] {
        let mappings = [
            mapping(
                0xffff_ffff_c000_0000 - 4 * K,
                G - 4 * K,
                G + 4 * K,
                W | NX,
                PageSize::Size1G,
            ),
            mapping(0, 0, 4 * K, W | NX, PageSize::Size4K),
        ];
        let built = build(levels, &mappings);
        verify(&built, &mappings);
        let top = built
            .walker()
            .translate(u64::MAX)
            .expect("the last byte is mapped");
        assert_eq!(top.phys.as_u64(), 2 * G - 1);
        assert_eq!(top.leaf.size, PageSize::Size1G);
    }
}

#[test]
fn large_maps_take_few_tables() {
    use PageSize::*;
    // 64 GiB in 2 MiB pages with 4 KiB edges (phys is 2 MiB- but not
    // 1 GiB-compatible with virt), 64 TiB in 1 GiB pages, in both modes.
    for levels in [Levels::Four, Levels::Five] {
        let mappings = [
            mapping(
                0xffff_c900_0000_0000 - 4 * K,
                2 * M - 4 * K,
                64 * G + 8 * K,
                W | NX,
                Size1G,
            ),
            mapping(0xffff_8880_0000_0000, 0, 64 * T, W | NX | GLB, Size1G),
        ];
        let built = build(levels, &mappings);
        verify(&built, &mappings);
        assert_eq!(
            built.leaves,
            LeafCount {
                size_4k: 2,
                size_2m: 64 * 512,
                size_1g: 64 * 1024,
            }
        );
        // 128 PDPTs full of 1 GiB leaves, and two for the other mapping,
        // which starts a page before a PML4 entry; its 4 KiB edges take a
        // directory each.
        assert_eq!(built.tables.pdpt, 128 + 2);
        assert_eq!(built.tables.pd, 1 + 64 + 1);
        assert_eq!(built.tables.pt, 2);
    }
}

#[test]
fn a_region_owner_maps_under_its_own_table() {
    // The vmemmap's way: the table below the top-level entry made once,
    // then pages mapped under it without the tables above being read.
    for levels in [Levels::Four, Levels::Five] {
        let mut sim = sim();
        let base = Layout::fixed(levels).vmemmap_base();
        let top = levels.count() as u8;
        let (root, table) = {
            let mut builder = Builder::new(&mut sim.window, &mut sim.frames, levels).unwrap();
            let table = builder.table_for(base, top - 1).unwrap();
            // Asked again: the same table, nothing new.
            assert_eq!(builder.table_for(base + 0x1000, top - 1), Ok(table));
            assert_eq!(builder.tables_allocated().total(), 2);
            (builder.root(), table)
        };
        let mut builder = Builder::on_root(&mut sim.window, &mut sim.frames, levels, root);
        let page = mapping(base + 0x20_3000, 0x7000, 4 * K, W | NX, PageSize::Size4K);
        builder.map_under(table, top - 1, &page).unwrap();
        assert_eq!(
            builder.map_under(table, top - 1, &page),
            Err(BuildError::Overlap { virt: page.virt })
        );
        // Down to the leaf: a table per level below the top one.
        assert_eq!(builder.tables_allocated().total(), u64::from(top) - 2);
        let walker = builder.walker();
        let t = walker.translate(base + 0x20_3008).unwrap();
        assert_eq!(t.phys.as_u64(), 0x7008);
        assert_eq!(
            walker.translate_under(table, top - 1, base + 0x20_3008),
            Some(t)
        );
        assert_eq!(
            walker.translate_under(table, top - 1, base + 0x20_4000),
            None
        );
    }
}

#[test]
fn on_root_continues_existing_tables() {
    let mut sim = sim();
    let first = mapping(0x20_0000, 0, 4 * K, W, PageSize::Size4K);
    let second = mapping(0x20_1000, 0x1000, 4 * K, W, PageSize::Size4K);
    let root = {
        let mut builder = Builder::new(&mut sim.window, &mut sim.frames, Levels::Four).unwrap();
        builder.map(&first).unwrap();
        builder.root()
    };
    let mut builder = Builder::on_root(&mut sim.window, &mut sim.frames, Levels::Four, root);
    assert_eq!(builder.tables_allocated(), TableCount::default());
    builder.map(&second).unwrap();
    // The second page shares every table with the first.
    assert_eq!(builder.tables_allocated(), TableCount::default());
    assert_eq!(builder.leaves_written().size_4k, 1);
    assert_eq!(builder.walker().leaves().count(), 2);
    assert_eq!(sim.frames.allocated(), 4);
}

#[test]
fn translate_misses() {
    let mappings = [mapping(0x1000, 0x1000, 4 * K, W, PageSize::Size4K)];
    let built = build(Levels::Four, &mappings);
    let walker = built.walker();
    assert_eq!(walker.translate(0), None);
    assert_eq!(walker.translate(0x2000), None);
    // Non-canonical addresses never translate, though their low bits match.
    assert_eq!(walker.translate(0x0001_0000_0000_1000), None);
    assert!(walker.translate(0x1fff).is_some());
}

#[test]
fn leaves_and_stats_per_region() {
    use PageSize::*;
    let mappings = [
        mapping(
            0xffff_8880_0000_0000,
            0,
            2 * G + 2 * M + 4 * K,
            W | NX,
            Size1G,
        ),
        mapping(0xffff_c900_0000_0000, 0, 4 * M, W | NX, Size2M),
        mapping(0xffff_ffff_8000_0000, 0x20_0000, 2 * M + 4 * K, GLB, Size2M),
    ];
    let built = build(Levels::Four, &mappings);
    let walker = built.walker();
    let regions = [
        ("physmap", 0xffff_8880_0000_0000, 0xffff_c880_0000_0000),
        ("vmalloc", 0xffff_c900_0000_0000, 0xffff_e900_0000_0000),
        ("kernel", 0xffff_ffff_8000_0000, 0),
        ("lower half", 0, 0x0000_8000_0000_0000),
    ];
    let stats: Vec<_> = walker.region_stats(&regions).collect();
    let count = |size_4k, size_2m, size_1g| LeafCount {
        size_4k,
        size_2m,
        size_1g,
    };
    assert_eq!(
        stats,
        vec![
            ("physmap", count(1, 1, 2)),
            ("vmalloc", count(0, 2, 0)),
            ("kernel", count(1, 1, 0)),
            ("lower half", count(0, 0, 0)),
        ]
    );
    // A leaf that starts before the range still shows in `leaves_in`, not
    // in the count.
    let inside = 0xffff_8880_0000_0000 + G + 4 * K;
    let first = walker.leaves_in(inside, inside + 4 * K).next().unwrap();
    assert_eq!(first.virt, 0xffff_8880_0000_0000 + G);
    assert_eq!(walker.leaf_count_in(inside, inside + 4 * K).total(), 0);
    assert_eq!(walker.leaves_in(5, 5).count(), 0);
    assert_eq!(
        walker.leaves_in(0, 0).count() as u64,
        walker.stats().leaves.total()
    );
}

#[test]
fn large_page_pat_is_read_from_bit_12() {
    // baton never writes it, but the walker reads tables it did not build.
    let mappings = [mapping(
        0x20_0000,
        0x40_0000,
        2 * M,
        W | NX,
        PageSize::Size2M,
    )];
    let mut built = build(Levels::Four, &mappings);
    let leaf = built.walker().leaves().next().unwrap();
    assert!(!leaf.pat());
    let pd = {
        let walker = built.walker();
        let root = built.sim.window.table(walker.root());
        let pdpt = built.sim.window.table(root[0].frame().unwrap());
        pdpt[0].frame().unwrap()
    };
    let entry = &mut built.sim.window.table_mut(pd)[1];
    entry.set_addr(PhysAddr::new(0x40_1000), entry.flags());
    let leaf = built.walker().leaves().next().unwrap();
    assert!(leaf.pat());
    assert_eq!(leaf.phys.as_u64(), 0x40_0000);
    let mut dump = String::new();
    built.walker().ptdump(&mut dump, &[]).unwrap();
    assert!(
        dump.contains("2M     RW         PSE PAT     NX pmd"),
        "{dump}"
    );
}

// ---------------------------------------------------------------------------
// Errors.

fn first_error(levels: Levels, mappings: &[Mapping]) -> BuildError {
    let mut sim = sim();
    let mut builder = Builder::new(&mut sim.window, &mut sim.frames, levels).unwrap();
    mappings
        .iter()
        .find_map(|m| builder.map(m).err())
        .expect("an error")
}

#[test]
fn bad_mappings_are_rejected() {
    use BuildError::*;
    use PageSize::*;
    let ok = mapping(0x20_0000, 0x20_0000, 2 * M, W, Size2M);
    let four = |m: Mapping| first_error(Levels::Four, &[m]);
    assert_eq!(four(Mapping { len: 0, ..ok }), ZeroLength);
    assert_eq!(
        four(Mapping {
            virt: 0x20_0800,
            ..ok
        }),
        VirtUnaligned { virt: 0x20_0800 }
    );
    let phys = PhysAddr::new(0x20_0010);
    assert_eq!(four(Mapping { phys, ..ok }), PhysUnaligned { phys });
    assert_eq!(
        four(Mapping { len: 5000, ..ok }),
        LenUnaligned { len: 5000 }
    );
    assert_eq!(
        four(Mapping {
            flags: W | PageTableFlags::USER_ACCESSIBLE | PRESENT,
            ..ok
        }),
        UnsupportedFlags {
            flags: PageTableFlags::USER_ACCESSIBLE | PRESENT
        }
    );
    assert_eq!(
        four(Mapping {
            flags: W | PAT_4K,
            ..ok
        }),
        PatOnLargePages
    );
    assert_eq!(
        four(Mapping {
            virt: 0x0000_8000_0000_0000,
            ..ok
        }),
        NonCanonical {
            virt: 0x0000_8000_0000_0000
        }
    );
    // Crossing the hole names its first address.
    assert_eq!(
        four(Mapping {
            virt: 0x0000_7fff_ffe0_0000,
            len: 4 * M,
            ..ok
        }),
        NonCanonical {
            virt: 0x0000_8000_0000_0000
        }
    );
    assert_eq!(
        first_error(
            Levels::Five,
            &[Mapping {
                virt: 0x00ff_ffff_fff0_0000,
                len: 2 * M,
                ..ok
            }]
        ),
        NonCanonical {
            virt: 0x0100_0000_0000_0000
        }
    );
    assert_eq!(
        four(Mapping {
            virt: 0xffff_ffff_ffe0_0000,
            len: 4 * M,
            ..ok
        }),
        Wraps {
            virt: 0xffff_ffff_ffe0_0000,
            len: 4 * M
        }
    );
    let phys = PhysAddr::new(PHYS_LIMIT - 2 * M);
    assert_eq!(
        four(Mapping {
            phys,
            len: 4 * M,
            ..ok
        }),
        PhysOutOfRange { phys, len: 4 * M }
    );
    // PAT on 4 KiB pages is fine; 5-level takes what 4-level cannot.
    let pat = Mapping {
        flags: W | PAT_4K,
        max_page: Size4K,
        ..ok
    };
    assert_eq!(pat.check(Levels::Four), Ok(()));
    let high = Mapping {
        virt: 0x0000_8000_0000_0000,
        ..ok
    };
    assert_eq!(high.check(Levels::Five), Ok(()));
}

#[test]
fn overlaps_name_the_first_mapped_address() {
    use BuildError::Overlap;
    use PageSize::*;
    let page = |virt, len, max| mapping(virt, virt, len, W, max);
    // A 4 KiB leaf on a 4 KiB leaf.
    assert_eq!(
        first_error(
            Levels::Four,
            &[page(0x1000, 4 * K, Size4K), page(0, 8 * K, Size4K)]
        ),
        Overlap { virt: 0x1000 }
    );
    // A 4 KiB page where a 2 MiB leaf is (a leaf where a table is needed).
    assert_eq!(
        first_error(
            Levels::Four,
            &[
                page(2 * M, 2 * M, Size2M),
                page(2 * M + 0x3000, 4 * K, Size4K)
            ]
        ),
        Overlap {
            virt: 2 * M + 0x3000
        }
    );
    // A 2 MiB leaf where a table with a 4 KiB leaf is (vice versa).
    assert_eq!(
        first_error(
            Levels::Four,
            &[page(0x5000, 4 * K, Size4K), page(0, 2 * M, Size2M)]
        ),
        Overlap { virt: 0x5000 }
    );
    // A 1 GiB leaf over a 2 MiB one, found below a directory.
    assert_eq!(
        first_error(
            Levels::Five,
            &[page(G + 4 * M, 2 * M, Size2M), page(G, G, Size1G)]
        ),
        Overlap { virt: G + 4 * M }
    );
}

#[test]
fn running_out_of_frames() {
    let mut none = sim().with_limit(0);
    assert_eq!(
        Builder::new(&mut none.window, &mut none.frames, Levels::Four).err(),
        Some(BuildError::OutOfFrames)
    );
    // Root, PDPT and directory fit; the page table does not. Nothing of
    // the failed mapping is linked: the new tables are published only once
    // complete (their frames stay with the builder: a frame source has no
    // way back).
    let mut sim = sim().with_limit(3);
    let mut builder = Builder::new(&mut sim.window, &mut sim.frames, Levels::Four).unwrap();
    let page = mapping(G, 0, 4 * K, W, PageSize::Size4K);
    assert_eq!(builder.map(&page), Err(BuildError::OutOfFrames));
    assert_eq!(builder.tables_allocated().total(), 1);
    assert_eq!(builder.walker().stats().tables.total(), 1);
    assert_eq!(builder.walker().leaves().count(), 0);
    // No frame is left for the 1 GiB leaf's PDPT either.
    let gig = mapping(G, G, G, W, PageSize::Size1G);
    assert_eq!(builder.map(&gig), Err(BuildError::OutOfFrames));
}

#[test]
fn a_failed_map_leaves_no_garbage() {
    // Two page tables needed, room for one: the new PDPT, directory and
    // first page table are complete but their parent is not, so none is
    // linked and the walker sees the empty root only.
    let mut sim = sim().with_limit(4);
    let mut builder = Builder::new(&mut sim.window, &mut sim.frames, Levels::Four).unwrap();
    let across = mapping(2 * M - 4 * K, 0, 8 * K, W, PageSize::Size4K);
    assert_eq!(builder.map(&across), Err(BuildError::OutOfFrames));
    let stats = builder.walker().stats();
    assert_eq!(stats.tables.total(), 1);
    assert_eq!(stats.leaves.total(), 0);
    // In existing tables, the leaves written before the failure stay and
    // nothing else does.
    let mut sim = self::sim().with_limit(4);
    let mut builder = Builder::new(&mut sim.window, &mut sim.frames, Levels::Four).unwrap();
    builder
        .map(&mapping(0, 0, 4 * K, W, PageSize::Size4K))
        .unwrap();
    let across = mapping(2 * M - 4 * K, 0, 8 * K, W, PageSize::Size4K);
    assert_eq!(builder.map(&across), Err(BuildError::OutOfFrames));
    let leaves: Vec<_> = builder.walker().leaves().map(|leaf| leaf.virt).collect();
    assert_eq!(leaves, vec![0, 2 * M - 4 * K]);
    assert_eq!(builder.walker().stats().tables.total(), 4);
}

/// Puts `value` into entry `i` of the table at `level` on the way to `va`
/// in the tables under `root`.
fn poke(sim: &mut Sim, root: PhysFrame, va: u64, level: u8, i: usize, value: u64) {
    let mut frame = root;
    for l in (level + 1..=4).rev() {
        let table = sim.window.table(frame);
        frame = table[super::pages::index(va, l)].frame().unwrap();
    }
    let addr = PhysAddr::new(value & 0x000f_ffff_ffff_f000);
    let flags = PageTableFlags::from_bits_retain(value & !0x000f_ffff_ffff_f000);
    sim.window.table_mut(frame)[i].set_addr(addr, flags);
}

#[test]
fn entries_the_builder_cannot_use() {
    use BuildError::*;
    let map_after_poke = |level: u8, i: usize, value: u64, m: Mapping| {
        let mut sim = sim();
        let root = {
            let mut builder = Builder::new(&mut sim.window, &mut sim.frames, Levels::Four).unwrap();
            builder
                .map(&mapping(0, 0, 4 * K, W, PageSize::Size4K))
                .unwrap();
            builder.root()
        };
        poke(&mut sim, root, 0, level, i, value);
        let mut builder = Builder::on_root(&mut sim.window, &mut sim.frames, Levels::Four, root);
        builder.map(&m)
    };
    let page = |virt| mapping(virt, 0, 4 * K, W, PageSize::Size4K);
    let not_present = 0x1000 | W.bits();
    // A table needed where the entry is not present but not empty either.
    assert_eq!(
        map_after_poke(4, 1, not_present, page(512 * G)),
        Err(NotATable {
            virt: 512 * G,
            level: 4
        })
    );
    // ... a large-page bit in the PML4 (reserved).
    assert_eq!(
        map_after_poke(4, 1, 0x20_0000 | (PRESENT | W | HUGE).bits(), page(512 * G)),
        Err(NotATable {
            virt: 512 * G,
            level: 4
        })
    );
    // ... a table entry that takes away permissions (user, no-execute).
    for extra in [PageTableFlags::USER_ACCESSIBLE, NX] {
        let frame = 0x100_0000 + 4 * K; // The PDPT, second frame handed out.
        assert_eq!(
            map_after_poke(4, 0, frame | (PRESENT | W | extra).bits(), page(G)),
            Err(NotATable { virt: G, level: 4 })
        );
    }
    // A leaf needed where the entry is not present but not empty.
    assert_eq!(
        map_after_poke(1, 1, not_present, page(0x1000)),
        Err(NotEmpty {
            virt: 0x1000,
            level: 1
        })
    );
}

#[test]
fn lower_half_entries_must_be_absent() {
    use PageSize::*;
    for levels in [Levels::Four, Levels::Five] {
        // The first upper-half entry and the last entry do not count.
        let upper = levels.sign_extend(1 << (levels.va_bits() - 1));
        let mappings = [
            mapping(upper, 0, 4 * K, W | NX, Size4K),
            mapping(0xffff_ffff_8000_0000, 0x20_0000, 4 * K, GLB, Size4K),
        ];
        let mut built = build(levels, &mappings);
        assert_eq!(built.walker().lower_half_entry(), None, "{levels:?}");
        // A present top-level entry over an empty table: no leaf, but the
        // lower half is not empty.
        let root = built.root;
        let table = built.sim.frames.allocate_frame().unwrap();
        built.sim.window.table_mut(table).zero();
        built.sim.window.table_mut(root)[255].set_frame(table, PRESENT | W);
        assert_eq!(built.walker().leaves_in(0, 1 << 47).count(), 0);
        let (i, value) = built.walker().lower_half_entry().unwrap();
        assert_eq!(i, 255);
        assert_eq!(value, table.start_address().as_u64() | (PRESENT | W).bits());
    }
    // A leaf in the lower half is found through its top-level entry.
    let built = build(
        Levels::Four,
        &[mapping(0x1000, 0x1000, 4 * K, W | NX, Size4K)],
    );
    assert_eq!(built.walker().lower_half_entry().map(|(i, _)| i), Some(0));
}

#[test]
fn errors_display_their_address() {
    let text = std::format!(
        "{}",
        BuildError::Overlap {
            virt: 0xffff_8000_0000_1000
        }
    );
    assert!(text.contains("0xffff800000001000"), "{text}");
    let text = std::format!(
        "{}",
        BuildError::NotATable {
            virt: 0x1000,
            level: 4
        }
    );
    assert!(
        text.contains("level-4") && text.contains("0x1000"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// ptdump and W^X.

#[test]
fn ptdump_four_level() {
    use PageSize::*;
    let mappings = [
        mapping(0x40_0000, 0x40_0000, 8 * K, W, Size4K),
        mapping(0xffff_8880_0000_0000, 0, G, W | NX | GLB, Size1G),
        mapping(
            0xffff_c900_0000_0000,
            0xfee0_0000,
            4 * K,
            W | NX | PCD | PWT,
            Size4K,
        ),
        mapping(0xffff_ffff_8000_0000, 0x20_0000, 2 * M + 8 * K, GLB, Size2M),
        mapping(
            0xffff_ffff_8020_2000,
            0x50_0000,
            4 * K,
            W | NX | GLB,
            Size4K,
        ),
    ];
    let built = build(Levels::Four, &mappings);
    let markers = [
        (0, "User Space"),
        (0x8000_0000_0000_0000, "Kernel Space"),
        (0xffff_ffff_8000_0000, "High Kernel Mapping"),
    ];
    let mut dump = String::new();
    built.walker().ptdump(&mut dump, &markers).unwrap();
    let expected = "\
---[ User Space ]---
0x0000000000000000-0x0000000000400000           4M                               pmd
0x0000000000400000-0x0000000000402000           8K     RW                     x  pte
0x0000000000402000-0x0000000000600000        2040K                               pte
0x0000000000600000-0x0000000040000000        1018M                               pmd
0x0000000040000000-0x0000008000000000         511G                               pud
0x0000008000000000-0xffff800000000000   17179737600G                               pgd
---[ Kernel Space ]---
0xffff800000000000-0xffff888000000000        8704G                               pgd
0xffff888000000000-0xffff888040000000           1G     RW         PSE     GLB NX pud
0xffff888040000000-0xffff890000000000         511G                               pud
0xffff890000000000-0xffffc90000000000          64T                               pgd
0xffffc90000000000-0xffffc90000001000           4K     RW PWT PCD             NX pte
0xffffc90000001000-0xffffc90000200000        2044K                               pte
0xffffc90000200000-0xffffc90040000000        1022M                               pmd
0xffffc90040000000-0xffffc98000000000         511G                               pud
0xffffc98000000000-0xffffff8000000000          54T                               pgd
0xffffff8000000000-0xffffffff80000000         510G                               pud
---[ High Kernel Mapping ]---
0xffffffff80000000-0xffffffff80200000           2M     ro         PSE     GLB x  pmd
0xffffffff80200000-0xffffffff80202000           8K     ro                 GLB x  pte
0xffffffff80202000-0xffffffff80203000           4K     RW                 GLB NX pte
0xffffffff80203000-0xffffffff80400000        2036K                               pte
0xffffffff80400000-0xffffffffc0000000        1020M                               pmd
0xffffffffc0000000-0x0000000000000000           1G                               pud
";
    assert_eq!(dump, expected, "\n{dump}");
}

#[test]
fn ptdump_five_level() {
    let mappings = [mapping(
        0xff11_0000_0000_0000,
        0x8000_0000,
        4 * K,
        W | NX | GLB | PAT_4K,
        PageSize::Size4K,
    )];
    let built = build(Levels::Five, &mappings);
    let mut dump = String::new();
    built.walker().ptdump(&mut dump, &[]).unwrap();
    let expected = "\
0x0000000000000000-0xff11000000000000    16716032T                               pgd
0xff11000000000000-0xff11000000001000           4K     RW             PAT GLB NX pte
0xff11000000001000-0xff11000000200000        2044K                               pte
0xff11000000200000-0xff11000040000000        1022M                               pmd
0xff11000040000000-0xff11008000000000         511G                               pud
0xff11008000000000-0xff12000000000000      261632G                               p4d
0xff12000000000000-0x0000000000000000       60928T                               pgd
";
    assert_eq!(dump, expected, "\n{dump}");
}

#[test]
fn ptdump_prints_every_marker_crossed() {
    // Two markers inside one empty top-level entry split its run and print
    // at their own addresses; one that is not page-aligned (Linux's
    // end-of-space marker, -1) never prints.
    let built = build(Levels::Four, &[]);
    let mut dump = String::new();
    let markers = [
        (0, "Low"),
        (0x1000, "A"),
        (0x2000, "B"),
        (u64::MAX, "Never"),
    ];
    built.walker().ptdump(&mut dump, &markers).unwrap();
    let expected = "\
---[ Low ]---
0x0000000000000000-0x0000000000001000           4K                               pgd
---[ A ]---
0x0000000000001000-0x0000000000002000           4K                               pgd
---[ B ]---
0x0000000000002000-0x0000000000000000   18014398509481976K                               pgd
";
    assert_eq!(dump, expected, "\n{dump}");
}

#[test]
fn wx_check_passes_clean_tables() {
    use PageSize::*;
    let mappings = [
        mapping(0xffff_ffff_8000_0000, 0x20_0000, 2 * M, GLB, Size2M),
        mapping(
            0xffff_ffff_8020_0000,
            0x40_0000,
            2 * M,
            W | NX | GLB,
            Size2M,
        ),
        mapping(0x1000, 0x1000, 4 * K, NX, Size4K),
    ];
    let built = build(Levels::Four, &mappings);
    let mut reported = 0;
    let summary = built.walker().check_wx(|_| reported += 1);
    assert_eq!(summary, WxSummary { pages: 0 });
    assert_eq!(reported, 0);
    assert_eq!(
        std::format!("{summary}"),
        "x86/mm: Checked W+X mappings: passed, no W+X pages found."
    );
    assert_eq!(WX_PASSED, std::format!("{summary}"));
}

#[test]
fn wx_check_reports_each_run() {
    use PageSize::*;
    let mappings = [
        mapping(0x40_0000, 0x40_0000, 8 * K, W, Size4K),
        mapping(0x40_2000, 0x40_2000, 4 * K, W | NX, Size4K),
        mapping(0xffff_ffff_8000_0000, 0x20_0000, 4 * M, W | GLB, Size2M),
        mapping(0xffff_ffff_8040_0000, 0x60_0000, 4 * K, W | GLB, Size4K),
    ];
    let built = build(Levels::Four, &mappings);
    let mut ranges = Vec::new();
    let summary = built.walker().check_wx(|range| ranges.push(*range));
    let (p, rw, glb, pse) = (PRESENT.bits(), W.bits(), GLB.bits(), HUGE.bits());
    let four = Levels::Four;
    assert_eq!(
        ranges,
        vec![
            WxRange {
                start: 0x40_0000,
                end: 0x40_2000,
                level: 1,
                prot: p | rw,
                levels: four,
            },
            WxRange {
                start: 0xffff_ffff_8000_0000,
                end: 0xffff_ffff_8040_0000,
                level: 2,
                prot: p | rw | pse | glb,
                levels: four,
            },
            WxRange {
                start: 0xffff_ffff_8040_0000,
                end: 0xffff_ffff_8040_1000,
                level: 1,
                prot: p | rw | glb,
                levels: four,
            },
        ]
    );
    assert_eq!(summary.pages, 2 + 1024 + 1);
    assert_eq!(
        std::format!("{summary}"),
        "x86/mm: Checked W+X mappings: FAILED, 1027 W+X pages found."
    );
    let lines: Vec<_> = ranges.iter().map(|r| std::format!("{r}")).collect();
    assert_eq!(
        lines,
        [
            "x86/mm: Found insecure W+X mapping at address 0x400000-0x402000 (8K RW x pte)",
            "x86/mm: Found insecure W+X mapping at address \
             0xffffffff80000000-0xffffffff80400000 (4M RW PSE GLB x pmd)",
            "x86/mm: Found insecure W+X mapping at address \
             0xffffffff80400000-0xffffffff80401000 (4K RW GLB x pte)",
        ]
    );
}

#[test]
fn wx_range_names_the_level_of_its_paging_mode() {
    // A 1 GiB W+X page under 5-level paging, with the PAT bit of a large
    // page, a user bit and caching bits: every column the dump shows.
    let range = WxRange {
        start: 0xff11_0000_0000_0000,
        end: 0xff11_0000_4000_0000,
        level: 3,
        prot: (PRESENT | W | PageTableFlags::USER_ACCESSIBLE | PWT | PCD | HUGE).bits()
            | super::pages::PAT_LARGE.bits(),
        levels: Levels::Five,
    };
    assert_eq!(range.pages(), 1 << 18);
    assert_eq!(
        std::format!("{range}"),
        "x86/mm: Found insecure W+X mapping at address \
         0xff11000000000000-0xff11000040000000 (1G USR RW PWT PCD PSE PAT x pud)"
    );
    // A p4d-level run is named after the 5-level tables.
    let p4d = WxRange {
        level: 4,
        prot: (PRESENT | W).bits(),
        ..range
    };
    assert!(std::format!("{p4d}").ends_with("(1G RW x p4d)"));
}

#[test]
fn wx_check_uses_the_effective_protection() {
    // A W+X leaf under a no-execute or read-only table entry is not W+X.
    for taken in [NX, PageTableFlags::empty()] {
        let mappings = [mapping(0x1000, 0x1000, 4 * K, W, PageSize::Size4K)];
        let mut built = build(Levels::Four, &mappings);
        let root = built.root;
        let pdpt = built.sim.window.table(root)[0].frame().unwrap();
        let flags = PRESENT | taken;
        built.sim.window.table_mut(root)[0].set_frame(pdpt, flags);
        let walker = built.walker();
        assert_eq!(walker.check_wx(|_| {}).pages, 0, "{flags:?}");
        // The leaf itself still says W+X.
        assert!(walker.translate(0x1000).unwrap().leaf.flags.contains(W));
    }
}

// ---------------------------------------------------------------------------
// Properties over random layouts.

/// One mapping of a random layout: the gap before it, its length in pieces,
/// how its physical address is aligned relative to the virtual one, its
/// flags and page-size limit.
type Spec = (u64, (u64, u64, u64, u64), u64, u8, PageSize);

fn spec(max: PageSize) -> impl Strategy<Value = Spec> {
    let gap = prop_oneof![
        // Next to the previous mapping, often in the same tables.
        (0u64..4).prop_map(|pages| pages * 4 * K),
        // Anywhere in the next 4 GiB, any alignment.
        (0u64..(1 << 20)).prop_map(|pages| pages * 4 * K),
        // Across PML4 entries.
        (0u64..1024).prop_map(|gigs| gigs * G),
        // Across PML5 entries (and out of the 4-level lower half).
        (0u64..4).prop_map(|n| n << 47),
    ];
    let pieces = (0u64..600, 0u64..4, 0u64..3, 0u64..600);
    let offset = prop_oneof![
        Just(0u64),
        (1u64..1024).prop_map(|k| k * 2 * M),
        (1u64..1024).prop_map(|k| k * 4 * K),
    ];
    let sizes = PageSize::ALL
        .into_iter()
        .filter(move |&s| s <= max)
        .collect::<Vec<_>>();
    (
        gap,
        pieces,
        offset,
        any::<u8>(),
        proptest::sample::select(sizes),
    )
}

/// Disjoint mappings laid out upwards from `base`, stopping where one is
/// not valid (non-canonical, wrapping).
fn layout(levels: Levels, base: u64, specs: Vec<Spec>) -> Vec<Mapping> {
    let mut mappings = Vec::new();
    let mut cursor = base;
    for (gap, (head, mid, big, tail), offset, bits, max_page) in specs {
        let Some(virt) = cursor.checked_add(gap) else {
            break;
        };
        // Keep the count of leaves small: no GiBs in 4 KiB pages, few
        // MiBs.
        let only_4k = max_page == PageSize::Size4K || offset % (2 * M) != 0;
        let (mid, big) = if only_4k { (mid, 0) } else { (mid, big) };
        let len = (head + tail) * 4 * K + mid * 2 * M + big * G;
        let len = len.max(4 * K);
        let phys = (virt & (64 * G - 1)) + offset;
        let mut flags = PageTableFlags::empty();
        for (bit, flag) in [W, NX, GLB, PWT, PCD, PAT_4K].into_iter().enumerate() {
            if bits & (1 << bit) != 0 {
                flags |= flag;
            }
        }
        if max_page != PageSize::Size4K {
            flags.remove(PAT_4K);
        }
        let m = mapping(virt, phys, len, flags, max_page);
        if m.check(levels).is_err() {
            break;
        }
        mappings.push(m);
        match virt.checked_add(len) {
            Some(end) => cursor = end,
            None => break,
        }
    }
    mappings
}

fn random_layout(levels: Levels, max: PageSize) -> impl Strategy<Value = Vec<Mapping>> {
    let bases = match levels {
        Levels::Four => [0, 0xffff_8000_0000_0000, 0xffff_ffc0_0000_0000],
        Levels::Five => [0, 0xff00_0000_0000_0000, 0xffff_ffc0_0000_0000],
    };
    (
        proptest::sample::select(bases.to_vec()),
        proptest::collection::vec(spec(max), 1..8),
    )
        .prop_map(move |(base, specs)| layout(levels, base, specs))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn four_level_layouts(mappings in random_layout(Levels::Four, PageSize::Size1G)) {
        verify(&build(Levels::Four, &mappings), &mappings);
    }

    #[test]
    fn four_level_layouts_without_1g(mappings in random_layout(Levels::Four, PageSize::Size2M)) {
        verify(&build(Levels::Four, &mappings), &mappings);
    }

    #[test]
    fn five_level_layouts(mappings in random_layout(Levels::Five, PageSize::Size1G)) {
        verify(&build(Levels::Five, &mappings), &mappings);
    }

    #[test]
    fn five_level_layouts_without_1g(mappings in random_layout(Levels::Five, PageSize::Size2M)) {
        verify(&build(Levels::Five, &mappings), &mappings);
    }

    #[test]
    fn mapping_in_any_order_gives_the_same_tables(
        mappings in random_layout(Levels::Four, PageSize::Size1G),
        seed in any::<u64>(),
    ) {
        let mut shuffled = mappings.clone();
        // A cheap deterministic shuffle.
        let n = shuffled.len();
        for i in (1..n).rev() {
            let j = (seed.rotate_left(i as u32) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        let built = build(Levels::Four, &shuffled);
        verify(&built, &mappings);
    }

    #[test]
    fn an_overlapping_mapping_is_refused(
        mappings in random_layout(Levels::Four, PageSize::Size1G),
        pick in any::<prop::sample::Index>(),
        page in any::<prop::sample::Index>(),
    ) {
        prop_assume!(!mappings.is_empty());
        let victim = *pick.get(&mappings);
        let pages = victim.len / (4 * K);
        let va = victim.virt + page.index(pages as usize) as u64 * 4 * K;
        let mut sim = sim();
        let mut builder = Builder::new(&mut sim.window, &mut sim.frames, Levels::Four).unwrap();
        for m in &mappings {
            builder.map(m).unwrap();
        }
        let clash = mapping(va, 0, 4 * K, W, PageSize::Size4K);
        prop_assert_eq!(builder.map(&clash), Err(BuildError::Overlap { virt: va }));
    }
}

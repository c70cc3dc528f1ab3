//! Unmapping against the strict fake: tables built by the builder, ranges
//! unmapped, and the walker, the table counts and the freed frames held to
//! a model of the leaves that should remain.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::Index;
use x86_64::PhysAddr;
use x86_64::structures::paging::{PageTableFlags, PhysFrame};

use super::super::pages::{Entry, classify, entry_shift, index};
use super::*;
use crate::Levels;
use crate::paging::{Builder, Mapping, minimum_tables};
use crate::sim::Sim;

const K: u64 = 1 << 10;
const M: u64 = 1 << 20;
const G: u64 = 1 << 30;

const W: PageTableFlags = PageTableFlags::WRITABLE;
const NX: PageTableFlags = PageTableFlags::NO_EXECUTE;
const PRESENT: PageTableFlags = PageTableFlags::PRESENT;
const HUGE: PageTableFlags = PageTableFlags::HUGE_PAGE;

fn mapping(virt: u64, phys: u64, len: u64, max_page: PageSize) -> Mapping {
    Mapping {
        virt,
        phys: PhysAddr::new(phys),
        len,
        flags: W | NX,
        max_page,
    }
}

/// One planned leaf and the mapping it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Planned {
    leaf: Leaf,
    mapping: usize,
}

/// Tables built into a fake, and a model of what they map.
struct Tables {
    sim: Sim,
    root: PhysFrame,
    levels: Levels,
    mappings: Vec<Mapping>,
    /// The leaves that should be mapped, in address order.
    model: Vec<Planned>,
    /// The table frames handed back so far.
    freed: BTreeSet<u64>,
}

impl Tables {
    fn new(levels: Levels, mappings: &[Mapping]) -> Tables {
        let mut sim = Sim::new(
            PhysAddr::new(0x100_0000),
            PhysAddr::new(0x100_0000 + (1 << 40)),
        );
        let mut builder = Builder::new(&mut sim.window, &mut sim.frames, levels).unwrap();
        for m in mappings {
            builder.map(m).unwrap();
        }
        let root = builder.root();
        let mut model: Vec<Planned> = mappings
            .iter()
            .enumerate()
            .flat_map(|(i, m)| {
                m.pages().map(move |(virt, phys, size)| Planned {
                    leaf: Leaf {
                        virt,
                        phys,
                        size,
                        flags: if size == PageSize::Size4K {
                            m.flags | PRESENT
                        } else {
                            m.flags | PRESENT | HUGE
                        },
                        level: size.level(),
                    },
                    mapping: i,
                })
            })
            .collect();
        model.sort_by_key(|p| p.leaf.virt);
        Tables {
            sim,
            root,
            levels,
            mappings: mappings.to_vec(),
            model,
            freed: BTreeSet::new(),
        }
    }

    fn walker(&self) -> Walker<'_, crate::sim::SimWindow> {
        Walker::new(&self.sim.window, self.root, self.levels)
    }

    /// Unmaps through an [`Unmapper`], recording what the callbacks see.
    fn unmap(&mut self, virt: u64, len: u64) -> Result<(Unmapped, Vec<Leaf>), UnmapError> {
        let bases = self.tables();
        // One log, so that the order of the two callbacks shows.
        let leaves = RefCell::new(Vec::new());
        let mut tables = Vec::new();
        let mut unmapper = Unmapper::new(&mut self.sim.window, self.root, self.levels);
        let done = unmapper.unmap(
            virt,
            len,
            |leaf| leaves.borrow_mut().push(*leaf),
            |frame, level| tables.push((frame, level, leaves.borrow().len())),
        )?;
        let leaves = leaves.into_inner();
        let mut freed = TableCount::default();
        for (frame, level, reported) in tables {
            let addr = frame.start_address().as_u64();
            assert!(self.freed.insert(addr), "{frame:?} freed twice");
            assert_ne!(frame, self.root);
            let &(at_level, base) = bases.get(&addr).expect("a table of the tree");
            assert_eq!(level, at_level);
            // Every leaf below the table was reported before it.
            let span = 1u64 << entry_shift(level + 1);
            assert!(
                leaves[reported..]
                    .iter()
                    .all(|l| l.virt.wrapping_sub(base) >= span),
                "a leaf below {frame:?} was reported after it"
            );
            freed.add(level, 1);
        }
        assert_eq!(done.tables, freed);
        Ok((done, leaves))
    }

    /// Every table reachable from the root: its level and the first
    /// address it spans.
    fn tables(&self) -> BTreeMap<u64, (u8, u64)> {
        let mut out = BTreeMap::new();
        self.collect(self.root, self.levels.count() as u8, 0, &mut out);
        out
    }

    fn collect(&self, frame: PhysFrame, level: u8, base: u64, out: &mut BTreeMap<u64, (u8, u64)>) {
        out.insert(frame.start_address().as_u64(), (level, base));
        if level == 1 {
            return;
        }
        let top = level == self.levels.count() as u8;
        for (i, entry) in self.sim.window.table(frame).iter().enumerate() {
            let offset = (i as u64) << entry_shift(level);
            let child_base = if top {
                self.levels.sign_extend(offset)
            } else {
                base + offset
            };
            if let Entry::Table(child, _) = classify(entry, level) {
                self.collect(child, level - 1, child_base, out);
            }
        }
    }

    /// The model's leaves that `virt..virt + len` should unmap, or the
    /// error it should give.
    fn expect(&self, virt: u64, len: u64) -> Result<Vec<Leaf>, UnmapError> {
        let last = virt + (len - 1);
        let mut removed = Vec::new();
        for p in &self.model {
            let leaf_last = p.leaf.virt + (p.leaf.size.bytes() - 1);
            if leaf_last < virt || p.leaf.virt > last {
                continue;
            }
            if p.leaf.virt < virt || leaf_last > last {
                return Err(UnmapError::SplitNeeded {
                    virt: p.leaf.virt,
                    size: p.leaf.size,
                });
            }
            removed.push(p.leaf);
        }
        Ok(removed)
    }

    /// Unmaps and checks the result against the model, then updates it.
    fn unmap_and_check(&mut self, virt: u64, len: u64) {
        let before: Vec<Leaf> = self.walker().leaves().collect();
        let expected = self.expect(virt, len);
        match (self.unmap(virt, len), expected) {
            (Ok((done, leaves)), Ok(removed)) => {
                assert_eq!(leaves, removed, "unmap {virt:#x}+{len:#x}");
                let mut count = LeafCount::default();
                for leaf in &removed {
                    count.add(leaf.size, 1);
                }
                assert_eq!(done.leaves, count);
                let last = virt + (len - 1);
                self.model
                    .retain(|p| p.leaf.virt < virt || p.leaf.virt > last);
            }
            (Err(err), Err(expected)) => {
                // Both name the first large page sticking out.
                assert_eq!(err, expected);
                let after: Vec<Leaf> = self.walker().leaves().collect();
                assert_eq!(after, before, "a refused unmap changed the tables");
            }
            (got, expected) => panic!(
                "unmap {virt:#x}+{len:#x}: got {:?}, expected {:?}",
                got.map(|(done, _)| done),
                expected.map(|leaves| leaves.len())
            ),
        }
        self.check();
    }

    /// The tables map exactly the model and take exactly the tables the
    /// remaining leaves need; every other frame was freed.
    fn check(&self) {
        let walker = self.walker();
        let leaves: Vec<Leaf> = walker.leaves().collect();
        let model: Vec<Leaf> = self.model.iter().map(|p| p.leaf).collect();
        assert_eq!(leaves, model, "walked leaves differ from the model");
        let stats = walker.stats();
        let remaining = self.remaining_mappings();
        assert_eq!(stats.tables, minimum_tables(&remaining, self.levels));
        assert_eq!(stats.tables, self.distinct_prefixes());
        assert_eq!(
            self.sim.frames.allocated() - self.freed.len() as u64,
            stats.tables.total(),
            "frames neither in the tables nor freed"
        );
        // No freed frame is still reachable.
        let reachable = self.tables();
        assert!(self.freed.iter().all(|f| !reachable.contains_key(f)));
        assert_eq!(reachable.len() as u64, stats.tables.total());
    }

    /// What is left, as mappings: runs of remaining leaves of one mapping.
    fn remaining_mappings(&self) -> Vec<Mapping> {
        let mut out: Vec<(usize, Mapping)> = Vec::new();
        for p in &self.model {
            let bytes = p.leaf.size.bytes();
            if let Some((i, m)) = out.last_mut()
                && *i == p.mapping
                && m.virt + m.len == p.leaf.virt
            {
                m.len += bytes;
                continue;
            }
            let original = self.mappings[p.mapping];
            out.push((
                p.mapping,
                Mapping {
                    virt: p.leaf.virt,
                    phys: p.leaf.phys,
                    len: bytes,
                    ..original
                },
            ));
        }
        out.into_iter().map(|(_, m)| m).collect()
    }

    /// The tables the remaining leaves need, counted from the definition:
    /// distinct parent prefixes, the root once.
    fn distinct_prefixes(&self) -> TableCount {
        let top = self.levels.count() as u8;
        let mut seen = BTreeSet::new();
        for p in &self.model {
            for level in p.leaf.level..top {
                seen.insert((level, p.leaf.virt >> entry_shift(level + 1)));
            }
        }
        let mut count = TableCount::default();
        count.add(top, 1);
        for (level, _) in seen {
            count.add(level, 1);
        }
        count
    }
}

#[test]
fn unmap_mixed_page_sizes() {
    use PageSize::*;
    let base = 0xffff_c900_0000_0000;
    let mappings = [
        // 4 KiB, 2 MiB, 1 GiB, 2 MiB, 4 KiB leaves.
        mapping(
            base + G - 2 * M - 8 * K,
            G - 2 * M - 8 * K,
            G + 4 * M + 16 * K,
            Size1G,
        ),
        // A lone page in another PML4 entry.
        mapping(base + (512 * G), 0x5000, 4 * K, Size4K),
    ];
    let mut t = Tables::new(Levels::Four, &mappings);
    t.check();
    let before = t.walker().stats();
    assert_eq!(before.leaves.size_1g, 1);

    // The 1 GiB page and the 2 MiB page after it.
    t.unmap_and_check(base + G, G + 2 * M);
    assert_eq!(t.walker().stats().leaves.size_1g, 0);
    // The head: two 4 KiB pages and a 2 MiB page; its page table goes.
    let (done, leaves) = t.unmap(base + G - 2 * M - 8 * K, 2 * M + 8 * K).unwrap();
    assert_eq!(
        leaves.iter().map(|l| l.size).collect::<Vec<_>>(),
        [Size4K, Size4K, Size2M]
    );
    assert_eq!(done.tables.pt, 1);
    t.model.retain(|p| p.leaf.virt >= base + G);
    t.check();
    // The lone page: its PT, PD and PDPT go, the root stays.
    let (done, _) = t.unmap(base + 512 * G, 4 * K).unwrap();
    assert_eq!(
        done.tables,
        TableCount {
            pdpt: 1,
            pd: 1,
            pt: 1,
            ..TableCount::default()
        }
    );
    t.model.retain(|p| p.leaf.virt != base + 512 * G);
    t.check();
    // The tail and an unmapped stretch beyond it: everything but the root.
    t.unmap_and_check(base + 2 * G, 4 * G);
    assert!(t.model.is_empty());
    assert_eq!(t.walker().stats().tables.total(), 1);
    // Nothing left: unmapping again reports nothing.
    assert_eq!(
        t.unmap(base, 8 * G).unwrap(),
        (Unmapped::default(), Vec::new())
    );
}

#[test]
fn large_pages_are_never_split() {
    use PageSize::*;
    let mappings = [
        mapping(0x4000_0000, 0x4000_0000, G, Size1G),
        mapping(0x8000_0000, 0x20_0000, 4 * M, Size2M),
    ];
    let mut t = Tables::new(Levels::Four, &mappings);
    let split = |virt, size| Err(UnmapError::SplitNeeded { virt, size });
    // Starting inside the 1 GiB page.
    assert_eq!(t.unmap(0x4000_1000, 4 * K), split(0x4000_0000, Size1G));
    // Ending inside the second 2 MiB page.
    assert_eq!(t.unmap(0x8000_0000, 3 * M), split(0x8020_0000, Size2M));
    // Both edges inside: the start is named.
    assert_eq!(t.unmap(0x7fff_f000, 2 * M), split(0x4000_0000, Size1G));
    // Nothing changed.
    t.check();
    // Whole pages go.
    t.unmap_and_check(0x8020_0000, 2 * M);
    t.unmap_and_check(0x3fff_f000, G + 4 * K);
}

#[test]
fn bad_ranges_are_refused() {
    let mut t = Tables::new(
        Levels::Four,
        &[mapping(0x1000, 0x1000, 4 * K, PageSize::Size4K)],
    );
    use UnmapError::*;
    assert_eq!(t.unmap(0x1000, 0), Err(ZeroLength));
    assert_eq!(t.unmap(0x1800, 4 * K), Err(VirtUnaligned { virt: 0x1800 }));
    assert_eq!(t.unmap(0x1000, 0x800), Err(LenUnaligned { len: 0x800 }));
    assert_eq!(
        t.unmap(0x0000_8000_0000_0000, 4 * K),
        Err(NonCanonical {
            virt: 0x0000_8000_0000_0000
        })
    );
    // Running out of the lower half into the hole.
    assert_eq!(
        t.unmap(0x0000_7fff_ffff_f000, 8 * K),
        Err(NonCanonical {
            virt: 0x0000_8000_0000_0000
        })
    );
    assert_eq!(
        t.unmap(0xffff_ffff_ffff_f000, 8 * K),
        Err(Wraps {
            virt: 0xffff_ffff_ffff_f000,
            len: 8 * K
        })
    );
    assert_eq!(
        SplitNeeded {
            virt: 0x4000_0000,
            size: PageSize::Size1G
        }
        .to_string(),
        "unmapping would split the 1 GiB page at 0x40000000, which is not supported"
    );
    t.check();
}

#[test]
fn the_top_of_the_address_space() {
    for levels in [Levels::Four, Levels::Five] {
        let top = 0xffff_ffff_ffe0_0000;
        let mappings = [
            mapping(top - 8 * K, 0x1000, 8 * K, PageSize::Size4K),
            mapping(top, 0x20_0000, 2 * M, PageSize::Size2M),
        ];
        let mut t = Tables::new(levels, &mappings);
        t.unmap_and_check(top, 2 * M);
        t.unmap_and_check(top - 4 * K, 4 * K);
        t.unmap_and_check(top - 8 * K, 2 * M + 8 * K);
        assert_eq!(t.walker().stats().tables.total(), 1);
    }
}

#[test]
fn entries_that_map_nothing_are_cleared_and_empty_tables_freed() {
    let mut t = Tables::new(
        Levels::Four,
        &[mapping(0x20_0000, 0, 4 * K, PageSize::Size4K)],
    );
    // A non-present, non-zero entry next to the page, in the same table.
    let frame = |t: &Tables, va: u64, level: u8| {
        let mut frame = t.root;
        for l in (level + 1..=4).rev() {
            frame = t.sim.window.table(frame)[index(va, l)].frame().unwrap();
        }
        frame
    };
    let pt = frame(&t, 0x20_0000, 1);
    t.sim.window.table_mut(pt)[1].set_addr(PhysAddr::new(0x7000), W);
    // Unmapping the page alone keeps the table: the stray entry is outside.
    let (done, leaves) = t.unmap(0x20_0000, 4 * K).unwrap();
    assert_eq!((done.leaves.size_4k, done.tables.total()), (1, 0));
    assert_eq!(leaves.len(), 1);
    t.model.clear();
    assert_eq!(t.walker().stats().tables.total(), 4);
    // Unmapping over the stray entry clears it, and every table goes.
    let (done, leaves) = t.unmap(0x20_1000, 4 * K).unwrap();
    assert!(leaves.is_empty());
    assert_eq!(done.leaves, LeafCount::default());
    assert_eq!(done.tables.total(), 3);
    t.check();
}

// ---------------------------------------------------------------------------
// Random layouts, random unmaps.

/// A mapping of a random layout: the gap before it (4 KiB pages), its
/// length as 4 KiB head and tail pages, 2 MiB pages and 1 GiB pages, and
/// whether its physical address allows large pages.
type Spec = (u64, (u64, u64, u64), bool, PageSize);

fn spec() -> impl Strategy<Value = Spec> {
    let gap = prop_oneof![
        (0u64..4),
        (0u64..(1 << 19)),
        (0u64..4).prop_map(|gigs| gigs << 18),
    ];
    let size = prop_oneof![
        Just(PageSize::Size4K),
        Just(PageSize::Size2M),
        Just(PageSize::Size1G)
    ];
    (gap, (0u64..700, 0u64..4, 0u64..3), any::<bool>(), size)
}

/// One unmap: two leaves whose span it covers (so it often succeeds), or a
/// raw start and length in 4 KiB pages.
type Op = (bool, Index, Index, u64, u64);

fn op() -> impl Strategy<Value = Op> {
    (
        any::<bool>(),
        any::<Index>(),
        any::<Index>(),
        0u64..(1 << 20),
        prop_oneof![1u64..1024, 1u64..(1 << 20)],
    )
}

fn layout(base: u64, specs: &[Spec]) -> Vec<Mapping> {
    let mut mappings = Vec::new();
    let mut cursor = base;
    for &(gap, (small, mid, big), aligned, max_page) in specs {
        let virt = cursor + gap * 4 * K;
        // Few leaves: large pieces only where large pages can map them.
        let large = aligned && max_page != PageSize::Size4K;
        let (mid, big) = if large { (mid, big) } else { (0, 0) };
        let len = (small.max(1)) * 4 * K + mid * 2 * M + big * G;
        let phys = if aligned { virt % (64 * G) } else { 0x1000 };
        mappings.push(mapping(virt, phys, len, max_page));
        cursor = virt + len;
    }
    mappings
}

fn run(levels: Levels, base: u64, specs: &[Spec], ops: &[Op]) {
    let mappings = layout(base, specs);
    let mut t = Tables::new(levels, &mappings);
    t.check();
    for &(snap, a, b, start, pages) in ops {
        let (virt, len) = if snap && !t.model.is_empty() {
            let (a, b) = (a.get(&t.model).leaf, b.get(&t.model).leaf);
            let start = a.virt.min(b.virt);
            let end = (a.virt + a.size.bytes()).max(b.virt + b.size.bytes());
            (start, end - start)
        } else {
            (base + start * 4 * K, pages * 4 * K)
        };
        t.unmap_and_check(virt, len);
    }
    // Whatever is left goes in one sweep; only the root remains.
    let end = mappings.last().map_or(base + 4 * K, |m| m.virt + m.len);
    t.unmap_and_check(base, end - base);
    assert_eq!(t.walker().stats().tables.total(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn four_level_unmaps(
        base in prop_oneof![Just(0u64), Just(0xffff_c900_0000_0000u64)],
        specs in proptest::collection::vec(spec(), 1..6),
        ops in proptest::collection::vec(op(), 1..12),
    ) {
        run(Levels::Four, base, &specs, &ops);
    }

    #[test]
    fn five_level_unmaps(
        base in prop_oneof![Just(0x00ff_ff00_0000_0000u64), Just(0xffa0_0000_0000_0000u64)],
        specs in proptest::collection::vec(spec(), 1..6),
        ops in proptest::collection::vec(op(), 1..12),
    ) {
        run(Levels::Five, base, &specs, &ops);
    }
}

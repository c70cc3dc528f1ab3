//! The allocator with a store that pays for the vmemmap with frames, as
//! the kernel's does, and on a terabyte.

use std::ops::Range;

use super::*;

/// The reserve as the kernel takes it: [`vmemmap::init_frames`] frames
/// from the top of the largest usable region below the limit, outside the
/// other exclusions. `None` when no region is large enough.
fn reserve(map: &MemoryMap, limit: u64, exclusions: &[Exclusion]) -> Option<Range<u64>> {
    let others: Vec<_> = exclusions
        .iter()
        .map(|e| e.frames.start.start_address().as_u64()..e.frames.end.start_address().as_u64())
        .collect();
    let frames = vmemmap::init_frames(map, limit, &others);
    let r = map
        .regions()
        .iter()
        .filter(|r| r.kind == Kind::Usable && r.start < limit)
        .max_by_key(|r| r.end.min(limit) - r.start)?;
    let end = r.end.min(limit) / PAGE_SIZE;
    let start = end.checked_sub(frames)?;
    let clear = start >= r.start / PAGE_SIZE
        && others
            .iter()
            .all(|o| o.end / PAGE_SIZE <= start || o.start / PAGE_SIZE >= end);
    clear.then_some(start..end)
}

fn pooled(
    map: &MemoryMap,
    limit: u64,
    exclusions: &[Exclusion],
    target: usize,
) -> Option<(Box<FrameAllocator<Pooled>>, Vec<Exclusion>, u64)> {
    let reserve = reserve(map, limit, exclusions)?;
    let frames = reserve.end - reserve.start;
    let mut all = exclusions.to_vec();
    all.push(exclusion(
        reserve.start * PAGE_SIZE,
        reserve.end * PAGE_SIZE,
        Reason::Vmemmap,
    ));
    let store = Pooled::new(map, limit, reserve, target);
    let mut a = Box::new(FrameAllocator::new(store));
    a.init(map, limit, &all).expect("the reserve's bound holds");
    Some((a, all, frames))
}

/// Brings the model up to date with the store: what it holds is reserved
/// for the vmemmap, what it gave back is free.
fn sync(a: &FrameAllocator<Pooled>, model: &mut Model) {
    let store = a.descriptors();
    for &p in &store.received {
        match model.owner(p) {
            Some(Owner::Free) if store.holds(p) => model.set(p, Owner::Reserved(Reason::Vmemmap)),
            Some(Owner::Reserved(Reason::Vmemmap)) if !store.holds(p) => model.set(p, Owner::Free),
            _ => {}
        }
    }
}

fn run_pooled(case: &MapCase, ops: &[Op]) {
    let (map, limit, exclusions) = case.build();
    let Some((mut a, all, _)) = pooled(&map, limit, &exclusions, 24) else {
        return;
    };
    let mut model = Model::new(&map, limit, &all);
    sync(&a, &mut model);
    check(&a, &model);
    assert!(a.descriptors().reserve() <= 24);
    for op in ops {
        match op {
            Op::Alloc(order) => {
                if let Ok(f) = a.alloc(*order) {
                    // Never a frame the store holds or used.
                    let p = pfn(f);
                    let store = a.descriptors();
                    assert!((p..p + (1 << order)).all(|q| !store.used.contains(&q)));
                    model.allocated(p, *order);
                }
            }
            Op::Free(i) | Op::Stray(i, _, _) => {
                if let Some((&p, &order)) =
                    model.blocks.iter().nth(i.index(model.blocks.len().max(1)))
                {
                    a.free(frame(p), order).unwrap();
                    model.freed(p);
                }
            }
            Op::Release(boot_services) => {
                let (kind, reason) = if *boot_services {
                    (Kind::BootServices, Reason::BootServices)
                } else {
                    (Kind::BootloaderReclaimable, Reason::Bootloader)
                };
                model.released(reason);
                a.release(kind).unwrap();
            }
            // The store's frames are not anyone's to give back.
            Op::Unreserve(..) => continue,
        }
        sync(&a, &mut model);
        let counts = FrameStats {
            free_blocks: a.stats().free_blocks,
            ..model.counts()
        };
        assert_eq!(*a.stats(), counts, "after {op:?}");
    }
    check(&a, &model);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The reserve bound holds on any map, the store's frames are never
    /// handed out nor lost, and every frame stays where the model says.
    #[test]
    fn a_store_that_pays_in_frames(
        case in map_case(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        run_pooled(&case, &ops);
    }
}

/// An OVMF-like map with `ram` bytes of RAM above 4 GiB.
fn big_map(ram: u64) -> Box<MemoryMap> {
    use limine::*;
    bios_map(&[
        entry(0x1000, 0x9e000, USABLE),
        entry(0x10_0000, 0x7e00_0000, USABLE),
        entry(0x7e10_0000, 0x20_0000, EXECUTABLE_AND_MODULES),
        entry(0x7e30_0000, 0xb0_0000, BOOTLOADER_RECLAIMABLE),
        entry(0x7ee0_0000, 0x100_0000, USABLE),
        entry(0x7fe0_0000, 0x20_0000, ACPI_NVS),
        entry(0x1_0000_0000, ram, USABLE),
    ])
}

#[test]
fn a_terabyte_costs_a_record_per_free_gib() {
    let map = big_map(1 << 40);
    let low = [exclusion(0x1000, 0x1_0000, Reason::LowMemory)];
    let (mut a, _, reserve) = pooled(&map, NO_LIMIT, &low, 64).unwrap();
    // Reserved at initialisation: the kernel, Limine's and ACPI memory,
    // the first 64 KiB and the reserve.
    let reserved = (2 + 11 + 2) * MIB / PAGE_SIZE + 15 + reserve;
    let gibs = a.stats().free_blocks[usize::from(MAX_ORDER)];
    assert!((1023..=1024).contains(&gibs), "{gibs}");
    let store = a.descriptors();
    // The descriptors of reserved frames, one per free block below a GiB,
    // and those merged away at region edges: nothing per free frame, nor
    // per free GiB.
    let written = store.inner.written.len() as u64;
    assert!(written < reserved + 300, "{written} descriptors written");
    assert_eq!(store.inner.gibs_written.len(), 1 + 1024);
    // Pages for the reserved frames' descriptors, a few for the blocks
    // below 4 GiB, five of GiB records; a page table for each 2 MiB of
    // vmemmap touched.
    let pages = store.inner.backed_pages();
    assert!(pages < 100 + reserved / 128, "{pages} pages backed");
    assert!(
        (store.used.len() as u64) < 2 * pages,
        "{} frames spent",
        store.used.len()
    );
    // The reserve, sized by `init_frames`, was mostly not needed.
    assert!(reserve < 1024, "a reserve of {reserve}");
    let free_before = a.stats().free_frames;
    // Allocations write a few descriptors each, wherever they land.
    let mut blocks = Vec::new();
    for order in [0, 0, 3, 9, 18, 0, 12, 18] {
        let before = a.descriptors().inner.written.len();
        let f = a.alloc(order).unwrap();
        let after = a.descriptors().inner.written.len();
        assert!(after - before <= usize::from(MAX_ORDER) + 2 + 64);
        blocks.push((f, order));
    }
    for (f, order) in blocks {
        a.free(f, order).unwrap();
    }
    // Every frame is accounted for: the reserve's frames are reserved.
    let s = a.stats();
    assert_eq!(
        s.free_frames + s.allocated_frames + s.reserved_frames,
        s.ram_frames
    );
    assert_eq!(s.allocated_frames, 0);
    assert_eq!(
        s.reserved_bytes(Reason::Vmemmap) / PAGE_SIZE,
        a.descriptors().used.len() as u64 + a.descriptors().reserve() as u64
    );
    assert!(free_before - s.free_frames < 256);
}

#[test]
fn the_reserve_refills_and_a_dry_one_fails_cleanly() {
    let map = big_map(64 << 30);
    // A reserve kept at zero: initialisation's surplus goes back, and
    // the first allocation that must back a page fails without change.
    let (mut a, _, _) = pooled(&map, NO_LIMIT, &[], 0).unwrap();
    assert_eq!(a.descriptors().reserve(), 0);
    let before = *a.stats();
    let lists: Vec<BTreeSet<_>> = free_lists(&a)
        .into_iter()
        .map(|l| l.into_iter().collect())
        .collect();
    // The smallest free block is order 0 (below 640 KiB); take everything
    // small until a split must write beyond an existing page.
    let mut got = Vec::new();
    let err = loop {
        match a.alloc(0) {
            Ok(f) => got.push(f),
            Err(e) => break e,
        }
    };
    assert_eq!(err, AllocError::OutOfMemory { order: 0 });
    assert!(a.stats().free_frames > 0, "memory left, but no page for it");
    for f in got.into_iter().rev() {
        a.free(f, 0).unwrap();
    }
    assert_eq!(*a.stats(), before);
    let after: Vec<BTreeSet<_>> = free_lists(&a)
        .into_iter()
        .map(|l| l.into_iter().collect())
        .collect();
    assert_eq!(after, lists);
}

//! The frame allocator on the host: descriptors in strict sparse stores
//! that panic on any descriptor not backed, or read before it was written,
//! maps built by `memmap::build`, and every answer held to two models: the
//! eager allocator it replaced (the same answers, blocks and counts) and a
//! model that tracks each frame.

mod eager;
mod pooled;
mod stores;

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::Index;
use uefi_raw::table::boot::{MemoryAttribute, MemoryDescriptor, MemoryType};
use x86_64::PhysAddr;
use x86_64::structures::paging::PhysFrame;

use super::*;
use crate::layout::Layout;
use crate::memmap::{
    self, EfiMemoryMap, Kind, LimineEntry, LimineMap, MAX_REGIONS, MemoryMap, Scratch, limine,
};
use crate::{Levels, PAGE_SIZE};
use eager::{EagerAllocator, EagerStore};
use stores::{Pooled, Sparse};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const PHYS_BITS: u8 = 46;
const NO_LIMIT: u64 = 1 << 52;

// ---------------------------------------------------------------------------
// The maps.

type Allocator = FrameAllocator<Sparse>;

fn allocator(map: &MemoryMap, limit: u64, exclusions: &[Exclusion]) -> Box<Allocator> {
    let mut a = Box::new(FrameAllocator::new(Sparse::new(map, limit)));
    a.init(map, limit, exclusions).unwrap();
    a
}

fn eager(map: &MemoryMap, limit: u64, exclusions: &[Exclusion]) -> Box<EagerAllocator> {
    let mut a = Box::new(EagerAllocator::new(EagerStore::new(map, limit)));
    a.init(map, limit, exclusions).unwrap();
    a
}

fn frame(pfn: u64) -> PhysFrame {
    PhysFrame::containing_address(PhysAddr::new(pfn * PAGE_SIZE))
}

fn pfn(frame: PhysFrame) -> u64 {
    frame.start_address().as_u64() / PAGE_SIZE
}

fn exclusion(start: u64, end: u64, reason: Reason) -> Exclusion {
    Exclusion {
        frames: PhysFrame::range(
            PhysFrame::containing_address(PhysAddr::new(start)),
            PhysFrame::containing_address(PhysAddr::new(end)),
        ),
        reason,
    }
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

/// A UEFI boot's map from descriptors `(type, start, pages)`, all
/// write-back, with Limine's entries laid over it.
fn efi_map(descs: &[(MemoryType, u64, u64)], limine: &[LimineEntry]) -> Box<MemoryMap> {
    const DESC_SIZE: usize = 48;
    let mut bytes = vec![0u8; descs.len() * DESC_SIZE];
    for (chunk, &(ty, start, pages)) in bytes.chunks_mut(DESC_SIZE).zip(descs) {
        let d = MemoryDescriptor {
            ty,
            phys_start: start,
            virt_start: 0,
            page_count: pages,
            att: MemoryAttribute::from_bits_retain(0xf),
        };
        chunk[0..4].copy_from_slice(&d.ty.0.to_le_bytes());
        chunk[8..16].copy_from_slice(&d.phys_start.to_le_bytes());
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

// ---------------------------------------------------------------------------
// The model.

/// What the model says a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Free,
    /// In the allocated block that starts at this PFN.
    Allocated(u64),
    Reserved(Reason),
}

/// Every RAM frame below the limit and what it is, kept by brute force.
struct Model {
    /// `(first PFN, last PFN + 1, index of the first frame)` per RAM run.
    runs: Vec<(u64, u64, usize)>,
    owner: Vec<Owner>,
    /// Allocated blocks: first PFN to order.
    blocks: BTreeMap<u64, u8>,
}

impl Model {
    /// The state right after `init`, computed frame by frame.
    fn new(map: &MemoryMap, limit: u64, exclusions: &[Exclusion]) -> Model {
        let mut runs = Vec::new();
        let mut owner = Vec::new();
        for run in map.ram_runs().filter(|r| r.start < limit) {
            let (start, end) = (run.start / PAGE_SIZE, run.end.min(limit) / PAGE_SIZE);
            runs.push((start, end, owner.len()));
            for pfn in start..end {
                let kind = map.region_at(frame(pfn).start_address()).unwrap().kind;
                let mut o = match Reason::from_kind(kind) {
                    None => Owner::Free,
                    Some(reason) => Owner::Reserved(reason),
                };
                for ex in exclusions {
                    if (pfn_of(ex.frames.start)..pfn_of(ex.frames.end)).contains(&pfn) {
                        o = Owner::Reserved(ex.reason);
                    }
                }
                owner.push(o);
            }
        }
        Model {
            runs,
            owner,
            blocks: BTreeMap::new(),
        }
    }

    fn index(&self, pfn: u64) -> Option<usize> {
        let i = self.runs.partition_point(|&(_, end, _)| end <= pfn);
        self.runs
            .get(i)
            .filter(|&&(start, _, _)| start <= pfn)
            .map(|&(start, _, base)| base + (pfn - start) as usize)
    }

    fn owner(&self, pfn: u64) -> Option<Owner> {
        self.index(pfn).map(|i| self.owner[i])
    }

    fn set(&mut self, pfn: u64, o: Owner) {
        let i = self.index(pfn).unwrap();
        self.owner[i] = o;
    }

    fn pfns(&self) -> impl Iterator<Item = (u64, Owner)> + '_ {
        self.runs.iter().flat_map(move |&(start, end, base)| {
            (start..end).map(move |pfn| (pfn, self.owner[base + (pfn - start) as usize]))
        })
    }

    /// What the allocator's `stats` should say.
    fn stats(&self) -> FrameStats {
        let mut stats = self.counts();
        for (_, order) in self.free_blocks() {
            stats.free_blocks[usize::from(order)] += 1;
        }
        stats
    }

    /// The same, but for the free blocks per order (left at zero).
    fn counts(&self) -> FrameStats {
        let mut stats = FrameStats {
            ram_frames: self.owner.len() as u64,
            free_frames: 0,
            allocated_frames: 0,
            reserved_frames: 0,
            free_blocks: [0; ORDERS],
            reserved: [0; Reason::COUNT],
        };
        for o in &self.owner {
            match o {
                Owner::Free => stats.free_frames += 1,
                Owner::Allocated(_) => stats.allocated_frames += 1,
                Owner::Reserved(r) => {
                    stats.reserved_frames += 1;
                    stats.reserved[r.index()] += 1;
                }
            }
        }
        stats
    }

    /// The free blocks a buddy allocator that merges fully must hold: in
    /// each maximal run of free frames, the largest aligned blocks.
    fn free_blocks(&self) -> BTreeSet<(u64, u8)> {
        let mut out = BTreeSet::new();
        let mut run: Option<(u64, u64)> = None;
        for (pfn, o) in self.pfns() {
            match run {
                Some((start, end)) if o == Owner::Free && end == pfn => {
                    run = Some((start, end + 1))
                }
                _ => {
                    if let Some((start, end)) = run.take() {
                        largest_first(start, end, &mut out);
                    }
                    if o == Owner::Free {
                        run = Some((pfn, pfn + 1));
                    }
                }
            }
        }
        if let Some((start, end)) = run {
            largest_first(start, end, &mut out);
        }
        out
    }

    /// What freeing `order` at `pfn` must give.
    fn expect_free(&self, pfn: u64, order: u8) -> Result<(), AllocError> {
        let f = frame(pfn);
        if order > MAX_ORDER {
            return Err(AllocError::BadOrder { order });
        }
        if !pfn.is_multiple_of(1 << order) {
            return Err(AllocError::Misaligned { frame: f, order });
        }
        match self.owner(pfn) {
            None => Err(AllocError::NotRam { frame: f }),
            Some(Owner::Free) => Err(AllocError::DoubleFree { frame: f }),
            Some(Owner::Reserved(reason)) => Err(AllocError::Reserved { frame: f, reason }),
            Some(Owner::Allocated(head)) => {
                let allocated = self.blocks[&head];
                if head != pfn {
                    Err(AllocError::InsideBlock {
                        frame: f,
                        block: frame(head),
                        order: allocated,
                    })
                } else if allocated != order {
                    Err(AllocError::WrongOrder {
                        frame: f,
                        order,
                        allocated,
                    })
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Whether some aligned block of `order` is all free.
    fn has_free_block(&self, order: u8) -> bool {
        let size = 1u64 << order;
        self.runs.iter().any(|&(start, end, base)| {
            let mut p = start.next_multiple_of(size);
            while p + size <= end {
                let i = base + (p - start) as usize;
                if self.owner[i..i + size as usize]
                    .iter()
                    .all(|&o| o == Owner::Free)
                {
                    return true;
                }
                p += size;
            }
            false
        })
    }

    fn allocated(&mut self, pfn: u64, order: u8) {
        for p in pfn..pfn + (1 << order) {
            assert_eq!(
                self.owner(p),
                Some(Owner::Free),
                "{:#x} handed out in the block at {:#x} (order {order}) but not free",
                p * PAGE_SIZE,
                pfn * PAGE_SIZE
            );
            self.set(p, Owner::Allocated(pfn));
        }
        self.blocks.insert(pfn, order);
    }

    fn freed(&mut self, pfn: u64) {
        let order = self.blocks.remove(&pfn).unwrap();
        for p in pfn..pfn + (1 << order) {
            self.set(p, Owner::Free);
        }
    }

    fn released(&mut self, reason: Reason) {
        for o in &mut self.owner {
            if *o == Owner::Reserved(reason) {
                *o = Owner::Free;
            }
        }
    }
}

fn pfn_of(frame: PhysFrame) -> u64 {
    pfn(frame)
}

/// Tiles `start..end` with aligned blocks by brute force, independently of
/// the allocator's tiling: every aligned block of each order, largest
/// first, that lies inside and overlaps none taken before.
fn largest_first(start: u64, end: u64, out: &mut BTreeSet<(u64, u8)>) {
    let mut taken = vec![false; (end - start) as usize];
    for order in (0..=MAX_ORDER).rev() {
        let size = 1u64 << order;
        let mut p = start.next_multiple_of(size);
        while p + size <= end {
            let slots = &mut taken[(p - start) as usize..(p - start + size) as usize];
            if !slots.iter().any(|&t| t) {
                slots.fill(true);
                out.insert((p, order));
            }
            p += size;
        }
    }
}

/// Holds the allocator to the model in every way: counts, free lists (the
/// exact canonical blocks), `state` for every frame, and the descriptors
/// it must have written (reserved frames and the first frame of every
/// block; the store panics if any other is read).
fn check<D: Descriptors>(a: &FrameAllocator<D>, model: &Model) {
    assert_eq!(*a.stats(), model.stats(), "stats");
    let expected = model.free_blocks();
    let mut listed = BTreeSet::new();
    for order in 0..=MAX_ORDER {
        for f in a.free_list(order) {
            assert!(listed.insert((pfn(f), order)), "{f:?} listed twice");
        }
    }
    assert_eq!(listed, expected, "free blocks");
    let store = a.descriptors();
    for (pfn, o) in model.pfns() {
        let state = a.state(frame(pfn));
        match o {
            Owner::Reserved(r) => {
                assert_eq!(state, FrameState::Reserved(r), "{pfn:#x}");
                assert_eq!(store.desc(pfn).state(), DescState::Reserved(r));
            }
            Owner::Allocated(head) => {
                let order = model.blocks[&head];
                assert_eq!(
                    state,
                    FrameState::Allocated {
                        block: frame(head),
                        order
                    },
                    "{pfn:#x}"
                );
                if head == pfn {
                    assert_eq!(store.desc(pfn).state(), DescState::Allocated { order });
                }
            }
            Owner::Free => {
                let FrameState::Free { block, order } = state else {
                    panic!("{pfn:#x} is {state:?}, should be free");
                };
                assert!(expected.contains(&(self::pfn(block), order)));
                if self::pfn(block) == pfn && order == MAX_ORDER {
                    assert!(store.gib(pfn >> MAX_ORDER).is_free());
                } else if self::pfn(block) == pfn {
                    assert_eq!(store.desc(pfn).state(), DescState::Free { order });
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Examples.

/// A small BIOS map: low memory, the kernel, Limine's memory, ACPI, a hole
/// and a framebuffer.
fn small_map() -> Box<MemoryMap> {
    use limine::*;
    bios_map(&[
        entry(0x1000, 0x9e000, USABLE),
        entry(0x9f000, 0x61000, RESERVED),
        entry(0x10_0000, 0xf0_0000, USABLE),
        entry(0x100_0000, 0x20_0000, EXECUTABLE_AND_MODULES),
        entry(0x120_0000, 0x20_0000, BOOTLOADER_RECLAIMABLE),
        entry(0x140_0000, 0x1_0000, ACPI_RECLAIMABLE),
        entry(0x141_0000, 0x2bf_0000, USABLE),
        entry(0xfd00_0000, 0x30_0000, FRAMEBUFFER),
    ])
}

#[test]
fn descriptor_layout() {
    assert_eq!(core::mem::size_of::<FrameDesc>(), 32);
    assert_eq!(core::mem::align_of::<FrameDesc>(), 8);
    assert_eq!(FrameDesc::ZEROED.state(), DescState::Invalid(0));
    for reason in Reason::ALL {
        let d = FrameDesc::new(DescState::Reserved(reason));
        assert_eq!(d.state(), DescState::Reserved(reason));
    }
    for state in [
        DescState::Tail,
        DescState::Free { order: 18 },
        DescState::Allocated { order: 0 },
    ] {
        assert_eq!(FrameDesc::new(state).state(), state);
    }
}

#[test]
fn initial_state_of_a_small_map() {
    let map = small_map();
    let exclusions = [
        exclusion(0x3f0_0000, 0x3f8_0000, Reason::Vmemmap),
        exclusion(0x3ff_0000, 0x400_0000, Reason::PageTables),
    ];
    let a = allocator(&map, NO_LIMIT, &exclusions);
    let stats = a.stats();
    // 158 + 3840 + 512 + 512 + 16 + 11248 frames of RAM.
    assert_eq!(stats.ram_frames, 16286);
    assert_eq!(stats.reserved_bytes(Reason::Kernel), 2 * MIB);
    assert_eq!(stats.reserved_bytes(Reason::Bootloader), 2 * MIB);
    assert_eq!(stats.reserved_bytes(Reason::AcpiTables), 64 << 10);
    assert_eq!(stats.reserved_bytes(Reason::Vmemmap), 512 << 10);
    assert_eq!(stats.reserved_bytes(Reason::PageTables), 64 << 10);
    assert_eq!(stats.reserved_frames, 512 + 512 + 16 + 128 + 16);
    assert_eq!(stats.free_frames, 158 + 3840 + 11248 - 128 - 16);
    assert_eq!(stats.allocated_frames, 0);
    // Low memory, 1..0x9f: blocks of orders 0 to 6, then 4 down to 0.
    for (pfn, order) in [(0x1, 0), (0x2, 1), (0x40, 6), (0x80, 4), (0x9e, 0)] {
        assert_eq!(
            a.state(frame(pfn)),
            FrameState::Free {
                block: frame(pfn),
                order
            }
        );
    }
    // 1 MiB to 16 MiB: 1 MiB, 2 MiB, 4 MiB, 8 MiB blocks (orders 8 to 11).
    assert_eq!(
        a.state(frame(0x500)),
        FrameState::Free {
            block: frame(0x400),
            order: 10
        }
    );
    assert_eq!(a.state(frame(0xa0)), FrameState::NotRam);
    assert_eq!(a.state(frame(0xfd000)), FrameState::NotRam);
    assert_eq!(a.state(frame(0x1000)), FrameState::Reserved(Reason::Kernel));
    assert_eq!(
        a.state(frame(0x3f7f)),
        FrameState::Reserved(Reason::Vmemmap)
    );
    check(&a, &Model::new(&map, NO_LIMIT, &exclusions));
}

#[test]
fn init_writes_only_reserved_frames_and_block_heads() {
    // 4 GiB of RAM in 1 GiB-aligned runs, with 200 small regions above.
    use limine::*;
    let mut entries = vec![
        entry(0x1000, 0x9e000, USABLE),
        entry(0x10_0000, 3 * GIB - MIB, USABLE),
        entry(4 * GIB, GIB, USABLE),
    ];
    for i in 0..200 {
        let base = 8 * GIB + i * 0x10_0000;
        let ty = if i % 2 == 0 { USABLE } else { ACPI_NVS };
        entries.push(entry(base, 0x5_3000, ty));
    }
    let map = bios_map(&entries);
    let mut a = allocator(&map, NO_LIMIT, &[]);
    let reserved = a.stats().reserved_frames;
    let gibs = a.stats().free_blocks[usize::from(MAX_ORDER)];
    let blocks: u64 = a.stats().free_blocks.iter().sum::<u64>() - gibs;
    let store = a.descriptors();
    assert_eq!(store.filled, reserved, "each reserved descriptor once");
    // Nothing free but the first frame of each block below a GiB: per
    // block, not per frame. Blocks merged at a region's edge wrote a head
    // too, at most 2 * MAX_ORDER + 1 per region. A free GiB is a record.
    let regions = map.regions().len() as u64;
    let written = store.written.len() as u64;
    assert!(written >= reserved + blocks);
    for f in a.free_list(MAX_ORDER) {
        assert!(!store.written.contains(&pfn(f)), "{f:?}");
        assert!(store.gib(pfn(f) >> MAX_ORDER).is_free());
    }
    // A record for each all-RAM GiB: 0-1 GiB lacks page 0, 3-4 GiB is a
    // hole.
    assert_eq!(store.gibs_written, BTreeSet::from([1, 2, 4]));
    assert!(
        written <= reserved + blocks + regions * (2 * u64::from(MAX_ORDER) + 1),
        "{written} descriptors written for {blocks} blocks and {reserved} reserved frames"
    );
    for order in 0..=MAX_ORDER {
        for f in a.free_list(order) {
            let p = pfn(f);
            // The rest of a free block is untouched, its page unbacked
            // beyond the head's.
            assert!(!store.written.contains(&(p + 1)) || order == 0);
            if order >= 8 {
                assert!(!store.is_backed(p + (1 << order) - 1), "{f:?}");
            }
        }
    }
    // The 1 GiB blocks: two below 4 GiB (1-2 GiB, 2-3 GiB), one above.
    assert_eq!(a.stats().free_blocks[18], 3);
    let mut gigs = Vec::new();
    while let Ok(f) = a.alloc(18) {
        assert_eq!(f.start_address().as_u64() % GIB, 0);
        gigs.push(f);
    }
    assert_eq!(gigs.len(), 3);
    assert_eq!(a.alloc(18), Err(AllocError::OutOfMemory { order: 18 }));
    // The rest is still there in smaller blocks.
    assert!(a.alloc(17).is_ok());
    for f in gigs {
        a.free(f, 18).unwrap();
    }
}

#[test]
fn every_error() {
    let map = small_map();
    let mut a = allocator(&map, NO_LIMIT, &[]);
    use AllocError::*;
    assert_eq!(a.alloc(19), Err(BadOrder { order: 19 }));
    assert_eq!(a.free(frame(0), 19), Err(BadOrder { order: 19 }));
    assert_eq!(
        a.free(frame(0x101), 1),
        Err(Misaligned {
            frame: frame(0x101),
            order: 1
        })
    );
    // Holes, non-RAM and page 0 (not in the map).
    for pfn in [0x0, 0xa0, 0xfd000, 0x1_0000_0000] {
        assert_eq!(a.free(frame(pfn), 0), Err(NotRam { frame: frame(pfn) }));
    }
    assert_eq!(
        a.free(frame(0x1000), 0),
        Err(Reserved {
            frame: frame(0x1000),
            reason: Reason::Kernel
        })
    );
    assert_eq!(
        a.free(frame(0x1400), 4),
        Err(Reserved {
            frame: frame(0x1400),
            reason: Reason::AcpiTables
        })
    );
    // Free memory: the head of a block and a frame inside one.
    assert_eq!(
        a.free(frame(0x400), 10),
        Err(DoubleFree {
            frame: frame(0x400)
        })
    );
    assert_eq!(
        a.free(frame(0x401), 0),
        Err(DoubleFree {
            frame: frame(0x401)
        })
    );
    let block = a.alloc(3).unwrap();
    assert_eq!(
        a.free(block, 2),
        Err(WrongOrder {
            frame: block,
            order: 2,
            allocated: 3
        })
    );
    let inside = frame(pfn(block) + 4);
    assert_eq!(
        a.free(inside, 2),
        Err(InsideBlock {
            frame: inside,
            block,
            order: 3
        })
    );
    a.free(block, 3).unwrap();
    assert_eq!(a.free(block, 3), Err(DoubleFree { frame: block }));
    assert_eq!(
        InsideBlock {
            frame: inside,
            block,
            order: 3
        }
        .to_string(),
        format!(
            "{:#x} lies inside the block of order 3 at {:#x}",
            inside.start_address().as_u64(),
            block.start_address().as_u64()
        )
    );
    check(&a, &Model::new(&map, NO_LIMIT, &[]));
}

#[test]
fn bad_exclusions_are_refused_before_anything_is_written() {
    let map = small_map();
    let mut a = Box::new(FrameAllocator::new(Sparse::new(&map, NO_LIMIT)));
    for (ex, err) in [
        (
            exclusion(0x9e000, 0xa0000, Reason::PageTables),
            SetupError::ExclusionNotRam { frame: frame(0x9f) },
        ),
        (
            exclusion(0x10_0000, 0x11_0000, Reason::BootServices),
            SetupError::NotAnExclusionReason {
                reason: Reason::BootServices,
            },
        ),
        (
            exclusion(0x3ff_0000, 0x401_0000, Reason::Vmemmap),
            SetupError::ExclusionNotRam {
                frame: frame(0x4000),
            },
        ),
    ] {
        assert_eq!(a.init(&map, NO_LIMIT, &[ex]), Err(err));
        assert_eq!(a.stats().ram_frames, 0);
        assert_eq!(a.alloc(0), Err(AllocError::OutOfMemory { order: 0 }));
        assert_eq!(a.descriptors().filled, 0);
    }
    // An exclusion over several regions of RAM is fine.
    a.init(
        &map,
        NO_LIMIT,
        &[exclusion(0xf0_0000, 0x150_0000, Reason::EarlyAlloc)],
    )
    .unwrap();
    assert_eq!(a.stats().reserved_bytes(Reason::EarlyAlloc), 6 * MIB);
    assert_eq!(a.stats().reserved_bytes(Reason::Kernel), 0);
}

#[test]
fn release_after_the_cr3_switch_and_the_efi_handoff() {
    use MemoryType as T;
    // OVMF-like: boot services and Limine's memory between usable ranges,
    // the kernel from Limine's map, runtime and ACPI at the top.
    let map = efi_map(
        &[
            (T::BOOT_SERVICES_CODE, 0x0, 0x1),
            (T::CONVENTIONAL, 0x1000, 0x9f),
            (T::CONVENTIONAL, 0x10_0000, 0x700),
            (T::BOOT_SERVICES_DATA, 0x80_0000, 0x800),
            (T::CONVENTIONAL, 0x100_0000, 0x1000),
            (T::LOADER_DATA, 0x200_0000, 0x400),
            (T::CONVENTIONAL, 0x240_0000, 0xc00),
            (T::RUNTIME_SERVICES_DATA, 0x300_0000, 0x100),
            (T::ACPI_RECLAIM, 0x310_0000, 0x10),
        ],
        &[
            entry(0x100_0000, 0x20_0000, limine::EXECUTABLE_AND_MODULES),
            entry(0x280_0000, 0x10_0000, limine::BOOTLOADER_RECLAIMABLE),
        ],
    );
    // Page tables built by the kernel inside Limine's memory stay reserved.
    let exclusions = [exclusion(0x200_0000, 0x201_0000, Reason::PageTables)];
    let mut a = allocator(&map, NO_LIMIT, &exclusions);
    let mut model = Model::new(&map, NO_LIMIT, &exclusions);
    check(&a, &model);
    assert_eq!(
        a.stats().reserved_bytes(Reason::Bootloader),
        4 * MIB + MIB - 64 * 1024
    );
    assert_eq!(
        a.stats().reserved_bytes(Reason::BootServices),
        8 * MIB + 4096
    );
    assert_eq!(
        a.release(Kind::Usable),
        Err(SetupError::NotReleasable { kind: Kind::Usable })
    );
    assert_eq!(
        a.release(Kind::RuntimeData),
        Err(SetupError::NotReleasable {
            kind: Kind::RuntimeData
        })
    );
    // Take something first, so the release merges around live blocks.
    let held = a.alloc(5).unwrap();
    model.allocated(pfn(held), 5);

    assert_eq!(a.release(Kind::BootloaderReclaimable), Ok(1024 + 256 - 16));
    model.released(Reason::Bootloader);
    check(&a, &model);
    assert_eq!(a.release(Kind::BootloaderReclaimable), Ok(0));

    assert_eq!(a.release(Kind::BootServices), Ok(0x801));
    model.released(Reason::BootServices);
    check(&a, &model);
    // Page 0 joined the low free run: 0..0xa0 starts with 128 frames.
    assert_eq!(
        a.state(frame(0x7f)),
        FrameState::Free {
            block: frame(0),
            order: 7
        }
    );
    a.free(held, 5).unwrap();
    model.freed(pfn(held));
    check(&a, &model);
    // 1 MiB..16 MiB is one free run (8..16 MiB joined it): 1, 2, 4 and 8
    // MiB blocks.
    assert_eq!(
        a.state(frame(0xfff)),
        FrameState::Free {
            block: frame(0x800),
            order: 11
        }
    );
}

#[test]
fn ram_above_the_limit_is_left_alone() {
    let map = small_map();
    let limit = 0x200_0000;
    let mut a = allocator(&map, limit, &[]);
    let model = Model::new(&map, limit, &[]);
    check(&a, &model);
    assert_eq!(a.state(frame(0x2000)), FrameState::NotRam);
    let mut got = 0;
    while let Ok(f) = a.alloc(0) {
        assert!(f.start_address().as_u64() < limit);
        got += 1;
    }
    assert_eq!(got, model.stats().free_frames);
}

#[test]
fn alloc_everything_then_free_everything() {
    let map = small_map();
    for orders in [&[0u8][..], &[9, 0], &[4, 1, 7, 0]] {
        let mut a = allocator(&map, NO_LIMIT, &[]);
        let initial = *a.stats();
        let mut model = Model::new(&map, NO_LIMIT, &[]);
        let mut blocks = Vec::new();
        for &order in orders {
            while let Ok(f) = a.alloc(order) {
                model.allocated(pfn(f), order);
                blocks.push((f, order));
            }
            assert!(!model.has_free_block(order));
        }
        assert_eq!(
            a.stats().free_frames,
            initial.free_frames - model.stats().allocated_frames
        );
        check(&a, &model);
        if orders.contains(&0) {
            assert_eq!(a.stats().free_frames, 0);
        }
        // Free in a scrambled order.
        let n = blocks.len();
        for i in 0..n {
            let (f, order) = blocks[(i * 7919) % n];
            a.free(f, order).unwrap();
            model.freed(pfn(f));
        }
        assert_eq!(*a.stats(), initial);
        check(&a, &model);
    }
}

// ---------------------------------------------------------------------------
// The vmemmap.

#[test]
fn vmemmap_pages_and_their_sizes() {
    let layout = Layout::fixed(Levels::Four);
    let base = layout.vmemmap_base();
    // Frames 1..0x7f: descriptors at 0x20..0xfe0, one page; 1..0x9f
    // reach 0x13e0, into the second.
    assert_eq!(vmemmap::pages(layout, &(1..0x7f)), base..base + 0x1000);
    assert_eq!(vmemmap::pages(layout, &(1..0x9f)), base..base + 0x2000);
    // One frame's descriptor: its page.
    assert_eq!(
        vmemmap::pages(layout, &(0x80..0x81)),
        base + 0x1000..base + 0x2000
    );
    assert_eq!(
        vmemmap::desc_addr(layout, 0x10_0000),
        base + 0x10_0000 * DESC_SIZE
    );
    // 1 MiB into a 2 MiB stretch to 3 MiB past it: 4 KiB pages to the
    // stretch's end, one 2 MiB page, 4 KiB pages after.
    let sizes: Vec<_> = vmemmap::page_sizes(base + 0x10_0000..base + 0x50_0000).collect();
    assert_eq!(sizes.len(), 256 + 1 + 256);
    assert_eq!(sizes[255], (base + 0x1f_f000, PAGE_SIZE));
    assert_eq!(sizes[256], (base + 0x20_0000, vmemmap::LARGE_PAGE));
    assert_eq!(sizes[257], (base + 0x40_0000, PAGE_SIZE));
    assert!(
        sizes
            .windows(2)
            .all(|w| w[0].0 + w[0].1 == w[1].0 && w[1].0 < base + 0x50_0000)
    );
}

#[test]
fn gib_records_pages() {
    let layout = Layout::fixed(Levels::Four);
    let records = vmemmap::gibs_base(layout);
    // Right after every frame's descriptor, on a page of their own.
    assert_eq!(
        records,
        layout.vmemmap_base() + layout.physmap_size() / PAGE_SIZE * DESC_SIZE
    );
    assert_eq!(records % PAGE_SIZE, 0);
    assert_eq!(vmemmap::gib_addr(layout, 3), records + 3 * GIB_RECORD_SIZE);
    // The first GiB's record: the first page.
    assert_eq!(
        vmemmap::gib_pages(layout, &(0..1)),
        records..records + PAGE_SIZE
    );
    // GiB 300's record at 0x12c0: the second page; 250 to 260 straddle
    // the first two (0xfa0..0x1040).
    assert_eq!(
        vmemmap::gib_pages(layout, &(300..301)),
        records + PAGE_SIZE..records + 2 * PAGE_SIZE
    );
    assert_eq!(
        vmemmap::gib_pages(layout, &(250..260)),
        records..records + 2 * PAGE_SIZE
    );
    assert_eq!(
        vmemmap::end(layout),
        vmemmap::gib_addr(layout, layout.physmap_size() >> 30)
    );
}

#[test]
fn large_vmemmap_pages_only_where_initialisation_fills_them() {
    use limine::*;
    let map = bios_map(&[
        entry(0x1000, 0x9e000, USABLE),
        entry(0x10_0000, 0x3ff0_0000, USABLE),
        // 768 MiB of ACPI NVS from 1 GiB, then 8 MiB of kernel touching it:
        // one run of reserved RAM, 1 GiB to 1800 MiB.
        entry(0x4000_0000, 0x3000_0000, ACPI_NVS),
        entry(0x7000_0000, 0x80_0000, EXECUTABLE_AND_MODULES),
        entry(0x7080_0000, 0x1000_0000, USABLE),
        // 255 MiB: not enough for a whole stretch.
        entry(0x1_0000_0000, 0xff0_0000, ACPI_NVS),
    ]);
    for levels in [Levels::Four, Levels::Five] {
        let layout = Layout::fixed(levels);
        let base = layout.vmemmap_base();
        // Descriptors of 1 GiB..1800 MiB: vmemmap 8 MiB..14 MiB + 256 KiB:
        // three whole 2 MiB stretches.
        let large: Vec<_> = vmemmap::large_pages(&map, layout, NO_LIMIT).collect();
        assert_eq!(
            large,
            [base + 0x80_0000, base + 0xa0_0000, base + 0xc0_0000]
        );
        // A limit inside the run cuts it.
        let cut: Vec<_> = vmemmap::large_pages(&map, layout, 0x6000_0000).collect();
        assert_eq!(cut, [base + 0x80_0000, base + 0xa0_0000]);
    }
}

#[test]
fn a_full_map_of_one_ram_run_is_taken_whole() {
    // 2048 pages of alternating usable and bootloader-reclaimable memory:
    // as many regions as a map holds, all one run of RAM.
    use limine::*;
    let entries: Vec<_> = (0..MAX_REGIONS as u64)
        .map(|i| {
            let ty = if i % 2 == 0 {
                USABLE
            } else {
                BOOTLOADER_RECLAIMABLE
            };
            entry(0x10_0000 + i * 0x1000, 0x1000, ty)
        })
        .collect();
    let map = bios_map(&entries);
    assert_eq!(map.regions().len(), MAX_REGIONS);
    let a = allocator(&map, NO_LIMIT, &[]);
    assert_eq!(a.stats().free_frames, MAX_REGIONS as u64 / 2);
    assert_eq!(a.stats().reserved_frames, MAX_REGIONS as u64 / 2);
}

#[test]
fn the_reserve_stays_small_on_a_fragmented_map() {
    // 1000 usable runs of 12 KiB between reserved pages: 2000 regions,
    // whose descriptors fill 125 pages.
    use limine::*;
    let mut entries = vec![entry(0x10_0000, 0x100_0000, USABLE)];
    for i in 0..1000 {
        let base = 0x200_0000 + i * 0x4000;
        entries.push(entry(base, 0x3000, USABLE));
        entries.push(entry(base + 0x3000, 0x1000, ACPI_NVS));
    }
    let map = bios_map(&entries);
    let reserve = vmemmap::init_frames(&map, NO_LIMIT, &[]);
    assert!(reserve < 600, "{reserve}");
    // And it is enough.
    let mut a = Box::new(FrameAllocator::new(Pooled::new(
        &map,
        NO_LIMIT,
        0x200..0x200 + reserve,
        16,
    )));
    let exclusions = [exclusion(
        0x20_0000,
        (0x200 + reserve) * PAGE_SIZE,
        Reason::Vmemmap,
    )];
    a.init(&map, NO_LIMIT, &exclusions).unwrap();
}

#[test]
fn a_reserve_too_small_leaves_the_allocator_empty() {
    // The fragmented map of the test above with a reserve of one frame:
    // initialisation fails for want of backing, and hands out nothing.
    use limine::*;
    let mut entries = vec![entry(0x10_0000, 0x100_0000, USABLE)];
    for i in 0..1000 {
        let base = 0x200_0000 + i * 0x4000;
        entries.push(entry(base, 0x3000, USABLE));
        entries.push(entry(base + 0x3000, 0x1000, ACPI_NVS));
    }
    let map = bios_map(&entries);
    let mut a = Box::new(FrameAllocator::new(Pooled::new(
        &map,
        NO_LIMIT,
        0x200..0x201,
        16,
    )));
    let exclusions = [exclusion(0x20_0000, 0x20_1000, Reason::Vmemmap)];
    assert!(matches!(
        a.init(&map, NO_LIMIT, &exclusions),
        Err(SetupError::NoBacking { .. })
    ));
    let empty = Box::new(FrameAllocator::new(Pooled::new(&map, NO_LIMIT, 0..0, 16)));
    assert_eq!(a.stats(), empty.stats());
    assert!(free_lists(&a).iter().all(Vec::is_empty));
    assert!(a.alloc(0).is_err());
}

#[test]
fn the_reserve_bound_holds_on_a_terabyte() {
    use limine::*;
    // 1 TiB of RAM above 4 GiB, an OVMF-like low map.
    let map = bios_map(&[
        entry(0x1000, 0x9e000, USABLE),
        entry(0x10_0000, 0x7f00_0000, USABLE),
        entry(0x7f10_0000, 0xb0_0000, BOOTLOADER_RECLAIMABLE),
        entry(0x7fc0_0000, 0x40_0000, ACPI_NVS),
        entry(0x1_0000_0000, 1 << 40, USABLE),
    ]);
    let low = 0..0x1_0000;
    let reserve = vmemmap::init_frames(&map, NO_LIMIT, core::slice::from_ref(&low));
    // Nothing per free GiB but a page of records per 256, and a page for
    // 128 reserved frames: a few hundred frames.
    assert!((200..1000).contains(&reserve), "{reserve}");
}

// ---------------------------------------------------------------------------
// Random maps, random operations.

/// EFI types with weights: mostly free memory, and every kind of RAM.
fn efi_type() -> impl Strategy<Value = MemoryType> {
    use MemoryType as T;
    prop_oneof![
        8 => Just(T::CONVENTIONAL),
        2 => Just(T::BOOT_SERVICES_DATA),
        2 => Just(T::LOADER_DATA),
        1 => Just(T::RUNTIME_SERVICES_CODE),
        1 => Just(T::RUNTIME_SERVICES_DATA),
        1 => Just(T::ACPI_RECLAIM),
        1 => Just(T::ACPI_NON_VOLATILE),
        1 => Just(T::RESERVED),
        1 => Just(T::MMIO),
        1 => Just(T::UNUSABLE),
    ]
}

/// A random map: EFI descriptors `(gap, pages, type)` laid upwards from a
/// base, optionally with the kernel (Limine's map) over some pages.
#[derive(Debug, Clone)]
struct MapCase {
    base: u64,
    descs: Vec<(u64, u64, MemoryType)>,
    kernel: Option<(Index, u64)>,
    limit: Option<Index>,
    exclusions: Vec<(Index, Index, Index, bool)>,
}

fn map_case() -> impl Strategy<Value = MapCase> {
    let gap = prop_oneof![3 => Just(0u64), 1 => 1u64..64, 1 => 1u64..(1 << 20)];
    let pages = prop_oneof![6 => 1u64..600, 2 => 600u64..5000, 1 => 5000u64..20000];
    (
        prop_oneof![Just(0u64), Just(0x100u64), 1u64..(1 << 26)],
        proptest::collection::vec((gap, pages, efi_type()), 1..16),
        proptest::option::of((any::<Index>(), 1u64..64)),
        proptest::option::weighted(0.2, any::<Index>()),
        proptest::collection::vec(any::<(Index, Index, Index, bool)>(), 0..3),
    )
        .prop_map(|(base, descs, kernel, limit, exclusions)| MapCase {
            base,
            descs,
            kernel,
            limit,
            exclusions,
        })
}

impl MapCase {
    fn build(&self) -> (Box<MemoryMap>, u64, Vec<Exclusion>) {
        let mut descs = Vec::new();
        let mut at = self.base;
        for &(gap, pages, ty) in &self.descs {
            at += gap;
            descs.push((ty, at * PAGE_SIZE, pages));
            at += pages;
        }
        let mut limine = Vec::new();
        if let Some((which, pages)) = self.kernel {
            let (_, start, len) = *which.get(&descs);
            limine.push(entry(
                start,
                pages.min(len) * PAGE_SIZE,
                limine::EXECUTABLE_AND_MODULES,
            ));
        }
        let map = efi_map(&descs, &limine);
        // A limit somewhere inside a descriptor, or none.
        let limit = self.limit.map_or(NO_LIMIT, |i| {
            let (_, start, pages) = *i.get(&descs);
            start + pages / 2 * PAGE_SIZE
        });
        // Exclusions: a stretch of one RAM region below the limit.
        let ram: Vec<_> = map
            .regions()
            .iter()
            .filter(|r| r.kind.is_ram() && r.start < limit)
            .collect();
        let mut exclusions = Vec::new();
        if !ram.is_empty() {
            for (region, a, b, tables) in &self.exclusions {
                let r = region.get(&ram);
                let pages = ((r.end.min(limit) - r.start) / PAGE_SIZE) as usize;
                let (a, b) = (a.index(pages), b.index(pages));
                let (first, last) = (a.min(b) as u64, a.max(b) as u64);
                let reason = if *tables {
                    Reason::PageTables
                } else {
                    Reason::Vmemmap
                };
                exclusions.push(exclusion(
                    r.start + first * PAGE_SIZE,
                    r.start + (last + 1) * PAGE_SIZE,
                    reason,
                ));
            }
        }
        (map, limit, exclusions)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Alloc(u8),
    /// Free the n-th allocated block.
    Free(Index),
    /// Free an arbitrary frame with an arbitrary order: mostly refused.
    Stray(Index, Index, u8),
    Release(bool),
    /// Give back a frame held for page tables (or the vmemmap): a target,
    /// or a frame of an exclusion.
    Unreserve(Index, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..4).prop_map(Op::Alloc),
        3 => (0u8..=12).prop_map(Op::Alloc),
        1 => (0u8..=MAX_ORDER + 1).prop_map(Op::Alloc),
        8 => any::<Index>().prop_map(Op::Free),
        3 => (any::<Index>(), any::<Index>(), 0u8..=MAX_ORDER + 1)
            .prop_map(|(a, b, o)| Op::Stray(a, b, o)),
        1 => any::<bool>().prop_map(Op::Release),
        2 => (any::<Index>(), any::<bool>()).prop_map(|(i, t)| Op::Unreserve(i, t)),
    ]
}

/// The frames a lazy allocator may have written descriptors for: those
/// reserved, handed out or given to the store, and the first frames of
/// blocks (free ones seen after each step, and the blocks initialisation
/// tiles each free range of a region with, before merging).
struct Reached(BTreeSet<u64>);

impl Reached {
    fn at_init(map: &MemoryMap, model: &Model) -> Reached {
        let mut reached = BTreeSet::new();
        for (pfn, o) in model.pfns() {
            if matches!(o, Owner::Reserved(_)) {
                reached.insert(pfn);
            }
        }
        for r in map.regions().iter().filter(|r| r.kind.is_ram()) {
            let mut run: Option<u64> = None;
            for p in r.start / PAGE_SIZE..=r.end / PAGE_SIZE {
                let free = p < r.end / PAGE_SIZE && model.owner(p) == Some(Owner::Free);
                match (free, run) {
                    (true, None) => run = Some(p),
                    (false, Some(start)) => {
                        reached.extend(eager::blocks(start, p).map(|(head, _)| head));
                        run = None;
                    }
                    _ => {}
                }
            }
        }
        Reached(reached)
    }

    /// Adds the free blocks' first frames, then checks that nothing else
    /// was written.
    fn check<D: Descriptors>(&mut self, a: &FrameAllocator<D>, written: &BTreeSet<u64>) {
        for order in 0..=MAX_ORDER {
            self.0.extend(a.free_list(order).map(pfn));
        }
        if let Some(p) = written.difference(&self.0).next() {
            panic!(
                "the descriptor of {:#x} was written, but no operation reached it",
                p * PAGE_SIZE
            );
        }
    }
}

fn free_lists<D: Descriptors>(a: &FrameAllocator<D>) -> Vec<Vec<PhysFrame>> {
    (0..=MAX_ORDER).map(|o| a.free_list(o).collect()).collect()
}

fn eager_lists(a: &EagerAllocator) -> Vec<Vec<PhysFrame>> {
    (0..=MAX_ORDER).map(|o| a.free_list(o).collect()).collect()
}

/// Runs `ops` on the lazy allocator and on the eager one: the same
/// answers, counts and free lists (in order) at every step, every frame
/// where the frame model says, and no descriptor written that no
/// operation reached.
fn run(case: &MapCase, ops: &[Op]) {
    let (map, limit, exclusions) = case.build();
    let mut a = allocator(&map, limit, &exclusions);
    let mut e = eager(&map, limit, &exclusions);
    let mut model = Model::new(&map, limit, &exclusions);
    check(&a, &model);
    let mut reached = Reached::at_init(&map, &model);
    reached.check(&a, &a.descriptors().written);
    assert_eq!(a.stats(), e.stats());
    assert_eq!(free_lists(&a), eager_lists(&e));
    let initial = *a.stats();
    // Frames worth aiming a stray free at: region edges and middles, the
    // holes after regions, the limit.
    let mut targets: Vec<u64> = vec![0];
    if limit < NO_LIMIT {
        targets.push(limit / PAGE_SIZE);
    }
    for r in map.regions() {
        let (s, e) = (r.start / PAGE_SIZE, r.end / PAGE_SIZE);
        targets.extend([s, s + 1, (s + e) / 2, e - 1, e]);
    }
    let (mut released, mut unreserved) = (Vec::new(), Vec::new());
    for op in ops {
        match op {
            Op::Alloc(order) => {
                let got = a.alloc(*order);
                assert_eq!(got, e.alloc(*order), "alloc({order})");
                match got {
                    Ok(f) => {
                        let p = pfn(f);
                        assert!(p.is_multiple_of(1 << order), "{f:?} misaligned");
                        model.allocated(p, *order);
                        reached.0.extend(p..p + (1 << order));
                    }
                    Err(AllocError::BadOrder { order: o }) => {
                        assert_eq!(o, *order);
                        assert!(*order > MAX_ORDER);
                    }
                    Err(err) => {
                        assert_eq!(err, AllocError::OutOfMemory { order: *order });
                        assert!(!model.has_free_block(*order), "{err} with room left");
                    }
                }
            }
            Op::Free(i) => {
                if model.blocks.is_empty() {
                    continue;
                }
                let (&p, &order) = model
                    .blocks
                    .iter()
                    .nth(i.index(model.blocks.len()))
                    .unwrap();
                a.free(frame(p), order).unwrap();
                e.free(frame(p), order).unwrap();
                model.freed(p);
            }
            Op::Stray(which, near, order) => {
                // A target, or a frame in or near an allocated block.
                let mut candidates = targets.clone();
                for (&p, &o) in &model.blocks {
                    candidates.extend([p, p + 1, p + (1 << o) - 1]);
                }
                let p = *which.get(&candidates) + near.index(2) as u64;
                let expected = model.expect_free(p, *order);
                assert_eq!(a.state(frame(p)), e.state(frame(p)), "state({p:#x})");
                assert_eq!(
                    a.free(frame(p), *order),
                    expected,
                    "free {p:#x} order {order}"
                );
                assert_eq!(e.free(frame(p), *order), expected);
                if expected.is_ok() {
                    model.freed(p);
                }
            }
            Op::Release(boot_services) => {
                let (kind, reason) = if *boot_services {
                    (Kind::BootServices, Reason::BootServices)
                } else {
                    (Kind::BootloaderReclaimable, Reason::Bootloader)
                };
                let before = model.counts().free_frames;
                model.released(reason);
                let frames = a.release(kind).unwrap();
                assert_eq!(frames, model.counts().free_frames - before);
                assert_eq!(e.release(kind), Ok(frames));
                released.push(kind);
            }
            Op::Unreserve(which, tables) => {
                let reason = if *tables {
                    Reason::PageTables
                } else {
                    Reason::Vmemmap
                };
                let mut candidates = targets.clone();
                for ex in &exclusions {
                    let (s, e) = (pfn(ex.frames.start), pfn(ex.frames.end));
                    candidates.extend([s, (s + e) / 2, e.saturating_sub(1)]);
                }
                let p = *which.get(&candidates);
                let f = frame(p);
                let expected = match model.owner(p) {
                    None => Err(AllocError::NotRam { frame: f }),
                    Some(Owner::Reserved(r)) if r == reason => Ok(()),
                    Some(_) => Err(AllocError::NotReserved { frame: f, reason }),
                };
                assert_eq!(a.unreserve(f, reason), expected, "unreserve {p:#x}");
                assert_eq!(e.unreserve(f, reason), expected);
                if expected.is_ok() {
                    model.set(p, Owner::Free);
                    unreserved.push((f, reason));
                }
            }
        }
        let counts = FrameStats {
            free_blocks: a.stats().free_blocks,
            ..model.counts()
        };
        assert_eq!(*a.stats(), counts);
        assert_eq!(a.stats(), e.stats());
        assert_eq!(free_lists(&a), eager_lists(&e), "after {op:?}");
        reached.check(&a, &a.descriptors().written);
    }
    check(&a, &model);
    for (p, _) in model.pfns() {
        assert_eq!(a.state(frame(p)), e.state(frame(p)), "state({p:#x})");
    }
    // Free everything: the counts and the very blocks of a fresh allocator
    // that made the same releases come back.
    let blocks: Vec<_> = model.blocks.iter().map(|(&p, &o)| (p, o)).collect();
    for (p, order) in blocks.into_iter().rev() {
        a.free(frame(p), order).unwrap();
        model.freed(p);
    }
    check(&a, &model);
    reached.check(&a, &a.descriptors().written);
    let mut fresh = allocator(&map, limit, &exclusions);
    for kind in released {
        fresh.release(kind).unwrap();
    }
    for (f, reason) in unreserved {
        fresh.unreserve(f, reason).unwrap();
    }
    assert_eq!(a.stats(), fresh.stats());
    if a.stats().reserved_frames == initial.reserved_frames {
        assert_eq!(*a.stats(), initial);
    }
    for order in 0..=MAX_ORDER {
        let mine: BTreeSet<_> = a.free_list(order).collect();
        let theirs: BTreeSet<_> = fresh.free_list(order).collect();
        assert_eq!(mine, theirs, "order {order}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_maps_and_operations(
        case in map_case(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        run(&case, &ops);
    }
}

#[test]
fn reserved_page_tables_can_be_given_back_one_by_one() {
    let map = small_map();
    let exclusions = [exclusion(0x3ff_0000, 0x400_0000, Reason::PageTables)];
    let mut a = allocator(&map, NO_LIMIT, &exclusions);
    let before = *a.stats();
    let table = frame(0x3ff1);
    a.unreserve(table, Reason::PageTables).unwrap();
    assert_eq!(a.stats().free_frames, before.free_frames + 1);
    assert_eq!(
        a.stats().reserved_bytes(Reason::PageTables),
        before.reserved_bytes(Reason::PageTables) - 4096
    );
    assert!(matches!(a.state(table), FrameState::Free { .. }));
    // Once only, and only for the reason it was held back for.
    assert_eq!(
        a.unreserve(table, Reason::PageTables),
        Err(AllocError::NotReserved {
            frame: table,
            reason: Reason::PageTables
        })
    );
    assert_eq!(
        a.unreserve(frame(0x3ff2), Reason::Vmemmap),
        Err(AllocError::NotReserved {
            frame: frame(0x3ff2),
            reason: Reason::Vmemmap
        })
    );
    assert!(matches!(
        a.unreserve(frame(0xa0), Reason::PageTables),
        Err(AllocError::NotRam { .. })
    ));
    // Every frame comes back: all of them can be allocated, each once.
    let mut seen = std::collections::BTreeSet::new();
    while let Ok(f) = a.alloc(0) {
        assert!(seen.insert(pfn(f)));
    }
    assert!(seen.contains(&0x3ff1));
    assert!(!seen.contains(&0x3ff2));
}

//! The frame allocator as it was before free memory became free of cost:
//! every RAM frame's descriptor written at initialisation, each holding
//! the order of the all-RAM block around it. Kept, unchanged in its
//! logic, as the model the lazy allocator is held to: for the same map
//! and the same operations it must give the same answers, blocks and
//! counts.

use core::fmt;
use core::ops::Range;

use x86_64::PhysAddr;
use x86_64::structures::paging::PhysFrame;

use super::super::buddy::{
    AllocError, Exclusion, FrameState, FrameStats, MAX_ORDER, ORDERS, SetupError,
};
use super::super::desc::{DescState, Reason};
use crate::PAGE_SIZE;
use crate::memmap::{Allocatable, Kind, MAX_REGIONS, MemoryMap};

const NIL: u64 = u64::MAX;

/// The descriptor as it was: its state, the free-list links, and the
/// order of the largest aligned all-RAM block around the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDesc {
    next: u64,
    prev: u64,
    state: DescState,
    ram_order: u8,
}

impl FrameDesc {
    const fn new(state: DescState, ram_order: u8) -> FrameDesc {
        FrameDesc {
            next: NIL,
            prev: NIL,
            state,
            ram_order,
        }
    }

    pub fn state(&self) -> DescState {
        self.state
    }

    pub fn ram_order(&self) -> u8 {
        self.ram_order
    }

    fn set_state(&mut self, state: DescState) {
        self.state = state;
    }

    fn is_free_block(&self, order: u8) -> bool {
        self.state == DescState::Free { order }
    }

    fn next(&self) -> u64 {
        self.next
    }

    fn prev(&self) -> u64 {
        self.prev
    }

    fn set_next(&mut self, pfn: u64) {
        self.next = pfn;
    }

    fn set_prev(&mut self, pfn: u64) {
        self.prev = pfn;
    }
}

/// Every RAM frame's descriptor in a `Vec` per RAM run, invalid until
/// written; any other PFN panics.
pub struct EagerStore {
    runs: Vec<(u64, Vec<FrameDesc>)>,
}

impl EagerStore {
    pub fn new(map: &MemoryMap, limit: u64) -> EagerStore {
        let runs = map
            .ram_runs()
            .filter(|r| r.start < limit)
            .map(|r| {
                let (start, end) = (r.start / PAGE_SIZE, r.end.min(limit) / PAGE_SIZE);
                let invalid = FrameDesc::new(DescState::Invalid(0xee), 0);
                (start, vec![invalid; (end - start) as usize])
            })
            .collect();
        EagerStore { runs }
    }

    fn slot(&self, pfn: u64) -> (usize, usize) {
        let i = self
            .runs
            .partition_point(|(start, descs)| start + descs.len() as u64 <= pfn);
        match self.runs.get(i) {
            Some((start, _)) if *start <= pfn => (i, (pfn - start) as usize),
            _ => panic!("eager store: {:#x} is not RAM", pfn * PAGE_SIZE),
        }
    }

    pub fn desc(&self, pfn: u64) -> &FrameDesc {
        let (run, i) = self.slot(pfn);
        &self.runs[run].1[i]
    }

    fn desc_mut(&mut self, pfn: u64) -> &mut FrameDesc {
        let (run, i) = self.slot(pfn);
        &mut self.runs[run].1[i]
    }

    fn fill(&mut self, pfns: Range<u64>, value: FrameDesc) {
        let (run, i) = self.slot(pfns.start);
        let n = (pfns.end - pfns.start) as usize;
        self.runs[run].1[i..i + n].fill(value);
    }
}

/// A run of RAM below the limit, by PFN, of one kind.
#[derive(Debug, Clone, Copy)]
struct RamRange {
    start: u64,
    end: u64,
    kind: Kind,
}

impl RamRange {
    const EMPTY: RamRange = RamRange {
        start: 0,
        end: 0,
        kind: Kind::Usable,
    };
}

/// A binary buddy allocator of physical frames, its state in per-frame
/// descriptors reached through `D`.
///
/// Blocks are 2^order frames, naturally aligned, order 0 to [`MAX_ORDER`].
/// Each order has a doubly linked free list threaded through the first
/// descriptor of each free block. Allocation takes the smallest free block
/// that fits and splits it; freeing merges a block with its buddy for as
/// long as the buddy is free, of the same order, and the merged block is
/// all RAM. Both are O([`MAX_ORDER`]); freeing also finds the frame's RAM
/// region by binary search to refuse foreign frames before touching any
/// descriptor.
///
/// It is large (about 48 KiB, a copy of the RAM regions): keep it in a
/// `static` and [`init`](Self::init) it in place.
pub struct EagerAllocator {
    descs: EagerStore,
    /// The first block of each order's free list, or [`NIL`].
    heads: [u64; ORDERS],
    stats: FrameStats,
    /// The RAM regions below the limit, sorted, for ownership checks and
    /// releases.
    ram: Vec<RamRange>,
    ram_len: usize,
}

impl fmt::Debug for EagerAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EagerAllocator")
            .field("stats", &self.stats)
            .field("ram_regions", &self.ram_len)
            .finish_non_exhaustive()
    }
}

const EMPTY_STATS: FrameStats = FrameStats {
    ram_frames: 0,
    free_frames: 0,
    allocated_frames: 0,
    reserved_frames: 0,
    free_blocks: [0; ORDERS],
    reserved: [0; Reason::COUNT],
};

fn frame(pfn: u64) -> PhysFrame {
    PhysFrame::containing_address(PhysAddr::new(pfn * PAGE_SIZE))
}

fn pfn(frame: PhysFrame) -> u64 {
    frame.start_address().as_u64() / PAGE_SIZE
}

/// The largest naturally aligned blocks that tile `start..end` (PFNs), in
/// address order, none above [`MAX_ORDER`]: orders rise from `start`'s
/// alignment, then fall to fit `end`.
pub fn blocks(start: u64, end: u64) -> impl Iterator<Item = (u64, u8)> {
    let mut at = start;
    core::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let align = if at == 0 {
            u32::MAX
        } else {
            at.trailing_zeros()
        };
        let fit = (end - at).ilog2();
        let order = align.min(fit).min(u32::from(MAX_ORDER)) as u8;
        let block = (at, order);
        at += 1 << order;
        Some(block)
    })
}

impl EagerAllocator {
    /// An allocator over `descs` with nothing in it; [`init`](Self::init)
    /// fills it.
    pub fn new(descs: EagerStore) -> Self {
        EagerAllocator {
            descs,
            heads: [NIL; ORDERS],
            stats: EMPTY_STATS,
            ram: vec![RamRange::EMPTY; MAX_REGIONS],
            ram_len: 0,
        }
    }

    /// The counts.
    pub fn stats(&self) -> &FrameStats {
        &self.stats
    }

    /// Initialises from `map`: every RAM frame below `limit` (the physmap's
    /// size: the kernel cannot reach RAM above it) gets a descriptor, and
    /// the memory that is allocatable [now](Allocatable::Now), less the
    /// `exclusions`, becomes free. Memory allocatable later stays
    /// [reserved](Reason::Bootloader) until [`release`](Self::release).
    ///
    /// Every descriptor is written once, through [`Descriptors::fill`] in
    /// runs (a memset's worth of work: 32 bytes per frame). The free lists
    /// get the largest aligned blocks of each free range, at most
    /// 2 * MAX_ORDER per range plus one per GiB, each inserted in
    /// O(MAX_ORDER): list work grows with regions and GiBs, not frames.
    /// Exclusions cost a write per frame.
    ///
    /// # Errors
    ///
    /// An exclusion outside RAM below `limit` or with a reason of the map;
    /// the allocator is then left empty, with no descriptor written.
    pub fn init(
        &mut self,
        map: &MemoryMap,
        limit: u64,
        exclusions: &[Exclusion],
    ) -> Result<(), SetupError> {
        self.heads = [NIL; ORDERS];
        self.stats = EMPTY_STATS;
        self.ram_len = 0;
        let limit_pfn = limit / PAGE_SIZE;
        for r in map.regions().iter().filter(|r| r.kind.is_ram()) {
            let (start, end) = (r.start / PAGE_SIZE, (r.end / PAGE_SIZE).min(limit_pfn));
            if start < end {
                // At most MAX_REGIONS: the map holds no more.
                self.ram[self.ram_len] = RamRange {
                    start,
                    end,
                    kind: r.kind,
                };
                self.ram_len += 1;
            }
        }
        if let Err(err) = self.check_exclusions(exclusions) {
            self.ram_len = 0;
            return Err(err);
        }
        self.write_descriptors();
        for ex in exclusions {
            for pfn in pfn(ex.frames.start)..pfn(ex.frames.end) {
                let desc = self.descs.desc_mut(pfn);
                if let DescState::Reserved(old) = desc.state() {
                    self.stats.reserved[old.index()] -= 1;
                    self.stats.reserved_frames -= 1;
                }
                desc.set_state(DescState::Reserved(ex.reason));
                self.stats.reserved[ex.reason.index()] += 1;
                self.stats.reserved_frames += 1;
            }
        }
        for i in 0..self.ram_len {
            let r = self.ram[i];
            if r.kind.policy().allocatable != Allocatable::Now {
                continue;
            }
            // The region less the exclusions, in address order: each step
            // jumps over the lowest exclusion still ahead.
            let mut at = r.start;
            while at < r.end {
                let next = exclusions
                    .iter()
                    .map(|ex| (pfn(ex.frames.start), pfn(ex.frames.end)))
                    .filter(|&(s, e)| s < e && e > at && s < r.end)
                    .min_by_key(|&(s, _)| s);
                let (free_end, resume) = match next {
                    Some((s, e)) => (s.max(at), e),
                    None => (r.end, r.end),
                };
                self.free_range(at, free_end);
                at = resume;
            }
        }
        Ok(())
    }

    /// Checks every exclusion before anything is written.
    fn check_exclusions(&self, exclusions: &[Exclusion]) -> Result<(), SetupError> {
        for ex in exclusions {
            if !ex.reason.is_exclusion() {
                return Err(SetupError::NotAnExclusionReason { reason: ex.reason });
            }
            let (mut at, end) = (pfn(ex.frames.start), pfn(ex.frames.end));
            let ram = self.ram_ranges();
            let mut i = ram.partition_point(|r| r.end <= at);
            while at < end {
                match ram.get(i) {
                    Some(r) if r.start <= at => at = r.end,
                    _ => return Err(SetupError::ExclusionNotRam { frame: frame(at) }),
                }
                i += 1;
            }
        }
        Ok(())
    }

    /// Writes every descriptor: its state from its region's kind (free
    /// memory as [`DescState::Tail`] until it joins a block) and its
    /// `ram_order`, the order of the largest aligned block of its RAM run
    /// that holds it.
    fn write_descriptors(&mut self) {
        let mut i = 0;
        while i < self.ram_len {
            // One run of touching RAM regions: ram[i..j].
            let mut j = i + 1;
            while j < self.ram_len && self.ram[j].start == self.ram[j - 1].end {
                j += 1;
            }
            let mut region = i;
            for (start, order) in blocks(self.ram[i].start, self.ram[j - 1].end) {
                let end = start + (1 << order);
                // Every region meeting the block, from the first one not
                // yet passed.
                while self.ram[region].end <= start {
                    region += 1;
                }
                let mut k = region;
                while k < j && self.ram[k].start < end {
                    let r = self.ram[k];
                    let piece = r.start.max(start)..r.end.min(end);
                    let state = match Reason::from_kind(r.kind) {
                        Some(reason) => {
                            let frames = piece.end - piece.start;
                            self.stats.reserved[reason.index()] += frames;
                            self.stats.reserved_frames += frames;
                            DescState::Reserved(reason)
                        }
                        None => DescState::Tail,
                    };
                    self.stats.ram_frames += piece.end - piece.start;
                    self.descs.fill(piece, FrameDesc::new(state, order));
                    k += 1;
                }
            }
            i = j;
        }
    }

    /// Puts the frames `start..end`, whose descriptors say
    /// [`DescState::Tail`], on the free lists.
    fn free_range(&mut self, start: u64, end: u64) {
        for (pfn, order) in blocks(start, end) {
            self.insert(pfn, order);
        }
        self.stats.free_frames += end.saturating_sub(start);
    }

    /// Makes memory of `kind` free: the step of the boot after which its
    /// policy allows it ([`Allocatable::AfterCr3Switch`] or
    /// [`Allocatable::AfterEfiHandoff`]) is done. Frames an exclusion took
    /// stay reserved. Returns the frames released; a second release of the
    /// same kind releases none. O(frames of that kind).
    pub fn release(&mut self, kind: Kind) -> Result<u64, SetupError> {
        let reason = match Reason::from_kind(kind) {
            Some(reason) if reason.is_releasable() => reason,
            _ => return Err(SetupError::NotReleasable { kind }),
        };
        let held = DescState::Reserved(reason);
        let before = self.stats.free_frames;
        for i in 0..self.ram_len {
            let r = self.ram[i];
            if r.kind != kind {
                continue;
            }
            let mut run: Option<u64> = None;
            for pfn in r.start..r.end {
                let desc = self.descs.desc_mut(pfn);
                if desc.state() == held {
                    desc.set_state(DescState::Tail);
                    run.get_or_insert(pfn);
                } else if let Some(start) = run.take() {
                    self.release_range(reason, start, pfn);
                }
            }
            if let Some(start) = run {
                self.release_range(reason, start, r.end);
            }
        }
        Ok(self.stats.free_frames - before)
    }

    /// Makes `frame`, held back by an exclusion for `reason` (page tables,
    /// say), free once its user is done with it: the page tables of a
    /// temporary address space.
    pub fn unreserve(&mut self, frame: PhysFrame, reason: Reason) -> Result<(), AllocError> {
        let pfn = pfn(frame);
        if self.ram_range(pfn).is_none() {
            return Err(AllocError::NotRam { frame });
        }
        let desc = self.descs.desc_mut(pfn);
        if desc.state() != DescState::Reserved(reason) {
            return Err(AllocError::NotReserved { frame, reason });
        }
        desc.set_state(DescState::Tail);
        self.release_range(reason, pfn, pfn + 1);
        Ok(())
    }

    fn release_range(&mut self, reason: Reason, start: u64, end: u64) {
        self.stats.reserved[reason.index()] -= end - start;
        self.stats.reserved_frames -= end - start;
        self.free_range(start, end);
    }

    /// Allocates a naturally aligned block of 2^`order` frames and returns
    /// its first frame.
    pub fn alloc(&mut self, order: u8) -> Result<PhysFrame, AllocError> {
        if order > MAX_ORDER {
            return Err(AllocError::BadOrder { order });
        }
        let found = (order..=MAX_ORDER)
            .find(|&o| self.heads[usize::from(o)] != NIL)
            .ok_or(AllocError::OutOfMemory { order })?;
        let pfn = self.heads[usize::from(found)];
        self.unlink(pfn, found);
        // Split: the upper halves go back, largest first.
        for o in (order..found).rev() {
            self.push(pfn + (1 << o), o);
        }
        self.descs
            .desc_mut(pfn)
            .set_state(DescState::Allocated { order });
        self.stats.free_frames -= 1 << order;
        self.stats.allocated_frames += 1 << order;
        Ok(frame(pfn))
    }

    /// Frees the block of 2^`order` frames at `frame`, which
    /// [`alloc`](Self::alloc) returned for that order, merging it with its
    /// free buddies.
    pub fn free(&mut self, frame: PhysFrame, order: u8) -> Result<(), AllocError> {
        if order > MAX_ORDER {
            return Err(AllocError::BadOrder { order });
        }
        let pfn = pfn(frame);
        if !pfn.is_multiple_of(1 << order) {
            return Err(AllocError::Misaligned { frame, order });
        }
        if self.ram_range(pfn).is_none() {
            return Err(AllocError::NotRam { frame });
        }
        match self.descs.desc(pfn).state() {
            DescState::Allocated { order: o } if o == order => {}
            DescState::Allocated { order: allocated } => {
                return Err(AllocError::WrongOrder {
                    frame,
                    order,
                    allocated,
                });
            }
            DescState::Free { .. } => return Err(AllocError::DoubleFree { frame }),
            DescState::Reserved(reason) => return Err(AllocError::Reserved { frame, reason }),
            DescState::Tail => {
                let (block, state) = self.head_of(pfn);
                return Err(match state {
                    DescState::Allocated { order } => AllocError::InsideBlock {
                        frame,
                        block: self::frame(block),
                        order,
                    },
                    _ => AllocError::DoubleFree { frame },
                });
            }
            DescState::Invalid(byte) => corrupt(pfn, byte),
        }
        self.insert(pfn, order);
        self.stats.free_frames += 1 << order;
        self.stats.allocated_frames -= 1 << order;
        Ok(())
    }

    /// What `frame` is: free, allocated (with its block), reserved or not
    /// RAM. O(MAX_ORDER + log regions).
    pub fn state(&self, frame: PhysFrame) -> FrameState {
        let pfn = pfn(frame);
        if self.ram_range(pfn).is_none() {
            return FrameState::NotRam;
        }
        let (block, state) = match self.descs.desc(pfn).state() {
            DescState::Tail => self.head_of(pfn),
            state => (pfn, state),
        };
        match state {
            DescState::Free { order } => FrameState::Free {
                block: self::frame(block),
                order,
            },
            DescState::Allocated { order } => FrameState::Allocated {
                block: self::frame(block),
                order,
            },
            DescState::Reserved(reason) => FrameState::Reserved(reason),
            DescState::Tail => unreachable!("head_of returns a head"),
            DescState::Invalid(byte) => corrupt(pfn, byte),
        }
    }

    /// The first frames of the free blocks of `order`, most recently freed
    /// first.
    ///
    /// # Panics
    ///
    /// If `order` is above [`MAX_ORDER`].
    pub fn free_list(&self, order: u8) -> impl Iterator<Item = PhysFrame> + '_ {
        let mut at = self.heads[usize::from(order)];
        core::iter::from_fn(move || {
            if at == NIL {
                return None;
            }
            let pfn = at;
            at = self.descs.desc(pfn).next();
            Some(frame(pfn))
        })
    }

    fn ram_ranges(&self) -> &[RamRange] {
        &self.ram[..self.ram_len]
    }

    /// The RAM region holding `pfn`.
    fn ram_range(&self, pfn: u64) -> Option<&RamRange> {
        let ram = self.ram_ranges();
        let i = ram.partition_point(|r| r.end <= pfn);
        ram.get(i).filter(|r| r.start <= pfn)
    }

    /// The first frame and state of the block holding `pfn`, a
    /// [`DescState::Tail`]: the nearest aligned frame below it that heads a
    /// block. Each candidate lies in `pfn`'s all-RAM block, so it has a
    /// descriptor.
    fn head_of(&self, pfn: u64) -> (u64, DescState) {
        let ram_order = self.descs.desc(pfn).ram_order();
        for order in 1..=ram_order {
            let candidate = pfn & !((1 << order) - 1);
            match self.descs.desc(candidate).state() {
                DescState::Tail => {}
                state @ (DescState::Free { order: o } | DescState::Allocated { order: o })
                    if pfn < candidate + (1 << o) =>
                {
                    return (candidate, state);
                }
                _ => break,
            }
        }
        panic!(
            "frame descriptors corrupt: no block holds {:#x}",
            pfn * PAGE_SIZE
        )
    }

    /// Puts the block of `order` at `pfn` on its free list after merging it
    /// with its buddies as far as they are free and the result is all RAM.
    fn insert(&mut self, mut pfn: u64, mut order: u8) {
        let ram_order = self.descs.desc(pfn).ram_order();
        while order < ram_order {
            let buddy = pfn ^ (1 << order);
            if !self.descs.desc(buddy).is_free_block(order) {
                break;
            }
            self.unlink(buddy, order);
            self.descs
                .desc_mut(pfn.max(buddy))
                .set_state(DescState::Tail);
            pfn = pfn.min(buddy);
            order += 1;
        }
        self.push(pfn, order);
    }

    /// Marks `pfn` the head of a free block of `order` and puts it first on
    /// that order's list.
    fn push(&mut self, pfn: u64, order: u8) {
        let head = self.heads[usize::from(order)];
        let desc = self.descs.desc_mut(pfn);
        desc.set_state(DescState::Free { order });
        desc.set_prev(NIL);
        desc.set_next(head);
        if head != NIL {
            self.descs.desc_mut(head).set_prev(pfn);
        }
        self.heads[usize::from(order)] = pfn;
        self.stats.free_blocks[usize::from(order)] += 1;
    }

    /// Takes the free block at `pfn` off its list.
    fn unlink(&mut self, pfn: u64, order: u8) {
        let desc = self.descs.desc(pfn);
        let (prev, next) = (desc.prev(), desc.next());
        if prev == NIL {
            self.heads[usize::from(order)] = next;
        } else {
            self.descs.desc_mut(prev).set_next(next);
        }
        if next != NIL {
            self.descs.desc_mut(next).set_prev(prev);
        }
        self.stats.free_blocks[usize::from(order)] -= 1;
    }
}

#[cold]
fn corrupt(pfn: u64, byte: u8) -> ! {
    panic!(
        "frame descriptor of {:#x} corrupt: state byte {byte:#x}",
        pfn * PAGE_SIZE
    )
}

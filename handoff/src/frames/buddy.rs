//! The buddy allocator over the frame descriptors.

use core::fmt;

use x86_64::PhysAddr;
use x86_64::structures::paging::PhysFrame;
use x86_64::structures::paging::frame::PhysFrameRange;

use super::desc::{DescState, Descriptors, FrameDesc, GibRecord, NIL, NoBacking, Reason};
use crate::PAGE_SIZE;
use crate::memmap::{Allocatable, Kind, MAX_REGIONS, MemoryMap};

/// The largest block order: 2^18 frames, 1 GiB.
pub const MAX_ORDER: u8 = 18;

/// The number of orders, 0 to [`MAX_ORDER`].
pub const ORDERS: usize = MAX_ORDER as usize + 1;

/// A range the kernel used before the allocator existed, held back at
/// initialisation whatever the memory map says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exclusion {
    /// The frames.
    pub frames: PhysFrameRange,
    /// Why: one of the reasons for which [`Reason::is_exclusion`] holds.
    pub reason: Reason,
}

/// Why an allocation or a free failed. Nothing was changed (but for
/// descriptors backed on the way, which stay backed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocError {
    /// The order is above [`MAX_ORDER`].
    BadOrder {
        /// The order asked for.
        order: u8,
    },
    /// No free block of this order or above, or no frame left to back the
    /// descriptors splitting one would write.
    OutOfMemory {
        /// The order asked for.
        order: u8,
    },
    /// The address is not aligned to the block size of the order.
    Misaligned {
        /// The frame given.
        frame: PhysFrame,
        /// The order given.
        order: u8,
    },
    /// The frame is not RAM the allocator manages (a hole, MMIO, RAM above
    /// its limit): it was never handed out.
    NotRam {
        /// The frame given.
        frame: PhysFrame,
    },
    /// The frame is RAM the allocator holds back: it was never handed out.
    Reserved {
        /// The frame given.
        frame: PhysFrame,
        /// Why it is held back.
        reason: Reason,
    },
    /// The frame is free already.
    DoubleFree {
        /// The frame given.
        frame: PhysFrame,
    },
    /// The frame starts an allocated block of another order.
    WrongOrder {
        /// The frame given.
        frame: PhysFrame,
        /// The order given.
        order: u8,
        /// The order it was allocated with.
        allocated: u8,
    },
    /// The frame lies inside an allocated block that starts elsewhere.
    InsideBlock {
        /// The frame given.
        frame: PhysFrame,
        /// The block's first frame.
        block: PhysFrame,
        /// The block's order.
        order: u8,
    },
    /// The frame is not held back for the reason given (see
    /// [`FrameAllocator::unreserve`]).
    NotReserved {
        /// The frame given.
        frame: PhysFrame,
        /// The reason given.
        reason: Reason,
    },
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = |frame: PhysFrame| frame.start_address().as_u64();
        match *self {
            AllocError::BadOrder { order } => {
                write!(f, "order {order} is above the maximum {MAX_ORDER}")
            }
            AllocError::OutOfMemory { order } => {
                write!(f, "out of memory for a block of order {order}")
            }
            AllocError::Misaligned { frame, order } => write!(
                f,
                "{:#x} is not aligned to a block of order {order}",
                addr(frame)
            ),
            AllocError::NotRam { frame } => {
                write!(f, "{:#x} is not RAM the allocator manages", addr(frame))
            }
            AllocError::Reserved { frame, reason } => {
                write!(
                    f,
                    "{:#x} is reserved ({reason}), never allocated",
                    addr(frame)
                )
            }
            AllocError::DoubleFree { frame } => write!(f, "double free of {:#x}", addr(frame)),
            AllocError::WrongOrder {
                frame,
                order,
                allocated,
            } => write!(
                f,
                "{:#x} freed with order {order} but allocated with order {allocated}",
                addr(frame)
            ),
            AllocError::InsideBlock {
                frame,
                block,
                order,
            } => write!(
                f,
                "{:#x} lies inside the block of order {order} at {:#x}",
                addr(frame),
                addr(block)
            ),
            AllocError::NotReserved { frame, reason } => {
                write!(f, "{:#x} is not reserved for {reason}", addr(frame))
            }
        }
    }
}

impl core::error::Error for AllocError {}

/// Why initialisation or a release was refused. On an initialisation error
/// the allocator is left empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupError {
    /// An exclusion holds a frame that is not RAM below the limit.
    ExclusionNotRam {
        /// The first such frame.
        frame: PhysFrame,
    },
    /// An exclusion gives a reason that belongs to the memory map.
    NotAnExclusionReason {
        /// The reason given.
        reason: Reason,
    },
    /// Memory of this kind is never released: it is free from the start or
    /// never free.
    NotReleasable {
        /// The kind given.
        kind: Kind,
    },
    /// The descriptor store had no frame left to back a descriptor with.
    NoBacking {
        /// The frame whose descriptor could not be backed.
        frame: PhysFrame,
    },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SetupError::ExclusionNotRam { frame } => write!(
                f,
                "exclusion holds {:#x}, which is not managed RAM",
                frame.start_address().as_u64()
            ),
            SetupError::NotAnExclusionReason { reason } => {
                write!(f, "\"{reason}\" is not a reason for an exclusion")
            }
            SetupError::NotReleasable { kind } => write!(f, "{kind:?} memory is never released"),
            SetupError::NoBacking { frame } => write!(
                f,
                "no frame left to back the descriptor of {:#x}",
                frame.start_address().as_u64()
            ),
        }
    }
}

impl core::error::Error for SetupError {}

/// What a frame is, as the allocator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameState {
    /// Not RAM the allocator manages: no descriptor.
    NotRam,
    /// In a free block.
    Free {
        /// The block's first frame.
        block: PhysFrame,
        /// The block's order.
        order: u8,
    },
    /// In an allocated block.
    Allocated {
        /// The block's first frame.
        block: PhysFrame,
        /// The block's order.
        order: u8,
    },
    /// Held back.
    Reserved(Reason),
}

/// The allocator's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameStats {
    /// RAM frames below the limit: every frame with a descriptor.
    pub ram_frames: u64,
    /// Frames in free blocks.
    pub free_frames: u64,
    /// Frames in allocated blocks.
    pub allocated_frames: u64,
    /// Frames held back, for any reason.
    pub reserved_frames: u64,
    /// Free blocks per order.
    pub free_blocks: [u64; ORDERS],
    /// Frames held back per reason, by [`Reason::index`].
    pub reserved: [u64; Reason::COUNT],
}

impl FrameStats {
    /// The bytes held back for `reason`.
    pub const fn reserved_bytes(&self, reason: Reason) -> u64 {
        self.reserved[reason.index()] * PAGE_SIZE
    }

    /// The bytes in free blocks.
    pub const fn free_bytes(&self) -> u64 {
        self.free_frames * PAGE_SIZE
    }
}

/// A run of RAM below the limit, by PFN, of one kind, with the run of
/// touching RAM regions around it (how far a block holding its frames may
/// merge).
#[derive(Debug, Clone, Copy)]
struct RamRange {
    start: u64,
    end: u64,
    kind: Kind,
    run_start: u64,
    run_end: u64,
}

impl RamRange {
    const EMPTY: RamRange = RamRange {
        start: 0,
        end: 0,
        kind: Kind::Usable,
        run_start: 0,
        run_end: 0,
    };
}

/// A binary buddy allocator of physical frames whose free memory costs
/// nothing until it is used: its state lives in the descriptors of the
/// frames it has reached, reached through `D`.
///
/// Blocks are 2^order frames, naturally aligned, order 0 to [`MAX_ORDER`].
/// Each order has a doubly linked free list threaded through the first
/// descriptor of each free block, but for 1 GiB blocks, which have a
/// list of their own through [`GibRecord`]s, 16 bytes per GiB; the other
/// frames of a free block keep whatever their descriptors held, or were
/// never backed at all. An allocated block's first frame says so; a
/// reserved frame says why.
/// Every RAM frame lies in exactly one block (a reserved frame is a block
/// of one), so the frame `pfn & !(2^k - 1)` heads a block for every `k`
/// at or above the order of `pfn`'s own block: [`state`](Self::state)
/// and [`free`](Self::free) find a frame's block by reading those heads
/// from the top, and never read a descriptor that was not written.
///
/// Allocation takes the smallest free block that fits and splits it,
/// writing the first descriptor of each half it puts back; freeing merges
/// a block with its buddy for as long as the buddy is free, of the same
/// order, and the merged block is all RAM. Both are O([`MAX_ORDER`]);
/// freeing also finds the frame's RAM region by binary search to refuse
/// foreign frames before touching any descriptor.
///
/// It is large (about 80 KiB, a copy of the RAM regions): keep it in a
/// `static` and [`init`](Self::init) it in place.
pub struct FrameAllocator<D: Descriptors> {
    descs: D,
    /// The first block of each order's free list, or [`NIL`].
    heads: [u64; ORDERS],
    stats: FrameStats,
    /// The RAM regions below the limit, sorted, for ownership checks,
    /// merge bounds and releases.
    ram: [RamRange; MAX_REGIONS],
    ram_len: usize,
}

impl<D: Descriptors> fmt::Debug for FrameAllocator<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameAllocator")
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
pub(super) fn blocks(start: u64, end: u64) -> impl Iterator<Item = (u64, u8)> {
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

/// Which buddies [`FrameAllocator::insert`] may merge with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// Either: every RAM frame is in a block.
    Both,
    /// Only those below: during initialisation, which frees memory upwards,
    /// nothing above the block is in a block yet (nor free).
    Below,
}

impl<D: Descriptors> FrameAllocator<D> {
    /// An allocator over `descs` with nothing in it; [`init`](Self::init)
    /// fills it.
    pub const fn new(descs: D) -> Self {
        FrameAllocator {
            descs,
            heads: [NIL; ORDERS],
            stats: EMPTY_STATS,
            ram: [RamRange::EMPTY; MAX_REGIONS],
            ram_len: 0,
        }
    }

    /// The descriptor store.
    pub fn descriptors(&self) -> &D {
        &self.descs
    }

    /// The descriptor store, to set it up (before [`init`](Self::init)).
    pub fn descriptors_mut(&mut self) -> &mut D {
        &mut self.descs
    }

    /// The counts.
    pub fn stats(&self) -> &FrameStats {
        &self.stats
    }

    /// Initialises from `map`: the memory that is allocatable
    /// [now](Allocatable::Now) below `limit` (the physmap's size: the
    /// kernel cannot reach RAM above it), less the `exclusions`, becomes
    /// free. Memory allocatable later stays [reserved](Reason::Bootloader)
    /// until [`release`](Self::release).
    ///
    /// Only reserved frames (of the map's kinds and the exclusions) and the
    /// first frame of each free block get a descriptor: the free lists get
    /// the largest aligned blocks of each free range, at most 2 * MAX_ORDER
    /// per range plus one per GiB. Free memory costs one descriptor per
    /// block, not per frame. Then the store's reserve is settled: what it
    /// does not need is freed, what it lacks is given.
    ///
    /// # Errors
    ///
    /// An exclusion outside RAM below `limit` or with a reason of the map
    /// (nothing written), or a descriptor the store could not back; the
    /// allocator is then left empty.
    pub fn init(
        &mut self,
        map: &MemoryMap,
        limit: u64,
        exclusions: &[Exclusion],
    ) -> Result<(), SetupError> {
        self.clear();
        self.record_ram(map, limit);
        if let Err(err) = self.check_exclusions(exclusions) {
            self.clear();
            return Err(err);
        }
        let done = self
            .reserve(exclusions)
            .and_then(|()| self.record_gibs())
            .and_then(|()| self.free_initial(exclusions));
        if let Err(err) = done {
            self.clear();
            return Err(err);
        }
        self.settle();
        Ok(())
    }

    fn clear(&mut self) {
        self.heads = [NIL; ORDERS];
        self.stats = EMPTY_STATS;
        self.ram_len = 0;
    }

    /// Copies the RAM regions below `limit`, with the runs of touching
    /// regions they lie in.
    fn record_ram(&mut self, map: &MemoryMap, limit: u64) {
        let limit_pfn = limit / PAGE_SIZE;
        for r in map.regions().iter().filter(|r| r.kind.is_ram()) {
            let (start, end) = (r.start / PAGE_SIZE, (r.end / PAGE_SIZE).min(limit_pfn));
            if start < end {
                // At most MAX_REGIONS: the map holds no more.
                self.ram[self.ram_len] = RamRange {
                    start,
                    end,
                    kind: r.kind,
                    run_start: start,
                    run_end: end,
                };
                self.ram_len += 1;
            }
        }
        let mut i = 0;
        while i < self.ram_len {
            let mut j = i + 1;
            while j < self.ram_len && self.ram[j].start == self.ram[j - 1].end {
                j += 1;
            }
            let (run_start, run_end) = (self.ram[i].start, self.ram[j - 1].end);
            for r in &mut self.ram[i..j] {
                (r.run_start, r.run_end) = (run_start, run_end);
            }
            i = j;
        }
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

    /// Backs the descriptors of `start..end` for initialisation.
    fn back(&mut self, start: u64, end: u64) -> Result<(), SetupError> {
        self.descs
            .back(start..end)
            .map_err(|NoBacking { pfn }| SetupError::NoBacking { frame: frame(pfn) })
    }

    /// Counts all RAM and writes the descriptor of every reserved frame:
    /// the map's reserved kinds, then the exclusions (the last exclusion
    /// holding a frame gives its reason).
    fn reserve(&mut self, exclusions: &[Exclusion]) -> Result<(), SetupError> {
        for i in 0..self.ram_len {
            let r = self.ram[i];
            let frames = r.end - r.start;
            self.stats.ram_frames += frames;
            if let Some(reason) = Reason::from_kind(r.kind) {
                self.back(r.start, r.end)?;
                self.descs
                    .fill(r.start..r.end, FrameDesc::new(DescState::Reserved(reason)));
                self.stats.reserved[reason.index()] += frames;
                self.stats.reserved_frames += frames;
            }
        }
        for (k, ex) in exclusions.iter().enumerate() {
            let (start, end) = (pfn(ex.frames.start), pfn(ex.frames.end));
            if start >= end {
                continue;
            }
            self.back(start, end)?;
            for pfn in start..end {
                let later = exclusions[k + 1..]
                    .iter()
                    .any(|l| (self::pfn(l.frames.start)..self::pfn(l.frames.end)).contains(&pfn));
                if later {
                    continue;
                }
                let kind = self.ram_range(pfn).expect("checked: RAM").kind;
                if let Some(old) = Reason::from_kind(kind) {
                    self.stats.reserved[old.index()] -= 1;
                    self.stats.reserved_frames -= 1;
                }
                *self.descs.desc_mut(pfn) = FrameDesc::new(DescState::Reserved(ex.reason));
                self.stats.reserved[ex.reason.index()] += 1;
                self.stats.reserved_frames += 1;
            }
        }
        Ok(())
    }

    /// Writes the record of every aligned GiB that is all RAM (the only
    /// ones that can be free 1 GiB blocks): not free, for now.
    fn record_gibs(&mut self) -> Result<(), SetupError> {
        const GIB: u64 = 1 << MAX_ORDER;
        let mut i = 0;
        while i < self.ram_len {
            let r = self.ram[i];
            let (first, end) = (r.run_start.next_multiple_of(GIB), r.run_end / GIB * GIB);
            if first < end {
                let gibs = first / GIB..end / GIB;
                self.descs
                    .back_gibs(gibs.clone())
                    .map_err(|NoBacking { pfn }| SetupError::NoBacking { frame: frame(pfn) })?;
                for gib in gibs {
                    *self.descs.gib_mut(gib) = GibRecord::TAKEN;
                }
            }
            // On to the next run.
            while i < self.ram_len && self.ram[i].run_start == r.run_start {
                i += 1;
            }
        }
        Ok(())
    }

    /// Frees the memory allocatable now, less the exclusions, upwards:
    /// region by region, each less the exclusions in address order.
    fn free_initial(&mut self, exclusions: &[Exclusion]) -> Result<(), SetupError> {
        for i in 0..self.ram_len {
            let r = self.ram[i];
            if r.kind.policy().allocatable != Allocatable::Now {
                continue;
            }
            // Each step jumps over the lowest exclusion still ahead.
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
                for (pfn, order) in blocks(at, free_end) {
                    // A free GiB has its record, not a descriptor.
                    if order < MAX_ORDER {
                        self.back(pfn, pfn + 1)?;
                    }
                    self.insert(pfn, order, Merge::Below);
                }
                self.stats.free_frames += free_end.saturating_sub(at);
                at = resume;
            }
        }
        Ok(())
    }

    /// Frees what the store's reserve does not need, then tops it up.
    fn settle(&mut self) {
        let held = DescState::Reserved(Reason::Vmemmap);
        while let Some(surplus) = self.descs.surplus() {
            let mut run: Option<u64> = None;
            for pfn in surplus.clone() {
                // Anything but a frame of the reserve stays where it is.
                let ours = self.ram_range(pfn).is_some() && self.descs.desc(pfn).state() == held;
                if ours {
                    self.descs.desc_mut(pfn).set_state(DescState::Tail);
                    run.get_or_insert(pfn);
                } else if let Some(start) = run.take() {
                    self.release_range(Reason::Vmemmap, start, pfn);
                }
            }
            if let Some(start) = run {
                self.release_range(Reason::Vmemmap, start, surplus.end);
            }
        }
        self.refill();
    }

    /// Gives the store the frames its reserve lacks, as long as there are
    /// free frames.
    fn refill(&mut self) {
        while self.descs.wants() > 0 {
            match self.take(0, DescState::Reserved(Reason::Vmemmap)) {
                Ok(pfn) => self.descs.give(frame(pfn)),
                Err(_) => break,
            }
        }
    }

    /// Puts the frames `start..end`, which are in no block, on the free
    /// lists.
    fn free_range(&mut self, start: u64, end: u64) {
        for (pfn, order) in blocks(start, end) {
            self.insert(pfn, order, Merge::Both);
        }
        self.stats.free_frames += end.saturating_sub(start);
    }

    /// Makes memory of `kind` free: the step of the boot after which its
    /// policy allows it ([`Allocatable::AfterCr3Switch`] or
    /// [`Allocatable::AfterEfiHandoff`]) is done. Frames an exclusion took
    /// stay reserved. Returns the frames released; a second release of the
    /// same kind releases none. O(frames of that kind), whose descriptors
    /// initialisation wrote.
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

    /// Makes `frame`, held back for `reason` by an exclusion (page tables,
    /// say), free once its user is done with it: the page tables of a
    /// temporary address space.
    pub fn unreserve(&mut self, frame: PhysFrame, reason: Reason) -> Result<(), AllocError> {
        let pfn = pfn(frame);
        if self.ram_range(pfn).is_none() {
            return Err(AllocError::NotRam { frame });
        }
        if self.block_of(pfn).1 != DescState::Reserved(reason) {
            return Err(AllocError::NotReserved { frame, reason });
        }
        self.descs.desc_mut(pfn).set_state(DescState::Tail);
        self.release_range(reason, pfn, pfn + 1);
        Ok(())
    }

    fn release_range(&mut self, reason: Reason, start: u64, end: u64) {
        self.stats.reserved[reason.index()] -= end - start;
        self.stats.reserved_frames -= end - start;
        self.free_range(start, end);
    }

    /// Allocates a naturally aligned block of 2^`order` frames and returns
    /// its first frame. Writes its first descriptor and those of the halves
    /// split off, then tops up the store's reserve.
    pub fn alloc(&mut self, order: u8) -> Result<PhysFrame, AllocError> {
        let pfn = self.take(order, DescState::Allocated { order })?;
        self.refill();
        Ok(frame(pfn))
    }

    /// Takes the smallest free block of `order` or above, splits it down to
    /// `order` and marks the block taken `state` (allocated, or reserved
    /// for the store), with the counts. Backs the descriptors splitting
    /// writes before changing anything.
    fn take(&mut self, order: u8, state: DescState) -> Result<u64, AllocError> {
        if order > MAX_ORDER {
            return Err(AllocError::BadOrder { order });
        }
        let found = (order..=MAX_ORDER)
            .find(|&o| self.heads[usize::from(o)] != NIL)
            .ok_or(AllocError::OutOfMemory { order })?;
        let pfn = self.heads[usize::from(found)];
        // The first frame of each half split off, and the block's own if it
        // is a free GiB (a record, no descriptor yet); a smaller free block
        // links through its first descriptor, backed since it was pushed.
        let gib_head = (found == MAX_ORDER).then_some(pfn);
        for first in gib_head
            .into_iter()
            .chain((order..found).map(|o| pfn + (1 << o)))
        {
            self.descs
                .back(first..first + 1)
                .map_err(|_| AllocError::OutOfMemory { order })?;
        }
        self.unlink(pfn, found);
        // Split: the upper halves go back, largest first.
        for o in (order..found).rev() {
            self.push(pfn + (1 << o), o);
        }
        *self.descs.desc_mut(pfn) = FrameDesc::new(state);
        self.stats.free_frames -= 1 << order;
        match state {
            DescState::Reserved(reason) => {
                self.stats.reserved[reason.index()] += 1 << order;
                self.stats.reserved_frames += 1 << order;
            }
            _ => self.stats.allocated_frames += 1 << order,
        }
        Ok(pfn)
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
        match self.block_of(pfn) {
            (head, DescState::Allocated { order: o }) if head == pfn && o == order => {}
            (head, DescState::Allocated { order: allocated }) if head == pfn => {
                return Err(AllocError::WrongOrder {
                    frame,
                    order,
                    allocated,
                });
            }
            (head, DescState::Allocated { order }) => {
                return Err(AllocError::InsideBlock {
                    frame,
                    block: self::frame(head),
                    order,
                });
            }
            (_, DescState::Reserved(reason)) => return Err(AllocError::Reserved { frame, reason }),
            _ => return Err(AllocError::DoubleFree { frame }),
        }
        self.insert(pfn, order, Merge::Both);
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
        match self.block_of(pfn) {
            (block, DescState::Free { order }) => FrameState::Free {
                block: self::frame(block),
                order,
            },
            (block, DescState::Allocated { order }) => FrameState::Allocated {
                block: self::frame(block),
                order,
            },
            (_, DescState::Reserved(reason)) => FrameState::Reserved(reason),
            (_, state) => unreachable!("block_of returns a head, not {state:?}"),
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
            at = if order == MAX_ORDER {
                self.descs.gib(pfn >> MAX_ORDER).next()
            } else {
                self.descs.desc(pfn).next()
            };
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

    /// The order of the largest naturally aligned block around `pfn`, a RAM
    /// frame, that is all RAM (capped at [`MAX_ORDER`]): how far a block
    /// holding it may merge without reaching a hole.
    fn ram_order(&self, pfn: u64) -> u8 {
        let r = self.ram_range(pfn).expect("a RAM frame");
        (1..=MAX_ORDER)
            .rev()
            .find(|&o| {
                let first = pfn & !((1 << o) - 1);
                first >= r.run_start && first + (1 << o) <= r.run_end
            })
            .unwrap_or(0)
    }

    /// The first frame and state of the block holding `pfn`, a RAM frame.
    ///
    /// Reads the aligned frames at or below `pfn` from the largest order
    /// down: each one at or above the order of `pfn`'s block heads a block
    /// (blocks are aligned and tile RAM), so its descriptor was written
    /// (or, for a free GiB, its record says so); the first whose block
    /// reaches `pfn` is the one.
    fn block_of(&self, pfn: u64) -> (u64, DescState) {
        for o in (0..=self.ram_order(pfn)).rev() {
            let head = pfn & !((1 << o) - 1);
            if o == MAX_ORDER && self.descs.gib(head >> MAX_ORDER).is_free() {
                return (head, DescState::Free { order: o });
            }
            let state = self.descs.desc(head).state();
            match state {
                DescState::Free { order } | DescState::Allocated { order }
                    if pfn < head + (1 << order) =>
                {
                    return (head, state);
                }
                DescState::Reserved(_) if head == pfn => return (head, state),
                DescState::Free { .. } | DescState::Allocated { .. } | DescState::Reserved(_) => {}
                DescState::Tail | DescState::Invalid(_) => break,
            }
        }
        panic!(
            "frame descriptors corrupt: no block holds {:#x}",
            pfn * PAGE_SIZE
        )
    }

    /// Puts the block of `order` at `pfn` on its free list after merging it
    /// with its buddies (those `merge` allows) as far as they are free and
    /// the result is all RAM. A buddy's first frame heads a block (every
    /// RAM frame there is in one), so its descriptor was written.
    fn insert(&mut self, mut pfn: u64, mut order: u8, merge: Merge) {
        let ram_order = self.ram_order(pfn);
        while order < ram_order {
            let buddy = pfn ^ (1 << order);
            if merge == Merge::Below && buddy > pfn {
                break;
            }
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
    /// that order's list: in its first descriptor, or for a GiB in its
    /// record.
    fn push(&mut self, pfn: u64, order: u8) {
        let head = self.heads[usize::from(order)];
        if order == MAX_ORDER {
            *self.descs.gib_mut(pfn >> MAX_ORDER) = GibRecord::free(head);
            self.heads[usize::from(order)] = pfn;
            self.stats.free_blocks[usize::from(order)] += 1;
            return;
        }
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

    /// Takes the free block at `pfn` off its list. A GiB is only ever
    /// taken from the front of its list (it has no buddy to merge with).
    fn unlink(&mut self, pfn: u64, order: u8) {
        if order == MAX_ORDER {
            assert_eq!(
                self.heads[usize::from(order)],
                pfn,
                "a GiB taken off the front"
            );
            let record = self.descs.gib_mut(pfn >> MAX_ORDER);
            self.heads[usize::from(order)] = record.next();
            *record = GibRecord::TAKEN;
            self.stats.free_blocks[usize::from(order)] -= 1;
            return;
        }
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

//! Virtually contiguous memory in the vmalloc region: vmalloc/vfree,
//! ioremap with an explicit cache type, and kernel stacks, each area with
//! an unmapped guard page after it (stacks also one below).

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use handoff::PAGE_SIZE;
use handoff::memtype::{MemType, PageKind};
use handoff::paging::{BuildError, Mapping, PageSize};
use handoff::vmalloc::{Area, Vmalloc, VmallocError};
use log::error;
use x86_64::PhysAddr;
use x86_64::structures::paging::{PageTableFlags, PhysFrame};

use super::frames::FRAMES;
use super::mapper::{self, MapperError};
use crate::kspace;

/// The vmalloc region's bookkeeping (set up by `mm::init`).
pub static VMALLOC: spin::Mutex<Option<Vmalloc>> = spin::Mutex::new(None);

/// Why a vmalloc-space request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmError {
    NotReady,
    Space(VmallocError),
    OutOfFrames,
    Map(MapperError),
    NoPatEntry(MemType),
    /// A reservation (the heap's) has no room left to grow into.
    ReservationFull {
        bytes: u64,
    },
    /// ioremap of RAM, which the physmap already maps write-back.
    RamAlias {
        phys: u64,
    },
    /// Unmapping failed at `at`: the range may still be mapped, so its
    /// addresses stay reserved for good.
    StillMapped {
        at: u64,
        cause: MapperError,
    },
}

impl VmError {
    /// Whether the area's addresses may go back to vmalloc after this
    /// error: not when part of it may still be mapped.
    fn may_release(&self) -> bool {
        !matches!(self, VmError::StillMapped { .. })
    }
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmError::NotReady => write!(f, "memory services are not up"),
            VmError::Space(e) => write!(f, "vmalloc space: {e:?}"),
            VmError::OutOfFrames => write!(f, "out of physical memory"),
            VmError::Map(e) => write!(f, "mapping: {e}"),
            VmError::NoPatEntry(t) => write!(f, "the PAT has no entry for {t}"),
            VmError::RamAlias { phys } => write!(
                f,
                "{phys:#x} is RAM, mapped write-back in the physmap: no second mapping \
                 with another memory type"
            ),
            VmError::ReservationFull { bytes } => {
                write!(f, "its {} MiB of virtual space are used up", bytes >> 20)
            }
            VmError::StillMapped { at, cause } => write!(
                f,
                "unmapping at {at:#x} failed ({cause}); the range stays reserved"
            ),
        }
    }
}

fn reserve(size: u64) -> Result<Area, VmError> {
    VMALLOC
        .lock()
        .as_mut()
        .ok_or(VmError::NotReady)?
        .alloc(size, PAGE_SIZE)
        .map_err(VmError::Space)
}

/// Returns an area's addresses to vmalloc (its pages must be unmapped).
pub(crate) fn release(start: u64) {
    if let Some(v) = VMALLOC.lock().as_mut()
        && let Err(e) = v.free(start)
    {
        error!("vmalloc: releasing the area at {start:#x}: {e:?}");
    }
}

fn data_flags() -> PageTableFlags {
    super::data_flags(kspace::get())
}

/// Backs `[start, end)` with fresh frames, read-write, not executable.
/// On failure everything mapped so far is undone.
pub fn populate(start: u64, end: u64) -> Result<(), VmError> {
    let flags = data_flags();
    let mut va = start;
    while va < end {
        // Not one expression: the allocator's lock must be released before
        // mapping, which may take frames for page tables.
        let frame = FRAMES.lock().alloc(0);
        let result = frame.map_err(|_| VmError::OutOfFrames).and_then(|frame| {
            mapper::map(&Mapping {
                virt: va,
                phys: frame.start_address(),
                len: PAGE_SIZE,
                flags,
                max_page: PageSize::Size4K,
            })
            .map_err(|e| {
                free_frame(frame);
                match e {
                    // The last frames went to page tables: the same
                    // exhaustion as above, said the same way.
                    MapperError::Build(BuildError::OutOfFrames) => VmError::OutOfFrames,
                    e => VmError::Map(e),
                }
            })
        });
        if let Err(e) = result {
            if va > start {
                // A failed undo leaves pages mapped: that error wins, so
                // that the caller keeps the range reserved.
                unpopulate(start, va)?;
            }
            return Err(e);
        }
        va += PAGE_SIZE;
    }
    Ok(())
}

/// Gives a frame that is no longer mapped back to the allocator; a refusal
/// (a double free, a foreign frame) is a bookkeeping bug, logged.
fn free_frame(frame: PhysFrame) {
    if let Err(e) = FRAMES.lock().free(frame, 0) {
        error!(
            "vmalloc: freeing frame {:#x}: {e:?}",
            frame.start_address().as_u64()
        );
    }
}

/// Unmaps `[start, end)` and frees the frames behind it, 64 pages at a
/// time: a frame goes back to the allocator only once every CPU has
/// dropped its translation (`mapper::unmap` shoots the range down before
/// returning). Stops at the first chunk that cannot be unmapped.
fn unpopulate(start: u64, end: u64) -> Result<(), VmError> {
    const CHUNK: u64 = 64;
    let mut va = start;
    while va < end {
        let chunk_end = (va + CHUNK * PAGE_SIZE).min(end);
        let mut frames = [None; CHUNK as usize];
        let mut n = 0;
        let result = mapper::unmap(va, chunk_end - va, |leaf| {
            // vmalloc maps 4 KiB pages only: at most CHUNK leaves here.
            if let Some(slot) = frames.get_mut(n) {
                *slot = Some(PhysFrame::containing_address(leaf.phys));
                n += 1;
            }
        });
        // Leaves the unmapper reported are gone from the tables (and the
        // TLBs) even if it failed further on.
        for frame in frames.iter().flatten() {
            free_frame(*frame);
        }
        if let Err(cause) = result {
            error!("vmalloc: unmapping {va:#x}-{chunk_end:#x}: {cause}");
            return Err(VmError::StillMapped { at: va, cause });
        }
        va = chunk_end;
    }
    Ok(())
}

/// `size` bytes (rounded up to pages) of fresh, virtually contiguous
/// memory, followed by an unmapped guard page.
pub fn vmalloc(size: u64) -> Result<Area, VmError> {
    let area = reserve(size)?;
    if let Err(e) = populate(area.start, area.end()) {
        if e.may_release() {
            release(area.start);
        }
        return Err(e);
    }
    Ok(area)
}

/// Frees an area from [`vmalloc`]: unmapped with the TLBs shot down
/// everywhere, then the frames back to the allocator, then the address
/// range back to vmalloc (in that order, so neither is reused while a CPU
/// may still reach it through a stale translation). If unmapping fails,
/// the range is never released.
pub fn vfree(start: u64) -> Result<(), VmError> {
    let area = VMALLOC
        .lock()
        .as_ref()
        .ok_or(VmError::NotReady)?
        .find(start)
        .filter(|a| a.start == start)
        .ok_or(VmError::Space(VmallocError::NotAnArea { start }))?;
    unpopulate(area.start, area.end())?;
    release(area.start);
    Ok(())
}

/// A device's registers mapped by [`ioremap`].
#[derive(Debug, Clone, Copy)]
pub struct IoMapping {
    /// The virtual address of the physical address asked for.
    pub virt: u64,
    /// The vmalloc area holding it.
    pub area: Area,
}

/// Maps `size` bytes of MMIO at `phys` with memory type `ty` (UC, WC, WT
/// through baton's PAT), read-write, never executable, 4 KiB pages.
pub fn ioremap(phys: u64, size: u64, ty: MemType) -> Result<IoMapping, VmError> {
    let kernel = kspace::get();
    let first = phys & !(PAGE_SIZE - 1);
    let end = (phys + size.max(1)).next_multiple_of(PAGE_SIZE);
    // RAM is mapped write-back in the physmap: another mapping with another
    // type would alias it with conflicting memory types.
    if let Some(r) = kernel
        .memory_map()
        .regions()
        .iter()
        .find(|r| r.kind.is_ram() && r.start < end && first < r.end)
    {
        return Err(VmError::RamAlias {
            phys: r.start.max(first),
        });
    }
    let cache = kernel
        .pat()
        .flags_for(ty, PageKind::Size4KiB)
        .ok_or(VmError::NoPatEntry(ty))?;
    let area = reserve(end - first)?;
    let mapping = Mapping {
        virt: area.start,
        phys: PhysAddr::new(first),
        len: end - first,
        flags: data_flags() | cache,
        max_page: PageSize::Size4K,
    };
    if let Err(e) = mapper::map(&mapping) {
        release(area.start);
        return Err(VmError::Map(e));
    }
    Ok(IoMapping {
        virt: area.start + (phys - first),
        area,
    })
}

/// Unmaps an [`ioremap`] mapping (the device's memory is not freed).
pub fn iounmap(io: IoMapping) -> Result<(), VmError> {
    mapper::unmap(io.area.start, io.area.size, |_| {}).map_err(VmError::Map)?;
    release(io.area.start);
    Ok(())
}

/// A kernel stack from vmalloc space: unmapped guard pages below (where
/// an overflow goes) and above it.
#[derive(Debug, Clone, Copy)]
pub struct KernelStack {
    /// The whole area, guard page below included.
    pub area: Area,
}

impl KernelStack {
    /// The initial stack pointer.
    pub fn top(&self) -> u64 {
        self.area.end()
    }

    /// The guard page below the stack.
    pub fn guard(&self) -> (u64, u64) {
        (self.area.start, self.area.start + PAGE_SIZE)
    }
}

/// A stack of `size` bytes with guard pages.
pub fn stack(size: u64) -> Result<KernelStack, VmError> {
    let size = size.next_multiple_of(PAGE_SIZE);
    let area = reserve(size + PAGE_SIZE)?;
    if let Err(e) = populate(area.start + PAGE_SIZE, area.end()) {
        if e.may_release() {
            release(area.start);
        }
        return Err(e);
    }
    let stack = KernelStack { area };
    record_stack(&stack);
    Ok(stack)
}

/// How far above a guard page the RSP of an overflowing context may be:
/// the failed push was of an exception frame (at most 6 words, after
/// aligning RSP to 16).
pub const OVERFLOW_SLACK: u64 = 64;

/// The most stacks whose guard pages are recorded for the double-fault
/// handler: each CPU's stack and three IST stacks, the bootstrap CPU's,
/// the EFI stack, and room for tests.
const MAX_STACKS: usize = 4 * (crate::cpu::MAX_CPUS + 1) + 8;
/// A slot being filled in.
const CLAIMED: u64 = u64::MAX;

/// The guard page and top of every vmalloc stack, readable without a lock
/// (the double-fault handler may run while VMALLOC's lock is held). 0: an
/// empty slot.
static STACK_GUARDS: [AtomicU64; MAX_STACKS] = [const { AtomicU64::new(0) }; MAX_STACKS];
static STACK_TOPS: [AtomicU64; MAX_STACKS] = [const { AtomicU64::new(0) }; MAX_STACKS];

fn record_stack(stack: &KernelStack) {
    let (guard, _) = stack.guard();
    for (slot, top) in STACK_GUARDS.iter().zip(&STACK_TOPS) {
        if slot
            .compare_exchange(0, CLAIMED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            top.store(stack.top(), Ordering::SeqCst);
            slot.store(guard, Ordering::SeqCst);
            return;
        }
    }
    log::warn!(
        "vmalloc: more than {MAX_STACKS} stacks: an overflow of the one at {:#x} will not \
         be named",
        stack.top()
    );
}

/// The vmalloc stack `rsp` overflowed from, as `(guard page start, stack
/// top)`: RSP in its guard page, or within [`OVERFLOW_SLACK`] above it.
/// Lock-free, for the double-fault handler.
pub fn overflowed_stack(rsp: u64) -> Option<(u64, u64)> {
    STACK_GUARDS
        .iter()
        .zip(&STACK_TOPS)
        .map(|(g, t)| (g.load(Ordering::SeqCst), t.load(Ordering::SeqCst)))
        .find(|&(g, _)| {
            g != 0 && g != CLAIMED && (g..g + PAGE_SIZE + OVERFLOW_SLACK).contains(&rsp)
        })
}

/// The vmalloc stack holding `va`, as `(bottom, top)` (its guard page
/// left out). Lock-free, for call traces.
pub fn stack_containing(va: u64) -> Option<(u64, u64)> {
    STACK_GUARDS
        .iter()
        .zip(&STACK_TOPS)
        .map(|(g, t)| (g.load(Ordering::SeqCst), t.load(Ordering::SeqCst)))
        .find(|&(g, t)| g != 0 && g != CLAIMED && (g + PAGE_SIZE..t).contains(&va))
        .map(|(g, t)| (g + PAGE_SIZE, t))
}

/// The vmalloc stack whose guard page holds `va`, as in
/// [`overflowed_stack`] (for CR2, which only supports the diagnosis).
pub fn stack_guard_at(va: u64) -> Option<(u64, u64)> {
    overflowed_stack(va).filter(|&(g, _)| va < g + PAGE_SIZE)
}

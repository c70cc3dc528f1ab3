//! Memory services after the handoff: the vmemmap and the buddy frame
//! allocator in it, vmalloc/ioremap, kernel stacks with guard pages, and
//! the heap. The logic is `handoff::frames` and `handoff::vmalloc`; this
//! module backs it with real memory.

pub mod frames;
pub mod heap;
pub mod mapper;
pub mod tests;
pub mod tlb_tests;
pub mod vmalloc;

use core::fmt;

use handoff::PAGE_SIZE;
use handoff::frames::{Exclusion, Reason, SetupError, vmemmap};
use handoff::layout::RegionKind;
use handoff::memmap::Kind;
use handoff::paging::BuildError;
use handoff::vmalloc::Vmalloc;
use log::info;
use x86_64::PhysAddr;
use x86_64::structures::paging::{PageTableFlags, PhysFrame};

use crate::kspace::KernelSpace;
use frames::FRAMES;

/// Why memory services could not start.
#[derive(Debug)]
pub enum MmError {
    NoEarlyFrames,
    VmemmapTooLarge(u64),
    Build(BuildError),
    Setup(SetupError),
    Heap(vmalloc::VmError),
}

impl fmt::Display for MmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MmError::NoEarlyFrames => write!(f, "no early frames left"),
            MmError::VmemmapTooLarge(pages) => {
                write!(f, "no room for the vmemmap's {pages} frames")
            }
            MmError::Build(e) => write!(f, "mapping the vmemmap: {e}"),
            MmError::Setup(e) => write!(f, "frame allocator: {e:?}"),
            MmError::Heap(e) => write!(f, "heap: {e}"),
        }
    }
}

fn range(start: u64, end: u64) -> x86_64::structures::paging::frame::PhysFrameRange {
    PhysFrame::range(
        PhysFrame::containing_address(PhysAddr::new(start)),
        PhysFrame::containing_address(PhysAddr::new(end)),
    )
}

/// Backs the vmemmap, starts the frame allocator (boot-services memory
/// joins it: SetVirtualAddressMap is done), vmalloc and the heap.
/// Bootloader-reclaimable memory joins later, once the other CPUs have
/// left Limine's code ([`release_bootloader_memory`]).
pub fn init(kernel: &'static KernelSpace) -> Result<(), MmError> {
    let (chunk, pages) = back_vmemmap(kernel)?;
    let ram_bytes = start_frames(kernel, chunk, pages)?;
    start_vmalloc(kernel, ram_bytes)
}

/// Maps the vmemmap's backing (a descriptor per RAM frame) with frames
/// from the early frames. Returns the backing's first frame and size.
fn back_vmemmap(kernel: &KernelSpace) -> Result<(PhysAddr, u64), MmError> {
    let (layout, map) = (kernel.layout(), kernel.memory_map());
    let limit = layout.physmap_size();
    let pages = vmemmap::backing_pages(map, layout, limit);
    let mut early_guard = kernel.early_frames();
    let early = early_guard.as_mut().ok_or(MmError::NoEarlyFrames)?;
    // Reached through the physmap from now on: any usable region will do.
    early.widen(map, limit);
    let chunk = early.take(pages).ok_or(MmError::VmemmapTooLarge(pages))?;
    let mappings = vmemmap::backing_mappings(map, layout, limit, chunk, data_flags(kernel));
    kernel.map(early, mappings).map_err(MmError::Build)?;
    frames::set_vmemmap_base(layout.vmemmap_base());
    Ok((chunk, pages))
}

/// Starts the frame allocator over the map: everything the early frames
/// handed out (page tables, the vmemmap's backing at `chunk`) and the
/// first 64 KiB stay out; boot-services memory joins at once. Returns
/// the bytes of RAM the allocator describes.
fn start_frames(kernel: &KernelSpace, chunk: PhysAddr, pages: u64) -> Result<u64, MmError> {
    let map = kernel.memory_map();
    let chunk_end = chunk.as_u64() + pages * PAGE_SIZE;
    let mut exclusions = [None; 6];
    let mut n = 0;
    let mut exclude = |start: u64, end: u64, reason| {
        if start < end {
            exclusions[n] = Some(Exclusion {
                frames: range(start, end),
                reason,
            });
            n += 1;
        }
    };
    let early_guard = kernel.early_frames();
    let early = early_guard.as_ref().ok_or(MmError::NoEarlyFrames)?;
    for used in early.used() {
        if (used.start..used.end).contains(&chunk.as_u64()) {
            exclude(used.start, chunk.as_u64(), Reason::PageTables);
            exclude(chunk.as_u64(), chunk_end, Reason::Vmemmap);
            exclude(chunk_end, used.end, Reason::PageTables);
        } else {
            exclude(used.start, used.end, Reason::PageTables);
        }
    }
    if map
        .region_at(PhysAddr::new(0))
        .is_some_and(|r| r.kind.is_ram() && r.end >= 0x1_0000)
    {
        exclude(0, 0x1_0000, Reason::LowMemory);
    }
    let exclusions: [Exclusion; 6] = exclusions.map(|e| {
        e.unwrap_or(Exclusion {
            frames: range(0, 0),
            reason: Reason::EarlyAlloc,
        })
    });
    drop(early_guard);
    let mut allocator = FRAMES.lock();
    allocator
        .init(map, kernel.layout().physmap_size(), &exclusions[..n])
        .map_err(MmError::Setup)?;
    let boot_services = allocator
        .release(Kind::BootServices)
        .map_err(MmError::Setup)?;
    let stats = *allocator.stats();
    drop(allocator);
    info!(
        "mm: vmemmap: {} KiB of descriptors for {} MiB of RAM",
        (pages * PAGE_SIZE) >> 10,
        (stats.ram_frames * PAGE_SIZE) >> 20
    );
    info!(
        "mm: frames: {} MiB free ({} MiB of boot-services memory released after \
         SetVirtualAddressMap), {} MiB allocated, {} MiB reserved",
        (stats.free_frames * PAGE_SIZE) >> 20,
        (boot_services * PAGE_SIZE) >> 20,
        (stats.allocated_frames * PAGE_SIZE) >> 20,
        (stats.reserved_frames * PAGE_SIZE) >> 20
    );
    Ok(stats.ram_frames * PAGE_SIZE)
}

/// vmalloc and the heap (sized for `ram_bytes` of RAM); both regions
/// now change at run time.
fn start_vmalloc(kernel: &'static KernelSpace, ram_bytes: u64) -> Result<(), MmError> {
    let layout = kernel.layout();
    *vmalloc::VMALLOC.lock() = Some(Vmalloc::for_layout(layout));
    {
        let mut plan = kernel.plan();
        for kind in [RegionKind::Vmalloc, RegionKind::Vmemmap] {
            let r = layout.region(kind);
            plan.allow_dynamic(r.start, r.end);
        }
    }
    heap::init(ram_bytes).map_err(MmError::Heap)?;
    let (mapped, _) = heap::usage();
    info!(
        "mm: vmalloc: heap of up to {} MiB there, {} KiB mapped",
        heap::reserved() >> 20,
        mapped >> 10
    );
    Ok(())
}

/// The leaf flags of kernel data: read-write, not executable, global
/// (where the CPU has those bits).
pub fn data_flags(kernel: &KernelSpace) -> PageTableFlags {
    let mut flags = PageTableFlags::WRITABLE;
    if kernel.cpu().nx {
        flags |= PageTableFlags::NO_EXECUTE;
    }
    if kernel.cpu().global {
        flags |= PageTableFlags::GLOBAL;
    }
    flags
}

/// Moves the bootstrap processor's #DF, NMI and #MC stacks from `.bss` to
/// vmalloc stacks with unmapped guard pages (as the other CPUs have), so
/// that an overflow of one faults instead of corrupting `.bss`.
pub fn guard_ist_stacks() -> Result<(), vmalloc::VmError> {
    let size = crate::cpu::gdt::IST_STACK_SIZE as u64;
    let tops = [
        vmalloc::stack(size)?.top(),
        vmalloc::stack(size)?.top(),
        vmalloc::stack(size)?.top(),
    ];
    crate::cpu::gdt::move_bsp_ist(tops);
    Ok(())
}

/// Gives bootloader-reclaimable memory (Limine's page tables, stacks,
/// responses) to the frame allocator: nothing points into it any more
/// once every CPU runs on baton's tables and stacks.
pub fn release_bootloader_memory() {
    match FRAMES.lock().release(Kind::BootloaderReclaimable) {
        Ok(frames) => info!(
            "mm: bootloader-reclaimable memory released: {} KiB",
            (frames * PAGE_SIZE) >> 10
        ),
        Err(e) => log::warn!("mm: releasing bootloader memory: {e:?}"),
    }
}

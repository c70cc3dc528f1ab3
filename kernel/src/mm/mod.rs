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
use handoff::paging::{BuildError, Mapping, PageSize};
use handoff::vmalloc::Vmalloc;
use log::{debug, info};
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
            MmError::Setup(e) => write!(f, "frame allocator: {e}"),
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

/// Sets the vmemmap up, starts the frame allocator (boot-services memory
/// joins it: SetVirtualAddressMap is done), vmalloc and the heap.
/// Bootloader-reclaimable memory joins later, once the other CPUs have
/// left Limine's code ([`release_bootloader_memory`]).
pub fn init(kernel: &'static KernelSpace) -> Result<(), MmError> {
    let exclusions = set_up_vmemmap(kernel)?;
    let ram_bytes = start_frames(kernel, &exclusions)?;
    start_vmalloc(kernel, ram_bytes)
}

/// What the frame allocator holds back beyond what the map says.
struct Exclusions {
    list: [Exclusion; 6],
    len: usize,
}

impl Exclusions {
    fn add(&mut self, start: u64, end: u64, reason: Reason) {
        if start < end {
            self.list[self.len] = Exclusion {
                frames: range(start, end),
                reason,
            };
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[Exclusion] {
        &self.list[..self.len]
    }
}

/// The RAM below 64 KiB, kept back as Linux keeps it: real-mode data
/// lives there and some firmware writes page 0. Whatever its kinds (OVMF
/// makes page 0 a region of boot-services memory of its own), as runs of
/// touching RAM: at most two.
fn low_memory(map: &handoff::memmap::MemoryMap) -> [core::ops::Range<u64>; 2] {
    let mut low = [0..0, 0..0];
    for (slot, run) in low
        .iter_mut()
        .zip(map.ram_runs().take_while(|r| r.start < LOW_MEMORY))
    {
        *slot = run.start..run.end.min(LOW_MEMORY);
    }
    low
}

/// The end of the memory [`low_memory`] keeps back.
const LOW_MEMORY: u64 = 0x1_0000;

/// Sets the vmemmap up from the early frames, for the frame allocator to
/// back on demand: its tables below the root (owned by the allocator from
/// now on), 2 MiB pages where initialisation fills whole stretches, and
/// the reserve that backs the rest. Returns what the allocator must hold
/// back: the early frames' page tables and what the vmemmap took, and the
/// first 64 KiB.
fn set_up_vmemmap(kernel: &KernelSpace) -> Result<Exclusions, MmError> {
    let (layout, map) = (kernel.layout(), kernel.memory_map());
    let limit = layout.physmap_size();
    let mut early_guard = kernel.early_frames();
    let early = early_guard.as_mut().ok_or(MmError::NoEarlyFrames)?;
    let mut tables = [0..0, 0..0];
    for (slot, used) in tables.iter_mut().zip(early.used()) {
        *slot = used;
    }
    // Reached through the physmap from now on: any usable region will do.
    early.widen(map, limit);
    let base = layout.vmemmap_base();
    let mut region = kernel
        .own_region(base, vmemmap::end(layout), early)
        .map_err(MmError::Build)?;
    let flags = data_flags(kernel);
    let mut large = 0;
    for va in vmemmap::large_pages(map, layout, limit) {
        let size = vmemmap::LARGE_PAGE;
        let phys = early
            .take_aligned(size / PAGE_SIZE, size / PAGE_SIZE)
            .ok_or(MmError::VmemmapTooLarge(size / PAGE_SIZE))?;
        let virt = kernel
            .phys_to_virt(phys, size)
            .ok_or(MmError::VmemmapTooLarge(size / PAGE_SIZE))?;
        // SAFETY: just taken from the early frames (usable RAM nothing
        // else uses), mapped read-write by the physmap at `virt`.
        unsafe { core::ptr::write_bytes(virt as *mut u8, 0, size as usize) };
        let page = Mapping {
            virt: va,
            phys,
            len: size,
            flags,
            max_page: PageSize::Size2M,
        };
        region.map(early, &page).map_err(MmError::Build)?;
        large += 1;
    }
    let low = low_memory(map);
    let mut others = [0..0, 0..0, 0..0, 0..0];
    for (slot, used) in others.iter_mut().zip(early.used().chain(low.clone())) {
        *slot = used;
    }
    let frames = vmemmap::init_frames(map, limit, &others);
    let reserve = early
        .take(frames)
        .ok_or(MmError::VmemmapTooLarge(frames))?
        .as_u64();
    FRAMES.lock().descriptors_mut().set_up(
        (base, vmemmap::gibs_base(layout)),
        region,
        flags,
        reserve..reserve + frames * PAGE_SIZE,
        large,
    );
    let mut exclusions = Exclusions {
        list: [Exclusion {
            frames: range(0, 0),
            reason: Reason::EarlyAlloc,
        }; 6],
        len: 0,
    };
    // Each region the early frames used: the page tables at its top (what
    // was used before), below them what the vmemmap took.
    for (i, used) in early.used().enumerate() {
        let before = tables[i].clone();
        if before.is_empty() {
            exclusions.add(used.start, used.end, Reason::Vmemmap);
        } else {
            exclusions.add(used.start, before.start, Reason::Vmemmap);
            exclusions.add(before.start, before.end, Reason::PageTables);
        }
    }
    for low in low {
        exclusions.add(low.start, low.end, Reason::LowMemory);
    }
    Ok(exclusions)
}

/// Starts the frame allocator over the map, less `exclusions`; boot-services
/// memory joins at once. Returns the bytes of RAM it describes.
fn start_frames(kernel: &KernelSpace, exclusions: &Exclusions) -> Result<u64, MmError> {
    let map = kernel.memory_map();
    let mut allocator = FRAMES.lock();
    allocator
        .init(map, kernel.layout().physmap_size(), exclusions.as_slice())
        .map_err(MmError::Setup)?;
    let boot_services = allocator
        .release(Kind::BootServices)
        .map_err(MmError::Setup)?;
    let stats = *allocator.stats();
    let backing = allocator.descriptors().backing();
    drop(allocator);
    debug!(
        "mm: vmemmap: {} KiB backed for {} MiB of RAM ({} 4K and {} 2M pages, {} tables; \
         reserve {} frames, {} freed, {} kept)",
        (backing.pages * PAGE_SIZE + backing.large_pages * vmemmap::LARGE_PAGE) >> 10,
        (stats.ram_frames * PAGE_SIZE) >> 20,
        backing.pages,
        backing.large_pages,
        backing.tables,
        backing.first,
        (backing.freed.end - backing.freed.start) / PAGE_SIZE,
        backing.reserve
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
    debug!(
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

/// The release of bootloader-reclaimable memory, as it was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootloaderRelease {
    /// CPUs running baton at that moment, the bootstrap processor
    /// included.
    pub online: usize,
    /// CPUs beyond those baton runs, parked on baton's tables.
    pub parked: usize,
    /// CPUs Limine reported (1 without an MP response).
    pub reported: usize,
    /// The frames released; `None` when the memory was kept.
    pub frames: Option<u64>,
}

static BOOTLOADER_RELEASE: spin::Mutex<Option<BootloaderRelease>> = spin::Mutex::new(None);

/// How the release of bootloader-reclaimable memory went, if it was
/// asked for.
pub fn bootloader_release() -> Option<BootloaderRelease> {
    *BOOTLOADER_RELEASE.lock()
}

/// Gives bootloader-reclaimable memory (Limine's page tables, stacks,
/// responses, the code the other CPUs wait in) to the frame allocator,
/// if every CPU Limine reported has left it: runs on baton's tables and
/// stacks (online) or is parked on them (`parked`). Otherwise keeps it,
/// and says why. What was decided, and on what counts, is recorded for
/// the self-tests.
pub fn release_bootloader_memory(parked: usize) {
    let online = crate::cpu::ipi::online();
    let reported = crate::boot::info().mp.map_or(1, |mp| mp.count);
    let mut record = BootloaderRelease {
        online,
        parked,
        reported,
        frames: None,
    };
    if online + parked < reported {
        log::warn!(
            "mm: bootloader-reclaimable memory kept: {online} of {reported} CPUs run baton \
             ({parked} parked); the others may still run Limine's code there"
        );
    } else {
        match FRAMES.lock().release(Kind::BootloaderReclaimable) {
            Ok(frames) => {
                debug!(
                    "mm: bootloader-reclaimable memory released: {} KiB ({online} of {reported} \
                     CPUs on baton's tables, {parked} parked)",
                    (frames * PAGE_SIZE) >> 10
                );
                record.frames = Some(frames);
            }
            Err(e) => log::warn!("mm: releasing bootloader memory: {e:?}"),
        }
    }
    *BOOTLOADER_RELEASE.lock() = Some(record);
}

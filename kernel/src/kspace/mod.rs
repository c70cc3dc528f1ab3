//! The owner of the kernel's address space.
//!
//! The shim builds baton's page tables, switches to them and hands what it
//! established to `install`: from then on one `KernelSpace` holds the
//! root, the layout in effect, the PAT and MTRRs, the CPU's paging
//! features, the normalised memory map and the plan the tables follow, and
//! it is the only way to the physmap. Memory services, the EFI code, the
//! other CPUs and the fault reports get what they need from it.
//!
//! An address space is an `AddressSpace`: the kernel's is one, the
//! temporary space SetVirtualAddressMap runs in is another (sharing the
//! kernel's upper half), without a second copy of the code.
//!
//! ```text
//!   shim ──switch──▶ install(KernelSpace) ──▶ get(): mm, efi, smp, oops
//!                         │
//!                         ├─ AddressSpace: root, levels, walk, map, unmap
//!                         ├─ physmap: read physical memory (RAM only)
//!                         └─ map + plan + PAT/MTRRs/CPU: verify, ptdump
//! ```

mod direct;
mod space;

use core::ops::Deref;

use handoff::Levels;
use handoff::layout::Layout;
use handoff::memmap::MemoryMap;
use handoff::memtype::{Mtrrs, Pat};
use handoff::paging::{Path, TableCount, Walker};
use handoff::plan::{self, CpuCaps, Inputs, KernelImage, Plan};
use x86_64::PhysAddr;
use x86_64::registers::control::Cr3;

pub use direct::{DirectMap, EarlyFrames};
pub use space::{AddressSpace, OwnedRegion};

/// What the shim established, handed to [`install`].
#[derive(Debug)]
pub struct Established {
    /// The layout of the paging mode in effect.
    pub layout: &'static Layout,
    /// The normalised memory map the tables were planned from.
    pub map: &'static MemoryMap,
    /// The plan the live tables follow.
    pub plan: &'static mut Plan,
    /// The MTRRs read at boot.
    pub mtrrs: Mtrrs,
    /// The PAT now loaded.
    pub pat: Pat,
    /// The CPU's paging features.
    pub cpu: CpuCaps,
    /// The kernel image as the linker laid it out and Limine loaded it.
    pub kernel: KernelImage,
    /// The frames the tables came from; later stages go on with them until
    /// the frame allocator runs.
    pub early_frames: EarlyFrames,
    /// The page-table frames the shim built, per level, and the minimum
    /// for the plan's page sizes.
    pub tables: (TableCount, TableCount),
}

/// The kernel's address space and everything it was planned from.
#[derive(Debug)]
pub struct KernelSpace {
    space: AddressSpace,
    physmap: DirectMap,
    layout: &'static Layout,
    map: &'static MemoryMap,
    plan: spin::Mutex<&'static mut Plan>,
    mtrrs: Mtrrs,
    pat: Pat,
    cpu: CpuCaps,
    kernel: KernelImage,
    early_frames: spin::Mutex<Option<EarlyFrames>>,
    tables: (TableCount, TableCount),
}

static KERNEL: spin::Once<KernelSpace> = spin::Once::new();

/// Makes `root`, live on this CPU and reached through `physmap`, the
/// kernel's address space. Once only.
///
/// # Panics
///
/// If called twice.
pub fn install(
    root: x86_64::structures::paging::PhysFrame,
    physmap: DirectMap,
    established: Established,
) -> &'static KernelSpace {
    assert!(KERNEL.get().is_none(), "the kernel space is installed once");
    let levels = established.layout.levels();
    KERNEL.call_once(|| KernelSpace {
        space: AddressSpace::new(root, levels, &physmap),
        physmap,
        layout: established.layout,
        map: established.map,
        plan: spin::Mutex::new(established.plan),
        mtrrs: established.mtrrs,
        pat: established.pat,
        cpu: established.cpu,
        kernel: established.kernel,
        early_frames: spin::Mutex::new(Some(established.early_frames)),
        tables: established.tables,
    })
}

/// The kernel's address space.
///
/// # Panics
///
/// Before the shim installed it.
pub fn get() -> &'static KernelSpace {
    KERNEL.get().expect("the kernel space is not installed yet")
}

/// The kernel's address space, once installed.
pub fn try_get() -> Option<&'static KernelSpace> {
    KERNEL.get()
}

impl Deref for KernelSpace {
    type Target = AddressSpace;

    fn deref(&self) -> &AddressSpace {
        &self.space
    }
}

impl KernelSpace {
    /// The layout in effect.
    pub fn layout(&self) -> &'static Layout {
        self.layout
    }

    /// The normalised memory map.
    pub fn memory_map(&self) -> &'static MemoryMap {
        self.map
    }

    /// The MTRRs read at boot.
    pub fn mtrrs(&self) -> &Mtrrs {
        &self.mtrrs
    }

    /// The PAT loaded on every CPU.
    pub fn pat(&self) -> &Pat {
        &self.pat
    }

    /// The CPU's paging features.
    pub fn cpu(&self) -> CpuCaps {
        self.cpu
    }

    /// The kernel image.
    pub fn kernel(&self) -> &KernelImage {
        &self.kernel
    }

    /// The plan the tables follow; whoever changes the tables (the EFI
    /// window, memory services) changes it to match.
    pub fn plan(&self) -> spin::MutexGuard<'_, &'static mut Plan> {
        self.plan.lock()
    }

    /// The frames page tables come from until the frame allocator runs
    /// (`None` once it does).
    pub fn early_frames(&self) -> spin::MutexGuard<'_, Option<EarlyFrames>> {
        self.early_frames.lock()
    }

    /// The page-table frames the handoff built, per level, as walked right
    /// after the switch, and the minimum for the plan's page sizes.
    pub fn tables_built(&self) -> (TableCount, TableCount) {
        self.tables
    }

    /// The plan's inputs, for [`plan::verify`] and the EFI window.
    pub fn inputs(&self) -> Inputs<'_> {
        Inputs {
            map: self.map,
            layout: self.layout,
            mtrrs: &self.mtrrs,
            pat: &self.pat,
            cpu: self.cpu,
            kernel: &self.kernel,
            framebuffer: crate::console::fb::wanted(),
        }
    }

    /// Holds the live tables to the plan as it stands now (with whatever
    /// was added to it since the handoff), and the physmap to the memory
    /// map and the MTRRs.
    pub fn verify(&self) -> Result<plan::Verified, plan::VerifyError> {
        plan::verify(&self.plan(), &self.walker(), &self.inputs())
    }

    /// Prints the live tables in Linux's ptdump format, with a marker line
    /// where each region of the layout starts.
    pub fn ptdump(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        self.walker().ptdump(out, &self.layout.ptdump_markers())
    }

    /// The physmap address of `len` bytes of physical memory at `phys`, if
    /// all of it is RAM (nothing else is mapped there).
    pub fn phys_to_virt(&self, phys: PhysAddr, len: u64) -> Option<u64> {
        let end = phys.as_u64().checked_add(len)?;
        if end > self.layout.physmap_size() {
            return None;
        }
        let mut at = phys.as_u64();
        while at < end {
            match self.map.region_at(PhysAddr::new(at)) {
                Some(r) if r.kind.is_ram() => at = r.end,
                _ => return None,
            }
        }
        Some(self.physmap.offset() + phys.as_u64())
    }

    /// Copies `out.len()` bytes of physical memory at `phys` through the
    /// physmap, if all of it is RAM.
    pub fn read_phys(&self, phys: u64, out: &mut [u8]) -> bool {
        let src = PhysAddr::try_new(phys)
            .ok()
            .and_then(|p| self.phys_to_virt(p, out.len() as u64));
        let Some(src) = src else {
            return false;
        };
        // SAFETY: every byte of the range is RAM, which the physmap maps
        // readable at its physmap address; `out` is a distinct buffer.
        unsafe { core::ptr::copy_nonoverlapping(src as *const u8, out.as_mut_ptr(), out.len()) };
        true
    }

    /// Reads a `T` from physical memory at `phys` through the physmap, if
    /// it lies in RAM.
    ///
    /// # Safety
    ///
    /// Every bit pattern must be a valid `T` (firmware tables: integers and
    /// raw pointers), and `T` must need no drop (it is a copy of firmware
    /// memory, not an owner).
    pub unsafe fn read_phys_value<T>(&self, phys: u64) -> Option<T> {
        let mut value = core::mem::MaybeUninit::<T>::uninit();
        // SAFETY: the buffer is the value's own storage, `size_of::<T>()`
        // bytes; it is read back only if fully written.
        let bytes = unsafe {
            core::slice::from_raw_parts_mut(value.as_mut_ptr() as *mut u8, size_of::<T>())
        };
        // SAFETY: fully written by `read_phys` when it returns true, and
        // any bit pattern is a valid `T` by the caller's guarantee.
        self.read_phys(phys, bytes)
            .then(|| unsafe { value.assume_init() })
    }
}

/// Limine's HHDM and the paging mode, for walking the live tables in fault
/// reports before the switch.
static BOOT_WINDOW: spin::Mutex<Option<(DirectMap, Levels)>> = spin::Mutex::new(None);

/// Lets fault reports walk the live tables through Limine's HHDM until the
/// switch.
pub fn set_boot_window(hhdm: &DirectMap, levels: Levels) {
    // SAFETY: fault reports only read through this window, and only until
    // the switch.
    *BOOT_WINDOW.lock() = Some((unsafe { hhdm.duplicate() }, levels));
}

/// Forgets Limine's HHDM: the tables about to be loaded do not map it, so
/// a fault report must not walk through it (until the kernel space is
/// installed, reports walk nothing).
pub fn clear_boot_window() {
    *BOOT_WINDOW.lock() = None;
}

/// The walk of `va` through the tables CR3 holds now (for fault reports):
/// through the physmap once the kernel space is installed, through
/// Limine's HHDM before, or `None` before the shim started.
pub fn walk_live(va: u64) -> Option<Path> {
    let root = Cr3::read().0;
    if let Some(k) = try_get() {
        return Some(Walker::new(&k.physmap, root, k.levels()).path(va));
    }
    // Not `lock`: the fault may have interrupted the holder.
    let boot = BOOT_WINDOW.try_lock()?;
    let (hhdm, levels) = boot.as_ref()?;
    Some(Walker::new(hhdm, root, *levels).path(va))
}

//! The CR3 switch under names of its own, and what a debugger needs to
//! read baton's page tables.
//!
//! `baton_cr3_switch` is the instruction that loads baton's tables and
//! `baton_cr3_switched` the one right after it, so that GDB can stop on
//! either side of the switch by name (`baton-break-switch` in
//! `baton-gdb.py`); a breakpoint on a source line of the switch lands
//! wherever the optimiser put the instruction.
//!
//! GDB can read neither MSRs nor a layout that lives in a Rust constant,
//! so [`baton_debug`] holds, at a fixed symbol and in a fixed format, the
//! root of baton's tables, the layout and memory map they follow and the
//! PAT baton loaded.

use core::arch::naked_asm;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use handoff::Levels;
use handoff::layout::Layout;
use handoff::memmap::MemoryMap;
use x86_64::structures::paging::PhysFrame;

/// What `baton-gdb.py` reads: eight-byte fields in this order (bump
/// `version` when they change).
#[repr(C)]
#[derive(Debug)]
pub struct DebugInfo {
    /// The format of this record (1).
    version: AtomicU64,
    /// Physical address of the root table baton built (0 before); its
    /// tables are live while CR3 holds it.
    root: AtomicU64,
    /// Paging levels of those tables (4 or 5).
    levels: AtomicU64,
    /// The PAT MSR as baton loaded it (0 while Limine's is in effect).
    pat: AtomicU64,
    /// The layout baton's tables follow.
    layout: AtomicPtr<Layout>,
    /// The normalised memory map they were planned from.
    map: AtomicPtr<MemoryMap>,
}

/// The record `baton-gdb.py` reads.
#[unsafe(no_mangle)]
#[used]
pub static baton_debug: DebugInfo = DebugInfo {
    version: AtomicU64::new(1),
    root: AtomicU64::new(0),
    levels: AtomicU64::new(0),
    pat: AtomicU64::new(0),
    layout: AtomicPtr::new(core::ptr::null_mut()),
    map: AtomicPtr::new(core::ptr::null_mut()),
};

/// Loads `root` into CR3, recording first for debuggers what the tables
/// follow.
///
/// # Safety
///
/// As for `Cr3::write`: the tables at `root` must map this code, its
/// stack and everything the kernel uses from here on.
pub unsafe fn load_cr3(root: PhysFrame, levels: Levels, layout: &'static Layout, map: &MemoryMap) {
    let d = &baton_debug;
    d.levels.store(levels.count() as u64, Ordering::SeqCst);
    d.layout
        .store(layout as *const Layout as *mut Layout, Ordering::SeqCst);
    d.map
        .store(map as *const MemoryMap as *mut MemoryMap, Ordering::SeqCst);
    d.root
        .store(root.start_address().as_u64(), Ordering::SeqCst);
    // SAFETY: the caller vouches for the tables at `root`.
    unsafe { baton_cr3_switch(root.start_address().as_u64()) };
}

/// Records the PAT baton loaded, for debuggers.
pub fn record_pat(msr: u64) {
    baton_debug.pat.store(msr, Ordering::SeqCst);
}

/// `mov cr3, rdi`, then `baton_cr3_switched`: one instruction each side of
/// the switch.
///
/// # Safety
///
/// As for [`load_cr3`]; `cr3` is the new CR3 value (PCID 0, no flags).
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn baton_cr3_switch(cr3: u64) {
    naked_asm!(
        "mov cr3, rdi",
        ".global baton_cr3_switched",
        "baton_cr3_switched:",
        "ret",
    )
}

//! Symbolised fault reports: the function and offset of an address
//! (`baton::faults::provoke+0x1a/0x40`) and the call trace of the
//! frame-pointer chain, as Linux prints them.
//!
//! The names come from baton's own ELF file, which Limine hands over in
//! memory. That memory is bootloader-reclaimable under Limine 8 (only the
//! loaded image is executable-and-modules memory) and goes to the frame
//! allocator once the other CPUs have left Limine's code, so `init`
//! indexes the functions, names included, into `.bss` at boot. A lookup
//! then reads only that index: it works in an exception handler with the
//! heap unusable, locks held and any direct map gone.

use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::ops::Range;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use handoff::symbols::{FrameWalk, Symbol, SymbolIndex, WalkEnd};
use log::{debug, warn};

use crate::boot::BootInfo;

/// Whether this build is unoptimised (`make debug`): it has several times
/// the functions, with longer names.
const UNOPTIMISED: bool = matches!(env!("BATON_OPT_LEVEL").as_bytes(), b"0");
/// Most functions indexed (about 800 in an optimised build, 5200
/// unoptimised), and most bytes of their names (36 KiB, 280 KiB).
const MAX_SYMBOLS: usize = if UNOPTIMISED { 8192 } else { 2048 };
const MAX_NAME_BYTES: usize = if UNOPTIMISED { 384 << 10 } else { 96 << 10 };
/// Most frames walked, and most lines a trace prints (runs of one return
/// address, as in a recursion, print as one line).
const MAX_FRAMES: usize = 16 * 1024;
const MAX_LINES: usize = 48;
/// Most changes of stack in one trace (an exception stack to the
/// interrupted one, a switched stack back to the boot stack).
const MAX_SWITCHES: usize = 4;

type Index = SymbolIndex<MAX_SYMBOLS, MAX_NAME_BYTES>;

struct IndexCell(UnsafeCell<Index>);

// SAFETY: the index is written only by `init`, on the bootstrap processor
// while `STATE` is BUILDING; it is read only once `STATE` is READY, after
// which nothing writes it.
unsafe impl Sync for IndexCell {}

static INDEX: IndexCell = IndexCell(UnsafeCell::new(SymbolIndex::new()));
const EMPTY: u8 = 0;
const BUILDING: u8 = 1;
const READY: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(EMPTY);
/// Where the image was loaded (Limine's executable address response).
static LOAD_BASE: AtomicU64 = AtomicU64::new(0);

/// The kernel's ELF file, through Limine's HHDM (before the handoff: the
/// only time it is read), or why there is none.
fn elf_file(boot: &BootInfo) -> Result<&'static [u8], &'static str> {
    let file = boot.kernel_file.ok_or("Limine gave no executable file")?;
    let start = boot.hhdm_offset.checked_add(file.phys);
    let start = start
        .filter(|s| crate::shim::limine_maps(*s, file.phys, file.size))
        .ok_or("Limine's HHDM does not map the executable file")?;
    // SAFETY: Limine's tables, live until the handoff, map the file's
    // bytes there (just checked, page by page); nothing writes the file.
    Ok(unsafe { core::slice::from_raw_parts(start as *const u8, file.size as usize) })
}

/// Indexes the functions of baton's ELF file, which Limine handed over
/// (`kernel_file`), once, before the handoff.
pub fn init(boot: &BootInfo) {
    let file = match elf_file(boot) {
        Ok(file) => file,
        Err(why) => return warn!("symbols: {why}; fault reports show raw addresses"),
    };
    if STATE
        .compare_exchange(EMPTY, BUILDING, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    LOAD_BASE.store(boot.kernel_virt, Ordering::Relaxed);
    // SAFETY: STATE is BUILDING: no reader touches the index, and `init`
    // runs once.
    let index = unsafe { &mut *INDEX.0.get() };
    match index.build(file) {
        Ok(found) => {
            debug!(
                "symbols: {} functions ({} bytes of names) indexed from the kernel's ELF file \
                 ({} KiB, {} symbols)",
                found.symbols,
                found.name_bytes,
                file.len() >> 10,
                found.table_entries
            );
            if found.dropped != 0 {
                warn!(
                    "symbols: {} functions did not fit the index; reports may show raw addresses",
                    found.dropped
                );
            }
            STATE.store(READY, Ordering::Release);
        }
        Err(e) => warn!("symbols: the kernel's ELF file: {e}; fault reports show raw addresses"),
    }
}

/// The symbol of `addr` (a return address is looked up one byte earlier,
/// where its call is).
fn symbol(addr: u64, ret: bool) -> Option<Symbol<'static>> {
    if STATE.load(Ordering::Acquire) != READY {
        return None;
    }
    // SAFETY: STATE is READY: the index is complete and never written again.
    let index: &'static Index = unsafe { &*INDEX.0.get() };
    let at = index.link_address(addr, LOAD_BASE.load(Ordering::Relaxed));
    let mut s = index.lookup(at.wrapping_sub(u64::from(ret)))?;
    s.offset += u64::from(ret);
    Some(s)
}

/// `name+0x1a/0x40`, or the bare address when no function holds it.
struct Named {
    addr: u64,
    ret: bool,
}

impl Named {
    /// An address in a function (an exception's RIP).
    fn at(addr: u64) -> Self {
        Self { addr, ret: false }
    }

    /// A return address: named by its call, one byte before it.
    fn returning(addr: u64) -> Self {
        Self { addr, ret: true }
    }
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match symbol(self.addr, self.ret) {
            Some(s) => write!(f, "{s}"),
            None => write!(f, "{:#x}", self.addr),
        }
    }
}

/// The known stack holding `addr`: the boot stack, the bootstrap
/// processor's IST stacks, or a vmalloc stack (every other CPU's stacks,
/// the EFI stack).
fn stack_of(addr: u64) -> Option<Range<u64>> {
    let (bottom, top) = crate::cpu::BOOT_STACK.bounds();
    if (bottom..top).contains(&addr) {
        return Some(bottom..top);
    }
    for slot in 0..3 {
        let (bottom, top) = crate::cpu::gdt::ist_stack(slot);
        if (bottom..top).contains(&addr) {
            return Some(bottom..top);
        }
    }
    crate::mm::vmalloc::stack_containing(addr).map(|(bottom, top)| bottom..top)
}

/// Prints `  RIP: 0008:function+0x1a/0x40` for an exception's RIP.
pub fn print_rip(out: &mut impl Write, cs: u64, rip: u64) {
    let named = Named::at(rip);
    let _ = writeln!(out, "  RIP: {cs:04x}:{named}");
}

/// Prints `Call Trace:` and the functions of the frame-pointer chain from
/// `rbp`, innermost first, after `first` (an exception's RIP). When RIP
/// names no function (a jump to a bad address), the word at `rsp`, the
/// return address of such a call, is shown as a likely caller (`? `).
pub fn print_trace(out: &mut impl Write, first: Option<u64>, rsp: Option<u64>, rbp: u64) {
    let _ = writeln!(out, "Call Trace:");
    if let Some(rip) = first {
        let _ = writeln!(out, " {}", Named::at(rip));
        let caller = rsp.filter(|_| symbol(rip, false).is_none());
        if let Some(ret) = caller
            .and_then(read)
            .filter(|&ret| symbol(ret, true).is_some())
        {
            let _ = writeln!(out, " ? {}", Named::returning(ret));
        }
    }
    let mut walk = FrameWalk::new(rbp, read, stack_of, MAX_FRAMES, MAX_SWITCHES);
    let (mut lines, mut last, mut repeats) = (0, 0, 0u64);
    for ret in walk.by_ref() {
        if ret == last {
            repeats += 1;
            continue;
        }
        print_repeats(out, repeats);
        if lines == MAX_LINES {
            let _ = writeln!(out, " <trace cut after {MAX_LINES} lines>");
            return;
        }
        let _ = writeln!(out, " {}", Named::returning(ret));
        (lines, last, repeats) = (lines + 1, ret, 0);
    }
    print_repeats(out, repeats);
    match walk.end() {
        WalkEnd::BadFrame(rbp) => {
            let _ = writeln!(
                out,
                " <frame pointer {rbp:#x} is not a frame of a known stack; trace ends>"
            );
        }
        WalkEnd::Limit => {
            let _ = writeln!(out, " <trace cut after {MAX_FRAMES} frames>");
        }
        WalkEnd::Outermost | WalkEnd::Walking => {}
    }
}

fn print_repeats(out: &mut impl Write, repeats: u64) {
    if repeats != 0 {
        let _ = writeln!(out, " ... the line above {repeats} more times");
    }
}

/// Reads a word of a stack, or None where that faults.
fn read(addr: u64) -> Option<u64> {
    crate::cpu::trap::probe_read(addr).ok()
}

/// The call trace of the code that calls this (for the panic handler).
#[inline(never)]
pub fn print_trace_here(out: &mut impl Write) {
    let rbp: u64;
    // SAFETY: reads RBP, this function's frame pointer (frame pointers are
    // forced); no memory access.
    unsafe { core::arch::asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack)) };
    print_trace(out, None, None, rbp);
}

mod tests;
pub use tests::TESTS;

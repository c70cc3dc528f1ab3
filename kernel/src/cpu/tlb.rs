//! TLB maintenance: on this CPU ([`invlpg`], [`flush_all`]) and on every
//! other CPU baton runs ([`shootdown`], answered by [`on_shootdown`]).

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use x86_64::registers::control::{Cr4, Cr4Flags};

use super::apic::{self, Target};
use super::ipi;

/// The vector of TLB shootdown IPIs.
pub const SHOOTDOWN_VECTOR: u8 = 0xf0;

/// Ranges of more pages than this are flushed whole rather than page by
/// page.
const MAX_INVLPG_PAGES: u64 = 64;

/// Invalidates this CPU's TLB entry for `va` (and the paging-structure
/// caches on the way to it), global or not. Takes any canonical address,
/// 5-level ones included.
pub fn invlpg(va: u64) {
    // SAFETY: INVLPG only drops cached translations.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) va, options(nostack, preserves_flags)) };
}

/// Flushes this CPU's whole TLB, global entries included: a CR3 write
/// keeps global entries, so with CR4.PGE on the flush toggles PGE (which
/// stays on); without it, reloading CR3 is enough.
pub fn flush_all() {
    if !Cr4::read().contains(Cr4Flags::PAGE_GLOBAL) {
        x86_64::instructions::tlb::flush_all();
        return;
    }
    // SAFETY: toggling PGE only flushes the TLB; the tables stay the same.
    unsafe {
        Cr4::update(|f| f.remove(Cr4Flags::PAGE_GLOBAL));
        Cr4::update(|f| f.insert(Cr4Flags::PAGE_GLOBAL));
    }
}

/// Invalidates `[virt, virt + len)` on this CPU: page by page, or the
/// whole TLB for large ranges.
pub fn flush_range(virt: u64, len: u64) {
    if len > MAX_INVLPG_PAGES * 4096 {
        return flush_all();
    }
    let mut va = virt;
    while va < virt + len {
        invlpg(va);
        va += 4096;
    }
}

static SHOOT_LOCK: spin::Mutex<()> = spin::Mutex::new(());
static SHOOT_START: AtomicU64 = AtomicU64::new(0);
static SHOOT_LEN: AtomicU64 = AtomicU64::new(0);
static SHOOT_PENDING: AtomicUsize = AtomicUsize::new(0);
static SHOOTDOWNS: AtomicU64 = AtomicU64::new(0);

/// Some CPUs did not answer a shootdown within a second: they may still
/// reach the range through stale translations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unanswered {
    /// How many did not answer.
    pub cpus: usize,
}

/// TLB shootdowns sent so far.
pub fn shootdowns() -> u64 {
    SHOOTDOWNS.load(Ordering::SeqCst)
}

/// Makes every other CPU forget `[virt, virt + len)` and waits until all
/// have. Any CPU may hold the translation (kernel mappings are shared), so
/// all get the IPI. This CPU's own entries are the caller's to drop.
pub fn shootdown(virt: u64, len: u64) -> Result<(), Unanswered> {
    if !ipi::enabled() {
        return Ok(());
    }
    let _guard = SHOOT_LOCK.lock();
    SHOOT_START.store(virt, Ordering::SeqCst);
    SHOOT_LEN.store(len, Ordering::SeqCst);
    SHOOT_PENDING.store(ipi::online() - 1, Ordering::SeqCst);
    apic::send_ipi(Target::AllButSelf, SHOOTDOWN_VECTOR);
    let deadline = crate::time::tsc() + crate::time::tsc_hz();
    while SHOOT_PENDING.load(Ordering::SeqCst) != 0 {
        if crate::time::tsc() > deadline {
            return Err(Unanswered {
                cpus: SHOOT_PENDING.load(Ordering::SeqCst),
            });
        }
        core::hint::spin_loop();
    }
    SHOOTDOWNS.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// The shootdown IPI's handler.
pub(super) fn on_shootdown() {
    flush_range(
        SHOOT_START.load(Ordering::SeqCst),
        SHOOT_LEN.load(Ordering::SeqCst),
    );
    // Saturating: a CPU that came up after the count was taken answers
    // too.
    let _ = SHOOT_PENDING.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| p.checked_sub(1));
    apic::eoi();
}

//! `inject=mtrr-uc` and `inject=mtrr-wt` (test runs only): a free variable
//! MTRR set over 1 MiB of usable RAM that starts half-way into a 2 MiB
//! page, before the handoff reads the MTRRs, so that the plan must cut the
//! physmap's large pages at both of its ends and the checks before and
//! after the switch must hold the live tables to it.
//!
//! Only the bootstrap CPU's MTRRs change (the cases that use it run one
//! CPU); QEMU's TCG keeps them without applying them, so RAM stays usable.

use handoff::memmap::limine::USABLE;
use handoff::memtype::MemType;
use handoff::memtype::mtrr::ia32_mtrr_physmask;
use handoff::memtype::mtrr::{IA32_MTRR_DEF_TYPE, IA32_MTRRCAP, ia32_mtrr_physbase};
use log::warn;
use x86_64::registers::control::{Cr0, Cr0Flags};
use x86_64::registers::model_specific::Msr;

use crate::boot;
use crate::cpu::features::{self, Features};
use crate::cpu::tlb;

const MIB: u64 = 1 << 20;
/// PHYSMASK's valid bit; DEF_TYPE's enable bit.
const VALID: u64 = 1 << 11;

/// Sets a free variable MTRR to `ty` over the test range, if the CPU has
/// one free and the map has such a range; says what it did either way.
pub fn program(cpu: &Features, ty: MemType) {
    if !matches!(ty, MemType::Uc | MemType::Wt) {
        return warn!("inject: no MTRR type for {ty}; nothing done");
    }
    let code = u64::from(ty.encoding());
    if !cpu.mtrr {
        return warn!("inject: no MTRRs on this CPU; nothing done");
    }
    let Some(base) = test_range() else {
        return warn!("inject: no usable RAM holding a whole 2 MiB page; nothing done");
    };
    // SAFETY: CPUID says the CPU has MTRRs: MTRRCAP exists, and the
    // variable pairs up to its VCNT.
    let count = (unsafe { features::rdmsr(IA32_MTRRCAP) } & 0xff) as usize;
    // SAFETY: as above.
    let free = (0..count).find(|&n| unsafe { features::rdmsr(ia32_mtrr_physmask(n)) } & VALID == 0);
    let Some(n) = free else {
        return warn!("inject: every variable MTRR is in use; nothing done");
    };
    let mask = ((1u64 << cpu.max_phys_bits) - 1) & !(MIB - 1);
    // SAFETY: a free pair of this CPU's (checked above), written with the
    // caches and MTRRs off as the SDM's MTRR update sequence asks; the
    // range is usable RAM nothing of baton's or Limine's lies in, and any
    // type is correct for RAM, only slower.
    unsafe { write_pair(n, base | code, mask | VALID) };
    warn!(
        "inject: variable MTRR {n} set to {ty} over {base:#x}-{:#x}",
        base + MIB
    );
}

/// The second MiB of the first 2 MiB page that lies wholly in a usable
/// Limine entry above the first 16 MiB.
fn test_range() -> Option<u64> {
    const LARGE: u64 = 2 * MIB;
    let raw = boot::RAW_MAPS.lock();
    raw.limine()
        .iter()
        .filter(|e| e.ty == USABLE)
        .find_map(|e| {
            let page = e.base.max(16 * MIB).next_multiple_of(LARGE);
            (page + LARGE <= e.base + e.length).then_some(page + MIB)
        })
}

/// Writes variable pair `n` (Intel SDM, "MTRR Considerations in
/// Multi-Processor Systems", for one CPU with interrupts off).
///
/// # Safety
///
/// The pair must exist and be free; the range must be RAM baton may give
/// any memory type.
unsafe fn write_pair(n: usize, base: u64, mask: u64) {
    let cr0 = Cr0::read();
    // SAFETY: caches off (CD on, NW off) while the MTRRs change, then back
    // as they were; WBINVD writes back what they held; the MSRs exist by
    // the caller's contract.
    unsafe {
        Cr0::write((cr0 | Cr0Flags::CACHE_DISABLE) - Cr0Flags::NOT_WRITE_THROUGH);
        core::arch::asm!("wbinvd", options(nostack, preserves_flags));
        tlb::flush_all();
        let def = features::rdmsr(IA32_MTRR_DEF_TYPE);
        Msr::new(IA32_MTRR_DEF_TYPE).write(def & !VALID);
        Msr::new(ia32_mtrr_physbase(n)).write(base);
        Msr::new(ia32_mtrr_physmask(n)).write(mask);
        core::arch::asm!("wbinvd", options(nostack, preserves_flags));
        tlb::flush_all();
        Msr::new(IA32_MTRR_DEF_TYPE).write(def);
        Cr0::write(cr0);
    }
}

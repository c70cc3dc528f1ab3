//! What the CPU offers, from CPUID, and the raw MSR values the handoff
//! needs (MTRRs, PAT). The decisions based on them live in `handoff`.

use core::arch::x86_64::__cpuid;

use x86_64::registers::model_specific::Msr;

/// CPU capabilities baton's page tables depend on.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    /// 1 GiB pages (CPUID 0x80000001 EDX.Page1GB).
    pub gb_pages: bool,
    /// The execute-disable bit (CPUID 0x80000001 EDX.NX).
    pub nx: bool,
    /// Global pages (CPUID 1 EDX.PGE).
    pub pge: bool,
    /// MTRRs (CPUID 1 EDX.MTRR).
    pub mtrr: bool,
    /// The page attribute table (CPUID 1 EDX.PAT).
    pub pat: bool,
    /// Physical-address width (CPUID 0x80000008 EAX bits 7:0); 36 if unknown.
    pub max_phys_bits: u8,
}

/// Reads the CPU's capabilities.
pub fn detect() -> Features {
    let leaf1 = __cpuid(1);
    let max_ext = __cpuid(0x8000_0000).eax;
    let ext1 = (max_ext >= 0x8000_0001).then(|| __cpuid(0x8000_0001));
    let ext8 = (max_ext >= 0x8000_0008).then(|| __cpuid(0x8000_0008));
    let ext_edx = ext1.map_or(0, |r| r.edx);
    Features {
        gb_pages: ext_edx & (1 << 26) != 0,
        nx: ext_edx & (1 << 20) != 0,
        pge: leaf1.edx & (1 << 13) != 0,
        mtrr: leaf1.edx & (1 << 12) != 0,
        pat: leaf1.edx & (1 << 16) != 0,
        max_phys_bits: ext8.map_or(36, |r| (r.eax & 0xff) as u8),
    }
}

/// Reads a model-specific register.
///
/// # Safety
///
/// The MSR must exist on this CPU (reading a missing one raises #GP).
pub unsafe fn rdmsr(msr: u32) -> u64 {
    // SAFETY: the caller guarantees the MSR exists; reads have no side
    // effects on the registers baton reads.
    unsafe { Msr::new(msr).read() }
}

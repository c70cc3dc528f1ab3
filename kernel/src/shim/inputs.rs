//! What the plan is made from besides the memory map, read from the
//! hardware and the linker: the CPU's paging features, the MTRRs, the PAT
//! baton will load, and the kernel image's sections.

use handoff::memtype::Pat;
use handoff::memtype::mtrr::{self, MtrrError, MtrrRegisters, Mtrrs, VariableRangeMsrs};
use handoff::plan::{CpuCaps, KernelImage, KernelSection, Perm};
use x86_64::PhysAddr;
use x86_64::registers::model_specific::{Efer, EferFlags};

use crate::boot::BootInfo;
use crate::cpu::features::{self, Features};

/// The hardware side of the plan's inputs.
#[derive(Debug)]
pub struct Hardware {
    /// What CPUID reports.
    pub features: Features,
    /// The paging features the plan may use.
    pub cpu: CpuCaps,
    /// The MTRRs as the firmware left them.
    pub mtrrs: Mtrrs,
    /// The PAT the new tables run under: baton's, or the power-on one on
    /// a CPU without the PAT.
    pub pat: Pat,
    /// The kernel image.
    pub kernel: KernelImage,
}

impl Hardware {
    /// Reads the CPU, the MTRRs and the image layout.
    pub fn read(boot: &BootInfo) -> Result<Self, MtrrError> {
        let features = features::detect();
        let nxe = Efer::read().contains(EferFlags::NO_EXECUTE_ENABLE);
        Ok(Self {
            features,
            cpu: CpuCaps {
                gb_pages: features.gb_pages,
                nx: features.nx && nxe,
                global: features.pge,
            },
            mtrrs: read_mtrrs(&features)?,
            pat: if features.pat { Pat::BATON } else { Pat::RESET },
            kernel: kernel_image(boot),
        })
    }
}

/// The kernel image as the linker laid it out and Limine loaded it.
fn kernel_image(boot: &BootInfo) -> KernelImage {
    unsafe extern "C" {
        static __text_start: u8;
        static __text_end: u8;
        static __rodata_start: u8;
        static __rodata_end: u8;
        static __data_start: u8;
        static __boot_stack_guard: u8;
        static __boot_stack_bottom: u8;
        static __data_end: u8;
    }
    let addr = |s: &u8| s as *const u8 as u64;
    // SAFETY: only the addresses of the linker's section symbols are taken.
    let (text, rodata, data, bss) = unsafe {
        (
            (addr(&__text_start), addr(&__text_end)),
            (addr(&__rodata_start), addr(&__rodata_end)),
            (addr(&__data_start), addr(&__boot_stack_guard)),
            (addr(&__boot_stack_bottom), addr(&__data_end)),
        )
    };
    let section = |name, (start, end), perm| KernelSection {
        name,
        start,
        end,
        perm,
    };
    KernelImage {
        virt_base: boot.kernel_virt,
        phys_base: PhysAddr::new(boot.kernel_phys),
        sections: [
            section("text", text, Perm::ReadExecute),
            section("rodata", rodata, Perm::ReadOnly),
            section("data", data, Perm::ReadWrite),
            // The guard page between them stays unmapped.
            section("bss", bss, Perm::ReadWrite),
        ],
    }
}

fn read_mtrrs(cpu: &Features) -> Result<Mtrrs, MtrrError> {
    if !cpu.mtrr {
        return Mtrrs::absent(cpu.max_phys_bits);
    }
    // SAFETY: CPUID says the CPU has MTRRs, so MTRRCAP and DEF_TYPE exist;
    // below, the fixed ranges are read only when MTRRCAP.FIX says they
    // exist and the variable pairs only up to MTRRCAP.VCNT.
    let mut regs = unsafe {
        MtrrRegisters::new(
            features::rdmsr(mtrr::IA32_MTRRCAP),
            features::rdmsr(mtrr::IA32_MTRR_DEF_TYPE),
            cpu.max_phys_bits,
        )
    };
    if regs.has_fixed() {
        for (slot, &msr) in regs.fixed.iter_mut().zip(&mtrr::IA32_MTRR_FIX) {
            // SAFETY: see above.
            *slot = unsafe { features::rdmsr(msr) };
        }
    }
    let count = regs.variable_count().min(mtrr::MAX_VARIABLE_RANGES);
    for n in 0..count {
        // SAFETY: see above.
        regs.variable[n] = unsafe {
            VariableRangeMsrs {
                base: features::rdmsr(mtrr::ia32_mtrr_physbase(n)),
                mask: features::rdmsr(mtrr::ia32_mtrr_physmask(n)),
            }
        };
    }
    Mtrrs::new(&regs)
}

//! Each CPU's own state and hardware: stacks, GDT and TSS, the IDT and
//! exception entry, protections and the PAT, the local APIC, TLB
//! maintenance and the IPIs between CPUs. Nothing here knows about page
//! tables beyond flushing them, nor about memory services.

use core::cell::UnsafeCell;

pub mod apic;
pub mod features;
pub mod frame;
pub mod gdt;
pub mod guard;
pub mod ipi;
pub mod tests;
pub mod tlb;
pub mod trap;

/// The most application processors baton starts (any more are parked).
pub const MAX_CPUS: usize = 64;

/// A stack in the kernel image (`.bss`), 16-byte aligned. The interior
/// mutability keeps it out of read-only memory: the CPU writes it.
#[repr(C, align(16))]
pub struct Stack<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: Rust code never reads or writes a stack's content; only the CPU
// does, through RSP, on the one CPU that runs on it.
unsafe impl<const N: usize> Sync for Stack<N> {}

impl<const N: usize> Stack<N> {
    /// A zeroed stack.
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; N]))
    }

    /// The bounds `[bottom, top)` of the stack.
    pub fn bounds(&'static self) -> (u64, u64) {
        let bottom = self.0.get() as u64;
        (bottom, bottom + N as u64)
    }
}

/// Size of the boot stack baton switches to at entry.
pub const BOOT_STACK_SIZE: usize = 256 * 1024;

/// The boot stack. Only the CPU writes it (through RSP). linker.ld puts it
/// right above an unmapped guard page.
#[unsafe(link_section = ".bss.boot_stack")]
pub static BOOT_STACK: Stack<BOOT_STACK_SIZE> = Stack::new();

/// The guard page below the boot stack: `[start, end)`.
pub fn boot_stack_guard() -> (u64, u64) {
    unsafe extern "C" {
        static __boot_stack_guard: u8;
    }
    // SAFETY: only the address of the linker symbol is taken.
    let start = unsafe { &__boot_stack_guard as *const u8 as u64 };
    (start, start + 4096)
}

/// Leaves Limine's GDT and IDT for baton's own, and makes supervisor
/// writes honour read-only pages (CR0.WP).
pub fn init() {
    gdt::init();
    trap::init();
    init_control_registers();
}

/// CR0 and CR4 as every baton CPU runs: WP, SSE for the firmware.
pub fn init_control_registers() {
    use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
    // SAFETY: with WP set, ring-0 writes to read-only pages fault, which is
    // what every read-only mapping in baton means. SSE on (baton itself is
    // built soft-float, but the firmware's runtime services may use SSE,
    // and FXSAVE needs OSFXSR): MP set, EM and TS clear, OSFXSR and
    // OSXMMEXCPT set.
    unsafe {
        Cr0::update(|f| {
            f.insert(Cr0Flags::WRITE_PROTECT | Cr0Flags::MONITOR_COPROCESSOR);
            f.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
        });
        Cr4::update(|f| f.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE));
    };
}

/// Whether each protection is on, or `None` when the CPU lacks it.
#[derive(Debug, Clone, Copy)]
pub struct Protections {
    pub nxe: Option<bool>,
    pub wp: bool,
    pub smep: Option<bool>,
    pub smap: Option<bool>,
    pub umip: Option<bool>,
    pub pge: Option<bool>,
}

impl core::fmt::Display for Protections {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = |s: Option<bool>| match s {
            Some(true) => "on",
            Some(false) => "off",
            None => "absent",
        };
        write!(
            f,
            "NXE {}, WP {}, SMEP {}, SMAP {}, UMIP {}, global pages {}",
            state(self.nxe),
            state(Some(self.wp)),
            state(self.smep),
            state(self.smap),
            state(self.umip),
            state(self.pge)
        )
    }
}

/// Which protections the CPU has (from CPUID).
#[derive(Debug, Clone, Copy)]
struct ProtectionFeatures {
    nx: bool,
    smep: bool,
    smap: bool,
    umip: bool,
    pge: bool,
}

fn protection_features() -> ProtectionFeatures {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    let leaf1 = __cpuid(1);
    let max_ext = __cpuid(0x8000_0000).eax;
    let ext1 = if max_ext >= 0x8000_0001 {
        __cpuid(0x8000_0001).edx
    } else {
        0
    };
    let (leaf7_ebx, leaf7_ecx) = if __cpuid(0).eax >= 7 {
        let r = __cpuid_count(7, 0);
        (r.ebx, r.ecx)
    } else {
        (0, 0)
    };
    ProtectionFeatures {
        nx: ext1 & (1 << 20) != 0,
        smep: leaf7_ebx & (1 << 7) != 0,
        smap: leaf7_ebx & (1 << 20) != 0,
        umip: leaf7_ecx & (1 << 2) != 0,
        pge: leaf1.edx & (1 << 13) != 0,
    }
}

/// Turns on every protection Linux turns on that the CPU has: no-execute
/// (EFER.NXE), supervisor write protection (CR0.WP), SMEP, SMAP, UMIP and
/// global pages (CR4.PGE). baton has no user mappings, so SMEP and SMAP
/// cost nothing and catch any that appear by mistake.
pub fn protect() -> Protections {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    use x86_64::registers::model_specific::{Efer, EferFlags};

    let has = protection_features();
    // SAFETY: each bit is set only when CPUID reports the feature; baton
    // runs only in ring 0 with no user mappings (SMEP/SMAP), executes
    // nothing from no-execute pages (NXE) and never needs SGDT & co. from
    // user mode (UMIP).
    unsafe {
        if has.nx {
            Efer::update(|f| f.insert(EferFlags::NO_EXECUTE_ENABLE));
        }
        Cr4::update(|f| {
            f.set(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION, has.smep);
            f.set(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION, has.smap);
            f.set(Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION, has.umip);
            if has.pge {
                f.insert(Cr4Flags::PAGE_GLOBAL);
            }
        });
    }
    protections()
}

/// Which protections are on now (read from CR0, CR4 and EFER; nothing is
/// changed), `None` for those the CPU lacks.
pub fn protections() -> Protections {
    use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
    use x86_64::registers::model_specific::{Efer, EferFlags};

    let has = protection_features();
    let cr4 = Cr4::read();
    let on = |has: bool, flag: Cr4Flags| has.then(|| cr4.contains(flag));
    Protections {
        nxe: has
            .nx
            .then(|| Efer::read().contains(EferFlags::NO_EXECUTE_ENABLE)),
        wp: Cr0::read().contains(Cr0Flags::WRITE_PROTECT),
        smep: on(has.smep, Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION),
        smap: on(has.smap, Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION),
        umip: on(has.umip, Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION),
        pge: on(has.pge, Cr4Flags::PAGE_GLOBAL),
    }
}

/// Loads `msr` into the PAT, then writes back caches and flushes the TLB,
/// global entries included, as the SDM asks after a PAT change; every CPU
/// loads it this way. (The SDM's full procedure also disables caching
/// around the write; baton loads the PAT before any mapping uses the
/// entries it changes.)
///
/// # Safety
///
/// The CPU must have the PAT, and every mapping in the live tables must
/// have been planned for this PAT.
pub unsafe fn load_pat(msr: u64) {
    // SAFETY: the caller guarantees the PAT exists and matches the tables;
    // WBINVD only writes caches back.
    unsafe {
        x86_64::registers::model_specific::Msr::new(handoff::memtype::pat::IA32_PAT).write(msr);
        core::arch::asm!("wbinvd", options(nostack, preserves_flags));
    }
    tlb::flush_all();
}

/// Stops this CPU for good: interrupts off, halt forever.
pub fn halt() -> ! {
    x86_64::instructions::interrupts::disable();
    loop {
        x86_64::instructions::hlt();
    }
}

/// Runs `f` with RSP at `stack_top`, then returns to the caller's stack.
pub fn on_stack(stack_top: u64, f: &mut dyn FnMut()) {
    extern "C" fn trampoline(f: *mut &mut dyn FnMut()) {
        // SAFETY: `on_stack` passes a pointer to its live `&mut dyn FnMut`.
        unsafe { (*f)() }
    }
    let mut f = f;
    // SAFETY: the caller hands over a stack nothing else uses; the
    // caller's RSP is kept in r12, which the SysV ABI makes callee-saved,
    // and restored before returning. `trampoline` is an ordinary C-ABI
    // function entered with a 16-byte aligned stack.
    unsafe {
        core::arch::asm!(
            "mov r12, rsp",
            "mov rsp, {top}",
            "call {trampoline}",
            "mov rsp, r12",
            top = in(reg) stack_top,
            trampoline = sym trampoline,
            in("rdi") &mut f as *mut &mut dyn FnMut(),
            out("r12") _,
            clobber_abi("C"),
        );
    }
}

/// The current stack pointer.
#[inline(always)]
pub fn rsp() -> u64 {
    let rsp: u64;
    // SAFETY: reads RSP; no memory access, no flags changed.
    unsafe {
        core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags))
    };
    rsp
}

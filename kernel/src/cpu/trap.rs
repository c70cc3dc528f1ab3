//! baton's IDT and the exception entry path.
//!
//! Stable Rust has no `extern "x86-interrupt"`, so the entry stubs are
//! assembly: one 16-byte stub per vector pushes a zero error code where the
//! CPU pushes none, then the vector, and jumps to a common path that saves
//! the general registers and calls [`trap_dispatch`] with the frame.
//! Returning from it resumes the interrupted code (`iretq`), so the handler
//! can also redirect RIP (see [`probe_read`]).

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::VirtAddr;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::InterruptDescriptorTable;

use super::{apic, gdt, guard, ipi, tlb};

pub use super::frame::TrapFrame;

const STUB_SIZE: u64 = 16;

// Stubs for all 256 vectors, 16 bytes apart. Stack alignment: the CPU
// aligns RSP to 16 and pushes 5 words; with the error code, the vector and
// 15 registers the call below happens on a 16-byte aligned stack.
global_asm!(
    r#"
    .section .text.trap_stubs, "ax"
    .balign 16
    .global baton_trap_stubs
baton_trap_stubs:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    pushq $0
    .endif
    pushq $vec
    jmp baton_trap_common
    .set vec, vec + 1
    .endr

    .balign 16
baton_trap_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    cld
    call {dispatch}
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq
    "#,
    dispatch = sym trap_dispatch,
    options(att_syntax),
);

unsafe extern "C" {
    static baton_trap_stubs: [u8; 256 * STUB_SIZE as usize];
}

static IDT: spin::Once<InterruptDescriptorTable> = spin::Once::new();

/// Breakpoints taken (the self-tests check `int3` comes back).
pub static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

/// One CPU's armed probe: the address of the instruction that may fault
/// (0 when none is armed), where to resume, and what happened.
#[repr(C)]
struct Probe {
    fault_rip: AtomicU64,
    resume_rip: AtomicU64,
    faulted: AtomicU64,
    vector: AtomicU64,
    error_code: AtomicU64,
    address: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)] // Used only to fill PROBES.
const PROBE: Probe = Probe {
    fault_rip: AtomicU64::new(0),
    resume_rip: AtomicU64::new(0),
    faulted: AtomicU64::new(0),
    vector: AtomicU64::new(0),
    error_code: AtomicU64::new(0),
    address: AtomicU64::new(0),
};

/// Per CPU, by APIC ID (0 until the APIC is set up, which only the
/// bootstrap processor runs before).
static PROBES: [Probe; 256] = [PROBE; 256];

fn this_probe() -> &'static Probe {
    &PROBES[apic::id() as usize & 0xff]
}

/// The fault a probe ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub vector: u64,
    pub error_code: u64,
    /// CR2 for page faults, else 0.
    pub address: u64,
}

fn probe_outcome(probe: &Probe) -> Option<Fault> {
    (probe.faulted.swap(0, Ordering::SeqCst) != 0).then(|| Fault {
        vector: probe.vector.load(Ordering::SeqCst),
        error_code: probe.error_code.load(Ordering::SeqCst),
        address: probe.address.load(Ordering::SeqCst),
    })
}

fn stub(vector: usize) -> VirtAddr {
    // SAFETY: only the address of the stub table is taken.
    let base = unsafe { baton_trap_stubs.as_ptr() } as u64;
    VirtAddr::new(base + vector as u64 * STUB_SIZE)
}

/// Builds and loads baton's IDT: every vector goes to its stub; double
/// faults, NMIs and machine checks switch to their IST stacks.
pub fn init() {
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        // SAFETY: each address is the stub for exactly that vector, which
        // saves all state, handles the CPU's error-code convention for the
        // vector and ends in iretq; the IST indices exist in baton's TSS.
        unsafe {
            idt.divide_error.set_handler_addr(stub(0));
            idt.debug.set_handler_addr(stub(1));
            idt.non_maskable_interrupt
                .set_handler_addr(stub(2))
                .set_stack_index(gdt::IST_NMI);
            idt.breakpoint.set_handler_addr(stub(3));
            idt.overflow.set_handler_addr(stub(4));
            idt.bound_range_exceeded.set_handler_addr(stub(5));
            idt.invalid_opcode.set_handler_addr(stub(6));
            idt.device_not_available.set_handler_addr(stub(7));
            idt.double_fault
                .set_handler_addr(stub(8))
                .set_stack_index(gdt::IST_DOUBLE_FAULT);
            idt.invalid_tss.set_handler_addr(stub(10));
            idt.segment_not_present.set_handler_addr(stub(11));
            idt.stack_segment_fault.set_handler_addr(stub(12));
            idt.general_protection_fault.set_handler_addr(stub(13));
            idt.page_fault.set_handler_addr(stub(14));
            idt.x87_floating_point.set_handler_addr(stub(16));
            idt.alignment_check.set_handler_addr(stub(17));
            idt.machine_check
                .set_handler_addr(stub(18))
                .set_stack_index(gdt::IST_MACHINE_CHECK);
            idt.simd_floating_point.set_handler_addr(stub(19));
            idt.virtualization.set_handler_addr(stub(20));
            idt.cp_protection_exception.set_handler_addr(stub(21));
            idt.hv_injection_exception.set_handler_addr(stub(28));
            idt.vmm_communication_exception.set_handler_addr(stub(29));
            idt.security_exception.set_handler_addr(stub(30));
            for vector in 32..=255u8 {
                idt[vector].set_handler_addr(stub(vector as usize));
            }
        }
        idt
    });
    idt.load();
}

/// Loads baton's (shared) IDT on this CPU.
pub fn load() {
    idt().load();
}

/// The IDT baton loaded.
pub fn idt() -> &'static InterruptDescriptorTable {
    IDT.get().expect("IDT not initialised")
}

/// Reads the 8 bytes at `addr`, or reports the fault it causes
/// (page fault or general protection) instead of stopping the kernel. Only
/// a fault of the load itself, on this CPU, is recovered.
pub fn probe_read(addr: u64) -> Result<u64, Fault> {
    let probe = this_probe();
    probe.faulted.store(0, Ordering::SeqCst);
    let value: u64;
    // SAFETY: the load at label 3 may fault; the handler then finds this
    // CPU's probe armed for exactly that instruction, records the fault and
    // resumes at label 2. The probe is disarmed after the load either way.
    unsafe {
        asm!(
            "lea {tmp}, [rip + 2f]",
            "mov [{probe} + 8], {tmp}",
            "lea {tmp}, [rip + 3f]",
            "mov [{probe}], {tmp}",
            "xor {value:e}, {value:e}",
            "3:",
            "mov {value}, [{addr}]",
            "2:",
            "mov qword ptr [{probe}], 0",
            addr = in(reg) addr,
            probe = in(reg) probe as *const Probe,
            tmp = out(reg) _,
            value = out(reg) value,
            options(nostack),
        );
    }
    match probe_outcome(probe) {
        Some(fault) => Err(fault),
        None => Ok(value),
    }
}

/// Writes `value` to `addr`, or reports the fault it causes.
pub fn probe_write(addr: u64, value: u64) -> Result<(), Fault> {
    let probe = this_probe();
    probe.faulted.store(0, Ordering::SeqCst);
    // SAFETY: as in `probe_read`: a fault of the store at label 3 resumes
    // at label 2. The caller picks an address whose write is harmless if
    // it succeeds.
    unsafe {
        asm!(
            "lea {tmp}, [rip + 2f]",
            "mov [{probe} + 8], {tmp}",
            "lea {tmp}, [rip + 3f]",
            "mov [{probe}], {tmp}",
            "3:",
            "mov [{addr}], {value}",
            "2:",
            "mov qword ptr [{probe}], 0",
            addr = in(reg) addr,
            value = in(reg) value,
            probe = in(reg) probe as *const Probe,
            tmp = out(reg) _,
            options(nostack),
        );
    }
    match probe_outcome(probe) {
        Some(fault) => Err(fault),
        None => Ok(()),
    }
}

extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    let vector = frame.vector;
    match vector {
        3 => {
            BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
            return;
        }
        v if v == u64::from(tlb::SHOOTDOWN_VECTOR) => return tlb::on_shootdown(),
        v if v == u64::from(ipi::CALL_VECTOR) => return ipi::on_call(),
        2 if ipi::stopping() => ipi::on_stop(),
        v if v == u64::from(apic::SPURIOUS_VECTOR) => return,
        13 | 14 if recover_probe(frame) => return,
        _ if guard::recover(frame) => return,
        _ => {}
    }
    let report = FATAL.load(Ordering::SeqCst);
    if report != 0 {
        // SAFETY: only `set_fatal_handler` stores here, a `FatalHandler`.
        let report: FatalHandler = unsafe { core::mem::transmute(report) };
        report(frame);
    }
    crate::console::emergency_print(format_args!(
        "\nbaton: EXCEPTION vector {vector} at RIP {:#x} before the fault reports are set up\n",
        frame.rip
    ));
    super::halt()
}

/// Resumes a probe that faulted (see [`probe_read`]): true if the faulting
/// instruction was this CPU's armed probe, whose RIP now points past it.
fn recover_probe(frame: &mut TrapFrame) -> bool {
    let probe = this_probe();
    let armed = probe.fault_rip.load(Ordering::SeqCst);
    if armed == 0 || armed != frame.rip {
        return false;
    }
    let address = if frame.vector == 14 {
        Cr2::read_raw()
    } else {
        0
    };
    probe.vector.store(frame.vector, Ordering::SeqCst);
    probe.error_code.store(frame.error_code, Ordering::SeqCst);
    probe.address.store(address, Ordering::SeqCst);
    probe.faulted.store(1, Ordering::SeqCst);
    probe.fault_rip.store(0, Ordering::SeqCst);
    frame.rip = probe.resume_rip.load(Ordering::SeqCst);
    true
}

/// What reports an exception nothing handled, and stops the machine.
pub type FatalHandler = fn(&TrapFrame) -> !;

/// The [`FatalHandler`] (0 until set).
static FATAL: AtomicU64 = AtomicU64::new(0);

/// Sets what reports unhandled exceptions (the kernel's fault report,
/// which knows stacks, page tables and symbols); until then a one-line
/// report and a halt.
pub fn set_fatal_handler(handler: FatalHandler) {
    FATAL.store(handler as usize as u64, Ordering::SeqCst);
}

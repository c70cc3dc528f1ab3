//! The local APIC, enough for inter-processor interrupts: xAPIC through its
//! registers mapped uncached (by the caller, which has the memory
//! services), or x2APIC through MSRs when the firmware left it in that
//! mode.

use core::sync::atomic::{AtomicU64, Ordering};

use super::features;

const IA32_APIC_BASE: u32 = 0x1b;
const X2APIC_ENABLE: u64 = 1 << 10;

const REG_ID: u32 = 0x20;
const REG_VERSION: u32 = 0x30;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;

/// The vector the APIC reports spurious interrupts on.
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// 0 before `init`, 1 in x2APIC mode, else the xAPIC registers' address.
static MODE: AtomicU64 = AtomicU64::new(0);

/// Which CPUs an IPI goes to.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// One CPU, by APIC ID.
    Cpu(u32),
    /// Every CPU but this one.
    AllButSelf,
}

fn apic_base() -> u64 {
    // SAFETY: IA32_APIC_BASE exists on every CPU with a local APIC, which
    // every x86_64 CPU has.
    unsafe { features::rdmsr(IA32_APIC_BASE) }
}

/// The local APIC's mode and physical base, read on the bootstrap
/// processor: `(true, base)` in x2APIC mode (registers are MSRs), else
/// `(false, base)` (registers are MMIO at `base`, which the caller maps
/// uncached and hands to [`start`]).
pub fn detect() -> (bool, u64) {
    let base = apic_base();
    let phys = base & 0x000f_ffff_ffff_f000;
    (base & X2APIC_ENABLE != 0, phys)
}

/// Starts using the local APIC: through its MSRs in x2APIC mode, else
/// through its registers mapped uncached at `mmio` (from [`detect`]'s
/// base). Returns the mode's name.
pub fn start(x2apic: bool, mmio: u64) -> &'static str {
    if x2apic {
        MODE.store(1, Ordering::SeqCst);
        "x2APIC"
    } else {
        MODE.store(mmio, Ordering::SeqCst);
        "xAPIC"
    }
}

/// The registers' mapping, for tests (xAPIC only).
pub fn mmio_address() -> Option<u64> {
    match MODE.load(Ordering::SeqCst) {
        0 | 1 => None,
        virt => Some(virt),
    }
}

fn read(reg: u32) -> u32 {
    match MODE.load(Ordering::SeqCst) {
        0 => 0,
        // SAFETY: x2APIC mode is on, so its MSRs (0x800 + reg / 16) exist.
        1 => unsafe { features::rdmsr(0x800 + reg / 16) as u32 },
        // SAFETY: the xAPIC registers are mapped uncached at `virt`;
        // registers are 32 bits wide, 16-byte aligned.
        virt => unsafe { core::ptr::read_volatile((virt + reg as u64) as *const u32) },
    }
}

fn write(reg: u32, value: u32) {
    match MODE.load(Ordering::SeqCst) {
        0 => {}
        // SAFETY: as in `read`; writing these registers has the
        // architectural effect asked for.
        1 => unsafe {
            x86_64::registers::model_specific::Msr::new(0x800 + reg / 16).write(value as u64)
        },
        // SAFETY: as in `read`.
        virt => unsafe { core::ptr::write_volatile((virt + reg as u64) as *mut u32, value) },
    }
}

/// Enables this CPU's local APIC (software enable, spurious vector).
pub fn enable() {
    write(REG_SVR, 0x100 | SPURIOUS_VECTOR as u32);
}

/// This CPU's APIC ID.
pub fn id() -> u32 {
    match MODE.load(Ordering::SeqCst) {
        1 => read(REG_ID),
        _ => read(REG_ID) >> 24,
    }
}

/// The version register.
pub fn version() -> u32 {
    read(REG_VERSION)
}

/// Signals the end of an interrupt.
pub fn eoi() {
    write(REG_EOI, 0);
}

/// Sends a fixed interrupt with `vector` to `target`.
pub fn send_ipi(target: Target, vector: u8) {
    send(target, vector as u32);
}

/// Sends a non-maskable interrupt to `target`: taken even with interrupts
/// off (the vector field is ignored).
pub fn send_nmi(target: Target) {
    send(target, DELIVERY_NMI);
}

/// Delivery mode NMI in the ICR's low word.
const DELIVERY_NMI: u32 = 0b100 << 8;

/// Writes the ICR: `bits` (vector, delivery mode) to `target`.
fn send(target: Target, bits: u32) {
    let (dest, shorthand) = match target {
        Target::Cpu(id) => (id, 0u32),
        Target::AllButSelf => (0, 0b11 << 18),
    };
    let low = bits | shorthand | (1 << 14); // assert
    match MODE.load(Ordering::SeqCst) {
        0 => {}
        1 => {
            // WRMSR to the x2APIC is not serialising: without the fences
            // the IPI could overtake the stores it announces (Linux's
            // weak_wrmsr_fence).
            // SAFETY: fences have no other effect; x2APIC mode, so the ICR
            // is one 64-bit MSR.
            unsafe {
                core::arch::asm!("mfence", "lfence", options(nostack, preserves_flags));
                x86_64::registers::model_specific::Msr::new(0x830)
                    .write((dest as u64) << 32 | low as u64)
            }
        }
        _ => {
            write(REG_ICR_HIGH, dest << 24);
            write(REG_ICR_LOW, low);
            // Wait until the APIC has sent it (delivery status).
            while read(REG_ICR_LOW) & (1 << 12) != 0 {
                core::hint::spin_loop();
            }
        }
    }
}

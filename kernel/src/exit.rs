//! Ending a run: halting, and QEMU's isa-debug-exit for test verdicts.
//!
//! Under QEMU with `-device isa-debug-exit,iobase=0xf4,iosize=0x04`, a
//! write of `v` to port 0xf4 ends QEMU with exit status `(v << 1) | 1`:
//! `Verdict::Pass` gives 33, `Verdict::Fail` 35. Anything else that ends
//! QEMU (a triple fault with `-no-reboot`, a timeout) is never a pass.

use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::instructions::port::Port;

/// The port of QEMU's isa-debug-exit device.
const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Exit status the test runner reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Verdict {
    /// QEMU exits with 33.
    Pass = 0x10,
    /// QEMU exits with 35.
    Fail = 0x11,
}

static TEST_MODE: AtomicBool = AtomicBool::new(false);

/// Marks this boot as a test run: fatal errors end QEMU with a failure
/// status instead of halting.
pub fn set_test_mode() {
    TEST_MODE.store(true, Ordering::Relaxed);
}

/// Whether this boot is a test run.
pub fn test_mode() -> bool {
    TEST_MODE.load(Ordering::Relaxed)
}

/// Writes `verdict` to isa-debug-exit. Returns only if no such device
/// exists (real hardware, or QEMU without it).
pub fn qemu_exit(verdict: Verdict) {
    // SAFETY: writing to port 0xf4 has no effect without isa-debug-exit;
    // with it, QEMU ends. No device baton uses sits on that port.
    unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(verdict as u32) };
}

/// A clean stop after a fatal error that has been reported: the other
/// CPUs stopped, then a failure verdict in test runs, a halt otherwise.
pub fn fatal() -> ! {
    crate::cpu::ipi::stop_others();
    if test_mode() {
        qemu_exit(Verdict::Fail);
    }
    crate::console::emergency_print(format_args!("baton: halted.\n"));
    crate::cpu::halt()
}

/// Resets the machine through the 8042 keyboard controller's reset line
/// (the classic PC reset when there is no firmware service for it).
pub fn keyboard_controller_reset() -> ! {
    let mut status = Port::<u8>::new(0x64);
    // SAFETY: ports 0x60/0x64 are the 8042; waiting for its input buffer
    // to drain and sending 0xfe pulses the CPU reset line.
    unsafe {
        for _ in 0..100_000 {
            if status.read() & 0x02 == 0 {
                break;
            }
        }
        status.write(0xfe);
    }
    crate::cpu::halt()
}

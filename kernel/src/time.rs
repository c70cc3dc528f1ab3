//! Time since reset from the TSC, calibrated once at boot.
//!
//! The frequency comes from CPUID leaf 0x15 (crystal ratio) when the CPU
//! reports it, else leaf 0x16 (base frequency), else it is measured against
//! the PIT (channel 2, 10 ms), as Linux's `pit_calibrate_tsc` does.

use core::arch::x86_64::{__cpuid, _rdtsc};
use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::port::Port;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);

/// Where the TSC frequency came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// CPUID leaf 0x15.
    CpuidCrystal,
    /// CPUID leaf 0x16.
    CpuidBase,
    /// Measured against PIT channel 2.
    Pit,
    /// Nothing worked: an assumed 1 GHz, timestamps are approximate.
    Assumed,
}

/// The current TSC value.
pub fn tsc() -> u64 {
    // SAFETY: RDTSC has no side effects; every x86_64 CPU has it.
    unsafe { _rdtsc() }
}

/// The TSC frequency in Hz (0 before [`init`]).
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Calibrates the TSC. Returns the frequency and where it came from.
pub fn init() -> (u64, Source) {
    let (hz, source) = if let Some(hz) = from_cpuid_15() {
        (hz, Source::CpuidCrystal)
    } else if let Some(hz) = from_cpuid_16() {
        (hz, Source::CpuidBase)
    } else if let Some(hz) = from_pit() {
        (hz, Source::Pit)
    } else {
        (1_000_000_000, Source::Assumed)
    };
    TSC_HZ.store(hz, Ordering::Relaxed);
    (hz, source)
}

/// Seconds and microseconds since reset (the TSC starts at 0 at reset).
pub fn since_reset() -> (u64, u64) {
    let hz = tsc_hz();
    if hz == 0 {
        return (0, 0);
    }
    let t = tsc() as u128;
    let micros = t * 1_000_000 / hz as u128;
    ((micros / 1_000_000) as u64, (micros % 1_000_000) as u64)
}

/// Converts a TSC delta to microseconds.
pub fn cycles_to_micros(cycles: u64) -> u64 {
    let hz = tsc_hz().max(1);
    (cycles as u128 * 1_000_000 / hz as u128) as u64
}

fn max_leaf() -> u32 {
    __cpuid(0).eax
}

fn from_cpuid_15() -> Option<u64> {
    if max_leaf() < 0x15 {
        return None;
    }
    let r = __cpuid(0x15);
    let (denominator, numerator, crystal) = (r.eax as u64, r.ebx as u64, r.ecx as u64);
    (denominator != 0 && numerator != 0 && crystal != 0).then(|| crystal * numerator / denominator)
}

fn from_cpuid_16() -> Option<u64> {
    if max_leaf() < 0x16 {
        return None;
    }
    let mhz = __cpuid(0x16).eax as u64 & 0xffff;
    (mhz != 0).then_some(mhz * 1_000_000)
}

/// Counts TSC cycles while PIT channel 2 counts down 10 ms.
fn from_pit() -> Option<u64> {
    const PIT_HZ: u64 = 1_193_182;
    const LATCH: u16 = (PIT_HZ / 100) as u16; // 10 ms
    let mut ctl = Port::<u8>::new(0x61);
    let mut mode = Port::<u8>::new(0x43);
    let mut ch2 = Port::<u8>::new(0x42);
    // SAFETY: ports 0x42, 0x43 and 0x61 are the PIT and the PC speaker
    // gate; only channel 2 (not the timer interrupt) is reprogrammed and
    // the speaker output stays off.
    unsafe {
        let gate = ctl.read();
        ctl.write((gate & !0x02) | 0x01);
        mode.write(0xb0); // channel 2, lobyte/hibyte, mode 0, binary
        ch2.write(LATCH as u8);
        ch2.write((LATCH >> 8) as u8);
        let start = tsc();
        // Bounded: without a PIT, bit 5 may never rise.
        for _ in 0..50_000_000u32 {
            if ctl.read() & 0x20 != 0 {
                let cycles = tsc() - start;
                return Some(cycles * 100);
            }
        }
    }
    None
}

/// TSC stamps of the boot's phases: each [`done`](Phases::done) ends one,
/// [`report`](Phases::report) logs every phase's duration and the total.
#[derive(Debug)]
pub struct Phases {
    start: u64,
    last: u64,
    names: [(&'static str, u64); 8],
    len: usize,
}

impl Phases {
    /// Starts the clock: the first phase begins now.
    pub fn start() -> Self {
        let now = tsc();
        Self {
            start: now,
            last: now,
            names: [("", 0); 8],
            len: 0,
        }
    }

    /// Ends the phase `name`; the next one begins.
    pub fn done(&mut self, name: &'static str) {
        let now = tsc();
        if let Some(slot) = self.names.get_mut(self.len) {
            *slot = (name, now - self.last);
            self.len += 1;
        }
        self.last = now;
    }

    /// Logs every phase's duration and the total, as `what: phases: ...`.
    pub fn report(&self, what: &str) {
        use core::fmt::Write;
        let mut line = crate::fixed::FixedStr::<256>::new();
        for (name, cycles) in &self.names[..self.len] {
            let _ = write!(line, "{name} {} us, ", cycles_to_micros(*cycles));
        }
        log::info!(
            "{what}: phases: {line}total {} us",
            cycles_to_micros(self.last - self.start)
        );
    }
}

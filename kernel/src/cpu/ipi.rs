//! The CPUs baton runs and what one asks of the others: which CPUs are
//! online (each with the CR3 it reported), running a function on another
//! CPU ([`call_on`]), and stopping them all ([`stop_others`]). TLB
//! shootdowns are [`super::tlb`]'s.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::MAX_CPUS;
use super::apic::{self, Target};

/// The vector of "run this function" IPIs.
pub const CALL_VECTOR: u8 = 0xf1;

/// What each CPU reported when it came up.
struct Record {
    apic_id: AtomicU32,
    cr3: AtomicU64,
    online: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // Used only to fill RECORDS.
const RECORD: Record = Record {
    apic_id: AtomicU32::new(0),
    cr3: AtomicU64::new(0),
    online: AtomicBool::new(false),
};

/// Index 0 is the bootstrap processor, `i` the `i`-th application
/// processor started.
static RECORDS: [Record; MAX_CPUS + 1] = [RECORD; MAX_CPUS + 1];
static ONLINE: AtomicUsize = AtomicUsize::new(1);
/// Whether IPIs go out: once the other CPUs are up, until a fatal stop.
static IPIS: AtomicBool = AtomicBool::new(false);

/// Records CPU `index` (0 the bootstrap processor) as online, with its
/// APIC ID and the CR3 it runs on. Application processors count towards
/// [`online`].
pub fn report_online(index: usize, apic_id: u32, cr3: u64) {
    let record = &RECORDS[index];
    record.apic_id.store(apic_id, Ordering::SeqCst);
    record.cr3.store(cr3, Ordering::SeqCst);
    record.online.store(true, Ordering::SeqCst);
    if index > 0 {
        ONLINE.fetch_add(1, Ordering::SeqCst);
    }
}

/// CPUs running baton, the bootstrap processor included.
pub fn online() -> usize {
    ONLINE.load(Ordering::SeqCst)
}

/// `(index, APIC ID, CR3)` of every CPU that came up, bootstrap processor
/// first.
pub fn records() -> impl Iterator<Item = (usize, u32, u64)> {
    RECORDS
        .iter()
        .enumerate()
        .filter(|(_, r)| r.online.load(Ordering::SeqCst))
        .map(|(i, r)| {
            (
                i,
                r.apic_id.load(Ordering::SeqCst),
                r.cr3.load(Ordering::SeqCst),
            )
        })
}

/// Lets IPIs go out to the CPUs that came up (when more than one did).
pub fn enable() {
    IPIS.store(online() > 1, Ordering::SeqCst);
}

/// Whether IPIs go out.
pub fn enabled() -> bool {
    IPIS.load(Ordering::SeqCst)
}

static STOPPING: AtomicBool = AtomicBool::new(false);
static STOPPED: AtomicUsize = AtomicUsize::new(0);
/// The APIC ID of the CPU that stops the others (valid once `STOPPING`).
static STOPPER: AtomicU32 = AtomicU32::new(u32::MAX);

/// Stops every other CPU baton runs (halted with interrupts off), so that
/// a fatal report is the last thing the machine does. The stop is an NMI:
/// a CPU busy with interrupts off (in a handler, or spinning) takes it
/// too. CPUs parked at start are halted with interrupts off already and
/// never loaded baton's IDT, so they get nothing. No locks: this runs on
/// the way down; waits at most 100 ms for the others to answer.
pub fn stop_others() {
    let me = apic::id();
    if !IPIS.swap(false, Ordering::SeqCst) {
        // Another CPU is stopping the machine (two fatal errors at once):
        // leave the console to it and wait here for its NMI.
        if STOPPING.load(Ordering::SeqCst) && STOPPER.load(Ordering::SeqCst) != me {
            super::halt();
        }
        return;
    }
    STOPPER.store(me, Ordering::SeqCst);
    STOPPING.store(true, Ordering::SeqCst);
    let mut sent = 0;
    for (_, id, _) in records() {
        if id != me {
            apic::send_nmi(Target::Cpu(id));
            sent += 1;
        }
    }
    let deadline = crate::time::tsc() + crate::time::tsc_hz() / 10;
    while STOPPED.load(Ordering::SeqCst) < sent && crate::time::tsc() < deadline {
        core::hint::spin_loop();
    }
    crate::console::emergency_print(format_args!(
        "smp: {} of {sent} other CPUs stopped (NMI)\n",
        STOPPED.load(Ordering::SeqCst)
    ));
}

/// Whether [`stop_others`] has begun on another CPU: an NMI now means
/// "stop" (never to the CPU doing the stopping).
pub(super) fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst) && STOPPER.load(Ordering::SeqCst) != apic::id()
}

/// The stop NMI's handler: reports in and halts this CPU for good.
pub(super) fn on_stop() -> ! {
    STOPPED.fetch_add(1, Ordering::SeqCst);
    super::halt()
}

/// Keeps every other CPU busy with interrupts off, for good: after this
/// only an NMI reaches them (the fault tests check that [`stop_others`]
/// still stops them). Shootdowns go unanswered from now on. Returns how
/// many CPUs were taken.
pub fn occupy_others() -> usize {
    let me = apic::id();
    let mut taken = 0;
    for (_, id, _) in records() {
        if id != me && call_on(id, spin_forever, 0).is_some() {
            taken += 1;
        }
    }
    taken
}

/// Answers the call at once, then spins in the call's handler, where
/// interrupts are off.
fn spin_forever(_: u64) -> u64 {
    CALL_RESULT.store(0, Ordering::SeqCst);
    CALL_DONE.store(true, Ordering::SeqCst);
    loop {
        core::hint::spin_loop();
    }
}

static CALL_LOCK: spin::Mutex<()> = spin::Mutex::new(());
static CALL_FN: AtomicU64 = AtomicU64::new(0);
static CALL_ARG: AtomicU64 = AtomicU64::new(0);
static CALL_RESULT: AtomicU64 = AtomicU64::new(0);
static CALL_DONE: AtomicBool = AtomicBool::new(false);

/// Runs `f(arg)` on the CPU with APIC ID `apic_id` (in its interrupt
/// handler) and returns the result, or `None` if it did not answer within
/// a second.
pub fn call_on(apic_id: u32, f: fn(u64) -> u64, arg: u64) -> Option<u64> {
    let _guard = CALL_LOCK.lock();
    CALL_FN.store(f as *const () as u64, Ordering::SeqCst);
    CALL_ARG.store(arg, Ordering::SeqCst);
    CALL_DONE.store(false, Ordering::SeqCst);
    apic::send_ipi(Target::Cpu(apic_id), CALL_VECTOR);
    let deadline = crate::time::tsc() + crate::time::tsc_hz();
    while !CALL_DONE.load(Ordering::SeqCst) {
        if crate::time::tsc() > deadline {
            return None;
        }
        core::hint::spin_loop();
    }
    Some(CALL_RESULT.load(Ordering::SeqCst))
}

/// The call IPI's handler.
pub(super) fn on_call() {
    let f = CALL_FN.load(Ordering::SeqCst);
    // SAFETY: `call_on` stored a `fn(u64) -> u64` there before sending the
    // IPI, under its lock.
    let f: fn(u64) -> u64 = unsafe { core::mem::transmute::<usize, fn(u64) -> u64>(f as usize) };
    CALL_RESULT.store(f(CALL_ARG.load(Ordering::SeqCst)), Ordering::SeqCst);
    CALL_DONE.store(true, Ordering::SeqCst);
    apic::eoi();
}

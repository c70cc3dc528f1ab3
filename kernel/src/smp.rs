//! Every CPU on baton's page tables. Limine starts the other CPUs and
//! parks them in its own code (bootloader-reclaimable memory, on its own
//! page tables); baton hands each an entry point and a boot block through
//! the physmap. The entry switches to baton's CR3 first thing, then to a
//! vmalloc stack with guard pages, loads its own GDT/TSS (IST stacks from
//! vmalloc too) and baton's IDT, turns on the same protections and PAT as
//! the bootstrap processor, and reports in. Then it idles with interrupts
//! on, for TLB shootdowns.

use core::arch::naked_asm;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use log::{error, info, warn};
use x86_64::registers::control::Cr3;

use crate::apic::{self, Target};
use crate::boot::{BootInfo, MAX_CPUS};
use crate::mm::vmalloc;
use crate::{cpu, shim, time};

/// The vector of TLB shootdown IPIs.
pub const SHOOTDOWN_VECTOR: u8 = 0xf0;
/// The vector of "run this function" IPIs (self-tests).
pub const CALL_VECTOR: u8 = 0xf1;

const AP_STACK: u64 = 64 * 1024;
const IST_STACK: u64 = 16 * 1024;

/// What an application processor needs to leave Limine: read by its entry
/// stub, so `#[repr(C)]` with CR3 at 0 and the stack top at 8. In the
/// kernel image (`.bss`), the one place mapped both in Limine's tables,
/// which the stub starts on, and in baton's.
#[repr(C)]
struct ApBoot {
    cr3: AtomicU64,
    stack_top: AtomicU64,
    index: AtomicU64,
    ist_tops: [AtomicU64; 3],
}

#[allow(clippy::declare_interior_mutable_const)] // Used only to fill AP_BOOT.
const AP_BOOT_INIT: ApBoot = ApBoot {
    cr3: AtomicU64::new(0),
    stack_top: AtomicU64::new(0),
    index: AtomicU64::new(0),
    ist_tops: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
};

static AP_BOOT: [ApBoot; MAX_CPUS] = [AP_BOOT_INIT; MAX_CPUS];

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

static RECORDS: [Record; MAX_CPUS + 1] = [RECORD; MAX_CPUS + 1];
static ONLINE: AtomicUsize = AtomicUsize::new(1);
static IPIS: AtomicBool = AtomicBool::new(false);

/// CPUs running baton, the bootstrap processor included.
pub fn online() -> usize {
    ONLINE.load(Ordering::SeqCst)
}

/// `(APIC ID, CR3)` of every CPU that came up, bootstrap processor first.
pub fn records() -> impl Iterator<Item = (u32, u64)> {
    RECORDS
        .iter()
        .filter(|r| r.online.load(Ordering::SeqCst))
        .map(|r| {
            (
                r.apic_id.load(Ordering::SeqCst),
                r.cr3.load(Ordering::SeqCst),
            )
        })
}

/// Where CPUs beyond [`MAX_CPUS`] are parked: baton's root table.
static PARK_CR3: AtomicU64 = AtomicU64::new(0);
/// How many of them reached their parking stub.
static PARKED: AtomicU64 = AtomicU64::new(0);

/// Starts every CPU Limine found (the first [`MAX_CPUS`] of them; any
/// more are parked on baton's tables with interrupts off). Returns whether
/// every CPU has left Limine's code, stacks and page tables: only then may
/// bootloader-reclaimable memory be reused.
pub fn start(boot: &BootInfo) -> bool {
    let Some(mp) = boot.mp else {
        info!("smp: no MP response; running on 1 CPU");
        return true;
    };
    match apic::init() {
        Ok((mode, phys)) => info!("smp: local APIC in {mode} mode at {phys:#x}"),
        Err(e) => {
            warn!("smp: cannot reach the local APIC ({e}); running on 1 CPU");
            return mp.count <= 1;
        }
    }
    apic::enable();
    RECORDS[0].apic_id.store(mp.bsp_apic_id, Ordering::SeqCst);
    RECORDS[0]
        .cr3
        .store(Cr3::read().0.start_address().as_u64(), Ordering::SeqCst);
    RECORDS[0].online.store(true, Ordering::SeqCst);

    let s = shim::state();
    let pob = s.layout.page_offset_base();
    PARK_CR3.store(s.root.start_address().as_u64(), Ordering::SeqCst);
    let (mut started, mut parked) = (0usize, 0u64);
    for i in 0..mp.count {
        // The i-th pointer (an HHDM address) to this CPU's limine_smp_info.
        // SAFETY: the array lies in bootloader-reclaimable RAM, not yet
        // released, mapped by the physmap; 8-byte aligned pointers.
        let ptr = unsafe { *((pob + mp.cpus_phys + 8 * i as u64) as *const u64) };
        let info = pob + ptr.wrapping_sub(boot.hhdm_offset);
        // limine_smp_info: processor_id at 0, lapic_id at 4, goto_address
        // at 16, extra_argument at 24. Limine's parked CPU polls
        // goto_address; extra_argument must be there first.
        // SAFETY: `info` is the physmap address of Limine's structure for
        // this CPU, in the same memory; the fields are aligned words Limine
        // reads atomically.
        let (apic_id, extra, goto) = unsafe {
            (
                *((info + 4) as *const u32),
                &*((info + 24) as *const AtomicU64),
                &*((info + 16) as *const AtomicU64),
            )
        };
        if apic_id == mp.bsp_apic_id {
            continue;
        }
        if started == MAX_CPUS {
            goto.store(ap_park as *const () as u64, Ordering::SeqCst);
            parked += 1;
            continue;
        }
        let stacks = (
            vmalloc::stack(AP_STACK),
            [
                vmalloc::stack(IST_STACK),
                vmalloc::stack(IST_STACK),
                vmalloc::stack(IST_STACK),
            ],
        );
        let (Ok(stack), [Ok(df), Ok(nmi), Ok(mc)]) = stacks else {
            error!("smp: no memory for the stacks of the CPU with APIC {apic_id}; parking it");
            goto.store(ap_park as *const () as u64, Ordering::SeqCst);
            parked += 1;
            continue;
        };
        let block = &AP_BOOT[started];
        block
            .cr3
            .store(s.root.start_address().as_u64(), Ordering::SeqCst);
        block.stack_top.store(stack.top(), Ordering::SeqCst);
        block.index.store(started as u64 + 1, Ordering::SeqCst);
        for (slot, top) in block.ist_tops.iter().zip([df.top(), nmi.top(), mc.top()]) {
            slot.store(top, Ordering::SeqCst);
        }
        extra.store(block as *const ApBoot as u64, Ordering::SeqCst);
        goto.store(ap_entry as *const () as u64, Ordering::SeqCst);
        started += 1;
        log::debug!("smp: CPU with APIC {apic_id} sent to baton's entry");
    }
    if parked > 0 {
        warn!(
            "smp: {} CPUs; baton runs {} and parks {parked}",
            mp.count,
            MAX_CPUS + 1
        );
    }

    // Wait for them, at most two seconds.
    let deadline = time::tsc() + 2 * time::tsc_hz();
    while (online() < 1 + started || PARKED.load(Ordering::SeqCst) < parked)
        && time::tsc() < deadline
    {
        core::hint::spin_loop();
    }
    let up = online();
    // Shootdowns go to whoever came up, even if not everyone did.
    IPIS.store(up > 1, Ordering::SeqCst);
    if up == 1 + started && PARKED.load(Ordering::SeqCst) == parked {
        info!(
            "smp: {up} of {} CPUs online, all on baton's page tables (CR3 {:#x})",
            mp.count,
            s.root.start_address().as_u64()
        );
        true
    } else {
        error!(
            "smp: only {up} of {} CPUs came up ({} of {parked} parked)",
            1 + started,
            PARKED.load(Ordering::SeqCst)
        );
        false
    }
}

/// Where CPUs baton does not run go: onto baton's tables (Limine's are
/// about to be reused), interrupts off, halted for good.
#[unsafe(naked)]
unsafe extern "C" fn ap_park() -> ! {
    naked_asm!(
        "cli",
        "mov rax, [rip + {cr3}]",
        "mov cr3, rax",
        "lock inc qword ptr [rip + {parked}]",
        "2:",
        "hlt",
        "jmp 2b",
        cr3 = sym PARK_CR3,
        parked = sym PARKED,
    )
}

/// Where Limine sends an application processor, with RDI pointing at its
/// `limine_smp_info` (an HHDM address, valid in Limine's tables, which the
/// CPU still runs on).
#[unsafe(naked)]
unsafe extern "C" fn ap_entry() -> ! {
    naked_asm!(
        // The boot block, in the kernel image (mapped in both tables).
        "mov rax, [rdi + 24]",
        // baton's tables first: the kernel image is mapped at the same
        // place there, so execution goes on; Limine's stack is gone.
        "mov rcx, [rax]",
        "mov cr3, rcx",
        "mov rsp, [rax + 8]",
        "xor ebp, ebp",
        "mov rdi, rax",
        "call {main}",
        "ud2",
        main = sym ap_main,
    )
}

extern "C" fn ap_main(block: &'static ApBoot) -> ! {
    let index = block.index.load(Ordering::SeqCst);
    cpu::gdt::init_ap(
        index as usize,
        block.ist_tops.each_ref().map(|t| t.load(Ordering::SeqCst)),
    );
    cpu::trap::load();
    cpu::init_control_registers();
    cpu::protect();
    let s = shim::state();
    if cpu::features::detect().pat {
        // SAFETY: the CPU has the PAT; baton's tables were planned for
        // this PAT, as on the bootstrap processor.
        unsafe {
            x86_64::registers::model_specific::Msr::new(handoff::mtrr::IA32_PAT)
                .write(s.pat.to_msr());
        }
    }
    x86_64::instructions::tlb::flush_all();
    apic::enable();
    let record = &RECORDS[index as usize];
    let cr3 = Cr3::read().0.start_address().as_u64();
    record.apic_id.store(apic::id(), Ordering::SeqCst);
    record.cr3.store(cr3, Ordering::SeqCst);
    info!(
        "smp: CPU {index} (APIC {}) online: CR3 {cr3:#x}, stack top {:#x}",
        apic::id(),
        block.stack_top.load(Ordering::SeqCst)
    );
    record.online.store(true, Ordering::SeqCst);
    ONLINE.fetch_add(1, Ordering::SeqCst);
    loop {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}

static SHOOT_LOCK: spin::Mutex<()> = spin::Mutex::new(());
static SHOOT_START: AtomicU64 = AtomicU64::new(0);
static SHOOT_LEN: AtomicU64 = AtomicU64::new(0);
static SHOOT_PENDING: AtomicUsize = AtomicUsize::new(0);
static SHOOTDOWNS: AtomicU64 = AtomicU64::new(0);

/// TLB shootdowns sent so far.
pub fn shootdowns() -> u64 {
    SHOOTDOWNS.load(Ordering::SeqCst)
}

/// Makes every other CPU forget `[virt, virt + len)` and waits until all
/// have. Any CPU may hold the translation (kernel mappings are shared), so
/// all get the IPI.
pub fn shootdown(virt: u64, len: u64) {
    if !IPIS.load(Ordering::SeqCst) {
        return;
    }
    let _guard = SHOOT_LOCK.lock();
    SHOOT_START.store(virt, Ordering::SeqCst);
    SHOOT_LEN.store(len, Ordering::SeqCst);
    SHOOT_PENDING.store(online() - 1, Ordering::SeqCst);
    apic::send_ipi(Target::AllButSelf, SHOOTDOWN_VECTOR);
    let deadline = time::tsc() + time::tsc_hz();
    while SHOOT_PENDING.load(Ordering::SeqCst) != 0 {
        if time::tsc() > deadline {
            // Going on would free memory another CPU may still reach.
            error!(
                "smp: TLB shootdown of {virt:#x}+{len:#x}: {} CPUs did not answer; stopping",
                SHOOT_PENDING.load(Ordering::SeqCst)
            );
            crate::exit::fatal();
        }
        core::hint::spin_loop();
    }
    SHOOTDOWNS.fetch_add(1, Ordering::SeqCst);
}

/// The shootdown IPI's handler.
pub fn on_shootdown() {
    let start = SHOOT_START.load(Ordering::SeqCst);
    let len = SHOOT_LEN.load(Ordering::SeqCst);
    if len > 64 * 4096 {
        x86_64::instructions::tlb::flush_all();
        // Global entries too.
        // SAFETY: toggling PGE only flushes the TLB.
        unsafe {
            use x86_64::registers::control::{Cr4, Cr4Flags};
            if Cr4::read().contains(Cr4Flags::PAGE_GLOBAL) {
                Cr4::update(|f| f.remove(Cr4Flags::PAGE_GLOBAL));
                Cr4::update(|f| f.insert(Cr4Flags::PAGE_GLOBAL));
            }
        }
    } else {
        let mut va = start;
        while va < start + len {
            cpu::invlpg(va);
            va += 4096;
        }
    }
    // Saturating: a CPU that came up after the count was taken answers
    // too.
    let _ = SHOOT_PENDING.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| p.checked_sub(1));
    apic::eoi();
}

static STOPPING: AtomicBool = AtomicBool::new(false);
static STOPPED: AtomicUsize = AtomicUsize::new(0);

/// Stops every other CPU baton runs (halted with interrupts off), so that
/// a fatal report is the last thing the machine does. The stop is an NMI:
/// a CPU busy with interrupts off (in a handler, or spinning) takes it
/// too. CPUs parked at start are halted with interrupts off already and
/// never loaded baton's IDT, so they get nothing. No locks: this runs on
/// the way down; waits at most 100 ms for the others to answer.
pub fn stop_others() {
    if !IPIS.swap(false, Ordering::SeqCst) {
        return;
    }
    STOPPING.store(true, Ordering::SeqCst);
    let me = apic::id();
    let mut sent = 0;
    for record in RECORDS.iter().filter(|r| r.online.load(Ordering::SeqCst)) {
        let id = record.apic_id.load(Ordering::SeqCst);
        if id != me {
            apic::send_nmi(Target::Cpu(id));
            sent += 1;
        }
    }
    let deadline = time::tsc() + time::tsc_hz() / 10;
    while STOPPED.load(Ordering::SeqCst) < sent && time::tsc() < deadline {
        core::hint::spin_loop();
    }
    crate::console::emergency_print(format_args!(
        "smp: {} of {sent} other CPUs stopped (NMI)\n",
        STOPPED.load(Ordering::SeqCst)
    ));
}

/// Whether [`stop_others`] has begun: an NMI now means "stop".
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// The stop NMI's handler: reports in and halts this CPU for good.
pub fn on_stop() -> ! {
    STOPPED.fetch_add(1, Ordering::SeqCst);
    crate::exit::halt()
}

/// Keeps every other CPU busy with interrupts off, for good: after this
/// only an NMI reaches them (the fault tests check that [`stop_others`]
/// still stops them). Shootdowns go unanswered from now on. Returns how
/// many CPUs were taken.
pub fn occupy_others() -> usize {
    let me = apic::id();
    let others: alloc::vec::Vec<u32> = records().map(|(id, _)| id).filter(|&id| id != me).collect();
    others
        .into_iter()
        .filter(|&id| call_on(id, spin_forever, 0).is_some())
        .count()
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
/// handler) and returns the result, or `None` if it did not answer.
pub fn call_on(apic_id: u32, f: fn(u64) -> u64, arg: u64) -> Option<u64> {
    let _guard = CALL_LOCK.lock();
    CALL_FN.store(f as *const () as u64, Ordering::SeqCst);
    CALL_ARG.store(arg, Ordering::SeqCst);
    CALL_DONE.store(false, Ordering::SeqCst);
    apic::send_ipi(Target::Cpu(apic_id), CALL_VECTOR);
    let deadline = time::tsc() + time::tsc_hz();
    while !CALL_DONE.load(Ordering::SeqCst) {
        if time::tsc() > deadline {
            return None;
        }
        core::hint::spin_loop();
    }
    Some(CALL_RESULT.load(Ordering::SeqCst))
}

/// The call IPI's handler.
pub fn on_call() {
    let f = CALL_FN.load(Ordering::SeqCst);
    // SAFETY: `call_on` stored a `fn(u64) -> u64` there before sending the
    // IPI, under its lock.
    let f: fn(u64) -> u64 = unsafe { core::mem::transmute::<usize, fn(u64) -> u64>(f as usize) };
    CALL_RESULT.store(f(CALL_ARG.load(Ordering::SeqCst)), Ordering::SeqCst);
    CALL_DONE.store(true, Ordering::SeqCst);
    apic::eoi();
}

/// Self-tests of the other CPUs.
pub const TESTS: &[crate::selftest::Test] = &[
    crate::selftest::Test {
        name: "smp: every CPU runs on baton's CR3",
        run: same_cr3,
    },
    crate::selftest::Test {
        name: "smp: an unmapped page leaves every CPU's TLB (shootdown)",
        run: shootdown_reaches_every_cpu,
    },
    crate::selftest::Test {
        name: "smp: a large unmap flushes every CPU's whole TLB",
        run: large_shootdown,
    },
];

/// Unmaps more than 64 pages in one go (the full-flush path of the
/// shootdown, global entries included) after the other CPUs cached one of
/// them.
fn large_shootdown() -> crate::selftest::TestResult {
    use crate::mm::{frames::FRAMES, mapper, vmalloc};
    if online() == 1 {
        return Ok(());
    }
    const PAGES: u64 = 80;
    let area = vmalloc::vmalloc(PAGES * 4096).map_err(|e| crate::fail!("vmalloc: {e}"))?;
    let probe = area.start + 70 * 4096;
    cpu::trap::probe_write(probe, 7).map_err(|f| crate::fail!("write: {f:?}"))?;
    let others: alloc::vec::Vec<u32> = records().skip(1).map(|(id, _)| id).collect();
    for &id in &others {
        let v = call_on(id, read_here, probe).ok_or_else(|| crate::fail!("CPU {id} silent"))?;
        crate::check!(v == 7, "CPU {id} read {v:#x}");
    }
    // Collect the frames without allocating inside the unmap (the heap
    // may need the mapper to grow).
    let mut frames = alloc::vec::Vec::with_capacity(PAGES as usize);
    mapper::unmap(area.start, area.size, |leaf| frames.push(leaf.phys))
        .map_err(|e| crate::fail!("unmap: {e}"))?;
    for &id in &others {
        let v = call_on(id, read_here, probe).ok_or_else(|| crate::fail!("CPU {id} silent"))?;
        crate::check!(v == u64::MAX, "CPU {id} still reads {v:#x} after the unmap");
    }
    for phys in frames {
        FRAMES
            .lock()
            .free(
                x86_64::structures::paging::PhysFrame::containing_address(phys),
                0,
            )
            .map_err(|e| crate::fail!("free {:#x}: {e:?}", phys.as_u64()))?;
    }
    vmalloc::release(area.start);
    Ok(())
}

fn same_cr3() -> crate::selftest::TestResult {
    let root = shim::state().root.start_address().as_u64();
    let mut n = 0;
    for (apic_id, cr3) in records() {
        crate::check!(
            cr3 == root,
            "CPU with APIC {apic_id} has CR3 {cr3:#x}, root {root:#x}"
        );
        n += 1;
    }
    crate::check!(n == online(), "{n} records, {} CPUs online", online());
    Ok(())
}

/// Reads the word at `va` on the CPU it runs on, or `u64::MAX` on a fault.
fn read_here(va: u64) -> u64 {
    cpu::trap::probe_read(va).unwrap_or(u64::MAX)
}

fn shootdown_reaches_every_cpu() -> crate::selftest::TestResult {
    if online() == 1 {
        return Ok(());
    }
    let area = vmalloc::vmalloc(4096).map_err(|e| crate::fail!("vmalloc: {e}"))?;
    let magic = 0x5a5a_0ba7_0ba7_5a5a;
    cpu::trap::probe_write(area.start, magic).map_err(|f| crate::fail!("write: {f:?}"))?;
    let others: alloc::vec::Vec<u32> = records().skip(1).map(|(id, _)| id).collect();
    // Every other CPU reads it: its TLB now holds the translation.
    for &id in &others {
        let v =
            call_on(id, read_here, area.start).ok_or_else(|| crate::fail!("CPU {id} silent"))?;
        crate::check!(v == magic, "CPU {id} read {v:#x}");
    }
    let before = shootdowns();
    vmalloc::vfree(area.start).map_err(|e| crate::fail!("vfree: {e}"))?;
    crate::check!(shootdowns() > before, "no shootdown was sent");
    // Without the shootdown their TLBs would still translate it.
    for &id in &others {
        let v =
            call_on(id, read_here, area.start).ok_or_else(|| crate::fail!("CPU {id} silent"))?;
        crate::check!(v == u64::MAX, "CPU {id} still reads {v:#x} after the unmap");
    }
    Ok(())
}

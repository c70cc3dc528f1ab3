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

/// `(index, APIC ID)` of every CPU that came up: index 0 is the
/// bootstrap processor, `i` the application processor with `AP_BOOT[i - 1]`.
fn online_cpus() -> impl Iterator<Item = (usize, u32)> {
    RECORDS
        .iter()
        .enumerate()
        .filter(|(_, r)| r.online.load(Ordering::SeqCst))
        .map(|(i, r)| (i, r.apic_id.load(Ordering::SeqCst)))
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
    let protections = cpu::protect();
    let s = shim::state();
    if cpu::features::detect().pat {
        // SAFETY: the CPU has the PAT; baton's tables were planned for
        // this PAT, as on the bootstrap processor.
        unsafe { cpu::load_pat(s.pat.to_msr()) };
    } else {
        x86_64::instructions::tlb::flush_all();
    }
    apic::enable();
    let record = &RECORDS[index as usize];
    let cr3 = Cr3::read().0.start_address().as_u64();
    record.apic_id.store(apic::id(), Ordering::SeqCst);
    record.cr3.store(cr3, Ordering::SeqCst);
    info!(
        "smp: CPU {index} (APIC {}) online: CR3 {cr3:#x}, stack top {:#x}; protections: \
         {protections}",
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
            crate::exit::halt();
        }
        return;
    }
    STOPPER.store(me, Ordering::SeqCst);
    STOPPING.store(true, Ordering::SeqCst);
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

/// Whether [`stop_others`] has begun on another CPU: an NMI now means
/// "stop" (never to the CPU doing the stopping).
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst) && STOPPER.load(Ordering::SeqCst) != apic::id()
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
        name: "smp: every CPU has the protections, PAT, IDT and its own GDT and TSS loaded",
        run: same_cpu_state,
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

/// What [`same_cpu_state`] reads on each CPU.
#[derive(Debug, Default, Clone, Copy)]
struct CpuState {
    cr0: u64,
    cr4: u64,
    efer: u64,
    pat: u64,
    gdt_base: u64,
    gdt_limit: u16,
    idt_base: u64,
    idt_limit: u16,
    tr: u16,
    cs: u16,
}

impl CpuState {
    /// This CPU's.
    fn here() -> Self {
        use x86_64::instructions::tables::{sgdt, sidt};
        use x86_64::registers::control::{Cr0, Cr4};
        use x86_64::registers::model_specific::Efer;
        use x86_64::registers::segmentation::{CS, Segment};
        let (gdt, idt) = (sgdt(), sidt());
        let tr: u16;
        // SAFETY: STR only reads the task register.
        unsafe { core::arch::asm!("str {0:x}", out(reg) tr, options(nomem, nostack)) };
        CpuState {
            cr0: Cr0::read_raw(),
            cr4: Cr4::read_raw(),
            efer: Efer::read_raw(),
            pat: if cpu::features::detect().pat {
                // SAFETY: the CPU has the PAT MSR.
                unsafe { cpu::features::rdmsr(handoff::memtype::pat::IA32_PAT) }
            } else {
                0
            },
            gdt_base: gdt.base.as_u64(),
            gdt_limit: gdt.limit,
            idt_base: idt.base.as_u64(),
            idt_limit: idt.limit,
            tr,
            cs: CS::get_reg().0,
        }
    }
}

/// Reads this CPU's state into the [`CpuState`] at `ptr` (for `call_on`).
fn cpu_state_into(ptr: u64) -> u64 {
    // SAFETY: `same_cpu_state` passes a heap slot for one `CpuState`
    // (kernel memory, mapped on every CPU), frees it only after this call
    // answered, and leaks it when it did not.
    unsafe { (ptr as *mut CpuState).write(CpuState::here()) };
    1
}

/// The TSS descriptor at `selector` in the GDT at `gdt_base`: its type
/// (9 available, 11 busy) and base.
fn tss_descriptor(gdt_base: u64, selector: u16) -> (u8, u64) {
    let at = gdt_base + u64::from(selector & !7);
    // SAFETY: the GDTs are baton's statics in the kernel image; a TSS
    // descriptor is 16 bytes at its selector's index.
    let (low, high) = unsafe {
        (
            core::ptr::read_volatile(at as *const u64),
            core::ptr::read_volatile((at + 8) as *const u64),
        )
    };
    let base = (low >> 16) & 0xff_ffff | ((low >> 56) & 0xff) << 24 | (high & 0xffff_ffff) << 32;
    (((low >> 40) & 0xf) as u8, base)
}

/// Every CPU, read on itself, against the bootstrap processor: the same
/// protections (CR0.WP, CR4's SMEP/SMAP/UMIP/PGE, EFER.NXE), the PAT baton
/// planned for, the shared IDT; its own GDT (same layout) with its own TSS
/// loaded (TR set, descriptor busy) whose IST entries are its stacks.
fn same_cpu_state() -> crate::selftest::TestResult {
    use x86_64::registers::control::{Cr0Flags, Cr4Flags};
    use x86_64::registers::model_specific::EferFlags;
    let cr0_mask = (Cr0Flags::WRITE_PROTECT
        | Cr0Flags::PAGING
        | Cr0Flags::PROTECTED_MODE_ENABLE
        | Cr0Flags::MONITOR_COPROCESSOR
        | Cr0Flags::EMULATE_COPROCESSOR
        | Cr0Flags::TASK_SWITCHED)
        .bits();
    let cr4_mask = (Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION
        | Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION
        | Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION
        | Cr4Flags::PAGE_GLOBAL
        | Cr4Flags::PHYSICAL_ADDRESS_EXTENSION
        | Cr4Flags::L5_PAGING
        | Cr4Flags::OSFXSR
        | Cr4Flags::OSXMMEXCPT_ENABLE)
        .bits();
    let efer_mask =
        (EferFlags::NO_EXECUTE_ENABLE | EferFlags::LONG_MODE_ENABLE | EferFlags::LONG_MODE_ACTIVE)
            .bits();
    let bsp = CpuState::here();
    let pat = cpu::features::detect()
        .pat
        .then(|| shim::state().pat.to_msr());
    let mut n = 0;
    for (index, apic_id) in online_cpus() {
        let state = if index == 0 {
            bsp
        } else {
            // On the heap: if the CPU answers too late, it writes into a
            // slot that is leaked rather than into a returned stack frame.
            let slot = alloc::boxed::Box::into_raw(alloc::boxed::Box::new(CpuState::default()));
            call_on(apic_id, cpu_state_into, slot as u64)
                .ok_or_else(|| crate::fail!("CPU {index} (APIC {apic_id}) silent"))?;
            // The write happened on another CPU before it answered.
            core::sync::atomic::fence(Ordering::SeqCst);
            // SAFETY: `slot` came from Box::into_raw above and the call,
            // which wrote it, is over.
            *unsafe { alloc::boxed::Box::from_raw(slot) }
        };
        let who = alloc::format!("CPU {index} (APIC {apic_id})");
        crate::check!(
            state.cr0 & cr0_mask == bsp.cr0 & cr0_mask,
            "{who}: CR0 {:#x}, bootstrap processor {:#x}",
            state.cr0,
            bsp.cr0
        );
        crate::check!(
            state.cr0 & Cr0Flags::WRITE_PROTECT.bits() != 0,
            "{who}: CR0.WP off"
        );
        crate::check!(
            state.cr4 & cr4_mask == bsp.cr4 & cr4_mask,
            "{who}: CR4 {:#x}, bootstrap processor {:#x}",
            state.cr4,
            bsp.cr4
        );
        crate::check!(
            state.efer & efer_mask == bsp.efer & efer_mask,
            "{who}: EFER {:#x}, bootstrap processor {:#x}",
            state.efer,
            bsp.efer
        );
        if let Some(pat) = pat {
            crate::check!(
                state.pat == pat,
                "{who}: PAT {:#x}, baton's {pat:#x}",
                state.pat
            );
        }
        crate::check!(
            state.idt_base == bsp.idt_base && state.idt_limit == bsp.idt_limit,
            "{who}: IDTR {:#x}/{:#x}, bootstrap processor {:#x}/{:#x}",
            state.idt_base,
            state.idt_limit,
            bsp.idt_base,
            bsp.idt_limit
        );
        let ((gdt, sel), tss) =
            cpu::gdt::tables_of(index).ok_or_else(|| crate::fail!("{who}: no GDT built"))?;
        let gdt_addr = gdt as *const _ as u64;
        crate::check!(
            state.gdt_base == gdt_addr && state.gdt_limit == bsp.gdt_limit,
            "{who}: GDTR {:#x}/{:#x}, its GDT at {gdt_addr:#x} (limit {:#x})",
            state.gdt_base,
            state.gdt_limit,
            bsp.gdt_limit
        );
        crate::check!(
            state.cs == sel.code.0,
            "{who}: CS {:#x}, expected {:#x}",
            state.cs,
            sel.code.0
        );
        crate::check!(
            state.tr == sel.tss.0,
            "{who}: TR {:#x}, expected {:#x}",
            state.tr,
            sel.tss.0
        );
        let (kind, base) = tss_descriptor(gdt_addr, sel.tss.0);
        let tss_addr = tss as *const _ as u64;
        crate::check!(
            kind == 0xb && base == tss_addr,
            "{who}: TSS descriptor type {kind:#x} base {base:#x}; expected busy (0xb) at \
             {tss_addr:#x}"
        );
        if index > 0 {
            let ist = { tss.interrupt_stack_table };
            for (slot, top) in AP_BOOT[index - 1].ist_tops.iter().enumerate() {
                let (have, want) = (ist[slot].as_u64(), top.load(Ordering::SeqCst));
                crate::check!(
                    have == want,
                    "{who}: IST{} {have:#x}, expected {want:#x}",
                    slot + 1
                );
            }
        }
        n += 1;
    }
    crate::check!(n == online(), "{n} CPUs checked, {} online", online());
    Ok(())
}

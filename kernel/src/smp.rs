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
use crate::boot::{self, BootInfo, MAX_CPUS};
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

/// Starts every CPU Limine found. Returns whether all came up (only then
/// may Limine's memory be reused: a CPU that did not is still running
/// Limine's code there).
pub fn start(boot: &BootInfo) -> bool {
    let Some((bsp_apic, cpus)) = boot.mp else {
        info!("smp: no MP response; running on 1 CPU");
        return true;
    };
    match apic::init() {
        Ok((mode, phys)) => info!("smp: local APIC in {mode} mode at {phys:#x}"),
        Err(e) => {
            warn!("smp: cannot reach the local APIC ({e}); running on 1 CPU");
            return false;
        }
    }
    apic::enable();
    RECORDS[0].apic_id.store(bsp_apic, Ordering::SeqCst);
    RECORDS[0]
        .cr3
        .store(Cr3::read().0.start_address().as_u64(), Ordering::SeqCst);
    RECORDS[0].online.store(true, Ordering::SeqCst);

    let s = shim::state();
    let aps = *boot::APS.lock();
    let (list, n) = (aps.0, aps.1);
    if cpus > MAX_CPUS + 1 {
        warn!("smp: {cpus} CPUs; baton starts at most {}", MAX_CPUS + 1);
    }
    let mut started = 0;
    for (i, ap) in list[..n].iter().enumerate() {
        let stacks = (
            vmalloc::stack(AP_STACK),
            [
                vmalloc::stack(IST_STACK),
                vmalloc::stack(IST_STACK),
                vmalloc::stack(IST_STACK),
            ],
        );
        let (Ok(stack), [Ok(df), Ok(nmi), Ok(mc)]) = stacks else {
            error!("smp: no memory for CPU {}'s stacks", ap.id);
            return false;
        };
        let block = &AP_BOOT[i];
        block
            .cr3
            .store(s.root.start_address().as_u64(), Ordering::SeqCst);
        block.stack_top.store(stack.top(), Ordering::SeqCst);
        block.index.store(i as u64 + 1, Ordering::SeqCst);
        for (slot, top) in block.ist_tops.iter().zip([df.top(), nmi.top(), mc.top()]) {
            slot.store(top, Ordering::SeqCst);
        }
        // limine_smp_info: goto_address at 16, extra_argument at 24. Limine's
        // parked CPU polls goto_address; extra_argument must be there first.
        let info = s.layout.page_offset_base() + ap.info_phys;
        let extra = (info + 24) as *const AtomicU64;
        let goto = (info + 16) as *const AtomicU64;
        // SAFETY: `info` is the physmap address of Limine's structure for
        // this CPU, in bootloader-reclaimable RAM that is not released yet;
        // both fields are 8-byte aligned words Limine's CPU reads
        // atomically.
        unsafe {
            (*extra).store(block as *const ApBoot as u64, Ordering::SeqCst);
            (*goto).store(ap_entry as *const () as u64, Ordering::SeqCst);
        }
        started += 1;
        log::debug!(
            "smp: CPU {} (APIC {}) sent to baton's entry",
            ap.id,
            ap.lapic_id
        );
    }

    // Wait for them, at most two seconds.
    let deadline = time::tsc() + 2 * time::tsc_hz();
    while online() < 1 + started && time::tsc() < deadline {
        core::hint::spin_loop();
    }
    let up = online();
    IPIS.store(up > 1, Ordering::SeqCst);
    if up == 1 + started {
        info!(
            "smp: {up} of {cpus} CPUs online, all on baton's page tables (CR3 {:#x})",
            s.root.start_address().as_u64()
        );
        true
    } else {
        error!("smp: only {up} of {} CPUs came up", 1 + started);
        false
    }
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
            error!(
                "smp: TLB shootdown of {virt:#x}+{len:#x}: {} CPUs did not answer",
                SHOOT_PENDING.load(Ordering::SeqCst)
            );
            break;
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
    SHOOT_PENDING.fetch_sub(1, Ordering::SeqCst);
    apic::eoi();
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
];

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

//! Every CPU on baton's page tables. Limine starts the other CPUs and
//! parks them in its own code (bootloader-reclaimable memory, on its own
//! page tables); baton hands each an entry point and a boot block through
//! the physmap. The entry switches to baton's CR3 first thing, then to a
//! vmalloc stack with guard pages, loads its own GDT/TSS (IST stacks from
//! vmalloc too) and baton's IDT, turns on the same protections and PAT as
//! the bootstrap processor, and reports in. Then it idles with interrupts
//! on, for TLB shootdowns and calls (`cpu::tlb`, `cpu::ipi`).

pub mod tests;

use core::arch::naked_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use handoff::memtype::MemType;
use log::{debug, error, info, warn};
use x86_64::PhysAddr;
use x86_64::registers::control::Cr3;

use crate::boot::{BootInfo, MpInfo};
use crate::cpu::{self, MAX_CPUS, apic, ipi};
use crate::kspace::KernelSpace;
use crate::mm::vmalloc;
use crate::time;

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

/// Where CPUs beyond [`MAX_CPUS`] are parked: baton's root table.
static PARK_CR3: AtomicU64 = AtomicU64::new(0);
/// How many of them reached their parking stub.
static PARKED: AtomicU64 = AtomicU64::new(0);

/// Starts every CPU Limine found (the first [`MAX_CPUS`] of them; any
/// more are parked on baton's tables with interrupts off). Returns whether
/// every CPU has left Limine's code, stacks and page tables: only then may
/// bootloader-reclaimable memory be reused.
pub fn start(boot: &BootInfo, kernel: &KernelSpace) -> bool {
    let Some(mp) = boot.mp else {
        info!("smp: no MP response; running on 1 CPU");
        return true;
    };
    if let Err(e) = start_apic() {
        warn!("smp: cannot reach the local APIC ({e}); running on 1 CPU");
        return mp.count <= 1;
    }
    let root = kernel.root().start_address().as_u64();
    ipi::report_online(0, mp.bsp_apic_id, Cr3::read().0.start_address().as_u64());
    PARK_CR3.store(root, Ordering::SeqCst);
    let (mut started, mut parked) = (0usize, 0u64);
    for i in 0..mp.count {
        let Some(cpu) = limine_cpu(boot, kernel, &mp, i) else {
            error!("smp: Limine's entry for CPU {i} is not in RAM; leaving it in Limine's code");
            continue;
        };
        if cpu.apic_id == mp.bsp_apic_id {
            continue;
        }
        if started == MAX_CPUS || !send(&cpu, started, root) {
            cpu.goto
                .store(ap_park as *const () as u64, Ordering::SeqCst);
            parked += 1;
            continue;
        }
        started += 1;
    }
    if parked > 0 {
        warn!(
            "smp: {} CPUs; baton runs {} and parks {parked}",
            mp.count,
            started + 1
        );
    }
    wait_for(&mp, started, parked, root)
}

/// The CPUs beyond [`MAX_CPUS`] that reached their parking stub on
/// baton's tables.
pub fn parked() -> usize {
    PARKED.load(Ordering::SeqCst) as usize
}

/// Finds the local APIC and starts using it: its registers mapped
/// uncached, or its MSRs in x2APIC mode.
fn start_apic() -> Result<(), vmalloc::VmError> {
    let (x2apic, phys) = apic::detect();
    let mmio = if x2apic {
        0
    } else {
        vmalloc::ioremap(phys, 4096, MemType::Uc)?.virt
    };
    let mode = apic::start(x2apic, mmio);
    debug!("smp: local APIC in {mode} mode at {phys:#x}");
    apic::enable();
    Ok(())
}

/// Limine's `limine_smp_info` of one CPU, reached through the physmap.
struct LimineCpu {
    apic_id: u32,
    /// `extra_argument`: what the CPU finds in RDI's structure.
    extra: &'static AtomicU64,
    /// `goto_address`: Limine's parked CPU polls it.
    goto: &'static AtomicU64,
}

/// The `i`-th CPU of Limine's MP response.
fn limine_cpu(boot: &BootInfo, kernel: &KernelSpace, mp: &MpInfo, i: usize) -> Option<LimineCpu> {
    let slot = kernel.phys_to_virt(PhysAddr::new(mp.cpus_phys + 8 * i as u64), 8)?;
    // SAFETY: the array of pointers lies in bootloader-reclaimable RAM,
    // not yet released, mapped by the physmap at `slot`; 8-byte aligned.
    let ptr = unsafe { *(slot as *const u64) };
    let info = kernel.phys_to_virt(
        PhysAddr::try_new(ptr.wrapping_sub(boot.hhdm_offset)).ok()?,
        32,
    )?;
    // limine_smp_info: processor_id at 0, lapic_id at 4, goto_address at
    // 16, extra_argument at 24. Limine's parked CPU polls goto_address;
    // extra_argument must be there first.
    // SAFETY: `info` is the physmap address of Limine's structure for this
    // CPU, in RAM that stays mapped; the fields are aligned words Limine
    // reads atomically.
    unsafe {
        Some(LimineCpu {
            apic_id: *((info + 4) as *const u32),
            extra: &*((info + 24) as *const AtomicU64),
            goto: &*((info + 16) as *const AtomicU64),
        })
    }
}

/// Sends `cpu`, the `started`-th application processor, to baton's entry
/// with its stacks. False (nothing sent) when there is no memory for them.
fn send(cpu: &LimineCpu, started: usize, root: u64) -> bool {
    let stacks = (
        vmalloc::stack(AP_STACK),
        [
            vmalloc::stack(IST_STACK),
            vmalloc::stack(IST_STACK),
            vmalloc::stack(IST_STACK),
        ],
    );
    let (Ok(stack), [Ok(df), Ok(nmi), Ok(mc)]) = stacks else {
        error!(
            "smp: no memory for the stacks of the CPU with APIC {}; parking it",
            cpu.apic_id
        );
        return false;
    };
    let block = &AP_BOOT[started];
    block.cr3.store(root, Ordering::SeqCst);
    block.stack_top.store(stack.top(), Ordering::SeqCst);
    block.index.store(started as u64 + 1, Ordering::SeqCst);
    for (slot, top) in block.ist_tops.iter().zip([df.top(), nmi.top(), mc.top()]) {
        slot.store(top, Ordering::SeqCst);
    }
    cpu.extra
        .store(block as *const ApBoot as u64, Ordering::SeqCst);
    cpu.goto
        .store(ap_entry as *const () as u64, Ordering::SeqCst);
    log::debug!("smp: CPU with APIC {} sent to baton's entry", cpu.apic_id);
    true
}

/// Waits (at most two seconds) for the `started` CPUs to report in and
/// the `parked` ones to park; true when all did.
fn wait_for(mp: &MpInfo, started: usize, parked: u64, root: u64) -> bool {
    let deadline = time::tsc() + 2 * time::tsc_hz();
    while (ipi::online() < 1 + started || PARKED.load(Ordering::SeqCst) < parked)
        && time::tsc() < deadline
    {
        core::hint::spin_loop();
    }
    let up = ipi::online();
    // Shootdowns go to whoever came up, even if not everyone did.
    ipi::enable();
    if up == 1 + started && PARKED.load(Ordering::SeqCst) == parked {
        info!(
            "smp: {up} of {} CPUs online, all on baton's page tables (CR3 {root:#x})",
            mp.count
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
    if cpu::features::detect().pat {
        // SAFETY: the CPU has the PAT; baton's tables were planned for
        // this PAT, as on the bootstrap processor.
        unsafe { cpu::load_pat(crate::kspace::get().pat().to_msr()) };
    } else {
        cpu::tlb::flush_all();
    }
    apic::enable();
    let cr3 = Cr3::read().0.start_address().as_u64();
    debug!(
        "smp: CPU {index} (APIC {}) online: CR3 {cr3:#x}, stack top {:#x}",
        apic::id(),
        block.stack_top.load(Ordering::SeqCst)
    );
    debug!("smp: CPU {index} protections: {protections}");
    ipi::report_online(index as usize, apic::id(), cr3);
    loop {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}

/// The IST stack tops application processor `index` (1-based) was given.
fn ist_tops(index: usize) -> [u64; 3] {
    AP_BOOT[index - 1]
        .ist_tops
        .each_ref()
        .map(|t| t.load(Ordering::SeqCst))
}

//! Self-tests of the other CPUs: each runs on baton's tables with the
//! bootstrap processor's protections, and TLB shootdowns reach them all.

use core::sync::atomic::Ordering;

use crate::cpu::ipi::{call_on, online, records};
use crate::cpu::{self, tlb::shootdowns};
use crate::kspace;
use crate::mm::vmalloc;
use crate::selftest::{Test, TestResult};
use crate::{check, fail};

pub const TESTS: &[Test] = &[
    Test {
        name: "smp: every CPU runs on baton's CR3",
        run: same_cr3,
    },
    Test {
        name: "smp: every CPU has the protections, PAT, IDT and its own GDT and TSS loaded",
        run: same_cpu_state,
    },
    Test {
        name: "smp: an unmapped page leaves every CPU's TLB (shootdown)",
        run: shootdown_reaches_every_cpu,
    },
    Test {
        name: "smp: a multi-page unmap leaves no page of it readable on any CPU",
        run: multi_page_shootdown,
    },
    Test {
        name: "smp: a large unmap flushes every CPU's whole TLB",
        run: large_shootdown,
    },
];

/// Unmaps 8 pages in one go (the page-by-page path of the shootdown:
/// fewer than its full-flush threshold), backed by frames that need not be
/// contiguous, after every other CPU cached every one of them: no page may
/// stay readable anywhere, the first one or any other.
fn multi_page_shootdown() -> TestResult {
    if online() == 1 {
        crate::skip!("one CPU online: no other TLB to shoot down");
    }
    const PAGES: u64 = 8;
    let area = vmalloc::vmalloc(PAGES * 4096).map_err(|e| fail!("vmalloc: {e}"))?;
    let magic = |page: u64| 0x3a3a_0000_0000_0000 | page;
    for page in 0..PAGES {
        cpu::trap::probe_write(area.start + page * 4096, magic(page))
            .map_err(|f| fail!("write: {f:?}"))?;
    }
    let others: alloc::vec::Vec<u32> = records().skip(1).map(|(_, id, _)| id).collect();
    for &id in &others {
        for page in 0..PAGES {
            let va = area.start + page * 4096;
            let v = call_on(id, read_here, va).ok_or_else(|| fail!("CPU {id} silent"))?;
            check!(v == magic(page), "CPU {id} read {v:#x} in page {page}");
        }
    }
    let before = shootdowns();
    vmalloc::vfree(area.start).map_err(|e| fail!("vfree: {e}"))?;
    check!(shootdowns() > before, "no shootdown was sent");
    for &id in &others {
        for page in 0..PAGES {
            let va = area.start + page * 4096;
            let v = call_on(id, read_here, va).ok_or_else(|| fail!("CPU {id} silent"))?;
            check!(
                v == u64::MAX,
                "CPU {id} still reads {v:#x} in page {page} of {PAGES} after the unmap"
            );
        }
    }
    Ok(())
}

/// Unmaps more than 64 pages in one go (the full-flush path of the
/// shootdown, global entries included) after the other CPUs cached one of
/// them.
fn large_shootdown() -> TestResult {
    use crate::mm::{frames::FRAMES, mapper};
    if online() == 1 {
        crate::skip!("one CPU online: no other TLB to shoot down");
    }
    const PAGES: u64 = 80;
    let area = vmalloc::vmalloc(PAGES * 4096).map_err(|e| fail!("vmalloc: {e}"))?;
    let probe = area.start + 70 * 4096;
    cpu::trap::probe_write(probe, 7).map_err(|f| fail!("write: {f:?}"))?;
    let others: alloc::vec::Vec<u32> = records().skip(1).map(|(_, id, _)| id).collect();
    for &id in &others {
        let v = call_on(id, read_here, probe).ok_or_else(|| fail!("CPU {id} silent"))?;
        check!(v == 7, "CPU {id} read {v:#x}");
    }
    // Collect the frames without allocating inside the unmap (the heap
    // may need the mapper to grow).
    let mut frames = alloc::vec::Vec::with_capacity(PAGES as usize);
    mapper::unmap(area.start, area.size, |leaf| frames.push(leaf.phys))
        .map_err(|e| fail!("unmap: {e}"))?;
    for &id in &others {
        let v = call_on(id, read_here, probe).ok_or_else(|| fail!("CPU {id} silent"))?;
        check!(v == u64::MAX, "CPU {id} still reads {v:#x} after the unmap");
    }
    for phys in frames {
        FRAMES
            .lock()
            .free(
                x86_64::structures::paging::PhysFrame::containing_address(phys),
                0,
            )
            .map_err(|e| fail!("free {:#x}: {e:?}", phys.as_u64()))?;
    }
    vmalloc::release(area.start);
    Ok(())
}

fn same_cr3() -> TestResult {
    if online() == 1 {
        crate::skip!("one CPU online: nothing to compare with");
    }
    let root = kspace::get().root().start_address().as_u64();
    let mut n = 0;
    for (_, apic_id, cr3) in records() {
        check!(
            cr3 == root,
            "CPU with APIC {apic_id} has CR3 {cr3:#x}, root {root:#x}"
        );
        n += 1;
    }
    check!(n == online(), "{n} records, {} CPUs online", online());
    Ok(())
}

/// Reads the word at `va` on the CPU it runs on, or `u64::MAX` on a fault.
fn read_here(va: u64) -> u64 {
    cpu::trap::probe_read(va).unwrap_or(u64::MAX)
}

fn shootdown_reaches_every_cpu() -> TestResult {
    if online() == 1 {
        crate::skip!("one CPU online: no other TLB to shoot down");
    }
    let area = vmalloc::vmalloc(4096).map_err(|e| fail!("vmalloc: {e}"))?;
    let magic = 0x5a5a_0ba7_0ba7_5a5a;
    cpu::trap::probe_write(area.start, magic).map_err(|f| fail!("write: {f:?}"))?;
    let others: alloc::vec::Vec<u32> = records().skip(1).map(|(_, id, _)| id).collect();
    // Every other CPU reads it: its TLB now holds the translation.
    for &id in &others {
        let v = call_on(id, read_here, area.start).ok_or_else(|| fail!("CPU {id} silent"))?;
        check!(v == magic, "CPU {id} read {v:#x}");
    }
    let before = shootdowns();
    vmalloc::vfree(area.start).map_err(|e| fail!("vfree: {e}"))?;
    check!(shootdowns() > before, "no shootdown was sent");
    // Without the shootdown their TLBs would still translate it.
    for &id in &others {
        let v = call_on(id, read_here, area.start).ok_or_else(|| fail!("CPU {id} silent"))?;
        check!(v == u64::MAX, "CPU {id} still reads {v:#x} after the unmap");
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
fn same_cpu_state() -> TestResult {
    if online() == 1 {
        crate::skip!("one CPU online: nothing to compare with");
    }
    let bsp = CpuState::here();
    let mut n = 0;
    for (index, apic_id, _) in records() {
        let state = if index == 0 {
            bsp
        } else {
            state_of(index, apic_id)?
        };
        let who = alloc::format!("CPU {index} (APIC {apic_id})");
        same_controls(&who, &state, &bsp)?;
        same_idt_own_gdt(&who, index, &state, &bsp)?;
        n += 1;
    }
    check!(n == online(), "{n} CPUs checked, {} online", online());
    Ok(())
}

/// CPU `index`'s state, read on itself.
fn state_of(index: usize, apic_id: u32) -> Result<CpuState, crate::selftest::NotPassed> {
    // On the heap: if the CPU answers too late, it writes into a slot
    // that is leaked rather than into a returned stack frame.
    let slot = alloc::boxed::Box::into_raw(alloc::boxed::Box::new(CpuState::default()));
    call_on(apic_id, cpu_state_into, slot as u64)
        .ok_or_else(|| fail!("CPU {index} (APIC {apic_id}) silent"))?;
    // The write happened on another CPU before it answered.
    core::sync::atomic::fence(Ordering::SeqCst);
    // SAFETY: `slot` came from Box::into_raw above and the call, which
    // wrote it, is over.
    Ok(*unsafe { alloc::boxed::Box::from_raw(slot) })
}

/// The control registers' bits baton sets or relies on, as masks of CR0,
/// CR4 and EFER.
fn control_masks() -> (u64, u64, u64) {
    use x86_64::registers::control::{Cr0Flags, Cr4Flags};
    use x86_64::registers::model_specific::EferFlags;
    let cr0 = Cr0Flags::WRITE_PROTECT
        | Cr0Flags::PAGING
        | Cr0Flags::PROTECTED_MODE_ENABLE
        | Cr0Flags::MONITOR_COPROCESSOR
        | Cr0Flags::EMULATE_COPROCESSOR
        | Cr0Flags::TASK_SWITCHED;
    let cr4 = Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION
        | Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION
        | Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION
        | Cr4Flags::PAGE_GLOBAL
        | Cr4Flags::PHYSICAL_ADDRESS_EXTENSION
        | Cr4Flags::L5_PAGING
        | Cr4Flags::OSFXSR
        | Cr4Flags::OSXMMEXCPT_ENABLE;
    let efer =
        EferFlags::NO_EXECUTE_ENABLE | EferFlags::LONG_MODE_ENABLE | EferFlags::LONG_MODE_ACTIVE;
    (cr0.bits(), cr4.bits(), efer.bits())
}

/// The same protections as the bootstrap processor, CR0.WP on, and
/// baton's PAT where the CPU has one.
fn same_controls(who: &str, state: &CpuState, bsp: &CpuState) -> TestResult {
    let (cr0_mask, cr4_mask, efer_mask) = control_masks();
    check!(
        state.cr0 & cr0_mask == bsp.cr0 & cr0_mask,
        "{who}: CR0 {:#x}, bootstrap processor {:#x}",
        state.cr0,
        bsp.cr0
    );
    let wp = x86_64::registers::control::Cr0Flags::WRITE_PROTECT.bits();
    check!(state.cr0 & wp != 0, "{who}: CR0.WP off");
    check!(
        state.cr4 & cr4_mask == bsp.cr4 & cr4_mask,
        "{who}: CR4 {:#x}, bootstrap processor {:#x}",
        state.cr4,
        bsp.cr4
    );
    check!(
        state.efer & efer_mask == bsp.efer & efer_mask,
        "{who}: EFER {:#x}, bootstrap processor {:#x}",
        state.efer,
        bsp.efer
    );
    if cpu::features::detect().pat {
        let pat = kspace::get().pat().to_msr();
        check!(
            state.pat == pat,
            "{who}: PAT {:#x}, baton's {pat:#x}",
            state.pat
        );
    }
    Ok(())
}

/// The shared IDT; the CPU's own GDT loaded, with its code segment and
/// its own TSS (busy), whose IST entries are the CPU's stacks.
fn same_idt_own_gdt(who: &str, index: usize, state: &CpuState, bsp: &CpuState) -> TestResult {
    check!(
        state.idt_base == bsp.idt_base && state.idt_limit == bsp.idt_limit,
        "{who}: IDTR {:#x}/{:#x}, bootstrap processor {:#x}/{:#x}",
        state.idt_base,
        state.idt_limit,
        bsp.idt_base,
        bsp.idt_limit
    );
    let ((gdt, sel), tss) =
        cpu::gdt::tables_of(index).ok_or_else(|| fail!("{who}: no GDT built"))?;
    let gdt_addr = gdt as *const _ as u64;
    check!(
        state.gdt_base == gdt_addr && state.gdt_limit == bsp.gdt_limit,
        "{who}: GDTR {:#x}/{:#x}, its GDT at {gdt_addr:#x} (limit {:#x})",
        state.gdt_base,
        state.gdt_limit,
        bsp.gdt_limit
    );
    check!(
        state.cs == sel.code.0 && state.tr == sel.tss.0,
        "{who}: CS {:#x} TR {:#x}, expected {:#x} and {:#x}",
        state.cs,
        state.tr,
        sel.code.0,
        sel.tss.0
    );
    let (kind, base) = tss_descriptor(gdt_addr, sel.tss.0);
    let tss_addr = tss as *const _ as u64;
    check!(
        kind == 0xb && base == tss_addr,
        "{who}: TSS descriptor type {kind:#x} base {base:#x}; expected busy (0xb) at \
         {tss_addr:#x}"
    );
    if index > 0 {
        let ist = { tss.interrupt_stack_table };
        for (slot, want) in super::ist_tops(index).into_iter().enumerate() {
            let have = ist[slot].as_u64();
            check!(
                have == want,
                "{who}: IST{} {have:#x}, expected {want:#x}",
                slot + 1
            );
        }
    }
    Ok(())
}

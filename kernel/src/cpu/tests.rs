//! Self-tests of baton's early CPU state: the kernel really left Limine's
//! stack, GDT and IDT, and faults come back to it.

use core::sync::atomic::Ordering;

use x86_64::instructions::tables::{sgdt, sidt};
use x86_64::registers::segmentation::{CS, Segment};

use super::{BOOT_STACK, gdt, trap};
use crate::selftest::{Test, TestResult};
use crate::{check, fail};

pub const TESTS: &[Test] = &[
    Test {
        name: "cpu: running on baton's boot stack",
        run: boot_stack,
    },
    Test {
        name: "cpu: baton's GDT, TSS and code segment are loaded",
        run: gdt_loaded,
    },
    Test {
        name: "cpu: baton's IDT is loaded with all 256 vectors",
        run: idt_loaded,
    },
    Test {
        name: "cpu: IST stacks for #DF, NMI and #MC",
        run: ist_stacks,
    },
    Test {
        name: "cpu: int3 comes back through the breakpoint handler",
        run: breakpoint,
    },
    Test {
        name: "cpu: a null-pointer read faults, CR2 the null address, not present",
        run: null_read_faults,
    },
    Test {
        name: "cpu: every protection the CPU has is on",
        run: protections_on,
    },
    Test {
        name: "cpu: the page below the boot stack is an unmapped guard",
        run: boot_stack_guard,
    },
];

fn protections_on() -> TestResult {
    // Read only: `protect()` would turn them on before looking.
    let p = super::protections();
    for (name, state) in [
        ("NXE", p.nxe),
        ("SMEP", p.smep),
        ("SMAP", p.smap),
        ("UMIP", p.umip),
        ("PGE", p.pge),
    ] {
        check!(
            state != Some(false),
            "{name} is off although the CPU has it"
        );
    }
    check!(p.wp, "CR0.WP is off");
    Ok(())
}

fn boot_stack_guard() -> TestResult {
    let (start, end) = super::boot_stack_guard();
    let (bottom, _) = BOOT_STACK.bounds();
    check!(
        end == bottom,
        "guard {start:#x}-{end:#x}, stack starts at {bottom:#x}"
    );
    match trap::probe_read(start) {
        Ok(_) => Err(fail!("the guard page {start:#x} is readable")),
        Err(f) => {
            check!(
                f.vector == 14 && f.address == start && f.error_code & 1 == 0,
                "unexpected fault {f:?}"
            );
            Ok(())
        }
    }
}

fn boot_stack() -> TestResult {
    let (bottom, top) = BOOT_STACK.bounds();
    let rsp = super::rsp();
    check!(
        (bottom..top).contains(&rsp),
        "RSP {rsp:#x} is outside the boot stack {bottom:#x}..{top:#x}"
    );
    Ok(())
}

fn gdt_loaded() -> TestResult {
    let (table, sel) = gdt::gdt();
    let ptr = sgdt();
    let ours = table as *const _ as u64;
    check!(
        ptr.base.as_u64() == ours,
        "GDTR base {:#x}, baton's GDT at {ours:#x}",
        ptr.base.as_u64()
    );
    check!(CS::get_reg() == sel.code, "CS is {:?}", CS::get_reg());
    let tr: u16;
    // SAFETY: STR only reads the task register.
    unsafe { core::arch::asm!("str {0:x}", out(reg) tr, options(nomem, nostack)) };
    check!(
        tr == sel.tss.0,
        "TR is {tr:#x}, baton's TSS is {:#x}",
        sel.tss.0
    );
    Ok(())
}

fn idt_loaded() -> TestResult {
    let ptr = sidt();
    let ours = trap::idt() as *const _ as u64;
    check!(
        ptr.base.as_u64() == ours,
        "IDTR base {:#x}, baton's IDT at {ours:#x}",
        ptr.base.as_u64()
    );
    check!(ptr.limit == 256 * 16 - 1, "IDT limit {:#x}", ptr.limit);
    Ok(())
}

fn ist_stacks() -> TestResult {
    let tss = gdt::tss();
    let idt = sidt().base.as_u64();
    for (vector, slot) in [
        (8u64, gdt::IST_DOUBLE_FAULT),
        (2, gdt::IST_NMI),
        (18, gdt::IST_MACHINE_CHECK),
    ] {
        let (_, top) = gdt::ist_stack(slot);
        let set = tss.interrupt_stack_table[slot as usize].as_u64();
        check!(set == top, "IST{} is {set:#x}, expected {top:#x}", slot + 1);
        // The gate as the CPU reads it: IST index in bits 0-2 of byte 4.
        // SAFETY: the loaded IDT has 256 16-byte gates at `idt`.
        let ist = unsafe { core::ptr::read_volatile((idt + vector * 16 + 4) as *const u8) } & 7;
        check!(
            ist as u16 == slot + 1,
            "vector {vector}'s gate uses IST{ist}, expected IST{}",
            slot + 1
        );
    }
    Ok(())
}

fn breakpoint() -> TestResult {
    let before = trap::BREAKPOINTS.load(Ordering::Relaxed);
    x86_64::instructions::interrupts::int3();
    let after = trap::BREAKPOINTS.load(Ordering::Relaxed);
    check!(after == before + 1, "breakpoint count {before} -> {after}");
    Ok(())
}

fn null_read_faults() -> TestResult {
    match trap::probe_read(0) {
        Ok(v) => Err(fail!("read of address 0 returned {v:#x}")),
        Err(f) => {
            check!(f.vector == 14, "vector {}, expected 14", f.vector);
            check!(f.address == 0, "CR2 {:#x}", f.address);
            check!(
                f.error_code & 1 == 0,
                "error code {:#x}: page was present",
                f.error_code
            );
            Ok(())
        }
    }
}

//! Self-tests of the handoff on the running machine: baton really runs on
//! its own tables, and they say what the plan says.

use core::sync::atomic::{AtomicU64, Ordering};

use handoff::memtype::{MemType, PageKind};
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::PageTableFlags;

use crate::cpu::trap;
use crate::kspace::{self, KernelSpace};
use crate::selftest::{Test, TestResult};
use crate::{boot, check, fail};

pub const TESTS: &[Test] = &[
    Test {
        name: "handoff: CR3 holds baton's root table",
        run: cr3_is_ours,
    },
    Test {
        name: "handoff: no identity map: the kernel's physical address faults",
        run: no_identity_map,
    },
    Test {
        name: "handoff: Limine's HHDM is gone",
        run: hhdm_gone,
    },
    Test {
        name: "handoff: kernel data and its physmap alias are the same memory",
        run: physmap_aliases_kernel_data,
    },
    Test {
        name: "handoff: text RX, rodata R+NX, data RW+NX, physmap RW+NX",
        run: section_permissions,
    },
    Test {
        name: "handoff: a write to rodata faults (CR0.WP)",
        run: rodata_write_faults,
    },
    Test {
        name: "handoff: page-table frames equal the minimum for the page sizes",
        run: minimum_tables,
    },
    Test {
        name: "handoff: no W+X mapping",
        run: no_wx,
    },
    Test {
        name: "handoff: the live tables still match the plan",
        run: still_match_plan,
    },
    Test {
        name: "handoff: baton's PAT is loaded",
        run: pat_loaded,
    },
    Test {
        name: "console: the screen is drawn through baton's WC window, never the physmap",
        run: screen_drawn_through_the_window,
    },
];

/// A cell in .data for the alias test.
static CELL: AtomicU64 = AtomicU64::new(0);
/// A constant in .rodata.
static RODATA: u64 = 0x0ba7_0ba7_0ba7_0ba7;

fn state() -> &'static KernelSpace {
    kspace::get()
}

fn cr3_is_ours() -> TestResult {
    let (frame, _) = Cr3::read();
    check!(
        state().is_live(),
        "CR3 {:#x}, baton's root {:#x}",
        frame.start_address().as_u64(),
        state().root().start_address().as_u64()
    );
    Ok(())
}

fn no_identity_map() -> TestResult {
    let phys = boot::info().kernel_phys;
    match trap::probe_read(phys) {
        Ok(_) => Err(fail!("{phys:#x} is readable: an identity map survived")),
        Err(f) => {
            check!(
                f.vector == 14 && f.address == phys,
                "unexpected fault {f:?}"
            );
            Ok(())
        }
    }
}

fn hhdm_gone() -> TestResult {
    let va = boot::info().hhdm_offset + boot::info().kernel_phys;
    match trap::probe_read(va) {
        Ok(_) => Err(fail!("Limine's HHDM address {va:#x} is still readable")),
        Err(f) => {
            check!(
                f.vector == 14 && f.error_code & 1 == 0,
                "unexpected fault {f:?}"
            );
            Ok(())
        }
    }
}

fn physmap_aliases_kernel_data() -> TestResult {
    let s = state();
    let va = &CELL as *const AtomicU64 as u64;
    let Some(t) = s.translate(va) else {
        return Err(fail!("{va:#x} does not translate"));
    };
    let Some(alias) = s.phys_to_virt(t.phys, 8) else {
        return Err(fail!("{:#x} has no physmap alias", t.phys.as_u64()));
    };
    CELL.store(0x1234_5678_9abc_def0, Ordering::SeqCst);
    // SAFETY: `alias` is the physmap address of CELL's frame: mapped RW,
    // 8-byte aligned like CELL itself; an atomic access to the same memory.
    let through_alias = unsafe { &*(alias as *const AtomicU64) };
    let seen = through_alias.load(Ordering::SeqCst);
    check!(
        seen == 0x1234_5678_9abc_def0,
        "physmap alias reads {seen:#x}"
    );
    through_alias.store(0x0fed_cba9_8765_4321, Ordering::SeqCst);
    let back = CELL.load(Ordering::SeqCst);
    check!(
        back == 0x0fed_cba9_8765_4321,
        "kernel mapping reads {back:#x}"
    );
    Ok(())
}

fn section_permissions() -> TestResult {
    let s = state();
    let w = PageTableFlags::WRITABLE;
    let nx = PageTableFlags::NO_EXECUTE;
    let text = section_permissions as *const () as u64;
    let rodata = &RODATA as *const u64 as u64;
    let data = &CELL as *const AtomicU64 as u64;
    let root = s.root().start_address().as_u64();
    let physmap = s.layout().page_offset_base() + root;
    for (what, va, writable, exec) in [
        ("text", text, false, true),
        ("rodata", rodata, false, false),
        ("data", data, true, false),
        ("physmap", physmap, true, false),
    ] {
        let Some(t) = s.translate(va) else {
            return Err(fail!("{what} address {va:#x} does not translate"));
        };
        let flags = t.leaf.flags;
        check!(
            flags.contains(w) == writable,
            "{what} {va:#x} writable: {}",
            flags.contains(w)
        );
        if s.cpu().nx {
            check!(
                flags.contains(nx) != exec,
                "{what} {va:#x} executable: {}",
                !flags.contains(nx)
            );
        }
        check!(
            flags.contains(PageTableFlags::GLOBAL) == s.cpu().global,
            "{what} {va:#x} global bit {}",
            flags.contains(PageTableFlags::GLOBAL)
        );
    }
    Ok(())
}

fn rodata_write_faults() -> TestResult {
    let va = &RODATA as *const u64 as u64;
    match trap::probe_write(va, 0) {
        Ok(()) => Err(fail!("rodata at {va:#x} was written")),
        Err(f) => {
            check!(
                f.vector == 14 && f.address == va && f.error_code & 0b11 == 0b11,
                "unexpected fault {f:?}"
            );
            check!(RODATA == 0x0ba7_0ba7_0ba7_0ba7, "rodata changed");
            Ok(())
        }
    }
}

fn minimum_tables() -> TestResult {
    // Later stages add tables for the EFI window, vmalloc and the vmemmap;
    // the handoff's own build is what is held to the minimum.
    let (built, minimum) = state().tables_built();
    check!(built == minimum, "built {built:?}, minimum {minimum:?}");
    Ok(())
}

fn no_wx() -> TestResult {
    let summary = state().check_wx(|r| log::error!("{r}"));
    check!(summary.passed(), "{summary}");
    Ok(())
}

fn still_match_plan() -> TestResult {
    state().verify().map(|_| ()).map_err(|e| fail!("{e}"))
}

fn pat_loaded() -> TestResult {
    if !crate::cpu::features::detect().pat {
        crate::skip!("the CPU has no PAT");
    }
    // SAFETY: the CPU has the PAT, so IA32_PAT exists.
    let msr = unsafe { crate::cpu::features::rdmsr(handoff::memtype::pat::IA32_PAT) };
    check!(
        msr == state().pat().to_msr(),
        "IA32_PAT is {msr:#018x}, expected {:#018x}",
        state().pat().to_msr()
    );
    Ok(())
}

/// The screen console's window: planned by the handoff in the fixmap (or
/// where a relocated image left none, the layout's framebuffer area),
/// write-combining, the framebuffer's own memory; the physmap does not map
/// the framebuffer; and the console draws through that window.
fn screen_drawn_through_the_window() -> TestResult {
    use crate::console::fb;
    let framebuffer = boot::info().framebuffer;
    let s = state();
    let plan_window = {
        let plan = s.plan();
        plan.mappings()
            .iter()
            .zip(plan.meta())
            .find(|(_, m)| m.purpose == handoff::plan::Purpose::Framebuffer)
            .map(|(m, _)| *m)
    };
    let Some(drawing) = fb::drawing() else {
        // No screen console: only where none was asked for or there is no
        // framebuffer, and then no window either.
        check!(
            !crate::console::screen_asked() || framebuffer.is_none() || !fb::set_up(),
            "a framebuffer, the screen asked for, and no screen console"
        );
        check!(
            plan_window.is_none(),
            "a framebuffer window without a screen console"
        );
        crate::skip!("no screen console on this boot");
    };
    let framebuffer = framebuffer.ok_or_else(|| fail!("a screen console without a framebuffer"))?;
    let window = drawing
        .window
        .ok_or_else(|| fail!("no window after the handoff"))?;
    check!(
        drawing.base == Some(window.virt),
        "drawing through {:#x?}, not the window at {:#x}",
        drawing.base,
        window.virt
    );
    check!(
        plan_window.is_some_and(|m| m.virt <= window.virt && window.virt < m.virt + m.len),
        "the window {:#x} is not the plan's",
        window.virt
    );
    let t = s
        .translate(window.virt)
        .ok_or_else(|| fail!("the window {:#x} is not mapped", window.virt))?;
    check!(
        t.phys.as_u64() == framebuffer.phys,
        "the window maps {:#x}, the framebuffer is at {:#x}",
        t.phys.as_u64(),
        framebuffer.phys
    );
    let kind = if t.leaf.size == handoff::paging::PageSize::Size4K {
        PageKind::Size4KiB
    } else {
        PageKind::Large
    };
    let ty = s.pat().type_for_flags(t.leaf.flags, kind);
    let want = if s.pat().index_for(MemType::Wc).is_some() {
        MemType::Wc
    } else {
        MemType::Uc
    };
    check!(ty == want, "the window is {ty}, not {want}");
    let (start, end) = s.layout().framebuffer_area();
    check!(
        (start..end).contains(&window.virt),
        "the window {:#x} is outside the framebuffer area {start:#x}-{end:#x}",
        window.virt
    );
    check!(
        s.translate(s.layout().page_offset_base() + framebuffer.phys)
            .is_none(),
        "the physmap maps the framebuffer"
    );
    check!(fb::first_row_lit(&drawing), "the first text row is black");
    Ok(())
}

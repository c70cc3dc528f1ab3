//! Self-tests of the memory services on the running machine.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use handoff::PAGE_SIZE;
use handoff::frames::{FrameState, Reason};
use handoff::memmap::Kind;
use handoff::memtype::{MemType, PageKind};
use x86_64::PhysAddr;
use x86_64::structures::paging::PhysFrame;

use super::frames::FRAMES;
use super::{heap, vmalloc};
use crate::cpu::{gdt, tlb, trap};
use crate::kspace;
use crate::selftest::{Test, TestResult};
use crate::{check, fail};

pub const TESTS: &[Test] = &[
    Test {
        name: "mm: the vmemmap says what each frame is",
        run: vmemmap_states,
    },
    Test {
        name: "mm: all free memory can be allocated, only from allocatable RAM, and comes back",
        run: allocate_everything,
    },
    Test {
        name: "mm: 2 MiB and 1 GiB blocks are naturally aligned",
        run: large_blocks,
    },
    Test {
        name: "mm: vmalloc memory works and its guard page faults at its address",
        run: vmalloc_guard,
    },
    Test {
        name: "mm: a vmalloc stack has an unmapped guard page below it",
        run: stack_guard,
    },
    Test {
        name: "mm: the bootstrap CPU's IST stacks have unmapped guard pages below them",
        run: ist_stack_guards,
    },
    Test {
        name: "mm: the heap serves Box, Vec and String, and grows",
        run: heap_stress,
    },
    Test {
        name: "mm: ioremap maps the local APIC's registers uncached",
        run: ioremap_apic,
    },
    Test {
        name: "mm: ioremap maps the framebuffer write-combining and write-through",
        run: ioremap_framebuffer,
    },
    Test {
        name: "mm: W^X holds over vmalloc, the vmemmap and the heap",
        run: wx_after_mm,
    },
];

/// The early frames' ranges, copied out of their lock.
mod heapless_ranges {
    #[derive(Default)]
    pub struct Ranges([(u64, u64); 2], usize);

    impl Ranges {
        pub fn from_iter(it: impl Iterator<Item = core::ops::Range<u64>>) -> Self {
            let mut r = Ranges::default();
            for range in it.take(2) {
                r.0[r.1] = (range.start, range.end);
                r.1 += 1;
            }
            r
        }

        pub fn contains(&self, a: u64) -> bool {
            self.0[..self.1].iter().any(|&(s, e)| (s..e).contains(&a))
        }
    }
}

fn frame(phys: u64) -> PhysFrame {
    PhysFrame::containing_address(PhysAddr::new(phys))
}

fn vmemmap_states() -> TestResult {
    let s = kspace::get();
    let kernel = s.kernel().phys_base.as_u64();
    let state = FRAMES.lock().state(frame(kernel));
    check!(
        state == FrameState::Reserved(Reason::Kernel),
        "the kernel's first frame is {state:?}"
    );
    let root = FRAMES.lock().state(s.root());
    check!(
        root == FrameState::Reserved(Reason::PageTables),
        "the root table's frame is {root:?}"
    );
    let f = FRAMES.lock().alloc(0).map_err(|e| fail!("alloc: {e:?}"))?;
    let allocated = FRAMES.lock().state(f);
    check!(
        allocated == FrameState::Allocated { block: f, order: 0 },
        "an allocated frame is {allocated:?}"
    );
    FRAMES.lock().free(f, 0).map_err(|e| fail!("free: {e:?}"))?;
    check!(
        matches!(FRAMES.lock().state(f), FrameState::Free { .. }),
        "a freed frame is not free"
    );
    check!(
        FRAMES.lock().free(f, 0).is_err(),
        "a double free was accepted"
    );
    Ok(())
}

/// Allocates every free frame, chaining them through their own first word
/// (read and written through the physmap), checks each, then frees them.
fn allocate_everything() -> TestResult {
    let space = kspace::get();
    let before = *FRAMES.lock().stats();
    let early: heapless_ranges::Ranges = space
        .early_frames()
        .as_ref()
        .map(|e| heapless_ranges::Ranges::from_iter(e.used()))
        .unwrap_or_default();
    let kernel = {
        let image = space.kernel();
        let size = image.sections[3].end - image.virt_base;
        image.phys_base.as_u64()..image.phys_base.as_u64() + size
    };
    // Early page tables given back since: the temporary address space of
    // SetVirtualAddressMap.
    let mut given_back = [0u64; super::frames::MAX_GIVEN_BACK];
    let mut n_given_back = 0;
    super::frames::given_back(|f| {
        given_back[n_given_back] = f.start_address().as_u64();
        n_given_back += 1;
    });
    let given_back = &given_back[..n_given_back];
    let map = space.memory_map();
    let mut head = u64::MAX;
    let mut count = 0u64;
    loop {
        let Ok(f) = FRAMES.lock().alloc(0) else { break };
        let phys = f.start_address().as_u64();
        let kind = map.region_at(f.start_address()).map(|r| r.kind);
        if !matches!(
            kind,
            Some(Kind::Usable | Kind::BootServices | Kind::BootloaderReclaimable)
        ) {
            return Err(fail!("frame {phys:#x} of kind {kind:?} was handed out"));
        }
        // Checked before writing to it: early page tables, the vmemmap's
        // backing and the kernel image are usable-looking but taken.
        if (early.contains(phys) && !given_back.contains(&phys)) || kernel.contains(&phys) {
            return Err(fail!("frame {phys:#x} in use by the kernel was handed out"));
        }
        let Some(va) = space.phys_to_virt(f.start_address(), 8) else {
            return Err(fail!("allocated frame {phys:#x} is not in the physmap"));
        };
        // SAFETY: the frame was just allocated to this test; the physmap
        // maps it read-write.
        unsafe { core::ptr::write_volatile(va as *mut u64, head) };
        head = phys;
        count += 1;
    }
    let while_full = *FRAMES.lock().stats();
    while head != u64::MAX {
        let va = space.layout().page_offset_base() + head;
        // SAFETY: `va` is the physmap address of a frame written above
        // (checked to be in the physmap), which is still allocated.
        let next = unsafe { core::ptr::read_volatile(va as *const u64) };
        FRAMES
            .lock()
            .free(frame(head), 0)
            .map_err(|e| fail!("free {head:#x}: {e:?}"))?;
        head = next;
    }
    let after = *FRAMES.lock().stats();
    log::info!(
        "mm: allocated and freed all {count} free frames ({} MiB)",
        (count * PAGE_SIZE) >> 20
    );
    check!(
        count == before.free_frames,
        "allocated {count} frames, {} were free",
        before.free_frames
    );
    check!(
        while_full.free_frames == 0,
        "{} frames left",
        while_full.free_frames
    );
    check!(after == before, "stats before {before:?}, after {after:?}");
    Ok(())
}

/// The first naturally aligned GiB whose every frame is free, found frame
/// by frame (independently of the buddy lists the allocation uses).
fn free_aligned_gib() -> Option<u64> {
    const GIB: u64 = 1 << 30;
    let top = kspace::get()
        .memory_map()
        .regions()
        .iter()
        .map(|r| r.end)
        .max()?;
    let frames = FRAMES.lock();
    (0..top / GIB).map(|i| i * GIB).find(|&base| {
        (base..base + GIB)
            .step_by(PAGE_SIZE as usize)
            .all(|a| matches!(frames.state(frame(a)), FrameState::Free { .. }))
    })
}

fn large_blocks() -> TestResult {
    let f = FRAMES
        .lock()
        .alloc(9)
        .map_err(|e| fail!("no free 2 MiB block: {e:?}"))?;
    check!(
        f.start_address().as_u64() % (PAGE_SIZE << 9) == 0,
        "2 MiB block at {:#x}",
        f.start_address().as_u64()
    );
    FRAMES.lock().free(f, 9).map_err(|e| fail!("{e:?}"))?;

    // A GiB is required where one is surely there: well over 2 GiB free
    // and a naturally aligned GiB of free frames.
    let free = FRAMES.lock().stats().free_frames * PAGE_SIZE;
    let candidate = if free > 5 << 29 {
        free_aligned_gib()
    } else {
        None
    };
    // Not in the match: its lock would be held across the arms.
    let gib = FRAMES.lock().alloc(18);
    match gib {
        Ok(f) => {
            let phys = f.start_address().as_u64();
            log::info!("mm: 1 GiB block at {phys:#x}");
            check!(phys % (1 << 30) == 0, "1 GiB block at {phys:#x}");
            FRAMES.lock().free(f, 18).map_err(|e| fail!("{e:?}"))?;
        }
        Err(e) => {
            if let Some(base) = candidate {
                return Err(fail!(
                    "no 1 GiB block ({e:?}) although {} MiB are free and {base:#x} \
                     starts a free, aligned GiB",
                    free >> 20
                ));
            }
            log::info!(
                "mm: no 1 GiB block ({e:?}); not required with {} MiB free and no \
                 aligned GiB found free",
                free >> 20
            );
        }
    }
    Ok(())
}

fn vmalloc_guard() -> TestResult {
    let area = vmalloc::vmalloc(3 * PAGE_SIZE).map_err(|e| fail!("vmalloc: {e}"))?;
    for page in 0..3 {
        let va = area.start + page * PAGE_SIZE;
        trap::probe_write(va, va).map_err(|f| fail!("write {va:#x}: {f:?}"))?;
        let v = trap::probe_read(va).map_err(|f| fail!("read {va:#x}: {f:?}"))?;
        check!(v == va, "read back {v:#x} at {va:#x}");
    }
    match trap::probe_read(area.guard()) {
        Ok(_) => return Err(fail!("guard page {:#x} is readable", area.guard())),
        Err(f) => check!(
            f.vector == 14 && f.address == area.guard() && f.error_code & 1 == 0,
            "guard fault {f:?}"
        ),
    }
    vmalloc::vfree(area.start).map_err(|e| fail!("vfree: {e}"))?;
    check!(
        trap::probe_read(area.start).is_err(),
        "{:#x} is still mapped after vfree",
        area.start
    );
    Ok(())
}

fn stack_guard() -> TestResult {
    let stack = vmalloc::stack(16 * 1024).map_err(|e| fail!("stack: {e}"))?;
    let (guard, _) = stack.guard();
    trap::probe_write(stack.top() - 8, 1).map_err(|f| fail!("stack top: {f:?}"))?;
    match trap::probe_read(guard) {
        Ok(_) => Err(fail!("guard {guard:#x} is readable")),
        Err(f) => {
            check!(f.address == guard, "fault at {:#x}", f.address);
            check!(
                vmalloc::stack_guard_at(guard) == Some((guard, stack.top())),
                "the guard page is not recognised as one"
            );
            // The double-fault handler's rule: RSP in the guard or just
            // above it, not further up.
            let bottom = guard + PAGE_SIZE;
            check!(
                vmalloc::overflowed_stack(bottom + 8).is_some(),
                "RSP just above the guard page not recognised"
            );
            check!(
                vmalloc::overflowed_stack(bottom + PAGE_SIZE).is_none(),
                "RSP a page above the guard page taken for an overflow"
            );
            Ok(())
        }
    }
}

fn heap_stress() -> TestResult {
    let (mapped_before, _) = heap::usage();
    let big: Vec<u64> = (0..200_000u64).collect();
    check!(
        big.iter().enumerate().all(|(i, &v)| v == i as u64),
        "a large Vec lost data"
    );
    let mut s = String::new();
    for i in 0..100 {
        let _ = write!(s, "{i},");
    }
    check!(
        s.starts_with("0,1,2,") && s.ends_with("98,99,"),
        "String {s}"
    );
    let boxed = Box::new([7u8; 4096]);
    check!(boxed.iter().all(|&b| b == 7), "Box content");
    // Mixed sizes, freed out of order, contents checked.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut live: Vec<Vec<u8>> = Vec::new();
    for round in 0..2000u32 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let size = (seed % 8192) as usize + 1;
        live.push(alloc::vec![round as u8; size]);
        if seed.is_multiple_of(3) && !live.is_empty() {
            let v = live.swap_remove((seed as usize / 3) % live.len());
            check!(v.iter().all(|&b| b == v[0]), "a heap block was overwritten");
        }
    }
    for v in &live {
        check!(v.iter().all(|&b| b == v[0]), "a heap block was overwritten");
    }
    drop(live);
    drop(big);
    let (mapped_after, used) = heap::usage();
    log::info!(
        "mm: heap grew from {} KiB to {} KiB mapped; {} KiB in use after the test",
        mapped_before >> 10,
        mapped_after >> 10,
        used >> 10
    );
    check!(mapped_after > mapped_before, "the heap did not grow");
    Ok(())
}

fn mem_type_at(va: u64) -> Option<MemType> {
    let s = kspace::get();
    let t = s.translate(va)?;
    let kind = if t.leaf.level == 1 {
        PageKind::Size4KiB
    } else {
        PageKind::Large
    };
    Some(s.pat().type_for_flags(t.leaf.flags, kind))
}

fn ioremap_apic() -> TestResult {
    let Some(va) = crate::cpu::apic::mmio_address() else {
        crate::skip!("the local APIC is in x2APIC mode: its registers are MSRs, not MMIO");
    };
    check!(
        mem_type_at(va) == Some(MemType::Uc),
        "local APIC mapped {:?}",
        mem_type_at(va)
    );
    let version = crate::cpu::apic::version() & 0xff;
    check!(
        (0x10..=0x20).contains(&version),
        "local APIC version {version:#x} read through the mapping"
    );
    Ok(())
}

fn ioremap_framebuffer() -> TestResult {
    let Some(fb) = crate::boot::info().framebuffer else {
        crate::skip!("Limine set up no framebuffer");
    };
    // The screen console draws nothing meanwhile, and every pixel written
    // here is put back: the screen shows the log, not the test.
    let mut kept = None;
    crate::console::fb::paused(|| framebuffer_types(fb.phys, fb.pitch * fb.height, &mut kept))?;
    if let Some(kept) = kept {
        log::info!(
            "mm: the console's window was unmapped for the WT mapping; its {kept} page-table \
             frames from the handoff stay reserved"
        );
    }
    Ok(())
}

/// Writes `value` at `va` (a 32-bit pixel of a fresh mapping), reads it
/// back, and puts the old pixel back.
fn poke_pixel(va: u64, value: u32) -> u32 {
    let p = va as *mut u32;
    // SAFETY: `va` is inside a framebuffer mapping made read-write just
    // before; the screen console is paused, so nothing else writes there.
    unsafe {
        let old = core::ptr::read_volatile(p);
        core::ptr::write_volatile(p, value);
        let back = core::ptr::read_volatile(p);
        core::ptr::write_volatile(p, old);
        back
    }
}

/// `kept`: how many of the handoff's page tables the window's unmapping
/// left reserved (logged once the console draws again).
fn framebuffer_types(phys: u64, len: u64, kept: &mut Option<usize>) -> TestResult {
    // Write-combining, beside the console's own WC window: two mappings,
    // one type.
    let io = vmalloc::ioremap(phys, len, MemType::Wc).map_err(|e| fail!("{e}"))?;
    let wc = mem_type_at(io.virt);
    let stripe = (0..64u64).all(|x| poke_pixel(io.virt + x * 4, 0x00ba_70ba) == 0x00ba_70ba);
    vmalloc::iounmap(io).map_err(|e| fail!("{e}"))?;
    check!(wc == Some(MemType::Wc), "framebuffer mapped {wc:?}");
    check!(stripe, "a stripe across the first row did not read back");

    // Write-through would alias the console's WC window with another type:
    // the window goes while the WT mapping exists, and comes back as
    // planned (the live tables are held to the plan again later).
    let window = console_window();
    if let Some(w) = window {
        *kept = Some(unmap_keeping_tables(w.virt, w.len)?);
    }
    let result = write_through(phys, len);
    if let Some(w) = window {
        super::mapper::map(&w).map_err(|e| fail!("restoring the console's window: {e}"))?;
        check!(
            mem_type_at(w.virt) == Some(MemType::Wc),
            "the console's window came back {:?}",
            mem_type_at(w.virt)
        );
    }
    result
}

/// Unmaps `virt..virt + len` (the console's window) and flushes it from
/// every TLB. The tables it empties were built by the handoff, which the
/// frame allocator keeps reserved for good: they are left so, not freed
/// (the window's restoration takes new ones).
fn unmap_keeping_tables(virt: u64, len: u64) -> Result<usize, crate::selftest::NotPassed> {
    let mut kept = 0;
    kspace::get()
        .unmap(virt, len, |leaf| tlb::invlpg(leaf.virt), |_, _| kept += 1)
        .map_err(|e| fail!("unmapping the console's window: {e:?}"))?;
    tlb::shootdown(virt, len).map_err(|e| fail!("{} CPUs did not answer a shootdown", e.cpus))?;
    Ok(kept)
}

fn write_through(phys: u64, len: u64) -> TestResult {
    let io = vmalloc::ioremap(phys, len, MemType::Wt).map_err(|e| fail!("WT: {e}"))?;
    let wt = mem_type_at(io.virt);
    let back = poke_pixel(io.virt + 64, 0x0070_ba70);
    vmalloc::iounmap(io).map_err(|e| fail!("{e}"))?;
    check!(
        wt == Some(MemType::Wt),
        "framebuffer mapped {wt:?} when asked for WT"
    );
    check!(
        back == 0x0070_ba70,
        "framebuffer read back {back:#x} through WT"
    );
    Ok(())
}

/// The plan's framebuffer window, if the screen console has one.
fn console_window() -> Option<handoff::paging::Mapping> {
    let plan = kspace::get().plan();
    plan.mappings()
        .iter()
        .zip(plan.meta())
        .find(|(_, meta)| meta.purpose == handoff::plan::Purpose::Framebuffer)
        .map(|(m, _)| *m)
}

fn wx_after_mm() -> TestResult {
    let summary = kspace::get().check_wx(|r| log::error!("{r}"));
    check!(summary.passed(), "{summary}");
    Ok(())
}

fn ist_stack_guards() -> TestResult {
    check!(
        gdt::bsp_ist_guarded(),
        "the IST stacks are still the .bss ones"
    );
    for slot in [gdt::IST_DOUBLE_FAULT, gdt::IST_NMI, gdt::IST_MACHINE_CHECK] {
        let (bottom, top) = gdt::ist_stack(slot);
        let guard = bottom - 4096;
        trap::probe_read(bottom).map_err(|f| fail!("IST{} bottom: {f:?}", slot + 1))?;
        trap::probe_read(top - 8).map_err(|f| fail!("IST{} top: {f:?}", slot + 1))?;
        match trap::probe_read(guard) {
            Ok(_) => return Err(fail!("IST{} guard {guard:#x} is readable", slot + 1)),
            Err(f) => check!(
                f.vector == 14 && f.address == guard && f.error_code & 1 == 0,
                "IST{} guard fault {f:?}",
                slot + 1
            ),
        }
        check!(
            vmalloc::stack_guard_at(guard) == Some((guard, top)),
            "IST{}'s guard is not recorded for the double-fault diagnosis",
            slot + 1
        );
    }
    Ok(())
}

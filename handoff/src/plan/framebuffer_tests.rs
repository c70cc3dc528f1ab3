//! The framebuffer window: planned in the fixmap, write-combining, never
//! over RAM, built and verified with everything else, and every way a
//! broken window must fail [`verify`].

use x86_64::PhysAddr;
use x86_64::structures::paging::PageTableFlags;

use super::framebuffer::{self, Framebuffer, FramebufferError, FramebufferWindow};
use super::*;
use crate::layout::{FIXMAP_END, Layout, MODULES_END};
use crate::memmap::{self, LimineEntry, LimineMap, MemoryMap, Scratch, limine};
use crate::memtype::{MtrrRegisters, Mtrrs, PageKind, Pat, VariableRangeMsrs};
use crate::paging::{Builder, PageSize, Walker};
use crate::sim::Sim;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const PHYS_BITS: u8 = 48;
const KERNEL_PHYS: u64 = 0x110_0000;
/// QEMU's 1280x800 at 32 bpp, where SeaBIOS's VGA puts it.
const QEMU_FB: Framebuffer = Framebuffer {
    phys: 0xfd00_0000,
    len: 1280 * 4 * 800,
};
const CPU: CpuCaps = CpuCaps {
    gb_pages: true,
    nx: true,
    global: true,
};

fn entry(base: u64, length: u64, ty: u64) -> LimineEntry {
    LimineEntry { base, length, ty }
}

/// A BIOS boot with 3 GiB of RAM below 4 GiB, the framebuffer in Limine's
/// map, and an uncached MTRR over 3-4 GiB (as SeaBIOS sets them).
fn map_and_mtrrs() -> (Box<MemoryMap>, Mtrrs) {
    let entries = [
        entry(0, 0x9f000, limine::USABLE),
        entry(0x10_0000, 0x100_0000, limine::USABLE),
        entry(KERNEL_PHYS, 0x10_0000, limine::EXECUTABLE_AND_MODULES),
        entry(0x120_0000, 0xbee0_0000, limine::USABLE),
        entry(QEMU_FB.phys, 0x40_0000, limine::FRAMEBUFFER),
    ];
    let limine = LimineMap::parse(&entries, PHYS_BITS).unwrap();
    let mut map = Box::new(MemoryMap::new());
    let mut scratch = Box::new(Scratch::new());
    memmap::build(None, &limine, &mut scratch, &mut map).unwrap();
    let mut regs = MtrrRegisters::new(8 | 1 << 10, 1 << 11 | 6, PHYS_BITS);
    regs.variable[0] = VariableRangeMsrs {
        base: 0xc000_0000,
        mask: ((1u64 << PHYS_BITS) - 1) & !(GIB - 1) | 1 << 11,
    };
    (map, Mtrrs::new(&regs).unwrap())
}

fn inputs<'a>(
    map: &'a MemoryMap,
    mtrrs: &'a Mtrrs,
    kernel: &'a KernelImage,
    levels: Levels,
    pat: &'a Pat,
    fb: Option<Framebuffer>,
) -> Inputs<'a> {
    Inputs {
        map,
        layout: Layout::fixed(levels),
        mtrrs,
        pat,
        cpu: CPU,
        kernel,
        framebuffer: fb,
    }
}

/// Builds `plan` into simulated memory and hands the walker to `check`.
fn built<R>(
    plan: &Plan,
    levels: Levels,
    check: impl FnOnce(&Walker<'_, crate::sim::SimWindow>) -> R,
) -> R {
    let base = 1u64 << 50;
    let mut sim = Sim::new(PhysAddr::new(base), PhysAddr::new(base + (1 << 40)));
    let mut builder = Builder::new(&mut sim.window, &mut sim.frames, levels).unwrap();
    for m in plan.mappings() {
        builder.map(m).unwrap();
    }
    let root = builder.root();
    let walker = Walker::new(&sim.window, root, levels);
    check(&walker)
}

/// A copy of `plan` to break.
fn copy(plan: &Plan) -> Box<Plan> {
    let mut p = Box::new(Plan::new());
    p.mappings = plan.mappings;
    p.meta = plan.meta;
    p.len = plan.len;
    p.levels = plan.levels;
    p.max_page = plan.max_page;
    p.framebuffer = plan.framebuffer;
    p
}

fn window(plan: &Plan) -> FramebufferWindow {
    plan.framebuffer().expect("asked for").expect("a window")
}

#[test]
fn the_framebuffer_is_mapped_in_the_fixmap_write_combining() {
    let (map, mtrrs) = map_and_mtrrs();
    let kernel = KernelImage::sample(KERNEL_PHYS);
    for levels in [Levels::Four, Levels::Five] {
        let inputs = inputs(&map, &mtrrs, &kernel, levels, &Pat::BATON, Some(QEMU_FB));
        let mut plan = Box::new(Plan::new());
        plan.make(&inputs).unwrap();
        let w = window(&plan);
        // The same address in both paging modes: the fixmap's start.
        assert_eq!(w.virt, MODULES_END);
        assert_eq!(w.len, QEMU_FB.len);
        assert_eq!(w.mem_type, MemType::Wc);
        let last = plan.meta().last().unwrap();
        assert_eq!(last.purpose, Purpose::Framebuffer);
        assert_eq!((last.pat_type, last.effective), (MemType::Wc, MemType::Wc));
        let minimum = plan.minimum_tables();
        assert_eq!(plan.cost.tables, minimum);
        // No RAM is cut here: the ideal counts the window too.
        assert_eq!(plan.cost.ideal_tables, minimum);
        built(&plan, levels, |walker| {
            verify(&plan, walker, &inputs).unwrap();
            assert_eq!(walker.stats().tables, minimum);
            assert!(walker.check_wx(|r| panic!("{r}")).passed());
            for offset in [0, 2 * MIB - 4, 2 * MIB, QEMU_FB.len - 4] {
                let t = walker.translate(w.virt + offset).expect("mapped");
                assert_eq!(t.phys.as_u64(), QEMU_FB.phys + offset);
                let kind = if t.leaf.size == PageSize::Size4K {
                    PageKind::Size4KiB
                } else {
                    PageKind::Large
                };
                assert_eq!(Pat::BATON.type_for_flags(t.leaf.flags, kind), MemType::Wc);
                let rw_nx = PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
                assert!(t.leaf.flags.contains(rw_nx | PageTableFlags::GLOBAL));
            }
            // 3.9 MiB from a 2 MiB boundary: one 2 MiB page, then 4 KiB.
            let leaves: Vec<_> = walker.leaves_in(w.virt, w.virt + w.len).collect();
            assert_eq!(leaves[0].size, PageSize::Size2M);
            assert_eq!(
                leaves.len(),
                1 + (QEMU_FB.len - 2 * MIB).div_ceil(4096) as usize
            );
            // Device memory stays out of the physmap.
            let pob = inputs.layout.page_offset_base();
            assert!(walker.translate(pob + QEMU_FB.phys).is_none());
        });
    }
}

#[test]
fn no_framebuffer_asked_no_window() {
    let (map, mtrrs) = map_and_mtrrs();
    let kernel = KernelImage::sample(KERNEL_PHYS);
    let inputs = inputs(&map, &mtrrs, &kernel, Levels::Four, &Pat::BATON, None);
    let mut plan = Box::new(Plan::new());
    plan.make(&inputs).unwrap();
    assert_eq!(plan.framebuffer(), None);
    assert!(
        plan.meta()
            .iter()
            .all(|m| m.purpose != Purpose::Framebuffer)
    );
    built(&plan, Levels::Four, |walker| {
        assert!(walker.translate(MODULES_END).is_none());
    });
}

#[test]
fn a_framebuffer_over_ram_is_left_out_and_the_plan_goes_on() {
    let (map, mtrrs) = map_and_mtrrs();
    let kernel = KernelImage::sample(KERNEL_PHYS);
    let in_ram = Framebuffer {
        phys: 0x8000_0000,
        len: 0x40_0000,
    };
    let inputs = inputs(
        &map,
        &mtrrs,
        &kernel,
        Levels::Four,
        &Pat::BATON,
        Some(in_ram),
    );
    let mut plan = Box::new(Plan::new());
    plan.make(&inputs).unwrap();
    assert_eq!(
        plan.framebuffer(),
        Some(Err(FramebufferError::Ram { at: 0x8000_0000 }))
    );
    assert!(
        plan.meta()
            .iter()
            .all(|m| m.purpose != Purpose::Framebuffer)
    );
    built(&plan, Levels::Four, |walker| {
        verify(&plan, walker, &inputs).unwrap();
    });
    // Touching RAM by one page at either end is enough to refuse it.
    let edge = Framebuffer {
        phys: 0xc000_0000 - 0x1000,
        len: 0x2000,
    };
    let inputs = Inputs {
        framebuffer: Some(edge),
        ..inputs
    };
    plan.make(&inputs).unwrap();
    assert_eq!(
        plan.framebuffer(),
        Some(Err(FramebufferError::Ram { at: 0xbfff_f000 }))
    );
    for empty in [
        Framebuffer {
            phys: 0xd000_0000,
            len: 0,
        },
        Framebuffer {
            phys: u64::MAX - 10,
            len: 100,
        },
    ] {
        plan.make(&Inputs {
            framebuffer: Some(empty),
            ..inputs
        })
        .unwrap();
        assert_eq!(plan.framebuffer(), Some(Err(FramebufferError::Empty)));
    }
}

#[test]
fn a_framebuffer_larger_than_the_fixmap_is_mapped_in_part() {
    let (map, mtrrs) = map_and_mtrrs();
    let kernel = KernelImage::sample(KERNEL_PHYS);
    let uhd = Framebuffer {
        phys: 0xe000_0000,
        len: 3840 * 4 * 2160,
    };
    let inputs = inputs(&map, &mtrrs, &kernel, Levels::Four, &Pat::BATON, Some(uhd));
    let mut plan = Box::new(Plan::new());
    plan.make(&inputs).unwrap();
    let w = window(&plan);
    assert_eq!(w.virt, MODULES_END);
    assert_eq!(w.len, FIXMAP_END - MODULES_END);
    assert_eq!(w.len, framebuffer::capacity(inputs.layout, uhd.phys));
    assert_eq!(w.mapping.virt + w.mapping.len, FIXMAP_END);
    built(&plan, Levels::Four, |walker| {
        verify(&plan, walker, &inputs).unwrap();
        assert_eq!(
            walker.translate(FIXMAP_END - 1).map(|t| t.phys.as_u64()),
            Some(uhd.phys + w.len - 1)
        );
        // Seven 2 MiB pages, nothing else.
        assert_eq!(walker.leaves_in(w.virt, FIXMAP_END).count(), 7);
    });
}

#[test]
fn an_unaligned_framebuffer_keeps_its_offset_and_large_pages() {
    let (map, mtrrs) = map_and_mtrrs();
    let kernel = KernelImage::sample(KERNEL_PHYS);
    // 1 MiB and 64 bytes into a 2 MiB block.
    let fb = Framebuffer {
        phys: 0xd010_0040,
        len: 4 * MIB,
    };
    let inputs = inputs(&map, &mtrrs, &kernel, Levels::Four, &Pat::BATON, Some(fb));
    let mut plan = Box::new(Plan::new());
    plan.make(&inputs).unwrap();
    let w = window(&plan);
    assert_eq!(w.virt, MODULES_END + 0x10_0040);
    assert_eq!(w.len, fb.len);
    assert_eq!(
        framebuffer::capacity(inputs.layout, fb.phys),
        FIXMAP_END - MODULES_END - 0x10_0040
    );
    built(&plan, Levels::Four, |walker| {
        verify(&plan, walker, &inputs).unwrap();
        for offset in [0, fb.len - 1] {
            let t = walker.translate(w.virt + offset).unwrap();
            assert_eq!(t.phys.as_u64(), fb.phys + offset);
        }
        // The 2 MiB block from 0xd0200000 on is one large page.
        assert_eq!(
            walker.translate(MODULES_END + 2 * MIB).unwrap().leaf.size,
            PageSize::Size2M
        );
    });
}

#[test]
fn without_a_low_wc_entry_the_window_uses_what_the_pat_has() {
    let (map, mtrrs) = map_and_mtrrs();
    let kernel = KernelImage::sample(KERNEL_PHYS);
    // Limine's PAT has WC only in entry 5: 4 KiB pages with the PAT bit.
    // The power-on PAT has no WC: uncached, large pages.
    for (pat, ty, size) in [
        (Pat::LIMINE, MemType::Wc, PageSize::Size4K),
        (Pat::RESET, MemType::Uc, PageSize::Size2M),
    ] {
        let inputs = inputs(&map, &mtrrs, &kernel, Levels::Four, &pat, Some(QEMU_FB));
        let mut plan = Box::new(Plan::new());
        plan.make(&inputs).unwrap();
        assert_eq!(window(&plan).mem_type, ty);
        built(&plan, Levels::Four, |walker| {
            verify(&plan, walker, &inputs).unwrap();
            let t = walker.translate(MODULES_END).unwrap();
            assert_eq!(t.leaf.size, size);
            let kind = if size == PageSize::Size4K {
                PageKind::Size4KiB
            } else {
                PageKind::Large
            };
            assert_eq!(pat.type_for_flags(t.leaf.flags, kind), ty);
        });
    }
    let all_wb = Pat::new([MemType::Wb; 8]);
    let inputs = inputs(&map, &mtrrs, &kernel, Levels::Four, &all_wb, Some(QEMU_FB));
    let mut plan = Box::new(Plan::new());
    plan.make(&inputs).unwrap();
    assert_eq!(plan.framebuffer(), Some(Err(FramebufferError::NoPatEntry)));
}

/// The plan with the framebuffer window at the index it returns.
fn plan_with_window(inputs: &Inputs<'_>) -> (Box<Plan>, usize) {
    let mut plan = Box::new(Plan::new());
    plan.make(inputs).unwrap();
    let i = plan
        .meta()
        .iter()
        .position(|m| m.purpose == Purpose::Framebuffer)
        .unwrap();
    (plan, i)
}

#[test]
fn verify_catches_a_window_of_another_type() {
    let (map, mtrrs) = map_and_mtrrs();
    let kernel = KernelImage::sample(KERNEL_PHYS);
    let inputs = inputs(
        &map,
        &mtrrs,
        &kernel,
        Levels::Four,
        &Pat::BATON,
        Some(QEMU_FB),
    );
    let (plan, i) = plan_with_window(&inputs);
    // Tables built from a window mapped write-back, held to the plan.
    let mut wrong = copy(&plan);
    wrong.mappings[i]
        .flags
        .remove(PageTableFlags::WRITE_THROUGH);
    let built_wrong = |check: &Plan| {
        built(&wrong, Levels::Four, |walker| {
            verify(check, walker, &inputs)
        })
    };
    assert_eq!(
        built_wrong(&plan),
        Err(VerifyError::Wrong {
            virt: MODULES_END,
            what: "selects another memory type than planned"
        })
    );
}

#[test]
fn verify_catches_a_missing_window_and_a_window_over_ram() {
    let (map, mtrrs) = map_and_mtrrs();
    let kernel = KernelImage::sample(KERNEL_PHYS);
    let inputs = inputs(
        &map,
        &mtrrs,
        &kernel,
        Levels::Four,
        &Pat::BATON,
        Some(QEMU_FB),
    );
    let (plan, i) = plan_with_window(&inputs);
    // Tables built without the window.
    let mut without = copy(&plan);
    without.mappings.copy_within(i + 1..without.len, i);
    without.len -= 1;
    let err = built(&without, Levels::Four, |walker| {
        verify(&plan, walker, &inputs)
    });
    assert_eq!(
        err,
        Err(VerifyError::Missing {
            virt: MODULES_END,
            mapped: 0,
            len: QEMU_FB.len
        })
    );
    // A window a broken make put over RAM: plan and tables agree, the map
    // does not.
    let mut over_ram = copy(&plan);
    over_ram.mappings[i].phys = PhysAddr::new(0x8000_0000);
    let err = built(&over_ram, Levels::Four, |walker| {
        verify(&over_ram, walker, &inputs)
    });
    assert_eq!(
        err,
        Err(VerifyError::FramebufferOverRam {
            virt: MODULES_END,
            ram: 0x8000_0000
        })
    );
}

#[test]
fn a_relocated_image_leaves_room_for_the_window_wherever_limine_puts_it() {
    use crate::layout::{FIXMAP_SIZE, KASLR_IMAGE_END, KERNEL_IMAGE_START, RegionKind};
    let (map, mtrrs) = map_and_mtrrs();
    let image = KernelImage::sample(KERNEL_PHYS);
    let size = image.end() - image.virt_base;
    let capacity = framebuffer::capacity(Layout::fixed(Levels::Four), QEMU_FB.phys);
    // Low and middle slides, the last one below the fixmap, one into it,
    // and the last place the image fits.
    let top = KASLR_IMAGE_END - size;
    for base in [
        KERNEL_IMAGE_START + 0x20_0000,
        KERNEL_IMAGE_START + 0x4123_4000,
        MODULES_END - size,
        MODULES_END - size + 0x1000,
        top,
    ] {
        let kernel = super::tests::slid(image, base - image.virt_base);
        for levels in [Levels::Four, Levels::Five] {
            let layout = Layout::fixed(levels).with_relocated_image(kernel.end());
            assert_eq!(layout.validate(), Ok(()));
            let fixmap_kept = kernel.end() <= MODULES_END;
            assert_eq!(
                layout.region(RegionKind::Fixmap).size() == FIXMAP_SIZE,
                fixmap_kept
            );
            // The console sizes itself from the fixed layout before the
            // plan: every layout's window holds as much.
            assert_eq!(framebuffer::capacity(&layout, QEMU_FB.phys), capacity);
            let inputs = Inputs {
                layout: &layout,
                ..inputs(&map, &mtrrs, &kernel, levels, &Pat::BATON, Some(QEMU_FB))
            };
            let mut plan = Box::new(Plan::new());
            plan.make(&inputs).unwrap();
            let w = window(&plan);
            let (start, end) = layout.framebuffer_area();
            assert!(start <= w.virt && w.virt + w.len <= end, "{base:#x}");
            assert!(
                w.mapping.virt + w.mapping.len <= kernel.virt_base
                    || kernel.end() <= w.mapping.virt,
                "the window overlaps the image at {base:#x}"
            );
            assert_eq!(
                w.virt,
                if fixmap_kept {
                    MODULES_END
                } else {
                    KERNEL_IMAGE_START
                }
            );
            built(&plan, levels, |walker| {
                verify(&plan, walker, &inputs).unwrap();
                assert!(walker.check_wx(|r| panic!("{r}")).passed());
            });
        }
    }
}

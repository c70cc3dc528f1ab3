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
        name: "mm: the first 64 KiB are held back, never free",
        run: low_memory_held_back,
    },
    Test {
        name: "mm: sampled allocations come only from free, allocatable RAM, and come back",
        run: sampled_allocations,
    },
    Test {
        name: "mm: sampled frames are what the memory map says",
        run: sampled_states,
    },
    Test {
        name: "mm: free memory costs nothing: the vmemmap is backed only where descriptors were written",
        run: vmemmap_lazy,
    },
    Test {
        name: "mm: bootloader-reclaimable memory was released once every CPU had left Limine",
        run: bootloader_release,
    },
    Test {
        name: "mm: 2 MiB blocks are naturally aligned",
        run: large_blocks,
    },
    Test {
        name: "mm: a 1 GiB block is handed out, aligned, wherever the map leaves a free GiB",
        run: gib_blocks,
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

        pub fn overlaps(&self, r: core::ops::Range<u64>) -> bool {
            self.0[..self.1]
                .iter()
                .any(|&(s, e)| s < r.end && r.start < e)
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

const GIB: u64 = 1 << 30;

/// The physical memory the kernel took for itself before the allocator
/// existed (the early frames' page tables and the vmemmap's start), and
/// the kernel image: allocatable-looking, but never free.
struct Taken {
    early: heapless_ranges::Ranges,
    kernel: core::ops::Range<u64>,
    /// Early page tables given back since: the temporary address space of
    /// SetVirtualAddressMap.
    given_back: [u64; super::frames::MAX_GIVEN_BACK],
    n_given_back: usize,
    /// What the vmemmap's reserve did not need, freed.
    freed: core::ops::Range<u64>,
}

impl Taken {
    fn now() -> Taken {
        let space = kspace::get();
        let early = space
            .early_frames()
            .as_ref()
            .map(|e| heapless_ranges::Ranges::from_iter(e.used()))
            .unwrap_or_default();
        let image = space.kernel();
        let size = image.sections[3].end - image.virt_base;
        let kernel = image.phys_base.as_u64()..image.phys_base.as_u64() + size;
        let mut taken = Taken {
            early,
            kernel,
            given_back: [0; super::frames::MAX_GIVEN_BACK],
            n_given_back: 0,
            freed: FRAMES.lock().descriptors().backing().freed,
        };
        super::frames::given_back(|f| {
            taken.given_back[taken.n_given_back] = f.start_address().as_u64();
            taken.n_given_back += 1;
        });
        taken
    }

    /// Whether the frame at `phys` is the kernel's own.
    fn holds(&self, phys: u64) -> bool {
        (self.early.contains(phys)
            && !self.freed.contains(&phys)
            && !self.given_back[..self.n_given_back].contains(&phys))
            || self.kernel.contains(&phys)
    }

    /// Whether any of `range` is the kernel's own.
    fn touches(&self, range: core::ops::Range<u64>) -> bool {
        self.early.overlaps(range.clone())
            || (self.kernel.start < range.end && range.start < self.kernel.end)
    }
}

/// Every RAM frame below 64 KiB is held back for that reason, or the map
/// has no RAM there: none can ever be handed out.
fn low_memory_held_back() -> TestResult {
    let map = kspace::get().memory_map();
    let frames = FRAMES.lock();
    let mut ram = 0;
    for phys in (0..0x1_0000).step_by(PAGE_SIZE as usize) {
        let is_ram = map
            .region_at(PhysAddr::new(phys))
            .is_some_and(|r| r.kind.is_ram());
        let state = frames.state(frame(phys));
        if is_ram {
            ram += 1;
            check!(
                state == FrameState::Reserved(Reason::LowMemory),
                "{phys:#x}, RAM below 64 KiB, is {state:?}"
            );
        } else {
            check!(state == FrameState::NotRam, "{phys:#x} is {state:?}");
        }
    }
    drop(frames);
    if ram == 0 {
        crate::skip!("the map has no RAM below 64 KiB");
    }
    log::debug!("mm: the {ram} RAM frames below 64 KiB are held back");
    Ok(())
}

/// Blocks of a few orders, a bounded number of each whatever the RAM:
/// each from allocatable RAM that nothing else uses, above 64 KiB, in the
/// physmap, written at both ends and read back; then all freed, and the
/// counts are as before.
fn sampled_allocations() -> TestResult {
    const SAMPLES: [(u8, usize); 5] = [(0, 256), (1, 32), (3, 32), (9, 8), (13, 2)];
    let space = kspace::get();
    let map = space.memory_map();
    let taken = Taken::now();
    let before = *FRAMES.lock().stats();
    let mut blocks = [(PhysFrame::containing_address(PhysAddr::zero()), 0u8); 330];
    let mut n = 0;
    for (order, count) in SAMPLES {
        for _ in 0..count {
            let Ok(f) = FRAMES.lock().alloc(order) else {
                break;
            };
            blocks[n] = (f, order);
            n += 1;
            let (start, len) = (f.start_address().as_u64(), PAGE_SIZE << order);
            check!(
                start >= 0x1_0000,
                "{start:#x} (below 64 KiB) was handed out"
            );
            check!(start % len == 0, "order {order} block at {start:#x}");
            // Every region the block spans is allocatable.
            let mut at = start;
            while at < start + len {
                let region = map.region_at(PhysAddr::new(at));
                let kind = region.map(|r| r.kind);
                check!(
                    matches!(
                        kind,
                        Some(Kind::Usable | Kind::BootServices | Kind::BootloaderReclaimable)
                    ),
                    "block {start:#x}+{len:#x}, at {at:#x} of kind {kind:?}, was handed out"
                );
                at = region.map_or(start + len, |r| r.end);
            }
            check!(
                !(start..start + len)
                    .step_by(PAGE_SIZE as usize)
                    .any(|p| taken.holds(p)),
                "block {start:#x}+{len:#x} holds memory in use by the kernel"
            );
            let state = FRAMES.lock().state(frame(start + len - PAGE_SIZE));
            check!(
                state == FrameState::Allocated { block: f, order },
                "the last frame of the block at {start:#x} is {state:?}"
            );
            let va = space
                .phys_to_virt(f.start_address(), len)
                .ok_or_else(|| fail!("block {start:#x} is not in the physmap"))?;
            for (at, value) in [(va, start), (va + len - 8, !start)] {
                // SAFETY: the block was just allocated to this test; the
                // physmap maps it read-write.
                unsafe { core::ptr::write_volatile(at as *mut u64, value) };
            }
        }
    }
    let while_held = *FRAMES.lock().stats();
    for &(f, order) in blocks[..n].iter().rev() {
        let (start, len) = (f.start_address().as_u64(), PAGE_SIZE << order);
        let va = space.layout().page_offset_base() + start;
        // SAFETY: written above, still allocated to this test.
        let (first, last) = unsafe {
            (
                core::ptr::read_volatile(va as *const u64),
                core::ptr::read_volatile((va + len - 8) as *const u64),
            )
        };
        check!(
            first == start && last == !start,
            "block {start:#x} lost what was written to it"
        );
        FRAMES
            .lock()
            .free(f, order)
            .map_err(|e| fail!("free {start:#x}: {e}"))?;
    }
    let after = *FRAMES.lock().stats();
    let bytes: u64 = blocks[..n].iter().map(|&(_, o)| PAGE_SIZE << o).sum();
    log::debug!(
        "mm: {n} sampled blocks of orders 0 to 13 ({} KiB) allocated, checked and freed",
        bytes >> 10
    );
    check!(
        while_held.allocated_frames == before.allocated_frames + bytes / PAGE_SIZE,
        "{} frames allocated while held, {} before",
        while_held.allocated_frames,
        before.allocated_frames
    );
    // Allocations may have topped up the vmemmap's reserve, and the
    // blocks freed merge back: the free and reserved counts move
    // together.
    check!(
        after.allocated_frames == before.allocated_frames
            && after.free_frames + after.reserved_frames
                == before.free_frames + before.reserved_frames,
        "stats before {before:?}, after {after:?}"
    );
    Ok(())
}

/// Frames at evenly spread addresses up to the end of RAM (and the first
/// frame of each region): not RAM where the map has none, held back for
/// the map's reason where the map reserves it, and free, allocated or
/// held by the kernel where it is usable.
fn sampled_states() -> TestResult {
    let space = kspace::get();
    let map = space.memory_map();
    let limit = space.layout().physmap_size();
    let end = map.ram_end().min(limit);
    let frames = FRAMES.lock();
    let spread = (0..512u64).map(|i| (end / 512 * i) & !(PAGE_SIZE - 1));
    let starts = map.regions().iter().map(|r| r.start).take(256);
    let mut n = 0;
    for phys in spread.chain(starts).filter(|&p| p < limit) {
        n += 1;
        let state = frames.state(frame(phys));
        let kind = map
            .region_at(PhysAddr::new(phys))
            .map(|r| r.kind)
            .filter(|k| k.is_ram());
        // Reserved for the map's reason or by the kernel (an exclusion);
        // free or allocated only where the map allows it, now or since a
        // release.
        let ok = match (kind, state) {
            (None, state) => state == FrameState::NotRam,
            (Some(_), FrameState::NotRam) => false,
            (Some(kind), FrameState::Reserved(r)) => {
                r.is_exclusion() || Reason::from_kind(kind) == Some(r)
            }
            (Some(kind), FrameState::Free { .. } | FrameState::Allocated { .. }) => {
                Reason::from_kind(kind).is_none_or(|r| r.is_releasable())
            }
        };
        check!(ok, "{phys:#x} ({kind:?} in the map) is {state:?}");
    }
    log::debug!("mm: {n} sampled frames' states agree with the memory map");
    Ok(())
}

/// The vmemmap is backed for reserved frames and the first frame of each
/// block (a page each at most), not for free memory: far below the 32
/// bytes per frame an eager vmemmap costs.
fn vmemmap_lazy() -> TestResult {
    let space = kspace::get();
    let map = space.memory_map();
    let allocator = FRAMES.lock();
    let stats = *allocator.stats();
    let backing = allocator.descriptors().backing();
    let blocks: u64 = stats.free_blocks.iter().sum();
    // A page per 128 reserved frames plus one at each end of each region,
    // a page per block, free or allocated.
    let bound = stats.reserved_frames / 128
        + 2 * map.regions().len() as u64
        + blocks
        + stats.allocated_frames
        + 64;
    let pages = backing.pages + backing.large_pages * 512;
    let eager = stats.ram_frames * 32 / PAGE_SIZE;
    log::debug!(
        "mm: vmemmap: {pages} pages backed ({} 2 MiB), {} page tables; an eager one: {eager} pages",
        backing.large_pages,
        backing.tables
    );
    check!(
        pages <= bound,
        "{pages} vmemmap pages backed, more than {bound} for {blocks} free blocks, {} reserved \
         and {} allocated frames",
        stats.reserved_frames,
        stats.allocated_frames
    );
    // The free GiB freed longest ago: nothing has written its frames'
    // descriptors beyond the first page.
    let Some(gib) = allocator.free_list(18).last() else {
        return Ok(());
    };
    let base = gib.start_address().as_u64() / PAGE_SIZE;
    for pfn in [
        base,
        base + 4096,
        base + (1 << 17) - 128,
        base + (1 << 18) - 1,
    ] {
        let va = handoff::frames::vmemmap::desc_addr(space.layout(), pfn);
        check!(
            space.translate(va).is_none(),
            "the descriptor of {:#x}, inside a free GiB, is backed",
            pfn * PAGE_SIZE
        );
    }
    Ok(())
}

/// The release was decided when every CPU Limine reported ran on baton's
/// tables (or was parked there), and Limine's memory is no longer held.
fn bootloader_release() -> TestResult {
    let Some(release) = super::bootloader_release() else {
        return Err(fail!(
            "bootloader-reclaimable memory was never released (a CPU may have stayed in Limine)"
        ));
    };
    check!(
        release.online + release.parked >= release.reported,
        "released with {} of {} CPUs on baton's tables ({} parked)",
        release.online,
        release.reported,
        release.parked
    );
    let Some(frames) = release.frames else {
        return Err(fail!("bootloader-reclaimable memory kept: {release:?}"));
    };
    let map = kspace::get().memory_map();
    let bootloader = map.bytes(Kind::BootloaderReclaimable) / PAGE_SIZE;
    check!(
        frames > 0 || bootloader == 0,
        "{bootloader} frames of Limine's memory, none released"
    );
    let allocator = FRAMES.lock();
    let mut sampled = 0;
    for r in map
        .regions()
        .iter()
        .filter(|r| r.kind == Kind::BootloaderReclaimable)
        .take(64)
    {
        let state = allocator.state(frame(r.start));
        sampled += 1;
        check!(
            state != FrameState::Reserved(Reason::Bootloader),
            "{:#x}, Limine's memory, is still held back",
            r.start
        );
    }
    log::debug!(
        "mm: Limine's memory released with {} of {} CPUs on baton's tables; {sampled} regions \
         sampled",
        release.online,
        release.reported
    );
    Ok(())
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
    Ok(())
}

/// What the allocator holds in the aligned GiB at `base`, walked block by
/// block (at most `steps` of them): `Some(true)` when it is free, as one
/// block or as several (a missed merge), `Some(false)` when something in
/// it is not free, `None` when the walk ran out of steps.
fn gib_free(base: u64, steps: usize) -> Option<(bool, usize)> {
    let frames = FRAMES.lock();
    let (mut at, mut blocks) = (base, 0);
    while at < base + GIB {
        if blocks == steps {
            return None;
        }
        blocks += 1;
        match frames.state(frame(at)) {
            FrameState::Free { block, order } => {
                at = block.start_address().as_u64() + (PAGE_SIZE << order)
            }
            _ => return Some((false, blocks)),
        }
    }
    Some((true, blocks))
}

/// The aligned GiBs of allocatable RAM (usable, boot services, Limine's
/// once released) that hold none of the kernel's own memory, up to eight,
/// spread over RAM.
fn candidate_gibs(out: &mut [u64; 8]) -> usize {
    let space = kspace::get();
    let map = space.memory_map();
    let taken = Taken::now();
    let released = super::bootloader_release().is_some_and(|r| r.frames.is_some());
    let allocatable = |phys: u64| {
        map.region_at(PhysAddr::new(phys)).is_some_and(|r| {
            matches!(r.kind, Kind::Usable | Kind::BootServices)
                || (released && r.kind == Kind::BootloaderReclaimable)
        })
    };
    let end = map.ram_end().min(space.layout().physmap_size());
    let gibs = end / GIB;
    let mut n = 0;
    // Every GiB would be a sweep over RAM: look at a bounded number,
    // evenly spread (all of them up to 64).
    let step = (gibs / 64).max(1);
    for i in (1..gibs).step_by(step as usize) {
        let base = i * GIB;
        let mut at = base;
        let whole = loop {
            if at >= base + GIB {
                break true;
            }
            match map.region_at(PhysAddr::new(at)) {
                Some(r) if allocatable(at) => at = r.end,
                _ => break false,
            }
        };
        if whole && !taken.touches(base..base + GIB) && n < out.len() {
            out[n] = base;
            n += 1;
        }
    }
    n
}

fn gib_blocks() -> TestResult {
    let mut candidates = [0u64; 8];
    let n = candidate_gibs(&mut candidates);
    let mut free = None;
    for &base in &candidates[..n] {
        match gib_free(base, 4096) {
            Some((true, 1)) => free = free.or(Some(base)),
            Some((true, blocks)) => {
                return Err(fail!(
                    "the GiB at {base:#x} is free but in {blocks} blocks: a merge was missed"
                ));
            }
            _ => {}
        }
    }
    // Not in the match: its lock would be held across the arms.
    let gib = FRAMES.lock().alloc(18);
    match (gib, free) {
        (Ok(f), _) => {
            let phys = f.start_address().as_u64();
            log::debug!("mm: 1 GiB block at {phys:#x}");
            check!(phys % GIB == 0, "1 GiB block at {phys:#x}");
            let state = FRAMES.lock().state(frame(phys + GIB - PAGE_SIZE));
            check!(
                state
                    == FrameState::Allocated {
                        block: f,
                        order: 18
                    },
                "the last frame of the GiB is {state:?}"
            );
            FRAMES.lock().free(f, 18).map_err(|e| fail!("{e:?}"))?;
            Ok(())
        }
        (Err(e), Some(base)) => Err(fail!(
            "no 1 GiB block ({e}) although the GiB at {base:#x} is free"
        )),
        (Err(_), None) if n == 0 => {
            crate::skip!("no free aligned GiB in this map")
        }
        (Err(_), None) => {
            crate::skip!("each of the {n} aligned GiBs of allocatable RAM holds something in use")
        }
    }
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
    log::debug!(
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
        log::debug!(
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

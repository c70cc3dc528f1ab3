//! The layout in effect, chosen once between the parse and the plan:
//! Linux's fixed table with `nokaslr`, else the physmap, vmalloc and the
//! vmemmap at random bases (`handoff::kaslr`), seeded from the CPU's
//! generators, the TSC and what Limine's own randomisation left in its
//! responses. When Limine loaded the image at a random address, the image
//! region is the whole top 2 GiB either way. The log names every base
//! once, one line per region, so that two boots can be compared.

use handoff::Levels;
use handoff::kaslr::{self, KaslrError, Pool, Randomised, Sizes, Source};
use handoff::layout::{KERNEL_IMAGE_START, LIMINE_HHDM_4, LIMINE_HHDM_5, Layout, RegionKind};
use handoff::memmap::MemoryMap;
use handoff::plan::KernelImage;
use log::{debug, error, info, warn};
use static_cell::ConstStaticCell;

use crate::boot::BootInfo;
use crate::random::{self, Outcome};

pub mod tests;

/// The layout in effect, filled once.
static LAYOUT: ConstStaticCell<Layout> = ConstStaticCell::new(*Layout::fixed(Levels::Four));

/// Chooses, checks, logs and keeps the layout in effect.
pub fn choose(
    boot: &BootInfo,
    map: &MemoryMap,
    image: &KernelImage,
    nokaslr: bool,
) -> &'static Layout {
    let fixed = Layout::fixed(boot.levels);
    let base = if boot.kernel_virt == KERNEL_IMAGE_START {
        *fixed
    } else {
        fixed.with_relocated_image(image.end())
    };
    let hhdm = limine_hhdm(boot, map);
    let (layout, slots) = if nokaslr {
        info!("kaslr: off (nokaslr on the command line): Linux's fixed bases");
        (base, None)
    } else {
        match randomise(boot, &base, map, hhdm) {
            Ok(drawn) => (drawn.layout, Some(drawn.slots)),
            Err(e) => {
                error!("kaslr: no randomised layout ({e}); Linux's fixed bases instead");
                (base, None)
            }
        }
    };
    let layout = match kaslr::check(&layout, map.ram_end()) {
        Ok(()) => layout,
        Err(e) => {
            error!("kaslr: the layout breaks a rule ({e}); Linux's fixed bases instead");
            base
        }
    };
    report(&layout, slots, boot, image, nokaslr);
    if let Some(kind) = kaslr::overlapping(&layout, hhdm) {
        warn!(
            "kaslr: Limine's HHDM {:#x}-{:#x} overlaps baton's {}: pointers left into it \
             will not fault after the switch (`kaslr: no` in limine.conf keeps it in the guard hole)",
            hhdm.0,
            hhdm.1,
            kind.name()
        );
    }
    let cell = LAYOUT.take();
    *cell = layout;
    cell
}

/// Where Limine's HHDM lies: from its base over the highest address of
/// the memory map (4 GiB at least, which every base revision maps).
fn limine_hhdm(boot: &BootInfo, map: &MemoryMap) -> (u64, u64) {
    let top = map.regions().last().map_or(0, |r| r.end).max(1 << 32);
    (boot.hhdm_offset, boot.hhdm_offset.saturating_add(top))
}

/// Seeds a pool, then draws a layout that keeps clear of Limine's HHDM
/// (drawing once more without that wish if none does).
fn randomise(
    boot: &BootInfo,
    base: &Layout,
    map: &MemoryMap,
    hhdm: (u64, u64),
) -> Result<Randomised, KaslrError> {
    let pool = seed(boot);
    let sizes = Sizes::for_ram(base.levels(), map.ram_end());
    let mut rng = pool.rng();
    match kaslr::randomise_avoiding(base, &sizes, hhdm, &mut rng) {
        Err(KaslrError::CannotAvoid { .. }) => kaslr::randomise(base, &sizes, &mut rng),
        Ok(drawn) if drawn.tries > 1 => {
            debug!(
                "kaslr: drawn {} times to keep clear of Limine's HHDM {:#x}-{:#x}",
                drawn.tries, hhdm.0, hhdm.1
            );
            Ok(drawn)
        }
        other => other,
    }
}

/// The pool: the CPU's generators and the TSC, then whatever Limine
/// randomised itself (its HHDM base and the image's slide, each only when
/// it moved) and the RTC's time at boot. Logs which went in.
fn seed(boot: &BootInfo) -> Pool {
    let mut pool = Pool::new();
    let hw = random::gather(&mut pool);
    let default_hhdm = match boot.levels {
        Levels::Four => LIMINE_HHDM_4,
        Levels::Five => LIMINE_HHDM_5,
    };
    if boot.hhdm_offset != default_hhdm {
        pool.add(Source::LimineHhdm, boot.hhdm_offset);
    }
    if boot.kernel_virt != KERNEL_IMAGE_START {
        pool.add(Source::LimineImage, boot.kernel_virt);
    }
    if let Some(time) = boot.boot_time {
        pool.add(Source::BootTime, time);
    }
    for (name, outcome, tries) in [
        ("RDSEED", hw.rdseed, random::RDSEED_TRIES),
        ("RDRAND", hw.rdrand, random::RDRAND_TRIES),
    ] {
        if outcome == Outcome::Failed {
            warn!("kaslr: CPUID lists {name}, but it gave no usable word in {tries} tries");
        }
    }
    if pool.sources().has_hardware() {
        debug!("kaslr: seed from {}", pool.sources());
    } else {
        warn!(
            "kaslr: no RDRAND or RDSEED: the layout is weakly randomised (seed from {} only)",
            pool.sources()
        );
    }
    pool
}

/// One line per region that moves or may move, with its bases.
fn report(
    layout: &Layout,
    slots: Option<[u64; 3]>,
    boot: &BootInfo,
    image: &KernelImage,
    nokaslr: bool,
) {
    for (i, kind) in handoff::layout::MOVABLE.into_iter().enumerate() {
        let r = layout.region(kind);
        match slots {
            Some(slots) => debug!(
                "layout: {} {:#x}-{:#x} ({}, base 1 of {})",
                r.name,
                r.start,
                r.end,
                Size(r.size()),
                slots[i]
            ),
            None => debug!(
                "layout: {} {:#x}-{:#x} ({}, fixed)",
                r.name,
                r.start,
                r.end,
                Size(r.size())
            ),
        }
    }
    let efi = layout.region(RegionKind::EfiRuntime);
    debug!(
        "layout: EFI runtime {:#x}-{:#x} ({}, fixed)",
        efi.start,
        efi.end,
        Size(efi.size())
    );
    let end = image.end();
    let slide = boot.kernel_virt.wrapping_sub(KERNEL_IMAGE_START);
    if layout.image_relocated() {
        debug!(
            "layout: kernel image {:#x}-{:#x} (Limine's KASLR, slide {slide:#x})",
            image.virt_base, end
        );
    } else {
        debug!(
            "layout: kernel image {:#x}-{:#x} (at its link address)",
            image.virt_base, end
        );
    }
    if slots.is_some() {
        info!(
            "kaslr: bases: physmap {:#x}, vmalloc {:#x}, vmemmap {:#x}, kernel image {:#x}",
            layout.page_offset_base(),
            layout.vmalloc_base(),
            layout.vmemmap_base(),
            image.virt_base
        );
    }
    if nokaslr && layout.image_relocated() {
        warn!(
            "kaslr: nokaslr, but Limine loaded the image at a random address (slide {slide:#x}); \
             `kaslr: no` in limine.conf keeps it at its link address"
        );
    }
}

/// A size in the largest binary unit that divides it.
struct Size(u64);

impl core::fmt::Display for Size {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let units = [
            (50, "PiB"),
            (40, "TiB"),
            (30, "GiB"),
            (20, "MiB"),
            (10, "KiB"),
        ];
        for (shift, unit) in units {
            if self.0 >= 1 << shift && self.0.is_multiple_of(1 << shift) {
                return write!(f, "{} {unit}", self.0 >> shift);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

//! Host tests of the randomised layout and of the entropy pool.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::entropy::{Pool, Rng, SOURCES, Source};
use super::*;
use crate::layout::{KASLR_IMAGE_END, KERNEL_IMAGE_START, MODULES_END};

const MIB: u64 = 1 << 20;
const PIB: u64 = 1 << 50;

fn bases(levels: Levels) -> [Layout; 3] {
    let fixed = *Layout::fixed(levels);
    [
        fixed,
        fixed.with_relocated_image(MODULES_END),
        fixed.with_relocated_image(KASLR_IMAGE_END),
    ]
}

/// Every property a randomised layout must have, for RAM ending at
/// `ram_end`, drawn from `base`.
fn assert_sound(base: &Layout, drawn: &Randomised, sizes: &Sizes, ram_end: u64) {
    let l = &drawn.layout;
    check(l, ram_end).unwrap_or_else(|e| panic!("{e}: {l:#x?}"));
    let (space_start, space_end) = l.movable_space();
    let mut below = space_start;
    for (i, kind) in MOVABLE.into_iter().enumerate() {
        let r = l.region(kind);
        // In order, with the gap after each of the first two.
        let gap = if i == 0 { 0 } else { GAP };
        assert!(r.start >= below + gap, "{kind:?} {r:x?} below {below:#x}");
        assert_eq!(r.start % GRANULE, 0, "{r:x?}");
        assert_eq!(r.end % GRANULE, 0, "{r:x?}");
        assert!(drawn.offsets[i] < drawn.slots[i]);
        below = r.end;
    }
    assert!(below <= space_end);
    // Large enough for the RAM present, as far as a physmap can be.
    assert_eq!(l.physmap_size(), sizes.physmap);
    assert_eq!(l.region(RegionKind::Vmalloc).size(), sizes.vmalloc);
    assert_eq!(l.region(RegionKind::Vmemmap).size(), sizes.vmemmap);
    assert!(l.physmap_size() >= ram_end.min(physmap_limit(l.levels())));
    assert!(l.region(RegionKind::Vmemmap).size() >= vmemmap_for(l.physmap_size()));
    // The frame allocator's descriptors and GiB records fit.
    let vmemmap = l.region(RegionKind::Vmemmap);
    assert!(crate::frames::vmemmap::end(l) <= vmemmap.end);
    // Everything else as the base has it.
    for (a, b) in l.regions().iter().zip(base.regions()) {
        if !a.kind.is_movable() {
            assert_eq!(a, b);
        }
    }
}

#[test]
fn sizes_follow_linux() {
    const TIB: u64 = 1 << 40;
    let s = Sizes::for_ram(Levels::Four, 1 << 30);
    assert_eq!((s.physmap, s.vmalloc, s.vmemmap), (11 * TIB, 32 * TIB, TIB));
    // Exactly 1 TiB of RAM needs no second TiB.
    assert_eq!(Sizes::for_ram(Levels::Four, TIB).physmap, 11 * TIB);
    assert_eq!(Sizes::for_ram(Levels::Four, TIB + 1).physmap, 12 * TIB);
    // Never beyond Linux's 64 TiB (4-level) or 4 PiB (5-level).
    let s = Sizes::for_ram(Levels::Four, 60 * TIB);
    assert_eq!((s.physmap, s.vmemmap), (64 * TIB, TIB));
    let s = Sizes::for_ram(Levels::Five, 1 << 30);
    assert_eq!(
        (s.physmap, s.vmalloc, s.vmemmap),
        (11 * TIB, 12800 * TIB, TIB)
    );
    // 32 TiB of descriptors for 4 PiB, and the GiB records after them.
    let s = Sizes::for_ram(Levels::Five, 1 << 52);
    assert_eq!((s.physmap, s.vmemmap), (4 * PIB, 33 * TIB));
    // No RAM at all still leaves the padding.
    assert_eq!(Sizes::for_ram(Levels::Four, 0).physmap, 10 * TIB);
}

#[test]
fn free_space_in_both_modes() {
    const TIB: u64 = 1 << 40;
    // 4-level: 98.5 TiB between the LDT remap and the vmemmap's end.
    let four = Layout::fixed(Levels::Four);
    let sizes = Sizes::for_ram(Levels::Four, 1 << 30);
    assert_eq!(
        free_space(four, &sizes),
        Ok(98 * TIB + TIB / 2 - 44 * TIB - 2 * GIB)
    );
    // Too large to fit.
    let huge = Sizes {
        physmap: 64 * TIB,
        vmalloc: 34 * TIB,
        vmemmap: TIB,
    };
    assert!(matches!(
        free_space(four, &huge),
        Err(KaslrError::DoesNotFit { .. })
    ));
    let five = Layout::fixed(Levels::Five);
    let (start, end) = five.movable_space();
    assert_eq!((start, end), (0xff11_0000_0000_0000, 0xffd6_0000_0000_0000));
    let sizes = Sizes::for_ram(Levels::Five, 1 << 30);
    assert_eq!(
        free_space(five, &sizes),
        Ok(end - start - 12800 * TIB - 12 * TIB - 2 * GIB)
    );
}

#[test]
fn extreme_draws_stay_inside() {
    for levels in [Levels::Four, Levels::Five] {
        for base in bases(levels) {
            for ram_end in [0, 1 << 30, 3 << 40, 1 << 52, u64::MAX] {
                let sizes = Sizes::for_ram(levels, ram_end);
                let low = place(&base, &sizes, |_| 0).unwrap();
                assert_eq!(low.offsets, [0; 3]);
                assert_sound(&base, &low, &sizes, ram_end);
                assert_eq!(low.layout.page_offset_base(), base.movable_space().0);
                let high = place(&base, &sizes, |n| n - 1).unwrap();
                assert_sound(&base, &high, &sizes, ram_end);
                // The largest offsets use up the whole free space: the
                // vmemmap then ends within a GiB of the space's end.
                let end = high.layout.vmemmap_end();
                assert!(base.movable_space().1 - end < GRANULE, "{end:#x}");
            }
        }
    }
}

#[test]
fn sizes_that_are_not_whole_gib_are_refused() {
    let base = Layout::fixed(Levels::Four);
    let mut sizes = Sizes::for_ram(Levels::Four, 1 << 30);
    sizes.vmalloc -= 2 * MIB;
    let e = randomise(base, &sizes, &mut Rng::new(1)).unwrap_err();
    assert!(
        matches!(
            e,
            KaslrError::Layout(LayoutError::Misaligned {
                kind: RegionKind::Vmalloc,
                ..
            })
        ),
        "{e:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// For any RAM size, seed, paging mode and image placement, the
    /// randomised layout is sound.
    #[test]
    fn randomised_layouts_are_sound(
        ram_end in prop_oneof![0u64..(1 << 36), 0u64..(80 << 40), 0u64..(1 << 53)],
        seed in any::<u64>(),
        five in any::<bool>(),
        relocated in any::<bool>(),
    ) {
        let levels = if five { Levels::Five } else { Levels::Four };
        let base = bases(levels)[usize::from(relocated)];
        let sizes = Sizes::for_ram(levels, ram_end);
        let drawn = randomise(&base, &sizes, &mut Rng::new(seed)).unwrap();
        assert_sound(&base, &drawn, &sizes, ram_end);
    }

    /// Redrawn layouts never overlap the range to avoid: anywhere Limine
    /// may put its randomised HHDM (a quarter of the higher half from its
    /// base), up to 1 TiB long. (The worst such spot is covered by one of
    /// the three regions in some 71% of draws: all 1024 draws fail with
    /// probability 0.71^1024, below 1e-150.)
    #[test]
    fn avoided_ranges_are_avoided(
        seed in any::<u64>(),
        five in any::<bool>(),
        quarters in 0u64..(1 << 20),
        len in prop_oneof![Just(4u64 << 30), 1u64..(1 << 40)],
    ) {
        let levels = if five { Levels::Five } else { Levels::Four };
        let base = Layout::fixed(levels);
        let sizes = Sizes::for_ram(levels, 8 << 30);
        let hhdm = base.region(RegionKind::GuardHole).start;
        let start = hhdm + quarters * ((1 << (levels.va_bits() - 3)) >> 20);
        let avoid = (start, start + len);
        let drawn = randomise_avoiding(base, &sizes, avoid, &mut Rng::new(seed)).unwrap();
        prop_assert_eq!(overlapping(&drawn.layout, avoid), None);
        assert_sound(base, &drawn, &sizes, 8 << 30);
    }
}

#[test]
fn avoiding_limines_default_hhdm_takes_one_draw_and_the_whole_space_none() {
    let base = Layout::fixed(Levels::Four);
    let sizes = Sizes::for_ram(Levels::Four, 1 << 30);
    let hhdm = (0xffff_8000_0000_0000, 0xffff_8001_0000_0000);
    let drawn = randomise_avoiding(base, &sizes, hhdm, &mut Rng::new(7)).unwrap();
    assert_eq!(drawn.tries, 1);
    let all = base.movable_space();
    assert_eq!(
        randomise_avoiding(base, &sizes, all, &mut Rng::new(7)),
        Err(KaslrError::CannotAvoid {
            start: all.0,
            end: all.1
        })
    );
}

#[test]
fn check_finds_regions_too_small() {
    let fixed = Layout::fixed(Levels::Four);
    let physmap = fixed.region(RegionKind::Physmap);
    // A 1 TiB physmap for 2 TiB of RAM.
    let small = fixed
        .with_movable([
            (physmap.start, physmap.start + (1 << 40)),
            (fixed.vmalloc_base(), fixed.vmalloc_end()),
            (fixed.vmemmap_base(), fixed.vmemmap_end()),
        ])
        .unwrap();
    assert_eq!(
        check(&small, 2 << 40),
        Err(KaslrError::TooSmall {
            kind: RegionKind::Physmap,
            size: 1 << 40,
            need: 2 << 40
        })
    );
    // A 1 GiB vmemmap for 64 TiB of physmap (512 GiB of descriptors).
    let vmemmap = fixed
        .with_movable([
            (physmap.start, physmap.end),
            (fixed.vmalloc_base(), fixed.vmalloc_end()),
            (fixed.vmemmap_base(), fixed.vmemmap_base() + GIB),
        ])
        .unwrap();
    assert!(matches!(
        check(&vmemmap, 1 << 30),
        Err(KaslrError::TooSmall {
            kind: RegionKind::Vmemmap,
            ..
        })
    ));
    // A vmalloc shorter than Linux's.
    let vmalloc = fixed
        .with_movable([
            (physmap.start, physmap.end),
            (fixed.vmalloc_base(), fixed.vmalloc_end() - GIB),
            (fixed.vmemmap_base(), fixed.vmemmap_end()),
        ])
        .unwrap();
    assert!(matches!(
        check(&vmalloc, 1 << 30),
        Err(KaslrError::TooSmall {
            kind: RegionKind::Vmalloc,
            ..
        })
    ));
    // The fixed tables pass, the relocated-image variants too; RAM beyond
    // what any physmap covers is not the layout's fault.
    for levels in [Levels::Four, Levels::Five] {
        for base in bases(levels) {
            check(&base, 1 << 30).unwrap();
            check(&base, u64::MAX).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// Statistics: the offsets cover the slots.
//
// Each test draws with a fixed seed, so it is deterministic; the number of
// draws is chosen so that, were the seed any other, a uniform generator
// would leave a slot unseen with probability below 1e-9 (the union bound
// over `k` slots of probability at least `p`: k (1 - p)^n <= k e^(-pn)).
// ---------------------------------------------------------------------------

/// Draws so that `k` outcomes, each of probability at least `p`, are all
/// seen but with probability below 1e-9.
fn draws_for(k: u64, p: f64) -> u64 {
    (((k as f64).ln() + 1e9f64.ln()) / p).ceil() as u64
}

#[test]
fn physmap_offsets_cover_every_slot_4_level() {
    let base = Layout::fixed(Levels::Four);
    let sizes = Sizes::for_ram(Levels::Four, 1 << 30);
    let mut rng = Rng::new(0x5eed_0001);
    let slots = randomise(base, &sizes, &mut rng).unwrap().slots[0];
    // A third of 54.5 TiB: some 18,600 possible physmap bases.
    assert_eq!(slots, (free_space(base, &sizes).unwrap() / 3) / GRANULE + 1);
    assert!(slots > 18_000, "{slots}");
    let mut seen = vec![false; slots as usize];
    for _ in 0..draws_for(slots, 1.0 / slots as f64) {
        let drawn = randomise(base, &sizes, &mut rng).unwrap();
        seen[drawn.offsets[0] as usize] = true;
    }
    let missed: Vec<_> = (0..slots).filter(|&i| !seen[i as usize]).collect();
    assert!(missed.is_empty(), "slots never drawn: {missed:?}");
}

#[test]
fn physmap_offsets_cover_every_thousandth_5_level() {
    // 5-level has some 13 million slots: count them in 1000 buckets of
    // equal width (the last one no narrower).
    let base = Layout::fixed(Levels::Five).with_relocated_image(KASLR_IMAGE_END);
    let sizes = Sizes::for_ram(Levels::Five, 8 << 30);
    let mut rng = Rng::new(0x5eed_0005);
    let slots = randomise(&base, &sizes, &mut rng).unwrap().slots[0];
    assert!(slots > 10_000_000, "{slots}");
    const BUCKETS: u64 = 1000;
    let width = slots / BUCKETS;
    let mut seen = [false; BUCKETS as usize];
    for _ in 0..draws_for(BUCKETS, width as f64 / slots as f64) {
        let offset = randomise(&base, &sizes, &mut rng).unwrap().offsets[0];
        seen[(offset / width).min(BUCKETS - 1) as usize] = true;
    }
    assert!(seen.iter().all(|&s| s), "{seen:?}");
}

#[test]
fn every_placement_of_all_three_regions_is_drawn() {
    // Sizes that leave 6 GiB of free space in 4-level: few enough
    // placements to enumerate, each with its exact probability.
    const TIB: u64 = 1 << 40;
    let base = Layout::fixed(Levels::Four);
    let (start, end) = base.movable_space();
    let sizes = Sizes {
        physmap: 64 * TIB,
        vmalloc: 32 * TIB,
        vmemmap: end - start - 96 * TIB - 2 * GAP - 6 * GIB,
    };
    assert_eq!(free_space(base, &sizes), Ok(6 * GIB));
    // Enumerate: each placement and its probability.
    let mut placements: HashMap<[u64; 3], f64> = HashMap::new();
    let with = |picks: [u64; 3]| {
        let mut picks = picks.into_iter();
        place(base, &sizes, |_| picks.next().unwrap()).unwrap()
    };
    for a in 0..with([0; 3]).slots[0] {
        for b in 0..with([a, 0, 0]).slots[1] {
            for c in 0..with([a, b, 0]).slots[2] {
                let drawn = with([a, b, c]);
                assert_eq!(drawn.offsets, [a, b, c]);
                assert_sound(base, &drawn, &sizes, 1 << 30);
                let p = drawn.slots.iter().map(|&n| 1.0 / n as f64).product();
                placements.insert(drawn.offsets, p);
            }
        }
    }
    // 3 physmap slots (0-2 GiB); then 4, 3 or 3 for vmalloc; then the
    // vmemmap takes any of what is left: 22 + 15 + 12 placements.
    assert_eq!(placements.len(), 49);
    let total: f64 = placements.values().sum();
    assert!((total - 1.0).abs() < 1e-12, "{total}");
    let p_min = placements.values().copied().fold(1.0, f64::min);
    let mut rng = Rng::new(0x5eed_0003);
    let mut seen = HashSet::new();
    for _ in 0..draws_for(placements.len() as u64, p_min) {
        seen.insert(randomise(base, &sizes, &mut rng).unwrap().offsets);
    }
    let missed: Vec<_> = placements.keys().filter(|p| !seen.contains(*p)).collect();
    assert!(missed.is_empty(), "never drawn: {missed:?}");
    assert_eq!(seen.len(), placements.len());
}

// ---------------------------------------------------------------------------
// The entropy pool and the generator.
// ---------------------------------------------------------------------------

#[test]
fn pools_remember_their_sources_and_name_them() {
    let mut pool = Pool::new();
    assert!(pool.sources().is_empty());
    assert_eq!(pool.sources().to_string(), "nothing");
    pool.add(Source::Tsc, 123);
    pool.add(Source::BootTime, 1_700_000_000);
    assert!(!pool.sources().has_hardware());
    assert_eq!(pool.sources().to_string(), "TSC, boot time");
    pool.add(Source::RdRand, 5);
    assert!(pool.sources().has_hardware());
    for source in SOURCES {
        let mut p = Pool::new();
        p.add(source, 0);
        assert!(p.sources().contains(source));
        assert_eq!(p.sources().has_hardware(), source.is_hardware());
    }
    let mut all = Pool::new();
    for source in SOURCES {
        all.add(source, 0);
    }
    assert_eq!(
        all.sources().to_string(),
        "RDSEED, RDRAND, TSC, Limine's HHDM base, Limine's kernel slide, boot time"
    );
}

#[test]
fn the_seed_depends_on_every_word_its_source_and_the_order() {
    let seed = |words: &[(Source, u64)]| {
        let mut pool = Pool::new();
        for &(s, w) in words {
            pool.add(s, w);
        }
        pool.seed()
    };
    let base = [(Source::RdRand, 1), (Source::Tsc, 2)];
    assert_eq!(seed(&base), seed(&base));
    assert_ne!(seed(&base), seed(&[(Source::RdRand, 1), (Source::Tsc, 3)]));
    assert_ne!(seed(&base), seed(&[(Source::RdSeed, 1), (Source::Tsc, 2)]));
    assert_ne!(seed(&base), seed(&[(Source::Tsc, 2), (Source::RdRand, 1)]));
    // The same word twice does not cancel out.
    let twice = [(Source::Tsc, 2), (Source::Tsc, 2)];
    assert_ne!(seed(&twice), seed(&[]));
    assert_ne!(seed(&twice), seed(&twice[..1]));
}

#[test]
fn adding_a_word_loses_nothing() {
    // For one pool, distinct words give distinct states (the mixing is a
    // bijection); sampled on 2^17 consecutive and 2^17 - 1 spread-out words.
    let mut prior = Pool::new();
    prior.add(Source::Tsc, 0xdead_beef);
    let mut seeds = HashSet::new();
    for w in (0..1u64 << 17).chain((1..1u64 << 17).map(|i| i << 47 | i)) {
        let mut pool = prior;
        pool.add(Source::RdSeed, w);
        seeds.insert(pool.seed());
    }
    assert_eq!(seeds.len(), (1 << 18) - 1);
}

#[test]
fn one_flipped_input_bit_flips_half_the_seed() {
    // Over 64 bit positions x 1000 words, the mean number of seed bits that
    // change is 32 with a standard deviation near 0.016 for a good mixer:
    // a bound of 1 bit is some 60 deviations wide.
    let mut rng = Rng::new(42);
    let mut flips = 0u64;
    let mut trials = 0u64;
    for _ in 0..1000 {
        let (tsc, word) = (rng.next_u64(), rng.next_u64());
        let seed = |w: u64| {
            let mut pool = Pool::new();
            pool.add(Source::Tsc, tsc);
            pool.add(Source::RdRand, w);
            pool.seed()
        };
        let plain = seed(word);
        for bit in 0..64 {
            flips += u64::from((plain ^ seed(word ^ 1 << bit)).count_ones());
            trials += 1;
        }
    }
    let mean = flips as f64 / trials as f64;
    assert!((31.0..=33.0).contains(&mean), "{mean}");
}

#[test]
fn below_stays_below_and_is_uniform() {
    let mut rng = Rng::new(3);
    assert_eq!(rng.below(0), 0);
    assert_eq!(rng.below(1), 0);
    for n in [2u64, 3, 7, 1 << 33, u64::MAX] {
        for _ in 0..1000 {
            assert!(rng.below(n) < n);
        }
    }
    // Chi-squared over 10 values, 10^6 draws: 9 degrees of freedom, and
    // a statistic above 60 has probability far below 1e-9.
    let mut counts = [0u64; 10];
    for _ in 0..1_000_000 {
        counts[rng.below(10) as usize] += 1;
    }
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - 100_000.0).powi(2) / 100_000.0)
        .sum();
    assert!(chi2 < 60.0, "{chi2} {counts:?}");
}

#[test]
fn relocated_image_layouts_keep_the_top_for_the_image() {
    for levels in [Levels::Four, Levels::Five] {
        for image_end in [MODULES_END, KASLR_IMAGE_END] {
            let base = Layout::fixed(levels).with_relocated_image(image_end);
            let sizes = Sizes::for_ram(levels, 1 << 30);
            let drawn = randomise(&base, &sizes, &mut Rng::new(9)).unwrap();
            let image = drawn.layout.region(RegionKind::KernelImage);
            assert_eq!((image.start, image.end), (KERNEL_IMAGE_START, image_end));
            assert!(drawn.layout.image_relocated());
            assert!(!drawn.layout.is_fixed());
        }
    }
}

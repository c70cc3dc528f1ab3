//! Property tests: random maps against a reference model.
//!
//! The model is deliberately naive: it validates with pairwise comparisons
//! and finds the kind of an address by looking at every input range. The
//! output is constant between consecutive input boundaries, so checking
//! the model at every boundary and the byte before it checks the whole map
//! (large cases check a sample of them to stay fast).

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use uefi_raw::table::boot::{MemoryAttribute, MemoryDescriptor, MemoryType};
use x86_64::PhysAddr;

use super::super::efi::tests::encode;
use super::super::limine::{BOOTLOADER_RECLAIMABLE, USABLE};
use super::super::*;

const PAGE: u64 = 4096;
const RT: u64 = 1 << 63;

/// Every defined EFI type, MAX, an OEM and an OS-loader type.
const EFI_TYPES: [u32; 19] = [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    0x7000_0001,
    0x8000_0005,
];
/// A few attribute sets, so that neighbours often match.
const ATTRS: [u64; 6] = [0xf, 0x1, RT | 0xf, RT | 0x1, 0x8, 0xf | 0x4000];
/// Limine's non-usable types, with a newer and a made-up one.
const LIMINE_OTHER_TYPES: [u64; 9] = [1, 2, 3, 4, 6, 7, 8, 9, 0x1234];

/// A random input: an EFI map on UEFI boots, Limine's map, MAXPHYADDR.
#[derive(Debug, Clone)]
struct Case {
    efi: Option<Vec<MemoryDescriptor>>,
    desc_size: usize,
    limine: Vec<LimineEntry>,
    bits: u8,
    probes: Vec<u64>,
}

/// How a generated map is broken, if at all.
#[derive(Debug, Clone, Copy)]
enum Corrupt {
    Nothing,
    ZeroLength(Index),
    Misalign(Index),
    Swap(Index),
    /// Reach this many bytes (EFI: pages) into the next entry.
    Grow(Index, u64),
    /// Start this many bytes (EFI: pages) before the previous entry's end.
    Reach(Index, u64),
    Huge(Index),
}

/// One corruption in `1 + clean` is [`Corrupt::Nothing`] of the others.
fn corrupt(clean: u32) -> impl Strategy<Value = Corrupt> {
    prop_oneof![
        clean => Just(Corrupt::Nothing),
        1 => any::<Index>().prop_map(Corrupt::ZeroLength),
        1 => any::<Index>().prop_map(Corrupt::Misalign),
        1 => any::<Index>().prop_map(Corrupt::Swap),
        1 => (any::<Index>(), 1..0x3000u64).prop_map(|(i, by)| Corrupt::Grow(i, by)),
        1 => (any::<Index>(), 1..0x3000u64).prop_map(|(i, by)| Corrupt::Reach(i, by)),
        1 => any::<Index>().prop_map(Corrupt::Huge),
    ]
}

/// Sorted, distinct page numbers below `span` and one spec per gap between
/// them.
fn slots<S: Strategy>(
    count: std::ops::Range<usize>,
    span: u64,
    spec: S,
) -> impl Strategy<Value = Vec<(u64, u64, S::Value)>>
where
    S::Value: Clone,
{
    prop::collection::vec((0..span, spec), count).prop_map(|mut v| {
        v.sort_by_key(|(p, _)| *p);
        v.dedup_by_key(|(p, _)| *p);
        v.windows(2)
            .map(|w| (w[0].0, w[1].0, w[0].1.clone()))
            .collect()
    })
}

fn efi_map(
    count: std::ops::Range<usize>,
    span: u64,
) -> impl Strategy<Value = Vec<MemoryDescriptor>> {
    // One in five gaps is a hole; the rest are descriptors, touching.
    let spec = (0..5u8, 0..EFI_TYPES.len(), 0..ATTRS.len());
    slots(count, span, spec).prop_map(|slots| {
        slots
            .into_iter()
            .filter(|(_, _, (present, _, _))| *present != 0)
            .map(|(a, b, (_, ty, att))| MemoryDescriptor {
                ty: MemoryType(EFI_TYPES[ty]),
                phys_start: a * PAGE,
                virt_start: 0,
                page_count: b - a,
                att: MemoryAttribute::from_bits_retain(ATTRS[att]),
            })
            .collect()
    })
}

fn limine_map(count: std::ops::Range<usize>, span: u64) -> impl Strategy<Value = Vec<LimineEntry>> {
    // Per slot: a hole, a usable-class entry filling it, or one to three
    // other entries with unaligned, possibly overlapping edges inside it.
    let other = (0..LIMINE_OTHER_TYPES.len(), any::<u64>(), any::<u64>());
    let spec = (0..4u8, any::<bool>(), prop::collection::vec(other, 1..4));
    slots(count, span, spec).prop_map(|slots| {
        let mut entries = Vec::new();
        for (a, b, (what, blr, others)) in slots {
            let (a, b) = (a * PAGE, b * PAGE);
            match what {
                0 => {}
                1 => entries.push(LimineEntry {
                    base: a,
                    length: b - a,
                    ty: if blr { BOOTLOADER_RECLAIMABLE } else { USABLE },
                }),
                _ => {
                    for (ty, off, len) in others {
                        // Keep edges near the slot's ends half the time, so
                        // that rounding matters.
                        let room = b - a;
                        let near = room.min(3 * PAGE);
                        let start = a + off % if off & 1 == 0 { near } else { room };
                        let left = b - start;
                        let length = 1 + len % if len & 1 == 0 { left.min(near) } else { left };
                        entries.push(LimineEntry {
                            base: start,
                            length,
                            ty: LIMINE_OTHER_TYPES[ty],
                        });
                    }
                }
            }
        }
        entries.sort_by_key(|e| e.base);
        entries
    })
}

fn apply_efi(descs: &mut [MemoryDescriptor], c: Corrupt) {
    if descs.is_empty() {
        return;
    }
    match c {
        Corrupt::Nothing => {}
        Corrupt::ZeroLength(i) => descs[i.index(descs.len())].page_count = 0,
        Corrupt::Misalign(i) => descs[i.index(descs.len())].phys_start += 0x800,
        Corrupt::Swap(i) => {
            let i = i.index(descs.len());
            descs.swap(i, (i + 1) % descs.len());
        }
        Corrupt::Grow(i, by) => {
            let i = i.index(descs.len());
            if let Some(next) = descs.get(i + 1).map(|d| d.phys_start) {
                let d = &mut descs[i];
                d.page_count = (next.saturating_sub(d.phys_start)) / PAGE + by;
            }
        }
        Corrupt::Reach(i, by) => {
            let i = i.index(descs.len());
            if let Some(prev) = i.checked_sub(1).map(|p| descs[p]) {
                let d = &mut descs[i];
                let end = d.phys_start + d.page_count * PAGE;
                let prev_end = prev.phys_start + prev.page_count * PAGE;
                d.phys_start = prev_end.saturating_sub(by * PAGE).max(prev.phys_start);
                d.page_count = (end - d.phys_start) / PAGE;
            }
        }
        Corrupt::Huge(i) => descs[i.index(descs.len())].page_count = u64::MAX / 0x800,
    }
}

fn apply_limine(entries: &mut [LimineEntry], c: Corrupt) {
    if entries.is_empty() {
        return;
    }
    match c {
        Corrupt::Nothing => {}
        Corrupt::ZeroLength(i) => entries[i.index(entries.len())].length = 0,
        Corrupt::Misalign(i) => entries[i.index(entries.len())].base += 0x800,
        Corrupt::Swap(i) => {
            let i = i.index(entries.len());
            entries.swap(i, (i + 1) % entries.len());
        }
        Corrupt::Grow(i, by) => {
            let i = i.index(entries.len());
            if let Some(next) = entries.get(i + 1).map(|e| e.base) {
                let e = &mut entries[i];
                e.length = next.saturating_sub(e.base) + by;
            }
        }
        Corrupt::Reach(i, by) => {
            let i = i.index(entries.len());
            if let Some(prev) = i.checked_sub(1).map(|p| entries[p]) {
                let e = &mut entries[i];
                let end = e.base + e.length;
                let base = (prev.base + prev.length).saturating_sub(by).max(prev.base);
                // A previous entry may reach past this one's end.
                if base < end {
                    (e.base, e.length) = (base, end - base);
                }
            }
        }
        Corrupt::Huge(i) => entries[i.index(entries.len())].length = u64::MAX - 0x1000,
    }
}

fn bits() -> impl Strategy<Value = u8> {
    // Mostly enough for 64 TiB (46 bits), sometimes too few.
    prop_oneof![4 => 46..=52u8, 1 => 36..46u8]
}

/// `span` pages: 4 GiB or 64 TiB.
fn span() -> impl Strategy<Value = u64> {
    prop_oneof![Just(1u64 << 20), Just(1u64 << 34)]
}

fn case(
    efi_count: std::ops::Range<usize>,
    limine_count: std::ops::Range<usize>,
    uefi: impl Strategy<Value = bool>,
    clean: u32,
) -> impl Strategy<Value = Case> {
    (span(), uefi)
        .prop_flat_map(move |(span, uefi)| {
            let efi = if uefi {
                efi_map(efi_count.clone(), span).prop_map(Some).boxed()
            } else {
                Just(None).boxed()
            };
            (
                efi,
                prop::sample::select(vec![40usize, 48, 56, 64, 80]),
                limine_map(limine_count.clone(), span),
                bits(),
                corrupt(clean),
                corrupt(clean),
                prop::collection::vec(0..span * PAGE, 16),
            )
                .prop_map(|(mut efi, desc_size, mut limine, bits, ce, cl, probes)| {
                    if let Some(d) = efi.as_mut() {
                        apply_efi(d, ce);
                    }
                    apply_limine(&mut limine, cl);
                    Case {
                        efi,
                        desc_size,
                        limine,
                        bits,
                        probes,
                    }
                })
        })
        .prop_flat_map(shuffle_efi_sometimes)
}

/// `case` with its EFI map, broken or not, shuffled one time in four: the
/// firmware may list descriptors in any order.
fn shuffle_efi_sometimes(case: Case) -> impl Strategy<Value = Case> {
    let descs = case.efi.clone().unwrap_or_default();
    let order = prop_oneof![
        3 => Just(descs.clone()),
        1 => Just(descs).prop_shuffle(),
    ];
    (Just(case), order).prop_map(|(mut case, descs)| {
        if let Some(efi) = case.efi.as_mut() {
            *efi = descs;
        }
        case
    })
}

// ---------------------------------------------------------------------------
// The reference model.

fn efi_end(d: &MemoryDescriptor) -> u128 {
    d.phys_start as u128 + d.page_count as u128 * PAGE as u128
}

fn limine_end(e: &LimineEntry) -> u128 {
    e.base as u128 + e.length as u128
}

fn overlap(a: (u128, u128), b: (u128, u128)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// The first rule an entry breaks, in the order the rules are checked.
fn first_broken<const N: usize>(rules: [(bool, &'static str); N]) -> Option<&'static str> {
    rules.into_iter().find(|r| r.0).map(|r| r.1)
}

/// The first EFI descriptor that breaks a rule the parser checks, given
/// those before it, and the rule. The order of the descriptors is free; an
/// overlap is the parser's to find only while the map is sorted up to it.
fn efi_first_invalid(descs: &[MemoryDescriptor], limit: u64) -> Option<(usize, &'static str)> {
    descs.iter().enumerate().find_map(|(i, d)| {
        let me = (d.phys_start as u128, efi_end(d));
        let before = &descs[..i];
        let sorted = descs[..=i].is_sorted_by_key(|d| d.phys_start);
        let broken = first_broken([
            (d.page_count == 0, "ZeroLength"),
            (d.phys_start % PAGE != 0, "Misaligned"),
            (me.1 > u64::MAX as u128, "Overflow"),
            (me.1 > limit as u128, "BeyondMaxPhys"),
            (
                sorted
                    && before
                        .iter()
                        .any(|p| overlap(me, (p.phys_start as u128, efi_end(p)))),
                "Overlap",
            ),
        ]);
        broken.map(|b| (i, b))
    })
}

/// The overlap `build` must refuse in an EFI map that parsed, if any.
///
/// Taking the descriptors by start address (then by index), the first that
/// starts inside one taken before it overlaps it; the error names the later
/// of the two in map order and the end of the other. (The descriptors taken
/// before are disjoint, so only one of them can hold that start.)
fn efi_overlap(descs: &[MemoryDescriptor]) -> Option<MapError> {
    let mut order: Vec<usize> = (0..descs.len()).collect();
    order.sort_by_key(|&i| (descs[i].phys_start, i));
    order.iter().enumerate().find_map(|(k, &i)| {
        let start = descs[i].phys_start as u128;
        let &other = order[..k].iter().find(|&&o| efi_end(&descs[o]) > start)?;
        Some(overlap_error(descs, i.max(other), i.min(other)))
    })
}

/// The error for EFI descriptor `entry` overlapping `previous`.
fn overlap_error(descs: &[MemoryDescriptor], entry: usize, previous: usize) -> MapError {
    let d = &descs[entry];
    MapError::Overlap {
        entry: EntryInfo {
            map: Source::Efi,
            index: entry,
            ty: u64::from(d.ty.0),
            start: d.phys_start,
            end: efi_end(d),
        },
        previous,
        previous_end: efi_end(&descs[previous]) as u64,
    }
}

fn usable_class(ty: u64) -> bool {
    ty == USABLE || ty == BOOTLOADER_RECLAIMABLE
}

/// The first Limine entry that breaks a rule, given those before it, and
/// the rule.
fn limine_first_invalid(entries: &[LimineEntry], limit: u64) -> Option<(usize, &'static str)> {
    entries.iter().enumerate().find_map(|(i, e)| {
        let me = (e.base as u128, limine_end(e));
        let before = &entries[..i];
        let aligned = e.base % PAGE == 0 && e.length % PAGE == 0;
        let broken = first_broken([
            (e.length == 0, "ZeroLength"),
            (usable_class(e.ty) && !aligned, "Misaligned"),
            (me.1 > u64::MAX as u128, "Overflow"),
            (me.1 > limit as u128, "BeyondMaxPhys"),
            (before.iter().any(|p| p.base > e.base), "Unsorted"),
            (
                before.iter().any(|p| {
                    (usable_class(e.ty) || usable_class(p.ty))
                        && overlap(me, (p.base as u128, limine_end(p)))
                }),
                "Overlap",
            ),
        ]);
        broken.map(|b| (i, b))
    })
}

/// The entry an error names, and the rule it says was broken.
fn error_entry(err: &MapError) -> Option<(usize, &'static str)> {
    match err {
        MapError::ZeroLength(e) => Some((e.index, "ZeroLength")),
        MapError::Misaligned(e) => Some((e.index, "Misaligned")),
        MapError::Overflow(e) => Some((e.index, "Overflow")),
        MapError::BeyondMaxPhys { entry, .. } => Some((entry.index, "BeyondMaxPhys")),
        MapError::Unsorted { entry, .. } => Some((entry.index, "Unsorted")),
        MapError::Overlap { entry, .. } => Some((entry.index, "Overlap")),
        _ => None,
    }
}

/// One input range after rounding, with the EFI attributes if it is a
/// descriptor.
#[derive(Debug, Clone, Copy)]
struct Input {
    start: u64,
    end: u64,
    kind: Kind,
    efi_attr: Option<MemoryAttribute>,
}

fn rounded(start: u64, end: u64, kind: Kind, efi_attr: Option<MemoryAttribute>) -> Option<Input> {
    let (start, end) = if kind.is_usable_class() {
        (start.div_ceil(PAGE) * PAGE, end / PAGE * PAGE)
    } else {
        (start / PAGE * PAGE, end.div_ceil(PAGE) * PAGE)
    };
    (start < end).then_some(Input {
        start,
        end,
        kind,
        efi_attr,
    })
}

fn model_inputs(efi: Option<&[MemoryDescriptor]>, limine: &[LimineEntry]) -> Vec<Input> {
    let mut inputs = Vec::new();
    for d in efi.unwrap_or_default() {
        let end = d.phys_start + d.page_count * PAGE;
        inputs.extend(rounded(
            d.phys_start,
            end,
            Kind::from_efi_desc(d.ty, d.att),
            Some(d.att),
        ));
    }
    for e in limine {
        // On UEFI boots only these three Limine types are laid over.
        let overlaid = matches!(e.ty, 5..=7);
        if efi.is_none() || overlaid {
            inputs.extend(rounded(
                e.base,
                e.base + e.length,
                Kind::from_limine(e.ty),
                None,
            ));
        }
    }
    inputs
}

/// What the output must say about `addr`: the greatest kind covering it
/// and the attributes of the EFI descriptor covering it.
fn model_at(inputs: &[Input], addr: u64) -> Option<(Kind, Option<MemoryAttribute>)> {
    let covering = || inputs.iter().filter(|i| i.start <= addr && addr < i.end);
    let kind = covering().map(|i| i.kind).max()?;
    let attr = covering().find_map(|i| i.efi_attr);
    Some((kind, attr))
}

// ---------------------------------------------------------------------------

/// Parses and builds `case`, checking everything against the model.
/// Checks a parse result against the model: the map when both accept it,
/// `None` when both refuse it for the same entry and rule.
fn agree<T: std::fmt::Debug>(
    map: Source,
    count: usize,
    model: Option<(usize, &'static str)>,
    parsed: Result<T, MapError>,
) -> Result<Option<T>, TestCaseError> {
    let max = match map {
        Source::Efi => MAX_EFI_ENTRIES,
        Source::Limine => MAX_LIMINE_ENTRIES,
    };
    if count > max {
        let want = MapError::TooManyEntries { map, count, max };
        prop_assert_eq!(parsed.unwrap_err(), want);
        return Ok(None);
    }
    match (model, parsed) {
        (None, Ok(parsed)) => Ok(Some(parsed)),
        (Some(want), Err(err)) => {
            prop_assert_eq!(error_entry(&err), Some(want), "{}", err);
            let prefix = format!("{map} memory map entry {} (type ", want.0);
            prop_assert!(err.to_string().starts_with(&prefix), "{}", err);
            Ok(None)
        }
        (want, got) => Err(TestCaseError::fail(format!(
            "{map}: the model says {want:?}, parse says {got:?}"
        ))),
    }
}

/// Parses and builds `case`, checking everything against the model.
fn check(case: &Case, max_points: usize) -> Result<(), TestCaseError> {
    let limit = 1u64 << case.bits;
    let bytes = case.efi.as_ref().map(|d| encode(d, case.desc_size));
    // `Some(None)`: a BIOS boot; `None`: the EFI map was refused.
    let efi = match (&bytes, &case.efi) {
        (Some(bytes), Some(descs)) => {
            let parsed = EfiMemoryMap::parse(bytes, case.desc_size, 1, case.bits);
            let model = efi_first_invalid(descs, limit);
            let map = agree(Source::Efi, descs.len(), model, parsed)?;
            if let Some(map) = &map {
                prop_assert_eq!(map.len(), descs.len());
                for (e, d) in map.iter().zip(descs) {
                    prop_assert_eq!(e.desc(), d);
                }
                prop_assert_eq!(map.is_sorted(), descs.is_sorted_by_key(|d| d.phys_start));
            }
            map.map(Some)
        }
        _ => Some(None),
    };
    let limine = agree(
        Source::Limine,
        case.limine.len(),
        limine_first_invalid(&case.limine, limit),
        LimineMap::parse(&case.limine, case.bits),
    )?;
    let (Some(efi), Some(limine)) = (efi, limine) else {
        return Ok(());
    };

    let inputs = model_inputs(case.efi.as_deref(), &case.limine);
    let mut bounds: Vec<u64> = inputs.iter().flat_map(|i| [i.start, i.end]).collect();
    bounds.sort_unstable();
    bounds.dedup();

    let mut scratch = Box::new(Scratch::new());
    let mut map = Box::new(MemoryMap::new());
    let result = build(efi.as_ref(), &limine, &mut scratch, &mut map);
    if let Some(want) = case.efi.as_deref().and_then(efi_overlap) {
        prop_assert_eq!(result, Err(want));
        prop_assert!(map.regions().is_empty());
        return Ok(());
    }
    let summary = match result {
        Ok(summary) => summary,
        Err(MapError::OutputFull { .. }) => {
            // Only possible when the inputs cut the address space into more
            // pieces than the map holds.
            prop_assert!(bounds.len() > MAX_REGIONS + 1);
            prop_assert!(map.regions().is_empty());
            return Ok(());
        }
        Err(err) => return Err(TestCaseError::fail(format!("unexpected error {err}"))),
    };
    let regions = map.regions();
    prop_assert_eq!(summary.regions, regions.len());
    let efi_sorted = case
        .efi
        .as_ref()
        .is_none_or(|d| d.is_sorted_by_key(|d| d.phys_start));
    prop_assert_eq!(summary.efi_sorted, efi_sorted);

    // Sorted, disjoint, page-aligned, below MAXPHYADDR, merged.
    for r in regions {
        prop_assert!(r.start < r.end, "{:?}", r);
        prop_assert!(r.start % PAGE == 0 && r.end % PAGE == 0, "{:?}", r);
        prop_assert!(r.end <= limit, "{:?}", r);
    }
    for w in regions.windows(2) {
        prop_assert!(w[0].end <= w[1].start, "{:?}", w);
        prop_assert!(
            w[0].end < w[1].start || (w[0].kind, w[0].attr) != (w[1].kind, w[1].attr),
            "unmerged {:?}",
            w
        );
    }

    // Every region and every input boundary, from both sides, plus probes.
    let mut points: Vec<u64> = bounds
        .iter()
        .chain(regions.iter().flat_map(|r| [&r.start, &r.end]))
        .flat_map(|&b| [b, b.saturating_sub(1)])
        .collect();
    if points.len() > max_points {
        let step = points.len() / max_points + 1;
        points = points.into_iter().step_by(step).collect();
    }
    points.extend(case.probes.iter().copied());
    for p in points {
        let got = map
            .region_at(PhysAddr::new_truncate(p))
            .map(|r| (r.kind, r.attr));
        prop_assert_eq!(got, model_at(&inputs, p), "at {:#x}", p);
    }

    // RAM runs: maximal, made of RAM regions, adding up to the RAM total.
    let runs: Vec<_> = map.ram_runs().collect();
    for w in runs.windows(2) {
        prop_assert!(w[0].end < w[1].start, "runs touch: {:?}", w);
    }
    for run in &runs {
        let first = regions.iter().position(|r| r.start == run.start).unwrap();
        let mut at = run.start;
        for r in &regions[first..] {
            if at == run.end {
                break;
            }
            prop_assert!(r.kind.is_ram() && r.start == at, "{:?} in {:?}", r, run);
            at = r.end;
        }
        prop_assert_eq!(at, run.end);
    }
    let run_bytes: u64 = runs.iter().map(|r| r.end - r.start).sum();
    prop_assert_eq!(run_bytes, map.ram_bytes());
    let kind_bytes: u64 = Kind::ALL.iter().map(|&k| map.bytes(k)).sum();
    prop_assert_eq!(kind_bytes, regions.iter().map(Region::size).sum::<u64>());
    Ok(())
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        // Regression files would land outside this module's directory;
        // a failure prints its minimal case instead.
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Small maps, BIOS and UEFI: every boundary is checked.
    #[test]
    fn small_maps_match_the_model(case in case(0..40, 0..40, any::<bool>(), 12)) {
        check(&case, usize::MAX)?;
    }

    /// Mostly broken maps: refused, naming the right entry and rule.
    #[test]
    fn broken_maps_are_refused_at_the_first_bad_entry(
        case in case(0..40, 0..40, any::<bool>(), 1),
    ) {
        check(&case, usize::MAX)?;
    }
}

/// A valid EFI map, the same shuffled, and a valid Limine map.
fn shuffled_efi_map() -> impl Strategy<
    Value = (
        Vec<MemoryDescriptor>,
        Vec<MemoryDescriptor>,
        Vec<LimineEntry>,
    ),
> {
    span()
        .prop_flat_map(|span| (efi_map(0..60, span), limine_map(0..30, span)))
        .prop_flat_map(|(efi, limine)| (Just(efi.clone()), Just(efi).prop_shuffle(), Just(limine)))
}

/// A valid EFI map with one more descriptor, starting inside one of the
/// others, then shuffled; and a valid Limine map.
fn overlapping_efi_map() -> impl Strategy<Value = (Vec<MemoryDescriptor>, Vec<LimineEntry>)> {
    let planted = (
        any::<Index>(),
        any::<u64>(),
        1..16u64,
        0..EFI_TYPES.len(),
        0..ATTRS.len(),
    );
    span()
        .prop_flat_map(move |span| {
            let efi =
                efi_map(2..60, span).prop_filter("a descriptor to overlap", |d| !d.is_empty());
            (efi, planted.clone(), limine_map(0..30, span))
        })
        .prop_flat_map(|(mut efi, (i, offset, pages, ty, att), limine)| {
            let host = efi[i.index(efi.len())];
            efi.push(MemoryDescriptor {
                ty: MemoryType(EFI_TYPES[ty]),
                phys_start: host.phys_start + offset % host.page_count * PAGE,
                virt_start: 0,
                page_count: pages,
                att: MemoryAttribute::from_bits_retain(ATTRS[att]),
            });
            (Just(efi).prop_shuffle(), Just(limine))
        })
}

/// Which step refused a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Parse(MapError),
    Build(MapError),
}

/// Parses `descs` (with MAXPHYADDR large enough for any generated map) and
/// builds them with `limine`; on a build error, checks that the map was
/// left empty.
fn build_efi(
    descs: &[MemoryDescriptor],
    limine: &[LimineEntry],
) -> Result<(bool, Summary, Box<MemoryMap>), Refused> {
    let bytes = encode(descs, 48);
    let efi = EfiMemoryMap::parse(&bytes, 48, 1, 52).map_err(Refused::Parse)?;
    let limine = LimineMap::parse(limine, 52).expect("a valid Limine map");
    let mut scratch = Box::new(Scratch::new());
    let mut map = Box::new(MemoryMap::new());
    match build(Some(&efi), &limine, &mut scratch, &mut map) {
        Ok(summary) => Ok((efi.is_sorted(), summary, map)),
        Err(err) => {
            assert!(map.regions().is_empty(), "half-built map after {err}");
            Err(Refused::Build(err))
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// The order of the EFI map changes nothing but the summary's word on it.
    #[test]
    fn shuffling_a_valid_efi_map_changes_nothing((sorted, shuffled, limine) in shuffled_efi_map()) {
        let (was_sorted, summary, map) = build_efi(&sorted, &limine).unwrap();
        let (is_sorted, shuffled_summary, shuffled_map) = build_efi(&shuffled, &limine).unwrap();
        prop_assert!(was_sorted && summary.efi_sorted);
        let in_order = shuffled.is_sorted_by_key(|d| d.phys_start);
        prop_assert_eq!(is_sorted, in_order);
        prop_assert_eq!(shuffled_summary, Summary { efi_sorted: in_order, ..summary });
        prop_assert_eq!(shuffled_map.regions(), map.regions());
    }

    /// Overlapping EFI descriptors are refused whatever their order: by the
    /// parser while the map is sorted up to them, by build after, with the
    /// same error, naming two descriptors that do overlap.
    #[test]
    fn overlapping_efi_descriptors_are_refused_in_any_order(
        (descs, limine) in overlapping_efi_map(),
    ) {
        let refused = match build_efi(&descs, &limine) {
            Ok(_) => return Err(TestCaseError::fail("overlap accepted")),
            Err(refused) => refused,
        };
        // Against the model: the parser's error for the first descriptor
        // overlapping its sorted predecessors, else build's.
        let want = match efi_first_invalid(&descs, 1 << 52) {
            Some((i, "Overlap")) => Refused::Parse(overlap_error(&descs, i, i - 1)),
            Some(rule) => return Err(TestCaseError::fail(format!("the model says {rule:?}"))),
            None => Refused::Build(efi_overlap(&descs).expect("an overlap")),
        };
        prop_assert_eq!(refused, want);
        let (Refused::Parse(err) | Refused::Build(err)) = refused;
        let MapError::Overlap { entry, previous, previous_end } = err else {
            return Err(TestCaseError::fail(format!("unexpected error {err}")));
        };
        // And without it: two descriptors, in map order, that overlap.
        prop_assert!(previous < entry.index);
        let (d, p) = (&descs[entry.index], &descs[previous]);
        prop_assert!(overlap(
            (d.phys_start as u128, efi_end(d)),
            (p.phys_start as u128, efi_end(p))
        ));
        prop_assert_eq!(previous_end as u128, efi_end(p));
        prop_assert_eq!(
            err.to_string(),
            format!(
                "EFI memory map entry {} (type {}, {:#x}-{:#x}): overlaps entry {} (ends at {:#x})",
                entry.index,
                d.ty.0,
                d.phys_start,
                efi_end(d),
                previous,
                efi_end(p)
            )
        );
    }
}

proptest! {
    #![proptest_config(config(16))]

    /// More than 1024 Limine entries alone.
    #[test]
    fn large_bios_maps_match_the_model(case in case(0..1, 1100..1600, Just(false), 12)) {
        check(&case, 512)?;
    }

    /// More than 1024 EFI descriptors under Limine's overlays.
    #[test]
    fn large_uefi_maps_match_the_model(case in case(1400..1900, 0..300, Just(true), 12)) {
        check(&case, 512)?;
    }
}

//! The memory-map checks: parsing and normalising hostile maps, held to a
//! naive model of the normalised map ([`pieces`], [`model_at`]) and to the
//! same map whatever the EFI descriptors' order.

use super::*;

pub struct Built<'a> {
    /// The parsed EFI map, if it parsed.
    pub efi: Option<EfiMemoryMap<'a>>,
    /// The normalised map, if everything parsed and built.
    pub map: Option<Box<MemoryMap>>,
}

fn phys_limit(bits: u8) -> Option<u64> {
    (32..=52).contains(&bits).then(|| 1u64 << bits)
}

fn efi_entry_end(start: u64, pages: u64) -> u128 {
    u128::from(start) + u128::from(pages) * u128::from(PAGE)
}

/// Whether an error names a real entry of its map, with its real fields.
fn check_entry_info(
    info: &memmap::EntryInfo,
    efi: Option<&(Vec<u8>, usize, u32)>,
    limine: &[LimineEntry],
) {
    match info.map {
        Source::Limine => {
            let e = limine.get(info.index).expect("the entry exists");
            assert_eq!((info.ty, info.start), (e.ty, e.base));
            assert_eq!(info.end, u128::from(e.base) + u128::from(e.length));
        }
        Source::Efi => {
            let (bytes, size, _) = efi.expect("an EFI error needs an EFI map");
            let raw = &bytes[info.index * size..][..*size];
            let d = efi::descriptor(raw);
            assert_eq!((info.ty, info.start), (u64::from(d.ty.0), d.phys_start));
            assert_eq!(info.end, efi_entry_end(d.phys_start, d.page_count));
        }
    }
}

/// Checks a validated EFI map against the bytes it came from.
fn check_efi_map(map: &EfiMemoryMap<'_>, bytes: &[u8], desc_size: usize, limit: u64) {
    assert_eq!(map.desc_size(), desc_size);
    assert!(desc_size >= 40 && desc_size.is_multiple_of(8));
    assert_eq!(map.len() * desc_size, bytes.len());
    assert!(map.len() <= memmap::MAX_EFI_ENTRIES);
    assert_eq!(map.iter().len(), map.len());
    let mut starts_sorted = true;
    let mut prev: Option<(u64, u64)> = None;
    for (i, e) in map.iter().enumerate() {
        assert_eq!(e.index(), i);
        assert_eq!(e.raw(), &bytes[i * desc_size..][..desc_size]);
        assert_eq!(*e.desc(), efi::descriptor(e.raw()));
        let (start, end) = (e.start(), e.end());
        assert!(start.is_multiple_of(PAGE), "{start:#x} is not page-aligned");
        assert!(
            start < end && end <= limit,
            "{start:#x}-{end:#x} beyond {limit:#x}"
        );
        assert_eq!(u128::from(end), efi_entry_end(start, e.desc().page_count));
        assert_eq!(e.kind(), Kind::from_efi_desc(e.desc().ty, e.desc().att));
        if let Some((prev_start, prev_end)) = prev {
            if start < prev_start {
                starts_sorted = false;
            }
            if starts_sorted {
                // The parser refuses overlaps while the map is sorted.
                assert!(prev_end <= start, "sorted descriptors overlap");
            }
        }
        prev = Some((start, end));
    }
    assert_eq!(map.is_sorted(), starts_sorted);
}

/// Checks a validated Limine map against the protocol's promises.
fn check_limine_map(map: &LimineMap<'_>, entries: &[LimineEntry], limit: u64) {
    assert_eq!(map.entries(), entries);
    assert!(entries.len() <= memmap::MAX_LIMINE_ENTRIES);
    let usable = |e: &LimineEntry| {
        matches!(
            e.ty,
            memmap::limine::USABLE | memmap::limine::BOOTLOADER_RECLAIMABLE
        )
    };
    // The furthest end of the entries before each one.
    let mut furthest = 0u64;
    for (i, e) in entries.iter().enumerate() {
        let end = e.end().expect("validated entries do not overflow");
        assert!(e.length > 0 && end <= limit);
        if i > 0 {
            assert!(entries[i - 1].base <= e.base, "Limine entries out of order");
        }
        if usable(e) {
            assert!(e.base.is_multiple_of(PAGE) && e.length.is_multiple_of(PAGE));
            assert!(
                furthest <= e.base,
                "usable entry {i} overlaps an earlier one"
            );
            if let Some(next) = entries.get(i + 1) {
                assert!(end <= next.base, "usable entry {i} overlaps the next one");
            }
        }
        furthest = furthest.max(end);
    }
}

/// One input range as `build` sees it: rounded, with its kind, and for EFI
/// descriptors their attributes.
#[derive(Debug, Clone, Copy)]
struct Piece {
    start: u64,
    end: u64,
    kind: Kind,
    attr: Option<MemoryAttribute>,
}

/// Limine types laid over the EFI map on UEFI boots.
fn overlaid(ty: u64) -> bool {
    matches!(
        ty,
        memmap::limine::BOOTLOADER_RECLAIMABLE
            | memmap::limine::EXECUTABLE_AND_MODULES
            | memmap::limine::FRAMEBUFFER
    )
}

fn pieces(efi: Option<&EfiMemoryMap<'_>>, limine: &[LimineEntry]) -> Vec<Piece> {
    let mut out = Vec::new();
    if let Some(map) = efi {
        for e in map.iter() {
            out.push(Piece {
                start: e.start(),
                end: e.end(),
                kind: e.kind(),
                attr: Some(e.desc().att),
            });
        }
    }
    for e in limine {
        if efi.is_some() && !overlaid(e.ty) {
            continue;
        }
        let end = e.base + e.length;
        if let Some((start, end)) = memmap::round_to_pages(e.kind(), e.base, end) {
            out.push(Piece {
                start,
                end,
                kind: e.kind(),
                attr: None,
            });
        }
    }
    out
}

/// What the normalised map must say about page `at`, by looking at every
/// input: the greatest kind covering it and the attributes of the EFI
/// descriptor covering it.
fn model_at(pieces: &[Piece], at: u64) -> Option<(Kind, Option<MemoryAttribute>)> {
    let mut kind: Option<Kind> = None;
    let mut attr = None;
    for p in pieces.iter().filter(|p| p.start <= at && at < p.end) {
        kind = kind.max(Some(p.kind));
        if p.attr.is_some() {
            attr = p.attr;
        }
    }
    kind.map(|k| (k, attr))
}

/// The most probes [`check_output`] sends to the model (each costs a pass
/// over the inputs).
const MODEL_PROBES: usize = 256;

/// Checks a normalised map: sorted, disjoint, page-aligned, within
/// MAXPHYADDR, neighbours merged, and what the inputs say at a sample of
/// addresses.
fn check_output(out: &MemoryMap, pieces: &[Piece], limit: u64) {
    let regions = out.regions();
    assert!(regions.len() <= memmap::MAX_REGIONS);
    for (i, r) in regions.iter().enumerate() {
        assert!(r.start < r.end, "empty region {r:?}");
        assert!(r.start.is_multiple_of(PAGE) && r.end.is_multiple_of(PAGE));
        assert!(r.end <= limit, "{r:?} beyond MAXPHYADDR {limit:#x}");
        if let Some(next) = regions.get(i + 1) {
            assert!(r.end <= next.start, "{r:?} and {next:?} out of order");
            assert!(
                r.end < next.start || (r.kind, r.attr) != (next.kind, next.attr),
                "{r:?} and {next:?} should be one region"
            );
        }
        assert_eq!(out.region_at(PhysAddr::new(r.start)), Some(r));
        assert_eq!(out.region_at(PhysAddr::new(r.end - 1)), Some(r));
    }
    // Every input range is covered by regions at least as restrictive.
    let total: u64 = regions.iter().map(|r| r.size()).sum();
    assert_eq!(Kind::ALL.iter().map(|&k| out.bytes(k)).sum::<u64>(), total);
    let ram: u64 = regions
        .iter()
        .filter(|r| r.kind.is_ram())
        .map(|r| r.size())
        .sum();
    assert_eq!(out.ram_bytes(), ram);
    let runs: Vec<_> = out.ram_runs().collect();
    assert_eq!(runs.iter().map(|r| r.end - r.start).sum::<u64>(), ram);
    for pair in runs.windows(2) {
        assert!(pair[0].end < pair[1].start, "RAM runs {pair:?} touch");
    }
    assert_eq!(out.ram_end(), runs.last().map_or(0, |r| r.end));
    assert!(out.efi_runtime().all(|r| r.is_efi_runtime()));
    let _ = format!("{out}{out:?}");

    // The model, at region edges, hole starts and input edges; a sample
    // of them when there are many.
    let mut probes: Vec<u64> = Vec::new();
    for r in regions {
        probes.extend([r.start, r.end - PAGE, r.end]);
    }
    for p in pieces {
        probes.extend([p.start, p.end - PAGE]);
    }
    probes.retain(|&p| p < limit);
    let stride = probes.len().div_ceil(MODEL_PROBES).max(1);
    for &at in probes.iter().step_by(stride) {
        let actual = out.region_at(PhysAddr::new(at)).map(|r| (r.kind, r.attr));
        assert_eq!(actual, model_at(pieces, at), "at {at:#x}");
    }
}

/// Whether any two EFI descriptors overlap, and if so a pair of them.
fn efi_overlap(map: &EfiMemoryMap<'_>) -> Option<(usize, usize)> {
    let mut ranges: Vec<_> = map
        .iter()
        .map(|e| (e.start(), e.end(), e.index()))
        .collect();
    ranges.sort_unstable();
    ranges
        .windows(2)
        .find(|w| w[1].0 < w[0].1)
        .map(|w| (w[0].2, w[1].2))
}

/// Parses and builds `maps`, checking every step. Returns what parsed.
pub fn check_maps(maps: &Maps) -> Built<'_> {
    let limit = phys_limit(maps.bits);
    let efi = maps.efi.as_ref().map(|(bytes, size, version)| {
        let parsed = EfiMemoryMap::parse(bytes, *size, *version, maps.bits);
        match (&parsed, limit) {
            (Ok(map), Some(limit)) => check_efi_map(map, bytes, *size, limit),
            (Ok(_), None) => panic!("an EFI map parsed with MAXPHYADDR {}", maps.bits),
            (Err(err), _) => check_map_error(err, maps),
        }
        parsed
    });
    let limine = LimineMap::parse(&maps.limine, maps.bits);
    match (&limine, limit) {
        (Ok(map), Some(limit)) => check_limine_map(map, &maps.limine, limit),
        (Ok(_), None) => panic!("a Limine map parsed with MAXPHYADDR {}", maps.bits),
        (Err(err), _) => check_map_error(err, maps),
    }
    let (efi, limine, limit) = match (efi, limine, limit) {
        (Some(Err(_)), _, _) | (_, Err(_), _) | (_, _, None) => {
            return Built {
                efi: None,
                map: None,
            };
        }
        (Some(Ok(efi)), Ok(limine), Some(limit)) => (Some(efi), limine, limit),
        (None, Ok(limine), Some(limit)) => (None, limine, limit),
    };

    let mut scratch = Box::new(Scratch::new());
    let mut out = Box::new(MemoryMap::new());
    let result = memmap::build(efi.as_ref(), &limine, &mut scratch, &mut out);
    let overlap = efi.as_ref().and_then(efi_overlap);
    let map = match result {
        Ok(summary) => {
            assert_eq!(overlap, None, "overlapping EFI descriptors were accepted");
            assert_eq!(summary.regions, out.regions().len());
            assert_eq!(summary.efi_entries, efi.as_ref().map_or(0, |m| m.len()));
            assert_eq!(
                summary.efi_sorted,
                efi.as_ref().is_none_or(|m| m.is_sorted())
            );
            let overlaid = maps
                .limine
                .iter()
                .filter(|e| efi.is_none() || overlaid(e.ty))
                .count();
            assert_eq!(summary.limine_entries, overlaid);
            let _ = summary.to_string();
            check_output(&out, &pieces(efi.as_ref(), &maps.limine), limit);
            Some(out)
        }
        Err(err) => {
            assert!(out.regions().is_empty(), "a failed build left regions");
            match err {
                MapError::Overlap {
                    entry,
                    previous,
                    previous_end,
                } => {
                    let efi = efi.as_ref().expect("only EFI descriptors may not overlap");
                    assert!(
                        !efi.is_sorted(),
                        "the parser misses overlaps in a sorted map"
                    );
                    assert_eq!(entry.map, Source::Efi);
                    assert!(overlap.is_some());
                    assert!(previous < entry.index);
                    let (a, b) = (efi.get(previous).unwrap(), efi.get(entry.index).unwrap());
                    assert_eq!(a.end(), previous_end);
                    assert!(a.start() < b.end() && b.start() < a.end(), "{err}");
                    check_entry_info(&entry, maps.efi.as_ref(), &maps.limine);
                }
                MapError::OutputFull { at } => {
                    assert_eq!(overlap, None);
                    assert!(at < limit);
                }
                other => panic!("build failed with {other:?}, which parsing should catch"),
            }
            let _ = err.to_string();
            None
        }
    };
    if let (Some(efi), Some((_, size, version))) = (efi.as_ref(), maps.efi.as_ref()) {
        check_reversed(efi, *size, *version, maps, map.as_deref());
    }
    Built { efi, map }
}

/// Checks that the EFI map in reverse order builds the same map (or fails
/// the same way): the order of the descriptors must not matter.
fn check_reversed(
    efi: &EfiMemoryMap<'_>,
    desc_size: usize,
    version: u32,
    maps: &Maps,
    expected: Option<&MemoryMap>,
) {
    if efi.len() < 2 {
        return;
    }
    let mut bytes = Vec::with_capacity(efi.len() * desc_size);
    for e in efi.iter().collect::<Vec<_>>().into_iter().rev() {
        bytes.extend_from_slice(e.raw());
    }
    let limine = LimineMap::parse(&maps.limine, maps.bits).expect("parsed before");
    let reversed = match EfiMemoryMap::parse(&bytes, desc_size, version, maps.bits) {
        Ok(map) => map,
        Err(MapError::Overlap { .. }) => {
            assert!(expected.is_none(), "reversing the map made an overlap");
            return;
        }
        Err(err) => panic!("the map reversed fails with {err}"),
    };
    let mut scratch = Box::new(Scratch::new());
    let mut out = Box::new(MemoryMap::new());
    match memmap::build(Some(&reversed), &limine, &mut scratch, &mut out) {
        Ok(_) => {
            let expected = expected.expect("only the reversed map builds");
            assert_eq!(
                out.regions(),
                expected.regions(),
                "the order changes the map"
            );
        }
        Err(err) => {
            assert!(expected.is_none(), "only the reversed map fails: {err}");
        }
    }
}

/// Checks that a parse error is one the parsers may give, and names real
/// entries.
fn check_map_error(err: &MapError, maps: &Maps) {
    let _ = err.to_string();
    match err {
        MapError::MaxPhysBits(bits) => {
            assert_eq!(*bits, maps.bits);
            assert!(phys_limit(*bits).is_none());
        }
        MapError::DescSizeTooSmall(size) => assert!(*size < 40),
        MapError::DescSizeUnaligned(size) => assert!(!size.is_multiple_of(8)),
        MapError::UnsupportedVersion(v) => assert_ne!(*v, 1),
        MapError::Truncated { len, desc_size } => assert!(!len.is_multiple_of(*desc_size)),
        MapError::TooManyEntries { count, max, .. } => assert!(count > max),
        MapError::ZeroLength(info) | MapError::Misaligned(info) | MapError::Overflow(info) => {
            check_entry_info(info, maps.efi.as_ref(), &maps.limine);
        }
        MapError::BeyondMaxPhys { entry, .. } => {
            check_entry_info(entry, maps.efi.as_ref(), &maps.limine);
            assert!(entry.end > u128::from(phys_limit(maps.bits).unwrap()));
        }
        MapError::Unsorted { entry, .. } => {
            assert_eq!(entry.map, Source::Limine);
            check_entry_info(entry, maps.efi.as_ref(), &maps.limine);
        }
        MapError::Overlap {
            entry, previous, ..
        } => {
            assert!(*previous < entry.index);
            check_entry_info(entry, maps.efi.as_ref(), &maps.limine);
        }
        MapError::OutputFull { .. } => panic!("parsing never fills the output"),
    }
}

/// How far an input got: the last stage that accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reached {
    /// A parser refused it.
    Refused,
    /// Both maps parsed; `build` refused them.
    Parsed,
    /// The normalised map was built.
    Built,
    /// Runtime regions were placed and the window made.
    Window,
    /// A plan was made.
    Planned,
    /// The plan was built into simulated memory and verified.
    Verified,
}

impl Built<'_> {
    pub(super) fn reached(&self) -> Reached {
        match (&self.efi, &self.map) {
            (_, Some(_)) => Reached::Built,
            (Some(_), None) => Reached::Parsed,
            (None, None) => Reached::Refused,
        }
    }
}

/// Fuzz target `memmap`: raw bytes ([`decode_raw`]).
pub fn check_memmap(data: &[u8]) -> Reached {
    let maps = decode_raw(data);
    check_maps(&maps).reached()
}

/// Fuzz target `normalise`: compact records ([`decode_compact`]).
pub fn check_normalise(data: &[u8]) -> Reached {
    let maps = decode_compact(&mut Input::new(data), 52, false);
    check_maps(&maps).reached()
}

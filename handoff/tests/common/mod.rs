//! What hostile input may and may not do to `handoff`, checked the same way
//! by the fuzz targets (`fuzz/fuzz_targets/*.rs`, which include this file
//! with `#[path]`) and by the replay and property tests
//! (`tests/hostile_input.rs`), so that a corpus file means the same thing
//! to both.
//!
//! Each `check_*` function decodes one input format from arbitrary bytes
//! (short inputs read as zeros, so every byte string is a valid input),
//! runs the code under test and panics if an invariant breaks:
//!
//! * [`check_memmap`]: an EFI map of raw bytes with any `desc_size`,
//!   version and length, and raw Limine entries;
//! * [`check_normalise`]: the same checks on maps built from compact
//!   records, which reach the normaliser far more often than raw bytes;
//! * [`check_efi_runtime`]: runtime-window assignment, the rewritten map
//!   for SetVirtualAddressMap, the attributes table and the window;
//! * [`check_plan`]: the plan for a map that parses, built into
//!   [`handoff::sim`] and held to the plan by [`plan::verify`].
//!
//! The invariants: no panic and no arithmetic overflow (fuzz targets and
//! tests both build with overflow checks), and either a typed error or an
//! output that keeps every promise its documentation makes.

#![allow(
    dead_code,
    reason = "every fuzz target includes this file and uses only its own checks"
)]

use std::vec::Vec;

use handoff::efi::{self, Access, AttributesTable, EfiError, Runtime, Window};
use handoff::layout::Layout;
use handoff::memmap::{
    self, EfiEntry, EfiMemoryMap, Kind, LimineEntry, LimineMap, MapError, MemoryMap, Scratch,
    Source,
};
use handoff::mtrr::{
    MemType, MtrrRegisters, Mtrrs, PageKind, Pat, VariableRangeMsrs, effective_type,
};
use handoff::paging::{BuildError, Builder, Mapping, PageSize};
use handoff::plan::{self, CpuCaps, Inputs, KernelImage, Plan, PlanError};
use handoff::sim::Sim;
use handoff::{Levels, PAGE_SIZE};
use uefi_raw::table::boot::MemoryAttribute;
use x86_64::PhysAddr;
use x86_64::structures::paging::PageTableFlags;

const PAGE: u64 = PAGE_SIZE;
const TWO_MIB: u64 = 2 << 20;

// ---------------------------------------------------------------------------
// Reading inputs.

/// Arbitrary bytes read as little-endian fields; past the end every field
/// reads as zero, so no input is too short.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `data` from its start.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let n = N.min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        out
    }

    /// One byte.
    pub fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }

    /// Two bytes.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }

    /// Four bytes.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }

    /// Eight bytes.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }

    /// The bytes left.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }
}

// ---------------------------------------------------------------------------
// Writing inputs (seeds, structured property tests).

/// One EFI descriptor's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desc {
    /// `Type`.
    pub ty: u32,
    /// `PhysicalStart`.
    pub start: u64,
    /// `NumberOfPages`.
    pub pages: u64,
    /// `Attribute`.
    pub attr: u64,
}

/// `descs` laid out as firmware does, `desc_size` (at least 40) bytes
/// apart, the padding filled with `pad`.
pub fn encode_efi(descs: &[Desc], desc_size: usize, pad: u8) -> Vec<u8> {
    assert!(desc_size >= 40, "a descriptor takes 40 bytes");
    let mut bytes = vec![pad; descs.len() * desc_size];
    for (d, raw) in descs.iter().zip(bytes.chunks_mut(desc_size)) {
        raw[0..4].copy_from_slice(&d.ty.to_le_bytes());
        raw[8..16].copy_from_slice(&d.start.to_le_bytes());
        raw[16..24].copy_from_slice(&0u64.to_le_bytes());
        raw[24..32].copy_from_slice(&d.pages.to_le_bytes());
        raw[32..40].copy_from_slice(&d.attr.to_le_bytes());
    }
    bytes
}

fn limine_from_bytes(raw: &[u8]) -> LimineEntry {
    let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    LimineEntry {
        base: word(0),
        length: word(1),
        ty: word(2),
    }
}

fn limine_to_bytes(e: &LimineEntry, out: &mut Vec<u8>) {
    out.extend_from_slice(&e.base.to_le_bytes());
    out.extend_from_slice(&e.length.to_le_bytes());
    out.extend_from_slice(&e.ty.to_le_bytes());
}

// ---------------------------------------------------------------------------
// The two maps, as the kernel receives them.

/// The inputs of [`memmap::build`], before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maps {
    /// The EFI map's bytes, `desc_size` and descriptor version (UEFI boots).
    pub efi: Option<(Vec<u8>, usize, u32)>,
    /// Limine's entries.
    pub limine: Vec<LimineEntry>,
    /// MAXPHYADDR.
    pub bits: u8,
}

/// Raw format: flags (bit 0: an EFI map; bit 1: sort the Limine entries,
/// so that more maps get through; bit 2: MAXPHYADDR taken as is, else
/// mapped into the valid range), `desc_size` (u16), version (1 unless bit
/// 7 is set), MAXPHYADDR, the Limine entry count (u16) and entries (24
/// bytes each), then the EFI map: every byte left.
pub fn decode_raw(data: &[u8]) -> Maps {
    let mut input = Input::new(data);
    let flags = input.u8();
    let desc_size = usize::from(input.u16());
    let version = input.u8();
    let version = if version & 0x80 == 0 {
        1
    } else {
        u32::from(version & 0x7f)
    };
    let bits = input.u8();
    let bits = if flags & 4 != 0 { bits } else { 32 + bits % 21 };
    let count = usize::from(input.u16()).min(input.len() / 24);
    let mut limine: Vec<_> = input
        .bytes(count * 24)
        .chunks_exact(24)
        .map(limine_from_bytes)
        .collect();
    if flags & 2 != 0 {
        limine.sort_by_key(|e| e.base);
    }
    let efi = (flags & 1 != 0).then(|| (input.rest().to_vec(), desc_size, version));
    Maps { efi, limine, bits }
}

/// The input of [`decode_raw`] that gives `maps` (with the Limine entries
/// kept in their order).
pub fn encode_raw(maps: &Maps) -> Vec<u8> {
    let (efi_flag, desc_size, version) = match &maps.efi {
        Some((_, size, version)) => (1, *size, *version),
        None => (0, 48, 1),
    };
    let mut out = vec![efi_flag | 4];
    out.extend_from_slice(&(desc_size as u16).to_le_bytes());
    out.push(if version == 1 {
        0
    } else {
        0x80 | version as u8
    });
    out.push(maps.bits);
    out.extend_from_slice(&(maps.limine.len() as u16).to_le_bytes());
    for e in &maps.limine {
        limine_to_bytes(e, &mut out);
    }
    if let Some((bytes, _, _)) = &maps.efi {
        out.extend_from_slice(bytes);
    }
    out
}

/// Every defined EFI type, MAX, an OEM, an OS-loader and the largest type.
pub const EFI_TYPES: [u32; 20] = [
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
    u32::MAX,
];

/// EFI_MEMORY_RUNTIME.
pub const RT: u64 = 1 << 63;
/// EFI_MEMORY_XP.
pub const XP: u64 = 0x4000;
/// EFI_MEMORY_RO.
pub const RO: u64 = 0x2_0000;

/// Caching attribute sets: WB|WT|WC|UC, UC, WB, WT, WC, none, and two with
/// permissions.
const CACHE_ATTRS: [u64; 8] = [0xf, 0x1, 0x8, 0x4, 0x2, 0x0, 0xf | XP, 0xf | RO];

/// Limine's types, a newer one and a made-up one.
pub const LIMINE_TYPES: [u64; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x1234];

/// The strides the compact format chooses from: the real ones (40, 48 on
/// OVMF, larger for future versions) and two bad ones.
pub const DESC_SIZES: [usize; 8] = [40, 48, 56, 64, 80, 128, 24, 44];

/// The size of a compact record.
pub const RECORD: usize = 10;

/// Compact format: flags (bit 0: an EFI map; bit 1: shuffle it; bit 2:
/// sort the Limine entries), a `desc_size` choice, MAXPHYADDR (`32 +
/// byte % (max_bits - 31)`), a unit (4 KiB shifted by up to 9), the EFI
/// and Limine record counts (u16 each), [`RECORD`]-byte records, and a
/// shuffle seed.
///
/// A record is a step (u32, in units; with bit 31 set it moves back from
/// the previous end, making overlaps and unsorted maps, else it leaves a
/// gap), a length (u32, in units) and two bytes: for EFI the type (index into
/// [`EFI_TYPES`]) and the attributes (bits 0-2 a caching set, bit 7
/// RUNTIME); for Limine the type (index into [`LIMINE_TYPES`]) and
/// unaligned edges (bit 0 on, offsets in the other bits).
pub fn decode_compact(input: &mut Input<'_>, max_bits: u8, force_efi: bool) -> Maps {
    let flags = input.u8() | u8::from(force_efi);
    let desc_size = DESC_SIZES[usize::from(input.u8()) % DESC_SIZES.len()];
    let bits = 32 + input.u8() % (max_bits - 31);
    let unit = PAGE << (input.u8() % 10);
    let efi_count = usize::from(input.u16()).min(input.len() / RECORD);
    let limine_count = usize::from(input.u16());

    let mut at = 0u64;
    let mut descs = Vec::with_capacity(efi_count);
    for _ in 0..efi_count {
        let (start, len) = step(input, unit, &mut at);
        let ty = EFI_TYPES[usize::from(input.u8()) % EFI_TYPES.len()];
        let attr = input.u8();
        let mut bits = CACHE_ATTRS[usize::from(attr & 7)];
        if attr & 0x80 != 0 {
            bits |= RT;
        }
        descs.push(Desc {
            ty,
            start,
            pages: len / PAGE,
            attr: bits,
        });
    }
    let limine_count = limine_count.min(input.len() / RECORD);
    let mut limine = Vec::with_capacity(limine_count);
    at = 0;
    for _ in 0..limine_count {
        let (mut base, mut length) = step(input, unit, &mut at);
        let ty = LIMINE_TYPES[usize::from(input.u8()) % LIMINE_TYPES.len()];
        let edges = input.u8();
        if edges & 1 != 0 {
            base = base.saturating_add(u64::from(edges >> 1 & 7) * 0x200);
            length = length.saturating_sub(u64::from(edges >> 4) * 0x80);
        }
        limine.push(LimineEntry { base, length, ty });
    }
    if flags & 4 != 0 {
        limine.sort_by_key(|e| e.base);
    }
    if flags & 2 != 0 {
        let mut seed = input.u64() | 1;
        for i in (1..descs.len()).rev() {
            // xorshift: deterministic, so a corpus file always means the
            // same map.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            descs.swap(i, (seed % (i as u64 + 1)) as usize);
        }
    }
    let efi = (flags & 1 != 0).then(|| {
        let size = desc_size.max(40);
        let mut bytes = encode_efi(&descs, size, 0xa5);
        // A bad stride reads the same bytes with the wrong step.
        if desc_size < 40 {
            bytes.truncate(bytes.len() / desc_size * desc_size);
        }
        (bytes, desc_size, 1)
    });
    Maps { efi, limine, bits }
}

/// Reads a record's step and length: the range it places, from `at`
/// (the previous record's end), which it moves to the range's end.
fn step(input: &mut Input<'_>, unit: u64, at: &mut u64) -> (u64, u64) {
    let step = input.u32();
    let distance = u64::from(step & 0x7fff_ffff).saturating_mul(unit);
    *at = if step & 0x8000_0000 != 0 {
        at.saturating_sub(distance)
    } else {
        at.saturating_add(distance)
    };
    let len = u64::from(input.u32()).saturating_mul(unit);
    let start = *at;
    *at = at.saturating_add(len);
    (start, len)
}

/// A compact record.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// The step from the previous end, in units (negative: back).
    pub step: i32,
    /// The length in units.
    pub len: u32,
    /// The type index.
    pub ty: u8,
    /// The attribute or edge byte.
    pub extra: u8,
}

/// The compact header and records, for seeds.
#[derive(Debug, Clone)]
pub struct Compact {
    /// The flags byte.
    pub flags: u8,
    /// Index into [`DESC_SIZES`].
    pub desc_size: u8,
    /// MAXPHYADDR minus 32.
    pub bits: u8,
    /// The unit's shift.
    pub unit_shift: u8,
    /// EFI records.
    pub efi: Vec<Record>,
    /// Limine records.
    pub limine: Vec<Record>,
    /// The shuffle seed.
    pub seed: u64,
}

impl Compact {
    /// The bytes [`decode_compact`] reads back.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.flags, self.desc_size, self.bits, self.unit_shift];
        out.extend_from_slice(&(self.efi.len() as u16).to_le_bytes());
        out.extend_from_slice(&(self.limine.len() as u16).to_le_bytes());
        for r in self.efi.iter().chain(&self.limine) {
            let step = if r.step < 0 {
                0x8000_0000 | r.step.unsigned_abs()
            } else {
                r.step as u32
            };
            out.extend_from_slice(&step.to_le_bytes());
            out.extend_from_slice(&r.len.to_le_bytes());
            out.push(r.ty);
            out.push(r.extra);
        }
        if self.flags & 2 != 0 {
            out.extend_from_slice(&self.seed.to_le_bytes());
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Memory maps.

/// The parsed and normalised maps, for the checks that come after.
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
    fn reached(&self) -> Reached {
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

// ---------------------------------------------------------------------------
// EFI runtime services.

/// The PATs the checks choose from: baton's, the reset value (no WC) and
/// one with nothing but UC.
fn pat(choice: u8) -> Pat {
    match choice % 3 {
        0 => Pat::BATON,
        1 => Pat::RESET,
        _ => Pat::new([MemType::Uc; 8]),
    }
}

/// How [`check_runtime`] maps the runtime regions.
#[derive(Debug, Clone, Copy)]
pub struct WindowParams<'a> {
    /// The address-space layout.
    pub layout: &'a Layout,
    /// The attributes table, if the firmware has one.
    pub table: Option<&'a AttributesTable<'a>>,
    /// The PAT the window is mapped under.
    pub pat: &'a Pat,
    /// The MTRRs (the window is cut where the effective type changes).
    pub mtrrs: &'a Mtrrs,
    /// Whether the CPU has NX.
    pub nx: bool,
    /// Whether it has global pages.
    pub global: bool,
    /// How much larger than needed the buffer for the rewritten map is
    /// (negative: smaller).
    pub buffer_slack: i8,
}

/// Checks runtime-region assignment, the rewritten map and the window for
/// a parsed EFI map. `disjoint`: `build` accepted the map, so its
/// descriptors do not overlap (which the rewritten map relies on).
pub fn check_runtime(
    efi: &EfiMemoryMap<'_>,
    disjoint: bool,
    params: &WindowParams<'_>,
) -> Option<(Box<Runtime>, Box<Window>)> {
    let WindowParams {
        layout,
        table,
        pat,
        mtrrs,
        nx,
        global,
        buffer_slack,
    } = *params;
    let runtime_descs: Vec<_> = efi.iter().filter(|e| e.is_runtime()).collect();
    let mut rt = Box::new(Runtime::new());
    if let Err(err) = rt.assign(efi, layout) {
        let _ = err.to_string();
        match err {
            EfiError::TooManyRegions => assert!(runtime_descs.len() > efi::MAX_REGIONS),
            EfiError::WindowOverflow { .. } => {
                // Placing every region 2 MiB apart would need more room than
                // the window has, or one region alone does not fit.
                let worst: u128 = runtime_descs
                    .iter()
                    .map(|e| u128::from(e.end() - e.start()) + u128::from(TWO_MIB))
                    .sum();
                let room = u128::from(layout.efi_top_down_start() - layout.efi_window_start());
                assert!(worst > room, "{err} with {worst:#x} bytes at most");
            }
            other => panic!("assign failed with {other:?}"),
        }
        return None;
    }
    let regions = rt.regions();
    for (i, r) in regions.iter().enumerate() {
        assert!(r.len > 0 && r.phys.is_multiple_of(PAGE) && r.len.is_multiple_of(PAGE));
        assert_eq!(r.virt % TWO_MIB, r.phys % TWO_MIB, "{r:x?}");
        assert!(
            r.virt >= layout.efi_window_start(),
            "{r:x?} below the window"
        );
        assert!(
            r.virt + r.len <= layout.efi_top_down_start(),
            "{r:x?} above -4 GiB"
        );
        assert!(r.attr.contains(MemoryAttribute::RUNTIME));
        if let Some(next) = regions.get(i + 1) {
            assert!(r.phys <= next.phys);
            if disjoint {
                assert!(r.phys + r.len <= next.phys, "{r:x?} and {next:x?} overlap");
            }
        }
    }
    // Disjoint in the window, whatever the order of the map.
    let mut by_virt: Vec<_> = regions.to_vec();
    by_virt.sort_by_key(|r| r.virt);
    for pair in by_virt.windows(2) {
        assert!(
            pair[0].virt + pair[0].len <= pair[1].virt,
            "{:x?} and {:x?} overlap in the window",
            pair[0],
            pair[1]
        );
    }
    if disjoint {
        // Neighbours in the map (no descriptor between them) merge when
        // they touch with equal type and attributes; nothing else does.
        let mergeable = |a: &EfiEntry<'_>, b: &EfiEntry<'_>| {
            b.index() == a.index() + 1
                && a.end() == b.start()
                && (a.desc().ty, a.desc().att) == (b.desc().ty, b.desc().att)
        };
        let runs = runtime_descs.len()
            - runtime_descs
                .windows(2)
                .filter(|w| mergeable(&w[0], &w[1]))
                .count();
        assert_eq!(regions.len(), runs, "runtime regions merged wrongly");
        // Later descriptors get higher window addresses (the map is walked
        // in reverse, top-down).
        let virt = |e: &EfiEntry<'_>| {
            rt.region_of(e.start())
                .and_then(|r| r.virt_of(e.start()))
                .expect("every descriptor has a region")
        };
        for w in runtime_descs.windows(2) {
            assert!(
                virt(&w[0]) < virt(&w[1]),
                "{:x?} placed above the later {:x?}",
                w[0].desc(),
                w[1].desc()
            );
        }
        let described: u64 = runtime_descs.iter().map(|e| e.end() - e.start()).sum();
        assert_eq!(regions.iter().map(|r| r.len).sum::<u64>(), described);
        for e in &runtime_descs {
            let r = rt
                .region_of(e.start())
                .expect("every descriptor has a region");
            assert!(r.phys <= e.start() && e.end() <= r.phys + r.len);
            assert_eq!((r.ty, r.attr), (e.desc().ty, e.desc().att));
        }
        check_rewrite(efi, &rt, &runtime_descs, buffer_slack);
    } else {
        // Overlapping descriptors (build refuses the map, so the kernel
        // never gets here): no promise about the result, but no panic
        // either.
        let mut buffer = vec![0; runtime_descs.len() * efi.desc_size()];
        assert_eq!(efi::rewrite_map(efi, &rt, &mut buffer), Ok(buffer.len()));
    }

    let mut window = Box::new(Window::new());
    match window.make(&rt, table, pat, mtrrs, nx, global) {
        Ok(()) => check_window(&window, &rt, disjoint, table, layout, nx, global),
        Err(err) => {
            let _ = err.to_string();
            match err {
                EfiError::TooManyMappings | EfiError::BadAttributesTable(_) => {
                    assert!(table.is_some() || err == EfiError::TooManyMappings)
                }
                EfiError::NoPatEntry(ty) => assert!(pat.index_for(ty).is_none_or(|i| i >= 4)),
                other => panic!("Window::make failed with {other:?}"),
            }
            return None;
        }
    }

    // SetVirtualAddressMap's one-to-one mappings: the regions and the
    // extra ranges, physical equal to virtual.
    let extra = [(0, 1), (0x1234_5678, 3 * PAGE)];
    let identity: Vec<Mapping> = efi::identity_mappings(&rt, &extra, pat, nx).collect();
    assert_eq!(identity.len(), regions.len() + extra.len());
    for (m, r) in identity.iter().zip(regions) {
        assert_eq!((m.virt, m.phys.as_u64(), m.len), (r.phys, r.phys, r.len));
        // Regions beyond the lower half (128 TiB with 4-level paging)
        // cannot be mapped one-to-one: the builder refuses them.
        if r.phys + r.len <= layout.lower_half_end() {
            assert_eq!(m.check(layout.levels()), Ok(()));
        } else {
            assert!(matches!(
                m.check(layout.levels()),
                Err(BuildError::NonCanonical { .. })
            ));
        }
    }
    Some((rt, window))
}

/// Checks the map for SetVirtualAddressMap, into buffers just large
/// enough, too small and larger.
fn check_rewrite(
    efi: &EfiMemoryMap<'_>,
    rt: &Runtime,
    runtime_descs: &[memmap::EfiEntry<'_>],
    slack: i8,
) {
    let stride = efi.desc_size();
    let needed = runtime_descs.len() * stride;
    let size = needed.saturating_add_signed(isize::from(slack));
    let mut buffer = vec![0x5a; size];
    match efi::rewrite_map(efi, rt, &mut buffer) {
        Ok(written) => {
            assert!(size >= needed);
            assert_eq!(written, needed);
            for (slot, e) in buffer.chunks_exact(stride).zip(runtime_descs) {
                let virt = u64::from_le_bytes(slot[16..24].try_into().unwrap());
                let r = rt.region_of(e.start()).unwrap();
                assert_eq!(virt, r.virt + (e.start() - r.phys));
                assert_eq!(&slot[..16], &e.raw()[..16]);
                assert_eq!(&slot[24..], &e.raw()[24..]);
            }
            assert!(buffer[needed..].iter().all(|&b| b == 0x5a));
        }
        Err(err) => {
            assert_eq!(err, EfiError::MapBufferTooSmall { needed });
            assert!(size < needed);
        }
    }
}

/// Checks the window: ascending, disjoint, covering every region exactly,
/// each piece where its region is, with its region's caching, never
/// writable and executable.
fn check_window(
    window: &Window,
    rt: &Runtime,
    disjoint: bool,
    table: Option<&AttributesTable<'_>>,
    layout: &Layout,
    nx: bool,
    global: bool,
) {
    assert_eq!(window.refined, table.is_some());
    let mappings = window.mappings();
    assert!(mappings.len() <= efi::MAX_MAPPINGS);
    let mut covered = 0u64;
    for (i, w) in mappings.iter().enumerate() {
        let m = &w.mapping;
        assert_eq!(m.check(layout.levels()), Ok(()), "{w:x?}");
        assert_eq!(m.max_page, PageSize::Size2M);
        if let Some(next) = mappings.get(i + 1) {
            assert!(m.virt + m.len <= next.mapping.virt, "{w:x?} and {next:x?}");
        }
        // Pieces of touching regions may merge: walk the regions under it.
        let phys = m.phys.as_u64();
        let mut at = phys;
        while disjoint && at < phys + m.len {
            let r = rt.region_of(at).expect("a window piece lies in regions");
            assert_eq!(Some(m.virt + (at - phys)), r.virt_of(at), "{w:x?}");
            assert_eq!(w.mem_type, r.mem_type());
            at = r.phys + r.len;
        }
        let flags = m.flags;
        assert!(flags.contains(w.access.flags(nx)));
        let writable = flags.contains(PageTableFlags::WRITABLE);
        let executable = !flags.contains(PageTableFlags::NO_EXECUTE);
        if nx {
            assert!(!(writable && executable), "{w:x?} is W+X");
        } else {
            assert!(!flags.contains(PageTableFlags::NO_EXECUTE));
        }
        assert_eq!(flags.contains(PageTableFlags::GLOBAL), global);
        // The access the firmware asks for at its first and last page:
        // RO drops write, XP execute, neither leaves the region's default.
        for p in [phys, phys + m.len - PAGE].into_iter().filter(|_| disjoint) {
            let r = rt.region_of(p).expect("checked above");
            let entry = table.and_then(|t| t.iter().find(|a| a.phys <= p && p - a.phys < a.len));
            let expected = match entry.map(|a| a.attr) {
                Some(attr)
                    if attr.intersects(
                        MemoryAttribute::READ_ONLY | MemoryAttribute::EXECUTE_PROTECT,
                    ) =>
                {
                    match (
                        attr.contains(MemoryAttribute::READ_ONLY),
                        attr.contains(MemoryAttribute::EXECUTE_PROTECT),
                    ) {
                        (true, true) => Access::ReadOnly,
                        (true, false) => Access::ReadExecute,
                        _ => Access::ReadWrite,
                    }
                }
                _ if r.is_code() => Access::ReadExecute,
                _ => Access::ReadWrite,
            };
            assert_eq!(w.access, expected, "{w:x?} at {p:#x}");
        }
        covered += m.len;
    }
    assert_eq!(covered, rt.regions().iter().map(|r| r.len).sum::<u64>());
}

/// Checks a parsed attributes table against its bytes. `strict`: also
/// the invariant that open bug attributes-table-length-saturates breaks.
fn check_table(bytes: &[u8], strict: bool) -> Option<AttributesTable<'_>> {
    let header = AttributesTable::header(bytes);
    match AttributesTable::parse(bytes) {
        Ok(table) => {
            let (count, desc_size) = header.expect("the header of a table that parses");
            assert_eq!(table.len(), count);
            assert_eq!(table.is_empty(), count == 0);
            assert!(count <= efi::MAX_MAPPINGS && desc_size >= 40);
            assert!(bytes.len() >= efi::MAT_HEADER_SIZE + count * desc_size);
            assert_eq!(table.iter().count(), count);
            for (i, a) in table.iter().enumerate() {
                assert!(a.len > 0 && a.phys.is_multiple_of(PAGE));
                assert!(a.phys.checked_add(a.len).is_some());
                // NumberOfPages at offset 24 of the entry.
                let at = efi::MAT_HEADER_SIZE + i * desc_size + 24;
                let pages = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
                assert!(
                    !strict || u128::from(a.len) == u128::from(pages) * u128::from(PAGE),
                    "entry {i} of {pages:#x} pages accepted as {:#x} bytes",
                    a.len
                );
            }
            Some(table)
        }
        Err(err) => {
            let _ = err.to_string();
            assert!(matches!(err, EfiError::BadAttributesTable(_)));
            None
        }
    }
}

/// An attributes table from compact entries: per entry a runtime
/// descriptor (index), an offset and a length in pages inside it (or
/// beyond it), and RO/XP bits.
fn compact_table(input: &mut Input<'_>, efi: Option<&EfiMemoryMap<'_>>) -> Vec<u8> {
    let version = 1 + u32::from(input.u8() % 2);
    let desc_size = [40u32, 48, 56][usize::from(input.u8() % 3)];
    let count = usize::from(input.u8());
    let runtime: Vec<_> = efi
        .map(|m| m.iter().filter(|e| e.is_runtime()).collect())
        .unwrap_or_default();
    let mut descs = Vec::new();
    for _ in 0..count.min(input.len() / 4) {
        let which = usize::from(input.u8());
        let offset = u64::from(input.u8()) * PAGE;
        let pages = u64::from(input.u8());
        let bits = input.u8();
        let (start, ty) = match runtime.get(which % runtime.len().max(1)) {
            Some(e) => (e.start(), e.desc().ty.0),
            None => (u64::from(which as u32) << 20, 5),
        };
        descs.push(Desc {
            ty: if bits & 4 != 0 { 6 } else { ty },
            start: start + offset,
            pages,
            attr: RT | if bits & 1 != 0 { RO } else { 0 } | if bits & 2 != 0 { XP } else { 0 },
        });
    }
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&version.to_le_bytes());
    bytes.extend_from_slice(&(descs.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&desc_size.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend(encode_efi(&descs, desc_size as usize, 0));
    bytes
}

/// Fuzz target `efi_runtime`: a header (table mode: none, raw bytes or
/// compact entries; paging mode; PAT; NX and global bits; buffer slack),
/// a compact map, then the attributes table.
pub fn check_efi_runtime(data: &[u8]) -> Reached {
    // No bug is open: the fuzz target is as strict as the replay.
    efi_runtime_checks(data, OPEN_BUGS.is_empty())
}

/// [`check_efi_runtime`], also holding the code to the invariants that
/// open bugs break (see [`OPEN_BUGS`]).
pub fn check_efi_runtime_strict(data: &[u8]) -> Reached {
    efi_runtime_checks(data, true)
}

fn efi_runtime_checks(data: &[u8], strict: bool) -> Reached {
    let mut input = Input::new(data);
    let mode = input.u8();
    let slack = input.u8() as i8;
    let levels = if mode & 4 != 0 {
        Levels::Five
    } else {
        Levels::Four
    };
    let (nx, global) = (mode & 8 != 0, mode & 16 != 0);
    let pat = pat(mode >> 5);
    // This target is about runtime regions: always a UEFI boot.
    let maps = decode_compact(&mut input, 52, true);
    let built = check_maps(&maps);
    let table_bytes = match mode & 3 {
        0 => None,
        1 => Some(input.rest().to_vec()),
        _ => Some(compact_table(&mut input, built.efi.as_ref())),
    };
    let table = table_bytes.as_deref().and_then(|t| check_table(t, strict));
    let Some(efi) = built.efi.as_ref() else {
        return built.reached();
    };
    let no_mtrrs = Mtrrs::absent(52).expect("valid MAXPHYADDR");
    let params = WindowParams {
        layout: Layout::for_levels(levels),
        table: table.as_ref(),
        pat: &pat,
        mtrrs: &no_mtrrs,
        nx,
        global,
        buffer_slack: slack,
    };
    let window = check_runtime(efi, built.map.is_some(), &params);
    match window {
        Some(_) if built.map.is_some() && table_bytes.is_none() == table.is_none() => {
            Reached::Window
        }
        _ => built.reached(),
    }
}

// ---------------------------------------------------------------------------
// The plan.

/// The most leaves [`check_plan`] builds into simulated memory, so that an
/// execution stays in the milliseconds.
pub const MAX_BUILT_LEAVES: u64 = 1 << 16;

/// The largest MAXPHYADDR the plan target uses: 1 TiB of addresses keeps
/// the number of leaves, and so the time per input, bounded.
pub const PLAN_MAX_BITS: u8 = 40;

/// MTRRs from the input: absent, disabled, WB with UC at 3-4 GiB (a PC's
/// PCI hole), or registers from the input (falling back to absent when
/// they do not validate).
fn mtrrs(input: &mut Input<'_>, bits: u8) -> Mtrrs {
    let mode = input.u8();
    let regs = match mode % 4 {
        0 => return Mtrrs::absent(bits).expect("valid MAXPHYADDR"),
        1 => MtrrRegisters::new(0x508, 0, bits),
        2 => {
            let mut regs = MtrrRegisters::new(0x508, 0xc06, bits);
            regs.fixed = [0x0606_0606_0606_0606; 11];
            regs.variable[0] = VariableRangeMsrs {
                base: 0xc000_0000,
                mask: ((1u64 << bits) - 1) & !((1 << 30) - 1) | 1 << 11,
            };
            regs
        }
        _ => {
            let count = input.u8() % 9;
            let def_type = u64::from(input.u16()) & 0xcff;
            let mut regs = MtrrRegisters::new(0x500 | u64::from(count), def_type, bits);
            regs.fixed = [u64::from_le_bytes([input.u8() % 8; 8]); 11];
            for n in 0..usize::from(count) {
                let base = u64::from(input.u32()) << 12;
                let size_log = 12 + input.u8() % 29;
                let ty = u64::from(input.u8() % 8);
                let mask = if mode & 4 != 0 {
                    // Any mask bits: non-contiguous masks are legal.
                    u64::from(input.u32()) << 12
                } else {
                    !((1u64 << size_log) - 1)
                };
                let top = (1u64 << bits) - 1;
                regs.variable[n] = VariableRangeMsrs {
                    base: base & top | ty,
                    mask: mask & top & !0xfff | 1 << 11,
                };
            }
            regs
        }
    };
    match Mtrrs::new(&regs) {
        Ok(mtrrs) => mtrrs,
        Err(err) => {
            let _ = err.to_string();
            Mtrrs::absent(bits).expect("valid MAXPHYADDR")
        }
    }
}

/// Fuzz target `plan`: a header (CPU features, paging mode, PAT, whether to
/// add the EFI window, where the kernel is, MTRRs), a compact map with
/// MAXPHYADDR at most [`PLAN_MAX_BITS`], then, if anything is left, compact
/// attributes-table entries for the window.
pub fn check_plan(data: &[u8]) -> Reached {
    // No bug is open: the fuzz target is as strict as the replay.
    plan_checks(data, OPEN_BUGS.is_empty())
}

/// [`check_plan`], also holding the plan to the invariants that open bugs
/// break (see [`OPEN_BUGS`]).
pub fn check_plan_strict(data: &[u8]) -> Reached {
    plan_checks(data, true)
}

/// Bugs the checks have found that are not fixed yet. The fuzz targets'
/// checks tolerate them so that fuzzing can go on looking for others; the
/// strict checks ([`STRICT_TARGETS`]) do not, and `fuzz/known-bugs/<target>/`
/// holds an input per bug that shows it.
pub const OPEN_BUGS: &[&str] = &[
    // None. Fixed, with their inputs in fuzz/regressions/:
    // - attributes-table-length-saturates: efi::AttributesTable::parse took
    //   an entry's length saturating (2^52 pages at 0 covered everything);
    // - efi-window-large-page-spans-mtrr-types: the EFI window's 2 MiB
    //   pages could cover an MTRR type change, unchecked by plan::verify;
    // - plan-ideal-tables-need-double-capacity: Plan::make counted the
    //   ideal tables in its own mapping array, after the real plan.
];

fn plan_checks(data: &[u8], strict: bool) -> Reached {
    let mut input = Input::new(data);
    let cpu_bits = input.u8();
    let cpu = CpuCaps {
        gb_pages: cpu_bits & 1 != 0,
        nx: cpu_bits & 2 != 0,
        global: cpu_bits & 4 != 0,
    };
    let levels = if cpu_bits & 8 != 0 {
        Levels::Five
    } else {
        Levels::Four
    };
    let with_window = cpu_bits & 16 != 0;
    let pat = pat(cpu_bits >> 5);
    let kernel_phys = u64::from(input.u16()) << 21 | u64::from(input.u8()) << 12;
    let mtrr_input = input.bytes(64);
    let maps = decode_compact(&mut input, PLAN_MAX_BITS, false);
    let built = check_maps(&maps);
    let reached = built.reached();
    let Some(map) = built.map else {
        return reached;
    };
    let mtrrs = mtrrs(&mut Input::new(mtrr_input), maps.bits);
    let layout = Layout::for_levels(levels);
    let kernel = KernelImage::sample(kernel_phys);
    let inputs = Inputs {
        map: &map,
        layout,
        mtrrs: &mtrrs,
        pat: &pat,
        cpu,
        kernel: &kernel,
        framebuffer: None,
    };
    let mut plan = Box::new(Plan::new());
    if let Err(err) = plan.make(&inputs) {
        let _ = err.to_string();
        match err {
            PlanError::NoRam => assert_eq!(map.ram_bytes(), 0),
            PlanError::NoPatEntry(ty) => assert!(pat.index_for(ty).is_none()),
            PlanError::TooManyMappings => {
                // Open bug plan-ideal-tables-need-double-capacity.
                let needed = physmap_segments(&map, &mtrrs, layout.physmap_size()) + 3;
                assert!(
                    !strict || needed > plan::MAX_MAPPINGS,
                    "TooManyMappings for a plan of {needed} mappings"
                );
            }
            PlanError::BadKernelSection { .. } => panic!("{err}"),
        }
        return reached;
    }
    check_plan_mappings(&plan, &inputs);
    let physmap = plan
        .meta()
        .iter()
        .filter(|m| m.purpose == plan::Purpose::Physmap)
        .count();
    assert_eq!(
        physmap,
        physmap_segments(&map, &mtrrs, layout.physmap_size()),
        "the physmap is not cut exactly where the memory type changes"
    );

    // An attributes table from whatever follows the map.
    let table_bytes = (input.len() > 0).then(|| compact_table(&mut input, built.efi.as_ref()));
    let table = table_bytes.as_deref().and_then(|t| check_table(t, strict));
    if with_window
        && let Some(efi) = built.efi.as_ref()
        && let Some((_, window)) = check_runtime(
            efi,
            true,
            &WindowParams {
                layout,
                table: table.as_ref(),
                pat: &pat,
                mtrrs: &mtrrs,
                nx: cpu.nx,
                global: cpu.global,
                buffer_slack: 0,
            },
        )
    {
        let before = plan.mappings().len();
        match plan.add_efi_window(&window) {
            Ok(()) => {
                assert_eq!(plan.mappings().len(), before + window.mappings().len());
            }
            Err(err) => {
                assert_eq!(err, PlanError::TooManyMappings);
                return Reached::Planned;
            }
        }
    }
    if plan.leaves().total() > MAX_BUILT_LEAVES {
        return Reached::Planned;
    }
    build_and_verify(&plan, &inputs, strict);
    Reached::Verified
}

/// The physmap mappings a plan needs: RAM below `limit`, cut where it
/// stops, where the PAT type its EFI attributes call for changes and where
/// the effective memory type changes; nowhere else.
fn physmap_segments(map: &MemoryMap, mtrrs: &Mtrrs, limit: u64) -> usize {
    let mut count = 0;
    // Where the last segment ends, with its PAT and effective types.
    let mut last: Option<(u64, MemType, MemType)> = None;
    for r in map
        .regions()
        .iter()
        .filter(|r| r.kind.is_ram() && r.start < limit)
    {
        let pat = plan::ram_pat_type(r.attr);
        let end = r.end.min(limit);
        let mut ty = effective_type(mtrrs.type_at(r.start), pat);
        if last != Some((r.start, pat, ty)) {
            count += 1;
        }
        let mut at = r.start;
        loop {
            let next = mtrrs.next_boundary(at);
            if next >= end {
                break;
            }
            let next_ty = effective_type(mtrrs.type_at(next), pat);
            if next_ty != ty {
                count += 1;
                ty = next_ty;
            }
            at = next;
        }
        last = Some((end, pat, ty));
    }
    count
}

/// Checks the plan's mappings without building them.
fn check_plan_mappings(plan: &Plan, inputs: &Inputs<'_>) {
    let (map, layout) = (inputs.map, inputs.layout);
    let mappings = plan.mappings();
    assert_eq!(mappings.len(), plan.meta().len());
    assert!(mappings.len() <= plan::MAX_MAPPINGS);
    let mut physmap_bytes = 0;
    for (i, (m, meta)) in mappings.iter().zip(plan.meta()).enumerate() {
        assert_eq!(m.check(layout.levels()), Ok(()), "{m:x?}");
        if let Some(next) = mappings.get(i + 1) {
            assert!(
                m.last() < next.virt,
                "{m:x?} and {next:x?} overlap or are out of order"
            );
        }
        assert_eq!(
            inputs
                .pat
                .type_for_flags(m.flags, handoff::mtrr::PageKind::Size4KiB),
            meta.pat_type
        );
        if meta.purpose == plan::Purpose::Physmap {
            let (start, end) = (m.phys.as_u64(), m.phys.as_u64() + m.len);
            assert_eq!(m.virt, layout.page_offset_base() + start);
            assert!(end <= layout.physmap_size());
            assert_eq!(
                plan::uniform_effective(inputs.mtrrs, start, end, meta.pat_type),
                Some(meta.effective),
                "{m:x?}"
            );
            // RAM throughout.
            let mut at = start;
            while at < end {
                let r = map
                    .region_at(PhysAddr::new(at))
                    .expect("physmap over a hole");
                assert!(r.kind.is_ram(), "physmap over {r:?}");
                at = r.end;
            }
            physmap_bytes += m.len;
        }
    }
    let limit = layout.physmap_size();
    let ram_below: u64 = map
        .regions()
        .iter()
        .filter(|r| r.kind.is_ram() && r.start < limit)
        .map(|r| r.end.min(limit) - r.start)
        .sum();
    assert_eq!(plan.physmap_bytes, physmap_bytes);
    assert_eq!(plan.physmap_bytes, ram_below);
    assert_eq!(plan.physmap_bytes + plan.unmapped_ram, map.ram_bytes());
    assert_eq!(plan.cost.tables, plan.minimum_tables());
    let _ = plan.cost.to_string();
}

/// Builds the plan into simulated memory and holds the tables to it.
fn build_and_verify(plan: &Plan, inputs: &Inputs<'_>, strict: bool) {
    let (map, layout) = (inputs.map, inputs.layout);
    let levels = plan.levels();
    // Tables far above any map the target makes.
    let base = 1u64 << 50;
    let mut sim = Sim::new(PhysAddr::new(base), PhysAddr::new(base + (1 << 40)));
    let mut builder = Builder::new(&mut sim.window, &mut sim.frames, levels).expect("a root");
    for m in plan.mappings() {
        builder
            .map(m)
            .unwrap_or_else(|err| panic!("{m:x?} does not build: {err:?}"));
    }
    let root = builder.root();
    let allocated = builder.tables_allocated();
    let walker = handoff::paging::Walker::new(&sim.window, root, levels);
    if let Err(err) = plan::verify(plan, &walker, inputs) {
        panic!("built tables differ from the plan: {err}");
    }
    assert_eq!(allocated, plan.minimum_tables());
    if inputs.cpu.nx {
        assert!(walker.check_wx(|r| panic!("W+X: {r}")).passed());
    }
    assert_eq!(walker.leaves_in(0, layout.lower_half_end()).count(), 0);

    // No large page, whatever it maps (verify checks only the physmap's),
    // covers more than one effective memory type: the design's rule, and
    // the SDM leaves the type of such a page undefined. 4 KiB leaves are
    // uniform by construction (MTRRs have 4 KiB granularity).
    let efi_window = layout.efi_window_start()..layout.efi_window_end();
    let large = walker.leaves().filter(|l| l.size != PageSize::Size4K);
    // Open bug efi-window-large-page-spans-mtrr-types.
    for leaf in large.filter(|l| strict || !efi_window.contains(&l.virt)) {
        let pat_type = inputs.pat.type_for_flags(leaf.flags, PageKind::Large);
        let start = leaf.phys.as_u64();
        let end = start + leaf.size.bytes();
        assert!(
            plan::uniform_effective(inputs.mtrrs, start, end, pat_type).is_some(),
            "{:?} leaf {:#x} -> {start:#x} covers more than one memory type",
            leaf.size,
            leaf.virt
        );
    }

    // RAM below the physmap's limit at page_offset_base + its address;
    // nothing else there.
    let pob = layout.page_offset_base();
    let limit = layout.physmap_size();
    let mut previous_end = 0;
    for r in map.regions().iter().filter(|r| r.start < limit) {
        let last = r.end.min(limit) - PAGE;
        for p in [r.start, last] {
            let t = walker.translate(pob + p);
            if r.kind.is_ram() {
                assert_eq!(t.map(|t| t.phys.as_u64()), Some(p), "{r:?}");
            } else {
                assert!(t.is_none(), "{r:?} is in the physmap");
            }
        }
        if r.start > previous_end {
            assert!(
                walker.translate(pob + previous_end).is_none(),
                "hole mapped"
            );
        }
        previous_end = r.end;
    }
}

// ---------------------------------------------------------------------------
// Seeds: realistic inputs for every target, written to `fuzz/corpus/` by
// `tests/hostile_input.rs` (`write_seeds`) and replayed from memory too.

/// A fuzz target's check.
pub type Check = fn(&[u8]) -> Reached;

/// The fuzz targets, each with its check.
pub const TARGETS: [(&str, Check); 4] = [
    ("memmap", check_memmap),
    ("normalise", check_normalise),
    ("efi_runtime", check_efi_runtime),
    ("plan", check_plan),
];

/// The same with the strict checks, which tolerate no [`OPEN_BUGS`].
pub const STRICT_TARGETS: [(&str, Check); 4] = [
    ("memmap", check_memmap),
    ("normalise", check_normalise),
    ("efi_runtime", check_efi_runtime_strict),
    ("plan", check_plan_strict),
];

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const WB: u64 = 0xf;
const UC: u64 = 0x1;

fn d(ty: u32, start: u64, pages: u64, attr: u64) -> Desc {
    Desc {
        ty,
        start,
        pages,
        attr,
    }
}

fn l(base: u64, length: u64, ty: u64) -> LimineEntry {
    LimineEntry { base, length, ty }
}

/// OVMF on q35 with `mem_mib` of RAM (at least 256 MiB), as the firmware
/// leaves it at ExitBootServices, with Limine's allocations rewritten as
/// conventional memory; above 3 GiB of RAM, OVMF lists RAM above 4 GiB
/// first, so the map is not sorted.
pub fn ovmf_efi(mem_mib: u64) -> Vec<Desc> {
    let low_end = (mem_mib * MIB).min(2 * GIB);
    let top = low_end - 16 * MIB;
    let mut v = vec![
        d(3, 0x0, 0x1, WB),
        d(7, 0x1000, 0x9f, WB),
        d(7, 0x10_0000, 0x700, WB),
        d(10, 0x80_0000, 0x8, WB),
        d(7, 0x80_8000, 0x8, WB),
        d(10, 0x81_0000, 0xf0, WB),
        d(4, 0x90_0000, 0xf00, WB),
        d(7, 0x180_0000, (top - 0x180_0000 - 4 * MIB) / PAGE, WB),
        d(1, top - 4 * MIB, 0x40, WB),
        d(4, top - 4 * MIB + 0x4_0000, 0x3c0, WB),
        d(6, top, 0x100, RT | WB),
        d(5, top + MIB, 0x80, RT | WB),
        d(5, top + MIB + 0x8_0000, 0x20, RT | WB),
        d(6, top + MIB + 0xa_0000, 0x60, RT | WB),
        d(0, top + 2 * MIB, 0x80, WB),
        d(9, top + 2 * MIB + 0x8_0000, 0x10, WB),
        d(10, top + 2 * MIB + 0x9_0000, 0x70, WB),
        d(4, top + 3 * MIB, (low_end - top - 3 * MIB) / PAGE, WB),
        d(0, 0xb000_0000, 0x1_0000, UC),
        d(0, 0xfeff_c000, 0x4, UC),
        d(11, 0xffc0_0000, 0x400, RT | UC),
    ];
    if mem_mib * MIB > 2 * GIB {
        v.insert(0, d(7, 4 * GIB, (mem_mib * MIB - 2 * GIB) / PAGE, WB));
    }
    v
}

/// Limine's map for the same machine, with the kernel at 32 MiB.
pub fn ovmf_limine(mem_mib: u64) -> Vec<LimineEntry> {
    use memmap::limine::*;
    let low_end = (mem_mib * MIB).min(2 * GIB);
    let top = low_end - 16 * MIB;
    let mut v = vec![
        l(0x0, 0xa_0000, USABLE),
        l(0x10_0000, 0x70_0000, USABLE),
        l(0x80_0000, 0x8000, ACPI_NVS),
        l(0x80_8000, 0x8000, USABLE),
        l(0x81_0000, 0xf_0000, ACPI_NVS),
        l(0x90_0000, 0x170_0000, USABLE),
        l(0x200_0000, 0x20_0000, EXECUTABLE_AND_MODULES),
        l(0x220_0000, top - 8 * MIB - 0x220_0000, USABLE),
        l(top - 8 * MIB, 4 * MIB + 0x4_0000, BOOTLOADER_RECLAIMABLE),
        l(top - 4 * MIB + 0x4_0000, 4 * MIB - 0x4_0000, USABLE),
        l(top, 2 * MIB, RESERVED),
        l(top + 2 * MIB + 0x8_0000, 0x1_0000, ACPI_RECLAIMABLE),
        l(top + 2 * MIB + 0x9_0000, 0x7_0000, ACPI_NVS),
        l(top + 3 * MIB, low_end - top - 3 * MIB, USABLE),
        // 800x600x32: not a whole number of pages.
        l(0x8000_0000, 0x1d_4c00, FRAMEBUFFER),
        l(0xb000_0000, 0x1000_0000, RESERVED),
        l(0xfeff_c000, 0x4000, RESERVED),
        l(0xffc0_0000, 0x40_0000, RESERVED),
    ];
    if mem_mib * MIB > 2 * GIB {
        v.push(l(4 * GIB, mem_mib * MIB - 2 * GIB, USABLE));
    }
    v
}

/// SeaBIOS on QEMU pc with `gib` GiB (at least 4): RAM below 640 KiB, 1 MiB
/// to 3 GiB and from 4 GiB, the kernel and Limine inside it.
pub fn seabios_limine(gib: u64) -> Vec<LimineEntry> {
    use memmap::limine::*;
    vec![
        l(0, 0x9f000, USABLE),
        l(0x9fc00, 0x400, RESERVED),
        l(0xf0000, 0x10000, RESERVED),
        l(0x10_0000, 0x100_0000, USABLE),
        l(0x110_0000, 0x10_0000, EXECUTABLE_AND_MODULES),
        l(0x120_0000, 0x40_0000, BOOTLOADER_RECLAIMABLE),
        l(0x160_0000, 0xbffe_0000 - 0x160_0000, USABLE),
        l(0xbffe_0000, 0x2_0000, RESERVED),
        l(0xfd00_0000, 0x40_0000, FRAMEBUFFER),
        l(0xfeff_c000, 0x4000, RESERVED),
        l(0xfffc_0000, 0x4_0000, RESERVED),
        l(4 * GIB, (gib - 3) * GIB, USABLE),
    ]
}

/// `count` descriptors of alternating types, touching, from 1 MiB: a large
/// server's map (more than 1024 entries), or one too many for baton.
pub fn many_efi(count: usize) -> Vec<Desc> {
    let types = [7, 4, 3, 7, 10, 9, 5, 6, 7, 0];
    (0..count)
        .map(|i| {
            let ty = types[i % types.len()];
            let attr = if ty == 5 || ty == 6 { RT | WB } else { WB };
            d(ty, MIB + i as u64 * 16 * PAGE, 16, attr)
        })
        .collect()
}

/// `count` Limine entries with holes between them.
pub fn many_limine(count: usize) -> Vec<LimineEntry> {
    use memmap::limine::*;
    let types = [
        USABLE,
        RESERVED,
        ACPI_RECLAIMABLE,
        BOOTLOADER_RECLAIMABLE,
        USABLE,
    ];
    (0..count)
        .map(|i| l(MIB + i as u64 * 8 * PAGE, 4 * PAGE, types[i % types.len()]))
        .collect()
}

/// Compact records for absolute descriptors, in unit 4 KiB.
fn records(ranges: impl Iterator<Item = (u64, u64, u8, u8)>) -> Vec<Record> {
    let mut at = 0i64;
    ranges
        .map(|(start, len, ty, extra)| {
            let (start, len) = ((start / PAGE) as i64, len.div_ceil(PAGE) as i64);
            let r = Record {
                step: (start - at) as i32,
                len: len as u32,
                ty,
                extra,
            };
            at = start + len;
            r
        })
        .collect()
}

/// The compact attribute byte for EFI attributes (caching set, RUNTIME).
fn attr_byte(attr: u64) -> u8 {
    let cache = CACHE_ATTRS
        .iter()
        .position(|&c| c == attr & !RT)
        .unwrap_or(0) as u8;
    cache | if attr & RT != 0 { 0x80 } else { 0 }
}

fn type_byte(ty: u32) -> u8 {
    EFI_TYPES.iter().position(|&t| t == ty).unwrap_or(0) as u8
}

fn limine_type_byte(ty: u64) -> u8 {
    LIMINE_TYPES.iter().position(|&t| t == ty).unwrap_or(1) as u8
}

/// A compact input for an EFI map (or none) and a Limine map.
pub fn compact(
    efi: Option<&[Desc]>,
    limine: &[LimineEntry],
    bits: u8,
    desc_size: usize,
    shuffle: bool,
) -> Compact {
    let efi_records = efi.map_or_else(Vec::new, |descs| {
        records(
            descs
                .iter()
                .map(|x| (x.start, x.pages * PAGE, type_byte(x.ty), attr_byte(x.attr))),
        )
    });
    let limine_records = records(limine.iter().map(|e| {
        // Unaligned edges: start and length rounded to pages here, the
        // record's edge bits put the offsets back (roughly).
        let edges = if e.base % PAGE != 0 || e.length % PAGE != 0 {
            1 | (((e.base % PAGE) / 0x200) as u8 & 7) << 1
        } else {
            0
        };
        (e.base, e.length, limine_type_byte(e.ty), edges)
    }));
    Compact {
        flags: u8::from(efi.is_some()) | if shuffle { 2 } else { 0 },
        desc_size: DESC_SIZES.iter().position(|&s| s == desc_size).unwrap_or(1) as u8,
        bits: bits - 32,
        unit_shift: 0,
        efi: efi_records,
        limine: limine_records,
        seed: 0x9e37_79b9_7f4a_7c15,
    }
}

/// An attributes table splitting each runtime code range into text (RO)
/// and data (XP), as EDK2 writes it.
pub fn ovmf_attributes_table(efi: &[Desc]) -> Vec<u8> {
    let mut descs = Vec::new();
    for x in efi.iter().filter(|x| x.attr & RT != 0 && x.ty != 11) {
        if x.ty == 5 && x.pages >= 2 {
            let text = x.pages / 2;
            descs.push(d(5, x.start, text, RT | RO));
            descs.push(d(5, x.start + text * PAGE, x.pages - text, RT | XP));
        } else {
            descs.push(d(x.ty, x.start, x.pages, RT | XP));
        }
    }
    let mut bytes = Vec::new();
    for word in [1u32, descs.len() as u32, 48, 0] {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    bytes.extend(encode_efi(&descs, 48, 0));
    bytes
}

/// Every seed: target, name, bytes.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let raw = |efi: Option<(Vec<u8>, usize, u32)>, limine: Vec<LimineEntry>, bits| {
        encode_raw(&Maps { efi, limine, bits })
    };
    // memmap: the firmware's bytes.
    for (name, mem, size) in [("ovmf-512m", 512, 48), ("ovmf-6g-unsorted", 6144, 48)] {
        let bytes = encode_efi(&ovmf_efi(mem), size, 0xa5);
        out.push((
            "memmap",
            format!("seed-{name}"),
            raw(Some((bytes, size, 1)), ovmf_limine(mem), 40),
        ));
    }
    for size in [40, 56, 64] {
        let bytes = encode_efi(&ovmf_efi(1024), size, 0);
        out.push((
            "memmap",
            format!("seed-ovmf-1g-desc-size-{size}"),
            raw(Some((bytes, size, 1)), ovmf_limine(1024), 46),
        ));
    }
    let mut reversed = ovmf_efi(2048);
    reversed.reverse();
    out.push((
        "memmap",
        "seed-ovmf-2g-reversed".into(),
        raw(
            Some((encode_efi(&reversed, 48, 0xff), 48, 1)),
            ovmf_limine(2048),
            40,
        ),
    ));
    let mut overlapping = ovmf_efi(6144);
    overlapping[5].pages += 0x20;
    out.push((
        "memmap",
        "seed-ovmf-6g-overlapping".into(),
        raw(
            Some((encode_efi(&overlapping, 48, 0), 48, 1)),
            ovmf_limine(6144),
            40,
        ),
    ));
    out.push((
        "memmap",
        "seed-seabios-5g".into(),
        raw(None, seabios_limine(5), 40),
    ));
    out.push((
        "memmap",
        "seed-efi-1100-entries".into(),
        raw(
            Some((encode_efi(&many_efi(1100), 48, 0), 48, 1)),
            Vec::new(),
            46,
        ),
    ));
    out.push((
        "memmap",
        "seed-efi-2049-entries".into(),
        raw(
            Some((encode_efi(&many_efi(2049), 48, 0), 48, 1)),
            Vec::new(),
            46,
        ),
    ));
    out.push((
        "memmap",
        "seed-limine-1500-entries".into(),
        raw(None, many_limine(1500), 46),
    ));

    // normalise: the same shapes as compact records.
    let push_compact = |out: &mut Vec<_>, target, name: &str, c: Compact, prefix: &[u8]| {
        let mut bytes = prefix.to_vec();
        bytes.extend(c.encode());
        out.push((target, format!("seed-{name}"), bytes));
    };
    for (target, prefix) in [("normalise", &[][..]), ("efi_runtime", &[0x18u8, 0][..])] {
        push_compact(
            &mut out,
            target,
            "ovmf-512m",
            compact(Some(&ovmf_efi(512)), &ovmf_limine(512), 40, 48, false),
            prefix,
        );
        push_compact(
            &mut out,
            target,
            "ovmf-6g-unsorted",
            compact(Some(&ovmf_efi(6144)), &ovmf_limine(6144), 40, 48, false),
            prefix,
        );
        push_compact(
            &mut out,
            target,
            "ovmf-1g-shuffled",
            compact(Some(&ovmf_efi(1024)), &ovmf_limine(1024), 46, 48, true),
            prefix,
        );
        push_compact(
            &mut out,
            target,
            "efi-1100-entries",
            compact(Some(&many_efi(1100)), &[], 46, 48, false),
            prefix,
        );
    }
    push_compact(
        &mut out,
        "normalise",
        "seabios-5g",
        compact(None, &seabios_limine(5), 40, 48, false),
        &[],
    );
    push_compact(
        &mut out,
        "normalise",
        "limine-1500-entries",
        compact(None, &many_limine(1500), 46, 48, false),
        &[],
    );

    // efi_runtime with an attributes table, raw and compact.
    for (mode, name) in [(0x19u8, "ovmf-1g-mat"), (0x3a, "ovmf-1g-compact-mat")] {
        let efi = ovmf_efi(1024);
        let mut bytes = vec![mode, 0];
        bytes.extend(compact(Some(&efi), &ovmf_limine(1024), 40, 48, false).encode());
        if mode & 3 == 1 {
            bytes.extend(ovmf_attributes_table(&efi));
        } else {
            // Version 1, stride 48, 6 entries over the runtime descriptors.
            bytes.extend([0, 1, 6]);
            for (which, offset, pages, bits) in [
                (0u8, 0u8, 0x80u8, 2u8),
                (1, 0, 0x40, 1),
                (1, 0x40, 0x40, 2),
                (2, 0, 0x20, 1),
                (3, 0, 0x60, 2),
                (4, 0, 0xff, 2),
            ] {
                bytes.extend([which, offset, pages, bits]);
            }
        }
        out.push(("efi_runtime", format!("seed-{name}"), bytes));
    }

    // plan: the header, 64 bytes of MTRRs, then a compact map.
    let plan_seed = |cpu: u8, mtrr_mode: u8, c: Compact| {
        let mut bytes = vec![cpu, 0x10, 0, 0x01];
        let mut mtrr = [0u8; 64];
        mtrr[0] = mtrr_mode;
        if mtrr_mode == 3 {
            // Two ranges over a UC default (E and FE set, fixed ranges WB):
            // WB below 2 GiB, WC for 256 MiB at 2 GiB.
            let regs = [3, 2, 0x00, 0x0c, 0x06, 0, 0, 0, 0, 19, 6, 0, 0, 8, 0, 16, 1];
            mtrr[..regs.len()].copy_from_slice(&regs);
        }
        bytes.extend(mtrr);
        bytes.extend(c.encode());
        bytes
    };
    out.push((
        "plan",
        "seed-seabios-5g-2m".into(),
        plan_seed(0x06, 2, compact(None, &seabios_limine(5), 40, 48, false)),
    ));
    out.push((
        "plan",
        "seed-seabios-5g-1g-5-level".into(),
        plan_seed(0x0f, 0, compact(None, &seabios_limine(5), 40, 48, false)),
    ));
    out.push((
        "plan",
        "seed-ovmf-1g-window".into(),
        plan_seed(
            0x17,
            2,
            compact(Some(&ovmf_efi(1024)), &ovmf_limine(1024), 40, 48, false),
        ),
    ));
    let mut with_table = plan_seed(
        0x17,
        2,
        compact(Some(&ovmf_efi(1024)), &ovmf_limine(1024), 40, 48, false),
    );
    // Version 1, stride 48, code split into RO text and XP data.
    with_table.extend([0, 1, 3, 1, 0, 0x40, 1, 1, 0x40, 0x40, 2, 2, 0, 0x20, 3]);
    out.push(("plan", "seed-ovmf-1g-window-mat".into(), with_table));
    out.push((
        "plan",
        "seed-ovmf-6g-window-mtrrs".into(),
        plan_seed(
            0x13,
            3,
            compact(Some(&ovmf_efi(6144)), &ovmf_limine(6144), 40, 48, false),
        ),
    ));
    out
}

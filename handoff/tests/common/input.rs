//! The input formats: arbitrary bytes read as fields (short inputs read
//! as zeros), the raw maps as the kernel receives them, and the compact
//! records that reach the normaliser more often; and their encoders, for
//! seeds and structured property tests.

use super::*;

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
pub(super) const CACHE_ATTRS: [u64; 8] = [0xf, 0x1, 0x8, 0x4, 0x2, 0x0, 0xf | XP, 0xf | RO];

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

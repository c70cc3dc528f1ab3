//! Fixture maps (OVMF, SeaBIOS, many entries) and the seeds written to
//! `fuzz/corpus/` by `tests/hostile_input.rs` (`write_seeds`) and replayed
//! from memory too.

use super::*;

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
    // pe: OVMF-like runtime drivers back to back, and a junk page.
    let driver = handoff::efi::pe::sample_headers(
        &[
            (".text", 0x1000, 0x3000, handoff::efi::pe::SAMPLE_TEXT),
            (".rdata", 0x4000, 0x800, handoff::efi::pe::SAMPLE_RDATA),
            (".data", 0x5000, 0x1800, handoff::efi::pe::SAMPLE_DATA),
        ],
        0x7000,
    );
    let mut region = driver.to_vec();
    region.resize(7 * 4096, 0);
    region.extend([0xcc; 4096]);
    region.extend(driver);
    region.resize(15 * 4096, 0);
    out.push(("pe", "seed-two-drivers".into(), region));
    out
}

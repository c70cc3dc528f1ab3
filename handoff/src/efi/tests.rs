use proptest::prelude::*;
use uefi_raw::table::boot::{MemoryAttribute as A, MemoryType as T};

use super::pe;
use super::*;
use crate::Levels;
use crate::memtype::PageKind;

const DESC: usize = 48;
const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

fn layout() -> &'static Layout {
    Layout::fixed(Levels::Four)
}

/// An EFI map with stride 48; the 8 padding bytes of each descriptor hold
/// a marker so tests can see padding is carried over.
fn map_bytes(descs: &[(T, u64, u64, A)]) -> Vec<u8> {
    let mut bytes = vec![0u8; descs.len() * DESC];
    for (i, (chunk, &(ty, start, pages, attr))) in bytes.chunks_mut(DESC).zip(descs).enumerate() {
        chunk[0..4].copy_from_slice(&ty.0.to_le_bytes());
        chunk[8..16].copy_from_slice(&start.to_le_bytes());
        chunk[24..32].copy_from_slice(&pages.to_le_bytes());
        chunk[32..40].copy_from_slice(&attr.bits().to_le_bytes());
        chunk[40..48].copy_from_slice(&(0xa5a5_0000 + i as u64).to_le_bytes());
    }
    bytes
}

/// MTRRs that make everything write-back (no MTRRs at all).
fn wb_mtrrs() -> crate::memtype::Mtrrs {
    crate::memtype::Mtrrs::absent(46).unwrap()
}

fn parse(bytes: &[u8]) -> EfiMemoryMap<'_> {
    EfiMemoryMap::parse(bytes, DESC, 1, 46).unwrap()
}

fn wb() -> A {
    A::UNCACHEABLE | A::WRITE_COMBINE | A::WRITE_THROUGH | A::WRITE_BACK
}

fn rt_attr() -> A {
    wb() | A::RUNTIME
}

/// OVMF-like runtime layout under 1 GiB of RAM, plus the pflash MMIO.
fn ovmf() -> Vec<u8> {
    map_bytes(&[
        (T::CONVENTIONAL, 0, 0xa0, wb()),
        (T::BOOT_SERVICES_DATA, 0x10_0000, 0x100, wb()),
        (T::RUNTIME_SERVICES_DATA, 0x3f5e_c000, 0x14, rt_attr()),
        (T::RUNTIME_SERVICES_CODE, 0x3f60_0000, 0x20, rt_attr()),
        (T::RUNTIME_SERVICES_CODE, 0x3f62_0000, 0x10, rt_attr()),
        (T::RUNTIME_SERVICES_DATA, 0x3f63_0000, 0x40, rt_attr()),
        (T::CONVENTIONAL, 0x3f67_0000, 0x10, wb()),
        (T::MMIO, 0xffc0_0000, 0x400, A::UNCACHEABLE | A::RUNTIME),
    ])
}

#[test]
fn regions_are_merged_and_keep_their_offset_within_2_mib() {
    let bytes = ovmf();
    let map = parse(&bytes);
    let mut rt = RuntimeRegions::new();
    rt.assign(&map, layout()).unwrap();
    let regions = rt.regions();
    // The two touching code descriptors merge; data, code, data, MMIO stay.
    assert_eq!(regions.len(), 4);
    assert_eq!((regions[1].phys, regions[1].len), (0x3f60_0000, 0x30_000));
    for r in regions {
        assert_eq!(r.virt % (2 * MIB), r.phys % (2 * MIB), "{r:x?}");
        assert!(r.virt >= layout().efi_window_start());
        assert!(r.virt + r.len <= layout().efi_top_down_start());
    }
    // Virtual addresses grow with physical ones, without overlap.
    for pair in regions.windows(2) {
        assert!(pair[0].virt + pair[0].len <= pair[1].virt);
    }
    // The highest region is placed first, right below -4 GiB: the 4 MiB of
    // flash, 2 MiB-aligned, end exactly there.
    assert_eq!(regions[3].virt, 0xffff_fffe_ffc0_0000);
    // Then the data at 0x3f630000 (offset 0x30000 in its 2 MiB, 256 KiB):
    // below 0xfffffffeffc00000 with that offset.
    assert_eq!(regions[2].virt, 0xffff_fffe_ffa3_0000);
}

#[test]
fn later_descriptors_get_higher_addresses() {
    // The map walked in reverse, as Linux does: in an unsorted map the
    // descriptor listed last is placed first, right below -4 GiB, even
    // when it is the lower one physically.
    let bytes = map_bytes(&[
        (T::RUNTIME_SERVICES_DATA, 0x8000_0000, 0x10, rt_attr()),
        (T::RUNTIME_SERVICES_CODE, 0x4000_0000, 0x10, rt_attr()),
    ]);
    let mut rt = RuntimeRegions::new();
    rt.assign(&parse(&bytes), layout()).unwrap();
    let regions = rt.regions();
    // Kept by physical address for lookups.
    assert_eq!(
        (regions[0].phys, regions[1].phys),
        (0x4000_0000, 0x8000_0000)
    );
    assert_eq!(regions[0].virt, layout().efi_top_down_start() - 2 * MIB);
    assert!(regions[1].virt + regions[1].len <= regions[0].virt);
    assert_eq!(regions[1].virt % (2 * MIB), 0);
    assert_eq!(rt.region_of(0x8000_1000).unwrap().phys, 0x8000_0000);
}

#[test]
fn only_neighbours_in_map_order_merge() {
    // Contiguous physically but not neighbours in the map: kept apart,
    // as Linux's efi_merge_regions does.
    let bytes = map_bytes(&[
        (T::RUNTIME_SERVICES_CODE, 0x3f62_0000, 0x10, rt_attr()),
        (T::RUNTIME_SERVICES_DATA, 0x3f70_0000, 0x10, rt_attr()),
        (T::RUNTIME_SERVICES_CODE, 0x3f60_0000, 0x20, rt_attr()),
    ]);
    let mut rt = RuntimeRegions::new();
    rt.assign(&parse(&bytes), layout()).unwrap();
    assert_eq!(rt.regions().len(), 3);
    // Neighbours in the map, the later one continuing the earlier: merged.
    let bytes = map_bytes(&[
        (T::RUNTIME_SERVICES_CODE, 0x3f60_0000, 0x20, rt_attr()),
        (T::RUNTIME_SERVICES_CODE, 0x3f62_0000, 0x10, rt_attr()),
    ]);
    rt.assign(&parse(&bytes), layout()).unwrap();
    assert_eq!(rt.regions().len(), 1);
    assert_eq!(rt.regions()[0].len, 0x30_000);
    // The other way round (the later one ends where the earlier starts):
    // not merged, in baton as in Linux.
    let bytes = map_bytes(&[
        (T::RUNTIME_SERVICES_CODE, 0x3f62_0000, 0x10, rt_attr()),
        (T::RUNTIME_SERVICES_CODE, 0x3f60_0000, 0x20, rt_attr()),
    ]);
    rt.assign(&parse(&bytes), layout()).unwrap();
    assert_eq!(rt.regions().len(), 2);
    // A descriptor of another kind between them keeps them apart too,
    // even in an unsorted map where it lies elsewhere.
    let bytes = map_bytes(&[
        (T::RUNTIME_SERVICES_CODE, 0x3f60_0000, 0x20, rt_attr()),
        (T::CONVENTIONAL, 0x1000_0000, 0x10, wb()),
        (T::RUNTIME_SERVICES_CODE, 0x3f62_0000, 0x10, rt_attr()),
    ]);
    rt.assign(&parse(&bytes), layout()).unwrap();
    assert_eq!(rt.regions().len(), 2);
}

#[test]
fn runtime_mmio_is_uncached_even_when_write_back_is_allowed() {
    let bytes = map_bytes(&[
        (
            T::MMIO,
            0xffc0_0000,
            0x400,
            wb() | A::UNCACHEABLE | A::RUNTIME,
        ),
        (T::MMIO_PORT_SPACE, 0xfe00_0000, 0x1, wb() | A::RUNTIME),
        (T::RUNTIME_SERVICES_DATA, 0x3f63_0000, 0x40, rt_attr()),
    ]);
    let mut rt = RuntimeRegions::new();
    rt.assign(&parse(&bytes), layout()).unwrap();
    let mut w = Window::new();
    w.make(&rt, None, &Pat::BATON, &wb_mtrrs(), true, true)
        .unwrap();
    for (phys, want) in [
        (0xffc0_0000, MemType::Uc),
        (0xfe00_0000, MemType::Uc),
        (0x3f63_0000, MemType::Wb),
    ] {
        assert_eq!(rt.region_of(phys).unwrap().mem_type(), want, "{phys:#x}");
        let m = w
            .mappings()
            .iter()
            .find(|m| m.mapping.phys.as_u64() == phys)
            .unwrap();
        assert_eq!(m.mem_type, want, "{m:x?}");
        let uc = Pat::BATON.flags_for(MemType::Uc, PageKind::Large).unwrap();
        let cache = PageTableFlags::WRITE_THROUGH | PageTableFlags::NO_CACHE;
        assert_eq!(m.mapping.flags & cache == uc, want == MemType::Uc, "{m:x?}");
    }
}

#[test]
fn boot_services_code_marked_runtime_stays_executable() {
    // Firmware that marks boot-services or loader code runtime runs code
    // there after SetVirtualAddressMap; Linux maps it executable.
    let bytes = map_bytes(&[
        (T::BOOT_SERVICES_CODE, 0x3f00_0000, 0x10, rt_attr()),
        (T::LOADER_CODE, 0x3f10_0000, 0x10, rt_attr()),
        (T::BOOT_SERVICES_DATA, 0x3f20_0000, 0x10, rt_attr()),
    ]);
    let mut rt = RuntimeRegions::new();
    rt.assign(&parse(&bytes), layout()).unwrap();
    let mut w = Window::new();
    w.make(&rt, None, &Pat::BATON, &wb_mtrrs(), true, true)
        .unwrap();
    for (phys, exec) in [
        (0x3f00_0000, true),
        (0x3f10_0000, true),
        (0x3f20_0000, false),
    ] {
        let m = w
            .mappings()
            .iter()
            .find(|m| m.mapping.phys.as_u64() == phys)
            .unwrap();
        let nx = m.mapping.flags.contains(PageTableFlags::NO_EXECUTE);
        assert_eq!(!nx, exec, "{m:x?}");
        assert_eq!(m.access == Access::ReadExecute, exec, "{m:x?}");
    }
    // And executable in the one-to-one mappings of SetVirtualAddressMap.
    for m in identity_mappings(&rt, &[], &Pat::BATON, true) {
        let code = rt.region_of(m.phys.as_u64()).unwrap().is_code();
        assert_eq!(
            !m.flags.contains(PageTableFlags::NO_EXECUTE),
            code,
            "{m:x?}"
        );
    }
}

#[test]
fn window_overflow_is_an_error() {
    // 65 GiB of runtime data cannot fit the 64 GiB window.
    let bytes = map_bytes(&[(
        T::RUNTIME_SERVICES_DATA,
        0x1_0000_0000,
        65 * GIB / 4096,
        rt_attr(),
    )]);
    let mut rt = RuntimeRegions::new();
    let err = rt.assign(&parse(&bytes), layout()).unwrap_err();
    assert_eq!(
        err,
        EfiError::WindowOverflow {
            phys: 0x1_0000_0000,
            len: 65 * GIB
        }
    );
    assert!(err.to_string().contains("no room"));
    // 63 GiB fits.
    let bytes = map_bytes(&[(
        T::RUNTIME_SERVICES_DATA,
        0x1_0000_0000,
        63 * GIB / 4096,
        rt_attr(),
    )]);
    rt.assign(&parse(&bytes), layout()).unwrap();
}

#[test]
fn rewritten_map_has_runtime_descriptors_with_virtual_addresses() {
    let bytes = ovmf();
    let map = parse(&bytes);
    let mut rt = RuntimeRegions::new();
    rt.assign(&map, layout()).unwrap();
    let mut out = vec![0u8; 8 * DESC];
    let len = rewrite_map(&map, &rt, &mut out).unwrap();
    assert_eq!(len, 5 * DESC);
    let descs: Vec<_> = out[..len].chunks(DESC).map(descriptor).collect();
    // In map order, only the runtime ones.
    assert_eq!(
        descs.iter().map(|d| d.phys_start).collect::<Vec<_>>(),
        [
            0x3f5e_c000,
            0x3f60_0000,
            0x3f62_0000,
            0x3f63_0000,
            0xffc0_0000
        ]
    );
    for ((d, raw), original) in descs.iter().zip(out.chunks(DESC)).zip([2u64, 3, 4, 5, 7]) {
        let region = rt.region_of(d.phys_start).unwrap();
        assert_eq!(d.virt_start, region.virt_of(d.phys_start).unwrap());
        // Type, pages, attributes and the stride's padding are kept.
        assert!(d.att.contains(A::RUNTIME));
        assert_eq!(raw[40..48], (0xa5a5_0000 + original).to_le_bytes());
    }
    // The second code descriptor sits 128 KiB into the merged region.
    assert_eq!(descs[2].virt_start, descs[1].virt_start + 0x2_0000);
    assert_eq!(
        rewrite_map(&map, &rt, &mut out[..4 * DESC]),
        Err(EfiError::MapBufferTooSmall { needed: 5 * DESC })
    );
}

/// An attributes table (version 1, stride 48) with `entries`.
fn mat(entries: &[(T, u64, u64, A)]) -> Vec<u8> {
    let mut bytes = vec![0u8; MAT_HEADER_SIZE];
    bytes[0..4].copy_from_slice(&1u32.to_le_bytes());
    bytes[4..8].copy_from_slice(&(entries.len() as u32).to_le_bytes());
    bytes[8..12].copy_from_slice(&(DESC as u32).to_le_bytes());
    bytes.extend(map_bytes(entries));
    bytes
}

#[test]
fn window_maps_code_rx_data_rw_nx_mmio_uncached() {
    let bytes = ovmf();
    let mut rt = RuntimeRegions::new();
    rt.assign(&parse(&bytes), layout()).unwrap();
    let mut w = Window::new();
    w.make(&rt, None, &Pat::BATON, &wb_mtrrs(), true, true)
        .unwrap();
    let summary: Vec<_> = w
        .mappings()
        .iter()
        .map(|m| (m.mapping.phys.as_u64(), m.access, m.mem_type))
        .collect();
    assert_eq!(
        summary,
        [
            (0x3f5e_c000, Access::ReadWrite, MemType::Wb),
            (0x3f60_0000, Access::ReadExecute, MemType::Wb),
            (0x3f63_0000, Access::ReadWrite, MemType::Wb),
            (0xffc0_0000, Access::ReadWrite, MemType::Uc),
        ]
    );
    let flash = &w.mappings()[3].mapping;
    assert!(
        flash
            .flags
            .contains(PageTableFlags::NO_CACHE | PageTableFlags::WRITE_THROUGH)
    );
    assert!(!w.refined);
}

#[test]
fn attributes_table_refines_code_into_text_and_data() {
    let bytes = ovmf();
    let mut rt = RuntimeRegions::new();
    rt.assign(&parse(&bytes), layout()).unwrap();
    // One runtime driver in the code region: headers+text RO, data XP.
    let table = mat(&[
        (
            T::RUNTIME_SERVICES_CODE,
            0x3f60_0000,
            0x1,
            A::RUNTIME | A::EXECUTE_PROTECT | A::READ_ONLY,
        ),
        (
            T::RUNTIME_SERVICES_CODE,
            0x3f60_1000,
            0x1b,
            A::RUNTIME | A::READ_ONLY,
        ),
        (
            T::RUNTIME_SERVICES_CODE,
            0x3f61_c000,
            0x4,
            A::RUNTIME | A::EXECUTE_PROTECT,
        ),
        (
            T::RUNTIME_SERVICES_DATA,
            0x3f5e_c000,
            0x14,
            A::RUNTIME | A::EXECUTE_PROTECT,
        ),
    ]);
    let table = AttributesTable::parse(&table).unwrap();
    assert_eq!(table.len(), 4);
    let mut w = Window::new();
    w.make(&rt, Some(&table), &Pat::BATON, &wb_mtrrs(), true, true)
        .unwrap();
    let code: Vec<_> = w
        .mappings()
        .iter()
        .filter(|m| (0x3f60_0000..0x3f63_0000).contains(&m.mapping.phys.as_u64()))
        .map(|m| (m.mapping.phys.as_u64(), m.mapping.len, m.access))
        .collect();
    assert_eq!(
        code,
        [
            (0x3f60_0000, 0x1000, Access::ReadOnly),
            (0x3f60_1000, 0x1b000, Access::ReadExecute),
            (0x3f61_c000, 0x4000, Access::ReadWrite),
            // Not described by the table: the code region's default.
            (0x3f62_0000, 0x10000, Access::ReadExecute),
        ]
    );
    assert!(w.refined);
    // Nothing is ever writable and executable.
    for m in w.mappings() {
        let f = m.mapping.flags;
        assert!(!f.contains(PageTableFlags::WRITABLE) || f.contains(PageTableFlags::NO_EXECUTE));
    }
}

#[test]
fn refinements_baton_cannot_map_are_refused_naming_their_source() {
    let bytes = ovmf();
    let mut rt = RuntimeRegions::new();
    rt.assign(&parse(&bytes), layout()).unwrap();
    let make = |entries: &[(T, u64, u64, A)]| {
        let table = mat(entries);
        let table = AttributesTable::parse(&table).unwrap();
        Window::new().make(&rt, Some(&table), &Pat::BATON, &wb_mtrrs(), true, true)
    };
    let refused = |why| EfiError::BadRefinement {
        source: "the memory attributes table",
        why,
    };
    let ro = A::RUNTIME | A::READ_ONLY;
    let code = T::RUNTIME_SERVICES_CODE;
    let err = make(&[(code, 0x3f60_0000, 0x2, ro), (code, 0x3f60_1000, 0x2, ro)]).unwrap_err();
    assert_eq!(err, refused("overlapping entries"));
    assert_eq!(
        err.to_string(),
        "the memory attributes table: overlapping entries"
    );
    // 256 entries fit into one region, 257 do not.
    let many = |n: u64| -> Vec<_> { (0..n).map(|_| (code, 0x3f60_0000, 0x1, ro)).collect() };
    assert_eq!(
        make(&many(257)).unwrap_err(),
        refused("more than 256 entries in one runtime region")
    );
    assert_eq!(
        make(&many(256)).unwrap_err(),
        refused("overlapping entries")
    );
    // 200 one-page entries with gaps between them cut the 4 MiB of runtime
    // MMIO into more than 256 pieces.
    let gaps: Vec<_> = (0..200)
        .map(|i| (T::MMIO, 0xffc0_0000 + i * 0x2000, 0x1, ro))
        .collect();
    assert_eq!(
        make(&gaps).unwrap_err(),
        refused("more than 256 pieces in one runtime region")
    );
    assert!(make(&gaps[..100]).is_ok());
    // The same, the last entry ending where the region ends: no tail, and
    // still refused, never cut short.
    let end = 0xffc0_0000 + 0x40_0000;
    let flush: Vec<_> = (0..200)
        .map(|i| (T::MMIO, end - (200 - i) * 0x2000 + 0x1000, 0x1, ro))
        .collect();
    assert_eq!(
        make(&flush).unwrap_err(),
        refused("more than 256 pieces in one runtime region")
    );
}

#[test]
fn window_pages_never_span_two_memory_types() {
    use crate::memtype::{MtrrRegisters, Mtrrs, VariableRangeMsrs};
    // 4 MiB of runtime data, write-back, 2 MiB-aligned, with one 4 KiB
    // page of it UC by a variable MTRR.
    let bytes = map_bytes(&[(T::RUNTIME_SERVICES_DATA, 0x4000_0000, 1024, rt_attr())]);
    let mut rt = RuntimeRegions::new();
    rt.assign(&parse(&bytes), layout()).unwrap();
    let mut regs = MtrrRegisters::new(8 | 1 << 8, 1 << 11 | 1 << 10 | 6, 46);
    regs.variable[0] = VariableRangeMsrs {
        base: 0x4020_1000,
        mask: ((1 << 46) - 1) & !0xfff | 1 << 11,
    };
    let mtrrs = Mtrrs::new(&regs).unwrap();
    let mut w = Window::new();
    w.make(&rt, None, &Pat::BATON, &mtrrs, true, true).unwrap();
    let pieces: Vec<_> = w
        .mappings()
        .iter()
        .map(|m| (m.mapping.phys.as_u64(), m.mapping.len, m.effective))
        .collect();
    assert_eq!(
        pieces,
        [
            (0x4000_0000, 0x20_1000, MemType::Wb),
            (0x4020_1000, 0x1000, MemType::Uc),
            (0x4020_2000, 0x1f_e000, MemType::Wb),
        ]
    );
    // The first 2 MiB can still be one large page; nothing large crosses
    // the UC page.
    for m in w.mappings() {
        let m = &m.mapping;
        for (virt, phys, size) in m.pages() {
            let (start, end) = (phys.as_u64(), phys.as_u64() + size.bytes());
            assert!(
                crate::memtype::uniform_effective(&mtrrs, start, end, MemType::Wb).is_some(),
                "{size:?} page at {virt:#x} spans two types"
            );
        }
    }
}

#[test]
fn attributes_table_lengths_must_not_overflow() {
    // 2^52 pages of 4 KiB overflow 64 bits.
    let table = mat(&[(T::RUNTIME_SERVICES_CODE, 0x1000, 1 << 52, A::READ_ONLY)]);
    assert_eq!(
        AttributesTable::parse(&table).unwrap_err(),
        EfiError::BadAttributesTable("bad entry")
    );
}

#[test]
fn bad_attributes_tables_are_refused() {
    let mut table = mat(&[(T::RUNTIME_SERVICES_CODE, 0x1000, 1, A::READ_ONLY)]);
    assert!(AttributesTable::parse(&table).is_ok());
    assert_eq!(
        AttributesTable::parse(&table[..20]).unwrap_err(),
        EfiError::BadAttributesTable("truncated entries")
    );
    table[0] = 9;
    assert_eq!(
        AttributesTable::parse(&table).unwrap_err(),
        EfiError::BadAttributesTable("unknown version")
    );
    let unaligned = mat(&[(T::RUNTIME_SERVICES_CODE, 0x1800, 1, A::READ_ONLY)]);
    assert_eq!(
        AttributesTable::parse(&unaligned).unwrap_err(),
        EfiError::BadAttributesTable("bad entry")
    );
}

/// A table header: version, entry count, descriptor size.
fn mat_header(version: u32, count: u32, desc_size: u32) -> [u8; MAT_HEADER_SIZE] {
    let mut header = [0u8; MAT_HEADER_SIZE];
    header[0..4].copy_from_slice(&version.to_le_bytes());
    header[4..8].copy_from_slice(&count.to_le_bytes());
    header[8..12].copy_from_slice(&desc_size.to_le_bytes());
    header
}

#[test]
fn attributes_table_headers_are_checked_at_each_bound() {
    let max = MAX_MAPPINGS as u32;
    let header = AttributesTable::header;
    let bad = EfiError::BadAttributesTable;
    // Versions 1 and 2, up to MAX_MAPPINGS entries, strides of 40 bytes and
    // more in steps of 8.
    assert_eq!(header(&mat_header(1, 0, 40)), Ok((0, 40)));
    assert_eq!(header(&mat_header(2, max, 48)), Ok((MAX_MAPPINGS, 48)));
    assert_eq!(header(&mat_header(1, 3, 56)), Ok((3, 56)));
    assert_eq!(
        header(&mat_header(1, max + 1, 48)),
        Err(bad("too many entries"))
    );
    assert_eq!(header(&mat_header(0, 1, 48)), Err(bad("unknown version")));
    assert_eq!(header(&mat_header(3, 1, 48)), Err(bad("unknown version")));
    assert_eq!(
        header(&mat_header(1, 1, 32)),
        Err(bad("bad descriptor size"))
    );
    assert_eq!(
        header(&mat_header(1, 1, 44)),
        Err(bad("bad descriptor size"))
    );
    assert_eq!(
        header(&mat_header(1, 1, 48)[..MAT_HEADER_SIZE - 1]),
        Err(bad("truncated header"))
    );
}

#[test]
fn identity_mappings_for_set_virtual_address_map() {
    let bytes = ovmf();
    let mut rt = RuntimeRegions::new();
    rt.assign(&parse(&bytes), layout()).unwrap();
    let extra = [(0, 4096), (0x7000_0123, 100)];
    let maps: Vec<_> = identity_mappings(&rt, &extra, &Pat::BATON, true).collect();
    assert_eq!(maps.len(), 6);
    for m in &maps {
        assert_eq!(m.virt, m.phys.as_u64());
        assert!(m.flags.contains(PageTableFlags::WRITABLE));
    }
    // Code executes (and is written, by the firmware's relocation).
    assert!(!maps[1].flags.contains(PageTableFlags::NO_EXECUTE));
    assert!(maps[0].flags.contains(PageTableFlags::NO_EXECUTE));
    // Extra ranges are widened to whole pages.
    assert_eq!((maps[5].virt, maps[5].len), (0x7000_0000, 4096));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random runtime layouts: regions never overlap in the window, keep
    /// their offset within 2 MiB, stay in the window, and no window mapping
    /// is writable and executable whatever the attributes table says.
    #[test]
    fn random_runtime_layouts(
        raw in prop::collection::vec((0u8..4, 1u64..2048, 0u64..600, any::<bool>()), 1..40),
        mat_attrs in prop::collection::vec((any::<bool>(), any::<bool>()), 0..40),
    ) {
        let mut descs = Vec::new();
        let mut at = 0x10_0000u64;
        for &(ty, pages, gap, wb_ok) in &raw {
            at += gap * 4096;
            let ty = [T::RUNTIME_SERVICES_CODE, T::RUNTIME_SERVICES_DATA, T::MMIO, T::CONVENTIONAL][ty as usize];
            let attr = if ty == T::CONVENTIONAL { wb() } else if wb_ok { rt_attr() } else { A::UNCACHEABLE | A::RUNTIME };
            descs.push((ty, at, pages, attr));
            at += pages * 4096;
        }
        let bytes = map_bytes(&descs);
        let map = parse(&bytes);
        let mut rt = RuntimeRegions::new();
        rt.assign(&map, layout()).unwrap();
        for pair in rt.regions().windows(2) {
            prop_assert!(pair[0].virt + pair[0].len <= pair[1].virt);
        }
        for r in rt.regions() {
            prop_assert_eq!(r.virt % (2 * MIB), r.phys % (2 * MIB));
            prop_assert!(r.virt >= layout().efi_window_start());
        }
        // A table over the runtime descriptors with random RO/XP.
        let entries: Vec<_> = map
            .iter()
            .filter(|e| e.is_runtime())
            .zip(mat_attrs.iter().cycle())
            .map(|(e, &(ro, xp))| {
                let mut a = A::RUNTIME;
                if ro { a |= A::READ_ONLY; }
                if xp { a |= A::EXECUTE_PROTECT; }
                (e.desc().ty, e.start(), e.desc().page_count, a)
            })
            .collect();
        let table_bytes = mat(&entries);
        let table = AttributesTable::parse(&table_bytes).unwrap();
        let mut w = Window::new();
        w.make(&rt, Some(&table), &Pat::BATON, &wb_mtrrs(), true, true).unwrap();
        let mut mapped = 0;
        for m in w.mappings() {
            let f = m.mapping.flags;
            prop_assert!(!f.contains(PageTableFlags::WRITABLE) || f.contains(PageTableFlags::NO_EXECUTE));
            let r = rt.region_of(m.mapping.phys.as_u64()).unwrap();
            prop_assert_eq!(m.mapping.virt, r.virt_of(m.mapping.phys.as_u64()).unwrap());
            mapped += m.mapping.len;
        }
        prop_assert_eq!(mapped, rt.regions().iter().map(|r| r.len).sum::<u64>());
    }
}

/// The runtime images of the OVMF-like code region, as `pe::Images`: one
/// driver at 0x3f60_0000 with a page of headers, 0x1b pages of text and 4
/// of data, `text` bytes of text.
fn ovmf_images(text: u32) -> pe::Images {
    let page = pe::sample_headers(
        &[
            (".text", 0x1000, text, pe::SAMPLE_TEXT),
            (".data", 0x1c000, 0x4000, pe::SAMPLE_DATA),
        ],
        0x20000,
    );
    let mut images = pe::Images::new();
    let scan = images.scan(0x3f60_0000, 0x30000, |phys, out| {
        *out = if phys == 0x3f60_0000 { page } else { [0; 4096] };
        true
    });
    assert_eq!(scan.images, 1);
    images
}

#[test]
fn pe_sections_refine_code_like_the_attributes_table() {
    let bytes = ovmf();
    let mut rt = RuntimeRegions::new();
    rt.assign(&parse(&bytes), layout()).unwrap();
    let mut from_pe = Window::new();
    from_pe
        .make(
            &rt,
            Some(&ovmf_images(0x1b000)),
            &Pat::BATON,
            &wb_mtrrs(),
            true,
            false,
        )
        .unwrap();
    let code: Vec<_> = from_pe
        .mappings()
        .iter()
        .filter(|m| (0x3f60_0000..0x3f63_0000).contains(&m.mapping.phys.as_u64()))
        .map(|m| (m.mapping.phys.as_u64(), m.mapping.len, m.access))
        .collect();
    assert_eq!(
        code,
        [
            (0x3f60_0000, 0x1000, Access::ReadOnly),
            (0x3f60_1000, 0x1b000, Access::ReadExecute),
            // The image's data and, after the image, pool memory no image
            // owns: data, as EDK2's table says; merged with the runtime
            // data region after the code region.
            (0x3f61_c000, 0x54000, Access::ReadWrite),
        ]
    );
    for m in from_pe.mappings() {
        let f = m.mapping.flags;
        assert!(!f.contains(PageTableFlags::WRITABLE) || f.contains(PageTableFlags::NO_EXECUTE));
        // A window made not global has no global page.
        assert!(!f.contains(PageTableFlags::GLOBAL));
    }
    // The table of `attributes_table_refines_code_into_text_and_data`.
    let table = mat(&[
        (
            T::RUNTIME_SERVICES_CODE,
            0x3f60_0000,
            0x1,
            A::RUNTIME | A::EXECUTE_PROTECT | A::READ_ONLY,
        ),
        (
            T::RUNTIME_SERVICES_CODE,
            0x3f60_1000,
            0x1b,
            A::RUNTIME | A::READ_ONLY,
        ),
        // The image's data and the pool memory after it.
        (
            T::RUNTIME_SERVICES_CODE,
            0x3f61_c000,
            0x14,
            A::RUNTIME | A::EXECUTE_PROTECT,
        ),
    ]);
    let table = AttributesTable::parse(&table).unwrap();
    let mut from_table = Window::new();
    from_table
        .make(&rt, Some(&table), &Pat::BATON, &wb_mtrrs(), true, false)
        .unwrap();
    assert_eq!(
        from_pe.exec_disagreements(&from_table).collect::<Vec<_>>(),
        []
    );
    // An image whose text ends two pages early disagrees on exactly those.
    let mut short = Window::new();
    short
        .make(
            &rt,
            Some(&ovmf_images(0x19000)),
            &Pat::BATON,
            &wb_mtrrs(),
            true,
            false,
        )
        .unwrap();
    let region = rt.region_of(0x3f60_0000).unwrap();
    let va = region.virt_of(0x3f61_a000).unwrap();
    let found: Vec<_> = short.exec_disagreements(&from_table).collect();
    assert_eq!(found, [(va, 0x2000)]);
}

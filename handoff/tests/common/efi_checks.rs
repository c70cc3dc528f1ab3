//! The EFI runtime checks: window assignment, the rewritten map for
//! SetVirtualAddressMap, the attributes table and the window's mappings.

use super::*;

pub(super) fn pat(choice: u8) -> Pat {
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
) -> Option<(Box<RuntimeRegions>, Box<Window>)> {
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
    let mut rt = Box::new(RuntimeRegions::new());
    if let Err(err) = rt.assign(efi, layout) {
        let _ = err.to_string();
        match err {
            EfiError::TooManyRegions => assert!(runtime_descs.len() > efi::MAX_RUNTIME_REGIONS),
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
    let refine = table.map(|t| t as &dyn Refine);
    match window.make(&rt, refine, pat, mtrrs, nx, global) {
        Ok(()) => check_window(&window, &rt, disjoint, table, layout, nx, global),
        Err(err) => {
            let _ = err.to_string();
            match err {
                EfiError::TooManyMappings | EfiError::BadRefinement { .. } => {
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
    rt: &RuntimeRegions,
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
    rt: &RuntimeRegions,
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
pub(super) fn check_table(bytes: &[u8], strict: bool) -> Option<AttributesTable<'_>> {
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
pub(super) fn compact_table(input: &mut Input<'_>, efi: Option<&EfiMemoryMap<'_>>) -> Vec<u8> {
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
        layout: Layout::fixed(levels),
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

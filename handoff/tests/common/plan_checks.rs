//! The plan checks: plans for maps that parse, held to an independent count
//! of physmap segments, built into simulated memory and verified.

use super::*;

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
    let layout = Layout::fixed(levels);
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
                .type_for_flags(m.flags, handoff::memtype::PageKind::Size4KiB),
            meta.pat_type
        );
        if meta.purpose == plan::Purpose::Physmap {
            let (start, end) = (m.phys.as_u64(), m.phys.as_u64() + m.len);
            assert_eq!(m.virt, layout.page_offset_base() + start);
            assert!(end <= layout.physmap_size());
            assert_eq!(
                handoff::memtype::uniform_effective(inputs.mtrrs, start, end, meta.pat_type),
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
            handoff::memtype::uniform_effective(inputs.mtrrs, start, end, pat_type).is_some(),
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

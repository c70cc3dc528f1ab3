//! The MTRR decoder against the SDM's rules, firmware layouts seen under
//! QEMU, and a brute-force per-page model.

use proptest::prelude::*;

use super::*;
use crate::memtype::MemType::{self, Uc, UcMinus, Wb, Wc, Wp, Wt};
use crate::memtype::{Run, effective_runs, effective_type, uniform_effective};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// An MSR value with all eight fixed-range types `ty`.
fn fill(ty: MemType) -> u64 {
    u64::from_le_bytes([ty.encoding(); 8])
}

/// Registers with VCNT 8, fixed ranges and WC supported, the MTRRs
/// enabled with default `default`, FE = `fixed`.
fn enabled(default: MemType, fixed: bool, bits: u8) -> MtrrRegisters {
    let fe = if fixed { DEF_TYPE_FE } else { 0 };
    MtrrRegisters::new(
        8 | CAP_FIX | CAP_WC,
        DEF_TYPE_E | fe | default.encoding() as u64,
        bits,
    )
}

/// Sets variable range `n` to the naturally aligned block
/// `[base, base + size)`, as firmware does.
fn set_range(regs: &mut MtrrRegisters, n: usize, base: u64, size: u64, ty: MemType) {
    let top = 1u64 << regs.max_phys_addr;
    regs.variable[n] = VariableRangeMsrs {
        base: base | ty.encoding() as u64,
        mask: ((top - 1) & !(size - 1)) | PHYSMASK_VALID,
    };
}

/// The budget a query spent.
fn spent(f: impl FnOnce(&mut Budget)) -> u32 {
    let mut budget = Budget::new(QUERY_BUDGET);
    f(&mut budget);
    QUERY_BUDGET - budget.left
}

/// Every boundary from 0 to the top, with the type up to it.
fn boundaries(mtrrs: &Mtrrs) -> Vec<(u64, MemType)> {
    let mut out = Vec::new();
    let mut addr = 0;
    while addr < mtrrs.top() {
        let next = mtrrs.next_boundary(addr);
        assert!(next > addr);
        out.push((next, mtrrs.type_at(addr)));
        addr = next;
    }
    out
}

/// OVMF under QEMU q35 with 2 GiB below 4 GiB and 40 physical address
/// bits: default WB; 640 KiB to 1 MiB UC in the fixed ranges; the 32-bit
/// PCI hole UC through one variable range.
fn ovmf() -> Mtrrs {
    let mut regs = enabled(Wb, true, 40);
    regs.fixed = [
        fill(Wb),
        fill(Wb),
        fill(Uc),
        fill(Uc),
        fill(Uc),
        fill(Uc),
        fill(Uc),
        fill(Uc),
        fill(Uc),
        fill(Uc),
        fill(Uc),
    ];
    set_range(&mut regs, 0, 0x8000_0000, 2 * GIB, Uc);
    Mtrrs::new(&regs).unwrap()
}

/// SeaBIOS (`src/fw/mtrr.c`) on QEMU pc: default WB; legacy VGA UC and
/// the option-ROM area WP in the fixed ranges; 3 GiB to 4 GiB UC.
fn seabios() -> Mtrrs {
    let mut regs = enabled(Wb, true, 40);
    regs.fixed = [
        fill(Wb),
        fill(Wb),
        fill(Uc),
        fill(Wp),
        fill(Wp),
        fill(Wp),
        fill(Wp),
        fill(Wp),
        fill(Wp),
        fill(Wp),
        fill(Wp),
    ];
    set_range(&mut regs, 0, 0xc000_0000, GIB, Uc);
    Mtrrs::new(&regs).unwrap()
}

#[test]
fn msr_numbers() {
    assert_eq!(ia32_mtrr_physbase(0), 0x200);
    assert_eq!(ia32_mtrr_physmask(0), 0x201);
    assert_eq!(ia32_mtrr_physbase(9), 0x212);
    assert_eq!(ia32_mtrr_physmask(9), 0x213);
    assert_eq!(IA32_MTRR_FIX[2], 0x259);
    assert_eq!(IA32_MTRR_FIX[3], 0x268);
    assert_eq!(IA32_MTRR_FIX[10], 0x26f);
    let regs = MtrrRegisters::new(0x50a, 0, 36);
    assert_eq!(regs.variable_count(), 10);
    assert!(regs.has_fixed());
    assert!(regs.has_wc());
    assert!(!MtrrRegisters::new(0x0a, 0, 36).has_fixed());
}

#[test]
fn fixed_index_covers_the_first_mib_in_order() {
    assert_eq!(fixed_index(0), 0);
    assert_eq!(fixed_index(0x7_ffff), 7);
    assert_eq!(fixed_index(0x8_0000), 8);
    assert_eq!(fixed_index(0x9_ffff), 15);
    assert_eq!(fixed_index(0xa_0000), 16);
    assert_eq!(fixed_index(0xb_ffff), 23);
    assert_eq!(fixed_index(0xc_0000), 24);
    assert_eq!(fixed_index(0xc_7fff), 31);
    assert_eq!(fixed_index(0xc_8000), 32);
    assert_eq!(fixed_index(0xf_ffff), 87);
}

#[test]
fn ovmf_types() {
    let m = ovmf();
    assert_eq!(m.top(), 1 << 40);
    for (addr, ty) in [
        (0, Wb),
        (0x9_ffff, Wb),
        (0xa_0000, Uc),
        (0xf_ffff, Uc),
        (0x10_0000, Wb),
        (0x7fff_ffff, Wb),
        (0x8000_0000, Uc),
        (0xfee0_0000, Uc),
        (0xffff_ffff, Uc),
        (0x1_0000_0000, Wb),
        ((1 << 40) - 1, Wb),
        (1 << 40, Uc),
        (u64::MAX, Uc),
    ] {
        assert_eq!(m.type_at(addr), ty, "{addr:#x}");
    }
}

#[test]
fn ovmf_boundaries_are_the_real_changes_only() {
    let m = ovmf();
    assert_eq!(
        boundaries(&m),
        [
            (0xa_0000, Wb),
            (0x10_0000, Uc),
            (0x8000_0000, Wb),
            (0x1_0000_0000, Uc),
            (1 << 40, Wb),
        ]
    );
    assert_eq!(m.next_boundary(0x12_3456), 0x8000_0000);
    assert_eq!(m.next_boundary((1 << 40) - 1), 1 << 40);
    assert_eq!(m.next_boundary(1 << 40), u64::MAX);
}

#[test]
fn ovmf_uniform_decides_large_pages() {
    let m = ovmf();
    // The first 2 MiB page holds the legacy UC hole.
    assert_eq!(m.uniform(0, 2 * MIB), None);
    assert_eq!(m.uniform(0, 0xa_0000), Some(Wb));
    assert_eq!(m.uniform(0x9_f000, 0xa_1000), None);
    assert_eq!(m.uniform(2 * MIB, 4 * MIB), Some(Wb));
    assert_eq!(m.uniform(GIB, 2 * GIB), Some(Wb));
    assert_eq!(m.uniform(2 * GIB, 3 * GIB), Some(Uc));
    assert_eq!(m.uniform(2 * GIB - 2 * MIB, 2 * GIB + 2 * MIB), None);
    assert_eq!(m.uniform(4 * GIB, 1 << 40), Some(Wb));
    // Past the top everything is UC: a WB range running into it is not
    // uniform, a UC one is.
    assert_eq!(m.uniform(4 * GIB, (1 << 40) + 4096), None);
    assert_eq!(m.uniform(1 << 40, u64::MAX), Some(Uc));
    // Empty ranges have no type.
    assert_eq!(m.uniform(GIB, GIB), None);
    assert_eq!(m.uniform(2 * GIB, GIB), None);
}

#[test]
fn seabios_types_and_boundaries() {
    let m = seabios();
    assert_eq!(m.type_at(0xb_8000), Uc);
    assert_eq!(m.type_at(0xc_0000), Wp);
    assert_eq!(m.type_at(0xf_ffff), Wp);
    assert_eq!(m.type_at(0xbfff_ffff), Wb);
    assert_eq!(m.type_at(0xc000_0000), Uc);
    assert_eq!(
        boundaries(&m),
        [
            (0xa_0000, Wb),
            (0xc_0000, Uc),
            (0x10_0000, Wp),
            (0xc000_0000, Wb),
            (0x1_0000_0000, Uc),
            (1 << 40, Wb),
        ]
    );
    assert_eq!(m.uniform(0xc_0000, 0x10_0000), Some(Wp));
    assert_eq!(m.uniform(0, GIB), None);
    assert_eq!(m.uniform(GIB, 3 * GIB), Some(Wb));
    assert_eq!(m.uniform(2 * GIB, 4 * GIB), None);
    assert_eq!(m.uniform(3 * GIB, 4 * GIB), Some(Uc));
}

#[test]
fn realistic_queries_are_cheap() {
    // Far below the budget, and no per-page work: a sweep of a 64 TiB
    // physical space costs the same as one of 4 GiB.
    for m in [ovmf(), seabios()] {
        let mut addr = 0;
        while addr < m.top() {
            let used = spent(|b| addr = m.next_boundary_within(addr, b));
            assert!(used < 200, "{used} block evaluations");
        }
        let used = spent(|b| assert_eq!(m.uniform_within(4 * GIB, m.top(), b), Some(Wb)));
        assert!(used < 200, "{used} block evaluations");
    }
    let mut regs = enabled(Wb, true, 46);
    regs.fixed = [fill(Wb); 11];
    for (n, base) in [0x8000_0000u64, 0x1_8000_0000, 0x3f_8000_0000]
        .iter()
        .enumerate()
    {
        set_range(&mut regs, n, *base, 2 * MIB, Uc);
    }
    let m = Mtrrs::new(&regs).unwrap();
    assert_eq!(boundaries(&m).len(), 7);
    let used = spent(|b| assert_eq!(m.uniform_within(1 << 40, 1 << 46, b), Some(Wb)));
    assert!(used < 200, "{used} block evaluations");
}

#[test]
fn disabled_mtrrs_make_everything_uc() {
    // E = 0: the default type, the fixed ranges and the variable ranges
    // are all ignored, and so is a VCNT beyond what is supported.
    let mut regs = MtrrRegisters::new(200 | CAP_FIX, DEF_TYPE_FE | 6, 36);
    regs.fixed = [fill(Wb); 11];
    set_range(&mut regs, 0, 0, 1 << 35, Wb);
    let m = Mtrrs::new(&regs).unwrap();
    assert!(!m.enabled());
    assert_eq!(m.default_type(), Uc);
    assert!(m.variable_ranges().is_empty());
    assert_eq!(m.type_at(0), Uc);
    assert_eq!(m.type_at(0x10_0000), Uc);
    assert_eq!(m.next_boundary(0), 1 << 36);
    assert_eq!(m.uniform(0, 1 << 36), Some(Uc));
    assert_eq!(m.uniform(0, u64::MAX), Some(Uc));
}

#[test]
fn absent_mtrrs_are_neutral_wb() {
    let m = Mtrrs::absent(39).unwrap();
    assert_eq!(m.type_at(0xa_0000), Wb);
    assert_eq!(m.next_boundary(0), 1 << 39);
    assert_eq!(m.uniform(0, 1 << 39), Some(Wb));
    assert_eq!(effective_type(m.type_at(0), Wc), Wc);
    assert_eq!(Mtrrs::absent(53), Err(MtrrError::MaxPhysAddr { bits: 53 }));
}

#[test]
fn fixed_ranges_need_fe_and_the_capability() {
    let mut regs = enabled(Wb, false, 36);
    regs.fixed = [fill(Uc); 11];
    // FE = 0: the first MiB follows the default type.
    assert_eq!(Mtrrs::new(&regs).unwrap().type_at(0xa_0000), Wb);
    assert!(!Mtrrs::new(&regs).unwrap().fixed_enabled());
    // FE = 1 without FIX in IA32_MTRRCAP: still the default.
    regs.def_type |= DEF_TYPE_FE;
    regs.cap &= !CAP_FIX;
    assert_eq!(Mtrrs::new(&regs).unwrap().type_at(0xa_0000), Wb);
    // Both: the fixed ranges win over the default and any variable range.
    regs.cap |= CAP_FIX;
    set_range(&mut regs, 0, 0, 16 * MIB, Wt);
    let m = Mtrrs::new(&regs).unwrap();
    assert!(m.fixed_enabled());
    assert_eq!(m.type_at(0xa_0000), Uc);
    assert_eq!(m.type_at(0x10_0000), Wt);
    assert_eq!(m.next_boundary(0), 0x10_0000);
    assert_eq!(m.next_boundary(0x10_0000), 16 * MIB);
}

#[test]
fn overlap_uc_wins_over_wb() {
    let mut regs = enabled(Uc, false, 36);
    set_range(&mut regs, 0, 0, 4 * GIB, Wb);
    set_range(&mut regs, 1, GIB, 2 * MIB, Uc);
    let m = Mtrrs::new(&regs).unwrap();
    assert_eq!(m.type_at(GIB - 1), Wb);
    assert_eq!(m.type_at(GIB), Uc);
    assert_eq!(m.type_at(GIB + 2 * MIB), Wb);
    assert_eq!(
        boundaries(&m),
        [(GIB, Wb), (GIB + 2 * MIB, Uc), (4 * GIB, Wb), (1 << 36, Uc)]
    );
    assert_eq!(m.uniform(0, GIB), Some(Wb));
    assert_eq!(m.uniform(0, 2 * GIB), None);
}

#[test]
fn overlap_wt_with_wb_is_wt() {
    let mut regs = enabled(Uc, false, 36);
    set_range(&mut regs, 0, 0, 4 * GIB, Wb);
    set_range(&mut regs, 1, 2 * GIB, GIB, Wt);
    let m = Mtrrs::new(&regs).unwrap();
    assert_eq!(m.type_at(2 * GIB), Wt);
    assert_eq!(m.uniform(2 * GIB, 3 * GIB), Some(Wt));
    assert_eq!(m.next_boundary(0), 2 * GIB);
}

#[test]
fn undefined_overlaps_are_uc_and_equal_ones_keep_their_type() {
    for (a, b, expected) in [
        (Wc, Wb, Uc),
        (Wp, Wt, Uc),
        (Wc, Wt, Uc),
        (Wp, Wb, Uc),
        (Wb, Wb, Wb),
        (Wc, Wc, Wc),
    ] {
        let mut regs = enabled(Wb, false, 36);
        set_range(&mut regs, 0, 0, 2 * GIB, a);
        set_range(&mut regs, 1, GIB, GIB, b);
        let m = Mtrrs::new(&regs).unwrap();
        assert_eq!(m.type_at(GIB), expected, "{a} over {b}");
    }
    // Two WB ranges over a WB default change nothing: no boundary.
    let mut regs = enabled(Wb, false, 36);
    set_range(&mut regs, 0, 0, 4 * GIB, Wb);
    set_range(&mut regs, 1, GIB, GIB, Wb);
    let m = Mtrrs::new(&regs).unwrap();
    assert_eq!(m.next_boundary(0), 1 << 36);
    assert_eq!(m.uniform(0, 1 << 36), Some(Wb));
}

#[test]
fn non_contiguous_mask_matches_every_alias() {
    // Mask without bit 30: the UC range is [0, 2 MiB) and its alias
    // [1 GiB, 1 GiB + 2 MiB).
    let mut regs = enabled(Wb, false, 36);
    let mask = ((1u64 << 36) - 1) & !(2 * MIB - 1) & !(1 << 30);
    regs.variable[0] = VariableRangeMsrs {
        base: Uc.encoding() as u64,
        mask: mask | PHYSMASK_VALID,
    };
    let m = Mtrrs::new(&regs).unwrap();
    assert_eq!(m.variable_ranges()[0].span(m.top()), None);
    for (addr, ty) in [
        (0, Uc),
        (2 * MIB, Wb),
        (GIB, Uc),
        (GIB + 2 * MIB - 1, Uc),
        (GIB + 2 * MIB, Wb),
        (2 * GIB, Wb),
        (3 * GIB, Wb),
    ] {
        assert_eq!(m.type_at(addr), ty, "{addr:#x}");
    }
    assert_eq!(
        boundaries(&m),
        [(2 * MIB, Uc), (GIB, Wb), (GIB + 2 * MIB, Uc), (1 << 36, Wb)]
    );
    assert_eq!(m.uniform(GIB, GIB + 2 * MIB), Some(Uc));
    assert_eq!(m.uniform(2 * MIB, GIB), Some(Wb));
    assert_eq!(m.uniform(0, GIB), None);
}

#[test]
fn non_contiguous_mask_alternating_pages() {
    // Mask = bit 12 only: every odd page is WC.
    let mut regs = enabled(Wb, false, 36);
    regs.variable[0] = VariableRangeMsrs {
        base: 0x1000 | Wc.encoding() as u64,
        mask: 0x1000 | PHYSMASK_VALID,
    };
    let m = Mtrrs::new(&regs).unwrap();
    assert_eq!(m.type_at(0x1000), Wc);
    assert_eq!(m.type_at(0x3_2000), Wb);
    assert_eq!(m.type_at(0xf_ffff_f000), Wc);
    assert_eq!(m.next_boundary(0), 0x1000);
    assert_eq!(m.next_boundary(0x1234), 0x2000);
    assert_eq!(m.uniform(0x5000, 0x6000), Some(Wc));
    assert_eq!(m.uniform(0x5000, 0x6001), None);
    assert_eq!(m.uniform(GIB, 2 * GIB), None);
    // The same mask with the default's type changes nothing, and
    // finding that out does not visit 2^24 pages.
    regs.variable[0].base = 0x1000 | Wb.encoding() as u64;
    let m = Mtrrs::new(&regs).unwrap();
    let used = spent(|b| assert_eq!(m.next_boundary_within(0, b), 1 << 36));
    assert!(used < 100, "{used} block evaluations");
}

/// Two ranges splitting memory by bit 21 cover everything WB over a UC
/// default: uniform, but only provably so by looking inside.
fn complementary_halves() -> Mtrrs {
    let mut regs = enabled(Uc, false, 36);
    for (n, base) in [0, 2 * MIB].into_iter().enumerate() {
        regs.variable[n] = VariableRangeMsrs {
            base: base | Wb.encoding() as u64,
            mask: (2 * MIB) | PHYSMASK_VALID,
        };
    }
    Mtrrs::new(&regs).unwrap()
}

#[test]
fn complementary_non_contiguous_ranges_are_uniform() {
    let m = complementary_halves();
    assert_eq!(m.next_boundary(0), 1 << 36);
    assert_eq!(m.uniform(0, 1 << 36), Some(Wb));
}

#[test]
fn an_exhausted_budget_gives_conservative_answers() {
    let m = complementary_halves();
    let mut budget = Budget::new(1);
    let boundary = m.next_boundary_within(0, &mut budget);
    // Earlier than the exact answer (the top), but after the address,
    // and the type really is constant up to it.
    assert_eq!(boundary, 0x2000);
    assert_eq!(m.type_at(0x1000), m.type_at(0));
    assert_eq!(m.uniform_within(0, 1 << 36, &mut Budget::new(1)), None);
    assert_eq!(m.uniform_within(0, 0x2000, &mut Budget::new(1)), Some(Wb));
}

#[test]
fn span_of_contiguous_ranges() {
    let mut regs = enabled(Wb, false, 36);
    set_range(&mut regs, 0, 0x8000_0000, 2 * GIB, Uc);
    regs.variable[1] = VariableRangeMsrs {
        base: Wt.encoding() as u64,
        mask: PHYSMASK_VALID,
    };
    let m = Mtrrs::new(&regs).unwrap();
    let top = m.top();
    assert_eq!(
        m.variable_ranges()[0].span(top),
        Some((0x8000_0000, 0x1_0000_0000))
    );
    // A zero mask matches everything.
    assert_eq!(m.variable_ranges()[1].span(top), Some((0, top)));
    assert_eq!(m.type_at(0), Wt);
    assert_eq!(m.type_at(3 * GIB), Uc);
}

#[test]
fn base_bits_outside_the_mask_are_ignored() {
    let mut regs = enabled(Wb, false, 36);
    regs.variable[0] = VariableRangeMsrs {
        base: 0x8012_3000 | Uc.encoding() as u64,
        mask: (((1u64 << 36) - 1) & !(2 * GIB - 1)) | PHYSMASK_VALID,
    };
    // Disabled pairs may hold anything.
    regs.variable[1] = VariableRangeMsrs {
        base: u64::MAX,
        mask: !PHYSMASK_VALID,
    };
    let m = Mtrrs::new(&regs).unwrap();
    assert_eq!(m.variable_ranges().len(), 1);
    assert_eq!(m.variable_ranges()[0].base, 0x8000_0000);
    assert_eq!(m.type_at(0x8000_0000), Uc);
}

#[test]
fn validation_errors() {
    let good = enabled(Wb, true, 36);
    for bits in [0, 19, 53, 255] {
        let regs = MtrrRegisters {
            max_phys_addr: bits,
            ..good
        };
        assert_eq!(Mtrrs::new(&regs), Err(MtrrError::MaxPhysAddr { bits }));
    }
    let regs = MtrrRegisters { cap: 33, ..good };
    assert_eq!(
        Mtrrs::new(&regs),
        Err(MtrrError::TooManyVariableRanges { count: 33 })
    );
    assert!(Mtrrs::new(&MtrrRegisters { cap: 32, ..good }).is_ok());
    let regs = MtrrRegisters {
        def_type: good.def_type | 1 << 9,
        ..good
    };
    assert_eq!(
        Mtrrs::new(&regs),
        Err(MtrrError::ReservedBits {
            msr: IA32_MTRR_DEF_TYPE,
            value: regs.def_type
        })
    );
    let regs = MtrrRegisters {
        def_type: DEF_TYPE_E | 2,
        ..good
    };
    assert_eq!(
        Mtrrs::new(&regs),
        Err(MtrrError::ReservedType {
            msr: IA32_MTRR_DEF_TYPE,
            raw: 2
        })
    );
    // A reserved fixed-range type matters only while the fixed ranges
    // are in use.
    let mut regs = good;
    regs.fixed = [fill(Wb); 11];
    regs.fixed[2] = 0x0600_0000_0000_0000 | 3 << 24;
    assert_eq!(
        Mtrrs::new(&regs),
        Err(MtrrError::ReservedType { msr: 0x259, raw: 3 })
    );
    regs.def_type &= !DEF_TYPE_FE;
    assert!(Mtrrs::new(&regs).is_ok());
    // Variable ranges: reserved type, base bits above MAXPHYADDR or in
    // 11:8, mask bits above MAXPHYADDR.
    let mut regs = good;
    set_range(&mut regs, 3, 0, GIB, Wb);
    regs.variable[3].base |= 7;
    assert_eq!(
        Mtrrs::new(&regs),
        Err(MtrrError::ReservedType { msr: 0x206, raw: 7 })
    );
    let mut regs = good;
    set_range(&mut regs, 1, 1 << 36, GIB, Wb);
    assert_eq!(
        Mtrrs::new(&regs),
        Err(MtrrError::ReservedBits {
            msr: 0x202,
            value: (1 << 36) | 6
        })
    );
    let mut regs = good;
    set_range(&mut regs, 1, 0, GIB, Wb);
    regs.variable[1].base |= 1 << 8;
    assert!(matches!(
        Mtrrs::new(&regs),
        Err(MtrrError::ReservedBits { msr: 0x202, .. })
    ));
    let mut regs = good;
    set_range(&mut regs, 1, 0, GIB, Wb);
    regs.variable[1].mask |= 1 << 40;
    assert!(matches!(
        Mtrrs::new(&regs),
        Err(MtrrError::ReservedBits { msr: 0x203, .. })
    ));
    assert_eq!(
        MtrrError::ReservedType { msr: 0x259, raw: 3 }.to_string(),
        "MSR 0x259 holds reserved memory type 3"
    );
}

#[test]
fn validation_is_const() {
    const MTRRS: Result<Mtrrs, MtrrError> =
        Mtrrs::new(&MtrrRegisters::new(8 | CAP_FIX, DEF_TYPE_E | 6, 36));
    assert!(matches!(MTRRS, Ok(ref m) if m.type_at(0) == Wb));
}

// -- against a brute-force model -----------------------------------------

/// The fixed ranges as the SDM lists them: (MSR index, start, unit).
const FIXED_LAYOUT: [(usize, u64, u64); 11] = [
    (0, 0x0_0000, 0x1_0000),
    (1, 0x8_0000, 0x4000),
    (2, 0xa_0000, 0x4000),
    (3, 0xc_0000, 0x1000),
    (4, 0xc_8000, 0x1000),
    (5, 0xd_0000, 0x1000),
    (6, 0xd_8000, 0x1000),
    (7, 0xe_0000, 0x1000),
    (8, 0xe_8000, 0x1000),
    (9, 0xf_0000, 0x1000),
    (10, 0xf_8000, 0x1000),
];

/// The SDM's rules applied literally to the raw registers at one
/// address, sharing no code with the module.
fn model_type(regs: &MtrrRegisters, addr: u64) -> MemType {
    let top = 1u64 << regs.max_phys_addr;
    if addr >= top || regs.def_type & (1 << 11) == 0 {
        return Uc;
    }
    let ty = |raw: u64| MemType::from_mtrr(raw as u8).unwrap();
    if addr < 0x10_0000 && regs.def_type & (1 << 10) != 0 && regs.cap & (1 << 8) != 0 {
        for (msr, start, unit) in FIXED_LAYOUT {
            for byte in 0..8 {
                let low = start + byte * unit;
                if (low..low + unit).contains(&addr) {
                    return ty(regs.fixed[msr] >> (8 * byte));
                }
            }
        }
        unreachable!("{addr:#x} is below 1 MiB");
    }
    let vcnt = (regs.cap & 0xff) as usize;
    let matched: Vec<MemType> = regs.variable[..vcnt]
        .iter()
        .filter(|r| r.mask & (1 << 11) != 0)
        .filter(|r| {
            let mask = r.mask & (top - 1) & !0xfff;
            addr & mask == r.base & mask
        })
        .map(|r| ty(r.base))
        .collect();
    if matched.is_empty() {
        ty(regs.def_type)
    } else if matched.contains(&Uc) {
        Uc
    } else if matched.iter().all(|&t| t == matched[0]) {
        matched[0]
    } else if matched.iter().all(|&t| t == Wt || t == Wb) {
        Wt
    } else {
        Uc
    }
}

fn mtrr_type() -> impl Strategy<Value = MemType> {
    prop_oneof![4 => Just(Wb), 3 => Just(Uc), 1 => Just(Wc), 1 => Just(Wt), 1 => Just(Wp)]
}

fn fixed_msr() -> BoxedStrategy<u64> {
    prop_oneof![
        3 => mtrr_type().prop_map(fill),
        1 => prop::collection::vec(mtrr_type(), 8).prop_map(|types| {
            types
                .iter()
                .rev()
                .fold(0, |msr, ty| (msr << 8) | u64::from(ty.encoding()))
        }),
    ]
    .boxed()
}

/// Random valid registers over a small physical address space
/// (1 to 16 MiB, so the model can cover every page), with contiguous,
/// non-contiguous and disabled variable ranges.
fn registers() -> BoxedStrategy<MtrrRegisters> {
    (20u8..=24)
        .prop_flat_map(|bits| {
            let addr_bits = ((1u64 << bits) - 1) & !0xfff;
            let range = (
                prop::bool::weighted(0.6),
                12..=u32::from(bits),
                any::<u64>(),
                any::<u64>(),
                mtrr_type(),
                prop::bool::weighted(0.9),
            )
                .prop_map(move |(contiguous, order, r1, r2, ty, valid)| {
                    let mask = if contiguous {
                        addr_bits & !((1u64 << order) - 1)
                    } else {
                        r2 & addr_bits
                    };
                    VariableRangeMsrs {
                        base: (r1 & addr_bits) | ty.encoding() as u64,
                        mask: mask | if valid { PHYSMASK_VALID } else { 0 },
                    }
                })
                .boxed();
            (
                Just(bits),
                prop::bool::weighted(0.9),
                any::<bool>(),
                any::<bool>(),
                mtrr_type(),
                prop::collection::vec(fixed_msr(), 11),
                prop::collection::vec(range, 0..=10),
            )
        })
        .prop_map(|(bits, e, fe, fix, default, fixed, ranges)| {
            let cap = ranges.len() as u64 | if fix { CAP_FIX } else { 0 };
            let def_type = default.encoding() as u64
                | if e { DEF_TYPE_E } else { 0 }
                | if fe { DEF_TYPE_FE } else { 0 };
            let mut regs = MtrrRegisters::new(cap, def_type, bits);
            regs.fixed.copy_from_slice(&fixed);
            regs.variable[..ranges.len()].copy_from_slice(&ranges);
            regs
        })
        .boxed()
}

proptest! {
    #[test]
    fn queries_match_a_per_page_model(
        regs in registers(),
        probes in prop::collection::vec((any::<u64>(), any::<u64>(), 12u32..=24), 24),
    ) {
        let mtrrs = Mtrrs::new(&regs).unwrap();
        let top = mtrrs.top();
        let pages: Vec<MemType> =
            (0..top / 4096).map(|p| model_type(&regs, p * 4096)).collect();
        let page_type = |p: u64| pages.get(p as usize).copied().unwrap_or(Uc);
        let model_next = |addr: u64| {
            let p = addr / 4096;
            (p + 1..top / 4096)
                .find(|&q| page_type(q) != page_type(p))
                .map_or(top, |q| q * 4096)
        };
        let model_uniform = |start: u64, end: u64| {
            if start >= end {
                return None;
            }
            let ty = page_type(start / 4096);
            let last = (end - 1) / 4096;
            let last_below_top = last.min(top / 4096);
            (start / 4096..=last_below_top)
                .all(|q| page_type(q) == ty)
                .then_some(ty)
        };

        for (p, &ty) in pages.iter().enumerate() {
            let base = p as u64 * 4096;
            prop_assert_eq!(mtrrs.type_at(base), ty, "at {:#x}", base);
            prop_assert_eq!(mtrrs.type_at(base + 4095), ty, "at {:#x}", base + 4095);
        }
        prop_assert_eq!(mtrrs.type_at(top), Uc);

        // Walking the boundaries from 0 finds exactly the model's.
        let mut addr = 0;
        while addr < top {
            let next = mtrrs.next_boundary(addr);
            prop_assert_eq!(next, model_next(addr), "after {:#x}", addr);
            addr = next;
        }
        prop_assert_eq!(mtrrs.next_boundary(top), u64::MAX);

        for (a, b, order) in probes {
            // From unaligned addresses.
            let addr = a % top;
            prop_assert_eq!(mtrrs.next_boundary(addr), model_next(addr), "after {:#x}", addr);
            // Arbitrary ranges, some reaching past the top.
            let start = a % (top + 0x2000);
            let end = start + b % (top + 0x2000 - start + 1);
            prop_assert_eq!(
                mtrrs.uniform(start, end),
                model_uniform(start, end),
                "[{:#x}, {:#x})", start, end
            );
            // Aligned blocks, as the planner asks about large pages.
            let size = 1u64 << order.min(u32::from(regs.max_phys_addr));
            let block = (b % top) & !(size - 1);
            prop_assert_eq!(
                mtrrs.uniform(block, block + size),
                model_uniform(block, block + size),
                "[{:#x}, {:#x})", block, block + size
            );
        }
    }
}

proptest! {
    /// The runs the plan and the EFI window are cut into: they tile the
    /// range in order, each page of a run has the run's effective type,
    /// and neighbouring runs differ (so nothing is cut needlessly).
    #[test]
    fn effective_runs_match_a_per_page_model(
        regs in registers(),
        pat in prop::sample::select(vec![Uc, UcMinus, Wc, Wt, Wp, Wb]),
        a in any::<u64>(),
        b in any::<u64>(),
    ) {
        let mtrrs = Mtrrs::new(&regs).unwrap();
        let top = mtrrs.top();
        let start = (a % top) & !0xfff;
        let end = (start + (b % (top - start + 1))) & !0xfff;
        let runs: Vec<Run> = effective_runs(&mtrrs, start, end, pat).collect();
        let model = |addr: u64| effective_type(model_type(&regs, addr), pat);
        let mut at = start;
        for (i, run) in runs.iter().enumerate() {
            prop_assert_eq!(run.start, at);
            prop_assert!(run.end > run.start && run.end <= end);
            for page in (run.start..run.end).step_by(4096) {
                prop_assert_eq!(model(page), run.effective, "at {:#x}", page);
            }
            if i > 0 {
                prop_assert_ne!(runs[i - 1].effective, run.effective);
            }
            at = run.end;
        }
        prop_assert_eq!(at, end.max(start));
        prop_assert_eq!(
            uniform_effective(&mtrrs, start, end, pat),
            (runs.len() == 1).then(|| runs[0].effective)
        );
    }
}

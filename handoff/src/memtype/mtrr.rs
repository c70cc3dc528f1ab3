//! The MTRRs: the MSR numbers the kernel reads, and [`Mtrrs`], which
//! validates their raw values once ([`Mtrrs::new`]) and then answers,
//! purely:
//!
//! - [`Mtrrs::type_at`]: the MTRR type of one address;
//! - [`Mtrrs::next_boundary`]: where, above an address, the type first changes;
//! - [`Mtrrs::uniform`]: whether a whole range has one type.
//!
//! Both range queries are exact: they report where the type really changes,
//! not every edge of every MTRR, so a WB range over a WB default splits
//! nothing. They cost no per-page work: they reason about aligned blocks of
//! the address space (see [`Mtrrs::next_boundary`]), which also copes with
//! non-contiguous masks. Deciding uniformity over arbitrary non-contiguous
//! masks is in general hard (it contains DNF tautology), so every query has a
//! work budget; if one ever runs out, the answer is conservative — an earlier
//! boundary, or "not uniform" — which only costs smaller pages.

use core::fmt;

use super::MemType;

#[cfg(test)]
mod tests;

// ---------------------------------------------------------------------------
// MSR numbers, for the kernel's reads.
// ---------------------------------------------------------------------------

/// `IA32_MTRRCAP`: VCNT (bits 7:0), FIX (bit 8), WC (bit 10).
pub const IA32_MTRRCAP: u32 = 0xfe;
/// `IA32_MTRR_DEF_TYPE`: default type (bits 7:0), FE (bit 10), E (bit 11).
pub const IA32_MTRR_DEF_TYPE: u32 = 0x2ff;
/// The fixed-range MTRRs, in the order [`MtrrRegisters::fixed`] holds them
/// (which is address order): `FIX64K_00000`, `FIX16K_80000`,
/// `FIX16K_A0000`, `FIX4K_C0000` .. `FIX4K_F8000`. Read them only if
/// [`MtrrRegisters::has_fixed`].
pub const IA32_MTRR_FIX: [u32; 11] = [
    0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f,
];

/// `IA32_MTRR_PHYSBASEn`.
pub const fn ia32_mtrr_physbase(n: usize) -> u32 {
    0x200 + 2 * n as u32
}

/// `IA32_MTRR_PHYSMASKn`.
pub const fn ia32_mtrr_physmask(n: usize) -> u32 {
    0x201 + 2 * n as u32
}

/// The most variable ranges [`Mtrrs`] holds. Real CPUs have 8 to 10; VCNT
/// can say up to 255, and a count above this is rejected rather than
/// clamped, since a dropped UC range would silently turn MMIO cacheable.
pub const MAX_VARIABLE_RANGES: usize = 32;

/// The narrowest MAXPHYADDR accepted: the fixed ranges cover the first MiB.
/// Hardware reports 36 or more; the rules are well defined for anything that
/// covers the fixed-range megabyte, and host tests use narrow widths so that
/// a brute-force model can cover the whole physical address space.
pub const MIN_PHYS_ADDR_BITS: u8 = 20;
/// The widest MAXPHYADDR the architecture allows.
pub const MAX_PHYS_ADDR_BITS: u8 = 52;

const DEF_TYPE_FE: u64 = 1 << 10;
const DEF_TYPE_E: u64 = 1 << 11;
const PHYSMASK_VALID: u64 = 1 << 11;
const CAP_FIX: u64 = 1 << 8;
const CAP_WC: u64 = 1 << 10;
const PAGE_MASK: u64 = 0xfff;
/// The end of the fixed-range area.
const FIXED_END: u64 = 0x10_0000;
/// 8 types in each of the 11 fixed-range MSRs.
const FIXED_COUNT: usize = 88;
/// How many block evaluations one query may spend (see the module docs).
/// Configurations with contiguous masks use a few dozen.
const QUERY_BUDGET: u32 = 1 << 14;

// ---------------------------------------------------------------------------
// Overlapping variable ranges.
// ---------------------------------------------------------------------------

impl MemType {
    /// This type as a member of a [`TypeSet`].
    const fn bit(self) -> TypeSet {
        1 << self as u8
    }
}

/// A set of MTRR types, one bit per encoding.
type TypeSet = u8;

/// The type of an address matched by the variable ranges whose types are
/// `set` (SDM 12.11.4.1), or `default` if none matched.
const fn resolve(set: TypeSet, default: MemType) -> MemType {
    if set == 0 {
        return default;
    }
    // One UC range makes the overlap UC.
    if set & MemType::Uc.bit() != 0 {
        return MemType::Uc;
    }
    if set.count_ones() == 1 {
        return match MemType::from_mtrr(set.trailing_zeros() as u8) {
            Some(ty) => ty,
            None => MemType::Uc,
        };
    }
    // WT and WB overlap to WT. Every other mix is undefined by the SDM:
    // treat it as UC, the only type that cannot corrupt anything.
    if set == MemType::Wt.bit() | MemType::Wb.bit() {
        MemType::Wt
    } else {
        MemType::Uc
    }
}

// ---------------------------------------------------------------------------
// Raw registers and their validation.
// ---------------------------------------------------------------------------

/// One variable range's raw MSR pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VariableRangeMsrs {
    /// `IA32_MTRR_PHYSBASEn`: type (bits 7:0), base (bits 12 up).
    pub base: u64,
    /// `IA32_MTRR_PHYSMASKn`: valid (bit 11), mask (bits 12 up).
    pub mask: u64,
}

/// The MTRR MSRs as the kernel read them, unvalidated.
///
/// Fill it in place: [`MtrrRegisters::new`] with `IA32_MTRRCAP`,
/// `IA32_MTRR_DEF_TYPE` and MAXPHYADDR, then the fixed ranges if
/// [`has_fixed`](Self::has_fixed), then the first
/// [`variable_count`](Self::variable_count) pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MtrrRegisters {
    /// `IA32_MTRRCAP`.
    pub cap: u64,
    /// `IA32_MTRR_DEF_TYPE`.
    pub def_type: u64,
    /// The fixed-range MSRs, in [`IA32_MTRR_FIX`] order.
    pub fixed: [u64; 11],
    /// The variable ranges; only the first VCNT are looked at.
    pub variable: [VariableRangeMsrs; MAX_VARIABLE_RANGES],
    /// MAXPHYADDR (CPUID 0x8000_0008 EAX bits 7:0; 36 without that leaf).
    pub max_phys_addr: u8,
}

impl MtrrRegisters {
    /// Registers with the given capability and default-type MSRs and
    /// MAXPHYADDR, and every other MSR zero.
    pub const fn new(cap: u64, def_type: u64, max_phys_addr: u8) -> Self {
        MtrrRegisters {
            cap,
            def_type,
            fixed: [0; 11],
            variable: [VariableRangeMsrs { base: 0, mask: 0 }; MAX_VARIABLE_RANGES],
            max_phys_addr,
        }
    }

    /// VCNT: how many variable-range pairs the CPU has.
    pub const fn variable_count(&self) -> usize {
        (self.cap & 0xff) as usize
    }

    /// Whether the CPU has the fixed-range MTRRs (reading them otherwise
    /// faults).
    pub const fn has_fixed(&self) -> bool {
        self.cap & CAP_FIX != 0
    }

    /// Whether the CPU supports the WC type in the MTRRs.
    pub const fn has_wc(&self) -> bool {
        self.cap & CAP_WC != 0
    }
}

/// Why MTRR register values were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtrrError {
    /// MAXPHYADDR outside [`MIN_PHYS_ADDR_BITS`]..=[`MAX_PHYS_ADDR_BITS`].
    MaxPhysAddr {
        /// The value given.
        bits: u8,
    },
    /// VCNT above [`MAX_VARIABLE_RANGES`] with the MTRRs enabled.
    TooManyVariableRanges {
        /// VCNT.
        count: usize,
    },
    /// An MSR that matters has reserved bits set (for the base and mask
    /// MSRs: bits at or above MAXPHYADDR, which usually means a wrong
    /// MAXPHYADDR was passed in).
    ReservedBits {
        /// The MSR.
        msr: u32,
        /// Its value.
        value: u64,
    },
    /// An MSR that matters holds a reserved type encoding.
    ReservedType {
        /// The MSR.
        msr: u32,
        /// The encoding.
        raw: u8,
    },
}

impl fmt::Display for MtrrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MtrrError::MaxPhysAddr { bits } => write!(f, "unsupported MAXPHYADDR {bits}"),
            MtrrError::TooManyVariableRanges { count } => write!(
                f,
                "{count} variable MTRRs, more than the {MAX_VARIABLE_RANGES} supported"
            ),
            MtrrError::ReservedBits { msr, value } => {
                write!(f, "MSR {msr:#x} = {value:#x} has reserved bits set")
            }
            MtrrError::ReservedType { msr, raw } => {
                write!(f, "MSR {msr:#x} holds reserved memory type {raw}")
            }
        }
    }
}

/// One enabled variable range, normalised: `base` has only mask bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariableRange {
    /// PHYSBASE's address bits, restricted to the mask's bits.
    pub base: u64,
    /// PHYSMASK's mask bits (12 up to MAXPHYADDR - 1).
    pub mask: u64,
    /// The range's type.
    pub mem_type: MemType,
}

impl VariableRange {
    const EMPTY: VariableRange = VariableRange {
        base: 0,
        mask: 0,
        mem_type: MemType::Uc,
    };

    /// Whether the range covers `addr`: `addr & mask == base & mask`.
    pub const fn matches(&self, addr: u64) -> bool {
        addr & self.mask == self.base
    }

    /// The one naturally aligned block `[start, end)` the range covers, if
    /// its mask is contiguous: a single run of ones from some bit up to
    /// MAXPHYADDR, `top` being `1 << MAXPHYADDR` ([`Mtrrs::top`]). `None`
    /// for a non-contiguous mask, which matches several blocks.
    pub const fn span(&self, top: u64) -> Option<(u64, u64)> {
        let size = if self.mask == 0 {
            top
        } else {
            1 << self.mask.trailing_zeros()
        };
        if self.mask == (top - 1) & !(size - 1) {
            Some((self.base, self.base + size))
        } else {
            None
        }
    }
}

/// Validated MTRR state: answers memory-type queries over physical memory.
///
/// Physical addresses at or above `1 << MAXPHYADDR` ([`top`](Self::top))
/// hold nothing; they are reported as UC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mtrrs {
    enabled: bool,
    fixed_enabled: bool,
    default: MemType,
    fixed: [MemType; FIXED_COUNT],
    ranges: [VariableRange; MAX_VARIABLE_RANGES],
    count: usize,
    top: u64,
}

impl Mtrrs {
    /// Validates raw register values.
    ///
    /// Only what affects the answers is checked: with the MTRRs disabled
    /// (E = 0, everything UC) neither the ranges nor VCNT matter; the fixed
    /// ranges matter only if the CPU has them and FE = 1; disabled variable
    /// ranges never matter.
    ///
    /// # Errors
    ///
    /// [`MtrrError`] for an unsupported MAXPHYADDR, too many variable ranges,
    /// reserved bits or reserved type encodings in an MSR that matters.
    pub const fn new(regs: &MtrrRegisters) -> Result<Mtrrs, MtrrError> {
        let Some(top) = phys_top(regs.max_phys_addr) else {
            return Err(MtrrError::MaxPhysAddr {
                bits: regs.max_phys_addr,
            });
        };
        let def = regs.def_type;
        if def & !(0xff | DEF_TYPE_FE | DEF_TYPE_E) != 0 {
            return Err(MtrrError::ReservedBits {
                msr: IA32_MTRR_DEF_TYPE,
                value: def,
            });
        }
        let mut mtrrs = Mtrrs {
            enabled: def & DEF_TYPE_E != 0,
            fixed_enabled: def & DEF_TYPE_E != 0 && def & DEF_TYPE_FE != 0 && regs.has_fixed(),
            default: MemType::Uc,
            fixed: [MemType::Uc; FIXED_COUNT],
            ranges: [VariableRange::EMPTY; MAX_VARIABLE_RANGES],
            count: 0,
            top,
        };
        if !mtrrs.enabled {
            return Ok(mtrrs);
        }
        mtrrs.default = match MemType::from_mtrr(def as u8) {
            Some(ty) => ty,
            None => {
                return Err(MtrrError::ReservedType {
                    msr: IA32_MTRR_DEF_TYPE,
                    raw: def as u8,
                });
            }
        };
        if mtrrs.fixed_enabled {
            let mut i = 0;
            while i < FIXED_COUNT {
                let raw = (regs.fixed[i / 8] >> (8 * (i % 8))) as u8;
                mtrrs.fixed[i] = match MemType::from_mtrr(raw) {
                    Some(ty) => ty,
                    None => {
                        return Err(MtrrError::ReservedType {
                            msr: IA32_MTRR_FIX[i / 8],
                            raw,
                        });
                    }
                };
                i += 1;
            }
        }
        let vcnt = regs.variable_count();
        if vcnt > MAX_VARIABLE_RANGES {
            return Err(MtrrError::TooManyVariableRanges { count: vcnt });
        }
        let addr_bits = (top - 1) & !PAGE_MASK;
        let mut i = 0;
        while i < vcnt {
            let n = i;
            i += 1;
            let VariableRangeMsrs { base, mask } = regs.variable[n];
            if mask & PHYSMASK_VALID == 0 {
                continue;
            }
            if base & !(addr_bits | 0xff) != 0 {
                return Err(MtrrError::ReservedBits {
                    msr: ia32_mtrr_physbase(n),
                    value: base,
                });
            }
            if mask & !(addr_bits | PHYSMASK_VALID) != 0 {
                return Err(MtrrError::ReservedBits {
                    msr: ia32_mtrr_physmask(n),
                    value: mask,
                });
            }
            let Some(mem_type) = MemType::from_mtrr(base as u8) else {
                return Err(MtrrError::ReservedType {
                    msr: ia32_mtrr_physbase(n),
                    raw: base as u8,
                });
            };
            let mask = mask & addr_bits;
            mtrrs.ranges[mtrrs.count] = VariableRange {
                base: base & mask,
                mask,
                mem_type,
            };
            mtrrs.count += 1;
        }
        Ok(mtrrs)
    }

    /// The state of a CPU without MTRRs (CPUID.1:EDX.MTRR = 0): no MTRR
    /// constrains anything, which is what WB means in [`effective_type`](super::effective_type)
    /// (WB combined with any PAT type gives the PAT type).
    ///
    /// # Errors
    ///
    /// [`MtrrError::MaxPhysAddr`] for an unsupported MAXPHYADDR.
    pub const fn absent(max_phys_addr: u8) -> Result<Mtrrs, MtrrError> {
        let Some(top) = phys_top(max_phys_addr) else {
            return Err(MtrrError::MaxPhysAddr {
                bits: max_phys_addr,
            });
        };
        Ok(Mtrrs {
            enabled: true,
            fixed_enabled: false,
            default: MemType::Wb,
            fixed: [MemType::Uc; FIXED_COUNT],
            ranges: [VariableRange::EMPTY; MAX_VARIABLE_RANGES],
            count: 0,
            top,
        })
    }

    /// Whether the MTRRs are enabled (E = 1). Disabled MTRRs make all of
    /// memory UC.
    pub const fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the fixed ranges apply below 1 MiB.
    pub const fn fixed_enabled(&self) -> bool {
        self.fixed_enabled
    }

    /// The default type (UC while disabled).
    pub const fn default_type(&self) -> MemType {
        self.default
    }

    /// The enabled variable ranges, in MSR order.
    pub const fn variable_ranges(&self) -> &[VariableRange] {
        self.ranges.split_at(self.count).0
    }

    /// The end of the physical address space, `1 << MAXPHYADDR`.
    pub const fn top(&self) -> u64 {
        self.top
    }

    /// The MTRR type of physical address `addr`.
    pub const fn type_at(&self, addr: u64) -> MemType {
        if addr >= self.top || !self.enabled {
            return MemType::Uc;
        }
        if self.fixed_enabled && addr < FIXED_END {
            return self.fixed[fixed_index(addr)];
        }
        let mut matched: TypeSet = 0;
        let mut i = 0;
        while i < self.count {
            let range = &self.ranges[i];
            if range.matches(addr) {
                matched |= range.mem_type.bit();
            }
            i += 1;
        }
        resolve(matched, self.default)
    }

    /// The lowest address above `addr` with a type different from
    /// `addr`'s, or [`top`](Self::top) if there is none below it (so the
    /// type is constant on `[addr, next_boundary(addr))`). At or above the
    /// top, where everything is UC, it is `u64::MAX`.
    ///
    /// The search walks naturally aligned blocks upward from `addr` (at most
    /// MAXPHYADDR of them, each at least twice the previous), skipping
    /// every block that is uniformly of `addr`'s type and descending into
    /// the first that is not. Whether a block is uniform follows from each
    /// range's mask bits above and below the block size, without visiting
    /// its pages; see `block_type`. If the query's work budget runs out
    /// (only conceivable with many non-contiguous masks) the answer is the
    /// start of the first block not yet decided: lower than exact, never
    /// wrong.
    pub fn next_boundary(&self, addr: u64) -> u64 {
        self.next_boundary_within(addr, &mut Budget::new(QUERY_BUDGET))
    }

    /// The type of every byte of `[start, end)` if they all have one, else
    /// `None` (also for an empty range). Addresses at or above the top count
    /// as UC.
    pub fn uniform(&self, start: u64, end: u64) -> Option<MemType> {
        self.uniform_within(start, end, &mut Budget::new(QUERY_BUDGET))
    }

    fn uniform_within(&self, start: u64, end: u64, budget: &mut Budget) -> Option<MemType> {
        if start >= end {
            return None;
        }
        let ty = self.type_at(start);
        if start >= self.top {
            return Some(ty);
        }
        let boundary = self.next_boundary_within(start, budget);
        if boundary >= end || (boundary == self.top && ty == MemType::Uc) {
            Some(ty)
        } else {
            None
        }
    }

    fn next_boundary_within(&self, addr: u64, budget: &mut Budget) -> u64 {
        if addr >= self.top {
            return u64::MAX;
        }
        let ty = self.type_at(addr);
        // Types change only at 4 KiB boundaries. `top` is a power of two,
        // so every block below is aligned and ends at or below it.
        let mut block = (addr | PAGE_MASK) + 1;
        while block < self.top {
            let order = block.trailing_zeros();
            match self.first_change(block, order, ty, budget) {
                Ok(Some(change)) => return change,
                Ok(None) => block += 1 << order,
                Err(Undecided(at)) => return at,
            }
        }
        self.top
    }

    /// The lowest address in the aligned block `[start, start + 2^order)`
    /// whose type is not `ty`.
    fn first_change(
        &self,
        start: u64,
        order: u32,
        ty: MemType,
        budget: &mut Budget,
    ) -> Result<Option<u64>, Undecided> {
        match self.block_type(start, order, budget) {
            Err(Exhausted) => Err(Undecided(start)),
            Ok(Some(t)) if t == ty => Ok(None),
            Ok(Some(_)) => Ok(Some(start)),
            Ok(None) => {
                // Not uniform, so larger than a page: look at each half.
                let half = order - 1;
                match self.first_change(start, half, ty, budget)? {
                    Some(change) => Ok(Some(change)),
                    None => self.first_change(start + (1 << half), half, ty, budget),
                }
            }
        }
    }

    /// The type of the aligned block `[start, start + 2^order)` if it has
    /// one, `None` if not. The block lies below the top.
    ///
    /// Relative to the block each variable range is *never* (its mask bits
    /// above the block size disagree with the block's address), *always*
    /// (they agree and it has no mask bits inside the block) or *mixed*.
    /// If every combination of the mixed ranges' types gives one type, that
    /// is the block's type. Otherwise let `j` be the highest mask bit of any
    /// mixed range inside the block: no mixed range looks at the bits
    /// between `j` and the block size, so the block repeats its first
    /// `2^(j+1)` bytes, and it is uniform iff both halves of that stretch
    /// are, with one type.
    fn block_type(
        &self,
        start: u64,
        order: u32,
        budget: &mut Budget,
    ) -> Result<Option<MemType>, Exhausted> {
        budget.spend()?;
        if !self.enabled {
            return Ok(Some(MemType::Uc));
        }
        let size = 1u64 << order;
        if self.fixed_enabled && start < FIXED_END {
            if start + size <= FIXED_END {
                return Ok(self.fixed_uniform(start, start + size));
            }
            // The block holds the fixed area and more (start = 0): halve.
            let half = order - 1;
            let low = self.block_type(start, half, budget)?;
            if low.is_none() {
                return Ok(None);
            }
            let high = self.block_type(start + (1 << half), half, budget)?;
            return Ok(same(low, high));
        }
        let inside = size - 1;
        let mut always: TypeSet = 0;
        let mut mixed: TypeSet = 0;
        let mut mixed_bits = 0u64;
        for range in self.variable_ranges() {
            if (start ^ range.base) & range.mask & !inside != 0 {
                continue;
            }
            if range.mask & inside == 0 {
                always |= range.mem_type.bit();
            } else {
                mixed |= range.mem_type.bit();
                mixed_bits |= range.mask & inside;
            }
        }
        if let Some(ty) = every_combination(always, mixed, self.default) {
            return Ok(Some(ty));
        }
        let j = 63 - mixed_bits.leading_zeros();
        let low = self.block_type(start, j, budget)?;
        if low.is_none() {
            return Ok(None);
        }
        let high = self.block_type(start + (1 << j), j, budget)?;
        Ok(same(low, high))
    }

    /// The fixed ranges' type over `[start, end)` (below 1 MiB) if uniform.
    fn fixed_uniform(&self, start: u64, end: u64) -> Option<MemType> {
        let first = self.fixed[fixed_index(start)];
        let all_same = self.fixed[fixed_index(start)..=fixed_index(end - 1)]
            .iter()
            .all(|&ty| ty == first);
        all_same.then_some(first)
    }
}

/// `1 << bits` if `bits` is a supported MAXPHYADDR.
const fn phys_top(bits: u8) -> Option<u64> {
    if bits < MIN_PHYS_ADDR_BITS || bits > MAX_PHYS_ADDR_BITS {
        None
    } else {
        Some(1 << bits)
    }
}

/// The index into the fixed-range types of `addr` (below 1 MiB): eight
/// 64 KiB ranges from 0, sixteen 16 KiB ranges from 0x80000, sixty-four
/// 4 KiB ranges from 0xC0000.
const fn fixed_index(addr: u64) -> usize {
    let index = if addr < 0x8_0000 {
        addr >> 16
    } else if addr < 0xc_0000 {
        8 + ((addr - 0x8_0000) >> 14)
    } else {
        24 + ((addr - 0xc_0000) >> 12)
    };
    index as usize
}

/// The one type `always` plus any subset of `mixed` resolves to, if every
/// subset gives the same.
fn every_combination(always: TypeSet, mixed: TypeSet, default: MemType) -> Option<MemType> {
    let ty = resolve(always, default);
    let mut subset = mixed;
    while subset != 0 {
        if resolve(always | subset, default) != ty {
            return None;
        }
        subset = (subset - 1) & mixed;
    }
    Some(ty)
}

fn same(a: Option<MemType>, b: Option<MemType>) -> Option<MemType> {
    if a == b { a } else { None }
}

/// The work one query may still do, in block evaluations.
struct Budget {
    left: u32,
}

/// The budget ran out.
struct Exhausted;

/// The budget ran out while looking at the block starting here; everything
/// below it was decided.
struct Undecided(u64);

impl Budget {
    const fn new(left: u32) -> Self {
        Budget { left }
    }

    fn spend(&mut self) -> Result<(), Exhausted> {
        self.left = self.left.checked_sub(1).ok_or(Exhausted)?;
        Ok(())
    }
}

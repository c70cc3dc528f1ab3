//! Memory types: the MTRRs and the PAT (Intel SDM vol. 3, chapter 12).
//!
//! A large page has one memory type for all of it, so the handoff must never
//! let a large page cover physical memory whose MTRR type is not uniform. The
//! kernel reads the MSRs and hands their raw values to this module, which
//! validates them once ([`Mtrrs::new`]) and then answers, purely:
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
//!
//! The page-level side — which type a page-table entry selects through the
//! PAT, and what the MTRR and PAT types combine to — is [`Pat`] and
//! [`effective_type`].

use core::fmt;

use x86_64::structures::paging::PageTableFlags;

// ---------------------------------------------------------------------------
// MSR numbers, for the kernel's reads.
// ---------------------------------------------------------------------------

/// `IA32_MTRRCAP`: VCNT (bits 7:0), FIX (bit 8), WC (bit 10).
pub const IA32_MTRRCAP: u32 = 0xfe;
/// `IA32_MTRR_DEF_TYPE`: default type (bits 7:0), FE (bit 10), E (bit 11).
pub const IA32_MTRR_DEF_TYPE: u32 = 0x2ff;
/// `IA32_PAT`.
pub const IA32_PAT: u32 = 0x277;
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
// Memory types.
// ---------------------------------------------------------------------------

/// A memory type, with its architectural encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MemType {
    /// Uncacheable.
    Uc = 0,
    /// Write-combining.
    Wc = 1,
    /// Write-through.
    Wt = 4,
    /// Write-protected.
    Wp = 5,
    /// Write-back.
    Wb = 6,
    /// Uncached, overridable to WC by a WC MTRR: a PAT type only, reserved
    /// in the MTRRs.
    UcMinus = 7,
}

impl MemType {
    /// The type an MTRR field encodes, or `None` for the reserved encodings
    /// (2, 3, 7 and above).
    pub const fn from_mtrr(raw: u8) -> Option<MemType> {
        match raw {
            0 => Some(MemType::Uc),
            1 => Some(MemType::Wc),
            4 => Some(MemType::Wt),
            5 => Some(MemType::Wp),
            6 => Some(MemType::Wb),
            _ => None,
        }
    }

    /// The type a PAT entry encodes, or `None` for the reserved encodings
    /// (2, 3, 8 and above).
    pub const fn from_pat(raw: u8) -> Option<MemType> {
        match raw {
            7 => Some(MemType::UcMinus),
            _ => MemType::from_mtrr(raw),
        }
    }

    /// The architectural encoding.
    pub const fn encoding(self) -> u8 {
        self as u8
    }

    /// The SDM's abbreviation: "UC", "WC", "WT", "WP", "WB", "UC-".
    pub const fn name(self) -> &'static str {
        match self {
            MemType::Uc => "UC",
            MemType::Wc => "WC",
            MemType::Wt => "WT",
            MemType::Wp => "WP",
            MemType::Wb => "WB",
            MemType::UcMinus => "UC-",
        }
    }

    /// This type as a member of a [`TypeSet`].
    const fn bit(self) -> TypeSet {
        1 << self as u8
    }
}

impl fmt::Display for MemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

/// The type of memory whose MTRR type is `mtrr` and whose page-table entry
/// selects PAT type `pat` (SDM vol. 3, table "Effective Page-Level Memory
/// Types for Pentium III and More Recent Processor Families"; the Pentium
/// Pro and II had no PAT). The result is never UC-: what UC- means is
/// exactly this combination. `mtrr` = UC- is not an MTRR type; it is taken
/// as UC.
pub const fn effective_type(mtrr: MemType, pat: MemType) -> MemType {
    use MemType::{Uc, UcMinus, Wb, Wc, Wp, Wt};
    match mtrr {
        Uc | UcMinus => match pat {
            Wc => Wc,
            Uc | UcMinus | Wt | Wb | Wp => Uc,
        },
        Wc => match pat {
            Uc | Wt | Wp => Uc,
            UcMinus | Wc | Wb => Wc,
        },
        Wt => match pat {
            Uc | UcMinus => Uc,
            Wc => Wc,
            Wt | Wb => Wt,
            Wp => Wp,
        },
        Wb => match pat {
            Uc | UcMinus => Uc,
            Wc => Wc,
            Wt => Wt,
            Wb => Wb,
            Wp => Wp,
        },
        Wp => match pat {
            Uc => Uc,
            UcMinus | Wc => Wc,
            Wt => Wt,
            Wb | Wp => Wp,
        },
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
    /// constrains anything, which is what WB means in [`effective_type`]
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

// ---------------------------------------------------------------------------
// The PAT.
// ---------------------------------------------------------------------------

/// Which kind of leaf entry the cache bits are in: the PAT bit is bit 7 in a
/// 4 KiB PTE but bit 12 in a 2 MiB or 1 GiB entry, where bit 7 is PS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageKind {
    /// A 4 KiB page (PTE).
    Size4KiB,
    /// A 2 MiB or 1 GiB page (PDE or PDPTE with PS set).
    Large,
}

/// The PAT bit of a 4 KiB PTE.
pub const PTE_PAT_4KIB: u64 = 1 << 7;
/// The PAT bit of a 2 MiB or 1 GiB entry.
pub const PTE_PAT_LARGE: u64 = 1 << 12;

/// The page-table flags that select PAT entry `index` (0 to 7): PWT for bit
/// 0, PCD for bit 1, the PAT bit for bit 2.
///
/// # Panics
///
/// If `index` is above 7.
pub const fn pat_flags(index: u8, kind: PageKind) -> PageTableFlags {
    assert!(index < 8, "PAT index out of range");
    let mut bits = 0;
    if index & 1 != 0 {
        bits |= PageTableFlags::WRITE_THROUGH.bits();
    }
    if index & 2 != 0 {
        bits |= PageTableFlags::NO_CACHE.bits();
    }
    if index & 4 != 0 {
        bits |= match kind {
            PageKind::Size4KiB => PTE_PAT_4KIB,
            PageKind::Large => PTE_PAT_LARGE,
        };
    }
    PageTableFlags::from_bits_retain(bits)
}

/// The PAT entry a leaf entry's flags select. For [`PageKind::Large`], bit 7
/// (PS) is ignored.
pub const fn pat_index(flags: PageTableFlags, kind: PageKind) -> u8 {
    let bits = flags.bits();
    let pat_bit = match kind {
        PageKind::Size4KiB => PTE_PAT_4KIB,
        PageKind::Large => PTE_PAT_LARGE,
    };
    (bits & PageTableFlags::WRITE_THROUGH.bits() != 0) as u8
        | ((bits & PageTableFlags::NO_CACHE.bits() != 0) as u8) << 1
        | ((bits & pat_bit != 0) as u8) << 2
}

/// Why an `IA32_PAT` value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatError {
    /// An entry holds a reserved encoding (2, 3, or any bit above 2 set).
    ReservedType {
        /// The entry (0 to 7).
        index: u8,
        /// Its byte.
        raw: u8,
    },
}

impl fmt::Display for PatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PatError::ReservedType { index, raw } => {
                write!(f, "PAT entry {index} holds reserved encoding {raw:#x}")
            }
        }
    }
}

/// The page attribute table: the memory type each PWT/PCD/PAT combination
/// selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pat([MemType; 8]);

impl Pat {
    /// The power-on value, 0x0007040600070406: WB, WT, UC-, UC twice. It is
    /// also what PWT/PCD select on a CPU without the PAT.
    pub const RESET: Pat = Pat([
        MemType::Wb,
        MemType::Wt,
        MemType::UcMinus,
        MemType::Uc,
        MemType::Wb,
        MemType::Wt,
        MemType::UcMinus,
        MemType::Uc,
    ]);

    /// What Limine loads before entering the kernel: WB, WT, UC-, UC, WP, WC
    /// per its protocol (PROTOCOL.md, "Caching"), which leaves PAT6 and PAT7
    /// unspecified; Limine's code (`limine_32.asm_x86`,
    /// `smp_trampoline.asm_x86`) writes 0x0000010500070406, making them UC.
    /// Limine maps the framebuffer WC, through PAT5 (PAT bit + PWT). Read the
    /// MSR rather than trusting this when it matters.
    pub const LIMINE: Pat = Pat([
        MemType::Wb,
        MemType::Wt,
        MemType::UcMinus,
        MemType::Uc,
        MemType::Wp,
        MemType::Wc,
        MemType::Uc,
        MemType::Uc,
    ]);

    /// baton's PAT, Linux's layout (`arch/x86/mm/pat/memtype.c`): WB, WC,
    /// UC-, UC, WB, WP, UC-, WT (0x0407050600070106). Why:
    ///
    /// - Entries 0, 2 and 3 keep their power-on (and Limine) meaning, so
    ///   entries written under either table mean the same under this one for
    ///   WB, UC- and UC; only PWT alone changes, from WT to WC.
    /// - The types a kernel actually uses — WB, WC, UC-, UC — need only PWT
    ///   and PCD. The PAT bit sits at bit 7 in a 4 KiB entry and bit 12 in a
    ///   large one, so keeping it clear means splitting or merging a large
    ///   page never moves cache bits; and CPUs whose PAT-bit errata make
    ///   them ignore it still get the right type.
    /// - Entries 4 and 6 repeat 0 and 2 for those errata; the rarely used WP
    ///   and WT take the other two.
    ///
    /// Limine's framebuffer mapping selects PAT5, which is WP here: load this
    /// PAT only once the new tables are live.
    pub const BATON: Pat = Pat([
        MemType::Wb,
        MemType::Wc,
        MemType::UcMinus,
        MemType::Uc,
        MemType::Wb,
        MemType::Wp,
        MemType::UcMinus,
        MemType::Wt,
    ]);

    /// A PAT with these entries.
    pub const fn new(entries: [MemType; 8]) -> Pat {
        Pat(entries)
    }

    /// The eight entries.
    pub const fn entries(&self) -> [MemType; 8] {
        self.0
    }

    /// Decodes an `IA32_PAT` value.
    ///
    /// # Errors
    ///
    /// [`PatError::ReservedType`] for an entry with a reserved encoding.
    pub const fn from_msr(value: u64) -> Result<Pat, PatError> {
        let mut entries = [MemType::Uc; 8];
        let mut i = 0;
        while i < 8 {
            let raw = (value >> (8 * i)) as u8;
            entries[i] = match MemType::from_pat(raw) {
                Some(ty) => ty,
                None => {
                    return Err(PatError::ReservedType {
                        index: i as u8,
                        raw,
                    });
                }
            };
            i += 1;
        }
        Ok(Pat(entries))
    }

    /// The `IA32_PAT` value.
    pub const fn to_msr(&self) -> u64 {
        let mut value = 0;
        let mut i = 0;
        while i < 8 {
            value |= (self.0[i].encoding() as u64) << (8 * i);
            i += 1;
        }
        value
    }

    /// The type entry `index` selects.
    ///
    /// # Panics
    ///
    /// If `index` is above 7.
    pub const fn type_of(&self, index: u8) -> MemType {
        self.0[index as usize]
    }

    /// The lowest entry holding `ty`, or `None`. Lowest, so that a type
    /// present in both halves is reached with the PAT bit clear.
    pub const fn index_for(&self, ty: MemType) -> Option<u8> {
        let mut i = 0;
        while i < 8 {
            if self.0[i] as u8 == ty as u8 {
                return Some(i as u8);
            }
            i += 1;
        }
        None
    }

    /// The flags selecting `ty` in a `kind` entry, or `None` if this PAT has
    /// no entry for it.
    pub const fn flags_for(&self, ty: MemType, kind: PageKind) -> Option<PageTableFlags> {
        match self.index_for(ty) {
            Some(index) => Some(pat_flags(index, kind)),
            None => None,
        }
    }

    /// The type a `kind` entry with `flags` selects.
    pub const fn type_for_flags(&self, flags: PageTableFlags, kind: PageKind) -> MemType {
        self.type_of(pat_index(flags, kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MemType::{Uc, UcMinus, Wb, Wc, Wp, Wt};
    use proptest::prelude::*;

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
    fn mem_type_encodings() {
        for (raw, ty) in [(0, Uc), (1, Wc), (4, Wt), (5, Wp), (6, Wb)] {
            assert_eq!(MemType::from_mtrr(raw), Some(ty));
            assert_eq!(MemType::from_pat(raw), Some(ty));
            assert_eq!(ty.encoding(), raw);
        }
        assert_eq!(MemType::from_mtrr(7), None);
        assert_eq!(MemType::from_pat(7), Some(UcMinus));
        for raw in [2, 3, 8, 0x16, 0xff] {
            assert_eq!(MemType::from_mtrr(raw), None, "{raw}");
            assert_eq!(MemType::from_pat(raw), None, "{raw}");
        }
        assert_eq!(UcMinus.to_string(), "UC-");
        assert_eq!(Wb.to_string(), "WB");
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

    // -- effective types: one test per row of the SDM table ------------------

    macro_rules! effective {
        ($($name:ident: $mtrr:ident x $pat:ident => $eff:ident;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(effective_type($mtrr, $pat), $eff);
            }
        )*};
    }

    effective! {
        effective_uc_uc: Uc x Uc => Uc;
        effective_uc_ucm: Uc x UcMinus => Uc;
        effective_uc_wc: Uc x Wc => Wc;
        effective_uc_wt: Uc x Wt => Uc;
        effective_uc_wb: Uc x Wb => Uc;
        effective_uc_wp: Uc x Wp => Uc;
        effective_wc_uc: Wc x Uc => Uc;
        effective_wc_ucm: Wc x UcMinus => Wc;
        effective_wc_wc: Wc x Wc => Wc;
        effective_wc_wt: Wc x Wt => Uc;
        effective_wc_wb: Wc x Wb => Wc;
        effective_wc_wp: Wc x Wp => Uc;
        effective_wt_uc: Wt x Uc => Uc;
        effective_wt_ucm: Wt x UcMinus => Uc;
        effective_wt_wc: Wt x Wc => Wc;
        effective_wt_wt: Wt x Wt => Wt;
        effective_wt_wb: Wt x Wb => Wt;
        effective_wt_wp: Wt x Wp => Wp;
        effective_wb_uc: Wb x Uc => Uc;
        effective_wb_ucm: Wb x UcMinus => Uc;
        effective_wb_wc: Wb x Wc => Wc;
        effective_wb_wt: Wb x Wt => Wt;
        effective_wb_wb: Wb x Wb => Wb;
        effective_wb_wp: Wb x Wp => Wp;
        effective_wp_uc: Wp x Uc => Uc;
        effective_wp_ucm: Wp x UcMinus => Wc;
        effective_wp_wc: Wp x Wc => Wc;
        effective_wp_wt: Wp x Wt => Wt;
        effective_wp_wb: Wp x Wb => Wp;
        effective_wp_wp: Wp x Wp => Wp;
    }

    #[test]
    fn effective_type_never_yields_uc_minus() {
        for mtrr in [Uc, Wc, Wt, Wp, Wb, UcMinus] {
            for pat in [Uc, Wc, Wt, Wp, Wb, UcMinus] {
                assert_ne!(effective_type(mtrr, pat), UcMinus);
            }
            assert_eq!(effective_type(UcMinus, mtrr), effective_type(Uc, mtrr));
        }
    }

    // -- PAT -----------------------------------------------------------------

    #[test]
    fn pat_values() {
        assert_eq!(Pat::RESET.to_msr(), 0x0007_0406_0007_0406);
        assert_eq!(Pat::LIMINE.to_msr(), 0x0000_0105_0007_0406);
        assert_eq!(Pat::BATON.to_msr(), 0x0407_0506_0007_0106);
        for pat in [Pat::RESET, Pat::LIMINE, Pat::BATON] {
            assert_eq!(Pat::from_msr(pat.to_msr()), Ok(pat));
            assert_eq!(Pat::new(pat.entries()), pat);
        }
        // baton keeps entries 0, 2 and 3 of the power-on and Limine tables.
        for i in [0, 2, 3] {
            assert_eq!(Pat::BATON.type_of(i), Pat::RESET.type_of(i));
            assert_eq!(Pat::BATON.type_of(i), Pat::LIMINE.type_of(i));
        }
    }

    #[test]
    fn pat_reserved_encodings() {
        for (value, index, raw) in [
            (0x0007_0406_0207_0406u64, 3, 2),
            (0x0007_0406_0007_0403, 0, 3),
            (0x0807_0406_0007_0406, 7, 8),
            (0x0007_0406_0007_0416, 0, 0x16),
        ] {
            assert_eq!(
                Pat::from_msr(value),
                Err(PatError::ReservedType { index, raw }),
                "{value:#x}"
            );
        }
        assert_eq!(
            PatError::ReservedType { index: 4, raw: 2 }.to_string(),
            "PAT entry 4 holds reserved encoding 0x2"
        );
    }

    #[test]
    fn pat_index_for_types() {
        let baton = [(Wb, 0), (Wc, 1), (UcMinus, 2), (Uc, 3), (Wp, 5), (Wt, 7)];
        for (ty, index) in baton {
            assert_eq!(Pat::BATON.index_for(ty), Some(index), "{ty}");
        }
        assert_eq!(Pat::LIMINE.index_for(Wc), Some(5));
        assert_eq!(Pat::LIMINE.index_for(Wp), Some(4));
        assert_eq!(Pat::LIMINE.index_for(Uc), Some(3));
        assert_eq!(Pat::RESET.index_for(Wc), None);
        assert_eq!(Pat::RESET.index_for(Wp), None);
        assert_eq!(Pat::RESET.flags_for(Wc, PageKind::Large), None);
    }

    #[test]
    fn pat_flag_bits() {
        use PageTableFlags as F;
        let pat4k = F::from_bits_retain(PTE_PAT_4KIB);
        let pat_large = F::from_bits_retain(PTE_PAT_LARGE);
        assert_eq!(pat_flags(0, PageKind::Size4KiB), F::empty());
        assert_eq!(pat_flags(1, PageKind::Large), F::WRITE_THROUGH);
        assert_eq!(
            pat_flags(3, PageKind::Size4KiB),
            F::WRITE_THROUGH | F::NO_CACHE
        );
        assert_eq!(pat_flags(5, PageKind::Size4KiB), F::WRITE_THROUGH | pat4k);
        assert_eq!(pat_flags(5, PageKind::Large), F::WRITE_THROUGH | pat_large);
        assert_eq!(
            pat_flags(7, PageKind::Large),
            F::WRITE_THROUGH | F::NO_CACHE | pat_large
        );
        for kind in [PageKind::Size4KiB, PageKind::Large] {
            for index in 0..8 {
                let flags = pat_flags(index, kind) | F::PRESENT | F::WRITABLE;
                assert_eq!(pat_index(flags, kind), index);
            }
        }
        // In a large entry bit 7 is PS, not PAT.
        let large = F::PRESENT | F::HUGE_PAGE | F::NO_CACHE;
        assert_eq!(pat_index(large, PageKind::Large), 2);
        assert_eq!(pat_index(large, PageKind::Size4KiB), 6);
        assert_eq!(
            Pat::BATON.flags_for(Wc, PageKind::Large),
            Some(F::WRITE_THROUGH)
        );
    }

    #[test]
    fn limine_framebuffer_flags_change_meaning_under_batons_pat() {
        // Limine maps the framebuffer WC through PAT5; under baton's PAT the
        // same bits select WP, hence "load the PAT with the new tables".
        let fb = Pat::LIMINE.flags_for(Wc, PageKind::Size4KiB).unwrap();
        assert_eq!(pat_index(fb, PageKind::Size4KiB), 5);
        assert_eq!(Pat::LIMINE.type_for_flags(fb, PageKind::Size4KiB), Wc);
        assert_eq!(Pat::BATON.type_for_flags(fb, PageKind::Size4KiB), Wp);
        // WB, UC- and UC mappings keep their meaning.
        for ty in [Wb, UcMinus, Uc] {
            let flags = Pat::LIMINE.flags_for(ty, PageKind::Large).unwrap();
            assert_eq!(Pat::BATON.type_for_flags(flags, PageKind::Large), ty);
        }
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
}

//! The page attribute table: the memory type each combination of a leaf
//! entry's PWT, PCD and PAT bits selects, and the flags that select a type.

use core::fmt;

use x86_64::structures::paging::PageTableFlags;

use super::MemType;
use crate::paging::{PAT_4K, PAT_LARGE};

#[cfg(test)]
mod tests;

/// `IA32_PAT`.
pub const IA32_PAT: u32 = 0x277;

/// Which kind of leaf entry the cache bits are in: the PAT bit is bit 7 in a
/// 4 KiB PTE but bit 12 in a 2 MiB or 1 GiB entry, where bit 7 is PS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageKind {
    /// A 4 KiB page (PTE).
    Size4KiB,
    /// A 2 MiB or 1 GiB page (PDE or PDPTE with PS set).
    Large,
}

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
            PageKind::Size4KiB => PAT_4K.bits(),
            PageKind::Large => PAT_LARGE.bits(),
        };
    }
    PageTableFlags::from_bits_retain(bits)
}

/// The PAT entry a leaf entry's flags select. For [`PageKind::Large`], bit 7
/// (PS) is ignored.
pub const fn pat_index(flags: PageTableFlags, kind: PageKind) -> u8 {
    let bits = flags.bits();
    let pat_bit = match kind {
        PageKind::Size4KiB => PAT_4K.bits(),
        PageKind::Large => PAT_LARGE.bits(),
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
    /// per its protocol (Limine's PROTOCOL.md, "Caching"), which leaves PAT6 and PAT7
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

    /// The flags selecting `ty` through PWT and PCD alone (an entry 0 to 3),
    /// which mean the same in a 4 KiB and a large entry: mappings that may
    /// use large pages need such an encoding. `None` if only an entry with
    /// the PAT bit (or none) holds `ty`.
    pub const fn flags_any_size(&self, ty: MemType) -> Option<PageTableFlags> {
        match self.index_for(ty) {
            Some(index) if index < 4 => Some(pat_flags(index, PageKind::Size4KiB)),
            _ => None,
        }
    }

    /// The type a `kind` entry with `flags` selects.
    pub const fn type_for_flags(&self, flags: PageTableFlags, kind: PageKind) -> MemType {
        self.type_of(pat_index(flags, kind))
    }
}

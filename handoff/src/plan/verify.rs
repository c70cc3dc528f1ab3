//! [`verify`]: built or live tables held to the plan, leaf by leaf, and
//! every physmap leaf to the memory map and the MTRRs directly, so that a
//! plan that went wrong cannot vouch for itself.

use core::fmt;

use x86_64::PhysAddr;
use x86_64::structures::paging::PageTableFlags;

use super::Inputs;
use super::{MAX_MAPPINGS, Plan, Purpose, ram_pat_type};
use crate::memmap::MemoryMap;
use crate::memtype::{MemType, PageKind, uniform_effective};
use crate::paging::{Leaf, LeafCount, PageSize, Walker, largest_pages};
use crate::phys::PhysWindow;

/// Why built tables do not match the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// A leaf outside every planned mapping.
    Stray {
        /// The leaf's virtual address.
        virt: u64,
        /// Its physical address.
        phys: PhysAddr,
    },
    /// A leaf inside a mapping but pointing elsewhere, with other flags,
    /// or of another size than the plan's.
    Wrong {
        /// The leaf's virtual address.
        virt: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// A planned mapping not fully present.
    Missing {
        /// The mapping's first virtual address.
        virt: u64,
        /// The bytes of it that are mapped.
        mapped: u64,
        /// Its length.
        len: u64,
    },
    /// A physmap leaf covering a range of non-uniform effective type or
    /// something that is not RAM.
    NotUniform {
        /// The leaf's virtual address.
        virt: u64,
        /// Its size.
        size: PageSize,
    },
    /// A physmap leaf over RAM whose EFI attributes call for different
    /// memory types: the type changes at physical address `at`.
    AttrNotUniform {
        /// The leaf's virtual address.
        virt: u64,
        /// Its size.
        size: PageSize,
        /// The first physical address of another type.
        at: u64,
    },
    /// A framebuffer-window leaf over RAM.
    FramebufferOverRam {
        /// The leaf's virtual address.
        virt: u64,
        /// The first RAM address under it.
        ram: u64,
    },
    /// A physmap leaf whose PAT-encoded memory type is not the one the EFI
    /// attributes of the RAM under it call for.
    TypeMismatch {
        /// The leaf's virtual address.
        virt: u64,
        /// Its size.
        size: PageSize,
        /// The type the leaf's flags select.
        leaf: MemType,
        /// The type the memory map calls for.
        map: MemType,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            VerifyError::Stray { virt, phys } => write!(
                f,
                "leaf {virt:#x} -> {:#x} is in no planned mapping",
                phys.as_u64()
            ),
            VerifyError::Wrong { virt, what } => write!(f, "leaf {virt:#x}: {what}"),
            VerifyError::Missing { virt, mapped, len } => write!(
                f,
                "mapping at {virt:#x} has {mapped:#x} of {len:#x} bytes mapped"
            ),
            VerifyError::NotUniform { virt, size } => write!(
                f,
                "{size:?} leaf at {virt:#x} covers non-RAM or a memory-type change"
            ),
            VerifyError::AttrNotUniform { virt, size, at } => write!(
                f,
                "{size:?} leaf at {virt:#x} covers RAM whose EFI attributes change \
                 the memory type at {at:#x}"
            ),
            VerifyError::FramebufferOverRam { virt, ram } => {
                write!(f, "framebuffer leaf at {virt:#x} maps RAM at {ram:#x}")
            }
            VerifyError::TypeMismatch {
                virt,
                size,
                leaf,
                map,
            } => write!(
                f,
                "{size:?} leaf at {virt:#x} selects {leaf}, the memory map calls for {map}"
            ),
        }
    }
}

/// Why `start..end` has no one PAT type for RAM (see [`ram_type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RamTypeError {
    /// Some of it is not RAM, or a hole.
    NotRam,
    /// The EFI attributes call for another type from `at` on.
    Changes { at: u64 },
}

/// The PAT type the memory map calls for over `start..end`, read from the
/// map alone (not from the plan): every region under it must be RAM
/// (touching regions of any RAM kind, no hole) whose EFI attributes give
/// the same [`ram_pat_type`].
fn ram_type(map: &MemoryMap, start: u64, end: u64) -> Result<MemType, RamTypeError> {
    let regions = map.regions();
    let mut i = regions.partition_point(|r| r.end <= start);
    let mut at = start;
    let mut ty = None;
    while at < end {
        let r = match regions.get(i) {
            Some(r) if r.start <= at && r.kind.is_ram() => r,
            _ => return Err(RamTypeError::NotRam),
        };
        let here = ram_pat_type(r.attr);
        match ty {
            None => ty = Some(here),
            Some(first) if first != here => return Err(RamTypeError::Changes { at }),
            Some(_) => {}
        }
        at = r.end;
        i += 1;
    }
    ty.ok_or(RamTypeError::NotRam)
}

/// What [`verify`] checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verified {
    /// Leaves walked.
    pub leaves: LeafCount,
    /// Bytes mapped.
    pub bytes: u64,
    /// Leaves in dynamic regions, not held to the plan.
    pub dynamic: u64,
}

/// Holds the tables under `walker` to `plan`: every leaf lies in exactly
/// one planned mapping, points where the mapping says, has its flags and
/// the page size [`largest_pages`] gives and the planned memory type; every
/// mapping is fully present; nothing else is mapped (so the lower half is
/// empty) outside the dynamic regions (see [`Plan::allow_dynamic`]).
///
/// Physmap leaves are also held to the memory map and the MTRRs
/// independently of the plan, so that a plan that went wrong cannot vouch
/// for itself: every region under the leaf must be RAM, the types its EFI
/// attributes call for ([`ram_pat_type`]) must be one and equal to the
/// type the leaf's PAT bits select, and the MTRR type combined with it
/// must be uniform over the leaf.
pub fn verify<W: PhysWindow + ?Sized>(
    plan: &Plan,
    walker: &Walker<'_, W>,
    inputs: &Inputs<'_>,
) -> Result<Verified, VerifyError> {
    let mtrrs = inputs.mtrrs;
    let mappings = plan.mappings();
    let meta = plan.meta();
    let mut covered = [0u64; MAX_MAPPINGS];
    let mut verified = Verified::default();
    for leaf in walker.leaves() {
        if plan.is_dynamic(leaf.virt) {
            verified.dynamic += 1;
            continue;
        }
        let size = leaf.size.bytes();
        // The mappings are sorted by virtual address: the candidate is the
        // last one starting at or below the leaf.
        let i = mappings.partition_point(|m| m.virt <= leaf.virt);
        let stray = VerifyError::Stray {
            virt: leaf.virt,
            phys: leaf.phys,
        };
        let Some(i) = i.checked_sub(1) else {
            return Err(stray);
        };
        let m = &mappings[i];
        if !m.contains(leaf.virt) {
            return Err(stray);
        }
        let wrong = |what| VerifyError::Wrong {
            virt: leaf.virt,
            what,
        };
        let offset = leaf.virt - m.virt;
        if offset + size > m.len {
            return Err(wrong("extends past its mapping"));
        }
        if leaf.phys != m.phys + offset {
            return Err(wrong("points at the wrong physical address"));
        }
        let (_, _, expected) = largest_pages(leaf.virt, leaf.phys, m.len - offset, m.max_page)
            .next()
            .expect("a non-empty remainder has a first page");
        if leaf.size != expected {
            return Err(wrong("is not the page size the plan chose"));
        }
        let kind = if leaf.size == PageSize::Size4K {
            PageKind::Size4KiB
        } else {
            PageKind::Large
        };
        let perms = PageTableFlags::WRITABLE
            | PageTableFlags::NO_EXECUTE
            | PageTableFlags::GLOBAL
            | PageTableFlags::USER_ACCESSIBLE;
        if leaf.flags & perms != m.flags & perms {
            return Err(wrong("has other permissions than planned"));
        }
        // Compare types, not bits: two PAT entries may hold one type.
        if inputs.pat.type_for_flags(leaf.flags, kind) != meta[i].pat_type {
            return Err(wrong("selects another memory type than planned"));
        }
        if matches!(
            meta[i].purpose,
            Purpose::EfiRuntime(_) | Purpose::Framebuffer
        ) {
            let start = leaf.phys.as_u64();
            if uniform_effective(mtrrs, start, start + size, meta[i].pat_type).is_none() {
                return Err(VerifyError::NotUniform {
                    virt: leaf.virt,
                    size: leaf.size,
                });
            }
        }
        if meta[i].purpose == Purpose::Physmap {
            check_physmap_leaf(&leaf, inputs)?;
        }
        if meta[i].purpose == Purpose::Framebuffer {
            check_framebuffer_leaf(&leaf, inputs.map)?;
        }
        covered[i] += size;
        verified.bytes += size;
        match leaf.size {
            PageSize::Size4K => verified.leaves.size_4k += 1,
            PageSize::Size2M => verified.leaves.size_2m += 1,
            PageSize::Size1G => verified.leaves.size_1g += 1,
        }
    }
    for (m, &mapped) in mappings.iter().zip(&covered[..mappings.len()]) {
        if mapped != m.len {
            return Err(VerifyError::Missing {
                virt: m.virt,
                mapped,
                len: m.len,
            });
        }
    }
    Ok(verified)
}

/// Holds a physmap leaf to the memory map and the MTRRs, not to the plan:
/// every region under it is RAM whose EFI attributes call for the one type
/// the leaf's PAT bits select, the effective type is uniform over it, and
/// it lies in the physmap region.
fn check_physmap_leaf(leaf: &Leaf, inputs: &Inputs<'_>) -> Result<(), VerifyError> {
    let start = leaf.phys.as_u64();
    let end = start + leaf.size.bytes();
    let not_uniform = VerifyError::NotUniform {
        virt: leaf.virt,
        size: leaf.size,
    };
    let kind = if leaf.size == PageSize::Size4K {
        PageKind::Size4KiB
    } else {
        PageKind::Large
    };
    // From the leaf's own bits and the map, not the plan's meta.
    let leaf_type = inputs.pat.type_for_flags(leaf.flags, kind);
    match ram_type(inputs.map, start, end) {
        Err(RamTypeError::NotRam) => return Err(not_uniform),
        Err(RamTypeError::Changes { at }) => {
            return Err(VerifyError::AttrNotUniform {
                virt: leaf.virt,
                size: leaf.size,
                at,
            });
        }
        Ok(map_type) if map_type != leaf_type => {
            return Err(VerifyError::TypeMismatch {
                virt: leaf.virt,
                size: leaf.size,
                leaf: leaf_type,
                map: map_type,
            });
        }
        Ok(_) => {}
    }
    if uniform_effective(inputs.mtrrs, start, end, leaf_type).is_none() {
        return Err(not_uniform);
    }
    let layout = inputs.layout;
    if leaf.virt < layout.page_offset_base() || leaf.virt >= layout.physmap_end() {
        return Err(VerifyError::Wrong {
            virt: leaf.virt,
            what: "physmap leaf outside the physmap region",
        });
    }
    Ok(())
}

/// Holds a framebuffer-window leaf to the memory map, not to the plan: it
/// maps device memory, never RAM.
fn check_framebuffer_leaf(leaf: &Leaf, map: &MemoryMap) -> Result<(), VerifyError> {
    let start = leaf.phys.as_u64();
    let end = start + leaf.size.bytes();
    match map.first_ram_in(start, end) {
        Some(ram) => Err(VerifyError::FramebufferOverRam {
            virt: leaf.virt,
            ram,
        }),
        None => Ok(()),
    }
}

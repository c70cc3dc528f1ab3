//! The pure half of baton's early boot.
//!
//! Everything here runs on the host under `cargo test -p handoff`: it reads
//! no hardware and owns no memory. The kernel feeds it what Limine and the
//! CPU report and applies what it decides. Physical memory is reached only
//! through the traits of [`phys`], the one seam where the kernel vouches for
//! addresses.
//!
//! The modules, in the order data flows through them at boot:
//!
//! - [`cmdline`]: the kernel command line, parsed without ever failing;
//! - [`revision`]: which Limine base revision is in effect, and which of
//!   Limine's pointers are physical under it;
//! - [`memmap`]: Limine's and the firmware's memory maps, validated and
//!   merged into one normalised map, with one policy per kind of memory;
//! - [`memtype`]: the MTRRs and the PAT, and where the effective memory type
//!   of physical memory changes;
//! - [`layout`]: the kernel's virtual address space (Linux's layout), one
//!   table for both paging modes, and the rules any layout in effect keeps;
//! - [`kaslr`]: the randomised bases of the physmap, vmalloc and the
//!   vmemmap, and the mixing of the entropy they are drawn from;
//! - [`plan`]: what the new page tables map, with which page sizes, and
//!   the check that built tables say exactly that;
//! - [`phys`]: the seam to physical memory (a frame source and a window);
//! - [`paging`]: the page-table builder, walker, unmapper, ptdump and W^X
//!   check over that seam;
//! - [`efi`]: the EFI runtime window and the map SetVirtualAddressMap takes;
//! - [`frames`]: the buddy frame allocator over the normalised map, with
//!   its descriptors in the vmemmap;
//! - [`vmalloc`]: the vmalloc region's address-space allocator;
//! - [`fault`]: names and decodings for exception reports;
//! - [`symbols`]: function names for addresses, from the kernel's ELF
//!   symbol table, for fault reports and call traces;
//! - `sim` (feature `sim`, and tests): simulated physical memory that
//!   checks every access, for host tests and benchmarks.
//!
//! Virtual addresses are plain `u64` here: the `x86_64` crate's `VirtAddr`
//! only admits 4-level canonical addresses, and baton also builds 5-level
//! tables. Physical addresses and frames use the `x86_64` crate's types.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(all(feature = "sim", not(test)))]
extern crate std;

pub mod cmdline;
pub mod efi;
pub mod fault;
pub mod frames;
pub mod kaslr;
pub mod layout;
pub mod memmap;
pub mod memtype;
pub mod paging;
pub mod phys;
pub mod plan;
pub mod revision;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod symbols;
pub mod vmalloc;

/// The base page size.
pub const PAGE_SIZE: u64 = 4096;

/// The paging mode: how many levels of page tables translate an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Levels {
    /// 4-level paging: 48-bit virtual addresses, PML4 at the top.
    Four,
    /// 5-level paging (CR4.LA57): 57-bit virtual addresses, PML5 at the top.
    Five,
}

impl Levels {
    /// The number of table levels (4 or 5).
    pub const fn count(self) -> usize {
        match self {
            Levels::Four => 4,
            Levels::Five => 5,
        }
    }

    /// The number of implemented virtual-address bits (48 or 57).
    pub const fn va_bits(self) -> u32 {
        match self {
            Levels::Four => 48,
            Levels::Five => 57,
        }
    }

    /// Whether `va` is canonical: its top bits copy bit `va_bits - 1`.
    pub const fn is_canonical(self, va: u64) -> bool {
        self.sign_extend(va) == va
    }

    /// `va` with the bits above `va_bits - 1` copied from that bit.
    pub const fn sign_extend(self, va: u64) -> u64 {
        let shift = 64 - self.va_bits();
        (((va << shift) as i64) >> shift) as u64
    }

    /// The bytes one top-level entry spans (512 GiB or 256 TiB).
    pub const fn top_entry_span(self) -> u64 {
        1 << (self.va_bits() - 9)
    }
}

#[cfg(test)]
mod tests {
    use super::Levels;

    #[test]
    fn canonical_addresses() {
        assert!(Levels::Four.is_canonical(0xffff_8880_0000_0000));
        assert!(!Levels::Four.is_canonical(0xff11_0000_0000_0000));
        assert!(Levels::Five.is_canonical(0xff11_0000_0000_0000));
        assert!(Levels::Four.is_canonical(0x0000_7fff_ffff_f000));
        assert!(!Levels::Four.is_canonical(0x0000_8000_0000_0000));
        assert_eq!(
            Levels::Four.sign_extend(0x0000_8000_0000_0000),
            0xffff_8000_0000_0000
        );
        assert_eq!(Levels::Four.top_entry_span(), 512 << 30);
        assert_eq!(Levels::Five.top_entry_span(), 256 << 40);
    }
}

//! The pure half of baton's early boot.
//!
//! Everything here runs on the host under `cargo test -p handoff`: it reads
//! no hardware and owns no memory. The kernel feeds it what Limine and the
//! CPU report and applies what it decides. Physical memory is reached only
//! through the traits of [`phys`], the one seam where the kernel vouches for
//! addresses.
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
pub mod layout;
pub mod memmap;
pub mod mtrr;
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

//! The PAT: values, encodings and the flags that select an entry.

use x86_64::structures::paging::PageTableFlags;

use super::*;
use crate::memtype::MemType::{Uc, UcMinus, Wb, Wc, Wp, Wt};

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
    let pat4k = PAT_4K;
    let pat_large = PAT_LARGE;
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

#[test]
fn flags_any_size_use_pwt_and_pcd_only() {
    use PageTableFlags as F;
    assert_eq!(Pat::BATON.flags_any_size(Wb), Some(F::empty()));
    assert_eq!(Pat::BATON.flags_any_size(Wc), Some(F::WRITE_THROUGH));
    assert_eq!(
        Pat::BATON.flags_any_size(Uc),
        Some(F::WRITE_THROUGH | F::NO_CACHE)
    );
    // WP and WT sit in entries 5 and 7 of baton's PAT: the PAT bit, whose
    // place depends on the page size.
    assert_eq!(Pat::BATON.flags_any_size(Wp), None);
    assert_eq!(Pat::BATON.flags_any_size(Wt), None);
    // Under Limine's PAT, WC is entry 5: 4 KiB pages only.
    assert_eq!(Pat::LIMINE.flags_any_size(Wc), None);
    for ty in [Wb, Wc, UcMinus, Uc] {
        let flags = Pat::BATON.flags_any_size(ty).unwrap();
        for kind in [PageKind::Size4KiB, PageKind::Large] {
            assert_eq!(Pat::BATON.type_for_flags(flags, kind), ty);
        }
    }
}

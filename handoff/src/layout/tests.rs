//! The layout table's host tests.

use super::*;

const KINDS: [RegionKind; REGION_COUNT] = [
    RegionKind::LowerHalf,
    RegionKind::GuardHole,
    RegionKind::LdtRemap,
    RegionKind::Physmap,
    RegionKind::Vmalloc,
    RegionKind::Vmemmap,
    RegionKind::EfiRuntime,
    RegionKind::KernelImage,
    RegionKind::Modules,
    RegionKind::Fixmap,
];

fn both() -> [&'static Layout; 2] {
    [
        Layout::for_levels(Levels::Four),
        Layout::for_levels(Levels::Five),
    ]
}

#[test]
fn for_levels_picks_the_matching_table() {
    assert_eq!(Layout::for_levels(Levels::Four).levels(), Levels::Four);
    assert_eq!(Layout::for_levels(Levels::Five).levels(), Levels::Five);
}

#[test]
fn four_level_values_match_linux() {
    let l = Layout::for_levels(Levels::Four);
    assert_eq!(l.lower_half_end(), 0x0000_8000_0000_0000);
    assert_eq!(l.page_offset_base(), 0xffff_8880_0000_0000);
    assert_eq!(l.physmap_end(), 0xffff_c880_0000_0000);
    assert_eq!(l.physmap_size(), 64 << 40);
    assert_eq!(l.vmalloc_base(), 0xffff_c900_0000_0000);
    assert_eq!(l.vmalloc_end(), 0xffff_e900_0000_0000);
    assert_eq!(l.vmemmap_base(), 0xffff_ea00_0000_0000);
    assert_eq!(l.vmemmap_end(), 0xffff_eb00_0000_0000);
    let guard = l.region(RegionKind::GuardHole);
    assert_eq!(
        (guard.start, guard.size()),
        (0xffff_8000_0000_0000, 8 << 40)
    );
    let ldt = l.region(RegionKind::LdtRemap);
    assert_eq!((ldt.start, ldt.size()), (0xffff_8800_0000_0000, 512 << 30));
}

#[test]
fn five_level_values_match_linux() {
    let l = Layout::for_levels(Levels::Five);
    assert_eq!(l.lower_half_end(), 0x0100_0000_0000_0000);
    assert_eq!(l.page_offset_base(), 0xff11_0000_0000_0000);
    assert_eq!(l.physmap_end(), 0xff91_0000_0000_0000);
    assert_eq!(l.physmap_size(), 32 << 50);
    assert_eq!(l.vmalloc_base(), 0xffa0_0000_0000_0000);
    assert_eq!(l.vmalloc_end(), 0xffd2_0000_0000_0000);
    assert_eq!(l.vmemmap_base(), 0xffd4_0000_0000_0000);
    assert_eq!(l.vmemmap_end(), 0xffd6_0000_0000_0000);
    let guard = l.region(RegionKind::GuardHole);
    assert_eq!(
        (guard.start, guard.size()),
        (0xff00_0000_0000_0000, 4 << 50)
    );
    let ldt = l.region(RegionKind::LdtRemap);
    assert_eq!((ldt.start, ldt.size()), (0xff10_0000_0000_0000, 1 << 48));
}

#[test]
fn top_regions_are_shared_and_match_linux() {
    for l in both() {
        assert_eq!(l.efi_window_start(), 0xffff_ffef_0000_0000);
        assert_eq!(l.efi_window_end(), 0xffff_ffff_0000_0000);
        assert_eq!(l.efi_top_down_start(), l.efi_window_end());
        assert_eq!(l.efi_window_end() - l.efi_window_start(), 64 << 30);
        assert_eq!(l.kernel_image_start(), 0xffff_ffff_8000_0000);
        assert_eq!(l.kernel_image_end(), 0xffff_ffff_a000_0000);
        assert_eq!(l.modules_start(), 0xffff_ffff_a000_0000);
        assert_eq!(l.modules_end(), 0xffff_ffff_ff00_0000);
        let fixmap = l.region(RegionKind::Fixmap);
        assert_eq!(
            (fixmap.start, fixmap.end),
            (0xffff_ffff_ff00_0000, FIXMAP_END)
        );
    }
    assert_eq!(LAYOUT_4.regions()[6..], LAYOUT_5.regions()[6..]);
}

#[test]
fn regions_are_ordered_disjoint_canonical_and_named() {
    for l in both() {
        let regions = l.regions();
        for (i, r) in regions.iter().enumerate() {
            assert_eq!(r.kind, KINDS[i]);
            assert_eq!(l.region(r.kind), r);
            assert!(l.levels().is_canonical(r.start), "{r:?}");
            assert!(l.levels().is_canonical(r.end - 1), "{r:?}");
            assert!(r.start < r.end);
            if let Some(next) = regions.get(i + 1) {
                assert!(r.end <= next.start, "{r:?} / {next:?}");
            }
            assert_eq!(r.name, r.kind.name());
            assert_eq!(r.marker, r.kind.marker());
        }
    }
    let markers: Vec<&str> = LAYOUT_4.regions().iter().map(|r| r.marker).collect();
    assert_eq!(
        markers,
        [
            "User Space",
            "Kernel Space",
            "LDT remap",
            "Low Kernel Mapping",
            "vmalloc() Area",
            "Vmemmap",
            "EFI Runtime Services",
            "High Kernel Mapping",
            "Modules",
            "Fixmap Area",
        ]
    );
}

#[test]
fn ptdump_markers_follow_linux() {
    for l in both() {
        let markers = l.ptdump_markers();
        assert!(markers.windows(2).all(|w| w[0].0 <= w[1].0), "{markers:x?}");
        let names: Vec<&str> = markers.iter().map(|m| m.1).collect();
        assert_eq!(
            names,
            [
                "User Space",
                "Kernel Space",
                "LDT remap",
                "Low Kernel Mapping",
                "vmalloc() Area",
                "Vmemmap",
                "EFI Runtime Services",
                "High Kernel Mapping",
                "Modules",
                "End Modules",
                "Fixmap Area",
            ]
        );
        assert_eq!(markers[9], (MODULES_END, "End Modules"));
        assert_eq!(markers[10], (MODULES_END, "Fixmap Area"));
    }
}

#[test]
fn per_mode_regions_fill_whole_top_level_entries() {
    for l in both() {
        let span = l.levels().top_entry_span();
        for r in &l.regions()[..6] {
            assert_eq!(r.start % span, 0, "{r:?}");
            assert_eq!(r.end % span, 0, "{r:?}");
        }
        // The shared regions all sit in the last top-level entry.
        let last = 0u64.wrapping_sub(span);
        for r in &l.regions()[6..] {
            assert!(r.start >= last, "{r:?}");
        }
    }
    assert_eq!(
        LAYOUT_4.region(RegionKind::Physmap).size() / (512 << 30),
        128
    );
    assert_eq!(LAYOUT_5.region(RegionKind::Vmalloc).size() / (1 << 48), 50);
}

#[test]
fn region_of_every_region_edge_and_hole() {
    for l in both() {
        for r in l.regions() {
            assert_eq!(l.region_of(r.start).map(|x| x.kind), Some(r.kind));
            assert_eq!(l.region_of(r.end - 1).map(|x| x.kind), Some(r.kind));
        }
        // Holes between regions and the non-canonical gap.
        assert_eq!(l.region_of(l.lower_half_end()), None);
        assert_eq!(l.region_of(1 << 63), None);
        assert_eq!(l.region_of(l.physmap_end()), None);
        assert_eq!(l.region_of(l.vmalloc_end()), None);
        assert_eq!(l.region_of(l.vmemmap_end()), None);
        assert_eq!(l.region_of(EFI_VA_START), None);
        assert_eq!(l.region_of(FIXMAP_END), None);
        assert_eq!(l.region_of(u64::MAX), None);
    }
    // The 4-level physmap is a hole in 5-level terms and vice versa.
    assert_eq!(
        LAYOUT_5
            .region_of(LAYOUT_4.page_offset_base())
            .map(|r| r.kind),
        None
    );
    assert_eq!(
        LAYOUT_4
            .region_of(LAYOUT_5.page_offset_base())
            .map(|r| r.kind),
        None
    );
    // 5-level addresses are not 4-level canonical, so the table can't
    // be used with the wrong mode by accident.
    assert!(!Levels::Four.is_canonical(LAYOUT_5.page_offset_base()));
    assert!(Levels::Five.is_canonical(LAYOUT_4.page_offset_base()));
}

#[test]
fn limine_hhdm_is_in_the_guard_hole() {
    assert_eq!(
        LAYOUT_4.region_of(LIMINE_HHDM_4).map(|r| r.kind),
        Some(RegionKind::GuardHole)
    );
    assert_eq!(
        LAYOUT_5.region_of(LIMINE_HHDM_5).map(|r| r.kind),
        Some(RegionKind::GuardHole)
    );
    // A 4 GiB HHDM stays clear of the physmap in both modes.
    assert!(LIMINE_HHDM_4 + (4 << 30) <= LAYOUT_4.page_offset_base());
    assert!(LIMINE_HHDM_5 + (4 << 30) <= LAYOUT_5.page_offset_base());
}

#[test]
fn phys_to_virt_edges() {
    for l in both() {
        let size = l.physmap_size();
        let base = l.page_offset_base();
        assert_eq!(l.phys_to_virt(PhysAddr::new(0)), Ok(base));
        assert_eq!(
            l.phys_to_virt(PhysAddr::new(0x1234_5000)),
            Ok(base + 0x1234_5000)
        );
        let last = PhysAddr::new(size.min(1 << 52) - 1);
        assert_eq!(l.phys_to_virt(last), Ok(base + last.as_u64()));
        assert_eq!(l.virt_to_phys(base + last.as_u64()), Ok(last));
    }
    // 4-level: 64 TiB is the first address the direct map cannot hold.
    let l = &LAYOUT_4;
    assert_eq!(
        l.phys_to_virt(PhysAddr::new(64 << 40)),
        Err(PhysmapError::BeyondPhysmap {
            phys: 64 << 40,
            physmap_size: 64 << 40
        })
    );
    assert!(l.phys_to_virt(PhysAddr::new((1 << 52) - 1)).is_err());
    // 5-level: every 52-bit physical address fits.
    assert_eq!(
        LAYOUT_5.phys_to_virt(PhysAddr::new((1 << 52) - 1)),
        Ok(0xff11_0000_0000_0000 + (1 << 52) - 1)
    );
}

#[test]
fn phys_range_to_virt_edges() {
    let l = &LAYOUT_4;
    let size = l.physmap_size();
    let base = l.page_offset_base();
    assert_eq!(l.phys_range_to_virt(PhysAddr::new(0), size), Ok(base));
    assert_eq!(
        l.phys_range_to_virt(PhysAddr::new(size - 4096), 4096),
        Ok(base + size - 4096)
    );
    assert_eq!(
        l.phys_range_to_virt(PhysAddr::new(size - 4096), 4097),
        Err(PhysmapError::BeyondPhysmap {
            phys: size,
            physmap_size: size
        })
    );
    assert!(l.phys_range_to_virt(PhysAddr::new(0), size + 1).is_err());
    // Empty ranges must still start inside.
    assert_eq!(
        l.phys_range_to_virt(PhysAddr::new(size - 1), 0),
        Ok(base + size - 1)
    );
    assert!(l.phys_range_to_virt(PhysAddr::new(size), 0).is_err());
    // Overflow is reported, not wrapped.
    let top = PhysAddr::new((1 << 52) - 4096);
    assert_eq!(
        LAYOUT_5.phys_range_to_virt(top, u64::MAX),
        Err(PhysmapError::RangeOverflow {
            phys: top.as_u64(),
            len: u64::MAX
        })
    );
}

#[test]
fn virt_to_phys_edges() {
    for l in both() {
        let base = l.page_offset_base();
        assert_eq!(l.virt_to_phys(base), Ok(PhysAddr::new(0)));
        assert_eq!(
            l.virt_to_phys(base - 1),
            Err(PhysmapError::NotInPhysmap { virt: base - 1 })
        );
        assert_eq!(
            l.virt_to_phys(l.physmap_end()),
            Err(PhysmapError::NotInPhysmap {
                virt: l.physmap_end()
            })
        );
        assert!(l.virt_to_phys(l.kernel_image_start()).is_err());
        for pa in [0u64, 0x1000, 0xfee0_0000, 0x1_0000_0000, (64 << 40) - 4096] {
            let va = l.phys_to_virt(PhysAddr::new(pa)).unwrap();
            assert_eq!(l.virt_to_phys(va), Ok(PhysAddr::new(pa)));
        }
    }
    assert_eq!(
        LAYOUT_4.virt_to_phys(LAYOUT_4.physmap_end() - 1),
        Ok(PhysAddr::new((64 << 40) - 1))
    );
    // The 5-level physmap is larger than the physical address space.
    let beyond = LAYOUT_5.page_offset_base() + (1 << 52);
    assert_eq!(
        LAYOUT_5.virt_to_phys(beyond),
        Err(PhysmapError::NotAPhysAddr { phys: 1 << 52 })
    );
}

#[test]
fn errors_display_their_numbers() {
    let e = LAYOUT_4.phys_to_virt(PhysAddr::new(64 << 40)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "physical address 0x400000000000 is beyond the 0x400000000000-byte direct map"
    );
    assert_eq!(
        PhysmapError::NotInPhysmap { virt: 0x10 }.to_string(),
        "virtual address 0x10 is not in the direct map"
    );
}

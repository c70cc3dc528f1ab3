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
    [Layout::fixed(Levels::Four), Layout::fixed(Levels::Five)]
}

#[test]
fn fixed_picks_the_matching_table() {
    assert_eq!(Layout::fixed(Levels::Four).levels(), Levels::Four);
    assert_eq!(Layout::fixed(Levels::Five).levels(), Levels::Five);
}

#[test]
fn four_level_values_match_linux() {
    let l = Layout::fixed(Levels::Four);
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
    let l = Layout::fixed(Levels::Five);
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

// ---------------------------------------------------------------------------
// The rules every layout in effect keeps.
// ---------------------------------------------------------------------------

fn movable(l: &Layout) -> [(u64, u64); 3] {
    MOVABLE.map(|k| (l.region(k).start, l.region(k).end))
}

#[test]
fn the_fixed_tables_and_their_relocated_image_variants_validate() {
    for l in both() {
        assert_eq!(l.validate(), Ok(()));
        assert!(l.is_fixed());
        assert!(!l.image_relocated());
        // An image ending below the fixmap: the fixmap stays.
        let r = l.with_relocated_image(MODULES_END);
        assert_eq!(r.validate(), Ok(()));
        assert!(!r.is_fixed());
        assert!(r.image_relocated());
        let image = r.region(RegionKind::KernelImage);
        assert_eq!((image.start, image.end), (KERNEL_IMAGE_START, MODULES_END));
        assert_eq!(r.region(RegionKind::Modules).size(), 0);
        let fixmap = r.region(RegionKind::Fixmap);
        assert_eq!((fixmap.start, fixmap.end), (MODULES_END, FIXMAP_END));
        assert_eq!(r.framebuffer_area(), (MODULES_END, FIXMAP_END));
        assert_eq!(r.framebuffer_area(), l.framebuffer_area());
        // An image in the fixmap's way: the whole top for it, the window
        // at the region's start.
        let r = l.with_relocated_image(MODULES_END + crate::PAGE_SIZE);
        assert_eq!(r.validate(), Ok(()));
        assert!(r.image_relocated());
        let image = r.region(RegionKind::KernelImage);
        assert_eq!(
            (image.start, image.end),
            (KERNEL_IMAGE_START, KASLR_IMAGE_END)
        );
        for kind in [RegionKind::Modules, RegionKind::Fixmap] {
            assert_eq!(r.region(kind).size(), 0);
            assert_eq!(r.region_of(KASLR_IMAGE_END).map(|x| x.kind), None);
        }
        let (start, end) = r.framebuffer_area();
        assert_eq!((start, end - start), (KERNEL_IMAGE_START, FIXMAP_SIZE));
        // A shape of neither kind: the fixmap kept, the image region to
        // the top.
        let mut mixed = r;
        mixed.regions[RegionKind::Fixmap as usize] = *l.region(RegionKind::Fixmap);
        assert!(mixed.validate().is_err());
        // Moving nothing gives the table back.
        assert_eq!(l.with_movable(movable(l)), Ok(*l));
    }
}

#[test]
fn moved_regions_must_keep_the_rules() {
    const G: u64 = 1 << 30;
    let l = Layout::fixed(Levels::Four);
    let [p, v, m] = movable(l);
    let bad = |spans| l.with_movable(spans).unwrap_err();
    // 1 GiB alignment.
    assert_eq!(
        bad([(p.0 + (2 << 20), p.1), v, m]),
        LayoutError::Misaligned {
            kind: RegionKind::Physmap,
            start: p.0 + (2 << 20),
            end: p.1,
            align: G
        }
    );
    // Order and overlap.
    assert_eq!(
        bad([(p.0, v.0 + G), v, m]),
        LayoutError::Overlap {
            first: RegionKind::Physmap,
            first_end: v.0 + G,
            second: RegionKind::Vmalloc,
            second_start: v.0
        }
    );
    assert!(matches!(
        bad([p, m, v]),
        LayoutError::Overlap {
            first: RegionKind::Vmalloc,
            ..
        }
    ));
    // Into the LDT remap: it overlaps it.
    assert!(matches!(
        bad([(p.0 - G, p.1), v, m]),
        LayoutError::Overlap {
            first: RegionKind::LdtRemap,
            second: RegionKind::Physmap,
            ..
        }
    ));
    // Past the fixed vmemmap's end, though still below the EFI window.
    assert_eq!(
        bad([p, v, (m.0, m.1 + G)]),
        LayoutError::OutOfBounds {
            kind: RegionKind::Vmemmap,
            start: m.0,
            end: m.1 + G,
            space_start: p.0,
            space_end: m.1
        }
    );
    // Empty.
    assert_eq!(
        bad([p, (v.0, v.0), m]),
        LayoutError::Empty {
            kind: RegionKind::Vmalloc,
            start: v.0,
            end: v.0
        }
    );
    assert_eq!(
        bad([p, v, (m.0, m.1 + G)]).to_string(),
        "vmemmap 0xffffea0000000000-0xffffeb0040000000 leaves \
         0xffff888000000000-0xffffeb0000000000"
    );
}

#[test]
fn fixed_regions_must_stay_put() {
    const G: u64 = 1 << 30;
    for l in both() {
        // Each shrunk by a step its alignment allows (the LDT remap, one
        // top-level entry between two neighbours, cannot change without
        // breaking an earlier rule).
        let span = l.levels().top_entry_span();
        for (kind, start, end) in [
            (RegionKind::LowerHalf, 0, 0),
            (RegionKind::GuardHole, span, 0),
            (RegionKind::EfiRuntime, G, 0),
        ] {
            let mut moved = *l;
            let r = &mut moved.regions[kind as usize];
            r.start += start;
            r.end -= if kind == RegionKind::LowerHalf {
                span
            } else {
                end
            };
            let r = moved.regions[kind as usize];
            assert_eq!(
                moved.validate(),
                Err(LayoutError::Moved {
                    kind,
                    start: r.start,
                    end: r.end
                }),
                "{kind:?}"
            );
        }
        // The image region grown over part of the modules area only.
        let mut half = *l;
        half.regions[RegionKind::KernelImage as usize].end = MODULES_END - (2 << 20);
        half.regions[RegionKind::Modules as usize].start = MODULES_END - (2 << 20);
        half.regions[RegionKind::Modules as usize].end = MODULES_END - (2 << 20);
        assert_eq!(half.region(RegionKind::Modules).size(), 0);
        assert!(matches!(
            half.validate(),
            Err(LayoutError::Moved {
                kind: RegionKind::KernelImage,
                ..
            })
        ));
        // Kinds out of their slots.
        let mut swapped = *l;
        swapped.regions.swap(3, 4);
        assert_eq!(swapped.validate(), Err(LayoutError::KindOrder { index: 3 }));
    }
}

#[test]
fn ptdump_markers_of_a_relocated_image_layout() {
    for l in both() {
        let r = l.with_relocated_image(KASLR_IMAGE_END);
        let markers = r.ptdump_markers();
        assert!(markers.windows(2).all(|w| w[0].0 <= w[1].0), "{markers:x?}");
        assert_eq!(markers[7], (KERNEL_IMAGE_START, "High Kernel Mapping"));
        assert_eq!(markers[8], (KASLR_IMAGE_END, "Modules"));
        assert_eq!(markers[9], (KASLR_IMAGE_END, "End Modules"));
        assert_eq!(markers[10], (KASLR_IMAGE_END, "Fixmap Area"));
    }
}

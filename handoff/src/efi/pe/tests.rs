//! The PE/COFF parser against images as EDK2 lays them out, and against
//! every way their headers can be wrong.

use proptest::prelude::*;

use super::*;

/// An EDK2-like runtime driver: headers, .text, .rdata, .data (whose
/// 0x1800 bytes take two pages), 0x7000 bytes in memory.
fn driver() -> [u8; 4096] {
    sample_headers(
        &[
            (".text", 0x1000, 0x3000, SAMPLE_TEXT),
            (".rdata", 0x4000, 0x800, SAMPLE_RDATA),
            (".data", 0x5000, 0x1800, SAMPLE_DATA),
        ],
        0x7000,
    )
}

#[test]
fn an_edk2_driver_parses_into_its_sections() {
    let image = Image::parse(&driver()).unwrap();
    assert_eq!(image.size, 0x7000);
    assert_eq!(image.headers, 0x1000);
    let names: Vec<&str> = image.sections().iter().map(|s| s.name()).collect();
    assert_eq!(names, [".text", ".rdata", ".data"]);
    let pieces: Vec<_> = image.pieces().collect();
    assert_eq!(
        pieces,
        [
            // The headers: read-only, never executable.
            (0, 0x1000, Access::ReadOnly),
            (0x1000, 0x3000, Access::ReadExecute),
            (0x4000, 0x1000, Access::ReadOnly),
            // 0x1800 bytes of data take two whole pages.
            (0x5000, 0x2000, Access::ReadWrite),
        ]
    );
}

#[test]
fn gaps_between_sections_and_the_tail_are_read_only() {
    let page = sample_headers(
        &[
            (".text", 0x2000, 0x1000, SAMPLE_TEXT),
            (".data", 0x5000, 0x1000, SAMPLE_DATA),
        ],
        0x8000,
    );
    let pieces: Vec<_> = Image::parse(&page).unwrap().pieces().collect();
    assert_eq!(
        pieces,
        [
            (0, 0x2000, Access::ReadOnly),
            (0x2000, 0x1000, Access::ReadExecute),
            (0x3000, 0x2000, Access::ReadOnly),
            (0x5000, 0x1000, Access::ReadWrite),
            (0x6000, 0x2000, Access::ReadOnly),
        ]
    );
}

#[test]
fn a_writable_and_executable_section_is_never_mapped_so() {
    let page = sample_headers(
        &[(".wx", 0x1000, 0x1000, SAMPLE_TEXT | SCN_MEM_WRITE)],
        0x2000,
    );
    let image = Image::parse(&page).unwrap();
    assert_eq!(image.sections()[0].access(), Access::ReadExecute);
}

#[test]
fn sections_below_page_alignment_are_refused() {
    let mut page = driver();
    // SectionAlignment of the PE32+ optional header.
    page[0x80 + 24 + 32..0x80 + 24 + 36].copy_from_slice(&0x200u32.to_le_bytes());
    assert_eq!(Image::parse(&page), Err(PeError::SubPageAlignment(0x200)));
    page[0x80 + 24 + 32..0x80 + 24 + 36].copy_from_slice(&0x3000u32.to_le_bytes());
    assert_eq!(Image::parse(&page), Err(PeError::BadSizes));
}

#[test]
fn overlapping_and_outside_sections_are_refused() {
    let overlap = sample_headers(
        &[
            (".text", 0x1000, 0x2000, SAMPLE_TEXT),
            (".data", 0x2000, 0x1000, SAMPLE_DATA),
        ],
        0x4000,
    );
    assert_eq!(Image::parse(&overlap), Err(PeError::Overlap { index: 1 }));
    let outside = sample_headers(&[(".text", 0x1000, 0x2000, SAMPLE_TEXT)], 0x2000);
    assert_eq!(
        Image::parse(&outside),
        Err(PeError::SectionOutside { index: 0 })
    );
    // An image no larger than its headers has consistent sizes: what is
    // wrong is the section beyond them, and the error says so.
    let headers_only = sample_headers(&[(".text", 0x1000, 0x1000, SAMPLE_TEXT)], 0x1000);
    assert_eq!(
        Image::parse(&headers_only),
        Err(PeError::SectionOutside { index: 0 })
    );
    let in_headers = sample_headers(&[(".text", 0, 0x1000, SAMPLE_TEXT)], 0x2000);
    assert_eq!(
        Image::parse(&in_headers),
        Err(PeError::SectionOutside { index: 0 })
    );
    let unaligned = sample_headers(&[(".text", 0x1800, 0x100, SAMPLE_TEXT)], 0x2000);
    assert_eq!(
        Image::parse(&unaligned),
        Err(PeError::SectionOutside { index: 0 })
    );
}

#[test]
fn broken_headers_are_typed_errors() {
    let good = driver();
    let mut bad = good;
    bad[0] = b'X';
    assert_eq!(Image::parse(&bad), Err(PeError::NotMz));
    let mut bad = good;
    bad[0x3c..0x40].copy_from_slice(&0x2000u32.to_le_bytes());
    assert_eq!(Image::parse(&bad), Err(PeError::BadPeOffset(0x2000)));
    let mut bad = good;
    bad[0x80] = b'Q';
    assert_eq!(Image::parse(&bad), Err(PeError::NotPe));
    let mut bad = good;
    bad[0x80 + 24] = 0;
    assert_eq!(Image::parse(&bad), Err(PeError::BadOptionalHeader));
    let mut bad = good;
    bad[0x80 + 6..0x80 + 8].copy_from_slice(&0u16.to_le_bytes());
    assert_eq!(Image::parse(&bad), Err(PeError::SectionCount(0)));
    let mut bad = good;
    bad[0x80 + 6..0x80 + 8].copy_from_slice(&17u16.to_le_bytes());
    assert_eq!(Image::parse(&bad), Err(PeError::SectionCount(17)));
    let mut bad = good;
    // SizeOfHeaders above SizeOfImage.
    bad[0x80 + 24 + 60..0x80 + 24 + 64].copy_from_slice(&0x9000u32.to_le_bytes());
    assert_eq!(Image::parse(&bad), Err(PeError::BadSizes));
}

#[test]
fn up_to_max_sections_sections_are_read() {
    let sections: Vec<_> = (1..=MAX_SECTIONS as u32)
        .map(|i| (".data", i * 0x1000, 0x1000, SAMPLE_DATA))
        .collect();
    let size = (MAX_SECTIONS as u32 + 1) * 0x1000;
    let image = Image::parse(&sample_headers(&sections, size)).unwrap();
    assert_eq!(image.sections().len(), MAX_SECTIONS);
    // The headers, then one page of data per section.
    let pieces: Vec<_> = image.pieces().collect();
    assert_eq!(pieces.len(), MAX_SECTIONS + 1);
    assert_eq!(pieces[0], (0, 0x1000, Access::ReadOnly));
    assert!(
        pieces[1..]
            .iter()
            .zip(1..)
            .all(|(&p, i)| p == (i * 0x1000, 0x1000, Access::ReadWrite))
    );
}

#[test]
fn every_truncation_is_a_typed_error() {
    let good = driver();
    // The section table ends at 0x80 + 24 + 240 + 3 * 40.
    let end = 0x80 + 24 + 240 + 3 * 40;
    for len in 0..end {
        assert!(Image::parse(&good[..len]).is_err(), "{len} bytes parsed");
    }
    assert!(Image::parse(&good[..end]).is_ok());
}

/// A region of `pages` pages with `images` placed at page offsets.
fn region(pages: usize, images: &[(usize, [u8; 4096])]) -> Vec<[u8; 4096]> {
    let mut out = vec![[0u8; 4096]; pages];
    for &(at, page) in images {
        out[at] = page;
    }
    out
}

fn scan(region: &[[u8; 4096]], base: u64) -> (Images, Scan) {
    let mut images = Images::new();
    let scan = images.scan(base, region.len() as u64 * 4096, |phys, out| {
        match region.get(((phys - base) / 4096) as usize) {
            Some(page) => {
                *out = *page;
                true
            }
            None => false,
        }
    });
    (images, scan)
}

#[test]
fn a_scan_finds_images_back_to_back_and_skips_junk() {
    let small = sample_headers(&[(".text", 0x1000, 0x1000, SAMPLE_TEXT)], 0x2000);
    // driver (7 pages) at 0, a junk page, the small one at 8.
    let r = region(10, &[(0, driver()), (8, small)]);
    let (images, scan) = scan(&r, 0x7f00_0000);
    let found: Vec<(u64, u64)> = images.iter().map(|(p, i)| (*p, i.size)).collect();
    assert_eq!(found, [(0x7f00_0000, 0x7000), (0x7f00_8000, 0x2000)]);
    assert_eq!(scan.images, 2);
    assert_eq!(scan.uncovered_pages, 1);
    assert_eq!(scan.first_error, None);
}

#[test]
fn the_pages_between_images_are_refined_too() {
    let small = sample_headers(&[(".text", 0x1000, 0x1000, SAMPLE_TEXT)], 0x2000);
    let r = region(10, &[(0, driver()), (8, small)]);
    let (images, _) = scan(&r, 0x7f00_0000);
    let mut visits = Vec::new();
    super::super::Refine::each(&images, &mut |phys, len, access| {
        visits.push((phys, len, access))
    });
    // Every page of the region once, in order: the junk page between the
    // images is pool memory no image owns, data.
    assert!(
        visits.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0),
        "{visits:x?}"
    );
    assert_eq!(visits.first().map(|v| v.0), Some(0x7f00_0000));
    assert_eq!(visits.last().map(|v| v.0 + v.1), Some(0x7f00_a000));
    assert!(
        visits.contains(&(0x7f00_7000, 0x1000, Some(Access::ReadWrite))),
        "{visits:x?}"
    );
}

#[test]
fn an_image_straddling_the_region_end_is_not_kept() {
    let r = region(4, &[(1, driver())]);
    let (images, scan) = scan(&r, 0x1000_0000);
    assert_eq!(images.iter().count(), 0);
    assert_eq!(
        scan.first_error,
        Some((0x1000_1000, PeError::BeyondRegion(0x7000)))
    );
    assert_eq!(scan.uncovered_pages, 4);
}

#[test]
fn a_region_without_images_says_so() {
    let r = region(3, &[]);
    let (_, scan) = scan(&r, 0);
    assert_eq!((scan.images, scan.uncovered_pages), (0, 3));
}

proptest! {
    /// Hostile bytes: a typed error or an image that keeps its promises.
    #[test]
    fn any_header_page_parses_or_is_refused(
        edits in prop::collection::vec((0usize..0x300, any::<u8>()), 0..12),
    ) {
        let mut page = driver();
        for (at, byte) in edits {
            page[at] = byte;
        }
        if let Ok(image) = Image::parse(&page) {
            let mut at = 0;
            for (offset, len, _) in image.pieces() {
                prop_assert_eq!(offset, at);
                prop_assert!(len > 0 && len % 4096 == 0);
                at += len;
            }
            prop_assert_eq!(at, image.size);
            for s in image.sections() {
                prop_assert!(u64::from(s.rva) >= image.headers && s.end() <= image.size);
            }
        }
    }
}

//! The PE/COFF checks: the runtime images' headers as hostile bytes. The
//! input is a runtime-code region, page after page; each page that starts
//! with `MZ` is an image's header page. Scanning, parsing and the window
//! made from the images must give a typed error or keep every promise:
//! sections inside their images and in order, images inside the region
//! and disjoint, pieces that tile each image, and no page writable and
//! executable.

use super::*;
use handoff::efi::pe::{Image, Images};

/// The most pages of a region the check scans.
const MAX_PAGES: usize = 32;

/// Where the checked region starts: a runtime-code region of OVMF.
const REGION: u64 = 0x3f60_0000;

pub fn check_pe(data: &[u8]) -> Reached {
    let pages = data.len().div_ceil(4096).clamp(1, MAX_PAGES);
    let page = |i: usize| {
        let mut out = [0u8; 4096];
        if let Some(bytes) = data.get(i * 4096..) {
            let n = bytes.len().min(4096);
            out[..n].copy_from_slice(&bytes[..n]);
        }
        out
    };
    for i in 0..pages {
        if let Ok(image) = Image::parse(&page(i)) {
            check_image(&image);
        }
    }
    let mut images = Box::new(Images::new());
    let len = pages as u64 * 4096;
    let scan = images.scan(REGION, len, |phys, out| {
        *out = page(((phys - REGION) / 4096) as usize);
        true
    });
    let mut end = REGION;
    let mut covered = 0;
    for (phys, image) in images.iter() {
        assert!(
            *phys >= end && phys + image.size <= REGION + len,
            "image at {phys:#x}"
        );
        assert_eq!(phys % 4096, 0);
        end = phys + image.size;
        covered += image.size / 4096;
        check_image(image);
    }
    assert_eq!(scan.images, images.iter().count());
    assert_eq!(covered + scan.uncovered_pages, pages as u64);
    if scan.images == 0 {
        return Reached::Refused;
    }
    check_window(&images, len);
    Reached::Window
}

fn check_image(image: &Image) {
    let mut at = 0;
    for (offset, len, _) in image.pieces() {
        assert_eq!(offset, at);
        assert!(len > 0 && len % 4096 == 0);
        at += len;
    }
    assert_eq!(at, image.size);
    let mut previous_end = image.headers;
    for s in image.sections() {
        assert!(
            u64::from(s.rva) >= previous_end && s.end() <= image.size,
            "{s:?}"
        );
        previous_end = s.end().max(previous_end);
    }
}

/// The window over one runtime-code region of `len` bytes, refined by the
/// images: never writable and executable.
fn check_window(images: &Images, len: u64) {
    let rt_bytes = encode_efi(
        &[Desc {
            ty: 5,
            start: REGION,
            pages: len / 4096,
            attr: 0xf | RT,
        }],
        48,
        0,
    );
    let efi = EfiMemoryMap::parse(&rt_bytes, 48, 1, 46).expect("one runtime descriptor");
    let mut rt = Box::new(RuntimeRegions::new());
    rt.assign(&efi, Layout::fixed(Levels::Four))
        .expect("one region fits the window");
    let mut window = Box::new(Window::new());
    let mtrrs = Mtrrs::absent(46).expect("46 bits");
    match window.make(
        &rt,
        Some(images as &dyn Refine),
        &Pat::BATON,
        &mtrrs,
        true,
        false,
    ) {
        Ok(()) => {}
        Err(EfiError::BadRefinement { .. } | EfiError::TooManyMappings) => return,
        Err(other) => panic!("Window::make failed with {other:?}"),
    }
    for m in window.mappings() {
        let f = m.mapping.flags;
        assert!(
            !f.contains(PageTableFlags::WRITABLE) || f.contains(PageTableFlags::NO_EXECUTE),
            "{m:?} is writable and executable"
        );
    }
}

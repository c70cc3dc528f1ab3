//! The PE/COFF images of the runtime drivers, as loaded in runtime-code
//! memory: which pages are headers, code and data, from their section
//! headers. Without a memory attributes table (firmware before UEFI 2.6)
//! this is the only word on where code ends and data begins; with one, it
//! checks the table.
//!
//! The bytes come from firmware memory and are treated as hostile: every
//! field is bounds-checked, and a malformed image is a typed error, never
//! a panic.

use core::fmt;

use super::Access;
use crate::PAGE_SIZE;

/// The most sections baton keeps of one image (EDK2's runtime drivers
/// have five or six).
pub const MAX_SECTIONS: usize = 16;

/// `IMAGE_SCN_CNT_CODE`.
const SCN_CNT_CODE: u32 = 0x20;
/// `IMAGE_SCN_MEM_EXECUTE`.
const SCN_MEM_EXECUTE: u32 = 0x2000_0000;
/// `IMAGE_SCN_MEM_WRITE`.
const SCN_MEM_WRITE: u32 = 0x8000_0000;
/// `IMAGE_NT_OPTIONAL_HDR64_MAGIC` (PE32+).
const PE32_PLUS: u16 = 0x20b;
/// `IMAGE_NT_OPTIONAL_HDR32_MAGIC` (PE32).
const PE32: u16 = 0x10b;
const SECTION_HEADER_SIZE: usize = 40;
const COFF_HEADER_SIZE: usize = 20;

/// Why bytes are not a usable PE/COFF image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeError {
    /// No `MZ` at the start.
    NotMz,
    /// The headers end beyond the bytes given.
    Truncated,
    /// `e_lfanew` points outside the headers or is misaligned.
    BadPeOffset(u32),
    /// No `PE\0\0` signature at `e_lfanew`.
    NotPe,
    /// The optional header is neither PE32 nor PE32+, or too short.
    BadOptionalHeader,
    /// More sections than [`MAX_SECTIONS`], or none.
    SectionCount(u16),
    /// `SizeOfImage`, `SizeOfHeaders` or the section alignment are
    /// inconsistent (headers larger than the image, alignment not a
    /// power of two).
    BadSizes,
    /// Sections are aligned below the page size: code and data may share
    /// a page, which no page permission can tell apart.
    SubPageAlignment(u32),
    /// A section reaches outside the image or into the headers.
    SectionOutside {
        /// The section's index.
        index: usize,
    },
    /// Two sections overlap.
    Overlap {
        /// The later section's index.
        index: usize,
    },
    /// The image (of this size) reaches past the runtime region it starts
    /// in.
    BeyondRegion(u64),
}

impl fmt::Display for PeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PeError::NotMz => write!(f, "no MZ header"),
            PeError::Truncated => write!(f, "headers truncated"),
            PeError::BadPeOffset(at) => write!(f, "PE header offset {at:#x} out of bounds"),
            PeError::NotPe => write!(f, "no PE signature"),
            PeError::BadOptionalHeader => write!(f, "optional header neither PE32 nor PE32+"),
            PeError::SectionCount(n) => write!(f, "{n} sections (1 to {MAX_SECTIONS} accepted)"),
            PeError::BadSizes => write!(f, "inconsistent image, header or alignment sizes"),
            PeError::SubPageAlignment(a) => write!(
                f,
                "sections aligned to {a:#x} bytes: code and data may share pages"
            ),
            PeError::SectionOutside { index } => {
                write!(
                    f,
                    "section {index} reaches outside the image or into its headers"
                )
            }
            PeError::Overlap { index } => write!(f, "section {index} overlaps the one before"),
            PeError::BeyondRegion(size) => {
                write!(
                    f,
                    "an image of {size:#x} bytes reaches past its runtime region"
                )
            }
        }
    }
}

/// One section of a loaded image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// Its name (up to 8 bytes, NUL-padded).
    pub name: [u8; 8],
    /// Its offset in the loaded image (`VirtualAddress`).
    pub rva: u32,
    /// Its size in memory (`VirtualSize`), before rounding to pages.
    pub size: u32,
    /// Its `Characteristics`.
    pub characteristics: u32,
}

impl Section {
    const EMPTY: Section = Section {
        name: [0; 8],
        rva: 0,
        size: 0,
        characteristics: 0,
    };

    /// Whether it holds code (executable or marked as code).
    pub fn is_code(&self) -> bool {
        self.characteristics & (SCN_MEM_EXECUTE | SCN_CNT_CODE) != 0
    }

    /// Whether it is writable.
    pub fn is_writable(&self) -> bool {
        self.characteristics & SCN_MEM_WRITE != 0
    }

    /// How its pages are mapped: code read + execute, writable data
    /// read-write, the rest read-only; a section that asks to be both
    /// writable and executable is mapped read + execute (never W+X: the
    /// firmware may fault writing it, which is contained).
    pub fn access(&self) -> Access {
        if self.is_code() {
            Access::ReadExecute
        } else if self.is_writable() {
            Access::ReadWrite
        } else {
            Access::ReadOnly
        }
    }

    /// The name, up to its first NUL.
    pub fn name(&self) -> &str {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(8);
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }

    /// The end of its pages in the image (its size rounded up to pages).
    pub fn end(&self) -> u64 {
        (u64::from(self.rva) + u64::from(self.size)).next_multiple_of(PAGE_SIZE)
    }
}

/// A validated PE/COFF image header: its size in memory and its sections,
/// in address order, each page-aligned and inside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Image {
    /// `SizeOfImage`, rounded up to pages.
    pub size: u64,
    /// `SizeOfHeaders`, rounded up to pages.
    pub headers: u64,
    sections: [Section; MAX_SECTIONS],
    count: usize,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, PeError> {
    let bytes = b.get(at..at + 2).ok_or(PeError::Truncated)?;
    Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, PeError> {
    let bytes = b.get(at..at + 4).ok_or(PeError::Truncated)?;
    Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

impl Image {
    /// Parses the headers at the start of `bytes` (an image as loaded: at
    /// least its headers; one page suffices for EDK2's drivers).
    pub fn parse(bytes: &[u8]) -> Result<Image, PeError> {
        if bytes.get(..2) != Some(b"MZ") {
            return Err(PeError::NotMz);
        }
        let lfanew = u32_at(bytes, 0x3c)?;
        let pe = lfanew as usize;
        if pe < 0x40 || !pe.is_multiple_of(8) || pe >= bytes.len() {
            return Err(PeError::BadPeOffset(lfanew));
        }
        if bytes.get(pe..pe + 4) != Some(b"PE\0\0") {
            return Err(PeError::NotPe);
        }
        let coff = pe + 4;
        let sections = u16_at(bytes, coff + 2)?;
        let optional_size = usize::from(u16_at(bytes, coff + 16)?);
        let optional = coff + COFF_HEADER_SIZE;
        let (alignment, size, headers) = Self::optional_header(bytes, optional, optional_size)?;
        let mut image = Image {
            size: u64::from(size).next_multiple_of(PAGE_SIZE),
            headers: u64::from(headers).next_multiple_of(PAGE_SIZE),
            sections: [Section::EMPTY; MAX_SECTIONS],
            count: 0,
        };
        if image.headers > image.size || !alignment.is_power_of_two() {
            return Err(PeError::BadSizes);
        }
        if u64::from(alignment) < PAGE_SIZE {
            return Err(PeError::SubPageAlignment(alignment));
        }
        if sections == 0 || usize::from(sections) > MAX_SECTIONS {
            return Err(PeError::SectionCount(sections));
        }
        image.read_sections(bytes, optional + optional_size, usize::from(sections))?;
        Ok(image)
    }

    /// `(SectionAlignment, SizeOfImage, SizeOfHeaders)` from the optional
    /// header at `at` of `size` bytes: the same offsets in PE32 and PE32+.
    fn optional_header(bytes: &[u8], at: usize, size: usize) -> Result<(u32, u32, u32), PeError> {
        let magic = u16_at(bytes, at)?;
        if !(magic == PE32_PLUS || magic == PE32) || size < 64 {
            return Err(PeError::BadOptionalHeader);
        }
        Ok((
            u32_at(bytes, at + 32)?,
            u32_at(bytes, at + 56)?,
            u32_at(bytes, at + 60)?,
        ))
    }

    /// Reads and checks `count` section headers from `at`.
    fn read_sections(&mut self, bytes: &[u8], at: usize, count: usize) -> Result<(), PeError> {
        let table = bytes
            .get(at..at + count * SECTION_HEADER_SIZE)
            .ok_or(PeError::Truncated)?;
        for (index, h) in table.chunks_exact(SECTION_HEADER_SIZE).enumerate() {
            let mut name = [0; 8];
            name.copy_from_slice(&h[..8]);
            let section = Section {
                name,
                size: u32_at(h, 8)?,
                rva: u32_at(h, 12)?,
                characteristics: u32_at(h, 36)?,
            };
            if u64::from(section.rva) < self.headers
                || !u64::from(section.rva).is_multiple_of(PAGE_SIZE)
                || section.end() > self.size
            {
                return Err(PeError::SectionOutside { index });
            }
            if let Some(previous) = self.sections[..self.count].last()
                && u64::from(section.rva) < previous.end()
            {
                return Err(PeError::Overlap { index });
            }
            self.sections[index] = section;
            self.count += 1;
        }
        Ok(())
    }

    /// The sections, in address order.
    pub fn sections(&self) -> &[Section] {
        &self.sections[..self.count]
    }

    /// The access of every page of the image, as `(offset, len, access)`
    /// in order: the headers read-only, each section as
    /// [`Section::access`], and the gaps between sections read-only.
    pub fn pieces(&self) -> impl Iterator<Item = (u64, u64, Access)> + '_ {
        let mut at = 0;
        let mut next = 0;
        core::iter::from_fn(move || {
            loop {
                if at >= self.size {
                    return None;
                }
                let Some(section) = self.sections().get(next) else {
                    let piece = (at, self.size - at, Access::ReadOnly);
                    at = self.size;
                    return Some(piece);
                };
                let start = u64::from(section.rva);
                if at < start {
                    let piece = (at, start - at, Access::ReadOnly);
                    at = start;
                    return Some(piece);
                }
                next += 1;
                if section.end() > at {
                    let piece = (at, section.end() - at, section.access());
                    at = section.end();
                    return Some(piece);
                }
            }
        })
    }
}

/// The most runtime images baton keeps track of (OVMF has about a dozen
/// runtime drivers).
pub const MAX_IMAGES: usize = 64;

/// The most runtime-code regions scanned.
pub const MAX_SCANNED: usize = 64;

/// The runtime images found in runtime-code memory, each at its physical
/// address, and the regions scanned for them.
#[derive(Debug, Clone)]
pub struct Images {
    images: [(u64, Image); MAX_IMAGES],
    count: usize,
    /// `(start, end, clean)` of each region scanned: clean when every page
    /// that began with `MZ` parsed.
    scanned: [(u64, u64, bool); MAX_SCANNED],
    scanned_count: usize,
}

const EMPTY_IMAGE: Image = Image {
    size: 0,
    headers: 0,
    sections: [Section::EMPTY; MAX_SECTIONS],
    count: 0,
};

impl Default for Images {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`Images::scan`] found in one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scan {
    /// Images found (and kept).
    pub images: usize,
    /// Pages of the region in no image.
    pub uncovered_pages: u64,
    /// The first image that did not parse, with why: its page and error.
    pub first_error: Option<(u64, PeError)>,
    /// Images found beyond [`MAX_IMAGES`], not kept.
    pub dropped: usize,
}

impl Images {
    /// None yet (for a `static`).
    pub const fn new() -> Self {
        Self {
            images: [(0, EMPTY_IMAGE); MAX_IMAGES],
            count: 0,
            scanned: [(0, 0, false); MAX_SCANNED],
            scanned_count: 0,
        }
    }

    /// The images, as `(physical address, image)`.
    pub fn iter(&self) -> impl Iterator<Item = &(u64, Image)> {
        self.images[..self.count].iter()
    }

    /// Scans `[start, start + len)` (page-aligned runtime-code memory) page
    /// by page for images: `read(phys, page)` reads one page of physical
    /// memory (false if it cannot). An image must lie wholly inside the
    /// range; the scan goes on after each image and past pages that are
    /// none.
    pub fn scan(
        &mut self,
        start: u64,
        len: u64,
        mut read: impl FnMut(u64, &mut [u8; PAGE_SIZE as usize]) -> bool,
    ) -> Scan {
        let end = start.saturating_add(len);
        let mut scan = Scan::default();
        let mut page = [0u8; PAGE_SIZE as usize];
        let mut at = start;
        while at < end {
            if !read(at, &mut page) || page[..2] != *b"MZ" {
                scan.uncovered_pages += 1;
                at += PAGE_SIZE;
                continue;
            }
            let error = match Image::parse(&page) {
                Ok(image) if image.size <= end - at => {
                    if self.count < MAX_IMAGES {
                        self.images[self.count] = (at, image);
                        self.count += 1;
                        scan.images += 1;
                    } else {
                        scan.dropped += 1;
                    }
                    at += image.size.max(PAGE_SIZE);
                    continue;
                }
                Ok(image) => PeError::BeyondRegion(image.size),
                Err(e) => e,
            };
            scan.first_error.get_or_insert((at, error));
            scan.uncovered_pages += 1;
            at += PAGE_SIZE;
        }
        if self.scanned_count < MAX_SCANNED {
            let clean = scan.first_error.is_none() && scan.dropped == 0;
            self.scanned[self.scanned_count] = (start, end, clean);
            self.scanned_count += 1;
        }
        scan
    }
}

impl super::Refine for Images {
    fn source(&self) -> &'static str {
        "the runtime images' PE/COFF headers"
    }

    /// Each image's pieces; in a region whose every image parsed, the
    /// pages in no image read-write and not executable (runtime-code pool
    /// memory no image owns: data, as EDK2's attributes table says), else
    /// the region's default.
    fn each(&self, visit: &mut dyn FnMut(u64, u64, Option<Access>)) {
        for &(start, end, clean) in &self.scanned[..self.scanned_count] {
            let gap = clean.then_some(Access::ReadWrite);
            let mut at = start;
            for (phys, image) in self.iter().filter(|(p, _)| (start..end).contains(p)) {
                if at < *phys {
                    visit(at, phys - at, gap);
                }
                for (offset, len, access) in image.pieces() {
                    visit(phys + offset, len, Some(access));
                }
                at = phys + image.size;
            }
            if at < end {
                visit(at, end - at, gap);
            }
        }
    }
}

/// For tests: the header page of a PE32+ image as EDK2 builds runtime
/// drivers (4 KiB section alignment, headers in the first page), with
/// `sections` as `(name, rva, size, characteristics)` and `size_of_image`
/// bytes in memory.
#[cfg(any(test, feature = "sim"))]
pub fn sample_headers(sections: &[(&str, u32, u32, u32)], size_of_image: u32) -> [u8; 4096] {
    let mut page = [0u8; 4096];
    let put16 =
        |p: &mut [u8; 4096], at: usize, v: u16| p[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |p: &mut [u8; 4096], at: usize, v: u32| p[at..at + 4].copy_from_slice(&v.to_le_bytes());
    page[..2].copy_from_slice(b"MZ");
    let pe = 0x80;
    put32(&mut page, 0x3c, pe as u32);
    page[pe..pe + 4].copy_from_slice(b"PE\0\0");
    let coff = pe + 4;
    put16(&mut page, coff, 0x8664);
    put16(&mut page, coff + 2, sections.len() as u16);
    put16(&mut page, coff + 16, 240);
    let optional = coff + COFF_HEADER_SIZE;
    put16(&mut page, optional, PE32_PLUS);
    put32(&mut page, optional + 32, 0x1000);
    put32(&mut page, optional + 36, 0x20);
    put32(&mut page, optional + 56, size_of_image);
    put32(&mut page, optional + 60, 0x400);
    let table = optional + 240;
    for (i, &(name, rva, size, characteristics)) in sections.iter().enumerate() {
        let h = table + i * SECTION_HEADER_SIZE;
        let n = name.len().min(8);
        page[h..h + n].copy_from_slice(&name.as_bytes()[..n]);
        put32(&mut page, h + 8, size);
        put32(&mut page, h + 12, rva);
        put32(&mut page, h + 16, size.next_multiple_of(0x20));
        put32(&mut page, h + 36, characteristics);
    }
    page
}

/// `Characteristics` of EDK2's sections, for tests: code, read-only
/// data, writable data.
#[cfg(any(test, feature = "sim"))]
pub const SAMPLE_TEXT: u32 = SCN_CNT_CODE | SCN_MEM_EXECUTE | 0x4000_0000;
/// See [`SAMPLE_TEXT`].
#[cfg(any(test, feature = "sim"))]
pub const SAMPLE_RDATA: u32 = 0x40 | 0x4000_0000;
/// See [`SAMPLE_TEXT`].
#[cfg(any(test, feature = "sim"))]
pub const SAMPLE_DATA: u32 = 0x40 | 0x4000_0000 | SCN_MEM_WRITE;

#[cfg(test)]
mod tests;

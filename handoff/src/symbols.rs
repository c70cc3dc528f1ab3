//! The kernel's own symbols, for fault reports: an index of its functions
//! sorted by address, built once from its ELF file without allocating,
//! lookups that name the function holding an address the way Linux prints
//! it (`name+0x1a/0x40`, demangled), and a bounded walk of the
//! frame-pointer chain for call traces.
//!
//! The index holds its own copy of the names (demangled, without their
//! hashes), so the file is read only while it is built: a bootloader may
//! hand the file over in memory it later reclaims. A lookup neither
//! allocates nor locks, so it works in an exception handler with the heap
//! broken and every lock held.
//!
//! Addresses are link addresses: a kernel loaded elsewhere than it was
//! linked (a randomised base) converts with [`SymbolIndex::link_address`].

use core::fmt::{self, Write};
use core::ops::Range;

use elf::ElfBytes;
use elf::abi;
use elf::endian::LittleEndian;
use elf::string_table::StringTable;

/// One function (or code label) of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// Start, as an offset from the link base.
    start: u32,
    /// Size in bytes: 0 for a label while the index is built, then up to
    /// the next entry (0, naming nothing, when the index is incomplete).
    size: u32,
    /// The name: while building, its offset in the file's string table;
    /// then its offset in the index's names.
    name: u32,
}

impl Entry {
    const EMPTY: Entry = Entry {
        start: 0,
        size: 0,
        name: 0,
    };
}

/// Why the ELF file gave no index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolError {
    /// The file is not a 64-bit little-endian ELF file, or its headers do
    /// not fit it.
    NotElf,
    /// The file has no loadable segment.
    NoLoadSegment,
    /// The file has no `.symtab` (stripped).
    NoSymbolTable,
    /// The symbol or string table lies outside the file.
    BadTable,
}

impl fmt::Display for SymbolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SymbolError::NotElf => "not a 64-bit little-endian ELF file",
            SymbolError::NoLoadSegment => "no loadable segment",
            SymbolError::NoSymbolTable => "no symbol table (stripped?)",
            SymbolError::BadTable => "its symbol or string table lies outside the file",
        })
    }
}

/// What [`SymbolIndex::build`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indexed {
    /// Functions and code labels indexed.
    pub symbols: usize,
    /// Functions and code labels left out because the index or its room
    /// for names was full.
    pub dropped: usize,
    /// Entries of the symbol table.
    pub table_entries: usize,
    /// Bytes of names kept.
    pub name_bytes: usize,
}

/// A function found by [`SymbolIndex::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbol<'a> {
    /// The name, demangled, without its hash.
    pub name: &'a str,
    /// How far into the function the address lies.
    pub offset: u64,
    /// The function's size.
    pub size: u64,
}

impl fmt::Display for Symbol<'_> {
    /// `name+0x1a/0x40`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{:#x}/{:#x}", self.name, self.offset, self.size)
    }
}

/// Up to `N` functions of a kernel's ELF file, sorted by address, with up
/// to `M` bytes of their names.
#[derive(Debug, Clone)]
pub struct SymbolIndex<const N: usize, const M: usize> {
    entries: [Entry; N],
    len: usize,
    names: [u8; M],
    link_base: u64,
}

impl<const N: usize, const M: usize> Default for SymbolIndex<N, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const M: usize> SymbolIndex<N, M> {
    /// An empty index: every lookup fails.
    pub const fn new() -> Self {
        Self {
            entries: [Entry::EMPTY; N],
            len: 0,
            names: [0; M],
            link_base: 0,
        }
    }

    /// Functions and labels indexed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The lowest address of a loadable segment, as linked.
    pub fn link_base(&self) -> u64 {
        self.link_base
    }

    /// The link address of `addr` in an image whose lowest segment was
    /// loaded at `load_base`.
    pub fn link_address(&self, addr: u64, load_base: u64) -> u64 {
        addr.wrapping_sub(load_base).wrapping_add(self.link_base)
    }

    /// Indexes the functions of `file` (an ELF executable): every `FUNC`
    /// symbol, and every untyped symbol (an assembly label) in an
    /// executable section whose name does not start with `__` (the linker
    /// script's section bounds). Replaces what the index held; on an error
    /// it is left empty.
    pub fn build(&mut self, file: &[u8]) -> Result<Indexed, SymbolError> {
        self.len = 0;
        let elf = ElfBytes::<LittleEndian>::minimal_parse(file).map_err(|_| SymbolError::NotElf)?;
        let (link_base, text_end) = load_bounds(&elf)?;
        let (symbols, strings) = elf
            .symbol_table()
            .map_err(|_| SymbolError::BadTable)?
            .ok_or(SymbolError::NoSymbolTable)?;
        let shdrs = elf.section_headers().ok_or(SymbolError::NoSymbolTable)?;
        let executable = |shndx: u16| {
            shndx != abi::SHN_UNDEF
                && shndx < abi::SHN_LORESERVE
                && shdrs
                    .get(shndx as usize)
                    .is_ok_and(|s| s.sh_flags & u64::from(abi::SHF_EXECINSTR) != 0)
        };
        let (mut len, mut dropped) = (0, 0);
        for sym in symbols.iter() {
            let name = strings.get_raw(sym.st_name as usize).unwrap_or(b"");
            let size = match sym.st_symtype() {
                abi::STT_FUNC if sym.st_size > 0 => sym.st_size,
                abi::STT_NOTYPE if !name.is_empty() && !name.starts_with(b"__") => 0,
                _ => continue,
            };
            let offset = sym.st_value.wrapping_sub(link_base);
            let (Ok(start), Ok(size)) = (u32::try_from(offset), u32::try_from(size)) else {
                continue;
            };
            if !executable(sym.st_shndx) {
                continue;
            }
            if len == N {
                dropped += 1;
                continue;
            }
            self.entries[len] = Entry {
                start,
                size,
                name: sym.st_name,
            };
            len += 1;
        }
        let entries = &mut self.entries[..len];
        // A function before a label at the same address, the larger first.
        entries.sort_unstable_by_key(|e| (e.start, u32::MAX - e.size));
        let len = dedup_by_start(entries);
        let text_end = u32::try_from(text_end - link_base).unwrap_or(u32::MAX);
        // With functions left out, the next entry is not the next symbol:
        // labels then stay without a size, and name nothing.
        if dropped == 0 {
            size_labels(&mut self.entries[..len], text_end);
        }
        let (len, name_bytes) = self.copy_names(len, &strings, &mut dropped);
        self.len = len;
        self.link_base = link_base;
        Ok(Indexed {
            symbols: len,
            dropped,
            table_entries: symbols.len(),
            name_bytes,
        })
    }

    /// Copies the names of the first `len` entries, demangled, into the
    /// index, leaving out the entries whose name does not fit (counted in
    /// `dropped`). Returns the entries kept and the bytes used.
    fn copy_names(
        &mut self,
        len: usize,
        strings: &StringTable<'_>,
        dropped: &mut usize,
    ) -> (usize, usize) {
        let (mut kept, mut used) = (0, 0);
        for i in 0..len {
            let mut entry = self.entries[i];
            let raw = strings.get(entry.name as usize).unwrap_or("?");
            let mut out = Names {
                buf: &mut self.names[used..],
                len: 0,
            };
            // An empty name still needs its NUL.
            if out.write_str("").is_err()
                || write!(out, "{:#}", rustc_demangle::demangle(raw)).is_err()
            {
                *dropped += 1;
                continue;
            }
            entry.name = used as u32;
            used += out.len + 1;
            self.entries[kept] = entry;
            kept += 1;
        }
        (kept, used)
    }

    /// The function holding the link address `addr`. None outside every
    /// function (padding between them included).
    pub fn lookup(&self, addr: u64) -> Option<Symbol<'_>> {
        let offset = u32::try_from(addr.checked_sub(self.link_base)?).ok()?;
        let entries = &self.entries[..self.len];
        let at = entries.partition_point(|e| e.start <= offset);
        let entry = entries.get(at.checked_sub(1)?)?;
        let into = offset - entry.start;
        if into >= entry.size {
            return None;
        }
        let names = self.names.get(entry.name as usize..)?;
        let end = names.iter().position(|&b| b == 0)?;
        Some(Symbol {
            name: core::str::from_utf8(&names[..end]).ok()?,
            offset: u64::from(into),
            size: u64::from(entry.size),
        })
    }
}

/// A writer of one NUL-terminated name into the rest of the names; fails
/// when it does not fit.
struct Names<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for Names<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Room for the name's end (a NUL) is always kept.
        let end = self.len + s.len();
        if end >= self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.buf[end] = 0;
        self.len = end;
        Ok(())
    }
}

/// The lowest address of a loadable segment and the end of the highest
/// executable one, as linked.
fn load_bounds(elf: &ElfBytes<'_, LittleEndian>) -> Result<(u64, u64), SymbolError> {
    let segments = elf.segments().ok_or(SymbolError::NoLoadSegment)?;
    let (mut base, mut text_end) = (u64::MAX, 0);
    for p in segments.iter().filter(|p| p.p_type == abi::PT_LOAD) {
        base = base.min(p.p_vaddr);
        if p.p_flags & abi::PF_X != 0 {
            text_end = text_end.max(p.p_vaddr.saturating_add(p.p_memsz));
        }
    }
    if base == u64::MAX {
        return Err(SymbolError::NoLoadSegment);
    }
    Ok((base, text_end.max(base)))
}

/// Keeps the first of the (sorted) entries sharing a start: a function
/// before a label, the larger before the smaller. Returns how many remain.
fn dedup_by_start(entries: &mut [Entry]) -> usize {
    let mut kept = 0;
    for i in 0..entries.len() {
        if kept == 0 || entries[kept - 1].start != entries[i].start {
            entries[kept] = entries[i];
            kept += 1;
        }
    }
    kept
}

/// Gives each label (size 0) the bytes up to the next entry, or to the end
/// of the executable segments.
fn size_labels(entries: &mut [Entry], text_end: u32) {
    for i in 0..entries.len() {
        if entries[i].size == 0 {
            let end = entries.get(i + 1).map_or(text_end, |next| next.start);
            entries[i].size = end.saturating_sub(entries[i].start);
        }
    }
}
/// How a [`FrameWalk`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkEnd {
    /// Still walking.
    Walking,
    /// A zero frame pointer or return address: the outermost frame.
    Outermost,
    /// A frame pointer that is misaligned, outside every known stack, not
    /// above the previous frame on the same stack, or unreadable.
    BadFrame(u64),
    /// The walk reached its bound on frames or stack switches.
    Limit,
}

/// The return addresses of a frame-pointer chain (`[rbp]` the caller's
/// frame pointer, `[rbp + 8]` the return address), innermost first.
///
/// Each frame pointer must be 8-byte aligned and lie, with both words, in
/// a stack `stack_of` knows; on the same stack each frame must lie above
/// the previous one. The walk ends at the first frame that breaks a rule
/// and after at most `max_frames` frames or `max_switches` changes of
/// stack, so a corrupt chain can neither loop nor send it into unmapped
/// memory.
#[derive(Debug)]
pub struct FrameWalk<R, S> {
    rbp: u64,
    read: R,
    stack_of: S,
    stack: Option<Range<u64>>,
    frames: usize,
    switches: usize,
    max_frames: usize,
    max_switches: usize,
    end: WalkEnd,
}

impl<R, S> FrameWalk<R, S>
where
    R: FnMut(u64) -> Option<u64>,
    S: FnMut(u64) -> Option<Range<u64>>,
{
    /// A walk from the frame pointer `rbp`, reading words with `read` and
    /// asking `stack_of` for the bounds of the stack holding an address.
    pub fn new(rbp: u64, read: R, stack_of: S, max_frames: usize, max_switches: usize) -> Self {
        Self {
            rbp,
            read,
            stack_of,
            stack: None,
            frames: 0,
            switches: 0,
            max_frames,
            max_switches,
            end: WalkEnd::Walking,
        }
    }

    /// Why the walk ended ([`WalkEnd::Walking`] while it goes on).
    pub fn end(&self) -> WalkEnd {
        self.end
    }

    fn stop(&mut self, why: WalkEnd) -> Option<u64> {
        self.end = why;
        None
    }
}

impl<R, S> Iterator for FrameWalk<R, S>
where
    R: FnMut(u64) -> Option<u64>,
    S: FnMut(u64) -> Option<Range<u64>>,
{
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.end != WalkEnd::Walking {
            return None;
        }
        let rbp = self.rbp;
        if rbp == 0 {
            return self.stop(WalkEnd::Outermost);
        }
        if self.frames == self.max_frames {
            return self.stop(WalkEnd::Limit);
        }
        let Some(stack) = (self.stack_of)(rbp) else {
            return self.stop(WalkEnd::BadFrame(rbp));
        };
        let fits = rbp.is_multiple_of(8)
            && rbp >= stack.start
            && rbp.checked_add(16).is_some_and(|end| end <= stack.end);
        match &self.stack {
            _ if !fits => return self.stop(WalkEnd::BadFrame(rbp)),
            Some(previous) if *previous == stack => {}
            Some(_) if self.switches == self.max_switches => return self.stop(WalkEnd::Limit),
            Some(_) => self.switches += 1,
            None => {}
        }
        let (Some(next), Some(ret)) = ((self.read)(rbp), (self.read)(rbp + 8)) else {
            return self.stop(WalkEnd::BadFrame(rbp));
        };
        if ret == 0 {
            return self.stop(WalkEnd::Outermost);
        }
        // On the same stack the caller's frame lies above; a frame on
        // another stack (an interrupt or a switched stack) starts anew.
        if next != 0 && next <= rbp && stack.contains(&next) {
            self.end = WalkEnd::BadFrame(next);
            self.frames += 1;
            return Some(ret);
        }
        self.stack = Some(stack);
        self.rbp = next;
        self.frames += 1;
        Some(ret)
    }
}

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

const LINK: u64 = 0xffff_ffff_8000_0000;
const TEXT: u64 = 0x1000;

/// A symbol of a test ELF file: `shndx` 1 is `.text`, 2 `.data`.
struct Sym<'a> {
    name: &'a str,
    value: u64,
    size: u64,
    ty: u8,
    shndx: u16,
}

fn func(name: &str, offset: u64, size: u64) -> Sym<'_> {
    Sym {
        name,
        value: LINK + offset,
        size,
        ty: abi::STT_FUNC,
        shndx: 1,
    }
}

fn label(name: &str, offset: u64) -> Sym<'_> {
    Sym {
        name,
        value: LINK + offset,
        size: 0,
        ty: abi::STT_NOTYPE,
        shndx: 1,
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
}

#[allow(clippy::too_many_arguments)] // One field of a section header each.
fn section(
    out: &mut Vec<u8>,
    name: u32,
    ty: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    entsize: u64,
) {
    put(out, &name.to_le_bytes());
    put(out, &ty.to_le_bytes());
    put(out, &flags.to_le_bytes());
    put(out, &addr.to_le_bytes());
    put(out, &offset.to_le_bytes());
    put(out, &size.to_le_bytes());
    put(out, &link.to_le_bytes());
    put(out, &0u32.to_le_bytes());
    put(out, &8u64.to_le_bytes());
    put(out, &entsize.to_le_bytes());
}

/// A minimal ELF executable linked at `LINK`: one R+X segment of `TEXT`
/// bytes, sections `.text` (no bytes in the file), `.data`, `.symtab`,
/// `.strtab` and `.shstrtab`.
fn elf(syms: &[Sym<'_>]) -> Vec<u8> {
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; 24];
    for s in syms {
        let name = strtab.len() as u32;
        strtab.extend_from_slice(s.name.as_bytes());
        strtab.push(0);
        put(&mut symtab, &name.to_le_bytes());
        symtab.push(s.ty);
        symtab.push(0);
        put(&mut symtab, &s.shndx.to_le_bytes());
        put(&mut symtab, &s.value.to_le_bytes());
        put(&mut symtab, &s.size.to_le_bytes());
    }
    let shstrtab = b"\0.text\0.data\0.symtab\0.strtab\0.shstrtab\0";
    let symtab_off = 64 + 56;
    let strtab_off = symtab_off + symtab.len();
    let shstrtab_off = strtab_off + strtab.len();
    let shoff = (shstrtab_off + shstrtab.len()).next_multiple_of(8);

    let mut out = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    out.resize(16, 0);
    put(&mut out, &2u16.to_le_bytes()); // ET_EXEC
    put(&mut out, &62u16.to_le_bytes()); // x86-64
    put(&mut out, &1u32.to_le_bytes());
    put(&mut out, &LINK.to_le_bytes()); // entry
    put(&mut out, &64u64.to_le_bytes()); // phoff
    put(&mut out, &(shoff as u64).to_le_bytes());
    put(&mut out, &0u32.to_le_bytes());
    for half in [64u16, 56, 1, 64, 6, 5] {
        put(&mut out, &half.to_le_bytes());
    }
    // The program header.
    put(&mut out, &abi::PT_LOAD.to_le_bytes());
    put(&mut out, &(abi::PF_X | abi::PF_R).to_le_bytes());
    for word in [0, LINK, LINK, 0, TEXT, 0x1000] {
        put(&mut out, &word.to_le_bytes());
    }
    put(&mut out, &symtab);
    put(&mut out, &strtab);
    put(&mut out, shstrtab);
    out.resize(shoff, 0);
    let (alloc, exec, write) = (
        u64::from(abi::SHF_ALLOC),
        u64::from(abi::SHF_EXECINSTR),
        u64::from(abi::SHF_WRITE),
    );
    section(&mut out, 0, 0, 0, 0, 0, 0, 0, 0);
    let text = abi::SHT_NOBITS;
    section(&mut out, 1, text, alloc | exec, LINK, 0, TEXT, 0, 0);
    let data = abi::SHT_NOBITS;
    section(
        &mut out,
        7,
        data,
        alloc | write,
        LINK + TEXT,
        0,
        0x100,
        0,
        0,
    );
    let (symtab_len, strtab_len) = (symtab.len() as u64, strtab.len() as u64);
    let off = symtab_off as u64;
    section(&mut out, 13, abi::SHT_SYMTAB, 0, 0, off, symtab_len, 4, 24);
    let off = strtab_off as u64;
    section(&mut out, 21, abi::SHT_STRTAB, 0, 0, off, strtab_len, 0, 0);
    let (off, len) = (shstrtab_off as u64, shstrtab.len() as u64);
    section(&mut out, 29, abi::SHT_STRTAB, 0, 0, off, len, 0, 0);
    out
}

const PROVOKE: &str = "_ZN5baton6faults7provoke17h0123456789abcdefE";

fn sample() -> Vec<u8> {
    elf(&[
        label("__text_start", 0),
        func(PROVOKE, 0x100, 0x40),
        label("kmain_alias", 0x200),
        func("kmain", 0x200, 0x80),
        label("baton_trap_stubs", 0x300),
        label("__text_end", TEXT),
        Sym {
            name: "DATA",
            value: LINK + TEXT,
            size: 8,
            ty: abi::STT_OBJECT,
            shndx: 2,
        },
        Sym {
            name: "undefined",
            value: 0,
            size: 8,
            ty: abi::STT_FUNC,
            shndx: 0,
        },
    ])
}

fn name_at(index: &SymbolIndex<16, 1024>, offset: u64) -> Option<String> {
    index.lookup(LINK + offset).map(|s| s.to_string())
}

#[test]
fn functions_and_labels_are_named_with_offset_and_size() {
    let file = sample();
    let mut index = SymbolIndex::<16, 1024>::new();
    let found = index.build(&file).unwrap();
    assert_eq!(
        found,
        Indexed {
            symbols: 3,
            dropped: 0,
            table_entries: 9,
            name_bytes: "baton::faults::provoke\0kmain\0baton_trap_stubs\0".len(),
        }
    );
    assert_eq!(index.link_base(), LINK);
    let at = |offset| name_at(&index, offset);
    assert_eq!(
        at(0x11a).as_deref(),
        Some("baton::faults::provoke+0x1a/0x40")
    );
    assert_eq!(
        at(0x100).as_deref(),
        Some("baton::faults::provoke+0x0/0x40")
    );
    // The function wins over a label at the same address.
    assert_eq!(at(0x27f).as_deref(), Some("kmain+0x7f/0x80"));
    // A label reaches to the end of the executable segment.
    assert_eq!(at(0x310).as_deref(), Some("baton_trap_stubs+0x10/0xd00"));
    // Padding, the section bound before the first function, data, and
    // addresses outside the image name nothing.
    for offset in [0x0, 0x50, 0x140, 0x280, TEXT, TEXT + 4, u64::MAX - LINK] {
        assert_eq!(at(offset), None, "{offset:#x}");
    }
    assert_eq!(index.lookup(0x100), None);
    let provoke = index.lookup(LINK + 0x11a).unwrap();
    assert_eq!(
        (provoke.name, provoke.offset, provoke.size),
        ("baton::faults::provoke", 0x1a, 0x40)
    );
}

#[test]
fn a_relocated_image_resolves_through_its_load_base() {
    let file = sample();
    let mut index = SymbolIndex::<16, 1024>::new();
    index.build(&file).unwrap();
    // Loaded 0x2340_0000 lower than linked.
    let load = LINK - 0x2340_0000;
    let rip = load + 0x11a;
    let addr = index.link_address(rip, load);
    assert_eq!(addr, LINK + 0x11a);
    assert_eq!(
        index.lookup(addr).unwrap().to_string(),
        "baton::faults::provoke+0x1a/0x40"
    );
    // Without the conversion the runtime address names nothing.
    assert_eq!(index.lookup(rip), None);
}

#[test]
fn a_full_index_counts_what_it_left_out_and_never_misnames() {
    let file = sample();
    let mut index = SymbolIndex::<2, 1024>::new();
    let found = index.build(&file).unwrap();
    assert_eq!((found.symbols, found.dropped), (2, 2));
    assert_eq!(
        index.lookup(LINK + 0x101).unwrap().to_string(),
        "baton::faults::provoke+0x1/0x40"
    );
    // The label kmain_alias was indexed, kmain and the stubs were not: the
    // label's size is then unknown, and it names nothing.
    assert_eq!(index.lookup(LINK + 0x201), None);
    assert_eq!(index.lookup(LINK + 0x300), None);
}

#[test]
fn bad_files_give_errors() {
    let mut index = SymbolIndex::<16, 1024>::new();
    assert_eq!(index.build(b"not an ELF file"), Err(SymbolError::NotElf));
    assert_eq!(index.build(&[]), Err(SymbolError::NotElf));
    // Stripped: the symbol table's type changed to PROGBITS.
    let mut stripped = sample();
    let shoff = u64::from_le_bytes(stripped[40..48].try_into().unwrap()) as usize;
    stripped[shoff + 3 * 64 + 4] = abi::SHT_PROGBITS as u8;
    assert_eq!(index.build(&stripped), Err(SymbolError::NoSymbolTable));
    // The string table's offset beyond the end of the file.
    let mut bad = sample();
    let size_at = shoff + 4 * 64 + 24;
    bad[size_at..size_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert_eq!(index.build(&bad), Err(SymbolError::BadTable));
    assert!(index.is_empty());
}

#[test]
fn names_that_do_not_fit_leave_their_functions_out() {
    let file = sample();
    // Room for "baton::faults::provoke\0kmain\0" and no more.
    let mut index = SymbolIndex::<16, 29>::new();
    let found = index.build(&file).unwrap();
    assert_eq!((found.symbols, found.dropped, found.name_bytes), (2, 1, 29));
    assert_eq!(
        index.lookup(LINK + 0x27f).unwrap().to_string(),
        "kmain+0x7f/0x80"
    );
    assert_eq!(index.lookup(LINK + 0x300), None);
    // One byte less: kmain is left out too, provoke stays.
    let mut index = SymbolIndex::<16, 28>::new();
    let found = index.build(&file).unwrap();
    assert_eq!((found.symbols, found.dropped), (1, 2));
    assert_eq!(index.lookup(LINK + 0x27f), None);
    assert_eq!(
        index.lookup(LINK + 0x101).unwrap().name,
        "baton::faults::provoke"
    );
}

#[test]
fn the_test_binary_itself_resolves_its_own_functions() {
    // A real ELF file (position-independent: linked at 0, loaded
    // elsewhere), with thousands of symbols.
    // The index is built on a thread with room for it on its stack.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(resolve_own_functions)
        .unwrap()
        .join()
        .unwrap();
}

fn resolve_own_functions() {
    let file = std::fs::read("/proc/self/exe").expect("the test binary");
    let mut index = Box::new(SymbolIndex::<65536, { 16 << 20 }>::new());
    let found = index.build(&file).unwrap();
    assert!(found.symbols > 1000 && found.dropped == 0, "{found:?}");
    let me = the_test_binary_itself_resolves_its_own_functions as fn() as usize as u64;
    let other = functions_and_labels_are_named_with_offset_and_size as fn() as usize as u64;
    // The load base, from where this function was linked.
    let elf = ElfBytes::<LittleEndian>::minimal_parse(&file).unwrap();
    let (symbols, strings) = elf.symbol_table().unwrap().unwrap();
    let linked: Vec<u64> = symbols
        .iter()
        .filter(|s| {
            let name = strings.get(s.st_name as usize).unwrap_or("");
            format!("{:#}", rustc_demangle::demangle(name))
                .ends_with("::the_test_binary_itself_resolves_its_own_functions")
        })
        .map(|s| s.st_value)
        .collect();
    assert_eq!(linked.len(), 1, "{linked:x?}");
    let load_base = me - linked[0] + index.link_base();
    let name = index
        .lookup(index.link_address(other + 3, load_base))
        .map(|s| s.to_string());
    let name = name.expect("the other test function is found");
    assert!(
        name.contains("::functions_and_labels_are_named_with_offset_and_size+0x3/"),
        "{name}"
    );
}

/// Memory for frame walks: words by address.
fn memory(words: &[(u64, u64)]) -> HashMap<u64, u64> {
    words.iter().copied().collect()
}

fn walk(
    rbp: u64,
    mem: &HashMap<u64, u64>,
    stacks: &[Range<u64>],
    max_frames: usize,
) -> (Vec<u64>, WalkEnd) {
    let mut w = FrameWalk::new(
        rbp,
        |a| mem.get(&a).copied(),
        |a| stacks.iter().find(|s| s.contains(&a)).cloned(),
        max_frames,
        2,
    );
    let rets: Vec<u64> = w.by_ref().collect();
    (rets, w.end())
}

#[test]
fn a_chain_across_two_stacks_ends_at_the_outermost_frame() {
    let (a, b) = (0x1000..0x2000, 0x8000..0x9000);
    let mem = memory(&[
        (0x1100, 0x1200),
        (0x1108, 0xa1),
        (0x1200, 0x8f00), // switches to stack b
        (0x1208, 0xa2),
        (0x8f00, 0),
        (0x8f08, 0xa3),
    ]);
    let (rets, end) = walk(0x1100, &mem, &[a, b], 16);
    assert_eq!(rets, [0xa1, 0xa2, 0xa3]);
    assert_eq!(end, WalkEnd::Outermost);
}

#[test]
fn corrupt_chains_end_without_reading_outside_the_stacks() {
    let stacks = [Range {
        start: 0x1000,
        end: 0x2000,
    }];
    // A frame pointing at itself: one return address, then stop.
    let mem = memory(&[(0x1100, 0x1100), (0x1108, 0xa1)]);
    assert_eq!(
        walk(0x1100, &mem, &stacks, 16),
        (vec![0xa1], WalkEnd::BadFrame(0x1100))
    );
    // Downwards on the same stack.
    let mem = memory(&[(0x1100, 0x1080), (0x1108, 0xa1)]);
    assert_eq!(walk(0x1100, &mem, &stacks, 16).1, WalkEnd::BadFrame(0x1080));
    // Outside every stack, misaligned, too close to the top, unreadable:
    // nothing is read there.
    for rbp in [0xdead_0000, 0x1104 + 1, 0x1ff8, 0x1200] {
        assert_eq!(
            walk(rbp, &memory(&[]), &stacks, 16),
            (vec![], WalkEnd::BadFrame(rbp)),
            "{rbp:#x}"
        );
    }
    // A long chain is cut at the bound.
    let words: Vec<(u64, u64)> = (0..100u64)
        .flat_map(|i| {
            [
                (0x1000 + i * 16, 0x1010 + i * 16),
                (0x1008 + i * 16, 0xa0 + i),
            ]
        })
        .collect();
    let (rets, end) = walk(0x1000, &memory(&words), &stacks, 8);
    assert_eq!((rets.len(), end), (8, WalkEnd::Limit));
    // Stacks switching back and forth are cut at the bound on switches.
    let stacks = [0x1000..0x2000, 0x8000..0x9000];
    let mem = memory(&[
        (0x1100, 0x8100),
        (0x1108, 1),
        (0x8100, 0x1200),
        (0x8108, 2),
        (0x1200, 0x8200),
        (0x1208, 3),
        (0x8200, 0x1300),
        (0x8208, 4),
    ]);
    assert_eq!(
        walk(0x1100, &mem, &stacks, 64),
        (vec![1, 2, 3], WalkEnd::Limit)
    );
}

proptest! {
    #[test]
    fn lookups_agree_with_a_linear_search(
        sizes in proptest::collection::vec((0u64..64, 1u64..64), 1..40),
        probes in proptest::collection::vec(0u64..4096, 1..64),
    ) {
        // Functions laid out in order with gaps, then listed backwards.
        let mut at = 0x10;
        let names: Vec<String> = (0..sizes.len()).map(|i| format!("f{i}")).collect();
        let mut syms = Vec::new();
        let mut spans = Vec::new();
        for ((gap, size), name) in sizes.iter().zip(&names) {
            at += gap;
            spans.push((at, at + size, name.clone()));
            syms.push(func(name, at, *size));
            at += size;
        }
        syms.reverse();
        let file = elf(&syms);
        let mut index = SymbolIndex::<64, 4096>::new();
        index.build(&file).unwrap();
        for p in probes {
            let expected = spans
                .iter()
                .find(|(s, e, _)| (*s..*e).contains(&p))
                .map(|(s, e, n)| format!("{n}+{:#x}/{:#x}", p - s, e - s));
            prop_assert_eq!(index.lookup(LINK + p).map(|s| s.to_string()), expected);
        }
    }

    #[test]
    fn damaged_files_never_panic(
        flips in proptest::collection::vec((0usize..1024, any::<u8>()), 1..16),
        cut in 0usize..2048,
    ) {
        let mut file = sample();
        for (at, byte) in flips {
            let len = file.len();
            file[at % len] = byte;
        }
        file.truncate(cut.max(1).min(file.len()));
        let mut index = SymbolIndex::<16, 1024>::new();
        let _ = index.build(&file);
        for offset in (0..TEXT).step_by(16) {
            let _ = index.lookup(LINK + offset).map(|s| s.to_string());
        }
    }
}

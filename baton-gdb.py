# GDB helpers for baton, loaded by baton.gdb (`gdb -x baton.gdb`).
#
#   baton-break-switch     break right before and right after the CR3 switch
#   baton-walk ADDR        walk the live page tables for ADDR, every level's
#                          entry decoded (address, flags, memory type, size)
#   baton-ptdump           the live page tables in baton's ptdump format
#   baton-layout           the address-space layout in effect
#   baton-memmap           baton's memory map (firmware's and Limine's merged)
#   baton-phys[/N] ADDR    N quadwords of physical memory at ADDR
#   $baton_phys(ADDR)      the physical address ADDR maps to (-1: unmapped)
#   $baton_physmap(PHYS)   the physmap address of PHYS
#   baton-connect [PORT]   attach to QEMU (port: $BATON_GDB_PORT, else 1234)
#
# Arguments are GDB expressions, evaluated as C whatever language GDB is in
# (its Rust mode rejects `$cr3 & ~0xfff`), else in GDB's language (Rust
# paths: `baton-walk baton::shim::MAP` walks that static's address); all
# other arithmetic is done here, in Python. Physical memory is read through QEMU's gdbstub in its physical
# mode (`Qqemu.PhyMemMode`), else through baton's physmap once its tables
# are live. What GDB cannot read itself (the layout, the PAT) comes from
# the kernel's `baton_debug` record (kernel/src/shim/switch.rs).
# docs/gdb.md walks through a session.

import contextlib
import os
import re
import struct

import gdb

MASK = (1 << 64) - 1
PRESENT, RW, USER, PWT, PCD = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4
ACCESSED, DIRTY, BIT7, GLOBAL = 1 << 5, 1 << 6, 1 << 7, 1 << 8
PAT_LARGE = 1 << 12
NX = 1 << 63
ADDR_MASK = 0x000F_FFFF_FFFF_F000
SHOWN = PRESENT | RW | USER | PWT | PCD | BIT7 | GLOBAL | NX
TABLE_NAMES = {5: "PML5", 4: "PML4", 3: "PDPT", 2: "PD", 1: "PT"}
PAGE_NAMES = {1: "4K", 2: "2M", 3: "1G"}
PAT_TYPES = {0: "UC", 1: "WC", 4: "WT", 5: "WP", 6: "WB", 7: "UC-"}
# The PAT Limine hands over (its protocol: WB, WT, UC-, UC, WP, WC in
# entries 0 to 5), until baton loads its own.
LIMINE_PAT = ["WB", "WT", "UC-", "UC", "WP", "WC", "?", "?"]


class BatonError(gdb.GdbError):
    pass


@contextlib.contextmanager
def language(lang):
    """Evaluates in `lang`, then restores GDB's language setting."""
    before = gdb.parameter("language")
    gdb.execute("set language " + lang, to_string=True)
    try:
        yield
    finally:
        gdb.execute("set language " + before, to_string=True)


def evaluate(expr):
    """An address or number given as a GDB expression: as C (so that
    `$cr3 & ~0xfff` works), else in GDB's language (Rust paths such as
    `baton::shim::MAP`); a function, array or static by its address."""
    try:
        with language("c"):
            return int(gdb.parse_and_eval("(unsigned long)(%s)" % expr)) & MASK
    except gdb.error:
        value = gdb.parse_and_eval(expr)
        if value.type.strip_typedefs().code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
            value = value.address
        return as_int(value)


def as_int(value):
    """A gdb.Value as an address: a function or array by its address."""
    if value.type.strip_typedefs().code in (gdb.TYPE_CODE_FUNC, gdb.TYPE_CODE_ARRAY):
        value = value.address
    return int(value) & MASK


def register(name):
    return int(gdb.selected_frame().read_register(name)) & MASK


def levels():
    """The paging levels in effect, from CR4.LA57."""
    return 5 if register("cr4") & (1 << 12) else 4


def sign_extend(va, nlevels):
    bits = 57 if nlevels == 5 else 48
    va &= (1 << bits) - 1
    if va & (1 << (bits - 1)):
        va |= MASK ^ ((1 << bits) - 1)
    return va


# Reading the target.

_qemu_phys = None


def qemu_phys_mode():
    """Whether the gdbstub is QEMU's, with its physical-memory mode."""
    global _qemu_phys
    if _qemu_phys is None:
        try:
            out = gdb.execute("maintenance packet qqemu.PhyMemMode", to_string=True)
            _qemu_phys = re.search(r'received: "[01]"', out) is not None
        except gdb.error:
            _qemu_phys = False
    return _qemu_phys


def read_phys(addr, size):
    """`size` bytes of physical memory at `addr`."""
    inferior = gdb.selected_inferior()
    if qemu_phys_mode():
        gdb.execute("maintenance packet Qqemu.PhyMemMode:1", to_string=True)
        try:
            return inferior.read_memory(addr, size).tobytes()
        finally:
            gdb.execute("maintenance packet Qqemu.PhyMemMode:0", to_string=True)
            # Nothing read in physical mode may answer a later virtual read.
            gdb.execute("maintenance flush dcache", to_string=True)
    record = Record.read()
    if not record.live():
        raise BatonError(
            "cannot read physical memory: this gdbstub has no physical mode "
            "(not QEMU?) and baton's physmap is not live yet"
        )
    return inferior.read_memory(record.page_offset_base() + addr, size).tobytes()


def read_table(phys):
    return struct.unpack("<512Q", read_phys(phys, 4096))


def read_virt_u64s(addr, count):
    data = gdb.selected_inferior().read_memory(addr, 8 * count).tobytes()
    return struct.unpack("<%dQ" % count, data)


# The kernel's record of its tables (kernel/src/shim/switch.rs).


class Record:
    """`baton_debug`: root, levels, PAT, layout and memory map of baton's
    tables."""

    def __init__(self, version, root, nlevels, pat, layout, memmap):
        self.version, self.root, self.levels = version, root, nlevels
        self.pat, self.layout_ptr, self.map_ptr = pat, layout, memmap

    @staticmethod
    def read():
        try:
            addr = evaluate("(unsigned long)&baton_debug")
        except gdb.error:
            raise BatonError("no symbol baton_debug: is build/baton loaded (`file build/baton`)?")
        fields = read_virt_u64s(addr, 6)
        if fields[0] != 1:
            raise BatonError("baton_debug has format %d; these helpers know 1" % fields[0])
        return Record(*fields)

    def live(self):
        """Whether baton's tables are the ones CR3 holds."""
        return self.root != 0 and register("cr3") & ADDR_MASK == self.root

    def regions(self):
        """The layout's regions: (name, marker, start, end)."""
        if not self.layout_ptr:
            return []
        with language("rust"):
            layout = gdb.parse_and_eval(
                "*(%#x as *const handoff::layout::Layout)" % self.layout_ptr
            )
            regions = layout["regions"]
            low, high = regions.type.range()
            return [
                (
                    rust_str(regions[i]["name"]),
                    rust_str(regions[i]["marker"]),
                    int(regions[i]["start"]) & MASK,
                    int(regions[i]["end"]) & MASK,
                )
                for i in range(low, high + 1)
            ]

    def page_offset_base(self):
        for name, _, start, _ in self.regions():
            if name == "physmap":
                return start
        raise BatonError("the layout has no physmap")

    def markers(self):
        """ptdump's section markers, (start, name), as the kernel's
        `Layout::ptdump_markers`: "End Modules" where the fixmap starts."""
        out = []
        for name, marker, start, _ in self.regions():
            if name == "fixmap":
                out.append((start, "End Modules"))
            out.append((start, marker))
        return out

    def pat_types(self):
        """The memory type of each PAT entry, and whose PAT it is."""
        if self.pat and self.live():
            types = [PAT_TYPES.get((self.pat >> (8 * i)) & 7, "?") for i in range(8)]
            return types, "baton's PAT"
        return LIMINE_PAT, "Limine's PAT"


def rust_str(value):
    length = int(value["length"])
    if length == 0:
        return ""
    data = gdb.selected_inferior().read_memory(int(value["data_ptr"]), length)
    return data.tobytes().decode("utf-8", "replace")


# Page-table entries.


def pat_index(raw, level):
    pat_bit = (raw & BIT7) if level == 1 else (raw & PAT_LARGE)
    return (4 if pat_bit else 0) | (2 if raw & PCD else 0) | (1 if raw & PWT else 0)


def flag_names(raw, level, leaf):
    names = [
        (PRESENT, "P"),
        (RW, "RW"),
        (USER, "USR"),
        (PWT, "PWT"),
        (PCD, "PCD"),
        (ACCESSED, "A"),
        (DIRTY, "D"),
    ]
    out = [name for bit, name in names if raw & bit]
    if level > 1 and raw & BIT7:
        out.append("PS")
    if level == 1 and raw & BIT7:
        out.append("PAT")
    if level > 1 and leaf and raw & PAT_LARGE:
        out.append("PAT")
    if leaf and raw & GLOBAL:
        out.append("GLB")
    if raw & NX:
        out.append("NX")
    return " ".join(out)


def effective(steps):
    """The access a walk grants, as ptdump shows it: writable or user only
    if every level allows it, no-execute if any level says so."""
    raws = [raw for _, _, _, raw in steps]
    every = lambda bit: all(r & bit for r in raws)
    leaf = raws[-1]
    out = ["USR"] if every(USER) else []
    out.append("RW" if every(RW) else "ro")
    out += [name for bit, name in [(PWT, "PWT"), (PCD, "PCD"), (GLOBAL, "GLB")] if leaf & bit]
    out.append("NX" if any(r & NX for r in raws) else "x")
    return " ".join(out)


def walk(va):
    """The walk of `va` through the live tables: one (level, index, entry
    address, raw entry) per level, and the physical address or None."""
    nlevels = levels()
    table = register("cr3") & ADDR_MASK
    steps = []
    for level in range(nlevels, 0, -1):
        shift = 12 + 9 * (level - 1)
        index = (va >> shift) & 511
        raw = struct.unpack("<Q", read_phys(table + 8 * index, 8))[0]
        steps.append((level, index, table + 8 * index, raw))
        if not raw & PRESENT:
            return steps, None
        if level == 1 or (level in (2, 3) and raw & BIT7):
            offset = va & ((1 << shift) - 1)
            return steps, (raw & ADDR_MASK & ~((1 << shift) - 1)) + offset
        table = raw & ADDR_MASK
    return steps, None


class Walk(gdb.Command):
    """Walk the live page tables for an address: baton-walk ADDR.

Prints each level's entry (where it is, its raw value, the table or page it
points at, its flags and, for the leaf, the memory type from the PAT) and
the physical address ADDR translates to. ADDR is evaluated as C."""

    def __init__(self):
        super().__init__("baton-walk", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        if not arg:
            raise BatonError("usage: baton-walk ADDR")
        va = evaluate(arg)
        record = Record.read()
        whose = "baton's" if record.live() else "Limine's"
        types, pat_whose = record.pat_types()
        print(
            "CR3 %#x: %s %d-level tables; memory types from %s"
            % (register("cr3") & ADDR_MASK, whose, levels(), pat_whose)
        )
        steps, phys = walk(va)
        for level, index, at, raw in steps:
            name = "%s[%d]" % (TABLE_NAMES[level], index)
            line = "%-10s at %#014x: %#018x" % (name, at, raw)
            if not raw & PRESENT:
                print(line + "  not present")
                continue
            leaf = level == 1 or (level in (2, 3) and raw & BIT7)
            if leaf:
                size = 1 << (12 + 9 * (level - 1))
                base = raw & ADDR_MASK & ~(size - 1)
                index_pat = pat_index(raw, level)
                what = "%s page at %#x" % (PAGE_NAMES[level], base)
                tail = "; PAT entry %d: %s" % (index_pat, types[index_pat])
            else:
                what = "table at %#x" % (raw & ADDR_MASK)
                tail = ""
            print("%s  %-26s %s%s" % (line, what, flag_names(raw, level, leaf), tail))
        if phys is None:
            print("%#x is not mapped" % va)
        else:
            level, _, _, raw = steps[-1]
            print(
                "%#x -> physical %#x (%s page, %s, %s)"
                % (va, phys, PAGE_NAMES[level], effective(steps), types[pat_index(raw, level)])
            )


class PhysOf(gdb.Function):
    """$baton_phys(ADDR): the physical address ADDR maps to in the live
    tables, or -1 when it is not mapped."""

    def __init__(self):
        super().__init__("baton_phys")

    def invoke(self, addr):
        _, phys = walk(as_int(addr))
        return -1 if phys is None else phys


class PhysmapOf(gdb.Function):
    """$baton_physmap(PHYS): where baton's physmap maps physical address
    PHYS (the layout in effect, or the one baton is about to load)."""

    def __init__(self):
        super().__init__("baton_physmap")

    def invoke(self, phys):
        return (Record.read().page_offset_base() + as_int(phys)) & MASK


# ptdump, as handoff/src/paging/ptdump.rs prints it.


def human_size(start, end):
    units = "BKMGTPE"
    size, unit = (end - start) & MASK, 0
    if size == 0:
        size, unit = 16, len(units) - 1
    while size & 1023 == 0 and unit + 1 < len(units):
        size >>= 10
        unit += 1
    return size, units[unit]


def prot_columns(prot, level):
    if level == 1:
        pat = prot & BIT7
    elif level in (2, 3):
        pat = prot & PAT_LARGE
    else:
        pat = 0
    return [
        (prot & USER, "USR", ""),
        (prot & RW, "RW", "ro"),
        (prot & PWT, "PWT", ""),
        (prot & PCD, "PCD", ""),
        (level > 1 and prot & BIT7, "PSE", ""),
        (pat, "PAT", ""),
        (prot & GLOBAL, "GLB", ""),
        (prot & NX, "NX", "x"),
    ]


def level_name(level, nlevels):
    if level == 4:
        return "p4d" if nlevels == 5 else "pgd"
    return {1: "pte", 2: "pmd", 3: "pud", 5: "pgd"}.get(level, "cr3")


def format_run(run, nlevels):
    start, end, prot, _, level = run
    size, unit = human_size(start, end)
    line = "0x%016x-0x%016x   %9d%s " % (start, end & MASK, size, unit)
    if not prot & PRESENT:
        line += " " * 30
    else:
        for is_set, yes, no in prot_columns(prot, level):
            width = max(len(yes), len(no)) + 1
            line += (yes if is_set else no).ljust(width)
    return line + level_name(level, nlevels)


class Merger:
    """Merges entries into runs and places markers, as the kernel's."""

    def __init__(self, markers, out):
        self.markers, self.next, self.current, self.out = markers, 0, None, out

    def note(self, addr, prot, effective, level):
        if self.current is None:
            self.markers_up_to(addr)
            self.current = [addr, addr, prot, effective, level]
            return
        crossing = self.next < len(self.markers) and addr >= self.markers[self.next][0]
        cur = self.current
        if (prot, effective, level) != (cur[2], cur[3], cur[4]) or crossing:
            cur[1] = addr
            self.out(("run", tuple(cur)))
            self.markers_up_to(addr)
            self.current = [addr, addr, prot, effective, level]

    def split_at_markers(self, addr, span, prot, effective, level):
        while self.next < len(self.markers):
            start = self.markers[self.next][0]
            offset = (start - addr) & MASK
            if start <= addr or offset >= span or start & 0xFFF:
                break
            self.note(start, prot, effective, level)

    def markers_up_to(self, addr):
        while self.next < len(self.markers) and self.markers[self.next][0] <= addr:
            self.out(("marker", self.markers[self.next][1]))
            self.next += 1


def walk_runs(merger, table, level, base, above, nlevels):
    shift = 12 + 9 * (level - 1)
    span = 1 << shift
    for i, raw in enumerate(read_table(table)):
        if level == nlevels and i == 256:
            # The non-canonical hole, as the kernel notes it.
            merger.note(1 << ((57 if nlevels == 5 else 48) - 1), 0, 0, level)
        offset = i << shift
        addr = sign_extend(offset, nlevels) if level == nlevels else base + offset
        if not raw & PRESENT:
            merger.note(addr, 0, 0, level)
            merger.split_at_markers(addr, span, 0, 0, level)
            continue
        large = level > 1 and raw & BIT7
        prot = (raw & SHOWN) | ((raw & PAT_LARGE) if large else 0)
        effective = (above & prot & (USER | RW)) | ((above | prot) & NX)
        if level == 1 or large:
            merger.note(addr, prot, effective, level)
            merger.split_at_markers(addr, span, prot, effective, level)
        else:
            walk_runs(merger, raw & ADDR_MASK, level - 1, addr, effective, nlevels)


class Ptdump(gdb.Command):
    """Dump the live page tables in baton's ptdump format: baton-ptdump.

The same lines as the kernel's `ptdump` option prints (Linux's
dump_pagetables format), with the section markers of baton's layout while
its tables are live."""

    def __init__(self):
        super().__init__("baton-ptdump", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        record = Record.read()
        nlevels = levels()
        markers = record.markers() if record.live() else []
        lines = []

        def out(event):
            kind, what = event
            if kind == "marker":
                lines.append("---[ %s ]---" % what)
            else:
                lines.append(format_run(what, nlevels))

        merger = Merger(markers, out)
        walk_runs(merger, register("cr3") & ADDR_MASK, nlevels, 0, USER | RW, nlevels)
        merger.note(0, 0, 0, 0)
        print("\n".join(lines))


class ShowLayout(gdb.Command):
    """Show the address-space layout in effect: baton-layout."""

    def __init__(self):
        super().__init__("baton-layout", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        record = Record.read()
        cr3 = register("cr3") & ADDR_MASK
        if not record.root:
            print("CR3 %#x: Limine's tables; baton has not built its own yet" % cr3)
            return
        if record.live():
            print("CR3 %#x: baton's %d-level tables, with this layout:" % (cr3, record.levels))
        else:
            print(
                "CR3 %#x: not baton's tables; baton's (root %#x, not loaded) follow this layout:"
                % (cr3, record.root)
            )
        for name, marker, start, end in record.regions():
            print("  %#018x-%#018x  %-14s (%s)" % (start, end, name, marker))
        types, whose = record.pat_types()
        print("memory types: %s: %s" % (whose, " ".join(types)))


class ShowMemmap(gdb.Command):
    """Show baton's memory map: baton-memmap.

The firmware's EFI map and Limine's map merged and normalised, as the
handoff planned the tables from it (with each range's EFI attributes)."""

    def __init__(self):
        super().__init__("baton-memmap", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        record = Record.read()
        if not record.map_ptr:
            raise BatonError("baton has not built its memory map yet (it does in the handoff)")
        with language("rust"):
            memmap = gdb.parse_and_eval(
                "*(%#x as *const handoff::memmap::map::MemoryMap)" % record.map_ptr
            )
            count = int(memmap["len"])
            print("baton's memory map: %d regions" % count)
            for i in range(count):
                region = memmap["regions"][i]
                kind = str(region["kind"]).rsplit("::", 1)[-1]
                attr = re.search(r"\((\d+)\)\)*$", str(region["attr"]))
                attr = "attr %#x" % int(attr.group(1)) if attr else ""
                print(
                    "  %#014x-%#014x %-22s %s"
                    % (int(region["start"]), int(region["end"]), kind, attr)
                )


class Phys(gdb.Command):
    """Show physical memory: baton-phys[/COUNT] ADDR (COUNT quadwords, 4 by
default)."""

    def __init__(self):
        super().__init__("baton-phys", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        count = 4
        match = re.match(r"\s*/(\d+)\s*(.*)", arg)
        if match:
            count, arg = int(match.group(1)), match.group(2)
        if not arg.strip() or count == 0:
            raise BatonError("usage: baton-phys[/COUNT] ADDR")
        addr = evaluate(arg)
        words = struct.unpack("<%dQ" % count, read_phys(addr, 8 * count))
        for i in range(0, count, 2):
            pair = "  ".join("%#018x" % w for w in words[i : i + 2])
            print("%#014x: %s" % (addr + 8 * i, pair))


class Connect(gdb.Command):
    """Attach to QEMU's gdbstub: baton-connect [PORT].

The port defaults to $BATON_GDB_PORT, else 1234 (QEMU's -s)."""

    def __init__(self):
        super().__init__("baton-connect", gdb.COMMAND_RUNNING)

    def invoke(self, arg, from_tty):
        port = arg.strip() or os.environ.get("BATON_GDB_PORT") or "1234"
        gdb.execute("target remote localhost:" + port)


class BreakSwitch(gdb.Command):
    """Break right before and right after the CR3 switch: baton-break-switch.

At `baton_cr3_switch` the `mov cr3` that loads baton's tables is next; at
`baton_cr3_switched` it has run."""

    def __init__(self):
        super().__init__("baton-break-switch", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        # By address: GDB's Rust mode does not find these assembly symbols.
        for name in ["baton_cr3_switch", "baton_cr3_switched"]:
            gdb.Breakpoint("*%#x" % evaluate(name))


Walk()
PhysOf()
PhysmapOf()
Ptdump()
ShowLayout()
ShowMemmap()
Phys()
BreakSwitch()
Connect()

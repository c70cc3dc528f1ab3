//! The walk of one virtual address, level by level, for fault reports:
//! which entry stopped the walk or which leaf maps the address.

use core::fmt;

use x86_64::structures::paging::PageTableFlags;

use super::pages::{Entry, classify, index, raw};
use super::walker::Walker;
use crate::phys::PhysWindow;

/// One table visited: its level, the index used and the entry found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// 5 (PML5) down to 1 (page table).
    pub level: u8,
    /// The index into that table.
    pub index: usize,
    /// The entry, raw.
    pub entry: u64,
}

/// How a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The address is not canonical: no table is consulted.
    NonCanonical,
    /// The last step's entry is not present.
    NotPresent,
    /// The last step's entry is present but malformed (a large-page bit
    /// where none is allowed).
    Malformed,
    /// The last step's entry is a leaf mapping the address to `phys`.
    Mapped {
        /// The physical address of the byte.
        phys: u64,
    },
}

/// The walk of one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path {
    /// The address walked.
    pub va: u64,
    steps: [Step; 5],
    len: usize,
    /// How the walk ended.
    pub end: End,
}

impl Path {
    /// The tables visited, from the root down.
    pub fn steps(&self) -> &[Step] {
        &self.steps[..self.len]
    }
}

fn table_name(level: u8) -> &'static str {
    match level {
        5 => "PML5",
        4 => "PML4",
        3 => "PDPT",
        2 => "PD",
        _ => "PT",
    }
}

fn write_flags(f: &mut fmt::Formatter<'_>, entry: u64) -> fmt::Result {
    let flags = PageTableFlags::from_bits_retain(entry);
    for (bit, set, clear) in [
        (PageTableFlags::WRITABLE, "RW", "ro"),
        (PageTableFlags::USER_ACCESSIBLE, "USR", ""),
        (PageTableFlags::WRITE_THROUGH, "PWT", ""),
        (PageTableFlags::NO_CACHE, "PCD", ""),
        (PageTableFlags::HUGE_PAGE, "PS", ""),
        (PageTableFlags::GLOBAL, "GLB", ""),
        (PageTableFlags::NO_EXECUTE, "NX", "x"),
    ] {
        let word = if flags.contains(bit) { set } else { clear };
        if !word.is_empty() {
            write!(f, " {word}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Path {
    /// `PML4[0]=0x0 not present`, or
    /// `PML4[273]=0x...063 PDPT[0]=0x... PD[1]=0x...0e3 (RW PS GLB NX) -> 0x200000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.end == End::NonCanonical {
            return write!(f, "{:#x} is not canonical", self.va);
        }
        for (i, step) in self.steps().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(
                f,
                "{}[{}]={:#x}",
                table_name(step.level),
                step.index,
                step.entry
            )?;
        }
        match self.end {
            End::NonCanonical => Ok(()),
            End::NotPresent => f.write_str(" not present"),
            End::Malformed => f.write_str(" malformed"),
            End::Mapped { phys } => {
                let last = self.steps()[self.len - 1].entry;
                f.write_str(" (")?;
                write_flags(f, last)?;
                write!(f, " ) -> {phys:#x}")
            }
        }
    }
}

impl<W: PhysWindow + ?Sized> Walker<'_, W> {
    /// Walks `va` from the root, recording every entry on the way.
    pub fn path(&self, va: u64) -> Path {
        let mut path = Path {
            va,
            steps: [Step {
                level: 0,
                index: 0,
                entry: 0,
            }; 5],
            len: 0,
            end: End::NonCanonical,
        };
        if !self.levels().is_canonical(va) {
            return path;
        }
        let mut table = self.window().table(self.root());
        let mut level = self.levels().count() as u8;
        loop {
            let i = index(va, level);
            let entry = &table[i];
            path.steps[path.len] = Step {
                level,
                index: i,
                entry: raw(entry),
            };
            path.len += 1;
            match classify(entry, level) {
                Entry::Table(frame, _) => {
                    table = self.window().table(frame);
                    level -= 1;
                }
                Entry::Leaf { phys, size, .. } => {
                    path.end = End::Mapped {
                        phys: phys.as_u64() + (va & (size.bytes() - 1)),
                    };
                    return path;
                }
                Entry::Empty => {
                    path.end = End::NotPresent;
                    return path;
                }
                Entry::Other => {
                    let present = raw(entry) & PageTableFlags::PRESENT.bits() != 0;
                    path.end = if present {
                        End::Malformed
                    } else {
                        End::NotPresent
                    };
                    return path;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use x86_64::PhysAddr;

    use super::*;
    use crate::Levels;
    use crate::paging::{Builder, Mapping, PageSize};
    use crate::sim::Sim;

    #[test]
    fn paths_through_simulated_tables() {
        let base = 1u64 << 40;
        let mut sim = Sim::new(PhysAddr::new(base), PhysAddr::new(base + (1 << 24)));
        let mut b = Builder::new(&mut sim.window, &mut sim.frames, Levels::Four).unwrap();
        b.map(&Mapping {
            virt: 0xffff_8880_0000_0000,
            phys: PhysAddr::new(0),
            len: 4 << 20,
            flags: PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE | PageTableFlags::GLOBAL,
            max_page: PageSize::Size2M,
        })
        .unwrap();
        let walker = b.walker();

        let p = walker.path(0);
        assert_eq!(p.end, End::NotPresent);
        assert_eq!(p.steps().len(), 1);
        assert_eq!(p.to_string(), "PML4[0]=0x0 not present");

        let p = walker.path(0xffff_8880_0020_0123);
        assert_eq!(p.end, End::Mapped { phys: 0x20_0123 });
        let s = p.to_string();
        assert!(s.starts_with("PML4[273]=0x"), "{s}");
        assert!(s.contains(" PDPT[0]=0x"), "{s}");
        assert!(
            s.ends_with("PD[1]=0x8000000000200183 ( RW PS GLB NX ) -> 0x200123"),
            "{s}"
        );

        let p = walker.path(0xffff_8880_0040_0000);
        assert_eq!(p.end, End::NotPresent);
        assert_eq!(p.steps().len(), 3);

        assert_eq!(
            walker.path(0x0000_8000_0000_0000).to_string(),
            "0x800000000000 is not canonical"
        );
    }

    #[test]
    fn malformed_and_not_present_entries_are_told_apart() {
        use crate::phys::PhysWindow;
        let base = 1u64 << 40;
        let mut sim = Sim::new(PhysAddr::new(base), PhysAddr::new(base + (1 << 24)));
        let root = Builder::new(&mut sim.window, &mut sim.frames, Levels::Four)
            .unwrap()
            .root();
        let table = sim.window.table_mut(root);
        // Present with PS at the top level, where no page size exists.
        table[1].set_addr(
            PhysAddr::new(0x4000_0000),
            PageTableFlags::PRESENT | PageTableFlags::HUGE_PAGE,
        );
        // Not present, but not zero either (an OS's own bits).
        table[2].set_addr(PhysAddr::new(0x5000), PageTableFlags::WRITABLE);
        let walker = crate::paging::Walker::new(&sim.window, root, Levels::Four);
        assert_eq!(walker.path(1 << 39).end, End::Malformed);
        assert_eq!(walker.path(2 << 39).end, End::NotPresent);
    }
}

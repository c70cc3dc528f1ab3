//! Boot cases: the ptdump and the randomised layout.

use super::*;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "ptdump",
            about: "ptdump prints the live tables in Linux's format with section markers, and the \
                    EFI address space after them, the window's pages in it only and never global",
            cmdline: "test ptdump",
            lines: &[
                "---[ User Space ]---",
                "---[ Low Kernel Mapping ]---",
                "0x0000000000000000-0xffff800000000000 * pgd",
                "{physmap.base}-0x* RW * GLB NX pte",
                "---[ vmalloc() Area ]---",
                "---[ EFI Runtime Services ]---",
                // The kernel's tables: nothing from the window to the image.
                "0xffffffef00000000-0xffffffff80000000          66G * pud",
                "---[ EFI address space (root 0x*) ]---",
                "0xfffffffe*-0xfffffffe* RW                     NX pte",
                "0xfffffffe*-0xfffffffe* ro                     x  pte",
                "---[ High Kernel Mapping ]---",
                "{kernel-image.base}-0x* ro * GLB x  pte",
                // Limine moved the image: it may lie anywhere in the top
                // 2 GiB, so the modules area and fixmap are empty at the
                // last page (the nokaslr case checks Linux's table).
                "---[ Modules ]---",
                "---[ End Modules ]---",
                "---[ Fixmap Area ]---",
            ],
            absent: &["0xfffffffe*GLB*"],
            ..BASE
        },
        Case {
            name: "nokaslr-4-level",
            about: "nokaslr: Linux's fixed 4-level bases, the image at its link address, \
                    Limine's HHDM in the guard hole; ptdump shows Linux's table",
            cmdline: "test nokaslr ptdump",
            lines: &[
                "boot: HHDM offset 0xffff800000000000",
                "boot: kernel at physical 0x*, virtual 0xffffffff80000000",
                "boot: paging 4-level",
                "kaslr: off (nokaslr on the command line): Linux's fixed bases",
                "layout: physmap 0xffff888000000000-0xffffc88000000000 (64 TiB, fixed)",
                "layout: vmalloc 0xffffc90000000000-0xffffe90000000000 (32 TiB, fixed)",
                "layout: vmemmap 0xffffea0000000000-0xffffeb0000000000 (1 TiB, fixed)",
                "layout: kernel image 0xffffffff80000000-0x* (at its link address)",
                "kaslr: read back from the live tables: physmap base 0xffff888000000000",
                "0xffff888000000000-0x* RW * GLB NX pte",
                "0xffffffff80000000-0x* ro * GLB x  pte",
                "---[ Modules ]---",
                // The modules area is empty; the fixmap holds the screen
                // console's framebuffer window, write-combining (PWT
                // selects WC in baton's PAT), read-write, never executable:
                // a 2 MiB page, then 4 KiB pages to the end of QEMU's
                // 1280x800 framebuffer.
                "0xffffffffa0000000-0xffffffffff000000        1520M * pmd",
                "---[ End Modules ]---",
                "---[ Fixmap Area ]---",
                "0xffffffffff000000-0xffffffffff200000           2M     RW PWT     PSE     GLB NX pmd",
                "0xffffffffff200000-0xffffffffff3e8000        1952K     RW PWT             GLB NX pte",
            ],
            absent: &[
                "kaslr: seed from",
                "Limine's KASLR",
                "WARN  kaslr:",
                "0xfffffffe*GLB*",
            ],
            ..BASE
        },
        Case {
            name: "nokaslr-5-level",
            about: "nokaslr under 5-level paging (-cpu max): Linux's fixed 5-level bases",
            cpu: Some("max"),
            cmdline: "test nokaslr",
            lines: &[
                "boot: HHDM offset 0xff00000000000000",
                "boot: kernel at physical 0x*, virtual 0xffffffff80000000",
                "boot: paging 5-level",
                "kaslr: off (nokaslr on the command line): Linux's fixed bases",
                "layout: physmap 0xff11000000000000-0xff91000000000000 (32 PiB, fixed)",
                "layout: vmalloc 0xffa0000000000000-0xffd2000000000000 (12800 TiB, fixed)",
                "layout: vmemmap 0xffd4000000000000-0xffd6000000000000 (512 TiB, fixed)",
                "kaslr: read back from the live tables: physmap base 0xff11000000000000",
            ],
            absent: &["kaslr: seed from", "Limine's KASLR", "WARN  kaslr:"],
            ..BASE
        },
        Case {
            name: "kaslr-two-boots",
            about: "two boots of one image (-cpu max: 5-level, RDRAND) put the physmap, \
                    vmalloc, the vmemmap and the image at different bases",
            cpu: Some("max"),
            boots: 2,
            lines: &[
                "boot: paging 5-level",
                "kaslr: seed from RDRAND, TSC, Limine's HHDM base, Limine's kernel slide, boot time",
                "layout: physmap 0x*-0x* (11 TiB, base 1 of *)",
                "layout: kernel image 0x*-0x* (Limine's KASLR, slide 0x*)",
            ],
            // Each pair of boots shares a physmap base with probability
            // about 1 in 13 million (its 5-level slots).
            varies: &[
                "layout: physmap 0x*",
                "layout: vmalloc 0x*",
                "layout: vmemmap 0x*",
                "kaslr: read back from the live tables: physmap base 0x*",
            ],
            ..BASE
        },
    ]
}

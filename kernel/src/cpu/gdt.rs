//! baton's own GDT and TSS, replacing Limine's (which lives in its HHDM and
//! would not survive the switch to baton's page tables).
//!
//! The TSS carries the interrupt stack table: double faults, NMIs and
//! machine checks run on stacks of their own, so a kernel stack overflow
//! still gets reported.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::VirtAddr;

use super::Stack;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot (1-based in the IDT, 0-based in the TSS) for double faults.
pub const IST_DOUBLE_FAULT: u16 = 0;
/// IST slot for NMIs.
pub const IST_NMI: u16 = 1;
/// IST slot for machine checks.
pub const IST_MACHINE_CHECK: u16 = 2;

/// Size of each IST stack.
pub const IST_STACK_SIZE: usize = 16 * 1024;

// The CPU switches to these until `move_bsp_ist` (after the memory
// services start) moves the bootstrap processor to guarded vmalloc
// stacks; Rust code never touches their content.
static IST_STACKS: [Stack<IST_STACK_SIZE>; 3] = [Stack::new(), Stack::new(), Stack::new()];

/// Selectors of baton's GDT.
#[derive(Debug, Clone, Copy)]
pub struct Selectors {
    pub code: SegmentSelector,
    pub data: SegmentSelector,
    pub tss: SegmentSelector,
}

static TSS: spin::Once<TaskStateSegment> = spin::Once::new();
static GDT: spin::Once<(GlobalDescriptorTable, Selectors)> = spin::Once::new();
/// The bootstrap processor's tables once its IST stacks are in vmalloc
/// space (a loaded TSS cannot be changed in place: it is busy, and shared
/// references to it exist).
static BSP_TSS: spin::Once<TaskStateSegment> = spin::Once::new();
static BSP_GDT: spin::Once<(GlobalDescriptorTable, Selectors)> = spin::Once::new();
static BSP_IST_TOPS: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];

/// The bounds of the bootstrap processor's IST stack `slot`.
pub fn ist_stack(slot: u16) -> (u64, u64) {
    match BSP_IST_TOPS[slot as usize].load(Ordering::SeqCst) {
        0 => IST_STACKS[slot as usize].bounds(),
        top => (top - IST_STACK_SIZE as u64, top),
    }
}

/// Whether the bootstrap processor runs on vmalloc IST stacks.
pub fn bsp_ist_guarded() -> bool {
    BSP_GDT.get().is_some()
}

/// The bootstrap processor's TSS.
pub fn tss() -> &'static TaskStateSegment {
    BSP_TSS
        .get()
        .or_else(|| TSS.get())
        .expect("GDT not initialised")
}

/// The bootstrap processor's GDT and its selectors.
pub fn gdt() -> &'static (GlobalDescriptorTable, Selectors) {
    BSP_GDT
        .get()
        .or_else(|| GDT.get())
        .expect("GDT not initialised")
}

/// Moves the bootstrap processor to IST stacks at `tops` (vmalloc stacks
/// of [`IST_STACK_SIZE`] with guard pages): a new TSS holding them, in a
/// new GDT of the same layout, loaded. Once only.
pub fn move_bsp_ist(tops: [u64; 3]) {
    let mut fresh = false;
    let tss = BSP_TSS.call_once(|| {
        fresh = true;
        tss_with(tops)
    });
    if !fresh {
        return;
    }
    load(BSP_GDT.call_once(|| build(tss)));
    for (slot, top) in BSP_IST_TOPS.iter().zip(tops) {
        slot.store(top, Ordering::SeqCst);
    }
}

/// The GDT (with its selectors) and TSS of CPU `index` (0 the bootstrap
/// processor, else an application processor), once built.
pub fn tables_of(
    index: usize,
) -> Option<(
    &'static (GlobalDescriptorTable, Selectors),
    &'static TaskStateSegment,
)> {
    match index {
        0 => Some((gdt(), tss())),
        i => Some((AP_GDT.get(i - 1)?.get()?, AP_TSS.get(i - 1)?.get()?)),
    }
}

/// The most application processors with tables of their own.
const MAX_APS: usize = super::MAX_CPUS;

/// Each application processor's GDT and TSS (a TSS is busy once loaded, so
/// no two CPUs can share one). In the kernel image: `lgdt` goes through
/// the `x86_64` crate's `VirtAddr`, which refuses 5-level heap addresses.
static AP_TSS: [spin::Once<TaskStateSegment>; MAX_APS] = [const { spin::Once::new() }; MAX_APS];
static AP_GDT: [spin::Once<(GlobalDescriptorTable, Selectors)>; MAX_APS] =
    [const { spin::Once::new() }; MAX_APS];

/// Builds and loads the GDT and TSS of application processor `index`
/// (1-based), its IST stacks at the given tops.
pub fn init_ap(index: usize, ist_tops: [u64; 3]) {
    let tss = AP_TSS[index - 1].call_once(|| tss_with(ist_tops));
    load(AP_GDT[index - 1].call_once(|| build(tss)));
}

/// A TSS with IST stacks at the given tops.
fn tss_with(ist_tops: [u64; 3]) -> TaskStateSegment {
    let mut tss = TaskStateSegment::new();
    // The tops are vmalloc addresses, which under 5-level paging are not
    // 48-bit canonical: `VirtAddr::new` would refuse them. The CPU reads
    // these fields as plain 64-bit numbers, so they are written as such.
    let ist = core::ptr::addr_of_mut!(tss.interrupt_stack_table) as *mut u64;
    for (slot, top) in ist_tops.iter().enumerate() {
        // SAFETY: `interrupt_stack_table` is `[VirtAddr; 7]` and `VirtAddr`
        // is `#[repr(transparent)]` over u64, so slot `slot` (< 3) is a u64
        // inside the field; the TSS is packed, hence the unaligned write.
        // baton never reads these back as `VirtAddr`.
        unsafe { ist.add(slot).write_unaligned(*top) };
    }
    tss
}

/// A GDT with a 64-bit kernel code segment, a data segment and `tss`.
fn build(tss: &'static TaskStateSegment) -> (GlobalDescriptorTable, Selectors) {
    let mut gdt = GlobalDescriptorTable::new();
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss = gdt.append(Descriptor::tss_segment(tss));
    (gdt, Selectors { code, data, tss })
}

/// Loads `gdt` and reloads every segment register and the task register.
fn load((gdt, sel): &'static (GlobalDescriptorTable, Selectors)) {
    gdt.load();
    let sel = *sel;
    // SAFETY: the selectors index the GDT just loaded: a 64-bit code
    // segment, a data segment and an available TSS, all at ring 0.
    unsafe {
        CS::set_reg(sel.code);
        SS::set_reg(sel.data);
        DS::set_reg(sel.data);
        ES::set_reg(sel.data);
        load_tss(sel.tss);
    }
}

/// Loads baton's GDT and TSS and reloads every segment register.
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        for (slot, stack) in IST_STACKS.iter().enumerate() {
            tss.interrupt_stack_table[slot] = VirtAddr::new(stack.bounds().1);
        }
        tss
    });
    load(GDT.call_once(|| build(tss)));
}

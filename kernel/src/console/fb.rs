//! The screen console: every log line on Limine's first framebuffer too,
//! drawn by the pure `fbcon` crate.
//!
//! It starts before `boot::collect`, with the first log line, and draws
//! through the mapping that works at the moment:
//!
//! 1. **Limine's HHDM**, while the CPU runs on Limine's page tables (every
//!    base revision maps framebuffers there);
//! 2. **baton's framebuffer window** in the fixmap from the CR3 switch on:
//!    the handoff plans it (`handoff::plan::framebuffer`), builds it and
//!    checks it with everything else, write-combining through baton's PAT.
//!    Never the physmap: the framebuffer is device memory, not RAM.
//!
//! Which one is decided at every draw from CR3, so that whatever CPU logs
//! on whatever tables draws through a mapping it has; once a CPU has run on
//! baton's tables, the HHDM is never used again (Limine's tables are
//! reused as memory later).
//!
//! Fault and panic reports reach the screen through [`emergency`], which
//! takes the console's lock even when the interrupted code holds it. A
//! fault while the emergency path draws means the screen itself is broken:
//! it is given up, and the report goes on on the serial port.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use fbcon::{Channel, Console, ConsoleError, FontSize, FormatError, Geometry, PixelFormat, Style};
use handoff::Levels;
use handoff::layout::Layout;
use handoff::memtype::MemType;
use handoff::plan::framebuffer::{self as window, FramebufferError, FramebufferWindow};
use log::{debug, warn};
use x86_64::registers::control::Cr3;

use crate::boot::{self, EarlyFramebuffer};
use crate::time;

/// The console and where it draws.
struct Screen {
    console: Console,
    early: EarlyFramebuffer,
    /// The bytes the console draws in: whole rows, as many as baton's
    /// window holds.
    len: usize,
    /// Limine's root table: while CR3 holds it, the HHDM works.
    limine_root: u64,
    /// baton's window, once the handoff planned it.
    window: Option<FramebufferWindow>,
    /// Set once a CPU drew on baton's tables: the HHDM is gone for good.
    hhdm_gone: bool,
    /// Whether Limine's HHDM maps the framebuffer (it may not): if not,
    /// the console draws from the CR3 switch on.
    hhdm_mapped: bool,
    /// Whether the screen was cleared (before the first line drawn).
    cleared: bool,
    /// TSC cycles spent drawing, and log lines drawn.
    cycles: u64,
    records: u64,
}

impl Screen {
    /// The address of the framebuffer's first byte in the tables CR3
    /// holds now, if the console has a mapping there.
    fn base(&mut self) -> Option<u64> {
        if !self.hhdm_gone {
            if Cr3::read().0.start_address().as_u64() == self.limine_root {
                return self.hhdm_mapped.then_some(self.early.virt);
            }
            self.hhdm_gone = true;
        }
        self.window.map(|w| w.virt)
    }

    fn write(&mut self, s: &str) {
        if PAUSED.load(Ordering::Relaxed) {
            return;
        }
        let start = time::tsc();
        if let Some(base) = self.base() {
            // SAFETY: `base` maps the framebuffer's first `len` bytes
            // read-write in the tables CR3 holds: Limine's HHDM maps the
            // whole framebuffer while Limine's tables are live, and baton's
            // window holds at least `len` bytes (`planned` checks). It is
            // device memory, where no Rust object lives; the console's lock
            // (or the emergency path, alone on a stopped machine) makes
            // this the only writer.
            let fb = unsafe { core::slice::from_raw_parts_mut(base as *mut u8, self.len) };
            if !self.cleared {
                self.console.clear(fb);
                self.cleared = true;
            }
            self.console.write_str(fb, s);
        }
        self.cycles += time::tsc() - start;
    }
}

impl Write for Screen {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s);
        Ok(())
    }
}

static SCREEN: spin::Mutex<Option<Screen>> = spin::Mutex::new(None);
/// Set while [`emergency`] draws: a fault that finds it set happened in
/// the emergency path itself.
static IN_EMERGENCY: AtomicBool = AtomicBool::new(false);
/// The screen faulted under the emergency path: never drawn on again.
static BROKEN: AtomicBool = AtomicBool::new(false);

/// What [`init`] did, for [`report_setup`].
#[derive(Debug, Clone, Copy)]
pub enum Setup {
    /// `console=` left the screen out.
    NotAsked,
    /// Limine gave no framebuffer.
    NoFramebuffer,
    /// A memory model other than RGB.
    NotRgb,
    /// A pixel format the console cannot draw.
    Format(FormatError),
    /// A shape the console cannot draw on.
    Console(ConsoleError),
    /// Up and running.
    Drawing,
}

static SETUP: spin::Mutex<Setup> = spin::Mutex::new(Setup::NotAsked);

/// Brings up the screen console on Limine's first framebuffer, in the
/// font size `font` (one of `fbcon`'s; else the size that suits the
/// screen), and clears the screen. Whether it did is logged by
/// [`report_setup`].
pub fn init(font: Option<u16>, bootloader_maps: MapsCheck) -> Setup {
    let setup = try_init(font, bootloader_maps).map_or_else(|e| e, |()| Setup::Drawing);
    *SETUP.lock() = setup;
    setup
}

/// Whether the bootloader's tables map `len` bytes at a virtual address
/// (the first argument) to the same bytes at a physical one (the second).
pub type MapsCheck = fn(u64, u64, u64) -> bool;

fn try_init(font: Option<u16>, bootloader_maps: MapsCheck) -> Result<(), Setup> {
    let early = boot::first_framebuffer().ok_or(Setup::NoFramebuffer)?;
    let fb = early.fb;
    if !fb.rgb {
        return Err(Setup::NotRgb);
    }
    let channel = |(size, shift)| Channel::new(size, shift);
    let format = PixelFormat::new(
        fb.bpp,
        channel(fb.masks[0]),
        channel(fb.masks[1]),
        channel(fb.masks[2]),
    )
    .map_err(Setup::Format)?;
    // As many rows as baton's window will hold after the switch (the
    // fixmap is the same in both paging modes).
    let capacity = window::capacity(Layout::fixed(Levels::Four), fb.phys);
    let height = fb.height.min(capacity / fb.pitch.max(1));
    let geometry = Geometry {
        width: fb.width as usize,
        height: height as usize,
        pitch: fb.pitch as usize,
        format,
    };
    let font = font
        .and_then(|size| {
            FontSize::ALL
                .into_iter()
                .find(|f| f.height() == size as usize)
        })
        .unwrap_or_else(|| FontSize::auto(geometry.height));
    let rows = geometry.height / font.height();
    let console =
        Console::new(geometry, font, Console::default_scroll_step(rows)).map_err(Setup::Console)?;
    let len = fb.pitch * height;
    let mut screen = Screen {
        console,
        early,
        len: len as usize,
        limine_root: Cr3::read().0.start_address().as_u64(),
        window: None,
        hhdm_gone: false,
        hhdm_mapped: bootloader_maps(early.virt, fb.phys, len),
        cleared: false,
        cycles: 0,
        records: 0,
    };
    // Cleared now if the HHDM maps it, else before the first line through
    // baton's window.
    screen.write("");
    *SCREEN.lock() = Some(screen);
    Ok(())
}

/// The screen console, locked, unless there is none.
pub struct Lock(spin::MutexGuard<'static, Option<Screen>>);

impl Lock {
    /// Sets the style of what is written next.
    pub fn set_style(&mut self, style: Style) {
        if let Some(s) = self.0.as_mut() {
            s.console.set_style(style);
        }
    }

    /// Counts a log line drawn.
    pub fn record(&mut self) {
        if let Some(s) = self.0.as_mut() {
            s.records += 1;
        }
    }
}

impl Write for Lock {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(screen) = self.0.as_mut() {
            screen.write(s);
        }
        Ok(())
    }
}

/// The screen console, locked; `None` when there is none. Take the
/// serial console's lock first, then this one.
pub fn lock() -> Option<Lock> {
    if BROKEN.load(Ordering::Relaxed) {
        return None;
    }
    let guard = SCREEN.lock();
    guard.is_some().then_some(Lock(guard))
}

/// Whether the screen console draws what is written now: it is set up,
/// neither given up nor paused, and has a mapping in the tables CR3 holds.
/// A console busy on another CPU counts as drawing. When it does not, the
/// serial port takes the log whatever `console=` says.
pub fn draws() -> bool {
    if BROKEN.load(Ordering::Relaxed) || PAUSED.load(Ordering::Relaxed) {
        return false;
    }
    SCREEN
        .try_lock()
        .is_none_or(|mut guard| guard.as_mut().is_some_and(|s| s.base().is_some()))
}

/// Draws `args` as part of a fault or panic report, in the report's style:
/// also when the interrupted code holds the console's lock. Only for paths
/// that stop the machine afterwards. Returns whether it drew.
pub fn emergency(args: fmt::Arguments<'_>) -> bool {
    if BROKEN.load(Ordering::SeqCst) {
        return false;
    }
    if IN_EMERGENCY.swap(true, Ordering::SeqCst) {
        // This report comes from a fault in the emergency drawing itself:
        // the screen is what is broken. Leave it to the serial port.
        BROKEN.store(true, Ordering::SeqCst);
        return false;
    }
    let mut guard = match SCREEN.try_lock() {
        Some(guard) => guard,
        None => {
            // SAFETY: the fatal paths stop every other CPU first, so the
            // holder is the code this fault or panic interrupted on this
            // CPU, which never resumes, or a stopped CPU: its line is cut
            // short, and the console's state (a cursor within the screen)
            // is valid between any two of its steps.
            unsafe { SCREEN.force_unlock() };
            SCREEN.lock()
        }
    };
    let mut drew = false;
    if let Some(screen) = guard.as_mut() {
        screen.console.set_style(Style::Alert);
        drew = !PAUSED.load(Ordering::Relaxed) && screen.base().is_some();
        let _ = screen.write_fmt(args);
    }
    drop(guard);
    IN_EMERGENCY.store(false, Ordering::SeqCst);
    drew
}

/// The framebuffer the console wants baton's window for (the handoff puts
/// it into its plan), if the console draws.
pub fn wanted() -> Option<window::Framebuffer> {
    let guard = SCREEN.lock();
    let s = guard.as_ref()?;
    Some(window::Framebuffer {
        phys: s.early.fb.phys,
        len: s.len as u64,
    })
}

/// Tells the console where the plan put its window, or why it has none.
/// From the CR3 switch on it draws there, or not at all.
pub fn planned(window: Option<Result<FramebufferWindow, FramebufferError>>) {
    if let Some(s) = SCREEN.lock().as_mut() {
        s.window = match window {
            Some(Ok(w)) if w.len >= s.len as u64 => Some(w),
            _ => None,
        };
    }
    *PLANNED.lock() = window;
}

static PLANNED: spin::Mutex<Option<Result<FramebufferWindow, FramebufferError>>> =
    spin::Mutex::new(None);

/// Runs `f` with the screen console paused: it draws nothing meanwhile
/// (the lines logged go to the serial port only), for the self-test that
/// maps the framebuffer with other types and unmaps the console's window.
/// A draw under way finishes first.
pub fn paused<R>(f: impl FnOnce() -> R) -> R {
    let guard = SCREEN.lock();
    PAUSED.store(true, Ordering::SeqCst);
    drop(guard);
    let result = f();
    PAUSED.store(false, Ordering::SeqCst);
    result
}

/// Set while [`paused`] runs.
static PAUSED: AtomicBool = AtomicBool::new(false);

/// Logs what [`init`] did: the screen's shape, the font and text grid.
/// (Which memory type Limine's HHDM gives it is the handoff's to say: it
/// walks Limine's tables.)
pub fn report_setup() {
    let setup = *SETUP.lock();
    match setup {
        Setup::Drawing => {}
        Setup::NotAsked => return,
        Setup::NoFramebuffer => {
            return debug!("console: no framebuffer; the log goes to the serial port only");
        }
        Setup::NotRgb => return warn!("console: the framebuffer is not RGB; no screen console"),
        Setup::Format(e) => {
            return warn!("console: the framebuffer's pixel format: {e}; no screen console");
        }
        Setup::Console(e) => return warn!("console: {e}; no screen console"),
    }
    let guard = SCREEN.lock();
    let Some(s) = guard.as_ref() else { return };
    let (g, c, fb) = (*s.console.geometry(), &s.console, s.early.fb);
    let rows = c.rows();
    let (cols, step, font) = (c.cols(), c.scroll_step(), c.font());
    let (count, clipped) = (s.early.count, (g.height as u64) < fb.height);
    let (width, height, pitch, format) = (g.width, fb.height, g.pitch, g.format);
    drop(guard);
    debug!("console: screen {width}x{height}, pitch {pitch}, {format}");
    debug!("console: {font}: {cols}x{rows} text, scrolling {step} rows at a time");
    if clipped {
        warn!(
            "console: the framebuffer is larger than baton's {} MiB window for it; \
             the console uses its top {} rows",
            window::capacity(Layout::fixed(Levels::Four), fb.phys) >> 20,
            g.height
        );
    }
    if count > 1 {
        debug!("console: {count} framebuffers; the console uses the first");
    }
}

/// A memory type's name, for the console's lines.
pub fn type_name(ty: MemType) -> &'static str {
    match ty {
        MemType::Wc => "write-combining",
        MemType::Uc => "uncached",
        MemType::UcMinus => "uncached (UC-)",
        MemType::Wt => "write-through",
        MemType::Wp => "write-protected",
        MemType::Wb => "write-back",
    }
}

/// Logs, after the handoff, where the console draws since the CR3 switch
/// (in which of `layout`'s regions).
pub fn report_switch(layout: &Layout) {
    if SCREEN.lock().is_none() {
        return;
    }
    match *PLANNED.lock() {
        Some(Ok(w)) => debug!(
            "console: since the CR3 switch, through baton's window at {:#x} in the {}, {} \
             (baton's PAT)",
            w.virt,
            layout.region_of(w.virt).map_or("?", |r| r.kind.name()),
            type_name(w.mem_type)
        ),
        Some(Err(e)) => warn!(
            "console: no window for the framebuffer ({e}); the screen stopped at the CR3 switch"
        ),
        None => warn!(
            "console: the handoff planned no framebuffer window; the screen stopped at the CR3 switch"
        ),
    }
}

/// TSC cycles spent drawing so far.
pub fn drawing_time() -> u64 {
    SCREEN.lock().as_ref().map_or(0, |s| s.cycles)
}

/// Logs how much of the handoff's phases the screen took: `cycles` of
/// drawing between their start and their end.
pub fn report_handoff_share(cycles: u64) {
    if SCREEN.lock().is_none() {
        return;
    }
    debug!(
        "console: the screen took {} us of the handoff's phases",
        time::cycles_to_micros(cycles)
    );
}

/// Logs what drawing has cost so far.
pub fn report_cost() {
    let guard = SCREEN.lock();
    let Some(s) = guard.as_ref() else { return };
    let stats = s.console.stats();
    let (records, micros) = (s.records, time::cycles_to_micros(s.cycles));
    drop(guard);
    debug!(
        "console: the screen took {micros} us for {records} log lines ({} us each), \
         {} characters and {} scrolls",
        micros / records.max(1),
        stats.glyphs,
        stats.scrolls
    );
}

/// What the self-tests look at: the window the console draws through,
/// where it draws now, and the bytes of one text row.
#[derive(Debug, Clone, Copy)]
pub struct Drawing {
    /// baton's window, once the handoff planned it.
    pub window: Option<FramebufferWindow>,
    /// Where the console draws in the tables CR3 holds now.
    pub base: Option<u64>,
    /// The bytes of one text row.
    pub row: usize,
}

/// The console's state, if it draws at all.
pub fn drawing() -> Option<Drawing> {
    SCREEN.lock().as_mut().map(|screen| Drawing {
        row: screen.console.font().height() * screen.console.geometry().pitch,
        window: screen.window,
        base: screen.base(),
    })
}

/// Whether the console's first text row has lit pixels, read through
/// `base` (where it draws now), under the console's lock.
pub fn first_row_lit(drawing: &Drawing) -> bool {
    let _guard = SCREEN.lock();
    let Some(base) = drawing.base else {
        return false;
    };
    // SAFETY: `base` maps at least the console's first text row (its
    // `row` bytes, checked when planned), readable; the lock keeps the
    // console from drawing meanwhile.
    let top = unsafe { core::slice::from_raw_parts(base as *const u8, drawing.row) };
    top.iter().any(|&b| b != 0)
}

/// Whether the screen console draws from the first line on, through
/// Limine's HHDM (not where the HHDM leaves the framebuffer out).
pub fn draws_before_switch() -> bool {
    SCREEN.lock().as_ref().is_some_and(|s| s.hhdm_mapped)
}

/// Whether [`init`] set the screen console up.
pub fn set_up() -> bool {
    matches!(*SETUP.lock(), Setup::Drawing)
}

/// The HHDM address Limine's framebuffer is drawn through before the
/// switch, if the console draws.
pub fn hhdm_address() -> Option<u64> {
    SCREEN.lock().as_ref().map(|s| s.early.virt)
}

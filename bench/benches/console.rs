//! `make bench`: what the screen console (`fbcon`) costs per log line and per
//! scroll, on a host buffer the size of QEMU's 1280x800 framebuffer and of
//! a 4K laptop's (3840x2160, font 32).
//!
//! `line` writes one typical 120-character log line (timestamp, level and
//! message) on an empty row; `scroll` writes a line feed on the last row of
//! a screen full of such lines, which moves the screen up by the console's
//! scroll step (a third of the rows) and clears the rows freed;
//! `scroll-1` is the same scroll by one row (no jump scrolling), for
//! comparison; `line+scroll/step` is what a line costs on a full screen,
//! its share of a scroll included.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fbcon::{Console, FontSize, Geometry, Level, PixelFormat, Style};

const LINE: &str = "handoff: plan: 12 mappings; physmap 1023 MiB at 0xffff888000000000 \
                    with pages up to 1 GiB; leaves 4K 24";

struct Screen {
    name: &'static str,
    width: usize,
    height: usize,
    font: FontSize,
}

const SCREENS: [Screen; 2] = [
    Screen {
        name: "1280x800",
        width: 1280,
        height: 800,
        font: FontSize::S16,
    },
    Screen {
        name: "3840x2160",
        width: 3840,
        height: 2160,
        font: FontSize::S32,
    },
];

fn console(screen: &Screen, step: Option<usize>) -> (Console, Vec<u8>) {
    let geometry = Geometry {
        width: screen.width,
        height: screen.height,
        pitch: screen.width * 4,
        format: PixelFormat::XRGB8888,
    };
    let rows = screen.height / screen.font.height();
    let step = step.unwrap_or(Console::default_scroll_step(rows));
    let mut con = Console::new(geometry, screen.font, step).expect("geometry fits");
    let mut fb = vec![0u8; geometry.pitch * geometry.height];
    con.clear(&mut fb);
    (con, fb)
}

fn log_line(con: &mut Console, fb: &mut [u8]) {
    con.set_style(Style::Time);
    con.write_str(fb, "[    9.618153] ");
    con.set_style(Style::Level(Level::Info));
    con.write_str(fb, "INFO  ");
    con.write_str(fb, LINE);
}

fn bench(c: &mut Criterion) {
    for screen in &SCREENS {
        let mut group = c.benchmark_group(screen.name);
        group
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        group.bench_function("line", |b| {
            let (mut con, mut fb) = console(screen, None);
            b.iter(|| {
                log_line(&mut con, &mut fb);
                // Back to the start of the row without a line feed.
                con.write_str(&mut fb, "\r");
                black_box(&fb);
            })
        });
        for (name, step) in [("scroll", None), ("scroll-1", Some(1))] {
            // A screen full of log lines, the cursor on the last row: the
            // next line feed scrolls it. Each sample starts from a copy.
            let (mut con, mut fb) = console(screen, step);
            for _ in 1..con.rows() {
                log_line(&mut con, &mut fb);
                con.write_str(&mut fb, "\n");
            }
            log_line(&mut con, &mut fb);
            assert_eq!(con.stats().scrolls, 0);
            group.bench_function(name, |b| {
                b.iter_batched_ref(
                    || (con.clone(), fb.clone()),
                    |(con, fb)| {
                        con.write_str(fb, "\n");
                        black_box(&fb);
                    },
                    BatchSize::LargeInput,
                )
            });
        }
        group.bench_function("line+scroll/step", |b| {
            let (mut con, mut fb) = console(screen, None);
            b.iter(|| {
                log_line(&mut con, &mut fb);
                con.write_str(&mut fb, "\n");
                black_box(&fb);
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

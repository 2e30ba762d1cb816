//! The ptdump picture: one column per environment, each half of its
//! address space a bar from high addresses (top) to low, every run of
//! mappings a box coloured by what it allows, hatched where the entries
//! were kept from the boot pagetable, and the pagetable pages themselves
//! marked beside the direct map where they live.
//!
//! Heights grow with the logarithm of the size: a 4 KiB page and a 1 GiB
//! hole both stay readable. The addresses on the left are exact.

use crate::ptdump_log::{Dump, Half, Range, Tables};
use crate::svg::Svg;

const PAGE_OFFSET: u64 = 0xC000_0000;
const COLUMN: f64 = 330.0;
const MARGIN: f64 = 16.0;
/// Where a column's bar starts, and its width.
const BAR_X: f64 = 84.0;
const BAR_W: f64 = 200.0;

/// One column: a title and the boot's dump.
pub struct Column {
    pub title: String,
    pub dump: Dump,
}

/// A stretch of a half, as drawn.
enum Piece {
    Mapped { r: Range, kept: bool },
    Hole { start: u64, end: u64 },
}

impl Piece {
    fn span(&self) -> (u64, u64) {
        match self {
            Piece::Mapped { r, .. } => (r.start, r.end),
            Piece::Hole { start, end } => (*start, *end),
        }
    }
    fn height(&self) -> f64 {
        let (s, e) = self.span();
        let pages = ((e - s) as f64 / 4096.0).max(1.0);
        match self {
            Piece::Mapped { .. } => 15.0 + 5.5 * pages.log2(),
            Piece::Hole { .. } => (10.0 + 3.0 * pages.log2()).min(60.0),
        }
    }
}

/// The half's address span: the kernel half from PAGE_OFFSET, a user
/// half below it.
fn span_of(half: &Half) -> (u64, u64) {
    if half.what.starts_with("user") {
        (0, PAGE_OFFSET)
    } else {
        (PAGE_OFFSET, 1 << 32)
    }
}

/// Ranges the kernel split only by bits the picture does not show (the
/// accessed and dirty bits of kept entries) are joined again.
fn joined(ranges: &[Range]) -> Vec<Range> {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut out: Vec<Range> = Vec::new();
    for r in sorted {
        match out.last_mut() {
            Some(l)
                if l.end == r.start
                    && l.pfn + ((l.end - l.start) >> 12) == r.pfn
                    && (l.rw, l.nx, l.user, l.global, l.page) == (r.rw, r.nx, r.user, r.global, r.page) =>
            {
                l.end = r.end
            }
            _ => out.push(r),
        }
    }
    out
}

/// The half as pieces, lowest address first: its ranges split where kept
/// entries begin or end, and the holes between.
fn pieces(half: &Half) -> Vec<Piece> {
    let (lo, hi) = span_of(half);
    let mut cuts: Vec<u64> = half.kept.iter().flat_map(|&(s, e)| [s, e]).collect();
    cuts.sort();
    let kept = |a: u64| half.kept.iter().any(|&(s, e)| s <= a && a < e);
    let mut out = Vec::new();
    let mut at = lo;
    for r in joined(&half.ranges) {
        if r.start > at {
            out.push(Piece::Hole { start: at, end: r.start });
        }
        let mut start = r.start;
        for &c in cuts.iter().filter(|&&c| c > r.start && c < r.end) {
            let part = Range { start, end: c, pfn: r.pfn + ((start - r.start) >> 12), ..r };
            out.push(Piece::Mapped { r: part, kept: kept(start) });
            start = c;
        }
        let part = Range { start, pfn: r.pfn + ((start - r.start) >> 12), ..r };
        out.push(Piece::Mapped { r: part, kept: kept(start) });
        at = r.end;
    }
    if at < hi {
        out.push(Piece::Hole { start: at, end: hi });
    }
    out
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 => format!("{} MiB", (b + (1 << 19)) >> 20),
        b => format!("{} KiB", b >> 10),
    }
}

/// Fill colour by what the mapping allows.
fn fill(r: &Range) -> &'static str {
    match (r.rw, r.nx) {
        (false, false) => "#ffcc80", // text: read-only, executable
        (false, true) => "#c5e1a5",  // read-only data
        (true, true) => "#90caf9",   // data: writable, not executable
        (true, false) => "#ef9a9a",  // writable and executable: no W^X
    }
}

fn describe(r: &Range) -> String {
    format!(
        "{} {} {}{}, {} pages",
        size(r.end - r.start),
        if r.rw { "RW" } else { "ro" },
        if r.nx { "NX" } else { "x" },
        if r.global { " GLB" } else { "" },
        if r.page >= 1 << 20 { format!("{}M", r.page >> 20) } else { "4K".into() },
    )
}

/// What a hole holds, from the layout and what lies below it.
fn hole_label(d: &Dump, start: u64, end: u64, after_direct_map: bool) -> String {
    let mut what = Vec::new();
    if after_direct_map {
        what.push("vmalloc");
    }
    if d.pkmap.is_some_and(|p| start <= p && p < end) {
        what.push("pkmap");
    }
    if d.fixmap.is_some_and(|(s, _)| start <= s && s < end) {
        what.push("fixmap");
    }
    let what = if what.is_empty() { String::new() } else { format!(" ({})", what.join(", ")) };
    format!("not mapped: {}{what}", size(end - start))
}

/// Draws one half from `y` down; returns the y below it.
fn draw_half(svg: &mut Svg, d: &Dump, half: &Half, x: f64, mut y: f64) -> f64 {
    svg.text(x + BAR_X, y + 12.0, r#"class="sub""#, &half.what);
    y += 18.0;
    let pieces = pieces(half);
    let top_address = span_of(half).1;
    svg.text(x + BAR_X - 4.0, y + 4.0, r#"class="addr" text-anchor="end""#, &format!("{top_address:#010x}"));
    // Where each piece is drawn, for the pagetable pages' marks.
    let mut placed: Vec<(f64, f64, Range)> = Vec::new();
    for p in pieces.iter().rev() {
        let h = p.height();
        match p {
            Piece::Mapped { r, kept } => {
                svg.rect(
                    x + BAR_X,
                    y,
                    BAR_W,
                    h,
                    &format!(r##"fill="{}" stroke="#455a64" stroke-width="0.6""##, fill(r)),
                );
                if *kept {
                    svg.rect(x + BAR_X, y, BAR_W, h, r#"fill="url(#kept)" stroke="none""#);
                }
                let title = format!(
                    "{:#010x}-{:#010x} -> pfn {:#x}{}{}",
                    r.start,
                    r.end,
                    r.pfn,
                    if r.user { ", user" } else { "" },
                    if *kept { ", kept from the boot pagetable" } else { ", written by the build" }
                );
                let label = format!("{}{}", describe(r), if *kept { ", kept" } else { "" });
                svg.text_titled(x + BAR_X + 5.0, y + h / 2.0 + 4.0, r#"class="box""#, &label, &title);
                placed.push((y, h, *r));
            }
            Piece::Hole { start, end } => {
                svg.rect(
                    x + BAR_X,
                    y,
                    BAR_W,
                    h,
                    r##"fill="#f5f5f5" stroke="#bdbdbd" stroke-dasharray="3,2""##,
                );
                // The hole right above the direct map starts with vmalloc.
                let above_direct_map = pieces.iter().any(|q| {
                    matches!(q, Piece::Mapped { r, .. }
                        if r.end == *start && r.start >= PAGE_OFFSET && r.start - PAGE_OFFSET == r.pfn << 12)
                });
                // Runs counted but not listed lie above the last listed.
                let label = if half.unlisted > 0 && *end == span_of(half).1 {
                    format!("{} more runs, not listed", half.unlisted)
                } else {
                    hole_label(d, *start, *end, above_direct_map)
                };
                svg.text(x + BAR_X + 5.0, y + h / 2.0 + 4.0, r#"class="hole""#, &label);
            }
        }
        y += h;
        let (start, _) = p.span();
        svg.text(x + BAR_X - 4.0, y + 4.0, r#"class="addr" text-anchor="end""#, &format!("{start:#010x}"));
    }
    for t in &half.tables {
        mark_tables(svg, x, &placed, t);
    }
    y + 10.0
}

/// Marks a run of pagetable pages beside the direct-map box that maps
/// them: red if read-only there, grey if writable; solid if the build
/// made them, hollow if they were kept.
fn mark_tables(svg: &mut Svg, x: f64, placed: &[(f64, f64, Range)], t: &Tables) {
    let va = |pfn: u64| PAGE_OFFSET + (pfn << 12);
    let (first, end) = (va(t.first_pfn), va(t.end_pfn));
    let Some(&(y, h, r)) = placed.iter().find(|(_, _, r)| r.start <= first && first < r.end) else { return };
    let frac = |a: u64| ((a.min(r.end) - r.start) as f64 / (r.end - r.start) as f64).clamp(0.0, 1.0);
    // Higher addresses are higher up: the box's bottom is its start.
    let (top, bottom) = (y + h * (1.0 - frac(end)), y + h * (1.0 - frac(first)));
    let colour = if t.readonly == Some(true) { "#c62828" } else { "#37474f" };
    let style = if t.built {
        format!(r#"fill="{colour}" stroke="{colour}" stroke-width="0.8""#)
    } else {
        format!(r#"fill="white" stroke="{colour}" stroke-width="1.2""#)
    };
    svg.rect(x + BAR_X + BAR_W + 4.0, top - 1.0, 9.0, (bottom - top).max(2.5), &style);
}

/// "built: pgd 1, pmd 1, pte 60, read-only".
fn table_summary(half: &Half) -> Vec<String> {
    let mut lines = Vec::new();
    for (built, what) in [(true, "built"), (false, "kept")] {
        for ro in [Some(true), Some(false), None] {
            let mut counts: Vec<(String, u64)> = Vec::new();
            for t in half.tables.iter().filter(|t| t.built == built && t.readonly == ro) {
                match counts.iter_mut().find(|(l, _)| *l == t.level) {
                    Some(c) => c.1 += t.end_pfn - t.first_pfn,
                    None => counts.push((t.level.clone(), t.end_pfn - t.first_pfn)),
                }
            }
            if counts.is_empty() {
                continue;
            }
            let list: Vec<String> = counts.iter().map(|(l, n)| format!("{l} {n}")).collect();
            let mapped = match ro {
                Some(true) => "read-only",
                Some(false) => "writable",
                None => "not in the direct map",
            };
            lines.push(format!("tables {what}: {}, {mapped}", list.join(", ")));
        }
    }
    lines
}

fn legend(svg: &mut Svg, x: f64, y: f64) -> f64 {
    let swatches = [
        ("#ffcc80", "text: read-only, executable"),
        ("#c5e1a5", "read-only, not executable"),
        ("#90caf9", "data: writable, not executable"),
        ("#ef9a9a", "writable and executable (no NX)"),
    ];
    let mut cx = x;
    for (colour, what) in swatches {
        svg.rect(cx, y, 14.0, 12.0, &format!(r##"fill="{colour}" stroke="#455a64" stroke-width="0.6""##));
        svg.text(cx + 18.0, y + 10.0, r#"class="legend""#, what);
        cx += 230.0;
    }
    let y = y + 20.0;
    svg.rect(x, y, 14.0, 12.0, r##"fill="#90caf9" stroke="#455a64" stroke-width="0.6""##);
    svg.rect(x, y, 14.0, 12.0, r#"fill="url(#kept)""#);
    svg.text(
        x + 18.0,
        y + 10.0,
        r#"class="legend""#,
        "hatched: entries kept from the boot pagetable (the rest the build wrote)",
    );
    let y = y + 20.0;
    svg.rect(x, y, 9.0, 12.0, r##"fill="#c62828""##);
    svg.rect(x + 11.0, y, 9.0, 12.0, r##"fill="white" stroke="#c62828" stroke-width="1.2""##);
    svg.rect(x + 22.0, y, 9.0, 12.0, r##"fill="#37474f""##);
    svg.text(
        x + 36.0,
        y + 10.0,
        r#"class="legend""#,
        "beside the bar: the pagetable pages, where the direct map maps them; red: read-only there (Xen's rule), grey: writable; solid: made by the build, hollow: kept",
    );
    y + 20.0
}

const STYLE: &str = "text { font-family: DejaVu Sans, Verdana, sans-serif; fill: #212121; }\n\
    .title { font-size: 15px; font-weight: bold; }\n\
    .col { font-size: 13px; font-weight: bold; }\n\
    .info, .sub, .legend, .tables { font-size: 11px; }\n\
    .sub { font-style: italic; }\n\
    .addr { font-size: 10px; font-family: DejaVu Sans Mono, monospace; fill: #455a64; }\n\
    .box { font-size: 10.5px; }\n\
    .hole { font-size: 10px; fill: #757575; }";

pub fn draw(columns: &[Column]) -> String {
    let mut svg = Svg::new(MARGIN * 2.0 + COLUMN * columns.len() as f64, 100.0);
    svg.raw(
        r##"<defs><pattern id="kept" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#37474f" stroke-width="1.3" stroke-opacity="0.45"/></pattern></defs>"##,
    );
    svg.text(
        MARGIN,
        24.0,
        r#"class="title""#,
        "The kernel half of the live pagetable and two user halves (init, and a grandchild sharing its parent's pages copy-on-write), as each kernel reports them (cargo xtask ptdump)",
    );
    let mut bottom: f64 = 0.0;
    for (i, c) in columns.iter().enumerate() {
        let x = MARGIN + COLUMN * i as f64;
        let mut y = 50.0;
        svg.text(x + BAR_X, y, r#"class="col""#, &c.title);
        y += 15.0;
        let root = c.dump.halves.first().map_or(0, |h| h.root_pfn);
        svg.text(
            x + BAR_X,
            y,
            r#"class="info""#,
            &format!("backend {}, {} paging, root pfn {root:#x}", c.dump.backend, c.dump.paging),
        );
        y += 10.0;
        // The kernel half first, then init's, then the grandchild's,
        // whichever the kernel printed first.
        let mut halves: Vec<&Half> = c.dump.halves.iter().collect();
        halves.sort_by_key(|h| (h.what.starts_with("user"), !h.what.contains("(init)")));
        for half in halves {
            y = draw_half(&mut svg, &c.dump, half, x, y);
            for line in table_summary(half) {
                svg.text(x + BAR_X, y + 2.0, r#"class="tables""#, &line);
                y += 14.0;
            }
            y += 10.0;
        }
        bottom = bottom.max(y);
    }
    let end = legend(&mut svg, MARGIN, bottom + 10.0);
    svg.fit(0.0, end + MARGIN);
    svg.finish(STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ptdump_log::parse;

    const LOG: &str = "\
backend: native (highest priority detected)
paging: 2-level nx=0 large=1 global=0
layout: lowmem 127 MiB (max_low_pfn 0x7fe0), highmem 0 MiB, fixmap 0xfffdf000-0xfffff000, pkmap 0xffc00000
ptdump: kernel half of the live pagetable (root pfn 0x1ac):
ptdump: 0xc0000000-0xc0009000    36K RW x  ker      4K -> pfn 0x0
ptdump: 0xc0009000-0xc0100000   988K RW x  ker      4K -> pfn 0x9
ptdump: 0xc0100000-0xc013b000   236K ro x  ker      4K -> pfn 0x100
ptdump: 0xc013b000-0xc0800000  6932K RW x  ker      4K -> pfn 0x13b
ptdump: 0xc0800000-0xc7c00000   116M RW x  ker      4M -> pfn 0x800
ptdump: kept 0xc0000000-0xc04ac000 (entries of the boot pagetable)
ptdump: tables pgd pfn 0x1ac-0x1ad (1) RW built
ptdump: tables pte pfn 0x195-0x197 (2) RW kept
";

    #[test]
    fn pieces_join_what_the_picture_cannot_tell_apart_and_split_at_kept() {
        let d = parse(LOG).unwrap();
        let p = pieces(&d.halves[0]);
        let spans: Vec<(u64, u64, Option<bool>)> = p
            .iter()
            .map(|p| match p {
                Piece::Mapped { r, kept } => (r.start, r.end, Some(*kept)),
                Piece::Hole { start, end } => (*start, *end, None),
            })
            .collect();
        assert_eq!(
            spans,
            [
                (0xc0000000, 0xc0100000, Some(true)),
                (0xc0100000, 0xc013b000, Some(true)),
                (0xc013b000, 0xc04ac000, Some(true)),
                (0xc04ac000, 0xc0800000, Some(false)),
                (0xc0800000, 0xc7c00000, Some(false)),
                (0xc7c00000, 1 << 32, None),
            ]
        );
        // The split keeps the frames in step.
        let Piece::Mapped { r, .. } = &p[3] else { panic!() };
        assert_eq!(r.pfn, 0x4ac);
    }

    #[test]
    fn the_picture_says_what_each_box_is() {
        let d = parse(LOG).unwrap();
        let svg = draw(&[Column { title: "native, 2-level".into(), dump: d }]);
        assert!(svg.contains("236 KiB ro x, 4K pages, kept"), "{svg}");
        assert!(svg.contains("116 MiB RW x, 4M pages</text>"), "{svg}");
        assert!(svg.contains("not mapped: 900 MiB (vmalloc, pkmap, fixmap)"), "{svg}");
        assert!(svg.contains("tables built: pgd 1, writable"), "{svg}");
        assert!(svg.contains("tables kept: pte 2, writable"), "{svg}");
        assert!(svg.contains(r#"fill="url(#kept)""#));
    }

    #[test]
    fn a_user_half_is_drawn_below_the_kernel_half_with_what_it_did_not_list() {
        let log = std::format!(
            "{LOG}ptdump: user half of process 7 (a grandchild) at its exit (root pfn 0x300):
ptdump: 0x08048000-0x0804c000    16K ro x  USR      4K -> pfn 0x1ed
ptdump: 0x40000000-0x40001000     4K RW x  USR      4K -> pfn 0x1603
ptdump: 3 more runs, not listed
ptdump: tables pte pfn 0x301-0x302 (1) unmapped built
ptdump: user half of process 1 (init) at its first wait (root pfn 0x200):
ptdump: 0x08048000-0x0804c000    16K ro x  USR      4K -> pfn 0x1ed
"
        );
        let svg = draw(&[Column { title: "native".into(), dump: parse(&log).unwrap() }]);
        let at = |s: &str| svg.find(s).unwrap_or_else(|| panic!("no {s} in {svg}"));
        assert!(at("kernel half of") < at("process 1 (init)") && at("(init)") < at("(a grandchild)"));
        assert!(svg.contains("3 more runs, not listed"));
        assert!(svg.contains("not mapped: 128 MiB"), "below the text");
        assert!(svg.contains("tables built: pte 1, not in the direct map"));
    }
}

//! `cargo xtask bench --plot`: the figures of target/bench.json (written
//! by `cargo xtask bench`) as two SVG charts under docs/:
//!
//! - `bench-phases.svg`: instructions per boot phase, per environment, at
//!   the smallest memory size measured (log scale: the phases span five
//!   orders of magnitude);
//! - `bench-xen-hypercalls.svg`: Xen PV's pagetable hypercalls, and the
//!   entries they carried, against dom0's memory, next to the same build
//!   made the anchors' ways (Mini-OS's and Linux's strategies, from
//!   target/bench-xen-strategies.json, where the bench measured them).
//!
//! Under `-icount` the figures are exact instruction counts, so the charts
//! change only when the code does.

use std::path::Path;

use crate::json::{self, Value};
use crate::svg::Svg;
use crate::{build, EXIT_SETUP};

/// The build's phases in boot order (`perf: insns.NAME`); others found
/// in the file follow.
const PHASES: &[&str] = &[
    "entry_to_backend",
    "layout",
    "setup_start",
    "direct_map",
    "fixmap_pkmap",
    "setup_done",
    "mark_rodata_ro",
    "selfcheck",
];

const COLOURS: &[&str] = &[
    "#8d6e63", "#bdbdbd", "#ffb74d", "#42a5f5", "#9575cd", "#4db6ac", "#e57373", "#aed581", "#f06292",
    "#7986cb",
];

const STYLE: &str = "text { font-family: DejaVu Sans, Verdana, sans-serif; font-size: 11px; fill: #212121; }\n\
    .title { font-size: 14px; font-weight: bold; } .note { fill: #616161; } .value { font-size: 9.5px; fill: #424242; }";

/// 2780312 -> "2.78M".
fn short(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.2}M", v / 1e6),
        v if v >= 1e4 => format!("{:.0}k", v / 1e3),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

/// 10^e as an axis label: "100", "10k", "1M".
fn power(e: i32) -> String {
    match e {
        e if e >= 6 => format!("{}M", 10u64.pow(e as u32 - 6)),
        e if e >= 3 => format!("{}k", 10u64.pow(e as u32 - 3)),
        e => format!("{}", 10u64.pow(e.max(0) as u32)),
    }
}

fn mib(mem: &str) -> f64 {
    crate::boot::mib(mem).unwrap_or(0) as f64
}

fn perf(row: &Value, key: &str) -> Option<f64> {
    row.get("perf")?.get(key)?.as_f64()
}

/// Rows that measure the boot (not the remap workload), at the smallest
/// memory size each has.
fn boot_rows(rows: &[Value]) -> Vec<&Value> {
    let mut out: Vec<&Value> = Vec::new();
    for r in rows {
        let name = r.get("row").and_then(Value::as_str).unwrap_or("");
        if name.ends_with("-remap") || perf(r, "insns.direct_map").is_none() {
            continue;
        }
        let mem = mib(r.get("mem").and_then(Value::as_str).unwrap_or(""));
        match out.iter().position(|o| o.get("row").and_then(Value::as_str) == Some(name)) {
            Some(i) if mib(out[i].get("mem").and_then(Value::as_str).unwrap_or("")) > mem => out[i] = r,
            Some(_) => {}
            None => out.push(r),
        }
    }
    out
}

pub fn phases_chart(rows: &[Value]) -> String {
    let rows = boot_rows(rows);
    let mut phases: Vec<String> = PHASES.iter().map(|p| p.to_string()).collect();
    for r in &rows {
        if let Some(Value::Object(p)) = r.get("perf") {
            for k in p.keys().filter_map(|k| k.strip_prefix("insns.")) {
                if !phases.iter().any(|p| p == k) {
                    phases.push(k.to_string());
                }
            }
        }
    }
    let values: Vec<f64> =
        rows.iter().flat_map(|r| phases.iter().filter_map(|p| perf(r, &format!("insns.{p}")))).collect();
    let lo = values.iter().cloned().filter(|v| *v > 0.0).fold(f64::MAX, f64::min).max(1.0).log10().floor();
    let hi = values.iter().cloned().fold(1.0, f64::max).log10().ceil().max(lo + 1.0);
    let (left, width, bar, top) = (150.0, 560.0, 8.0, 70.0);
    let x = |v: f64| left + (v.max(10f64.powf(lo)).log10() - lo) / (hi - lo) * width;
    let group = bar * phases.len() as f64 + 14.0;
    let mut svg = Svg::new(left + width + 260.0, top + group * rows.len() as f64 + 40.0);
    let mem = rows.first().and_then(|r| r.get("mem")).and_then(Value::as_str).unwrap_or("?");
    svg.text(
        16.0,
        24.0,
        r#"class="title""#,
        &format!("Instructions per boot phase, {mem} (cargo xtask bench: QEMU -icount, exact counts)"),
    );
    svg.text(
        16.0,
        42.0,
        r#"class="note""#,
        "log scale; each bar is one phase of one boot, in boot order from the top",
    );
    // The axis: a line per power of ten.
    for e in lo as i32..=hi as i32 {
        let v = 10f64.powi(e);
        svg.line(x(v), top - 6.0, x(v), top + group * rows.len() as f64, r##"stroke="#e0e0e0""##);
        svg.text(x(v), top - 10.0, r#"text-anchor="middle" class="note""#, &power(e));
    }
    for (i, r) in rows.iter().enumerate() {
        let y0 = top + group * i as f64;
        let name = r.get("row").and_then(Value::as_str).unwrap_or("?");
        svg.text(left - 8.0, y0 + group / 2.0, r#"text-anchor="end""#, name);
        for (j, p) in phases.iter().enumerate() {
            let Some(v) = perf(r, &format!("insns.{p}")) else { continue };
            let y = y0 + bar * j as f64;
            let colour = COLOURS[j % COLOURS.len()];
            svg.rect(left, y, x(v) - left, bar - 1.0, &format!(r#"fill="{colour}""#));
            svg.text(x(v) + 3.0, y + bar - 1.5, r#"class="value""#, &short(v));
        }
    }
    let lx = left + width + 60.0;
    for (j, p) in phases.iter().enumerate() {
        let y = top + 16.0 * j as f64;
        svg.rect(lx, y, 12.0, 10.0, &format!(r#"fill="{}""#, COLOURS[j % COLOURS.len()]));
        svg.text(lx + 18.0, y + 9.0, "", p);
    }
    svg.finish(STYLE)
}

/// The Xen PV rows at each memory size, smallest first.
fn xen_rows(rows: &[Value]) -> Vec<&Value> {
    let mut out: Vec<&Value> =
        rows.iter().filter(|r| r.get("row").and_then(Value::as_str) == Some("xen-pv")).collect();
    out.sort_by(|a, b| {
        let m = |r: &Value| mib(r.get("mem").and_then(Value::as_str).unwrap_or(""));
        m(a).total_cmp(&m(b))
    });
    out
}

/// The hypercalls of the pagetable build made with an anchor's strategy at
/// `r`'s memory size, if the bench measured it there.
fn strategy_hypercalls(strategies: &[Value], strategy: &str, r: &Value) -> Option<f64> {
    let mem = r.get("mem").and_then(Value::as_str);
    strategies
        .iter()
        .find(|s| {
            s.get("strategy").and_then(Value::as_str) == Some(strategy)
                && s.get("mem").and_then(Value::as_str) == mem
        })
        .and_then(|s| s.get("hypercalls")?.as_f64())
}

pub fn xen_chart(rows: &[Value], strategies: &[Value]) -> String {
    let rows = xen_rows(rows);
    let minios = strategies.to_vec();
    let linux = strategies.to_vec();
    let carried = |r: &Value| {
        ["mmu_update_entries", "mmuext_entries", "multicall_entries"]
            .iter()
            .filter_map(|k| perf(r, &format!("pagetable.{k}")))
            .sum::<f64>()
    };
    type Series<'a> = (&'a str, Box<dyn Fn(&Value) -> Option<f64>>);
    let series: Vec<Series> = vec![
        ("pagetable_init: hypercalls", Box::new(|r| perf(r, "pagetable.hypercalls"))),
        ("pagetable_init: entries they carried", Box::new(move |r| Some(carried(r)))),
        ("mark_rodata_ro: hypercalls", Box::new(|r| perf(r, "mark_rodata_ro.hypercalls"))),
        ("mark_rodata_ro: mmu_update entries", Box::new(|r| perf(r, "mark_rodata_ro.mmu_update_entries"))),
        ("pagetable pages", Box::new(|r| perf(r, "pagetable.table_pages"))),
        (
            "pagetable_init as Mini-OS would: hypercalls",
            Box::new(move |r| strategy_hypercalls(&minios, "minios", r)),
        ),
        (
            "pagetable_init as Linux would: hypercalls",
            Box::new(move |r| strategy_hypercalls(&linux, "linux", r)),
        ),
    ];
    let (left, width, top, height) = (70.0, 520.0, 60.0, 300.0);
    let mems: Vec<f64> =
        rows.iter().map(|r| mib(r.get("mem").and_then(Value::as_str).unwrap_or(""))).collect();
    let (m_lo, m_hi) = (mems.first().copied().unwrap_or(64.0), mems.last().copied().unwrap_or(64.0));
    let xs =
        |m: f64| if m_hi > m_lo { left + (m - m_lo) / (m_hi - m_lo) * width } else { left + width / 2.0 };
    let all: Vec<f64> =
        rows.iter().flat_map(|r| series.iter().filter_map(|(_, f)| f(r))).filter(|v| *v > 0.0).collect();
    let hi = all.iter().cloned().fold(10.0, f64::max).log10().ceil();
    let ys = |v: f64| top + height - v.max(1.0).log10() / hi * height;
    let mut svg = Svg::new(left + width + 300.0, top + height + 60.0);
    svg.text(
        16.0,
        24.0,
        r#"class="title""#,
        "Xen PV: the pagetable's hypercalls against dom0's memory (cargo xtask bench)",
    );
    svg.text(
        16.0,
        42.0,
        r#"class="note""#,
        "log scale; a multicall or batch counts once, the entries it carried separately",
    );
    for e in 0..=hi as i32 {
        let v = 10f64.powi(e);
        svg.line(left, ys(v), left + width, ys(v), r##"stroke="#e0e0e0""##);
        svg.text(left - 6.0, ys(v) + 4.0, r#"text-anchor="end" class="note""#, &power(e));
    }
    for (r, &m) in rows.iter().zip(&mems) {
        svg.text(
            xs(m),
            top + height + 18.0,
            r#"text-anchor="middle""#,
            r.get("mem").and_then(Value::as_str).unwrap_or(""),
        );
    }
    if rows.len() < 2 {
        svg.text(
            left,
            top + height + 40.0,
            r#"class="note""#,
            "one memory size in target/bench.json: cargo xtask bench without --quick measures 64M, 256M, 896M and 3G",
        );
    }
    for (j, (name, f)) in series.iter().enumerate() {
        let colour = COLOURS[(j + 2) % COLOURS.len()];
        let points: Vec<(f64, f64)> = rows
            .iter()
            .zip(&mems)
            .filter_map(|(r, &m)| f(r).filter(|v| *v > 0.0).map(|v| (xs(m), v)))
            .collect();
        for w in points.windows(2) {
            svg.line(
                w[0].0,
                ys(w[0].1),
                w[1].0,
                ys(w[1].1),
                &format!(r#"stroke="{colour}" stroke-width="2""#),
            );
        }
        for &(px, v) in &points {
            svg.rect(px - 3.0, ys(v) - 3.0, 6.0, 6.0, &format!(r#"fill="{colour}""#));
            svg.text(px + 5.0, ys(v) - 5.0, r#"class="value""#, &short(v));
        }
        let ly = top + 18.0 * j as f64;
        svg.rect(left + width + 30.0, ly, 12.0, 10.0, &format!(r#"fill="{colour}""#));
        svg.text(left + width + 48.0, ly + 9.0, "", name);
    }
    svg.finish(STYLE)
}

pub fn main(bench_json: &Path, out_dir: &Path) -> u8 {
    let text = match std::fs::read_to_string(bench_json) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("xtask bench --plot: {}: {e} (run cargo xtask bench first)", bench_json.display());
            return EXIT_SETUP;
        }
    };
    let v = match json::parse(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("xtask bench --plot: {}: {e}", bench_json.display());
            return 1;
        }
    };
    let rows = v.get("rows").map(Value::as_array).unwrap_or(&[]);
    // The anchors' strategies are optional: an older bench run has none.
    let strategies = std::fs::read_to_string(bench_json.with_file_name("bench-xen-strategies.json"))
        .ok()
        .and_then(|t| json::parse(&t).ok())
        .map(|v| v.get("rows").map(Value::as_array).unwrap_or(&[]).to_vec())
        .unwrap_or_default();
    for (name, svg) in
        [("bench-phases.svg", phases_chart(rows)), ("bench-xen-hypercalls.svg", xen_chart(rows, &strategies))]
    {
        let path = out_dir.join(name);
        if let Err(e) = std::fs::write(&path, svg) {
            eprintln!("xtask bench --plot: writing {}: {e}", path.display());
            return 1;
        }
        println!("xtask: wrote {}", path.strip_prefix(build::root()).unwrap_or(&path).display());
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    const BENCH: &str = r#"{"rows": [
      {"row": "native-pae-4k", "mem": "256M", "perf": {"insns.layout": 50000, "insns.direct_map": 300000, "insns.selfcheck": 2780312}},
      {"row": "native-pae-4k", "mem": "64M", "perf": {"insns.layout": 43244, "insns.direct_map": 83266, "insns.selfcheck": 2780312, "insns.newphase": 7}},
      {"row": "xen-pv", "mem": "256M", "perf": {"insns.direct_map": 1, "pagetable.hypercalls": 5, "pagetable.multicall_entries": 100, "pagetable.mmu_update_entries": 20, "mark_rodata_ro.hypercalls": 0}},
      {"row": "xen-pv", "mem": "64M", "perf": {"insns.direct_map": 1, "pagetable.hypercalls": 3, "pagetable.multicall_entries": 60, "mark_rodata_ro.hypercalls": 1}},
      {"row": "xen-pv-remap", "mem": "64M", "perf": {"insns.direct_map": 1}}
    ], "dispatch_ratio": 1.0}"#;

    #[test]
    fn phases_are_drawn_at_the_smallest_size_in_boot_order() {
        let v = json::parse(BENCH).unwrap();
        let svg = phases_chart(v.get("rows").unwrap().as_array());
        assert!(svg.contains("Instructions per boot phase, 64M"), "{svg}");
        assert!(svg.contains(">83k</text>") && !svg.contains(">300k</text>"), "{svg}");
        assert!(svg.contains(">2.78M</text>"));
        // A phase the chart does not know is drawn too, after the known.
        assert!(svg.find(">selfcheck</text>").unwrap() < svg.find(">newphase</text>").unwrap());
        assert!(!svg.contains("xen-pv-remap"));
    }

    #[test]
    fn xen_hypercalls_follow_memory_and_zeros_are_left_out() {
        let v = json::parse(BENCH).unwrap();
        let svg = xen_chart(v.get("rows").unwrap().as_array(), &[]);
        assert!(svg.contains(">120</text>"), "the entries carried at 256M: {svg}");
        assert!(svg.contains(">60</text>"));
        assert!(svg.find(">64M</text>").unwrap() < svg.find(">256M</text>").unwrap());
        assert!(!svg.contains("one memory size"));
        assert!(!svg.contains(">487</text>"));
    }

    #[test]
    fn the_anchors_strategies_are_drawn_at_the_sizes_measured() {
        let v = json::parse(BENCH).unwrap();
        let strategies = json::parse(
            r#"{"rows": [
              {"strategy": "minios", "mem": "64M", "hypercalls": 100},
              {"strategy": "linux", "mem": "64M", "hypercalls": 487},
              {"strategy": "linux", "mem": "2G", "hypercalls": 9999}
            ]}"#,
        )
        .unwrap();
        let svg = xen_chart(v.get("rows").unwrap().as_array(), strategies.get("rows").unwrap().as_array());
        assert!(svg.contains(">487</text>"), "{svg}");
        assert!(svg.contains(">100</text>"));
        assert!(svg.contains("as Linux would"));
        // No xen-pv row at 2G: nothing to draw it against.
        assert!(!svg.contains(">10.0k</text>") && !svg.contains(">9999</text>"));
    }
}

//! What `cargo xtask test` leaves under `target/matrix/`: each row's log
//! (`ROW.log`), a JUnit XML report for CI systems (`junit.xml`) and one
//! HTML page to read (`index.html`: every row, its result, its time, a
//! link to its log). The reports and logs of the previous run are removed
//! first: a log there is from this run.

use std::fmt::Write as _;
use std::path::Path;

/// One row of the report: a host test run, a set-up check, a boot, a gdb
/// session.
pub struct Entry {
    /// host, setup, matrix, gdb.
    pub group: &'static str,
    pub name: String,
    pub env: String,
    pub cpu: String,
    pub mem: String,
    /// The run's own result: SUCCESS, FAILURE, CRASH, ... or "exit 5".
    pub result: String,
    pub backend: String,
    pub paging: String,
    pub seconds: f64,
    /// Did the row show what it must? Err says what it lacked.
    pub verdict: Result<(), String>,
    pub log: String,
}

/// A file name for a row's log.
pub fn log_name(e: &Entry) -> String {
    let safe: String = e
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
        .collect();
    format!("{}-{safe}.log", e.group)
}

pub fn write(dir: &Path, entries: &[Entry], total_seconds: f64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for old in std::fs::read_dir(dir)? {
        let path = old?.path();
        if path.extension().is_some_and(|x| x == "log" || x == "xml" || x == "html") {
            std::fs::remove_file(path)?;
        }
    }
    for e in entries {
        std::fs::write(dir.join(log_name(e)), &e.log)?;
    }
    std::fs::write(dir.join("junit.xml"), junit(entries, total_seconds))?;
    std::fs::write(dir.join("index.html"), html(entries, total_seconds))?;
    Ok(())
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // XML 1.0 allows no other control characters.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn failures(entries: &[&Entry]) -> usize {
    entries.iter().filter(|e| e.verdict.is_err()).count()
}

/// JUnit XML as Jenkins, GitLab and GitHub's test reporters read it: one
/// testsuite per group, one testcase per row, a failure with its reason
/// and the row's log.
pub fn junit(entries: &[Entry], total_seconds: f64) -> String {
    let all: Vec<&Entry> = entries.iter().collect();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"pvops\" tests=\"{}\" failures=\"{}\" time=\"{total_seconds:.3}\">",
        all.len(),
        failures(&all)
    );
    let mut groups: Vec<&str> = entries.iter().map(|e| e.group).collect();
    groups.dedup();
    for g in groups {
        let members: Vec<&Entry> = entries.iter().filter(|e| e.group == g).collect();
        let time: f64 = members.iter().map(|e| e.seconds).sum();
        let _ = writeln!(
            x,
            "  <testsuite name=\"{g}\" tests=\"{}\" failures=\"{}\" time=\"{time:.3}\">",
            members.len(),
            failures(&members)
        );
        for e in members {
            let _ = writeln!(
                x,
                "    <testcase classname=\"{g}.{}\" name=\"{}\" time=\"{:.3}\">",
                escape(&e.env),
                escape(&e.name),
                e.seconds
            );
            let _ = writeln!(
                x,
                "      <properties><property name=\"log\" value=\"{}\"/></properties>",
                log_name(e)
            );
            if let Err(why) = &e.verdict {
                let _ =
                    writeln!(x, "      <failure message=\"{}\">{}</failure>", escape(why), escape(&e.log));
            }
            x.push_str("    </testcase>\n");
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

pub fn html(entries: &[Entry], total_seconds: f64) -> String {
    let all: Vec<&Entry> = entries.iter().collect();
    let failed = failures(&all);
    let mut h = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>pvops: cargo xtask test</title>\n<style>\n\
         body { font-family: sans-serif; margin: 2em; }\n\
         table { border-collapse: collapse; }\n\
         td, th { padding: 2px 10px; text-align: left; border-bottom: 1px solid #ddd; }\n\
         td.num { text-align: right; font-variant-numeric: tabular-nums; }\n\
         tr.fail { background: #fde2e2; }\n\
         .pass { color: #176f2c; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }\n\
         .why { color: #555; font-size: smaller; }\n\
         </style></head><body>\n",
    );
    let _ = writeln!(
        h,
        "<h1>pvops: cargo xtask test</h1>\n<p>{} rows, {} passed, <span class=\"{}\">{failed} failed</span>, {:.0} s.</p>",
        all.len(),
        all.len() - failed,
        if failed == 0 { "pass" } else { "fail" },
        total_seconds
    );
    h.push_str(
        "<table>\n<tr><th>group</th><th>row</th><th>env</th><th>cpu</th><th>mem</th><th>result</th>\
         <th>backend</th><th>paging</th><th>time</th><th>verdict</th><th>log</th></tr>\n",
    );
    for e in entries {
        let (class, verdict) = match &e.verdict {
            Ok(()) => ("pass", "PASS".to_string()),
            Err(why) => ("fail", format!("FAIL <span class=\"why\">{}</span>", escape(why))),
        };
        let _ = writeln!(
            h,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"num\">{:.2} s</td><td><span class=\"{class}\">{verdict}</span></td><td><a href=\"{}\">log</a></td></tr>",
            if e.verdict.is_ok() { "" } else { "fail" },
            e.group,
            escape(&e.name),
            escape(&e.env),
            escape(&e.cpu),
            escape(&e.mem),
            escape(&e.result),
            escape(&e.backend),
            escape(&e.paging),
            e.seconds,
            log_name(e)
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, verdict: Result<(), String>) -> Entry {
        Entry {
            group: "matrix",
            name: name.into(),
            env: "xen".into(),
            cpu: "max".into(),
            mem: "128M".into(),
            result: "FAILURE".into(),
            backend: "xen".into(),
            paging: "PAE".into(),
            seconds: 1.5,
            verdict,
            log: "Test result: FAILURE: a <b> & \"c\"\u{1b}[0m\n".into(),
        }
    }

    #[test]
    fn junit_counts_failures_and_escapes_logs() {
        let x = junit(&[entry("ok-row", Ok(())), entry("bad-row", Err("expected <SUCCESS>".into()))], 3.0);
        assert!(x.contains("<testsuites name=\"pvops\" tests=\"2\" failures=\"1\" time=\"3.000\">"), "{x}");
        assert!(x.contains("<testcase classname=\"matrix.xen\" name=\"bad-row\" time=\"1.500\">"), "{x}");
        assert!(x.contains("<failure message=\"expected &lt;SUCCESS&gt;\">"), "{x}");
        assert!(x.contains("a &lt;b&gt; &amp; &quot;c&quot;\u{FFFD}[0m"), "{x}");
        // The passing row has no failure element.
        let ok = &x[x.find("name=\"ok-row\"").unwrap()..x.find("name=\"bad-row\"").unwrap()];
        assert!(!ok.contains("<failure"), "{ok}");
    }

    #[test]
    fn html_links_each_log() {
        let h = html(&[entry("a/b row", Err("x".into()))], 1.0);
        assert!(h.contains("<a href=\"matrix-a_b_row.log\">log</a>"), "{h}");
        assert!(h.contains("1 rows, 0 passed"), "{h}");
    }
}

//! Progress of the boot matrix: rows done of all, and the time left,
//! estimated from how long each boot took last time (target/matrix/
//! times.tsv, written at the end of every run), or, for a boot never timed,
//! from the boots of its kind done so far. On a terminal one line is
//! rewritten; in a log (CI), a line every tenth of the rows.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// One unit the workers run: a boot (which may carry several rows: the
/// dom0 boot of the domU rows) or a gdb session.
pub struct Job {
    /// Its name in times.tsv.
    pub key: String,
    pub rows: usize,
    /// Xen boots take seconds, the rest under one.
    pub slow: bool,
}

pub struct Progress {
    jobs: Vec<Job>,
    last_time: HashMap<String, f64>,
    workers: usize,
    start: Instant,
    started: Vec<Option<Instant>>,
    took: Vec<Option<f64>>,
    total_rows: usize,
    rows_done: usize,
    printed_tenths: usize,
    tty: bool,
}

impl Progress {
    pub fn job(key: &str, rows: usize, slow: bool) -> Job {
        Job { key: key.to_string(), rows, slow }
    }

    pub fn new(jobs: Vec<Job>, workers: usize, times: &Path) -> Progress {
        let last_time = std::fs::read_to_string(times)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect();
        let n = jobs.len();
        Progress {
            total_rows: jobs.iter().map(|j| j.rows).sum(),
            jobs,
            last_time,
            workers: workers.max(1),
            start: Instant::now(),
            started: vec![None; n],
            took: vec![None; n],
            rows_done: 0,
            printed_tenths: 0,
            tty: std::io::stdout().is_terminal(),
        }
    }

    pub fn started(&mut self, job: usize) {
        self.started[job] = Some(Instant::now());
    }

    pub fn finished(&mut self, job: usize) {
        let took = self.started[job].map_or(0.0, |s| s.elapsed().as_secs_f64());
        self.took[job] = Some(took);
        self.rows_done += self.jobs[job].rows;
        self.print();
    }

    /// Seconds job `i` is expected to take.
    fn expected(&self, i: usize) -> f64 {
        if let Some(&t) = self.last_time.get(&self.jobs[i].key) {
            return t;
        }
        // Per row: the dom0 boot that carries the domU rows is one long job.
        let (time, rows) = (0..self.jobs.len())
            .filter(|&j| self.jobs[j].slow == self.jobs[i].slow)
            .filter_map(|j| Some((self.took[j]?, self.jobs[j].rows)))
            .fold((0.0, 0), |(t, n), (took, rows)| (t + took, n + rows));
        let per_row = match (rows, self.jobs[i].slow) {
            (0, true) => 3.0,
            (0, false) => 0.5,
            _ => time / rows as f64,
        };
        per_row * self.jobs[i].rows as f64
    }

    /// The work left, spread over the workers.
    pub fn left(&self) -> Duration {
        let work: f64 = (0..self.jobs.len())
            .filter(|&i| self.took[i].is_none())
            .map(|i| {
                let ran = self.started[i].map_or(0.0, |s| s.elapsed().as_secs_f64());
                (self.expected(i) - ran).max(0.0)
            })
            .sum();
        Duration::from_secs_f64(work / self.workers as f64)
    }

    fn print(&mut self) {
        let line = format!(
            "xtask: {}/{} rows done, {:.0} s so far, about {} left",
            self.rows_done,
            self.total_rows,
            self.start.elapsed().as_secs_f64(),
            human(self.left())
        );
        if self.tty {
            print!("\r{line}\x1b[K");
            if self.rows_done == self.total_rows {
                println!();
            }
            let _ = std::io::stdout().flush();
        } else {
            let tenths = self.rows_done * 10 / self.total_rows.max(1);
            if tenths > self.printed_tenths {
                self.printed_tenths = tenths;
                println!("{line}");
            }
        }
    }

    /// Saves how long each job took, for the next run's estimates (merged
    /// with the times of jobs this run did not run).
    pub fn save(&self, times: &Path) {
        let mut all = self.last_time.clone();
        for (j, t) in self.jobs.iter().zip(&self.took) {
            if let Some(t) = t {
                all.insert(j.key.clone(), *t);
            }
        }
        let mut lines: Vec<String> = all.iter().map(|(k, v)| format!("{k}\t{v:.2}")).collect();
        lines.sort();
        if let Some(dir) = times.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(times, lines.join("\n") + "\n");
    }
}

/// "40 s", "2 minutes".
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s < 90 {
        format!("{s} s")
    } else {
        format!("{} minutes", (s + 30) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(key: &str, slow: bool) -> Job {
        Job { key: key.into(), rows: 1, slow }
    }

    #[test]
    fn the_estimate_uses_last_runs_times_then_this_runs_kind() {
        let dir = std::env::temp_dir().join(format!("pvops-progress-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let times = dir.join("times.tsv");
        std::fs::write(&times, "xen-a\t10.0\nnative-a\t1.0\n").unwrap();
        let jobs = vec![
            job("xen-a", true),
            job("native-a", false),
            job("xen-b", true),
            job("native-b", false),
            Job { key: "domu-boot".into(), rows: 4, slow: true },
        ];
        let mut p = Progress::new(jobs, 2, &times);
        // Known: 10 + 1; never timed: 3 a row (slow) and 0.5 (fast); two
        // workers.
        assert_eq!(p.left().as_secs_f64().round(), ((10.0 + 1.0 + 3.0 + 0.5 + 4.0 * 3.0) / 2.0f64).round());
        p.started(1);
        p.took[1] = Some(2.0);
        p.rows_done = 1;
        // native-b now expects what native-a took in this run: 2 s.
        assert_eq!(p.expected(3), 2.0);
        // A job of several rows: their time per row, times its rows.
        p.took[0] = Some(8.0);
        p.took[2] = Some(4.0);
        assert_eq!(p.expected(4), 4.0 * (8.0 + 4.0) / 2.0);
        p.save(&times);
        let saved = std::fs::read_to_string(&times).unwrap();
        assert!(saved.contains("native-a\t2.00") && saved.contains("xen-a\t8.00"), "{saved}");
        assert!(!saved.contains("domu-boot"), "a job that did not run keeps no time: {saved}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn times_read_humanly() {
        assert_eq!(human(Duration::from_secs(40)), "40 s");
        assert_eq!(human(Duration::from_secs(150)), "3 minutes");
    }
}

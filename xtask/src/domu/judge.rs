//! The verdicts of a dom0 boot: dom0's own (did its init run every guest?),
//! and each guest's, from its slice of the serial log (dom0-init's
//! protocol is described at the top of xtask/xen/dom0-init).
//!
//! A guest's verdict is its own `Test result:` line, relayed by dom0 from
//! its PV console, cross-checked against how `xl` saw it end. The guest's
//! side of the contract: SUCCESS and SKIP end with
//! SCHEDOP_shutdown(poweroff), FAILURE and ERROR with
//! SCHEDOP_shutdown(crash). No result line is a crash (a timeout if the
//! guest was still running); a result line that xl's view contradicts is a
//! crash naming both.

use std::path::Path;
use std::time::Duration;

use paravirt::ExitStatus;

use super::Dom0;
use crate::boot::{Outcome, Run};

/// The verdict on dom0 itself: its init said it ran every guest and ended
/// QEMU with the SUCCESS status, or said why its toolstack did not come up
/// (ERROR); anything else (a dom0 panic, a Xen crash) is a crash.
pub fn dom0_outcome(log: &str, status: Option<i32>) -> Outcome {
    let exited = status.and_then(ExitStatus::from_qemu_status);
    for l in log.lines() {
        if l.starts_with("dom0: result: ran ") && exited == Some(ExitStatus::Success) {
            return Outcome::Done(ExitStatus::Success, String::new());
        }
        if let Some(why) = l.strip_prefix("dom0: result: setup failed: ") {
            if exited == Some(ExitStatus::Error) {
                return Outcome::Done(ExitStatus::Error, format!("dom0: {why}"));
            }
        }
    }
    let last = log.lines().rfind(|l| !l.trim().is_empty() && !l.starts_with("--- qemu")).unwrap_or("");
    Outcome::Crash(format!("dom0 did not finish (QEMU exit status {status:?}); its last line: {last:?}"))
}

/// How xl saw a guest end: dom0-init's `end=HOW key=value...` line.
#[derive(Clone, Debug, PartialEq)]
struct End {
    how: String,
    /// The line after `end=`, for messages.
    text: String,
    ran: Option<f64>,
}

impl End {
    fn parse(rest: &str) -> End {
        let how = rest.split_whitespace().next().unwrap_or("").to_string();
        let ran = rest
            .split_whitespace()
            .find_map(|f| f.strip_prefix("ran="))
            .and_then(|v| v.trim_end_matches('s').parse().ok());
        End { how, text: rest.to_string(), ran }
    }
}

/// The shutdown reason a guest promises for the result it reports.
fn promised(s: ExitStatus) -> &'static str {
    match s {
        ExitStatus::Success | ExitStatus::Skip => "poweroff",
        ExitStatus::Failure | ExitStatus::Error => "crash",
    }
}

/// A finished guest's verdict, from its result lines (the text after
/// `Test result: `) and xl's view.
fn verdict(results: &[&str], end: &End) -> Outcome {
    let line = match results {
        [] if end.how == "timeout" => return Outcome::Timeout,
        [] => return Outcome::Crash(format!("no result line from the guest; xl: end={}", end.text)),
        [one] => *one,
        _ => return Outcome::Crash(format!("{} result lines from the guest", results.len())),
    };
    let (word, why) = line.split_once(": ").unwrap_or((line, ""));
    let Some(said) = ExitStatus::from_word(word.trim()) else {
        return Outcome::Crash(format!("unknown result {:?}", word.trim()));
    };
    if end.how == promised(said) {
        Outcome::Done(said, why.to_string())
    } else {
        Outcome::Crash(format!(
            "the guest's result line says {} (which ends with SCHEDOP_shutdown({})) but xl saw end={}",
            said.word(),
            promised(said),
            end.text
        ))
    }
}

/// Each guest's run out of the whole boot's: its slice of the log (the
/// guest's own lines without dom0's `[NAME] ` prefix, so that they read like
/// any boot's), its verdict, its time from `xl create` to its end.
/// `whole_log` is where the boot's full serial log was saved.
pub fn guest_runs(dom0: &Dom0, boot: &Run, whole_log: &Path) -> Vec<Run> {
    let lines: Vec<&str> = boot.log.lines().collect();
    let n = dom0.guests.len();
    // dom0-init's last words name any segfault or OOM in dom0 (a rare flake
    // of a PV dom0 under TCG): every guest's log says so, after its header.
    let trouble: String =
        lines.iter().filter(|l| l.starts_with("dom0: kernel: ")).map(|l| format!("{l}\n")).collect();
    dom0.guests
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let header = format!(
                "xtask: guest {} of {n} of one dom0 boot (the project's Xen, a Linux dom0, xl); the guest's lines \
                 appear without dom0's \"[{}] \" prefix; the whole serial log: {}\n",
                i + 1,
                g.name,
                whole_log.display()
            ) + &trouble;
            let start = format!("dom0: guest {}: config ", g.name);
            let Some(first) = lines.iter().position(|l| l.starts_with(&start)) else {
                // Never reached: show how the boot ended.
                let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                let outcome = match &boot.outcome {
                    Outcome::Timeout => Outcome::Timeout,
                    o => Outcome::Crash(format!("dom0 never started this guest: {}", describe(o))),
                };
                return Run { outcome, log: format!("{header}(the boot's last lines)\n{tail}\n"), elapsed: Duration::ZERO };
            };
            let end_prefix = format!("dom0: guest {}: end=", g.name);
            let last = lines[first..].iter().position(|l| l.starts_with(&end_prefix)).map(|k| first + k);
            let slice = &lines[first..=last.unwrap_or(lines.len() - 1)];
            let own = format!("[{}] ", g.name);
            let mut log = header;
            let mut results = Vec::new();
            for l in slice {
                let text = l.strip_prefix(&own).unwrap_or(l);
                if l.starts_with(&own) {
                    if let Some(i) = text.find("Test result: ") {
                        results.push(&text[i + "Test result: ".len()..]);
                    }
                }
                log.push_str(text);
                log.push('\n');
            }
            let (outcome, ran) = match last {
                Some(k) => {
                    let end = End::parse(&lines[k][end_prefix.len()..]);
                    (verdict(&results, &end), end.ran)
                }
                None => (
                    match &boot.outcome {
                        Outcome::Timeout => Outcome::Timeout,
                        o => Outcome::Crash(format!("dom0 did not finish this guest: {}", describe(o))),
                    },
                    None,
                ),
            };
            let elapsed = Duration::from_secs_f64(ran.unwrap_or(0.0));
            Run { outcome, log, elapsed }
        })
        .collect()
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Done(s, why) if why.is_empty() => s.word().to_string(),
        Outcome::Done(s, why) => format!("{}: {why}", s.word()),
        Outcome::Crash(why) => why.clone(),
        Outcome::Timeout => "timeout".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Guest;
    use super::*;

    fn end(how: &str) -> End {
        End::parse(how)
    }

    #[test]
    fn the_contract() {
        let ok = Outcome::Done(ExitStatus::Success, String::new());
        assert_eq!(verdict(&["SUCCESS"], &end("poweroff code=0 ran=0.31s")), ok);
        assert_eq!(
            verdict(&["FAILURE: unexpected exception #PF"], &end("crash code=3 ran=0.2s")),
            Outcome::Done(ExitStatus::Failure, "unexpected exception #PF".into())
        );
        assert_eq!(
            verdict(&["SKIP: no backend"], &end("poweroff code=0")),
            Outcome::Done(ExitStatus::Skip, "no backend".into())
        );
        assert_eq!(
            verdict(&["ERROR: x"], &end("crash code=3")),
            Outcome::Done(ExitStatus::Error, "x".into())
        );
        // Contradictions name both sides.
        let Outcome::Crash(why) = verdict(&["SUCCESS"], &end("crash code=3 ran=0.2s")) else { panic!() };
        assert!(why.contains("SUCCESS") && why.contains("end=crash code=3"), "{why}");
        assert!(matches!(verdict(&["FAILURE: x"], &end("poweroff code=0")), Outcome::Crash(_)));
        assert!(matches!(verdict(&["SUCCESS"], &end("reboot code=1")), Outcome::Crash(_)));
        assert!(matches!(verdict(&["SUCCESS"], &end("timeout after=30s")), Outcome::Crash(_)));
        // No line, two lines, an unknown word.
        let Outcome::Crash(why) = verdict(&[], &end("poweroff code=0 ran=0.1s")) else { panic!() };
        assert!(why.contains("no result line") && why.contains("end=poweroff"), "{why}");
        assert_eq!(verdict(&[], &end("timeout after=30s")), Outcome::Timeout);
        assert!(matches!(verdict(&[], &end("create-failed xl_exit=3")), Outcome::Crash(_)));
        assert!(matches!(verdict(&["SUCCESS", "SUCCESS"], &end("poweroff code=0")), Outcome::Crash(_)));
        assert!(matches!(verdict(&["MAYBE"], &end("poweroff code=0")), Outcome::Crash(_)));
    }

    #[test]
    fn dom0_itself() {
        assert!(dom0_outcome("dom0: result: ran 3 guests\n", Some(0x21)).is_success());
        assert_eq!(
            dom0_outcome("dom0: result: setup failed: xenstored\n", Some(0x25)),
            Outcome::Done(ExitStatus::Error, "dom0: xenstored".into())
        );
        // A Xen panic reboots: QEMU's -no-reboot exits 0.
        assert!(matches!(dom0_outcome("dom0: result: ran 3 guests\n", Some(0)), Outcome::Crash(_)));
        assert!(matches!(dom0_outcome("(XEN) Panic\n", Some(0)), Outcome::Crash(_)));
    }

    fn guest(name: &str) -> Guest {
        Guest {
            name: name.into(),
            pvh: false,
            kernel: "k".into(),
            mem_mib: 32,
            cmdline: String::new(),
            timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn slices() {
        let dom0 = Dom0 {
            vmlinux: "v".into(),
            initrd: "i".into(),
            guests: vec![guest("a"), guest("b"), guest("c")],
        };
        let log = "\
(XEN) Xen version 4.17.5
dom0: [4.80] toolstack ready
dom0: guest a: config /guests/01-a.cfg, timeout 30 s
dom0:   | name = \"a\"
[xl a] Waiting for domain a (domid 1) to die [pid 99]
dom0: guest a: domid 1
[a] backend: xen (highest priority detected)
[a] selfcheck: ok
[a] Test result: SUCCESS
[xl a] Domain 1 has shut down, reason code 0 0x0
dom0: guest a: end=poweroff code=0 ran=1.00s
dom0: guest b: config /guests/02-b.cfg, timeout 30 s
[xl b] Waiting for domain b (domid 2) to die [pid 98]
dom0: guest b: domid 2
[b] Test result: FAILURE: unexpected exception #PF
[xl b] Domain 2 has shut down, reason code 0 0x0
dom0: guest b: end=poweroff code=0 ran=0.20s
dom0: guest c: config /guests/03-c.cfg, timeout 30 s
";
        let boot = Run {
            outcome: Outcome::Crash("dom0 did not finish".into()),
            log: format!("{log}dom0: kernel: [9.1] exe[303]: segfault at 0\n"),
            elapsed: Duration::from_secs(9),
        };
        let runs = guest_runs(&dom0, &boot, Path::new("boot.log"));
        assert!(runs[0].outcome.is_success(), "{:?}", runs[0].outcome);
        assert!(runs[0].log.lines().nth(1).unwrap().starts_with("dom0: kernel: [9.1] exe[303]: segfault"));
        assert!(runs[0].log.contains("\nbackend: xen (highest"), "the relay prefix is gone");
        assert!(runs[0].log.contains("[xl a] Domain 1 has shut down, reason code 0"));
        assert!(!runs[0].log.contains("guest b"));
        assert!((runs[0].elapsed.as_secs_f64() - 1.0).abs() < 1e-9);
        let Outcome::Crash(why) = &runs[1].outcome else { panic!("{:?}", runs[1].outcome) };
        assert!(why.contains("FAILURE") && why.contains("end=poweroff"), "{why}");
        let Outcome::Crash(why) = &runs[2].outcome else { panic!() };
        assert!(why.contains("dom0 did not finish this guest"), "{why}");
        // A result line in dom0's own lines (or another guest's) is not this guest's.
        let boot = Run {
            outcome: Outcome::Done(ExitStatus::Success, String::new()),
            log: "dom0: guest a: config x\n[b] Test result: SUCCESS\ndom0: guest a: end=poweroff code=0 ran=0.1s\n".into(),
            elapsed: Duration::ZERO,
        };
        let runs = guest_runs(&dom0, &boot, Path::new("boot.log"));
        assert!(matches!(&runs[0].outcome, Outcome::Crash(w) if w.contains("no result line")));
        assert!(matches!(&runs[1].outcome, Outcome::Crash(w) if w.contains("never started")));
    }
}

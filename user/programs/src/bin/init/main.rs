//! init, pid 1: runs the workload and judges it.
//!
//! Its argument (`user_abi::init::Arg`) is `n_children | max_mib << 8 |
//! flags << 16`. It
//!
//! 1. spawns `spinner` (unless NO_SPINNER), which never makes a system
//!    call: that everything else still finishes proves the timer takes
//!    the CPU from it;
//! 2. spawns `bad-kernel-read` and `bad-ud2` (unless NO_FAULTS), which the
//!    kernel must kill: `faulted(14)` and `faulted(6)`;
//! 3. forks `n_children` children; child i runs the workload (`child.rs`)
//!    and exits with a code saying what it saw (`child_code`);
//! 4. waits for every process but the spinner and checks each status: a
//!    child's code against the checksum hash init computes from the
//!    child's pid and size, a bad program's fault;
//! 5. kills the spinner, waits for it (`killed`), and expects no child to
//!    be left (ECHILD);
//! 6. prints one line, `init: N children ok, ...`, and exits 0 if
//!    everything held, else with the class of the first failure
//!    (`failure`). Every failure prints a line of its own before that:
//!    which process, what was expected, what came.
#![no_std]
#![no_main]

mod child;

use core::fmt;

use user_lib::abi::init::{Arg, FORK_MAY_FAIL, NO_FAULTS, NO_SPINNER, VERBOSE};
use user_lib::{exit, fork, getpid, kill, println, spawn, wait, Errno, Fork, Pid, Status};
use user_programs::child_code::{self, Failures, Report};
use user_programs::failure::Failure;
use user_programs::pattern::{expected_checksum, hash7, region_mib, PAGES_PER_MIB};

user_lib::entry!(main);

/// The first failure, and how many there were.
#[derive(Default)]
struct Verdict {
    first: Option<Failure>,
    count: u32,
}

impl Verdict {
    fn fail(&mut self, class: Failure, what: fmt::Arguments) {
        println!("init: failure ({}): {}", class.name(), what);
        self.first.get_or_insert(class);
        self.count += 1;
    }

    fn code(&self) -> u32 {
        self.first.map_or(0, Failure::code)
    }
}

/// A program init spawns that the kernel must kill with a fault.
struct Faulting {
    name: &'static str,
    vector: u32,
    pid: Option<Pid>,
}

/// How a child's end counts.
enum Outcome {
    Passed,
    ForkRefused,
    Failed,
}

fn main(raw: u32) -> u32 {
    let arg = Arg::decode(raw);
    let mut verdict = Verdict::default();
    if arg.max_mib == 0 {
        verdict.fail(Failure::Arg, format_args!("argument {raw:#x} asks for regions of at most 0 MiB"));
        return verdict.code();
    }
    let n = arg.n_children as usize;
    println!("init: pid {}, {} children of 1 to {} MiB, flags {:#x}", getpid(), n, arg.max_mib, arg.flags);

    let mut spinner = None;
    if !arg.has(NO_SPINNER) {
        spinner = spawn_or_fail(&mut verdict, "spinner");
    }
    let mut faulting = [
        Faulting { name: "bad-kernel-read", vector: 14, pid: None },
        Faulting { name: "bad-ud2", vector: 6, pid: None },
    ];
    if !arg.has(NO_FAULTS) {
        for f in &mut faulting {
            f.pid = spawn_or_fail(&mut verdict, f.name);
        }
    }

    let mut children: [Option<Pid>; 256] = [None; 256];
    let mut tally = Tally::default();
    for (i, slot) in children.iter_mut().enumerate().take(n) {
        match fork() {
            Ok(Fork::Child) => exit(child::run(i as u32, arg.max_mib as u32)),
            Ok(Fork::Parent(pid)) => *slot = Some(pid),
            Err(e) if arg.has(FORK_MAY_FAIL) => {
                println!("init: fork of child {i}: {e} (allowed)");
                tally.refused += 1;
            }
            Err(e) => verdict.fail(Failure::Fork, format_args!("fork of child {i}: {e}")),
        }
    }

    let mut waiting = children.iter().flatten().count() + faulting.iter().filter(|f| f.pid.is_some()).count();
    while waiting > 0 {
        let (pid, status) = match wait() {
            Ok(ended) => ended,
            Err(e) => {
                verdict.fail(Failure::Wait, format_args!("wait: {e}, with {waiting} processes yet to end"));
                break;
            }
        };
        if let Some(i) = children.iter().position(|c| *c == Some(pid)) {
            children[i] = None;
            waiting -= 1;
            match judge_child(&mut verdict, arg, i as u32, pid, status) {
                Outcome::Passed => tally.passed += 1,
                Outcome::ForkRefused => tally.refused += 1,
                Outcome::Failed => tally.failed += 1,
            }
        } else if let Some(f) = faulting.iter_mut().find(|f| f.pid == Some(pid)) {
            f.pid = None;
            waiting -= 1;
            if status == Status::faulted(f.vector) {
                tally.faulted += 1;
                if arg.has(VERBOSE) {
                    println!("init: {} (pid {pid}) {status}, as it must", f.name);
                }
            } else {
                let expected = Status::faulted(f.vector);
                verdict.fail(
                    Failure::Fault,
                    format_args!("{} (pid {pid}): expected {expected}, got {status}", f.name),
                );
            }
        } else if spinner == Some(pid) {
            spinner = None;
            verdict.fail(Failure::Spinner, format_args!("spinner (pid {pid}) ended by itself: {status}"));
        } else {
            verdict.fail(
                Failure::Wait,
                format_args!("wait returned pid {pid} ({status}), which init did not make"),
            );
        }
    }

    let spinner_end = match spinner {
        None if arg.has(NO_SPINNER) => "not run",
        None => "gone",
        Some(pid) => stop_spinner(&mut verdict, pid),
    };
    match wait() {
        Err(Errno::ECHILD) => {}
        Ok((pid, status)) => verdict
            .fail(Failure::Wait, format_args!("pid {pid} ended ({status}) after all were accounted for")),
        Err(e) => verdict.fail(Failure::Wait, format_args!("the last wait: expected ECHILD, got {e}")),
    }

    tally.expected_faults = if arg.has(NO_FAULTS) { 0 } else { faulting.len() as u32 };
    match verdict.first {
        None => println!("init: {tally}, spinner {spinner_end}: ok"),
        Some(first) => println!(
            "init: {tally}, spinner {spinner_end}: FAILED ({} failures, the first: {})",
            verdict.count,
            first.name()
        ),
    }
    verdict.code()
}

/// What the summary line counts.
#[derive(Default)]
struct Tally {
    passed: u32,
    failed: u32,
    refused: u32,
    faulted: u32,
    expected_faults: u32,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{} children ok, {} failed, {} forks refused, {} of {} faults as expected",
            self.passed, self.failed, self.refused, self.faulted, self.expected_faults
        )
    }
}

fn spawn_or_fail(verdict: &mut Verdict, name: &str) -> Option<Pid> {
    spawn(name, 0).map_err(|e| verdict.fail(Failure::Spawn, format_args!("spawn {name}: {e}"))).ok()
}

/// `child 3 (pid 5, 16 MiB)`, as the child itself says it.
struct ChildName {
    i: u32,
    pid: Pid,
    mib: u32,
}

impl fmt::Display for ChildName {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "child {} (pid {}, {} MiB)", self.i, self.pid, self.mib)
    }
}

/// Why a child's status is wrong.
enum Wrong {
    Checksum,
    Failed(Failures),
    Panicked,
    Invalid,
    NotExited,
}

impl fmt::Display for Wrong {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Wrong::Checksum => f.write_str("it passed its own checks, but not with its own checksum"),
            Wrong::Failed(failures) => write!(f, "failed {failures}"),
            Wrong::Panicked => f.write_str("panicked"),
            Wrong::Invalid => f.write_str("no child exits with that"),
            Wrong::NotExited => f.write_str("it did not exit"),
        }
    }
}

/// Checks how child `i` ended against what its workload must report.
fn judge_child(verdict: &mut Verdict, arg: Arg, i: u32, pid: Pid, status: Status) -> Outcome {
    let mib = region_mib(i, arg.max_mib as u32);
    let hash = hash7(expected_checksum(pid.0, mib * PAGES_PER_MIB));
    let expected = Status::exited(hash as u32);
    let who = ChildName { i, pid, mib };
    let (class, wrong) = match status.exit_code().map(child_code::decode) {
        Some(Report::Passed { hash: h }) if h == hash => {
            if arg.has(VERBOSE) {
                println!("init: {who} {status}: ok");
            }
            return Outcome::Passed;
        }
        Some(Report::Failed(f)) if f == Failures::FORK && arg.has(FORK_MAY_FAIL) => {
            println!("init: {who}: the fork of its grandchild was refused (allowed)");
            return Outcome::ForkRefused;
        }
        Some(Report::Passed { .. }) => (Failure::Checksum, Wrong::Checksum),
        Some(Report::Failed(f)) => (Failure::Child, Wrong::Failed(f)),
        Some(Report::Panicked) => (Failure::Child, Wrong::Panicked),
        Some(Report::Invalid(_)) => (Failure::Child, Wrong::Invalid),
        None => (Failure::Child, Wrong::NotExited),
    };
    verdict.fail(class, format_args!("{who}: expected {expected}, got {status}: {wrong}"));
    Outcome::Failed
}

/// Kills the spinner and waits for it; how it ended, for the summary.
fn stop_spinner(verdict: &mut Verdict, pid: Pid) -> &'static str {
    if let Err(e) = kill(pid) {
        verdict.fail(Failure::Spinner, format_args!("kill spinner (pid {pid}): {e}"));
        return "not killed";
    }
    match wait() {
        Ok((p, Status::KILLED)) if p == pid => "killed",
        Ok((p, status)) => {
            verdict.fail(
                Failure::Spinner,
                format_args!(
                    "after kill of spinner (pid {pid}): expected pid {pid} killed, got pid {p} {status}"
                ),
            );
            "not killed"
        }
        Err(e) => {
            verdict.fail(Failure::Spinner, format_args!("wait for the killed spinner (pid {pid}): {e}"));
            "not killed"
        }
    }
}

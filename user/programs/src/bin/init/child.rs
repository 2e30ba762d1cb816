//! The workload of child i of init, run in init's image after the fork.
//! Every step is a check, and the child's exit code (`child_code`, where
//! the byte is laid out) tells init which failed, or, when none did, the
//! hash of the checksum it read, which init recomputes from the child's
//! pid and size. Each failure also prints a line naming the child.
//!
//! 1. Demand paging: mmap `region_mib(i, max_mib)` MiB and fill it with
//!    the child's pattern (`pattern`). The first touch of each page is a
//!    fault the kernel resolves with a new frame, which must be zero; the
//!    checksum read back must be the pattern's (FILL: a page lost, left
//!    stale, swapped or mapped twice changes it). Its hash goes to init.
//! 2. Copy-on-write: fork a grandchild (FORK). It writes its own pattern
//!    over every 8th page (breaking the sharing), reads its writes back
//!    and the child's pattern in the page after each, checks its parent,
//!    and exits with what it found (GRANDCHILD if not 0).
//! 3. The child's region must not have changed (COW): the grandchild
//!    wrote to copies of its own.
//! 4. Time: sleep SLEEP_MS, which TIME must see pass, then spin SPIN_MS
//!    by TIME, preemptible like any process (TIME).
//! 5. munmap the second half of the region; touch the first half again,
//!    which must still hold the pattern (MUNMAP).

use core::fmt;

use user_lib::{fork, getpid, getppid, mmap, println, sleep, time, wait, Fork, Region, Status};
use user_programs::child_code::{self, Failures, GrandchildFailures};
use user_programs::pattern::{checksum, expected_checksum, page_seed, page_word, region_mib, WORDS_PER_PAGE};

const SLEEP_MS: u32 = 5;
const SPIN_MS: u32 = 10;
/// TIME calls after which a spin gives up on the clock advancing.
const SPIN_LIMIT: u32 = 1_000_000;
/// The grandchild writes every COW_STRIDE-th page.
const COW_STRIDE: usize = 8;

/// `child 3 (pid 5, 16 MiB)`: how every line about a child names it.
struct Child {
    i: u32,
    pid: u32,
    mib: u32,
}

impl fmt::Display for Child {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "child {} (pid {}, {} MiB)", self.i, self.pid, self.mib)
    }
}

/// The workload; its result is the child's exit code.
pub fn run(i: u32, max_mib: u32) -> u32 {
    let me = Child { i, pid: getpid().0, mib: region_mib(i, max_mib) };
    let mut region = match mmap((me.mib as usize) << 20) {
        Ok(r) => r,
        Err(e) => {
            println!("{me}: mmap: {e}");
            return child_code::encode(Failures::MMAP, 0);
        }
    };
    let mut failures = Failures::default();
    let dirty = fill(region.words(), me.pid);
    if dirty != 0 {
        println!("{me}: {dirty} pages were not zero at their first touch");
        failures |= Failures::FILL;
    }
    let sum = checksum(region.words());
    let want = expected_checksum(me.pid, region.pages() as u32);
    if sum != want {
        println!("{me}: its region sums to {sum:#010x}, its pattern to {want:#010x}");
        failures |= Failures::FILL;
    }
    failures |= share_with_grandchild(&me, &mut region);
    let again = checksum(region.words());
    if again != sum {
        println!("{me}: checksum {sum:#010x} became {again:#010x} while its grandchild wrote its copies");
        failures |= Failures::COW;
    }
    failures |= sleep_and_spin(&me);
    failures |= unmap_half(&me, region);
    child_code::encode(failures, sum)
}

/// Writes `pid`'s pattern over `words`; how many pages were not all zero
/// before.
fn fill(words: &mut [u32], pid: u32) -> usize {
    let mut dirty = 0;
    for (p, page) in words.chunks_mut(WORDS_PER_PAGE).enumerate() {
        let seed = page_seed(pid, p as u32);
        let mut zero = true;
        for (j, w) in page.iter_mut().enumerate() {
            zero &= *w == 0;
            *w = page_word(seed, j);
        }
        dirty += usize::from(!zero);
    }
    dirty
}

/// Whether `page` (page `p` of a region) holds `pid`'s pattern.
fn holds(page: &[u32], pid: u32, p: usize) -> bool {
    let seed = page_seed(pid, p as u32);
    page.iter().enumerate().all(|(j, &w)| w == page_word(seed, j))
}

fn share_with_grandchild(me: &Child, region: &mut Region) -> Failures {
    match fork() {
        Err(e) => {
            println!("{me}: fork of its grandchild: {e}");
            Failures::FORK
        }
        Ok(Fork::Child) => user_lib::exit(grandchild(region, me.pid)),
        Ok(Fork::Parent(g)) => match wait() {
            Ok((pid, status)) if pid == g && status == Status::exited(0) => Failures::default(),
            Ok((pid, status)) => {
                println!("{me}: grandchild pid {g}: expected exited(0x00), got pid {pid} {status}");
                Failures::GRANDCHILD
            }
            Err(e) => {
                println!("{me}: wait for grandchild pid {g}: {e}");
                Failures::GRANDCHILD
            }
        },
    }
}

/// The grandchild: writes its pattern over every COW_STRIDE-th page of
/// its copy of `region`, then reads those back, and the page after each,
/// which must still be `parent`'s. Its exit code.
fn grandchild(region: &mut Region, parent: u32) -> u32 {
    let me = getpid().0;
    let mut failures = GrandchildFailures::default();
    let ppid = getppid().0;
    if ppid != parent {
        println!("grandchild pid {me}: getppid is {ppid}, not {parent}");
        failures |= GrandchildFailures::PARENT;
    }
    let words = region.words();
    for (p, page) in words.chunks_mut(WORDS_PER_PAGE).enumerate().step_by(COW_STRIDE) {
        let seed = page_seed(me, p as u32);
        for (j, w) in page.iter_mut().enumerate() {
            *w = page_word(seed, j);
        }
    }
    let (mut lost, mut wrong) = (0, 0);
    for (p, page) in words.chunks(WORDS_PER_PAGE).enumerate() {
        match p % COW_STRIDE {
            0 if !holds(page, me, p) => lost += 1,
            1 if !holds(page, parent, p) => wrong += 1,
            _ => {}
        }
    }
    if lost != 0 {
        println!("grandchild pid {me}: {lost} pages it wrote did not read back");
        failures |= GrandchildFailures::OWN_WRITES;
    }
    if wrong != 0 {
        println!("grandchild pid {me}: {wrong} pages shared with pid {parent} lost its pattern");
        failures |= GrandchildFailures::SHARED;
    }
    failures.0 as u32
}

fn sleep_and_spin(me: &Child) -> Failures {
    let before = time();
    if let Err(e) = sleep(SLEEP_MS) {
        println!("{me}: sleep({SLEEP_MS}): {e}");
        return Failures::TIME;
    }
    let after = time();
    if after.wrapping_sub(before) < SLEEP_MS {
        println!("{me}: slept {SLEEP_MS} ms but TIME went from {before} to {after}");
        return Failures::TIME;
    }
    let mut calls = 0;
    while time().wrapping_sub(after) < SPIN_MS {
        calls += 1;
        if calls == SPIN_LIMIT {
            println!("{me}: TIME stayed within {SPIN_MS} ms of {after} over {calls} calls");
            return Failures::TIME;
        }
    }
    Failures::default()
}

/// Gives back the second half of `region`, then touches every page of the
/// first again and reads it back.
fn unmap_half(me: &Child, region: Region) -> Failures {
    let half = region.pages() / 2;
    let (mut kept, gone) = region.split_at_page(half);
    let mut failures = Failures::default();
    let (at, pages) = (gone.start(), gone.pages());
    if let Err(e) = gone.unmap() {
        println!("{me}: munmap of {pages} pages at {at:#x}: {e}");
        failures |= Failures::MUNMAP;
    }
    let pages = kept.pages() as u32;
    let words = kept.words();
    for (p, page) in words.chunks_mut(WORDS_PER_PAGE).enumerate() {
        page[0] = page_word(page_seed(me.pid, p as u32), 0);
    }
    let (got, want) = (checksum(words), expected_checksum(me.pid, pages));
    if got != want {
        println!("{me}: after munmap the half kept sums to {got:#010x}, not {want:#010x}");
        failures |= Failures::MUNMAP;
    }
    failures
}

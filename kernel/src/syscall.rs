//! System calls: `int 0x80` from user mode, the numbers and registers of
//! `user_abi`.
//!
//! A call runs on the process's kernel stack with interrupts disabled (the
//! gate is an interrupt gate: this kernel is not preemptible). One that
//! blocks (wait, sleep, yield) calls `schedule` and continues when the
//! process is chosen again. User memory is checked against the process's
//! regions under the process table's lock, then touched without it: a
//! first touch faults, and the fault handler takes the lock.

use arch_i386::trap::EntryFrame;
use user_abi::{errno, nr, status};

use crate::sched::{self, with};
use crate::task::State;
use crate::{console, time};

pub fn dispatch(f: &mut EntryFrame) {
    if !sched::started() {
        f.eax = (-errno::ENOSYS) as u32;
        return;
    }
    with(|p| p.stats.syscalls += 1);
    let (a1, a2, a3) = (f.ebx, f.ecx, f.edx);
    let r: Result<u32, i32> = match f.eax {
        nr::EXIT => sched::exit_current(status::exited(a1)),
        nr::WRITE => write(a1, a2),
        nr::GETPID => Ok(with(|p| p.cur().pid)),
        nr::GETPPID => Ok(with(|p| p.cur().ppid)),
        nr::FORK => {
            let frame = *f;
            with(|p| p.fork(&frame))
        }
        nr::WAIT => wait(a1),
        nr::YIELD => {
            sched::schedule();
            Ok(0)
        }
        nr::SLEEP => {
            let until = time::now() + a1 as u64 * 1_000_000;
            with(|p| p.cur().state = State::Sleeping(until));
            sched::schedule();
            Ok(0)
        }
        nr::MMAP => with(|p| crate::vm::mmap(p, a1)),
        nr::MUNMAP => with(|p| crate::vm::munmap(p, a1, a2)).map(|_| 0),
        nr::SPAWN => spawn(a1, a2, a3),
        nr::TIME => Ok(sched::now_ms() as u32),
        nr::KILL => with(|p| p.kill(a1)).map(|_| 0),
        _ => Err(-errno::ENOSYS),
    };
    f.eax = match r {
        Ok(v) => v,
        Err(e) => e as u32,
    };
}

/// Checks `[addr, addr + len)` against the current process's regions.
fn check_user(addr: u32, len: u32, write: bool) -> Result<(), i32> {
    if with(|p| p.cur().user_range_ok(addr, len, write)) {
        Ok(())
    } else {
        Err(-errno::EFAULT)
    }
}

/// Reads user bytes (checked first) into `buf`.
fn copy_from_user(addr: u32, buf: &mut [u8]) -> Result<(), i32> {
    check_user(addr, buf.len() as u32, false)?;
    // SAFETY: the range lies inside the current process's regions, in its
    // live address space; a page not yet there faults in (the kernel's
    // fault handler resolves it: the range is in a region); `buf` is
    // kernel memory, which user addresses cannot overlap.
    unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, buf.as_mut_ptr(), buf.len()) };
    Ok(())
}

fn put_user(addr: u32, v: u32) -> Result<(), i32> {
    check_user(addr, 4, true)?;
    // SAFETY: as in copy_from_user; a write to a shared copy-on-write page
    // faults (CR0.WP) and is broken like a user write.
    unsafe { (addr as *mut u32).write_unaligned(v) };
    Ok(())
}

fn write(addr: u32, len: u32) -> Result<u32, i32> {
    let mut buf = [0u8; 256];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len() as u32);
        copy_from_user(addr + done, &mut buf[..n as usize])?;
        console::write(&buf[..n as usize]);
        done += n;
    }
    Ok(len)
}

fn wait(status_ptr: u32) -> Result<u32, i32> {
    if status_ptr != 0 {
        check_user(status_ptr, 4, true)?;
    }
    // init's first wait: its children are all forked; check every
    // process's pagetable while the most are alive.
    with(|p| {
        if p.cur().pid == 1 && !p.checked {
            p.checked = true;
            crate::proccheck::processes(p);
        }
    });
    loop {
        let got = with(|p| {
            let me = p.cur().pid;
            if let Some(r) = p.reap(me) {
                return Ok(Some(r));
            }
            if !p.has_children(me) {
                return Err(-errno::ECHILD);
            }
            p.cur().state = State::Waiting;
            Ok(None)
        })?;
        match got {
            Some((pid, st)) => {
                if status_ptr != 0 {
                    put_user(status_ptr, st)?;
                }
                return Ok(pid);
            }
            None => sched::schedule(),
        }
    }
}

fn spawn(name_ptr: u32, name_len: u32, arg: u32) -> Result<u32, i32> {
    let mut name = [0u8; 32];
    let n = name_len as usize;
    if n > name.len() {
        return Err(-errno::EINVAL);
    }
    copy_from_user(name_ptr, &mut name[..n])?;
    let name = core::str::from_utf8(&name[..n]).map_err(|_| -errno::EINVAL)?;
    with(|p| {
        let me = p.cur().pid;
        p.spawn(name, arg, me)
    })
}

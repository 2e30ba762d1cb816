//! The process benchmark (lmbench's classic four, as `cargo xtask bench`
//! reads them): a null system call, a page fault, a context switch, and
//! fork+exit of a process with 1 MiB of memory. Each is timed with the TSC
//! (under `-icount` an instruction count, the hypervisor's instructions
//! included) and paired with the hypercalls the kernel's backend made
//! meanwhile; one `perf:` line per figure, the kernel's format.
#![no_std]
#![no_main]

use user_lib::{fork, getpid, hypercalls, mmap, println, rdtsc, wait, yield_now, Fork};

user_lib::entry!(main);

const SYSCALLS: u32 = 1000;
const FAULT_PAGES: usize = 256;
const SWITCHES: u32 = 500;
const FORKS: u32 = 10;

/// Runs `f`, prints instructions and hypercalls per `n`, both times 1000.
fn measure(name: &str, n: u32, f: impl FnOnce()) {
    let (t0, h0) = (rdtsc(), hypercalls());
    f();
    let (t1, h1) = (rdtsc(), hypercalls());
    println!("perf: proc.{}.insns_x1000 {}", name, (t1 - t0) * 1000 / n as u64);
    println!("perf: proc.{}.hypercalls_x1000 {}", name, (h1 - h0) as u64 * 1000 / n as u64);
}

fn main(_arg: u32) -> u32 {
    measure("syscall", SYSCALLS, || {
        for _ in 0..SYSCALLS {
            core::hint::black_box(getpid());
        }
    });
    let Ok(mut region) = mmap(FAULT_PAGES * 4096) else { return 1 };
    let words = region.words();
    measure("fault", FAULT_PAGES as u32, || {
        for page in 0..FAULT_PAGES {
            words[page * 1024] = page as u32;
        }
    });
    // Two processes taking turns: each yield is a switch to the other.
    measure("switch", 2 * SWITCHES, || match fork() {
        Ok(Fork::Child) => {
            for _ in 0..SWITCHES {
                yield_now();
            }
            user_lib::exit(0);
        }
        Ok(Fork::Parent(_)) => {
            for _ in 0..SWITCHES {
                yield_now();
            }
            let _ = wait();
        }
        Err(_) => user_lib::exit(2),
    });
    // fork+exit with 1 MiB of this process's memory touched: the fork
    // shares it copy-on-write, the child exits at once.
    let Ok(mut mib) = mmap(1 << 20) else { return 3 };
    for w in mib.words().iter_mut().step_by(1024) {
        *w = 1;
    }
    measure("fork_exit_1mib", FORKS, || {
        for _ in 0..FORKS {
            match fork() {
                Ok(Fork::Child) => user_lib::exit(0),
                Ok(Fork::Parent(_)) => {
                    let _ = wait();
                }
                Err(_) => user_lib::exit(4),
            }
        }
    });
    0
}

//! Rows of the boot matrix, XTF style: one environment each, one result
//! line each.

/// Where and how a kernel image is booted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Env {
    /// QEMU TCG, multiboot entry (`-kernel`).
    Qemu,
    /// QEMU TCG, PVH entry (XEN_ELFNOTE_PHYS32_ENTRY). QEMU's `-kernel`
    /// prefers multiboot whenever the multiboot magic is in the first 8 KiB
    /// and has no switch to choose, so this boots a copy of the image with
    /// that one magic word zeroed.
    QemuPvh,
    /// QEMU TCG through the project's test boot loader, which hands the
    /// kernel a deliberately malformed multiboot info (scenario name).
    BadBootInfo(&'static str),
    /// The real Xen hypervisor (the project's PV32 build of Debian's Xen
    /// 4.17) in QEMU TCG, the kernel as a 32-bit PV dom0; `mem` is
    /// dom0_mem.
    Xen,
    /// The same Xen, the kernel as a 32-bit PVH dom0 (`dom0=pvh`): entered
    /// at XEN_ELFNOTE_PHYS32_ENTRY in ring 0 with nested paging.
    XenPvh,
    /// The project's lguest host (tests/lguest-host) in QEMU TCG, the kernel
    /// as its guest in ring 1; `mem` is the guest's memory.
    Lguest,
    /// The same host, its Launcher writing a boot_params that lies the way
    /// `lie=NAME` (on the host's command line) asks.
    LguestLie(&'static str),
    /// The same Xen with a Linux dom0 (Debian's kernel and Xen's toolstack,
    /// provisioned by xtask), whose `xl create` builds the kernel as an
    /// unprivileged 32-bit PV guest (`type = "pv"`); `mem` is the guest's
    /// memory, `append` its config's `cmdline`. All such rows of a run are
    /// guests of one dom0 boot.
    XenDomu,
    /// The same, the kernel as a PVH guest (`type = "pvh"`).
    XenPvhDomu,
}

impl Env {
    /// Does this environment boot the project's Xen?
    pub fn uses_xen(&self) -> bool {
        matches!(self, Env::Xen | Env::XenPvh | Env::XenDomu | Env::XenPvhDomu)
    }

    /// Is the kernel a guest of a dom0's toolstack (`xl create`)?
    pub fn is_domu(&self) -> bool {
        matches!(self, Env::XenDomu | Env::XenPvhDomu)
    }

    pub fn name(&self) -> String {
        match self {
            Env::Qemu => "qemu".into(),
            Env::QemuPvh => "qemu-pvh".into(),
            Env::BadBootInfo(s) => format!("mbloader:{s}"),
            Env::Xen => "xen".into(),
            Env::XenPvh => "xen-pvh".into(),
            Env::Lguest => "lguest".into(),
            Env::LguestLie(lie) => format!("lguest:{lie}"),
            Env::XenDomu => "xen-domu".into(),
            Env::XenPvhDomu => "xen-pvh-domu".into(),
        }
    }
}

/// The result line a row must end with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Success,
    /// `Test result: FAILURE: ...` containing this text.
    Failure(&'static str),
    /// `Test result: ERROR: ...` containing this text.
    Error(&'static str),
    /// `Test result: SKIP: ...` containing this text.
    Skip(&'static str),
}

/// A check that compares figures from different lines of a log, where
/// "this line appears" cannot say enough.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The lguest host's count of the guest's HALT hypercalls
    /// (`lguest-host: guest halted N times`) is at least the halts the
    /// guest's time self-test reports on its `time:` lines (`..., N
    /// halts`: the 100 Hz and 1000 Hz ticks and the 50 ms sleep), and the
    /// sleep halted at least once. At least, not equal: the process
    /// workload's idle task halts too, and the kernel does not count those.
    LguestHaltsAgree,
    /// The lguest host evicted shadow pgdirs (`lguest-host: shadow tables:
    /// ..., N evictions`, N > 0: the workload keeps more pgdirs live than
    /// its four shadows) and its audit, which checks each shadow as it is
    /// evicted and those kept at the end, found none stale (`lguest-host:
    /// audit: ...: 0 violations`).
    LguestAuditAcrossEvictions,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    /// `backend: NAME` must appear (None: not checked, e.g. no selection).
    pub backend: Option<&'static str>,
    /// `paging: MODE` must appear.
    pub paging: Option<&'static str>,
    pub result: Want,
    /// Further lines that must appear somewhere in the log.
    pub lines: &'static [&'static str],
    /// Text that must appear nowhere in the log.
    pub absent: &'static [&'static str],
    pub checks: &'static [Check],
}

/// How much of the kernel's interrupt and time self-test a row runs (its
/// `timetest=` switch). Every environment's default row runs all of it: a
/// million clock reads and a one-second 10 kHz storm. The others run it
/// short (ten thousand reads, a 100 ms storm), every check the same:
/// under Xen PVH in QEMU's TCG each clock read traps to Xen (TCG offers no
/// invariant TSC, so Xen emulates `rdtsc`), and a million of them take
/// forty seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeTest {
    Full,
    Short,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootCase {
    pub name: &'static str,
    pub env: Env,
    pub cpu: &'static str,
    pub mem: &'static str,
    pub append: &'static str,
    /// Kernel cargo features (None: the default set).
    pub features: Option<&'static str>,
    pub time: TimeTest,
    pub expect: Expect,
}

impl BootCase {
    /// The kernel command line the row boots with.
    pub fn cmdline(&self) -> String {
        match self.time {
            TimeTest::Full => self.append.to_string(),
            TimeTest::Short if self.append.is_empty() => "timetest=short".into(),
            TimeTest::Short => format!("{} timetest=short", self.append),
        }
    }

    /// What the runtime self-tests print in a run that passes: the
    /// interrupt and time test (in full or short), and the process
    /// workload with its checks (every row runs it).
    pub fn runtime_lines(&self) -> &'static [&'static str] {
        match (self.expect.result, self.time) {
            (Want::Success, TimeTest::Full) => &[
                "time: 1000000 reads",
                "time: 10 kHz storm for 1000 ms",
                "time: SUCCESS",
                "proccheck: ",
                "processes: SUCCESS",
            ],
            (Want::Success, TimeTest::Short) => &[
                "time: 10000 reads",
                "time: 10 kHz storm for 100 ms",
                "time: SUCCESS",
                "proccheck: ",
                "processes: SUCCESS",
            ],
            _ => &[],
        }
    }
}

const NATIVE_OK: Expect = Expect {
    backend: Some("native"),
    paging: None,
    result: Want::Success,
    lines: &["candidate native: detected, priority 0", "selfcheck: ok", RUNTIME],
    absent: &[],
    checks: &[],
};

/// What the process workload shows in full: init's verdict, the two
/// programs killed for their faults (the kernel survives them), and the
/// spinner that only the timer could take the CPU from.
pub const PROCESS_LINES: &[&str] = &[
    "(bad-kernel-read) killed: #PF (vector 14)",
    "(bad-ud2) killed: #UD (vector 6)",
    "init: 8 children ok, 0 failed, 0 forks refused, 2 of 2 faults as expected, spinner killed: ok",
    "processes: SUCCESS",
    // The ptdump of two user halves (`cargo xtask ptdump` draws them).
    "ptdump: user half of process 1 (init) at its first wait",
    "(a grandchild) at its exit (root pfn",
];

/// `fault=irq`: the result, and the report of the interrupt itself.
pub const IRQ_UNHANDLED: &str = "an interrupt arrived for timer and nobody registered for it";
pub const IRQ_REPORT: &str = "interrupt: timer at vector";

/// The runtime memory self-test: every runtime MMU hook once, every
/// pagetable page released, every frame back.
const RUNTIME: &str = "runtime: kmap_atomic, and an address space";

const fn native(name: &'static str, cpu: &'static str, mem: &'static str, paging: &'static str) -> BootCase {
    BootCase {
        name,
        env: Env::Qemu,
        cpu,
        mem,
        append: "",
        features: None,
        time: TimeTest::Short,
        expect: Expect { paging: Some(paging), ..NATIVE_OK },
    }
}

const fn bad(name: &'static str, scenario: &'static str, message: &'static str) -> BootCase {
    BootCase {
        name,
        env: Env::BadBootInfo(scenario),
        cpu: "max",
        mem: "128M",
        append: "",
        features: None,
        time: TimeTest::Short,
        expect: Expect {
            backend: Some("native"),
            paging: None,
            result: Want::Failure(message),
            lines: &[],
            absent: &[],
            checks: &[],
        },
    }
}

/// The whole matrix, in the order it runs.
pub fn matrix() -> Vec<BootCase> {
    let mut m = vec![
        // CPUs without PAE: 2-level paging. The 486 loses PSE as well, so
        // the direct map is all 4 KiB pages.
        BootCase { time: TimeTest::Full, ..native("native-486-nopse-16M", "486,-pse", "16M", "2-level") },
        native("native-486-nopse-1G", "486,-pse", "1G", "2-level"),
        native("native-pentium-16M", "pentium", "16M", "2-level"),
        native("native-pentium-128M", "pentium", "128M", "2-level"),
        native("native-pentium-1G", "pentium", "1G", "2-level"),
        native("native-pentium-3G", "pentium", "3G", "2-level"),
        // PAE without NX.
        native("native-pentium3-16M", "pentium3", "16M", "PAE"),
        native("native-pentium3-128M", "pentium3", "128M", "PAE"),
        native("native-pentium3-1G", "pentium3", "1G", "PAE"),
        native("native-pentium3-3G", "pentium3", "3G", "PAE"),
        // PAE with NX: W^X for real.
        native("native-max-16M", "max", "16M", "PAE"),
        BootCase {
            time: TimeTest::Full,
            expect: Expect { lines: PROCESS_LINES, ..NATIVE_OK },
            ..native("native-max-128M", "max", "128M", "PAE")
        },
        // 64 children where memory allows, their pages from high memory.
        BootCase {
            append: "procs=64 procmem=8",
            expect: Expect { lines: &["init: 64 children ok", "processes: SUCCESS"], ..NATIVE_OK },
            ..native("native-max-1G", "max", "1G", "PAE")
        },
        native("native-max-3G", "max", "3G", "PAE"),
        // The PVH entry under plain QEMU (hvm_start_info with a memory map).
        BootCase {
            env: Env::QemuPvh,
            expect: Expect { lines: &["entered via pvh in ring 0", "selfcheck: ok"], ..NATIVE_OK },
            ..native("native-pvh-max-128M", "max", "128M", "PAE")
        },
        BootCase {
            env: Env::QemuPvh,
            expect: Expect { lines: &["entered via pvh in ring 0", "selfcheck: ok"], ..NATIVE_OK },
            ..native("native-pvh-pentium-1G", "pentium", "1G", "2-level")
        },
        // A PAE CPU asked for 2-level paging.
        BootCase { append: "paging=2level", ..native("native-max-2level", "max", "128M", "2-level") },
        // An image holding only two backends has no lguest candidate.
        BootCase {
            features: Some("native,xen"),
            expect: Expect {
                lines: &["candidate xen: not detected", "candidate xen-hvm: not detected", "selfcheck: ok"],
                absent: &["candidate lguest"],
                checks: &[],
                ..NATIVE_OK
            },
            ..native("native-only-native-xen", "max", "128M", "PAE")
        },
    ];
    // An image built with no backend at all cannot run here: SKIP, said
    // clearly.
    m.push(BootCase {
        features: Some(""),
        expect: Expect {
            backend: None,
            paging: None,
            result: Want::Skip("no backend in this image"),
            lines: &[],
            absent: &[],
            checks: &[],
        },
        ..native("empty-registry", "max", "128M", "")
    });
    // Faults are reported, never a silent triple fault: a page fault, an
    // invalid opcode, and a double fault from a blown stack (which only the
    // task gate can catch).
    for (name, append, message) in [
        ("fault-page-fault", "fault=pf", "unexpected exception #PF"),
        ("fault-invalid-opcode", "fault=ud", "unexpected exception #UD"),
        ("fault-double-fault", "fault=stack", "unexpected exception #DF"),
    ] {
        m.push(BootCase {
            append,
            expect: Expect {
                backend: Some("native"),
                paging: None,
                result: Want::Failure(message),
                lines: &["EXCEPTION"],
                absent: &[],
                checks: &[],
            },
            ..native(name, "max", "128M", "")
        });
    }
    // The 486's clocks on a CPU that has better: PIT channel 2 as the
    // clock source, PIT channel 0 as the event device.
    m.push(BootCase {
        append: "clocksource=pit clockevent=pit",
        expect: Expect {
            lines: &["time: clocksource pit", "clockevent pit (periodic and one-shot"],
            ..NATIVE_OK
        },
        ..native("native-max-pit-clocks", "max", "128M", "PAE")
    });
    // A fork refused half-way (natively the kernel refuses a share): the
    // parent goes on, nothing leaks.
    m.push(BootCase {
        append: "fail_fork=3",
        expect: Expect { lines: &["init: 7 children ok, 0 failed, 1 forks refused"], ..NATIVE_OK },
        ..native("native-fail-fork", "max", "128M", "PAE")
    });
    // An interrupt nobody registered for (the timer, armed with its handler
    // removed) is reported and ends the run: no hang, no silent loss.
    m.push(BootCase {
        append: "fault=irq",
        expect: Expect { result: Want::Failure(IRQ_UNHANDLED), lines: &[IRQ_REPORT], ..NATIVE_OK },
        ..native("native-fault-irq", "max", "128M", "")
    });
    // Bad input: a clear message and a FAILURE, never a hang.
    m.extend([
        BootCase {
            // The whole line is checked before anything acts on it
            // (paravirt::switches): no pagetable is built.
            append: "clockevent=hpet",
            expect: Expect {
                result: Want::Failure("bad command line: clockevent=hpet: not lapic or pit"),
                lines: &["backend: native"],
                absent: &["selfcheck"],
                ..NATIVE_OK
            },
            ..native("bad-clockevent-switch", "max", "128M", "")
        },
        BootCase {
            // A key nobody knows is passed on, as Linux does, with a line.
            append: "root=/dev/sda",
            expect: Expect {
                lines: &["warning: unknown command-line switch root=/dev/sda (passed on)", "selfcheck: ok"],
                ..NATIVE_OK
            },
            ..native("unknown-switch-passed-on", "max", "128M", "")
        },
        BootCase {
            append: "hypervisor=vmware",
            expect: Expect {
                backend: None,
                paging: None,
                result: Want::Failure("hypervisor=vmware: no such backend in this image"),
                lines: &[],
                absent: &[],
                checks: &[],
            },
            ..native("bad-hypervisor-name", "max", "128M", "")
        },
        BootCase {
            append: "hypervisor=xen",
            expect: Expect {
                backend: None,
                paging: None,
                result: Want::Failure("hypervisor=xen: backend xen does not detect this platform"),
                lines: &[],
                absent: &[],
                checks: &[],
            },
            ..native("bad-hypervisor-undetected", "max", "128M", "")
        },
        BootCase {
            expect: Expect {
                backend: Some("native"),
                paging: None,
                result: Want::Failure("memory below what the kernel needs"),
                lines: &[],
                absent: &[],
                checks: &[],
            },
            ..native("bad-memory-2M", "max", "2M", "")
        },
        bad("bad-mmap-missing", "missing", "no memory map: multiboot flags bit 6 is clear"),
        bad("bad-mmap-overlap", "overlap", "multiboot mmap_addr: entries 1 and 2 overlap"),
        bad("bad-mmap-zero-length", "zero", "has zero length"),
        bad("bad-mmap-above-4g", "above4g", "no RAM below 4 GiB"),
        bad("bad-mmap-wraps", "wrap", "runs past the end of the 64-bit address space"),
        bad("bad-mmap-pointer", "badptr", "is outside readable memory"),
        bad("bad-mmap-tiny", "tiny", "memory below what the kernel needs"),
        BootCase { name: "mbloader-control", expect: NATIVE_OK, ..bad("", "ok", "") },
        BootCase {
            name: "mbloader-cross-4g",
            expect: Expect { lines: &["highmem 1024 MiB", "selfcheck: ok"], ..NATIVE_OK },
            ..bad("", "cross4g", "")
        },
        // The same loader lying through the PVH entry: a malformed
        // hvm_start_info, each failure naming the field that lied.
        // Version 0 is Xen's PVH dom0, whose map comes from a hypercall:
        // native does not take it, and no backend is chosen.
        BootCase {
            expect: Expect {
                backend: None,
                ..bad("", "", "hvm_start_info.version = 0 carries no memory map").expect
            },
            ..bad("bad-pvh-version", "pvh-version0", "")
        },
        bad("bad-pvh-mmap-missing", "pvh-mmap-missing", "no memory map: hvm_start_info.memmap_paddr is 0"),
        bad("bad-pvh-mmap-empty", "pvh-mmap-empty", "no memory map: hvm_start_info.memmap_entries is 0"),
        bad(
            "bad-pvh-mmap-overlap",
            "pvh-mmap-overlap",
            "hvm_start_info.memmap_paddr: entries 1 and 2 overlap",
        ),
        bad(
            "bad-pvh-mmap-outside",
            "pvh-mmap-outside",
            "hvm_start_info.memmap_paddr at 0x3f000000 is outside readable memory",
        ),
        bad(
            "bad-pvh-mmap-huge",
            "pvh-mmap-huge",
            "hvm_start_info.memmap_entries = 16777216: more than the 64 memory map entries allowed",
        ),
        bad(
            "bad-pvh-cmdline",
            "pvh-cmdline-nowhere",
            "hvm_start_info.cmdline_paddr at 0x3f000000 is outside readable memory",
        ),
        bad(
            "bad-pvh-ram-outside",
            "pvh-ram-outside",
            "hvm_start_info.memmap_paddr: RAM claimed at 0x2ffffffc does not keep what is written there",
        ),
        BootCase {
            name: "mbloader-pvh-control",
            expect: Expect { lines: &["entered via pvh in ring 0"], ..NATIVE_OK },
            ..bad("", "pvh-ok", "")
        },
        // A version newer than 1 is read as version 1, as Linux does.
        BootCase {
            name: "mbloader-pvh-version-new",
            expect: Expect { lines: &["entered via pvh in ring 0"], ..NATIVE_OK },
            ..bad("", "pvh-version-new", "")
        },
    ]);
    m.extend(xen_rows());
    m.extend(xen_pvh_rows());
    m.extend(three_ways());
    m.extend(lguest_rows());
    m.extend(xen_domu_rows());
    m
}

const LGUEST_OK: Expect = Expect {
    backend: Some("lguest"),
    paging: Some("2-level"),
    result: Want::Success,
    lines: &[
        "entered via linux-boot in ring 1",
        "candidate lguest: detected, priority 100 (boot_params.hardware_subarch = 1",
        "candidate native: not detected (running in ring 1",
        "selfcheck: ok",
        RUNTIME,
        "pagetables: 0 violations",
        "time: clocksource lguest-tsc",
    ],
    absent: &[],
    checks: &[Check::LguestHaltsAgree, Check::LguestAuditAcrossEvictions],
};

const fn lguest(name: &'static str, mem: &'static str, append: &'static str) -> BootCase {
    BootCase {
        name,
        env: Env::Lguest,
        cpu: "max",
        mem,
        append,
        features: None,
        time: TimeTest::Short,
        expect: LGUEST_OK,
    }
}

/// lguest rows: the kernel as a guest of our own lguest host, in ring 1 on
/// shadow pagetables, its processes in ring 3. Every row that succeeds has
/// more live pgdirs than the host's four shadows, so shadows are evicted,
/// each audited as it goes ([`Check::LguestAuditAcrossEvictions`]).
/// A row whose Launcher lies (`lie=NAME`): the guest must end with a
/// FAILURE naming the boot_params field, on the console lguest gives it
/// (or, if no backend takes it, the early one).
const fn lguest_lie(name: &'static str, lie: &'static str, message: &'static str) -> BootCase {
    BootCase {
        env: Env::LguestLie(lie),
        expect: Expect {
            backend: None,
            paging: None,
            result: Want::Failure(message),
            lines: &["entered via linux-boot in ring 1"],
            absent: &[],
            checks: &[],
        },
        ..lguest(name, "32M", "")
    }
}

fn lguest_rows() -> Vec<BootCase> {
    vec![
        lguest_lie("bad-lguest-e820-none", "e820-none", "no memory map: boot_params.e820_entries is 0"),
        lguest_lie(
            "bad-lguest-e820-count",
            "e820-count",
            "boot_params.e820_entries = 200: more than the 64 memory map entries allowed",
        ),
        lguest_lie(
            "bad-lguest-e820-overlap",
            "e820-overlap",
            "boot_params.e820_table: entries 0 and 1 overlap",
        ),
        lguest_lie(
            "bad-lguest-e820-zero",
            "e820-zero",
            "boot_params.e820_table: entry 1 at 0x2000000 has zero length",
        ),
        lguest_lie(
            "bad-lguest-e820-wrap",
            "e820-wrap",
            "boot_params.e820_table: entry 1 (0xfffffffffffff000 + 0x2000) runs past",
        ),
        lguest_lie(
            "bad-lguest-e820-outside",
            "e820-outside",
            "boot_params.e820_table: RAM up to 0x8000000, but the guest's memory ends at 0x2000000",
        ),
        lguest_lie("bad-lguest-subarch-pc", "subarch-pc", "boot_params.hardware_subarch = 0"),
        lguest_lie("bad-lguest-subarch-unknown", "subarch-unknown", "boot_params.hardware_subarch = 7"),
        lguest_lie(
            "bad-lguest-cmdline",
            "cmdline-nowhere",
            "boot_params.cmd_line_ptr at 0x3f000000 is outside readable memory",
        ),
        BootCase { time: TimeTest::Full, ..lguest("lguest-32M", "32M", "") },
        // The workload in full (8 children, up to a dozen live pgdirs):
        // system calls, faults from ring 3, the spinner only the timer
        // stops.
        BootCase {
            expect: Expect { lines: PROCESS_LINES, ..LGUEST_OK },
            ..lguest("lguest-128M", "128M", "")
        },
        // More than lowmem (883 MiB under lguest): the Launcher's map above
        // the direct map is dropped, its pte pages above lowmem copied, the
        // rest reported as highmem, where user pages come from; and 64
        // children (some 70 live pgdirs: an eviction at almost every
        // switch).
        BootCase {
            append: "procs=64 procmem=8",
            expect: Expect {
                lines: &["selfcheck: ok", "init: 64 children ok", "processes: SUCCESS"],
                ..LGUEST_OK
            },
            ..lguest("lguest-912M", "912M", "")
        },
        // The guest stops telling the host about its pagetable updates from
        // the first on (mark_rodata_ro's read-only remaps of kernel text it
        // keeps executing, fork's write-protection): the host's audit finds
        // those shadows still writable, in shadows it evicts and in those it
        // keeps, and the run fails although the guest itself reported
        // SUCCESS.
        BootCase {
            expect: Expect {
                result: Want::Failure("lguest-host: violation"),
                lines: &["written but not told to the host", "lguest-host: violation at eviction"],
                checks: &[Check::LguestHaltsAgree],
                ..LGUEST_OK
            },
            ..lguest("lguest-skip-notify", "32M", "lguest_skip_notify=1")
        },
        // hypervisor= works under lguest too: an unknown name, and a backend
        // that does not detect a ring-1 guest, are refused.
        BootCase {
            expect: Expect {
                backend: None,
                paging: None,
                result: Want::Failure("hypervisor=nosuch: no such backend in this image"),
                lines: &["candidate lguest: detected"],
                absent: &[],
                checks: &[],
            },
            ..lguest("lguest-unknown-backend", "32M", "hypervisor=nosuch")
        },
        BootCase {
            expect: Expect {
                backend: None,
                paging: None,
                result: Want::Failure(
                    "hypervisor=native: backend native does not detect this platform: running in ring 1",
                ),
                lines: &["candidate lguest: detected"],
                absent: &[],
                checks: &[],
            },
            ..lguest("lguest-force-native", "32M", "hypervisor=native")
        },
        // A fault in the guest reaches its own handler through the host.
        BootCase {
            expect: Expect {
                result: Want::Failure("unexpected exception #UD"),
                paging: None,
                lines: &["EXCEPTION #UD"],
                checks: &[],
                ..LGUEST_OK
            },
            ..lguest("lguest-fault-invalid-opcode", "32M", "fault=ud")
        },
        // The guest's timer, armed with its handler removed: the host
        // delivers irq 0 through the gate the guest loaded for vector 32,
        // and the guest reports it and ends the run.
        BootCase {
            expect: Expect {
                result: Want::Failure(IRQ_UNHANDLED),
                lines: &[IRQ_REPORT, "timer at vector 0x20 (eip", "has no handler"],
                checks: &[],
                ..LGUEST_OK
            },
            ..lguest("lguest-fault-irq", "32M", "fault=irq")
        },
    ]
}

const XEN_PVH_OK: Expect = Expect {
    backend: Some("xen-hvm"),
    paging: Some("PAE"),
    result: Want::Success,
    lines: &[
        "entered via pvh in ring 0",
        "\"XenVMMXenVMM\"",
        "candidate xen-hvm: detected, priority 50",
        "memory map from XENMEM_memory_map",
        "selfcheck: ok",
        RUNTIME,
    ],
    absent: &[],
    checks: &[],
};

const fn xen_pvh(
    name: &'static str,
    mem: &'static str,
    append: &'static str,
    paging: &'static str,
) -> BootCase {
    BootCase {
        name,
        env: Env::XenPvh,
        cpu: "max",
        mem,
        append,
        features: None,
        time: TimeTest::Short,
        expect: Expect { paging: Some(paging), ..XEN_PVH_OK },
    }
}

/// Xen PVH dom0: CPUID says Xen, the pagetable is native (nested paging),
/// both paging modes.
fn xen_pvh_rows() -> Vec<BootCase> {
    vec![
        BootCase { time: TimeTest::Full, ..xen_pvh("xen-pvh-pae-128M", "128M", "", "PAE") },
        xen_pvh("xen-pvh-pae-512M", "512M", "", "PAE"),
        xen_pvh("xen-pvh-2level-128M", "128M", "paging=2level", "2-level"),
        xen_pvh("xen-pvh-2level-512M", "512M", "paging=2level", "2-level"),
        BootCase {
            expect: Expect { result: Want::Failure(IRQ_UNHANDLED), lines: &[IRQ_REPORT], ..XEN_PVH_OK },
            ..xen_pvh("xen-pvh-fault-irq", "128M", "fault=irq", "PAE")
        },
        // The guest takes its page faults natively, and reads CR2 right:
        // QEMU's TCG makes `mov reg, cr2` exit to Xen as a CR0 read, which
        // Xen emulates from its copy of CR2 (xtask/xen/svm-sync-cr2.patch).
        BootCase {
            expect: Expect {
                result: Want::Failure("unexpected exception #PF"),
                paging: None,
                lines: &["EXCEPTION #PF", "cr2=0xf0000000"],
                ..XEN_PVH_OK
            },
            ..xen_pvh("xen-pvh-fault-page-fault", "128M", "fault=pf", "PAE")
        },
        // Forcing native there is refused: a PVH start_info without a
        // memory map means no PC platform (no firmware map; Xen owns the
        // serial port), so native could neither size memory nor report.
        BootCase {
            expect: Expect {
                backend: None,
                paging: None,
                result: Want::Failure(
                    "hypervisor=native: backend native does not detect this platform: PVH start_info version 0 has no memory map",
                ),
                lines: &["candidate xen-hvm: detected"],
                absent: &[],
                checks: &[],
            },
            ..xen_pvh("xen-pvh-force-native", "128M", "hypervisor=native", "")
        },
        BootCase {
            expect: Expect {
                backend: None,
                paging: None,
                result: Want::Failure("hypervisor=nosuch: no such backend in this image"),
                lines: &["candidate xen-hvm: detected"],
                absent: &[],
                checks: &[],
            },
            ..xen_pvh("xen-pvh-unknown-backend", "128M", "hypervisor=nosuch", "")
        },
    ]
}

/// One image (default features) booted three ways; each log shows every
/// candidate's verdict, and probing picks a different backend each time.
fn three_ways() -> Vec<BootCase> {
    let all = |first: &'static str| -> &'static [&'static str] {
        match first {
            "native" => &[
                "candidate native: detected, priority 0",
                "candidate lguest: not detected",
                "candidate xen: not detected (not entered through Xen's PV entry",
                "candidate xen-hvm: not detected (no XenVMMXenVMM signature",
            ],
            "xen" => &[
                "candidate xen: detected, priority 100 (start_info magic",
                "candidate lguest: not detected",
                "candidate native: not detected (running in ring 1",
                "candidate xen-hvm: not detected (running in ring 1",
            ],
            _ => &[
                "candidate xen-hvm: detected, priority 50 (CPUID",
                "candidate lguest: not detected",
                "candidate native: not detected (PVH start_info version 0",
                "candidate xen: not detected (not entered through Xen's PV entry",
            ],
        }
    };
    vec![
        // The PVH entry under QEMU: the override is read from
        // hvm_start_info's command line.
        BootCase {
            name: "qemu-pvh-unknown-backend",
            env: Env::QemuPvh,
            append: "hypervisor=nosuch",
            expect: Expect {
                backend: None,
                paging: None,
                result: Want::Failure("hypervisor=nosuch: no such backend in this image"),
                lines: &["candidate native: detected"],
                absent: &[],
                checks: &[],
            },
            ..native("", "max", "128M", "")
        },
        BootCase {
            name: "qemu-pvh-force-undetected",
            env: Env::QemuPvh,
            append: "hypervisor=xen-hvm",
            expect: Expect {
                backend: None,
                paging: None,
                result: Want::Failure("hypervisor=xen-hvm: backend xen-hvm does not detect this platform"),
                lines: &["candidate native: detected"],
                absent: &[],
                checks: &[],
            },
            ..native("", "max", "128M", "")
        },
        BootCase {
            name: "three-ways-qemu-pvh",
            env: Env::QemuPvh,
            expect: Expect { lines: all("native"), ..NATIVE_OK },
            ..native("", "max", "128M", "PAE")
        },
        BootCase {
            name: "three-ways-xen-pv",
            expect: Expect { lines: all("xen"), ..XEN_OK },
            ..xen_dom0("", "128M")
        },
        BootCase {
            name: "three-ways-xen-pvh",
            expect: Expect { lines: all("xen-hvm"), ..XEN_PVH_OK },
            ..xen_pvh("", "128M", "", "PAE")
        },
    ]
}

const XEN_OK: Expect = Expect {
    backend: Some("xen"),
    paging: Some("PAE"),
    result: Want::Success,
    lines: &[
        "entered via xen-pv in ring 1",
        "candidate native: not detected",
        "pinned and live, Xen's boot L3 and L2 released",
        "pagetable pages read-only",
        "selfcheck: ok",
        RUNTIME,
    ],
    absent: &[],
    checks: &[],
};

const XEN_STRATEGY_MINIOS: &[&str] = &[
    "entered via xen-pv in ring 1",
    "new pagetable pages made read-only (minios strategy)",
    "pinned and live, Xen's boot L3 and L2 released",
    "pagetable pages read-only",
    "selfcheck: ok",
    RUNTIME,
    "processes: SUCCESS",
];
const XEN_STRATEGY_LINUX: &[&str] = &[
    "entered via xen-pv in ring 1",
    "new pagetable pages made read-only (linux strategy)",
    "pinned and live, Xen's boot L3 and L2 released",
    "pagetable pages read-only",
    "selfcheck: ok",
    RUNTIME,
    "processes: SUCCESS",
];

const fn xen_dom0(name: &'static str, mem: &'static str) -> BootCase {
    BootCase {
        name,
        env: Env::Xen,
        cpu: "max",
        mem,
        append: "",
        features: None,
        time: TimeTest::Short,
        expect: XEN_OK,
    }
}

const fn xen_fail(name: &'static str, append: &'static str, message: &'static str) -> BootCase {
    BootCase {
        append,
        expect: Expect { result: Want::Failure(message), lines: &["backend: xen"], ..XEN_OK },
        ..xen_dom0(name, "32M")
    }
}

/// Xen PV dom0 rows: the same default image, the xen backend chosen by
/// start_info, the pagetable built through hypercalls.
fn xen_rows() -> Vec<BootCase> {
    vec![
        xen_dom0("xen-dom0-32M", "32M"),
        BootCase { time: TimeTest::Full, ..xen_dom0("xen-dom0-128M", "128M") },
        xen_dom0("xen-dom0-512M", "512M"),
        BootCase {
            append: "procs=64 procmem=1",
            expect: Expect { lines: &["init: 64 children ok", "processes: SUCCESS"], ..XEN_OK },
            ..xen_dom0("xen-dom0-1G", "1G")
        },
        // The largest dom0 the bench measures: 723 MiB of low memory, 362
        // new table pages, still one pagetable hypercall.
        BootCase {
            expect: Expect {
                lines: &["hypercalls: pagetable_init hypercalls=1 ", "processes: SUCCESS"],
                ..XEN_OK
            },
            ..xen_dom0("xen-dom0-3G", "3G")
        },
        // The anchors' ways of building the same pagetable (the benchmark
        // compares them with ours): each must give a table that passes the
        // whole self-check and runs the process workload.
        BootCase {
            append: "xen_pt_strategy=minios",
            expect: Expect { lines: XEN_STRATEGY_MINIOS, ..XEN_OK },
            ..xen_dom0("xen-pt-strategy-minios", "128M")
        },
        BootCase {
            append: "xen_pt_strategy=linux",
            expect: Expect { lines: XEN_STRATEGY_LINUX, ..XEN_OK },
            ..xen_dom0("xen-pt-strategy-linux", "128M")
        },
        BootCase {
            append: "xen_pt_strategy=fast",
            expect: Expect {
                result: Want::Failure("bad command line: xen_pt_strategy=fast: not pvops, minios or linux"),
                paging: None,
                lines: &["backend: xen"],
                ..XEN_OK
            },
            ..xen_dom0("xen-pt-strategy-unknown", "32M")
        },
        // A hypercall failing in the middle of a fork: Xen refuses the
        // batch write-protecting the parent; the fork returns ENOMEM, init
        // goes on, nothing leaks.
        BootCase {
            append: "fail_fork=3",
            expect: Expect {
                lines: &["fork in pid 1: mmu_update entry", "init: 7 children ok, 0 failed, 1 forks refused"],
                ..XEN_OK
            },
            ..xen_dom0("xen-fail-fork", "128M")
        },
        BootCase {
            append: "fault=irq",
            expect: Expect { result: Want::Failure(IRQ_UNHANDLED), lines: &[IRQ_REPORT], ..XEN_OK },
            ..xen_dom0("xen-fault-irq", "32M")
        },
        // A pagetable hypercall that Xen rejects (sent with a machine frame
        // no machine has) ends the run cleanly, naming the call, its
        // arguments and Xen's error: the 1st (the build's one multicall:
        // its first sub-call, the mmu_update making the new table pages
        // read-only, is refused at its last entry; Xen then refuses the
        // pin too, a page being still writable, and the report must be the
        // cause), the 2nd (an mmu_update batch of mark_rodata_ro) and the
        // 26th (the mmuext_op pinning the self-test's address space) at
        // 32 MiB. The sabotaged entry is the batch's last, so the rows
        // also prove that the entry reported is the failing one, not the
        // first.
        xen_fail(
            "xen-fail-hypercall-1",
            "xen_fail_hypercall=1",
            "pagetable_init: mmu_update entry 15 of 16 (0xfffffff000, ",
        ),
        xen_fail(
            "xen-fail-hypercall-2",
            "xen_fail_hypercall=2",
            "mark_rodata_ro: mmu_update entry 127 of 128 (0xfffffff000, ",
        ),
        xen_fail(
            "xen-fail-hypercall-24",
            "xen_fail_hypercall=24",
            "runtime memory self-test: mmuext_op entry 0 of 1 (0x2, 0xfffffff) failed: -22 (EINVAL)",
        ),
        // hypervisor= is read from start_info before any backend is
        // chosen: an unknown name and a backend that does not detect Xen
        // PV are both refused.
        BootCase {
            expect: Expect {
                backend: None,
                paging: None,
                result: Want::Failure("hypervisor=nosuch: no such backend in this image"),
                lines: &["candidate xen: detected"],
                absent: &[],
                checks: &[],
            },
            append: "hypervisor=nosuch",
            ..xen_dom0("xen-unknown-backend", "32M")
        },
        BootCase {
            expect: Expect {
                backend: None,
                paging: None,
                result: Want::Failure(
                    "hypervisor=native: backend native does not detect this platform: running in ring 1",
                ),
                lines: &["candidate xen: detected"],
                absent: &[],
                checks: &[],
            },
            append: "hypervisor=native",
            ..xen_dom0("xen-force-native", "32M")
        },
        // Exceptions reach the kernel through Xen's trap table.
        BootCase {
            append: "fault=pf",
            expect: Expect {
                result: Want::Failure("unexpected exception #PF"),
                paging: None,
                lines: &["EXCEPTION #PF"],
                ..XEN_OK
            },
            ..xen_dom0("xen-fault-page-fault", "32M")
        },
    ]
}

const fn xen_domu(name: &'static str, env: Env, mem: &'static str, append: &'static str) -> BootCase {
    let expect = if matches!(env, Env::XenPvhDomu) { XEN_PVH_DOMU_OK } else { XEN_OK };
    BootCase { name, env, cpu: "max", mem, append, features: None, time: TimeTest::Short, expect }
}

/// A PVH domU: libxl hands over an hvm_start_info of its own (with a memory
/// map, unlike Xen's dom0 builder), so only what any PVH guest shows.
const XEN_PVH_DOMU_OK: Expect = Expect {
    backend: Some("xen-hvm"),
    paging: Some("PAE"),
    result: Want::Success,
    lines: &[
        "entered via pvh in ring 0",
        "\"XenVMMXenVMM\"",
        "candidate xen-hvm: detected, priority 50",
        "selfcheck: ok",
        RUNTIME,
    ],
    absent: &[],
    checks: &[],
};

/// The kernel as an unprivileged guest built by Xen's own toolstack: a
/// Linux dom0 runs `xl create` for each row in turn, in one boot. The
/// guest's verdict is its result line, relayed from its PV console, and
/// `xl` must have seen it end as promised: SCHEDOP_shutdown(poweroff) for
/// SUCCESS, (crash) for FAILURE.
fn xen_domu_rows() -> Vec<BootCase> {
    vec![
        // libxenguest's PV builder (not Xen's dom0 builder) lays out
        // start_info, the p2m and the initial PAE pagetable.
        // Short, as every domU row: an unprivileged guest's `rdtsc` is
        // emulated by Xen here (TCG has no invariant TSC), 20 to 70 us a
        // read under TCG, and a million do not fit the guest's time limit.
        // The dom0 rows run them all, on the same code.
        xen_domu("xen-domu-pv-32M", Env::XenDomu, "32M", ""),
        xen_domu("xen-domu-pv-256M", Env::XenDomu, "256M", ""),
        xen_domu("xen-domu-pvh-128M", Env::XenPvhDomu, "128M", ""),
        // A fault reaches the guest's handler; it reports FAILURE and ends
        // with SCHEDOP_shutdown(crash), which xl reports.
        BootCase {
            expect: Expect {
                result: Want::Failure("unexpected exception #PF"),
                paging: None,
                lines: &["EXCEPTION #PF"],
                ..XEN_OK
            },
            ..xen_domu("xen-domu-fault-page-fault", Env::XenDomu, "32M", "fault=pf")
        },
        // Xen rejects the guest's first pagetable hypercall (the build's
        // multicall, its mmu_update naming a machine frame no machine has):
        // a clean FAILURE naming the call, and a crash shutdown.
        BootCase {
            expect: Expect {
                result: Want::Failure("pagetable_init: mmu_update entry"),
                lines: &["backend: xen"],
                ..XEN_OK
            },
            ..xen_domu("xen-domu-fail-hypercall-1", Env::XenDomu, "32M", "xen_fail_hypercall=1")
        },
        // The toolstack's console and xenstore ports stay masked; the
        // timer's port with its handler removed is reported.
        BootCase {
            expect: Expect { result: Want::Failure(IRQ_UNHANDLED), lines: &[IRQ_REPORT], ..XEN_OK },
            ..xen_domu("xen-domu-fault-irq", Env::XenDomu, "32M", "fault=irq")
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let m = matrix();
        for (i, a) in m.iter().enumerate() {
            assert!(!a.name.is_empty());
            assert!(m[i + 1..].iter().all(|b| b.name != a.name), "duplicate row {}", a.name);
        }
    }
}

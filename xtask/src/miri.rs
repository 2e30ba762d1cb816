//! The Miri pass of `cargo xtask test`: the host crates' own tests run
//! under Miri, which checks every unsafe operation they reach (alignment,
//! bounds, aliasing, uninitialized reads) against Rust's rules. The unsafe
//! code of this project is where it meets memory it does not own: entries
//! of pagetable pages (`EntryRef`, `PhysMem`), shared pages with a
//! hypervisor (Xen's shared_info, lguest_data and its ring), guest memory
//! seen by the lguest host. What it found on its first runs (README's
//! Miri section): frames aligned to 1 in `mm::sim` and in the lguest
//! host's test machine, that machine's RAM in a `Box` whose moves
//! invalidated the host's pointers, and a lost provenance in Xen's
//! shared_info page.
//!
//! What does not run, and why, is listed here, once ([`SKIPS`]); README
//! repeats it.

/// The crates, with the features their host tests need.
pub const PACKAGES: &[&str] = &[
    "arch-i386",
    "paravirt",
    "mm",
    "backend-native",
    "backend-xen",
    "backend-lguest",
    "boot-support",
    "lguest-host",
];
const FEATURES: &str = "mm/sim,backend-xen/fake,backend-lguest/fake";

/// Miri's flags, each with its reason.
pub const FLAGS: &[(&str, &str)] = &[
    (
        "-Zmiri-permissive-provenance",
        "the lguest host reaches guest-physical memory, and the kernel the pages it mapped, by address: \
         exposed-provenance casts are what that code is about, and the flag takes them without a warning",
    ),
    (
        "-Zmiri-ignore-leaks",
        "tests leak on purpose the memory the code keeps for good (the p2m and m2p tables, a shared_info \
         frame, the guest's IDT), as the kernel's own live forever",
    ),
];

/// A test left out under Miri, and why.
pub struct Skip {
    /// Matched as libtest's `--skip` matches: a substring of the path.
    pub test: &'static str,
    pub why: &'static str,
}

const BUILDS: &str = "builds kernel pagetables over 16-32 MiB of simulated memory, several times: \
                      minutes under Miri; highmem::tests::pkmap_counts_wraps_and_flushes_lazily, \
                      tests::mark_rodata_ro_looks_at_the_image_and_what_was_kept and the xen and lguest \
                      pagetable tests that run reach the same EntryRef and SimMem code";

const P2M: &str = "a p2m of a million frames: minutes under Miri; the other p2m tests run the same lookups \
                   on small tables";

pub const SKIPS: &[Skip] = &[
    Skip { test: "frames::zone_tests::zone_counts_split_at_max_low", why: "marks 262 144 frames free bit by bit: two minutes under Miri; frames::tests run the same code at a smaller size" },
    Skip { test: "highmem::tests::a_space_with_high_pte_pages", why: BUILDS },
    Skip { test: "highmem::tests::no_high_memory_no_kmaps", why: BUILDS },
    Skip { test: "space::tests::", why: BUILDS },
    Skip { test: "tests::adopted_boot_pagetable_is_fixed_up_by_mark_rodata_ro", why: BUILDS },
    Skip { test: "tests::check_", why: BUILDS },
    Skip { test: "tests::fresh_build_maps_every_low_page_once", why: BUILDS },
    Skip { test: "tests::hooks_come_in_the_seed_order", why: BUILDS },
    Skip { test: "tests::prepopulated_mappings_survive_property", why: BUILDS },
    Skip { test: "launcher_map::tests::", why: BUILDS },
    Skip { test: "p2m::tests::round_trips_and_refuses_foreign_frames", why: P2M },
    Skip { test: "p2m::tests::runs_are_found_once_and_looked_up", why: P2M },
    Skip { test: "pagetable::tests::a_build_of_any_size_stays_within_three_traps", why: BUILDS },
    Skip { test: "pagetable::tests::pagetable_pages_beyond_the_direct_map_are_not_remapped", why: BUILDS },
    Skip { test: "pagetable::tests::setup_done_is_one_trap_remap_pin_switch_release", why: BUILDS },
    Skip { test: "pagetable::tests::the_bulk_path_fills", why: BUILDS },
    Skip { test: "pagetable::tests::a_kernel_pte_is_cleared_and_flushed_in_one_call_once_live", why: BUILDS },
];

/// `cargo` arguments of the pass.
pub fn args() -> Vec<String> {
    let mut a: Vec<String> = ["miri", "test", "--quiet"].iter().map(|s| s.to_string()).collect();
    for p in PACKAGES {
        a.extend(["-p".into(), p.to_string()]);
    }
    // The lguest host's binary is bare-metal only.
    a.extend(["--lib".into(), "--features".into(), FEATURES.into(), "--".into()]);
    for s in SKIPS {
        a.extend(["--skip".into(), s.test.into()]);
    }
    a
}

/// Says what the pass leaves out, and why, before it runs: each reason
/// once, with its tests.
pub fn announce() {
    println!("xtask: Miri leaves out {} tests (xtask/src/miri.rs):", SKIPS.len());
    let mut reasons: Vec<&str> = Vec::new();
    for s in SKIPS {
        if !reasons.contains(&s.why) {
            reasons.push(s.why);
        }
    }
    for why in reasons {
        let tests: Vec<&str> = SKIPS.iter().filter(|s| s.why == why).map(|s| s.test).collect();
        let why: String = why.split_whitespace().collect::<Vec<_>>().join(" ");
        println!("xtask:   {}: {why}", tests.join(", "));
    }
}

/// The `MIRIFLAGS` of the pass.
pub fn flags() -> String {
    FLAGS.iter().map(|f| f.0).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README lists what Miri leaves out: every skip is named there.
    #[test]
    fn readme_names_every_test_miri_leaves_out() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        for s in SKIPS {
            assert!(readme.contains(s.test), "README does not name {}", s.test);
            assert!(!s.why.is_empty());
        }
        for (flag, _) in FLAGS {
            assert!(readme.contains(flag), "README does not name {flag}");
        }
    }
}

//! Every command-line switch the sources look up is in the one table
//! (`paravirt::switches::SWITCHES`), so the early check of the whole line
//! knows it: a lookup the table lacks would make its switch look unknown
//! (a warning) and its bad values pass the check.

use std::path::{Path, PathBuf};

/// The lookups of `CmdLine`, each followed by the switch's name in quotes.
const LOOKUPS: &[&str] = &["cmdline.get(\"", "get_u32(\"", "get_choice(\"", "cmdline.has(\""];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_switch_looked_up_is_in_the_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    rust_files(&root.join("kernel/src"), &mut files);
    rust_files(&root.join("crates"), &mut files);
    let mut found = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // Host tests look up what they put in their own lines.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for lookup in LOOKUPS {
            for (at, _) in code.match_indices(lookup) {
                let rest = &code[at + lookup.len()..];
                let name = &rest[..rest.find('"').unwrap()];
                found += 1;
                assert!(
                    paravirt::switches::find(name).is_some(),
                    "{}: switch {name:?} is looked up but not in paravirt::switches::SWITCHES",
                    f.display()
                );
            }
        }
    }
    assert!(found >= 15, "only {found} lookups found: has the lookup API changed?");
}

//! Replays every corpus input and every regression through the target
//! bodies, so a crash libFuzzer once found stays fixed under plain `cargo
//! test`, without libFuzzer.

use std::path::Path;

#[test]
fn corpus_and_regressions_replay() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    for &(name, body) in fuzz_targets::TARGETS {
        for kind in ["corpus", "regressions"] {
            let Ok(dir) = std::fs::read_dir(fuzz.join(kind).join(name)) else { continue };
            for f in dir {
                let path = f.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                eprintln!("replay {}", path.display());
                body(&data);
                replayed += 1;
            }
        }
    }
    assert!(replayed > 0, "no corpus under {}", fuzz.display());
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    for &(name, _) in fuzz_targets::TARGETS {
        assert!(fuzz.join(format!("{name}.rs")).exists(), "fuzz/fuzz_targets/{name}.rs missing");
    }
}

#[test]
fn seeds_are_in_the_corpus() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let write = std::env::var_os("FUZZ_WRITE_SEEDS").is_some();
    for &(name, body) in fuzz_targets::TARGETS {
        let seeds = fuzz_targets::seeds::seeds(name);
        assert!(!seeds.is_empty(), "no seed for {name}");
        for (file, data) in seeds {
            body(&data);
            let path = corpus.join(name).join(file);
            if write {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &data).unwrap();
            }
            let same = std::fs::read(&path).is_ok_and(|f| f == data);
            assert!(same, "{} differs from its seed (FUZZ_WRITE_SEEDS=1 writes it)", path.display());
        }
    }
}

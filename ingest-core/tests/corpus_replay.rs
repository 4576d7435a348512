//! Replays the fuzz corpus (`ingest-core/fuzz/corpus/<target>/*`) through
//! the same property checks the cargo-fuzz targets run
//! (`ingest_core::fuzzing`), on stable Rust, as part of
//! `cargo test -p ingest-core`. A crash that `scripts/fuzz.sh` saved into a
//! corpus folder fails here until it is fixed.

use ingest_core::fuzzing::{target, TARGETS};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_corpus_input_keeps_the_properties() {
    let root = corpus_root();
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (name, check) in TARGETS {
        let inputs = files(&root.join(name));
        assert!(
            !inputs.is_empty(),
            "no corpus for the fuzz target {name} in {}",
            root.display()
        );
        for file in inputs {
            let data = std::fs::read(&file).unwrap_or_default();
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failures.push(file.display().to_string());
            }
            replayed += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {replayed} inputs broke a property:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_corpus_folder_is_a_target() {
    let folders: Vec<String> = std::fs::read_dir(corpus_root())
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(folders.len(), TARGETS.len(), "{folders:?}");
    for folder in folders {
        assert!(
            target(&folder).is_some(),
            "corpus/{folder} names no fuzz target, so nothing replays it"
        );
    }
}

//! The architecture as the crate graph enforces it (ARCHITECTURE.md § Crates): the
//! engine's normal dependencies hold no I/O crate, and a build without the
//! default features holds no simulator. Read with `cargo tree`, offline, from
//! the lock file.

use std::process::Command;

/// `cargo tree` of `package` (normal dependencies only) with `extra` arguments,
/// one crate name per line.
fn normal_dependencies(package: &str, extra: &[&str]) -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "-p", package])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_engine_depends_on_no_io_crate() {
    let crates = normal_dependencies("dora-engine", &[]);
    assert!(crates.iter().any(|c| c == "dora-domain"), "{crates:?}");
    for io in ["tokio", "rusqlite", "octocrab", "axum", "hyper", "reqwest"] {
        assert!(
            !crates.iter().any(|c| c == io),
            "dora-engine depends on {io}: {crates:?}"
        );
    }
}

#[test]
fn a_build_without_default_features_has_no_simulator() {
    let production = normal_dependencies("dora-collector", &["--no-default-features"]);
    for simulator in ["dora-sim", "apollo-compiler", "rand_distr"] {
        assert!(
            !production.iter().any(|c| c == simulator),
            "a production build holds {simulator}"
        );
    }
    let demo = normal_dependencies("dora-collector", &[]);
    assert!(
        demo.iter().any(|c| c == "dora-sim"),
        "the default build has the demo"
    );
}

#[test]
fn the_simulator_shares_only_the_vocabulary_with_the_collector() {
    let crates = normal_dependencies("dora-sim", &[]);
    assert!(crates.iter().any(|c| c == "dora-domain"), "{crates:?}");
    for collector in ["dora-collector", "dora-engine"] {
        assert!(
            !crates.iter().any(|c| c == collector),
            "dora-sim depends on {collector}"
        );
    }
}

//! The `troika` command line: bad invocations end with a clear message and
//! a non-zero exit, never a panic. Being an integration test of the root
//! package, this also makes `cargo test` build the `troika` binary that the
//! cluster tests in `compat-tests` start.

use std::process::{Command, Output};

fn troika(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_troika"))
        .args(args)
        .env_remove("TROIKA_META")
        .env_remove("TROIKA_DATA")
        .env(
            "TROIKA_SECRET",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        )
        .output()
        .expect("running troika")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Fails with `code` and a message containing `says`, and no panic.
fn fails(out: &Output, code: i32, says: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.contains(says), "expected {says:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn version_and_help_name_the_roles() {
    let out = troika(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("troika {}", env!("CARGO_PKG_VERSION"))
    );
    let help = String::from_utf8_lossy(&troika(&["--help"]).stdout).into_owned();
    for role in ["server", "meta", "chunk", "gateway", "admin"] {
        assert!(help.contains(role), "{role} missing from: {help}");
    }
}

#[test]
fn gen_secret_prints_a_fresh_secret_each_time() {
    let one = troika(&["admin", "gen-secret"]);
    let two = troika(&["admin", "gen-secret"]);
    assert!(one.status.success() && two.status.success());
    let (one, two) = (
        String::from_utf8_lossy(&one.stdout).trim().to_owned(),
        String::from_utf8_lossy(&two.stdout).trim().to_owned(),
    );
    for s in [&one, &two] {
        assert_eq!(s.len(), 64, "{s}");
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()), "{s}");
    }
    assert_ne!(one, two);
}

#[test]
fn usage_errors_exit_2_with_the_reason() {
    fails(&troika(&["nonsense"]), 2, "unrecognized subcommand");
    fails(&troika(&["chunk", "--data", "/tmp/x"]), 2, "--meta");
    let dur = |d: &str| {
        troika(&[
            "admin",
            "--meta",
            "127.0.0.1:1",
            "node",
            "maintenance",
            "1",
            "--for",
            d,
        ])
    };
    fails(&dur("5x"), 2, "unknown unit");
    fails(&dur("99999999999999999d"), 2, "too long");
    fails(&dur("366d"), 2, "at most 365d");
    fails(
        &troika(&["admin", "goal", "set", "/b", "many"]),
        2,
        "invalid value",
    );
}

#[test]
fn admin_without_a_reachable_metastore_says_so() {
    fails(&troika(&["admin", "status"]), 1, "--meta");
    // Port 1 on loopback: nothing listens there.
    let out = troika(&["admin", "--meta", "127.0.0.1:1", "status"]);
    fails(&out, 1, "error: ");
}

#[test]
fn a_data_directory_that_is_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let data = file.to_str().unwrap();
    for role in [
        vec!["meta", "--data", data, "--listen", "127.0.0.1:0", "--init"],
        vec![
            "chunk",
            "--data",
            data,
            "--listen",
            "127.0.0.1:0",
            "--meta",
            "127.0.0.1:1",
        ],
    ] {
        let out = troika(&role);
        assert!(!out.status.success(), "{role:?}");
        fails(&out, 1, data);
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

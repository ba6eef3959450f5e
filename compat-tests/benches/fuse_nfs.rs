//! NFS as a web server's mount sees it: the shell tools of a deployment
//! (`cp` of small files, `tar x`, `ls -lR`, `diff -r`, `rm -rf`, `dd`)
//! through a FUSE NFSv3 client in front of `troika server`:
//! `cargo bench -p compat-tests --bench fuse_nfs`.
//!
//! The client is libnfs's `fuse-nfs`, built beside the project for
//! measuring (not part of it): on PATH or named by TROIKA_FUSE_NFS; the
//! bench says so and stops if it is missing or FUSE is not available.
//! TROIKA_BENCH_OTHER_NFS, an `nfs://` URL of another NFSv3 server (say
//! nfs-ganesha on a local directory), runs the same workloads on it first,
//! as the baseline of the same run; TROIKA_BENCH_OTHER_DIR, a directory of
//! any other mounted file system (say MooseFS through its own mfsmount),
//! does the same in a new directory under it. Sizes: TROIKA_BENCH_FILES (4 KiB files,
//! default 2000), TROIKA_BENCH_TREE (files of the source tree, default
//! 5000), TROIKA_BENCH_MIB (the `dd` file, default 256). Each file has its
//! own content. Troika's server CPU per workload is read from /proc.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn fuse_nfs() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TROIKA_FUSE_NFS") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("fuse-nfs"))
            .find(|p| p.is_file())
    })
}

fn mounted(at: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let at = at.display().to_string();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(at.as_str()))
}

/// A FUSE mount of `url` at `at`, unmounted when dropped.
struct Mount {
    at: PathBuf,
    client: Child,
}

impl Mount {
    fn new(bin: &Path, url: &str, at: &Path) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let client = Command::new(bin)
            .args(["-n", url, "-m"])
            .arg(at)
            .arg("-a")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("fuse-nfs runs");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !mounted(at) {
            assert!(Instant::now() < deadline, "{url} did not mount at {at:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Mount {
            at: at.to_path_buf(),
            client,
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("fusermount").arg("-u").arg(&self.at).status();
        let _ = self.client.kill();
        let _ = self.client.wait();
    }
}

/// A source-like tree of `n` files (sizes 100 B to ~40 KiB, most a few
/// KiB, each its own content) in directories three deep, and its tar.
fn make_tree(root: &Path, n: usize) -> PathBuf {
    let src = root.join("tree");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..n {
        let dir = src.join(format!("crate-{:02}/src/mod-{:02}", i / 250, (i / 25) % 10));
        std::fs::create_dir_all(&dir).unwrap();
        let size = (100.0 * 400f64.powf((next() % 1000) as f64 / 1000.0)) as usize;
        let mut body = format!("// file {i}\n").into_bytes();
        while body.len() < size {
            body.extend_from_slice(
                format!("fn f{}() -> u64 {{ {} }}\n", body.len(), next()).as_bytes(),
            );
        }
        body.truncate(size.max(12));
        std::fs::write(dir.join(format!("file-{i:05}.rs")), body).unwrap();
    }
    let tar = root.join("tree.tar");
    let ok = Command::new("tar")
        .arg("cf")
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .unwrap();
    assert!(ok.success());
    tar
}

struct Run<'a> {
    name: &'a str,
    pid: Option<u32>,
}

impl Run<'_> {
    /// Times `work` and prints its line; `units` items of `unit`.
    fn time(&self, what: &str, units: usize, unit: &str, work: impl FnOnce()) {
        let cpu = self.pid.map(cpu_secs);
        let start = Instant::now();
        work();
        let secs = start.elapsed().as_secs_f64();
        let cpu = match (self.pid, cpu) {
            (Some(pid), Some(before)) => format!(
                "  server CPU {:>6.0} µs/{unit}",
                (cpu_secs(pid) - before) * 1e6 / units as f64
            ),
            _ => String::new(),
        };
        println!(
            "{:<10} {what:<34} {secs:>8.2} s {:>9.0} {unit}/s{cpu}",
            self.name,
            units as f64 / secs
        );
    }
}

fn shell(cmd: &mut Command) {
    let st = cmd.stdout(Stdio::null()).status().expect("command runs");
    assert!(st.success(), "{cmd:?} failed");
}

fn workloads(run: &Run, mnt: &Path, tar: &Path, src: &Path, files: usize, tree: usize, mib: usize) {
    // Troika's root holds buckets: everything goes into one.
    let mnt = &mnt.join("bench");
    std::fs::create_dir(mnt).unwrap();
    let one = mnt.join("small-1");
    std::fs::create_dir(&one).unwrap();
    run.time("4 KiB files, 1 writer", files, "file", || {
        for i in 0..files {
            std::fs::write(one.join(format!("f{i}")), small_file(i)).unwrap();
        }
    });
    let eight = mnt.join("small-8");
    std::fs::create_dir(&eight).unwrap();
    run.time("4 KiB files, 8 writers", files, "file", || {
        std::thread::scope(|s| {
            for w in 0..8 {
                let eight = &eight;
                s.spawn(move || {
                    for i in (w..files).step_by(8) {
                        std::fs::write(eight.join(format!("f{i}")), small_file(files + i)).unwrap();
                    }
                });
            }
        });
    });
    let dst = mnt.join("tree");
    std::fs::create_dir(&dst).unwrap();
    run.time("tar x", tree, "file", || {
        shell(Command::new("tar").arg("xf").arg(tar).arg("-C").arg(&dst))
    });
    run.time("ls -lR", tree, "file", || {
        shell(Command::new("ls").arg("-lR").arg(&dst))
    });
    run.time("diff -r", tree, "file", || {
        shell(Command::new("diff").arg("-r").arg(src).arg(&dst))
    });
    run.time("rm -rf", tree, "file", || {
        shell(Command::new("rm").arg("-rf").arg(&dst))
    });
    let big = mnt.join("big");
    run.time(
        &format!("dd write {mib} MiB, conv=fsync"),
        mib,
        "MiB",
        || {
            shell(
                Command::new("dd")
                    .arg("if=/dev/zero")
                    .arg(format!("of={}", big.display()))
                    .args([
                        "bs=1M",
                        &format!("count={mib}"),
                        "conv=fsync",
                        "status=none",
                    ]),
            )
        },
    );
    // Read from the server, not the client's page cache.
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
    run.time(&format!("dd read {mib} MiB"), mib, "MiB", || {
        shell(
            Command::new("dd")
                .arg(format!("if={}", big.display()))
                .args(["of=/dev/null", "bs=1M", "status=none"]),
        )
    });
}

fn main() {
    let Some(bin) = fuse_nfs() else {
        println!("fuse-nfs not found (PATH or TROIKA_FUSE_NFS): build libnfs's fuse-nfs beside the project to run this bench");
        return;
    };
    if !Path::new("/dev/fuse").exists() {
        println!("/dev/fuse is missing: this bench needs FUSE");
        return;
    }
    let files = env_or("TROIKA_BENCH_FILES", 2000);
    let tree = env_or("TROIKA_BENCH_TREE", 5000);
    let mib = env_or("TROIKA_BENCH_MIB", 256);
    let dir = tempfile::tempdir().unwrap();
    let tar = make_tree(dir.path(), tree);
    let src = dir.path().join("tree");
    println!(
        "fuse-nfs; {files} files of 4 KiB; a tree of {tree} files ({} KiB as tar); {mib} MiB file",
        std::fs::metadata(&tar).unwrap().len() >> 10
    );
    if let Ok(url) = std::env::var("TROIKA_BENCH_OTHER_NFS") {
        let m = Mount::new(&bin, &url, &dir.path().join("mnt-other"));
        let run = Run {
            name: "other",
            pid: None,
        };
        workloads(&run, &m.at, &tar, &src, files, tree, mib);
    }
    if let Ok(other) = std::env::var("TROIKA_BENCH_OTHER_DIR") {
        let at = tempfile::tempdir_in(&other).expect("a directory under TROIKA_BENCH_OTHER_DIR");
        let run = Run {
            name: "other dir",
            pid: None,
        };
        workloads(&run, at.path(), &tar, &src, files, tree, mib);
    }
    let data_dir = dir.path().join("data");
    let server = start_server(&data_dir, dir.path());
    wait_ready(&server.addr);
    let info = read_cluster_json(&data_dir);
    let nfs = info["nfs_endpoint"].as_str().unwrap().to_string();
    let (host, port) = nfs.rsplit_once(':').unwrap();
    let url = format!("nfs://{host}/?version=3&nfsport={port}&mountport={port}");
    let m = Mount::new(&bin, &url, &dir.path().join("mnt-troika"));
    let run = Run {
        name: "troika",
        pid: server.pid(),
    };
    workloads(&run, &m.at, &tar, &src, files, tree, mib);
}

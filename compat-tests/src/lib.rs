//! A harness that runs real `troika` processes on loopback for tests: a meta
//! node, storage nodes and gateways, each in its own directory under a temp
//! dir, on ports the OS picks. Processes are killed (SIGKILL) on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a test waits for a process to come up or become ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `troika` binary of this build profile, built once per test process
/// (a no-op when it is up to date). `TROIKA_BIN` overrides it.
pub fn troika_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("TROIKA_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> → target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable lives in target/<profile>/deps")
            .to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        if release {
            cmd.args([
                "build",
                "--quiet",
                "--release",
                "-p",
                "troika",
                "--bin",
                "troika",
            ]);
        } else {
            // Exactly the units `cargo test --workspace` builds (the root
            // package's integration test makes it build the binary), so
            // after a workspace test run this is a no-op.
            cmd.args(["test", "--quiet", "--workspace", "--no-run"]);
        }
        // Cargo gives a test process its package's variables. A build
        // script that reruns when one changes (ring's, on
        // CARGO_MANIFEST_DIR) would otherwise see a new value here and
        // rebuild it and everything above it.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_BIN_")
                || matches!(
                    &*name,
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "OUT_DIR"
                )
            {
                cmd.env_remove(&*name);
            }
        }
        let status = cmd
            .status()
            .expect("running cargo to build the troika binary");
        assert!(status.success(), "building the troika binary failed");
        profile_dir.join("troika")
    })
    .clone()
}

/// One running `troika` process.
pub struct Proc {
    pub name: String,
    pub addr: String,
    args: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
    /// Whether the process prints its address as a JSON line on stdout.
    announces: bool,
}

impl Proc {
    /// Starts `troika <args>` and waits for it to announce its address.
    pub fn start(name: &str, args: Vec<String>, log_dir: &Path) -> Proc {
        let log = log_dir.join(format!("{name}.log"));
        let mut p = Proc {
            name: name.to_string(),
            addr: String::new(),
            args,
            child: None,
            log,
            announces: true,
        };
        p.spawn();
        p
    }

    /// Starts a process that listens on a known `addr` and prints no
    /// address line (`troika server`); stdout goes to its log too.
    pub fn start_at(name: &str, addr: &str, args: Vec<String>, log_dir: &Path) -> Proc {
        let mut p = Proc {
            name: name.to_string(),
            addr: addr.to_string(),
            args,
            child: None,
            log: log_dir.join(format!("{name}.log")),
            announces: false,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("opening process log");
        let stdout = if self.announces {
            Stdio::piped()
        } else {
            Stdio::from(log.try_clone().expect("cloning log handle"))
        };
        let mut child = Command::new(troika_bin())
            .args(&self.args)
            .env(
                "TROIKA_LOG",
                std::env::var("TROIKA_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .expect("spawning troika");
        if !self.announces {
            self.child = Some(child);
            return;
        }
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the address line");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            panic!(
                "{} did not announce its address (got {line:?}); log:\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        });
        self.addr = v["listen"].as_str().expect("listen address").to_string();
        self.child = Some(child);
    }

    /// SIGKILL, as `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the process again with the same arguments, on the same
    /// address when the arguments name a fixed one.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().map(|s| s.is_none()).unwrap_or(false),
            None => false,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A whole cluster of separate processes.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub secret_file: PathBuf,
    pub secret_hex: String,
    pub metas: Vec<Proc>,
    pub chunks: Vec<Proc>,
    pub gateways: Vec<Proc>,
    /// Each gateway's NFS address (`ip:port`, NFS and MOUNT).
    pub nfs: Vec<String>,
    pub access_key: String,
    pub secret_key: String,
    /// Extra flags every storage node gets.
    chunk_args: Vec<String>,
}

/// Starts storage node `i` (zone `z<i>`, address 127.0.1.<i+1>).
fn start_chunk(dir: &Path, i: usize, meta_list: &str, secret_file: &str, extra: &[String]) -> Proc {
    let host = format!("127.0.1.{}", i + 1);
    let port = free_port(&host);
    let mut args = vec![
        "chunk".into(),
        "--data".into(),
        dir.join(format!("chunk{i}")).display().to_string(),
        "--listen".into(),
        format!("{host}:{port}"),
        "--meta".into(),
        meta_list.to_string(),
        "--zone".into(),
        format!("z{i}"),
        "--secret-file".into(),
        secret_file.to_string(),
    ];
    args.extend(extra.iter().cloned());
    Proc::start(&format!("chunk{i}"), args, dir)
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

impl Cluster {
    /// Starts a meta node, `chunks` storage nodes (each in its own zone and
    /// on its own 127.0.x.y address) and `gateways` gateways, waits until
    /// every gateway is ready, and creates an access key.
    pub fn start(chunks: usize, gateways: usize) -> Cluster {
        Self::start_with(1, chunks, gateways, 10_000)
    }

    /// The same with `metas` meta nodes in one Raft group (the first
    /// initialises it), snapshotting every `snapshot_every` entries.
    pub fn start_with(
        metas: usize,
        chunks: usize,
        gateways: usize,
        snapshot_every: u64,
    ) -> Cluster {
        Self::start_full(metas, chunks, gateways, snapshot_every, &[], &[], &[])
    }

    /// One meta node, with extra command-line flags for the meta node and
    /// the gateways.
    pub fn start_args(
        chunks: usize,
        gateways: usize,
        meta_args: &[&str],
        gateway_args: &[&str],
    ) -> Cluster {
        Self::start_full(1, chunks, gateways, 10_000, meta_args, &[], gateway_args)
    }

    /// One meta node and one gateway, with extra flags for the meta node
    /// and for every storage node (also those added later).
    pub fn start_nodes(chunks: usize, meta_args: &[&str], chunk_args: &[&str]) -> Cluster {
        Self::start_full(1, chunks, 1, 10_000, meta_args, chunk_args, &[])
    }

    fn start_full(
        metas: usize,
        chunks: usize,
        gateways: usize,
        snapshot_every: u64,
        meta_args: &[&str],
        chunk_args: &[&str],
        gateway_args: &[&str],
    ) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("troika-test")
            // TROIKA_TEST_KEEP=1 keeps data and logs for a look afterwards.
            .disable_cleanup(std::env::var_os("TROIKA_TEST_KEEP").is_some())
            .tempdir()
            .expect("temp dir");
        let secret_hex = random_hex(32);
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, &secret_hex).expect("writing secret");
        let sf = secret_file.display().to_string();
        let path = |p: &str| dir.path().join(p).display().to_string();

        // Fixed ports, so a restarted process comes back where the others
        // look for it.
        let meta_addrs: Vec<String> = (0..metas)
            .map(|i| {
                let host = format!("127.0.0.{}", 10 + i);
                format!("{host}:{}", free_port(&host))
            })
            .collect();
        let peers: Vec<String> = meta_addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect();
        let meta_procs: Vec<Proc> = meta_addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let mut args = vec![
                    "meta".to_string(),
                    "--id".into(),
                    (i + 1).to_string(),
                    "--data".into(),
                    path(&format!("meta{i}")),
                    "--listen".into(),
                    addr.clone(),
                    "--peers".into(),
                    peers.join(","),
                    "--snapshot-every".into(),
                    snapshot_every.to_string(),
                    "--secret-file".into(),
                    sf.clone(),
                ];
                if i == 0 {
                    args.push("--init".into());
                }
                // The down timeout the tests were written against, unless
                // a test sets its own.
                if !meta_args.contains(&"--node-down-secs") {
                    args.extend(["--node-down-secs".into(), "10".into()]);
                }
                args.extend(meta_args.iter().map(|a| a.to_string()));
                Proc::start(&format!("meta{i}"), args, dir.path())
            })
            .collect();
        let meta_list = meta_addrs.join(",");
        let chunk_args: Vec<String> = chunk_args.iter().map(|a| a.to_string()).collect();
        let chunk_procs = (0..chunks)
            .map(|i| start_chunk(dir.path(), i, &meta_list, &sf, &chunk_args))
            .collect();
        let mut gw_procs = Vec::new();
        let mut nfs_addrs = Vec::new();
        for i in 0..gateways {
            let host = format!("127.0.2.{}", i + 1);
            let port = free_port(&host);
            let nfs_addr = format!("{host}:{}", free_port(&host));
            let mut args = vec![
                "gateway".to_string(),
                "--meta".into(),
                meta_list.clone(),
                "--s3-listen".into(),
                format!("{host}:{port}"),
                "--nfs-listen".into(),
                nfs_addr.clone(),
                "--secret-file".into(),
                sf.clone(),
            ];
            nfs_addrs.push(nfs_addr);
            args.extend(gateway_args.iter().map(|a| a.to_string()));
            gw_procs.push(Proc::start(&format!("gateway{i}"), args, dir.path()));
        }
        let mut cluster = Cluster {
            dir,
            secret_file,
            secret_hex,
            metas: meta_procs,
            chunks: chunk_procs,
            gateways: gw_procs,
            nfs: nfs_addrs,
            access_key: String::new(),
            secret_key: String::new(),
            chunk_args,
        };
        // Every gateway ready and seeing every storage node: a write placed
        // before a node registered would get fewer copies than the test
        // expects.
        for g in &cluster.gateways {
            wait_live_nodes(&g.addr, chunks);
        }
        let out = cluster.admin(&["key", "create", "--name", "test", "--all-buckets"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("key create output");
        cluster.access_key = v["access_key"].as_str().expect("access key").into();
        cluster.secret_key = v["secret_key"].as_str().expect("secret key").into();
        cluster
    }

    /// Runs `troika admin --meta … <args>` and returns its stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(troika_bin())
            .arg("admin")
            .arg("--meta")
            .arg(self.meta_list())
            .arg("--secret-file")
            .arg(&self.secret_file)
            .args(args)
            .output()
            .expect("running troika admin");
        assert!(
            out.status.success(),
            "troika admin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// The index in `metas` of the node that says it leads, if any.
    pub fn leader(&mut self) -> Option<usize> {
        (0..self.metas.len()).find(|&i| {
            self.metas[i].is_running()
                && http_get(&self.metas[i].addr, "/ready")
                    .is_some_and(|(st, body)| st == 200 && body.contains("\"detail\":\"leader"))
        })
    }

    /// Waits until some meta node leads, and returns its index.
    pub fn wait_leader(&mut self) -> usize {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(i) = self.leader() {
                return i;
            }
            assert!(Instant::now() < deadline, "no meta leader elected");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts another meta node (id `id`, not yet a member) in this
    /// cluster's directory; add it with `troika admin meta add`.
    pub fn start_extra_meta(&mut self, id: u64) -> usize {
        let host = format!("127.0.0.{}", 9 + id);
        let addr = format!("{host}:{}", free_port(&host));
        let args = vec![
            "meta".to_string(),
            "--id".into(),
            id.to_string(),
            "--data".into(),
            self.dir
                .path()
                .join(format!("meta-extra{id}"))
                .display()
                .to_string(),
            "--listen".into(),
            addr,
            "--secret-file".into(),
            self.secret_file.display().to_string(),
        ];
        self.metas.push(Proc::start(
            &format!("meta-extra{id}"),
            args,
            self.dir.path(),
        ));
        self.metas.len() - 1
    }

    /// Starts one more storage node (in a zone of its own); returns its
    /// index in `chunks`.
    pub fn add_chunk(&mut self) -> usize {
        let i = self.chunks.len();
        let sf = self.secret_file.display().to_string();
        let p = start_chunk(self.dir.path(), i, &self.meta_list(), &sf, &self.chunk_args);
        self.chunks.push(p);
        i
    }

    /// `troika admin status` as (node id, state) per storage node, in the
    /// order of the status table.
    pub fn node_states(&self) -> Vec<(String, String)> {
        self.admin(&["status"])
            .lines()
            .skip_while(|l| !l.starts_with("NODE "))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                (cols[0].to_string(), cols[3].to_string())
            })
            .collect()
    }

    /// The storage node id of `chunks[i]`.
    pub fn chunk_id(&self, i: usize) -> String {
        std::fs::read_to_string(self.chunk_dir(i).join("node_id"))
            .expect("node id file")
            .trim()
            .to_string()
    }

    /// Bytes of blob files on storage node `i`.
    pub fn chunk_bytes(&self, i: usize) -> u64 {
        let mut total = 0;
        if let Ok(dirs) = std::fs::read_dir(self.chunk_dir(i).join("blobs")) {
            for d in dirs.flatten() {
                for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
                    total += f.metadata().map(|m| m.len()).unwrap_or(0);
                }
            }
        }
        total
    }

    /// Every meta address, comma-separated, as `--meta` takes them.
    pub fn meta_list(&self) -> String {
        self.metas
            .iter()
            .map(|m| m.addr.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn gateway_url(&self, i: usize) -> String {
        format!("http://{}", self.gateways[i].addr)
    }

    pub fn chunk_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("chunk{i}"))
    }

    /// Where storage node `i` keeps the blob named `hex`.
    pub fn blob_path(&self, i: usize, hex: &str) -> PathBuf {
        self.chunk_dir(i).join("blobs").join(&hex[..2]).join(hex)
    }

    /// How many storage nodes hold a blob file named `hex`.
    pub fn copies_on_disk(&self, hex: &str) -> usize {
        (0..self.chunks.len())
            .filter(|&i| self.blob_path(i, hex).exists())
            .count()
    }

    /// Waits until the metastore sees exactly `n` live storage nodes.
    pub fn wait_live_nodes(&self, n: usize) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let out = self.admin(&["status"]);
            let up = out.lines().filter(|l| l.contains(" up ")).count();
            if up == n {
                return;
            }
            assert!(Instant::now() < deadline, "expected {n} live nodes:\n{out}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Starts `troika server` on `data_dir` with its S3 endpoint on a free
/// loopback port; logs go to `log_dir`. Returns the process (its `addr` is
/// the S3 endpoint's).
pub fn start_server(data_dir: &Path, log_dir: &Path) -> Proc {
    let addr = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    Proc::start_at(
        "server",
        &addr,
        vec![
            "server".into(),
            "--data".into(),
            data_dir.display().to_string(),
            "--s3-listen".into(),
            addr.clone(),
            "--nfs-listen".into(),
            format!("127.0.0.1:{}", free_port("127.0.0.1")),
        ],
        log_dir,
    )
}

/// Waits for `troika server`'s `cluster.json` in `data_dir` and reads it.
pub fn read_cluster_json(data_dir: &Path) -> serde_json::Value {
    let path = data_dir.join("cluster.json");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "no {} appeared", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port that is free on `host` right now.
pub fn free_port(host: &str) -> u16 {
    let l = std::net::TcpListener::bind((host, 0)).expect("binding a probe port");
    l.local_addr().expect("probe address").port()
}

/// Polls `GET /ready` until it answers 200.
pub fn wait_ready(addr: &str) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(200) = http_get(addr, "/ready").map(|(s, _)| s) {
            return;
        }
        assert!(Instant::now() < deadline, "{addr} did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls the gateway at `addr` until it is ready and sees `n` live storage
/// nodes: a write placed before a node registered (or while its heartbeat
/// is late) gets fewer copies than a test may expect.
pub fn wait_live_nodes(addr: &str, n: usize) {
    wait_ready(addr);
    let want = format!("{n} writable storage nodes");
    let deadline = Instant::now() + START_TIMEOUT;
    while !http_get(addr, "/ready").is_some_and(|(_, b)| b.contains(&want)) {
        assert!(Instant::now() < deadline, "{addr} never saw {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A minimal HTTP/1.1 GET: (status, body). `None` if nothing answered.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let sock: SocketAddr = addr.parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

impl Drop for Cluster {
    /// A failing test shows the tail of every process's log.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let procs = self.metas.iter().chain(&self.chunks).chain(&self.gateways);
        for p in procs {
            let log = p.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- {} ({}) log tail ---", p.name, p.addr);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// User plus system CPU seconds process `pid` has used (from /proc).
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15, so 11 and 12 after the state.
    (ticks(11) + ticks(12)) / 100.0
}

/// A benchmark's size or switch from the environment, else `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The mean time of a one-byte write and its `fdatasync` in `dir`, over
/// two seconds: the unit a metadata commit costs on this disk.
pub fn small_fsync_time(dir: &Path) -> Duration {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).unwrap();
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(2) {
        f.write_all(b"x").unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    let each = start.elapsed() / n;
    std::fs::remove_file(&path).unwrap();
    each
}

/// The sum of the samples of `/metrics` at `addr` whose name starts with
/// `name` (every label set of it); 0 if the node does not answer.
pub fn metric_sum(addr: &str, name: &str) -> u64 {
    let Some((200, body)) = http_get(addr, "/metrics") else {
        return 0;
    };
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Throughput in MiB/s.
pub fn mib_per_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / secs
}

/// The disk baseline benchmarks compare against, in MiB/s: fsynced
/// sequential writes (4 MiB, then fdatasync) of `bytes`; the same from 3
/// writers at once (three storage nodes on one disk); and cached reads.
pub fn disk_baseline(dir: &Path, bytes: usize) -> (f64, f64, f64) {
    use std::io::{Read, Write};
    const BLOCK: usize = 4 << 20;
    let path = dir.join("baseline.bin");
    let block: Vec<u8> = (0..BLOCK).map(|i| (i * 7 + i / 4096) as u8).collect();
    let start = Instant::now();
    {
        let mut f = std::fs::File::create(&path).unwrap();
        for _ in 0..bytes / BLOCK {
            f.write_all(&block).unwrap();
            f.sync_data().unwrap();
        }
    }
    let write = mib_per_s(bytes, start.elapsed().as_secs_f64());
    std::fs::remove_file(&path).unwrap();
    let start = Instant::now();
    std::thread::scope(|s| {
        for w in 0..3 {
            let path = dir.join(format!("baseline{w}.bin"));
            let block = &block;
            s.spawn(move || {
                let mut f = std::fs::File::create(&path).unwrap();
                for _ in 0..bytes / BLOCK / 3 {
                    f.write_all(block).unwrap();
                    f.sync_data().unwrap();
                }
                std::fs::remove_file(&path).unwrap();
            });
        }
    });
    let write3 = mib_per_s(bytes / BLOCK / 3 * 3 * BLOCK, start.elapsed().as_secs_f64());
    {
        let mut f = std::fs::File::create(&path).unwrap();
        for _ in 0..bytes / BLOCK {
            f.write_all(&block).unwrap();
        }
        f.sync_all().unwrap();
    }
    // Reads come from the page cache, as Troika's reads of fresh data do.
    let start = Instant::now();
    let mut f = std::fs::File::open(&path).unwrap();
    let mut buf = vec![0u8; BLOCK];
    while f.read(&mut buf).unwrap() > 0 {}
    let read = mib_per_s(bytes, start.elapsed().as_secs_f64());
    std::fs::remove_file(&path).unwrap();
    (write, write3, read)
}

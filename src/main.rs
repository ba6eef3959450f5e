//! The `troika` binary: parses the command line and starts roles. All the
//! behaviour lives in the service crates.

mod admin;
mod allinone;
mod config;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "troika",
    version,
    about = "Shared storage for web clusters: S3 and NFSv3 over one replicated namespace"
)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(clap::Args, Clone)]
pub struct SecretArgs {
    /// File holding the cluster secret (64 hex characters). The secret can
    /// also be given directly in TROIKA_SECRET.
    #[arg(long, env = "TROIKA_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Role {
    /// All in one process: a meta node, three storage nodes and a gateway,
    /// on loopback. The default way to run Troika on one machine.
    Server(allinone::ServerArgs),
    /// A metadata node: one member of the Raft group holding the namespace.
    Meta {
        #[arg(long, env = "TROIKA_DATA")]
        data: PathBuf,
        #[arg(long, default_value = "127.0.0.1:7100")]
        listen: SocketAddr,
        /// This node's id in the group (a positive number, unique).
        #[arg(long, default_value_t = 1)]
        id: u64,
        /// Address the other nodes reach this one at (default: --listen).
        #[arg(long)]
        advertise: Option<String>,
        /// The group's first members as ID=ADDR, comma-separated, used with
        /// --init (default: this node alone).
        #[arg(long, value_delimiter = ',')]
        peers: Vec<String>,
        /// Start a new group with --peers, unless this node already has state.
        /// Give it to exactly one node, once.
        #[arg(long)]
        init: bool,
        /// Checkpoint the state machine and compact the log every N entries.
        #[arg(long, default_value_t = 10_000)]
        snapshot_every: u64,
        /// Memory for the database's page cache, in MiB. Reads of pages
        /// beyond it go to the file (the OS page cache).
        #[arg(long, default_value_t = 256)]
        cache_mib: usize,
        /// Abort multipart uploads not completed within this many seconds.
        #[arg(long, default_value_t = 7 * 24 * 3600)]
        upload_expiry_secs: u64,
        /// Delete a blob's copies once it has been unreferenced this long
        /// (seconds); longer than any request takes.
        #[arg(long, default_value_t = 600)]
        gc_grace_secs: u64,
        /// A storage node unheard for this many seconds is down, and its
        /// copies are remade elsewhere (unless it is in maintenance).
        #[arg(long, default_value_t = 30)]
        node_down_secs: u64,
        /// Delete blob files no record names once they are this old
        /// (seconds): longer than any write takes from copy to commit.
        #[arg(long, default_value_t = 3600)]
        orphan_age_secs: u64,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// A storage node.
    Chunk {
        #[arg(long, env = "TROIKA_DATA")]
        data: PathBuf,
        #[arg(long, default_value = "127.0.0.1:7200")]
        listen: SocketAddr,
        /// Metadata node addresses, comma-separated.
        #[arg(long, env = "TROIKA_META", value_delimiter = ',', required = true)]
        meta: Vec<String>,
        /// Failure domain: copies of a blob go to distinct zones first.
        #[arg(long, default_value = "default")]
        zone: String,
        /// Address other nodes reach this one at (default: the listen address).
        #[arg(long)]
        advertise: Option<String>,
        /// Bandwidth this node may spend copying blobs to repair lost
        /// copies (MiB/s), so client traffic keeps priority.
        #[arg(long, default_value_t = 100)]
        repair_mib_per_s: u64,
        /// Bandwidth for moving blobs onto this node to even out fill
        /// (MiB/s); lower than repair so client traffic keeps priority.
        #[arg(long, default_value_t = 50)]
        rebalance_mib_per_s: u64,
        /// Rate at which the scrubber re-reads and verifies this node's
        /// blobs (MiB/s); 0 turns scrubbing off.
        #[arg(long, default_value_t = 16)]
        scrub_mib_per_s: u64,
        /// Bytes this node may hold (MiB); by default its file system's size.
        #[arg(long)]
        capacity_mib: Option<u64>,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// A stateless gateway: S3, and NFSv3 with --nfs-listen.
    Gateway {
        /// Metadata node addresses, comma-separated.
        #[arg(long, env = "TROIKA_META", value_delimiter = ',', required = true)]
        meta: Vec<String>,
        #[arg(long, default_value = "127.0.0.1:9000")]
        s3_listen: SocketAddr,
        /// Base domain for virtual-hosted-style requests
        /// (`BUCKET.DOMAIN/KEY`); path style always works.
        #[arg(long, env = "TROIKA_S3_DOMAIN")]
        s3_domain: Option<String>,
        #[command(flatten)]
        nfs: config::NfsArgs,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// Cluster administration.
    Admin(admin::AdminArgs),
}

fn main() -> std::process::ExitCode {
    match start() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The chain of causes on one line, and no backtrace even when
            // RUST_BACKTRACE is set: these are operator errors, not bugs.
            let mut text = e.to_string();
            for cause in e.chain().skip(1).map(|c| c.to_string()) {
                // Error types that print their source already.
                if !text.contains(&cause) {
                    text = format!("{text}: {cause}");
                }
            }
            eprintln!("error: {text}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TROIKA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli.role))
}

async fn run(role: Role) -> anyhow::Result<()> {
    match role {
        Role::Server(args) => allinone::run(args).await,
        Role::Meta {
            data,
            listen,
            id,
            advertise,
            peers,
            init,
            snapshot_every,
            cache_mib,
            upload_expiry_secs,
            gc_grace_secs,
            node_down_secs,
            orphan_age_secs,
            secret,
        } => {
            let secret = config::load_secret(&secret)?;
            let advertise = advertise.unwrap_or_else(|| listen.to_string());
            let mut peers = config::parse_peers(&peers)?;
            if peers.is_empty() {
                peers.insert(id, advertise.clone());
            }
            let listener = config::bind(listen, "meta").await?;
            metastore::server::run(
                listener,
                metastore::server::MetaConfig {
                    data_dir: data,
                    secret,
                    id,
                    advertise,
                    peers,
                    init,
                    snapshot_every,
                    cache_bytes: cache_mib << 20,
                    upload_expiry: std::time::Duration::from_secs(upload_expiry_secs),
                    gc_grace: std::time::Duration::from_secs(gc_grace_secs),
                    node_down: std::time::Duration::from_secs(node_down_secs.max(1)),
                    orphan_age: std::time::Duration::from_secs(orphan_age_secs),
                },
                config::shutdown_signal(),
            )
            .await
            .context("meta node")
        }
        Role::Chunk {
            data,
            listen,
            meta,
            zone,
            advertise,
            repair_mib_per_s,
            rebalance_mib_per_s,
            scrub_mib_per_s,
            capacity_mib,
            secret,
        } => {
            let secret = config::load_secret(&secret)?;
            let listener = config::bind(listen, "chunk").await?;
            let context = format!("storage node with data directory {}", data.display());
            chunkstore::server::run(
                listener,
                chunkstore::server::ChunkConfig {
                    data_dir: data,
                    secret,
                    meta,
                    zone,
                    advertise,
                    repair_bytes_per_s: repair_mib_per_s << 20,
                    rebalance_bytes_per_s: rebalance_mib_per_s << 20,
                    scrub_bytes_per_s: scrub_mib_per_s << 20,
                    capacity_bytes: capacity_mib.map(|m| m << 20),
                },
                config::shutdown_signal(),
            )
            .await
            .context(context)
        }
        Role::Gateway {
            meta,
            s3_listen,
            s3_domain,
            nfs,
            secret,
        } => {
            let secret = config::load_secret(&secret)?;
            let listener = config::bind(s3_listen, "gateway").await?;
            gateway::run(
                listener,
                gateway::GatewayConfig {
                    meta,
                    secret,
                    s3_domain,
                    nfs: nfs.config(),
                },
                config::shutdown_signal(),
            )
            .await
            .context("gateway")
        }
        Role::Admin(args) => admin::run(args).await,
    }
}

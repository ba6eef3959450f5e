//! `troika admin`: cluster administration against the metastore.

use anyhow::Context;
use clap::Subcommand;
use metastore::api::Command;
use metastore::MetaClient;
use troika_rpc::{ClusterSecret, RpcClient};

use crate::SecretArgs;

#[derive(clap::Args)]
pub struct AdminArgs {
    /// Metadata node addresses, comma-separated.
    #[arg(long, env = "TROIKA_META", value_delimiter = ',')]
    meta: Vec<String>,
    #[command(flatten)]
    secret: SecretArgs,
    #[command(subcommand)]
    cmd: AdminCmd,
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Print a new random cluster secret (64 hex characters).
    GenSecret,
    /// Storage nodes and namespace statistics.
    Status,
    /// Access keys.
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
    },
    /// Members of the metadata group.
    Meta {
        #[command(subcommand)]
        cmd: MetaCmd,
    },
}

#[derive(Subcommand)]
enum MetaCmd {
    /// Add a meta node (already started, without --init) as ID=ADDR: it
    /// catches up as a learner, then becomes a voter.
    Add { member: String },
    /// Remove a meta node from the group.
    Remove { id: u64 },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Create an access key and print it as JSON.
    Create {
        #[arg(long, default_value = "")]
        name: String,
    },
}

fn client(args: &AdminArgs) -> anyhow::Result<MetaClient> {
    anyhow::ensure!(!args.meta.is_empty(), "--meta (or TROIKA_META) is required");
    let secret = crate::config::load_secret(&args.secret)?;
    Ok(MetaClient::new(RpcClient::new(secret), args.meta.clone()))
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    match &args.cmd {
        AdminCmd::GenSecret => {
            println!("{}", ClusterSecret::generate().to_hex());
        }
        AdminCmd::Status => {
            let meta = client(&args)?;
            println!(
                "{:<6} {:<22} {:<10} {:<7} {:>6} {:>10} {:>10}",
                "META", "ADDRESS", "STATE", "LEADER", "TERM", "LAST LOG", "APPLIED"
            );
            let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
            for addr in meta.addrs() {
                match meta.raft_status_of(addr).await {
                    Ok(s) => println!(
                        "{:<6} {:<22} {:<10} {:<7} {:>6} {:>10} {:>10}",
                        s.id,
                        addr,
                        s.state,
                        opt(s.leader),
                        s.term,
                        opt(s.last_log_index),
                        opt(s.applied_index)
                    ),
                    Err(e) => println!("{:<6} {:<22} unreachable: {e}", "?", addr),
                }
            }
            println!();
            let nodes = meta.list_nodes().await.context("listing nodes")?;
            let stats = meta.stats().await.context("reading statistics")?;
            println!(
                "{:<20} {:<22} {:<10} {:<6} {:>14} {:>14} {:>10}",
                "NODE", "ADDRESS", "ZONE", "STATE", "CAPACITY", "FREE", "BLOBS"
            );
            for n in &nodes {
                println!(
                    "{:<20} {:<22} {:<10} {:<6} {:>14} {:>14} {:>10}",
                    n.id,
                    n.addr,
                    n.zone,
                    if n.alive { "up" } else { "down" },
                    n.capacity_bytes,
                    n.free_bytes,
                    n.blob_count
                );
            }
            println!("\n{}", serde_json::to_string_pretty(&stats)?);
        }
        AdminCmd::Key {
            cmd: KeyCmd::Create { name },
        } => {
            let meta = client(&args)?;
            let access_key = format!("TK{}", hex::encode_upper(rand::random::<[u8; 9]>()));
            let secret_key = hex::encode(rand::random::<[u8; 20]>());
            meta.command(&Command::CreateKey {
                access_key: access_key.clone(),
                secret_key: secret_key.clone(),
                name: name.clone(),
                now: gateway::namespace::now_ns(),
            })
            .await?;
            println!(
                "{}",
                serde_json::json!({ "access_key": access_key, "secret_key": secret_key })
            );
        }
        AdminCmd::Meta { cmd } => {
            let meta = client(&args)?;
            let change = match cmd {
                MetaCmd::Add { member } => {
                    let peers = crate::config::parse_peers(std::slice::from_ref(member))?;
                    let (id, addr) = peers.into_iter().next().context("ID=ADDR")?;
                    metastore::server::MemberChange::Add { id, addr }
                }
                MetaCmd::Remove { id } => metastore::server::MemberChange::Remove { id: *id },
            };
            let status = meta.change_members(&change).await?;
            println!("{}", serde_json::to_string_pretty(&status)?);
        }
    }
    Ok(())
}

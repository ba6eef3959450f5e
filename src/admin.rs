//! `troika admin`: cluster administration against the metastore.

use anyhow::Context;
use clap::Subcommand;
use metastore::api::{Command, Grant, Query, Reply};
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
    /// Create an access key and print it as JSON. It can use the buckets it
    /// creates and those it is allowed (`key allow`).
    Create {
        #[arg(long, default_value = "")]
        name: String,
        /// The key may use every bucket (an administrator's key).
        #[arg(long)]
        all_buckets: bool,
    },
    /// List access keys and their bucket rights (secrets are not shown).
    List,
    /// Delete an access key.
    Delete { access_key: String },
    /// Set what a key may do in a bucket: --read, --write, both, or neither
    /// to revoke.
    Allow {
        access_key: String,
        #[arg(long)]
        bucket: String,
        #[arg(long)]
        read: bool,
        #[arg(long)]
        write: bool,
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
        AdminCmd::Key { cmd: KeyCmd::List } => {
            let meta = client(&args)?;
            let Reply::Keys(keys) = meta.query(&Query::ListKeys).await? else {
                anyhow::bail!("unexpected reply to a key listing");
            };
            println!("{:<22} {:<16} BUCKETS", "ACCESS KEY", "NAME");
            for k in keys {
                let buckets = if k.all_buckets {
                    "* (all, read+write)".to_string()
                } else {
                    k.grants
                        .iter()
                        .map(|(b, g)| {
                            let rights = match (g.read, g.write) {
                                (true, true) => "rw",
                                (true, false) => "r",
                                _ => "w",
                            };
                            format!("{b}:{rights}")
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                println!("{:<22} {:<16} {buckets}", k.access_key, k.name);
            }
        }
        AdminCmd::Key {
            cmd: KeyCmd::Delete { access_key },
        } => {
            client(&args)?
                .command(&Command::DeleteKey {
                    access_key: access_key.clone(),
                })
                .await?;
            println!("deleted {access_key}");
        }
        AdminCmd::Key {
            cmd:
                KeyCmd::Allow {
                    access_key,
                    bucket,
                    read,
                    write,
                },
        } => {
            client(&args)?
                .command(&Command::AllowKey {
                    access_key: access_key.clone(),
                    bucket: bucket.clone(),
                    grant: Grant {
                        read: *read,
                        write: *write,
                    },
                })
                .await?;
            println!("{access_key} on {bucket}: read={read} write={write}");
        }
        AdminCmd::Key {
            cmd: KeyCmd::Create { name, all_buckets },
        } => {
            let meta = client(&args)?;
            let access_key = format!("TK{}", hex::encode_upper(rand::random::<[u8; 9]>()));
            let secret_key = hex::encode(rand::random::<[u8; 20]>());
            meta.command(&Command::CreateKey {
                access_key: access_key.clone(),
                secret_key: secret_key.clone(),
                name: name.clone(),
                all_buckets: *all_buckets,
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

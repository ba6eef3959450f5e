//! `troika admin`: cluster administration against the metastore.

use anyhow::Context;
use clap::Subcommand;
use metastore::api::{Command, Grant, NodeMode, Query, Reply};
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
    /// Metadata group, storage nodes with their state, blobs per health
    /// class, repair/rebalance/drain/scrub progress, namespace statistics.
    Status {
        /// The storage part as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
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
    /// Storage nodes: maintenance, draining, removal.
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
    },
    /// Replication goals (copies per blob) of buckets and directories.
    Goal {
        #[command(subcommand)]
        cmd: GoalCmd,
    },
}

#[derive(Subcommand)]
enum NodeCmd {
    /// Put a node in maintenance for a while: while it lasts, the node's
    /// absence starts no repair and it takes no new copies.
    Maintenance {
        id: u64,
        /// How long (e.g. 30m, 2h, 45s).
        #[arg(long = "for", default_value = "1h", value_parser = parse_duration)]
        duration: std::time::Duration,
    },
    /// Move every copy off a node; once it holds none, remove it.
    Drain { id: u64 },
    /// Take a node out of the cluster. Refused while metadata still places
    /// copies on it, unless --force (they then count as lost and are
    /// remade from the others).
    Remove {
        id: u64,
        #[arg(long)]
        force: bool,
    },
    /// Return a node to normal service (ends maintenance or draining).
    Activate { id: u64 },
}

#[derive(Subcommand)]
enum GoalCmd {
    /// Set the goal of PATH (`/bucket` or `/bucket/dir`; `/` for new
    /// buckets) and everything below it: 1 to 5 copies.
    Set { path: String, goal: u8 },
    /// Show the goal of PATH.
    Get { path: String },
}

/// The longest maintenance window: a node away longer should be drained.
const MAX_DURATION_SECS: u64 = 365 * 86400;

/// Parses `90`, `45s`, `30m`, `2h` or `1d`, up to [`MAX_DURATION_SECS`].
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let n: u64 = num.parse().map_err(|_| format!("not a duration: {text}"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("unknown unit in {text} (s, m, h, d)")),
    };
    match n.checked_mul(scale) {
        Some(secs) if secs <= MAX_DURATION_SECS => Ok(std::time::Duration::from_secs(secs)),
        _ => Err(format!("too long: {text} (at most 365d)")),
    }
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn activity_line(name: &str, a: &metastore::api::Activity) -> String {
    let eta = a
        .eta_secs
        .map(|s| format!(", ETA {}m{:02}s", s / 60, s % 60))
        .unwrap_or_default();
    format!(
        "{name:<10} {} pending at {}/s{eta}",
        human(a.pending_bytes),
        human(a.bytes_per_s)
    )
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
        AdminCmd::Status { json: true } => {
            let st = client(&args)?.cluster_status().await?;
            println!("{}", serde_json::to_string_pretty(&st)?);
        }
        AdminCmd::Status { json: false } => {
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
            let st = meta
                .cluster_status()
                .await
                .context("reading the storage status")?;
            let stats = meta.stats().await.context("reading statistics")?;
            println!(
                "{:<20} {:<22} {:<8} {:<26} {:>10} {:>10} {:>6} {:>8} {:>10} {:>8}",
                "NODE",
                "ADDRESS",
                "ZONE",
                "STATE",
                "CAPACITY",
                "USED",
                "FILL",
                "COPIES",
                "SCRUB",
                "BAD"
            );
            for n in &st.nodes {
                // Share of the current pass done / passes finished.
                let scrub = match (n.scrub.checked_bytes.min(n.scrub.pass_bytes) * 100)
                    .checked_div(n.scrub.pass_bytes)
                {
                    Some(pct) => format!("{pct}%/{}", n.scrub.passes),
                    None => format!("-/{}", n.scrub.passes),
                };
                println!(
                    "{:<20} {:<22} {:<8} {:<26} {:>10} {:>10} {:>5.1}% {:>8} {:>10} {:>8}",
                    n.id,
                    n.addr,
                    n.zone,
                    n.state,
                    human(n.capacity_bytes),
                    human(n.used_bytes),
                    n.fill() * 100.0,
                    n.placed.blobs,
                    scrub,
                    n.scrub.bad_found
                );
            }
            let h = &st.health;
            println!("\nBLOBS      COUNT      BYTES");
            for (name, c) in [
                ("ok", h.ok),
                ("over goal", h.over_goal),
                ("under goal", h.under_goal),
                ("one copy", h.one_copy),
                ("lost", h.lost),
            ] {
                println!("{name:<10} {:>6} {:>10}", c.blobs, human(c.bytes));
            }
            println!();
            println!("{}", activity_line("repair", &st.repair));
            println!("{}", activity_line("rebalance", &st.rebalance));
            println!("{}", activity_line("drain", &st.drain));
            println!("{}", activity_line("scrub", &st.scrub));
            println!("\n{}", serde_json::to_string_pretty(&stats)?);
        }
        AdminCmd::Node { cmd } => {
            let meta = client(&args)?;
            let (id, mode) = match cmd {
                NodeCmd::Maintenance { id, duration } => (
                    *id,
                    NodeMode::Maintenance {
                        until: gateway::namespace::now_ns()
                            .saturating_add(duration.as_nanos() as u64),
                    },
                ),
                NodeCmd::Drain { id } => (*id, NodeMode::Draining),
                NodeCmd::Activate { id } => (*id, NodeMode::Active),
                NodeCmd::Remove { id, force } => {
                    let st = meta.cluster_status().await?;
                    let node = st
                        .nodes
                        .iter()
                        .find(|n| n.id == *id)
                        .with_context(|| format!("no storage node {id}"))?;
                    anyhow::ensure!(
                        *force || node.placed.blobs == 0,
                        "node {id} still holds {} copies: drain it first (or --force)",
                        node.placed.blobs
                    );
                    (*id, NodeMode::Removed)
                }
            };
            meta.command(&Command::SetNodeMode { id, mode }).await?;
            println!("node {id}: {mode:?}");
        }
        AdminCmd::Goal {
            cmd: GoalCmd::Set { path, goal },
        } => {
            client(&args)?
                .command(&Command::SetGoal {
                    path: path.clone(),
                    goal: *goal,
                })
                .await?;
            println!("{path}: goal {goal}");
        }
        AdminCmd::Goal {
            cmd: GoalCmd::Get { path },
        } => {
            let Reply::Goal(goal) = client(&args)?
                .query(&Query::GetGoal { path: path.clone() })
                .await?
            else {
                anyhow::bail!("unexpected reply to a goal query");
            };
            println!("{path}: goal {goal}");
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

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
    }
    Ok(())
}

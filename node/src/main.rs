//! `weft`: generate keys and committees, and run an authority.

mod generate;
mod preconf;
mod rollup;
mod run;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "weft",
    version,
    about = "A DAG-based BFT transaction sequencer for rollups"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Committee files.
    Committee {
        #[command(subcommand)]
        command: CommitteeCommand,
    },
    /// Run an authority.
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Run one of an authority's workers as its own process.
    Worker {
        #[command(subcommand)]
        command: WorkerCommand,
    },
    /// The reference rollup node.
    Rollup {
        #[command(subcommand)]
        command: RollupCommand,
    },
    /// The L1 inbox.
    L1 {
        #[command(subcommand)]
        command: L1Command,
    },
    /// Pre-confirmations (`weft_getPreconfirmation`).
    Preconf {
        #[command(subcommand)]
        command: PreconfCommand,
    },
}

#[derive(Subcommand)]
enum PreconfCommand {
    /// Checks pre-confirmations offline against the committee file alone: the Merkle proof
    /// to the attested root, every signature, quorum stake and the committee. Reads one
    /// JSON object, an array, or one per line (JSON-RPC responses are unwrapped); prints a
    /// verdict for each; exit status 1 if any does not verify.
    Verify {
        #[arg(long)]
        committee: PathBuf,
        /// A file, or `-` for stdin.
        #[arg(default_value = "-")]
        input: PathBuf,
    },
}

#[derive(Subcommand)]
enum L1Command {
    /// Walks the inbox on L1, decompresses every batch and checks the hash chain; prints the
    /// batch and transaction counts and the first inconsistency (exit status 1 if there is one).
    Verify {
        /// JSON-RPC endpoint of the L1 node.
        #[arg(long)]
        rpc: String,
        /// Address of the inbox contract.
        #[arg(long)]
        inbox: String,
        /// Also check every batch's finality certificate against this committee file (and
        /// that the inbox was deployed for it).
        #[arg(long)]
        committee: Option<PathBuf>,
    },
    /// Deploys an inbox that accepts only batches certified by this committee; prints its
    /// address.
    Deploy {
        /// JSON-RPC endpoint of the L1 node.
        #[arg(long)]
        rpc: String,
        #[arg(long)]
        committee: PathBuf,
        /// File holding the deployer's key (hex secp256k1 private key); it pays the gas.
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(Subcommand)]
enum RollupCommand {
    /// Executes one chain's sub-DAGs, one L2 block each, on an execution client (anvil with
    /// `--no-mining --order fifo`), from the ordered stream or from the L1 inbox alone, until
    /// SIGINT or SIGTERM. Resumes at the execution client's head.
    Run(rollup::RollupRunArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Writes a new key file (protocol and network ed25519 keys) readable only by its owner.
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum CommitteeCommand {
    /// Writes keys, a committee and default parameters for a cluster on 127.0.0.1.
    New {
        #[arg(long, default_value_t = 4)]
        authorities: usize,
        #[arg(long, default_value_t = 1)]
        workers: u32,
        #[arg(long, default_value_t = 3000)]
        base_port: u16,
        /// One IP address per authority, comma-separated (default: all on 127.0.0.1). An
        /// authority alone on its host listens on the ports from --base-port.
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<std::net::IpAddr>,
        #[arg(long)]
        out_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Runs an authority's primary, consensus and (unless --external-workers) its workers
    /// until SIGINT or SIGTERM.
    Run(run::NodeRunArgs),
}

#[derive(Subcommand)]
enum WorkerCommand {
    /// Runs worker --id of an authority until SIGINT or SIGTERM (with `node run
    /// --external-workers` for the primary).
    Run(run::WorkerRunArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Keys {
            command: KeysCommand::Generate { out },
        } => generate::keys(&out),
        Command::Committee {
            command:
                CommitteeCommand::New {
                    authorities,
                    workers,
                    base_port,
                    hosts,
                    out_dir,
                },
        } => generate::committee(authorities, workers, base_port, &hosts, &out_dir),
        Command::Node {
            command: NodeCommand::Run(args),
        } => run::node(args),
        Command::Worker {
            command: WorkerCommand::Run(args),
        } => run::worker(args),
        Command::Rollup {
            command: RollupCommand::Run(args),
        } => rollup::run(args),
        Command::L1 {
            command:
                L1Command::Verify {
                    rpc,
                    inbox,
                    committee,
                },
        } => run::verify_l1(&rpc, &inbox, committee.as_deref()),
        Command::L1 {
            command:
                L1Command::Deploy {
                    rpc,
                    committee,
                    key,
                },
        } => run::deploy_l1(&rpc, &committee, &key),
        Command::Preconf {
            command: PreconfCommand::Verify { committee, input },
        } => preconf::verify(&committee, &input),
    }
}

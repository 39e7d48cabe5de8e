//! `runnel users`: SCRAM users in a broker's data directory, for the first start of a secured broker
//! (before any client can log in to add them with kafka-configs.sh). Writes the same credential store the
//! broker uses: salted hashes only. The password comes from stdin (never an argument, which `ps` would show).

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::outln;
use crate::security::credentials::CredentialStore;
use crate::security::sasl::{ScramCredential, ScramMechanism};

#[derive(Args, Debug)]
pub struct UsersArgs {
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Args, Debug)]
pub struct DataDir {
    /// The broker's data directory (`log.dirs`); the broker should be stopped while it is changed.
    #[arg(
        long,
        env = "RUNNEL_DATA_DIR",
        default_value = "./runnel-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Add a user or change its password (for one mechanism; repeat for the other).
    Set {
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512 (PLAIN logins are checked against either).
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        /// Read the password from stdin (the first line). Required: passwords never go on the command line.
        #[arg(long = "password-stdin", required = true)]
        password_stdin: bool,
        /// PBKDF2 iterations (Kafka's default 4096; at most 16384).
        #[arg(long, default_value_t = 4096)]
        iterations: u32,
        #[command(flatten)]
        dir: DataDir,
    },
    /// List users and their mechanisms.
    List {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Remove a user's credential for one mechanism, or for all of them.
    Delete {
        name: String,
        /// Only this mechanism (default: every mechanism the user has).
        #[arg(long)]
        mechanism: Option<String>,
        #[command(flatten)]
        dir: DataDir,
    },
}

fn mechanism(name: &str) -> anyhow::Result<ScramMechanism> {
    ScramMechanism::from_name(&name.to_ascii_uppercase())
        .with_context(|| format!("unknown mechanism {name}: use SCRAM-SHA-256 or SCRAM-SHA-512"))
}

fn open(dir: &DataDir) -> anyhow::Result<CredentialStore> {
    std::fs::create_dir_all(&dir.data_dir)
        .with_context(|| format!("cannot create {}", dir.data_dir.display()))?;
    Ok(CredentialStore::open(&dir.data_dir)?)
}

pub fn run(args: UsersArgs) -> anyhow::Result<()> {
    match args.command {
        UsersCommand::Set {
            name,
            mechanism: mech,
            password_stdin: _,
            iterations,
            dir,
        } => {
            let mech = mechanism(&mech)?;
            anyhow::ensure!(!name.is_empty(), "the user name must not be empty");
            anyhow::ensure!(
                (mech.min_iterations()..=16384).contains(&iterations),
                "iterations must be between {} and 16384",
                mech.min_iterations()
            );
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .context("cannot read the password from stdin")?;
            let password = input.lines().next().unwrap_or_default();
            anyhow::ensure!(!password.is_empty(), "empty password on stdin");
            let cred = ScramCredential::from_password(mech, password.as_bytes(), iterations);
            open(&dir)?.apply(vec![(name.clone(), mech, Some(cred))])?;
            outln!("set {} credential for user {name}", mech.name())?;
        }
        UsersCommand::List { dir } => {
            for (user, mechs) in open(&dir)?.list() {
                let mechs: Vec<String> = mechs
                    .iter()
                    .map(|(m, i)| format!("{}(iterations={i})", m.name()))
                    .collect();
                outln!("{user}\t{}", mechs.join(","))?;
            }
        }
        UsersCommand::Delete {
            name,
            mechanism: mech,
            dir,
        } => {
            let store = open(&dir)?;
            let mechs = match mech {
                Some(m) => vec![mechanism(&m)?],
                None => store
                    .list()
                    .into_iter()
                    .find(|(u, _)| *u == name)
                    .map(|(_, m)| m.into_iter().map(|(m, _)| m).collect())
                    .unwrap_or_default(),
            };
            let found = store.apply(mechs.iter().map(|m| (name.clone(), *m, None)).collect())?;
            anyhow::ensure!(found.iter().any(|f| *f), "no such user credential: {name}");
            outln!("deleted user {name}")?;
        }
    }
    Ok(())
}

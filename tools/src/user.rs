//! `warren user add|delete|list`: user management through the client's `Admin`.
//!
//! The new user's password never appears on the command line (where `ps` and
//! shell history would show it): `warren user add NAME --password-stdin` reads
//! it from the first line of standard input, otherwise it comes from the
//! `WARREN_NEW_PASSWORD` environment variable. The client derives the SCRAM
//! credential; the password itself never reaches the broker.
//!
//! ```text
//! $ echo "$ROOT_PASSWORD" | warren user add root --superuser --password-stdin
//! created user root (superuser)
//! $ WARREN_USER=root WARREN_PASSWORD=... warren user list
//! USER   SUPERUSER
//! app    no
//! root   yes
//! ```
//!
//! Thread safety: runs on the calling thread's own runtime; nothing is shared.

use std::io::{self, BufRead, Write};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use warren_client::Admin;

use crate::connect::{BrokerArgs, ClientContext, connect_error, runtime};
use crate::topic::{Align, Table};

/// The environment variable `user add` reads the new password from.
pub const NEW_PASSWORD_ENV: &str = "WARREN_NEW_PASSWORD";

/// Arguments of `warren user`.
#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    #[command(subcommand)]
    pub command: UserCommand,
}

/// The `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; its password comes from stdin (--password-stdin) or
    /// WARREN_NEW_PASSWORD. The first user must be a superuser
    Add {
        /// The user name: 1 to 255 characters of [A-Za-z0-9._@-]
        name: String,
        /// All permissions, including managing users and ACLs
        #[arg(long)]
        superuser: bool,
        /// Read the new password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user and its ACL entries
    Delete {
        /// The user name
        name: String,
    },
    /// List every user
    List,
}

/// The new user's password: stdin's first line, or `WARREN_NEW_PASSWORD`.
fn new_password(from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        match std::env::var(NEW_PASSWORD_ENV) {
            Ok(p) => p,
            Err(_) => bail!(
                "no password for the new user: pass --password-stdin (and the password on \
                 standard input) or set {NEW_PASSWORD_ENV}"
            ),
        }
    };
    if password.is_empty() {
        bail!("the new user's password is empty");
    }
    Ok(password)
}

/// Runs `warren user ...`.
///
/// # Errors
/// No password for `add`; the connection's errors; the broker's refusal.
pub fn run(args: &UserArgs) -> anyhow::Result<()> {
    // Read before connecting, so a missing password fails without a round trip.
    let password = match &args.command {
        UserCommand::Add { password_stdin, .. } => Some(new_password(*password_stdin)?),
        _ => None,
    };
    runtime()?.block_on(async {
        let admin = Admin::connect(args.broker.connection())
            .await
            .map_err(|e| connect_error(&args.broker, e))?;
        let stdout = io::stdout();
        let mut out = stdout.lock();
        match &args.command {
            UserCommand::Add {
                name, superuser, ..
            } => {
                admin
                    .create_user(name, password.as_deref().unwrap_or_default(), *superuser)
                    .await
                    .doing(|| format!("adding user {name}"))?;
                let kind = if *superuser { " (superuser)" } else { "" };
                writeln!(out, "created user {name}{kind}").context("writing to stdout")?;
            }
            UserCommand::Delete { name } => {
                admin
                    .delete_user(name)
                    .await
                    .doing(|| format!("deleting user {name}"))?;
                writeln!(out, "deleted user {name}").context("writing to stdout")?;
            }
            UserCommand::List => {
                let users = admin.list_users().await.doing(|| "listing users".into())?;
                let mut table = Table::new(&[("USER", Align::Left), ("SUPERUSER", Align::Left)]);
                for u in users {
                    let superuser = if u.superuser { "yes" } else { "no" };
                    table.row(vec![u.name, superuser.into()]);
                }
                table.write(&mut out).context("writing to stdout")?;
            }
        }
        out.flush().context("writing to stdout")
    })
}

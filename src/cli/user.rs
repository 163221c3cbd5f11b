//! `ficha user ...`: resource owners for the password grant.

use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::client::parse_scopes;
use super::output::print;
use crate::oauth::{self, StoreError, User, Username};
use crate::store::Store;

/// `ficha user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints a generated password once if none is given.
    Create {
        /// Username (for Fegora: the customer's tax id).
        #[arg(allow_hyphen_values = true)]
        username: String,
        /// Use this password instead of a generated one.
        #[arg(long, env = "FICHA_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Scopes the user may delegate, space-separated [default: no restriction].
        #[arg(long)]
        scopes: Option<String>,
    },
    /// List users.
    List,
    /// Refuse the user from now on and revoke the user's refresh tokens.
    Disable {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
    /// Accept the user again.
    Enable {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
    /// Delete the user and the user's refresh tokens.
    Delete {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
    /// Set a new password (generated if none is given); revokes refresh tokens.
    SetPassword {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
        /// The new password.
        #[arg(long, env = "FICHA_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

fn parse_username(s: &str) -> anyhow::Result<Username> {
    Username::parse(s).map_err(|e| anyhow::anyhow!("invalid username: {e}"))
}

async fn load_user(store: &dyn Store, name: &Username) -> anyhow::Result<User> {
    store
        .get_user(name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user named {name:?}"))
}

fn user_err(e: StoreError, name: &Username) -> anyhow::Error {
    match e {
        StoreError::NotFound => anyhow::anyhow!("no user named {name:?}"),
        StoreError::Conflict => anyhow::anyhow!("a user named {name:?} already exists"),
        StoreError::Unavailable(e) => e.context("database error"),
    }
}

/// Prints what a command did to a user's password: `headline`, then the
/// password ficha generated (`generated`, shown this once, followed by
/// `after`), if it generated one.
fn print_password(
    json_out: bool,
    name: &Username,
    generated: Option<&SecretString>,
    headline: &str,
    after: &str,
) {
    let shown = generated.map(|p| p.expose_secret());
    let text = match shown {
        Some(p) => format!("{headline}\npassword: {p}{after}"),
        None => headline.to_owned(),
    };
    print(
        json_out,
        json!({"username": name.as_ref(), "password": shown}),
        &text,
    );
}

fn password_or_generated(p: Option<&String>) -> anyhow::Result<(SecretString, bool)> {
    match p {
        Some(p) => {
            anyhow::ensure!(!p.is_empty(), "--password must not be empty");
            Ok((p.clone().into(), false))
        }
        None => Ok((oauth::generate_secret(), true)),
    }
}

/// Runs a `user` command.
pub async fn run(
    cmd: &UserCommand,
    store: &dyn Store,
    now: i64,
    json_out: bool,
) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            username,
            password,
            scopes,
        } => {
            let name = parse_username(username)?;
            let (password, generated) = password_or_generated(password.as_ref())?;
            let user = User {
                username: name.clone(),
                phc: oauth::hash_secret(&password)?,
                scopes: scopes.as_deref().map(parse_scopes).transpose()?,
                enabled: true,
                created_at: now,
                updated_at: now,
            };
            store
                .create_user(&user)
                .await
                .map_err(|e| user_err(e, &name))?;
            print_password(
                json_out,
                &name,
                generated.then_some(&password),
                &format!("user {name} created"),
                "\n(shown once; only its hash is stored)",
            );
            Ok(())
        }
        UserCommand::List => {
            let users = store.list_users().await?;
            if json_out {
                let all: Vec<_> = users
                    .iter()
                    .map(|u| {
                        json!({
                            "username": u.username.as_ref(),
                            "enabled": u.enabled,
                            "scopes": u.scopes.as_ref().map(|s| s.iter().collect::<Vec<_>>()),
                            "created_at": u.created_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(all));
            } else {
                for u in &users {
                    println!(
                        "{}\t{}",
                        u.username,
                        if u.enabled { "enabled" } else { "disabled" }
                    );
                }
            }
            Ok(())
        }
        UserCommand::Disable { username } | UserCommand::Enable { username } => {
            let enabled = matches!(cmd, UserCommand::Enable { .. });
            let name = parse_username(username)?;
            let mut user = load_user(store, &name).await?;
            user.enabled = enabled;
            user.updated_at = now;
            store
                .update_user(&user)
                .await
                .map_err(|e| user_err(e, &name))?;
            let word = if enabled { "enabled" } else { "disabled" };
            print(
                json_out,
                json!({"username": name.as_ref(), "enabled": enabled}),
                &format!("user {name} {word}"),
            );
            Ok(())
        }
        UserCommand::Delete { username } => {
            let name = parse_username(username)?;
            store
                .delete_user(&name)
                .await
                .map_err(|e| user_err(e, &name))?;
            print(
                json_out,
                json!({"username": name.as_ref(), "deleted": true}),
                &format!("user {name} deleted"),
            );
            Ok(())
        }
        UserCommand::SetPassword { username, password } => {
            let name = parse_username(username)?;
            let mut user = load_user(store, &name).await?;
            let (password, generated) = password_or_generated(password.as_ref())?;
            user.phc = oauth::hash_secret(&password)?;
            user.updated_at = now;
            store
                .update_user(&user)
                .await
                .map_err(|e| user_err(e, &name))?;
            print_password(
                json_out,
                &name,
                generated.then_some(&password),
                &format!("password of {name} changed"),
                "",
            );
            Ok(())
        }
    }
}

//! The OAuth2 protocol core: typed requests, client authentication, grant
//! and scope rules, token minting, all as plain functions and services over
//! typed values with the time passed in. It must not depend on axum, http,
//! sqlx or clap: `http/` adapts requests to it and `store/` implements its
//! storage port.

mod auth;
mod client;
mod clock;
mod denylist;
mod error;
mod flight;
mod hashpool;
mod request;
mod scope;
mod secret;
mod store;
mod throttle;
mod token;
mod user;
mod verify;

pub use auth::{AuthSettings, AuthStats, Authenticator, MAX_LIVE_SECRETS};
pub use client::{
    generate_secret, parse_audiences, parse_list, AuthMethod, Client, ClientId, DialectSet,
    GrantType, InvalidValue, StoredSecret, ANY_AUDIENCE, DEFAULT_DIALECT,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use denylist::{Denylist, Stale, REVOCATION_PRUNE_MARGIN_SECS};
pub use error::{AuthFailure, TokenError};
pub use request::{
    credentials, encode_raw_basic, parse_basic, parse_form, Candidate, Credentials, Grant, Params,
    RawTokenRequest, TokenRequest,
};
pub use scope::{Scope, ScopeError, ScopeSet};
pub use secret::{hash_secret, verify_secret, ARGON2_M_COST, ARGON2_P_COST, ARGON2_T_COST};
#[cfg(test)]
pub(crate) use store::memory;
pub use store::{ClientStore, StoreError, UserStore};
pub use token::{
    audience_for, granted_scope, lifetime, AccessClaims, IssuedToken, Minted, Mode, Policy,
    TokenService, DEFAULT_REFRESH_MAX_LIFETIME, DEFAULT_REFRESH_TTL, DEFAULT_TTL, JTI_LEN,
};
pub use user::{
    new_refresh_token, refresh_token_hash, NewRefreshToken, RefreshOutcome, User, Username,
};
pub use verify::{
    verify_access_token, BearerError, Revocation, TokenRejection, TokenVerifier, VerifiedToken,
};

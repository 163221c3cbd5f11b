//! The cold path of client authentication: one verification per
//! presentation, shared by concurrent identical requests, charged to the
//! throttles while it runs, padded to a constant number of argon2 passes.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use secrecy::SecretString;

use super::{throttled, Authenticator, CachedClient, Tag, MAX_LIVE_SECRETS, TAGS_PER_CLIENT};
use crate::oauth::client::ClientId;
use crate::oauth::error::TokenError;
use crate::oauth::hashpool::PoolError;
use crate::oauth::request::Candidate;
use crate::oauth::secret;

impl Authenticator {
    /// The cold path: refuses a presentation already found wrong, or runs
    /// one verification (shared by concurrent identical requests), charged
    /// to the throttles while it runs and kept there if it fails.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn verify_presentation(
        &self,
        presentation: Tag,
        id: &ClientId,
        entry: &Arc<CachedClient>,
        readings: &[&Candidate],
        candidates: usize,
        live: &[i64],
        address: IpAddr,
    ) -> Result<Option<i64>, TokenError> {
        if self.rejected.contains_key(&presentation) {
            self.counters
                .rejected_without_hashing
                .fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        let outcome = self
            .verifications
            .run(&presentation, || async {
                // A verification that finished since our checks decides.
                if self.rejected.contains_key(&presentation) {
                    return Ok::<_, TokenError>(None);
                }
                if let Some(c) = &entry.client {
                    if let Some(sid) = self.remembered(entry, c, readings, live) {
                        return Ok(Some((sid, usize::MAX)));
                    }
                }
                let charge = self
                    .throttle
                    .charge(self.pair_key(id.as_ref(), address), address, Instant::now())
                    .map_err(|wait| {
                        self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                        throttled(wait)
                    })?;
                let job = self.job(entry, readings, candidates, live);
                self.counters.verifications.fetch_add(1, Ordering::Relaxed);
                let span = tracing::Span::current();
                let result = self
                    .hash_pool
                    .run(address, move || {
                        let _enter = span.enter();
                        job()
                    })
                    .await
                    .map_err(|e| match e {
                        // 503 with Retry-After (SPEC §9), mapped in http::errors.
                        PoolError::Full => TokenError::Unavailable(e.into()),
                        PoolError::Stopped => TokenError::Internal(e.into()),
                    })?;
                match result {
                    Some((sid, reading)) => {
                        drop(charge);
                        if let Some(c) = &entry.client {
                            let tag = self.verified_tag(&c.id, sid, &readings[reading].secret);
                            let mut verified =
                                entry.verified.lock().unwrap_or_else(|e| e.into_inner());
                            if verified.len() >= TAGS_PER_CLIENT {
                                verified.remove(0);
                            }
                            verified.push(tag);
                        }
                        Ok(Some((sid, reading)))
                    }
                    None => {
                        charge.keep();
                        self.rejected.insert(presentation, ());
                        Ok(None)
                    }
                }
            })
            .await?;
        Ok(outcome.map(|(sid, _)| sid))
    }

    /// The verification job: every reading against every live secret,
    /// stopping at a match, padded with dummy passes so that a failure
    /// always costs `candidates × MAX_LIVE_SECRETS` passes.
    pub(super) fn job(
        &self,
        entry: &CachedClient,
        readings: &[&Candidate],
        candidates: usize,
        live: &[i64],
    ) -> impl FnOnce() -> Option<(i64, usize)> + Send + 'static {
        let phcs: Vec<(i64, String)> = entry.client.as_ref().map_or_else(Vec::new, |c| {
            c.secrets
                .iter()
                .filter(|s| live.contains(&s.id))
                .map(|s| (s.id, s.phc.clone()))
                .collect()
        });
        let secrets: Vec<SecretString> = readings.iter().map(|c| c.secret.clone()).collect();
        let padding = (candidates * MAX_LIVE_SECRETS).saturating_sub(secrets.len() * phcs.len());
        let dummy = self.dummy_phc.clone();
        let runs = self.counters.hash_runs.clone();
        let fallback: SecretString = String::new().into();
        move || {
            for (i, presented) in secrets.iter().enumerate() {
                for (sid, phc) in &phcs {
                    runs.fetch_add(1, Ordering::Relaxed);
                    if secret::verify_secret(phc, presented) {
                        return Some((*sid, i));
                    }
                }
            }
            let presented = secrets.first().unwrap_or(&fallback);
            for _ in 0..padding {
                runs.fetch_add(1, Ordering::Relaxed);
                let _ = secret::verify_secret(&dummy, presented);
            }
            None
        }
    }
}

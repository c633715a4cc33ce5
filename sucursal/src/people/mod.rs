//! People at the branch: the users central sends by pull, their login sessions, and the
//! login itself (docs/protocol.md, "Users at the branch" and "Login").
//!
//! - The directory holds the newest version of every user this branch received; it is
//!   loaded from the `users` table at start and updated by the syncer only once a pulled
//!   change is durable ([`People::apply_user`]). A user who becomes inactive, is no longer
//!   allowed at this branch or changes role loses every session at once, so a revoked right
//!   never outlives the pull that revoked it.
//! - [`People::login`] answers the same `invalid_credentials` for an unknown user, an
//!   inactive or not-allowed one and a wrong PIN, after the same work: an argon2 verification
//!   against the user's hash or, without one, against a fixed dummy hash. Verifications run
//!   on [`People::verify_permits`] dedicated threads (half the cores) at a lower CPU
//!   priority (nice 10), so a login flood can neither take the cores nor delay the HTTP
//!   workers' wake-ups that `/sell` needs (P10 in BENCHMARKS.md).
//! - [`limiter`] refuses guessers (429), [`sessions`] holds who each token is.
pub mod limiter;
pub mod sessions;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, Params};
use colmena_shared::clock;
use colmena_shared::users::{LoginRequest, LoginResponse, Pin, UserId, UserRecord};
use limiter::Limiter;
use sessions::Sessions;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The largest argon2 memory cost (KiB) a pulled hash may ask for: a hash asking more is
/// treated as not matching rather than allowed to take the branch's memory.
const MAX_VERIFY_MEMORY_KIB: u32 = 256 * 1024;

/// Why a login was refused. Deliberately no reason for `InvalidCredentials`: every cause
/// must look the same from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRefused {
    InvalidCredentials,
    /// Seconds until one more attempt is allowed.
    TooManyAttempts(u64),
    /// The verification could not run (the runtime is shutting down).
    Unavailable,
}

pub struct People {
    branch_id: String,
    users: RwLock<HashMap<UserId, Arc<UserRecord>>>,
    pub sessions: Sessions,
    limiter: Mutex<Limiter>,
    verify: Semaphore,
    verify_permits: usize,
    /// Work for the verifier threads; they end when `People` (this sender) is dropped.
    verifier: std::sync::mpsc::Sender<VerifyJob>,
    dummy_hash: String,
    session_ttl: Duration,
}

impl People {
    /// `users` as loaded from the store. Computes the dummy hash (one argon2 hash, with the
    /// default parameters central's hashes use, so both paths cost the same).
    pub fn new(branch_id: &str, users: Vec<UserRecord>, session_ttl: Duration) -> Result<People, String> {
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = Argon2::default()
            .hash_password(b"not-a-pin", &salt)
            .map_err(|e| format!("argon2: {e}"))?
            .to_string();
        // Half the cores (at least one): the other half stays free for sales.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let verify_permits = (cores / 2).max(1);
        let verifier = start_verifiers(verify_permits)?;
        Ok(People {
            branch_id: branch_id.to_string(),
            users: RwLock::new(users.into_iter().map(|u| (u.user_id.clone(), Arc::new(u))).collect()),
            sessions: Sessions::default(),
            limiter: Mutex::new(Limiter::default()),
            verify: Semaphore::new(verify_permits),
            verify_permits,
            verifier,
            dummy_hash,
            session_ttl,
        })
    }

    /// Concurrent argon2 verifications allowed.
    pub fn verify_permits(&self) -> usize {
        self.verify_permits
    }

    pub fn user(&self, id: &UserId) -> Option<Arc<UserRecord>> {
        self.users.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    pub fn user_count(&self) -> usize {
        self.users.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// A durable user change (called by the syncer after the fsync). An older or equal
    /// version than the one held is ignored, like in the store.
    pub fn apply_user(&self, u: &UserRecord) {
        let previous = {
            let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
            if let Some(held) = users.get(&u.user_id) {
                if held.version >= u.version {
                    return;
                }
            }
            users.insert(u.user_id.clone(), Arc::new(u.clone()))
        };
        let role_changed = previous.is_some_and(|p| p.role != u.role);
        if !u.may_work_at(&self.branch_id) || role_changed {
            let ended = self.sessions.revoke_user(&u.user_id);
            if ended > 0 {
                tracing::info!(user_id = %u.user_id, sessions = ended, "user's sessions revoked by a pulled change");
            }
        }
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks the PIN and opens a session. `peer` is the client's address (the TCP peer:
    /// a forwarded-for header could be forged to dodge the limit).
    pub async fn login(&self, req: LoginRequest, peer: Option<IpAddr>) -> Result<LoginResponse, LoginRefused> {
        let user_id = UserId::parse(&req.user_id).ok();
        // Only well-formed ids are counted per user: anything else cannot be a user, and
        // keying on it would let a client fill the map with garbage.
        let user_key = user_id.as_ref().map(|u| u.as_str().to_string());
        self.limiter()
            .check(user_key.as_deref(), peer, clock::now_millis())
            .map_err(|secs| {
                tracing::info!(peer = ?peer, retry_after_secs = secs, "login refused: too many failures");
                LoginRefused::TooManyAttempts(secs)
            })?;
        let user = user_id.as_ref().and_then(|id| self.user(id));
        let hash = user
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.pin_hash.clone());
        let pin = Pin::parse(&req.pin).ok();
        let verified = self.verify(hash, pin).await?;
        let now_ms = clock::now_millis();
        let user = match user {
            Some(u) if verified && u.may_work_at(&self.branch_id) => u,
            _ => {
                // The typed user id is not logged: people type their PIN into it by mistake.
                tracing::info!(peer = ?peer, "login refused");
                self.limiter().failed(user_key.as_deref(), peer, now_ms);
                return Err(LoginRefused::InvalidCredentials);
            }
        };
        self.limiter().succeeded(user.user_id.as_str());
        let ttl_ms = i64::try_from(self.session_ttl.as_millis()).unwrap_or(i64::MAX);
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        let session = self
            .sessions
            .open(user.user_id.clone(), user.role, expires_at_ms, now_ms);
        tracing::info!(user_id = %user.user_id, role = user.role.as_str(), "login");
        Ok(LoginResponse {
            token: session.token,
            user_id: user.user_id.clone(),
            name: user.name.clone(),
            role: user.role,
            expires_at: clock::millis_to_rfc3339(expires_at_ms),
        })
    }

    /// Runs one argon2 verification off the async threads, within the permits. A malformed
    /// PIN is verified as a wrong one would be (against the same hash), then refused, so
    /// its answer comes as late as any other refusal.
    async fn verify(&self, hash: String, pin: Option<Pin>) -> Result<bool, LoginRefused> {
        let _permit = self.verify.acquire().await.map_err(|_| LoginRefused::Unavailable)?;
        let well_formed = pin.is_some();
        let digits = pin.map_or_else(|| "00000000".to_string(), |p| p.expose().to_string());
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.verifier
            .send(VerifyJob { hash, digits, reply })
            .map_err(|_| LoginRefused::Unavailable)?;
        let ok = answer.await.map_err(|_| LoginRefused::Unavailable)?;
        Ok(ok && well_formed)
    }
}

/// One argon2 verification for a verifier thread.
struct VerifyJob {
    hash: String,
    digits: String,
    reply: tokio::sync::oneshot::Sender<bool>,
}

/// Starts `n` verifier threads sharing one queue, each at nice 10: under contention the
/// kernel then runs a waking HTTP worker first, so `/sell` keeps its latency while argon2
/// takes what CPU is left (at 0 it took a full share and doubled `/sell`'s p99).
fn start_verifiers(n: usize) -> Result<std::sync::mpsc::Sender<VerifyJob>, String> {
    let (tx, rx) = std::sync::mpsc::channel::<VerifyJob>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..n {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("pin-verify-{i}"))
            .spawn(move || {
                lower_priority();
                loop {
                    // The lock is held only to take a job, not while verifying.
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(job) = job else { return };
                    let _ = job.reply.send(verify_pin(&job.hash, job.digits.as_bytes()));
                }
            })
            .map_err(|e| format!("cannot start a PIN verifier thread: {e}"))?;
    }
    Ok(tx)
}

/// Nice 10 for the calling thread (Linux schedules threads as tasks, so this does not touch
/// the rest of the process). Best effort: where it fails, verifications still run.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread, no memory involved.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
        if rc != 0 {
            tracing::warn!("could not lower the PIN verifier's CPU priority; logins compete with sales");
        }
    }
}

/// Whether `pin` matches the PHC string `hash`. A malformed hash, or one asking for more
/// memory than [`MAX_VERIFY_MEMORY_KIB`], never matches.
pub fn verify_pin(hash: &str, pin: &[u8]) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    match Params::try_from(&parsed) {
        Ok(p) if p.m_cost() <= MAX_VERIFY_MEMORY_KIB => {}
        _ => return false,
    }
    Argon2::default().verify_password(pin, &parsed).is_ok()
}

/// An argon2id PHC string for `pin` with the default parameters (for tests and tools that
/// stand in for central).
pub fn hash_pin(pin: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("argon2: {e}"))
}

#[cfg(test)]
mod tests;

//! Argon2id password hashing on a bounded pool of its own threads.
//!
//! One hash costs tens of milliseconds of CPU and `memory_kib` of memory (19 MiB at OWASP's
//! recommendation). On tokio's blocking pool each hash may land on another of up to 512
//! threads, and glibc keeps each thread arena's freed block for that thread's next use: the
//! release daemon held 396 MiB after its first 100 registrations (`cargo bench --bench e2e`).
//! A fixed set of `threads` workers bounds both what registrations take from the rest of the
//! daemon: at most `threads` cores, and about `threads` × `memory_kib` of memory.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::PasswordHasher as _;
use argon2::{Algorithm, Argon2, Params, Version};
use thiserror::Error;
use tokio::sync::oneshot;

use crate::ops::config::Argon2Config;

/// The Argon2id parameters of `config`, or why these values are not any.
pub fn params(config: &Argon2Config) -> Result<Params, HashError> {
    Params::new(
        config.memory_kib,
        config.iterations,
        config.parallelism,
        None,
    )
    .map_err(|e| HashError::Params(e.to_string()))
}

#[derive(Debug, Error)]
pub enum HashError {
    #[error("argon2 parameters: {0}")]
    Params(String),
    #[error("argon2: {0}")]
    Hash(String),
    #[error("the password hashing threads are gone")]
    Stopped,
}

type Job = (String, oneshot::Sender<Result<String, HashError>>);

/// Hands passwords to the hashing threads; cheap to clone. The threads end once every
/// clone is dropped.
#[derive(Clone)]
pub struct Hasher {
    jobs: mpsc::Sender<Job>,
}

impl Hasher {
    pub fn start(config: &Argon2Config) -> Result<Hasher, HashError> {
        let params = params(config)?;
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let (queue, params) = (queue.clone(), params.clone());
            std::thread::Builder::new()
                .name(format!("moauth-argon2-{i}"))
                .spawn(move || {
                    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = queue.lock().expect("hash queue lock").recv();
                        let Ok((password, answer)) = job else { return };
                        let hash = argon2
                            .hash_password(password.as_bytes())
                            .map(|h| h.to_string())
                            .map_err(|e| HashError::Hash(e.to_string()));
                        let _ = answer.send(hash);
                    }
                })
                .map_err(|e| HashError::Hash(format!("starting a hashing thread: {e}")))?;
        }
        Ok(Hasher { jobs })
    }

    /// The Argon2id PHC string of `password`, once a hashing thread is free.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let (answer, hashed) = oneshot::channel();
        self.jobs
            .send((password, answer))
            .map_err(|_| HashError::Stopped)?;
        hashed.await.map_err(|_| HashError::Stopped)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;
    use argon2::password_hash::phc::PasswordHash;

    #[tokio::test]
    async fn hashes_carry_the_configured_cost_and_verify() {
        let config = Argon2Config {
            memory_kib: 1024,
            iterations: 3,
            parallelism: 1,
            threads: 2,
        };
        let hasher = Hasher::start(&config).unwrap();
        let hashes = futures::future::join_all(
            ["first", "second", "third"].map(|p| hasher.hash(p.to_owned())),
        )
        .await;
        for (password, hash) in ["first", "second", "third"].iter().zip(hashes) {
            let hash = hash.unwrap();
            assert!(hash.starts_with("$argon2id$v=19$m=1024,t=3,p=1$"), "{hash}");
            let parsed = PasswordHash::new(&hash).unwrap();
            assert!(
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            );
            assert!(
                Argon2::default()
                    .verify_password(b"other", &parsed)
                    .is_err()
            );
        }
    }

    #[test]
    fn default_cost_is_owasps_recommendation() {
        let params = params(&Argon2Config::default()).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (19_456, 2, 1)
        );
    }

    #[test]
    fn impossible_cost_is_refused() {
        let config = Argon2Config {
            memory_kib: 4,
            parallelism: 4,
            ..Argon2Config::default()
        };
        assert!(matches!(Hasher::start(&config), Err(HashError::Params(_))));
    }
}

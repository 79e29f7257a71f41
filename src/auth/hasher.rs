//! Argon2id password hashing on a bounded pool of its own threads.
//!
//! One hash costs tens of milliseconds of CPU and `memory_kib` of memory (19 MiB at OWASP's
//! recommendation). On tokio's blocking pool each hash may land on another of up to 512
//! threads, and glibc keeps each thread arena's freed block for that thread's next use: the
//! release daemon held 396 MiB after its first 100 registrations (`cargo bench --bench e2e`).
//! A fixed set of `threads` workers bounds both what registrations take from the rest of the
//! daemon: at most `threads` cores, and about `threads` × `memory_kib` of memory.
//!
//! Each worker allocates its Argon2 memory once and keeps it. Freeing it after every hash
//! (what `PasswordHasher::hash_password` does) made glibc raise its mmap threshold to 19 MiB
//! for the whole process: from then on sled's large buffers came from the thread arenas and
//! were never given back. RSS after 100 registrations and 5,000 logins over SMPP was 387 MiB;
//! with the threshold held at 128 KiB (`GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072`)
//! it was 25.5 MiB, and so it is with memory that is never freed.
//!
//! The threads run at nice [`NICE`]: registrations hash beside the login pipeline, and with
//! one thread per core at the default priority a burst of new numbers took the CPU from the
//! SMPP links and the pipeline, so that even the new numbers' sessions (which wait for no
//! hash) came at 98–787/s instead of thousands (`cargo bench --bench e2e`, BENCHMARKS.md).
//! Lowered, they use what the rest leaves; a password check (`POST /v1/password-logins`)
//! waits for its turn in the same way. At nice 10 a burst of 300 new numbers still slowed
//! their own acks and sessions to about 1,000/s on two cores; at nice 19 (the lowest) they
//! came at 2,100–2,400/s with the credential SMS leaving as fast as before, 67–80/s.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use thiserror::Error;
use tokio::sync::oneshot;

use super::config::Argon2Config;

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

/// The nice value of the hashing threads: below the runtime's, so the login path comes first.
pub const NICE: i32 = 19;

/// Lowers the calling thread's priority to [`NICE`]. Linux keeps the nice value per thread
/// (setpriority(2), NOTES); lowering it needs no privilege. A refusal (a seccomp filter, say)
/// leaves the thread as it was.
fn lower_priority() {
    // SAFETY: setpriority takes plain integers and touches no memory of ours; `who` 0 is the
    // calling thread.
    let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) };
    if done != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "hashing thread keeps its priority");
    }
}

/// Work for a hashing thread; each answers on its own channel.
enum Job {
    Hash(String, oneshot::Sender<Result<String, HashError>>),
    /// A password and the PHC string it is checked against.
    Verify(String, String, oneshot::Sender<Result<bool, HashError>>),
}

/// Hands passwords to the hashing threads; cheap to clone. The threads end once every
/// clone is dropped.
#[derive(Clone)]
pub struct Hasher {
    jobs: mpsc::Sender<Job>,
    threads: usize,
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
                    lower_priority();
                    // Allocated at the first hash, so an idle daemon does not hold it.
                    let mut memory = Vec::new();
                    let blocks = params.block_count();
                    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = queue.lock().expect("hash queue lock").recv();
                        let Ok(job) = job else { return };
                        if memory.is_empty() {
                            memory = vec![Block::default(); blocks];
                        }
                        match job {
                            Job::Hash(password, answer) => {
                                let hash = phc_hash(&argon2, &password, &mut memory[..blocks]);
                                let _ = answer.send(hash);
                            }
                            Job::Verify(password, phc, answer) => {
                                let _ = answer.send(phc_verify(&password, &phc, &mut memory));
                            }
                        }
                    }
                })
                .map_err(|e| HashError::Hash(format!("starting a hashing thread: {e}")))?;
        }
        Ok(Hasher { jobs, threads })
    }

    /// How many passwords are hashed at once, at most.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The Argon2id PHC string of `password`, once a hashing thread is free.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let (answer, hashed) = oneshot::channel();
        self.jobs
            .send(Job::Hash(password, answer))
            .map_err(|_| HashError::Stopped)?;
        hashed.await.map_err(|_| HashError::Stopped)?
    }

    /// Whether `password` is the one `phc` (an Argon2id PHC string) was made from. Costs what
    /// the hash's own parameters say, so a check against a dummy hash of the current
    /// parameters takes as long as one against a real account's.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, HashError> {
        let (answer, checked) = oneshot::channel();
        self.jobs
            .send(Job::Verify(password, phc, answer))
            .map_err(|_| HashError::Stopped)?;
        checked.await.map_err(|_| HashError::Stopped)?
    }
}

/// The PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) of `password` with a fresh
/// random 128-bit salt, computed in `memory`.
fn phc_hash(
    argon2: &Argon2<'_>,
    password: &str,
    memory: &mut [Block],
) -> Result<String, HashError> {
    let failed = |e: &dyn std::fmt::Display| HashError::Hash(e.to_string());
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let mut out = [0u8; 32];
    argon2
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, &mut *memory)
        .map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(hash.to_string())
}

/// Recomputes the hash with the thread's memory (grown, and kept, if `phc` asks for more)
/// and compares in constant time (`Output`'s equality).
fn phc_verify(password: &str, phc: &str, memory: &mut Vec<Block>) -> Result<bool, HashError> {
    let failed = |e: &dyn std::fmt::Display| HashError::Hash(e.to_string());
    let parsed = PasswordHash::new(phc).map_err(|e| failed(&e))?;
    let params = Params::try_from(&parsed).map_err(|e| failed(&e))?;
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err(HashError::Hash(
            "the stored hash has no salt or output".into(),
        ));
    };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            &mut out,
            &mut memory[..blocks],
        )
        .map_err(|e| failed(&e))?;
    Ok(Output::new(&out).map_err(|e| failed(&e))? == *expected)
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

    #[tokio::test]
    async fn verify_accepts_the_password_and_refuses_any_other() {
        let hasher = Hasher::start(&Argon2Config::cheap()).unwrap();
        let hash = hasher.hash("right".into()).await.unwrap();
        assert!(hasher.verify("right".into(), hash.clone()).await.unwrap());
        assert!(!hasher.verify("wrong".into(), hash.clone()).await.unwrap());
        // Made with more memory than this pool's threads hold: they grow theirs.
        let bigger = Hasher::start(&Argon2Config {
            memory_kib: 2048,
            iterations: 1,
            parallelism: 1,
            threads: 1,
        })
        .unwrap()
        .hash("right".into())
        .await
        .unwrap();
        assert!(hasher.verify("right".into(), bigger).await.unwrap());
        assert!(
            hasher
                .verify("right".into(), "not a hash".into())
                .await
                .is_err()
        );
    }

    /// The nice value of each of this process's threads named `name`, from /proc.
    fn nice_of_threads(name: &str) -> Vec<i32> {
        let mut nice = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let dir = task.unwrap().path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.trim() != name {
                continue;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
            // Fields after the parenthesised name: state is field 3, nice field 19.
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            nice.push(after.split(' ').nth(16).unwrap().parse().unwrap());
        }
        nice
    }

    #[tokio::test]
    async fn hashing_threads_run_below_the_login_path() {
        let hasher = Hasher::start(&Argon2Config::cheap()).unwrap();
        // Once it has hashed, the thread has surely set its priority.
        hasher.hash("p".into()).await.unwrap();
        let nice = nice_of_threads("moauth-argon2-0");
        assert!(!nice.is_empty());
        assert!(nice.iter().all(|n| *n == NICE), "{nice:?}");
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

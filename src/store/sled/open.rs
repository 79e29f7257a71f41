//! Opening the sled store: one process per directory, and errors an operator can act on.
//!
//! sled locks its database file, but a second process only hears a bare `WouldBlock`, and an
//! unwritable directory gives an I/O error without its path. So moauth first takes a lock of
//! its own, `PATH/moauth.pid`, holding the owner's pid: the second process can say who holds
//! the store. The lock is an advisory `flock` that lives as long as the open file, so the
//! kernel drops it when the process dies and a stale pid in the file never blocks a start.
//! Every error names the path, the cause and what to do; none of them is cured by restarting,
//! which is why `main` gives them their own exit status (3) that the unit does not restart on.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{ErrorKind, Read, Seek, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::core::error::StoreError;

/// What a command on the store (`moauth outbox`, `moauth store export`) says when the daemon
/// holds it.
pub const STOP_IT_FIRST: &str = "moauth is running on this store: stop it (systemctl stop \
     moauth), run this again, then start it";

/// The file in the store directory that holds the lock and its owner's pid.
const LOCK_FILE: &str = "moauth.pid";

#[derive(Debug, Error)]
pub enum OpenError {
    #[error(
        "another moauth (pid {}) holds the store at {}: stop it first, or give this one another [store] path",
        pid.map_or("unknown".to_owned(), |p| p.to_string()),
        path.display()
    )]
    Locked { path: PathBuf, pid: Option<u32> },
    /// The cause is part of the message, not a `source`, so it is printed once.
    #[error("cannot use the store at {}: {cause}{}", path.display(), hint(cause.kind()))]
    Unusable {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "an import into the store at {} did not finish: run `moauth store import --replace` \
         again, or move the directory away to start on an empty store",
        path.display()
    )]
    ImportUnfinished { path: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to do about an I/O error on the store directory.
fn hint(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::PermissionDenied => {
            "; the directory must belong to the user moauth runs as (under systemd, \
             StateDirectory=moauth makes /var/lib/moauth so)"
        }
        ErrorKind::ReadOnlyFilesystem => {
            "; the file system is read-only there (under ProtectSystem=strict only the \
             StateDirectory, /var/lib/moauth, is writable)"
        }
        ErrorKind::NotADirectory | ErrorKind::AlreadyExists => "; [store] path must be a directory",
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => "; free some disk space",
        _ => "",
    }
}

/// Holds the store directory for this process until dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Creates the directory if needed and locks it, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<StoreLock, OpenError> {
        let unusable = |cause| OpenError::Unusable {
            path: dir.to_owned(),
            cause,
        };
        std::fs::create_dir_all(dir).map_err(unusable)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(unusable)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(OpenError::Locked {
                    path: dir.to_owned(),
                    pid: pid.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(cause)) => return Err(unusable(cause)),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(unusable)?;
        Ok(StoreLock { _file: file })
    }
}

/// For `check-config`: whether this process could create and write the store directory,
/// without opening (or locking) it, so it also answers while the daemon runs.
pub fn check_dir(dir: &Path) -> Result<(), OpenError> {
    let unusable = |cause| OpenError::Unusable {
        path: dir.to_owned(),
        cause,
    };
    // The directory itself, or the nearest ancestor it would be created in.
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        return Err(unusable(ErrorKind::NotADirectory.into()));
    }
    let probe = existing.join(format!(".moauth-check-config-{}", std::process::id()));
    File::create(&probe).map_err(unusable)?;
    std::fs::remove_file(&probe).map_err(unusable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_a_released_one_is_free_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let held = StoreLock::acquire(&store).unwrap();
        let second = StoreLock::acquire(&store).unwrap_err();
        let pid = std::process::id();
        assert!(matches!(second, OpenError::Locked { pid: Some(p), .. } if p == pid));
        let message = second.to_string();
        assert!(
            message.starts_with(&format!(
                "another moauth (pid {pid}) holds the store at {}",
                store.display()
            )),
            "{message}"
        );
        drop(held);
        StoreLock::acquire(&store).unwrap();
    }

    #[test]
    fn check_dir_accepts_a_directory_still_to_be_made_and_refuses_a_file() {
        let dir = tempfile::tempdir().unwrap();
        check_dir(&dir.path().join("not/yet/there")).unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let error = check_dir(&file.join("store")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("[store] path must be a directory"),
            "{error}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no probe left"
        );
    }
}

//! sled's configuration: the two settings moauth changes from sled 0.34's defaults, and why.
//!
//! sled writes every change to a log cut into segments and reuses a segment only once at most
//! half of its bytes are still live, rewriting the pages that remain in it. With moauth's random
//! keys (challenges, session hashes) every leaf is rewritten again and again all over the log,
//! and with sled's 512 KiB segments most segments stayed more than half live: 2,600 B on disk
//! per live login for 300 B of data. 16 MiB segments and a background pass that cleans more
//! often cut that to 600 B (figures in BENCHMARKS.md, "sled's own configuration").
//!
//! sled records the segment size in the store's `conf` file and refuses to open a store with
//! another one, so a store keeps the size it was created with: a store made by an earlier
//! moauth opens with sled's default, and `moauth store export` then `import` into a new
//! directory moves it to the new size. (An earlier moauth refuses a store made with the new
//! size.)

use std::io::ErrorKind;
use std::path::Path;

/// Log segment size for a new store: sled's largest (it refuses more than 16 MiB). The segment
/// being written is buffered in memory, up to this size.
const NEW_STORE_SEGMENT_SIZE: usize = 16 << 20;

/// sled's own default, which a store without a readable `conf` entry was made with.
const SLED_DEFAULT_SEGMENT_SIZE: usize = 512 << 10;

/// How often sled's background thread writes out what is buffered, cleans segments (for up to
/// half the interval) and fsyncs. moauth flushes explicitly after each batch, so this thread
/// only adds cleaning: sled's default 500 ms left more segments waiting to be reclaimed.
const BACKGROUND_EVERY_MS: u64 = 50;

/// The configuration the store at `dir` opens with: `dir`'s recorded segment size if it has
/// one, the new size otherwise.
pub fn config(dir: &Path, cache_capacity_mb: u64) -> std::io::Result<sled::Config> {
    let segment_size = match std::fs::read(dir.join("conf")) {
        Ok(conf) => recorded_segment_size(&conf).unwrap_or(SLED_DEFAULT_SEGMENT_SIZE),
        Err(e) if e.kind() == ErrorKind::NotFound => NEW_STORE_SEGMENT_SIZE,
        Err(e) => return Err(e),
    };
    Ok(tuned()
        .path(dir)
        .segment_size(segment_size)
        .cache_capacity(cache_capacity_mb * 1024 * 1024))
}

/// A store in a temporary directory with a new store's settings (tests).
pub fn temporary() -> sled::Config {
    tuned().segment_size(NEW_STORE_SEGMENT_SIZE).temporary(true)
}

fn tuned() -> sled::Config {
    sled::Config::new().flush_every_ms(Some(BACKGROUND_EVERY_MS))
}

/// The `segment_size: N` line of sled's `conf` file (text lines, then a CRC that sled checks
/// itself when it opens the store).
fn recorded_segment_size(conf: &[u8]) -> Option<usize> {
    conf.split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"segment_size: "))
        .and_then(|value| std::str::from_utf8(value).ok()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store made with sled's defaults (every moauth before this one) opens, keeps its
    /// segment size and its data; a new store gets the new size, and opens again.
    #[test]
    fn a_store_keeps_the_segment_size_it_was_made_with() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old");
        {
            let db = sled::Config::new().path(&old).open().unwrap();
            db.insert(b"k", b"v").unwrap();
            db.flush().unwrap();
        }
        let db = config(&old, 8).unwrap().open().unwrap();
        assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
        drop(db);
        let conf = std::fs::read(old.join("conf")).unwrap();
        assert_eq!(
            recorded_segment_size(&conf),
            Some(SLED_DEFAULT_SEGMENT_SIZE)
        );

        let new = dir.path().join("new");
        drop(config(&new, 8).unwrap().open().unwrap());
        let conf = std::fs::read(new.join("conf")).unwrap();
        assert_eq!(recorded_segment_size(&conf), Some(NEW_STORE_SEGMENT_SIZE));
        drop(config(&new, 8).unwrap().open().unwrap());
    }
}

//! Backend API keys: several named keys, kept only as SHA-256 hashes, checked in constant time.
//!
//! The config holds the hash of each key (`printf %s "$KEY" | sha256sum`), so the file grants
//! nothing to whoever reads it. A presented key is hashed once and compared with every
//! configured hash without stopping at a match, so the time taken tells neither which key
//! matched nor how close a guess came. The answer is the key's *name*: that is what logs and
//! webhooks speak of, never the key. The set is reloadable (SIGHUP); handlers load it per request.

use sha2::{Digest, Sha256};

use super::config::ApiKey;

/// SHA-256 of an API key as the config expects it, for `moauth hash-key` and tests.
pub fn api_key_hash(key: &str) -> String {
    digest(key).iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a presented or configured key, as compared by `same_digest`.
pub(crate) fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether two digests are equal, in constant time: every byte is looked at, whatever differs.
pub(crate) fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Clone, Default)]
pub struct ApiKeys(Vec<(String, [u8; 32])>);

impl ApiKeys {
    /// The config validated every hash as 64 hex digits; anything else cannot match.
    pub fn from_config(keys: &[ApiKey]) -> ApiKeys {
        ApiKeys(
            keys.iter()
                .filter_map(|k| {
                    let hash = hex::decode(&k.sha256).ok()?.try_into().ok()?;
                    Some((k.name.clone(), hash))
                })
                .collect(),
        )
    }

    /// No key configured: the keyed routes are switched off.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The name of the backend that holds `key`, if any does.
    pub fn authenticate(&self, key: &str) -> Option<&str> {
        let presented = digest(key);
        self.0.iter().fold(None, |found, (name, hash)| {
            if same_digest(hash, &presented) {
                Some(name.as_str())
            } else {
                found
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, secret: &str) -> ApiKey {
        ApiKey {
            name: name.into(),
            sha256: api_key_hash(secret),
        }
    }

    #[test]
    fn each_key_names_its_own_backend() {
        let keys = ApiKeys::from_config(&[key("shop", "k-shop"), key("crm", "k-crm")]);
        assert_eq!(keys.authenticate("k-shop"), Some("shop"));
        assert_eq!(keys.authenticate("k-crm"), Some("crm"));
        assert_eq!(keys.authenticate("k-cr"), None);
        assert_eq!(keys.authenticate(""), None);
    }

    #[test]
    fn a_hash_that_is_not_64_hex_digits_matches_nothing() {
        let keys = ApiKeys::from_config(&[ApiKey {
            name: "bad".into(),
            sha256: "ab".into(),
        }]);
        assert!(keys.is_empty());
    }
}

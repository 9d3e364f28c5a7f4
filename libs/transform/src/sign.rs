//! imgproxy-style URL signatures:
//! `base64url_nopad(HMAC-SHA256(key, salt || "/{options}/{image_id}.{ext}"))`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A signing `(key, salt)` pair, raw bytes.
pub type KeyPair = (Vec<u8>, Vec<u8>);

/// Why signing keys could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No key pair was given.
    #[error("at least one signing key pair is required")]
    Empty,
    /// A key is empty.
    #[error("signing key {0} is empty")]
    EmptyKey(usize),
    /// A `key:salt` entry is malformed (its position, 1-based, and the reason).
    #[error("signing key pair {0}: {1}")]
    Malformed(usize, String),
}

/// Signs and verifies transform URLs with one or more `(key, salt)` pairs: the first signs,
/// any verifies (for key rotation).
#[derive(Clone)]
pub struct Signer {
    /// HMAC state keyed once per pair, and the salt.
    pairs: Vec<(HmacSha256, Vec<u8>)>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key_pairs", &self.pairs.len())
            .finish_non_exhaustive()
    }
}

/// True when `signature` is the marker of an unsigned request (`_` or `unsafe`).
pub fn is_unsigned(signature: &str) -> bool {
    signature == "_" || signature == "unsafe"
}

/// Parses `hexkey:hexsalt,hexkey2:hexsalt2` (as in configuration) into key pairs.
pub fn parse_key_pairs(s: &str) -> Result<Vec<KeyPair>, KeyError> {
    let mut pairs = Vec::new();
    for (i, entry) in s.split(',').map(str::trim).enumerate() {
        let n = i + 1;
        let (key, salt) = entry
            .split_once(':')
            .ok_or_else(|| KeyError::Malformed(n, "expected hexkey:hexsalt".into()))?;
        let key =
            hex::decode(key).map_err(|e| KeyError::Malformed(n, format!("key is not hex: {e}")))?;
        let salt = hex::decode(salt)
            .map_err(|e| KeyError::Malformed(n, format!("salt is not hex: {e}")))?;
        if key.is_empty() {
            return Err(KeyError::EmptyKey(n));
        }
        pairs.push((key, salt));
    }
    Ok(pairs)
}

impl Signer {
    /// A signer over `(key, salt)` pairs; the first pair signs.
    pub fn new(pairs: Vec<KeyPair>) -> Result<Self, KeyError> {
        if pairs.is_empty() {
            return Err(KeyError::Empty);
        }
        let pairs = pairs
            .into_iter()
            .enumerate()
            .map(|(i, (key, salt))| {
                if key.is_empty() {
                    return Err(KeyError::EmptyKey(i + 1));
                }
                let mac = HmacSha256::new_from_slice(&key)
                    .map_err(|e| KeyError::Malformed(i + 1, e.to_string()))?;
                Ok((mac, salt))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { pairs })
    }

    fn mac(keyed: &HmacSha256, salt: &[u8], path: &str) -> HmacSha256 {
        let mut mac = keyed.clone();
        mac.update(salt);
        mac.update(path.as_bytes());
        mac
    }

    /// The signature of a signed path `/{options}/{image_id}.{ext}` (as it appears in the URL).
    pub fn sign(&self, path: &str) -> String {
        // `new` guarantees at least one pair.
        let Some((keyed, salt)) = self.pairs.first() else {
            return String::new();
        };
        URL_SAFE_NO_PAD.encode(Self::mac(keyed, salt, path).finalize().into_bytes())
    }

    /// The signature of `/{options}/{image_id}.{ext}`.
    pub fn sign_path(&self, options: &str, image_id: impl fmt::Display, ext: &str) -> String {
        self.sign(&format!("/{options}/{image_id}.{ext}"))
    }

    /// The whole URL path `/t/{signature}/{options}/{image_id}.{ext}`.
    pub fn url_path(&self, options: &str, image_id: impl fmt::Display, ext: &str) -> String {
        let id = image_id.to_string();
        let sig = self.sign_path(options, &id, ext);
        format!("/t/{sig}/{options}/{id}.{ext}")
    }

    /// True when `signature` matches the signed `path` (`/{options}/{image_id}.{ext}`, exactly as
    /// it appears in the request URL) under any key pair (constant-time comparison).
    pub fn verify(&self, signature: &str, path: &str) -> bool {
        let Ok(sig) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        self.pairs.iter().fold(false, |ok, (keyed, salt)| {
            Self::mac(keyed, salt, path).verify_slice(&sig).is_ok() | ok
        })
    }

    /// [`Signer::verify`] for the path built from its parts.
    pub fn verify_parts(
        &self,
        signature: &str,
        options: &str,
        image_id: impl fmt::Display,
        ext: &str,
    ) -> bool {
        self.verify(signature, &format!("/{options}/{image_id}.{ext}"))
    }
}

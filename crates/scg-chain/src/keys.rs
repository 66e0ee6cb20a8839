//! Member keys: ed25519 secret keys made from the operating system's randomness and kept in a
//! file only the owner can read (mode 0600, set when the file is created, never after).
//!
//! Key file format (text, one line each): `scg-chain-key-v1`, then the 32-byte ed25519 secret
//! seed as 64 lowercase hex digits. The public key is derived, never stored, so the two cannot
//! disagree. This module must never derive a key from anything but the OS's randomness or a
//! key file (seed-derived keys belong to `scg simulate`'s simulation chains only).

use crate::ChainError;
use ed25519_dalek::SigningKey;
use scg_ledger::merkle::{from_hex, to_hex};
use std::io::Write as _;
use std::path::Path;

/// First line of a key file.
pub const KEY_FILE_HEADER: &str = "scg-chain-key-v1";

/// A member's secret key.
#[derive(Clone)]
pub struct MemberKey {
    seed: [u8; 32],
}

impl std::fmt::Debug for MemberKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "MemberKey({})", self.public_hex())
    }
}

impl MemberKey {
    /// A new key from the operating system's randomness.
    pub fn generate() -> Result<Self, ChainError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| ChainError::BadInput {
            what: "OS randomness".into(),
            reason: e.to_string(),
        })?;
        Ok(Self { seed })
    }

    /// A key from its 32-byte seed (tests and simulations, which say so in their genesis).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self { seed }
    }

    /// The ed25519 signing key used for ledger transactions.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_bytes(&self.seed)
    }

    /// The same key as a consensus/p2p identity.
    pub fn consensus_key(&self) -> commonware_cryptography::ed25519::PrivateKey {
        use commonware_codec::DecodeExt as _;
        // 32 bytes always decode to a key (the seed of RFC 8032); the tests check that both
        // libraries derive the same public key from it.
        match commonware_cryptography::ed25519::PrivateKey::decode(commonware_codec::Copying(
            &self.seed[..],
        )) {
            Ok(k) => k,
            Err(e) => unreachable!("a 32-byte ed25519 seed always decodes: {e}"),
        }
    }

    /// The 32-byte public key.
    pub fn public(&self) -> [u8; 32] {
        self.signing_key().verifying_key().to_bytes()
    }

    /// The public key as hex.
    pub fn public_hex(&self) -> String {
        to_hex(&self.public())
    }

    /// Write a new key file with mode 0600; refuses to overwrite.
    pub fn write_new(&self, path: &Path) -> Result<(), ChainError> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                ChainError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                ChainError::Io {
                    path: path.to_path_buf(),
                    source: e,
                }
            }
        })?;
        let text = format!("{KEY_FILE_HEADER}\n{}\n", to_hex(&self.seed));
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| ChainError::Io {
                path: path.to_path_buf(),
                source: e,
            })
    }

    /// Read a key file.
    pub fn read(path: &Path) -> Result<Self, ChainError> {
        let text = crate::read_text(path, crate::MAX_KEY_FILE_BYTES)?;
        Self::parse(&text).map_err(|reason| ChainError::KeyFile {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parse key file text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines();
        match lines.next() {
            Some(KEY_FILE_HEADER) => {}
            Some(other) => {
                return Err(format!(
                    "line 1: expected `{KEY_FILE_HEADER}`, found `{}`",
                    other.chars().take(40).collect::<String>()
                ));
            }
            None => return Err("empty file".into()),
        }
        let hex = lines.next().ok_or("line 2: missing secret key")?.trim();
        let seed = from_hex::<32>(hex).ok_or_else(|| {
            format!(
                "line 2: expected 64 hex digits, found {} characters",
                hex.len()
            )
        })?;
        if lines.any(|l| !l.trim().is_empty()) {
            return Err("unexpected lines after the secret key".into());
        }
        Ok(Self { seed })
    }
}

/// Parse a 32-byte public key from hex, naming the field on error.
pub fn parse_public_key(field: &str, hex: &str) -> Result<[u8; 32], String> {
    let key = from_hex::<32>(hex.trim()).ok_or_else(|| {
        format!(
            "{field}: expected 64 hex digits, found `{}`",
            hex.chars().take(70).collect::<String>()
        )
    })?;
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map_err(|_| format!("{field}: not an ed25519 public key"))?;
    if vk.is_weak() {
        return Err(format!("{field}: a small-order (weak) ed25519 key"));
    }
    Ok(key)
}

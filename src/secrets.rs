//! Encryption of stored secrets (webhook signing secrets and credentials):
//! they must be used in clear to sign or authenticate, so they cannot be
//! hashed like API tokens. ChaCha20-Poly1305 with a 256-bit service key.
//!
//! The key comes from `GENSAIL_SECRET_KEY` (64 hex digits), else from
//! `DATA_DIR/secret.key`, created with mode 0600 on first start. Losing the key
//! loses the stored secrets (they can be set again); it is never logged. Every
//! server of a deployment needs the same key: the database records the key's
//! fingerprint, and a server with another key refuses to start.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// Encrypts and decrypts stored secrets.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
    fingerprint: String,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// The configured key (`GENSAIL_SECRET_KEY`), else the data directory's.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        if let Some(hex_key) = configured {
            let bytes =
                hex::decode(hex_key.trim()).map_err(|_| anyhow::anyhow!("GENSAIL_SECRET_KEY must be 64 hex digits"))?;
            anyhow::ensure!(bytes.len() == 32, "GENSAIL_SECRET_KEY must be 64 hex digits (32 bytes)");
            return Ok(Self::from_key(&bytes));
        }
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("secret.key");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                write_private(&path, &key)?;
                key.to_vec()
            }
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        };
        anyhow::ensure!(bytes.len() == 32, "{} is not a 32-byte key", path.display());
        Ok(Self::from_key(&bytes))
    }

    fn from_key(key: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        let fingerprint =
            hex::encode(&Sha256::digest([b"gensail secret key fingerprint:".as_slice(), key].concat())[..8]);
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
            fingerprint,
        }
    }

    /// A short one-way fingerprint of the key, to tell whether two servers share it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// `v1:` + hex(nonce ‖ ciphertext).
    pub fn seal(&self, plaintext: &str) -> String {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("encryption of a short secret cannot fail");
        format!("v1:{}{}", hex::encode(nonce), hex::encode(sealed))
    }

    /// The plaintext of [`seal`](Self::seal)'s output.
    pub fn open(&self, sealed: &str) -> anyhow::Result<String> {
        let bytes = sealed
            .strip_prefix("v1:")
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() > 12);
        let bytes = bytes.ok_or_else(|| anyhow::anyhow!("stored secret is malformed"))?;
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(&bytes[..12]), &bytes[12..])
            .map_err(|_| anyhow::anyhow!("stored secret does not decrypt with this service key"))?;
        Ok(String::from_utf8(plain)?)
    }
}

/// `...x7f9`: the last four characters, for telling secrets apart.
pub fn hint(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("...{tail}")
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let b = SecretBox::from_key(&[7; 32]);
        let sealed = b.seal("whsec_abc");
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(sealed, b.seal("whsec_abc"), "a fresh nonce every time");
        assert_eq!(b.open(&sealed).unwrap(), "whsec_abc");
        assert!(SecretBox::from_key(&[8; 32]).open(&sealed).is_err());
        assert_eq!(hint("secret-x7f9"), "...x7f9");
    }
}

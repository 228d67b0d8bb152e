//! An endpoint's identity kept in a file, so that a node keeps its public key across runs
//! (peers pin it: `connect_to`, `weir send --peer-key`).
//!
//! The file is text: comment lines (`#`), among them the public key for a person to copy,
//! and one line `secret HEX` with the 32-byte X25519 secret key in 64 hex digits. It is
//! created readable and writable by its owner only (0600 on Unix), and on Unix one that
//! others may read is refused when loaded, as ssh refuses such a key. The secret is wiped
//! from memory once the file is written or parsed ([`Identity`] wipes its own on drop).
//!
//! The default location is `$WEIR_IDENTITY`, else `$XDG_CONFIG_HOME/weir/identity`, else
//! `$HOME/.config/weir/identity` ([`default_path`]).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use weir_core::Identity;

/// Why an identity file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityFileError {
    /// It cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// It exists already (a new identity never replaces one unless asked to).
    #[error("{}: an identity file exists there already", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// It holds no `secret` line of 64 hex digits.
    #[error("{}: not an identity file (no `secret` line of 64 hex digits)", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// Others than its owner may read or write it (Unix mode shown in octal).
    #[error("{}: others may read it (mode {mode:o}); make it private: chmod 600", path.display())]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// No file was named and there is no default location ([`default_path`]: none of
    /// `$WEIR_IDENTITY`, `$XDG_CONFIG_HOME`, `$HOME` is set).
    #[error("no default location for the identity file ($WEIR_IDENTITY, $XDG_CONFIG_HOME and $HOME are unset): name the file")]
    NoLocation,
    /// The operating system's random generator failed.
    #[error("no randomness for a new identity: {0}")]
    Random(getrandom::Error),
}

/// Whether [`create`] may replace an identity file that exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    /// Never: an existing file is [`IdentityFileError::Exists`].
    No,
    /// Yes: the old identity is lost.
    Yes,
}

/// The default identity file: `$WEIR_IDENTITY`, else `$XDG_CONFIG_HOME/weir/identity`,
/// else `$HOME/.config/weir/identity`; `None` if none of them is set.
pub fn default_path() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("WEIR_IDENTITY")
        .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("weir").join("identity")))
        .or_else(|| var("HOME").map(|h| h.join(".config").join("weir").join("identity")))
}

/// A new identity from the operating system's random generator, written to `path` (its
/// directory made if missing) readable by its owner only.
pub fn create(path: &Path, replace: Replace) -> Result<Identity, IdentityFileError> {
    let io = |source| IdentityFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(secret.as_mut()).map_err(IdentityFileError::Random)?;
    let identity = Identity::from_secret(*secret);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if replace == Replace::Yes {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => IdentityFileError::Exists {
            path: path.to_path_buf(),
        },
        _ => io(e),
    })?;
    // Written in place, its room reserved first, so no copy of the secret is left behind
    // by a reallocation.
    let mut text = zeroize::Zeroizing::new(String::with_capacity(256));
    text.push_str("# weir identity: keep this file secret.\n# public key ");
    text.push_str(&identity.public_key().to_string());
    text.push_str("\nsecret ");
    for b in identity.secret_bytes() {
        let _ = write!(text, "{b:02x}");
    }
    text.push('\n');
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(identity)
}

/// The identity in the file at `path`.
pub fn load(path: &Path) -> Result<Identity, IdentityFileError> {
    let io = |source| IdentityFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(IdentityFileError::Exposed {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
    let malformed = || IdentityFileError::Malformed {
        path: path.to_path_buf(),
    };
    let digits = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("secret "))
        .map(str::trim)
        .ok_or_else(malformed)?;
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    if digits.len() != 64 || !digits.is_ascii() {
        return Err(malformed());
    }
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| malformed())?;
    }
    Ok(Identity::from_secret(*secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_written_reads_back_the_same_and_is_never_replaced_unasked() {
        let dir = std::env::temp_dir().join(format!("weir-identity-{}", std::process::id()));
        let path = dir.join("sub").join("identity");
        let made = create(&path, Replace::No).unwrap();
        assert_eq!(load(&path).unwrap(), made);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&made.public_key().to_string()),
            "the key to copy: {text}"
        );
        assert!(matches!(
            create(&path, Replace::No),
            Err(IdentityFileError::Exists { .. })
        ));
        assert_eq!(load(&path).unwrap(), made, "untouched");
        let other = create(&path, Replace::Yes).unwrap();
        assert_ne!(other, made);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                load(&path),
                Err(IdentityFileError::Exposed { mode: 0o644, .. })
            ));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(&path, "secret nothex\n").unwrap();
        assert!(matches!(load(&path), Err(IdentityFileError::Malformed { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! OpenPGP verification of `InRelease` files against a keyring, with composer's own policy.
//!
//! rPGP (`pgp`) parses and does the cryptography; it applies no policy, so this module does:
//! a signature counts only when
//!
//! - its hash is SHA-2 or SHA-3 (MD5, SHA-1 and RIPEMD-160 are refused: [`SignatureError::WeakHash`]);
//! - it was made no later than `now` plus [`CLOCK_SKEW_SECS`], and has not itself expired;
//! - it verifies against a key of the keyring: a primary key, or a subkey bound to its primary
//!   by a valid binding signature that carries a valid back-signature;
//! - that key (and for a subkey, its primary too) is not revoked, existed when the signature
//!   was made, had not expired then, and is flagged for signing.
//!
//! Key validity is judged at the signature's creation time, from the newest valid
//! self-signature (or subkey binding) made at or before it. When every self-signature is
//! newer than the signature (keyrings only carry the latest ones after a key is re-signed),
//! the oldest is used. Any self-revocation revokes, whatever its reason code. Third-party
//! certifications are ignored: rPGP's `verify_bindings` fails on them, which is why this
//! module never calls it on whole keys.
//!
//! [`verify_inrelease`] returns the signed text as it stands in the file: dash-escaping
//! removed, line endings kept, and the line ending before `-----BEGIN PGP SIGNATURE-----`
//! kept too (RFC 9580 §7.1 counts it as part of the armor, but keeping it makes the payload
//! byte-identical to the detached `Release` file). Trailing blanks on a line are returned as
//! found even though the signature does not cover them (OpenPGP strips them before hashing),
//! so the caller's deb822 parser should trim them.

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey, SignedPublicSubKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType, SubpacketData};
use pgp::types::{KeyDetails, Tag};

use crate::time::format_rfc3339;

/// The Debian archive keyring (`/usr/share/keyrings/debian-archive-keyring.gpg` of the
/// Debian package `debian-archive-keyring`; see `lib/keyrings/README.md` for the version),
/// shipped inside composer so that verification does not depend on the host.
pub const DEBIAN_ARCHIVE_KEYRING: &[u8] =
    include_bytes!("../../keyrings/debian-archive-keyring.gpg");

/// How far in the future (relative to `now`) a signature's creation time may be.
pub const CLOCK_SKEW_SECS: i64 = 300;

/// Why an `InRelease` file was not accepted. Keys are named by uppercase hex fingerprints
/// (or 16-digit key ids when a signature names no fingerprint); times are UTC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The input is not a cleartext-signed OpenPGP message.
    #[error("the file is not signed: it does not start with `-----BEGIN PGP SIGNED MESSAGE-----`")]
    Unsigned,
    /// Signed, but by no key in the keyring.
    #[error("the file is signed by no key in the keyring (signed by: {})", key_ids.join(", "))]
    NoKnownKey {
        /// Issuer fingerprints or key ids named by the signatures.
        key_ids: Vec<String>,
    },
    /// The signature does not match the text: the file was modified or corrupted.
    #[error(
        "the signature by {key} does not match the signed text: the file was modified or the signature is corrupt"
    )]
    BadSignature {
        /// The key the signature claims.
        key: String,
    },
    /// The signing key (or its primary) had expired when the signature was made.
    #[error("the signing key {key} had expired ({}) when it made the signature", format_rfc3339(*at))]
    Expired {
        /// The expired key.
        key: String,
        /// When it expired (Unix seconds).
        at: i64,
    },
    /// The signing key (or its primary) is revoked.
    #[error("the signing key {key} is revoked")]
    Revoked {
        /// The revoked key.
        key: String,
    },
    /// The key cannot sign: not flagged for signing, not validly bound, or newer than the signature.
    #[error("the key {key} cannot have made this signature: {reason}")]
    UnusableKey {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The signature uses a hash algorithm composer does not accept.
    #[error(
        "the signature by {key} uses the hash algorithm {hash}, which is not accepted (SHA-2 or SHA-3 required)"
    )]
    WeakHash {
        /// The signing key.
        key: String,
        /// The algorithm's name.
        hash: String,
    },
    /// The signature was made after `now` (plus the allowed clock skew).
    #[error(
        "the signature by {key} was made in the future ({}, now is {}): check the clock",
        format_rfc3339(*at),
        format_rfc3339(*now)
    )]
    FromTheFuture {
        /// The signing key.
        key: String,
        /// The signature's creation time.
        at: i64,
        /// The `now` it was checked against.
        now: i64,
    },
    /// The signature carries an expiration time that has passed.
    #[error("the signature by {key} expired at {}", format_rfc3339(*at))]
    SignatureExpired {
        /// The signing key.
        key: String,
        /// When the signature expired.
        at: i64,
    },
    /// The message or the keyring cannot be parsed.
    #[error("malformed OpenPGP data: {0}")]
    Malformed(String),
}

/// Verifies a cleartext-signed `InRelease` against `keyring` at time `now` (Unix seconds)
/// and returns the signed payload (the `Release` text) exactly as in the file.
///
/// The keyring may be binary (`.gpg`/`.pgp`, any number of keys) or ASCII-armored (one or
/// more `PUBLIC KEY BLOCK`s). At least one signature must pass; see the module docs for the
/// policy.
///
/// # Errors
/// [`SignatureError`]: when no signature passes, the error of the first signature by a known
/// key (a [`SignatureError::BadSignature`] in preference to any other), else
/// [`SignatureError::NoKnownKey`].
pub fn verify_inrelease(
    inrelease: &[u8],
    keyring: &[u8],
    now: i64,
) -> Result<Vec<u8>, SignatureError> {
    let msg = parse_cleartext(inrelease)?;
    let keys = parse_keyring(keyring)?;
    let signed_text = msg.signed_text();
    let mut unknown: Vec<String> = Vec::new();
    let mut failures: Vec<SignatureError> = Vec::new();
    for sig in msg.signatures() {
        match check_signature(sig, &keys, signed_text.as_bytes(), now) {
            Ok(()) => return Ok(payload(msg.text())),
            Err(Outcome::Unknown(ids)) => unknown.extend(ids),
            Err(Outcome::Failed(e)) => failures.push(e),
        }
    }
    if let Some(bad) = failures
        .iter()
        .find(|e| matches!(e, SignatureError::BadSignature { .. }))
    {
        return Err(bad.clone());
    }
    if let Some(first) = failures.into_iter().next() {
        return Err(first);
    }
    unknown.dedup();
    Err(SignatureError::NoKnownKey { key_ids: unknown })
}

/// Fingerprints (uppercase hex) of the primary keys in `keyring`, in keyring order.
///
/// # Errors
/// [`SignatureError::Malformed`] when the keyring cannot be parsed or holds no key.
pub fn keyring_fingerprints(keyring: &[u8]) -> Result<Vec<String>, SignatureError> {
    Ok(parse_keyring(keyring)?
        .iter()
        .map(|k| fingerprint(&k.primary_key))
        .collect())
}

const SIGNED_HEADER: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
const KEY_BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const KEY_END: &str = "-----END PGP PUBLIC KEY BLOCK-----";

fn malformed(what: &str, e: impl std::fmt::Display) -> SignatureError {
    SignatureError::Malformed(format!("{what}: {e}"))
}

fn parse_cleartext(inrelease: &[u8]) -> Result<CleartextSignedMessage, SignatureError> {
    if !inrelease.starts_with(SIGNED_HEADER) {
        // Text before the header would not be covered by the signature; refuse it rather
        // than risk a caller reading unsigned lines.
        if inrelease
            .windows(SIGNED_HEADER.len())
            .any(|w| w == SIGNED_HEADER)
        {
            return Err(SignatureError::Malformed(
                "text before `-----BEGIN PGP SIGNED MESSAGE-----` is not covered by the signature"
                    .into(),
            ));
        }
        return Err(SignatureError::Unsigned);
    }
    let text = std::str::from_utf8(inrelease)
        .map_err(|e| malformed("the signed message is not UTF-8", e))?;
    let (msg, _headers) = CleartextSignedMessage::from_string(text)
        .map_err(|e| malformed("cannot parse the cleartext-signed message", e))?;
    if msg.signatures().is_empty() {
        return Err(SignatureError::Malformed(
            "the signed message has no signature".into(),
        ));
    }
    Ok(msg)
}

/// The payload from rPGP's dash-escaped text (so it is exactly what was verified), plus the
/// final line ending that rPGP drops.
fn payload(csf_text: &str) -> Vec<u8> {
    if csf_text.is_empty() {
        return Vec::new();
    }
    let mut out = String::with_capacity(csf_text.len() + 2);
    for line in csf_text.split_inclusive('\n') {
        // The same rule as rPGP's dash_unescape_and_trim, without the trimming.
        out.push_str(line.strip_prefix("- ").unwrap_or(line));
    }
    out.push_str(if csf_text.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    });
    out.into_bytes()
}

fn parse_keyring(keyring: &[u8]) -> Result<Vec<SignedPublicKey>, SignatureError> {
    let Some(start) = keyring.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err(SignatureError::Malformed("the keyring is empty".into()));
    };
    let mut keys = Vec::new();
    if keyring[start] & 0x80 != 0 {
        let parsed = SignedPublicKey::from_bytes_many(&keyring[start..])
            .map_err(|e| malformed("cannot read the binary keyring", e))?;
        for key in parsed {
            keys.push(key.map_err(|e| malformed("cannot read a key of the binary keyring", e))?);
        }
    } else {
        let not_openpgp = || {
            SignatureError::Malformed(
                "the keyring is neither a binary OpenPGP keyring nor an ASCII-armored public key block"
                    .into(),
            )
        };
        let text = std::str::from_utf8(keyring).map_err(|_| not_openpgp())?;
        let mut rest = text;
        let mut blocks = 0;
        while let Some(i) = rest.find(KEY_BEGIN) {
            let block = &rest[i..];
            let end = block.find(KEY_END).ok_or_else(|| {
                SignatureError::Malformed(format!(
                    "an armored key block in the keyring has no `{KEY_END}` line"
                ))
            })? + KEY_END.len();
            let (parsed, _headers) = SignedPublicKey::from_armor_many(&block.as_bytes()[..end])
                .map_err(|e| malformed("cannot read the armored keyring", e))?;
            for key in parsed {
                keys.push(
                    key.map_err(|e| malformed("cannot read a key of the armored keyring", e))?,
                );
            }
            blocks += 1;
            rest = &block[end..];
        }
        if blocks == 0 {
            return Err(not_openpgp());
        }
    }
    if keys.is_empty() {
        return Err(SignatureError::Malformed(
            "the keyring holds no public key".into(),
        ));
    }
    Ok(keys)
}

fn fingerprint(key: &impl KeyDetails) -> String {
    format!("{:X}", key.fingerprint())
}

/// What happened to one signature.
enum Outcome {
    /// No key of the keyring is its issuer; the issuer names.
    Unknown(Vec<String>),
    /// A known key's signature that does not pass.
    Failed(SignatureError),
}

/// A key of the keyring that may have made a signature.
enum Candidate<'a> {
    Primary(&'a SignedPublicKey),
    Subkey(&'a SignedPublicKey, &'a SignedPublicSubKey),
}

impl Candidate<'_> {
    fn name(&self) -> String {
        match self {
            Candidate::Primary(k) => fingerprint(&k.primary_key),
            Candidate::Subkey(_, sk) => fingerprint(&sk.key),
        }
    }
}

/// Whether `sig` names `key` as its issuer (or names no issuer at all).
fn issued_by(sig: &Signature, key: &impl KeyDetails) -> bool {
    let ids = sig.issuer_key_id();
    let fprs = sig.issuer_fingerprint();
    if ids.is_empty() && fprs.is_empty() {
        return true;
    }
    ids.iter().any(|id| **id == key.legacy_key_id())
        || fprs.iter().any(|fp| **fp == key.fingerprint())
}

fn issuer_names(sig: &Signature) -> Vec<String> {
    let fprs = sig.issuer_fingerprint();
    if !fprs.is_empty() {
        return fprs.iter().map(|fp| format!("{fp:X}")).collect();
    }
    let ids: Vec<String> = sig
        .issuer_key_id()
        .iter()
        .map(|id| hex::encode_upper(id.as_ref()))
        .collect();
    if ids.is_empty() {
        vec!["(no issuer named)".into()]
    } else {
        ids
    }
}

fn strong_hash(hash: HashAlgorithm) -> bool {
    matches!(
        hash,
        HashAlgorithm::Sha224
            | HashAlgorithm::Sha256
            | HashAlgorithm::Sha384
            | HashAlgorithm::Sha512
            | HashAlgorithm::Sha3_256
            | HashAlgorithm::Sha3_512
    )
}

fn created(sig: &Signature) -> Option<i64> {
    sig.created().map(|t| i64::from(t.as_secs()))
}

fn check_signature(
    sig: &Signature,
    keys: &[SignedPublicKey],
    signed_text: &[u8],
    now: i64,
) -> Result<(), Outcome> {
    let mut candidates = Vec::new();
    for k in keys {
        if issued_by(sig, &k.primary_key) {
            candidates.push(Candidate::Primary(k));
        }
        for sk in &k.public_subkeys {
            if issued_by(sig, &sk.key) {
                candidates.push(Candidate::Subkey(k, sk));
            }
        }
    }
    let Some(first) = candidates.first() else {
        return Err(Outcome::Unknown(issuer_names(sig)));
    };
    let fail = |e| Err(Outcome::Failed(e));
    let name = first.name();
    let Some(hash) = sig.hash_alg() else {
        return fail(SignatureError::Malformed(format!(
            "the signature by {name} has an unsupported version"
        )));
    };
    if !strong_hash(hash) {
        return fail(SignatureError::WeakHash {
            key: name,
            hash: hash.to_string(),
        });
    }
    if !matches!(sig.typ(), Some(SignatureType::Text | SignatureType::Binary)) {
        return fail(SignatureError::Malformed(format!(
            "the signature by {name} is not a document signature ({:?})",
            sig.typ()
        )));
    }
    let Some(at) = created(sig) else {
        return fail(SignatureError::Malformed(format!(
            "the signature by {name} has no creation time"
        )));
    };
    if at > now.saturating_add(CLOCK_SKEW_SECS) {
        return fail(SignatureError::FromTheFuture { key: name, at, now });
    }
    if let Some(d) = sig.signature_expiration_time()
        && d.as_secs() > 0
    {
        let expiry = at + i64::from(d.as_secs());
        if expiry <= now {
            return fail(SignatureError::SignatureExpired {
                key: name,
                at: expiry,
            });
        }
    }
    for c in &candidates {
        let verified = match c {
            Candidate::Primary(k) => sig.verify(&k.primary_key, signed_text),
            Candidate::Subkey(_, sk) => sig.verify(&sk.key, signed_text),
        };
        if verified.is_ok() {
            return key_usable(c, at).map_err(Outcome::Failed);
        }
    }
    fail(SignatureError::BadSignature { key: name })
}

/// The self-signature in force at `at`: the newest made at or before it, else the oldest.
fn in_force(sigs: Vec<&Signature>, at: i64) -> Option<&Signature> {
    let mut sigs: Vec<(i64, &Signature)> = sigs
        .into_iter()
        .filter_map(|s| created(s).map(|t| (t, s)))
        .collect();
    sigs.sort_by_key(|(t, _)| *t);
    sigs.iter()
        .rev()
        .find(|(t, _)| *t <= at)
        .or_else(|| sigs.first())
        .map(|(_, s)| *s)
}

/// Whether the signature carries a key-flags subpacket (absent means "any use" for a primary).
fn has_key_flags(sig: &Signature) -> bool {
    sig.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    })
}

fn expired(key: &impl KeyDetails, binding: &Signature, at: i64) -> Result<(), SignatureError> {
    if let Some(d) = binding.key_expiration_time()
        && d.as_secs() > 0
    {
        let expiry = i64::from(key.created_at().as_secs()) + i64::from(d.as_secs());
        if at >= expiry {
            return Err(SignatureError::Expired {
                key: fingerprint(key),
                at: expiry,
            });
        }
    }
    Ok(())
}

fn not_newer(key: &impl KeyDetails, at: i64) -> Result<(), SignatureError> {
    let created = i64::from(key.created_at().as_secs());
    if created > at {
        return Err(SignatureError::UnusableKey {
            key: fingerprint(key),
            reason: format!(
                "the key was created ({}) after the signature ({})",
                format_rfc3339(created),
                format_rfc3339(at)
            ),
        });
    }
    Ok(())
}

/// Checks the primary key at time `at`; returns its self-signature in force.
fn primary_usable(k: &SignedPublicKey, at: i64) -> Result<&Signature, SignatureError> {
    let pk = &k.primary_key;
    let revoked = k.details.revocation_signatures.iter().any(|s| {
        s.typ() == Some(SignatureType::KeyRevocation)
            && issued_by(s, pk)
            && s.verify_key(pk).is_ok()
    });
    if revoked {
        return Err(SignatureError::Revoked {
            key: fingerprint(pk),
        });
    }
    not_newer(pk, at)?;
    let mut self_sigs: Vec<&Signature> = Vec::new();
    for user in &k.details.users {
        for s in &user.signatures {
            let certification = matches!(
                s.typ(),
                Some(
                    SignatureType::CertGeneric
                        | SignatureType::CertPersona
                        | SignatureType::CertCasual
                        | SignatureType::CertPositive
                )
            );
            if certification
                && issued_by(s, pk)
                && s.verify_certification(pk, Tag::UserId, &user.id).is_ok()
            {
                self_sigs.push(s);
            }
        }
    }
    for s in &k.details.direct_signatures {
        if s.typ() == Some(SignatureType::Key) && issued_by(s, pk) && s.verify_key(pk).is_ok() {
            self_sigs.push(s);
        }
    }
    let Some(self_sig) = in_force(self_sigs, at) else {
        return Err(SignatureError::UnusableKey {
            key: fingerprint(pk),
            reason: "it has no valid self-signature".into(),
        });
    };
    expired(pk, self_sig, at)?;
    Ok(self_sig)
}

fn key_usable(c: &Candidate<'_>, at: i64) -> Result<(), SignatureError> {
    match c {
        Candidate::Primary(k) => {
            let self_sig = primary_usable(k, at)?;
            if has_key_flags(self_sig) && !self_sig.key_flags().sign() {
                return Err(SignatureError::UnusableKey {
                    key: fingerprint(&k.primary_key),
                    reason: "its key flags do not allow signing".into(),
                });
            }
            Ok(())
        }
        Candidate::Subkey(k, sk) => {
            primary_usable(k, at)?;
            let pk = &k.primary_key;
            let name = fingerprint(&sk.key);
            let revoked = sk.signatures.iter().any(|s| {
                s.typ() == Some(SignatureType::SubkeyRevocation)
                    && s.verify_subkey_binding(pk, &sk.key).is_ok()
            });
            if revoked {
                return Err(SignatureError::Revoked { key: name });
            }
            not_newer(&sk.key, at)?;
            let bindings: Vec<&Signature> = sk
                .signatures
                .iter()
                .filter(|s| {
                    s.typ() == Some(SignatureType::SubkeyBinding)
                        && s.verify_subkey_binding(pk, &sk.key).is_ok()
                })
                .collect();
            let Some(binding) = in_force(bindings, at) else {
                return Err(SignatureError::UnusableKey {
                    key: name,
                    reason: "no valid binding signature ties it to its primary key".into(),
                });
            };
            if !binding.key_flags().sign() {
                return Err(SignatureError::UnusableKey {
                    key: name,
                    reason: "its key flags do not allow signing".into(),
                });
            }
            let backsig_ok = binding
                .embedded_signature()
                .is_some_and(|b| b.verify_primary_key_binding(&sk.key, pk).is_ok());
            if !backsig_ok {
                return Err(SignatureError::UnusableKey {
                    key: name,
                    reason: "its binding has no valid back-signature (primary key binding)".into(),
                });
            }
            expired(&sk.key, binding, at)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Fixtures made by GnuPG with `lib/tests/data/pgp/generate.sh`.
    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/pgp/",
                $name
            ))
            .as_slice()
        };
    }

    const RELEASE: &[u8] = fixture!("release.txt");
    const ARCHIVE: &[u8] = fixture!("archive.gpg");
    /// 2026-01-01T00:00:00Z: after every fixture signature but the future one.
    const NOW: i64 = 1_767_225_600;

    fn fprs(ring: &[u8]) -> Vec<String> {
        keyring_fingerprints(ring).unwrap()
    }

    #[test]
    fn good_signature_by_subkey_returns_the_exact_release_text() {
        let payload = verify_inrelease(fixture!("good.InRelease"), ARCHIVE, NOW).unwrap();
        assert_eq!(payload, RELEASE);
    }

    #[test]
    fn armored_and_multi_key_keyrings_work() {
        for ring in [
            fixture!("archive.asc"),
            fixture!("ring.gpg"),
            fixture!("ring.asc"),
        ] {
            assert_eq!(
                verify_inrelease(fixture!("good.InRelease"), ring, NOW).unwrap(),
                RELEASE
            );
        }
        assert_eq!(fprs(fixture!("archive.asc")), fprs(ARCHIVE));
        assert_eq!(fprs(fixture!("ring.gpg")).len(), 5);
        let two = fprs(fixture!("ring.asc"));
        assert_eq!(two.len(), 2);
        assert_eq!(two[0], fprs(ARCHIVE)[0]);
        assert!(
            two.iter()
                .all(|f| f.len() == 40 && f.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }

    #[test]
    fn primary_key_signature_verifies() {
        // B signs with its primary key, as Debian's stable release keys do.
        let ring = fixture!("ring.asc");
        assert_eq!(
            verify_inrelease(fixture!("other.InRelease"), ring, NOW).unwrap(),
            RELEASE
        );
    }

    #[test]
    fn tampered_file_is_a_bad_signature() {
        let err = verify_inrelease(fixture!("tampered.InRelease"), ARCHIVE, NOW).unwrap_err();
        assert!(
            matches!(&err, SignatureError::BadSignature { key } if key.len() == 40),
            "{err:?}"
        );
        assert!(err.to_string().contains("modified"), "{err}");
    }

    #[test]
    fn unknown_signer_is_named() {
        let err = verify_inrelease(fixture!("other.InRelease"), ARCHIVE, NOW).unwrap_err();
        let b = fprs(fixture!("ring.asc"))[1].clone();
        assert_eq!(
            err,
            SignatureError::NoKnownKey {
                key_ids: vec![b.clone()]
            }
        );
        assert!(err.to_string().contains(&b), "{err}");
    }

    #[test]
    fn one_good_signature_of_two_is_enough() {
        let two = fixture!("two-sigs.InRelease");
        assert_eq!(verify_inrelease(two, ARCHIVE, NOW).unwrap(), RELEASE);
        let ring_b_only = {
            // B alone: the second armored block of ring.asc.
            let text = std::str::from_utf8(fixture!("ring.asc")).unwrap();
            let at = text.rfind(KEY_BEGIN).unwrap();
            text.as_bytes()[at..].to_vec()
        };
        assert_eq!(verify_inrelease(two, &ring_b_only, NOW).unwrap(), RELEASE);
    }

    #[test]
    fn unsigned_and_garbage() {
        assert_eq!(
            verify_inrelease(fixture!("unsigned.Release"), ARCHIVE, NOW),
            Err(SignatureError::Unsigned)
        );
        assert_eq!(
            verify_inrelease(b"", ARCHIVE, NOW),
            Err(SignatureError::Unsigned)
        );
        let mut prefixed = b"Origin: evil\n".to_vec();
        prefixed.extend_from_slice(fixture!("good.InRelease"));
        assert!(matches!(
            verify_inrelease(&prefixed, ARCHIVE, NOW),
            Err(SignatureError::Malformed(_))
        ));
        let mut suffixed = fixture!("good.InRelease").to_vec();
        suffixed.extend_from_slice(b"Origin: evil\n");
        assert!(matches!(
            verify_inrelease(&suffixed, ARCHIVE, NOW),
            Err(SignatureError::Malformed(_))
        ));
        let truncated = &fixture!("good.InRelease")[..400];
        assert!(matches!(
            verify_inrelease(truncated, ARCHIVE, NOW),
            Err(SignatureError::Malformed(_))
        ));
        for bad_ring in [&b""[..], b"  \n", b"not a keyring", &[0x99, 0x01]] {
            assert!(
                matches!(
                    verify_inrelease(fixture!("good.InRelease"), bad_ring, NOW),
                    Err(SignatureError::Malformed(_))
                ),
                "{bad_ring:?}"
            );
            assert!(keyring_fingerprints(bad_ring).is_err());
        }
    }

    #[test]
    fn dash_escaping_and_blanks_and_crlf_are_returned_as_in_the_file() {
        let dash = verify_inrelease(fixture!("dash.InRelease"), ARCHIVE, NOW).unwrap();
        assert_eq!(
            dash,
            b"Origin: dash test\n-leading dash\n- dash space\n-----five dashes\ntrailing blanks   \n\ttab\n\n"
        );
        let crlf = verify_inrelease(fixture!("crlf.InRelease"), ARCHIVE, NOW).unwrap();
        let want: Vec<u8> = String::from_utf8(RELEASE.to_vec())
            .unwrap()
            .replace('\n', "\r\n")
            .into_bytes();
        assert_eq!(crlf, want);
    }

    #[test]
    fn sha1_is_refused() {
        let err = verify_inrelease(fixture!("sha1.InRelease"), ARCHIVE, NOW).unwrap_err();
        assert!(
            matches!(&err, SignatureError::WeakHash { hash, .. } if hash == "SHA1"),
            "{err:?}"
        );
    }

    #[test]
    fn signature_from_the_future_is_refused_until_its_time() {
        let future = fixture!("future.InRelease");
        let err = verify_inrelease(future, ARCHIVE, NOW).unwrap_err();
        assert!(
            matches!(err, SignatureError::FromTheFuture { now: NOW, .. }),
            "{err:?}"
        );
        // 2030-01-01T00:00:00Z, within the skew and after.
        let t2030 = 1_893_456_000;
        assert!(verify_inrelease(future, ARCHIVE, t2030 - CLOCK_SKEW_SECS).is_ok());
        assert!(verify_inrelease(future, ARCHIVE, t2030 + 86_400).is_ok());
        assert!(verify_inrelease(future, ARCHIVE, t2030 - CLOCK_SKEW_SECS - 1).is_err());
    }

    #[test]
    fn key_expired_at_signing_time_is_refused() {
        let err =
            verify_inrelease(fixture!("expired.InRelease"), fixture!("ring.gpg"), NOW).unwrap_err();
        // C expired 2024-01-03T12:00:00Z (gpg reads a bare date as noon); it signed on
        // 2024-01-11.
        assert!(
            matches!(
                err,
                SignatureError::Expired {
                    at: 1_704_283_200,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("2024-01-03T12:00:00Z"), "{err}");
    }

    #[test]
    fn key_expired_after_signing_is_accepted() {
        // D expired 2024-02-01; it signed on 2024-01-15; verified "now" in 2026.
        let ok = verify_inrelease(
            fixture!("expired-later.InRelease"),
            fixture!("ring.gpg"),
            NOW,
        );
        assert_eq!(ok.unwrap(), RELEASE);
    }

    #[test]
    fn revoked_primary_and_revoked_subkey_are_refused() {
        let ring = fixture!("ring.gpg");
        for f in [
            fixture!("revoked.InRelease"),
            fixture!("subkey-revoked.InRelease"),
        ] {
            let err = verify_inrelease(f, ring, NOW).unwrap_err();
            assert!(matches!(err, SignatureError::Revoked { .. }), "{err:?}");
        }
    }

    #[test]
    fn debian_archive_keyring_parses() {
        let fprs = fprs(DEBIAN_ARCHIVE_KEYRING);
        // Debian 12 "bookworm" archive signing key and Debian 13 "trixie" release key.
        assert!(fprs.contains(&"B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8".to_string()));
        assert!(fprs.contains(&"41587F7DB8C774BCCF131416762F67A0B2C39DE4".to_string()));
    }

    /// Real Debian signatures: the host's apt lists, when there are any.
    #[test]
    fn host_apt_lists_verify_against_the_shipped_keyring() {
        let Ok(dir) = std::fs::read_dir("/var/lib/apt/lists") else {
            eprintln!("skipping: no /var/lib/apt/lists");
            return;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .try_into()
            .unwrap();
        let mut checked = 0;
        for entry in dir {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with("_InRelease") || !name.contains("debian.org") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let payload = verify_inrelease(&bytes, DEBIAN_ARCHIVE_KEYRING, now)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let text = String::from_utf8(payload).unwrap();
            assert!(text.starts_with("Origin: Debian"), "{name}: {text:.80}");
            assert!(text.contains("\nSHA256:\n"), "{name}");
            // Tamper with one byte of the payload: refused.
            let tampered =
                String::from_utf8(bytes)
                    .unwrap()
                    .replacen("Codename: ", "Codename: x", 1);
            let err =
                verify_inrelease(tampered.as_bytes(), DEBIAN_ARCHIVE_KEYRING, now).unwrap_err();
            assert!(
                matches!(err, SignatureError::BadSignature { .. }),
                "{name}: {err:?}"
            );
            checked += 1;
        }
        if checked == 0 {
            eprintln!("skipping: no Debian InRelease in /var/lib/apt/lists");
        }
    }
}

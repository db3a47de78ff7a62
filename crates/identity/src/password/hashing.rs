//! Argon2id password hashes in PHC string format, with the parameters in force recorded in each
//! hash so that a sign-in can tell when a stored hash is out of date and store a new one.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::normalise;
use crate::Error;

/// Longest password (in UTF-8 bytes, after NFKC) that is hashed or verified: far above what the
/// strength rules allow, and a bound on what one request can make the server hash.
pub const MAX_PASSWORD_BYTES: usize = 4096;

/// Bytes of output; also what a current hash must have.
const OUTPUT_LEN: usize = 32;
/// Bytes of random salt in a new hash (RFC 9106 recommends 16).
const SALT_LEN: usize = 16;
/// Characters of a [`SALT_LEN`]-byte salt in the PHC string's unpadded base64.
const SALT_B64_LEN: usize = 22;

/// Bounds on parameters, for new policies and for stored hashes alike: a stored hash beyond them
/// cannot have been written by Portico, and verifying it could take gigabytes of memory.
const MAX_M_COST_KIB: u32 = 1024 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 16;
const MIN_OUTPUT_LEN: usize = 16;
const MAX_OUTPUT_LEN: usize = 64;

/// Salt for [`PasswordPolicy::dummy_verify`]; its value does not matter.
const DUMMY_SALT: &[u8; SALT_LEN] = b"portico-no-user!";

/// How passwords are hashed: Argon2id, version 0x13, with one set of cost parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    params: Params,
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password is right. With `needs_rehash`, the stored hash was made with another
    /// algorithm, version or parameters than the policy's: hash the password again and store
    /// the new hash while the password is at hand.
    Valid { needs_rehash: bool },
    /// The password is wrong, or the stored hash is malformed or out of bounds.
    Invalid,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self::portico()
    }
}

impl PasswordPolicy {
    /// Memory cost of Portico's policy in KiB (19 MiB).
    pub const M_COST_KIB: u32 = 19 * 1024;
    /// Iterations of Portico's policy.
    pub const T_COST: u32 = 2;
    /// Parallelism of Portico's policy.
    pub const P_COST: u32 = 1;

    /// Portico's policy: the OWASP Password Storage Cheat Sheet's Argon2id configuration
    /// (m = 19456 KiB, t = 2, p = 1), which costs some tens of milliseconds per hash on one core —
    /// slow for an attacker with a stolen database, bearable for a server at sign-in.
    pub fn portico() -> Self {
        match Params::new(
            Self::M_COST_KIB,
            Self::T_COST,
            Self::P_COST,
            Some(OUTPUT_LEN),
        ) {
            Ok(params) => PasswordPolicy { params },
            // The constants are within Argon2's limits, which a test checks.
            Err(_) => PasswordPolicy {
                params: Params::DEFAULT,
            },
        }
    }

    /// A policy with other costs: stronger ones for a deployment with more memory to spare,
    /// or cheap ones for tests. Memory is in KiB; each value must be within Argon2's limits and
    /// Portico's bounds (at most 1 GiB, 16 iterations, 16 lanes).
    pub fn with_params(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, Error> {
        if m_cost_kib > MAX_M_COST_KIB || t_cost > MAX_T_COST || p_cost > MAX_P_COST {
            return Err(Error::InvalidParams(format!(
                "m={m_cost_kib} t={t_cost} p={p_cost} exceeds m={MAX_M_COST_KIB} t={MAX_T_COST} p={MAX_P_COST}"
            )));
        }
        Params::new(m_cost_kib, t_cost, p_cost, Some(OUTPUT_LEN))
            .map(|params| PasswordPolicy { params })
            .map_err(|e| Error::InvalidParams(e.to_string()))
    }

    /// The policy's (memory KiB, iterations, parallelism).
    pub fn costs(&self) -> (u32, u32, u32) {
        (
            self.params.m_cost(),
            self.params.t_cost(),
            self.params.p_cost(),
        )
    }

    fn hasher(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A new PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) for `password`, with a
    /// fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, Error> {
        let password = normalise(password);
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(Error::PasswordTooLong {
                max_bytes: MAX_PASSWORD_BYTES,
            });
        }
        let salt_bytes: [u8; SALT_LEN] = rand::random();
        let salt =
            SaltString::encode_b64(&salt_bytes).map_err(|e| Error::Hashing(e.to_string()))?;
        self.hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| Error::Hashing(e.to_string()))
    }

    /// Checks `password` against the stored PHC string `phc`, using the parameters recorded in
    /// it, and says whether the hash should be replaced. A malformed or out-of-bounds `phc` is
    /// [`Verification::Invalid`] after the same work as a real check, so a broken row does not
    /// stand out by its timing either.
    pub fn verify(&self, password: &str, phc: &str) -> Verification {
        let password = normalise(password);
        if password.len() > MAX_PASSWORD_BYTES {
            self.dummy_work(password.as_bytes());
            return Verification::Invalid;
        }
        let Some((hash, stored)) = parse(phc) else {
            self.dummy_work(password.as_bytes());
            return Verification::Invalid;
        };
        let hasher = Argon2::new(stored.algorithm, stored.version, stored.params.clone());
        if hasher.verify_password(password.as_bytes(), &hash).is_err() {
            return Verification::Invalid;
        }
        Verification::Valid {
            needs_rehash: self.is_outdated(&stored),
        }
    }

    /// Does the work of one [`verify`](Self::verify) and discards the result: call it when the
    /// account named at sign-in does not exist, so that the answer takes as long as for a
    /// wrong password and does not reveal which accounts exist.
    pub fn dummy_verify(&self, password: &str) {
        let password = normalise(password);
        self.dummy_work(password.as_bytes());
    }

    fn dummy_work(&self, password: &[u8]) {
        let password = password.get(..MAX_PASSWORD_BYTES).unwrap_or(password);
        let mut out = [0u8; OUTPUT_LEN];
        let result = self
            .hasher()
            .hash_password_into(password, DUMMY_SALT, &mut out);
        std::hint::black_box((result.is_ok(), out));
    }

    fn is_outdated(&self, stored: &Stored) -> bool {
        stored.algorithm != Algorithm::Argon2id
            || stored.version != Version::V0x13
            || stored.params.m_cost() != self.params.m_cost()
            || stored.params.t_cost() != self.params.t_cost()
            || stored.params.p_cost() != self.params.p_cost()
            || stored.params.output_len() != Some(OUTPUT_LEN)
            || !stored.params.keyid().is_empty()
            || !stored.params.data().is_empty()
            || stored.salt_b64_len < SALT_B64_LEN
    }
}

/// What a stored hash says about how it was made.
struct Stored {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt_b64_len: usize,
}

/// Parses a PHC string into its parts, or None when it is malformed, not Argon2, or has
/// parameters beyond Portico's bounds.
fn parse(phc: &str) -> Option<(PasswordHash<'_>, Stored)> {
    let hash = PasswordHash::new(phc).ok()?;
    let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
    let version = match hash.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&hash).ok()?;
    let output_len = hash.hash.map(|h| h.len())?;
    let salt_b64_len = hash.salt.map(|s| s.len())?;
    let in_bounds = params.m_cost() <= MAX_M_COST_KIB
        && params.t_cost() <= MAX_T_COST
        && params.p_cost() <= MAX_P_COST
        && (MIN_OUTPUT_LEN..=MAX_OUTPUT_LEN).contains(&output_len);
    in_bounds.then_some((
        hash,
        Stored {
            algorithm,
            version,
            params,
            salt_b64_len,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cheapest policy Argon2 allows, for tests of logic rather than cost.
    fn cheap() -> PasswordPolicy {
        PasswordPolicy::with_params(8, 1, 1).expect("valid params")
    }

    #[test]
    fn portico_policy_is_owasp_argon2id() {
        let policy = PasswordPolicy::portico();
        assert_eq!(policy.costs(), (19_456, 2, 1));
        assert_eq!(policy, PasswordPolicy::default());
        let phc = policy.hash("correct horse battery staple").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(
            policy.verify("correct horse battery staple", &phc),
            Verification::Valid {
                needs_rehash: false
            }
        );
        assert_eq!(
            policy.verify("correct horse battery stapler", &phc),
            Verification::Invalid
        );
    }

    #[test]
    fn hashes_are_salted() {
        let policy = cheap();
        let a = policy.hash("same password").expect("hash");
        let b = policy.hash("same password").expect("hash");
        assert_ne!(a, b);
        let salt = a.split('$').nth(4).unwrap_or_default();
        assert_eq!(salt.len(), SALT_B64_LEN);
    }

    #[test]
    fn a_known_argon2id_hash_verifies() {
        // The reference implementation's vector (RFC 9106 test suite, as in the argon2 crate's
        // known-answer tests): password "password", salt "somesalt", m=256 KiB, t=2, p=1.
        let phc =
            "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4";
        assert_eq!(
            cheap().verify("password", phc),
            Verification::Valid { needs_rehash: true }
        );
        assert_eq!(cheap().verify("passwore", phc), Verification::Invalid);
        assert_eq!(cheap().verify("Password", phc), Verification::Invalid);
        // Same costs as the policy, but an 8-byte salt: still due for a rehash.
        let same_costs = PasswordPolicy::with_params(256, 2, 1).expect("valid");
        assert_eq!(
            same_costs.verify("password", phc),
            Verification::Valid { needs_rehash: true }
        );
        // One changed character in the stored hash: invalid.
        let tampered = phc.replace("nf65", "nf66");
        assert_eq!(cheap().verify("password", &tampered), Verification::Invalid);
    }

    #[test]
    fn rehash_is_needed_when_any_parameter_differs() {
        let old = PasswordPolicy::with_params(8, 1, 1).expect("valid");
        let phc = old.hash("a long passphrase").expect("hash");
        assert_eq!(
            old.verify("a long passphrase", &phc),
            Verification::Valid {
                needs_rehash: false
            }
        );
        for newer in [(16, 1, 1), (8, 2, 1), (16, 1, 2)] {
            let policy = PasswordPolicy::with_params(newer.0, newer.1, newer.2).expect("valid");
            assert_eq!(
                policy.verify("a long passphrase", &phc),
                Verification::Valid { needs_rehash: true },
                "{newer:?}"
            );
            assert_eq!(policy.verify("wrong", &phc), Verification::Invalid);
        }
    }

    #[test]
    fn rehash_is_needed_for_other_argon2_variants_and_versions() {
        let policy = cheap();
        let params = Params::new(8, 1, 1, Some(OUTPUT_LEN)).expect("valid");
        let salt = SaltString::encode_b64(&[7u8; SALT_LEN]).expect("salt");
        for (algorithm, version) in [
            (Algorithm::Argon2i, Version::V0x13),
            (Algorithm::Argon2d, Version::V0x13),
            (Algorithm::Argon2id, Version::V0x10),
        ] {
            let phc = Argon2::new(algorithm, version, params.clone())
                .hash_password(b"passphrase here", &salt)
                .expect("hash")
                .to_string();
            assert_eq!(
                policy.verify("passphrase here", &phc),
                Verification::Valid { needs_rehash: true },
                "{phc}"
            );
        }
        // A short salt (8 bytes) is also out of date.
        let short_salt = SaltString::encode_b64(&[7u8; 8]).expect("salt");
        let phc = policy
            .hasher()
            .hash_password(b"passphrase here", &short_salt)
            .expect("hash")
            .to_string();
        assert_eq!(
            policy.verify("passphrase here", &phc),
            Verification::Valid { needs_rehash: true }
        );
    }

    #[test]
    fn malformed_and_foreign_hashes_are_invalid() {
        let policy = cheap();
        let good = policy.hash("passphrase here").expect("hash");
        let truncated = &good[..good.len() - 5];
        for phc in [
            "",
            "$",
            "plaintext",
            "$argon2id$",
            "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ",
            truncated,
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
            "$argon2id$v=99$m=8,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
            "$argon2id$v=19$m=8,t=1,p=1,x=3$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        ] {
            assert_eq!(
                policy.verify("passphrase here", phc),
                Verification::Invalid,
                "{phc}"
            );
        }
    }

    #[test]
    fn hashes_beyond_the_bounds_are_invalid_without_running_them() {
        let policy = cheap();
        // 4 TiB of memory or 2^32-1 iterations would never finish; they must be refused up front.
        for phc in [
            "$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
            "$argon2id$v=19$m=8,t=4294967295,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
            "$argon2id$v=19$m=64,t=1,p=255$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
            // An 8-byte output is too short to be one of ours.
            "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO0",
        ] {
            assert_eq!(policy.verify("password", phc), Verification::Invalid, "{phc}");
        }
        assert!(PasswordPolicy::with_params(MAX_M_COST_KIB + 1, 1, 1).is_err());
        assert!(PasswordPolicy::with_params(8, 0, 1).is_err());
        assert!(PasswordPolicy::with_params(8, 1, 0).is_err());
    }

    #[test]
    fn passwords_are_normalised_before_hashing() {
        let policy = cheap();
        let phc = policy.hash("caf\u{e9} au lait").expect("hash");
        assert_eq!(
            policy.verify("cafe\u{301} au lait", &phc),
            Verification::Valid {
                needs_rehash: false
            }
        );
        // Case is not folded: passwords are case-sensitive.
        assert_eq!(
            policy.verify("CAF\u{c9} AU LAIT", &phc),
            Verification::Invalid
        );
    }

    #[test]
    fn over_long_passwords_are_refused() {
        let policy = cheap();
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(
            policy.hash(&long),
            Err(Error::PasswordTooLong {
                max_bytes: MAX_PASSWORD_BYTES
            })
        );
        let phc = policy.hash(&long[1..]).expect("at the limit");
        assert_eq!(policy.verify(&long, &phc), Verification::Invalid);
        policy.dummy_verify(&long);
    }

    #[test]
    fn dummy_verify_and_malformed_hashes_cost_about_as_much_as_verify() {
        // Timing is noisy (other builds share the machine), so only a gross difference is
        // checked: with 4 MiB per hash a real check takes milliseconds, and a shortcut would
        // return in microseconds, a thousand times faster.
        let policy = PasswordPolicy::with_params(4096, 1, 1).expect("valid");
        let phc = policy.hash("passphrase here").expect("hash");
        // The fastest of several runs: interference from other work only ever adds time, so
        // the minimum is a steady measure of the work itself.
        let time = |f: &dyn Fn()| {
            (0..5)
                .map(|_| {
                    let start = std::time::Instant::now();
                    f();
                    start.elapsed()
                })
                .min()
                .unwrap_or_default()
        };
        let real = time(&|| {
            policy.verify("wrong passphrase", &phc);
        });
        let dummy = time(&|| policy.dummy_verify("wrong passphrase"));
        let malformed = time(&|| {
            policy.verify("wrong passphrase", "$argon2id$broken");
        });
        for (what, took) in [("dummy_verify", dummy), ("malformed hash", malformed)] {
            // A shortcut would be a thousand times faster; only that is checked.
            assert!(took * 10 > real, "{what} {took:?} vs verify {real:?}");
        }
    }
}

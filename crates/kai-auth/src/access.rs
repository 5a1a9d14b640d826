//! Access tokens: short-lived HS256 JWTs naming a user and the session they came from.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use kai_core::{SessionId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The `iss` claim of every kai access token.
const ISSUER: &str = "kai";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    sid: String,
    iat: i64,
    exp: i64,
}

/// What a valid access token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccessClaims {
    pub(crate) user_id: UserId,
    pub(crate) session_id: SessionId,
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessError {
    Expired,
    BadSignature,
    Malformed,
}

/// Signs and checks access tokens with one symmetric key.
pub(crate) struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl AccessTokens {
    pub(crate) fn new(key: &[u8], ttl: Duration) -> Self {
        hs256::install();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // The tokens are checked by the processes that issued them, sharing one clock.
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            ttl,
        }
    }

    /// How long a token lives.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `claims`, valid from `now` for the configured lifetime.
    pub(crate) fn issue(&self, claims: AccessClaims, now: OffsetDateTime) -> String {
        let iat = now.unix_timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            sub: claims.user_id.to_string(),
            sid: claims.session_id.to_string(),
            iat,
            exp: iat.saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)),
        };
        // HS256 over plain strings and integers cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// The claims of a token this key signed, if it has not expired, with when it expires.
    pub(crate) fn check(&self, token: &str) -> Result<(AccessClaims, OffsetDateTime), AccessError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => AccessError::Expired,
                ErrorKind::InvalidSignature => AccessError::BadSignature,
                _ => AccessError::Malformed,
            })?;
        let user_id = data
            .claims
            .sub
            .parse()
            .map_err(|_| AccessError::Malformed)?;
        let session_id = data
            .claims
            .sid
            .parse()
            .map_err(|_| AccessError::Malformed)?;
        let expires_at = OffsetDateTime::from_unix_timestamp(data.claims.exp)
            .map_err(|_| AccessError::Malformed)?;
        Ok((
            AccessClaims {
                user_id,
                session_id,
            },
            expires_at,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims {
            user_id: UserId::new(),
            session_id: SessionId::new(),
        }
    }

    #[test]
    fn tokens_round_trip() {
        let tokens = AccessTokens::new(&[7; 32], Duration::from_secs(900));
        let claims = claims();
        let token = tokens.issue(claims, OffsetDateTime::now_utc());
        assert_eq!(tokens.check(&token).map(|(claims, _)| claims), Ok(claims));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let tokens = AccessTokens::new(&[7; 32], Duration::from_secs(900));
        let token = tokens.issue(
            claims(),
            OffsetDateTime::now_utc() - time::Duration::hours(1),
        );
        assert_eq!(tokens.check(&token).err(), Some(AccessError::Expired));
    }

    #[test]
    fn other_keys_and_garbage_are_refused() {
        let ours = AccessTokens::new(&[7; 32], Duration::from_secs(900));
        let theirs = AccessTokens::new(&[8; 32], Duration::from_secs(900));
        let token = theirs.issue(claims(), OffsetDateTime::now_utc());
        assert_eq!(ours.check(&token).err(), Some(AccessError::BadSignature));
        assert_eq!(
            ours.check("not.a.token").err(),
            Some(AccessError::Malformed)
        );
        assert_eq!(ours.check("").err(), Some(AccessError::Malformed));
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        // The classic attack: the same claims with `"alg": "none"` and no signature.
        let tokens = AccessTokens::new(&[7; 32], Duration::from_secs(900));
        let token = tokens.issue(claims(), OffsetDateTime::now_utc());
        let payload = token.split('.').nth(1).unwrap();
        let forged = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(tokens.check(&forged).err(), Some(AccessError::Malformed));
    }
}

/// jsonwebtoken's cryptography for the one algorithm kai signs and accepts, HS256, over
/// RustCrypto's HMAC. jsonwebtoken's built-in provider would build RSA and elliptic-curve code
/// that kai never runs; a token naming any other algorithm is refused.
mod hs256 {
    use hmac::{Hmac, KeyInit, Mac};
    use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
    use jsonwebtoken::errors::{ErrorKind, Result};
    use jsonwebtoken::signature;
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
    use sha2::Sha256;

    static PROVIDER: CryptoProvider = CryptoProvider {
        signer_factory,
        verifier_factory,
        key_utils: KeyUtils::new_unimplemented(),
    };

    /// Makes HS256 the process's provider, once; a provider installed before is kept.
    pub(super) fn install() {
        let _ = PROVIDER.install_default();
    }

    struct Key(Hmac<Sha256>);

    impl Key {
        fn new(algorithm: Algorithm, secret: &[u8]) -> Result<Key> {
            if algorithm != Algorithm::HS256 {
                return Err(ErrorKind::InvalidAlgorithm.into());
            }
            Hmac::new_from_slice(secret)
                .map(Key)
                .map_err(|_| ErrorKind::InvalidKeyFormat.into())
        }

        fn mac(&self, message: &[u8]) -> Hmac<Sha256> {
            let mut mac = self.0.clone();
            mac.update(message);
            mac
        }
    }

    impl signature::Signer<Vec<u8>> for Key {
        fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
            Ok(self.mac(message).finalize().into_bytes().to_vec())
        }
    }

    impl signature::Verifier<Vec<u8>> for Key {
        fn verify(
            &self,
            message: &[u8],
            tag: &Vec<u8>,
        ) -> std::result::Result<(), signature::Error> {
            // A constant-time comparison.
            self.mac(message)
                .verify_slice(tag)
                .map_err(|_| signature::Error::new())
        }
    }

    impl JwtSigner for Key {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }

    impl JwtVerifier for Key {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }

    fn signer_factory(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
        Ok(Box::new(Key::new(*algorithm, key.as_bytes())?))
    }

    fn verifier_factory(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
        Ok(Box::new(Key::new(*algorithm, key.try_get_as_bytes()?)?))
    }

    #[cfg(test)]
    mod tests {
        use jsonwebtoken::signature::{Signer as _, Verifier as _};

        use super::*;

        /// RFC 7515, appendix A.1: a JWS signed with HMAC SHA-256.
        #[test]
        fn the_rfc_7515_example_verifies_and_a_changed_bit_does_not() {
            // The key of the example's JWK, base64url-decoded.
            let secret = [
                3, 35, 53, 75, 43, 15, 165, 188, 131, 126, 6, 101, 119, 123, 166, 143, 90, 179, 40,
                230, 240, 84, 201, 40, 169, 15, 132, 178, 210, 80, 46, 191, 211, 251, 90, 146, 210,
                6, 71, 239, 150, 138, 180, 195, 119, 98, 61, 34, 61, 46, 33, 114, 5, 46, 79, 8,
                192, 205, 154, 245, 103, 208, 128, 163,
            ];
            let key = Key::new(Algorithm::HS256, &secret).unwrap();
            let message = b"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
            let tag = vec![
                116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22,
                212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
            ];
            assert_eq!(key.try_sign(message).unwrap(), tag);
            key.verify(message, &tag).unwrap();
            let mut changed = tag.clone();
            changed[31] ^= 1;
            assert!(key.verify(message, &changed).is_err());
            assert!(Key::new(Algorithm::HS384, b"a key").is_err());
        }
    }
}

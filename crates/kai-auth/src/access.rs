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

    /// The claims of a token this key signed, if it has not expired.
    pub(crate) fn check(&self, token: &str) -> Result<AccessClaims, AccessError> {
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
        Ok(AccessClaims {
            user_id,
            session_id,
        })
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
        assert_eq!(tokens.check(&token), Ok(claims));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let tokens = AccessTokens::new(&[7; 32], Duration::from_secs(900));
        let token = tokens.issue(
            claims(),
            OffsetDateTime::now_utc() - time::Duration::hours(1),
        );
        assert_eq!(tokens.check(&token), Err(AccessError::Expired));
    }

    #[test]
    fn other_keys_and_garbage_are_refused() {
        let ours = AccessTokens::new(&[7; 32], Duration::from_secs(900));
        let theirs = AccessTokens::new(&[8; 32], Duration::from_secs(900));
        let token = theirs.issue(claims(), OffsetDateTime::now_utc());
        assert_eq!(ours.check(&token), Err(AccessError::BadSignature));
        assert_eq!(ours.check("not.a.token"), Err(AccessError::Malformed));
        assert_eq!(ours.check(""), Err(AccessError::Malformed));
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        // The classic attack: the same claims with `"alg": "none"` and no signature.
        let tokens = AccessTokens::new(&[7; 32], Duration::from_secs(900));
        let token = tokens.issue(claims(), OffsetDateTime::now_utc());
        let payload = token.split('.').nth(1).unwrap();
        let forged = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(tokens.check(&forged), Err(AccessError::Malformed));
    }
}

//! SASL/PLAIN (RFC 4616) with Kafka's `PlainSaslServer` rules, checked
//! against stored SCRAM credentials instead of plaintext passwords.

use std::hint::black_box;

use super::{check_size, SaslError, ScramCredential, ScramMechanism};

/// Verifies `[authzid] NUL authcid NUL passwd` and returns the user name.
///
/// Order of checks is Kafka's: token count, empty username, empty password,
/// credentials, then authzid (so a wrong authzid is only reported to a
/// client that knows the password).
pub fn plain_authenticate(
    message: &[u8],
    lookup: &dyn Fn(&str) -> Option<Vec<ScramCredential>>,
) -> Result<String, SaslError> {
    check_size(message)?;
    let [authzid, username, password] = split_tokens(message)?;
    if username.is_empty() {
        return Err(SaslError::UsernameNotSpecified);
    }
    if password.is_empty() {
        return Err(SaslError::PasswordNotSpecified);
    }
    // A non-UTF-8 name cannot exist; it still pays for a fake derivation below.
    let user = std::str::from_utf8(username).ok();
    let credentials = user.and_then(lookup).unwrap_or_default();
    let usable: Vec<&ScramCredential> = credentials.iter().filter(|c| c.is_usable()).collect();

    let authenticated = if usable.is_empty() {
        // Spend one Kafka-default derivation so the response time does not
        // say whether the user exists.
        black_box(fake_credential().verify_password(black_box(password)));
        false
    } else {
        // No short-circuit: the work depends on the user's credential set,
        // not on which one (if any) the password matches.
        usable
            .iter()
            .fold(false, |ok, c| ok | c.verify_password(password))
    };

    match user {
        Some(user) if authenticated => {
            if !authzid.is_empty() && authzid != username {
                return Err(SaslError::AuthorizationIdMismatch);
            }
            Ok(user.to_owned())
        }
        _ => Err(SaslError::InvalidUsernameOrPassword),
    }
}

/// Kafka splits on at most four NULs and demands exactly three tokens, so the
/// count it reports is `min(nuls + 1, 4)`.
fn split_tokens(message: &[u8]) -> Result<[&[u8]; 3], SaslError> {
    let mut parts = message.splitn(4, |&b| b == 0);
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(authzid), Some(user), Some(password), None) => Ok([authzid, user, password]),
        _ => {
            let nuls = message.iter().filter(|&&b| b == 0).count();
            Err(SaslError::InvalidPlainTokens(nuls.saturating_add(1).min(4)))
        }
    }
}

fn fake_credential() -> ScramCredential {
    let mech = ScramMechanism::Sha256;
    ScramCredential {
        mechanism: mech,
        salt: b"runnel-plain-unknown-user".to_vec(),
        stored_key: vec![0; mech.output_len()],
        server_key: vec![0; mech.output_len()],
        iterations: mech.min_iterations(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rules() {
        let m256 = ScramMechanism::Sha256;
        let creds = vec![
            ScramCredential::from_password(m256, b"pw256", 4096),
            ScramCredential::from_password(ScramMechanism::Sha512, b"pw512", 4096),
        ];
        let lookup = move |name: &str| (name == "alice").then(|| creds.clone());
        let ok = |msg: &[u8]| plain_authenticate(msg, &lookup);
        assert_eq!(ok(b"\0alice\0pw256"), Ok("alice".into()));
        assert_eq!(ok(b"\0alice\0pw512"), Ok("alice".into()));
        assert_eq!(ok(b"alice\0alice\0pw256"), Ok("alice".into()));
        assert_eq!(
            ok(b"bob\0alice\0pw256"),
            Err(SaslError::AuthorizationIdMismatch)
        );
        // authzid is only judged once the password is right.
        assert_eq!(
            ok(b"bob\0alice\0wrong"),
            Err(SaslError::InvalidUsernameOrPassword)
        );
        assert_eq!(
            ok(b"\0alice\0wrong"),
            Err(SaslError::InvalidUsernameOrPassword)
        );
        assert_eq!(
            ok(b"\0mallory\0pw256"),
            Err(SaslError::InvalidUsernameOrPassword)
        );
        assert_eq!(
            ok(b"\0\xff\0pw256"),
            Err(SaslError::InvalidUsernameOrPassword)
        );
        assert_eq!(ok(b"\0\0pw"), Err(SaslError::UsernameNotSpecified));
        assert_eq!(ok(b"\0alice\0"), Err(SaslError::PasswordNotSpecified));
        assert_eq!(ok(b""), Err(SaslError::InvalidPlainTokens(1)));
        assert_eq!(ok(b"alice\0pw"), Err(SaslError::InvalidPlainTokens(2)));
        assert_eq!(
            ok(b"\0alice\0pw256\0"),
            Err(SaslError::InvalidPlainTokens(4))
        );
        assert_eq!(
            ok(b"\0a\0b\0c\0d\0e"),
            Err(SaslError::InvalidPlainTokens(4))
        );
        assert_eq!(
            SaslError::InvalidUsernameOrPassword.to_string(),
            "Authentication failed: Invalid username or password"
        );
    }
}

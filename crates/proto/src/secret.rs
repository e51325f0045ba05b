use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// A credential (token, code verifier, keychain record) that must never reach a log.
///
/// `Debug` prints a placeholder, the value is zeroized on drop, and the only way in is
/// [`Secret::expose`], which makes every read easy to find in review.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T: Zeroize> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A confidential client's secret (RFC 6749 §2.3.1), as the IdP issued it to the
/// organisation. Kept in the keychain beside the profile's login, never in the config.
///
/// Its own type so it can never be passed where a token is expected, or the reverse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientSecret(Secret<String>);

impl ClientSecret {
    /// The secret as typed or piped: one trailing newline (from `echo` or a prompt) is not
    /// part of it. `Err` says what is wrong without repeating the value.
    pub fn parse(input: &str) -> Result<ClientSecret, &'static str> {
        let value = input
            .strip_suffix('\n')
            .map_or(input, |rest| rest.strip_suffix('\r').unwrap_or(rest));
        if value.is_empty() {
            return Err("the client secret is empty");
        }
        if value.chars().any(char::is_control) {
            return Err("the client secret holds a control character (more than one line?)");
        }
        if value.len() > 4096 {
            return Err("the client secret is longer than 4096 bytes");
        }
        Ok(ClientSecret(Secret::new(value.to_string())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new(String::from("eyJhbGciOi.super.secret"));
        let shown = format!("{secret:?} {:?}", Some(&secret));
        assert!(!shown.contains("secret."), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn serializes_as_the_bare_value() {
        let secret = Secret::new(String::from("abc"));
        assert_eq!(serde_json::to_string(&secret).unwrap(), r#""abc""#);
    }

    #[test]
    fn client_secret_drops_one_newline_and_refuses_odd_input() {
        assert_eq!(ClientSecret::parse("s3cret\n").unwrap().expose(), "s3cret");
        assert_eq!(
            ClientSecret::parse("s3cret\r\n").unwrap().expose(),
            "s3cret"
        );
        assert_eq!(
            ClientSecret::parse(" keep spaces ").unwrap().expose(),
            " keep spaces "
        );
        assert!(ClientSecret::parse("\n").is_err());
        assert!(ClientSecret::parse("two\nlines\n").is_err());
        let shown = format!("{:?}", ClientSecret::parse("s3cret").unwrap());
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}

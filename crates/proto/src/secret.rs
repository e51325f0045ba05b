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

/// A token kind: a [`Secret`] string under its own name, so one kind can never be passed
/// where another is expected (a refresh call cannot take an access token). Serialized as
/// the bare string, so keychain records and wire messages keep their shape.
macro_rules! token_kind {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Secret<String>);

        impl $name {
            pub fn new(value: String) -> Self {
                $name(Secret::new(value))
            }

            pub fn expose(&self) -> &str {
                self.0.expose()
            }

            /// The bare secret, for a wire field that carries more than one kind.
            pub fn to_secret(&self) -> Secret<String> {
                self.0.clone()
            }
        }
    };
}

token_kind!(
    /// An OAuth access token (RFC 6749 §1.4): what a resource server accepts.
    AccessToken
);
token_kind!(
    /// An OAuth refresh token (RFC 6749 §1.5): only ever sent back to the IdP.
    RefreshToken
);
token_kind!(
    /// An OIDC id_token (a JWT about the user), as the IdP issued it.
    IdToken
);
token_kind!(
    /// A remote-access key: minted by the agent, shown once, kept only as a digest.
    RemoteKey
);

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

    fn assert_redacted_and_transparent<T>(token: &T, raw: &str)
    where
        T: std::fmt::Debug + Serialize + serde::de::DeserializeOwned + PartialEq,
    {
        let shown = format!("{token:?} {:?}", Some(token));
        assert!(!shown.contains(raw), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        let json = serde_json::to_string(token).unwrap();
        assert_eq!(json, format!("\"{raw}\""));
        assert!(serde_json::from_str::<T>(&json).unwrap() == *token);
    }

    #[test]
    fn access_token_is_redacted_and_transparent() {
        let token = AccessToken::new("at-value-1".into());
        assert_redacted_and_transparent(&token, "at-value-1");
        assert_eq!(token.expose(), "at-value-1");
    }

    #[test]
    fn refresh_token_is_redacted_and_transparent() {
        let token = RefreshToken::new("rt-value-1".into());
        assert_redacted_and_transparent(&token, "rt-value-1");
        assert_eq!(token.expose(), "rt-value-1");
    }

    #[test]
    fn id_token_is_redacted_and_transparent() {
        let token = IdToken::new("id-value-1".into());
        assert_redacted_and_transparent(&token, "id-value-1");
        assert_eq!(token.expose(), "id-value-1");
    }

    #[test]
    fn remote_key_is_redacted_and_transparent() {
        let key = RemoteKey::new("rk-value-1".into());
        assert_redacted_and_transparent(&key, "rk-value-1");
        assert_eq!(key.expose(), "rk-value-1");
    }
}

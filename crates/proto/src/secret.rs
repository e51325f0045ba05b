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
}

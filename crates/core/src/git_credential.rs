//! git's credential helper protocol: `key=value` lines, ended by a blank line or the end of
//! input ([git-credential(1)](https://git-scm.com/docs/git-credential#IOFMT)).
//!
//! The input comes from whatever runs the helper, so it is bounded, NUL bytes and oversized
//! values are refused, unknown keys are ignored (as git asks of helpers), and nothing a
//! caller sends can make an answer carry extra lines.

use crate::Secret;

/// More than git ever sends for one credential; bounds what a hostile caller can make us hold.
pub const MAX_INPUT: usize = 64 * 1024;
const MAX_VALUE: usize = 16 * 1024;

/// What git asks about.
#[derive(Debug, Default)]
pub struct Query {
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub username: Option<String>,
    /// Only `erase` carries it: the credential the server rejected, as `password=` or, after
    /// `authtype=Bearer` (git >= 2.46), as `credential=`.
    pub password: Option<Secret<String>>,
    /// `capability[]` values; `authtype` means git (>= 2.46) can send `Authorization: Bearer`.
    pub capabilities: Vec<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the credential request holds a NUL byte")]
    Nul,
    #[error("the credential request is larger than {MAX_INPUT} bytes")]
    TooLarge,
    #[error("line {0} of the credential request is not `key=value`")]
    NotKeyValue(usize),
    #[error("the value of `{0}` is longer than {MAX_VALUE} bytes")]
    ValueTooLong(String),
    #[error("the credential request is not UTF-8")]
    NotUtf8,
    #[error("`url={0}` is not a URL")]
    BadUrl(String),
}

impl Query {
    pub fn parse(input: &[u8]) -> Result<Query, ParseError> {
        if input.len() > MAX_INPUT {
            return Err(ParseError::TooLarge);
        }
        if input.contains(&0) {
            return Err(ParseError::Nul);
        }
        let text = std::str::from_utf8(input).map_err(|_| ParseError::NotUtf8)?;
        let mut query = Query::default();
        for (index, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                break;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or(ParseError::NotKeyValue(index + 1))?;
            if value.len() > MAX_VALUE {
                return Err(ParseError::ValueTooLong(key.chars().take(40).collect()));
            }
            let value = value.to_string();
            match key {
                "protocol" => query.protocol = Some(value),
                "host" => query.host = Some(value),
                "path" => query.path = Some(value),
                "username" => query.username = Some(value),
                // A bearer token comes back in `credential=`: either way it is what the
                // server refused, and `erase` must be able to report it.
                "password" | "credential" => query.password = Some(Secret::new(value)),
                "capability[]" => query.capabilities.push(value),
                "url" => query.apply_url(&value)?,
                _ => {}
            }
        }
        Ok(query)
    }

    /// `url=` stands for its parts (git-credential(1)); later keys still override them.
    fn apply_url(&mut self, value: &str) -> Result<(), ParseError> {
        let url = url::Url::parse(value).map_err(|_| ParseError::BadUrl(value.into()))?;
        let host = url
            .host_str()
            .ok_or_else(|| ParseError::BadUrl(value.into()))?;
        self.protocol = Some(url.scheme().to_string());
        self.host = Some(match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        });
        let path = url.path().trim_start_matches('/');
        self.path = (!path.is_empty()).then(|| path.to_string());
        if !url.username().is_empty() {
            self.username = Some(url.username().to_string());
        }
        Ok(())
    }

    /// The URL git is about to call, when the query names a protocol and a host.
    ///
    /// `None` when a part holds what git never sends there and what would change the server
    /// the joined URL names (`host=evil.test@git.example.com`, `host=a/b`) or what URL
    /// parsers silently drop (control characters): the token is for the host git named, or
    /// for nobody.
    pub fn url(&self) -> Option<String> {
        let (protocol, host) = (self.protocol.as_ref()?, self.host.as_ref()?);
        let path = self.path.as_deref().unwrap_or("");
        let scheme_ok = protocol.starts_with(|c: char| c.is_ascii_alphabetic())
            && protocol
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        let host_ok = !host.is_empty()
            && !host
                .contains(|c: char| c.is_control() || c.is_whitespace() || "/\\?#@%".contains(c));
        if !scheme_ok || !host_ok || path.contains(char::is_control) {
            return None;
        }
        Some(format!("{protocol}://{host}/{path}"))
    }

    pub fn can_take_bearer(&self) -> bool {
        self.capabilities.iter().any(|cap| cap == "authtype")
    }
}

/// An answer to `get`. Values with a line break or NUL are refused instead of written: they
/// would let a value smuggle extra keys into what git reads.
pub fn write_answer(fields: &[(&str, &str)], out: &mut impl std::io::Write) -> std::io::Result<()> {
    let unsafe_value = |value: &str| value.contains(['\n', '\r', '\0']);
    if let Some((key, _)) = fields.iter().find(|(_, value)| unsafe_value(value)) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("refusing to answer git: the value of `{key}` holds a line break"),
        ));
    }
    let mut answer = String::new();
    for (key, value) in fields {
        answer.push_str(key);
        answer.push('=');
        answer.push_str(value);
        answer.push('\n');
    }
    out.write_all(answer.as_bytes())?;
    // The answer holds a token: overwrite this copy before it is freed.
    zeroize::Zeroize::zeroize(&mut answer);
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_git_sends() {
        let query = Query::parse(
            b"capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=git.example.com:8443\npath=team/app.git\nwwwauth[]=Basic realm=x\n\n",
        )
        .unwrap();
        assert_eq!(query.protocol.as_deref(), Some("https"));
        assert_eq!(query.host.as_deref(), Some("git.example.com:8443"));
        assert_eq!(
            query.url().unwrap(),
            "https://git.example.com:8443/team/app.git"
        );
        assert!(query.can_take_bearer());
    }

    #[test]
    fn end_of_input_ends_the_request_like_a_blank_line() {
        let query = Query::parse(b"protocol=https\nhost=example.com").unwrap();
        assert_eq!(query.url().unwrap(), "https://example.com/");
        // Anything after the blank line is not part of the request.
        let query = Query::parse(b"protocol=https\nhost=a.test\n\nhost=b.test\n").unwrap();
        assert_eq!(query.host.as_deref(), Some("a.test"));
    }

    #[test]
    fn url_key_stands_for_its_parts() {
        let query = Query::parse(b"url=https://bob@git.example.com/team/app.git\n\n").unwrap();
        assert_eq!(query.url().unwrap(), "https://git.example.com/team/app.git");
        assert_eq!(query.username.as_deref(), Some("bob"));
        assert!(matches!(
            Query::parse(b"url=not a url\n"),
            Err(ParseError::BadUrl(_))
        ));
    }

    #[test]
    fn malformed_input_is_refused_not_guessed() {
        assert_eq!(
            Query::parse(b"protocol=https\0\n").unwrap_err(),
            ParseError::Nul
        );
        assert_eq!(
            Query::parse(b"protocol=https\njunk\n").unwrap_err(),
            ParseError::NotKeyValue(2)
        );
        let huge = format!("host={}\n", "a".repeat(MAX_VALUE + 1));
        assert!(matches!(
            Query::parse(huge.as_bytes()),
            Err(ParseError::ValueTooLong(_))
        ));
        assert_eq!(
            Query::parse(&vec![b'a'; MAX_INPUT + 1]).unwrap_err(),
            ParseError::TooLarge
        );
        assert_eq!(
            Query::parse(b"host=\xff\n").unwrap_err(),
            ParseError::NotUtf8
        );
        // Unknown keys are ignored, as git asks of helpers.
        assert!(Query::parse(b"frobnicate=1\nprotocol=https\n").is_ok());
        // No host: nothing to look up.
        assert!(Query::parse(b"protocol=https\n\n").unwrap().url().is_none());
    }

    #[test]
    fn erase_after_bearer_carries_the_token_in_credential() {
        // What git 2.47 sends to `erase` after a 401 on a bearer credential.
        let query = Query::parse(
            b"capability[]=authtype\nauthtype=Bearer\ncredential=tok\nephemeral=1\nprotocol=http\nhost=127.0.0.1:8080\nwwwauth[]=Basic realm=\"x\"\n\n",
        )
        .unwrap();
        assert_eq!(
            query.password.as_ref().map(|p| p.expose().as_str()),
            Some("tok")
        );
        assert_eq!(query.url().unwrap(), "http://127.0.0.1:8080/");
    }

    #[test]
    fn parts_that_would_name_another_server_give_no_url() {
        // Found by crates/core/tests/fuzz_git_credential.rs: joined as they came, these
        // parts made a URL for another host, or one holding a carriage return.
        for input in [
            &b"protocol=https\nhost=evil.test@git.example.com\n"[..],
            b"protocol=https\nhost=@a\n",
            b"protocol=https\nhost=git.example.com/x\n",
            b"protocol=https\nhost=git.example.com?\n",
            b"protocol=https\nhost=git.example.com#\n",
            b"protocol=https\nhost=git.example.com\\x\n",
            b"protocol=https\nhost=git%2eexample.com\n",
            b"protocol=https\nhost=git.exa\rmple.com\n",
            b"protocol=https\nhost=git.exa\tmple.com\n",
            b"protocol=https\nhost=\n",
            b"protocol=\rprotocol=\r\nhost=after.test\n",
            b"protocol=https://git.example.com/?\nhost=evil.test\n",
            b"protocol=https\nhost=git.example.com\npath=a\rb\n",
        ] {
            let query = Query::parse(input).unwrap();
            assert_eq!(query.url(), None, "{}", input.escape_ascii());
        }
        let query = Query::parse(b"protocol=https\nhost=[::1]:8443\npath=a b/c.git\n").unwrap();
        assert_eq!(query.url().unwrap(), "https://[::1]:8443/a b/c.git");
    }

    #[test]
    fn answers_never_carry_smuggled_lines() {
        let mut out = Vec::new();
        write_answer(&[("username", "oauth2"), ("password", "tok")], &mut out).unwrap();
        assert_eq!(out, b"username=oauth2\npassword=tok\n");
        let mut out = Vec::new();
        let err = write_answer(&[("password", "tok\nhost=evil.test")], &mut out).unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
        assert!(out.is_empty());
    }
}

//! What the status window shows about one profile, read from the claims the agent reports.

use serde::Serialize;
use serde_json::Value;
use stagepass_proto::{ClaimSet, ClaimsReport, RefreshTokenState};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenLifetime {
    /// Unix seconds.
    pub issued_at: Option<u64>,
    pub expires_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileDetails {
    pub profile: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub subject: Option<String>,
    pub groups: Vec<String>,
    /// The access token's issue time is its last refresh.
    pub access_token: Option<TokenLifetime>,
    pub id_token: Option<TokenLifetime>,
    /// `None` when the IdP issued no refresh token (or the agent does not say).
    pub refresh_token: Option<TokenLifetime>,
    pub audience: Vec<String>,
    /// The Backstage user entity (`user:default/alice`) when the token is Backstage's own.
    pub backstage_user: Option<String>,
    /// The entities the Backstage user owns through (the token's `ent` claim).
    pub ownership: Vec<String>,
}

/// `groups_claim`: the profile's configured claim for groups (`groups` when unset).
pub fn profile_details(report: &ClaimsReport, groups_claim: Option<&str>) -> ProfileDetails {
    let id = report.id_token.as_ref().map(|set| &set.claims);
    let access = report.access_token.as_ref().map(|set| &set.claims);
    // The id_token says who the user is; an access token may add what it does not carry.
    let claim = |key: &str| {
        [id, access]
            .into_iter()
            .flatten()
            .find_map(|claims| claims.get(key).filter(|value| !value.is_null()))
    };
    let text = |key: &str| claim(key).and_then(Value::as_str).map(String::from);
    let strings = |value: Option<&Value>| -> Vec<String> {
        match value {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| item.as_str().map(String::from))
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        }
    };
    let access_subject = access.and_then(|claims| claims["sub"].as_str());
    ProfileDetails {
        profile: report.profile.clone(),
        email: text("email"),
        name: text("name").or_else(|| text("preferred_username")),
        subject: text("sub"),
        groups: strings(claim(groups_claim.unwrap_or("groups"))),
        access_token: report.access_token.as_ref().map(lifetime),
        id_token: report.id_token.as_ref().map(lifetime),
        refresh_token: match report.refresh_token {
            RefreshTokenState::Held {
                issued_at,
                expires_at,
            } => Some(TokenLifetime {
                issued_at,
                expires_at,
            }),
            RefreshTokenState::None | RefreshTokenState::Unknown => None,
        },
        audience: strings(access.and_then(|claims| claims.get("aud"))),
        backstage_user: access_subject
            .filter(|sub| sub.starts_with("user:"))
            .map(String::from),
        ownership: strings(access.and_then(|claims| claims.get("ent"))),
    }
}

fn lifetime(set: &ClaimSet) -> TokenLifetime {
    let seconds = |key: &str| set.claims.get(key).and_then(Value::as_u64);
    TokenLifetime {
        issued_at: seconds("iat"),
        expires_at: seconds("exp"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set(claims: Value) -> Option<ClaimSet> {
        Some(ClaimSet {
            verified: true,
            note: String::new(),
            verified_at: None,
            claims,
        })
    }

    #[test]
    fn who_groups_lifetimes_and_backstage_identity() {
        let report = ClaimsReport {
            profile: "corp".into(),
            id_token: set(json!({"sub": "u1", "email": "alice@example.com",
                "preferred_username": "alice", "roles": ["dev", "ops"], "iat": 100, "exp": 400})),
            access_token: set(json!({"sub": "user:default/alice", "aud": "backstage",
                "ent": ["user:default/alice", "group:default/team-a"], "iat": 200, "exp": 500})),
            user: None,
            refresh_token: RefreshTokenState::Held {
                issued_at: Some(100),
                expires_at: None,
            },
        };
        let details = profile_details(&report, Some("roles"));
        assert_eq!(details.email.as_deref(), Some("alice@example.com"));
        assert_eq!(details.name.as_deref(), Some("alice"));
        assert_eq!(details.groups, ["dev", "ops"]);
        assert_eq!(
            details.access_token,
            Some(TokenLifetime {
                issued_at: Some(200),
                expires_at: Some(500)
            })
        );
        assert_eq!(details.audience, ["backstage"]);
        assert_eq!(
            details.backstage_user.as_deref(),
            Some("user:default/alice")
        );
        assert_eq!(details.ownership.len(), 2);
        assert!(details.refresh_token.is_some());
        assert!(profile_details(&report, None).groups.is_empty());
    }
}

//! User types as G1 records them, and the three serving tiers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How the portal knew the reader when the click happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum UserType {
    /// Signed in: a stable identity across devices.
    Logged,
    /// Not signed in: a cookie-level identity.
    #[serde(rename = "Non-Logged")]
    NonLogged,
}

impl UserType {
    /// The spelling used in G1 files and click events.
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::Logged => "Logged",
            UserType::NonLogged => "Non-Logged",
        }
    }

    /// Parses the G1 spelling (`Logged` / `Non-Logged`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Logged" => Some(UserType::Logged),
            "Non-Logged" => Some(UserType::NonLogged),
            _ => None,
        }
    }
}

impl fmt::Display for UserType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The model family that serves a user. Names are the same everywhere: API responses,
/// evaluation JSON, metric labels.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Too little history: live popularity × recency and session co-visitation.
    Anonymous,
    /// A `Non-Logged` user with some history: placed in a behaviour cluster.
    SemiLogged,
    /// A `Logged` user: hybrid collaborative + content model.
    Logged,
}

impl Tier {
    /// Every tier, from most to least personalised: the order in which a short tier is
    /// filled from the next.
    pub const ALL: [Tier; 3] = [Tier::Logged, Tier::SemiLogged, Tier::Anonymous];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Anonymous => "anonymous",
            Tier::SemiLogged => "semi_logged",
            Tier::Logged => "logged",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "anonymous" => Some(Tier::Anonymous),
            "semi_logged" => Some(Tier::SemiLogged),
            "logged" => Some(Tier::Logged),
            _ => None,
        }
    }

    /// The tier a short list of this tier is filled from, if any.
    pub fn fallback(self) -> Option<Tier> {
        match self {
            Tier::Logged => Some(Tier::SemiLogged),
            Tier::SemiLogged => Some(Tier::Anonymous),
            Tier::Anonymous => None,
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Interactions a `Non-Logged` user needs before the clustering model serves them.
pub const SEMI_LOGGED_MIN_INTERACTIONS: u64 = 2;

/// The routing rule, shared by the API and the offline evaluation.
///
/// `user_type` is the type of the user's latest event (`None`: never seen) and
/// `interactions` how many clicks are known for them. A `Logged` user with at least one
/// interaction is served by the logged tier (known to the model, or folded in from live
/// history); a `Non-Logged` user with at least [`SEMI_LOGGED_MIN_INTERACTIONS`] by the
/// clustering tier; everyone else is anonymous.
pub fn route_tier(user_type: Option<UserType>, interactions: u64) -> Tier {
    match user_type {
        Some(UserType::Logged) if interactions >= 1 => Tier::Logged,
        Some(_) if interactions >= SEMI_LOGGED_MIN_INTERACTIONS => Tier::SemiLogged,
        _ => Tier::Anonymous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_moves_users_up_as_clicks_arrive() {
        assert_eq!(route_tier(None, 0), Tier::Anonymous);
        assert_eq!(route_tier(Some(UserType::NonLogged), 1), Tier::Anonymous);
        assert_eq!(route_tier(Some(UserType::NonLogged), 2), Tier::SemiLogged);
        assert_eq!(route_tier(Some(UserType::Logged), 0), Tier::Anonymous);
        assert_eq!(route_tier(Some(UserType::Logged), 1), Tier::Logged);
    }

    #[test]
    fn names_round_trip() {
        for t in Tier::ALL {
            assert_eq!(Tier::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
        for u in [UserType::Logged, UserType::NonLogged] {
            assert_eq!(UserType::parse(u.as_str()), Some(u));
            assert_eq!(serde_json::to_string(&u).unwrap(), format!("\"{u}\""));
        }
    }
}

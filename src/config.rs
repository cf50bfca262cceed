//! The policy file: the engine's [`Policy`] and the front doors' own setting, the mode of the
//! routes that name none and of the audit command (`defaultMode`). One file, read once, by every
//! front door.

use std::path::Path;

use serde::Deserialize;

use crate::admission::Mode;
use crate::decide::{Policy, PolicyError};

/// What a policy file configures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub policy: Policy,
    /// Mode of the plain `/mutate` and `/validate` routes and of the audit command.
    pub default_mode: Mode,
}

/// The members of the file the front doors read; the engine checks the rest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FrontDoors {
    #[serde(default)]
    default_mode: Mode,
}

impl Config {
    /// Parse and check a policy file's text; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Config, PolicyError> {
        let policy = Policy::from_yaml(text, origin)?;
        let default_mode = if text.trim().is_empty() {
            Mode::default()
        } else {
            crate::yaml::from_str::<FrontDoors>(text, crate::yaml::RepeatedKeys::Refused)
                .map_err(|e| PolicyError::Invalid {
                    path: origin.to_string(),
                    message: e.to_string(),
                })?
                .default_mode
        };
        Ok(Config {
            policy,
            default_mode,
        })
    }

    /// Load a policy file, or the defaults when no file is given.
    pub fn load(path: Option<&Path>) -> Result<Config, PolicyError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: origin.clone(),
            source,
        })?;
        Config::from_yaml(&text, &origin)
    }
}

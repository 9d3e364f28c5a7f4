//! Named option lists (`pr:thumb`).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::TransformError;
use crate::options::{Options, PresetBodies};

/// Named option lists, validated at construction, and which of them may be requested
/// without a signature.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Presets {
    bodies: BTreeMap<String, String>,
    allowed_unsigned: BTreeSet<String>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Presets {
    /// No presets.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in presets, all allowed unsigned: `thumb` (fill 256x256), `small` (fit 640),
    /// `medium` (fit 1080), `large` (fit 2048).
    pub fn standard() -> Self {
        let bodies: BTreeMap<String, String> = [
            ("thumb", "rs:fill:256:256"),
            ("small", "rs:fit:640:640"),
            ("medium", "rs:fit:1080:1080"),
            ("large", "rs:fit:2048:2048"),
        ]
        .into_iter()
        .map(|(n, b)| (n.to_owned(), b.to_owned()))
        .collect();
        let allowed_unsigned = bodies.keys().cloned().collect();
        Self {
            bodies,
            allowed_unsigned,
        }
    }

    /// Parses `name=options;name2=options2` (none allowed unsigned; see
    /// [`Presets::allow_unsigned`]). Blank entries are ignored.
    pub fn parse(spec: &str) -> Result<Self, TransformError> {
        let mut pairs = Vec::new();
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, body) =
                entry
                    .split_once('=')
                    .ok_or_else(|| TransformError::InvalidPreset {
                        name: entry.to_owned(),
                        message: "expected name=options".into(),
                    })?;
            pairs.push((name.trim().to_owned(), body.trim().to_owned()));
        }
        Self::from_map(pairs)
    }

    /// Builds presets from `(name, options)` pairs (none allowed unsigned).
    pub fn from_map<I>(pairs: I) -> Result<Self, TransformError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut bodies = BTreeMap::new();
        for (name, body) in pairs {
            if !valid_name(&name) {
                return Err(TransformError::InvalidPreset {
                    name,
                    message: "names use a-z, 0-9, _ and -".into(),
                });
            }
            if body == "_" {
                return Err(TransformError::InvalidPreset {
                    name,
                    message: "a preset must contain options".into(),
                });
            }
            if let Err(e) = Options::parse_items(&body, None) {
                return Err(TransformError::InvalidPreset {
                    name,
                    message: e.to_string(),
                });
            }
            if bodies.insert(name.clone(), body).is_some() {
                return Err(TransformError::InvalidPreset {
                    name,
                    message: "defined twice".into(),
                });
            }
        }
        Ok(Self {
            bodies,
            allowed_unsigned: BTreeSet::new(),
        })
    }

    /// These presets plus (or overridden by) those of `spec` (`name=options;...`, as
    /// [`Presets::parse`]). An overridden preset keeps its allowed-unsigned status.
    pub fn with(mut self, spec: &str) -> Result<Self, TransformError> {
        self.bodies.extend(Self::parse(spec)?.bodies);
        Ok(self)
    }

    /// Allows the named presets to be requested without a signature.
    pub fn allow_unsigned<I, S>(mut self, names: I) -> Result<Self, TransformError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for name in names {
            let name = name.into();
            if !self.bodies.contains_key(&name) {
                return Err(TransformError::InvalidPreset {
                    name,
                    message: "unknown preset cannot be allowed unsigned".into(),
                });
            }
            self.allowed_unsigned.insert(name);
        }
        Ok(self)
    }

    /// The options string of preset `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.bodies.get(name).map(String::as_str)
    }

    /// Preset names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.bodies.keys().map(String::as_str)
    }

    /// True only when `options` (the raw path segment) consists solely of `pr:` items naming
    /// presets on the allowed-unsigned list.
    pub fn allows_unsigned(&self, options: &str) -> bool {
        !options.is_empty()
            && options.split(',').all(|item| {
                item.strip_prefix("pr:")
                    .is_some_and(|name| self.allowed_unsigned.contains(name))
            })
    }
}

impl PresetBodies for Presets {
    fn body(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
}

//! On-demand transforms and edits for Pinhole.
//!
//! * [`Options`]: the imgproxy-like options grammar of `GET /t/{signature}/{options}/{id}.{ext}`,
//!   its canonical form (cache keys) and output-size arithmetic.
//! * [`Presets`]: named option lists (`pr:thumb`), some of them usable without a signature.
//! * [`Signer`]: imgproxy-style HMAC-SHA256 URL signatures with key rotation.
//! * [`apply`] and [`apply_edits`]: the pixel operations, on [`image::DynamicImage`].

mod apply;
mod color;
mod edits;
mod error;
mod geometry;
mod options;
mod presets;
mod sign;

pub use apply::{NoVision, Vision, apply};
pub use color::Adjustments;
pub use edits::{EditOp, FilterName, FlipDirection, MAX_EDIT_OPS, apply_edits, validate_edits};
pub use error::TransformError;
pub use geometry::Rect;
pub use options::{Caps, Flip, Format, Gravity, Options, PresetBodies, ResizeMode, parse};
pub use presets::Presets;
pub use sign::{KeyError, KeyPair, Signer, is_unsigned, parse_key_pairs};

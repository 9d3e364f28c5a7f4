//! Stable error codes: each role declares its codes once, in one enum made
//! with [`error_codes!`], and [`ApiError`](crate::ApiError) takes only such
//! enums, so a code is never a string literal at a call site. A test lists
//! every enum, so a renamed code is a visible change.

/// A stable, machine-readable error code (`image-not-found`): lower-case
/// kebab-case, the `code` of an error body.
pub trait ErrorCode {
    fn code(&self) -> &'static str;
}

/// Declares an enum of error codes: a `Copy` enum, its [`ErrorCode`] impl,
/// `ALL` (every variant, in order) and `Display` (the code).
///
/// ```
/// pinhole_http::error_codes! {
///     /// What the example role answers.
///     pub enum ExampleError {
///         ThingNotFound => "thing-not-found",
///     }
/// }
/// use pinhole_http::ErrorCode;
/// assert_eq!(ExampleError::ThingNotFound.code(), "thing-not-found");
/// assert_eq!(ExampleError::ALL.len(), 1);
/// ```
#[macro_export]
macro_rules! error_codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident => $code:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every code, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
        }

        impl $crate::ErrorCode for $name {
            fn code(&self) -> &'static str {
                match self {
                    $(Self::$variant => $code),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::ErrorCode::code(self))
            }
        }
    };
}

error_codes! {
    /// The codes the HTTP kit and the app itself answer, whatever the role,
    /// and the few nouns several roles answer with the same meaning (a role
    /// may list those in its own enum too; no other code is in two enums).
    pub enum Common {
        /// 422 with the offending fields.
        ValidationFailed => "validation-failed",
        Unauthorized => "unauthorized",
        Forbidden => "forbidden",
        /// 409 from a unique-constraint violation.
        Conflict => "conflict",
        Internal => "internal",
        /// A backend this request needs is not answering.
        Unavailable => "unavailable",
        /// Another role this request needs is not answering.
        RoleUnavailable => "role-unavailable",
        /// 503 with `Retry-After`: at capacity now (memory, workers), not
        /// broken.
        ServerBusy => "server-busy",
        RequestTimeout => "request-timeout",
        InvalidToken => "invalid-token",
        InternalTokenRequired => "internal-token-required",
        UnsupportedMediaType => "unsupported-media-type",
        InvalidJson => "invalid-json",
        InvalidBody => "invalid-body",
        BlobNotFound => "blob-not-found",
        RouteNotFound => "route-not-found",
        MethodNotAllowed => "method-not-allowed",
        /// Shared: answered by images and thumbnails, read by `ImagesClient`.
        ImageNotFound => "image-not-found",
        /// Shared: answered by users and images.
        UserNotFound => "user-not-found",
    }
}

//! Every error code the thumbnails role answers (besides the kit's
//! [`Common`](pinhole_http::Common) ones).

pinhole_http::error_codes! {
    pub enum ThumbnailsError {
        /// The same meaning as `Common::ImageNotFound`.
        ImageNotFound => "image-not-found",
        FormatUnsupported => "format-unsupported",
        SignatureRequired => "signature-required",
        SignatureInvalid => "signature-invalid",
        TransformInvalid => "transform-invalid",
        TransformTooLarge => "transform-too-large",
        SourceTooLarge => "source-too-large",
        TransformFailed => "transform-failed",
    }
}

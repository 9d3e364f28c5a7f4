//! Every error code the images role answers (besides the kit's
//! [`Common`](pinhole_http::Common) ones).

pinhole_http::error_codes! {
    pub enum ImagesError {
        /// The same meaning as `Common::ImageNotFound`.
        ImageNotFound => "image-not-found",
        /// The same meaning as `Common::UserNotFound`.
        UserNotFound => "user-not-found",
        AccountPrivate => "account-private",
        ImageNotReady => "image-not-ready",
        VersionNotFound => "version-not-found",
        VersionCurrent => "version-current",
        CommentNotFound => "comment-not-found",
        TaskNotFound => "task-not-found",
        ContentBusy => "content-busy",
        // Uploads, either way.
        UploadTooLarge => "upload-too-large",
        UnsupportedImageFormat => "unsupported-image-format",
        ImageTruncated => "image-truncated",
        ImageCorrupt => "image-corrupt",
        ImageTooManyPixels => "image-too-many-pixels",
        /// 408: the body came slower than `PINHOLE_UPLOAD_MIN_RATE`, or
        /// past `PINHOLE_UPLOAD_DEADLINE`.
        UploadTooSlow => "upload-too-slow",
        /// 429: the account already sends `PINHOLE_UPLOADS_PER_ACCOUNT`.
        TooManyUploads => "too-many-uploads",
        // Multipart uploads.
        InvalidMultipart => "invalid-multipart",
        ExpectedMultipart => "expected-multipart",
        // Resumable (tus) uploads.
        TusVersionUnsupported => "tus-version-unsupported",
        InvalidHeader => "invalid-header",
        UploadNotFound => "upload-not-found",
        InvalidUploadMetadata => "invalid-upload-metadata",
        UploadLengthRequired => "upload-length-required",
        ExpectedOffsetOctetStream => "expected-offset-octet-stream",
        UploadFinished => "upload-finished",
        UploadOffsetMismatch => "upload-offset-mismatch",
        ChecksumAlgorithmUnsupported => "checksum-algorithm-unsupported",
        InvalidChecksum => "invalid-checksum",
        ChecksumMismatch => "checksum-mismatch",
        UploadExceedsLength => "upload-exceeds-length",
        UploadInterrupted => "upload-interrupted",
        // Per-account quotas (`PINHOLE_QUOTA_*`).
        /// 429: the account has `PINHOLE_QUOTA_IMAGES` images.
        ImageQuotaExceeded => "image-quota-exceeded",
        /// 413: the file (or a tus `Upload-Length`) would take the account
        /// past `PINHOLE_QUOTA_BYTES`.
        StorageQuotaExceeded => "storage-quota-exceeded",
        /// 429: the account has `PINHOLE_QUOTA_TUS_UPLOADS` unfinished
        /// resumable uploads.
        UploadQuotaExceeded => "upload-quota-exceeded",
        /// 429 with `Retry-After`: `PINHOLE_QUOTA_EDITS_PER_HOUR` edits asked
        /// in the last hour.
        EditRateExceeded => "edit-rate-exceeded",
    }
}

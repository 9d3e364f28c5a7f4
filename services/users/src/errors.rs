//! Every error code the users role answers (besides the kit's
//! [`Common`](pinhole_http::Common) ones).

pinhole_http::error_codes! {
    pub enum UsersError {
        /// The same meaning as `Common::UserNotFound`.
        UserNotFound => "user-not-found",
        UsernameTaken => "username-taken",
        EmailTaken => "email-taken",
        TooManySignUps => "too-many-sign-ups",
        TooManyAttempts => "too-many-attempts",
        InvalidCredentials => "invalid-credentials",
        InvalidRefreshToken => "invalid-refresh-token",
        RefreshTokenReused => "refresh-token-reused",
        UserBlocked => "user-blocked",
        FollowRequestNotFound => "follow-request-not-found",
    }
}

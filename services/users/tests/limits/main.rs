//! The users role's limits on log-ins and sign-ups, served by the role
//! alone; one test binary for both.

/// A test per backend of each scenario `name(app)`: `sqlite::name` on the
/// embedded backends, `postgres::name` on Postgres and Redis.
macro_rules! backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    let dir = tempfile::tempdir()?;
                    super::$name(crate::support::embedded(&dir)).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    let dir = tempfile::tempdir()?;
                    super::$name(crate::support::real(&dir).await?).await
                }
            )*
        }
    };
}

mod log_in;
mod sign_up;
mod support;

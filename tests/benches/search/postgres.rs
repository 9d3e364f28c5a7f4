//! The same photos in PostgreSQL, as one would search them there: a
//! weighted tsvector with a GIN index, tags as `text[]` with GIN, the
//! position as a PostGIS `geography(Point)` with GiST.
//!
//! English text is indexed with the `english` configuration (stemmed, as
//! the index stems). PostgreSQL cannot segment Chinese, so a Chinese
//! photo's title and description are stored as jieba's words (the index's
//! own segmentation) separated by spaces, under the `simple`
//! configuration; Chinese queries are segmented the same way. That gives
//! PostgreSQL the segmentation for free, so its Chinese figures are a
//! lower bound.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use sea_orm::sqlx::postgres::{PgConnection, PgRow};
use sea_orm::sqlx::{self, Connection, Row};

use crate::data::{Photo, Vocab};
use crate::queries::{Kind, Query};

pub struct Postgres {
    pub conn: PgConnection,
    pub server: String,
    pub database: String,
}

pub struct Loaded {
    pub copy: Duration,
    pub indexes: Duration,
    pub analyze: Duration,
    pub table_bytes: i64,
    pub index_bytes: i64,
}

const SCHEMA: &str = r"
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE TABLE photos (
    id uuid NOT NULL,
    lang text NOT NULL,
    title text,
    description text,
    tag_text text,
    extra text,
    tags text[] NOT NULL,
    camera text,
    author text NOT NULL,
    visibility text NOT NULL,
    created timestamptz NOT NULL,
    taken timestamptz,
    likes integer NOT NULL,
    geog geography(Point, 4326),
    tsv tsvector GENERATED ALWAYS AS (
        CASE WHEN lang = 'zh' THEN
            setweight(to_tsvector('simple', coalesce(title, '')), 'A') ||
            setweight(to_tsvector('simple', coalesce(description, '')), 'B')
        ELSE
            setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
            setweight(to_tsvector('english', coalesce(description, '')), 'B')
        END ||
        setweight(to_tsvector('english', coalesce(tag_text, '')), 'B') ||
        setweight(to_tsvector('english', coalesce(extra, '')), 'D')
    ) STORED
)";

const INDEXES: &[&str] = &[
    "ALTER TABLE photos ADD PRIMARY KEY (id)",
    "CREATE INDEX photos_tsv ON photos USING gin (tsv)",
    "CREATE INDEX photos_tags ON photos USING gin (tags)",
    "CREATE INDEX photos_geog ON photos USING gist (geog)",
];

/// `COPY … FROM STDIN` text format: backslash escapes, `\N` for NULL.
fn field(out: &mut String, v: Option<&str>) {
    match v {
        None => out.push_str("\\N"),
        Some(s) => {
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

/// A `text[]` literal: `{"a","b"}`.
fn array(tags: &[String]) -> String {
    let mut s = String::from("{");
    for (i, t) in tags.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('"');
        for c in t.chars() {
            if c == '"' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
    }
    s.push('}');
    s
}

fn row(out: &mut String, v: &Vocab, p: &Photo) {
    let r = &p.record;
    let author = &v.users[p.author];
    let (lang, title, description) = match &p.segmented {
        Some((t, d)) => ("zh", t.as_deref(), d.as_deref()),
        None => ("en", r.title.as_deref(), r.description.as_deref()),
    };
    // What the index's `all` field holds besides title, description and
    // tags.
    let mut extra = String::new();
    for s in [
        r.camera.as_deref(),
        Some(author.username.as_str()),
        author.display_name.as_deref(),
    ]
    .into_iter()
    .flatten()
    {
        extra.push_str(s);
        extra.push(' ');
    }
    if let Some(l) = &r.location {
        for s in [
            l.place_name.as_deref(),
            l.city.as_deref(),
            l.region.as_deref(),
            l.country.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            extra.push_str(s);
            extra.push(' ');
        }
    }
    let _ = write!(out, "{}\t{lang}\t", r.image_id);
    field(out, title);
    out.push('\t');
    field(out, description);
    out.push('\t');
    field(out, Some(&r.tags.join(" ")));
    out.push('\t');
    field(out, Some(&extra));
    out.push('\t');
    field(out, Some(&array(&r.tags)));
    out.push('\t');
    field(out, r.camera.as_deref());
    out.push('\t');
    field(out, Some(&author.username.to_lowercase()));
    out.push('\t');
    field(out, Some(r.visibility.as_str()));
    let _ = write!(out, "\t{}\t", r.created_at.to_rfc3339());
    match r.taken_at {
        Some(t) => out.push_str(&t.to_rfc3339()),
        None => out.push_str("\\N"),
    }
    let _ = write!(out, "\t{}\t", p.likes);
    match &r.location {
        Some(l) => {
            let _ = write!(out, "SRID=4326;POINT({} {})", l.lon, l.lat);
        }
        None => out.push_str("\\N"),
    }
    out.push('\n');
}

impl Postgres {
    /// Whether the server has PostGIS to install.
    pub async fn has_postgis(server: &str) -> anyhow::Result<bool> {
        let mut admin = PgConnection::connect(&format!("{server}/postgres"))
            .await
            .with_context(|| format!("connecting to PostgreSQL at {server}"))?;
        let found: Option<(String,)> =
            sqlx::query_as("SELECT name FROM pg_available_extensions WHERE name = 'postgis'")
                .fetch_optional(&mut admin)
                .await?;
        Ok(found.is_some())
    }

    /// Connects to `database`, creating it (empty, with the table) when
    /// `create`.
    pub async fn connect(server: &str, database: &str, create: bool) -> anyhow::Result<Self> {
        if create {
            let mut admin = PgConnection::connect(&format!("{server}/postgres")).await?;
            sqlx::raw_sql(&format!(
                "CREATE DATABASE \"{database}\" TEMPLATE template0 ENCODING 'UTF8' \
                 LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
            ))
            .execute(&mut admin)
            .await?;
        }
        let mut conn = PgConnection::connect(&format!("{server}/{database}")).await?;
        if create {
            sqlx::raw_sql(SCHEMA).execute(&mut conn).await?;
        }
        // JIT compiles the plan of any costly query (tens of milliseconds
        // each time): off, as for OLTP.
        sqlx::raw_sql("SET jit = off").execute(&mut conn).await?;
        Ok(Self {
            conn,
            server: server.to_owned(),
            database: database.to_owned(),
        })
    }

    /// Loads `photos` with COPY, then builds the indexes and analyzes.
    pub async fn load(&mut self, v: &Vocab, photos: &[Photo]) -> anyhow::Result<Loaded> {
        let started = Instant::now();
        let mut copy = self
            .conn
            .copy_in_raw(
                "COPY photos (id, lang, title, description, tag_text, extra, tags, camera, \
                 author, visibility, created, taken, likes, geog) FROM STDIN",
            )
            .await?;
        let mut buf = String::with_capacity(4 << 20);
        for p in photos {
            row(&mut buf, v, p);
            if buf.len() >= 4 << 20 {
                copy.send(std::mem::take(&mut buf).into_bytes()).await?;
                buf.reserve(4 << 20);
            }
        }
        if !buf.is_empty() {
            copy.send(buf.into_bytes()).await?;
        }
        copy.finish().await?;
        let copied = started.elapsed();
        let started = Instant::now();
        sqlx::raw_sql("SET maintenance_work_mem = '1GB'")
            .execute(&mut self.conn)
            .await?;
        for sql in INDEXES {
            sqlx::raw_sql(sql).execute(&mut self.conn).await?;
        }
        let indexes = started.elapsed();
        let started = Instant::now();
        sqlx::raw_sql("VACUUM ANALYZE photos")
            .execute(&mut self.conn)
            .await?;
        let analyze = started.elapsed();
        let (table_bytes, index_bytes) = self.sizes().await?;
        Ok(Loaded {
            copy: copied,
            indexes,
            analyze,
            table_bytes,
            index_bytes,
        })
    }

    /// The table's size (with TOAST) and its indexes'.
    pub async fn sizes(&mut self) -> anyhow::Result<(i64, i64)> {
        Ok(
            sqlx::query_as("SELECT pg_table_size('photos'), pg_indexes_size('photos')")
                .fetch_one(&mut self.conn)
                .await?,
        )
    }

    pub async fn count(&mut self) -> anyhow::Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM photos")
            .fetch_one(&mut self.conn)
            .await?;
        Ok(n)
    }

    /// Runs `q`: the first 20 in the index's order and the number of
    /// matches, in one statement.
    pub async fn run(&mut self, q: &Query) -> anyhow::Result<(Duration, u64, usize)> {
        let english = "plainto_tsquery('english', $1)";
        let chinese = "to_tsquery('simple', $1)";
        let point = |lat: &str, lon: &str| format!("ST_MakePoint({lon}, {lat})::geography");
        let started = Instant::now();
        let words = q.pg_words.join(" ");
        let rows: Vec<PgRow> = match q.kind {
            Kind::TextCommon | Kind::TextRare | Kind::Chinese => {
                let (tsq, arg) = if q.kind == Kind::Chinese {
                    (chinese, q.pg_words.join(" & "))
                } else {
                    (english, words)
                };
                let sql = format!(
                    "SELECT id, count(*) OVER () FROM photos, {tsq} q \
                     WHERE tsv @@ q AND visibility = 'public' \
                     ORDER BY ts_rank(tsv, q) DESC, created DESC LIMIT 20"
                );
                sqlx::query(&sql)
                    .bind(arg)
                    .fetch_all(&mut self.conn)
                    .await?
            }
            Kind::TextTag => {
                let sql = format!(
                    "SELECT id, count(*) OVER () FROM photos, {english} q \
                     WHERE tsv @@ q AND tags @> ARRAY[$2] AND visibility = 'public' \
                     ORDER BY ts_rank(tsv, q) DESC, created DESC LIMIT 20"
                );
                sqlx::query(&sql)
                    .bind(words)
                    .bind(q.tag.clone().unwrap_or_default())
                    .fetch_all(&mut self.conn)
                    .await?
            }
            Kind::Radius1 | Kind::Radius10 | Kind::Radius100 => {
                let (lat, lon) = q.near.context("near")?;
                let sql = format!(
                    "SELECT id, count(*) OVER () FROM photos \
                     WHERE ST_DWithin(geog, {}, $3, false) AND visibility = 'public' \
                     ORDER BY created DESC LIMIT 20",
                    point("$1", "$2")
                );
                sqlx::query(&sql)
                    .bind(lat)
                    .bind(lon)
                    .bind(q.radius_km.context("radius")? * 1000.0)
                    .fetch_all(&mut self.conn)
                    .await?
            }
            Kind::TextRadius => {
                let (lat, lon) = q.near.context("near")?;
                let sql = format!(
                    "SELECT id, count(*) OVER () FROM photos, {english} q \
                     WHERE tsv @@ q AND ST_DWithin(geog, {}, $4, false) \
                     AND visibility = 'public' \
                     ORDER BY ts_rank(tsv, q) DESC, created DESC LIMIT 20",
                    point("$2", "$3")
                );
                sqlx::query(&sql)
                    .bind(words)
                    .bind(lat)
                    .bind(lon)
                    .bind(q.radius_km.context("radius")? * 1000.0)
                    .fetch_all(&mut self.conn)
                    .await?
            }
            Kind::BoxDistance => {
                let (lat, lon) = q.near.context("near")?;
                let b = q.bbox.context("bbox")?;
                // The count as a sub-query, so that the page can come from
                // the GiST index's nearest-first order.
                let inside = "geog && ST_MakeEnvelope($1, $2, $3, $4, 4326)::geography \
                              AND visibility = 'public'";
                let sql = format!(
                    "SELECT id, (SELECT count(*) FROM photos WHERE {inside}) FROM photos \
                     WHERE {inside} ORDER BY geog <-> {} LIMIT 20",
                    point("$5", "$6")
                );
                sqlx::query(&sql)
                    .bind(b.min_lon)
                    .bind(b.min_lat)
                    .bind(b.max_lon)
                    .bind(b.max_lat)
                    .bind(lat)
                    .bind(lon)
                    .fetch_all(&mut self.conn)
                    .await?
            }
        };
        let took = started.elapsed();
        let total = match rows.first() {
            Some(r) => r.try_get::<i64, _>(1)? as u64,
            None => 0,
        };
        Ok((took, total, rows.len()))
    }

    /// Drops the database.
    pub async fn drop_database(self) -> anyhow::Result<()> {
        self.conn.close().await?;
        let mut admin = PgConnection::connect(&format!("{}/postgres", self.server)).await?;
        sqlx::raw_sql(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.database
        ))
        .execute(&mut admin)
        .await?;
        Ok(())
    }
}

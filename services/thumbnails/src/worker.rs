//! The upload worker: for each `image.uploaded` job on the urgent topic it
//! reports `image.processing`, decodes the original once (EXIF orientation
//! applied), stores the standard derivatives under content-addressed keys
//! (the original's SHA-256, so replays and duplicate uploads overwrite the
//! same objects), and reports `image.processed` or, for an image that
//! cannot be decoded, `image.processing_failed` with the reason.
//!
//! At-least-once: the job is committed only after the report is published;
//! a worker stopped half-way leaves the job to the next one.

use std::sync::{Arc, LazyLock};

use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader};
use pinhole_bus::{HandleError, Message, Record};
use pinhole_events::images::{
    self as kinds, Derivative, ProcessJob, Processed, Processing, ProcessingFailed,
};
use pinhole_events::{Envelope, topics};
use pinhole_http::AppContext;
use pinhole_media::Format;
use tokio::sync::Semaphore;

const SOURCE: &str = "/pinhole/thumbnails";

/// Decoding is CPU-bound: one image per core at a time.
static CPU: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    Arc::new(Semaphore::new(
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2),
    ))
});

/// A derivative made in memory.
pub struct Made {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub jpeg: Vec<u8>,
}

/// Where a derivative of the content `sha256` lives.
pub fn derivative_key(sha256: &str, name: &str, ext: &str) -> String {
    format!(
        "derivatives/{}/{sha256}/{name}.{ext}",
        &sha256[..2.min(sha256.len())]
    )
}

fn orient(img: DynamicImage, orientation: Option<u16>) -> DynamicImage {
    match orientation.unwrap_or(1) {
        2 => img.fliph(),
        3 => img.rotate180(),
        4 => img.flipv(),
        5 => img.rotate90().fliph(),
        6 => img.rotate90(),
        7 => img.rotate270().fliph(),
        8 => img.rotate270(),
        _ => img,
    }
}

fn encode(img: &DynamicImage) -> Result<Vec<u8>, String> {
    let rgb = img.to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82)
        .encode_image(&rgb)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Decodes `bytes` once and makes the square 256 px thumbnail and the 1080 px
/// (longest edge, never enlarged) JPEG.
pub fn make_derivatives(bytes: &[u8], max_pixels: u64) -> Result<Vec<Made>, String> {
    let inspected = pinhole_media::inspect(bytes, &pinhole_media::Limits { max_pixels })
        .map_err(|e| e.to_string())?;
    let format = match inspected.format {
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Png => ImageFormat::Png,
        Format::Gif => ImageFormat::Gif,
        Format::Webp => ImageFormat::WebP,
        other => {
            return Err(format!(
                "{} images cannot be decoded on this server",
                other.as_str()
            ));
        }
    };
    let mut reader = ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(inspected.width.max(1));
    limits.max_image_height = Some(inspected.height.max(1));
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(64 << 20));
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| format!("the image cannot be decoded: {e}"))?;
    let img = orient(img, inspected.exif.and_then(|e| e.orientation));
    let square = {
        let side = img.width().min(img.height());
        let x = (img.width() - side) / 2;
        let y = (img.height() - side) / 2;
        img.crop_imm(x, y, side, side)
            .resize_exact(256, 256, FilterType::Triangle)
    };
    let w1080 = if img.width().max(img.height()) > 1080 {
        img.resize(1080, 1080, FilterType::Triangle)
    } else {
        img
    };
    let mut out = Vec::new();
    for (name, d) in [("thumb_256", square), ("w1080", w1080)] {
        out.push(Made {
            name,
            width: d.width(),
            height: d.height(),
            jpeg: encode(&d)?,
        });
    }
    Ok(out)
}

async fn publish<T: serde::Serialize>(
    ctx: &AppContext,
    kind: &str,
    image_id: uuid::Uuid,
    data: &T,
) -> Result<(), HandleError> {
    let env = Envelope::new(
        SOURCE,
        kind,
        format!("image/{image_id}"),
        1,
        serde_json::to_value(data).map_err(|e| HandleError::Skip(e.to_string()))?,
    );
    let key = image_id.to_string();
    let payload = env.to_json();
    ctx.backends
        .bus
        .publish_all(&[Message {
            topic: topics::IMAGES,
            key: key.as_bytes(),
            payload: &payload,
        }])
        .await?;
    Ok(())
}

async fn handle(ctx: &AppContext, record: Record) -> Result<(), HandleError> {
    let env = Envelope::from_json(&record.payload)
        .map_err(|e| HandleError::Skip(format!("not an event: {e}")))?;
    if env.kind != kinds::UPLOADED {
        return Ok(());
    }
    let job: ProcessJob =
        serde_json::from_value(env.data).map_err(|e| HandleError::Skip(format!("bad job: {e}")))?;
    publish(
        ctx,
        kinds::PROCESSING,
        job.image_id,
        &Processing {
            image_id: job.image_id,
            task_id: job.task_id,
        },
    )
    .await?;
    let original = match ctx.backends.blobs.get(&job.original_key, None).await {
        Ok(body) => body.bytes().await?,
        Err(pinhole_blob::BlobError::NotFound(_)) => {
            // The image was deleted (and its original collected) meanwhile.
            let failed = ProcessingFailed {
                image_id: job.image_id,
                task_id: job.task_id,
                reason: "the original is gone".into(),
            };
            return publish(ctx, kinds::PROCESSING_FAILED, job.image_id, &failed).await;
        }
        Err(e) => return Err(e.into()),
    };
    let permit = Arc::clone(&CPU)
        .acquire_owned()
        .await
        .map_err(|e| HandleError::Retry(e.to_string()))?;
    let max_pixels = ctx.settings.max_image_pixels;
    let made = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        make_derivatives(&original, max_pixels)
    })
    .await
    .map_err(|e| HandleError::Retry(e.to_string()))?;
    match made {
        Err(reason) => {
            tracing::info!(image_id = %job.image_id, %reason, "image cannot be processed");
            let failed = ProcessingFailed {
                image_id: job.image_id,
                task_id: job.task_id,
                reason,
            };
            publish(ctx, kinds::PROCESSING_FAILED, job.image_id, &failed).await
        }
        Ok(made) => {
            let mut derivatives = Vec::with_capacity(made.len());
            for m in made {
                let key = derivative_key(&job.sha256, m.name, "jpg");
                pinhole_blob::put_bytes(ctx.backends.blobs.as_ref(), &key, m.jpeg).await?;
                derivatives.push(Derivative {
                    name: m.name.to_owned(),
                    key,
                    width: m.width,
                    height: m.height,
                    format: "jpeg".into(),
                });
            }
            let done = Processed {
                image_id: job.image_id,
                task_id: job.task_id,
                derivatives,
            };
            publish(ctx, kinds::PROCESSED, job.image_id, &done).await?;
            tracing::info!(image_id = %job.image_id, "derivatives made");
            Ok(())
        }
    }
}

/// Consumes upload jobs until the task is aborted.
pub async fn run(ctx: AppContext) {
    let handler_ctx = ctx.clone();
    pinhole_bus::consume(
        ctx.backends.bus.clone(),
        crate::GROUP.to_owned(),
        vec![topics::THUMBNAILS_URGENT],
        move |record| {
            let ctx = handler_ctx.clone();
            async move { handle(&ctx, record).await }
        },
    )
    .await;
}

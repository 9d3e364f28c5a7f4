// Drives the real tus-js-client against a pinhole server and prints one JSON
// line with what happened. Usage:
//   node client.mjs ENDPOINT TOKEN FILE whole|resume|terminate [TITLE]
import fs from 'node:fs';
import * as tus from 'tus-js-client';

const [endpoint, token, file, mode, title = 'from tus-js-client'] = process.argv.slice(2);
const data = fs.readFileSync(file);
const headers = { Authorization: `Bearer ${token}` };
const metadata = { filename: 'photo.jpg', filetype: 'image/jpeg', title, tags: 'tus,resumable' };

function run(options, onProgress) {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint,
      headers,
      metadata,
      retryDelays: [],
      ...options,
      onProgress: (sent, total) => onProgress && onProgress(upload, sent, total),
      onError: (err) => reject(err),
      onSuccess: (payload) => resolve({ upload, payload }),
    });
    upload.start();
  });
}

function ids(payload) {
  const res = payload.lastResponse;
  return { image_id: res.getHeader('Pinhole-Image-Id'), task_id: res.getHeader('Pinhole-Task-Id') };
}

async function main() {
  if (mode === 'whole') {
    const { upload, payload } = await run({});
    return { url: upload.url, ...ids(payload) };
  }
  // Send a few chunks, stop, then carry on from where the server says.
  const chunkSize = 64 * 1024;
  let stoppedUrl = null;
  await new Promise((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint, headers, metadata, chunkSize, retryDelays: [],
      onError: reject,
      onSuccess: () => reject(new Error('finished before it was stopped')),
      onChunkComplete: (_size, sent) => {
        if (sent >= 3 * chunkSize && stoppedUrl === null) {
          stoppedUrl = upload.url;
          upload.abort(false).then(resolve, reject);
        }
      },
    });
    upload.start();
  });
  if (mode === 'terminate') {
    await tus.Upload.terminate(stoppedUrl, { headers, retryDelays: [] });
    return { url: stoppedUrl, terminated: true };
  }
  let firstOffset = null;
  const { payload } = await run({ uploadUrl: stoppedUrl, chunkSize }, (_u, sent) => {
    if (firstOffset === null) firstOffset = sent;
  });
  return { url: stoppedUrl, resumed_at_least: firstOffset, ...ids(payload) };
}

main().then(
  (out) => console.log(JSON.stringify(out)),
  (err) => { console.log(JSON.stringify({ error: String(err && err.message || err) })); process.exit(1); },
);

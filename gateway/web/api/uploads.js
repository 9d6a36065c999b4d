// @ts-check
// Uploads file bytes straight to storage through a signed URL (never through the app's memory).
// XMLHttpRequest, not fetch: only XHR reports upload progress.

/**
 * @param {{url: string, method?: string, headers?: Record<string, string>}} target
 * @param {File} file
 * @param {(loaded: number, total: number) => void} onProgress
 * @returns {{done: Promise<void>, abort: () => void}}
 */
export function uploadFile(target, file, onProgress) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open(target.method || "PUT", target.url);
    for (const [name, value] of Object.entries(target.headers || {})) {
      xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.total || file.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(file.size, file.size);
        resolve(undefined);
      } else {
        reject(new Error(uploadError(xhr)));
      }
    };
    xhr.onerror = () => reject(new Error("The upload could not reach the storage server."));
    xhr.onabort = () => reject(new DOMException("Upload cancelled", "AbortError"));
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}

/** @param {XMLHttpRequest} xhr */
function uploadError(xhr) {
  let message = `The storage server refused the upload (HTTP ${xhr.status}).`;
  try {
    const body = JSON.parse(xhr.responseText);
    if (body?.error?.message) message = body.error.message;
  } catch {
    // Storage (GCS) answers XML; the status is what we can say.
  }
  const id = xhr.getResponseHeader("x-request-id");
  return id ? `${message} (request id ${id})` : message;
}

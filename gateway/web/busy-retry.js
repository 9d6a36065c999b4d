// @ts-check
// Calls the server refuses for now (429: the user has as many of them in flight as it allows
// at once) are asked again after a short wait, quietly, a few times. The RenderPage cap counts
// draws the server is still doing for pages the user has already left: an aborted fetch does
// not stop a draw, so paging quickly meets the cap with nothing wrong.
import { ApiError } from "./api.js";

// Waits before each new try (ms): about 3 s in all, a few draws' time.
export const BUSY_DELAYS = [150, 300, 600, 900, 1200];

/**
 * `call()`, tried again after each of `delays` while it answers 429 and `wanted()` holds.
 * Stops with an AbortError once `signal` aborts (during a wait too); the last 429 is thrown
 * when the tries run out.
 * @template T
 * @param {() => Promise<T>} call
 * @param {{signal?: AbortSignal, wanted?: () => boolean, delays?: number[]}} [options]
 * @returns {Promise<T>}
 */
export async function retryWhileBusy(call, { signal, wanted = () => true, delays = BUSY_DELAYS } = {}) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const busy = error instanceof ApiError && error.status === 429;
      if (!busy || attempt >= delays.length || !wanted()) throw error;
    }
    await pause(delays[attempt], signal);
    if (!wanted()) throw new DOMException("no longer wanted", "AbortError");
  }
}

/** @param {number} ms @param {AbortSignal} [signal] @returns {Promise<void>} */
function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", stop);
      resolve();
    }, ms);
    function stop() {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener("abort", stop, { once: true });
  });
}

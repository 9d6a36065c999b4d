// @ts-check
// Live job events (WatchJob, `GET /v1/jobs/{job}:watch` as Server-Sent Events).
//
// EventSource cannot send an Authorization header and the gateway takes credentials only from
// headers (never from the URL, where they would end up in logs), so the stream is read with
// fetch() and parsed here. When streaming fails repeatedly the watcher polls the job's progress.
import { authHeaders, newRequestId } from "../api.js";
import { getProgress } from "./jobs.js";

// The kind of every stream's first message: the job's status and counters as they are.
export const SNAPSHOT = "job.snapshot";
// What the workers holding the job's tasks wait for, one line each in `message` (empty: none).
export const HELD = "job.held";
const RECONNECT_MS = 1000;
const POLL_MS = 2000;
const FAILURES_BEFORE_POLLING = 3;
// Polls before the stream is tried again: a gateway restarted for longer than the three
// reconnects left the page polling for as long as it stayed open.
const POLLS_BEFORE_STREAMING = 5;

/**
 * What a page says of how it is kept up to date, for each `onMode`.
 * @param {string} mode
 */
export function modeWords(mode) {
  return (
    {
      live: "Updating live.",
      reconnecting: "Connection lost; reconnecting…",
      polling: "Live updates unavailable; checking every few seconds.",
      offline: "The server cannot be reached; trying again every few seconds.",
    }[mode] || ""
  );
}

/**
 * Parses an SSE byte stream into events.
 * @param {ReadableStreamDefaultReader<Uint8Array>} reader
 * @param {(event: {id: string, event: string, data: string}) => void} emit
 */
export async function readEvents(reader, emit) {
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { id: "", event: "message", data: "" };
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") event.data += (event.data ? "\n" : "") + text;
        else if (field === "id") event.id = text;
        else if (field === "event") event.event = text;
      }
      emit(event);
    }
  }
}

/**
 * Watches a job until stopped. `onEvent` gets each JobEvent; `onProgress` gets a JobProgress
 * while polling; `onMode` says how the page is being kept live ("live", "reconnecting",
 * "polling", "offline": modeWords).
 * `afterSequence` is the last event the page already knows (0: only what happens from now):
 * the stream replays anything newer first, so nothing between reading the page and
 * connecting is lost. Each (re)connected stream starts with a SNAPSHOT event (the job's
 * status and counters, not part of its trail), numbered where the stream resumes.
 * @param {string} job
 * @param {{onEvent?: (event: any) => void, onProgress?: (progress: any) => void, onMode?: (mode: string) => void, afterSequence?: number}} handlers
 * @returns {() => void} stops watching
 */
export function watchJob(
  job,
  { onEvent = () => {}, onProgress = () => {}, onMode = () => {}, afterSequence = 0 },
) {
  const controller = new AbortController();
  let stopped = false;
  let lastSequence = afterSequence;
  let failures = 0;

  async function stream() {
    const response = await fetch(`/v1/${job}:watch?afterSequence=${lastSequence}`, {
      headers: { Accept: "text/event-stream", "X-Request-Id": newRequestId(), ...authHeaders() },
      signal: controller.signal,
      credentials: "omit",
      cache: "no-store",
    });
    if (!response.ok || !response.body) throw new Error(`watch answered ${response.status}`);
    onMode("live");
    failures = 0;
    await readEvents(response.body.getReader(), (sse) => {
      if (sse.event === "error") throw new Error(sse.data);
      if (!sse.data) return;
      const event = JSON.parse(sse.data);
      lastSequence = Math.max(lastSequence, Number(event.sequence || sse.id || 0));
      onEvent(event);
    });
  }

  /** Polls `ticks` times, POLL_MS apart. @param {number} ticks */
  async function poll(ticks) {
    for (let tick = 0; tick < ticks && !stopped; tick += 1) {
      try {
        onProgress(await getProgress(job));
        onMode("polling");
      } catch {
        // Retried on the next tick; the page shows the last known state, and says so.
        onMode("offline");
      }
      await sleep(POLL_MS, controller.signal);
    }
  }

  (async () => {
    while (!stopped) {
      let failed = false;
      try {
        await stream();
      } catch (error) {
        if (stopped) return;
        failures += 1;
        failed = true;
      }
      if (stopped) return;
      if (failures >= FAILURES_BEFORE_POLLING) {
        // Then the stream once more; a failure of it goes back to polling at once.
        await poll(POLLS_BEFORE_STREAMING);
        failures = FAILURES_BEFORE_POLLING - 1;
        continue;
      }
      // It said "Updating live." while the gateway was down.
      if (failed) onMode("reconnecting");
      await sleep(RECONNECT_MS * failures || RECONNECT_MS, controller.signal);
    }
  })();

  return () => {
    stopped = true;
    controller.abort();
  };
}

/**
 * Waits `ms`, or until `signal` aborts. The abort listener goes with the wait: left on the
 * signal, every 2-second poll added one more for as long as the page stayed open.
 * @param {number} ms @param {AbortSignal} signal
 */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve(undefined);
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

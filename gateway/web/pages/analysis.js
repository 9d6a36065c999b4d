// @ts-check
// Analysis: live unpacking/analysis progress, every file's problem in words, continue when ready.
import { getJob, getProgress, deleteJob } from "../api/jobs.js";
import { listAllFiles } from "../api/files.js";
import { modeWords, watchJob } from "../api/watch.js";
import { fileProblem } from "../problems.js";
import { navigate } from "../router.js";
import { h, replace, errorBox, statusBadge, progressBar, confirmDialog, latestOnly } from "../ui.js";

// [one, many]: the noun agrees with the count ("1 archive unpacked", "3 files ready").
const FILE_STATUS_WORDS = /** @type {Record<string, [string, string]>} */ ({
  PENDING_UPLOAD: ["file waiting for upload", "files waiting for upload"],
  UPLOADED: ["file waiting for analysis", "files waiting for analysis"],
  ANALYZING: ["file being analysed", "files being analysed"],
  READY: ["file ready", "files ready"],
  UNPACKED: ["archive unpacked", "archives unpacked"],
  UNSUPPORTED: ["file of a type that cannot be read", "files of a type that cannot be read"],
  FAILED: ["file failed", "files failed"],
});

/** @param {string} status @param {number} count */
function statusWords(status, count) {
  const words = FILE_STATUS_WORDS[status];
  if (!words) return `${count === 1 ? "file" : "files"} ${status}`;
  return count === 1 ? words[0] : words[1];
}

/** @param {HTMLElement} main @param {{id: string}} params */
export async function renderAnalysis(main, { id }) {
  const name = `jobs/${id}`;
  /** Aborted when the page is left: a long listing stops coming, and nothing new starts. */
  const leaving = new AbortController();
  const job = await getJob(name);
  const heading = h("h1", {}, `Analysis: ${job.displayName || id}`);
  const badge = h("span");
  const counts = h("ul", { class: "counts", "aria-live": "polite" });
  const bar = /** @type {HTMLProgressElement} */ (progressBar("Analysis progress", 0, 1));
  const live = h("p", { class: "muted" });
  const problems = h("div");
  const next = h("div", { class: "actions" });
  const errors = h("div");
  replace(main, heading, h("p", {}, "Status: ", badge), bar, counts, live, next, h("h2", {}, "Problems"), problems, errors);

  /** Starts or stops the live watch for a status; set up below. */
  let followLive = (/** @type {string} */ _status) => {};
  let refreshing = false;
  let again = false;
  let lastStatus = "";
  async function refresh() {
    if (leaving.signal.aborted) return;
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    try {
      show(await getProgress(name));
    } catch (error) {
      replace(errors, errorBox(error));
    } finally {
      refreshing = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  /** @param {any} progress */
  function show(progress) {
    replace(badge, statusBadge(progress.status));
    const byStatus = progress.filesByStatus || {};
    const totalFiles = Object.values(byStatus).reduce((a, b) => a + Number(b), 0);
    const settled = ["READY", "UNPACKED", "UNSUPPORTED", "FAILED"].reduce(
      (sum, s) => sum + Number(byStatus[s] || 0),
      0,
    );
    bar.max = Math.max(totalFiles, 1);
    bar.value = settled;
    replace(
      counts,
      Object.entries(byStatus).map(([status, count]) =>
        h("li", {}, `${count} ${statusWords(status, Number(count))}`),
      ),
    );
    if (progress.status !== lastStatus) {
      lastStatus = progress.status;
      loadProblems(progress.status);
      followLive(progress.status);
    }
    if (progress.status === "READY" && !Number(byStatus.READY || 0)) {
      // Nothing to extract from: configuring would lead to a job whose every task has no
      // file. A job takes no files after it is created (CreateJob declares them all), so the
      // way on is a new job with files that can be read.
      replace(
        next,
        h("p", {}, "None of the files of this job can be read, so there is nothing to extract. Start a new job with PDFs, images or ZIP archives of them, or delete this one."),
        h("a", { href: "/app/jobs/new", class: "button primary" }, "Add files in a new job"),
        deleteButton("Delete this job, which has no file that can be read?"),
      );
    } else if (progress.status === "READY") {
      replace(
        next,
        h("p", {}, "Analysis is done. Say which fields to extract next."),
        h("a", { href: `/app/jobs/${id}/configure`, class: "button primary" }, "Continue to configure"),
      );
    } else if (progress.status === "PENDING_UPLOAD") {
      // Uploads were left unfinished (the tab closed mid-way): nothing will happen by itself.
      replace(
        next,
        h("p", {}, "The uploads of this job were never finished. Start a new job with the files, or delete this one."),
        h("a", { href: "/app/jobs/new", class: "button primary" }, "New job"),
        deleteButton("Delete this unfinished job?"),
      );
    } else if (progress.status !== "ANALYZING") {
      replace(next, h("a", { href: `/app/jobs/${id}/results`, class: "button" }, "Open the job"));
    } else {
      replace(next);
    }
  }

  /** Deletes the job once confirmed. @param {string} question */
  function deleteButton(question) {
    return h(
      "button",
      {
        type: "button",
        class: "danger",
        onclick: async () => {
          if (!(await confirmDialog(question, "Delete"))) return;
          try {
            await deleteJob(name);
            await navigate("/app/jobs");
          } catch (error) {
            replace(errors, errorBox(error));
          }
        },
      },
      "Delete job",
    );
  }

  // Read again at each change of status: the listing taken while files were being analysed,
  // answered after the one taken at the end, said "No problems so far." of a finished job
  // whose files had failed.
  const latestFiles = latestOnly(listAllFiles);

  /** @param {string} status */
  async function loadProblems(status) {
    try {
      const files = await latestFiles(name, leaving.signal);
      if (files === undefined) return; // a later status's listing is on its way
      const bad = files.filter((f) => f.status === "FAILED" || f.status === "UNSUPPORTED");
      if (!bad.length) {
        replace(
          problems,
          h("p", { class: "empty" }, status === "ANALYZING" ? "No problems so far." : "Every file can be used."),
        );
        return;
      }
      replace(
        problems,
        h("ul", { class: "problems" }, bad.map(fileProblem)),
      );
    } catch (error) {
      if (!leaving.signal.aborted) replace(problems, errorBox(error));
    }
  }

  await refresh();
  let timer = 0;
  /** @type {(() => void) | null} */
  let stopWatch = null;
  // Watch only while files are still being analysed: a settled job has no more events, and an
  // open watch holds a connection.
  followLive = (/** @type {string} */ status) => {
    if (leaving.signal.aborted) return; // a late answer after leaving starts no watch
    const changing = status === "ANALYZING";
    if (changing && !stopWatch) {
      stopWatch = watchJob(name, {
        onEvent: () => {
          // Each (re)connected stream starts with the job's state (a snapshot event), so the
          // page is read then too. Many events arrive in bursts while an archive unpacks: one
          // refresh per burst.
          clearTimeout(timer);
          timer = window.setTimeout(refresh, 150);
        },
        onProgress: show,
        onMode: (mode) => {
          live.textContent = modeWords(mode);
        },
      });
    } else if (!changing && stopWatch) {
      stopWatch();
      stopWatch = null;
      live.textContent = "";
    }
  };
  followLive(lastStatus);
  return () => {
    leaving.abort();
    clearTimeout(timer);
    stopWatch?.();
    stopWatch = null;
  };
}

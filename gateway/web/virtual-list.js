// @ts-check
// A list that renders only the rows in view (plus a few around), so 10,000 rows scroll as
// smoothly as 10. Rows have one fixed height; a spacer gives the scrollbar its full length.
import { h } from "./ui.js";

const OVERSCAN = 8;

/**
 * @template T
 * @param {{label: string, rowHeight?: number, height?: number, renderRow: (item: T, index: number) => HTMLElement}} options
 */
export function virtualList({ label, rowHeight = 32, height = 360, renderRow }) {
  /** @type {T[]} */
  let items = [];
  const inner = h("ul", { class: "virtual-rows", role: "list" });
  const spacer = h("div", { class: "virtual-spacer" }, inner);
  const viewport = h("div", { class: "virtual", role: "region", "aria-label": label, tabindex: "0" }, spacer);
  viewport.style.height = `${height}px`;
  let frame = 0;

  function draw() {
    frame = 0;
    spacer.style.height = `${items.length * rowHeight}px`;
    const first = Math.max(0, Math.floor(viewport.scrollTop / rowHeight) - OVERSCAN);
    const last = Math.min(items.length, Math.ceil((viewport.scrollTop + height) / rowHeight) + OVERSCAN);
    inner.style.transform = `translateY(${first * rowHeight}px)`;
    const rows = [];
    for (let i = first; i < last; i += 1) {
      const row = renderRow(items[i], i);
      row.style.height = `${rowHeight}px`;
      row.setAttribute("aria-setsize", String(items.length));
      row.setAttribute("aria-posinset", String(i + 1));
      rows.push(row);
    }
    inner.replaceChildren(...rows);
  }

  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(draw);
  };
  viewport.addEventListener("scroll", schedule, { passive: true });

  return {
    element: viewport,
    /** @param {T[]} next */
    setItems(next) {
      items = next;
      draw();
    },
    /** Scrolls so that row `index` is in view. @param {number} index */
    scrollTo(index) {
      viewport.scrollTop = index * rowHeight;
      draw();
    },
    get renderedCount() {
      return inner.childElementCount;
    },
  };
}

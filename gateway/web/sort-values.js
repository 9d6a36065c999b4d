// @ts-check
// The order of a results column: by what its values mean, not their characters. Amounts come
// as decimal strings ("1007.50") and compared as text put 1007.50 between 10.70 and 109.70;
// dates written day or month first sorted by their first digits.

/** @typedef {{jsonType?: string, format?: string}} DataType */

/**
 * A function giving each value a key that orders it, for a field of the given data type.
 * Keys are numbers for numbers and dates, strings for the rest; an empty value or one that
 * cannot be read (a number field holding "abc") gets null.
 * @param {DataType | undefined} type
 * @returns {(value: unknown) => number | string | null}
 */
export function sortKey(type) {
  if (type?.jsonType === "number" || type?.jsonType === "integer") return numberKey;
  if (type?.format === "date") return (v) => dateKey(v, /^(\d{4})-(\d{1,2})-(\d{1,2})$/, [1, 2, 3]);
  if (type?.format === "MM/DD/YYYY") return (v) => dateKey(v, /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/, [3, 1, 2]);
  if (type?.format === "DD/MM/YYYY") return (v) => dateKey(v, /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/, [3, 2, 1]);
  return textKey;
}

/** @param {unknown} value */
function numberKey(value) {
  if (value === null || value === undefined || value === "") return null;
  const n = typeof value === "number" ? value : Number(String(value).trim());
  return Number.isFinite(n) ? n : null;
}

/** @param {unknown} value @param {RegExp} pattern @param {[number, number, number]} order year, month, day groups */
function dateKey(value, pattern, [y, m, d]) {
  const found = pattern.exec(String(value ?? "").trim());
  if (!found) return null;
  return Number(found[y]) * 10_000 + Number(found[m]) * 100 + Number(found[d]);
}

/** @param {unknown} value */
function textKey(value) {
  return value === null || value === undefined || value === "" ? null : String(value);
}

/**
 * Compares two keys in a direction; values without a key go last either way, so a descending
 * sort does not open with the empty ones.
 * @param {number | string | null} x @param {number | string | null} y @param {number} direction 1 or -1
 */
export function compareKeys(x, y, direction) {
  if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
  const order =
    typeof x === "number" && typeof y === "number"
      ? x - y
      : String(x).localeCompare(String(y), undefined, { numeric: true });
  return order * direction;
}

/**
 * @module @loupe/url
 *
 * Build (and sign) Loupe image URLs: `/img/{path}?params&expires=...&s=...`.
 * Dependency-free; runs in browsers and node >= 18.
 *
 * This is a port of `proxy/urls.py`: for the same inputs both produce the same bytes
 * (pinned by `tests/vectors/url_vectors.json`). The canonical encoding:
 *
 * 1. Path: `path` is the source path as in `/img/{path}` (`"products/shoe.jpg"`); leading `/`
 *    are ignored. Each `/`-separated segment is encoded with `encodeURIComponent`, and the
 *    result is prefixed with `/img/`. This request path is what gets signed. Empty, `.` and
 *    `..` segments are refused (browsers would rewrite them and break the signature).
 * 2. Components (path segments, names, values) are encoded exactly like `encodeURIComponent`
 *    (UTF-8, upper-case `%XX`, `A-Z a-z 0-9 - _ . ! ~ * ' ( )` kept; space is `%20`).
 *    Strings with lone surrogates are refused.
 * 3. Parameters are emitted in the order given (object / Map insertion order) as `name=value`
 *    joined by `&`; `null` / `undefined` are skipped. Names must be contract parameters
 *    ({@link PARAMS}); `s` and `expires` are refused (the builder adds them). Nothing to emit:
 *    no `?`. Values must be ones the server accepts (the rules of its parser, with the default
 *    crop): `w=0`, `rot=45`, `ar` without `fit=crop`, `fp-x` without `crop=focalpoint` raise a
 *    RangeError, as the server would answer 400.
 * 4. Values: strings as they are; booleans `1` / `0`; finite numbers as the shortest
 *    round-tripping decimal in positional notation (`2` not `2.0`, `0.0000001` not `1e-7`,
 *    `-0` is `0`); `rect` may be an array of four numbers, written `x,y,w,h`.
 * 5. Signing (when `key` is given): `expires` (Unix seconds, a non-negative integer, or a
 *    `Date`, floored to seconds) is appended after the parameters; then
 *    `s = hex(HMAC-SHA256(key, requestPath + ("?" + query if query)))` is appended last.
 *    `expires` without `key` is refused (it would never be enforced).
 * 6. Base: `base` (`"https://cdn.example.com"`, `"https://example.com/media/"`) loses its
 *    trailing `/` and is prepended verbatim; it is not signed. `""` gives a root-relative URL.
 *    A base with `?` or `#` is refused.
 * 7. srcset: `"<url> <width>w"` per width, in order, joined by `", "`; each entry uses `params`
 *    with `w` set to the width (in `w`'s place if `params` has a `w` key, else last) and is
 *    signed on its own. Widths must be distinct positive integers.
 *
 * Errors: `RangeError` for invalid values (Python: `ValueError`), `TypeError` for wrong types.
 *
 * Signing uses Web Crypto (`crypto.subtle`), which is asynchronous, so {@link buildUrl} and
 * {@link srcset} always return a `Promise<string>`, signed or not. {@link buildUrlSync} and
 * {@link srcsetSync} return strings directly but cannot sign. In browsers `crypto.subtle` exists
 * only in secure contexts (https, localhost); on node 18 it is loaded from `node:crypto`.
 */

/**
 * The parameter names a URL may carry (`s` and `expires` are added by the builder).
 * @type {readonly string[]}
 */
export const PARAMS = Object.freeze([
  "w", "h", "dpr", "fit", "crop", "fp-x", "fp-y", "rect",
  "fm", "q", "policy", "ctx", "bg", "upscale",
  "ar", "auto", "blur", "sharp", "rot", "flip",
]);
const KNOWN = new Set(PARAMS);
const ADDED = new Set(["s", "expires"]);

// The server's rules for values (proxy/params.py), so a URL it would refuse is never built.
const MAX_DIMENSION = 8192;
const CHOICES = {
  fit: ["clip", "crop", "fill", "scale", "max", "min"],
  crop: ["smart", "faces", "entropy", "attention", "center", "focalpoint"],
  fm: ["auto", "jpeg", "png", "webp", "avif", "gif", "jpg", "pjpg"],
  policy: ["general", "product", "art", "screenshot", "medical", "legal"],
  ctx: ["gallery", "search", "feed", "featured", "social", "hero"],
  upscale: ["0", "1"],
  rot: ["0", "90", "180", "270"],
  flip: ["h", "v", "hv", "vh"],
};
const AUTO = ["format", "compress"];
const INTEGER = /^[0-9]{1,6}$/;
const DECIMAL = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const HEX = /^(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/;

/** @param {string} name @param {string} raw @returns {never} */
function refuse(name, raw) {
  throw new RangeError(`the server refuses ${name}=${JSON.stringify(raw)}`);
}

/** @param {string} name @param {string} raw @param {number} low @param {number} high */
function integerIn(name, raw, low, high) {
  const value = INTEGER.test(raw) ? Number(raw) : NaN;
  if (!(value >= low && value <= high)) refuse(name, raw);
  return value;
}

/** @param {string} name @param {string} raw @param {number} low @param {number} high */
function decimalIn(name, raw, low, high) {
  const value = DECIMAL.test(raw) ? Number(raw) : NaN;
  if (!(value >= low && value <= high)) refuse(name, raw);
  return value;
}

/** @param {string} name @param {string} raw */
function choice(name, raw) {
  if (!CHOICES[name].includes(raw)) refuse(name, raw);
  return raw;
}

/** Python's round(): halves go to the even neighbour. @param {number} x */
function roundHalfEven(x) {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest !== 0.5) return rest < 0.5 ? floor : floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** @param {number} a @param {number} b */
function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** A completed side must stay within what dpr could ask for. @param {number} side */
function capped(name, raw, side) {
  if (side > MAX_DIMENSION * 4) refuse(name, raw);
  return Math.max(1, side);
}

const trimSpaces = (/** @type {string} */ text) => text.replace(/^ +| +$/g, "");

/**
 * Refuse what the server's parser refuses (proxy/params.py `parse_params`).
 * @param {Map<string, string>} raw unencoded values by name
 */
function checkValues(raw) {
  const dpr = raw.has("dpr") ? decimalIn("dpr", raw.get("dpr"), 1, 4) : 1;
  const side = (/** @type {string} */ name) =>
    raw.has(name)
      ? capped(name, raw.get(name), roundHalfEven(integerIn(name, raw.get(name), 1, MAX_DIMENSION) * dpr))
      : null;
  const width = side("w");
  const height = side("h");
  if (raw.has("upscale")) choice("upscale", raw.get("upscale"));
  const fit = raw.has("fit") ? choice("fit", raw.get("fit")) : "clip";
  const crop = raw.has("crop") ? choice("crop", raw.get("crop")) : "smart";
  for (const name of ["fp-x", "fp-y"]) {
    if (!raw.has(name)) continue;
    if (crop !== "focalpoint") refuse(name, raw.get(name));
    decimalIn(name, raw.get(name), 0, 1);
  }
  if (raw.has("ar")) {
    const text = raw.get("ar");
    const parts = text.split(":");
    if (parts.length !== 2) refuse("ar", text);
    let [aw, ah] = parts.map((part) => decimalIn("ar", trimSpaces(part), 0.0001, 10000));
    if (!(aw / ah >= 0.01 && aw / ah <= 100)) refuse("ar", text);
    if (fit !== "crop" && fit !== "min") refuse("ar", text);
    const divisor = Number.isInteger(aw) && Number.isInteger(ah) ? gcd(aw, ah) : 1;
    [aw, ah] = [aw / divisor, ah / divisor];
    const round = (/** @type {number} */ v) => Math.max(1, Math.trunc(v + 0.5));
    if (width !== null && height === null) capped("ar", text, round((width * ah) / aw));
    if (height !== null && width === null) capped("ar", text, round((height * aw) / ah));
  }
  if (raw.has("rect")) {
    const text = raw.get("rect");
    const parts = text.split(",").map(trimSpaces);
    if (parts.length !== 4) refuse("rect", text);
    parts.forEach((part, i) => integerIn("rect", part, i < 2 ? 0 : 1, 1000000));
  }
  if (raw.has("fm")) choice("fm", raw.get("fm"));
  if (raw.has("q") && raw.get("q") !== "auto") integerIn("q", raw.get("q"), 1, 100);
  if (raw.has("auto")) {
    for (const part of raw.get("auto").split(",")) {
      if (!AUTO.includes(trimSpaces(part))) refuse("auto", raw.get("auto"));
    }
  }
  for (const name of ["policy", "ctx", "rot", "flip"]) if (raw.has(name)) choice(name, raw.get(name));
  if (raw.has("bg") && !HEX.test(raw.get("bg").replace(/^#/, ""))) refuse("bg", raw.get("bg"));
  if (raw.has("blur")) integerIn("blur", raw.get("blur"), 0, 100);
  if (raw.has("sharp")) integerIn("sharp", raw.get("sharp"), 0, 100);
}

/**
 * @typedef {string | number | bigint | boolean | number[] | null | undefined} ParamValue
 * @typedef {Record<string, ParamValue> | Map<string, ParamValue>} Params
 * @typedef {{ base?: string, key?: string, expires?: number | Date }} Options
 */

/**
 * `text` percent-encoded with `encodeURIComponent`; lone surrogates raise a RangeError.
 * @param {string} text
 * @returns {string}
 */
export function encodeComponent(text) {
  try {
    return encodeURIComponent(text);
  } catch (error) {
    throw new RangeError(`${JSON.stringify(text)} is not valid Unicode (lone surrogate)`, {
      cause: error,
    });
  }
}

/** @param {number | bigint} value @returns {string} */
function formatNumber(value) {
  if (typeof value === "bigint") return value.toString();
  if (!Number.isFinite(value)) throw new RangeError(`numbers must be finite, got ${value}`);
  if (value === 0) return "0";
  const text = String(value);
  const at = text.indexOf("e");
  if (at < 0) return text; // positional already, never with trailing zeros
  // Spell out the exponent form (|value| < 1e-6 or >= 1e21) positionally.
  const negative = text.startsWith("-");
  const mantissa = text.slice(negative ? 1 : 0, at);
  const exponent = Number(text.slice(at + 1));
  const [whole, fraction = ""] = mantissa.split(".");
  const digits = whole + fraction;
  const point = whole.length + exponent;
  let out;
  if (point <= 0) out = `0.${"0".repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + "0".repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return (negative ? "-" : "") + out;
}

/**
 * The unencoded text of one parameter value (not `null` / `undefined`).
 * @param {string} name
 * @param {ParamValue} value
 * @returns {string}
 */
export function formatValue(name, value) {
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return value ? "1" : "0";
  if (typeof value === "number" || typeof value === "bigint") return formatNumber(value);
  if (name === "rect" && Array.isArray(value)) {
    if (value.length !== 4) {
      throw new RangeError(`rect needs four numbers (x, y, w, h), got ${value.length}`);
    }
    return value
      .map((item) => {
        if (typeof item !== "number" && typeof item !== "bigint") {
          throw new TypeError(`rect items must be numbers, got ${String(item)}`);
        }
        return formatNumber(item);
      })
      .join(",");
  }
  throw new TypeError(`unsupported value for ${JSON.stringify(name)}: ${String(value)}`);
}

/**
 * `/img/` followed by `path`'s segments, each encoded with `encodeURIComponent`.
 * @param {string} path
 * @returns {string}
 */
export function requestPath(path) {
  if (typeof path !== "string") throw new TypeError(`path must be a string, got ${typeof path}`);
  const trimmed = path.replace(/^\/+/, "");
  if (!trimmed) throw new RangeError("path is empty");
  const segments = trimmed.split("/");
  for (const segment of segments) {
    if (segment === "" || segment === "." || segment === "..") {
      throw new RangeError(`path ${JSON.stringify(path)} has an empty, '.' or '..' segment`);
    }
  }
  return `/img/${segments.map(encodeComponent).join("/")}`;
}

/** @param {Params | null | undefined} params @returns {[string, ParamValue][]} */
function entriesOf(params) {
  if (params === null || params === undefined) return [];
  if (params instanceof Map) return [...params.entries()];
  if (typeof params !== "object" || Array.isArray(params)) {
    throw new TypeError(`params must be an object or a Map, got ${typeof params}`);
  }
  return Object.entries(params);
}

/** @param {[string, ParamValue][]} entries @returns {string} */
function queryOf(entries) {
  const pairs = [];
  const values = new Map();
  for (const [name, value] of entries) {
    if (ADDED.has(name)) {
      const hint = name === "s" ? "pass key" : "pass expires (with key)";
      throw new RangeError(`${JSON.stringify(name)} is added by the builder; ${hint} instead`);
    }
    if (!KNOWN.has(name)) {
      const known = [...KNOWN].sort().join(", ");
      throw new RangeError(`unknown parameter ${JSON.stringify(name)}; known: ${known}`);
    }
    if (value === null || value === undefined) continue;
    const text = formatValue(name, value);
    pairs.push(`${encodeComponent(name)}=${encodeComponent(text)}`);
    values.set(name, text);
  }
  checkValues(values);
  return pairs.join("&");
}

/**
 * `name=value` pairs in the given order, `null` / `undefined` skipped, joined by `&`.
 * @param {Params | null | undefined} params
 * @returns {string}
 */
export function canonicalQuery(params) {
  return queryOf(entriesOf(params));
}

/** @param {number | Date} expires @returns {number} */
function expiresValue(expires) {
  let seconds;
  if (expires instanceof Date) {
    seconds = Math.floor(expires.getTime() / 1000);
    if (Number.isNaN(seconds)) throw new RangeError("expires is an invalid Date");
  } else if (typeof expires === "number" && Number.isInteger(expires)) {
    seconds = expires;
  } else {
    throw new TypeError(`expires must be Unix seconds (integer) or a Date, got ${expires}`);
  }
  if (seconds < 0) throw new RangeError(`expires must not be negative, got ${seconds}`);
  return seconds;
}

/** @param {unknown} base @returns {string} */
function baseOf(base) {
  if (base === undefined || base === null) return "";
  if (typeof base !== "string") throw new TypeError(`base must be a string, got ${typeof base}`);
  if (base.includes("?") || base.includes("#")) {
    throw new RangeError(`base must not carry a query or fragment, got ${JSON.stringify(base)}`);
  }
  return base.replace(/\/+$/, "");
}

/** @param {unknown} key @param {unknown} expires */
function checkKey(key, expires) {
  if (key === undefined || key === null) {
    if (expires !== undefined && expires !== null) {
      throw new RangeError("expires needs a signing key: unsigned, it would never be enforced");
    }
    return;
  }
  if (typeof key !== "string") throw new TypeError(`key must be a string, got ${typeof key}`);
  if (!key) throw new RangeError("key is empty");
  encodeComponent(key); // refuses keys that are not valid Unicode
}

/** @param {Params | null | undefined} params @param {Iterable<number>} widths */
function srcsetEntries(params, widths) {
  const base = entriesOf(params);
  if (typeof widths === "string" || widths === null || typeof widths !== "object") {
    throw new TypeError("widths must be an iterable of integers");
  }
  const chosen = [...widths];
  if (chosen.length === 0) throw new RangeError("srcset needs at least one width");
  for (const width of chosen) {
    if (typeof width !== "number" || !Number.isInteger(width)) {
      throw new TypeError(`widths must be integers, got ${String(width)}`);
    }
    if (width < 1) throw new RangeError(`widths must be positive, got ${width}`);
  }
  if (new Set(chosen).size !== chosen.length) {
    throw new RangeError(`widths must be distinct, got ${chosen.join(",")}`);
  }
  return chosen.map((width) => {
    const entries = base.map(([name, value]) => [name, name === "w" ? width : value]);
    if (!base.some(([name]) => name === "w")) entries.push(["w", width]);
    return /** @type {[number, string]} */ ([width, queryOf(entries)]);
  });
}

/** @returns {Promise<SubtleCrypto>} */
async function subtleCrypto() {
  const subtle = globalThis.crypto?.subtle;
  if (subtle) return subtle;
  // Node 18 exposes Web Crypto globally only with --experimental-global-webcrypto.
  const specifier = "node:crypto";
  try {
    const mod = await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);
    if (mod.webcrypto?.subtle) return mod.webcrypto.subtle;
  } catch {
    // not node: fall through
  }
  throw new Error(
    "Web Crypto (crypto.subtle) is unavailable; browsers expose it only in secure contexts",
  );
}

/** @param {string} key @returns {Promise<(message: string) => Promise<string>>} */
async function signer(key) {
  const subtle = await subtleCrypto();
  const encoder = new TextEncoder();
  const cryptoKey = await subtle.importKey(
    "raw",
    encoder.encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return async (message) => {
    const mac = new Uint8Array(await subtle.sign("HMAC", cryptoKey, encoder.encode(message)));
    return Array.from(mac, (byte) => byte.toString(16).padStart(2, "0")).join("");
  };
}

/**
 * @param {string} prefix @param {string} path @param {string} query
 * @param {((message: string) => Promise<string>) | null} sign @param {number | null} expires
 * @returns {Promise<string> | string}
 */
function assemble(prefix, path, query, sign, expires) {
  if (!sign) return query ? `${prefix}${path}?${query}` : `${prefix}${path}`;
  if (expires !== null) query = query ? `${query}&expires=${expires}` : `expires=${expires}`;
  const message = query ? `${path}?${query}` : path;
  return sign(message).then((mac) => {
    const signed = query ? `${query}&s=${mac}` : `s=${mac}`;
    return `${prefix}${path}?${signed}`;
  });
}

/** @param {Options | undefined} options */
function optionsOf(options) {
  if (options === undefined || options === null) return {};
  if (typeof options !== "object") throw new TypeError("options must be an object");
  return options;
}

/**
 * The URL of `path` with `params`, signed when `key` is given. Always async.
 *
 * @example
 * await buildUrl("shoes/red.jpg", { w: 400, dpr: 1.5 }, { base: "https://cdn.example.com/" })
 * // "https://cdn.example.com/img/shoes/red.jpg?w=400&dpr=1.5"
 * await buildUrl("a.jpg", { w: 400 }, { key: "secret", expires: new Date("2030-01-01") })
 * // "/img/a.jpg?w=400&expires=1893456000&s=<64 hex digits>"
 * @param {string} path source path, as in `/img/{path}`
 * @param {Params | null} [params] contract parameters, emitted in this order
 * @param {Options} [options] `base` (prepended, unsigned), `key` (signing key), `expires`
 * @returns {Promise<string>}
 */
export async function buildUrl(path, params, options) {
  const { base, key, expires } = optionsOf(options);
  checkKey(key, expires);
  const prefix = baseOf(base);
  const encoded = requestPath(path);
  const query = canonicalQuery(params);
  if (key === undefined || key === null) {
    return /** @type {string} */ (assemble(prefix, encoded, query, null, null));
  }
  const stamp = expires === undefined || expires === null ? null : expiresValue(expires);
  return assemble(prefix, encoded, query, await signer(key), stamp);
}

/**
 * A `srcset` value: `"<url> <w>w"` per width, joined by `", "`. Always async.
 *
 * @example
 * await srcset("a.jpg", [320, 640], { fm: "webp" })
 * // "/img/a.jpg?fm=webp&w=320 320w, /img/a.jpg?fm=webp&w=640 640w"
 * @param {string} path source path, as in `/img/{path}`
 * @param {Iterable<number>} widths distinct positive integers, in output order
 * @param {Params | null} [params] parameters shared by every entry (`w` is set per entry)
 * @param {Options} [options] `base`, `key`, `expires` as for {@link buildUrl}
 * @returns {Promise<string>}
 */
export async function srcset(path, widths, params, options) {
  const { base, key, expires } = optionsOf(options);
  checkKey(key, expires);
  const prefix = baseOf(base);
  const encoded = requestPath(path);
  const entries = srcsetEntries(params, widths);
  const signed = key !== undefined && key !== null;
  const stamp = !signed || expires === undefined || expires === null ? null : expiresValue(expires);
  const sign = signed ? await signer(key) : null;
  const urls = await Promise.all(
    entries.map(([, query]) => assemble(prefix, encoded, query, sign, stamp)),
  );
  return urls.map((url, i) => `${url} ${entries[i][0]}w`).join(", ");
}

/** @param {Options | undefined} options @param {string} name */
function unsignedOptions(options, name) {
  const { base, key, expires } = optionsOf(options);
  if ((key !== undefined && key !== null) || (expires !== undefined && expires !== null)) {
    throw new TypeError(`${name} cannot sign (Web Crypto is async): use the async version`);
  }
  return baseOf(base);
}

/**
 * {@link buildUrl} without signing, returning the string directly.
 * @param {string} path
 * @param {Params | null} [params]
 * @param {{ base?: string }} [options]
 * @returns {string}
 */
export function buildUrlSync(path, params, options) {
  const prefix = unsignedOptions(options, "buildUrlSync");
  const url = assemble(prefix, requestPath(path), canonicalQuery(params), null, null);
  return /** @type {string} */ (url);
}

/**
 * {@link srcset} without signing, returning the string directly.
 * @param {string} path
 * @param {Iterable<number>} widths
 * @param {Params | null} [params]
 * @param {{ base?: string }} [options]
 * @returns {string}
 */
export function srcsetSync(path, widths, params, options) {
  const prefix = unsignedOptions(options, "srcsetSync");
  const encoded = requestPath(path);
  return srcsetEntries(params, widths)
    .map(([width, query]) => `${assemble(prefix, encoded, query, null, null)} ${width}w`)
    .join(", ");
}

// moauth.js: log a person in by one SMS, from a web page. No dependencies, no build step.
//
// The page makes a secret verifier V (32 random bytes), derives the token T from it exactly as
// protocol/token.md says, shows T (and an `sms:` link or QR code that puts "LOGIN T" into the
// phone's composer), and long-polls moauth's `POST /v1/logins/poll` with V until the SMS has
// come. V never leaves the page except in that poll: the SMS carries only a hash of it, so
// whoever reads the SMS cannot collect the session.
//
//   import { Login } from "/moauth.js";
//   const login = new Login({ shortCode: "10690000", app: "shop" });
//   login.addEventListener("state", (e) => render(e.detail));   // pending, complete, ...
//   await login.start();                                        // makes V and T, starts polling
//   link.href = login.smsUri;                                   // the composer link / QR code
//
// Served by moauth at /moauth.js; copy it into your app as it is (MIT OR Apache-2.0).

/** Crockford base32, symbol values 0 to 31 (protocol/token.md §2). */
export const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** The states a login goes through; `complete`, `expired`, `rejected`, `consumed` are final. */
export const FINAL_STATES = ["complete", "expired", "rejected", "consumed"];

/** A fresh verifier: 32 bytes from the browser's CSPRNG, base64url without padding (43 chars). */
export function makeVerifier() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** The 32 bytes of a verifier; only the one canonical spelling is accepted (§1). */
function verifierBytes(verifier) {
  if (!/^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/.test(verifier)) {
    throw new Error("a verifier is 43 base64url characters (32 bytes), canonically encoded");
  }
  const binary = atob(verifier.replaceAll("-", "+").replaceAll("_", "/") + "=");
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** `count` 5-bit symbol values of the BigInt `value`, most significant first. */
function split5(value, count) {
  const out = [];
  for (let i = count - 1; i >= 0; i--) out.push(Number((value >> BigInt(5 * i)) & 31n));
  return out;
}

/** CRC-10/ATM (poly 0x233, init 0, no reflection) over 5-bit symbol values, MSB first (§4). */
function crc10(values) {
  let crc = 0;
  for (const value of values) {
    for (let i = 4; i >= 0; i--) {
      const feedback = ((crc >> 9) & 1) ^ ((value >> i) & 1);
      crc = (crc << 1) & 0x3ff;
      if (feedback) crc ^= 0x233;
    }
  }
  return crc;
}

/**
 * The token for `verifier` issued at `issuedAt` (Unix seconds), in its canonical display form:
 * six groups of five symbols joined by `-`. SHA-256 comes from WebCrypto, which browsers offer
 * only in secure contexts (https, or http on localhost).
 */
export async function makeToken(verifier, issuedAt) {
  if (!Number.isInteger(issuedAt) || issuedAt < 0 || issuedAt >= 2 ** 35) {
    throw new Error("issuedAt is whole Unix seconds below 2^35");
  }
  if (!globalThis.crypto?.subtle) {
    throw new Error("WebCrypto is only available on https:// pages (or http://localhost)");
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", verifierBytes(verifier)));
  let challenge = 0n;
  for (const byte of digest.subarray(0, 13)) challenge = (challenge << 8n) | BigInt(byte);
  challenge >>= 4n; // the first 100 of those 104 bits
  const values = [1, ...split5(challenge, 20), ...split5(BigInt(issuedAt), 7)];
  values.push(...split5(BigInt(crc10(values)), 2));
  const symbols = values.map((v) => ALPHABET[v]).join("");
  return symbols.match(/.{5}/g).join("-");
}

/**
 * The SMS body: keyword, token, and the app's name as a trailer the grammar ignores
 * ("LOGIN T shop"). Naming the app lets the person see which app they are logging in to
 * before they tap send, should a phishing page show them another site's code.
 */
export function smsBody(token, { keyword = "LOGIN", app = "" } = {}) {
  return [keyword, token, app].filter(Boolean).join(" ");
}

/**
 * Whether the `sms:` URI should use `&body=`: iOS's Messages has long read the body after `&`
 * rather than RFC 5724's `?`. iPadOS reports itself as a Mac with a touch screen.
 */
export function isIos(userAgent = navigator.userAgent, touchPoints = navigator.maxTouchPoints) {
  return /iPhone|iPad|iPod/.test(userAgent) || (/Macintosh/.test(userAgent) && touchPoints > 1);
}

/**
 * The `sms:` URI that opens the composer with `body` to `shortCode`: RFC 5724's `?body=`,
 * or `&body=` when `ios` (see `isIos`). The body is percent-encoded as UTF-8, everything but
 * `A-Z a-z 0-9 - . _ ~`, as protocol/token.md §5 does it.
 */
export function smsUri(shortCode, body, { ios = isIos() } = {}) {
  const encoded = Array.from(new TextEncoder().encode(body), (b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9\-._~]/.test(c) ? c : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }).join("");
  return `sms:${shortCode}${ios ? "&" : "?"}body=${encoded}`;
}

/**
 * One `POST /v1/logins/poll`: the answer (`{state, ...}`) as moauth gives it, waiting up to
 * `waitMs` for a change. Throws a `PollError` carrying moauth's error code for a 4xx/5xx.
 */
export async function poll(server, verifier, token, { waitMs = 25000, signal } = {}) {
  const response = await fetch(new URL("/v1/logins/poll", server || location.href), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ verifier, token, wait_ms: waitMs }),
    signal,
    credentials: "omit",
    cache: "no-store",
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const retryAfter = Number(response.headers.get("Retry-After")) || 0;
    const code = answer.error || "http_" + response.status;
    throw new PollError(response.status, code, answer.message || "", retryAfter);
  }
  return answer;
}

export class PollError extends Error {
  constructor(status, code, message, retryAfter) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  /** A 429 or a server error passes; any other 4xx would be refused again. */
  get retryable() {
    return this.status === 429 || this.status >= 500;
  }
}

/**
 * One login from start to a final state. Dispatches a `state` event (detail: the poll answer,
 * e.g. `{state: "complete", session, account_id, msisdn, created}`) on every change, and an
 * `error` event (detail: the error) when a poll fails. It keeps trying after network errors,
 * 429s and 5xx, backing off (429: as long as `Retry-After` says), and stops on a final state,
 * on any other refusal (a `PollError` that is not `retryable`), or on `cancel()`.
 *
 * Options: `server` (moauth's origin; default this page's), `shortCode`, `keyword`, `app`,
 * `now` (a function giving Unix seconds; default the device clock), `waitMs` (per poll).
 */
export class Login extends EventTarget {
  constructor(options = {}) {
    super();
    this.options = { keyword: "LOGIN", app: "", waitMs: 25000, ...options };
    this.state = "idle";
    this.answer = null;
    this.#controller = null;
  }

  #controller;
  #verifier;

  /** Makes a new verifier and token (forgetting any earlier ones) and starts polling. */
  async start() {
    this.cancel();
    const { shortCode, keyword, app, now } = this.options;
    this.#verifier = makeVerifier();
    const issuedAt = Math.floor(now ? now() : Date.now() / 1000);
    this.token = await makeToken(this.#verifier, issuedAt);
    this.body = smsBody(this.token, { keyword, app });
    this.smsUri = shortCode ? smsUri(shortCode, this.body) : "";
    this.#controller = new AbortController();
    this.#set({ state: "pending" });
    this.#run(this.#controller.signal);
    return this;
  }

  /** Stops polling; the verifier is forgotten, so this login can no longer be collected. */
  cancel() {
    this.#controller?.abort();
    this.#controller = null;
    this.#verifier = undefined;
  }

  async #run(signal) {
    const verifier = this.#verifier;
    let backoff = 1000;
    while (!signal.aborted) {
      try {
        const answer = await poll(this.options.server, verifier, this.token, {
          waitMs: this.options.waitMs,
          signal,
        });
        backoff = 1000;
        if (answer.state !== this.state) this.#set(answer);
        if (FINAL_STATES.includes(answer.state)) {
          this.#verifier = undefined;
          return;
        }
      } catch (error) {
        if (signal.aborted) return;
        this.dispatchEvent(new CustomEvent("error", { detail: error }));
        if (error instanceof PollError && !error.retryable) return;
        const wait = error.retryAfter ? error.retryAfter * 1000 : backoff;
        backoff = Math.min(backoff * 2, 30000);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  #set(answer) {
    this.state = answer.state;
    this.answer = answer;
    this.dispatchEvent(new CustomEvent("state", { detail: answer }));
  }
}

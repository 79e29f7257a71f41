// The /login page's script: runs one moauth.js login and shows its state.
//
// Copying the page into an app? Keep the hooks (data-moauth-state on the root,
// a[data-moauth-sms], [data-moauth-qr]) and replace the `moauth-complete` listener's job:
// hand `detail.session` to your backend, which checks it with POST /v1/sessions/introspect.

import { Login, isIos } from "/moauth.js";

const root = document.getElementById("moauth");
const words = JSON.parse(document.getElementById("moauth-words").textContent);
const find = (selector) => root.querySelector(selector);
const link = find("a[data-moauth-sms]");
const qr = find("[data-moauth-qr]");
const message = find("[data-moauth-message]");
const retry = find("[data-moauth-retry]");
const body = find("[data-moauth-body]");

// Tokens carry the time they were made, and moauth accepts them only within its window: use
// the server's clock (sent with the page) so a desktop whose clock is off still logs in.
const offset = Number(root.dataset.moauthNow) - Date.now() / 1000;
const login = new Login({
  shortCode: root.dataset.moauthShortCode,
  keyword: root.dataset.moauthKeyword,
  app: root.dataset.moauthApp,
  now: () => Date.now() / 1000 + offset,
});

// A phone opens its own composer; the QR code is for the desktop beside it.
const phone = isIos() || /Android|Mobile/.test(navigator.userAgent);
root.classList.toggle("moauth-on-phone", phone);

function show(answer) {
  const state = answer.state;
  if (state === "pending") {
    body.textContent = login.body;
    link.href = login.smsUri;
    qr.src = "/login/qr.svg?token=" + encodeURIComponent(login.token);
    message.textContent = words.pending;
    retry.hidden = true;
    delete root.dataset.moauthReason;
  } else if (state === "complete") {
    // A no-break space keeps "+86 138****8000" on one line.
    message.textContent = words.complete.replace("{number}", answer.msisdn.replace(" ", "\u00a0"));
    root.dispatchEvent(new CustomEvent("moauth-complete", { detail: answer, bubbles: true }));
  } else if (state === "rejected") {
    root.dataset.moauthReason = answer.reason;
    const reason = words.reasons[answer.reason] || answer.reason;
    message.textContent = words.rejected.replace("{reason}", reason);
  } else {
    message.textContent = words[state] || state;
  }
  root.dataset.moauthState = state;
  if (["expired", "rejected"].includes(state)) {
    retry.hidden = false;
    retry.focus();
  }
}

login.addEventListener("state", (event) => show(event.detail));
login.addEventListener("error", (event) => {
  message.textContent = event.detail.retryable === false ? event.detail.message : words.unreachable;
});
// "Try again" loads the page afresh: a new code, made on the server's clock as it is now.
retry.addEventListener("click", () => location.reload());

async function start() {
  try {
    await login.start();
  } catch (error) {
    // No WebCrypto (a plain-http page on another host) or a clock out of range.
    root.dataset.moauthState = "error";
    message.textContent = globalThis.crypto?.subtle ? String(error.message) : words.insecure;
  }
}

start();

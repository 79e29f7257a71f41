// `moauth demo --web` only: the simulated phone beside the login page. It sends what the
// composer would send through moauth's built-in SMSC simulator and lists moauth's replies.

const phone = document.querySelector("[data-demo-phone]");
const link = document.querySelector("a[data-moauth-sms]");
const from = phone.querySelector("[data-demo-from]");
const text = phone.querySelector("[data-demo-text]");
const send = phone.querySelector("[data-demo-send]");
const inbox = phone.querySelector("[data-demo-inbox]");
let seen = 0;

// What the composer gets from the page's link (the person may still edit it, e.g. to mistype).
function compose() {
  const body = new URL(link.href.replace("&body=", "?body=")).searchParams.get("body");
  if (body) text.value = body;
}
new MutationObserver(compose).observe(link, { attributes: true, attributeFilter: ["href"] });
compose();

async function json(response) {
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.message || response.statusText);
  return answer;
}

function note(line) {
  const item = document.createElement("li");
  item.textContent = line;
  inbox.append(item);
}

// moauth answers some texts (a new account's password, a typo) and not others (a login by a
// known number), so the phone looks for replies without holding up the next send.
async function collectReplies(number) {
  const query = new URLSearchParams({ to: number, seen: String(seen) });
  const { replies } = await json(await fetch("/demo/replies?" + query));
  replies.slice(seen).forEach(note);
  seen = Math.max(seen, replies.length);
}

send.addEventListener("click", async () => {
  send.disabled = true;
  try {
    await json(
      await fetch("/demo/sms", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ from: from.value, text: text.value }),
      }),
    );
    collectReplies(from.value).catch((error) => note("⚠ " + error.message));
  } catch (error) {
    note("⚠ " + error.message);
  } finally {
    send.disabled = false;
  }
});

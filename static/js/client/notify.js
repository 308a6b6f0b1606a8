// Staff messages on a shared tablet. When a message is sent to the person signed in on this
// tablet (or to their level), the server pokes this tablet's own room with the message's
// uid and whom it is for, nothing more. If that person has the tablet unlocked now, this
// asks the server for the subject (an ordinary signed-in request), shows a banner with a
// link to the message, and a system notification when the browser already allows them
// (it never asks on its own: the inbox page has a button for that). A locked tablet shows
// nothing; whoever unlocks it sees the inbox's count in the top bar.
import {isTablet, person} from "./device.js";
import {fill} from "./dom.js";

const MAX_SHOWN = 3;  // banners on screen at once; older ones give way
const $ = (id) => document.getElementById(id);
const asked = new Set();  // messages already announced on this page
let started = false;

function badge() { return document.querySelector("[data-inbox-count]"); }

// The top bar's count: shown only for the person it was counted for, while they have the
// tablet unlocked (a page kept for offline use may carry someone else's).
function showCount(count, forWhom) {
  const el = badge();
  if (!el) { return; }
  if (count !== undefined) {
    el.dataset.inboxCount = String(count);
    el.dataset.inboxFor = forWhom || "";
    el.querySelector("[data-inbox-number]").textContent = String(count);
  }
  const n = parseInt(el.dataset.inboxCount || "0", 10) || 0;
  const who = person();
  el.hidden = !(n > 0 && who && who === el.dataset.inboxFor);
}

// What the server says for the person signed in here: {for, count, message?}, or null
// (nobody signed in, not theirs, offline).
async function ask(uid) {
  const box = $("inbox-notices");
  if (!box || !navigator.onLine) { return null; }
  const url = new URL(box.dataset.noticeUrl, window.location.href);
  if (uid) { url.searchParams.set("message", uid); }
  try {
    const response = await fetch(url, {credentials: "same-origin", cache: "no-store",
      redirect: "error", headers: {"Accept": "application/json"}});
    return response.ok ? await response.json() : null;
  } catch (e) {
    return null;
  }
}

function banner(message) {
  const box = $("inbox-notices");
  box.append(fill("tpl-inbox-notice", message));
  while (box.children.length > MAX_SHOWN) { box.firstElementChild.remove(); }
}

// A system notification, only where the person already allowed them for this site.
function systemNotice(message) {
  if (!("Notification" in window) || window.Notification.permission !== "granted") { return; }
  const options = {body: message.subject, tag: `inbox-${message.uid}`};
  try {
    const shown = new window.Notification("New message", options);
    shown.addEventListener("click", () => {
      window.focus();
      window.location.assign(message.url);
      shown.close();
    });
  } catch (e) {
    // Some tablets' browsers show notifications only through the service worker.
    if (navigator.serviceWorker && navigator.serviceWorker.controller) {
      navigator.serviceWorker.ready.then((reg) => reg.showNotification("New message", options))
        .catch(() => { /* the banner says it anyway */ });
    }
  }
}

async function announce(poke) {
  const who = person();
  if (!who || poke.for !== who || asked.has(poke.message)) { return; }
  asked.add(poke.message);
  const answer = await ask(poke.message);
  // The server's person must be the one holding the tablet now (a sign-in left behind by a
  // lock made offline is someone else's).
  if (!answer || !answer.message || answer.for !== person()) { asked.delete(poke.message); return; }
  banner(answer.message);
  showCount(answer.count, answer.for);
  systemNotice(answer.message);
}

async function recount() {
  const answer = await ask(null);
  if (answer) { showCount(answer.count, answer.for); } else { showCount(); }
}

function clear() {
  const box = $("inbox-notices");
  if (box) { box.replaceChildren(); }
  asked.clear();
  showCount();
}

function permissionButton() {
  const button = document.querySelector("[data-notify-permission]");
  if (!button || !("Notification" in window)) { return; }
  button.hidden = window.Notification.permission !== "default";
  button.addEventListener("click", () => {
    window.Notification.requestPermission().then(() => {
      button.hidden = window.Notification.permission !== "default";
    }).catch(() => { /* asked and refused: nothing to do */ });
  });
}

/** Follow the inbox's pokes and the lock screen (a paired tablet only). */
export function start() {
  if (started || !isTablet() || !$("inbox-notices")) { return; }
  started = true;
  document.addEventListener("live:pokes", (evt) => {
    (evt.detail || []).filter((p) => p && p.topic === "inbox" && p.message).forEach(announce);
  });
  document.addEventListener("lock:locked", clear);
  document.addEventListener("lock:unlocked", recount);
  document.addEventListener("click", (evt) => {
    const dismiss = evt.target.closest && evt.target.closest("[data-notice-dismiss]");
    if (dismiss) { dismiss.closest(".inbox-notice").remove(); }
  });
  permissionButton();
  // After the lock screen has said who holds the tablet (its own start runs after this).
  setTimeout(() => showCount(), 0);
}

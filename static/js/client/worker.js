// The service worker that keeps a tablet's pages for an outage (static/sw.js): registered
// on a tablet, asked to refresh its list now and every ten minutes.
import {isTablet, token} from "./device.js";

/** Ask the worker to fetch the pages the tablet keeps again. */
export function askRefresh() {
  const worker = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (worker && navigator.onLine) { worker.postMessage({type: "refresh", token: token()}); }
}

/** Ask the worker to fetch every kept page again now, and wait until it has: resolves to
 * how many pages it keeps fresh (null when there is no worker or it did not answer in time). */
export function refreshAndWait(timeoutMs = 120000) {
  const worker = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (!worker || !navigator.onLine) { return Promise.resolve(null); }
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => resolve(null), timeoutMs);
    channel.port1.onmessage = (evt) => {
      clearTimeout(timer);
      resolve(evt.data && typeof evt.data.kept === "number" ? evt.data.kept : null);
    };
    worker.postMessage({type: "refresh", token: token()}, [channel.port2]);
  });
}

/** Register the worker on a tablet. */
export async function register() {
  if (!("serviceWorker" in navigator) || !isTablet()) { return; }
  try {
    await navigator.serviceWorker.register("/sw.js", {scope: "/"});
    const reg = await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller && reg.active) { reg.active.postMessage({type: "claim"}); }
    const ask = () => {
      const worker = navigator.serviceWorker.controller || reg.active;
      if (worker && navigator.onLine) { worker.postMessage({type: "refresh", token: token()}); }
    };
    ask();
    setInterval(ask, 10 * 60 * 1000);
  } catch (e) {
    if (window.console) { window.console.warn("service worker:", e); }
  }
}

// The tablet's service worker: keeps the pages a tablet needs during an outage.
// Navigations go to the network first and fall back to the copy kept here; htmx partials
// (HX-Request) and the API always go to the network; static files come from the cache
// when the network fails. The list of pages to keep comes from /tablet/offline-pages and
// is refreshed on activation and whenever a page asks (every ten minutes).
"use strict";

var VERSION = "kiosk-pages-v1";
var NOT_SAVED = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">" +
  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Not saved</title>" +
  "<link rel=\"stylesheet\" href=\"/static/css/kiosk.css\"></head><body><main class=\"page\">" +
  "<h1>This page is not saved on this tablet</h1><p>The server cannot be reached, and this page " +
  "was not kept for offline use. Changes made on the other pages are safe on this tablet.</p>" +
  "<p><a class=\"btn\" href=\"/patients/\">Patients</a> <a class=\"btn\" href=\"/boards/\">Boards</a></p>" +
  "</main></body></html>";

self.addEventListener("install", function (event) {
  event.waitUntil(self.skipWaiting());
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n.indexOf("kiosk-") === 0 && n !== VERSION; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }).then(function () { return precache(null); }));
});

var refreshing = null;
function precache(token) {
  if (refreshing) { return refreshing; }
  var headers = {"Accept": "application/json"};
  if (token) { headers.Authorization = "Bearer " + token; }
  refreshing = fetch("/tablet/offline-pages", {credentials: "same-origin", cache: "no-store", headers: headers})
    .then(function (response) { return response.ok ? response.json() : {urls: []}; })
    .then(function (body) {
      return caches.open(VERSION).then(function (cache) {
        // One at a time: a tablet on a busy ward network should not flood the server.
        return (body.urls || []).reduce(function (chain, url) {
          return chain.then(function () {
            return fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (response) {
              if (response.ok && !response.redirected) { return cache.put(url, response); }
              return null;
            }).catch(function () { return null; });
          });
        }, Promise.resolve());
      });
    })
    .catch(function () { return null; })
    .finally(function () { refreshing = null; });
  return refreshing;
}

self.addEventListener("message", function (event) {
  var data = event.data || {};
  if (data.type === "refresh") { event.waitUntil(precache(data.token || null)); }
});

function keyOf(request) {
  var url = new URL(request.url);
  return url.pathname + url.search;
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) { return; }
  if (request.headers.get("HX-Request") || url.pathname.indexOf("/api/") === 0 ||
      url.pathname.indexOf("/socket.io") === 0 || url.pathname === "/sw.js") {
    return;  // live data: the network only
  }
  if (request.mode === "navigate") {
    event.respondWith(navigation(request));
  } else if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(fetch(request).then(function (response) {
      if (response.ok) {
        var copy = response.clone();
        caches.open(VERSION).then(function (cache) { cache.put(keyOf(request), copy); });
      }
      return response;
    }, function () {
      return caches.match(keyOf(request), {ignoreSearch: true, ignoreVary: true}).then(function (hit) {
        return hit || new Response("", {status: 504, statusText: "Offline"});
      });
    }));
  }
});

function navigation(request) {
  var key = keyOf(request);
  return fetch(request).then(function (response) {
    // Keep what a person saw, signed in; sign-in pages and errors are not worth keeping.
    if (response.ok && !response.redirected && response.type === "basic") {
      var copy = response.clone();
      caches.open(VERSION).then(function (cache) { cache.put(key, copy); });
    }
    return response;
  }, function () {
    return caches.open(VERSION).then(function (cache) {
      return cache.match(key, {ignoreVary: true}).then(function (hit) {
        if (hit) { return hit; }
        var path = new URL(request.url).pathname;
        return cache.match(path, {ignoreVary: true, ignoreSearch: true}).then(function (again) {
          return again || new Response(NOT_SAVED, {status: 503,
            headers: {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}});
        });
      });
    });
  });
}

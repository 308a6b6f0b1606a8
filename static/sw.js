// The tablet's service worker: keeps the pages a tablet needs during an outage.
// Navigations go to the network first and fall back to the copy kept here; htmx partials
// (HX-Request) and the API always go to the network; static files come from the cache
// when the network fails. The list of pages to keep comes from /tablet/offline-pages (the
// boards and sheets of what the tablet carries) and is refreshed on activation, whenever
// a page asks (every ten minutes, and when the tablet's assignment changes); pages that
// left the list are dropped, and only pages on it are kept as they are visited.
"use strict";

var VERSION = "kiosk-pages-v3";
var KEEP_KEY = "/__kiosk/keep";
// Said for a page that is not kept, when the server cannot be reached (a static page,
// kept when the worker installs).
var NOT_SAVED = "/static/offline.html";

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(VERSION).then(function (cache) { return cache.add(NOT_SAVED); })
    .catch(function () { return null; }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n.indexOf("kiosk-") === 0 && n !== VERSION; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }).then(function () { return precache(null); }));
});

var refreshing = null, again = null;
// One refresh at a time; one asked for meanwhile runs after it, with a fresh list (the
// tablet's assignment may have changed since the running one fetched its list).
function precache(token) {
  if (refreshing) {
    if (!again) {
      again = refreshing.then(function () { again = null; return precache(token); });
    }
    return again;
  }
  var headers = {"Accept": "application/json"};
  if (token) { headers.Authorization = "Bearer " + token; }
  refreshing = fetch("/tablet/offline-pages", {credentials: "same-origin", cache: "no-store", headers: headers})
    .then(function (response) { return response.ok ? response.json() : {urls: []}; })
    .then(function (body) {
      if (!body.urls || !body.urls.length) { return null; }  // refused or offline: keep what is kept
      return caches.open(VERSION).then(function (cache) {
        keep = null;
        return cache.put(KEEP_KEY, new Response(JSON.stringify(body.urls), {
          headers: {"Content-Type": "application/json"}})).then(function () {
          return forget(cache, body.urls);
        }).then(function () {
          // One at a time: a tablet on a busy ward network should not flood the server.
          var kept = 0;
          return body.urls.reduce(function (chain, url) {
            return chain.then(function () {
              return fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (response) {
                if (response.ok && !response.redirected) {
                  return cache.put(url, response).then(function () { kept += 1; });
                }
                return null;
              }).catch(function () { return null; });
            });
          }, Promise.resolve()).then(function () { return kept; });
        });
      });
    })
    .catch(function () { return null; })
    .finally(function () { refreshing = null; });
  return refreshing;
}

// Pages no longer on the list (a patient moved to another tablet) leave this tablet.
function forget(cache, urls) {
  var wanted = {};
  urls.forEach(function (u) { wanted[u] = true; });
  return cache.keys().then(function (requests) {
    return Promise.all(requests.map(function (request) {
      var key = keyOf(request);
      if (key === KEEP_KEY || key.indexOf("/static/") === 0 || wanted[key]) { return null; }
      return cache.delete(request);
    }));
  });
}

var keep = null;
function keptPaths() {
  if (keep) { return Promise.resolve(keep); }
  return caches.open(VERSION).then(function (cache) { return cache.match(KEEP_KEY); })
    .then(function (hit) { return hit ? hit.json() : []; })
    .then(function (urls) { keep = {}; urls.forEach(function (u) { keep[u] = true; }); return keep; })
    .catch(function () { return {}; });
}

self.addEventListener("message", function (event) {
  var data = event.data || {};
  if (data.type === "refresh") {
    // A page that waits for the refresh (the maintenance banner) is told how many pages
    // are kept fresh once they all are.
    var port = event.ports && event.ports[0];
    event.waitUntil(precache(data.token || null).then(function (kept) {
      if (port) { port.postMessage({type: "refreshed", kept: typeof kept === "number" ? kept : null}); }
    }));
  }
  // A page that opened while this worker was activating asks to be taken over.
  if (data.type === "claim") { event.waitUntil(self.clients.claim()); }
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
    // Keep the fresh copy of a page on the list; sign-in pages and errors are not kept.
    if (response.ok && !response.redirected && response.type === "basic") {
      var copy = response.clone();
      keptPaths().then(function (paths) {
        if (paths[key]) { return caches.open(VERSION).then(function (cache) { return cache.put(key, copy); }); }
        return null;
      });
    }
    return response;
  }, function () {
    return caches.open(VERSION).then(function (cache) {
      return cache.match(key, {ignoreVary: true}).then(function (hit) {
        if (hit) { return hit; }
        var path = new URL(request.url).pathname;
        return cache.match(path, {ignoreVary: true, ignoreSearch: true}).then(function (again) {
          if (again) { return again; }
          return cache.match(NOT_SAVED).then(function (page) {
            return new Response(page ? page.body : "This page is not saved on this tablet.", {status: 503,
              headers: {"Content-Type": page ? "text/html; charset=utf-8" : "text/plain; charset=utf-8",
                "Cache-Control": "no-store"}});
          });
        });
      });
    });
  });
}

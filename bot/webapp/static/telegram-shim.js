// A small stand-in for Telegram's telegram-web-app.js, for the page outside Telegram:
// `make webapp` (development, offline: the page is served without Telegram's script), or
// when Telegram's script did not load. It does nothing when Telegram.WebApp exists, so
// inside Telegram the real script is what runs.
//
// It provides what app.js uses: initData from the URL's fragment as Telegram passes it
// (#tgWebAppData=<initData>&tgWebAppThemeParams=<json>&...), initDataUnsafe.user,
// themeParams, colorScheme (the browser's), ready/expand, onEvent("themeChanged"), and
// HapticFeedback (no-ops). The server checks initData's signature as always: a shim
// cannot make the API trust anybody.
"use strict";

(() => {
  if (window.Telegram && window.Telegram.WebApp) return;

  const hash = new URLSearchParams(window.location.hash.slice(1));
  const initData = hash.get("tgWebAppData") || "";
  const fields = new URLSearchParams(initData);
  const json = (text, fallback) => {
    try {
      return text ? JSON.parse(text) : fallback;
    } catch (err) {
      return fallback;
    }
  };
  const unsafe = {};
  if (fields.get("user")) unsafe.user = json(fields.get("user"), undefined);
  if (fields.get("auth_date")) unsafe.auth_date = Number(fields.get("auth_date"));
  if (fields.get("query_id")) unsafe.query_id = fields.get("query_id");

  const dark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  const handlers = new Map(); // event name -> [handler]
  const emit = (name) => (handlers.get(name) || []).forEach((handler) => handler());
  const haptics = {
    impactOccurred() { return haptics; },
    notificationOccurred() { return haptics; },
    selectionChanged() { return haptics; },
  };

  const webApp = {
    initData,
    initDataUnsafe: unsafe,
    version: hash.get("tgWebAppVersion") || "7.0",
    platform: hash.get("tgWebAppPlatform") || "unknown",
    colorScheme: dark && dark.matches ? "dark" : "light",
    themeParams: json(hash.get("tgWebAppThemeParams"), {}),
    isExpanded: true,
    isShim: true, // for tests and the curious: this is not Telegram
    ready() {},
    expand() {},
    close() { window.close(); },
    onEvent(name, handler) { handlers.set(name, [...(handlers.get(name) || []), handler]); },
    offEvent(name, handler) { handlers.set(name, (handlers.get(name) || []).filter((h) => h !== handler)); },
    HapticFeedback: haptics,
  };
  if (dark && typeof dark.addEventListener === "function") {
    dark.addEventListener("change", (event) => {
      webApp.colorScheme = event.matches ? "dark" : "light";
      emit("themeChanged");
    });
  }
  window.Telegram = Object.assign(window.Telegram || {}, { WebApp: webApp });
})();

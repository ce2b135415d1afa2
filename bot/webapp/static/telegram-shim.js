// A small stand-in for Telegram's telegram-web-app.js, for the page outside Telegram:
// `make webapp` (development, offline: the page is served without Telegram's script), or
// when Telegram's script did not load. It does nothing when Telegram.WebApp exists, so
// inside Telegram the real script is what runs.
//
// It provides what app.js uses: initData from the URL's fragment as Telegram passes it
// (#tgWebAppData=<initData>&tgWebAppThemeParams=<json>&...), initDataUnsafe.user,
// themeParams, colorScheme (the browser's), ready/expand, onEvent("themeChanged"),
// HapticFeedback (no-ops), and BackButton / MainButton drawn as plain buttons of the page
// (above the page and fixed at the bottom, styled in style.css) so that dev mode can be
// played like Telegram. The server checks initData's signature as always: a shim cannot
// make the API trust anybody.
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

  // Telegram's BackButton / MainButton: show, hide, onClick, offClick (and for the main
  // one its text, enabled state and progress). Drawn lazily: the body may not exist yet.
  function draw(control) {
    if (!document.body) {
      document.addEventListener("DOMContentLoaded", () => draw(control), { once: true });
      return;
    }
    if (!control.el) {
      control.el = document.createElement("button");
      control.el.type = "button";
      control.el.className = control.className;
      control.el.addEventListener("click", () => control.click());
      if (control.first) document.body.prepend(control.el);
      else document.body.appendChild(control.el);
    }
    control.el.hidden = !control.isVisible;
    control.el.textContent = control.label();
    control.el.disabled = control.isActive === false || Boolean(control.isProgressVisible);
    document.body.classList.toggle(`${control.className}-shown`, control.isVisible);
  }
  function makeControl(className, event, extra) {
    const clicks = [];
    const self = {
      className,
      el: null,
      isVisible: false,
      label() { return ""; },
      show() { self.isVisible = true; draw(self); return self; },
      hide() { self.isVisible = false; draw(self); return self; },
      onClick(handler) { clicks.push(handler); return self; },
      offClick(handler) { const i = clicks.indexOf(handler); if (i >= 0) clicks.splice(i, 1); return self; },
      click() { clicks.slice().forEach((handler) => handler()); emit(event); },
      redraw() { if (self.el || self.isVisible) draw(self); return self; },
    };
    return Object.assign(self, extra(self));
  }
  const backButton = makeControl("tg-shim-back", "backButtonClicked",
    () => ({ first: true, label: () => "\u2190" }));
  const mainButton = makeControl("tg-shim-main", "mainButtonClicked", (self) => ({
    text: "",
    isActive: true,
    isProgressVisible: false,
    label: () => (self.isProgressVisible ? "\u2026" : self.text),
    setText(text) { self.text = String(text); return self.redraw(); },
    enable() { self.isActive = true; return self.redraw(); },
    disable() { self.isActive = false; return self.redraw(); },
    showProgress() { self.isProgressVisible = true; return self.redraw(); },
    hideProgress() { self.isProgressVisible = false; return self.redraw(); },
    setParams(params) {
      if ("text" in params) self.text = String(params.text);
      if ("is_active" in params) self.isActive = Boolean(params.is_active);
      if ("is_visible" in params) self.isVisible = Boolean(params.is_visible);
      return self.redraw();
    },
  }));

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
    BackButton: backButton,
    MainButton: mainButton,
  };
  if (dark && typeof dark.addEventListener === "function") {
    dark.addEventListener("change", (event) => {
      webApp.colorScheme = event.matches ? "dark" : "light";
      emit("themeChanged");
    });
  }
  window.Telegram = Object.assign(window.Telegram || {}, { WebApp: webApp });
})();

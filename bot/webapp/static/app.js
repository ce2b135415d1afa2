// The waifu Mini App. Plain JS, no build step.
//
// Every number shown comes from the server (api.player_profile / available_events);
// the page only counts down to the next energy point and refetches when it is due.
// Times are read relative to the server's `as_of` and measured with a monotonic clock,
// so a wrong clock on the phone does not move the countdown.
// All data goes into the page with textContent: nothing from the API becomes markup.
"use strict";

(() => {
  const API = "../api"; // relative: works when the app is mounted under a path prefix
  const TICK_MS = 250;
  const MIN_AUTO_REFRESH_MS = 1500;

  const tg = window.Telegram && window.Telegram.WebApp;
  const $ = (id) => document.getElementById(id);
  const statusEl = $("status");
  const cardsEl = $("cards");
  const greetingEl = $("greeting");

  const state = {
    waifus: [], // [{stats, receivedPerf, receivedWall}]
    events: new Map(), // waifu_id -> {list, receivedPerf}
    results: new Map(), // waifu_id -> {code, text, kind}
    busy: new Set(), // waifu ids with a participation in flight
    cards: new Map(), // waifu_id -> card element refs
    loading: null, // the refresh in flight, if any
    again: false, // another refresh was asked for meanwhile
    lastAutoRefresh: 0,
  };

  // ---------------------------------------------------------------- helpers

  class ApiFailure extends Error {
    constructor(status, code, message, detail) {
      super(message);
      this.status = status;
      this.code = code;
      this.detail = detail || {};
    }
  }

  // PostgreSQL writes microseconds; keep milliseconds so every engine parses it.
  function parseTime(value) {
    if (!value) return null;
    const ms = Date.parse(String(value).replace(/(\.\d{3})\d+/, "$1"));
    return Number.isNaN(ms) ? null : ms;
  }

  const pad = (n) => String(n).padStart(2, "0");

  function formatDuration(ms) {
    const total = Math.max(0, Math.ceil(ms / 1000));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
  }

  function humanDuration(seconds) {
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const parts = [];
    if (h) parts.push(`${h} h`);
    if (m) parts.push(`${m} min`);
    if (!h && !m) parts.push(`${seconds} s`);
    return parts.join(" ");
  }

  function formatClock(wallMs) {
    const d = new Date(wallMs);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  const signed = (n) => (n > 0 ? `+${n}` : n < 0 ? `\u2212${Math.abs(n)}` : "\u00b10");

  function percent(value, max) {
    if (!(max > 0)) return 0;
    return Math.max(0, Math.min(100, (value / max) * 100));
  }

  // A fresh key per drawn button: the same button pressed twice applies once, a newly
  // drawn one acts again.
  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // A server time (ms) as a wall-clock time on this device, via the server's as_of.
  function toLocalWall(serverMs, waifu) {
    const asOf = parseTime(waifu.stats.as_of);
    return waifu.receivedWall + (serverMs - asOf);
  }

  // ---------------------------------------------------------------- the API

  async function api(path, options = {}) {
    let response;
    try {
      response = await fetch(API + path, {
        ...options,
        cache: "no-store",
        credentials: "omit",
        headers: { Authorization: `tma ${tg.initData}`, ...(options.headers || {}) },
      });
    } catch (err) {
      throw new ApiFailure(0, "network", "No connection to the game.", {});
    }
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    if (!response.ok) {
      const error = (body && body.error) || {};
      throw new ApiFailure(response.status, error.code || `http_${response.status}`,
        error.message || response.statusText, error.detail);
    }
    return body;
  }

  function describeFailure(failure, waifu) {
    const d = failure.detail || {};
    switch (failure.code) {
      case "auth_expired":
        return "This session has expired. Close the app and open it again from the bot.";
      case "auth_missing":
      case "auth_malformed":
      case "auth_invalid":
        return "Telegram did not confirm who you are. Close the app and open it again from the bot.";
      case "webapp_not_configured":
        return "The web app is not set up on this server yet.";
      case "player_not_registered":
        return "You have not started the game yet. Open the bot and press /start, then come back.";
      case "waifu_not_found":
        return "This waifu is not among yours.";
      case "not_enough_energy": {
        let text = `Not enough energy: needs ${d.energy_needed}, has ${d.energy}.`;
        const enoughAt = parseTime(d.enough_at);
        if (enoughAt && waifu) text += ` Enough at ${formatClock(toLocalWall(enoughAt, waifu))}.`;
        return text;
      }
      case "on_cooldown":
        return `Not yet: ready again in ${formatDuration((d.remaining_seconds || 0) * 1000)}.`;
      case "event_not_open":
        return "This event is not open right now.";
      case "request_key_conflict":
        return "That button was out of date. The list is fresh now: try again.";
      case "network":
        return "No connection to the game. Check your connection and tap again (it counts once).";
      case "unavailable":
        return "The game is taking a short break. Try again in a moment.";
      default:
        return failure.status >= 500
          ? "Something went wrong on our side. Try again in a moment."
          : failure.message || "That did not work.";
    }
  }

  function showStatus(text, kind) {
    statusEl.textContent = text;
    statusEl.className = `status${kind ? ` ${kind}` : ""}`;
  }

  // ---------------------------------------------------------------- loading

  // A refresh asked for while one is in flight runs again after it: the one in flight
  // may have read the data before the change that prompted the new request.
  function refresh({ ifIdle = false } = {}) {
    if (state.loading) {
      if (!ifIdle) state.again = true;
      return state.loading;
    }
    state.loading = (async () => {
      try {
        const profile = await api("/me");
        const receivedPerf = performance.now();
        const receivedWall = Date.now();
        state.waifus = (profile.waifus || []).map((stats) => ({ stats, receivedPerf, receivedWall }));
        greetingEl.textContent = profile.first_name ? `Hi, ${profile.first_name}!` : "";
        if (state.waifus.length === 0) {
          showStatus("No waifu yet: open the bot and pick one with /start.", "notice");
        } else {
          showStatus("", null);
        }
        renderCards();
        await Promise.all(state.waifus.map((w) => loadEvents(w.stats.waifu_id)));
      } catch (failure) {
        if (!(failure instanceof ApiFailure)) throw failure;
        // Keep the last good cards on a passing hiccup; say what happened above them.
        showStatus(describeFailure(failure), failure.status === 403 ? "notice" : "error");
        if (failure.status === 401 || failure.status === 403) {
          state.waifus = [];
          renderCards();
        }
      } finally {
        state.loading = null;
        if (state.again) {
          state.again = false;
          refresh();
        }
      }
    })();
    return state.loading;
  }

  async function loadEvents(waifuId) {
    const card = state.cards.get(waifuId);
    try {
      const body = await api(`/waifus/${encodeURIComponent(waifuId)}/events`);
      state.events.set(waifuId, { list: body.events || [], receivedPerf: performance.now() });
      if (card) card.eventsStatus.textContent = "";
    } catch (failure) {
      if (!(failure instanceof ApiFailure)) throw failure;
      if (card) card.eventsStatus.textContent = describeFailure(failure, findWaifu(waifuId));
      return;
    }
    renderEvents(waifuId);
  }

  const findWaifu = (waifuId) => state.waifus.find((w) => w.stats.waifu_id === waifuId);

  // ---------------------------------------------------------------- rendering

  function renderCards() {
    const template = $("waifu-card");
    state.cards.clear();
    const fragment = document.createDocumentFragment();
    for (const waifu of state.waifus) {
      const node = template.content.firstElementChild.cloneNode(true);
      const id = waifu.stats.waifu_id;
      node.dataset.waifuId = String(id);
      const refs = {
        node,
        name: node.querySelector(".name"),
        level: node.querySelector(".level"),
        energyNext: node.querySelector(".energy-next"),
        energyFull: node.querySelector(".energy-full"),
        eventsStatus: node.querySelector(".events-status"),
        eventList: node.querySelector(".event-list"),
        buttons: [],
      };
      state.cards.set(id, refs);
      fillStats(refs, waifu);
      if (state.events.has(id)) refs.eventsStatus.textContent = "";
      fragment.appendChild(node);
    }
    cardsEl.replaceChildren(fragment);
    for (const waifu of state.waifus) {
      if (state.events.has(waifu.stats.waifu_id)) renderEvents(waifu.stats.waifu_id);
    }
    tick();
  }

  function setBar(node, stat, value, max, text) {
    const box = node.querySelector(`[data-stat="${stat}"]`);
    box.querySelector(".value").textContent = text;
    const bar = box.querySelector(".bar");
    bar.setAttribute("aria-valuenow", String(value));
    bar.setAttribute("aria-valuemax", String(max));
    box.querySelector(".fill").style.width = `${percent(value, max).toFixed(1)}%`;
  }

  function fillStats(refs, waifu) {
    const s = waifu.stats;
    refs.name.textContent = s.name;
    refs.level.textContent = `Level ${s.level}`;
    const levelSpan = s.next_level_xp - s.level_xp;
    setBar(refs.node, "xp", s.xp - s.level_xp, levelSpan, `${s.xp} / ${s.next_level_xp}`);
    setBar(refs.node, "energy", s.energy, s.max_energy, `${s.energy} / ${s.max_energy}`);
    setBar(refs.node, "mood", s.mood, s.max_stat, `${s.mood} / ${s.max_stat}`);
    setBar(refs.node, "loyalty", s.loyalty, s.max_stat, `${s.loyalty} / ${s.max_stat}`);
  }

  function eventTerms(e) {
    const parts = [`\u26a1${e.energy_cost}`, `+${e.xp_reward} XP`];
    if (e.mood_delta) parts.push(`mood ${signed(e.mood_delta)}`);
    if (e.loyalty_delta) parts.push(`loyalty ${signed(e.loyalty_delta)}`);
    if (e.cooldown_seconds > 0) parts.push(`cooldown ${humanDuration(e.cooldown_seconds)}`);
    return parts.join(" \u00b7 ");
  }

  function renderEvents(waifuId) {
    const refs = state.cards.get(waifuId);
    const loaded = state.events.get(waifuId);
    if (!refs || !loaded) return;
    const template = $("event-row");
    const result = state.results.get(waifuId);
    refs.buttons = [];
    const fragment = document.createDocumentFragment();
    if (loaded.list.length === 0) refs.eventsStatus.textContent = "No events open right now.";
    for (const e of loaded.list) {
      const row = template.content.firstElementChild.cloneNode(true);
      row.dataset.eventCode = e.code;
      row.querySelector(".event-title").textContent = e.title;
      row.querySelector(".event-terms").textContent = eventTerms(e);
      const button = row.querySelector(".event-go");
      const entry = {
        button,
        event: e,
        key: newKey(),
        readyPerf: loaded.receivedPerf + (e.cooldown_remaining_seconds || 0) * 1000,
      };
      button.addEventListener("click", () => participate(waifuId, entry, row));
      refs.buttons.push(entry);
      if (result && result.code === e.code) showResult(row, result);
      fragment.appendChild(row);
    }
    refs.eventList.replaceChildren(fragment);
    tick();
  }

  function showResult(row, result) {
    const p = row.querySelector(".event-result");
    p.textContent = result.text;
    p.className = `event-result ${result.kind}`;
    p.hidden = false;
  }

  function describeResult(r) {
    const c = r.changes || {};
    const parts = [`${signed(c.xp)} XP`, `${signed(c.energy)} energy`];
    if (c.mood) parts.push(`mood ${signed(c.mood)}`);
    if (c.loyalty) parts.push(`loyalty ${signed(c.loyalty)}`);
    let text = `${r.event_title}: ${parts.join(", ")}.`;
    if (c.leveled_up) text += ` Level up! Now level ${c.level_after}.`;
    return text;
  }

  async function participate(waifuId, entry, row) {
    if (state.busy.has(waifuId)) return;
    state.busy.add(waifuId);
    entry.button.disabled = true;
    entry.button.textContent = "\u2026";
    const waifu = findWaifu(waifuId);
    try {
      const result = await api(
        `/waifus/${encodeURIComponent(waifuId)}/events/${encodeURIComponent(entry.event.code)}`,
        { method: "POST", headers: { "Idempotency-Key": entry.key } },
      );
      // The answer carries the new stats: show them at once, then fresh cooldowns.
      const now = performance.now();
      const current = findWaifu(waifuId);
      if (current) {
        Object.assign(current, { stats: { ...current.stats, ...pickStats(result) }, receivedPerf: now, receivedWall: Date.now() });
        const refs = state.cards.get(waifuId);
        if (refs) fillStats(refs, current);
      }
      state.results.set(waifuId, { code: entry.event.code, text: describeResult(result), kind: "ok" });
      if (tg.HapticFeedback) tg.HapticFeedback.notificationOccurred("success");
      state.busy.delete(waifuId);
      // A replayed answer is the one recorded earlier (its stats are from then): reload.
      if (result.replayed) await refresh();
      else await loadEvents(waifuId);
    } catch (failure) {
      state.busy.delete(waifuId);
      if (!(failure instanceof ApiFailure)) throw failure;
      const message = { code: entry.event.code, text: describeFailure(failure, waifu), kind: "error" };
      if (tg.HapticFeedback) tg.HapticFeedback.notificationOccurred("error");
      if (failure.code === "network") {
        // The answer was lost, not necessarily the action: the same key again is safe.
        showResult(row, message);
        tick();
        return;
      }
      state.results.set(waifuId, message);
      if (failure.status === 401 || failure.status === 403) {
        showStatus(describeFailure(failure), "error");
      }
      await refresh(); // redraws the cards, with this message in the event's row
    }
  }

  const STAT_FIELDS = ["waifu_id", "owner_id", "name", "template_code", "xp", "level", "level_xp", "next_level_xp",
    "energy", "max_energy", "max_stat", "mood", "loyalty", "next_energy_at", "full_energy_at", "as_of"];

  function pickStats(result) {
    const stats = {};
    for (const field of STAT_FIELDS) if (field in result) stats[field] = result[field];
    return stats;
  }

  // ---------------------------------------------------------------- the clock

  function tick() {
    const now = performance.now();
    let due = false;
    for (const waifu of state.waifus) {
      const refs = state.cards.get(waifu.stats.waifu_id);
      if (!refs) continue;
      const s = waifu.stats;
      const asOf = parseTime(s.as_of);
      const next = parseTime(s.next_energy_at);
      const full = parseTime(s.full_energy_at);
      if (next === null || asOf === null) {
        refs.energyNext.textContent = "Full";
        refs.energyFull.textContent = "";
      } else {
        const remaining = next - asOf - (now - waifu.receivedPerf);
        if (remaining <= 0) due = true;
        refs.energyNext.textContent = `+1 in ${formatDuration(remaining)}`;
        refs.energyFull.textContent = full === null ? "" : `full at ${formatClock(toLocalWall(full, waifu))}`;
      }
      const busy = state.busy.has(s.waifu_id);
      for (const entry of refs.buttons) {
        const wait = entry.readyPerf - now;
        if (busy && entry.button.disabled) continue;
        if (wait > 0) {
          entry.button.disabled = true;
          entry.button.textContent = formatDuration(wait);
        } else if (!entry.event.enough_energy) {
          entry.button.disabled = true;
          entry.button.textContent = `Need \u26a1${entry.event.energy_cost}`;
        } else {
          entry.button.disabled = busy;
          entry.button.textContent = "Go";
        }
        if (wait <= 0 && entry.event.cooldown_remaining_seconds > 0 && !entry.expired) {
          entry.expired = true; // cooldown over: fresh data (energy may also have changed)
          due = true;
        }
      }
    }
    // An energy point (or a cooldown) is due: ask the server, which has the rule.
    if (due && state.busy.size === 0 && now - state.lastAutoRefresh > MIN_AUTO_REFRESH_MS) {
      state.lastAutoRefresh = now;
      refresh({ ifIdle: true });
    }
  }

  // ---------------------------------------------------------------- theme and start

  function applyTheme() {
    const root = document.documentElement;
    const params = tg.themeParams || {};
    for (const [key, value] of Object.entries(params)) {
      if (typeof value === "string") root.style.setProperty(`--tg-theme-${key.replace(/_/g, "-")}`, value);
    }
    if (tg.colorScheme) root.dataset.colorScheme = tg.colorScheme;
  }

  function start() {
    if (!tg || !tg.initData) {
      showStatus("This is the game's Telegram Mini App. Open it from the bot in Telegram " +
        "(the \u201cOpen app\u201d button or the menu button): outside Telegram it cannot tell who you are.", "notice");
      return;
    }
    tg.ready();
    tg.expand();
    applyTheme();
    if (typeof tg.onEvent === "function") {
      tg.onEvent("themeChanged", applyTheme);
      tg.onEvent("activated", refresh); // Telegram brought the app back to the front
    }
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") refresh();
    });
    window.setInterval(tick, TICK_MS);
    refresh();
  }

  start();
})();

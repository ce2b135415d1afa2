// The waifu Mini App. Plain JS, no build step.
//
// Every number shown comes from the server (api.player_profile / available_events);
// the page only counts down to the next energy point and refetches when it is due.
// Every word shown comes from the server too: texts.json gives the page's share of
// bot/messages.py, translated, in the player's language (`language` of /me), templates filled here.
// Times are read relative to the server's `as_of` and measured with a monotonic clock,
// so a wrong clock on the phone does not move the countdown.
// All data goes into the page with textContent: nothing from the API becomes markup.
"use strict";

(() => {
  const API = "../api"; // relative: works when the app is mounted under a path prefix
  const TEXTS = "texts.json";
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
    language: null, // the language of `texts`
    texts: {}, // key -> template (bot/texts.py, PAGE_KEYS)
    tab: "home", // the tab shown (TABS)
    daily: null, // the daily reward's state (/api/settings), for the MainButton
    claiming: false, // a daily claim in flight (the page's button and the MainButton share it)
    board: "week", // the leaderboard shown: week | all
    acting: false, // an action of the collection or shop tab in flight
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

  // ---------------------------------------------------------------- texts

  // A text by key, its `{name}` fields filled. A text with plural forms comes as
  // {count, forms: {one, few, many, other}} (bot/texts.py): the form for the number in
  // the field `count` is chosen by the browser's CLDR rules, as the server's catalogue does.
  function t(key, values = {}) {
    let template = state.texts[key];
    if (template === undefined) return key;
    if (typeof template === "object") {
      const forms = template.forms;
      const category = new Intl.PluralRules(state.language || "en").select(Number(values[template.count]));
      template = forms[category] ?? forms.other ?? Object.values(forms).pop();
    }
    return template.replace(/\{(\w+)\}/g, (_, name) => {
      const value = values[name];
      return value === undefined ? "" : String(value);
    });
  }

  // A wait in the chat's style (bot/texts.py Texts.duration): "42 s", "9 min 42 s",
  // "59 min 59 s", "1 h 20 min". To the second under an hour, to the minute beyond, rounded up.
  function duration(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    if (s === 0) return t("dur_now");
    if (s < 3600) {
      const m = Math.floor(s / 60);
      const rest = s % 60;
      if (m === 0) return t("dur_s", { n: rest });
      return rest ? t("dur_pair", { larger: t("dur_min", { n: m }), smaller: t("dur_s", { n: rest }) })
        : t("dur_min", { n: m });
    }
    const minutes = Math.ceil(s / 60);
    const h = Math.floor(minutes / 60);
    const m = minutes % 60;
    return m ? t("dur_pair", { larger: t("dur_h", { h }), smaller: t("dur_min", { n: m }) }) : t("dur_h", { h });
  }

  // How often something may happen (bot/texts.py Texts.period): exactly one hour or minute
  // has a word of its own in some languages (ru «раз в час»).
  function period(ms) {
    const s = Math.round(ms / 1000);
    if (s === 3600) return t("dur_per_h");
    if (s === 60) return t("dur_per_min");
    return duration(ms);
  }

  // Load the texts for a language (a Telegram language code or en/ru: the server picks).
  async function loadTexts(language) {
    const response = await fetch(`${TEXTS}?language=${encodeURIComponent(language || "")}`,
      { cache: "no-cache", credentials: "omit" });
    if (!response.ok) throw new Error(`texts: HTTP ${response.status}`);
    const body = await response.json();
    state.language = body.language;
    state.texts = body.texts;
    applyStaticTexts();
  }

  // The page's fixed words: elements marked data-text (content) and data-text-label (aria-label).
  function applyStaticTexts() {
    document.documentElement.lang = state.language;
    document.title = t("web_title");
    for (const root of [document, ...Array.from(document.querySelectorAll("template"), (x) => x.content)]) {
      for (const el of root.querySelectorAll("[data-text]")) el.textContent = t(el.dataset.text);
      for (const el of root.querySelectorAll("[data-text-label]")) el.setAttribute("aria-label", t(el.dataset.textLabel));
    }
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

  // ---------------------------------------------------------------- the API

  async function api(path, options = {}) {
    let response;
    try {
      response = await fetch(API + path, {
        ...options,
        cache: "no-store",
        credentials: "omit",
        headers: {
          Authorization: `tma ${tg.initData}`,
          // Error messages come back in the player's language.
          "Accept-Language": state.language || "en",
          ...(options.headers || {}),
        },
      });
    } catch (err) {
      throw new ApiFailure(0, "network", t("web_network"), {});
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

  // The server words every refusal (bot/texts.py, in the language the page asked for).
  function describeFailure(failure) {
    return failure.message || t("web_failed");
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
        if (profile.language && profile.language !== state.language) {
          await loadTexts(profile.language);
          updateMainButton(); // its text, in the player's language
        }
        greetingEl.textContent = profile.first_name ? t("web_greeting", { name: profile.first_name }) : "";
        $("tabs").hidden = false; // a known player: the other tabs have something to show
        if (state.waifus.length === 0) {
          showStatus(t("web_no_waifu"), "notice");
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
      if (card) card.eventsStatus.textContent = describeFailure(failure);
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
    refs.level.textContent = t("web_level", { level: s.level });
    // XP within the level, as in the chat's card.
    const levelSpan = s.next_level_xp - s.level_xp;
    const intoLevel = s.xp - s.level_xp;
    setBar(refs.node, "xp", intoLevel, levelSpan, `${intoLevel} / ${levelSpan}`);
    setBar(refs.node, "energy", s.energy, s.max_energy, `${s.energy} / ${s.max_energy}`);
    setBar(refs.node, "mood", s.mood, s.max_stat, `${s.mood} / ${s.max_stat}`);
    setBar(refs.node, "loyalty", s.loyalty, s.max_stat, `${s.loyalty} / ${s.max_stat}`);
  }

  function eventTerms(e) {
    const parts = [`\u26a1${e.energy_cost}`, t("web_term_xp", { xp: e.xp_reward })];
    if (e.mood_delta) parts.push(t("web_term_mood", { delta: signed(e.mood_delta) }));
    if (e.loyalty_delta) parts.push(t("web_term_loyalty", { delta: signed(e.loyalty_delta) }));
    if (e.cooldown_seconds > 0) parts.push(t("web_term_cooldown", { wait: period(e.cooldown_seconds * 1000) }));
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
    if (loaded.list.length === 0) refs.eventsStatus.textContent = t("events_none");
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
    const changes = t("result_changes", {
      xp: c.xp, energy: signed(c.energy), mood: signed(c.mood), loyalty: signed(c.loyalty),
    });
    let text = t("web_result", { title: r.event_title, changes });
    if (c.leveled_up) text += ` ${t("result_level_up", { before: c.level_before, after: c.level_after })}`;
    return text;
  }

  async function participate(waifuId, entry, row) {
    if (state.busy.has(waifuId)) return;
    state.busy.add(waifuId);
    entry.button.disabled = true;
    entry.button.textContent = "\u2026";
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
      haptic("success");
      state.busy.delete(waifuId);
      // A replayed answer is the one recorded earlier (its stats are from then): reload.
      if (result.replayed) await refresh();
      else await loadEvents(waifuId);
    } catch (failure) {
      state.busy.delete(waifuId);
      if (!(failure instanceof ApiFailure)) throw failure;
      const message = { code: entry.event.code, text: describeFailure(failure), kind: "error" };
      haptic("error");
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
        refs.energyNext.textContent = t("web_energy_full");
        refs.energyFull.textContent = "";
      } else {
        const elapsed = now - waifu.receivedPerf;
        const remaining = next - asOf - elapsed;
        if (remaining <= 0) due = true;
        refs.energyNext.textContent = t("web_energy_next", { wait: duration(remaining) });
        refs.energyFull.textContent = full === null ? "" : t("web_energy_full_in", { wait: duration(full - asOf - elapsed) });
      }
      const busy = state.busy.has(s.waifu_id);
      for (const entry of refs.buttons) {
        const wait = entry.readyPerf - now;
        if (busy && entry.button.disabled) continue;
        if (wait > 0) {
          entry.button.disabled = true;
          entry.button.textContent = t("web_wait", { wait: duration(wait) });
        } else if (!entry.event.enough_energy) {
          entry.button.disabled = true;
          entry.button.textContent = t("web_need_energy", { cost: entry.event.energy_cost });
        } else {
          entry.button.disabled = busy;
          entry.button.textContent = t("web_go");
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

  // ---------------------------------------------------------------- daily reward and settings

  const extrasEl = document.getElementById("extras");
  const dailyStatusEl = document.getElementById("daily-status");
  const dailyButton = document.getElementById("daily-claim");
  const notifyToggle = document.getElementById("notify-toggle");

  function renderSettings(settings) {
    const daily = settings.daily || {};
    state.daily = daily;
    updateMainButton();
    extrasEl.hidden = false;
    notifyToggle.checked = Boolean(settings.notifications);
    dailyButton.disabled = !daily.available;
    dailyStatusEl.textContent = daily.available
      ? t("web_daily_ready", { n: daily.next_streak })
      : t("web_daily_wait", { time: duration(parseTime(daily.available_at) - Date.now()), n: daily.streak });
  }

  async function loadSettings() {
    try {
      renderSettings(await api("/settings"));
    } catch (failure) {
      if (!(failure instanceof ApiFailure)) throw failure;
      extrasEl.hidden = true; // the cards' status line already says what is wrong
    }
  }

  async function claimDaily() {
    // The page's button and Telegram's MainButton both claim: one claim at a time.
    if (state.claiming) return;
    state.claiming = true;
    dailyButton.disabled = true;
    const main = tg.MainButton;
    if (main && typeof main.showProgress === "function") main.showProgress(false);
    let message;
    let kind = "ok";
    try {
      const result = await api("/daily", { method: "POST", headers: { "Idempotency-Key": newKey() } });
      message = t("web_daily_claimed", { n: result.streak });
      haptic("success");
    } catch (failure) {
      if (!(failure instanceof ApiFailure)) throw failure;
      message = describeFailure(failure);
      kind = "error";
      haptic("error");
    } finally {
      state.claiming = false;
      if (main && typeof main.hideProgress === "function") main.hideProgress();
    }
    // After the refresh (and one queued behind it), which clears the status line when all is well.
    await Promise.all([loadSettings(), refresh()]);
    while (state.loading) await state.loading;
    showStatus(message, kind);
  }

  async function setNotifications() {
    const value = notifyToggle.checked ? "on" : "off";
    try {
      renderSettings(await api("/settings", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: "notifications", value }),
      }));
    } catch (failure) {
      if (!(failure instanceof ApiFailure)) throw failure;
      showStatus(describeFailure(failure), "error");
      await loadSettings();
    }
  }

  // ---------------------------------------------------------------- Telegram's buttons and haptics

  // Haptic feedback on actions: "success" / "error" (Telegram's notification kinds).
  function haptic(kind) {
    const feedback = tg && tg.HapticFeedback;
    if (feedback && typeof feedback.notificationOccurred === "function") feedback.notificationOccurred(kind);
  }

  // The MainButton is the daily claim: shown on the home tab while the reward is ready (the
  // one thing a player comes back for each day); the other tabs act on their rows.
  function updateMainButton() {
    const main = tg && tg.MainButton;
    if (!main) return;
    if (state.tab === "home" && state.daily && state.daily.available) {
      main.setText(t("web_main_daily"));
      main.enable();
      main.show();
    } else {
      main.hide();
    }
  }

  // ---------------------------------------------------------------- tabs

  const TABS = ["home", "waifus", "shop", "top"];
  const RARITY_KEYS = { common: "web_rarity_common", rare: "web_rarity_rare", epic: "web_rarity_epic" };

  function setUpTabs() {
    for (const name of TABS) $(`tab-btn-${name}`).addEventListener("click", () => showTab(name));
    // The tab list's keys (WAI-ARIA tabs pattern): arrows move to the next or previous tab.
    $("tabs").addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      event.preventDefault();
      const next = TABS[(TABS.indexOf(state.tab) + step + TABS.length) % TABS.length];
      showTab(next);
      $(`tab-btn-${next}`).focus();
    });
    for (const button of document.querySelectorAll(".board-switch button")) {
      button.addEventListener("click", () => {
        state.board = button.dataset.board;
        loadTop();
      });
    }
    if (tg.BackButton) tg.BackButton.onClick(() => showTab("home"));
    if (tg.MainButton) tg.MainButton.onClick(() => {
      if (state.tab === "home") claimDaily();
    });
  }

  // Every visit of a tab reads it fresh: nothing shown is older than the last look.
  function showTab(name) {
    if (!TABS.includes(name)) name = "home";
    const changed = name !== state.tab;
    state.tab = name;
    for (const tab of TABS) {
      $(`tab-${tab}`).hidden = tab !== name;
      const button = $(`tab-btn-${tab}`);
      button.setAttribute("aria-selected", String(tab === name));
      button.tabIndex = tab === name ? 0 : -1;
    }
    if (tg.BackButton) {
      if (name === "home") tg.BackButton.hide();
      else tg.BackButton.show();
    }
    if (changed && tg.HapticFeedback && typeof tg.HapticFeedback.selectionChanged === "function") {
      tg.HapticFeedback.selectionChanged();
    }
    updateMainButton();
    window.scrollTo(0, 0);
    if (name === "home") {
      refresh();
      loadSettings();
    } else if (name === "waifus") {
      loadCollection();
    } else if (name === "shop") {
      loadShop();
    } else {
      loadTop();
    }
  }

  function tabStatus(tab, text, kind) {
    const el = $(`${tab}-status`);
    el.textContent = text;
    el.className = `status${kind ? ` ${kind}` : ""}`;
  }

  // An action of a tab: one at a time, haptics, the tab and the home view read again
  // afterwards (the stats changed), then the outcome said above the tab.
  async function act(tab, request, describe, reload) {
    if (state.acting) return;
    state.acting = true;
    let message;
    let kind = "ok";
    try {
      message = describe(await request());
      haptic("success");
    } catch (failure) {
      if (!(failure instanceof ApiFailure)) throw failure;
      message = describeFailure(failure);
      kind = "error";
      haptic("error");
    } finally {
      state.acting = false;
    }
    await Promise.all([reload(), refresh()]);
    tabStatus(tab, message, kind);
  }

  function post(path, key) {
    return api(path, { method: "POST", headers: key ? { "Idempotency-Key": key } : {} });
  }

  // ---------------------------------------------------------------- the collection tab

  async function loadCollection() {
    try {
      renderCollection(await api("/waifus"));
    } catch (failure) {
      if (!(failure instanceof ApiFailure)) throw failure;
      tabStatus("waifus", describeFailure(failure), "error");
    }
  }

  function tile(code, name, rarity) {
    const node = $("waifu-tile").content.firstElementChild.cloneNode(true);
    const img = node.querySelector(".portrait");
    img.addEventListener("error", () => { img.hidden = true; }); // an operator's template without a picture
    img.src = `portraits/${encodeURIComponent(code)}.svg`;
    img.alt = t("web_portrait", { name });
    node.querySelector(".name").textContent = name;
    const rarityEl = node.querySelector(".rarity");
    rarityEl.textContent = RARITY_KEYS[rarity] ? t(RARITY_KEYS[rarity]) : String(rarity || "");
    rarityEl.dataset.rarity = String(rarity || "");
    return node;
  }

  function renderCollection(c) {
    tabStatus("waifus", "", null);
    $("collection-count").textContent = t("web_collection_count", { owned: c.owned, max: c.max });
    const owned = document.createDocumentFragment();
    for (const w of c.waifus || []) {
      const node = tile(w.template_code, w.name, w.rarity);
      node.dataset.waifuId = String(w.waifu_id);
      node.classList.toggle("active", Boolean(w.active));
      node.querySelector(".tile-stats").textContent = t("web_tile_stats", {
        level: w.level, energy: w.energy, max_energy: w.max_energy, mood: w.mood, loyalty: w.loyalty,
      });
      node.querySelector(".active-badge").hidden = !w.active;
      const button = node.querySelector(".tile-action");
      button.hidden = Boolean(w.active);
      button.textContent = t("web_make_active");
      button.addEventListener("click", () => act("waifus",
        () => post(`/waifus/${encodeURIComponent(w.waifu_id)}/active`),
        () => t("web_made_active", { name: w.name }), loadCollection));
      owned.appendChild(node);
    }
    $("collection").replaceChildren(owned);

    const missing = (c.templates || []).filter((x) => x.waifu_id === null || x.waifu_id === undefined);
    const full = c.owned >= c.max;
    $("adopt-title").hidden = missing.length === 0;
    $("adopt-note").textContent = missing.length === 0 ? t("web_all_adopted")
      : full ? t("web_collection_full", { max: c.max }) : "";
    const adoptable = document.createDocumentFragment();
    for (const x of missing) {
      const node = tile(x.code, x.name, x.rarity);
      node.dataset.templateCode = x.code;
      node.classList.add("not-adopted");
      node.querySelector(".tile-stats").textContent = x.description || "";
      const button = node.querySelector(".tile-action");
      button.textContent = t("web_adopt");
      button.hidden = full;
      const key = newKey(); // this drawn button: a double tap adopts once
      button.addEventListener("click", () => {
        if (state.acting) return;
        button.disabled = true;
        act("waifus", () => post(`/templates/${encodeURIComponent(x.code)}/adopt`, key),
          () => t("web_adopted", { name: x.name }), loadCollection);
      });
      adoptable.appendChild(node);
    }
    $("adoptable").replaceChildren(adoptable);
  }

  // ---------------------------------------------------------------- the shop tab

  function itemTerms(item) {
    const parts = [];
    if (item.mood) parts.push(t("web_term_mood", { delta: signed(item.mood) }));
    if (item.loyalty) parts.push(t("web_term_loyalty", { delta: signed(item.loyalty) }));
    if (item.energy) parts.push(t("web_term_energy", { delta: signed(item.energy) }));
    if (item.cooldown_seconds > 0) parts.push(t("web_term_cooldown", { wait: period(item.cooldown_seconds * 1000) }));
    return parts.join(" \u00b7 ");
  }

  function itemRow(item, title, label, onClick) {
    const node = $("item-row").content.firstElementChild.cloneNode(true);
    node.dataset.itemCode = item.code;
    const titleEl = node.querySelector(".row-title");
    titleEl.textContent = title;
    node.querySelector(".row-description").textContent = item.description || "";
    node.querySelector(".row-terms").textContent = itemTerms(item);
    const button = node.querySelector(".row-go");
    if (label === null) {
      button.hidden = true;
    } else {
      button.textContent = label;
      button.addEventListener("click", () => {
        if (state.acting) return;
        button.disabled = true;
        onClick();
      });
    }
    return node;
  }

  async function loadShop() {
    let shop;
    let inventory;
    let collection;
    try {
      [shop, inventory, collection] = await Promise.all([api("/shop"), api("/inventory"), api("/waifus")]);
    } catch (failure) {
      if (!(failure instanceof ApiFailure)) throw failure;
      tabStatus("shop", describeFailure(failure), "error");
      return;
    }
    tabStatus("shop", "", null);
    $("coins").textContent = t("web_coins", { coins: inventory.coins });
    const active = (collection.waifus || []).find((w) => w.active);

    const items = shop.items || [];
    $("shop-empty").hidden = items.length > 0;
    $("shop-items").replaceChildren(...items.map((item) => {
      const key = newKey();
      return itemRow(item, item.name, t("web_buy", { price: item.price }), () => act("shop",
        () => post(`/shop/${encodeURIComponent(item.code)}/buy`, key),
        (r) => t("web_bought", { name: r.item.name, coins: r.coins }), loadShop));
    }));

    const owned = inventory.items || [];
    $("inventory-empty").hidden = owned.length > 0;
    $("inventory-items").replaceChildren(...owned.map((item) => {
      const key = newKey();
      const title = t("web_inventory_line", { name: item.name, quantity: item.quantity });
      if (!active) return itemRow(item, title, null, null);
      return itemRow(item, title, t("web_give", { name: active.name }), () => act("shop",
        () => post(`/waifus/${encodeURIComponent(active.waifu_id)}/gifts/${encodeURIComponent(item.code)}`, key),
        (r) => t("web_gift_given", {
          name: r.name, item: r.item.name, mood: signed(r.changes.mood), loyalty: signed(r.changes.loyalty),
          energy: signed(r.changes.energy),
        }), loadShop));
    }));
  }

  // ---------------------------------------------------------------- the leaderboard tab

  async function loadTop() {
    const board = state.board === "all" ? "all" : "week";
    for (const button of document.querySelectorAll(".board-switch button")) {
      button.setAttribute("aria-pressed", String(button.dataset.board === board));
    }
    $("top-resets").hidden = board !== "week";
    let result;
    try {
      result = await api(`/top?board=${board}`);
    } catch (failure) {
      if (!(failure instanceof ApiFailure)) throw failure;
      tabStatus("top", describeFailure(failure), "error");
      return;
    }
    if (state.board !== board) return; // the other board was asked for meanwhile
    tabStatus("top", "", null);
    const rows = result.top || [];
    $("top-empty").hidden = rows.length > 0;
    $("top-list").replaceChildren(...rows.map((row) => {
      const node = $("top-row").content.firstElementChild.cloneNode(true);
      node.querySelector(".board-rank").textContent = String(row.rank);
      node.querySelector(".board-name").textContent = row.me ? `${row.name || "\u2014"} (${t("web_you")})`
        : row.name || "\u2014";
      node.querySelector(".board-xp").textContent = t("web_top_xp", { xp: row.xp });
      node.classList.toggle("me", Boolean(row.me));
      return node;
    }));
    const me = result.me || {};
    $("top-me").textContent = !(me.xp > 0) ? t("web_top_me_none")
      : t(me.exact ? "web_top_me" : "web_top_me_about", { rank: me.rank, xp: me.xp });
  }

  // ---------------------------------------------------------------- start

  async function start() {
    // ?lang= (a link or a tester's choice) first, then Telegram's language, then the
    // browser's; /me then gives the player's own choice.
    const user = tg && tg.initDataUnsafe && tg.initDataUnsafe.user;
    const asked = new URLSearchParams(window.location.search).get("lang");
    await loadTexts(asked || (user && user.language_code) || (navigator.languages || [])[0] || navigator.language || "");
    if (!tg || !tg.initData) {
      showStatus(t("web_outside_telegram"), "notice");
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
      if (document.visibilityState === "visible") {
        refresh();
        loadSettings(); // the daily reward may have become ready meanwhile
        if (state.tab !== "home") showTab(state.tab);
      }
    });
    window.setInterval(tick, TICK_MS);
    dailyButton.addEventListener("click", claimDaily);
    notifyToggle.addEventListener("change", setNotifications);
    setUpTabs();
    refresh();
    loadSettings();
  }

  start().catch((err) => showStatus(String(err), "error"));
})();

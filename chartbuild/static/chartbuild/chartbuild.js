// chartbuild's pages: draws each chart with Vega-Lite (the SVG image stays without
// JavaScript), formats numbers and build times for the reader, and keeps served pages
// live by polling their generator's state with If-None-Match.
(function () {
  "use strict";
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)");
  var numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
  var compactFormat = new Intl.NumberFormat(undefined, {
    notation: "compact", maximumSignificantDigits: 3 });
  var cellFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 6 });

  function titleText(title) {
    if (title && typeof title === "object" && !Array.isArray(title)) { title = title.text; }
    if (Array.isArray(title)) { title = title.join(" "); }
    return typeof title === "string" ? title.replace(/\s+/g, " ").trim() : null;
  }

  function fitted(spec, figure) {
    // Charts fill their card: a single view takes the card's width.
    var single = !("hconcat" in spec || "vconcat" in spec || "concat" in spec ||
      "facet" in spec || "repeat" in spec);
    spec = Object.assign({}, spec);
    if (single && (spec.width === undefined || typeof spec.width === "number")) {
      spec.width = "container";
      spec.autosize = Object.assign({ type: "fit-x", contains: "padding" }, spec.autosize);
    }
    // The card or the page already shows the title: Vega does not repeat it.
    var shown = figure.dataset.title;
    if (shown && titleText(spec.title) === shown.replace(/\s+/g, " ").trim()) {
      if (spec.title && spec.title.subtitle) {
        spec.title = Object.assign({}, spec.title, { text: "" }); // its subtitle stays
      } else {
        delete spec.title;
      }
    }
    return spec;
  }

  function draw(figure, spec) {
    var target = figure.querySelector(".vis");
    if (!target || typeof window.vegaEmbed !== "function") {
      return Promise.resolve();
    }
    var options = { actions: false, renderer: "svg" };
    if (dark && dark.matches) {
      options.theme = "dark";
      options.config = { background: null };
    }
    return window.vegaEmbed(target, fitted(spec, figure), options)
      .then(function (result) {
        if (figure.chartbuildView) { figure.chartbuildView.finalize(); }
        figure.chartbuildView = result;
        figure.classList.add("live");
        delete figure.dataset.error;
      })
      .catch(function (error) { figure.dataset.error = String(error); });
  }

  function load(figure, version) {
    // The newest request wins: an older answer arriving late is not drawn.
    var token = (figure.chartbuildToken || 0) + 1;
    figure.chartbuildToken = token;
    figure.dataset.seen = "1";
    var url = figure.dataset.specUrl + (version ? "?v=" + encodeURIComponent(version) : "");
    return fetch(url, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status + " " + response.statusText); }
        return response.json();
      })
      .then(function (spec) {
        if (figure.chartbuildToken === token) { return draw(figure, spec); }
      })
      .catch(function (error) { figure.dataset.error = String(error); });
  }

  function showTime(element) {
    var since = element.querySelector("time.since[datetime]");
    if (since && since.getAttribute("datetime")) {
      var from = new Date(since.getAttribute("datetime"));
      if (!isNaN(from)) { since.textContent = from.toLocaleString(); }
    }
    var time = element.querySelector("time[datetime]:not(.since)");
    if (time && time.getAttribute("datetime")) {
      var when = new Date(time.getAttribute("datetime"));
      if (!isNaN(when)) { time.textContent = when.toLocaleString(); }
    }
  }

  function fit(element) {
    // A figure too wide for its card is shortened (1,879,904.28 -> 1.88M), its title
    // keeps the whole value; a number on a page of its own stays whole, smaller if need be.
    var target = element.querySelector(".value .figure");
    var value = element.dataset.value;
    if (!target || value === undefined || value === "") { return; }
    var box = target.parentNode;
    target.textContent = numberFormat.format(Number(value));
    target.style.fontSize = "";
    var fits = function () { return target.offsetWidth <= box.clientWidth; };
    if (fits()) { return; }
    if (!element.classList.contains("whole")) {
      target.textContent = compactFormat.format(Number(value));
      return;
    }
    for (var size = 1.9; size >= 1 && !fits(); size -= 0.1) {
      target.style.fontSize = size.toFixed(1) + "rem";
    }
  }

  function showNumber(element, value) {
    var target = element.querySelector(".value .figure");
    if (target && value !== null && value !== undefined && value !== "") {
      element.dataset.value = value;
      target.textContent = numberFormat.format(Number(value));
      var unit = element.querySelector(".value .unit");
      target.title = target.textContent + (unit ? " " + unit.textContent : "");
      fit(element);
    }
  }

  function showTrend(element, trend) {
    // The server says what the change is (pages.trend): the card only shows it.
    var box = element.querySelector("[data-trend]");
    if (!box) { return; }
    box.className = "trend " + trend.direction + " " + trend.tone;
    box.querySelector(".arrow").textContent = trend.arrow;
    box.querySelector(".pct").textContent = trend.change;
    box.querySelector(".against").textContent = trend.against;
    box.querySelector(".partial").textContent = trend.partial ? " \u00b7 " + trend.partial : "";
    var spark = box.querySelector(".spark");
    spark.querySelector("polyline").setAttribute("points", trend.points);
    spark.toggleAttribute("hidden", !trend.points);
  }

  function showCell(cell) {
    var value = cell.dataset.value;
    if (cell.classList.contains("num")) {
      cell.textContent = cellFormat.format(Number(value));
    } else if (cell.classList.contains("date")) {
      // a calendar date: shown as it is written, whatever the reader's time zone
      var day = new Date(value + "T00:00:00Z");
      if (!isNaN(day)) {
        cell.textContent = day.toLocaleDateString(undefined, { timeZone: "UTC" });
      }
    } else if (cell.classList.contains("datetime")) {
      // a time in UTC as UTC (the chart's and the CSV's), one without a zone as written;
      // one with another offset stays as the server wrote it
      var utc = /(Z|[+-]00:?00)$/.test(value);
      var when = new Date(value);
      if (!isNaN(when) && (utc || !/[+-]\d\d:?\d\d$/.test(value))) {
        cell.textContent = when.toLocaleString(undefined, utc ? { timeZone: "UTC" } : {});
      }
    }
  }

  // Charts with their spec inline (the static pages): draw them now.
  document.querySelectorAll("figure.chart[data-spec]").forEach(function (figure) {
    var source = document.getElementById(figure.dataset.spec);
    if (source) { draw(figure, JSON.parse(source.textContent)); }
  });

  // Charts with their spec at a URL (the served pages): draw each once it comes into view.
  var lazy = document.querySelectorAll("figure.chart[data-spec-url]");
  if ("IntersectionObserver" in window) {
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) {
          observer.unobserve(entry.target);
          load(entry.target, entry.target.dataset.version);
        }
      });
    }, { rootMargin: "200px" });
    lazy.forEach(function (figure) { observer.observe(figure); });
  } else {
    lazy.forEach(function (figure) { load(figure, figure.dataset.version); });
  }

  document.querySelectorAll("[data-chartbuild-item]").forEach(showTime);
  var numbers = document.querySelectorAll(".number[data-value]");
  numbers.forEach(function (element) { showNumber(element, element.dataset.value); });
  document.querySelectorAll("td[data-value]").forEach(showCell);

  // Numbers fit their cards again when the cards change width.
  if ("ResizeObserver" in window) {
    var resized = new ResizeObserver(function (entries) {
      entries.forEach(function (entry) { fit(entry.target); });
    });
    numbers.forEach(function (element) { resized.observe(element); });
  }

  // Live: every element with data-state-url follows its generator's state.
  var watched = {};
  document.querySelectorAll("[data-state-url]").forEach(function (element) {
    var url = element.dataset.stateUrl;
    (watched[url] = watched[url] || []).push(element);
  });

  function update(element, state) {
    element.classList.toggle("stale", Boolean(state.stale));
    element.classList.toggle("behind", Boolean(state.behind_since));
    var since = element.querySelector("time.since");
    if (since) { since.setAttribute("datetime", state.behind_since || ""); }
    var time = element.querySelector("time:not(.since)");
    if (time) { time.setAttribute("datetime", state.built_at || ""); }
    showTime(element);
    if (element.dataset.version === state.version) { return; }
    element.dataset.version = state.version;
    if (state.number) {
      showNumber(element, state.number.value);
      if (state.trend) { showTrend(element, state.trend); }
    } else if (element.dataset.specUrl && element.dataset.seen) {
      load(element, state.version); // charts not yet in view are drawn when they come
    }
  }

  Object.keys(watched).forEach(function (url) {
    var etag = null;
    var busy = false;
    var stopped = false;
    var interval = Math.max(250, Number(watched[url][0].dataset.intervalMs) || 1000);
    var timer = null;
    function schedule(delay) {
      window.clearTimeout(timer);
      timer = window.setTimeout(poll, delay);
    }
    function poll() {
      if (document.hidden || busy || stopped) { return; }
      busy = true;
      var headers = etag ? { "If-None-Match": etag } : {};
      fetch(url, { credentials: "same-origin", headers: headers, cache: "no-cache" })
        .then(function (response) {
          if (response.redirected || response.status === 403 || response.status === 404) {
            stopped = true; // signed out, or no longer allowed: the page stays as it is
            return null;
          }
          if (response.status !== 200) { return null; }
          etag = response.headers.get("ETag");
          return response.json();
        })
        .then(function (data) {
          if (!data) { return; }
          watched[url].forEach(function (element) {
            var state = data.items[element.dataset.name];
            if (state) { update(element, state); }
          });
        })
        .catch(function () { /* offline for a moment: the next poll tries again */ })
        .then(function () {
          busy = false;
          if (!stopped) { schedule(interval); }
        });
    }
    schedule(interval); // paused while the tab is hidden, at once when it shows again
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { schedule(0); }
    });
  });
})();

// Replaces each chart's static SVG with the interactive Vega-Lite view.
(function () {
  "use strict";
  if (typeof window.vegaEmbed !== "function") {
    return; // keep the SVG images
  }
  document.querySelectorAll("figure.chart[data-spec]").forEach(function (figure) {
    var source = document.getElementById(figure.dataset.spec);
    var target = figure.querySelector(".vis");
    if (!source || !target) {
      return;
    }
    window.vegaEmbed(target, JSON.parse(source.textContent), { actions: false, renderer: "svg" })
      .then(function () { figure.classList.add("live"); })
      .catch(function (error) { figure.dataset.error = String(error); });
  });
})();

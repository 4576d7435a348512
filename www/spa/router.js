// A tiny history router for the single-page-app demo.
// Views are addressed by `?view=NAME` under /spa/ so that every address the
// router makes is also a real file on reload (the static assets have no
// catch-all to a single index.html).
//  - links with `data-route` -> history.pushState, then render
//  - the billing filter -> history.replaceState with the same URL (the state
//    object changes, the address does not)
//  - popstate (back / forward) -> render from the address and state
(function () {
  "use strict";
  var TITLES = { home: "app home", pricing: "pricing", docs: "docs" };
  var DEFAULT_FILTER = "monthly";
  var outlet = document.getElementById("view");

  function viewFromUrl(url) {
    var name = new URL(url, location.href).searchParams.get("view") || "home";
    return Object.prototype.hasOwnProperty.call(TITLES, name) ? name : "home";
  }

  function currentFilter() {
    var state = history.state;
    return state && state.filter === "yearly" ? "yearly" : DEFAULT_FILTER;
  }

  function applyFilter(filter) {
    outlet.querySelectorAll("[data-filter]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-filter") === filter));
    });
    outlet.querySelectorAll("[data-price-monthly]").forEach(function (price) {
      price.textContent = price.getAttribute("data-price-" + filter);
    });
  }

  function render() {
    var name = viewFromUrl(location.href);
    var template = document.getElementById("view-" + name);
    outlet.replaceChildren(template.content.cloneNode(true));
    document.title = "edgetrack demo: " + TITLES[name];
    document.querySelectorAll("a[data-route]").forEach(function (link) {
      if (new URL(link.href).search === location.search) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    });
    applyFilter(currentFilter());
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-route]");
    if (link && event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey) {
      event.preventDefault();
      if (link.href !== location.href) {
        // The title first, so whatever reacts to pushState sees the new one.
        document.title = "edgetrack demo: " + TITLES[viewFromUrl(link.href)];
        history.pushState({ filter: DEFAULT_FILTER }, "", link.href);
        render();
      }
      return;
    }
    var filter = event.target.closest && event.target.closest("[data-filter]");
    if (filter) {
      var value = filter.getAttribute("data-filter");
      history.replaceState({ filter: value }, "", location.href);
      applyFilter(value);
    }
  });

  window.addEventListener("popstate", render);
  render();
})();

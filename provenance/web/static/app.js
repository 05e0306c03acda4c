// Keyboard shortcuts for working through the queue, and the matched-region outlines.
// Queue: j / k move between rows, Enter opens. Asset: a / r / n / e choose a decision and
// put the cursor in the rationale; Ctrl+Enter records it; [ / ] go to the previous / next
// asset of the queue; c claims the asset. Compare viewer: s / w / f / d side by side, wipe,
// flicker, difference; + / - / 0 zoom; arrows move the wipe.
(function () {
  "use strict";
  function typing(target) {
    return target.closest("input, textarea, select") !== null;
  }

  document.querySelectorAll(".region[data-box]").forEach(function (box) {
    var parts = box.dataset.box.split(",").map(Number);
    box.style.left = parts[0] * 100 + "%";
    box.style.top = parts[1] * 100 + "%";
    box.style.width = (parts[2] - parts[0]) * 100 + "%";
    box.style.height = (parts[3] - parts[1]) * 100 + "%";
  });

  // A movie or frame sequence: step the generated side through the matching frames. The
  // outline is that of the verified frame, so it shows on that frame only.
  document.querySelectorAll(".frames[data-frames]").forEach(function (stepper) {
    var pair = stepper.closest(".pair");
    var picture = pair.querySelector("img[data-frame-base]");
    var label = pair.querySelector('[data-testid="frame-label"]');
    var outline = pair.querySelector("svg.outline");
    var frames = stepper.dataset.frames.split(",").filter(Boolean).map(Number);
    var at = frames.indexOf(Number(picture.src.replace(/.*\/frame\/(\d+)\.jpg$/, "$1")));
    function show(index) {
      if (!frames.length) return;
      at = (index + frames.length) % frames.length;
      picture.src = picture.dataset.frameBase + frames[at] + ".jpg";
      picture.alt = picture.alt.replace(/frame \d+$/, "frame " + frames[at]);
      if (label) label.textContent = "frame " + frames[at];
      if (outline) outline.style.display = String(frames[at]) === stepper.dataset.outlined ? "" : "none";
    }
    stepper.querySelectorAll("button[data-step]").forEach(function (button) {
      button.addEventListener("click", function () { show(at + Number(button.dataset.step)); });
    });
    stepper.step = function (by) { show(at + by); };
  });

  // The compare viewer: the generated picture and the chosen reference redrawn in its frame
  // (aligned by the verified transform), both at the same displayed size; side by side with
  // zoom and pan shared by both sides, or laid over each other as a wipe, a flicker or
  // their difference.
  var compare = document.querySelector("section.compare");
  var viewer = null;
  if (compare) {
    viewer = (function () {
      var views = compare.querySelector(".viewports");
      var base = compare.querySelector('[data-testid="compare-asset"]');
      var overlay = compare.querySelector('[data-testid="compare-overlay"]');
      var beside = compare.querySelector('[data-testid="compare-reference-image"]');
      var chooser = compare.querySelector('[data-testid="compare-reference"]');
      var wipe = compare.querySelector('[data-testid="wipe-position"]');
      var level = compare.querySelector('[data-testid="zoom-level"]');
      var alignment = compare.querySelector('[data-testid="alignment"]');
      var stages = compare.querySelectorAll(".stage");
      var view = { scale: 1, x: 0, y: 0 };
      var flicker = null;

      function apply() {
        stages.forEach(function (stage) {
          stage.style.transform =
            "translate(" + view.x + "px, " + view.y + "px) scale(" + view.scale + ")";
        });
        level.textContent = Math.round(view.scale * 100) + " %";
      }
      function clamp() {
        var box = compare.querySelector(".viewport").getBoundingClientRect();
        view.scale = Math.max(1, Math.min(32, view.scale));
        view.x = Math.min(0, Math.max(box.width * (1 - view.scale), view.x));
        view.y = Math.min(0, Math.max(box.height * (1 - view.scale), view.y));
      }
      function zoom(by, cx, cy) {
        var box = compare.querySelector(".viewport").getBoundingClientRect();
        if (cx === undefined) { cx = box.width / 2; cy = box.height / 2; }
        var next = Math.max(1, Math.min(32, view.scale * by));
        view.x = cx - (cx - view.x) * (next / view.scale);
        view.y = cy - (cy - view.y) * (next / view.scale);
        view.scale = next;
        clamp();
        apply();
      }
      function reset() { view = { scale: 1, x: 0, y: 0 }; apply(); }
      function setWipe(percent) {
        wipe.value = String(Math.max(0, Math.min(100, percent)));
        overlay.style.clipPath = compare.dataset.mode === "wipe"
          ? "inset(0 0 0 " + wipe.value + "%)" : "";
      }
      function mode(name) {
        if (flicker) { clearInterval(flicker); flicker = null; }
        compare.dataset.mode = name;
        views.dataset.mode = name;
        overlay.style.visibility = "";
        compare.querySelectorAll("button[data-mode]").forEach(function (button) {
          button.setAttribute("aria-pressed", String(button.dataset.mode === name));
        });
        setWipe(Number(wipe.value));
        if (name === "flicker") {
          flicker = setInterval(function () {
            overlay.style.visibility = overlay.style.visibility === "hidden" ? "" : "hidden";
          }, 500);
        }
      }
      function choose() {
        var option = chooser.options[chooser.selectedIndex];
        overlay.src = option.value;
        beside.src = option.value;
        alignment.textContent = option.dataset.aligned === "yes"
          ? "The reference is redrawn in the generated picture's frame by the verified match's transform."
          : "No verified match: the reference is stretched to the generated picture's size.";
      }
      function fit() {
        if (!base.naturalWidth) return;
        compare.querySelectorAll(".viewport").forEach(function (port) {
          port.style.aspectRatio = base.naturalWidth + " / " + base.naturalHeight;
        });
      }

      compare.querySelectorAll("button[data-mode]").forEach(function (button) {
        button.addEventListener("click", function () { mode(button.dataset.mode); });
      });
      compare.querySelectorAll("button[data-zoom]").forEach(function (button) {
        button.addEventListener("click", function () {
          if (button.dataset.zoom === "reset") reset();
          else zoom(button.dataset.zoom === "in" ? 2 : 0.5);
        });
      });
      wipe.addEventListener("input", function () { setWipe(Number(wipe.value)); });
      chooser.addEventListener("change", choose);
      base.addEventListener("load", fit);
      compare.querySelectorAll(".viewport").forEach(function (port) {
        port.addEventListener("wheel", function (event) {
          event.preventDefault();
          var box = port.getBoundingClientRect();
          zoom(event.deltaY < 0 ? 1.25 : 0.8, event.clientX - box.left, event.clientY - box.top);
        }, { passive: false });
        port.addEventListener("pointerdown", function (event) {
          var start = { x: event.clientX, y: event.clientY, vx: view.x, vy: view.y };
          port.setPointerCapture(event.pointerId);
          function move(e) {
            view.x = start.vx + e.clientX - start.x;
            view.y = start.vy + e.clientY - start.y;
            clamp();
            apply();
          }
          function up() {
            port.removeEventListener("pointermove", move);
            port.removeEventListener("pointerup", up);
          }
          port.addEventListener("pointermove", move);
          port.addEventListener("pointerup", up);
        });
      });
      choose();
      fit();
      mode("side");
      apply();
      return {
        key: function (key) {
          var modes = { s: "side", w: "wipe", f: "flicker", d: "difference" };
          if (modes[key]) { mode(modes[key]); return true; }
          if (key === "+" || key === "=") { zoom(2); return true; }
          if (key === "-") { zoom(0.5); return true; }
          if (key === "0") { reset(); return true; }
          if (compare.dataset.mode === "wipe" && (key === "ArrowLeft" || key === "ArrowRight")) {
            setWipe(Number(wipe.value) + (key === "ArrowLeft" ? -5 : 5));
            return true;
          }
          return false;
        }
      };
    })();
  }

  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-href]"));
  var current = -1;
  function select(index) {
    if (!rows.length) return;
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach(function (row, i) { row.classList.toggle("selected", i === current); });
    rows[current].scrollIntoView({ block: "nearest" });
  }
  rows.forEach(function (row) {
    row.addEventListener("click", function (event) {
      if (event.target.closest("a") === null) window.location = row.dataset.href;
    });
  });

  var form = document.querySelector("form.signoff");
  var rationale = document.getElementById("rationale");

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      // The form being typed in (the approval form, say), else the sign-off.
      var target = event.target.closest("form") || form;
      if (target) {
        event.preventDefault();
        target.requestSubmit();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var stepper = document.querySelector(".frames[data-frames]");
    if (stepper && (event.key === "," || event.key === ".")) {
      stepper.step(event.key === "," ? -1 : 1);
      event.preventDefault();
      return;
    }
    var jump = { "[": '[data-testid="previous-asset"]', "]": '[data-testid="next-asset"]' }[event.key];
    if (jump) {
      var link = document.querySelector(jump);
      if (link) { window.location = link.href; event.preventDefault(); }
      return;
    }
    if (viewer && viewer.key(event.key)) { event.preventDefault(); return; }
    if (event.key === "c") {
      var claimButton = document.querySelector('[data-testid="claim-button"]');
      if (claimButton) { claimButton.click(); event.preventDefault(); }
      return;
    }
    if (event.key === "j") { select(current + 1); event.preventDefault(); }
    else if (event.key === "k") { select(current - 1); event.preventDefault(); }
    else if (event.key === "Enter" && current >= 0) { window.location = rows[current].dataset.href; }
    else if (form) {
      var choice = form.querySelector('input[name="decision"][data-key="' + event.key + '"]');
      if (choice) {
        choice.checked = true;
        rationale.focus();
        event.preventDefault();
      }
    }
  });
})();

// Keyboard shortcuts for working through the queue, and the matched-region outlines.
// Queue: j / k move between rows, Enter opens. Asset: a / r / n / e choose a decision and
// put the cursor in the rationale; Ctrl+Enter records it; [ / ] go to the previous / next
// asset of the queue; c claims the asset.
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

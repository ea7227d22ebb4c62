// clothingrec demo page: upload → POST /api/predict → draw boxes/masks, fill the tables.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  const input = document.getElementById("image-input");
  const drop = document.getElementById("drop-zone");
  const submit = document.getElementById("submit");
  const status = document.getElementById("status");
  const errorBox = document.getElementById("error");
  const result = document.getElementById("result");
  const canvas = document.getElementById("canvas");
  let file = null;

  function setFile(f) {
    file = f || null;
    document.getElementById("file-name").textContent = file ? `${file.name} (${file.size} bytes)` : "";
    submit.disabled = !file;
  }
  input.addEventListener("change", () => setFile(input.files[0]));
  ["dragenter", "dragover"].forEach((ev) => drop.addEventListener(ev, (e) => {
    e.preventDefault(); drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((ev) => drop.addEventListener(ev, (e) => {
    e.preventDefault(); drop.classList.remove("over");
  }));
  drop.addEventListener("drop", (e) => { if (e.dataTransfer.files.length) setFile(e.dataTransfer.files[0]); });

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function loadImage(src) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("could not load the returned image"));
      img.src = src;
    });
  }

  function fmt(v, digits) { return Number(v).toFixed(digits); }

  async function draw(data) {
    const img = await loadImage(data.image_jpeg);
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    if (data.mask_overlay_png) ctx.drawImage(await loadImage(data.mask_overlay_png), 0, 0);
    const lw = Math.max(2, Math.round(canvas.width / 300));
    const fontPx = Math.max(12, Math.round(canvas.width / 45));
    ctx.font = `${fontPx}px sans-serif`;
    ctx.textBaseline = "top";
    const box = (b, color, text, dashed) => {
      ctx.lineWidth = lw;
      ctx.strokeStyle = color;
      ctx.setLineDash(dashed ? [lw * 4, lw * 3] : []);
      ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
      ctx.setLineDash([]);
      const w = ctx.measureText(text).width + 6;
      const y = Math.max(0, b[1] - fontPx - 4);
      ctx.fillStyle = color;
      ctx.fillRect(b[0], y, w, fontPx + 4);
      ctx.fillStyle = "#000";
      ctx.fillText(text, b[0] + 3, y + 2);
    };
    data.persons.forEach((p, i) => box(p.box, p.color, `person ${fmt(p.score, 2)}`, true));
    data.detections.forEach((d) => box(d.box, d.color,
      `${d.name} ${fmt(d.score, 2)} → ${d.classifier.label} ${fmt(d.classifier.score, 2)}`, false));
  }

  function fillTables(data) {
    const body = document.querySelector("#detections tbody");
    body.innerHTML = "";
    const row = (cells) => {
      const tr = document.createElement("tr");
      cells.forEach((c) => {
        const td = document.createElement("td");
        if (c instanceof Node) td.appendChild(c); else td.textContent = c;
        tr.appendChild(td);
      });
      body.appendChild(tr);
      return tr;
    };
    const swatch = (color, text) => {
      const span = document.createElement("span");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = color;
      span.appendChild(sw);
      span.appendChild(document.createTextNode(text));
      return span;
    };
    let n = 0;
    data.persons.forEach((p) => {
      const tr = row([String(++n), swatch(p.color, "person"), "person", fmt(p.score, 3), "", "",
        p.box.map((v) => fmt(v, 1)).join(", ")]);
      tr.className = "person-row";
    });
    data.detections.forEach((d) => {
      const tr = row([String(++n), swatch(d.color, "garment"), d.name, fmt(d.score, 3), d.classifier.label,
        fmt(d.classifier.score, 3), d.box.map((v) => fmt(v, 1)).join(", ")]);
      tr.className = "garment-row";
    });
    if (n === 0) row(["", "", "nothing above the score threshold", "", "", "", ""]).className = "empty-row";
    const tbody = document.querySelector("#timings tbody");
    tbody.innerHTML = "";
    Object.entries(data.timings_ms).forEach(([k, v]) => {
      const tr = document.createElement("tr");
      tr.innerHTML = "<td></td><td></td>";
      tr.children[0].textContent = k;
      tr.children[1].textContent = fmt(v, 1);
      tbody.appendChild(tr);
    });
    const fb = data.fallback ? ` — fell back to direct (${data.fallback_reason})` : "";
    document.getElementById("summary").textContent =
      `mode requested: ${data.mode_requested}, used: ${data.mode_used}${fb}; ` +
      `${data.persons.length} person(s), ${data.num_detections} garment(s) with score ≥ ${data.score_threshold}; ` +
      `image ${data.image.width}×${data.image.height} ${data.image.format}; weights: ${data.weights}`;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!file) return;
    errorBox.hidden = true;
    submit.disabled = true;
    status.textContent = "running…";
    const fd = new FormData();
    fd.append("image", file, file.name);
    fd.append("mode", document.getElementById("mode").value);
    fd.append("score_threshold", document.getElementById("score-threshold").value);
    fd.append("overlay", "1");
    fd.append("preview", "1");
    try {
      const response = await fetch("api/predict", { method: "POST", body: fd });
      let data;
      try { data = await response.json(); } catch (err) { data = null; }
      if (!response.ok) {
        const msg = data && data.error ? `${data.error.status} ${data.error.code}: ${data.error.message}`
          : `HTTP ${response.status}`;
        throw new Error(msg);
      }
      fillTables(data);
      await draw(data);
      result.hidden = false;
      status.textContent = `done in ${fmt(data.timings_ms.total, 0)} ms`;
      document.body.dataset.state = "done";
    } catch (err) {
      showError(err.message);
      status.textContent = "failed";
      document.body.dataset.state = "error";
    } finally {
      submit.disabled = !file;
    }
  });
})();

// netpilot assistant box: a self-contained element (its own markup, style and script) that asks POST /api/assistant
// with the dashboard's token and shows the reply: a proposal's restatement, diff and verification, a question, a
// refusal or an explanation. The restatement is written by netpilot's code, not by the model.
(function () {
  "use strict";
  const box = document.createElement("section");
  box.id = "assistant-box";
  box.setAttribute("aria-label", "Assistant");
  box.innerHTML = `
    <style>
      #assistant-box { position: fixed; right: 1rem; bottom: 1rem; width: min(28rem, 90vw); z-index: 50;
        background: #fff; color: #111; border: 1px solid #bbb; border-radius: 6px; box-shadow: 0 2px 8px #0003;
        font: 14px system-ui, sans-serif; padding: .6rem; }
      #assistant-box form { display: flex; gap: .4rem; }
      #assistant-box input { flex: 1; padding: .3rem; }
      #assistant-box .reply { margin-top: .5rem; max-height: 40vh; overflow: auto; white-space: pre-wrap; }
      #assistant-box .kind { font-weight: 600; text-transform: capitalize; }
      #assistant-box .meta { color: #666; font-size: 12px; }
    </style>
    <form><input name="text" placeholder='Ask: "drain Frankfurt for maintenance", "why is DE-AT hot?"'
      autocomplete="off" maxlength="500"><button type="submit">Ask</button></form>
    <div class="reply" aria-live="polite"></div>`;
  const reply = box.querySelector(".reply");

  function line(text, cls) {
    const div = document.createElement("div");
    if (cls) div.className = cls;
    div.textContent = text;  // never innerHTML: the request and the model's answer are not trusted markup
    reply.appendChild(div);
  }

  box.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = box.querySelector("input").value.trim();
    if (!text) return;
    reply.textContent = "";
    line("thinking…", "meta");
    try {
      const response = await fetch("/api/assistant", {
        method: "POST",
        headers: { "Authorization": `Bearer ${localStorage.getItem("netpilot-token")}`,
                   "Content-Type": "application/json" },
        body: JSON.stringify({ text }),
      });
      const body = await response.json();
      reply.textContent = "";
      if (!response.ok) { line(`error ${response.status}: ${body.detail}`); return; }
      line(body.kind, "kind");
      line(body.restatement.length ? body.restatement.join("\n") : body.text);
      for (const d of body.diff.slice(0, 12)) line(`${d.link} ${d.field}: ${d.before} → ${d.after}`, "meta");
      if (body.verification) line(`verification: ${body.verification.ok ? "passed" : "REFUSED"}`);
      if (body.change_id) line(`change ${body.change_id}: ${body.state} — a second person approves it`);
      line(`${body.model || ""} · ${body.seconds.toFixed(2)} s`, "meta");
    } catch (error) {
      reply.textContent = "";
      line(`error: ${error}`);
    }
  });
  document.body.appendChild(box);
})();

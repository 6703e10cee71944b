// Self-check quizzes at the end of each chapter, in plain JavaScript (no library, no network,
// works from file://). book.toml loads this file on every page (additional-js, at the end of
// <body>), so a chapter only writes the quiz as an HTML block, without blank lines inside:
//
//   <div class="lora-quiz" data-quiz="ch03">
//   <div class="quiz-q">
//   <p class="quiz-text">The question?</p>
//   <ul class="quiz-options">
//   <li>A wrong option</li>
//   <li data-correct>The right option</li>
//   </ul>
//   <p class="quiz-why">One line that explains the right answer.</p>
//   </div>
//   …
//   </div>
//
// Each question becomes a group of radio buttons (keyboard: Tab into the group, arrows to
// choose). Choosing an option shows at once whether it is right, with the explanation, and
// the quiz's score (questions answered right / questions). A malformed quiz (a question
// with no or several correct options, fewer than two options, no explanation) is not drawn:
// it says what is wrong, on the page and in the console, and gets data-state="error".
(function () {
  "use strict";
  let groupCount = 0;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  // -> [{ text, options: [{ nodes, correct }], why }] or throws with what is wrong.
  function parse(root) {
    const qs = [...root.querySelectorAll(":scope > .quiz-q")];
    if (qs.length === 0) throw new Error("no questions (.quiz-q)");
    return qs.map((q, i) => {
      const n = i + 1;
      const text = q.querySelector(".quiz-text");
      const options = [...q.querySelectorAll(".quiz-options > li")];
      const why = q.querySelector(".quiz-why");
      if (!text || !text.textContent.trim()) throw new Error(`question ${n} has no text (.quiz-text)`);
      if (options.length < 2) throw new Error(`question ${n} has ${options.length} option(s), needs at least 2`);
      const right = options.filter((o) => o.hasAttribute("data-correct")).length;
      if (right !== 1) throw new Error(`question ${n} has ${right} correct options (data-correct), needs exactly 1`);
      if (!why || !why.textContent.trim()) throw new Error(`question ${n} has no explanation (.quiz-why)`);
      return {
        text: [...text.childNodes],
        options: options.map((o) => ({ nodes: [...o.childNodes], correct: o.hasAttribute("data-correct") })),
        why: [...why.childNodes],
      };
    });
  }

  function build(root) {
    if (root.dataset.state) return; // already drawn (a page may load this script twice)
    const id = root.dataset.quiz || "quiz";
    let questions;
    try {
      questions = parse(root);
    } catch (e) {
      root.dataset.state = "error";
      const msg = `quiz ${id}: ${e.message}`;
      console.error(msg);
      root.prepend(el("p", { class: "quiz-error", role: "alert", text: `This quiz cannot be shown: ${msg}` }));
      return;
    }

    const score = el("p", { class: "quiz-score", "aria-live": "polite" });
    const results = new Array(questions.length).fill(null); // null | true | false
    const showScore = () => {
      const right = results.filter((r) => r === true).length;
      const answered = results.filter((r) => r !== null).length;
      score.dataset.right = String(right);
      score.dataset.answered = String(answered);
      score.textContent = `Score: ${right} of ${questions.length} right` + (answered < questions.length ? ` (${answered} answered)` : "");
    };

    const form = el("form", { class: "quiz-form", "aria-label": `Self-check quiz ${id}` });
    form.addEventListener("submit", (e) => e.preventDefault());
    questions.forEach((q, qi) => {
      groupCount += 1;
      const name = `lora-quiz-${groupCount}`;
      const fs = el("fieldset", { class: "quiz-question", "data-question": String(qi + 1) });
      const legend = el("legend", { class: "quiz-text" }, el("span", { class: "quiz-num", text: `${qi + 1}. ` }), ...q.text);
      fs.append(legend);
      const list = el("div", { class: "quiz-options" });
      const feedback = el("p", { class: "quiz-feedback", role: "status", "aria-live": "polite" });
      q.options.forEach((o, oi) => {
        const input = el("input", { type: "radio", name, value: String(oi), id: `${name}-${oi}` });
        if (o.correct) input.dataset.correct = "";
        const label = el("label", { for: input.id, class: "quiz-option" }, input, " ", ...o.nodes);
        input.addEventListener("change", () => {
          const ok = o.correct;
          results[qi] = ok;
          fs.dataset.result = ok ? "right" : "wrong";
          feedback.dataset.result = ok ? "right" : "wrong";
          feedback.replaceChildren(
            el("strong", { text: ok ? "Right. " : "Not quite. " }),
            ...q.why.map((n) => n.cloneNode(true))
          );
          list.querySelectorAll("label").forEach((l) => l.classList.remove("chosen-right", "chosen-wrong"));
          label.classList.add(ok ? "chosen-right" : "chosen-wrong");
          showScore();
        });
        list.append(label);
      });
      fs.append(list, feedback);
      form.append(fs);
    });

    const reset = el("button", { type: "button", class: "quiz-reset", text: "Start again" });
    reset.addEventListener("click", () => {
      form.querySelectorAll("input[type=radio]").forEach((i) => (i.checked = false));
      form.querySelectorAll(".quiz-feedback").forEach((f) => {
        f.replaceChildren();
        delete f.dataset.result;
      });
      form.querySelectorAll("fieldset").forEach((f) => delete f.dataset.result);
      form.querySelectorAll("label").forEach((l) => l.classList.remove("chosen-right", "chosen-wrong"));
      results.fill(null);
      showScore();
    });
    form.append(el("div", { class: "quiz-footer" }, score, reset));

    const title = el("p", { class: "quiz-title", text: "Check yourself" });
    root.replaceChildren(title, form);
    showScore();
    root.dataset.state = "ready";
    root.dataset.questions = String(questions.length);
  }

  function scan() {
    document.querySelectorAll("div.lora-quiz").forEach(build);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
})();

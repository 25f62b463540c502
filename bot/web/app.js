// The web chat page. Every piece of text from the user or the assistant is inserted with
// textContent (never innerHTML), so nothing typed can become markup.
"use strict";

(() => {
  const API = "/api/chat/";
  const MAX_PHOTO_BYTES = 10 * 1024 * 1024;
  const HISTORY_LIMIT = 300;
  const THUMB_SIDE = 320;
  const POLL_MS = 30000;
  // While a hotline ticket is open the server says "live": a person may write any moment.
  const LIVE_POLL_MS = 3000;
  const UI = {
    photoSent: "Đã gửi ảnh",
    photoTooLarge: "Ảnh quá nặng (tối đa 10 MB). Hãy chụp lại bằng camera điện thoại, ví dụ ảnh khoảng 3 MB.",
    notAPhoto: "Tệp này không phải là ảnh. Hãy chọn ảnh JPG hoặc PNG, ví dụ ảnh chụp bằng camera điện thoại.",
    offline: "Không kết nối được với máy chủ. Hãy kiểm tra mạng rồi gửi lại.",
    download: "Tải tờ khai (PDF)",
    step: (n, total) => `Bước ${n}/${total}`,
    confirmNew: "Bắt đầu cuộc trò chuyện mới? Lịch sử trò chuyện trên máy này sẽ bị xóa.",
  };

  const $ = (id) => document.getElementById(id);
  const messages = $("messages");
  const textInput = $("text-input");
  const sendButton = $("send-button");
  const typing = $("typing");

  function randomId(bytes) {
    const data = new Uint8Array(bytes);
    crypto.getRandomValues(data);
    return Array.from(data, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // The conversation id is this browser's: a reload continues the same conversation.
  function conversationId() {
    let id = localStorage.getItem("vssid.conversation");
    // 16 random bytes (128 bits): the id is the conversation's only credential. A shorter id
    // kept by an older page is replaced (the server refuses ids under 32 characters).
    if (!id || !/^[A-Za-z0-9_-]{32,64}$/.test(id)) {
      id = "w" + randomId(16);
      localStorage.setItem("vssid.conversation", id);
    }
    return id;
  }

  let conversation = conversationId();
  const historyKey = () => "vssid.history." + conversation;

  function loadHistory() {
    try {
      const saved = JSON.parse(localStorage.getItem(historyKey()) || "null");
      return saved && Array.isArray(saved.items) ? saved : { items: [], progress: null };
    } catch (e) {
      return { items: [], progress: null };
    }
  }
  let history = loadHistory();

  function saveHistory() {
    history.items = history.items.slice(-HISTORY_LIMIT);
    try {
      localStorage.setItem(historyKey(), JSON.stringify(history));
    } catch (e) {
      // Storage full or disabled: the conversation still works, it just won't survive a reload.
    }
  }

  function scrollToEnd() {
    messages.scrollTop = messages.scrollHeight;
  }

  function renderUser(text, imageUrl) {
    const wrap = document.createElement("div");
    wrap.className = "message user";
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = text;
    if (imageUrl) {
      const img = document.createElement("img");
      img.addEventListener("load", scrollToEnd);
      img.src = imageUrl;
      img.alt = "Ảnh bạn đã gửi";
      bubble.appendChild(img);
    }
    wrap.appendChild(bubble);
    messages.appendChild(wrap);
    scrollToEnd();
  }

  function renderBot(reply, isError) {
    const wrap = document.createElement("div");
    wrap.className = "message bot" + (isError ? " error" : "");
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = reply.text || "";
    if (reply.image) {
      const img = document.createElement("img");
      img.src = reply.image;
      img.alt = "";
      bubble.appendChild(img);
    }
    wrap.appendChild(bubble);
    if (reply.document) {
      const link = document.createElement("a");
      link.className = "document";
      link.href = reply.document;
      link.setAttribute("download", "");
      link.textContent = UI.download;
      wrap.appendChild(link);
    }
    if (reply.buttons && reply.buttons.length) {
      const row = document.createElement("div");
      row.className = "buttons";
      for (const button of reply.buttons) {
        const el = document.createElement("button");
        el.type = "button";
        el.className = "choice";
        el.textContent = button.label;
        el.addEventListener("click", () => {
          send({ button: button.payload }, button.label);
        });
        row.appendChild(el);
      }
      wrap.appendChild(row);
    }
    messages.appendChild(wrap);
    scrollToEnd();
  }

  // Only the choices offered since the user's last message can be pressed: older ones
  // belong to steps already answered.
  function refreshChoices() {
    const all = Array.from(messages.querySelectorAll(".message"));
    let lastUser = -1;
    all.forEach((el, i) => {
      if (el.classList.contains("user")) lastUser = i;
    });
    all.forEach((el, i) => {
      for (const b of el.querySelectorAll(".choice")) b.disabled = i < lastUser || busy;
    });
  }

  function showProgress(progress) {
    const box = $("progress");
    if (!progress) {
      box.hidden = true;
      return;
    }
    const [n, total] = progress;
    $("progress-label").textContent = UI.step(n, total);
    $("progress-fill").style.width = Math.round((100 * n) / Math.max(total, 1)) + "%";
    const bar = box.querySelector(".progress-track");
    bar.setAttribute("aria-valuenow", String(n));
    bar.setAttribute("aria-valuemax", String(total));
    box.hidden = false;
  }

  function addBotReplies(replies, isError) {
    for (const reply of replies) {
      renderBot(reply, isError);
      history.items.push({ role: "bot", reply: reply, error: !!isError });
    }
    if (!isError && replies.length) {
      const withProgress = replies.filter((r) => Array.isArray(r.progress));
      history.progress = withProgress.length ? withProgress[withProgress.length - 1].progress : null;
      showProgress(history.progress);
    }
    saveHistory();
  }

  function addUser(text, imageUrl) {
    renderUser(text, imageUrl);
    const item = { role: "user", text: text };
    history.items.push(item);
    saveHistory();
    return item;
  }

  // A small copy of a sent photo kept in the history, so a reload shows the photo again
  // (the page's object URL dies with the page). Resolves null when it cannot be made.
  async function thumbnail(file) {
    try {
      const bitmap = await createImageBitmap(file);
      const scale = Math.min(1, THUMB_SIDE / Math.max(bitmap.width, bitmap.height));
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      bitmap.close();
      return canvas.toDataURL("image/jpeg", 0.7);
    } catch (e) {
      return null;
    }
  }

  let busy = false;
  function setBusy(value) {
    busy = value;
    sendButton.disabled = value;
    typing.hidden = !value;
    refreshChoices();
  }

  async function post(body) {
    const url = API + encodeURIComponent(conversation) + "/messages";
    const init = { method: "POST" };
    if (body instanceof FormData) {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
      init.headers = { "Content-Type": "application/json" };
    }
    let lastError;
    let busyAnswers = 0;
    // The same message_id every time: the server answers a repeated id only once. One retry
    // after a network error; while the server says it is busy (503 with Retry-After), as
    // many as it takes (up to ~5 minutes), waiting as long as it asks.
    for (let attempt = 0; attempt < 2; ) {
      try {
        const response = await fetch(url, init);
        const data = await response.json();
        const wait = Number(response.headers.get("Retry-After"));
        if (response.status === 503 && wait > 0 && busyAnswers < 150) {
          if (busyAnswers === 0) addBotReplies(data.replies || [], true);
          busyAnswers++;
          await new Promise((r) => setTimeout(r, Math.min(wait, 30) * 1000));
          continue;
        }
        return { ok: response.ok, data: data };
      } catch (e) {
        lastError = e;
        attempt++;
        await new Promise((r) => setTimeout(r, 800));
      }
    }
    throw lastError;
  }

  // A photo's form: the small fields first, so that a busy server answers before reading
  // the photo (it reads the form in order).
  function photoForm(file, messageId) {
    const form = new FormData();
    form.append("message_id", messageId);
    form.append("photo", file, file.name || "photo.jpg");
    return form;
  }

  // body: the JSON message, or null for a photo (`file`); echo: what the user sees as their
  // own message (null for the silent "/start").
  async function send(body, echo, imageUrl, file) {
    if (busy) return;
    const messageId = randomId(12);
    if (body === null) body = photoForm(file, messageId);
    else body.message_id = messageId;
    if (echo !== null) {
      const item = addUser(echo, imageUrl);
      if (file) {
        thumbnail(file).then((url) => {
          if (!url) return;
          item.image = url;
          saveHistory();
        });
      }
    }
    setBusy(true);
    try {
      const result = await post(body);
      setLive(result.data.live);
      addBotReplies(result.data.replies || [], !result.ok);
    } catch (e) {
      addBotReplies([{ text: UI.offline, buttons: [], document: null }], true);
    } finally {
      setBusy(false);
      textInput.focus();
    }
  }

  function sendPhoto(file) {
    if (!file) return;
    if (file.type && !file.type.startsWith("image/")) {
      addBotReplies([{ text: UI.notAPhoto, buttons: [], document: null }], true);
      return;
    }
    if (file.size > MAX_PHOTO_BYTES) {
      addBotReplies([{ text: UI.photoTooLarge, buttons: [], document: null }], true);
      return;
    }
    send(null, UI.photoSent, URL.createObjectURL(file), file);
  }

  function restore() {
    // The header's height first (the progress bar), then the messages: scrolled to the end
    // once the layout is final, so the question's last line is not left under the composer.
    showProgress(history.progress);
    messages.textContent = "";
    for (const item of history.items) {
      if (item.role === "user") renderUser(item.text, item.image);
      else renderBot(item.reply, item.error);
    }
    refreshChoices();
    scrollToEnd();
    requestAnimationFrame(scrollToEnd);
  }

  async function poll() {
    if (busy || document.hidden) return;
    try {
      const response = await fetch(API + encodeURIComponent(conversation) + "/updates");
      if (!response.ok) return;
      const data = await response.json();
      setLive(data.live);
      if (data.replies && data.replies.length) {
        addBotReplies(data.replies, false);
        refreshChoices();
      }
    } catch (e) {
      // Offline for a moment: the next poll will pick the messages up.
    }
  }

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = textInput.value.trim();
    if (!text || busy) return;
    textInput.value = "";
    send({ text: text }, text);
  });

  textInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });

  for (const id of ["camera-input", "photo-input"]) {
    const input = $(id);
    input.addEventListener("change", () => {
      const file = input.files && input.files[0];
      input.value = "";
      sendPhoto(file);
    });
  }

  $("new-chat").addEventListener("click", () => {
    if (!window.confirm(UI.confirmNew)) return;
    localStorage.removeItem(historyKey());
    localStorage.removeItem("vssid.conversation");
    conversation = conversationId();
    history = { items: [], progress: null };
    restore();
    send({ text: "/start" }, null);
  });

  // Polling every 30 s, or every 3 s while the conversation is "live" (a hotline ticket).
  let pollTimer = null;
  let live = null;
  function setLive(value) {
    const now = value === true;
    if (now === live) return;
    live = now;
    if (pollTimer !== null) clearInterval(pollTimer);
    pollTimer = setInterval(poll, live ? LIVE_POLL_MS : POLL_MS);
  }

  // A school's or the hotline's link (?start=school_<code>, ?start=h-<token>) is passed on as
  // "/start <payload>", as a Telegram deep link is; dropped from the address bar so a reload
  // does not send it again. The assistant checks the payload (an invalid one starts normally).
  function takeStartPayload() {
    const url = new URL(window.location.href);
    const payload = (url.searchParams.get("start") || "").trim();
    if (url.searchParams.has("start")) {
      url.searchParams.delete("start");
      window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
    return payload;
  }
  const startPayload = takeStartPayload();

  restore();
  setLive(false);
  if (!history.items.length || startPayload) {
    // First visit (or cleared storage, or a link): the assistant greets, or re-asks the current step.
    send({ text: startPayload ? "/start " + startPayload : "/start" }, null);
  } else {
    // Back on the page: anything decided meanwhile (approval, reminder) shows at once.
    poll();
  }
})();
